//! Definition of Done checks.
//!
//! Repository layer and aggregates first (`repo_checks`), then the live items per
//! cluster (`cluster_checks`): Flux Kustomizations applied (dod.4), workloads and pods
//! ready (dod.5), cross-cluster services served by a peer (dod.7), shared-base
//! HelmReleases Ready on every cluster (dod.13) and the per-cluster variables observable
//! in the running Cilium (dod.14). dod.6 aggregates this run's live results like dod.1
//! (repo layer, so the runner never blocks it when a story failed). Every live item is
//! blocked when a selected story failed live: the story failure is the finding.

use std::path::{Path, PathBuf};

use crate::check::{Check, Ctx, Finding, ONCE, Outcome, Prior, Verdict};
use crate::checks::kit::prelude::*;

pub fn checks() -> Vec<Check> {
    let mut all = repo_checks();
    // Keep document order: the live items sit between dod.3 and dod.8, and after dod.12.
    let live = cluster_checks();
    let (early, late): (Vec<Check>, Vec<Check>) = live.into_iter().partition(|c| !LATE.contains(&c.criterion));
    let at = all.iter().position(|c| c.criterion == "Documentation updated (inline comments, README)").unwrap_or(all.len());
    all.splice(at..at, early);
    all.extend(late);
    all
}

const LATE: [&str; 2] = [BOTH_CLUSTERS, CLUSTER_SPECIFIC];

fn repo_checks() -> Vec<Check> {
    vec![
        Check::aggregate("dod", "All acceptance criteria met", "all_acceptance_criteria_met", all_acceptance_criteria_met).once(),
        Check::manual(
            "dod",
            "All tasks completed",
            "Tasks are prose steps in each story, without checkboxes or an observable end state of their own; their outcomes are proven by the story criteria, and a person confirms the steps themselves were done.",
        ),
        Check::repo("dod", "Configuration files created and committed to git", "configuration_committed_to_git", configuration_committed_to_git).once(),
        Check::repo("dod", "Documentation updated (inline comments, README)", "readme_documents_repository", readme_documents_repository).once(),
        Check::manual(
            "dod",
            "Peer reviewed (if applicable)",
            "A review is recorded on the code host (pull-request approvals), not in the git tree, the clusters or any service the platform runs; a person must confirm each change was reviewed, or that review did not apply.",
        ),
        Check::manual(
            "dod",
            "No known bugs or issues",
            "'Known' bugs live in people's knowledge and the issue tracker, outside the repository and the clusters; no check can prove the absence of unknown-to-the-harness issues. A person must confirm the tracker has no open bug for the story.",
        ),
        Check::repo("dod", "Variables defined in `clusters/*/infrastructure.yaml`", "cluster_variables_defined", cluster_variables_defined),
        Check::repo("dod", "Kustomization references correct base paths", "kustomization_base_paths", kustomization_base_paths),
    ]
}

async fn git(root: &Path, args: &[&str]) -> Result<std::process::Output, Outcome> {
    tokio::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["--no-optional-locks", "-c", "core.quotepath=off"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .await
        .map_err(|e| Outcome::error(format!("cannot run git: {e}")))
}

async fn configuration_committed_to_git(ctx: Ctx) -> Outcome {
    let repo = match repo(&ctx) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let root = repo.root.clone();
    let inside = match git(&root, &["rev-parse", "--is-inside-work-tree"]).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        let err = String::from_utf8_lossy(&inside.stderr);
        if err.contains("dubious ownership") {
            return Outcome::error(format!("git refuses {}: {}", root.display(), err.trim()));
        }
        return Outcome::fail(root.display().to_string(), "a git work tree with every configuration file committed", "not a git repository");
    }
    let head = match git(&root, &["rev-parse", "--verify", "-q", "--short", "HEAD"]).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    if !head.status.success() {
        return Outcome::fail(root.display().to_string(), "a git work tree with every configuration file committed", "no commits (HEAD unborn)");
    }
    let status = match git(&root, &["status", "--porcelain=v1", "--untracked-files=all", "--", "."]).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    if !status.status.success() {
        return Outcome::error(format!("git status in {} failed: {}", root.display(), String::from_utf8_lossy(&status.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&status.stdout);
    let findings: Vec<Finding> = text
        .lines()
        .filter(|l| l.len() > 3)
        .map(|l| {
            let (code, path) = l.split_at(3);
            let what = match code.trim() {
                "??" => "untracked (never committed)".to_string(),
                c if c.contains('D') => format!("deleted, not committed ({c})"),
                c if c.contains('A') => format!("added, not committed ({c})"),
                c => format!("modified, not committed ({c})"),
            };
            Finding::new(path.trim(), "committed", what)
        })
        .collect();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    Outcome::from_findings(findings, format!("{}: work tree clean at HEAD {head}", root.display()))
}

async fn readme_documents_repository(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let readme = repo.files.iter().find(|f| f.components().count() == 1 && f.to_string_lossy().to_ascii_lowercase().starts_with("readme"));
        let Some(readme) = readme else {
            return Ok(Outcome::fail(format!("{}/README.md", repo.root.display()), "a README at the repository root", "missing"));
        };
        let text = repo.read_text(readme).unwrap_or_default();
        if text.trim().is_empty() {
            return Ok(Outcome::fail(readme.display().to_string(), "a README describing the repository", "empty"));
        }
        // It documents this multi-cluster repository: every cluster, every layer of the tree.
        let layers: Vec<String> = ["bases", "infrastructure", "workloads", "clusters"]
            .iter()
            .filter(|l| repo.root.join(&repo.kubernetes_dir).join(l).is_dir())
            .map(|l| l.to_string())
            .collect();
        let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_')).collect();
        let missing: Vec<String> = repo.clusters().iter().chain(layers.iter()).filter(|n| !words.contains(&n.as_str())).cloned().collect();
        if !missing.is_empty() {
            return Ok(Outcome::fail(readme.display().to_string(), format!("mentions every cluster and layer ({})", repo.clusters().iter().chain(layers.iter()).cloned().collect::<Vec<_>>().join(", ")), format!("does not mention {}", missing.join(", "))));
        }
        Ok(Outcome::pass(format!("{} ({} lines) documents clusters {} and layers {}", readme.display(), text.lines().count(), repo.clusters().join(", "), layers.join(", "))))
    })
}

async fn cluster_variables_defined(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let expected = repo.cluster_dir(&ctx.cluster).join("infrastructure.yaml");
        let vars = match repo.variables(&ctx.cluster) {
            Ok(v) => v,
            Err(e) => return Ok(Outcome::fail(expected.display().to_string(), "a Flux Kustomization with postBuild variables", e.to_string())),
        };
        if vars.file != expected {
            return Ok(Outcome::fail(expected.display().to_string(), "the cluster's postBuild variables", format!("variables only in {}", vars.file.display())));
        }
        let r = rendered(&ctx)?;
        let findings: Vec<Finding> = r.problems.iter().filter(|p| matches!(p.category, "unresolved-variable" | "substitute-from")).map(|p| p.finding.clone()).collect();
        Ok(Outcome::from_findings(findings, format!("{}: {} variables (Kustomization {}); every reference resolves on {}", vars.file.display(), vars.entries.len(), vars.kustomization, ctx.cluster)))
    })
}

async fn kustomization_base_paths(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let r = rendered(&ctx)?;
        let mut findings: Vec<Finding> = r.problems.iter().filter(|p| matches!(p.category, "dangling-path" | "missing-flux-path")).map(|p| p.finding.clone()).collect();
        let bases_dir = repo.kubernetes_dir.join("bases");
        let bases: Vec<String> = std::fs::read_dir(repo.root.join(&bases_dir))
            .map(|rd| rd.filter_map(Result::ok).filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let layers: Vec<PathBuf> = ["infrastructure", "workloads"].iter().map(|l| repo.kubernetes_dir.join(l)).collect();
        let reach = cluster_reach(repo, &ctx.cluster)?;
        let mut linked = vec![];
        for dir in reach.dirs.iter().filter(|d| layers.iter().any(|l| d.starts_with(l))) {
            let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
            if !bases.contains(&name) {
                continue;
            }
            let base = bases_dir.join(&name);
            if reach_from(repo, [dir.clone()]).dirs.contains(&base) {
                linked.push(format!("{} → {}", dir.display(), base.display()));
            } else {
                let entries: Vec<String> = kustomize_entries(repo, dir).into_iter().map(|(e, _)| e).collect();
                findings.push(Finding::new(dir.display().to_string(), format!("references its shared base {}", base.display()), format!("resources {entries:?}")));
            }
        }
        Ok(Outcome::from_findings(findings, format!("no dangling paths on {}; {} components use their base ({})", ctx.cluster, linked.len(), linked.join(", "))))
    })
}

// ---- aggregate items: judged from the other results of the same run ------------

/// Every story criterion of this run passed; failures are listed, and criteria that were
/// not proven (unmapped, manual, skipped) keep the item from passing.
fn all_acceptance_criteria_met(_cluster: &str, results: &[Prior]) -> Outcome {
    let criteria: Vec<_> = results.iter().filter(|r| r.story != crate::catalog::DOD_STORY).collect();
    if criteria.is_empty() {
        return Outcome::skip("no story criteria were selected in this run");
    }
    let findings: Vec<Finding> = criteria
        .iter()
        .filter(|r| matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error))
        .map(|r| Finding::new(r.title(), "met", format!("{}: {}", r.outcome.verdict().as_str(), r.outcome.summary())))
        .collect();
    if !findings.is_empty() {
        return Outcome::Fail { findings };
    }
    let passed = criteria.iter().filter(|r| r.outcome.verdict() == Verdict::Pass).count();
    if passed < criteria.len() {
        let unmapped = criteria.iter().filter(|r| r.is_unmapped()).count();
        return Outcome::skip(format!(
            "{passed} of {} criterion evaluations passed, none failed; {} not proven ({unmapped} unmapped, the rest manual or skipped)",
            criteria.len(),
            criteria.len() - passed
        ));
    }
    Outcome::pass(format!("all {} criterion evaluations passed", criteria.len()))
}

// ---- live items: read from each cluster ---------------------------------------

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, ListParams};

use crate::check::Layer;
use crate::cluster::objects::{self as kobjects, Kind};

const BOTH_CLUSTERS: &str = "Deployed to both clusters (if applicable)";
const CLUSTER_SPECIFIC: &str = "Cluster-specific behavior verified";

fn cluster_checks() -> Vec<Check> {
    vec![
        Check::cluster("dod", "Manifests deployed to cluster (via Flux or kubectl)", "flux_kustomizations_applied", flux_kustomizations_applied),
        Check::cluster("dod", "Services healthy and running (pods, health checks)", "platform_workloads_ready", platform_workloads_ready),
        // An aggregate of this run's results (like dod.1): not itself a live unit, so the
        // runner never blocks it when a story failed; that failure is what it reports.
        Check::aggregate("dod", "Tests passed (manual or automated)", "live_checks_passed", live_checks_passed),
        Check::cluster("dod", "Cross-cluster connectivity verified (if applicable)", "cross_cluster_services_served", cross_cluster_services_served),
        Check::cluster("dod", BOTH_CLUSTERS, "shared_bases_ready_everywhere", shared_bases_ready_everywhere),
        Check::cluster("dod", CLUSTER_SPECIFIC, "cluster_variables_live", cluster_variables_live),
    ]
}

/// Every Flux Kustomization the repository defines for this cluster is on the cluster,
/// `Ready=True` for its generation, and has applied the revision it last attempted
/// (§6.2 [F2]). One LIST.
async fn flux_kustomizations_applied(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let r = match rendered(&ctx) { Ok(r) => r, Err(o) => return o };
    let expected: Vec<_> = r.of_kind("Kustomization").filter(|o| o.api_version().starts_with("kustomize.toolkit.fluxcd.io/")).collect();
    if expected.is_empty() {
        return Outcome::fail(format!("cluster {}", ctx.cluster), "Flux Kustomizations in the repository", "none rendered");
    }
    let found = match kobjects::list(client, &KUSTOMIZATION, None, None).await { Ok(l) => l, Err(o) => return o };
    let mut findings = vec![];
    let mut applied = vec![];
    for k in expected {
        let ns = k.namespace().unwrap_or("flux-system");
        let Some(f) = found.iter().find(|f| f.name() == k.name() && f.namespace() == Some(ns)) else {
            findings.push(Finding::new(format!("Kustomization {ns}/{} (cluster {}, from {})", k.name(), ctx.cluster, k.file.display()), "applied to the cluster", "not found"));
            continue;
        };
        let object = format!("{} (cluster {})", f.describe(&KUSTOMIZATION), ctx.cluster);
        match kobjects::expect_condition(f, &KUSTOMIZATION, "Ready") {
            Outcome::Fail { findings: fs } => findings.extend(fs.into_iter().map(|x| Finding::new(object.clone(), x.expected, x.observed))),
            Outcome::Error { message } => return Outcome::error(message),
            _ => {
                let applied_rev = f.str("/status/lastAppliedRevision").unwrap_or("");
                let attempted = f.str("/status/lastAttemptedRevision").unwrap_or(applied_rev);
                if applied_rev != attempted {
                    findings.push(Finding::new(format!("{object} status.lastAppliedRevision"), format!("the attempted revision {attempted}"), format!("{applied_rev:?}")));
                } else {
                    applied.push(format!("{}@{}", f.name(), applied_rev));
                }
            }
        }
    }
    Outcome::from_findings(findings, format!("cluster {}: {} Flux Kustomizations Ready ({})", ctx.cluster, applied.len(), applied.join(", ")))
}

/// Namespaces the platform's manifests put things in on this cluster (objects and the
/// target namespaces of HelmReleases).
fn platform_namespaces(ctx: &Ctx) -> Result<BTreeSet<String>, Outcome> {
    let r = rendered(ctx)?;
    let mut out = BTreeSet::new();
    for o in &r.objects {
        if let Some(ns) = o.namespace() {
            out.insert(ns.to_string());
        }
        if o.kind() == "Namespace" {
            out.insert(o.name().to_string());
        }
        if let Some(t) = o.str("/spec/targetNamespace") {
            out.insert(t.to_string());
        }
    }
    Ok(out)
}

/// Every Deployment, StatefulSet and DaemonSet in the platform's namespaces is ready for
/// its current spec, and every pod there is Ready (readiness probes are the health
/// checks) or finished. One LIST per kind for the whole cluster.
async fn platform_workloads_ready(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let namespaces = match platform_namespaces(&ctx) { Ok(n) => n, Err(o) => return o };
    let lp = ListParams::default();
    let mut findings = vec![];
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    macro_rules! each {
        ($t:ty, $kind:literal) => {
            match Api::<$t>::all(client.clone()).list(&lp).await {
                Ok(list) => {
                    for w in list.items.iter().filter(|w| w.metadata.namespace.as_ref().is_some_and(|n| namespaces.contains(n))) {
                        *count.entry($kind).or_default() += 1;
                        if let Err(f) = judge_workload($kind, w, &ctx.cluster, true) {
                            findings.push(f);
                        }
                    }
                }
                Err(e) => return crate::cluster::api_error(&format!("list {}s (cluster {})", $kind, ctx.cluster), e),
            }
        };
    }
    each!(Deployment, "Deployment");
    each!(StatefulSet, "StatefulSet");
    each!(DaemonSet, "DaemonSet");
    let pods = match Api::<Pod>::all(client.clone()).list(&lp).await {
        Ok(p) => p.items,
        Err(e) => return crate::cluster::api_error(&format!("list pods (cluster {})", ctx.cluster), e),
    };
    let mut pod_count = 0;
    for p in pods.iter().filter(|p| p.metadata.namespace.as_ref().is_some_and(|n| namespaces.contains(n))) {
        pod_count += 1;
        let status = p.status.as_ref();
        let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
        if phase == "Succeeded" {
            continue;
        }
        let ready = status.and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready {
            let why = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .map(|c| format!("Ready={} ({})", c.status, c.reason.clone().unwrap_or_default()))
                .unwrap_or_else(|| "no Ready condition".into());
            findings.push(Finding::new(
                format!("Pod {}/{} (cluster {})", p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default(), ctx.cluster),
                "Ready=True (readiness checks passing)",
                format!("{why}, phase {phase}"),
            ));
        }
    }
    if count.values().sum::<usize>() == 0 {
        return Outcome::fail(format!("cluster {} namespaces [{}]", ctx.cluster, namespaces.iter().cloned().collect::<Vec<_>>().join(", ")), "the platform's workloads", "no Deployments, StatefulSets or DaemonSets");
    }
    let counts: Vec<String> = count.iter().map(|(k, n)| format!("{n} {k}s")).collect();
    Outcome::from_findings(findings, format!("cluster {}: {} and {pod_count} pods ready in {} platform namespaces", ctx.cluster, counts.join(", "), namespaces.len()))
}

/// The automated tests are this run's cluster and data-plane checks of the stories: every
/// one for this cluster (or run once for all) passed; one blocked by a failed prerequisite
/// did not. Manual criteria are a person's part.
fn live_checks_passed(cluster: &str, results: &[Prior]) -> Outcome {
    let mine: Vec<_> = results
        .iter()
        .filter(|r| r.story != crate::catalog::DOD_STORY && r.layer.is_some_and(Layer::is_live) && (r.cluster == cluster || r.cluster == ONCE))
        .collect();
    if mine.is_empty() {
        return Outcome::skip(format!("no cluster or data-plane check of a story ran for cluster {} in this run", cluster));
    }
    let findings: Vec<Finding> = mine
        .iter()
        .filter(|r| matches!(r.outcome.verdict(), Verdict::Fail | Verdict::Error) || r.blocked)
        .map(|r| Finding::new(r.title(), "passed", format!("{}: {}", r.outcome.verdict().as_str(), r.outcome.summary())))
        .collect();
    let passed = mine.iter().filter(|r| r.outcome.verdict() == Verdict::Pass).count();
    if findings.is_empty() && passed == 0 {
        return Outcome::skip(format!("cluster {}: none of the {} live checks of this run could be evaluated (all skipped)", cluster, mine.len()));
    }
    Outcome::from_findings(findings, format!("cluster {}: {passed} of {} live checks passed, the rest skipped", cluster, mine.len()))
}

/// MCS-API ServiceExport (§2.4 [C6]) and Cilium global-service annotation (§2.4 [C7]).
const SERVICE_EXPORT: Kind = Kind::namespaced("multicluster.x-k8s.io", &["v1alpha1"], "ServiceExport");
const GLOBAL: [&str; 2] = ["service.cilium.io/global", "io.cilium/global-service"];

/// Every `<svc>.<ns>.svc.clusterset.local` name this cluster's manifests use is served
/// across the mesh: some cluster has that Service, exported (a ServiceExport `Valid` without
/// `Conflict`, or the Cilium global annotation) and with Ready pods behind its selector.
async fn cross_cluster_services_served(ctx: Ctx) -> Outcome {
    let Some(target) = ctx.target.as_ref() else { return Outcome::skip("no cluster target") };
    let r = match rendered(&ctx) { Ok(r) => r, Err(o) => return o };
    let re = regex::Regex::new(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc\.clusterset\.local").expect("static regex");
    let mut used: BTreeMap<(String, String), String> = BTreeMap::new();
    for o in &r.objects {
        let text = serde_json::to_string(&o.value).unwrap_or_default();
        for c in re.captures_iter(&text) {
            used.entry((c[3].to_string(), c[1].to_string())).or_insert_with(|| o.describe());
        }
    }
    if used.is_empty() {
        return Outcome::skip(format!("not applicable: cluster {}'s manifests use no <svc>.<ns>.svc.clusterset.local name", ctx.cluster));
    }
    let mut outcomes = vec![];
    for ((ns, svc), user) in &used {
        let object = format!("{svc}.{ns}.svc.clusterset.local (used by {user} on {})", ctx.cluster);
        let mut served = vec![];
        let mut problems = vec![];
        for (cluster, client) in target.peers.iter() {
            let service = match Api::<Service>::namespaced(client.clone(), ns).get_opt(svc).await {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => return crate::cluster::api_error(&format!("get Service {ns}/{svc} (cluster {cluster})"), e),
            };
            let annotations = service.metadata.annotations.clone().unwrap_or_default();
            let global = GLOBAL.iter().any(|a| annotations.get(*a).is_some_and(|v| v == "true"));
            let export = match kobjects::get(client, &SERVICE_EXPORT, Some(ns), svc).await {
                Ok(e) => e,
                Err(Outcome::Fail { .. }) => None, // MCS-API not installed there
                Err(o) => return o,
            };
            let export_ok = export.as_ref().map(|e| {
                let valid = e.condition("Valid").is_none_or(|c| c.status == "True");
                let conflict = e.condition("Conflict").is_some_and(|c| c.status == "True");
                (valid && !conflict, e.condition("Conflict").map(|c| c.message).unwrap_or_default())
            });
            let how = match (&export_ok, global) {
                // An export in conflict is broken whatever else the Service says (§2.4 [C6]).
                (Some((false, why)), _) => {
                    problems.push(Finding::new(format!("ServiceExport {ns}/{svc} (cluster {cluster})"), "Valid=True and Conflict not True", format!("invalid or in conflict ({why})")));
                    continue;
                }
                (Some((true, _)), _) => "ServiceExport",
                (None, true) => "global service",
                (None, false) => {
                    problems.push(Finding::new(
                        format!("Service {ns}/{svc} (cluster {cluster})"),
                        "exported to the mesh (a ServiceExport or annotation service.cilium.io/global: \"true\")",
                        format!("neither (annotations: {})", GLOBAL.iter().map(|a| format!("{a}={:?}", annotations.get(*a).map(String::as_str).unwrap_or("unset"))).collect::<Vec<_>>().join(", ")),
                    ));
                    continue;
                }
            };
            let selector = service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
            if selector.is_empty() {
                served.push(format!("{cluster} ({how}, no selector)"));
                continue;
            }
            let labels = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            match kobjects::expect_pods_ready(client, cluster, ns, &labels).await {
                Outcome::Pass { .. } => served.push(format!("{cluster} ({how})")),
                Outcome::Fail { findings } => problems.extend(findings),
                other => return other,
            }
        }
        outcomes.push(if !served.is_empty() && problems.is_empty() {
            Outcome::pass(format!("{object}: served by {}", served.join(", ")))
        } else if problems.is_empty() {
            Outcome::fail(object, format!("a Service {ns}/{svc} exported by one of the clusters [{}]", target.peers.keys().cloned().collect::<Vec<_>>().join(", ")), "no cluster has it")
        } else {
            Outcome::Fail { findings: problems.into_iter().map(|f| Finding::new(format!("{} (for {object})", f.object), f.expected, f.observed)).collect() }
        });
    }
    Outcome::all(outcomes)
}

/// Every HelmRelease of a shared base (`kubernetes/bases/`) that the repository renders
/// for every cluster is Ready on this cluster (§6.2 [F3]). One LIST.
async fn shared_bases_ready_everywhere(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let repo = match repo(&ctx) { Ok(r) => r, Err(o) => return o };
    let bases = repo.kubernetes_dir.join("bases");
    let mut per_cluster: Vec<BTreeSet<(String, String)>> = vec![];
    for c in repo.clusters() {
        let r = match repo.render(c) { Ok(r) => r, Err(e) => return Outcome::error(e) };
        per_cluster.push(r.of_kind("HelmRelease").filter(|h| h.file.starts_with(&bases)).map(|h| (h.namespace().unwrap_or("default").to_string(), h.name().to_string())).collect());
    }
    let shared: BTreeSet<(String, String)> = per_cluster.iter().skip(1).fold(per_cluster.first().cloned().unwrap_or_default(), |acc, s| acc.intersection(s).cloned().collect());
    if shared.is_empty() || repo.clusters().len() < 2 {
        return Outcome::skip("not applicable: no shared-base HelmRelease is rendered for more than one cluster");
    }
    let found = match kobjects::list(client, &HELMRELEASE, None, None).await { Ok(l) => l, Err(o) => return o };
    let mut outcomes = vec![];
    for (ns, name) in &shared {
        outcomes.push(match found.iter().find(|f| f.name() == name && f.namespace() == Some(ns.as_str())) {
            None => Outcome::fail(format!("HelmRelease {ns}/{name} (cluster {}, shared base)", ctx.cluster), "deployed", "not found"),
            Some(f) => judge_helmrelease(f, &ctx.cluster),
        });
    }
    match Outcome::all(outcomes) {
        Outcome::Pass { .. } => Outcome::pass(format!("cluster {}: all {} shared-base HelmReleases Ready ({})", ctx.cluster, shared.len(), shared.iter().map(|(n, h)| format!("{n}/{h}")).collect::<Vec<_>>().join(", "))),
        other => other,
    }
}

/// The per-cluster values the repository sets are the ones the cluster runs with:
/// Cilium's `cilium-config` (the chart's ConfigMap) has `cluster-name` = CLUSTER,
/// `cluster-id` = CLUSTER_ID and `ipv4-native-routing-cidr` = POD_CIDR, and every node's
/// podCIDR lies inside POD_CIDR.
async fn cluster_variables_live(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let vars = match variables(&ctx) { Ok(v) => v, Err(o) => return o };
    let ns = match rendered_release(&ctx, "cilium") { Ok(h) => Release::of(&h).namespace, Err(o) => return o };
    let cm = match Api::<ConfigMap>::namespaced(client.clone(), &ns).get_opt("cilium-config").await {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::fail(format!("ConfigMap {ns}/cilium-config (cluster {})", ctx.cluster), "present (written by the Cilium chart)", "not found"),
        Err(e) => return crate::cluster::api_error(&format!("get ConfigMap {ns}/cilium-config (cluster {})", ctx.cluster), e),
    };
    let data = cm.data.unwrap_or_default();
    let mut findings = vec![];
    let mut evidence = vec![];
    for (key, var) in [("cluster-name", "CLUSTER"), ("cluster-id", "CLUSTER_ID"), ("ipv4-native-routing-cidr", "POD_CIDR")] {
        let Some(want) = vars.get(var) else { continue };
        let got = data.get(key).map(String::as_str);
        if got != Some(want) {
            findings.push(Finding::new(format!("ConfigMap {ns}/cilium-config (cluster {}) data.{key}", ctx.cluster), format!("{want:?} ({})", vars.object(var)), format!("{:?}", got.unwrap_or("unset"))));
        } else {
            evidence.push(format!("{key}={want}"));
        }
    }
    let range = vars.get("POD_CIDR").and_then(|v| crate::net::cidrs_of(v).ok()).and_then(|c| c.first().copied());
    match crate::cluster::nodes::list(client, &ctx.cluster).await {
        Ok(nodes) => match crate::cluster::nodes::expect_disjoint_pod_cidrs(&[(ctx.cluster.clone(), nodes, range)]) {
            Outcome::Fail { findings: f } => findings.extend(f),
            Outcome::Pass { .. } => evidence.push(format!("node podCIDRs inside POD_CIDR {}", range.map(|r| r.to_string()).unwrap_or("?".into()))),
            other => return other,
        },
        Err(o) => return o,
    }
    Outcome::from_findings(findings, format!("cluster {}: {}", ctx.cluster, evidence.join(", ")))
}
