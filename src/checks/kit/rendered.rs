//! What the repository renders for a cluster: the repository, variables and rendered
//! objects of the evaluated cluster, lookups by kind and API group, and files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::check::{CheckContext, CheckResult, Ctx, Finding, Outcome};
use crate::repo::{GitopsRepo, Rendered, RenderedObject, Variables};

/// The API group of an object (`postgresql.cnpg.io` of `postgresql.cnpg.io/v1`, `` for `v1`).
pub fn group(o: &RenderedObject) -> &str {
    o.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Objects of `kind` in API group `group` (any version).
pub fn objects<'a>(r: &'a Rendered, grp: &str, kind: &str) -> Vec<&'a RenderedObject> {
    r.objects.iter().filter(|o| o.kind() == kind && group(o) == grp).collect()
}

/// `Kind/name` in `namespace`.
pub fn find<'a>(r: &'a Rendered, grp: &str, kind: &str, name: &str, ns: Option<&str>) -> Option<&'a RenderedObject> {
    objects(r, grp, kind).into_iter().find(|o| o.name() == name && (ns.is_none() || o.namespace() == ns))
}

/// Every cluster's rendering, in cluster order.
pub fn renders(repo: &GitopsRepo) -> Result<Vec<(String, Arc<Rendered>)>, Outcome> {
    repo.clusters().iter().map(|c| repo.render(c).map(|r| (c.clone(), r)).map_err(Outcome::error)).collect()
}

/// The clusters a check looks at: the evaluated one, or every cluster for a once-only check.
pub fn scope(ctx: &CheckContext, repo: &GitopsRepo) -> Vec<String> {
    if repo.clusters().contains(&ctx.cluster) { vec![ctx.cluster.clone()] } else { repo.clusters().to_vec() }
}

/// Rendered objects that come from one file (as the planning document writes the path).
pub fn from_file<'a>(repo: &GitopsRepo, r: &'a Rendered, doc_path: &str) -> Vec<&'a RenderedObject> {
    let Some(path) = repo.resolve(doc_path) else { return vec![] };
    r.objects.iter().filter(|o| o.file == path).collect()
}

/// A key that may contain `/` or `.` (annotation names), under an object pointer.
pub fn key_at<'a>(v: &'a Value, pointer: &str, key: &str) -> Option<&'a Value> {
    v.pointer(pointer).and_then(|m| m.get(key))
}

/// Letters and digits only, lower-cased: `CloudNativePG` ~ `cloudnative-pg`.
pub fn squash(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// `StorageClass` objects by name, on one rendering.
pub fn storage_classes(r: &Rendered) -> BTreeMap<String, String> {
    objects(r, "storage.k8s.io", "StorageClass").into_iter().map(|s| (s.name().to_string(), s.str("/provisioner").unwrap_or("").to_string())).collect()
}

/// Parses YAML (or JSON) written inside an ExternalSecret template: the `{{ ... }}`
/// expressions are replaced by a placeholder first, as they are not YAML.
pub fn parse_templated(text: &str) -> Option<Value> {
    static EXPR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| regex::Regex::new(r"\{\{.*?\}\}").expect("static regex"));
    serde_yaml_ng::from_str(&EXPR.replace_all(text, "TEMPLATED")).ok()
}

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
        .map(|p| super::layout::missing(repo, p, Finding::new(*p, "file present in the repository", "missing")))
        .collect();
    Outcome::from_findings(findings, format!("present: {}", paths.join(", ")))
}

/// The rendered object of `kind` named `name`, or a Fail saying what was rendered instead.
pub fn rendered_object<'a>(rendered: &'a Rendered, kind: &'a str, name: &str) -> Result<&'a crate::repo::RenderedObject, Outcome> {
    rendered.of_kind(kind).find(|o| o.name() == name).ok_or_else(|| {
        let names: Vec<&str> = rendered.of_kind(kind).map(|o| o.name()).collect();
        Outcome::fail(
            format!("{kind}/{name}"),
            format!("rendered for cluster {}", rendered.cluster),
            format!("not rendered ({kind} objects rendered: [{}])", names.join(", ")),
        )
    })
}

/// A directory as the planning document writes it, resolved, or a Fail saying it is missing.
pub fn resolve_dir(repo: &GitopsRepo, doc_path: &str) -> CheckResult<PathBuf> {
    repo.resolve(doc_path)
        .filter(|p| repo.root.join(p).is_dir())
        .ok_or_else(|| super::layout::missing_outcome(repo, doc_path, doc_path, "directory present in the repository", "missing"))
}

/// Every other cluster's variables (clusters without variables are skipped).
pub fn other_variables(repo: &GitopsRepo, cluster: &str) -> CheckResult<Vec<(String, Variables)>> {
    Ok(repo.clusters().iter().filter(|c| *c != cluster).filter_map(|c| repo.variables(c).ok().map(|v| (c.clone(), v))).collect())
}

/// The repository variable `name` of ctx.cluster, if a repository is given and defines it.
pub fn variable(ctx: &Ctx, name: &str) -> Option<String> {
    ctx.repo().ok()?.variables(&ctx.cluster).ok()?.get(name).map(str::to_string)
}
