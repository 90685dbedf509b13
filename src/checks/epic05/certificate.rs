//! 5.1.7 "Test certificate issued successfully", as a round trip: a Certificate for a
//! throwaway name is requested from the platform's ClusterIssuer in a disposable namespace,
//! cert-manager must make it Ready, and the Secret it writes is verified as a TLS client
//! would (kit::x509): SAN, validity, chain up to the issuer's CA, key matches. Everything
//! written lives in the disposable namespace and goes with it.
//!
//! Which issuer (§9 [CM2]): a CA or self-signed issuer when the platform has one (no
//! outside effect), else an ACME staging issuer (as the planning document's own test
//! does), else any other; ties go to the issuer the repository names "staging", then by name.
//! Against ACME the request costs a real order and a DNS-01 record; the evidence says which
//! issuer was used.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

use crate::check::{CheckResult, Ctx, Outcome};
use crate::checks::kit::prelude::*;
use crate::checks::kit::x509::{Issued, verify_issued};
use crate::cluster::lease::RUN_LABEL;
use crate::cluster::objects::{self, Found, Kind};
use crate::repo::{Rendered, RenderedObject};

const CLUSTER_ISSUER: Kind = Kind::cluster_scoped("cert-manager.io", &["v1"], "ClusterIssuer");
const CERTIFICATE: Kind = Kind::namespaced("cert-manager.io", &["v1"], "Certificate");
const CERTIFICATE_REQUEST: Kind = Kind::namespaced("cert-manager.io", &["v1"], "CertificateRequest");
/// cert-manager's default cluster resource namespace, where a CA ClusterIssuer's Secret lives (§9 [CM2]).
const CLUSTER_RESOURCE_NAMESPACE: &str = "cert-manager";
/// How long cert-manager may take to issue (kept inside the runner's per-check timeout).
const ISSUE_WAIT: Duration = Duration::from_secs(30);
const NAME: &str = "pa-test-cert";

/// The issuer to test with: lowest (class, not-staging, name).
fn rank(live: &Found, rendered: Option<&RenderedObject>) -> (u8, bool, String) {
    let class = if live.get("/spec/ca").is_some() || live.get("/spec/selfSigned").is_some() {
        0
    } else if live.str("/spec/acme/server").is_some_and(|s| s.contains("staging")) {
        1
    } else {
        2
    };
    let staging = rendered.map(|r| r.name().contains("staging") || r.str("/spec/acme/server").is_some_and(|s| s.contains("staging"))).unwrap_or(false);
    (class, !staging, live.name().to_string())
}

/// `pa-<token>.<zone>`: the zone of the issuer's DNS-01 solver, else the domain of a
/// Certificate the platform renders, else a reserved `.invalid` name (fine for CA issuers).
fn test_dns_name(issuer: Option<&RenderedObject>, rendered: &Rendered) -> String {
    let zone = issuer
        .and_then(|i| i.get("/spec/acme/solvers/0/selector/dnsZones/0")?.as_str().map(str::to_string))
        .or_else(|| {
            rendered.of_kind("Certificate").find_map(|c| {
                let name = c.get("/spec/dnsNames/0")?.as_str()?;
                Some(name.strip_prefix("*.").map(str::to_string).unwrap_or_else(|| name.split_once('.').map(|(_, d)| d.to_string()).unwrap_or_default()))
            })
        })
        .filter(|z| z.contains('.'))
        .unwrap_or_else(|| "platform-acceptance.invalid".into());
    format!("pa-{}.{zone}", crate::random::token(6).to_ascii_lowercase())
}

pub(super) async fn test_certificate_issued(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let mut candidates = vec![];
    for r in rendered.of_kind("ClusterIssuer").filter(|o| o.api_version().starts_with("cert-manager.io/")) {
        if let Some(live) = objects::get(client, &CLUSTER_ISSUER, None, r.name()).await? {
            candidates.push((rank(&live, Some(r)), live, r));
        }
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    let Some((_, issuer, rendered_issuer)) = candidates.into_iter().next() else {
        return Err(Outcome::fail(format!("ClusterIssuers rendered for cluster {}", ctx.cluster), "one applied, to request a test certificate from", "none on the cluster"));
    };
    let ready = objects::expect_condition(&issuer, &CLUSTER_ISSUER, "Ready");
    if ready.verdict() != crate::check::Verdict::Pass {
        return Ok(ready);
    }

    let ns = disposable_namespace(&ctx, client, "cert").await?;
    let dns = test_dns_name(Some(rendered_issuer), &rendered);
    objects::create(client, &CERTIFICATE, Some(&ns), json!({
        "metadata": {"name": NAME, "namespace": ns, "labels": {RUN_LABEL: ctx.run}},
        "spec": {
            "secretName": format!("{NAME}-tls"), "dnsNames": [dns],
            "issuerRef": {"name": issuer.name(), "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8"},
        },
    }))
    .await?;
    let cert = format!("Certificate {ns}/{NAME} for {dns} from ClusterIssuer {} (cluster {})", issuer.name(), ctx.cluster);
    let issued = wait::object(&ctx, client, &CERTIFICATE, Some(&ns), NAME, ISSUE_WAIT, |c| c.condition("Ready").is_some_and(|r| r.status == "True")).await?;
    if issued.is_none() {
        return Err(Outcome::fail(cert, format!("Ready=True within {}s", ISSUE_WAIT.as_secs()), not_issued_because(client, &ns).await));
    }

    let secret = Api::<Secret>::namespaced(client.clone(), &ns).get(&format!("{NAME}-tls")).await.map_err(|e| crate::cluster::api_error(&format!("get Secret {ns}/{NAME}-tls"), e))?;
    let data = |k: &str| secret.data.as_ref().and_then(|d| d.get(k)).map(|b| b.0.clone()).unwrap_or_default();
    let anchor = match issuer.str("/spec/ca/secretName") {
        Some(ca) => Some(issuer_ca(client, ca).await?),
        None => None,
    };
    let (crt, key) = (data("tls.crt"), data("tls.key"));
    match verify_issued(&Issued { tls_crt: &crt, tls_key: &key, anchor: anchor.as_deref() }, &dns, time::OffsetDateTime::now_utc()) {
        Ok(v) => Ok(Outcome::pass(format!(
            "{cert}: Ready; Secret {ns}/{NAME}-tls verified: SAN {dns}, issuer {}, valid until {}, chain of {} {}, key matches",
            v.issuer,
            v.not_after,
            v.chain_len,
            if v.anchored { "anchored at the issuer's CA" } else { "verified link by link (ACME: no anchor here)" }
        ))),
        Err(d) => Err(Outcome::fail(format!("Secret {ns}/{NAME}-tls of {cert}: {}", d.property), d.expected, d.observed)),
    }
}

/// The issuer's CA certificate (`tls.crt` of its `spec.ca.secretName`; the key is never read into a message).
async fn issuer_ca(client: &kube::Client, secret: &str) -> Result<Vec<u8>, Outcome> {
    let s = Api::<Secret>::namespaced(client.clone(), CLUSTER_RESOURCE_NAMESPACE)
        .get_opt(secret)
        .await
        .map_err(|e| crate::cluster::api_error(&format!("get Secret {CLUSTER_RESOURCE_NAMESPACE}/{secret}"), e))?;
    s.and_then(|s| s.data?.remove("tls.crt")).map(|b| b.0).ok_or_else(|| {
        Outcome::fail(format!("Secret {CLUSTER_RESOURCE_NAMESPACE}/{secret} (the issuer's CA)"), "present with tls.crt", "not found")
    })
}

/// cert-manager's own words: the Certificate's Ready/Issuing conditions and its request's Ready condition.
async fn not_issued_because(client: &kube::Client, ns: &str) -> String {
    let mut why = vec![];
    if let Ok(Some(c)) = objects::get(client, &CERTIFICATE, Some(ns), NAME).await {
        for t in ["Ready", "Issuing"] {
            if let Some(k) = c.condition(t) {
                why.push(format!("{t}={} ({}: {})", k.status, k.reason, k.message));
            }
        }
    }
    if let Ok(requests) = objects::list(client, &CERTIFICATE_REQUEST, Some(ns), None).await {
        for r in requests {
            if let Some(k) = r.condition("Ready") {
                why.push(format!("CertificateRequest {}: Ready={} ({}: {})", r.name(), k.status, k.reason, k.message));
            }
        }
    }
    if why.is_empty() { "no status from cert-manager (is its controller running?)".into() } else { why.join("; ") }
}
