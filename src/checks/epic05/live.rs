//! EPIC-5 cluster layer: cert-manager and External Secrets as the clusters run them.
//! Which objects to look at comes from the rendered repository (HelmReleases, the
//! ClusterIssuers/ClusterSecretStore of Story 5.1/5.2's files, the platform's
//! Certificates and ExternalSecrets); health fields from docs/reference/components.md §9, §10.
//! Secret values are never read into messages: only key names are compared.

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::Api;
use serde_json::Value;

use super::LETSENCRYPT_DOMAIN;
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects::{self, Kind};
use crate::repo::RenderedObject;

const CLUSTER_ISSUER: Kind = Kind::cluster_scoped("cert-manager.io", &["v1"], "ClusterIssuer");
const CLUSTER_SECRET_STORE: Kind = Kind::cluster_scoped("external-secrets.io", &["v1", "v1beta1"], "ClusterSecretStore");
const EXTERNAL_SECRET: Kind = Kind::namespaced("external-secrets.io", &["v1", "v1beta1"], "ExternalSecret");

/// Helm `fullname`: the release name when it contains the chart name, else `<release>-<chart>`.
fn fullname(release: &str, chart: &str) -> String {
    if release.contains(chart) { release.to_string() } else { format!("{release}-{chart}") }
}

/// §9 [CM3]: controller, webhook and cainjector Deployments of the release.
pub(super) async fn cert_manager_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(release_deployed(&ctx, &["cert-manager"], |_, release| {
        let f = fullname(release, "cert-manager");
        vec![("Deployment", f.clone()), ("Deployment", format!("{f}-webhook")), ("Deployment", format!("{f}-cainjector"))]
    })
    .await)
}

/// §10.4 [ES2]: controller, webhook and cert controller Deployments of the release.
pub(super) async fn eso_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(release_deployed(&ctx, &["external-secrets"], |_, release| {
        let f = fullname(release, "external-secrets");
        vec![("Deployment", f.clone()), ("Deployment", format!("{f}-webhook")), ("Deployment", format!("{f}-cert-controller"))]
    })
    .await)
}

fn is_letsencrypt(issuer: &RenderedObject) -> bool {
    let server = issuer.str("/spec/acme/server").unwrap_or("");
    let host = server.strip_prefix("https://").and_then(|r| r.split('/').next()).unwrap_or("");
    host == LETSENCRYPT_DOMAIN || host.ends_with(&format!(".{LETSENCRYPT_DOMAIN}"))
}

/// Every Let's Encrypt ClusterIssuer of `clusterissuer.yaml` exists and is Ready (its ACME
/// account registered) for its current generation.
pub(super) async fn letsencrypt_issuer_ready(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    // Wherever the repository keeps them (5.1.3 judges the plan's file).
    let issuers: Vec<&RenderedObject> = rendered.of_kind("ClusterIssuer").filter(|o| is_letsencrypt(o)).collect();
    if issuers.is_empty() {
        return Err(Outcome::fail(format!("ClusterIssuers rendered for cluster {}", ctx.cluster), format!("an ACME issuer at {LETSENCRYPT_DOMAIN}"), "none"));
    }
    let mut outcomes = vec![];
    for i in issuers {
        outcomes.push(match objects::get(client, &CLUSTER_ISSUER, None, i.name()).await {
            Ok(Some(found)) => objects::expect_condition(&found, &CLUSTER_ISSUER, "Ready"),
            Ok(None) => Outcome::fail(format!("ClusterIssuer {} (cluster {})", i.name(), ctx.cluster), format!("applied from {}", i.file.display()), "not found"),
            Err(o) => o,
        });
    }
    Ok(Outcome::all(outcomes))
}

/// `http://<svc>.<ns>.svc[.cluster.local]:<port>` → (svc, ns).
fn service_of(url: &str) -> Option<(String, String)> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut parts = host.split('.');
    let (svc, ns) = (parts.next()?, parts.next()?);
    Some((svc.to_string(), ns.to_string()))
}

/// ESO validated the 1Password store (ClusterSecretStore Ready=True: it reached Connect with
/// the token), and the Connect Service the store points at has ready endpoints.
pub(super) async fn onepassword_connect_accessible(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    // Wherever the repository keeps it (5.2.3 judges the plan's file).
    let stores: Vec<&RenderedObject> = rendered.of_kind("ClusterSecretStore").filter(|o| o.get("/spec/provider/onepassword").is_some()).collect();
    if stores.is_empty() {
        return Err(Outcome::fail(format!("ClusterSecretStores rendered for cluster {}", ctx.cluster), "a 1Password Connect store", "none"));
    }
    let mut outcomes = vec![];
    for s in stores {
        let found = match objects::get(client, &CLUSTER_SECRET_STORE, None, s.name()).await? {
            Some(f) => f,
            None => {
                outcomes.push(Outcome::fail(format!("ClusterSecretStore {} (cluster {})", s.name(), ctx.cluster), format!("applied from {}", s.file.display()), "not found"));
                continue;
            }
        };
        let obj = format!("{} (cluster {})", found.describe(&CLUSTER_SECRET_STORE), ctx.cluster);
        match found.condition("Ready") {
            Some(c) if c.status == "True" => outcomes.push(Outcome::pass(format!("{obj}: Ready ({})", c.reason))),
            Some(c) => {
                let why = objects::last_warning(client, &found, &c.message).await.map(|w| format!("; last warning event {w}")).unwrap_or_default();
                outcomes.push(Outcome::fail(obj.clone(), "Ready=True (Valid: Connect answered)", format!("Ready={} ({}: {}){why}", c.status, c.reason, c.message)));
            }
            None => outcomes.push(Outcome::fail(obj.clone(), "Ready=True (Valid: Connect answered)", "no Ready condition")),
        }
        let host = found.str("/spec/provider/onepassword/connectHost").unwrap_or("").to_string();
        let Some((svc, ns)) = service_of(&host) else {
            outcomes.push(Outcome::fail(format!("{obj} connectHost"), "http(s)://<svc>.<ns>.svc...", format!("{host:?}")));
            continue;
        };
        match Api::<Service>::namespaced(client.clone(), &ns).get_opt(&svc).await.map_err(|e| crate::cluster::api_error("get the Connect Service", e))? {
            Some(_) => {}
            None => {
                outcomes.push(Outcome::fail(format!("Service {ns}/{svc} (cluster {}; connectHost of {obj})", ctx.cluster), "present (1Password Connect)", "not found"));
                continue;
            }
        }
        let ready = ready_endpoints(client, &ns, &svc).await?;
        outcomes.push(if ready > 0 {
            Outcome::pass(format!("Service {ns}/{svc} ({host}): {ready} ready endpoints"))
        } else {
            Outcome::fail(format!("Service {ns}/{svc} (cluster {}; connectHost {host})", ctx.cluster), "at least one ready endpoint (a running 1Password Connect)", "none ready")
        });
    }
    Ok(Outcome::all(outcomes))
}

/// The platform's ExternalSecrets (rendered for the cluster) are synced: Ready=True with
/// reason SecretSynced, and the target Secret exists holding every `spec.data[].secretKey`
/// (key names compared only; values are never looked at).
pub(super) async fn external_secrets_synced(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let rendered = rendered(&ctx)?;
    let wanted: Vec<&RenderedObject> = rendered.of_kind("ExternalSecret").filter(|o| o.api_version().starts_with("external-secrets.io/")).collect();
    if wanted.is_empty() {
        return Err(Outcome::fail(format!("ExternalSecrets rendered for cluster {}", ctx.cluster), "at least one to prove syncing", "none"));
    }
    let mut findings = vec![];
    let mut synced = 0;
    for es in wanted {
        let ns = es.namespace().unwrap_or("default");
        let found = match objects::get(client, &EXTERNAL_SECRET, Some(ns), es.name()).await? {
            Some(f) => f,
            None => {
                findings.push(Finding::new(format!("ExternalSecret {ns}/{} (cluster {})", es.name(), ctx.cluster), format!("applied from {}", es.file.display()), "not found"));
                continue;
            }
        };
        let obj = format!("{} (cluster {})", found.describe(&EXTERNAL_SECRET), ctx.cluster);
        match found.condition("Ready") {
            Some(c) if c.status == "True" && c.reason == "SecretSynced" => {}
            Some(c) => {
                let why = objects::last_warning(client, &found, &c.message).await.map(|w| format!("; last warning event {w}")).unwrap_or_default();
                findings.push(Finding::new(obj, "Ready=True (SecretSynced)", format!("Ready={} ({}: {}){why}", c.status, c.reason, c.message)));
                continue;
            }
            None => {
                findings.push(Finding::new(obj, "Ready=True (SecretSynced)", "no Ready condition"));
                continue;
            }
        }
        let target = found.str("/spec/target/name").unwrap_or(es.name()).to_string();
        let secret = Api::<Secret>::namespaced(client.clone(), ns).get_opt(&target).await.map_err(|e| crate::cluster::api_error(&format!("get Secret {ns}/{target}"), e))?;
        let Some(secret) = secret else {
            findings.push(Finding::new(format!("Secret {ns}/{target} (target of {obj})"), "present", "not found"));
            continue;
        };
        let keys: Vec<String> = secret.data.as_ref().map(|d| d.keys().cloned().collect()).unwrap_or_default();
        if found.get("/spec/target/template").is_none() {
            let missing: Vec<&str> = found
                .get("/spec/data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("secretKey").and_then(Value::as_str))
                .filter(|k| !keys.iter().any(|x| x == k))
                .collect();
            if !missing.is_empty() {
                findings.push(Finding::new(format!("Secret {ns}/{target} (target of {obj})"), format!("keys {missing:?}"), format!("keys {keys:?}")));
                continue;
            }
        }
        drop(secret);
        synced += 1;
    }
    Ok(Outcome::from_findings(findings, format!("{synced} ExternalSecrets synced (Ready/SecretSynced, target Secrets with their keys) on cluster {}", ctx.cluster)))
}
