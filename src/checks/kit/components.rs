//! "Manifests created", "base HelmRelease created", "config created": the component
//! shapes the planning document repeats across stories.

use std::path::Path;

use serde_json::Value;

use super::flux::{cluster_reach, kustomize_entries, normalize, reach_from};
use super::helm::{chart_name, chart_of, chart_source};
use super::rendered::{from_file, rendered, repo, resolve_dir, squash};
use crate::check::{CheckContext, CheckResult, Finding, Outcome};
use crate::repo::{scalar_text, GitopsRepo, Rendered};

/// Passes when every file exists (paths as the plan writes them).
pub fn files_present(repo: &GitopsRepo, paths: &[&str]) -> Outcome {
    super::rendered::files_exist(repo, paths)
}

/// A HelmRelease of `token` (name or chart) defined in `file` and rendered on `cluster`
/// with a chart source that exists there.
pub fn base_helmrelease(repo: &GitopsRepo, cluster: &str, file: &str, token: &str) -> Outcome {
    if repo.resolve(file).is_none() {
        return super::layout::missing_outcome(repo, file, file, format!("a HelmRelease file for {token}"), "missing");
    }
    let docs = repo.documents_in(file);
    if !docs.iter().any(|d| d.kind() == "HelmRelease" && d.api_version().starts_with("helm.toolkit.fluxcd.io/")) {
        let kinds: Vec<String> = docs.iter().map(|d| format!("{} {}", d.api_version(), d.kind())).collect();
        return Outcome::fail(file, "a HelmRelease (helm.toolkit.fluxcd.io)", format!("[{}]", kinds.join(", ")));
    }
    let r = match repo.render(cluster) {
        Ok(r) => r,
        Err(e) => return Outcome::error(e),
    };
    let hrs: Vec<_> = from_file(repo, &r, file).into_iter().filter(|o| o.kind() == "HelmRelease").collect();
    if hrs.is_empty() {
        let path = repo.resolve(file).unwrap_or_default();
        return Outcome::fail(file, format!("its HelmRelease rendered on cluster {cluster}"), super::flux::unreached(repo, cluster, &path));
    }
    let t = squash(token);
    let Some(hr) = hrs.iter().find(|h| squash(h.name()).contains(&t) || squash(&chart_name(h)).contains(&t)) else {
        let seen: Vec<String> = hrs.iter().map(|h| format!("{} (chart {})", h.describe(), chart_name(h))).collect();
        return Outcome::fail(file, format!("a HelmRelease of {token}"), seen.join(", "));
    };
    match chart_source(&r, hr) {
        Ok(ev) => Outcome::pass(format!("{ev}, rendered on {cluster} by {}", hr.applied_by)),
        Err(f) => Outcome::Fail { findings: vec![f] },
    }
}

/// What a component configuration must bring in.
pub enum Provides<'a> {
    /// The shared base directory (`bases/velero`) and its HelmRelease(s).
    Base(&'a str),
    /// A HelmRelease of this chart (`CloudNativePG` ~ `cloudnative-pg`).
    Chart(&'a str),
}

/// A component's kustomization exists, is built by one of the cluster's Flux
/// Kustomizations, and brings in `provides`, rendered on the cluster.
pub fn component_config(repo: &GitopsRepo, cluster: &str, config: &str, provides: Provides<'_>) -> Outcome {
    let Some(file) = repo.resolve(config) else {
        return super::layout::missing_outcome(repo, config, config, "a kustomization.yaml", "missing");
    };
    if !repo.documents_in(config).iter().any(|d| d.kind() == "Kustomization" && d.api_version().starts_with("kustomize.config.k8s.io/")) {
        return Outcome::fail(config, "a kustomize Kustomization (kustomize.config.k8s.io)", "no such document");
    }
    let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let reach = match cluster_reach(repo, cluster) {
        Ok(r) => r,
        Err(o) => return o,
    };
    if !reach.dirs.contains(&dir) {
        return Outcome::fail(dir.display().to_string(), format!("built by a Flux Kustomization of cluster {cluster}"), super::flux::unreached(repo, cluster, &dir));
    }
    let own = reach_from(repo, [dir.clone()]);
    let r = match repo.render(cluster) {
        Ok(r) => r,
        Err(e) => return Outcome::error(e),
    };
    let entries: Vec<String> = kustomize_entries(repo, &dir).into_iter().map(|(e, _)| e).collect();
    match provides {
        Provides::Base(base) => {
            let Some(base_dir) = repo.resolve(base) else {
                return Outcome::fail(base, "the shared base directory", "missing");
            };
            if !own.dirs.contains(&base_dir) {
                return Outcome::fail(config, format!("resources referencing {}", base_dir.display()), format!("resources {entries:?}"));
            }
            let hrs: Vec<_> = r.objects.iter().filter(|o| o.kind() == "HelmRelease" && o.file.starts_with(&base_dir)).collect();
            let Some(hr) = hrs.first() else {
                return Outcome::fail(base_dir.display().to_string(), format!("a HelmRelease rendered on cluster {cluster}"), "none");
            };
            Outcome::pass(format!("{config} (built by {}) references {} → {} rendered on {cluster}", hr.applied_by, base_dir.display(), hr.describe()))
        }
        Provides::Chart(chart) => {
            let t = squash(chart);
            let hr = r.objects.iter().find(|o| o.kind() == "HelmRelease" && own.files.contains(&o.file) && squash(&chart_name(o)) == t);
            match hr {
                None => Outcome::fail(config, format!("builds a HelmRelease of the {chart} chart, rendered on cluster {cluster}"), format!("resources {entries:?} build none")),
                Some(hr) => match chart_source(&r, hr) {
                    Ok(ev) => Outcome::pass(format!("{config} → {ev}, rendered on {cluster} by {}", hr.applied_by)),
                    Err(f) => Outcome::Fail { findings: vec![f] },
                },
            }
        }
    }
}

/// Passes when the kustomization `config` lists the directory `base` among its `resources`
/// and every `kind` object defined under `base` is in the cluster's rendered manifests
/// (so Flux applies the base to `ctx.cluster` through that config).
pub fn config_renders_base(ctx: &CheckContext, config: &str, base: &str, kind: &str) -> CheckResult<Outcome> {
    let repo = repo(ctx)?;
    let Some(config_path) = repo.resolve(config) else {
        return Ok(super::layout::missing_outcome(repo, config, config, format!("kustomization including {base}"), "file missing"));
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
    if !resources.iter().any(|r| normalize(&config_dir.join(r)) == base_dir) {
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
}

/// A base directory holds a HelmRelease (helm.toolkit.fluxcd.io) of `chart`.
pub fn base_dir_helmrelease(repo: &GitopsRepo, dir: &str, chart: &str) -> Outcome {
    let path = match resolve_dir(repo, dir) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let docs: Vec<_> = repo.documents_under(&path).collect();
    let releases: Vec<_> = docs.iter().filter(|d| d.kind() == "HelmRelease").collect();
    if releases.is_empty() {
        let kinds: Vec<String> = docs.iter().map(|d| d.describe()).collect();
        return Outcome::fail(
            format!("{}/", path.display()),
            "a HelmRelease (helm.toolkit.fluxcd.io)",
            if kinds.is_empty() { "no manifests".to_string() } else { kinds.join(", ") },
        );
    }
    match releases.iter().find(|d| d.api_version().starts_with("helm.toolkit.fluxcd.io/") && chart_of(&d.value) == Some(chart)) {
        Some(d) => Outcome::pass(format!("{}: {} HelmRelease/{} chart {chart}", d.file.display(), d.api_version(), d.name())),
        None => Outcome::Fail {
            findings: releases
                .iter()
                .map(|d| Finding::new(d.describe(), format!("helm.toolkit.fluxcd.io HelmRelease of chart {chart}"), format!("{} chart {:?}", d.api_version(), chart_of(&d.value).unwrap_or_default())))
                .collect(),
        },
    }
}

/// A component directory of the infrastructure layer: its kustomization pulls the
/// shared base, the files the story lists exist and are part of the build, and the
/// cluster renders the component (base included) without dangling paths.
pub fn infrastructure_config(repo: &GitopsRepo, r: &Rendered, dir: &str, base: &str, files: &[&str]) -> Outcome {
    let path = match resolve_dir(repo, dir) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let mut findings = vec![];
    for f in files {
        if !repo.root.join(path.join(f)).is_file() {
            findings.push(Finding::new(path.join(f).display().to_string(), "file present in the repository", "missing"));
        }
    }
    let kustomization = path.join("kustomization.yaml");
    let base_dir = repo.resolve(base).unwrap_or_else(|| repo.kubernetes_dir.join(base));
    if let Some(k) = repo.documents.iter().find(|d| d.file == kustomization) {
        let resources: Vec<String> = k.value.get("resources").and_then(Value::as_array).into_iter().flatten().map(scalar_text).collect();
        if !resources.iter().any(|e| normalize(&path.join(e)) == base_dir) {
            findings.push(Finding::new(format!("{} resources", kustomization.display()), format!("the shared base {}", base_dir.display()), format!("{resources:?}")));
        }
    }
    for p in r.problems.iter().filter(|p| p.category == "dangling-path" && p.finding.object.starts_with(&path.display().to_string())) {
        findings.push(p.finding.clone());
    }
    let rendered_here = r.objects.iter().filter(|o| o.file.starts_with(&path)).count();
    let rendered_base = r.objects.iter().filter(|o| o.file.starts_with(&base_dir)).count();
    let reached = match super::flux::reachable_dirs(repo, &r.cluster) {
        Ok(dirs) => dirs.contains(&path),
        Err(o) => return o,
    };
    if !reached {
        findings.push(Finding::new(
            format!("{}/", path.display()),
            format!("rendered into cluster {} by a Flux Kustomization", r.cluster),
            super::flux::unreached(repo, &r.cluster, &path),
        ));
    } else {
        for f in files.iter().filter(|f| !f.starts_with("kustomization.")) {
            let file = path.join(f);
            if repo.root.join(&file).is_file() && !r.objects.iter().any(|o| o.file == file) {
                findings.push(Finding::new(file.display().to_string(), format!("rendered into cluster {}", r.cluster), format!("not listed in {}", kustomization.display())));
            }
        }
        if rendered_base == 0 {
            findings.push(Finding::new(base_dir.display().to_string(), format!("rendered into cluster {} through {}", r.cluster, path.display()), "not rendered"));
        }
    }
    Outcome::from_findings(findings, format!("{}: {rendered_here} objects + base {} ({rendered_base}) rendered for {}", path.display(), base_dir.display(), r.cluster))
}
