//! Disposable namespaces: the only place a check may write. Labelled with the run's id
//! (and as disposable) so `sweep` can clear what a killed run left; deleted by the
//! runner's cleanup even on timeout or Ctrl-C. A namespace is handed out once its
//! `default` ServiceAccount exists, so pods can start in it.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};

use crate::check::{CheckContext, Outcome};
use crate::cluster::lease;

/// Creates `pa-<purpose>-<random>` on the given client and registers its deletion.
pub async fn namespace(ctx: &CheckContext, client: &kube::Client, purpose: &str) -> Result<String, Outcome> {
    let name = format!("pa-{purpose}-{}", crate::random::token(8).to_ascii_lowercase()).chars().take(63).collect::<String>();
    create(ctx, client, &name, None).await?;
    Ok(name)
}

/// A disposable namespace with the SAME name on every given cluster (cross-cluster
/// criteria such as Cilium global services need same-named namespaces); every one is
/// deleted by the runner's cleanup.
pub async fn disposable_namespace_everywhere(
    ctx: &CheckContext,
    clients: &[(String, kube::Client)],
    purpose: &str,
) -> Result<String, Outcome> {
    let Some(((_, first), rest)) = clients.split_first() else {
        return Err(Outcome::skip("no cluster target"));
    };
    let name = namespace(ctx, first, purpose).await?;
    for (cluster, client) in rest {
        create(ctx, client, &name, Some(cluster)).await?;
    }
    Ok(name)
}

async fn create(ctx: &CheckContext, client: &kube::Client, name: &str, cluster: Option<&str>) -> Result<(), Outcome> {
    let on = cluster.map(|c| format!(" on cluster {c}")).unwrap_or_default();
    lease::create_namespace(client, name, &ctx.run).await.map_err(|e| crate::cluster::api_error(&format!("create namespace {name}{on}"), e))?;
    let (api, n): (Api<Namespace>, String) = (Api::all(client.clone()), name.to_string());
    ctx.cleanup.defer(async move {
        let _ = api.delete(&n, &DeleteParams::default()).await;
    });
    // Ready for pods once its default ServiceAccount exists.
    let wait = lease::SERVICE_ACCOUNT_WAIT;
    match lease::default_service_account(client, name, wait).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Outcome::error(format!("{}{on}; not evaluated", lease::no_service_account(name, wait)))),
        Err(e) => Err(crate::cluster::api_error(&format!("read ServiceAccount {name}/default{on}"), e)),
    }
}
