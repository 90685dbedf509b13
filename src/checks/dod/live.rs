//! Definition of Done, cluster layer: Flux Kustomizations applied (dod.4), workloads and
//! pods ready (dod.5), cross-cluster services served by a peer (dod.7), shared-base
//! HelmReleases Ready on every cluster (dod.13) and the per-cluster variables observable in
//! the running Cilium (dod.14).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, ListParams};

use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects as kobjects;
use crate::cluster::pods::{judge_pods, Owners};

/// Every Flux Kustomization the repository defines for this cluster is on the cluster,
/// `Ready=True` for its generation, and has applied the revision it last attempted
/// (§6.2 [F2]). One LIST.
pub(super) async fn flux_kustomizations_applied(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let expected: Vec<_> = r.of_kind("Kustomization").filter(|o| o.api_version().starts_with("kustomize.toolkit.fluxcd.io/")).collect();
    if expected.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "Flux Kustomizations in the repository", "none rendered"));
    }
    let found = kobjects::list(client, &KUSTOMIZATION, None, None).await?;
    let mut findings = vec![];
    let mut applied = vec![];
    for k in expected {
        let ns = k.namespace().unwrap_or("flux-system");
        let Some(f) = found.iter().find(|f| f.name() == k.name() && f.namespace() == Some(ns)) else {
            findings.push(Finding::new(format!("Kustomization {ns}/{} (cluster {}, from {})", k.name(), ctx.cluster, k.file.display()), "applied to the cluster", "not found"));
            continue;
        };
        match judge_kustomization(f, &ctx.cluster) {
            Outcome::Fail { findings: fs } => findings.extend(fs),
            Outcome::Pass { evidence } => applied.extend(evidence),
            other => return Err(other),
        }
    }
    Ok(Outcome::from_findings(findings, format!("cluster {}: {} Flux Kustomizations Ready ({})", ctx.cluster, applied.len(), applied.join(", "))))
}

/// Namespaces the platform's manifests put things in on this cluster (objects and the
/// target namespaces of HelmReleases).
fn platform_namespaces(ctx: &Ctx) -> CheckResult<BTreeSet<String>> {
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
/// checks) or finished: a `Failed` pod is judged by its owner (a retried or completed
/// Job's attempt, an evicted pod of a ready workload is history; see
/// [`crate::cluster::pods`]). One LIST per kind for the whole cluster.
pub(super) async fn platform_workloads_ready(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let namespaces = platform_namespaces(&ctx)?;
    let ours = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.namespace.as_ref().is_some_and(|n| namespaces.contains(n));
    let owners = Owners::list(client, None, &ctx.cluster).await?;
    let mut findings = vec![];
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut judge = |kind: &'static str, verdict: Result<String, Finding>| {
        *count.entry(kind).or_default() += 1;
        if let Err(f) = verdict {
            findings.push(f);
        }
    };
    owners.deployments.iter().filter(|w| ours(&w.metadata)).for_each(|w| judge("Deployment", kobjects::judge_workload("Deployment", w, &ctx.cluster, true)));
    owners.stateful_sets.iter().filter(|w| ours(&w.metadata)).for_each(|w| judge("StatefulSet", kobjects::judge_workload("StatefulSet", w, &ctx.cluster, true)));
    owners.daemon_sets.iter().filter(|w| ours(&w.metadata)).for_each(|w| judge("DaemonSet", kobjects::judge_workload("DaemonSet", w, &ctx.cluster, true)));
    let pods = match Api::<Pod>::all(client.clone()).list(&ListParams::default()).await {
        Ok(p) => p.items,
        Err(e) => return Err(crate::cluster::api_error(&format!("list pods (cluster {})", ctx.cluster), e)),
    };
    let ours_pods: Vec<&Pod> = pods.iter().filter(|p| ours(&p.metadata)).collect();
    let (pod_findings, history) = judge_pods(ours_pods.iter().copied(), &owners, &ctx.cluster);
    findings.extend(pod_findings);
    if count.values().sum::<usize>() == 0 {
        return Ok(Outcome::fail(format!("cluster {} namespaces [{}]", ctx.cluster, namespaces.iter().cloned().collect::<Vec<_>>().join(", ")), "the platform's workloads", "no Deployments, StatefulSets or DaemonSets"));
    }
    let counts: Vec<String> = count.iter().map(|(k, n)| format!("{n} {k}s")).collect();
    let history = history.map(|h| format!("; {h}")).unwrap_or_default();
    Ok(Outcome::from_findings(findings, format!("cluster {}: {} and {} pods ready in {} platform namespaces{history}", ctx.cluster, counts.join(", "), ours_pods.len(), namespaces.len())))
}

/// Every `<svc>.<ns>.svc.clusterset.local` name this cluster's manifests use is served
/// across the mesh: some cluster has that Service, exported (a ServiceExport `Valid` without
/// `Conflict`, or the Cilium global annotation) and with Ready pods behind its selector.
pub(super) async fn cross_cluster_services_served(ctx: Ctx) -> CheckResult<Outcome> {
    let Some(target) = ctx.target.as_ref() else { return Ok(Outcome::skip("no cluster target")) };
    let r = rendered(&ctx)?;
    let re = regex::Regex::new(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc\.clusterset\.local").expect("static regex");
    let mut used: BTreeMap<(String, String), String> = BTreeMap::new();
    for o in &r.objects {
        let text = serde_json::to_string(&o.value).unwrap_or_default();
        for c in re.captures_iter(&text) {
            used.entry((c[3].to_string(), c[1].to_string())).or_insert_with(|| o.describe());
        }
    }
    if used.is_empty() {
        return Ok(Outcome::skip(format!("not applicable: cluster {}'s manifests use no <svc>.<ns>.svc.clusterset.local name", ctx.cluster)));
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
                Err(e) => return Err(crate::cluster::api_error(&format!("get Service {ns}/{svc} (cluster {cluster})"), e)),
            };
            let annotations = service.metadata.annotations.clone().unwrap_or_default();
            let global = GLOBAL_ANNOTATIONS.iter().any(|a| annotations.get(*a).is_some_and(|v| v == "true"));
            let export = match kobjects::get(client, &SERVICE_EXPORT, Some(ns), svc).await {
                Ok(e) => e,
                Err(Outcome::Fail { .. }) => None, // MCS-API not installed there
                Err(o) => return Err(o),
            };
            let export_ok = export.as_ref().map(|e| {
                let valid = e.condition("Valid").is_none_or(|c| c.status == "True");
                let conflict = e.condition("Conflict").is_some_and(|c| c.status == "True");
                (valid && !conflict, e.condition("Conflict").map(|c| c.message).unwrap_or_default())
            });
            let how: String = match (&export_ok, global) {
                // An export in conflict is broken whatever else the Service says (§2.4 [C6]).
                (Some((false, why)), _) => {
                    problems.push(Finding::new(format!("ServiceExport {ns}/{svc} (cluster {cluster})"), "Valid=True and Conflict not True", format!("invalid or in conflict ({why})")));
                    continue;
                }
                (Some((true, _)), _) => format!("ServiceExport {}", export.as_ref().map(|e| e.api_version.as_str()).unwrap_or_default()),
                (None, true) => "global service".into(),
                (None, false) => {
                    problems.push(Finding::new(
                        format!("Service {ns}/{svc} (cluster {cluster})"),
                        "exported to the mesh (a ServiceExport or annotation service.cilium.io/global: \"true\")",
                        format!("neither (annotations: {})", GLOBAL_ANNOTATIONS.iter().map(|a| format!("{a}={:?}", annotations.get(*a).map(String::as_str).unwrap_or("unset"))).collect::<Vec<_>>().join(", ")),
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
                other => return Err(other),
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
    Ok(Outcome::all(outcomes))
}

/// Every HelmRelease the repository writes once and renders for every cluster (a shared
/// base: `kubernetes/bases/` in the plan's layout, a component's `app/` in the community
/// layout) is Ready on this cluster (§6.2 [F3]). One LIST.
pub(super) async fn shared_bases_ready_everywhere(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let repo = repo(&ctx)?;
    let mut per_cluster: Vec<BTreeSet<(String, String, std::path::PathBuf)>> = vec![];
    for c in repo.clusters() {
        let r = repo.render(c).map_err(Outcome::error)?;
        per_cluster.push(r.of_kind("HelmRelease").map(|h| (h.namespace().unwrap_or("default").to_string(), h.name().to_string(), h.file.clone())).collect());
    }
    let shared: BTreeSet<(String, String)> = per_cluster
        .iter()
        .skip(1)
        .fold(per_cluster.first().cloned().unwrap_or_default(), |acc, s| acc.intersection(s).cloned().collect())
        .into_iter()
        .map(|(ns, name, _)| (ns, name))
        .collect();
    if shared.is_empty() || repo.clusters().len() < 2 {
        return Ok(Outcome::skip("not applicable: no shared-base HelmRelease is rendered for more than one cluster"));
    }
    let found = kobjects::list(client, &HELMRELEASE, None, None).await?;
    let mut outcomes = vec![];
    for (ns, name) in &shared {
        outcomes.push(match found.iter().find(|f| f.name() == name && f.namespace() == Some(ns.as_str())) {
            None => Outcome::fail(format!("HelmRelease {ns}/{name} (cluster {}, shared base)", ctx.cluster), "deployed", "not found"),
            Some(f) => judge_helmrelease(f, &ctx.cluster),
        });
    }
    Ok(match Outcome::all(outcomes) {
        Outcome::Pass { .. } => Outcome::pass(format!("cluster {}: all {} shared-base HelmReleases Ready ({})", ctx.cluster, shared.len(), shared.iter().map(|(n, h)| format!("{n}/{h}")).collect::<Vec<_>>().join(", "))),
        other => other,
    })
}

/// The per-cluster values the repository sets are the ones the cluster runs with:
/// Cilium's `cilium-config` (the chart's ConfigMap) has `cluster-name` = CLUSTER,
/// `cluster-id` = CLUSTER_ID and `ipv4-native-routing-cidr` = POD_CIDR, and every node's
/// podCIDR lies inside POD_CIDR.
pub(super) async fn cluster_variables_live(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let vars = variables(&ctx)?;
    let ns = Release::of(&rendered_release(&ctx, "cilium")?).namespace;
    let cm = match Api::<ConfigMap>::namespaced(client.clone(), &ns).get_opt("cilium-config").await {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(Outcome::fail(format!("ConfigMap {ns}/cilium-config (cluster {})", ctx.cluster), "present (written by the Cilium chart)", "not found")),
        Err(e) => return Err(crate::cluster::api_error(&format!("get ConfigMap {ns}/cilium-config (cluster {})", ctx.cluster), e)),
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
    let nodes = crate::cluster::nodes::list(client, &ctx.cluster).await?;
    match crate::cluster::nodes::expect_disjoint_pod_cidrs(&[(ctx.cluster.clone(), nodes, range)]) {
        Outcome::Fail { findings: f } => findings.extend(f),
        Outcome::Pass { .. } => evidence.push(format!("node podCIDRs inside POD_CIDR {}", range.map(|r| r.to_string()).unwrap_or("?".into()))),
        other => return Err(other),
    }
    Ok(Outcome::from_findings(findings, format!("cluster {}: {}", ctx.cluster, evidence.join(", "))))
}
