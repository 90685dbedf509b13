//! [`ClusterSim`]: one simulated cluster as the scenarios see it — a client, the
//! cluster's Flux variables, API discovery, and server-side apply of objects and of
//! status (the field managers of the platform's objects and of the simulated
//! controllers). The scenario steps in the sibling modules are methods on it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::{Value, json};

use super::{STATUS_MANAGER, str_at};
use crate::repo::{GitopsRepo, envsubst};
use crate::sim::{FIELD_MANAGER, SimConfig};

/// One simulated cluster: its name, a client, and its Flux variables (with `CLUSTER`).
pub(super) struct ClusterSim {
    pub(super) cluster: String,
    pub(super) client: kube::Client,
    /// The simulation's state directory (the PKI of stand-in issuers).
    pub(super) state_dir: std::path::PathBuf,
    /// `$PA_CACHE`: the CRDs installed at start (`crds/`) and later releases (`crds-next/`).
    pub(super) cache_dir: std::path::PathBuf,
    /// The simulation (to restart an add-on).
    pub(super) cfg: SimConfig,
    vars: BTreeMap<String, String>,
    /// The served revision (the simulation overlay commit), which the stand-in Flux
    /// objects report as fetched and applied; set by the scenario after [`Self::connect`].
    pub(super) revision: String,
}

/// A resolved kind.
#[derive(Clone)]
pub(super) struct Kind {
    pub(super) ar: ApiResource,
    pub(super) namespaced: bool,
    /// Has a status subresource (Velero's CRDs do not: status is part of the object).
    pub(super) status_subresource: bool,
}

/// The kinds a cluster serves, by (apiVersion, kind).
pub(super) type Kinds = BTreeMap<(String, String), Kind>;

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
    /// A client for `cluster` of the running simulation, with its Flux variables.
    pub(super) async fn connect(
        cfg: &SimConfig,
        repo: &GitopsRepo,
        cluster: &str,
    ) -> Result<ClusterSim> {
        let client = crate::sim::client(cfg, cluster).await?;
        let mut vars = repo.variables(cluster)?.values();
        vars.entry("CLUSTER".into())
            .or_insert_with(|| cluster.to_string());
        Ok(ClusterSim {
            cluster: cluster.into(),
            client,
            state_dir: cfg.state_dir.clone(),
            cache_dir: cfg.cache_dir.clone(),
            cfg: cfg.clone(),
            vars,
            revision: String::new(),
        })
    }

    pub(super) fn subst(&self, text: &str) -> String {
        envsubst::substitute(text, &self.vars).text
    }

    /// Every kind the cluster serves (subresources left out).
    pub(super) async fn discover(&self) -> Result<Kinds> {
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

    pub(super) fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &kind.ar),
            (true, None) => Api::default_namespaced_with(self.client.clone(), &kind.ar),
            (false, _) => Api::all_with(self.client.clone(), &kind.ar),
        }
    }

    /// One kind, looked up in the cluster.
    pub(super) async fn resolve(&self, api_version: &str, kind: &str) -> Result<Kind> {
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
    pub(super) async fn apply_object(&self, kinds: &Kinds, obj: &Value) -> Result<bool> {
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

    /// Server-side apply of `status` (field manager [`STATUS_MANAGER`]), through the
    /// status subresource where the kind has one.
    pub(super) async fn apply_status(
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
}
