//! Secrets and the ExternalSecrets that produce them. Secret values are used, never shown.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::Value;

use super::live::Live;
use super::rendered::{find, key_at, objects};
use crate::check::{Finding, Outcome};
use crate::cluster::api_error;
use crate::repo::{Rendered, RenderedObject};

pub const ES_GROUP: &str = "external-secrets.io";

/// The ExternalSecret that produces Secret `secret` in `ns`.
pub fn external_secret_for<'a>(r: &'a Rendered, ns: Option<&str>, secret: &str) -> Option<&'a RenderedObject> {
    objects(r, ES_GROUP, "ExternalSecret")
        .into_iter()
        .find(|es| es.namespace() == ns && es.str("/spec/target/name").unwrap_or(es.name()) == secret)
}

/// A key of the Secret an ExternalSecret renders from its template (`spec.target.template.data`).
pub fn template_value<'a>(es: &'a RenderedObject, key: &str) -> Option<&'a str> {
    key_at(&es.value, "/spec/target/template/data", key).and_then(Value::as_str)
}

/// 1Password (or other) item keys an ExternalSecret reads.
pub fn remote_keys(es: &RenderedObject) -> BTreeSet<String> {
    let data = es.get("/spec/data").and_then(Value::as_array).into_iter().flatten().filter_map(|d| d.pointer("/remoteRef/key"));
    let from = es.get("/spec/dataFrom").and_then(Value::as_array).into_iter().flatten().filter_map(|d| d.pointer("/extract/key"));
    data.chain(from).filter_map(Value::as_str).map(String::from).collect()
}

/// The provider (`onepassword`, `vault`, ...) of the store an ExternalSecret reads, resolved in the rendering.
pub fn store_provider(r: &Rendered, es: &RenderedObject) -> Result<(String, String), Finding> {
    let kind = es.str("/spec/secretStoreRef/kind").unwrap_or("SecretStore");
    let name = es.str("/spec/secretStoreRef/name").unwrap_or("");
    let ns = if kind == "ClusterSecretStore" { None } else { es.namespace() };
    let store = find(r, ES_GROUP, kind, name, ns)
        .ok_or_else(|| Finding::new(format!("{} secretStoreRef", es.describe()), format!("{kind} {name} rendered on cluster {}", r.cluster), "not found"))?;
    let provider = store.get("/spec/provider").and_then(Value::as_object).and_then(|m| m.keys().next().cloned()).unwrap_or_default();
    Ok((format!("{kind}/{name}"), provider))
}

/// Fails unless Secret `secret` in `ns` is produced by an ExternalSecret.
pub fn secret_from_external_secret<'a>(r: &'a Rendered, ns: Option<&str>, secret: &str, user: &str) -> Result<&'a RenderedObject, Finding> {
    external_secret_for(r, ns, secret).ok_or_else(|| {
        Finding::new(
            format!("{user}: Secret {}/{secret}", ns.unwrap_or("")),
            "produced by an ExternalSecret (target.name) in the same namespace",
            "no ExternalSecret produces it",
        )
    })
}

/// A Secret's keys as text (values are never shown: callers only use them).
pub async fn secret_data(client: &kube::Client, cluster: &str, ns: &str, name: &str) -> Live<std::collections::BTreeMap<String, String>> {
    match Api::<Secret>::namespaced(client.clone(), ns).get_opt(name).await {
        Ok(Some(s)) => Ok(s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()),
        Ok(None) => Err(Outcome::fail(format!("Secret {ns}/{name} (cluster {cluster})"), "present", "not found")),
        Err(e) => Err(api_error(&format!("get Secret {ns}/{name} (cluster {cluster})"), e)),
    }
}
