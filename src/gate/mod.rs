//! The Definition-of-Done gate of a change to the planning document, and the document
//! kept true by results.
//!
//! * [`select`]: what a change claims (boxes ticked, stories marked done, criteria reworded
//!   while ticked, boxes unticked).
//! * [`plan_units`] + [`judge`]: the checks of exactly those boxes (plus the units of their
//!   prerequisite stories, so the runner's blocking applies) and the verdict: the gate passes
//!   only when every selected criterion passes on every cluster it runs on. Manual criteria
//!   are listed for a reviewer; unticked boxes are listed, never failures.
//! * [`render`]: Markdown (PR comment), JUnit, JSON.
//! * [`sync`]: `sync-doc`, ticks and status markers that follow from a JSON report.

pub mod git;
pub mod render;
pub mod select;
pub mod sync;


use std::collections::BTreeSet;

use serde::Serialize;

use crate::catalog::{Catalog, DOD_STORY};
use crate::check::Verdict;
use crate::plan::{Coverage, Selector, Unit};
use crate::runner::{RunReport, UnitResult};
use select::{Selection, Why};

/// How one selected box fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemVerdict {
    Pass,
    Fail,
    Error,
    /// The check ran but did not decide (skipped: blocked, needs writes, not provable here).
    NotProven,
    /// No check maps the text.
    Unmapped,
    /// A person judges it; listed for the reviewer, not a failure.
    Manual,
}

impl ItemVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemVerdict::Pass => "pass",
            ItemVerdict::Fail => "fail",
            ItemVerdict::Error => "error",
            ItemVerdict::NotProven => "not proven",
            ItemVerdict::Unmapped => "unmapped",
            ItemVerdict::Manual => "manual",
        }
    }

    pub fn ok(self) -> bool {
        matches!(self, ItemVerdict::Pass | ItemVerdict::Manual)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GateItem {
    pub id: String,
    pub story: String,
    pub text: String,
    pub why: Vec<Why>,
    pub verdict: ItemVerdict,
    /// One line: the evidence of a pass, the first finding, the reason.
    pub message: String,
    pub check: Option<String>,
    /// Every unit (criterion × cluster) that ran for it.
    pub results: Vec<UnitResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateReport {
    pub document: String,
    /// `abc123def456` or the base file.
    pub base: String,
    /// A commit, or `working tree`.
    pub head: String,
    pub passed: bool,
    pub interrupted: bool,
    pub items: Vec<GateItem>,
    /// Stories run because selected ones depend on them.
    pub prerequisite_stories: Vec<String>,
    pub prerequisites: Vec<UnitResult>,
    pub selection: Selection,
    /// One command that runs the same gate locally.
    pub reproduce: String,
}

/// Transitive prerequisite stories of `stories` in the head's dependency graph, without
/// `stories` themselves, in document order. The Definition of Done has none of its own.
pub fn prerequisite_stories(catalog: &Catalog, stories: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = stories.iter().filter(|s| *s != DOD_STORY).cloned().collect();
    while let Some(s) = stack.pop() {
        for p in catalog.prerequisites(&s) {
            if seen.insert(p.clone()) {
                stack.push(p);
            }
        }
    }
    catalog.stories.iter().map(|s| s.id.clone()).filter(|s| seen.contains(s) && !stories.contains(s)).collect()
}

/// The units the gate runs: every cluster of each selected box that has a check (manual and
/// unmapped boxes are judged without running), and every unit of the prerequisite stories.
/// Returns the units and the prerequisite stories.
pub fn plan_units(selection: &Selection, coverage: &Coverage, catalog: &Catalog) -> (Vec<Unit>, Vec<String>) {
    let runnable: Vec<&select::Selected> = selection
        .selected
        .iter()
        .filter(|s| coverage.items.iter().any(|c| c.item.id == s.id && c.layer != "unmapped" && c.layer != "manual"))
        .collect();
    let stories: Vec<String> = {
        let mut seen = BTreeSet::new();
        runnable.iter().filter(|s| seen.insert(s.story.clone())).map(|s| s.story.clone()).collect()
    };
    let prereqs = prerequisite_stories(catalog, &stories);
    let mut only: Vec<Selector> = runnable.iter().map(|s| Selector::Criterion(s.id.clone())).collect();
    only.extend(prereqs.iter().map(|s| Selector::Story(s.clone())));
    let units = if only.is_empty() { vec![] } else { coverage.units(&only, &[]) };
    (units, prereqs)
}

/// The verdict of every selected box from the run's results.
pub fn judge(selection: &Selection, coverage: &Coverage, report: &RunReport, prereqs: Vec<String>, labels: Labels) -> GateReport {
    let selected: BTreeSet<&str> = selection.selected.iter().map(|s| s.id.as_str()).collect();
    let items: Vec<GateItem> = selection
        .selected
        .iter()
        .map(|s| {
            let cov = coverage.items.iter().find(|c| c.item.id == s.id);
            let results: Vec<UnitResult> = report.results.iter().filter(|r| r.id == s.id).cloned().collect();
            let reworded = s.why.iter().find_map(|w| match w {
                Why::Reworded { before } => Some(before.clone()),
                _ => None,
            });
            let (verdict, message) = match cov.map(|c| c.layer.as_str()) {
                None | Some("unmapped") => (
                    ItemVerdict::Unmapped,
                    match &reworded {
                        Some(before) => format!("reworded while ticked (was: {before}): no check maps the new text, so nothing proves it"),
                        None => "no check maps this criterion yet (unmapped), so nothing proves it".into(),
                    },
                ),
                Some("manual") => (
                    ItemVerdict::Manual,
                    format!("manual: a reviewer confirms it: {}", cov.and_then(|c| c.manual_reason.clone()).unwrap_or_default()),
                ),
                _ => verdict_of(&results, report.summary.interrupted),
            };
            GateItem {
                id: s.id.clone(),
                story: s.story.clone(),
                text: s.text.clone(),
                why: s.why.clone(),
                verdict,
                message,
                check: cov.and_then(|c| c.check.clone()),
                results,
            }
        })
        .collect();
    let prerequisites: Vec<UnitResult> = report.results.iter().filter(|r| !selected.contains(r.id.as_str())).cloned().collect();
    GateReport {
        document: labels.document,
        base: labels.base,
        head: labels.head,
        passed: !report.summary.interrupted && items.iter().all(|i| i.verdict.ok()),
        interrupted: report.summary.interrupted,
        items,
        prerequisite_stories: prereqs,
        prerequisites,
        selection: selection.clone(),
        reproduce: labels.reproduce,
    }
}

/// Names for the report: what was compared and how to run it again.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    pub document: String,
    pub base: String,
    pub head: String,
    pub reproduce: String,
}

/// A criterion passes only when it passed on every cluster it ran on.
fn verdict_of(results: &[UnitResult], interrupted: bool) -> (ItemVerdict, String) {
    let first = |v: Verdict| results.iter().find(|r| r.outcome.verdict() == v);
    let line = |r: &UnitResult| format!("[{}] {}", r.cluster, r.outcome.summary());
    if let Some(r) = first(Verdict::Fail) {
        return (ItemVerdict::Fail, line(r));
    }
    if let Some(r) = first(Verdict::Error) {
        return (ItemVerdict::Error, line(r));
    }
    if let Some(r) = first(Verdict::Skip) {
        return (ItemVerdict::NotProven, format!("not proven: {}", line(r)));
    }
    match results.first() {
        Some(r) => (ItemVerdict::Pass, line(r)),
        None if interrupted => (ItemVerdict::NotProven, "not proven: the run was interrupted before it ran".into()),
        None => (ItemVerdict::NotProven, "not proven: no unit ran for it".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::check::Outcome;
    use crate::catalog::Catalog;

    fn doc() -> Catalog {
        Catalog::load("fixtures/multi-cluster-epics.md").unwrap()
    }

    fn coverage(c: &Catalog) -> Coverage {
        Coverage::map(c, crate::checks::all(), &["apps".to_string(), "infra".to_string()])
    }

    fn result(unit: &Unit, outcome: Outcome) -> UnitResult {
        UnitResult::new(unit, outcome, Duration::ZERO, 1, None)
    }

    fn report(results: Vec<UnitResult>) -> RunReport {
        RunReport::new(results, time::OffsetDateTime::UNIX_EPOCH, Duration::ZERO, false, Default::default())
    }

    fn selection(c: &Catalog, ids: &[&str]) -> Selection {
        let mut s = Selection::default();
        for id in ids {
            let i = c.item(id).unwrap();
            s.selected.push(select::Selected { id: i.id.clone(), story: i.story.clone(), text: i.text.clone(), ticked: true, line: i.line, why: vec![Why::Ticked] });
        }
        s
    }

    #[test]
    fn prerequisites_are_transitive_and_exclude_the_selected_stories() {
        let c = doc();
        assert_eq!(prerequisite_stories(&c, &["1.3".into()]), ["1.1", "1.2"]);
        assert_eq!(prerequisite_stories(&c, &["1.3".into(), "1.2".into()]), ["1.1"]);
        assert!(prerequisite_stories(&c, &["dod".into()]).is_empty());
    }

    #[test]
    fn units_cover_every_cluster_of_a_selected_criterion_and_the_prerequisite_stories() {
        let c = doc();
        let cov = coverage(&c);
        let (units, prereqs) = plan_units(&selection(&c, &["1.3.5", "dod.2"]), &cov, &c);
        assert_eq!(prereqs, ["1.1", "1.2"]);
        let mine: Vec<String> = units.iter().filter(|u| u.story == "1.3").map(|u| u.title()).collect();
        assert_eq!(mine, ["1.3.5 [apps] Both clusters bootstrapped and healthy", "1.3.5 [infra] Both clusters bootstrapped and healthy"]);
        assert!(units.iter().any(|u| u.story == "1.1") && units.iter().any(|u| u.story == "1.2"));
        assert!(!units.iter().any(|u| u.story == "dod"), "manual dod.2 is judged without running");
    }

    #[test]
    fn a_criterion_passes_only_when_it_passes_on_every_cluster() {
        let c = doc();
        let cov = coverage(&c);
        let sel = selection(&c, &["1.3.5"]);
        let (units, prereqs) = plan_units(&sel, &cov, &c);
        let mine: Vec<&Unit> = units.iter().filter(|u| u.id == "1.3.5").collect();
        let all_pass = report(mine.iter().map(|u| result(u, Outcome::pass("ok"))).collect());
        let g = judge(&sel, &cov, &all_pass, prereqs.clone(), Labels::default());
        assert!(g.passed);
        assert_eq!(g.items[0].verdict, ItemVerdict::Pass);

        let one_fails = report(vec![result(mine[0], Outcome::pass("ok")), result(mine[1], Outcome::fail("Node/infra-02", "Ready", "NotReady"))]);
        let g = judge(&sel, &cov, &one_fails, prereqs.clone(), Labels::default());
        assert!(!g.passed);
        assert_eq!(g.items[0].verdict, ItemVerdict::Fail);
        assert!(g.items[0].message.contains("[infra] Node/infra-02"), "{}", g.items[0].message);

        let skipped = report(vec![result(mine[0], Outcome::pass("ok")), result(mine[1], Outcome::skip("blocked by 1.2"))]);
        let g = judge(&sel, &cov, &skipped, prereqs, Labels::default());
        assert!(!g.passed);
        assert_eq!(g.items[0].verdict, ItemVerdict::NotProven);
    }

    #[test]
    fn reworded_fails_as_unmapped_manual_is_listed_and_prerequisites_are_separate() {
        let c = doc();
        let cov = coverage(&c);
        let mut sel = selection(&c, &["dod.9"]);
        sel.selected.push(select::Selected {
            id: "2.2.2".into(),
            story: "2.2".into(),
            text: "CLUSTER_ID set to \"2\" (unique)".into(),
            ticked: true,
            line: 1,
            why: vec![Why::Reworded { before: "CLUSTER_ID set to \"2\"".into() }],
        });
        // The head document as the change wrote it: 2.2.2 reworded, so no check maps it.
        let text = std::fs::read_to_string("fixtures/multi-cluster-epics.md").unwrap().replace("- [x] CLUSTER_ID set to \"2\"", "- [x] CLUSTER_ID set to \"2\" (unique)");
        let head = Catalog::parse(&text, "head.md".as_ref());
        let cov_head = coverage(&head);
        let (units, prereqs) = plan_units(&sel, &cov_head, &head);
        assert!(units.is_empty() && prereqs.is_empty(), "{prereqs:?}");
        let prereq_unit = cov.units(&[Selector::Criterion("1.1.1".into())], &[]);
        let g = judge(&sel, &cov_head, &report(vec![result(&prereq_unit[0], Outcome::fail("x", "y", "z"))]), prereqs, Labels::default());
        let by: Vec<_> = g.items.iter().map(|i| (i.id.as_str(), i.verdict)).collect();
        assert_eq!(by, [("dod.9", ItemVerdict::Manual), ("2.2.2", ItemVerdict::Unmapped)]);
        assert!(g.items[1].message.starts_with("reworded while ticked (was: CLUSTER_ID set to \"2\")"), "{}", g.items[1].message);
        assert!(!g.passed);
        assert_eq!(g.prerequisites.len(), 1);
    }

    #[test]
    fn manual_only_passes() {
        let c = doc();
        let cov = coverage(&c);
        let sel = selection(&c, &["dod.9"]);
        let g = judge(&sel, &cov, &report(vec![]), vec![], Labels::default());
        assert!(g.passed);
    }
}
