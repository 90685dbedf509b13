//! JUnit XML: one testsuite per story, one testcase per criterion × cluster,
//! named like `7.2.3 [infra] Cluster healthy and ready`. The failure message is
//! one line; the evidence goes to `system-out`. Valid against the Jenkins xUnit
//! `junit-10.xsd` (checked in tests).

use junit_report::{ReportBuilder, TestCase, TestSuiteBuilder};

use crate::catalog::Catalog;
use crate::check::{Outcome, Verdict};
use crate::runner::{RunReport, UnitResult};

pub fn write(report: &RunReport, catalog: &Catalog, sink: impl std::io::Write) -> std::io::Result<()> {
    let mut builder = ReportBuilder::new();
    for (story, results) in report.by_story() {
        let title = catalog.story(&story).map(|s| s.title.as_str()).unwrap_or("Definition of Done");
        let mut suite = TestSuiteBuilder::new(&format!("{story} {title}"));
        suite.set_timestamp(report.started_at);
        suite.add_testcases(results.into_iter().map(|r| testcase(&story, r)));
        builder.add_testsuite(suite.build());
    }
    builder.build().write_xml(sink).map_err(std::io::Error::other)
}

fn testcase(story: &str, r: &UnitResult) -> TestCase {
    let name = r.title();
    let time = time::Duration::try_from(r.duration).unwrap_or(time::Duration::ZERO);
    let message = one_line(&r.outcome.summary());
    let mut tc = match r.outcome.verdict() {
        Verdict::Pass => TestCase::success(&name, time),
        Verdict::Fail => TestCase::failure(&name, time, "fail", &message),
        Verdict::Error => TestCase::error(&name, time, "error", &message),
        Verdict::Skip => {
            let kind = if r.is_unmapped() { "unmapped" } else if r.outcome_is_manual() { "manual" } else { "skip" };
            TestCase::skipped_with_cause(&name, kind, &message)
        }
    };
    let epic = story.split('.').next().unwrap_or(story);
    tc.set_classname(&format!("platform-acceptance.{}.{story}", if story == "dod" { "dod".to_string() } else { format!("epic{epic:0>2}") }));
    let mut out = vec![format!("criterion: {} [{}]", r.id, r.cluster)];
    if let Some(check) = &r.check {
        out.push(format!("check: {check} (layer {}, {} attempt(s))", r.layer.map(|l| l.as_str()).unwrap_or("-"), r.attempts));
    }
    if let Some(basis) = &r.basis {
        out.push(format!("basis: {basis}"));
    }
    let details: Vec<String> = r.outcome.details().into_iter().map(|d| format!("  {d}")).collect();
    out.extend(super::bounded(&details, super::DETAIL_BYTES));
    tc.set_system_out(&out.join("\n"));
    tc
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 300 { format!("{}…", line.chars().take(300).collect::<String>()) } else { line.to_string() }
}

impl UnitResult {
    fn outcome_is_manual(&self) -> bool {
        matches!(&self.outcome, Outcome::Skip { reason } if reason.starts_with("manual:"))
    }
}
