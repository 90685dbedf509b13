//! external-secrets as the simulation bootstraps it. Before the platform starts, 1Password
//! holds every item and field the platform's ExternalSecrets read ([`seed_vault`]: the
//! simulation's vault, which the Connect stand-in serves, `crate::sim::onepassword`), and
//! the bootstrap creates the Connect token Secret each 1Password store names
//! ([`connect_token_secrets`], as the fixture's bootstrap Taskfile does with `op`). The
//! target Secrets and every store and ExternalSecret status are the real external-secrets
//! controller's work; `healthy` waits until it has synced them
//! ([`ClusterSim::wait_external_secrets_synced`]).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use base64::Engine;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::certmanager::conditions;
use super::client::{ClusterSim, Kinds};
use super::str_at;
use crate::sim::data::Vault;

/// How long `healthy` waits for external-secrets to sync every ExternalSecret.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a store or ExternalSecret that is not Ready is asked to reconcile again (`force-sync`).
const FORCE_SYNC_EVERY: Duration = Duration::from_secs(2);

fn is_eso(o: &Value, kinds: &[&str]) -> bool {
    str_at(o, "/apiVersion").starts_with("external-secrets.io/") && kinds.contains(&str_at(o, "/kind"))
}

/// Ensures in `vault` every item and field the ExternalSecrets of `objects` read:
/// `spec.data[].remoteRef` (field `property`, else `password`, the provider's default) and
/// `spec.dataFrom[].extract` (the fields its target template uses). Values are generated
/// once and kept.
pub(super) fn seed_vault(objects: &[Value], vault: &mut Vault) {
    let reference = regex::Regex::new(r"\{\{\s*\.([A-Za-z0-9_]+)").expect("regex");
    for es in objects.iter().filter(|o| is_eso(o, &["ExternalSecret"])) {
        let templates = es.pointer("/spec/target/template/data").and_then(Value::as_object).into_iter().flatten();
        let wanted: Vec<String> =
            templates.filter_map(|(_, t)| t.as_str()).flat_map(|t| reference.captures_iter(t).map(|c| c[1].to_string()).collect::<Vec<_>>()).collect();
        for d in es.pointer("/spec/data").and_then(Value::as_array).into_iter().flatten() {
            let prop = d.pointer("/remoteRef/property").and_then(Value::as_str).unwrap_or("password");
            vault.property(str_at(d, "/remoteRef/key"), prop);
        }
        for d in es.pointer("/spec/dataFrom").and_then(Value::as_array).into_iter().flatten() {
            if let Some(item) = d.pointer("/extract/key").and_then(Value::as_str) {
                vault.extract(item, &wanted);
            }
        }
    }
}

/// The Connect token Secret of every 1Password store of `objects`
/// (`auth.secretRef.connectTokenSecretRef`), holding the token Connect accepts.
pub(super) fn connect_token_secrets(objects: &[Value], vault: &Vault) -> Result<Vec<Value>> {
    let token = base64::engine::general_purpose::STANDARD.encode(vault.connect_token()?);
    let mut secrets: Vec<Value> = vec![];
    for store in objects.iter().filter(|o| is_eso(o, &["ClusterSecretStore", "SecretStore"])) {
        let Some(r) = store.pointer("/spec/provider/onepassword/auth/secretRef/connectTokenSecretRef") else { continue };
        let ns = r.get("namespace").and_then(Value::as_str).or_else(|| store.pointer("/metadata/namespace").and_then(Value::as_str)).unwrap_or("default");
        let (name, key) = (str_at(r, "/name"), str_at(r, "/key"));
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "type": "Opaque",
            "data": {key: token},
        });
        if !secrets.contains(&secret) {
            secrets.push(secret);
        }
    }
    Ok(secrets)
}

/// `Ready=True (SecretSynced)`, or how it stands.
fn synced(o: &Value) -> Result<(), String> {
    let cs = conditions(o);
    match cs.iter().find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => Ok(()),
        Some(c) => Err(format!("Ready={} ({}: {})", str_at(c, "/status"), str_at(c, "/reason"), str_at(c, "/message"))),
        None => Err("no Ready condition yet (is external-secrets running? see `sim status`)".into()),
    }
}

impl ClusterSim {
    /// Waits until the real external-secrets controller has validated every store and synced
    /// every ExternalSecret of `objects` (Ready=True); the number of ExternalSecrets. One that is
    /// not Ready is asked to reconcile again at once and then every 2 s with the `force-sync`
    /// annotation (as `kubectl annotate ... force-sync=$(date +%s)` does), the stores before
    /// the ExternalSecrets that read them: the controller retries a failure with a growing
    /// back-off, and a synced ExternalSecret only after `refreshInterval`.
    pub(super) async fn wait_external_secrets_synced(&self, kinds: &Kinds, objects: &[Value]) -> Result<usize> {
        // The stores first (validated again every 10 s: a token written anew shows then),
        // then the ExternalSecrets; (kind, namespace, name) each.
        let wanted: Vec<(&str, String, String)> = ["ClusterSecretStore", "SecretStore", "ExternalSecret"]
            .into_iter()
            .flat_map(|k| objects.iter().filter(move |o| is_eso(o, &[k])).map(move |o| (k, str_at(o, "/metadata/namespace").to_string(), str_at(o, "/metadata/name").to_string())))
            .collect();
        let kind_of = |k: &str| kinds.iter().find(|((av, kind), _)| av.starts_with("external-secrets.io/") && kind == k).map(|(_, kind)| kind.clone());
        let start = Instant::now();
        let mut forced = Instant::now() - FORCE_SYNC_EVERY;
        loop {
            let mut pending = vec![];
            for (k, ns, name) in &wanted {
                let Some(kind) = kind_of(k) else { continue };
                let ns = (!ns.is_empty()).then_some(ns.as_str());
                match self.api(&kind, ns).get_opt(name).await? {
                    Some(o) => {
                        if let Err(how) = synced(&serde_json::to_value(o)?) {
                            pending.push((kind, ns, name, how));
                        }
                    }
                    None => pending.push((kind, ns, name, "not found".into())),
                }
            }
            if pending.is_empty() {
                return Ok(wanted.iter().filter(|(k, _, _)| *k == "ExternalSecret").count());
            }
            if start.elapsed() > SYNC_TIMEOUT {
                let lines: Vec<String> = pending.iter().map(|(k, ns, n, how)| format!("{} {}{n}: {how}", k.ar.kind, ns.map(|ns| format!("{ns}/")).unwrap_or_default())).collect();
                bail!(
                    "external-secrets did not validate every store and sync every ExternalSecret within {}s on cluster {} (log: {}/external-secrets.log in the sim state directory):\n  {}",
                    SYNC_TIMEOUT.as_secs(),
                    self.cluster,
                    self.cluster,
                    lines.join("\n  ")
                );
            }
            if forced.elapsed() >= FORCE_SYNC_EVERY {
                // Stores too: a store whose Connect server was not reachable yet (its pod not
                // Ready) is retried with the same growing back-off, and any change of the
                // store makes the controller validate it again.
                let stamp = json!({"metadata": {"annotations": {"force-sync": time::OffsetDateTime::now_utc().unix_timestamp().to_string()}}});
                let stores_pending = pending.iter().any(|(k, ..)| k.ar.kind != "ExternalSecret");
                for (kind, ns, name, how) in &pending {
                    let nudge = if kind.ar.kind == "ExternalSecret" { !stores_pending } else { how != "not found" };
                    if nudge {
                        let _ = self.api(kind, *ns).patch(name, &PatchParams::default(), &Patch::Merge(&stamp)).await;
                    }
                }
                forced = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects() -> Vec<Value> {
        serde_yaml_ng::Deserializer::from_str(
            r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: mattermost-db, namespace: mattermost}
spec:
  target:
    template:
      data:
        DB: "postgres://mattermost:{{ .password | urlquery }}@h:5432/mattermost"
  data:
    - secretKey: password
      remoteRef: {key: postgres-mattermost, property: password}
    - secretKey: token
      remoteRef: {key: gitlab-app}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: velero-minio, namespace: velero}
spec:
  target:
    template:
      data:
        cloud: "aws_access_key_id={{ .access_key_id }} aws_secret_access_key={{ .secret_access_key }}"
  dataFrom:
    - extract: {key: velero-minio-infra}
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata: {name: onepassword}
spec:
  provider:
    onepassword:
      connectHost: http://onepassword-connect.external-secrets.svc.cluster.local:8080
      vaults: {Prod: 1}
      auth: {secretRef: {connectTokenSecretRef: {name: onepassword-connect-token, key: token, namespace: external-secrets}}}
"#,
        )
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
    }

    #[test]
    fn the_vault_holds_what_the_external_secrets_read_before_they_are_applied() {
        let mut v: Vault = serde_json::from_value(json!({"items": {"sim-onepassword-connect": {"token": "t"}}})).unwrap();
        seed_vault(&objects(), &mut v);
        let items: Vec<(String, Vec<String>)> = v.platform_items().map(|(n, m)| (n.to_string(), m.keys().cloned().collect())).collect();
        assert_eq!(
            items,
            [
                ("gitlab-app".to_string(), vec!["password".to_string()]),
                ("postgres-mattermost".to_string(), vec!["password".to_string()]),
                ("velero-minio-infra".to_string(), vec!["access_key_id".to_string(), "secret_access_key".to_string()]),
            ]
        );
    }

    #[test]
    fn each_store_gets_the_token_connect_accepts() {
        let v: Vault = serde_json::from_value(json!({"items": {"sim-onepassword-connect": {"token": "t0k3n"}}})).unwrap();
        let secrets = connect_token_secrets(&objects(), &v).unwrap();
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0]["metadata"], json!({"name": "onepassword-connect-token", "namespace": "external-secrets"}));
        assert_eq!(secrets[0]["data"]["token"], json!(base64::engine::general_purpose::STANDARD.encode("t0k3n")));
        assert!(synced(&json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced"}]}})).is_ok());
        let failed = json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "SecretSyncedError", "message": "could not get secret data from provider"}]}});
        assert_eq!(synced(&failed).unwrap_err(), "Ready=False (SecretSyncedError: could not get secret data from provider)");
    }
}
