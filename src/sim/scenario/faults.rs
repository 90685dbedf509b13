//! The `breaks` of a fault scenario: pods held not ready, a node held NotReady, a
//! status change merged over the healthy status, a deletion; and the wait until the
//! change is visible (`waitFor`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Map, Value};

use super::client::ClusterSim;
use super::model::{Action, Op, StatusRule, WaitFor};
use super::pods::set_pod_ready;
use crate::sim::kwok;

const WAIT_FOR_TIMEOUT: Duration = Duration::from_secs(90);

impl ClusterSim {
    /// Performs one break on this cluster.
    pub(super) async fn run(&self, action: &Action, rules: &[StatusRule]) -> Result<()> {
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
                // Only status the simulation itself writes (a healthy status rule): a real
                // controller's status is that controller's to write.
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
            Op::Create { object, owner } => self.create_history(object, owner.as_ref()).await?,
            Op::RenewCertificate { namespace, name } => self.renew_certificate(namespace, name).await?,
            Op::DeleteBackups { label_selector } => self.delete_backups(label_selector).await?,
            Op::RevokeConnectToken {} => {
                let mut vault = crate::sim::data::Vault::load(&self.cfg)?;
                vault.revoke_connect_token();
                vault.save(&self.cfg)?;
            }
            Op::Commit { message, edits, wait } => {
                let given = crate::repo::GitopsRepo::load(&self.cfg.repo)?;
                let revision = super::flux::commit_on_top(&self.cfg, &given, message, edits)?;
                let kinds = self.discover().await?;
                self.fetch_now(&kinds).await?;
                if *wait {
                    self.wait_flux_applied(&kinds, &revision).await?;
                }
            }
            Op::FetchNow {} => {
                let given = crate::repo::GitopsRepo::load(&self.cfg.repo)?;
                let revision = super::flux::head_revision(&self.cfg, &given)?;
                let kinds = self.discover().await?;
                self.fetch_now(&kinds).await?;
                self.wait_flux_applied(&kinds, &revision).await?;
            }
            Op::Reconcile { api_version, kind, namespace, name, force } => {
                let k = self.resolve(api_version, kind).await?;
                self.api(&k, Some(namespace))
                    .patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&super::flux::reconcile_request(*force)))
                    .await
                    .with_context(|| format!("asking {kind} {namespace}/{name} to reconcile"))?;
            }
            Op::RunSchedule { name, wait } => crate::sim::backups::run_schedule(&self.client, name, *wait).await?,
            Op::ServeCrd { name, release, served } => self.serve_crd(name, release, served).await?,
            Op::Restart { component } => crate::sim::restart_addon(&self.cfg, &self.cluster, component).await?,
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

    /// Asks the real Velero server to delete the Backups matching `selector` with their data,
    /// the way `velero backup delete` does (one `DeleteBackupRequest` each), and waits (up
    /// to 2 minutes) until Velero has removed them.
    async fn delete_backups(&self, selector: &str) -> Result<()> {
        let backups = self.api(&self.resolve("velero.io/v1", "Backup").await?, Some("velero"));
        let requests = self.api(&self.resolve("velero.io/v1", "DeleteBackupRequest").await?, Some("velero"));
        let lp = ListParams::default().labels(selector);
        for b in backups.list(&lp).await? {
            let name = b.metadata.name.unwrap_or_default();
            let req = serde_json::json!({
                "apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
                "metadata": {"generateName": format!("{name}-"), "namespace": "velero", "labels": {"velero.io/backup-name": name}},
                "spec": {"backupName": name},
            });
            requests.create(&kube::api::PostParams::default(), &serde_json::from_value(req)?).await.with_context(|| format!("DeleteBackupRequest for {name}"))?;
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let left: Vec<String> = backups.list(&lp).await?.into_iter().filter_map(|b| b.metadata.name).collect();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("Velero has not deleted backups {} after 120s (see velero.log)", left.join(", "));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Waits until the object of `w` shows the break (condition, value at a pointer,
    /// or a pointer absent).
    pub(super) async fn wait_for(&self, w: &WaitFor) -> Result<()> {
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
                            x["type"] == c.type_.as_str()
                                && x["status"] == c.status.as_str()
                                && c.reason.as_ref().is_none_or(|r| x["reason"] == r.as_str())
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_removes_and_replaces() {
        let mut a = json!({"phase": "Enabled", "lastBackup": "x", "c": [1]});
        merge_patch(&mut a, &json!({"lastBackup": null, "c": [2]}));
        assert_eq!(a, json!({"phase": "Enabled", "c": [2]}));
    }
}
