//! Assertions on run reports, shared by the repository and the simulation tests.
//!
//! A unit is named `"<id> [<cluster>]"` (`"2.2.8 [apps]"`, `"1.3.6 [all]"`).
//!
//! **"Failing" means verdict `Fail` or `Error`** — the unit did not hold, either because a
//! finding was made (`Fail`) or because it could not be evaluated (`Error`). `Skip` (manual
//! criteria, wrong phase, blocked by a failed story) is *not* failing, and neither is `Pass`.
//! Where a test must rule out `Skip` and `Error` too, it says so with [`ReportExt::expect_findings`]
//! or [`ReportExt::expect_all_pass`].

use std::borrow::Borrow;
use std::collections::BTreeMap;

use platform_acceptance::check::{Outcome, Verdict};
use platform_acceptance::runner::{RunReport, UnitResult};

/// `"<id> [<cluster>]"` of a result.
pub fn unit_name(r: &UnitResult) -> String {
    format!("{} [{}]", r.id, r.cluster)
}

/// `unit` is a unit name, or a bare id matching that id on every cluster.
fn is_unit(r: &UnitResult, unit: &str) -> bool {
    if unit.contains(" [") { unit_name(r) == unit } else { r.id == unit }
}

/// Skipped because the target cannot prove the criterion at all (see `sim::basis`).
pub fn not_provable(r: &UnitResult) -> bool {
    matches!(&r.outcome, Outcome::Skip { reason } if reason.starts_with("not provable in "))
}

fn is_failing(v: Verdict) -> bool {
    matches!(v, Verdict::Fail | Verdict::Error)
}

/// Queries and assertions over the results of one report, or of several (`[RunReport]`,
/// `[&RunReport]`: separate runs of disjoint selections read as one).
pub trait ReportExt {
    /// Every unit result, in report order.
    fn units(&self) -> Vec<&UnitResult>;

    /// Verdict by unit name.
    fn verdicts(&self) -> BTreeMap<String, Verdict> {
        self.units().into_iter().map(|r| (unit_name(r), r.outcome.verdict())).collect()
    }

    /// The verdict of one unit; panics (listing the units) if the report has no such unit.
    fn verdict(&self, unit: &str) -> Verdict {
        let v = self.verdicts();
        *v.get(unit).unwrap_or_else(|| panic!("no unit {unit} in the report; units: {:?}", v.keys().collect::<Vec<_>>()))
    }

    /// Sorted names of the units with `verdict`.
    fn with_verdict(&self, verdict: Verdict) -> Vec<String> {
        let mut v: Vec<String> = self.units().into_iter().filter(|r| r.outcome.verdict() == verdict).map(unit_name).collect();
        v.sort();
        v
    }

    /// Sorted names of the failing units (`Fail` or `Error`; see the module doc).
    fn failing(&self) -> Vec<String> {
        let mut v: Vec<String> = self.units().into_iter().filter(|r| is_failing(r.outcome.verdict())).map(unit_name).collect();
        v.sort();
        v
    }

    /// The details of a unit, one per line. `unit` is `"<id> [<cluster>]"`, or a bare id
    /// (then the details of every cluster's unit of that id). Empty when there is no such unit.
    fn message(&self, unit: &str) -> String {
        self.units()
            .into_iter()
            .filter(|r| is_unit(r, unit))
            .flat_map(|r| r.outcome.details())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every detail line of every unit (e.g. to check that no secret leaked into a report).
    fn text(&self) -> String {
        self.units().into_iter().flat_map(|r| r.outcome.details()).collect::<Vec<_>>().join("\n")
    }

    /// One line per unit that did not pass: name, verdict, details. For assertion messages.
    fn summary(&self) -> String {
        self.units()
            .into_iter()
            .filter(|r| r.outcome.verdict() != Verdict::Pass)
            .map(|r| format!("  {} {:?}: {}", unit_name(r), r.outcome.verdict(), r.outcome.details().join(" | ")))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Exactly `units` are failing (`Fail`/`Error`); other units may pass or be skipped.
    fn expect_failing(&self, units: &[&str]) -> &Self {
        let mut want: Vec<String> = units.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(self.failing(), want, "failing units differ; not passing:\n{}", self.summary());
        self
    }

    /// Exactly `units` have findings (verdict `Fail`, not `Error` or `Skip`) and every other
    /// unit passes: the strictest form, for runs where nothing may be skipped. The one
    /// Skip allowed is "not provable in <target>": such a unit is never evaluated there.
    fn expect_findings(&self, units: &[&str]) -> &Self {
        let mut want: Vec<String> = units.iter().map(|s| s.to_string()).collect();
        want.sort();
        let mut not_passing: Vec<String> = self
            .units()
            .into_iter()
            .filter(|r| r.outcome.verdict() != Verdict::Pass && !not_provable(r))
            .map(unit_name)
            .collect();
        not_passing.sort();
        assert_eq!(not_passing, want, "units that did not pass differ:\n{}", self.summary());
        for u in &want {
            assert_eq!(self.verdict(u), Verdict::Fail, "{u} should Fail (not Error/Skip):\n{}", self.summary());
        }
        self
    }

    /// Every unit passes (no `Fail`, `Error` or `Skip` but "not provable"), and there is at least one.
    fn expect_all_pass(&self) -> &Self {
        assert!(!self.units().is_empty(), "the report has no unit");
        self.expect_findings(&[])
    }

    /// No unit is failing (`Skip` allowed: manual criteria, other phases).
    fn expect_none_failing(&self) -> &Self {
        self.expect_failing(&[])
    }

    /// The unit exists and its details contain every one of `parts`.
    fn expect_message(&self, unit: &str, parts: &[&str]) -> &Self {
        assert!(self.units().into_iter().any(|r| is_unit(r, unit)), "no unit {unit} in the report; units: {:?}", self.verdicts());
        let m = self.message(unit);
        for p in parts {
            assert!(m.contains(p), "{unit}: expected a message containing {p:?}, got:\n{m}");
        }
        self
    }

    /// The details of every failing unit contain every one of `needles`.
    fn expect_failing_mention(&self, needles: &[&str]) -> &Self {
        for r in self.units().into_iter().filter(|r| is_failing(r.outcome.verdict())) {
            let text = r.outcome.details().join("\n");
            for n in needles {
                assert!(text.contains(n), "{} message lacks {n:?}: {text}", r.title());
            }
        }
        self
    }
}

impl ReportExt for RunReport {
    fn units(&self) -> Vec<&UnitResult> {
        self.results.iter().collect()
    }
}

impl<R: Borrow<RunReport>> ReportExt for [R] {
    fn units(&self) -> Vec<&UnitResult> {
        self.iter().flat_map(|r| r.borrow().results.iter()).collect()
    }
}
