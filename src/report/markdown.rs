//! Markdown summary for `$GITHUB_STEP_SUMMARY` and PR comments: verdict, a table
//! per epic, then every failure with its evidence (bounded, comments have a size limit).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::catalog::Catalog;
use crate::check::Verdict;
use crate::cluster::access::BasisKind;
use crate::runner::RunReport;

/// Failures listed in full; the rest are counted (PR comments are limited to 65 536 characters).
const MAX_LISTED: usize = 60;

pub fn render(report: &RunReport, catalog: &Catalog) -> String {
    let s = &report.summary;
    let mut md = String::new();
    let verdict = if s.success() { "PASSED" } else { "FAILED" };
    let _ = writeln!(md, "## Platform acceptance: {verdict}\n");
    let _ = writeln!(md, "{} — phase `{}`, {:.1}s\n", s.line(), report.phase.as_str(), report.duration.as_secs_f64());

    if s.basis.total() > 0 {
        let _ = writeln!(md, "Basis of the {}\n", s.basis.line());
    }

    let mut by_epic: BTreeMap<u32, [usize; 7]> = BTreeMap::new();
    for r in &report.results {
        let epic = Catalog::epic_of(&r.story).unwrap_or(0);
        let slot = match r.outcome.verdict() {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Error => 2,
            Verdict::Skip => 3,
        };
        let row = by_epic.entry(epic).or_default();
        row[slot] += 1;
        match r.basis.as_ref().map(|b| b.kind) {
            Some(BasisKind::Real) => row[4] += 1,
            Some(BasisKind::RealOverSimulated) => row[5] += 1,
            Some(BasisKind::StandIn) => row[6] += 1,
            None => {}
        }
    }
    let _ = writeln!(md, "| Epic | Passed | Failed | Errors | Skipped | Basis: real / over simulated / stand-in |\n|---|---:|---:|---:|---:|---|");
    for (epic, [p, f, e, k, real, over, stand]) in &by_epic {
        let name = catalog
            .epics
            .iter()
            .find(|x| x.number == *epic)
            .map(|x| format!("{} {}", x.id, x.name))
            .unwrap_or_else(|| "Definition of Done".into());
        let _ = writeln!(md, "| {} | {p} | {f} | {e} | {k} | {real} / {over} / {stand} |", escape(&name));
    }

    let bad: Vec<_> = report.results.iter().filter(|r| matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error)).collect();
    if !bad.is_empty() {
        let _ = writeln!(md, "\n### Failures and errors\n");
        for r in bad.iter().take(MAX_LISTED) {
            let basis = r.basis.as_ref().map(|b| format!(" (basis: {b})")).unwrap_or_default();
            let _ = writeln!(md, "- **{}** `{}` — {}{}", escape(&r.title()), r.outcome.verdict().as_str(), escape(&r.outcome.summary()), escape(&basis));
            let details = r.outcome.details();
            if details.len() > 1 {
                let _ = writeln!(md, "  <details><summary>{} findings</summary>\n", details.len());
                for d in super::bounded(&details, super::DETAIL_BYTES) {
                    let _ = writeln!(md, "  - {}", escape(&d));
                }
                let _ = writeln!(md, "  </details>");
            }
        }
        if bad.len() > MAX_LISTED {
            let _ = writeln!(md, "\n…and {} more (see the JUnit or JSON report).", bad.len() - MAX_LISTED);
        }
    }
    let blocked = report.results.iter().filter(|r| r.blocked_by.is_some()).count();
    if blocked > 0 {
        let _ = writeln!(md, "\n{blocked} criteria skipped because a prerequisite story failed.");
    }
    if s.unmapped > 0 {
        let _ = writeln!(md, "\n{} criteria have no check yet (unmapped); they are not counted as passes.", s.unmapped);
    }
    md
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}
