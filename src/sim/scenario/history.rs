//! A platform with a past (the `lived-in` scenario): objects its controllers left behind,
//! created with their status (`create`), and a Certificate renewal asked for the way
//! `cmctl renew` asks (`renewCertificate`). Whatever `create` made carries the field
//! manager [`HISTORY_MANAGER`]; every scenario first deletes such objects, so switching
//! back to `healthy` leaves no history behind. A marker file in the cluster's state
//! directory, written before the first `create`, tells whether there can be any: a cluster
//! that never had history is not searched (a first read of a CRD's objects on a cold API
//! server can take seconds).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::client::ClusterSim;
use super::model::{Op, Owner, breaks_on};
use super::str_at;

/// Field manager of the objects a `create` break made.
pub const HISTORY_MANAGER: &str = "platform-acceptance-sim-history";

const RUNNING_TIMEOUT: Duration = Duration::from_secs(30);

/// `(apiVersion, kind, namespace)` of everything any scenario creates on `cluster`.
fn created_kinds(cluster: &str) -> Result<Vec<(String, String, Option<String>)>> {
    let mut out = vec![];
    for op in breaks_on(cluster)? {
        if let Op::Create { object, .. } = op {
            let key = (str_at(&object, "/apiVersion").to_string(), str_at(&object, "/kind").to_string(), object.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string));
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

impl ClusterSim {
    /// Deletes what `create` breaks made on this cluster (objects managed by [`HISTORY_MANAGER`]).
    pub(super) async fn remove_history(&self) -> Result<usize> {
        let mut removed = 0;
        if !self.history_marker().exists() {
            return Ok(0);
        }
        for (api_version, kind, ns) in created_kinds(&self.cluster)? {
            let Ok(k) = self.resolve(&api_version, &kind).await else { continue };
            let api = self.api(&k, ns.as_deref());
            for o in api.list(&ListParams::default()).await? {
                let ours = o.metadata.managed_fields.iter().flatten().any(|m| m.manager.as_deref() == Some(HISTORY_MANAGER));
                if ours && let Some(name) = o.metadata.name.as_deref() {
                    api.delete(name, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() }).await.with_context(|| format!("delete {kind} {name}"))?;
                    removed += 1;
                }
            }
        }
        std::fs::remove_file(self.history_marker()).with_context(|| format!("remove {}", self.history_marker().display()))?;
        Ok(removed)
    }

    /// Present from before the first `create` on this cluster until its history is removed.
    fn history_marker(&self) -> std::path::PathBuf {
        self.state_dir.join(&self.cluster).join("history-created")
    }

    /// Creates `object` with its status (see [`Op::Create`]). Objects are created at least a
    /// second apart, so their creationTimestamps keep the order of the scenario file.
    pub(super) async fn create_history(&self, object: &Value, owner: Option<&Owner>) -> Result<()> {
        let second = Instant::now();
        std::fs::write(self.history_marker(), "").with_context(|| format!("write {}", self.history_marker().display()))?;
        let mut obj = object.clone();
        let (api_version, kind) = (str_at(&obj, "/apiVersion").to_string(), str_at(&obj, "/kind").to_string());
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string);
        let k = self.resolve(&api_version, &kind).await?;
        let mut metadata = json!({});
        if let Some(o) = owner {
            let (reference, template_labels, owner_name) = self.owner_reference(o, ns.as_deref()).await?;
            let name = str_at(&obj, "/metadata/name").replace("{{owner}}", &owner_name);
            obj["metadata"]["name"] = json!(name);
            let mut labels = template_labels;
            if let Some(own) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
                labels.extend(own.clone());
            }
            metadata = json!({"labels": labels, "ownerReferences": [reference]});
        }
        let name = str_at(&obj, "/metadata/name").to_string();
        let status = obj.as_object_mut().and_then(|m| m.remove("status")).ok_or_else(|| anyhow!("{kind} {name}: no status"))?;
        let pp = PatchParams::apply(HISTORY_MANAGER).force();
        let api = self.api(&k, ns.as_deref());
        if kind == "Pod" {
            // Bound to its node without owner or labels (so no controller adopts it and kwok
            // treats it as a plain pod), run by kwok, then given its final status, then its owner.
            api.patch(&name, &pp, &Patch::Apply(&obj)).await.with_context(|| format!("create Pod {name}"))?;
            self.wait_pod_running(&api, &name).await?;
            let live = serde_json::to_value(api.get(&name).await?)?;
            self.apply_status(&k, ns.as_deref(), &name, self.render_status(&status, &live)).await?;
            if metadata.as_object().is_some_and(|m| !m.is_empty()) {
                api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": metadata}))).await.with_context(|| format!("owner of Pod {name}"))?;
            }
            let phase = str_at(&serde_json::to_value(api.get(&name).await?)?, "/status/phase").to_string();
            let want = str_at(&status, "/phase");
            if phase != want {
                bail!("Pod {name}: phase {phase:?} after its status was written, expected {want:?}");
            }
        } else {
            if let Some(m) = obj.pointer_mut("/metadata").and_then(Value::as_object_mut)
                && let Some(extra) = metadata.as_object()
            {
                m.extend(extra.clone());
            }
            if k.status_subresource {
                api.patch(&name, &pp, &Patch::Apply(&obj)).await.with_context(|| format!("create {kind} {name}"))?;
                let live = serde_json::to_value(api.get(&name).await?)?;
                self.apply_status(&k, ns.as_deref(), &name, self.render_status(&status, &live)).await?;
            } else {
                // Status is part of the object (Velero's kinds): created with it in one request,
                // so the real controller never sees it without (it takes only new objects).
                obj["status"] = self.render_status(&status, &obj);
                api.patch(&name, &pp, &Patch::Apply(&obj)).await.with_context(|| format!("create {kind} {name}"))?;
            }
        }
        if let Some(rest) = Duration::from_millis(1100).checked_sub(second.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        Ok(())
    }

    /// The owner reference (uid looked up), the owner's pod template labels and its name.
    async fn owner_reference(&self, o: &Owner, ns: Option<&str>) -> Result<(Value, serde_json::Map<String, Value>, String)> {
        let k = self.resolve(&o.api_version, &o.kind).await?;
        let mut owner = serde_json::to_value(self.api(&k, ns).get(&o.name).await.with_context(|| format!("owner {} {}", o.kind, o.name))?)?;
        let (mut api_version, mut kind) = (o.api_version.clone(), o.kind.clone());
        if o.through_replica_set {
            let rs = self.resolve("apps/v1", "ReplicaSet").await?;
            let uid = str_at(&owner, "/metadata/uid").to_string();
            owner = self
                .api(&rs, ns)
                .list(&ListParams::default())
                .await?
                .into_iter()
                .map(|r| serde_json::to_value(r).expect("json"))
                .find(|r| {
                    r.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|refs| refs.iter().any(|x| x["uid"] == uid.as_str()))
                        && r.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0) > 0
                })
                .ok_or_else(|| anyhow!("no current ReplicaSet of {} {}", o.kind, o.name))?;
            (api_version, kind) = ("apps/v1".into(), "ReplicaSet".into());
        }
        let name = str_at(&owner, "/metadata/name").to_string();
        let reference = json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": str_at(&owner, "/metadata/uid"), "controller": true, "blockOwnerDeletion": true});
        let labels = owner.pointer("/spec/template/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
        Ok((reference, labels, name))
    }

    async fn wait_pod_running(&self, api: &kube::Api<kube::api::DynamicObject>, name: &str) -> Result<()> {
        let start = Instant::now();
        loop {
            let p = serde_json::to_value(api.get(name).await?)?;
            if str_at(&p, "/status/phase") == "Running" {
                return Ok(());
            }
            if start.elapsed() > RUNNING_TIMEOUT {
                bail!("Pod {name} not Running after {}s (kwok)", RUNNING_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks for a re-issuance the way `cmctl renew` does (cert-manager `cmd/ctl/pkg/renew`:
    /// condition `Issuing=True`, reason `ManuallyTriggered`, message "Certificate re-issuance
    /// manually triggered", written with an update of the status), then waits until the real
    /// cert-manager controller has issued the next revision.
    pub(super) async fn renew_certificate(&self, ns: &str, name: &str) -> Result<()> {
        let k = self.resolve("cert-manager.io/v1", "Certificate").await?;
        let api = self.api(&k, Some(ns));
        let cert = serde_json::to_value(api.get(name).await?)?;
        let revision = cert.pointer("/status/revision").and_then(Value::as_i64).unwrap_or(0);
        let mut conditions: Vec<Value> = cert.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
        conditions.retain(|c| c["type"] != "Issuing");
        conditions.push(json!({"type": "Issuing", "status": "True", "reason": "ManuallyTriggered", "message": "Certificate re-issuance manually triggered", "lastTransitionTime": super::now(), "observedGeneration": cert.pointer("/metadata/generation")}));
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": conditions}}))).await.with_context(|| format!("renew Certificate {ns}/{name}"))?;
        let start = Instant::now();
        loop {
            let c = serde_json::to_value(api.get(name).await?)?;
            let now = c.pointer("/status/revision").and_then(Value::as_i64).unwrap_or(0);
            let issuing = c.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| cs.iter().any(|x| x["type"] == "Issuing"));
            if now > revision && !issuing {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("Certificate {ns}/{name}: revision {now} (was {revision}), Issuing still set after 60s");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_created_kind_is_known_per_cluster() {
        let key = |v: &str, k: &str, ns: &str| (v.to_string(), k.to_string(), Some(ns.to_string()));
        let infra = created_kinds("infra").unwrap();
        assert_eq!(infra, vec![key("batch/v1", "Job", "databases"), key("v1", "Pod", "databases"), key("velero.io/v1", "Backup", "velero")]);
        assert_eq!(created_kinds("apps").unwrap(), vec![key("v1", "Pod", "gitlab")]);
    }
}
