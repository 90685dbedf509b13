//! EPIC-8, cluster layer: the Keycloak operator and instance on the cluster, and the admin
//! console reached through its HTTPRoute and the Gateway.

use serde_json::Value;

use super::repo::{covers, keycloak_host, rendered_keycloaks};
use crate::check::{CheckResult, Ctx, Finding, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects::{self, Kind};

/// §16 [KC1][KC3]: `k8s.keycloak.org` v2alpha1 (served by every operator release); v2beta1 in newer code.
const KEYCLOAK: Kind = Kind::namespaced("k8s.keycloak.org", &["v2alpha1", "v2beta1"], "Keycloak");

/// The operator's HelmRelease (from the repository) is Ready on the cluster and its
/// Deployment is ready (§16 [KC6]: label `app.kubernetes.io/name=keycloak-operator`).
pub(super) async fn keycloak_operator_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_deployed(&ctx, "keycloak-operator", |_| "app.kubernetes.io/name=keycloak-operator".into()).await)
}

/// The operator works: its pods are Ready and every Keycloak it manages reports
/// `Ready=True` and `HasErrors=False` for its current generation (§16 [KC1]).
pub(super) async fn keycloak_operator_healthy(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let hr = rendered_release(&ctx, "keycloak-operator")?;
    let ns = Release::of(&hr).namespace;
    let pods = objects::expect_pods_ready(client, &ctx.cluster, &ns, "app.kubernetes.io/name=keycloak-operator").await;
    let ks = rendered_keycloaks(&ctx)?;
    let mut outcomes = vec![pods];
    for k in &ks {
        outcomes.push(keycloak_ready(client, &ctx.cluster, k.namespace().unwrap_or("default"), k.name()).await.into_outcome());
    }
    Ok(Outcome::all(outcomes))
}

/// §16 [KC1]: `Ready=True` (current generation) and `HasErrors=False`.
async fn keycloak_ready(client: &kube::Client, cluster: &str, ns: &str, name: &str) -> CheckResult<Outcome> {
    let found = objects::require(client, &KEYCLOAK, Some(ns), name).await?;
    let object = format!("{} (cluster {cluster})", found.describe(&KEYCLOAK));
    let ready = match objects::expect_condition(&found, &KEYCLOAK, "Ready") {
        Outcome::Fail { findings } => Outcome::Fail { findings: findings.into_iter().map(|f| Finding::new(object.clone(), f.expected, f.observed)).collect() },
        o => o,
    };
    let errors = match found.condition("HasErrors") {
        Some(c) if c.status == "True" => Outcome::fail(object.clone(), "HasErrors=False", format!("HasErrors=True ({})", c.message)),
        _ => Outcome::pass(format!("{object}: no errors, {} instances", found.get("/status/instances").map(|v| v.to_string()).unwrap_or("?".into()))),
    };
    Ok(Outcome::all([ready, errors]))
}

/// The admin console of the master realm, as a person opens it: Keycloak serves it at
/// `/admin/master/console/` with a page titled after Keycloak.
const CONSOLE: Page = Page { path: "/admin/master/console/", marker: "Keycloak" };

/// The admin console through its route: the HTTPRoute in the Keycloak's namespace that
/// serves its host name is Accepted (and its references resolved) by the Gateway, points
/// at the operator's `<name>-service` (§16 [KC2]), that Keycloak is Ready, and
/// `GET https://<host>/admin/master/console/` through the Gateway's address answers with
/// the console's page.
pub(super) async fn keycloak_console_reachable(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let ks = rendered_keycloaks(&ctx)?;
    let mut outcomes = vec![];
    for k in &ks {
        let ns = k.namespace().unwrap_or("default");
        let Some(host) = keycloak_host(k) else {
            outcomes.push(Outcome::fail(format!("{} spec.hostname.hostname", k.describe()), "the console's host name", "not set"));
            continue;
        };
        let routes = routes_in(&ctx, ns)?;
        let service = format!("{}-service", k.name());
        let serving: Vec<_> = routes
            .into_iter()
            .filter(|r| r.get("/spec/hostnames").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).any(|h| covers(h, &host)))
            .collect();
        if serving.is_empty() {
            outcomes.push(Outcome::fail(format!("HTTPRoutes in namespace {ns} (cluster {})", ctx.cluster), format!("one serving {host}"), "none in the repository's manifests"));
            continue;
        }
        if !serving.iter().any(|r| routes_to(r, &service)) {
            outcomes.push(Outcome::fail(format!("HTTPRoute {} backendRefs", serving[0].describe()), format!("Service {service} (the operator's service for {})", k.name()), "not referenced"));
            continue;
        }
        let accepted = httproutes_accepted(client, &ctx.cluster, &serving).await;
        let ready = keycloak_ready(client, &ctx.cluster, ns, k.name()).await.into_outcome();
        let answered = route_answers(&ctx, &serving[0], &host, CONSOLE).await.into_outcome();
        outcomes.extend([accepted, ready, answered]);
    }
    Ok(Outcome::all(outcomes))
}
