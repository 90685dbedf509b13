//! Small helpers shared by the epic modules, so each check reads like its criterion.

use std::sync::Arc;

use crate::check::{CheckContext, Finding, Outcome};
use crate::repo::{GitopsRepo, Rendered, Variables};

/// The repository or the outcome that ends the check (Skip without `--repo`).
pub fn repo(ctx: &CheckContext) -> Result<&GitopsRepo, Outcome> {
    ctx.repo()
}

/// The cluster's rendered manifests, or an Error outcome.
pub fn rendered(ctx: &CheckContext) -> Result<Arc<Rendered>, Outcome> {
    ctx.repo()?.render(&ctx.cluster).map_err(Outcome::error)
}

/// The cluster's variables, or an Error outcome.
pub fn variables(ctx: &CheckContext) -> Result<Variables, Outcome> {
    ctx.repo()?.variables(&ctx.cluster).map_err(Outcome::error)
}

/// Passes when every path (as the planning document writes it) exists in the repository.
pub fn files_exist(repo: &GitopsRepo, paths: &[&str]) -> Outcome {
    let findings: Vec<Finding> = paths
        .iter()
        .filter(|p| repo.resolve(p).is_none())
        .map(|p| Finding::new(*p, "file present in the repository", "missing"))
        .collect();
    Outcome::from_findings(findings, format!("present: {}", paths.join(", ")))
}

/// Passes when `path` holds at least one document of `kind` (any API version in `api_groups`).
pub fn file_has_kind(repo: &GitopsRepo, path: &str, kind: &str) -> Outcome {
    let docs = repo.documents_in(path);
    if repo.resolve(path).is_none() {
        return Outcome::fail(path, format!("file with a {kind}"), "missing");
    }
    match docs.iter().find(|d| d.kind() == kind) {
        Some(d) => Outcome::pass(format!("{path}: {} {}/{}", d.api_version(), kind, d.name())),
        None => Outcome::fail(
            path,
            format!("a {kind}"),
            format!("kinds [{}]", docs.iter().map(|d| d.kind()).collect::<Vec<_>>().join(", ")),
        ),
    }
}

/// Runs a check body written with `?` on `Result<_, Outcome>`.
pub fn outcome(body: impl FnOnce() -> Result<Outcome, Outcome>) -> Outcome {
    body().unwrap_or_else(|o| o)
}
