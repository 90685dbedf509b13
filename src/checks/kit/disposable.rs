//! Disposable namespaces: the only place a check may write. Labelled so leftovers are
//! recognisable, deleted by the runner's cleanup even on timeout or Ctrl-C.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};

use crate::check::{CheckContext, Outcome};

pub const LABEL: &str = "platform-acceptance.io/disposable";

/// Creates `pa-<purpose>-<random>` on the given client and registers its deletion.
pub async fn namespace(ctx: &CheckContext, client: &kube::Client, purpose: &str) -> Result<String, Outcome> {
    let suffix: String = {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        format!("{:x}{:x}", std::process::id() & 0xfff, nanos & 0xfffff)
    };
    let name = format!("pa-{purpose}-{suffix}").chars().take(63).collect::<String>();
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {LABEL: "true"}}
    }))
    .map_err(Outcome::error)?;
    api.create(&PostParams::default(), &ns).await.map_err(|e| crate::cluster::api_error(&format!("create namespace {name}"), e))?;
    let (api, n) = (api.clone(), name.clone());
    ctx.cleanup.defer(async move {
        let _ = api.delete(&n, &DeleteParams::default()).await;
    });
    Ok(name)
}

/// A disposable namespace with the SAME name on every given cluster (cross-cluster
/// criteria such as Cilium global services need same-named namespaces): created with
/// [`crate::checks::kit::disposable::namespace`] on the first cluster, then under that name
/// and label on the others; every one is deleted by the runner's cleanup.
pub async fn disposable_namespace_everywhere(
    ctx: &CheckContext,
    clients: &[(String, kube::Client)],
    purpose: &str,
) -> Result<String, Outcome> {
    let Some(((_, first), rest)) = clients.split_first() else {
        return Err(Outcome::skip("no cluster target"));
    };
    let name = crate::checks::kit::disposable::namespace(ctx, first, purpose).await?;
    for (cluster, client) in rest {
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
        let ns = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {crate::checks::kit::disposable::LABEL: "true"}}
        }))
        .map_err(Outcome::error)?;
        api.create(&kube::api::PostParams::default(), &ns)
            .await
            .map_err(|e| crate::cluster::api_error(&format!("create namespace {name} on cluster {cluster}"), e))?;
        let (api, n) = (api.clone(), name.clone());
        ctx.cleanup.defer(async move {
            let _ = api.delete(&n, &kube::api::DeleteParams::default()).await;
        });
    }
    Ok(name)
}
