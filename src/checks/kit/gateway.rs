//! A request through the platform's Gateway: what "accessible via HTTPRoute" means to a
//! person with a browser. The route's parent Gateway gives the address (its
//! `status.addresses`, what Cilium's LB IPAM assigned) and the listener (port, HTTPS and
//! its certificate Secret); the request goes to that address through the target's data
//! path (a relay pod on the cluster when the Gateway's address is not routable from
//! here), with the route's host name as TLS server name and `Host`, and the answer must be
//! the application's page.
//!
//! The certificate is verified: against the system's roots plus the `ca.crt` of the
//! listener's Secret when the issuer wrote one (a CA or self-signed issuer), so a
//! certificate that does not cover the host name, or that nobody trusts, is a Fail.

use serde_json::Value;

use crate::check::{CheckContext, Outcome};
use crate::cluster::objects::{self as live, Kind};
use crate::repo::RenderedObject;

use super::secrets::secret_data;

/// Gateway API standard channel (v1; v1beta1 still served).
pub const GATEWAY: Kind = Kind::namespaced("gateway.networking.k8s.io", &["v1", "v1beta1"], "Gateway");

/// How long the request may take, connection and TLS included.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// What a page must be to count as the application's: `GET <path>` answers 200 and the
/// body contains `marker` (case-insensitive).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub path: &'static str,
    pub marker: &'static str,
}

/// `GET https://<host><page.path>` through the Gateway that `route` (as rendered from the
/// repository) attaches to, on the evaluated cluster: 200 with the page's marker, over a
/// certificate valid for `host`. A Fail names the hop: Gateway address, listener, TLS,
/// status or page.
pub async fn route_answers(ctx: &CheckContext, route: &RenderedObject, host: &str, page: Page) -> Result<Outcome, Outcome> {
    let client = ctx.kube()?;
    ctx.data_path(&ctx.cluster, &format!("https://{host}{}", page.path))?;
    let route_ns = route.namespace().unwrap_or("default");
    let parent = route.get("/spec/parentRefs/0").cloned().unwrap_or(Value::Null);
    let gw_name = parent.get("name").and_then(Value::as_str).unwrap_or("");
    let gw_ns = parent.get("namespace").and_then(Value::as_str).unwrap_or(route_ns);
    let section = parent.get("sectionName").and_then(Value::as_str);
    let gw = live::require(client, &GATEWAY, Some(gw_ns), gw_name).await?;
    let object = format!("{} (cluster {})", gw.describe(&GATEWAY), ctx.cluster);
    let address = gw.get("/status/addresses").and_then(Value::as_array).into_iter().flatten().find_map(|a| a.get("value").and_then(Value::as_str));
    let Some(address) = address else {
        return Ok(Outcome::fail(format!("{object} status.addresses"), "the address the Gateway was given", "none (not programmed)"));
    };
    let listeners = gw.get("/spec/listeners").and_then(Value::as_array).cloned().unwrap_or_default();
    let listener = listeners.iter().find(|l| section.is_none_or(|s| l.get("name").and_then(Value::as_str) == Some(s)));
    let Some(listener) = listener else {
        return Ok(Outcome::fail(format!("{object} spec.listeners"), format!("listener {}", section.unwrap_or("any")), "none"));
    };
    let port = listener.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(443);
    let https = listener.get("protocol").and_then(Value::as_str) == Some("HTTPS");
    let mut builder = reqwest::Client::builder().timeout(TIMEOUT).redirect(reqwest::redirect::Policy::none());
    if let Some(secret) = listener.get("tls").and_then(|t| t.pointer("/certificateRefs/0")) {
        let sns = secret.get("namespace").and_then(Value::as_str).unwrap_or(gw_ns);
        let sname = secret.get("name").and_then(Value::as_str).unwrap_or("");
        let data = secret_data(client, &ctx.cluster, sns, sname).await?;
        if let Some(ca) = data.get("ca.crt").filter(|c| !c.trim().is_empty()) {
            let roots = reqwest::Certificate::from_pem_bundle(ca.as_bytes()).map_err(|e| Outcome::fail(format!("Secret {sns}/{sname} ca.crt"), "PEM certificates", crate::errline::http(&e)))?;
            builder = builder.tls_certs_merge(roots);
        }
    }
    let addr = ctx.resolve(address, port).await?;
    let scheme = if https { "https" } else { "http" };
    let default_port = if https { 443 } else { 80 };
    let url = if port == default_port { format!("{scheme}://{host}{}", page.path) } else { format!("{scheme}://{host}:{port}{}", page.path) };
    let http = builder.resolve(host, addr).build().map_err(Outcome::error)?;
    let via = format!("through Gateway {gw_ns}/{gw_name} at {address}:{port} (from cluster {})", ctx.cluster);
    let resp = match http.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            let failure = crate::errline::Failure::http(&e);
            if failure.line.contains("certificate") {
                return Ok(Outcome::fail(format!("{url} {via}"), format!("a certificate valid for {host}, from a trusted issuer"), failure.line));
            }
            return Ok(ctx.exchange_failed(addr, format!("{url} {via}"), "an answer", failure));
        }
    };
    ctx.reached(addr);
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let expected = format!("200 and a page naming {}", page.marker);
    if status != 200 {
        let text: String = body.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(120).collect();
        return Ok(Outcome::fail(format!("GET {url} {via}"), expected, format!("{status} {text}").trim().to_string()));
    }
    if !body.to_lowercase().contains(&page.marker.to_lowercase()) {
        return Ok(Outcome::fail(format!("GET {url} {via}"), expected, format!("200, a page of {} bytes without {:?}", body.len(), page.marker)));
    }
    Ok(Outcome::pass(format!("GET {url} {via}: 200, the page names {}", page.marker)))
}
