//! The `healthy` scenario on one cluster: the stand-in CRDs, the cluster's own Flux
//! output rendered from `fixtures/gitops`, what the charts and operators create
//! (`workloads.yaml`, bound volumes), the Secrets and status the controllers write,
//! then the wait until every node, pod and workload is ready.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::ClusterSim;
use super::certmanager::replace_acme_issuers;
use super::model::StatusRule;
use super::workloads::{bound_volumes, fill_chart_values};
use super::{ClusterReport, controllers, externalsecrets, flux, str_at};
use crate::repo::GitopsRepo;
use crate::sim::FIELD_MANAGER;
use crate::sim::data::Vault;

impl ClusterSim {
    /// Puts the healthy platform into this cluster (steps 1-6 of the module docs of
    /// `scenario`) and waits until it is ready.
    pub(super) async fn healthy(
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
        // A namespaced object the repository gives no namespace (neither its kustomization
        // nor the Flux Kustomization's targetNamespace): kustomize-controller refuses to apply
        // it ("namespace not specified"), so the simulation does not put it anywhere either.
        objects.retain(|o| {
            let refused = without_namespace(&kinds, o);
            if refused {
                eprintln!(
                    "sim: {}: {} {} has no namespace (none in its kustomization, no targetNamespace): kustomize-controller refuses it, the simulation does not apply it either",
                    self.cluster,
                    str_at(o, "/kind"),
                    str_at(o, "/metadata/name")
                );
            }
            !refused
        });
        objects.extend(self.expand_workloads()?);
        fill_chart_values(&mut objects);
        objects.extend(bound_volumes(&objects));
        // ACME issuers cannot work offline: CA issuers of the same names (certmanager.rs).
        let ca_secrets = replace_acme_issuers(&mut objects, &self.state_dir, &self.cluster)?;
        objects.extend(ca_secrets);
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
        // The bootstrap: 1Password holds what the ExternalSecrets read (saved before the
        // real external-secrets asks the Connect stand-in for it), the stores' Connect token
        // Secrets exist, and CNPG's Secret (CNPG does not run here) is written before what
        // reads it.
        let secrets = {
            let mut v = vault.lock().expect("vault");
            externalsecrets::seed_vault(&objects, &mut v);
            v.save(&self.cfg)?;
            let mut s = externalsecrets::connect_token_secrets(&objects, &v)?;
            s.push(flux::bootstrap_secret(&self.cfg)?);
            s.extend(controllers::written_secrets(&objects, &v)?);
            s
        };
        // The MinIO users those Secrets name exist before anything logs in with them.
        let users = vault.lock().expect("vault").clone();
        crate::sim::data::ensure_minio_users(&self.cfg, &users).await.context("creating the MinIO users")?;
        futures::stream::iter(secrets.iter().map(|s| self.apply_object(&kinds, s)))
            .buffered(8)
            .try_collect::<Vec<_>>()
            .await?;
        report.secrets = secrets.len();
        objects.retain(|o| str_at(o, "/kind") != "Namespace");
        // Velero validates a new storage location at once, then every 30 s: applied before
        // the Secret its credential names exists, it would stay Unavailable until the next
        // validation. So the storage locations follow their credentials (below).
        let (locations, mut objects): (Vec<Value>, Vec<Value>) =
            objects.into_iter().partition(|o| str_at(o, "/kind") == "BackupStorageLocation");
        // Flux's own objects early, so the real controllers start fetching and applying
        // while the rest is written: after the ConfigMaps (what `substituteFrom` and
        // `valuesFrom` read; their namespaces and Secrets exist by now), before the other
        // objects, cluster-scoped ones first.
        objects.sort_by_key(|o| {
            match kinds.get(&(
                str_at(o, "/apiVersion").to_string(),
                str_at(o, "/kind").to_string(),
            )) {
                _ if str_at(o, "/kind") == "ConfigMap" => 0,
                _ if flux::reconciled_by_flux(o) => 1,
                Some(k) if !k.namespaced => 2,
                _ => 3,
            }
        });
        let applied: Vec<bool> =
            futures::stream::iter(objects.iter().map(|o| self.apply_object(&kinds, o)))
                .buffered(8)
                .try_collect()
                .await?;
        report.applied = first.len() + applied.iter().filter(|a| **a).count();

        // What the platform's backup jobs would have written by now (crate::sim::backups),
        // while statuses are written and pods settle.
        let seed = async {
            let applied = self.apply_after_credentials(&kinds, &locations).await?;
            crate::sim::backups::seed(&self.cfg, &self.cluster).await.context("seeding backup data")?;
            anyhow::Ok(applied)
        };
        let settle = async {
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
            self.apply_load_balancer_status(&kinds, &objects).await?;
            self.apply_service_import_ips(&kinds, &objects).await?;

            report.pods_ready = self.settle_pods(&objects).await?;
            // Issued by the real cert-manager controller (not by status.yaml).
            report.certificates = self.wait_certificates_ready(&kinds, &objects).await?;
            // Synced by the real external-secrets controller (not by status.yaml).
            report.external_secrets = self.wait_external_secrets_synced(&kinds, &objects).await?;
            // Fetched, applied and installed by the real source-controller, kustomize-controller
            // and helm-controller.
            report.flux = self.wait_flux(&kinds, &objects).await?;
            anyhow::Ok(())
        };
        let ((), locations_applied) = tokio::try_join!(settle, seed)?;
        report.applied += locations_applied;
        Ok(report)
    }

    /// Applies each of `objects` (Velero storage locations) once the Secret its
    /// `spec.credential` names exists in its namespace (external-secrets writes it shortly
    /// after the scenario applied the ExternalSecret; 120 s at most). Returns how many were
    /// applied.
    async fn apply_after_credentials(&self, kinds: &super::client::Kinds, objects: &[Value]) -> Result<usize> {
        let mut applied = 0;
        for o in objects {
            let (ns, secret) = (str_at(o, "/metadata/namespace"), str_at(o, "/spec/credential/name"));
            if !secret.is_empty() {
                crate::sim::backups::written_secret(&self.client, ns, secret)
                    .await
                    .with_context(|| format!("{} {ns}/{} on {}: its credential", str_at(o, "/kind"), str_at(o, "/metadata/name"), self.cluster))?;
            }
            applied += usize::from(self.apply_object(kinds, o).await?);
        }
        Ok(applied)
    }

    /// Applies the stand-in CRDs ([`crate::sim::crds::STANDIN`]; `sim up` installed them with
    /// the others) and waits (30 s at most) until they are Established. When one was new,
    /// Velero is restarted: it reads API discovery at start and then every 5
    /// minutes (velero pkg/cmd/server/server.go), and a backup it takes meanwhile lists the
    /// new kinds without being able to read them, and ends PartiallyFailed ("no matches for
    /// k8s.keycloak.org/, Resource=keycloaks"). A settled platform's Velero has long seen them.
    pub(super) async fn install_standin_crds(&self) -> Result<()> {
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
                "customresourcedefinitions",
            ),
        );
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let mut names = vec![];
        let mut new = false;
        for (_, file) in crate::sim::crds::STANDIN {
            for doc in serde_yaml_ng::Deserializer::from_str(file) {
                let crd = Value::deserialize(doc)?;
                if crd.is_null() {
                    continue;
                }
                let name = str_at(&crd, "/metadata/name").to_string();
                new |= api.get_opt(&name).await.with_context(|| format!("stand-in CRD {name}"))?.is_none();
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
        if new {
            crate::sim::restart_addon(&self.cfg, &self.cluster, "velero").await?;
        }
        Ok(())
    }
}

/// Whether `o` is of a namespaced kind the cluster serves and names no namespace.
fn without_namespace(kinds: &super::client::Kinds, o: &Value) -> bool {
    let kind = kinds.get(&(str_at(o, "/apiVersion").to_string(), str_at(o, "/kind").to_string()));
    kind.is_some_and(|k| k.namespaced) && str_at(o, "/metadata/namespace").is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::client::Kind;

    #[test]
    fn a_namespaced_object_without_a_namespace_is_left_out_as_flux_refuses_it() {
        let kind = |namespaced| Kind {
            ar: ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "OCIRepository"), "ocirepositories"),
            namespaced,
            status_subresource: true,
        };
        let mut kinds = super::super::client::Kinds::new();
        kinds.insert(("source.toolkit.fluxcd.io/v1".into(), "OCIRepository".into()), kind(true));
        kinds.insert(("v1".into(), "Namespace".into()), kind(false));
        let oci = |ns: Option<&str>| json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository", "metadata": {"name": "app-template", "namespace": ns}});
        assert!(without_namespace(&kinds, &oci(None)));
        assert!(!without_namespace(&kinds, &oci(Some("auth"))));
        assert!(!without_namespace(&kinds, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "auth"}})), "cluster-scoped");
        assert!(!without_namespace(&kinds, &json!({"apiVersion": "x/v1", "kind": "Unserved", "metadata": {"name": "u"}})), "a kind not served is skipped elsewhere");
    }
}
