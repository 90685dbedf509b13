//! EPIC-9, cluster layer: GitLab, Harbor, the Mattermost operator and instance deployed on
//! the apps cluster, GitLab's sign-in page reached through its HTTPRoute and the Gateway.

use serde_json::Value;

use super::repo::mattermosts;
use crate::check::{CheckResult, Ctx, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects::{self, Kind};

/// §19 [MM1]
const MATTERMOST: Kind = Kind::namespaced("installation.mattermost.com", &["v1beta1"], "Mattermost");

/// §17: GitLab's chart labels its objects `release=<release>`; every one of them ready.
pub(super) async fn gitlab_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_deployed(&ctx, "gitlab", |release| format!("release={release}")).await)
}

/// GitLab's sign-in page, what a person sees first (`/users/sign_in`, titled "Sign in · GitLab").
const SIGN_IN: Page = Page { path: "/users/sign_in", marker: "GitLab" };

/// Every HTTPRoute of GitLab's namespace Accepted/ResolvedRefs with its backends present,
/// and the sign-in page answers through the route to the chart's webservice
/// (`<release>-webservice-default`, §17) and the Gateway.
pub(super) async fn gitlab_reachable(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let hr = rendered_release(&ctx, "gitlab")?;
    let release = Release::of(&hr);
    let routes = routes_in(&ctx, &release.namespace)?;
    let accepted = httproutes_accepted(client, &ctx.cluster, &routes).await;
    let webservice = format!("{}-webservice-default", release.name);
    let Some(route) = routes.iter().find(|r| routes_to(r, &webservice)) else {
        let object = format!("HTTPRoutes in namespace {} (cluster {})", release.namespace, ctx.cluster);
        return Ok(Outcome::all([accepted, Outcome::fail(object, format!("one to Service {webservice} (GitLab's web UI)"), "none")]));
    };
    let Some(host) = route.get("/spec/hostnames/0").and_then(Value::as_str) else {
        return Ok(Outcome::all([accepted, Outcome::fail(format!("{} spec.hostnames", route.describe()), "GitLab's host name", "none")]));
    };
    let answered = route_answers(&ctx, route, host, SIGN_IN).await.into_outcome();
    Ok(Outcome::all([accepted, answered]))
}

/// §18 [HB1]: selector `release=<release>,app=harbor`.
pub(super) async fn harbor_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_deployed(&ctx, "harbor", |release| format!("release={release},app=harbor")).await)
}

/// §19 [MM5]: the operator chart's selector `app.kubernetes.io/name=mattermost-operator`.
pub(super) async fn mattermost_operator_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_deployed(&ctx, "mattermost-operator", |_| "app.kubernetes.io/name=mattermost-operator".into()).await)
}

/// §19 [MM1][MM2]: each Mattermost of the repository is `stable` for its current
/// generation and the Deployment named after it is ready.
pub(super) async fn mattermost_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let ms = mattermosts(&ctx)?;
    let mut outcomes = vec![];
    for m in &ms {
        let ns = m.namespace().unwrap_or("default");
        let found = match objects::require(client, &MATTERMOST, Some(ns), m.name()).await {
            Ok(f) => f,
            Err(o) => {
                outcomes.push(o);
                continue;
            }
        };
        let object = format!("{} (cluster {})", found.describe(&MATTERMOST), ctx.cluster);
        let state = found.str("/status/state").unwrap_or("");
        let generation = found.object.metadata.generation.unwrap_or(0);
        let observed = found.get("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(generation);
        outcomes.push(if state != "stable" {
            Outcome::fail(format!("{object} status.state"), "stable", format!("{state:?}{}", found.str("/status/error").map(|e| format!(" (error: {e})")).unwrap_or_default()))
        } else if observed < generation {
            Outcome::fail(format!("{object} status.observedGeneration"), format!("{generation}"), format!("{observed} (stale)"))
        } else {
            Outcome::pass(format!("{object}: stable, version {}, endpoint {}", found.str("/status/version").unwrap_or("?"), found.str("/status/endpoint").unwrap_or("?")))
        });
        outcomes.push(objects::expect_workload_ready(client, &ctx.cluster, "Deployment", ns, m.name()).await);
    }
    Ok(Outcome::all(outcomes))
}
