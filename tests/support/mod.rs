//! Shared helpers for integration tests: fixture copies, broken variants, runs,
//! report assertions ([`ReportExt`]) and the simulation fixture ([`sim::SimFixture`]).
#![allow(dead_code)]

pub mod oracle;
pub mod report;
pub mod sim;

#[allow(unused_imports)]
pub use report::ReportExt;

use std::path::{Path, PathBuf};

use platform_acceptance::check::Layer;
use platform_acceptance::plan::Selector;
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;

pub const DOC: &str = "fixtures/multi-cluster-epics.md";
pub const GITOPS: &str = "fixtures/gitops";
/// The same platform in the community layout (per-component `ks.yaml` + `app/`).
pub const GITOPS_COMMUNITY: &str = "fixtures/gitops-community";

/// A git repository holding the fixture document as `plan.md` in two commits: as it is, then
/// with each `(from, to)` edit applied once (the shape of a pull request to the document).
pub fn doc_repo(edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("plan.md");
    std::fs::copy(DOC, &doc).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").arg("-C").arg(dir.path()).args(["-c", "user.name=t", "-c", "user.email=t@example.org"]).args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"]);
    git(&["add", "plan.md"]);
    git(&["commit", "-qm", "base"]);
    let mut text = std::fs::read_to_string(&doc).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "plan lacks {from:?}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&doc, text).unwrap();
    git(&["commit", "-qam", "head"]);
    dir
}

/// A private, writable copy of fixtures/gitops for deriving a broken variant.
pub struct RepoCopy {
    pub dir: tempfile::TempDir,
}

impl RepoCopy {
    pub fn new() -> Self {
        Self::of(GITOPS)
    }
    /// A writable copy of another fixture repository.
    pub fn of(fixture: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(Path::new(fixture), dir.path());
        RepoCopy { dir }
    }
    /// Makes the copy a git repository with everything committed (what dod.3 expects).
    pub fn commit_all(&self) {
        for args in [&["init", "-q"][..], &["add", "-A"], &["commit", "-q", "-m", "fixture"]] {
            git(self.path(), args);
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.file(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    /// Replaces exactly-present text in a file (panics if absent, so a test cannot silently do nothing).
    pub fn replace(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }
    pub fn remove(&self, rel: &str) {
        let p = self.file(rel);
        if p.is_dir() { std::fs::remove_dir_all(p).unwrap() } else { std::fs::remove_file(p).unwrap_or_else(|e| panic!("remove {rel}: {e}")) }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Runs the repository layer (every mapped repo check) against `repo`.
pub fn run_repo_layer(repo: &Path) -> RunReport {
    let session = Session::new(DOC, Some(repo)).expect("session");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(session.run(&[Selector::Layer(Layer::Repo)], &[], RunConfig::default()))
}

/// Validates a JUnit file against the Jenkins xUnit junit-10.xsd with xmllint (libxml2-utils).
pub fn assert_junit_valid(path: &Path) {
    let xsd = Path::new("tests/data/junit-10.xsd");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd)
        .arg(path)
        .output()
        .expect("xmllint missing: apt-get install libxml2-utils");
    assert!(out.status.success(), "JUnit does not validate: {}", String::from_utf8_lossy(&out.stderr));
}

/// `git ARGS` in `dir` with a fixed identity, unsigned, branch `main`, ignoring the caller's
/// GIT_DIR/GIT_WORK_TREE/GIT_INDEX_FILE; fails the test with git's stderr.
pub fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=acceptance", "-c", "user.email=acceptance@example.invalid", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}
