//! Scenarios: the platform's state in the simulated clusters, healthy or with one
//! thing broken.
//!
//! `healthy` (the default) puts the platform into both clusters the way Flux,
//! the charts and the operators would:
//! 1. the hand-written stand-in CRDs (`sim/scenarios/crds/`: Dragonfly, Keycloak);
//! 2. `fixtures/gitops` rendered per cluster ([`GitopsRepo::render`], the shared-base
//!    pattern with each cluster's Flux variables), only what the cluster's own
//!    Flux Kustomizations apply (sourceRef `flux-system`), only kinds the
//!    cluster serves (a kind without a CRD here is skipped and reported);
//! 3. what the charts/operators create (`sim/scenarios/workloads.yaml`), a bound
//!    PersistentVolume per fixture PVC;
//! 4. the Secrets external-secrets writes for every ExternalSecret (values from
//!    the 1Password stand-in [`Vault`], i.e. the real data-service credentials)
//!    and CNPG's `<cluster>-app` Secret;
//! 5. the status every controller writes (`sim/scenarios/status.yaml`), through
//!    the status subresource (server-side apply, manager [`STATUS_MANAGER`]);
//! 6. undoes any earlier fault (nodes Ready again, pods Ready again) and waits
//!    until every pod is Running and Ready and every workload is available.
//!
//! A fault scenario (`sim/scenarios/<name>.yaml`) first applies `healthy`, then
//! its `breaks` (pods not ready, a node NotReady, a status change merged over the
//! healthy status, a deletion), then waits until the change is visible.
//! Switching scenarios never restarts the simulation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::data::{DataPlan, Vault};
use super::{FIELD_MANAGER, SimConfig, kwok};
use crate::repo::{GitopsRepo, envsubst};

/// Field manager of the status the simulated controllers write.
pub const STATUS_MANAGER: &str = "platform-acceptance-sim-status";
/// The Git revision the simulated Flux reports as applied.
pub const SIM_REVISION: &str = "main@sha1:5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";
/// Image of every simulated container (kwok never runs it).
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10";

const SCENARIOS: [(&str, &str); 8] = [
    ("healthy", include_str!("../../../sim/scenarios/healthy.yaml")),
    (
        "cni-down",
        include_str!("../../../sim/scenarios/cni-down.yaml"),
    ),
    (
        "node-notready",
        include_str!("../../../sim/scenarios/node-notready.yaml"),
    ),
    (
        "ceph-degraded",
        include_str!("../../../sim/scenarios/ceph-degraded.yaml"),
    ),
    (
        "cert-not-ready",
        include_str!("../../../sim/scenarios/cert-not-ready.yaml"),
    ),
    (
        "pg-replica-lost",
        include_str!("../../../sim/scenarios/pg-replica-lost.yaml"),
    ),
    (
        "backup-missing",
        include_str!("../../../sim/scenarios/backup-missing.yaml"),
    ),
    (
        "kustomization-failed",
        include_str!("../../../sim/scenarios/kustomization-failed.yaml"),
    ),
];
const WORKLOADS_YAML: &str = include_str!("../../../sim/scenarios/workloads.yaml");
const STATUS_YAML: &str = include_str!("../../../sim/scenarios/status.yaml");
/// Hand-written stand-in CRDs (see the files for why).
pub const STANDIN_CRDS: [&str; 2] = [
    include_str!("../../../sim/scenarios/crds/dragonfly-standin.yaml"),
    include_str!("../../../sim/scenarios/crds/keycloak-standin.yaml"),
];

const POD_TIMEOUT: Duration = Duration::from_secs(240);
const WAIT_FOR_TIMEOUT: Duration = Duration::from_secs(90);

/// Scenario names, `healthy` first.
pub fn list() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(n, _)| *n).collect()
}

// ---------------------------------------------------------------------------
// Scenario files
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub breaks: Vec<Action>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub cluster: String,
    #[serde(flatten)]
    pub op: Op,
    #[serde(default)]
    pub wait_for: Option<WaitFor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Op {
    /// Pods matching `labelSelector` in `namespace` get Ready=False.
    PodsNotReady {
        namespace: String,
        #[serde(rename = "labelSelector")]
        label_selector: String,
        reason: String,
        message: String,
    },
    /// A node held NotReady by kwok.
    NodeNotReady {
        node: String,
        reason: String,
        message: String,
    },
    /// The healthy status of one object with `merge` merged over it (RFC 7386).
    Status {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        #[serde(default)]
        namespace: Option<String>,
        name: String,
        merge: Value,
    },
    /// Objects deleted (by name or label selector).
    Delete {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default, rename = "labelSelector")]
        label_selector: Option<String>,
    },
}

/// What the scenario waits for after a break.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitFor {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub absent: bool,
    #[serde(default)]
    pub condition: Option<ConditionIs>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConditionIs {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

/// The parsed scenario `name` (error lists the known names).
pub fn scenario(name: &str) -> Result<Scenario> {
    let (_, text) = SCENARIOS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        anyhow!(
            "unknown scenario {name:?}; known scenarios: {}",
            list().join(", ")
        )
    })?;
    serde_yaml_ng::from_str(text).with_context(|| format!("sim/scenarios/{name}.yaml"))
}

#[derive(Debug, Clone, Deserialize)]
struct StatusRule {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    status: Value,
}

fn status_rules() -> Result<Vec<StatusRule>> {
    serde_yaml_ng::from_str(STATUS_YAML).context("sim/scenarios/status.yaml")
}

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

/// What one `apply` did, per cluster.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub scenario: String,
    pub clusters: BTreeMap<String, ClusterReport>,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterReport {
    pub applied: usize,
    pub secrets: usize,
    pub statuses: usize,
    /// `apiVersion/Kind` of fixture objects not applied because the cluster does not serve the kind.
    pub skipped_kinds: BTreeSet<String>,
    pub pods_ready: usize,
}

/// Switches the simulation to scenario `name` (no restart).
pub async fn apply(cfg: &SimConfig, name: &str) -> Result<()> {
    let report = apply_with_report(cfg, name).await?;
    for (c, r) in &report.clusters {
        eprintln!(
            "sim: scenario {} on {c}: {} objects, {} secrets, {} statuses, {} pods ready{}",
            report.scenario,
            r.applied,
            r.secrets,
            r.statuses,
            r.pods_ready,
            if r.skipped_kinds.is_empty() {
                String::new()
            } else {
                format!(
                    "; kinds not served here (skipped): {}",
                    r.skipped_kinds
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    eprintln!(
        "sim: scenario {} applied in {:.1}s",
        report.scenario,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Like [`apply`], returning what was done.
pub async fn apply_with_report(cfg: &SimConfig, name: &str) -> Result<ApplyReport> {
    let sc = scenario(name)?;
    let start = Instant::now();
    let repo =
        GitopsRepo::load(&cfg.repo).with_context(|| format!("loading {}", cfg.repo.display()))?;
    let plan = DataPlan::from_repo(&cfg.repo)?;
    let vault = Mutex::new(Vault::load_or_create(cfg, &plan)?);
    let rules = status_rules()?;
    let clusters: Vec<String> = repo.clusters().to_vec();
    let mut sims = vec![];
    for c in &clusters {
        sims.push(ClusterSim::connect(cfg, &repo, c).await?);
    }
    let results =
        futures::future::join_all(sims.iter().map(|s| s.healthy(&repo, &vault, &rules))).await;
    let mut report = ApplyReport {
        scenario: sc.name.clone(),
        ..Default::default()
    };
    for (s, r) in sims.iter().zip(results) {
        report.clusters.insert(
            s.cluster.clone(),
            r.with_context(|| format!("scenario healthy on {}", s.cluster))?,
        );
    }
    vault.lock().expect("vault").save(cfg)?;
    // What the healthy platform's backup jobs would have written by now.
    super::backups::seed(cfg).await.context("seeding backup data")?;
    for action in &sc.breaks {
        let sim = sims
            .iter()
            .find(|s| s.cluster == action.cluster)
            .ok_or_else(|| anyhow!("scenario {}: unknown cluster {:?}", sc.name, action.cluster))?;
        sim.run(action, &rules)
            .await
            .with_context(|| format!("scenario {} on {}", sc.name, action.cluster))?;
    }
    for action in &sc.breaks {
        if let Some(w) = &action.wait_for {
            let sim = sims
                .iter()
                .find(|s| s.cluster == action.cluster)
                .expect("checked above");
            sim.wait_for(w)
                .await
                .with_context(|| format!("scenario {} on {}", sc.name, action.cluster))?;
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

// ---------------------------------------------------------------------------
// One cluster
// ---------------------------------------------------------------------------

struct ClusterSim {
    cluster: String,
    client: kube::Client,
    vars: BTreeMap<String, String>,
}

/// A resolved kind.
#[derive(Clone)]
struct Kind {
    ar: ApiResource,
    namespaced: bool,
    /// Has a status subresource (Velero's CRDs do not: status is part of the object).
    status_subresource: bool,
}

impl Kind {
    fn new(ar: ApiResource, caps: &ApiCapabilities) -> Kind {
        let status_subresource = caps
            .subresources
            .iter()
            .any(|(sr, _)| sr.plural.ends_with("/status") || sr.plural == "status");
        Kind {
            namespaced: caps.scope == Scope::Namespaced,
            status_subresource,
            ar,
        }
    }
}

impl ClusterSim {
    async fn connect(cfg: &SimConfig, repo: &GitopsRepo, cluster: &str) -> Result<ClusterSim> {
        let client = super::client(cfg, cluster).await?;
        let mut vars = repo.variables(cluster)?.values();
        vars.entry("CLUSTER".into())
            .or_insert_with(|| cluster.to_string());
        Ok(ClusterSim {
            cluster: cluster.into(),
            client,
            vars,
        })
    }

    fn subst(&self, text: &str) -> String {
        envsubst::substitute(text, &self.vars).text
    }

    async fn discover(&self) -> Result<BTreeMap<(String, String), Kind>> {
        let discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .context("API discovery")?;
        let mut out = BTreeMap::new();
        for group in discovery.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    let caps: ApiCapabilities = caps;
                    if ar.plural.contains('/') {
                        continue;
                    }
                    out.insert(
                        (ar.api_version.clone(), ar.kind.clone()),
                        Kind::new(ar, &caps),
                    );
                }
            }
        }
        Ok(out)
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &kind.ar),
            (true, None) => Api::default_namespaced_with(self.client.clone(), &kind.ar),
            (false, _) => Api::all_with(self.client.clone(), &kind.ar),
        }
    }

    async fn resolve(&self, api_version: &str, kind: &str) -> Result<Kind> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .with_context(|| {
                format!(
                    "{api_version} {kind} is not served by cluster {}",
                    self.cluster
                )
            })?;
        Ok(Kind::new(ar, &caps))
    }

    /// Server-side apply of one object (field manager [`FIELD_MANAGER`]).
    async fn apply_object(
        &self,
        kinds: &BTreeMap<(String, String), Kind>,
        obj: &Value,
    ) -> Result<bool> {
        let (av, k) = (str_at(obj, "/apiVersion"), str_at(obj, "/kind"));
        let Some(kind) = kinds.get(&(av.to_string(), k.to_string())) else {
            return Ok(false);
        };
        let name = str_at(obj, "/metadata/name");
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        let mut body = obj.clone();
        if let Some(m) = body.as_object_mut() {
            m.remove("status");
        }
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        self.api(kind, ns)
            .patch(name, &pp, &Patch::Apply(&body))
            .await
            .with_context(|| {
                format!(
                    "apply {k}/{name}{} on {}",
                    ns.map(|n| format!(" in {n}")).unwrap_or_default(),
                    self.cluster
                )
            })?;
        Ok(true)
    }

    async fn apply_status(
        &self,
        kind: &Kind,
        ns: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<()> {
        let body = json!({"apiVersion": kind.ar.api_version, "kind": kind.ar.kind, "metadata": {"name": name}, "status": status});
        let pp = PatchParams::apply(STATUS_MANAGER).force();
        let api = self.api(kind, ns);
        let result = if kind.status_subresource {
            api.patch_status(name, &pp, &Patch::Apply(&body)).await
        } else {
            api.patch(name, &pp, &Patch::Apply(&body)).await
        };
        result.with_context(|| format!("status of {}/{name} on {}", kind.ar.kind, self.cluster))?;
        Ok(())
    }

    // ---- healthy ----------------------------------------------------------------

    async fn healthy(
        &self,
        repo: &GitopsRepo,
        vault: &Mutex<Vault>,
        rules: &[StatusRule],
    ) -> Result<ClusterReport> {
        let mut report = ClusterReport::default();
        self.install_standin_crds().await?;
        let kinds = self.discover().await?;

        // What to apply: the cluster's own Flux output + what charts/operators create.
        let rendered = repo.render(&self.cluster)?;
        let mut objects = own_flux_objects(&rendered);
        objects.extend(self.expand_workloads()?);
        objects.extend(bound_volumes(&objects));
        dedupe(&mut objects);
        for o in &objects {
            let key = (
                str_at(o, "/apiVersion").to_string(),
                str_at(o, "/kind").to_string(),
            );
            if !kinds.contains_key(&key) {
                report.skipped_kinds.insert(format!("{}/{}", key.0, key.1));
            }
        }

        // Namespaces first (every namespace an object names), then cluster-scoped, then the rest.
        let mut namespaces: BTreeSet<String> = objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        for o in objects.iter().filter(|o| str_at(o, "/kind") == "Namespace") {
            namespaces.remove(str_at(o, "/metadata/name"));
        }
        let mut first: Vec<Value> = namespaces
            .into_iter()
            .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}))
            .collect();
        first.extend(
            objects
                .iter()
                .filter(|o| str_at(o, "/kind") == "Namespace")
                .cloned(),
        );
        for o in &first {
            self.apply_object(&kinds, o).await?;
        }
        objects.retain(|o| str_at(o, "/kind") != "Namespace");
        objects.sort_by_key(|o| {
            match kinds.get(&(
                str_at(o, "/apiVersion").to_string(),
                str_at(o, "/kind").to_string(),
            )) {
                Some(k) if !k.namespaced => 0,
                _ => 1,
            }
        });
        let applied: Vec<bool> =
            futures::stream::iter(objects.iter().map(|o| self.apply_object(&kinds, o)))
                .buffered(8)
                .try_collect()
                .await?;
        report.applied = first.len() + applied.iter().filter(|a| **a).count();

        // Secrets written by external-secrets and CNPG.
        let secrets = {
            let mut v = vault.lock().expect("vault");
            let mut secrets: Vec<Value> = objects
                .iter()
                .filter(|o| {
                    str_at(o, "/kind") == "ExternalSecret"
                        && str_at(o, "/apiVersion").starts_with("external-secrets.io/")
                })
                .map(|es| eso_secret(es, &mut v))
                .collect();
            for c in objects.iter().filter(|o| {
                str_at(o, "/kind") == "Cluster"
                    && str_at(o, "/apiVersion").starts_with("postgresql.cnpg.io/")
            }) {
                secrets.push(cnpg_app_secret(c, &v)?);
            }
            secrets
        };
        futures::stream::iter(secrets.iter().map(|s| self.apply_object(&kinds, s)))
            .buffered(8)
            .try_collect::<Vec<_>>()
            .await?;
        report.secrets = secrets.len();

        // Undo earlier faults on nodes before waiting for pods.
        self.restore_nodes().await?;

        // Status of every applied object that has a rule.
        let jobs: Vec<_> = objects
            .iter()
            .filter_map(|o| self.status_job(&kinds, rules, o))
            .collect();
        report.statuses = jobs.len();
        futures::stream::iter(jobs.into_iter().map(|(kind, ns, name, status)| async move {
            self.apply_status(&kind, ns.as_deref(), &name, status).await
        }))
        .buffered(8)
        .try_collect::<Vec<_>>()
        .await?;
        // LoadBalancer addresses (LB IPAM) of the Services that name one.
        for o in objects.iter().filter(|o| str_at(o, "/kind") == "Service") {
            if let Some(ip) = o
                .pointer("/metadata/annotations/platform-acceptance.io~1sim-lb-ip")
                .and_then(Value::as_str)
            {
                let kind = kinds
                    .get(&("v1".to_string(), "Service".to_string()))
                    .expect("core Service");
                // §2.3 [C2]: status.loadBalancer.ingress[].ip and condition cilium.io/IPAMRequestSatisfied.
                let status = json!({
                    "loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]},
                    "conditions": [{"type": "cilium.io/IPAMRequestSatisfied", "status": "True", "reason": "satisfied",
                                    "message": "", "lastTransitionTime": now(), "observedGeneration": 1}],
                });
                self.apply_status(
                    kind,
                    o.pointer("/metadata/namespace").and_then(Value::as_str),
                    str_at(o, "/metadata/name"),
                    status,
                )
                .await?;
            }
        }

        report.pods_ready = self.settle_pods(&objects).await?;
        Ok(report)
    }

    async fn install_standin_crds(&self) -> Result<()> {
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
                "customresourcedefinitions",
            ),
        );
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let mut names = vec![];
        for file in STANDIN_CRDS {
            for doc in serde_yaml_ng::Deserializer::from_str(file) {
                let crd = Value::deserialize(doc)?;
                if crd.is_null() {
                    continue;
                }
                let name = str_at(&crd, "/metadata/name").to_string();
                api.patch(&name, &pp, &Patch::Apply(&crd))
                    .await
                    .with_context(|| format!("install stand-in CRD {name}"))?;
                names.push(name);
            }
        }
        let start = Instant::now();
        for name in names {
            loop {
                let crd = api.get(&name).await?;
                let established = crd
                    .data
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    });
                if established {
                    break;
                }
                if start.elapsed() > Duration::from_secs(30) {
                    bail!(
                        "stand-in CRD {name} not Established after 30s on {}",
                        self.cluster
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    fn expand_workloads(&self) -> Result<Vec<Value>> {
        let entries: Vec<Value> = serde_yaml_ng::from_str(&self.subst(WORKLOADS_YAML))
            .context("sim/scenarios/workloads.yaml")?;
        let mut out = vec![];
        for e in &entries {
            if let Some(cs) = e.get("clusters").and_then(Value::as_array)
                && !cs.iter().any(|c| c.as_str() == Some(self.cluster.as_str()))
            {
                continue;
            }
            out.extend(expand_entry(e)?);
        }
        Ok(out)
    }

    /// (kind, namespace, name, status) for an object whose kind has a status rule.
    fn status_job(
        &self,
        kinds: &BTreeMap<(String, String), Kind>,
        rules: &[StatusRule],
        obj: &Value,
    ) -> Option<(Kind, Option<String>, String, Value)> {
        let (av, k) = (str_at(obj, "/apiVersion"), str_at(obj, "/kind"));
        let rule = rules.iter().find(|r| r.kind == k && r.api_version == av)?;
        let kind = kinds.get(&(av.to_string(), k.to_string()))?.clone();
        let status = self.render_status(&rule.status, obj);
        Some((
            kind,
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            str_at(obj, "/metadata/name").into(),
            status,
        ))
    }

    /// A status template filled in for `obj`.
    fn render_status(&self, template: &Value, obj: &Value) -> Value {
        let text = self.subst(&serde_json::to_string(template).expect("json"));
        let mut status: Value = serde_json::from_str(&text).unwrap_or_else(|_| template.clone());
        // Generation: SSA of an unchanged spec keeps it; a created object starts at 1.
        let generation = obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let target = obj
            .pointer("/spec/target/name")
            .and_then(Value::as_str)
            .unwrap_or(str_at(obj, "/metadata/name"));
        let vars: [(&str, String); 5] = [
            ("{{now}}", now()),
            ("{{revision}}", SIM_REVISION.into()),
            ("{{name}}", str_at(obj, "/metadata/name").into()),
            (
                "{{namespace}}",
                obj.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .into(),
            ),
            ("{{target}}", target.into()),
        ];
        fill(&mut status, generation, &vars);
        if str_at(obj, "/kind") == "HTTPRoute" {
            let parents: Vec<Value> = obj
                .pointer("/spec/parentRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let mut pr = p.clone();
                    if pr.get("namespace").is_none()
                        && let Some(ns) = obj.pointer("/metadata/namespace")
                    {
                        pr["namespace"] = ns.clone();
                    }
                    pr["group"] = json!("gateway.networking.k8s.io");
                    pr["kind"] = json!("Gateway");
                    // §2.3 [G3]
                    json!({"parentRef": pr, "controllerName": "io.cilium/gateway-controller", "conditions": [
                        {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Accepted HTTPRoute", "lastTransitionTime": now(), "observedGeneration": 1},
                        {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "Service reference is valid", "lastTransitionTime": now(), "observedGeneration": 1},
                    ]})
                })
                .collect();
            status["parents"] = Value::Array(parents);
        }
        status
    }

    /// Nodes back to Ready and managed by kwok.
    async fn restore_nodes(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        for n in nodes.list(&ListParams::default()).await? {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            let annotations = n.metadata.annotations.clone().unwrap_or_default();
            if labels.contains_key(kwok::NOT_READY_LABEL)
                || !annotations.contains_key(kwok::NODE_ANNOTATION)
            {
                kwok::set_node_ready(&self.client, n.metadata.name.as_deref().unwrap_or_default())
                    .await?;
            }
        }
        Ok(())
    }

    /// Waits until every node is Ready, every pod on a Ready node is Running and
    /// Ready (re-readying pods an earlier fault left not ready), pods carry the
    /// role labels their operators set, and every workload applied is available.
    async fn settle_pods(&self, objects: &[Value]) -> Result<usize> {
        let start = Instant::now();
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::all(self.client.clone());
        loop {
            let node_list = nodes.list(&ListParams::default()).await?;
            let ready_nodes: BTreeSet<String> = node_list
                .iter()
                .filter(|n| kwok::node_ready(n))
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            let mut problems = vec![];
            if ready_nodes.len() != node_list.items.len() {
                problems.push(format!(
                    "{} of {} nodes Ready",
                    ready_nodes.len(),
                    node_list.items.len()
                ));
            }
            let mut ready = 0;
            for p in pods.list(&ListParams::default()).await? {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let name = p.metadata.name.clone().unwrap_or_default();
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                let phase = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                let on_ready_node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some_and(|n| ready_nodes.contains(n));
                if phase == "Running" && on_ready_node && !pod_ready(&p) {
                    set_pod_ready(&self.client, &p, true, "", "").await?;
                }
                if phase == "Running" && pod_ready(&p) {
                    ready += 1;
                } else if phase != "Succeeded" {
                    problems.push(format!("pod {ns}/{name} {phase}"));
                }
                self.label_role(&p).await?;
            }
            for w in objects.iter().filter(|o| {
                matches!(
                    str_at(o, "/kind"),
                    "Deployment" | "DaemonSet" | "StatefulSet"
                )
            }) {
                if let Some(p) = self.workload_problem(w).await? {
                    problems.push(p);
                }
            }
            if problems.is_empty() {
                return Ok(ready);
            }
            let last = problems
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            if start.elapsed() > POD_TIMEOUT {
                bail!(
                    "{}: not settled after {}s: {last}",
                    self.cluster,
                    POD_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Operator-set pod labels: Dragonfly `role=master|replica` (§15 [DF3]).
    async fn label_role(&self, p: &Pod) -> Result<()> {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        if labels.get("app.kubernetes.io/name").map(String::as_str) == Some("dragonfly")
            && !labels.contains_key("role")
        {
            let name = p.metadata.name.clone().unwrap_or_default();
            let role = if name.ends_with("-0") {
                "master"
            } else {
                "replica"
            };
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                p.metadata.namespace.as_deref().unwrap_or("default"),
            );
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"role": role}}})),
            )
            .await?;
        }
        Ok(())
    }

    async fn workload_problem(&self, w: &Value) -> Result<Option<String>> {
        let kind = str_at(w, "/kind");
        let ns = w
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let name = str_at(w, "/metadata/name");
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("apps", "v1", kind));
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        let Some(obj) = api.get_opt(name).await? else {
            return Ok(Some(format!("{kind} {ns}/{name} missing")));
        };
        let st = |p: &str| obj.data.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let observed = st("/status/observedGeneration") >= obj.metadata.generation.unwrap_or(0);
        let (have, want) = match kind {
            "DaemonSet" => (
                st("/status/numberReady"),
                st("/status/desiredNumberScheduled"),
            ),
            "Deployment" => (
                st("/status/availableReplicas"),
                obj.data
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            ),
            _ => (
                st("/status/readyReplicas"),
                obj.data
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1),
            ),
        };
        Ok((!observed || want == 0 || have != want)
            .then(|| format!("{kind} {ns}/{name} {have}/{want} ready")))
    }

    // ---- breaks -----------------------------------------------------------------

    async fn run(&self, action: &Action, rules: &[StatusRule]) -> Result<()> {
        match &action.op {
            Op::PodsNotReady {
                namespace,
                label_selector,
                reason,
                message,
            } => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let list = api
                    .list(&ListParams::default().labels(label_selector))
                    .await?;
                if list.items.is_empty() {
                    bail!("no pod matches {label_selector} in {namespace}");
                }
                for p in &list {
                    set_pod_ready(&self.client, p, false, reason, message).await?;
                }
            }
            Op::NodeNotReady {
                node,
                reason,
                message,
            } => kwok::set_node_not_ready(&self.client, node, reason, message).await?,
            Op::Status {
                api_version,
                kind,
                namespace,
                name,
                merge,
            } => {
                let k = self.resolve(api_version, kind).await?;
                let rule = rules
                    .iter()
                    .find(|r| r.kind == *kind && r.api_version == *api_version)
                    .ok_or_else(|| anyhow!("no healthy status rule for {api_version} {kind}"))?;
                let obj = self
                    .api(&k, namespace.as_deref())
                    .get(name)
                    .await
                    .with_context(|| format!("{kind} {name}"))?;
                let obj = serde_json::to_value(&obj)?;
                let mut status = self.render_status(&rule.status, &obj);
                let patch = self.render_status(merge, &obj);
                merge_patch(&mut status, &patch);
                self.apply_status(&k, namespace.as_deref(), name, status)
                    .await?;
            }
            Op::Delete {
                api_version,
                kind,
                namespace,
                name,
                label_selector,
            } => {
                let k = self.resolve(api_version, kind).await?;
                let api = self.api(&k, namespace.as_deref());
                let names: Vec<String> = match (name, label_selector) {
                    (Some(n), _) => vec![n.clone()],
                    (None, Some(sel)) => api
                        .list(&ListParams::default().labels(sel))
                        .await?
                        .into_iter()
                        .filter_map(|o| o.metadata.name)
                        .collect(),
                    (None, None) => bail!("delete needs a name or a labelSelector"),
                };
                for n in names {
                    api.delete(&n, &DeleteParams::default()).await?;
                }
            }
        }
        Ok(())
    }

    async fn wait_for(&self, w: &WaitFor) -> Result<()> {
        let k = self.resolve(&w.api_version, &w.kind).await?;
        let api = self.api(&k, w.namespace.as_deref());
        let start = Instant::now();
        loop {
            let obj = serde_json::to_value(api.get(&w.name).await?)?;
            let ok = if let Some(c) = &w.condition {
                obj.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter().any(|x| {
                            x["type"] == c.type_.as_str() && x["status"] == c.status.as_str()
                        })
                    })
            } else if let Some(p) = &w.pointer {
                let v = obj.pointer(p);
                if w.absent {
                    v.is_none()
                } else {
                    v == w.equals.as_ref()
                }
            } else {
                true
            };
            if ok {
                return Ok(());
            }
            if start.elapsed() > WAIT_FOR_TIMEOUT {
                bail!(
                    "{} {} did not reach {w:?} within {}s",
                    w.kind,
                    w.name,
                    WAIT_FOR_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Replaces placeholders in every string; `"{{generation}}"` alone becomes a number.
fn fill(v: &mut Value, generation: i64, vars: &[(&str, String)]) {
    match v {
        Value::String(s) if s == "{{generation}}" => *v = json!(generation),
        Value::String(s) => {
            for (k, val) in vars {
                if s.contains(k) {
                    *s = s.replace(k, val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fill(x, generation, vars)),
        Value::Object(o) => o.values_mut().for_each(|x| fill(x, generation, vars)),
        _ => {}
    }
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    if let Value::Object(p) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let t = target.as_object_mut().expect("object");
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    } else {
        *target = patch.clone();
    }
}

/// The objects applied by the cluster's own Flux Kustomizations: those reached
/// from `flux-system` through Kustomizations whose source is the `flux-system`
/// GitRepository. (The renderer also follows Kustomizations of other sources,
/// e.g. `keycloak-crds`, whose paths belong to other repositories.)
fn own_flux_objects(rendered: &crate::repo::Rendered) -> Vec<Value> {
    let mut allowed: BTreeSet<String> = BTreeSet::from(["flux-system".to_string()]);
    loop {
        let before = allowed.len();
        for o in &rendered.objects {
            if o.kind() == "Kustomization"
                && o.api_version().starts_with("kustomize.toolkit.fluxcd.io/")
                && allowed.contains(&o.applied_by)
                && o.str("/spec/sourceRef/name").unwrap_or("flux-system") == "flux-system"
            {
                allowed.insert(o.name().to_string());
            }
        }
        if allowed.len() == before {
            break;
        }
    }
    rendered
        .objects
        .iter()
        .filter(|o| allowed.contains(&o.applied_by))
        .map(|o| o.value.clone())
        .collect()
}

fn object_key(o: &Value) -> (String, String, String, String) {
    let group = str_at(o, "/apiVersion")
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or("")
        .to_string();
    (
        group,
        str_at(o, "/kind").into(),
        str_at(o, "/metadata/namespace").into(),
        str_at(o, "/metadata/name").into(),
    )
}

/// Keeps the last of objects with the same group/kind/namespace/name.
fn dedupe(objects: &mut Vec<Value>) {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Value> = objects
        .drain(..)
        .rev()
        .filter(|o| seen.insert(object_key(o)))
        .collect();
    out.reverse();
    *objects = out;
}

fn labels_of(e: &Value, keys: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    for k in keys {
        if let Some(Value::Object(o)) = e.get(*k) {
            for (a, b) in o {
                m.insert(
                    a.clone(),
                    Value::String(
                        b.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| b.to_string()),
                    ),
                );
            }
        }
    }
    m
}

fn containers(e: &Value, name: &str) -> Vec<Value> {
    let names: Vec<String> = e
        .get("containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec![name.to_string()]);
    names
        .into_iter()
        .map(|n| json!({"name": n, "image": PAUSE_IMAGE}))
        .collect()
}

/// One entry of workloads.yaml to Kubernetes objects.
fn expand_entry(e: &Value) -> Result<Vec<Value>> {
    if let Some(obj) = e.get("object") {
        return Ok(vec![obj.clone()]);
    }
    let ns = str_at(e, "/namespace");
    let name = str_at(e, "/name");
    if let Some(kind) = e.get("workload").and_then(Value::as_str) {
        let selector = labels_of(e, &["selector"]);
        let pod_labels = labels_of(e, &["selector", "labels"]);
        let obj_labels = labels_of(e, &["selector", "labels", "workloadLabels"]);
        let mut spec = json!({
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": containers(e, name), "terminationGracePeriodSeconds": 0},
            },
        });
        match kind {
            "Deployment" => spec["replicas"] = e.get("replicas").cloned().unwrap_or(json!(1)),
            "StatefulSet" => {
                spec["replicas"] = e.get("replicas").cloned().unwrap_or(json!(1));
                spec["serviceName"] = json!(name);
                spec["podManagementPolicy"] = json!("Parallel");
            }
            "DaemonSet" => {}
            other => bail!("workloads.yaml {name}: unknown workload kind {other}"),
        }
        // Optional pass-throughs: `podSpec` (merged into the pod template spec, e.g. the
        // anti-affinity/nodeSelector an operator sets) and `workloadAnnotations`.
        if let Some(extra) = e.get("podSpec").and_then(Value::as_object) {
            for (k, v) in extra {
                spec["template"]["spec"][k] = v.clone();
            }
        }
        let annotations = labels_of(e, &["workloadAnnotations"]);
        return Ok(vec![json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "labels": obj_labels, "annotations": annotations},
            "spec": spec,
        })]);
    }
    if let Some(n) = e.get("pods").and_then(Value::as_u64) {
        // CNPG instance Pods (§14 [PG3]): <cluster>-<n>, the first is the primary.
        return Ok((1..=n)
            .map(|i| {
                let mut labels = labels_of(e, &["selector", "labels"]);
                let role = if i == 1 { "primary" } else { "replica" };
                labels.insert("cnpg.io/instanceName".into(), json!(format!("{name}-{i}")));
                labels.insert("cnpg.io/instanceRole".into(), json!(role));
                labels.insert("role".into(), json!(role));
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{name}-{i}"), "namespace": ns, "labels": labels},
                    "spec": {"containers": containers(e, name), "terminationGracePeriodSeconds": 0},
                })
            })
            .collect());
    }
    if let Some(s) = e.get("service") {
        let ports: Vec<Value> = s
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                let mut p = p.clone();
                if p.get("protocol").is_none() {
                    p["protocol"] = json!("TCP");
                }
                if p.get("targetPort").is_none() {
                    p["targetPort"] = p["port"].clone();
                }
                p
            })
            .collect();
        let mut spec =
            json!({"type": s.get("type").cloned().unwrap_or(json!("ClusterIP")), "ports": ports});
        if let Some(sel) = s.get("selector") {
            spec["selector"] = Value::Object(labels_of(&json!({"s": sel}), &["s"]));
        }
        if let Some(ip) = s.get("clusterIP") {
            spec["clusterIP"] = ip.clone();
        }
        let mut annotations = labels_of(s, &["annotations"]);
        if let Some(ip) = s.get("loadBalancerIP").and_then(Value::as_str) {
            // Read back by the scenario to write status.loadBalancer (LB IPAM's job).
            annotations.insert("platform-acceptance.io/sim-lb-ip".into(), json!(ip));
            annotations.insert("lbipam.cilium.io/ips".into(), json!(ip));
        }
        return Ok(vec![json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": s["name"], "namespace": s["namespace"], "labels": labels_of(s, &["labels"]), "annotations": annotations},
            "spec": spec,
        })]);
    }
    bail!("workloads.yaml: entry {name:?} has none of workload/pods/service/object")
}

/// A PersistentVolume pre-bound to every PVC (what the CSI provisioner of its
/// StorageClass would create).
fn bound_volumes(objects: &[Value]) -> Vec<Value> {
    let provisioners: BTreeMap<&str, &str> = objects
        .iter()
        .filter(|o| str_at(o, "/kind") == "StorageClass")
        .map(|o| (str_at(o, "/metadata/name"), str_at(o, "/provisioner")))
        .collect();
    objects
        .iter()
        .filter(|o| str_at(o, "/kind") == "PersistentVolumeClaim")
        .map(|pvc| {
            let ns = str_at(pvc, "/metadata/namespace");
            let name = str_at(pvc, "/metadata/name");
            let sc = str_at(pvc, "/spec/storageClassName");
            let driver = provisioners.get(sc).copied().filter(|d| !d.is_empty()).unwrap_or("rook-ceph.rbd.csi.ceph.com");
            let size = pvc.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"));
            let mut pv = json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": format!("pv-sim-{ns}-{name}"), "annotations": {"pv.kubernetes.io/provisioned-by": driver}},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": sc,
                    "claimRef": {"namespace": ns, "name": name},
                },
            });
            if driver.contains('/') {
                // not a CSI driver name (openebs.io/local: a hostpath volume under its BasePath, §8 [O1])
                pv["spec"]["hostPath"] = json!({"path": format!("/var/openebs/local/pv-sim-{ns}-{name}")});
            } else {
                pv["spec"]["csi"] = json!({"driver": driver, "volumeHandle": format!("sim-{ns}-{name}")});
            }
            pv
        })
        .collect()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Sets a Running pod's Ready/ContainersReady conditions and container readiness
/// (what the kubelet reports; kwok only readies Pending pods, so this sticks).
async fn set_pod_ready(
    client: &kube::Client,
    p: &Pod,
    ready: bool,
    reason: &str,
    message: &str,
) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        p.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let name = p.metadata.name.clone().unwrap_or_default();
    let status = serde_json::to_value(p.status.clone().unwrap_or_default())?;
    let flag = if ready { "True" } else { "False" };
    let mut conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for t in ["Ready", "ContainersReady"] {
        conditions.retain(|c| c["type"] != t);
        let mut c = json!({"type": t, "status": flag, "lastTransitionTime": now()});
        if !ready {
            c["reason"] = json!(reason);
            c["message"] = json!(message);
        }
        conditions.push(c);
    }
    let mut containers: Vec<Value> = status
        .get("containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in containers.iter_mut() {
        c["ready"] = json!(ready);
    }
    let patch = json!({"status": {"conditions": conditions, "containerStatuses": containers}});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("pod {name} readiness"))?;
    Ok(())
}

/// The Secret external-secrets writes for one ExternalSecret (§10.2 [ES4]):
/// `spec.data[]` and `spec.dataFrom[].extract` read from the vault, then
/// `spec.target.template` (type, metadata, data with `{{ .key }}` references).
fn eso_secret(es: &Value, vault: &mut Vault) -> Value {
    let ns = str_at(es, "/metadata/namespace");
    let target = es
        .pointer("/spec/target/name")
        .and_then(Value::as_str)
        .unwrap_or(str_at(es, "/metadata/name"));
    let template = es.pointer("/spec/target/template");
    let template_data: Map<String, Value> = template
        .and_then(|t| t.get("data"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let reference = regex::Regex::new(r"\{\{\s*\.([A-Za-z0-9_]+)\s*(?:\|\s*([A-Za-z]+)\s*)?\}\}")
        .expect("regex");
    let wanted: Vec<String> = template_data
        .values()
        .filter_map(Value::as_str)
        .flat_map(|t| {
            reference
                .captures_iter(t)
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for d in es
        .pointer("/spec/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = str_at(d, "/secretKey");
        let item = str_at(d, "/remoteRef/key");
        let prop = d
            .pointer("/remoteRef/property")
            .and_then(Value::as_str)
            .unwrap_or("password");
        values.insert(key.into(), vault.property(item, prop));
    }
    for d in es
        .pointer("/spec/dataFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(item) = d.pointer("/extract/key").and_then(Value::as_str) {
            values.extend(vault.extract(item, &wanted));
        }
    }
    let data: BTreeMap<String, String> = if template_data.is_empty() {
        values
    } else {
        template_data
            .iter()
            .map(|(k, t)| {
                let t = t.as_str().unwrap_or("");
                let out = reference.replace_all(t, |c: &regex::Captures| {
                    let v = values.get(&c[1]).cloned().unwrap_or_default();
                    if c.get(2).is_some_and(|f| f.as_str() == "urlquery") {
                        urlquery(&v)
                    } else {
                        v
                    }
                });
                (k.clone(), out.into_owned())
            })
            .collect()
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded: Map<String, Value> = data
        .into_iter()
        .map(|(k, v)| (k, json!(b64.encode(v))))
        .collect();
    let mut labels = template
        .and_then(|t| t.pointer("/metadata/labels"))
        .cloned()
        .unwrap_or(json!({}));
    labels["reconcile.external-secrets.io/managed"] = json!("true");
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": target, "namespace": ns, "labels": labels,
            "annotations": template.and_then(|t| t.pointer("/metadata/annotations")).cloned().unwrap_or(json!({})),
        },
        "type": template.and_then(|t| t.get("type")).and_then(Value::as_str).unwrap_or("Opaque"),
        "data": encoded,
    })
}

fn urlquery(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// CNPG's `<cluster>-app` Secret (§14 [PG2] pkg/specs/secrets.go).
fn cnpg_app_secret(cluster: &Value, vault: &Vault) -> Result<Value> {
    let name = str_at(cluster, "/metadata/name");
    let ns = str_at(cluster, "/metadata/namespace");
    let db = cluster
        .pointer("/spec/bootstrap/initdb/database")
        .and_then(Value::as_str)
        .unwrap_or("app");
    let user = cluster
        .pointer("/spec/bootstrap/initdb/owner")
        .and_then(Value::as_str)
        .unwrap_or(db);
    let pw = vault.role_password(user)?;
    let host = format!("{name}-rw");
    let q = urlquery(pw);
    let data: BTreeMap<&str, String> = BTreeMap::from([
        ("username", user.to_string()),
        ("user", user.to_string()),
        ("password", pw.to_string()),
        ("dbname", db.to_string()),
        ("host", host.clone()),
        ("port", "5432".into()),
        ("pgpass", format!("{host}:5432:{db}:{user}:{pw}\n")),
        (
            "uri",
            format!("postgresql://{user}:{q}@{host}.{ns}:5432/{db}"),
        ),
        (
            "jdbc-uri",
            format!("jdbc:postgresql://{host}.{ns}:5432/{db}?password={q}&user={user}"),
        ),
        (
            "fqdn-uri",
            format!("postgresql://{user}:{q}@{host}.{ns}.svc.cluster.local:5432/{db}"),
        ),
        (
            "fqdn-jdbc-uri",
            format!(
                "jdbc:postgresql://{host}.{ns}.svc.cluster.local:5432/{db}?password={q}&user={user}"
            ),
        ),
    ]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let encoded: Map<String, Value> = data
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(b64.encode(v))))
        .collect();
    Ok(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": format!("{name}-app"), "namespace": ns,
            "labels": {"cnpg.io/cluster": name, "cnpg.io/userType": "app", "cnpg.io/reload": "true"},
        },
        "type": "kubernetes.io/basic-auth",
        "data": encoded,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_parses_and_names_itself() {
        for name in list() {
            let sc = scenario(name).unwrap();
            assert_eq!(sc.name, name);
            assert_eq!(sc.breaks.is_empty(), name == "healthy", "{name}");
        }
        assert!(
            scenario("nope")
                .unwrap_err()
                .to_string()
                .contains("cni-down")
        );
        status_rules().unwrap();
    }

    #[test]
    fn workloads_expand() {
        let entries: Vec<Value> = serde_yaml_ng::from_str(WORKLOADS_YAML).unwrap();
        let objs: Vec<Value> = entries
            .iter()
            .flat_map(|e| expand_entry(e).unwrap())
            .collect();
        let cilium = objs
            .iter()
            .find(|o| str_at(o, "/metadata/name") == "cilium" && str_at(o, "/kind") == "DaemonSet")
            .unwrap();
        assert_eq!(
            cilium["spec"]["template"]["metadata"]["labels"]["k8s-app"],
            "cilium"
        );
        assert!(
            objs.iter()
                .any(|o| str_at(o, "/metadata/name") == "postgres-shared-3")
        );
    }

    #[test]
    fn eso_template_and_data() {
        let mut v = Vault::default();
        let es: Value = serde_yaml_ng::from_str(
            r#"
metadata: {name: mattermost-db, namespace: mattermost}
spec:
  target:
    name: mattermost-db
    template:
      data:
        DB: "postgres://mattermost:{{ .password | urlquery }}@h:5432/mattermost"
  data:
    - secretKey: password
      remoteRef: {key: postgres-mattermost, property: password}
"#,
        )
        .unwrap();
        let s = eso_secret(&es, &mut v);
        let pw = v.property("postgres-mattermost", "password");
        let db = base64::engine::general_purpose::STANDARD
            .decode(s["data"]["DB"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(db).unwrap(),
            format!("postgres://mattermost:{pw}@h:5432/mattermost")
        );
        assert!(s["data"].get("password").is_none());
    }

    #[test]
    fn merge_patch_removes_and_replaces() {
        let mut a = json!({"phase": "Enabled", "lastBackup": "x", "c": [1]});
        merge_patch(&mut a, &json!({"lastBackup": null, "c": [2]}));
        assert_eq!(a, json!({"phase": "Enabled", "c": [2]}));
    }
}
