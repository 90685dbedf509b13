//! EPIC-7, cluster layer: the CloudNativePG operator and its CRDs, the shared PostgreSQL
//! Cluster's state, Dragonfly's state, read through the Kubernetes API.
//!
//! Names (Cluster, Dragonfly, HelmReleases) come from the repository's rendered manifests;
//! health signals from docs/reference/components.md §14 (CloudNativePG) and §15 (Dragonfly).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::DRAGONFLY;
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::api_error;
use crate::cluster::objects::{self, Found, Kind};

const PG_CLUSTER: Kind = Kind::namespaced(CNPG_GROUP, &["v1"], "Cluster");
const CRD: Kind = Kind::cluster_scoped("apiextensions.k8s.io", &["v1"], "CustomResourceDefinition");

/// §14 [PG1] `PhaseHealthy`.
const PG_HEALTHY_PHASE: &str = "Cluster in healthy state";
/// §15 [DF2]: `Ready` since operator v1.2.0, `ready` before.
const DRAGONFLY_READY_PHASES: [&str; 2] = ["Ready", "ready"];

// ---------------------------------------------------------------------------
// 7.1 CloudNativePG operator
// ---------------------------------------------------------------------------

/// The operator's HelmRelease (chart cloudnative-pg) as rendered for this cluster.
fn cnpg_operator_release(ctx: &Ctx) -> Result<(String, String), Outcome> {
    let r = rendered(ctx)?;
    let hr = objects(&r, HELM_GROUP, "HelmRelease")
        .into_iter()
        .find(|h| squash(&chart_name(h)) == "cloudnativepg")
        .ok_or_else(|| Outcome::fail(format!("cluster {}", ctx.cluster), "a HelmRelease of chart cloudnative-pg rendered", "none"))?;
    let ns = hr.str("/spec/targetNamespace").or(hr.namespace()).unwrap_or("default").to_string();
    Ok((hr.name().to_string(), ns))
}

/// §14 [PG5]: chart labels app.kubernetes.io/name=cloudnative-pg, instance=<release>.
fn cnpg_operator_selector(release: &str) -> String {
    format!("app.kubernetes.io/name=cloudnative-pg,app.kubernetes.io/instance={release}")
}

pub(super) async fn cnpg_operator_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let (release, ns) = cnpg_operator_release(&ctx)?;
    let hr_ns = rendered(&ctx)?
        .objects
        .iter()
        .find(|o| o.kind() == "HelmRelease" && o.name() == release)
        .and_then(|o| o.namespace().map(String::from))
        .unwrap_or_else(|| ns.clone());
    let hr = objects::require(client, &HELMRELEASE, Some(&hr_ns), &release).await?;
    let ready = objects::expect_condition(&hr, &HELMRELEASE, "Ready");
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&cnpg_operator_selector(&release)))
        .await
        .map_err(|e| api_error(&format!("list Deployments in {ns}"), e))?;
    let deployed = match deployments.items.first() {
        Some(d) => Outcome::pass(format!("Deployment {ns}/{} (cluster {})", d.metadata.name.clone().unwrap_or_default(), ctx.cluster)),
        None => Outcome::fail(format!("Deployment {ns} -l {} (cluster {})", cnpg_operator_selector(&release), ctx.cluster), "the operator Deployment", "none"),
    };
    Ok(Outcome::all([ready, deployed]))
}

pub(super) async fn cnpg_operator_healthy(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let (release, ns) = cnpg_operator_release(&ctx)?;
    let selector = cnpg_operator_selector(&release);
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| api_error(&format!("list Deployments in {ns}"), e))?;
    let Some(d) = deployments.items.first() else {
        return Ok(Outcome::fail(format!("Deployment {ns} -l {selector} (cluster {})", ctx.cluster), "the operator Deployment, available", "none"));
    };
    let name = d.metadata.name.clone().unwrap_or_default();
    let workload = objects::expect_workload_ready(client, &ctx.cluster, "Deployment", &ns, &name).await;
    let pods = objects::expect_pods_ready(client, &ctx.cluster, &ns, &selector).await;
    Ok(Outcome::all([workload, pods]))
}

/// Every `postgresql.cnpg.io` CRD is Established, and the kinds the repository uses are among them.
pub(super) async fn cnpg_crds_established(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let crds = objects::list(client, &CRD, None, None).await?;
    let cnpg: Vec<&Found> = crds.iter().filter(|c| c.str("/spec/group") == Some(CNPG_GROUP)).collect();
    let mut used: Vec<String> = match ctx.repo() {
        Ok(repo) => renders(repo)?.iter().flat_map(|(_, r)| r.objects.iter().filter(|o| group(o) == CNPG_GROUP).map(|o| o.kind().to_string()).collect::<Vec<_>>()).collect(),
        Err(_) => vec!["Cluster".into()],
    };
    used.sort();
    used.dedup();
    Ok(judge_crds(&ctx.cluster, &cnpg.iter().map(|c| crd_facts(c)).collect::<Vec<_>>(), &used))
}

/// (name, kind, Established status + reason).
fn crd_facts(c: &Found) -> (String, String, String) {
    let kind = c.str("/spec/names/kind").unwrap_or("").to_string();
    let est = c.condition("Established").map(|c| format!("{} ({})", c.status, c.reason)).unwrap_or_else(|| "no condition".into());
    (c.name().to_string(), kind, est)
}

fn judge_crds(cluster: &str, crds: &[(String, String, String)], used: &[String]) -> Outcome {
    let mut findings = vec![];
    if crds.is_empty() {
        return Outcome::fail(format!("CustomResourceDefinitions of group {CNPG_GROUP} (cluster {cluster})"), "installed and Established", "none");
    }
    for (name, _, est) in crds {
        if !est.starts_with("True") {
            findings.push(Finding::new(format!("CustomResourceDefinition {name} (cluster {cluster})"), "Established=True", format!("Established={est}")));
        }
    }
    for kind in used {
        if !crds.iter().any(|(_, k, _)| k == kind) {
            findings.push(Finding::new(format!("CRD of {kind}.{CNPG_GROUP} (cluster {cluster})"), "installed (the repository uses the kind)", "not installed"));
        }
    }
    let names: Vec<&str> = crds.iter().map(|(n, _, _)| n.as_str()).collect();
    Outcome::from_findings(findings, format!("{} CRDs of {CNPG_GROUP} Established on {cluster}: {}", crds.len(), names.join(", ")))
}

// ---------------------------------------------------------------------------
// 7.2 the shared PostgreSQL Cluster
// ---------------------------------------------------------------------------

/// The CNPG Clusters the repository renders for this cluster, as the API serves them.
pub(super) async fn live_pg_clusters(ctx: &Ctx) -> Result<Vec<Found>, Outcome> {
    let client = ctx.kube()?;
    let r = rendered(ctx)?;
    let wanted = objects(&r, CNPG_GROUP, "Cluster");
    if wanted.is_empty() {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "a CloudNativePG Cluster rendered", "none"));
    }
    let mut out = vec![];
    for c in wanted {
        out.push(objects::require(client, &PG_CLUSTER, c.namespace(), c.name()).await?);
    }
    Ok(out)
}

pub(super) async fn postgres_cluster_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let mut outcomes = vec![];
    for c in live_pg_clusters(&ctx).await? {
        let (name, ns) = (c.name().to_string(), c.namespace().unwrap_or("default").to_string());
        let object = c.describe(&PG_CLUSTER);
        let want = c.get("/spec/instances").and_then(Value::as_i64).unwrap_or(1);
        // §14 [PG3]: instance pods carry cnpg.io/cluster=<name>, cnpg.io/podRole=instance.
        let pods = Api::<Pod>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels(&format!("cnpg.io/cluster={name},cnpg.io/podRole=instance")))
            .await
            .map_err(|e| api_error(&format!("list pods of {object}"), e))?;
        let scheduled = pods.items.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()).count() as i64;
        let rw = Api::<Service>::namespaced(client.clone(), &ns).get_opt(&format!("{name}-rw")).await.map_err(|e| api_error("get Service", e))?;
        let mut findings = vec![];
        if scheduled < want {
            findings.push(Finding::new(format!("instance pods of {object} (cnpg.io/cluster={name})"), format!("{want} created and scheduled (spec.instances)"), format!("{scheduled} of {} scheduled", pods.items.len())));
        }
        if rw.is_none() {
            findings.push(Finding::new(format!("Service {ns}/{name}-rw (cluster {})", ctx.cluster), "present (the primary's service)", "not found"));
        }
        outcomes.push(Outcome::from_findings(findings, format!("{object}: {scheduled} instance pods scheduled, Service {name}-rw present (cluster {})", ctx.cluster)));
    }
    Ok(Outcome::all(outcomes))
}

pub(super) async fn postgres_cluster_healthy(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(Outcome::all(live_pg_clusters(&ctx).await?.iter().map(judge_pg_health)))
}

/// §14 [PG1]: phase "Cluster in healthy state", readyInstances == spec.instances, Ready=True.
fn judge_pg_health(c: &Found) -> Outcome {
    let object = c.describe(&PG_CLUSTER);
    let mut findings = vec![];
    let phase = c.str("/status/phase").unwrap_or("");
    if phase != PG_HEALTHY_PHASE {
        let reason = c.str("/status/phaseReason").map(|r| format!(" ({r})")).unwrap_or_default();
        findings.push(Finding::new(format!("{object} status.phase"), format!("{PG_HEALTHY_PHASE:?}"), format!("{phase:?}{reason}")));
    }
    let want = c.get("/spec/instances").and_then(Value::as_i64).unwrap_or(1);
    let ready = c.get("/status/readyInstances").and_then(Value::as_i64).unwrap_or(0);
    if ready != want {
        let failed = c.get("/status/instancesStatus/failed").map(|v| format!(", failed {v}")).unwrap_or_default();
        findings.push(Finding::new(format!("{object} status.readyInstances"), format!("{want} (spec.instances)"), format!("{ready}{failed}")));
    }
    if let Outcome::Fail { findings: f } = objects::expect_condition(c, &PG_CLUSTER, "Ready") {
        findings.extend(f);
    }
    Outcome::from_findings(findings, format!("{object}: {PG_HEALTHY_PHASE}, {ready}/{want} instances ready, Ready=True"))
}

/// A failover was exercised and finished: a standby was promoted (the primary is no longer
/// the first instance, or CNPG recorded a failover/switchover event on the Cluster) and
/// `currentPrimary == targetPrimary`. A new timeline alone is no proof (see
/// [`super::failover`]). The harness never forces a failover.
pub(super) async fn postgres_failover_recorded(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let mut outcomes = vec![];
    for c in live_pg_clusters(&ctx).await? {
        let ns = c.namespace().unwrap_or("default").to_string();
        let lp = ListParams::default().fields(&format!("involvedObject.kind=Cluster,involvedObject.name={}", c.name()));
        let events = Api::<Event>::namespaced(client.clone(), &ns).list(&lp).await.map_err(|e| api_error(&format!("list events of {}", c.describe(&PG_CLUSTER)), e))?;
        outcomes.push(super::failover::judge_failover(&c, &PG_CLUSTER, &events.items));
    }
    Ok(Outcome::all(outcomes))
}

// ---------------------------------------------------------------------------
// 7.4 Dragonfly
// ---------------------------------------------------------------------------

pub(super) async fn dragonfly_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let wanted = objects(&r, "dragonflydb.io", "Dragonfly");
    if wanted.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a Dragonfly rendered", "none"));
    }
    let mut outcomes = vec![];
    for d in wanted {
        let live = objects::require(client, &DRAGONFLY, d.namespace(), d.name()).await?;
        let object = live.describe(&DRAGONFLY);
        let ns = d.namespace().unwrap_or("default");
        let phase = live.str("/status/phase").unwrap_or("");
        outcomes.push(if DRAGONFLY_READY_PHASES.contains(&phase) {
            Outcome::pass(format!("{object}: phase {phase}"))
        } else {
            Outcome::fail(format!("{object} status.phase"), "Ready (operator >= 1.2; \"ready\" before)", format!("{phase:?}"))
        });
        // §15 [DF3]: pods app=<name>, Service = CR name (or serviceSpec.name).
        outcomes.push(objects::expect_pods_ready(client, &ctx.cluster, ns, &format!("app={},app.kubernetes.io/name=dragonfly", d.name())).await);
        let svc = live.str("/spec/serviceSpec/name").unwrap_or(d.name()).to_string();
        let found = Api::<Service>::namespaced(client.clone(), ns).get_opt(&svc).await.map_err(|e| api_error("get Service", e))?;
        outcomes.push(match found {
            Some(_) => Outcome::pass(format!("Service {ns}/{svc}")),
            None => Outcome::fail(format!("Service {ns}/{svc} (cluster {})", ctx.cluster), "present", "not found"),
        });
    }
    Ok(Outcome::all(outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;


    #[test]
    fn crds_not_established_or_missing_fail_by_name() {
        let crds = vec![
            ("clusters.postgresql.cnpg.io".to_string(), "Cluster".to_string(), "True (InitialNamesAccepted)".to_string()),
            ("databases.postgresql.cnpg.io".to_string(), "Database".to_string(), "False (Installing)".to_string()),
        ];
        let o = judge_crds("infra", &crds, &["Cluster".into(), "Database".into(), "ScheduledBackup".into()]);
        let text = o.details().join("\n");
        assert!(text.contains("CustomResourceDefinition databases.postgresql.cnpg.io (cluster infra): expected Established=True, observed Established=False (Installing)"), "{text}");
        assert!(text.contains("CRD of ScheduledBackup.postgresql.cnpg.io (cluster infra): expected installed"), "{text}");
        assert_eq!(judge_crds("infra", &crds[..1], &["Cluster".into()]).verdict(), crate::check::Verdict::Pass);
        assert_eq!(judge_crds("infra", &[], &[]).verdict(), crate::check::Verdict::Fail);
    }
}
