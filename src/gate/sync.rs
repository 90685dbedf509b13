//! `sync-doc`: the planning document made to say what a run's JSON report proved.
//!
//! A criterion passes when it passed on every cluster it ran on (at least one, none failed
//! or errored); it fails when any cluster failed or errored; criteria only skipped are left
//! as they are, and manual criteria are never touched. Passing boxes are ticked, failing
//! ones unticked. A story whose boxes are then all ticked gets ✅; a story marked ✅ with a
//! box left unticked gets 🔄. Only the byte between the brackets and the marker's bytes
//! change; the marker is written in the document's own (double) encoding, and line endings
//! and everything else stay as they are.

use std::collections::{BTreeMap, BTreeSet};

use encoding_rs::WINDOWS_1254;
use serde_json::Value;

use super::select::StatusClass;
use crate::catalog::{mojibake, normalize, Catalog, DOD_STORY};

/// One change `sync-doc` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// 1-based line.
    pub line: usize,
    /// `2.4.1 ticked: passed` or `story 2.4 → ✅: all its boxes are ticked`.
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct Synced {
    pub text: String,
    pub changes: Vec<Change>,
    /// Report entries that do not match the document (reworded since the run, gone).
    pub warnings: Vec<String>,
}

/// Pass/fail per criterion id from a `run --json` report; ids only skipped are absent.
pub fn verdicts(report: &Value) -> Result<BTreeMap<String, bool>, String> {
    let results = report.get("results").and_then(Value::as_array).ok_or("the report has no \"results\" array (give a `run --json` report)")?;
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    for r in results {
        let id = r.get("id").and_then(Value::as_str).ok_or("a result has no \"id\"")?;
        if r.get("layer").and_then(Value::as_str) == Some("manual") {
            continue;
        }
        match r.pointer("/outcome/verdict").and_then(Value::as_str) {
            Some("pass") => {
                out.entry(id.to_string()).or_insert(true);
            }
            Some("fail" | "error") => {
                out.insert(id.to_string(), false);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Applies `report` to the document `text`.
pub fn sync(text: &str, report: &Value) -> Result<Synced, String> {
    let verdicts = verdicts(report)?;
    let texts: BTreeMap<String, String> = report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r.get("criterion")?.as_str()?.to_string())))
        .collect();
    let catalog = Catalog::parse(text, "document".as_ref());
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    let mut changes = vec![];
    let mut warnings = vec![];
    let mut ticked: BTreeMap<String, bool> = catalog.items.iter().map(|i| (i.id.clone(), i.ticked)).collect();
    let mut touched: BTreeSet<String> = BTreeSet::new();

    for (id, pass) in &verdicts {
        let Some(item) = catalog.item(id) else {
            warnings.push(format!("{id}: not in the document; left alone"));
            continue;
        };
        if texts.get(id).is_some_and(|t| normalize(t) != normalize(&item.text)) {
            warnings.push(format!("{id}: the report's criterion differs from the document's ({:?}); left alone", item.text));
            continue;
        }
        touched.insert(item.story.clone());
        if item.ticked == *pass {
            continue;
        }
        let line = &mut lines[item.line - 1];
        let Some(at) = marker_offset(line) else {
            warnings.push(format!("{id}: no checkbox on line {}; left alone", item.line));
            continue;
        };
        line.replace_range(at..at + 1, if *pass { "x" } else { " " });
        ticked.insert(id.clone(), *pass);
        changes.push(Change { line: item.line, what: format!("{id} {}: {}", if *pass { "ticked" } else { "unticked" }, if *pass { "passed" } else { "failed" }) });
    }

    for story in catalog.stories.iter().filter(|s| touched.contains(&s.id) && s.id != DOD_STORY) {
        let all = catalog.items_of(&story.id).all(|i| ticked[&i.id]);
        let class = StatusClass::of(Some(story));
        let new = match (all, class) {
            (true, c) if c != StatusClass::Done => "✅",
            (false, StatusClass::Done) => "🔄",
            _ => continue,
        };
        let Some(n) = status_line(&lines, &story.id) else { continue };
        let Some((start, end)) = mark_span(&lines[n]) else {
            warnings.push(format!("story {}: status has no marker to replace; left alone", story.id));
            continue;
        };
        let old = lines[n][start..end].to_string();
        let written = if mojibake::repair(&old) != old { double_encode(new) } else { new.to_string() };
        lines[n].replace_range(start..end, &written);
        let why = if all { "all its boxes are ticked" } else { "a box is not ticked" };
        changes.push(Change { line: n + 1, what: format!("story {} {} → {new}: {why}", story.id, mojibake::repair(&old)) });
    }
    changes.sort_by_key(|c| c.line);
    Ok(Synced { text: lines.concat(), changes, warnings })
}

/// Byte offset of the character between the brackets of a task-list item.
fn marker_offset(line: &str) -> Option<usize> {
    let open = line.find('[')?;
    let inner = line.get(open + 1..open + 2)?;
    (line[..open].trim_start().len() <= 2 && matches!(inner, " " | "x" | "X") && line.get(open + 2..open + 3) == Some("]")).then_some(open + 1)
}

/// Index of the `**Status:**` line of story `id`.
fn status_line(lines: &[String], id: &str) -> Option<usize> {
    let heading = regex::Regex::new(&format!(r"^#+\s+Story\s+{}\s*:", regex::escape(id))).ok()?;
    let start = lines.iter().position(|l| heading.is_match(l))?;
    lines.iter().enumerate().skip(start + 1).take_while(|(_, l)| !l.starts_with('#')).find(|(_, l)| l.contains("**Status:**")).map(|(i, _)| i)
}

/// The marker's bytes after `**Status:**`: the run of non-ASCII characters.
fn mark_span(line: &str) -> Option<(usize, usize)> {
    let after = line.find("**Status:**")? + "**Status:**".len();
    let rest = &line[after..];
    let start = after + (rest.len() - rest.trim_start_matches(' ').len());
    let len: usize = line[start..].chars().take_while(|c| !c.is_ascii()).map(char::len_utf8).sum();
    (len > 0).then_some((start, start + len))
}

/// `✅` as the document's code page shows it (`âœ…`), dropping the bytes it loses.
fn double_encode(mark: &str) -> String {
    let bytes: Vec<u8> = mark.bytes().filter(|b| ![0x81, 0x8D, 0x8F, 0x90, 0x9D].contains(b)).collect();
    let (s, _, _) = WINDOWS_1254.decode(&bytes);
    if mojibake::repair(&s) == mark { s.into_owned() } else { mark.to_string() }
}

/// A unified diff (no context lines) of `before` → `after`, line by line.
pub fn diff(path: &str, before: &str, after: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.split_inclusive('\n').collect(), after.split_inclusive('\n').collect());
    let mut out = String::new();
    for (n, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            if out.is_empty() {
                out.push_str(&format!("--- a/{path}\n+++ b/{path}\n"));
            }
            let strip = |s: &str| s.trim_end_matches('\n').trim_end_matches('\r').to_string();
            out.push_str(&format!("@@ -{0},1 +{0},1 @@\n-{1}\n+{2}\n", n + 1, strip(x), strip(y)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC: &str = "### Story 1.1: A\r\n**Priority:** P0 | **Status:** \u{f0}\u{178}\u{201d}\u{b2} PENDING\r\n\r\n- [ ] one\r\n- [x] two\r\n\r\n### Story 1.2: B\n**Priority:** P1 | **Status:** \u{e2}\u{153}\u{2026} DONE\n\n- [x] three\n- [ ] four\n";

    fn result(id: &str, cluster: &str, text: &str, verdict: &str) -> Value {
        json!({"id": id, "cluster": cluster, "criterion": text, "layer": "repo", "outcome": {"verdict": verdict}})
    }

    #[test]
    fn a_criterion_passes_only_on_every_cluster_and_skips_are_left_alone() {
        let r = json!({"results": [
            result("1.1.1", "apps", "one", "pass"), result("1.1.1", "infra", "one", "fail"),
            result("1.1.2", "apps", "two", "pass"), result("1.1.2", "infra", "two", "skip"),
            result("1.2.2", "apps", "four", "skip"),
        ]});
        let v = verdicts(&r).unwrap();
        assert_eq!(v, BTreeMap::from([("1.1.1".to_string(), false), ("1.1.2".to_string(), true)]));
    }

    #[test]
    fn only_the_box_bytes_and_markers_change_in_the_documents_own_encoding() {
        let r = json!({"results": [result("1.1.1", "apps", "one", "pass"), result("1.1.2", "apps", "two", "pass"), result("1.2.1", "apps", "three", "fail")]});
        let s = sync(DOC, &r).unwrap();
        let expected = DOC
            .replace("- [ ] one", "- [x] one")
            .replace("\u{f0}\u{178}\u{201d}\u{b2} PENDING", "\u{e2}\u{153}\u{2026} PENDING")
            .replace("- [x] three", "- [ ] three")
            .replace("\u{e2}\u{153}\u{2026} DONE", "\u{11f}\u{178}\u{201d}\u{201e} DONE");
        assert_eq!(s.text, expected, "{:?}", s.changes);
        assert_eq!(s.changes.len(), 4, "{:?}", s.changes);
        assert!(s.text.contains("\r\n- [x] one\r\n"));
        let after = Catalog::parse(&s.text, "x".as_ref());
        assert_eq!(after.story("1.1").unwrap().status_mark.as_deref(), Some("✅"));
        assert_eq!(after.story("1.2").unwrap().status_mark.as_deref(), Some("🔄"));
    }

    #[test]
    fn nothing_to_change_changes_nothing_and_a_reworded_criterion_is_left_alone() {
        let r = json!({"results": [result("1.1.2", "apps", "two", "pass"), result("1.1.1", "apps", "one, as it was", "pass")]});
        let s = sync(DOC, &r).unwrap();
        assert_eq!(s.text, DOC);
        assert!(s.changes.is_empty());
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(diff("plan.md", DOC, &s.text).is_empty());
    }

    #[test]
    fn the_diff_names_each_changed_line() {
        let after = DOC.replace("- [ ] one", "- [x] one");
        assert_eq!(diff("plan.md", DOC, &after), "--- a/plan.md\n+++ b/plan.md\n@@ -4,1 +4,1 @@\n-- [ ] one\n+- [x] one\n");
    }
}
