//! EPIC-3 repository layer: the Flux directory structure (shared bases, infrastructure
//! and workloads layers, per-cluster entry points and their variables) and each
//! cluster's pre-created `gotk-sync.yaml`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{str_at, GitopsRepo, Rendered};

// "Directory Structure Created" of Story 3.1.
const TREE_BASES: [&str; 12] = [
    "cilium",
    "cert-manager",
    "coredns",
    "external-secrets",
    "fluent-bit",
    "flux",
    "openebs",
    "rook-ceph-cluster",
    "rook-ceph-operator",
    "spegel",
    "victoria-logs",
    "victoria-metrics-stack",
];
const TREE_INFRASTRUCTURE: [&str; 9] = [
    "gitops/flux",
    "networking/cilium",
    "networking/coredns",
    "networking/spegel",
    "security/cert-manager",
    "security/external-secrets",
    "security/rbac",
    "storage/openebs",
    "storage/rook-ceph",
];
const TREE_WORKLOADS: [&str; 7] = [
    "platform/databases/cloudnative-pg",
    "platform/databases/dragonfly",
    "platform/mesh-demo",
    "platform/observability/fluent-bit",
    "platform/observability/victoria-logs",
    "platform/observability/victoria-metrics",
    "tenants/gitlab",
];
const TREE_CLUSTER_FILES: [&str; 5] =
    ["flux-system/gotk-sync.yaml", "flux-system/kustomization.yaml", "infrastructure.yaml", "workloads.yaml", "kustomization.yaml"];
/// The clusters the criterion "`clusters/infra/` and `clusters/apps/` created ..." names.
const NAMED_CLUSTERS: [&str; 2] = ["infra", "apps"];

const KUSTOMIZE_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

fn k8s(repo: &GitopsRepo, rel: &str) -> PathBuf {
    repo.kubernetes_dir.join(rel)
}

/// Every cluster's rendering (a cluster that cannot be rendered is an error).
fn all_rendered(repo: &GitopsRepo) -> CheckResult<Vec<Arc<Rendered>>> {
    repo.clusters().iter().map(|c| repo.render(c).map_err(Outcome::error)).collect()
}

pub(super) async fn flux_structure_shared_base(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let mut findings = vec![];
    for top in ["bases", "infrastructure", "workloads", "clusters"] {
        let dir = k8s(repo, top);
        if !repo.root.join(&dir).is_dir() {
            findings.push(Finding::new(format!("{}/", dir.display()), "directory present", "missing"));
        } else if repo.files_under(&dir).next().is_none() {
            findings.push(Finding::new(format!("{}/", dir.display()), "directory with content", "empty"));
        }
    }
    // The old approach kept one copy per cluster: kubernetes/<cluster>/base/.
    for c in repo.clusters() {
        let old = k8s(repo, &format!("{c}/base"));
        if repo.root.join(&old).is_dir() {
            findings.push(Finding::new(format!("{}/", old.display()), "no per-cluster copy (shared bases + infrastructure instead)", "present"));
        }
    }
    // Every cluster applies the shared layers; only the self-sync points into clusters/.
    let shared = [k8s(repo, "infrastructure"), k8s(repo, "workloads")];
    for c in repo.clusters() {
        for k in repo.flux_kustomizations(c).map_err(Outcome::error)? {
            let path = normalize(Path::new(k.path.trim_start_matches("./")));
            if path == repo.cluster_dir(c) || shared.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            findings.push(Finding::new(
                format!("{}: Kustomization {} spec.path", k.file.display(), k.name),
                "a path in the shared layers kubernetes/infrastructure or kubernetes/workloads",
                format!("{:?}", k.path),
            ));
        }
    }
    let bases = k8s(repo, "bases");
    let referencing = repo
        .files
        .iter()
        .filter(|f| KUSTOMIZE_FILES.iter().any(|k| f.file_name().is_some_and(|n| n == *k)))
        .filter(|f| !f.starts_with(&bases))
        .filter(|f| kustomize_resources(repo, f.parent().unwrap_or(Path::new(""))).is_some_and(|r| r.iter().any(|p| p.starts_with(&bases))))
        .count();
    if referencing == 0 {
        findings.push(Finding::new(format!("{}/", bases.display()), "referenced by component kustomizations (shared-base pattern)", "no kustomization references a base"));
    }
    Ok(Outcome::from_findings(findings, format!("bases/ infrastructure/ workloads/ clusters/ present; {referencing} component kustomizations pull a shared base")))
}

pub(super) async fn bases_with_helmreleases(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let bases = resolve_dir(repo, "kubernetes/bases/")?;
    let mut findings = vec![];
    for b in TREE_BASES {
        let dir = bases.join(b);
        if !repo.root.join(&dir).is_dir() {
            findings.push(Finding::new(format!("{}/", dir.display()), "base directory present", "missing"));
        } else if kustomize_resources(repo, &dir).is_none() {
            findings.push(Finding::new(format!("{}/kustomization.yaml", dir.display()), "a kustomization listing the base", "missing"));
        }
    }
    let releases: Vec<_> = repo.documents_under(&bases).filter(|d| d.kind() == "HelmRelease").collect();
    if releases.is_empty() {
        findings.push(Finding::new(format!("{}/", bases.display()), "shared HelmReleases", "none"));
    }
    for hr in &releases {
        if !hr.api_version().starts_with("helm.toolkit.fluxcd.io/") {
            findings.push(Finding::new(hr.describe(), "apiVersion helm.toolkit.fluxcd.io/v2", hr.api_version()));
            continue;
        }
        let source = hr.value.pointer("/spec/chart/spec/sourceRef").or_else(|| hr.value.pointer("/spec/chartRef"));
        let Some(source) = source else {
            findings.push(Finding::new(hr.describe(), "spec.chart.spec.sourceRef or spec.chartRef", "neither"));
            continue;
        };
        let kind = str_at(source, "/kind").unwrap_or("");
        let name = str_at(source, "/name").unwrap_or("");
        let ns = str_at(source, "/namespace").or_else(|| str_at(&hr.value, "/metadata/namespace"));
        let defined = repo.documents.iter().any(|d| {
            d.kind() == kind && d.name() == name && d.api_version().starts_with("source.toolkit.fluxcd.io/") && (ns.is_none() || str_at(&d.value, "/metadata/namespace") == ns)
        });
        if !defined {
            findings.push(Finding::new(format!("{} chart source", hr.describe()), format!("{kind} {}/{name} defined in the repository", ns.unwrap_or("-")), "not defined"));
        }
    }
    Ok(Outcome::from_findings(findings, format!("{}: {} base directories, {} HelmReleases with defined chart sources", bases.display(), TREE_BASES.len(), releases.len())))
}

/// Listed component directories of a layer exist, have a kustomization, and some cluster renders them.
fn layer_created(repo: &GitopsRepo, layer: &str, dirs: &[&str]) -> CheckResult<Outcome> {
    let root = resolve_dir(repo, &format!("kubernetes/{layer}/"))?;
    let reached: Vec<_> = repo.clusters().iter().map(|c| reachable_dirs(repo, c)).collect::<CheckResult<_>>()?;
    let mut findings = vec![];
    for d in dirs {
        let dir = root.join(d);
        if !repo.root.join(&dir).is_dir() {
            findings.push(Finding::new(format!("{}/", dir.display()), "directory present", "missing"));
            continue;
        }
        if kustomize_resources(repo, &dir).is_none() {
            findings.push(Finding::new(format!("{}/kustomization.yaml", dir.display()), "a kustomization for the component", "missing"));
        }
        if !reached.iter().any(|dirs| dirs.iter().any(|d| d.starts_with(&dir))) {
            findings.push(Finding::new(
                format!("{}/", dir.display()),
                format!("rendered into a cluster ({})", repo.clusters().join(", ")),
                "not reachable from any cluster's Flux Kustomizations",
            ));
        }
    }
    Ok(Outcome::from_findings(findings, format!("{}: {} components present and rendered", root.display(), dirs.len())))
}

pub(super) async fn infrastructure_layer_created(ctx: Ctx) -> CheckResult<Outcome> {
    layer_created(repo(&ctx)?, "infrastructure", &TREE_INFRASTRUCTURE)
}

pub(super) async fn workloads_layer_created(ctx: Ctx) -> CheckResult<Outcome> {
    layer_created(repo(&ctx)?, "workloads", &TREE_WORKLOADS)
}

pub(super) async fn cluster_entry_points(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let mut findings = vec![];
    for c in NAMED_CLUSTERS {
        let dir = repo.cluster_dir(c);
        if !repo.root.join(&dir).is_dir() {
            findings.push(Finding::new(format!("{}/", dir.display()), "cluster entry directory", "missing"));
            continue;
        }
        for f in TREE_CLUSTER_FILES {
            if !repo.root.join(dir.join(f)).is_file() {
                findings.push(Finding::new(dir.join(f).display().to_string(), "file present in the repository", "missing"));
            }
        }
        let listed = kustomize_resources(repo, &dir).unwrap_or_default();
        for entry in ["flux-system", "infrastructure.yaml", "workloads.yaml"] {
            let p = dir.join(entry);
            if repo.root.join(&p).exists() && !listed.contains(&p) {
                findings.push(Finding::new(
                    format!("{}/kustomization.yaml resources", dir.display()),
                    format!("{entry} (applied by the flux-system sync)"),
                    format!("{:?}", listed.iter().map(|l| l.display().to_string()).collect::<Vec<_>>()),
                ));
            }
        }
    }
    Ok(Outcome::from_findings(findings, format!("clusters/{{{}}}/ hold flux-system/, infrastructure.yaml, workloads.yaml, kustomization.yaml", NAMED_CLUSTERS.join(","))))
}

pub(super) async fn cluster_layer_kustomizations(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let dir = repo.cluster_dir(&ctx.cluster);
    let all = repo.flux_kustomizations(&ctx.cluster).map_err(Outcome::error)?;
    let mut findings = vec![];
    let mut evidence = vec![];
    for f in ["infrastructure.yaml", "workloads.yaml"] {
        let file = dir.join(f);
        if !repo.root.join(&file).is_file() {
            findings.push(Finding::new(file.display().to_string(), "file present in the repository", "missing"));
            continue;
        }
        let here: Vec<_> = all.iter().filter(|k| k.file == file).collect();
        if here.is_empty() {
            let kinds: Vec<String> = repo.documents.iter().filter(|d| d.file == file).map(|d| format!("{} {}", d.api_version(), d.kind())).collect();
            findings.push(Finding::new(file.display().to_string(), "a Flux Kustomization (kustomize.toolkit.fluxcd.io)", format!("[{}]", kinds.join(", "))));
        }
        evidence.push(format!("{}: {}", file.display(), here.iter().map(|k| format!("{} → {}", k.name, k.path)).collect::<Vec<_>>().join(", ")));
    }
    let r = rendered(&ctx)?;
    // Every spec.path and resources entry exists, every dependsOn names a Flux
    // Kustomization of the cluster (else Flux never reconciles the dependent), kustomize
    // can apply every patch, replacement and generator (else Flux fails the build), and every
    // namespaced object has a namespace (else server-side apply refuses the Kustomization).
    let problems = ["missing-flux-path", "dangling-path", "depends-on", "patch", "kustomize", "namespace"];
    findings.extend(problems.iter().flat_map(|c| r.problems_of(c)).map(|p| p.finding.clone()));
    Ok(Outcome::from_findings(findings, evidence.join("; ")))
}

pub(super) async fn post_build_substitute_defined(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let dir = repo.cluster_dir(&ctx.cluster);
    let layers = [dir.join("infrastructure.yaml"), dir.join("workloads.yaml")];
    let mut findings = vec![];
    let mut count = 0;
    for k in repo.flux_kustomizations(&ctx.cluster).map_err(Outcome::error)?.iter().filter(|k| layers.contains(&k.file)) {
        count += 1;
        if k.substitute.is_empty() {
            findings.push(Finding::new(format!("{}: Kustomization {} spec.postBuild.substitute", k.file.display(), k.name), "the cluster's variables", "not defined"));
        }
    }
    if count == 0 {
        findings.push(Finding::new(format!("{}/{{infrastructure,workloads}}.yaml", dir.display()), "Flux Kustomizations with postBuild.substitute", "none"));
    }
    let r = rendered(&ctx)?;
    findings.extend(
        r.problems_of("substitute-from")
            .chain(r.problems_of("unresolved-variable"))
            .chain(r.problems_of("invalid-after-substitution"))
            .map(|p| p.finding.clone()),
    );
    Ok(Outcome::from_findings(findings, format!("{count} Flux Kustomizations of {} substitute variables; every ${{VAR}} rendered is defined", ctx.cluster)))
}

/// A value that identifies one cluster, and how to spot it in a base.
enum Literal {
    /// An address or network: matched inside any string, on address boundaries.
    Network(String),
    /// Matched as a whole scalar (or a whole path/name segment for composite values).
    Scalar(String),
    /// A bare cluster name ("apps", "infra"): matched as a whole scalar, except where
    /// Kubernetes uses the same word as an API group (`apiGroups: [apps]`, `group: apps`).
    ClusterName(String),
}

/// Values that differ between clusters and identify one of them: addresses and
/// networks, ASNs, and values naming the cluster ("velero-infra", "kubernetes/apps/...").
/// Generic words that happen to differ ("Snapshot", a StorageClass name) are ignored.
fn cluster_literals(repo: &GitopsRepo) -> BTreeMap<String, (String, String, Literal)> {
    let vars: Vec<_> = repo.clusters().iter().filter_map(|c| repo.variables(c).ok().map(|v| (c.clone(), v))).collect();
    let mut out = BTreeMap::new();
    for (cluster, v) in &vars {
        for (name, var) in &v.entries {
            if var.is_secret() {
                continue; // never echo secret values
            }
            let value = var.value.trim();
            if value.is_empty() {
                continue;
            }
            let names_cluster = value != cluster && value.split(|ch: char| !ch.is_ascii_alphanumeric()).any(|seg| seg == cluster);
            let others: Vec<&str> = vars.iter().filter(|(c, _)| c != cluster).filter_map(|(_, o)| o.get(name)).map(str::trim).collect();
            // Cluster-specific: another cluster sets it differently, or only this cluster
            // has it and the value names the cluster ("cnpg-infra").
            let differs = if others.is_empty() { names_cluster } else { others.iter().any(|o| *o != value) };
            if !differs {
                continue;
            }
            if value.parse::<IpAddr>().is_ok() {
                out.insert(value.to_string(), (cluster.clone(), name.clone(), Literal::Network(value.to_string())));
                continue;
            }
            let literal = if crate::net::cidrs_of(value).is_ok() {
                for net in crate::net::cidrs_of(value).unwrap_or_default() {
                    out.insert(net.to_string(), (cluster.clone(), name.clone(), Literal::Network(net.to_string())));
                }
                continue;
            } else if value.chars().all(|ch| ch.is_ascii_digit()) {
                if value.len() < 4 {
                    continue; // "1", "2": too common to mean a cluster
                }
                Literal::Scalar(value.to_string())
            } else if value == cluster {
                Literal::ClusterName(value.to_string())
            } else if names_cluster {
                Literal::Scalar(value.to_string())
            } else {
                continue;
            };
            out.insert(value.to_string(), (cluster.clone(), name.clone(), literal));
        }
    }
    out
}

/// A JSON pointer at an API group name (where "apps" means the Kubernetes group).
fn is_api_group(pointer: &str) -> bool {
    pointer.contains("/apiGroups/") || pointer.ends_with("/group") || pointer.ends_with("/apiGroup") || pointer.contains("/apiVersion")
}

fn network_match(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit() || c == '.') && !after.is_some_and(|c| c.is_ascii_digit() || (c == '.' && !needle.contains('/')) || c == '/')
    })
}

fn scalar_match(haystack: &str, needle: &str) -> bool {
    haystack == needle
        || (needle.len() >= 6 && haystack.match_indices(needle).any(|(i, _)| {
            let before = haystack[..i].chars().next_back();
            let after = haystack[i + needle.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        }))
}

/// Every string (keys included) and number of a YAML value, with its JSON pointer.
fn scalars(v: &Value, at: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push((format!("{p} (key)"), k.clone()));
                scalars(x, p, out);
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| scalars(x, format!("{at}/{i}"), out)),
        Value::String(s) => out.push((at, s.clone())),
        Value::Number(n) => out.push((at, n.to_string())),
        _ => {}
    }
}

pub(super) async fn bases_reusable(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let bases = resolve_dir(repo, "kubernetes/bases/")?;
    let renders = all_rendered(repo)?;
    let mut findings = vec![];
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo.root.join(&bases))
        .map_err(Outcome::error)?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| bases.join(e.file_name()))
        .collect();
    dirs.sort();
    let mut used = 0;
    for dir in &dirs {
        let users: Vec<&str> = renders.iter().filter(|r| r.objects.iter().any(|o| o.file.starts_with(dir))).map(|r| r.cluster.as_str()).collect();
        if users.is_empty() {
            findings.push(Finding::new(format!("{}/", dir.display()), format!("rendered into at least one cluster ({})", repo.clusters().join(", ")), "used by no cluster"));
        } else {
            used += 1;
        }
    }
    let literals = cluster_literals(repo);
    for d in repo.documents_under(&bases) {
        let mut found = vec![];
        scalars(&d.value, String::new(), &mut found);
        for (at, text) in found {
            for (value, (cluster, var, lit)) in &literals {
                let hit = match lit {
                    Literal::Network(n) => network_match(&text, n),
                    Literal::Scalar(s) => scalar_match(&text, s),
                    Literal::ClusterName(s) => text == *s && !is_api_group(&at),
                };
                if hit {
                    findings.push(Finding::new(
                        format!("{} {at}", d.describe()),
                        format!("no cluster-specific literal (use ${{{var}}})"),
                        format!("{text:?} contains {value:?}, the value of {var} for cluster {cluster}"),
                    ));
                }
            }
        }
    }
    Ok(Outcome::from_findings(
        findings,
        format!("{used}/{} bases rendered into a cluster; no base hard-codes any of {} cluster-specific values", dirs.len(), literals.len()),
    ))
}

pub(super) async fn gotk_sync(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let dir = repo.cluster_dir(&ctx.cluster);
    let file = dir.join("flux-system/gotk-sync.yaml");
    if !repo.root.join(&file).is_file() {
        return Ok(Outcome::fail(file.display().to_string(), "file present in the repository", "missing"));
    }
    let docs: Vec<_> = repo.documents.iter().filter(|d| d.file == file).collect();
    let kinds = || docs.iter().map(|d| format!("{} {}", d.api_version(), d.kind())).collect::<Vec<_>>().join(", ");
    let git = docs.iter().find(|d| d.kind() == "GitRepository" && d.api_version().starts_with("source.toolkit.fluxcd.io/"));
    let ks = docs.iter().find(|d| d.kind() == "Kustomization" && d.api_version().starts_with("kustomize.toolkit.fluxcd.io/"));
    let mut findings = vec![];
    if git.is_none() {
        findings.push(Finding::new(file.display().to_string(), "a GitRepository (source.toolkit.fluxcd.io)", format!("[{}]", kinds())));
    }
    let Some(ks) = ks else {
        findings.push(Finding::new(file.display().to_string(), "a Kustomization (kustomize.toolkit.fluxcd.io)", format!("[{}]", kinds())));
        return Ok(Outcome::Fail { findings });
    };
    let path = str_at(&ks.value, "/spec/path").unwrap_or("");
    if normalize(Path::new(path.trim_start_matches("./"))) != dir {
        findings.push(Finding::new(format!("{} spec.path", ks.describe()), format!("./{} (the cluster's own directory)", dir.display()), format!("{path:?}")));
    }
    if let Some(git) = git {
        let src = (str_at(&ks.value, "/spec/sourceRef/kind").unwrap_or(""), str_at(&ks.value, "/spec/sourceRef/name").unwrap_or(""));
        if src != ("GitRepository", git.name()) {
            findings.push(Finding::new(format!("{} spec.sourceRef", ks.describe()), format!("GitRepository {}", git.name()), format!("{} {}", src.0, src.1)));
        }
        let branch = str_at(&git.value, "/spec/ref/branch").unwrap_or("");
        if branch != "main" {
            findings.push(Finding::new(format!("{} spec.ref.branch", git.describe()), "main (flux bootstrap --branch=main)", format!("{branch:?}")));
        }
        let url = str_at(&git.value, "/spec/url").unwrap_or("");
        if !url.trim_end_matches(".git").ends_with("monosense-io/k8s-gitops") {
            findings.push(Finding::new(format!("{} spec.url", git.describe()), "the monosense-io/k8s-gitops repository (flux bootstrap --owner --repository)", format!("{url:?}")));
        }
    }
    let fs_dir = dir.join("flux-system");
    let listed = kustomize_resources(repo, &fs_dir).unwrap_or_default();
    if !listed.contains(&file) {
        findings.push(Finding::new(
            format!("{}/kustomization.yaml resources", fs_dir.display()),
            "gotk-sync.yaml",
            format!("{:?}", listed.iter().map(|l| l.display().to_string()).collect::<Vec<_>>()),
        ));
    }
    Ok(Outcome::from_findings(findings, format!("{}: {} → ./{}", file.display(), ks.describe(), dir.display())))
}

