//! EPIC-3 cluster checks: Flux installed, connected to the repository, in sync, its
//! controllers healthy, and the cluster's Kustomizations reconciled
//! (docs/reference/components.md §6). Object names come from the cluster's
//! `flux-system/gotk-sync.yaml` when a repository is given (else the `flux bootstrap`
//! defaults flux-system/flux-system).

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};

use crate::check::{CheckResult, Ctx, Outcome};
use crate::cluster::api_error;
use crate::cluster::objects::{self, Found, Kind};
use crate::repo::str_at;

// §6.1 [F1][F2][F3]: v1 / v1 / v2 today; older versions for older Flux.
const GIT_REPOSITORY: Kind = Kind::namespaced("source.toolkit.fluxcd.io", &["v1", "v1beta2"], "GitRepository");
use crate::checks::kit::live::{HELMRELEASE, KUSTOMIZATION};

const FLUX_NS: &str = "flux-system";
/// What `flux bootstrap` installs by default (§6.3 [F1][F2][F3]; notification-controller
/// is part of the default component set).
const CONTROLLERS: [&str; 4] = ["source-controller", "kustomize-controller", "helm-controller", "notification-controller"];

/// The sync objects the cluster's gotk-sync.yaml defines: (GitRepository ns, name, url),
/// (Kustomization ns, name, path).
struct Sync {
    git: (String, String, Option<String>),
    kustomization: (String, String, Option<String>),
    source: String,
}

fn sync(ctx: &Ctx) -> Sync {
    let default = Sync {
        git: (FLUX_NS.into(), "flux-system".into(), None),
        kustomization: (FLUX_NS.into(), "flux-system".into(), None),
        source: "flux bootstrap defaults (no repository)".into(),
    };
    let Ok(repo) = ctx.repo() else { return default };
    let file = repo.cluster_dir(&ctx.cluster).join("flux-system/gotk-sync.yaml");
    let docs: Vec<_> = repo.documents.iter().filter(|d| d.file == file).collect();
    let of = |kind: &str, group: &str, field: &str| {
        docs.iter().find(|d| d.kind() == kind && d.api_version().starts_with(group)).map(|d| {
            (str_at(&d.value, "/metadata/namespace").unwrap_or(FLUX_NS).to_string(), d.name().to_string(), str_at(&d.value, field).map(str::to_string))
        })
    };
    Sync {
        git: of("GitRepository", "source.toolkit.fluxcd.io/", "/spec/url").unwrap_or(default.git),
        kustomization: of("Kustomization", "kustomize.toolkit.fluxcd.io/", "/spec/path").unwrap_or(default.kustomization),
        source: file.display().to_string(),
    }
}

fn on(cluster: &str, outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Fail { findings } => Outcome::Fail {
            findings: findings.into_iter().map(|f| { let o = format!("{} (cluster {cluster})", f.object); f.renamed(o) }).collect(),
        },
        o => o,
    }
}

async fn require(client: &kube::Client, cluster: &str, kind: &Kind, ns: &str, name: &str) -> CheckResult<Found> {
    objects::require(client, kind, Some(ns), name).await.map_err(|o| on(cluster, o))
}

/// The Flux APIs are served and the controller Deployments exist in flux-system.
pub(super) async fn flux_installed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let mut outcomes = vec![];
    let mut served = vec![];
    for kind in [GIT_REPOSITORY, KUSTOMIZATION, HELMRELEASE] {
        match objects::resource(client, &kind).await {
            Ok((_, v)) => served.push(format!("{} {v}", kind.kind)),
            Err(o) => outcomes.push(on(&ctx.cluster, o)),
        }
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), FLUX_NS);
    for name in &CONTROLLERS[..3] {
        match api.get_opt(name).await {
            Ok(Some(_)) => served.push(format!("Deployment {FLUX_NS}/{name}")),
            Ok(None) => outcomes.push(Outcome::fail(format!("Deployment {FLUX_NS}/{name} (cluster {})", ctx.cluster), "present (flux bootstrap installs it)", "not found")),
            Err(e) => return Err(api_error(&format!("get Deployment {FLUX_NS}/{name}"), e)),
        }
    }
    outcomes.push(Outcome::pass(format!("cluster {}: {}", ctx.cluster, served.join(", "))));
    Ok(Outcome::all(outcomes))
}

/// The bootstrap GitRepository points at the repository's URL (gotk-sync.yaml), is
/// Ready and has fetched an artifact.
pub(super) async fn git_repository_connected(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let s = sync(&ctx);
    let (ns, name, url) = &s.git;
    let git = require(client, &ctx.cluster, &GIT_REPOSITORY, ns, name).await?;
    let object = format!("{} (cluster {})", git.describe(&GIT_REPOSITORY), ctx.cluster);
    let observed_url = git.str("/spec/url").unwrap_or("");
    let mut outcomes = vec![];
    if let Some(want) = url
        && want.trim_end_matches(".git") != observed_url.trim_end_matches(".git")
    {
        outcomes.push(Outcome::fail(format!("{object} spec.url"), format!("{want} ({})", s.source), observed_url));
    }
    outcomes.push(on(&ctx.cluster, objects::expect_condition(&git, &GIT_REPOSITORY, "Ready")));
    match git.str("/status/artifact/revision").filter(|r| !r.is_empty()) {
        Some(rev) => outcomes.push(Outcome::pass(format!("{object}: {observed_url} fetched, artifact revision {rev}"))),
        None => outcomes.push(Outcome::fail(format!("{object} status.artifact.revision"), "a fetched revision", "none")),
    }
    Ok(Outcome::all(outcomes))
}

/// The bootstrap Kustomization is Ready for its current generation and has applied
/// the revision its GitRepository fetched.
pub(super) async fn flux_sync_verified(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let s = sync(&ctx);
    let ks = require(client, &ctx.cluster, &KUSTOMIZATION, &s.kustomization.0, &s.kustomization.1).await?;
    let src_ns = ks.str("/spec/sourceRef/namespace").unwrap_or(&s.kustomization.0).to_string();
    let src_name = ks.str("/spec/sourceRef/name").unwrap_or(&s.git.1).to_string();
    let git = require(client, &ctx.cluster, &GIT_REPOSITORY, &src_ns, &src_name).await?;
    let object = format!("{} (cluster {})", ks.describe(&KUSTOMIZATION), ctx.cluster);
    let fetched = git.str("/status/artifact/revision").unwrap_or("");
    let applied = ks.str("/status/lastAppliedRevision").unwrap_or("");
    // Applying a newly fetched revision: in progress (the runner waits), the old one still applied.
    if let Some(doing) = objects::reconciling(&ks) {
        let still = if applied.is_empty() { "none applied yet".to_string() } else { format!("{applied} still applied") };
        return Ok(Outcome::in_progress(object, format!("Ready=True, the fetched revision of GitRepository {src_ns}/{src_name} applied"), format!("{doing}; {still}")));
    }
    let ready = on(&ctx.cluster, objects::expect_condition(&ks, &KUSTOMIZATION, "Ready"));
    let revision = if fetched.is_empty() || applied != fetched {
        Outcome::fail(
            format!("{object} status.lastAppliedRevision"),
            format!("the fetched revision of GitRepository {src_ns}/{src_name}: {}", if fetched.is_empty() { "none" } else { fetched }),
            if applied.is_empty() { "none" } else { applied },
        )
    } else {
        Outcome::pass(format!("{object}: applied {applied} (= fetched)"))
    };
    Ok(Outcome::all([ready, revision]))
}

/// Every Flux controller Deployment in flux-system is ready: the default four and any
/// other labelled app.kubernetes.io/part-of=flux (image automation, ...).
pub(super) async fn flux_controllers_healthy(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let mut names: BTreeSet<String> = CONTROLLERS.iter().map(|s| s.to_string()).collect();
    let listed = Api::<Deployment>::namespaced(client.clone(), FLUX_NS)
        .list(&ListParams::default().labels("app.kubernetes.io/part-of=flux"))
        .await
        .map_err(|e| api_error(&format!("list Deployments in {FLUX_NS}"), e))?;
    names.extend(listed.items.into_iter().filter_map(|d| d.metadata.name));
    let mut outcomes = vec![];
    for name in &names {
        outcomes.push(objects::expect_workload_ready(client, &ctx.cluster, "Deployment", FLUX_NS, name).await);
    }
    Ok(Outcome::all(outcomes))
}

/// The Flux Kustomizations the cluster's entry point applies (the bootstrap
/// Kustomization at the criterion's path and, from the repository, every Kustomization
/// applied through it from the same source) are Ready for their current generation.
pub(super) async fn flux_reconciles_cluster_path(ctx: Ctx, criterion: &'static str) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let s = sync(&ctx);
    let want_path = criterion.split('`').nth(1).unwrap_or("").trim_end_matches('/').to_string();
    let mut outcomes = vec![];
    let entry = require(client, &ctx.cluster, &KUSTOMIZATION, &s.kustomization.0, &s.kustomization.1).await?;
    let path = entry.str("/spec/path").unwrap_or("").trim_start_matches("./").trim_end_matches('/').to_string();
    if !want_path.is_empty() && path != want_path {
        outcomes.push(Outcome::fail(format!("{} (cluster {}) spec.path", entry.describe(&KUSTOMIZATION), ctx.cluster), format!("./{want_path}"), format!("./{path}")));
    }
    let expected: Vec<(String, String)> = match ctx.repo() {
        Ok(repo) => own_kustomizations(&*repo.render(&ctx.cluster).map_err(Outcome::error)?, &s.kustomization.1),
        // Without a repository: every Kustomization in the cluster.
        Err(_) => objects::list(client, &KUSTOMIZATION, None, None).await?.iter().map(|k| (k.namespace().unwrap_or(FLUX_NS).to_string(), k.name().to_string())).collect(),
    };
    let mut ready = vec![];
    for (ns, name) in &expected {
        match objects::get(client, &KUSTOMIZATION, Some(ns), name).await {
            Ok(Some(k)) if objects::reconciling(&k).is_some() => {
                let doing = objects::reconciling(&k).unwrap_or_default();
                outcomes.push(Outcome::in_progress(format!("{} (cluster {})", k.describe(&KUSTOMIZATION), ctx.cluster), "Ready=True", doing));
            }
            Ok(Some(k)) => match objects::expect_condition(&k, &KUSTOMIZATION, "Ready") {
                Outcome::Pass { .. } => ready.push(format!("{name}@{}", k.str("/status/lastAppliedRevision").unwrap_or("?"))),
                o => outcomes.push(on(&ctx.cluster, o)),
            },
            Ok(None) => outcomes.push(Outcome::fail(format!("Kustomization {ns}/{name} (cluster {})", ctx.cluster), "applied from the repository and Ready", "not found")),
            Err(o) => return Err(o),
        }
    }
    outcomes.push(Outcome::pass(format!("cluster {}: ./{path} reconciled; {} Kustomizations Ready: {}", ctx.cluster, ready.len(), ready.join(", "))));
    Ok(Outcome::all(outcomes))
}

/// Flux Kustomizations reached from the entry Kustomization through Kustomizations of
/// the same source (the renderer also follows other sources, whose paths are not in
/// this repository).
fn own_kustomizations(r: &crate::repo::Rendered, entry: &str) -> Vec<(String, String)> {
    let is_ks = |o: &&crate::repo::RenderedObject| o.kind() == "Kustomization" && o.api_version().starts_with("kustomize.toolkit.fluxcd.io/");
    let source = r.objects.iter().filter(is_ks).find(|o| o.name() == entry).and_then(|o| o.str("/spec/sourceRef/name")).unwrap_or("flux-system").to_string();
    let mut allowed: BTreeSet<String> = BTreeSet::from([entry.to_string()]);
    loop {
        let before = allowed.len();
        for o in r.objects.iter().filter(is_ks) {
            if allowed.contains(&o.applied_by) && o.str("/spec/sourceRef/name").unwrap_or(&source) == source {
                allowed.insert(o.name().to_string());
            }
        }
        if allowed.len() == before {
            break;
        }
    }
    let mut out: Vec<(String, String)> = r
        .objects
        .iter()
        .filter(is_ks)
        .filter(|o| allowed.contains(&o.applied_by) || o.name() == entry)
        .map(|o| (o.namespace().unwrap_or(FLUX_NS).to_string(), o.name().to_string()))
        .collect();
    out.sort();
    out.dedup();
    out
}
