//! **Stand-in** for the data plane of Cilium's Gateway API implementation (the Envoy
//! listeners Cilium programs for a Gateway) and for the web applications behind the routes.
//!
//! No Cilium agent or Envoy runs here, and neither do Keycloak or GitLab. This part of the
//! `sim provisioner` process listens inside the simulation's network on the address every
//! Gateway was given (`status.addresses`) and on each listener's port, and answers as the
//! Gateway's Envoy would, decided by cluster objects:
//!
//! - an HTTPS listener terminates TLS with the certificate of its `certificateRefs` Secret
//!   (issued by the real cert-manager); without a usable Secret the handshake is refused;
//! - a request is matched against the HTTPRoutes attached to the listener whose status says
//!   this Gateway Accepted them (host names, `Exact` before the longest `PathPrefix`); no
//!   match answers 404, as Envoy does;
//! - a `RequestRedirect` filter answers with its redirect;
//! - a missing backend Service answers 500 (the Gateway API's rule for invalid backends),
//!   one without a ready endpoint 503 `no healthy upstream`, Envoy's answer;
//! - otherwise the application answers, and that answer is the stand-in's own: for the
//!   applications in [`APPS`] (recognised by the Service's selector) their page at the path
//!   upstream serves it, with upstream's page title; for anything else a plain page naming
//!   the backend. Criteria resting on these pages are marked stand-in.
//!
//! Listeners follow the Gateways: a new or changed Gateway is served within
//! [`PERIOD`], a deleted one stops answering (connection refused).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use kube::core::DynamicObject;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::cluster::objects::{self, Kind};

const GATEWAY: Kind = Kind::namespaced("gateway.networking.k8s.io", &["v1", "v1beta1"], "Gateway");
const HTTPROUTE: Kind = Kind::namespaced("gateway.networking.k8s.io", &["v1", "v1beta1"], "HTTPRoute");
/// How often the Gateways are read again.
pub const PERIOD: Duration = Duration::from_secs(2);

/// An application behind a route, played by the stand-in: the Service selector label that
/// marks its pods, the path of the page a person opens and that page's title.
pub struct App {
    pub label: (&'static str, &'static str),
    pub path: &'static str,
    pub title: &'static str,
}

/// The applications the simulation answers for (pages and titles as upstream serves them).
pub const APPS: &[App] = &[
    // Keycloak's operator labels its pods `app.kubernetes.io/managed-by: keycloak-operator`;
    // the admin console of the master realm (keycloak.v2 admin theme).
    App { label: ("app.kubernetes.io/managed-by", "keycloak-operator"), path: "/admin/master/console/", title: "Keycloak Administration Console" },
    // GitLab chart's webservice pods (`app: webservice`); the sign-in page.
    App { label: ("app", "webservice"), path: "/users/sign_in", title: "Sign in · GitLab" },
];

/// One listener of one Gateway, at the address the Gateway was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub gateway: (String, String),
    pub name: String,
    pub addr: SocketAddr,
    /// The `certificateRefs` Secret (namespace, name) of an HTTPS listener.
    pub tls: Option<(String, String)>,
}

/// The listeners `gateway` asks for: every `spec.listeners` entry at each IP of `status.addresses`.
pub fn listeners(gateway: &DynamicObject) -> Vec<Listener> {
    let ns = gateway.metadata.namespace.clone().unwrap_or_default();
    let name = gateway.metadata.name.clone().unwrap_or_default();
    let ips: Vec<std::net::IpAddr> = gateway.data.pointer("/status/addresses").and_then(Value::as_array).into_iter().flatten().filter_map(|a| a.get("value")?.as_str()?.parse().ok()).collect();
    let mut out = vec![];
    for l in gateway.data.pointer("/spec/listeners").and_then(Value::as_array).into_iter().flatten() {
        let Some(port) = l.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()) else { continue };
        let tls = (l.get("protocol").and_then(Value::as_str) == Some("HTTPS"))
            .then(|| l.pointer("/tls/certificateRefs/0"))
            .flatten()
            .map(|r| (r.get("namespace").and_then(Value::as_str).unwrap_or(&ns).to_string(), r.get("name").and_then(Value::as_str).unwrap_or("").to_string()));
        for ip in &ips {
            out.push(Listener { gateway: (ns.clone(), name.clone()), name: l.get("name").and_then(Value::as_str).unwrap_or("").to_string(), addr: SocketAddr::new(*ip, port), tls: tls.clone() });
        }
    }
    out
}

/// Serves every Gateway of every cluster, forever (see the module docs).
pub async fn serve(cfg: &super::SimConfig) -> anyhow::Result<()> {
    let mut clients = vec![];
    for c in super::cluster::cluster_specs(cfg)? {
        clients.push(super::client(cfg, &c.name).await?);
    }
    let mut running: BTreeMap<SocketAddr, (Listener, tokio::task::JoinHandle<()>)> = BTreeMap::new();
    let mut refused: BTreeMap<SocketAddr, String> = BTreeMap::new();
    loop {
        let mut wanted: BTreeMap<SocketAddr, (Listener, kube::Client)> = BTreeMap::new();
        for client in &clients {
            if let Ok(gws) = objects::list(client, &GATEWAY, None, None).await {
                for l in gws.iter().flat_map(|g| listeners(&g.object)) {
                    wanted.entry(l.addr).or_insert((l, client.clone()));
                }
            }
        }
        running.retain(|addr, (l, task)| {
            let keep = wanted.get(addr).is_some_and(|(w, _)| w == l);
            if !keep {
                task.abort();
            }
            keep
        });
        for (addr, (l, client)) in wanted {
            if running.contains_key(&addr) {
                continue;
            }
            match tokio::net::TcpListener::bind(addr).await {
                Ok(sock) => {
                    refused.remove(&addr);
                    running.insert(addr, (l.clone(), tokio::spawn(accept_loop(sock, l, client))));
                }
                Err(e) => {
                    if refused.insert(addr, e.to_string()).is_none() {
                        eprintln!("gateway stand-in: cannot listen on {addr} for Gateway {}/{}: {e}", l.gateway.0, l.gateway.1);
                    }
                }
            }
        }
        tokio::time::sleep(PERIOD).await;
    }
}

async fn accept_loop(sock: tokio::net::TcpListener, l: Listener, client: kube::Client) {
    let l = Arc::new(l);
    while let Ok((conn, _)) = sock.accept().await {
        let (l, client) = (l.clone(), client.clone());
        tokio::spawn(async move {
            match &l.tls {
                None => answer(&client, &l, conn).await,
                Some((ns, name)) => {
                    // No usable certificate: Envoy has no filter chain for the listener.
                    let Some(config) = tls_config(&client, ns, name).await else { return };
                    if let Ok(tls) = tokio_rustls::TlsAcceptor::from(Arc::new(config)).accept(conn).await {
                        answer(&client, &l, tls).await;
                    }
                }
            }
        });
    }
}

/// The server configuration with the certificate and key of Secret `ns/name`.
async fn tls_config(client: &kube::Client, ns: &str, name: &str) -> Option<rustls::ServerConfig> {
    let data = Api::<Secret>::namespaced(client.clone(), ns).get_opt(name).await.ok()??.data?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&data.get("tls.crt")?.0).collect::<Result<_, _>>().ok()?;
    let key = PrivateKeyDer::from_pem_slice(&data.get("tls.key")?.0).ok()?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .ok()
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(client: &kube::Client, l: &Listener, mut sock: S) {
    let Some((_, path, headers, _)) = super::observability::read_request(&mut sock).await else { return };
    let host = headers.get("host").map(|h| h.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()).map_or(h.as_str(), |(h, _)| h)).unwrap_or("").to_ascii_lowercase();
    let a = respond(client, l, &host, path.split('?').next().unwrap_or("/")).await;
    let location = a.location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
    let head = format!("HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n{location}Connection: close\r\n\r\n", a.status, a.content_type, a.body.len());
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(a.body.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// What the Gateway answers.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub location: Option<String>,
    pub body: String,
}

impl Answer {
    fn plain(status: u16, body: &str) -> Answer {
        Answer { status, content_type: "text/plain", location: None, body: body.to_string() }
    }
}

async fn respond(client: &kube::Client, l: &Listener, host: &str, path: &str) -> Answer {
    let routes = match objects::list(client, &HTTPROUTE, None, None).await {
        Ok(r) => r.into_iter().map(|f| f.object).collect::<Vec<_>>(),
        Err(_) => return Answer::plain(503, "upstream connect error"),
    };
    let Some((route, rule)) = best_rule(&routes, l, host, path) else { return Answer::plain(404, "") };
    if let Some(r) = rule.get("filters").and_then(Value::as_array).into_iter().flatten().find_map(|f| f.get("requestRedirect")) {
        let scheme = r.get("scheme").and_then(Value::as_str).unwrap_or(if l.tls.is_some() { "https" } else { "http" });
        let to = r.get("hostname").and_then(Value::as_str).unwrap_or(host);
        let status = r.get("statusCode").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()).unwrap_or(302);
        return Answer { status, content_type: "text/plain", location: Some(format!("{scheme}://{to}{path}")), body: String::new() };
    }
    let Some(backend) = rule.get("backendRefs").and_then(Value::as_array).and_then(|b| b.first()) else { return Answer::plain(500, "") };
    let ns = backend.get("namespace").and_then(Value::as_str).or(route.metadata.namespace.as_deref()).unwrap_or("default");
    let name = backend.get("name").and_then(Value::as_str).unwrap_or("");
    let Ok(Some(svc)) = Api::<Service>::namespaced(client.clone(), ns).get_opt(name).await else { return Answer::plain(500, "") };
    if !super::relay::has_ready_endpoints(client, ns, name, None).await {
        return Answer::plain(503, "no healthy upstream");
    }
    page(&svc, path)
}

/// The application's answer for `path` (the stand-in's page, see [`APPS`]).
pub fn page(svc: &Service, path: &str) -> Answer {
    let selector = svc.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    let backend = format!("{}/{}", svc.metadata.namespace.as_deref().unwrap_or(""), svc.metadata.name.as_deref().unwrap_or(""));
    let html = |status, title: &str| Answer {
        status,
        content_type: "text/html",
        location: None,
        body: format!("<!DOCTYPE html><html><head><title>{title}</title></head><body><!-- simulation stand-in page for Service {backend} --></body></html>"),
    };
    match APPS.iter().find(|a| selector.get(a.label.0).map(String::as_str) == Some(a.label.1)) {
        Some(app) if app.path == path => html(200, app.title),
        Some(_) => html(404, "Not Found"),
        None => Answer::plain(200, &format!("simulation stand-in backend {backend}")),
    }
}

/// The rule that serves `host` + `path` among the routes attached to listener `l` and
/// Accepted by its Gateway: an `Exact` path match first, then the longest `PathPrefix`.
pub fn best_rule<'a>(routes: &'a [DynamicObject], l: &Listener, host: &str, path: &str) -> Option<(&'a DynamicObject, &'a Value)> {
    let mut best: Option<((bool, usize), &DynamicObject, &Value)> = None;
    for route in routes.iter().filter(|r| attached(r, l) && serves_host(r, host)) {
        for rule in route.data.pointer("/spec/rules").and_then(Value::as_array).into_iter().flatten() {
            let matches = rule.get("matches").and_then(Value::as_array).cloned().unwrap_or_default();
            let scores: Vec<(bool, usize)> = if matches.is_empty() {
                vec![(false, 1)]
            } else {
                matches.iter().filter_map(|m| path_score(m.get("path"), path)).collect()
            };
            if let Some(score) = scores.into_iter().max()
                && best.as_ref().is_none_or(|(b, _, _)| score > *b)
            {
                best = Some((score, route, rule));
            }
        }
    }
    best.map(|(_, route, rule)| (route, rule))
}

/// How well a path match fits: `(exact, length)`, or `None` when it does not match.
fn path_score(m: Option<&Value>, path: &str) -> Option<(bool, usize)> {
    let kind = m.and_then(|m| m.get("type")).and_then(Value::as_str).unwrap_or("PathPrefix");
    let value = m.and_then(|m| m.get("value")).and_then(Value::as_str).unwrap_or("/");
    match kind {
        "Exact" => (path == value).then_some((true, value.len())),
        _ => {
            let prefix = value.trim_end_matches('/');
            (prefix.is_empty() || path == prefix || path.starts_with(&format!("{prefix}/"))).then_some((false, value.len().max(1)))
        }
    }
}

/// The route names listener `l` as a parent, and that parent's status says Accepted.
fn attached(route: &DynamicObject, l: &Listener) -> bool {
    let route_ns = route.metadata.namespace.as_deref().unwrap_or("default");
    let names = |p: &Value| {
        p.get("name").and_then(Value::as_str) == Some(l.gateway.1.as_str())
            && p.get("namespace").and_then(Value::as_str).unwrap_or(route_ns) == l.gateway.0
            && p.get("sectionName").and_then(Value::as_str).is_none_or(|s| s == l.name)
    };
    let referenced = route.data.pointer("/spec/parentRefs").and_then(Value::as_array).into_iter().flatten().any(names);
    let accepted = route.data.pointer("/status/parents").and_then(Value::as_array).into_iter().flatten().any(|p| {
        p.get("parentRef").is_some_and(names)
            && p.get("conditions").and_then(Value::as_array).into_iter().flatten().any(|c| c.get("type").and_then(Value::as_str) == Some("Accepted") && c.get("status").and_then(Value::as_str) == Some("True"))
    });
    referenced && accepted
}

/// The route's `hostnames` cover `host` (none: every host; `*.zone`: one or more labels).
fn serves_host(route: &DynamicObject, host: &str) -> bool {
    let names: Vec<&str> = route.data.pointer("/spec/hostnames").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    names.is_empty()
        || names.iter().any(|n| match n.strip_prefix('*') {
            Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
            None => n.eq_ignore_ascii_case(host),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn route(name: &str, section: &str, hosts: Value, rules: Value, accepted: &str) -> DynamicObject {
        object(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"parentRefs": [{"name": "external", "namespace": "networking", "sectionName": section}], "hostnames": hosts, "rules": rules},
            "status": {"parents": [{"parentRef": {"name": "external", "namespace": "networking", "sectionName": section},
                                    "conditions": [{"type": "Accepted", "status": accepted}]}]}
        }))
    }

    fn https() -> Listener {
        Listener { gateway: ("networking".into(), "external".into()), name: "https".into(), addr: "10.0.0.1:443".parse().unwrap(), tls: Some(("networking".into(), "tls".into())) }
    }

    #[test]
    fn a_gateway_asks_for_each_listener_at_each_address() {
        let gw = object(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "external", "namespace": "networking"},
            "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80},
                                   {"name": "https", "protocol": "HTTPS", "port": 443, "tls": {"certificateRefs": [{"kind": "Secret", "name": "tls"}]}}]},
            "status": {"addresses": [{"type": "IPAddress", "value": "10.0.0.1"}]}
        }));
        let ls = listeners(&gw);
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[1], https());
        assert_eq!(ls[0].tls, None);
        let unprogrammed = object(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"}, "spec": {"listeners": [{"name": "h", "port": 80}]}}));
        assert!(listeners(&unprogrammed).is_empty());
    }

    #[test]
    fn routes_match_by_listener_acceptance_host_and_longest_path() {
        let routes = vec![
            route("kas", "https", json!(["kas.example.org"]), json!([
                {"matches": [{"path": {"type": "PathPrefix", "value": "/k8s-proxy"}}], "backendRefs": [{"name": "proxy"}]},
                {"backendRefs": [{"name": "agent"}]}]), "True"),
            route("wild", "https", json!(["*.example.org"]), json!([{"backendRefs": [{"name": "any"}]}]), "True"),
            route("refused", "https", json!(["nope.example.net"]), json!([{"backendRefs": [{"name": "x"}]}]), "False"),
            route("other", "http", json!([]), json!([{"backendRefs": [{"name": "y"}]}]), "True"),
        ];
        let backend = |host: &str, path: &str| best_rule(&routes, &https(), host, path).map(|(_, r)| r["backendRefs"][0]["name"].as_str().unwrap().to_string());
        assert_eq!(backend("kas.example.org", "/k8s-proxy/api").as_deref(), Some("proxy"));
        assert_eq!(backend("kas.example.org", "/k8s-proxyx").as_deref(), Some("agent"));
        assert_eq!(backend("a.b.example.org", "/").as_deref(), Some("any"));
        assert_eq!(backend("nope.example.net", "/"), None, "a route the Gateway did not accept is not served");
        assert_eq!(backend("example.org", "/"), None, "a wildcard needs at least one label");
    }

    #[test]
    fn applications_answer_their_page_and_unknown_backends_name_themselves() {
        let svc = |selector: Value| -> Service { serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "gitlab"}, "spec": {"selector": selector}})).unwrap() };
        let gitlab = svc(json!({"app": "webservice", "release": "gitlab"}));
        let a = page(&gitlab, "/users/sign_in");
        assert_eq!(a.status, 200);
        assert!(a.body.contains("<title>Sign in · GitLab</title>") && a.body.contains("stand-in"), "{}", a.body);
        assert_eq!(page(&gitlab, "/admin/master/console/").status, 404);
        let other = page(&svc(json!({"app": "harbor"})), "/");
        assert_eq!((other.status, other.body.as_str()), (200, "simulation stand-in backend gitlab/web"));
    }
}
