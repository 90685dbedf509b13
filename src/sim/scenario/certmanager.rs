//! cert-manager in the scenarios. The Certificates' and Issuers' status is written
//! by the real cert-manager controller that `sim up` runs per cluster
//! (`sim/go/cert-manager`), not by `status.yaml`. What the simulation does here:
//!
//! * ACME ClusterIssuers (and Issuers) of the repository cannot work offline (no
//!   ACME server, no DNS-01 provider): each is applied as a **CA issuer of the same
//!   name** (`spec.ca.secretName`), annotated [`STAND_IN_ANNOTATION`], with its
//!   signing CA (minted by [`crate::sim::pki::Pki::issuer_ca`]) in a
//!   `kubernetes.io/tls` Secret [`ca_secret_name`] in the cert-manager namespace
//!   (the controller's cluster resource namespace) or the Issuer's namespace.
//! * After applying, `healthy` waits (bounded) until every Certificate it applied
//!   is Ready for its generation, i.e. cert-manager issued it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use base64::Engine;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use super::client::{ClusterSim, Kinds};
use super::str_at;
use crate::sim::pki::Pki;

/// Annotation on an object the simulation replaced by a stand-in; the value says why.
pub const STAND_IN_ANNOTATION: &str = "sim.platform-acceptance.io/stand-in";
/// Why ACME issuers are replaced.
pub const ACME_STAND_IN_NOTE: &str = "ACME issuer replaced by CA issuer: no ACME server reachable offline";
/// Annotation keeping the ACME server the repository names.
pub const REPLACED_ACME_SERVER_ANNOTATION: &str = "sim.platform-acceptance.io/replaced-acme-server";
/// cert-manager's cluster resource namespace (where ClusterIssuer Secrets live).
pub const CLUSTER_RESOURCE_NAMESPACE: &str = "cert-manager";
/// How long `healthy` waits for cert-manager to issue every Certificate.
const CERTIFICATES_TIMEOUT: Duration = Duration::from_secs(120);

/// Name of the CA Secret behind stand-in issuer `issuer`.
pub fn ca_secret_name(issuer: &str) -> String {
    format!("{issuer}-sim-ca")
}

fn is_cert_manager(o: &Value, kind: &str) -> bool {
    str_at(o, "/kind") == kind && str_at(o, "/apiVersion").starts_with("cert-manager.io/")
}

/// Makes ACME issuer `o` (a ClusterIssuer or Issuer with `spec.acme`) a CA issuer of the
/// same name, annotated as a stand-in with the ACME server it replaces. Returns whether it
/// changed anything. The simulation overlay commit of the served repository applies it to
/// the repository's documents (`flux`), so Flux applies the CA issuer too.
pub(super) fn acme_to_ca(o: &mut Value) -> bool {
    if !(is_cert_manager(o, "ClusterIssuer") || is_cert_manager(o, "Issuer")) || o.pointer("/spec/acme").is_none() {
        return false;
    }
    let server = str_at(o, "/spec/acme/server").to_string();
    o["spec"] = json!({"ca": {"secretName": ca_secret_name(str_at(o, "/metadata/name"))}});
    let meta = o["metadata"].as_object_mut().expect("metadata");
    let ann = meta.entry("annotations").or_insert_with(|| json!({}));
    ann[STAND_IN_ANNOTATION] = json!(ACME_STAND_IN_NOTE);
    ann[REPLACED_ACME_SERVER_ANNOTATION] = json!(server);
    true
}

/// Replaces every ACME ClusterIssuer/Issuer in `objects` by a CA issuer of the same
/// name ([`acme_to_ca`]) and returns the signing CA Secrets of every such stand-in issuer
/// (also of those the served repository's overlay commit already replaced).
pub(super) fn replace_acme_issuers(objects: &mut [Value], state_dir: &Path, cluster: &str) -> Result<Vec<Value>> {
    let pki = Pki::at(state_dir);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let mut secrets = vec![];
    for o in objects.iter_mut() {
        acme_to_ca(o);
        let cluster_scoped = is_cert_manager(o, "ClusterIssuer");
        if !(cluster_scoped || is_cert_manager(o, "Issuer"))
            || o.pointer(&format!("/metadata/annotations/{}", STAND_IN_ANNOTATION.replace('/', "~1"))).and_then(Value::as_str) != Some(ACME_STAND_IN_NOTE)
        {
            continue;
        }
        let name = str_at(o, "/metadata/name").to_string();
        let ns = if cluster_scoped {
            CLUSTER_RESOURCE_NAMESPACE.to_string()
        } else {
            str_at(o, "/metadata/namespace").to_string()
        };
        let secret = ca_secret_name(&name);
        let key = if cluster_scoped { name.clone() } else { format!("{ns}-{name}") };
        let (cert, key) = pki.issuer_ca(cluster, &key)?;
        secrets.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret,
                "namespace": ns,
                "labels": {"app.kubernetes.io/managed-by": "platform-acceptance-sim"},
                "annotations": {STAND_IN_ANNOTATION: format!("signing CA of the stand-in {} {name}", str_at(o, "/kind"))},
            },
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": b64(&cert), "tls.key": b64(&key), "ca.crt": b64(&cert)},
        }));
    }
    Ok(secrets)
}

pub(super) fn conditions(o: &Value) -> &[Value] {
    o.pointer("/status/conditions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn ready_for_generation(o: &Value) -> bool {
    let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
    conditions(o).iter().any(|c| {
        c["type"] == "Ready"
            && c["status"] == "True"
            && c.get("observedGeneration").and_then(Value::as_i64).is_none_or(|g| Some(g) == generation)
    })
}

fn describe_conditions(o: &Value) -> String {
    let cs = conditions(o);
    if cs.is_empty() {
        return "no conditions (is cert-manager running? see `sim status`)".into();
    }
    cs.iter()
        .map(|c| format!("{}={} ({}: {})", str_at(c, "/type"), str_at(c, "/status"), str_at(c, "/reason"), str_at(c, "/message")))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ClusterSim {
    /// Waits until cert-manager has issued every Certificate in `objects` (Ready=True
    /// for its generation). A Certificate whose last issuance failed (cert-manager backs
    /// off for an hour) is renewed the way `cmctl renew` does: Issuing=True, reason
    /// ManuallyTriggered. Returns how many there are.
    pub(super) async fn wait_certificates_ready(&self, kinds: &Kinds, objects: &[Value]) -> Result<usize> {
        let certs: Vec<(String, String)> = objects
            .iter()
            .filter(|o| is_cert_manager(o, "Certificate"))
            .map(|o| (str_at(o, "/metadata/namespace").to_string(), str_at(o, "/metadata/name").to_string()))
            .collect();
        if certs.is_empty() {
            return Ok(0);
        }
        let Some(kind) = kinds.iter().find(|((av, k), _)| av.starts_with("cert-manager.io/") && k == "Certificate").map(|(_, k)| k.clone())
        else {
            return Ok(0);
        };
        let start = Instant::now();
        let mut renewed = std::collections::BTreeSet::new();
        loop {
            let mut pending = vec![];
            for (ns, name) in &certs {
                let api = self.api(&kind, Some(ns));
                let o = match api.get_opt(name).await? {
                    Some(o) => serde_json::to_value(o)?,
                    None => {
                        pending.push(format!("Certificate {ns}/{name}: not found"));
                        continue;
                    }
                };
                if ready_for_generation(&o) {
                    continue;
                }
                let issuing = conditions(&o).iter().any(|c| c["type"] == "Issuing" && c["status"] == "True");
                if !issuing && o.pointer("/status/lastFailureTime").is_some() && renewed.insert((ns.clone(), name.clone())) {
                    let mut cs: Vec<Value> = conditions(&o).iter().filter(|c| c["type"] != "Issuing").cloned().collect();
                    cs.push(json!({"type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
                        "message": "Certificate re-issuance manually triggered (platform-acceptance sim healthy)",
                        "lastTransitionTime": super::now(), "observedGeneration": o.pointer("/metadata/generation")}));
                    api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": cs}})))
                        .await?;
                }
                pending.push(format!("Certificate {ns}/{name}: {}", describe_conditions(&o)));
            }
            if pending.is_empty() {
                return Ok(certs.len());
            }
            if start.elapsed() > CERTIFICATES_TIMEOUT {
                bail!(
                    "cert-manager did not make every Certificate Ready within {}s on cluster {} (log: {}/cert-manager.log in the sim state directory):\n  {}",
                    CERTIFICATES_TIMEOUT.as_secs(),
                    self.cluster,
                    self.cluster,
                    pending.join("\n  ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acme_cluster_issuers_become_ca_issuers_with_a_ca_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut objects = vec![
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "letsencrypt-production"},
                   "spec": {"acme": {"server": "https://acme-v02.api.letsencrypt.org/directory", "solvers": []}}}),
            json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "selfsigned"}, "spec": {"selfSigned": {}}}),
        ];
        let secrets = replace_acme_issuers(&mut objects, dir.path(), "infra").unwrap();
        assert_eq!(objects[0]["spec"], json!({"ca": {"secretName": "letsencrypt-production-sim-ca"}}));
        assert_eq!(objects[0]["metadata"]["annotations"][STAND_IN_ANNOTATION], ACME_STAND_IN_NOTE);
        assert_eq!(objects[1]["spec"], json!({"selfSigned": {}}));
        assert_eq!(secrets.len(), 1);
        assert_eq!(secrets[0]["metadata"]["namespace"], "cert-manager");
        assert_eq!(secrets[0]["type"], "kubernetes.io/tls");
        // the same CA on the next apply
        let again = replace_acme_issuers(
            &mut [json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "letsencrypt-production"}, "spec": {"acme": {}}})],
            dir.path(),
            "infra",
        )
        .unwrap();
        assert_eq!(again[0]["data"], secrets[0]["data"]);
    }
}
