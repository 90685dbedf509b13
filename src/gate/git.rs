//! The planning document at a git revision, through the `git` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git -C <dir of doc> <args>`; stdout, or one line saying what git said.
fn git(doc: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let dir = doc_dir(doc);
    let out = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string();
        return Err(format!("git {} (in {}): {line}", args.join(" "), dir.display()));
    }
    Ok(out.stdout)
}

fn doc_dir(doc: &Path) -> PathBuf {
    match doc.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The document's text at `rev` (`git show REV:./file`, relative to the document's directory).
pub fn show(doc: &Path, rev: &str) -> Result<String, String> {
    let name = doc.file_name().ok_or_else(|| format!("{} names no file", doc.display()))?.to_string_lossy().into_owned();
    let bytes = git(doc, &["show", &format!("{rev}:./{name}")])?;
    String::from_utf8(bytes).map_err(|_| format!("{} at {rev} is not UTF-8 text", doc.display()))
}

/// The commit `rev` names, abbreviated to 12 hex digits (stable in a reproduce command).
pub fn commit(doc: &Path, rev: &str) -> Result<String, String> {
    let out = git(doc, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
        .map_err(|_| format!("{rev:?} is not a commit of the repository holding {}", doc.display()))?;
    let full = String::from_utf8_lossy(&out).trim().to_string();
    Ok(full.chars().take(12).collect())
}
