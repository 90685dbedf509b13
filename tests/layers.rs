//! The crate's modules form one-way layers:
//!
//! outcome, random, errline → net, catalog → repo, cluster → check → checks::kit → checks::epicNN,
//! checks::dod → checks (the list) → plan → runner → session → report → sim → cli.
//!
//! This test reads every `crate::` path in `src/` (outside comments) and fails on an
//! arrow from a lower layer to a higher one, between two modules of the same layer (two
//! epic modules, repo and cluster), or on `crate::sim` anywhere but the CLI and the
//! simulation itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layer of a module path such as `checks::epic07` or `repo`.
fn rank(module: &str) -> Option<u32> {
    let top = module.split("::").next().unwrap_or("");
    Some(match top {
        "outcome" | "random" | "errline" => 0,
        "net" | "catalog" => 1,
        "repo" | "cluster" => 2,
        "check" => 3,
        "checks" => match module.split("::").nth(1) {
            Some("kit") => 4,
            Some(m) if m.starts_with("epic") || m == "dod" => 5,
            _ => 6,
        },
        "plan" => 7,
        "runner" => 8,
        "session" => 9,
        "report" => 10,
        "gate" => 11,
        "sim" => 12,
        "cli" => 13,
        _ => return None,
    })
}

/// The module a source file belongs to, as a path: `src/checks/epic07/live.rs` → `checks::epic07`.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix("src").unwrap();
    let parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).filter(|p| *p != "mod").collect();
    match parts.as_slice() {
        ["checks", second, ..] => format!("checks::{second}"),
        [first, ..] => first.to_string(),
        [] => String::new(),
    }
}

/// Same layer, same unit: a module may always use itself (and `checks::kit` its own parts).
fn same_unit(from: &str, to: &str) -> bool {
    from == to
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::a::b` paths used in code (comment lines skipped), as `a::b` or `a`; also the
/// members of `use crate::{a, b::c}` groups.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let path = regex::Regex::new(r"crate::([a-z_0-9]+)(?:::([a-z_0-9]+))?").unwrap();
    let group = regex::Regex::new(r"crate::\{([^}]*)\}").unwrap();
    let mut out = BTreeSet::new();
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    for c in path.captures_iter(&code) {
        let first = c[1].to_string();
        match c.get(2) {
            Some(second) if first == "checks" => out.insert(format!("checks::{}", second.as_str())),
            _ => out.insert(first),
        };
    }
    for g in group.captures_iter(&code) {
        for member in g[1].split(',') {
            let mut segs = member.trim().split("::");
            let first = segs.next().unwrap_or("").trim().to_string();
            if first.is_empty() {
                continue;
            }
            match segs.next() {
                Some(second) if first == "checks" => out.insert(format!("checks::{}", second.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'))),
                _ => out.insert(first),
            };
        }
    }
    out
}

#[test]
fn imports_point_down_only() {
    let mut files = vec![];
    rust_files(Path::new("src"), &mut files);
    files.sort();
    let mut violations = vec![];
    let sibling = regex::Regex::new(r"super::super::(epic\d\d|dod|kit)\b").unwrap();
    for file in &files {
        let from = module_of(file);
        let Some(from_rank) = rank(&from) else { continue }; // lib.rs, main.rs
        let text = std::fs::read_to_string(file).unwrap();
        if from.starts_with("checks::epic") && sibling.is_match(&text) {
            violations.push(format!("{}: reaches a sibling module through super::super::", file.display()));
        }
        for to in crate_paths(&text) {
            let to_module = if to == "checks" { "checks".to_string() } else { to.clone() };
            let Some(to_rank) = rank(&to_module) else { continue };
            if same_unit(&from, &to_module) {
                continue;
            }
            // The list in checks/mod.rs and the kit are one unit each with their parts.
            if from.starts_with("checks::kit") && to_module == "checks::kit" {
                continue;
            }
            if to_rank > from_rank || (to_rank == from_rank && to_module.split("::").next() != from.split("::").next()) || (to_rank == from_rank && to_rank == 5) {
                violations.push(format!("{} ({from}, layer {from_rank}) uses crate::{to} (layer {to_rank})", file.display()));
            }
            if to_module == "sim" && !(from == "sim" || from == "cli") {
                violations.push(format!("{} ({from}) uses crate::sim: only the CLI and tests may", file.display()));
            }
        }
    }
    assert!(violations.is_empty(), "layer violations:\n{}", violations.join("\n"));
}

#[test]
fn the_test_sees_a_violation() {
    let paths = crate_paths("use crate::runner::UnitResult;\n// crate::sim::data in a comment\nuse crate::{plan::Unit, checks::epic02::x};");
    assert_eq!(paths, BTreeSet::from(["runner".to_string(), "plan".into(), "checks::epic02".into()]));
    assert!(rank("runner").unwrap() > rank("check").unwrap());
    assert_eq!(module_of(Path::new("src/checks/epic07/live.rs")), "checks::epic07");
    assert_eq!(module_of(Path::new("src/checks/kit/helm.rs")), "checks::kit");
    assert_eq!(rank("checks::epic07"), rank("checks::dod"));
}
