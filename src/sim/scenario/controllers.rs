//! What the platform's controllers would write, played by the simulation: the status
//! of every object whose kind has a rule in `sim/scenarios/status.yaml` (placeholders
//! filled per object; HTTPRoute parents from the route), Cilium LB IPAM's
//! LoadBalancer addresses, Cilium's MCS-API ServiceImport addresses and CNPG's
//! `<cluster>-app` Secret.

use std::collections::BTreeMap;

use anyhow::Result;
use base64::Engine;
use serde_json::{Map, Value, json};

use super::client::{ClusterSim, Kind, Kinds};
use super::model::StatusRule;
use super::{go_duration_seconds, now, now_plus, str_at};
use crate::sim::data::Vault;

impl ClusterSim {
    /// (kind, namespace, name, status) for an object whose kind has a status rule.
    pub(super) fn status_job(
        &self,
        kinds: &Kinds,
        rules: &[StatusRule],
        obj: &Value,
    ) -> Option<(Kind, Option<String>, String, Value)> {
        let (av, k) = (str_at(obj, "/apiVersion"), str_at(obj, "/kind"));
        // The real source-controller, kustomize-controller and helm-controller write their objects' status.
        if super::flux::reconciled_by_flux(obj) {
            return None;
        }
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
    pub(super) fn render_status(&self, template: &Value, obj: &Value) -> Value {
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
        // Velero's `status.expiration`: the Backup's start plus its `spec.ttl`.
        let ttl = obj.pointer("/spec/ttl").and_then(Value::as_str).and_then(go_duration_seconds).unwrap_or(0);
        let vars: [(&str, String); 6] = [
            ("{{now}}", now()),
            ("{{now+spec.ttl}}", now_plus(ttl)),
            ("{{revision}}", self.revision.clone()),
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

    /// The LoadBalancer addresses Cilium's LB IPAM writes for the Services that name one
    /// (annotation `platform-acceptance.io/sim-lb-ip`, set by the workload expansion).
    pub(super) async fn apply_load_balancer_status(
        &self,
        kinds: &Kinds,
        objects: &[Value],
    ) -> Result<()> {
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
        Ok(())
    }
}

impl ClusterSim {
    /// What Cilium's MCS-API controller does for each `ClusterSetIP` ServiceImport
    /// (cilium `pkg/clustermesh/mcsapi`): a derived Service `derived-<hash>` in the
    /// import's namespace with the import's ports, and the import's `spec.ips` set to that
    /// Service's ClusterIP, which the API server allocates. CoreDNS's `multicluster`
    /// answers `<svc>.<ns>.svc.clusterset.local` from those addresses.
    pub(super) async fn apply_service_import_ips(&self, kinds: &Kinds, objects: &[Value]) -> Result<usize> {
        let service = ("v1".to_string(), "Service".to_string());
        let Some(svc_kind) = kinds.get(&service) else { return Ok(0) };
        let mut names = vec![];
        for import in objects.iter().filter(|o| str_at(o, "/kind") == "ServiceImport" && str_at(o, "/spec/type") == "ClusterSetIP") {
            let key = (str_at(import, "/apiVersion").to_string(), "ServiceImport".to_string());
            if !kinds.contains_key(&key) {
                continue;
            }
            let (ns, name) = (str_at(import, "/metadata/namespace"), str_at(import, "/metadata/name"));
            let derived = derived_name(ns, name);
            let ports: Vec<Value> = import
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| json!({"name": p["name"], "port": p["port"], "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))}))
                .collect();
            let svc = json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": derived, "namespace": ns,
                             "annotations": {"service.cilium.io/global": "true"},
                             "labels": {"multicluster.kubernetes.io/service-name": name}},
                "spec": {"type": "ClusterIP", "ports": ports},
            });
            self.apply_object(kinds, &svc).await?;
            let got = self.api(svc_kind, Some(ns)).get(&derived).await?;
            let Some(ip) = got.data.pointer("/spec/clusterIP").and_then(Value::as_str).filter(|ip| !ip.is_empty() && *ip != "None") else {
                continue;
            };
            let mut with_ips = import.clone();
            with_ips["spec"]["ips"] = json!([ip]);
            with_ips["metadata"]["annotations"]["multicluster.kubernetes.io/derived-service"] = json!(derived);
            self.apply_object(kinds, &with_ips).await?;
            names.push(format!("{name}.{ns}.svc.clusterset.local"));
        }
        self.wait_dns_answers(&names).await?;
        Ok(names.len())
    }

    /// Waits (60 s at most) until the cluster's CoreDNS answers every name in `names`: it
    /// follows the API server by watch, and after its ServiceImport list failed (a CRD
    /// version it reads was not served) it retries with a back-off of up to 30 s.
    async fn wait_dns_answers(&self, names: &[String]) -> Result<()> {
        let specs = crate::sim::cluster::cluster_specs(&self.cfg)?;
        let Some(c) = specs.iter().find(|c| c.name == self.cluster) else { return Ok(()) };
        let server = std::net::SocketAddr::from(([127, 0, 0, 1], c.ports.dns));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        for name in names {
            loop {
                let answer = crate::sim::dns::query(server, name).await;
                if answer.as_ref().is_ok_and(|a| !a.is_empty()) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    anyhow::bail!("cluster {}: its CoreDNS does not answer {name} after 60 s ({answer:?})", self.cluster);
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
        Ok(())
    }
}

/// The derived Service's name (sigs.k8s.io/mcs-api `derivedName`, as Cilium uses it):
/// `derived-` and the first 10 characters of the lower-case, unpadded base32hex
/// SHA-256 of `<namespace>/<name>`.
fn derived_name(namespace: &str, name: &str) -> String {
    use sha2::Digest;
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let sum = sha2::Sha256::digest(format!("{namespace}/{name}").as_bytes());
    // 10 base32 characters are the first 50 bits.
    let bits = sum[..7].iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)) >> 6;
    let tail: String = (0..10).rev().map(|i| ALPHABET[(bits >> (5 * i) & 31) as usize] as char).collect();
    format!("derived-{tail}")
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

/// The Secret CNPG writes for every CNPG Cluster of `objects` (`<cluster>-app`), values
/// from `vault`. (The ExternalSecrets' Secrets are the real external-secrets controller's
/// work: [`super::externalsecrets`].)
pub(super) fn written_secrets(objects: &[Value], vault: &Vault) -> Result<Vec<Value>> {
    objects
        .iter()
        .filter(|o| str_at(o, "/kind") == "Cluster" && str_at(o, "/apiVersion").starts_with("postgresql.cnpg.io/"))
        .map(|c| cnpg_app_secret(c, vault))
        .collect()
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
    fn derived_service_name_is_mcs_apis() {
        // Python: base64.b32hexencode(sha256(b"databases/postgres-shared-rw")).lower()[:10]
        assert_eq!(derived_name("databases", "postgres-shared-rw"), "derived-gsmlrmb0ml");
    }
}
