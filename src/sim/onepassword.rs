//! **Stand-in** for 1Password Connect, the server the platform's ClusterSecretStore
//! `onepassword` points at (`connectHost`). 1Password's own server cannot run here; this
//! one answers the part of Connect's REST API that external-secrets' 1Password provider
//! (connect-sdk-go) uses, in Connect's documented shapes:
//!
//! - `GET /v1/vaults?filter=title eq "<name>"` (or `name eq`): the vaults of that name;
//! - `GET /v1/vaults/{vault}`: one vault;
//! - `GET /v1/vaults/{vault}/items?filter=title eq "<title>"`: item summaries;
//! - `GET /v1/vaults/{vault}/items/{item}`: the item with its fields (label and value);
//! - `GET /heartbeat` and `GET /health`, without a token.
//!
//! Every other request needs `Authorization: Bearer <token>` with the token Connect
//! accepts ([`Vault::connect_token`]); anything else is `401 Invalid bearer token`, as
//! Connect answers. Errors are Connect's `{"status": N, "message": "..."}`.
//!
//! The items are the simulation's vault ([`Vault::platform_items`], `$STATE/shared/vault.json`),
//! read again for every request, so an item removed or a token revoked there is what
//! Connect answers next. Every vault the platform's stores name holds them. Vault and
//! item ids are 26 lowercase letters and digits, as Connect's, derived from the names.
//! The real external-secrets controller is the client ([`super::components`]); it reaches
//! this server through the cluster's Service data path, so the `onepassword-connect`
//! Service's endpoints decide whether it is reachable at all.

use std::net::SocketAddr;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::SimConfig;
use super::data::Vault;

/// Loopback port of the Connect stand-in (fixed, like the data services).
pub const CONNECT_PORT: u16 = 19091;

/// A Connect-style id for `kind` `name`: 26 characters of `[a-z2-7]` from its SHA-256.
///
/// ```
/// use platform_acceptance::sim::onepassword::id;
/// let v = id("vault", "Prod");
/// assert_eq!(v.len(), 26);
/// assert!(v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
/// assert_ne!(v, id("item", "Prod"));
/// ```
pub fn id(kind: &str, name: &str) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = Sha256::digest(format!("{kind}/{name}").as_bytes());
    digest.iter().take(26).map(|b| ALPHABET[usize::from(b % 32)] as char).collect()
}

/// The value of a SCIM `eq` filter on one of `attrs` (`title eq "x"`) in `query`.
fn filter_value(query: &str, attrs: &[&str]) -> Option<String> {
    let (_, filter) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "filter")?;
    let (attr, rest) = filter.split_once(" eq ")?;
    attrs.contains(&attr.trim()).then(|| rest.trim().trim_matches('"').to_string())
}

fn error(status: u16, message: &str) -> (u16, Value) {
    (status, json!({"status": status, "message": message}))
}

fn vault_json(name: &str, items: usize) -> Value {
    json!({"id": id("vault", name), "name": name, "type": "USER_CREATED", "items": items})
}

fn item_summary(vault: &str, title: &str) -> Value {
    json!({"id": id("item", title), "title": title, "vault": {"id": id("vault", vault)}, "category": "LOGIN"})
}

/// Connect's answer to `method path` with `authorization` (the header's value), over the
/// vaults named `vaults` holding the items of `vault`.
pub fn answer(vault: &Vault, vaults: &[String], method: &str, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    match (method, route) {
        ("GET", "/heartbeat") => return (200, json!(".")),
        ("GET", "/health") => return (200, json!({"name": "1Password Connect API (simulation stand-in)", "dependencies": []})),
        _ => {}
    }
    let token = authorization.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
    if token.is_none() || token != vault.connect_token().ok() {
        return error(401, "Invalid bearer token");
    }
    if method != "GET" {
        return error(403, "Authorization: token does not have write access (the simulation's Connect is read-only)");
    }
    let items: Vec<(&str, &std::collections::BTreeMap<String, String>)> = vault.platform_items().collect();
    let find_vault = |vid: &str| vaults.iter().find(|v| id("vault", v) == vid);
    let parts: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "vaults"] => {
            let wanted = filter_value(query, &["title", "name"]);
            let list: Vec<Value> = vaults.iter().filter(|v| wanted.as_deref().is_none_or(|w| w == v.as_str())).map(|v| vault_json(v, items.len())).collect();
            (200, Value::Array(list))
        }
        ["v1", "vaults", vid] => match find_vault(vid) {
            Some(v) => (200, vault_json(v, items.len())),
            None => error(404, "Invalid Vault UUID"),
        },
        ["v1", "vaults", vid, "items"] => {
            let Some(v) = find_vault(vid) else { return error(404, "Invalid Vault UUID") };
            let wanted = filter_value(query, &["title"]);
            let list: Vec<Value> = items.iter().filter(|(t, _)| wanted.as_deref().is_none_or(|w| w == *t)).map(|(t, _)| item_summary(v, t)).collect();
            (200, Value::Array(list))
        }
        ["v1", "vaults", vid, "items", iid] => {
            let Some(v) = find_vault(vid) else { return error(404, "Invalid Vault UUID") };
            let Some((title, fields)) = items.iter().find(|(t, _)| id("item", t) == *iid) else {
                return error(404, "Invalid Item UUID");
            };
            let mut item = item_summary(v, title);
            item["fields"] = fields
                .iter()
                .map(|(label, value)| {
                    let kind = if label == "password" { "CONCEALED" } else { "STRING" };
                    json!({"id": id("field", &format!("{title}/{label}")), "label": label, "value": value, "type": kind})
                })
                .collect();
            (200, item)
        }
        _ => error(404, "Not found"),
    }
}

/// Serves Connect on `bind` for the vaults `vaults`, reading the vault of `cfg` per request.
pub async fn serve_on(cfg: SimConfig, bind: SocketAddr, vaults: Vec<String>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    loop {
        let (mut sock, _) = listener.accept().await?;
        let (cfg, vaults) = (cfg.clone(), vaults.clone());
        tokio::spawn(async move {
            // Keep-alive as Go's client expects it: requests on one connection until it closes.
            while let Some((method, path, headers, _)) = super::observability::read_request(&mut sock).await {
                let (status, body) = match Vault::load(&cfg) {
                    Ok(vault) => answer(&vault, &vaults, &method, &path, headers.get("authorization").map(String::as_str)),
                    Err(e) => error(503, &format!("vault unavailable: {e:#}")),
                };
                let text = body.to_string();
                let resp = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}", text.len());
                if sock.write_all(resp.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Serves Connect for the simulation on [`CONNECT_PORT`], for the vaults the platform's
/// 1Password stores name.
pub async fn serve(cfg: &SimConfig) -> anyhow::Result<()> {
    let plan = super::data::DataPlan::from_repo(&cfg.repo)?;
    serve_on(cfg.clone(), ([127, 0, 0, 1], CONNECT_PORT).into(), plan.onepassword_vaults.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        serde_json::from_value(json!({"items": {
            "sim-onepassword-connect": {"token": "t0k3n"},
            "velero-minio-infra": {"access_key_id": "u1", "secret_access_key": "s1"},
            "cloudflare": {"password": "cf"},
        }}))
        .unwrap()
    }

    #[test]
    fn connect_finds_vaults_and_items_by_title_with_the_token() {
        let (v, vaults) = (vault(), vec!["Prod".to_string()]);
        let get = |path: &str| answer(&v, &vaults, "GET", path, Some("Bearer t0k3n"));
        let (s, list) = get("/v1/vaults?filter=title+eq+%22Prod%22");
        assert_eq!((s, list.as_array().map(Vec::len)), (200, Some(1)));
        let vid = list[0]["id"].as_str().unwrap().to_string();
        assert_eq!(get("/v1/vaults?filter=title+eq+%22Dev%22").1, json!([]));
        let (s, items) = get(&format!("/v1/vaults/{vid}/items?filter=title%20eq%20%22velero-minio-infra%22"));
        assert_eq!(s, 200);
        assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
        let (s, item) = get(&format!("/v1/vaults/{vid}/items/{}", items[0]["id"].as_str().unwrap()));
        assert_eq!(s, 200);
        let labels: Vec<&str> = item["fields"].as_array().unwrap().iter().map(|f| f["label"].as_str().unwrap()).collect();
        assert_eq!(labels, ["access_key_id", "secret_access_key"]);
        // The simulation's own items are not the platform's.
        assert_eq!(get(&format!("/v1/vaults/{vid}/items?filter=title+eq+%22sim-onepassword-connect%22")).1, json!([]));
        assert_eq!(get(&format!("/v1/vaults/{vid}/items/{}", id("item", "nope"))).0, 404);
    }

    #[test]
    fn connect_refuses_a_wrong_or_missing_token_as_connect_does() {
        let (v, vaults) = (vault(), vec!["Prod".to_string()]);
        assert_eq!(answer(&v, &vaults, "GET", "/v1/vaults", Some("Bearer old")), (401, json!({"status": 401, "message": "Invalid bearer token"})));
        assert_eq!(answer(&v, &vaults, "GET", "/v1/vaults", None).0, 401);
        assert_eq!(answer(&v, &vaults, "GET", "/heartbeat", None).0, 200);
        let mut revoked = v.clone();
        revoked.revoke_connect_token();
        assert_eq!(answer(&revoked, &vaults, "GET", "/v1/vaults", Some("Bearer t0k3n")).0, 401);
    }
}
