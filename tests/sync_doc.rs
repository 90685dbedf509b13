//! `sync-doc` on the planning document with a real report of the repository layer: only the
//! bytes of boxes and status markers change (also with CRLF line endings), and parsing the
//! result gives ticks equal to the report's passes for non-manual criteria.

mod support;

use std::collections::BTreeMap;

use assert_cmd::Command;
use platform_acceptance::catalog::Catalog;
use platform_acceptance::gate::sync;

/// The JSON report of `run` over the repository layer of fixtures/gitops, with a few
/// criteria broken so that ticked boxes must be unticked as well.
fn report() -> serde_json::Value {
    let broken = support::RepoCopy::new();
    broken.remove("kubernetes/bases/external-dns");
    broken.replace("kubernetes/clusters/apps/infrastructure.yaml", "CLUSTER_ID: \"2\"", "CLUSTER_ID: \"3\"");
    let r = support::run_repo_layer(broken.path());
    let session = platform_acceptance::session::Session::new(support::DOC, Some(broken.path())).unwrap();
    serde_json::from_str(&platform_acceptance::report::json::render(&r, &session.coverage, support::DOC.as_ref())).unwrap()
}

/// Byte ranges where `a` and `b` differ (same length assumed per line).
fn changed_lines(a: &str, b: &str) -> Vec<usize> {
    a.split_inclusive('\n').zip(b.split_inclusive('\n')).enumerate().filter(|(_, (x, y))| x != y).map(|(i, _)| i + 1).collect()
}

fn check(doc: &str, report: &serde_json::Value) {
    let s = sync::sync(doc, report).unwrap();
    assert!(!s.changes.is_empty());
    assert_eq!(doc.split_inclusive('\n').count(), s.text.split_inclusive('\n').count());
    // Only the changed lines differ, and within them only the box byte or the marker bytes.
    let lines: Vec<usize> = s.changes.iter().map(|c| c.line).collect();
    assert_eq!(changed_lines(doc, &s.text), lines);
    for (x, y) in doc.split_inclusive('\n').zip(s.text.split_inclusive('\n')).filter(|(x, y)| x != y) {
        let prefix = x.bytes().zip(y.bytes()).take_while(|(a, b)| a == b).count();
        let suffix = x.bytes().rev().zip(y.bytes().rev()).take_while(|(a, b)| a == b).count();
        let (dx, dy) = (&x[prefix..x.len() - suffix], &y[prefix..y.len() - suffix]);
        let box_byte = matches!((dx, dy), (" ", "x") | ("x", " ") | ("X", " "));
        let marker = x.contains("**Status:**") && !dx.is_ascii() && !dy.is_ascii();
        assert!(box_byte || marker, "unexpected change {dx:?} → {dy:?} in {x:?}");
        assert_eq!(x.ends_with("\r\n"), y.ends_with("\r\n"));
    }
    // Round trip: parse(after) ticks == the report's passes for non-manual criteria.
    let passes = sync::verdicts(report).unwrap();
    let after = Catalog::parse(&s.text, "after.md".as_ref());
    let ticks: BTreeMap<String, bool> = after.items.iter().filter(|i| passes.contains_key(&i.id)).map(|i| (i.id.clone(), i.ticked)).collect();
    assert_eq!(ticks, passes);
    assert!(passes.values().any(|p| *p) && passes.values().any(|p| !*p), "the report should pass and fail something");
    // Manual criteria keep their box.
    let before = Catalog::parse(doc, "before.md".as_ref());
    for manual in report["results"].as_array().unwrap().iter().filter(|r| r["layer"] == "manual") {
        let id = manual["id"].as_str().unwrap();
        assert_eq!(before.item(id).unwrap().ticked, after.item(id).unwrap().ticked, "{id}");
    }
}

#[test]
fn sync_doc_changes_only_box_and_marker_bytes_and_round_trips() {
    let doc = std::fs::read_to_string(support::DOC).unwrap();
    let report = report();
    check(&doc, &report);
    // The same document with CRLF line endings keeps them.
    check(&doc.replace('\n', "\r\n"), &report);
}

#[test]
fn sync_doc_prints_a_diff_and_writes_only_with_write() {
    let dir = tempfile::tempdir().unwrap();
    let (doc, rep) = (dir.path().join("plan.md"), dir.path().join("report.json"));
    std::fs::copy(support::DOC, &doc).unwrap();
    std::fs::write(&rep, report().to_string()).unwrap();
    let before = std::fs::read(&doc).unwrap();
    let out = Command::cargo_bin("platform-acceptance").unwrap().args(["sync-doc", "--report"]).arg(&rep).arg("--doc").arg(&doc).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let diff = String::from_utf8(out.stdout).unwrap();
    assert!(diff.contains("-- [x] CLUSTER_ID set to \"2\"\n+- [ ] CLUSTER_ID set to \"2\"\n"), "{diff}");
    assert_eq!(std::fs::read(&doc).unwrap(), before, "no --write, no change");
    let out = Command::cargo_bin("platform-acceptance").unwrap().args(["sync-doc", "--write", "--report"]).arg(&rep).arg("--doc").arg(&doc).output().unwrap();
    assert!(out.status.success());
    let after = std::fs::read_to_string(&doc).unwrap();
    assert!(after.contains("- [ ] CLUSTER_ID set to \"2\"\n"));
    let out = Command::cargo_bin("platform-acceptance").unwrap().args(["sync-doc", "--report", "/nonexistent.json"]).arg("--doc").arg(&doc).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
