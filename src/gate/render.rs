//! The gate's reports: Markdown for a pull-request comment, JUnit, JSON.

use std::fmt::Write;

use junit_report::{ReportBuilder, TestCase, TestSuiteBuilder};

use super::{GateReport, ItemVerdict};
use crate::check::Verdict;
use crate::runner::UnitResult;

/// Hidden marker so a pipeline can find and update its one comment.
pub const COMMENT_MARKER: &str = "<!-- platform-acceptance gate -->";

/// Evidence lines shown per unit (comments are limited to 65 536 characters).
const MAX_DETAILS: usize = 5;
/// Prerequisite problems listed; the rest are counted.
const MAX_PREREQ: usize = 20;

pub fn markdown(g: &GateReport) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "{COMMENT_MARKER}");
    let verdict = if g.interrupted {
        "INTERRUPTED"
    } else if g.passed {
        "PASSED"
    } else {
        "FAILED"
    };
    let _ = writeln!(md, "## Definition-of-Done gate: {verdict}\n");
    let count = |v: ItemVerdict| g.items.iter().filter(|i| i.verdict == v).count();
    if g.items.is_empty() {
        let _ = writeln!(md, "`{}` {} → {}: this change ticks no box and marks no story done; nothing to prove.", g.document, g.base, g.head);
    } else {
        let _ = writeln!(
            md,
            "`{}` {} → {}: {} box(es) to prove — {} passed, {} failed, {} errors, {} not proven, {} unmapped, {} manual.",
            g.document,
            g.base,
            g.head,
            g.items.len(),
            count(ItemVerdict::Pass),
            count(ItemVerdict::Fail),
            count(ItemVerdict::Error),
            count(ItemVerdict::NotProven),
            count(ItemVerdict::Unmapped),
            count(ItemVerdict::Manual),
        );
        let _ = writeln!(md, "\n| Box | Why | Verdict | Evidence |\n|---|---|---|---|");
        for i in &g.items {
            let why: Vec<String> = i.why.iter().map(|w| w.label()).collect();
            let _ = writeln!(md, "| **{}** {} | {} | {} {} | {} |", i.id, escape(&i.text), escape(&why.join("; ")), icon(i.verdict), i.verdict.as_str(), escape(&i.message));
        }
        let detailed: Vec<_> = g.items.iter().filter(|i| !i.results.is_empty()).collect();
        if !detailed.is_empty() {
            let _ = writeln!(md, "\n<details><summary>Evidence per cluster</summary>\n");
            for i in detailed {
                for r in &i.results {
                    let _ = writeln!(md, "- `{} [{}]` {}{}", r.id, r.cluster, r.outcome.verdict().as_str(), basis(r));
                    for d in r.outcome.details().iter().take(MAX_DETAILS) {
                        let _ = writeln!(md, "  - {}", escape(d));
                    }
                }
            }
            let _ = writeln!(md, "\n</details>");
        }
    }
    if !g.prerequisite_stories.is_empty() {
        let p = |v: Verdict| g.prerequisites.iter().filter(|r| r.outcome.verdict() == v).count();
        let _ = writeln!(
            md,
            "\n### Prerequisite stories\n\n{} (run first; a live failure there blocks the boxes above): {} passed, {} failed, {} errors, {} skipped.",
            g.prerequisite_stories.join(", "),
            p(Verdict::Pass),
            p(Verdict::Fail),
            p(Verdict::Error),
            p(Verdict::Skip)
        );
        let bad: Vec<&UnitResult> = g.prerequisites.iter().filter(|r| matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error)).collect();
        for r in bad.iter().take(MAX_PREREQ) {
            let _ = writeln!(md, "- **{}** {} — {}", escape(&r.title()), r.outcome.verdict().as_str(), escape(&r.outcome.summary()));
        }
        if bad.len() > MAX_PREREQ {
            let _ = writeln!(md, "- …and {} more (see the JUnit or JSON report)", bad.len() - MAX_PREREQ);
        }
    }
    let s = &g.selection;
    if !s.unticked.is_empty() || !s.removed.is_empty() {
        let _ = writeln!(md, "\n### Unticked or removed (listed, not failures)\n");
        for x in &s.unticked {
            let _ = writeln!(md, "- {} {} — unticked", x.id, escape(&x.text));
        }
        for x in &s.removed {
            let _ = writeln!(md, "- {} {} — removed while ticked", x.id, escape(&x.text));
        }
    }
    if !s.status.is_empty() {
        let _ = writeln!(md, "\n### Story status markers\n");
        for c in &s.status {
            let before = c.before.as_deref().unwrap_or("(none)");
            let after = c.after.as_deref().unwrap_or("(none)");
            let note = if c.to_done() {
                "marked done: all its boxes are in the gate".to_string()
            } else if c.class_after == super::select::StatusClass::FreeText {
                "free text: reported, not interpreted".to_string()
            } else {
                format!("now {}", c.class_after.as_str())
            };
            let _ = writeln!(md, "- Story {} {}: {} → {} — {note}", c.story, escape(&c.title), escape(before), escape(after));
        }
    }
    let _ = writeln!(md, "\n### Reproduce locally\n\n```sh\n{}\n```", g.reproduce);
    md
}

fn icon(v: ItemVerdict) -> &'static str {
    match v {
        ItemVerdict::Pass => "✅",
        ItemVerdict::Manual => "👤",
        _ => "❌",
    }
}

fn basis(r: &UnitResult) -> String {
    r.basis.as_ref().map(|b| format!(" (basis: {b})")).unwrap_or_default()
}

fn escape(s: &str) -> String {
    let one = s.lines().next().unwrap_or_default();
    let one = if one.chars().count() > 300 { format!("{}…", one.chars().take(300).collect::<String>()) } else { one.to_string() };
    one.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// JUnit: suite `gate` (one testcase per selected box; manual boxes skipped with the reason)
/// and suite `prerequisites` (one testcase per unit of the prerequisite stories).
pub fn junit(g: &GateReport, sink: impl std::io::Write) -> std::io::Result<()> {
    let mut builder = ReportBuilder::new();
    let mut suite = TestSuiteBuilder::new("gate");
    for i in &g.items {
        let name = format!("{} {}", i.id, i.text);
        let time = time::Duration::try_from(i.results.iter().map(|r| r.duration).sum::<std::time::Duration>()).unwrap_or(time::Duration::ZERO);
        let msg = escape(&i.message);
        let mut tc = match i.verdict {
            ItemVerdict::Pass => TestCase::success(&name, time),
            ItemVerdict::Manual => TestCase::skipped_with_cause(&name, "manual", &msg),
            ItemVerdict::Error => TestCase::error(&name, time, "error", &msg),
            v => TestCase::failure(&name, time, v.as_str(), &msg),
        };
        tc.set_classname(&format!("platform-acceptance.gate.{}", i.story));
        let mut out = vec![format!("why: {}", i.why.iter().map(|w| w.label()).collect::<Vec<_>>().join("; "))];
        for r in &i.results {
            out.push(format!("{} [{}]: {}{}", r.id, r.cluster, r.outcome.verdict().as_str(), basis(r)));
            out.extend(r.outcome.details().into_iter().take(MAX_DETAILS).map(|d| format!("  {d}")));
        }
        tc.set_system_out(&out.join("\n"));
        suite.add_testcase(tc);
    }
    builder.add_testsuite(suite.build());
    let mut pre = TestSuiteBuilder::new("prerequisites");
    for r in &g.prerequisites {
        let time = time::Duration::try_from(r.duration).unwrap_or(time::Duration::ZERO);
        let msg = escape(&r.outcome.summary());
        let mut tc = match r.outcome.verdict() {
            Verdict::Pass => TestCase::success(&r.title(), time),
            Verdict::Fail => TestCase::failure(&r.title(), time, "fail", &msg),
            Verdict::Error => TestCase::error(&r.title(), time, "error", &msg),
            Verdict::Skip => TestCase::skipped_with_cause(&r.title(), "skip", &msg),
        };
        tc.set_classname(&format!("platform-acceptance.prerequisites.{}", r.story));
        pre.add_testcase(tc);
    }
    builder.add_testsuite(pre.build());
    builder.build().write_xml(sink).map_err(std::io::Error::other)
}

/// The whole [`GateReport`] as JSON: `{document, base, head, passed, interrupted, items: [{id,
/// story, text, why: [{kind: ticked|story-done|reworded, before?}], verdict: pass|fail|error|
/// not-proven|unmapped|manual, message, check, results: [unit results as in the run report]}],
/// prerequisite_stories, prerequisites, selection: {selected, unticked, removed, status},
/// reproduce}`.
pub fn json(g: &GateReport) -> String {
    serde_json::to_string_pretty(g).unwrap_or_default()
}
