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

// ---------------------------------------------------------------------------
// Component helpers (added with the EPIC-4..6 repository checks): base
// HelmReleases, the infrastructure/workload configs that include a base, and
// lookups in a cluster's rendered manifests. Fully qualified paths on purpose,
// so this block adds no `use` lines.

/// API group prefix of Flux HelmReleases (`v2`, and the older `v2beta2`/`v2beta1`).
pub const HELMRELEASE_GROUP: &str = "helm.toolkit.fluxcd.io/";

/// The chart a HelmRelease installs: `spec.chart.spec.chart`, else the `spec.chartRef` source name.
pub fn helmrelease_chart(value: &serde_json::Value) -> Option<&str> {
    crate::repo::str_at(value, "/spec/chart/spec/chart").or_else(|| crate::repo::str_at(value, "/spec/chartRef/name"))
}

/// Passes when `path` holds a Flux HelmRelease installing one of `charts`.
pub fn file_has_helmrelease(repo: &GitopsRepo, path: &str, charts: &[&str]) -> Outcome {
    let expected = format!("a HelmRelease ({HELMRELEASE_GROUP}*) of chart {}", charts.join(" or "));
    if repo.resolve(path).is_none() {
        return Outcome::fail(path, expected, "file missing");
    }
    let docs = repo.documents_in(path);
    let found = docs.iter().find(|d| {
        d.kind() == "HelmRelease"
            && d.api_version().starts_with(HELMRELEASE_GROUP)
            && helmrelease_chart(&d.value).is_some_and(|c| charts.contains(&c))
    });
    match found {
        Some(d) => Outcome::pass(format!(
            "{path}: {} HelmRelease/{} chart {}",
            d.api_version(),
            d.name(),
            helmrelease_chart(&d.value).unwrap_or_default()
        )),
        None => {
            let seen: Vec<String> = docs
                .iter()
                .map(|d| match helmrelease_chart(&d.value) {
                    Some(chart) => format!("{} {}/{} chart {chart}", d.api_version(), d.kind(), d.name()),
                    None => format!("{} {}/{}", d.api_version(), d.kind(), d.name()),
                })
                .collect();
            Outcome::fail(path, expected, format!("[{}]", seen.join(", ")))
        }
    }
}

/// Passes when the kustomization `config` lists the directory `base` among its `resources`
/// and every `kind` object defined under `base` is in the cluster's rendered manifests
/// (so Flux applies the base to `ctx.cluster` through that config).
pub fn config_renders_base(ctx: &CheckContext, config: &str, base: &str, kind: &str) -> Outcome {
    outcome(|| {
        let repo = repo(ctx)?;
        let Some(config_path) = repo.resolve(config) else {
            return Ok(Outcome::fail(config, format!("kustomization including {base}"), "file missing"));
        };
        let docs = repo.documents_in(config);
        let Some(kustomization) = docs
            .iter()
            .find(|d| d.kind() == "Kustomization" && d.api_version().starts_with("kustomize.config.k8s.io/"))
        else {
            let kinds: Vec<&str> = docs.iter().map(|d| d.kind()).collect();
            return Ok(Outcome::fail(config, "a kustomize Kustomization (kustomize.config.k8s.io)", format!("kinds [{}]", kinds.join(", "))));
        };
        let Some(base_dir) = repo.resolve(base) else {
            return Ok(Outcome::fail(base, "base directory present", "missing"));
        };
        let config_dir = config_path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let resources: Vec<&str> = kustomization
            .value
            .get("resources")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        if !resources.iter().any(|r| lexical_normalize(&config_dir.join(r)) == base_dir) {
            return Ok(Outcome::fail(
                config,
                format!("a resources entry pointing at {}", base_dir.display()),
                format!("resources {resources:?}"),
            ));
        }
        let names: Vec<&str> = repo.documents_under(&base_dir).filter(|d| d.kind() == kind).map(|d| d.name()).collect();
        if names.is_empty() {
            return Ok(Outcome::fail(base_dir.display().to_string(), format!("a {kind} in the base"), "none"));
        }
        let rendered = rendered(ctx)?;
        let mut findings = vec![];
        let mut evidence = vec![format!("{config} includes {}", base_dir.display())];
        for name in names {
            match rendered.objects.iter().find(|o| o.kind() == kind && o.name() == name && o.file.starts_with(&base_dir)) {
                Some(o) => evidence.push(format!("{} {} applied by {} on {}", o.api_version(), o.describe(), o.applied_by, ctx.cluster)),
                None => findings.push(Finding::new(
                    format!("{kind}/{name} ({})", base_dir.display()),
                    format!("rendered for cluster {}", ctx.cluster),
                    "not applied by any Flux Kustomization of the cluster",
                )),
            }
        }
        Ok(if findings.is_empty() { Outcome::Pass { evidence } } else { Outcome::Fail { findings } })
    })
}

/// `a/b/../c` → `a/c` (lexical; no filesystem access).
pub use crate::repo::normalize_path as lexical_normalize;

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

/// The rendered HelmReleases installing one of `charts`.
pub fn rendered_helmreleases<'a>(rendered: &'a Rendered, charts: &'a [&'a str]) -> impl Iterator<Item = &'a crate::repo::RenderedObject> + 'a {
    rendered
        .of_kind("HelmRelease")
        .filter(|o| o.api_version().starts_with(HELMRELEASE_GROUP) && helmrelease_chart(&o.value).is_some_and(|c| charts.contains(&c)))
}

/// The one rendered HelmRelease of one of `charts`, or a Fail naming the cluster.
pub fn rendered_helmrelease<'a>(rendered: &'a Rendered, charts: &'a [&'a str]) -> Result<&'a crate::repo::RenderedObject, Outcome> {
    rendered_helmreleases(rendered, charts).next().ok_or_else(|| {
        Outcome::fail(
            format!("HelmRelease of chart {}", charts.join(" or ")),
            format!("rendered for cluster {}", rendered.cluster),
            "not rendered",
        )
    })
}

// ---------------------------------------------------------------------------
// Live helpers (added with the EPIC-1..3 cluster checks).

/// A disposable namespace with the SAME name on every given cluster (cross-cluster
/// criteria such as Cilium global services need same-named namespaces): created with
/// [`crate::checks::kit::disposable::namespace`] on the first cluster, then under that name
/// and label on the others; every one is deleted by the runner's cleanup.
pub async fn disposable_namespace_everywhere(
    ctx: &CheckContext,
    clients: &[(String, kube::Client)],
    purpose: &str,
) -> Result<String, Outcome> {
    let Some(((_, first), rest)) = clients.split_first() else {
        return Err(Outcome::skip("no cluster target"));
    };
    let name = crate::checks::kit::disposable::namespace(ctx, first, purpose).await?;
    for (cluster, client) in rest {
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
        let ns = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {crate::checks::kit::disposable::LABEL: "true"}}
        }))
        .map_err(Outcome::error)?;
        api.create(&kube::api::PostParams::default(), &ns)
            .await
            .map_err(|e| crate::cluster::api_error(&format!("create namespace {name} on cluster {cluster}"), e))?;
        let (api, n) = (api.clone(), name.clone());
        ctx.cleanup.defer(async move {
            let _ = api.delete(&n, &kube::api::DeleteParams::default()).await;
        });
    }
    Ok(name)
}
