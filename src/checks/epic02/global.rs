//! 2.3.6 "Global services can be created", as traffic: the same Service, annotated
//! `service.cilium.io/global: "true"`, in a disposable namespace of the same name on every
//! cluster (a global service is the same-named Service in every cluster, §2.4 [C7]); one
//! backend pod behind it on the first cluster only (the relay's SOCKS5 server, which answers
//! a greeting); then, from every other cluster, the Service's cluster name is resolved and
//! connected to through that cluster's relay, and the backend must answer within 30 s of
//! being ready (its endpoint takes a moment to reach the other clusters). A failure names
//! the hop: creation (admission), DNS, connect, answer.
//!
//! Writes (declared with `.writes()`): the namespaces, the Services and the backend pod, all
//! in the disposable namespaces.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::check::{CheckContext, CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::checks::kit::services::GLOBAL_ANNOTATION;
use crate::cluster::api_error;
use crate::cluster::objects::{self, Kind};
use crate::cluster::relay;

const NAME: &str = "pa-global-echo";
const POD: Kind = Kind::namespaced("", &["v1"], "Pod");
/// How long the backend pod may take to be ready (image pull included).
const BACKEND_WAIT: Duration = Duration::from_secs(90);
/// How long the ready backend may take to be reached through the global Service.
const PROPAGATION_WAIT: Duration = Duration::from_secs(30);

pub(super) async fn global_service_created(ctx: Ctx) -> CheckResult<Outcome> {
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    let clients: Vec<(String, kube::Client)> = target.peers.iter().map(|(c, k)| (c.clone(), k.clone())).collect();
    let ns = disposable_namespace_everywhere(&ctx, &clients, "global-svc").await?;
    let mut findings = vec![];
    for (cluster, client) in &clients {
        if let Some(f) = create_global_service(client, cluster, &ns).await? {
            findings.push(f);
        }
    }
    if !findings.is_empty() {
        return Ok(Outcome::from_findings(findings, String::new()));
    }
    let (home, home_client) = &clients[0];
    let image = target.resolver.relay_image().unwrap_or(relay::DEFAULT_IMAGE);
    objects::create(home_client, &POD, Some(&ns), relay::socks_pod(image, &ctx.run, &ns, NAME, NAME)).await?;
    let ready = |p: &objects::Found| p.condition("Ready").is_some_and(|c| c.status == "True");
    if wait::object(&ctx, home_client, &POD, Some(&ns), NAME, BACKEND_WAIT, ready).await?.is_none() {
        return Ok(Outcome::fail(format!("pod {ns}/{NAME} (cluster {home})"), "ready (the global Service's only backend)", format!("not ready after {}s (image {image})", BACKEND_WAIT.as_secs())));
    }
    let host = format!("{NAME}.{ns}.svc.cluster.local");
    let mut evidence = vec![];
    for (cluster, _) in &clients[1..] {
        match answered_from(&ctx, cluster, &host, home).await {
            Ok(waited) => evidence.push(format!("from {cluster}: answered by the backend on {home}{}", after(waited))),
            Err(Outcome::Fail { findings: f }) => findings.extend(f),
            Err(o) => return Err(o),
        }
    }
    Ok(Outcome::from_findings(findings, format!("global Service {ns}/{NAME} ({GLOBAL_ANNOTATION}=true) on {} clusters, backend on {home}; {}", clients.len(), evidence.join("; "))))
}

/// Resolves `host` from `cluster` and greets the backend there, again every second while
/// that fails, for [`PROPAGATION_WAIT`]: the backend's endpoint reaches the other clusters
/// (EndpointSlice, then the mesh) a moment after its pod is ready. Returns how long it took;
/// an Error (not evaluated) ends the tries at once, the last Fail is returned after the wait.
async fn answered_from(ctx: &CheckContext, cluster: &str, host: &str, home: &str) -> Result<Duration, Outcome> {
    let started = tokio::time::Instant::now();
    loop {
        let tried = match ctx.resolve_in(cluster, host, 80).await {
            Ok(addr) => greet(addr).await.map_err(|why| {
                Outcome::fail(format!("{host}:80 from cluster {cluster}"), format!("the backend on {home} answers (a SOCKS5 greeting) within {}s", PROPAGATION_WAIT.as_secs()), why)
            }),
            Err(o) => Err(o),
        };
        match tried {
            Ok(()) => return Ok(started.elapsed()),
            Err(Outcome::Fail { .. }) if started.elapsed() < PROPAGATION_WAIT && !ctx.cancel.is_cancelled() => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(o) => return Err(o),
        }
    }
}

/// " after 3s" when the backend took a while to be reached.
fn after(waited: Duration) -> String {
    if waited < Duration::from_secs(1) { String::new() } else { format!(" after {}s", waited.as_secs()) }
}

/// Creates the global Service on one cluster; a finding when admission refuses or changes it.
async fn create_global_service(client: &kube::Client, cluster: &str, ns: &str) -> Result<Option<Finding>, Outcome> {
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": NAME, "namespace": ns, "annotations": {GLOBAL_ANNOTATION: "true", "service.cilium.io/shared": "true"}},
        "spec": {"selector": {"app.kubernetes.io/name": NAME}, "ports": [{"name": "socks5", "port": 80, "targetPort": relay::PORT, "protocol": "TCP"}]},
    }))
    .map_err(Outcome::error)?;
    let object = format!("Service {ns}/{NAME} (cluster {cluster})");
    match Api::<Service>::namespaced(client.clone(), ns).create(&PostParams::default(), &svc).await {
        Ok(created) => {
            let annotated = created.metadata.annotations.as_ref().and_then(|a| a.get(GLOBAL_ANNOTATION)).map(String::as_str);
            Ok((annotated != Some("true")).then(|| Finding::new(object, format!("{GLOBAL_ANNOTATION}: \"true\" kept"), format!("{annotated:?} (changed by admission)"))))
        }
        // Rejected by admission (policy, webhook, quota): the global service cannot be created.
        // RBAC ("cannot create resource") means the harness may not try: an Error.
        Err(kube::Error::Api(s)) if (400..500).contains(&s.code) && !s.message.contains("cannot create resource") => {
            Ok(Some(Finding::new(object, "created (global service accepted)", format!("rejected {}: {}", s.code, s.message))))
        }
        Err(e) => Err(api_error(&format!("create {object}"), e)),
    }
}

/// A SOCKS5 greeting (no authentication) to `addr`, and its answer.
async fn greet(addr: std::net::SocketAddr) -> Result<(), String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(&[5, 1, 0]).await?;
        let mut answer = [0u8; 2];
        s.read_exact(&mut answer).await?;
        std::io::Result::Ok(answer)
    };
    match tokio::time::timeout(Duration::from_secs(10), exchange).await {
        Ok(Ok([5, 0])) => Ok(()),
        Ok(Ok(other)) => Err(format!("answered {other:?}, not a SOCKS5 server's [5, 0]")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err("the connection closed without an answer (no backend reached)".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 10s".into()),
    }
}
