//! Kubeconfig files: the user-facing `$STATE/kubeconfig` (contexts per cluster,
//! certificates embedded) and the components' own (`$STATE/<cluster>/*.kubeconfig`,
//! certificate files by path).

use std::path::Path;

use anyhow::Context;
use base64::Engine;

use super::SimConfig;
use super::cluster::ClusterSpec;
use super::pki::Pki;
use super::write_private;

/// Writes `$STATE/kubeconfig`: one context per cluster, named like it (`infra`,
/// `apps`), user `<cluster>-admin` (client certificate, `O=system:masters`).
/// Current context: the first cluster.
pub fn write_user_kubeconfig(cfg: &SimConfig, clusters: &[ClusterSpec]) -> anyhow::Result<()> {
    let pki = Pki::at(&cfg.state_dir);
    let b64 = |p: &Path| -> anyhow::Result<String> {
        Ok(base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(p).with_context(|| format!("read {}", p.display()))?))
    };
    let ca = b64(&pki.ca_cert())?;
    let mut kc_clusters = vec![];
    let mut users = vec![];
    let mut contexts = vec![];
    for c in clusters {
        let admin = pki.cert(&c.name, "admin");
        kc_clusters.push(
            serde_json::json!({"name": c.name, "cluster": {"server": c.api_url(), "certificate-authority-data": ca}}),
        );
        users.push(serde_json::json!({"name": format!("{}-admin", c.name), "user": {
            "client-certificate-data": b64(&admin.cert)?, "client-key-data": b64(&admin.key)?}}));
        contexts.push(
            serde_json::json!({"name": c.name, "context": {"cluster": c.name, "user": format!("{}-admin", c.name)}}),
        );
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": kc_clusters,
        "users": users,
        "contexts": contexts,
        "current-context": clusters.first().map(|c| c.name.clone()).unwrap_or_default(),
    });
    write_yaml(&super::kubeconfig_path(cfg), &doc)
}

/// Writes the components' kubeconfigs for cluster `c`: `admin` (used by kwok),
/// `kcm`, `scheduler`.
pub fn write_component_kubeconfigs(cfg: &SimConfig, c: &ClusterSpec) -> anyhow::Result<()> {
    let pki = Pki::at(&cfg.state_dir);
    let dir = c.dir(cfg);
    std::fs::create_dir_all(&dir)?;
    for (name, user) in [
        ("admin", format!("{}-admin", c.name)),
        ("kcm", "system:kube-controller-manager".into()),
        ("scheduler", "system:kube-scheduler".into()),
    ] {
        let files = pki.cert(&c.name, name);
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": c.name, "cluster": {"server": c.api_url(), "certificate-authority": pki.ca_cert()}}],
            "users": [{"name": user, "user": {"client-certificate": files.cert, "client-key": files.key}}],
            "contexts": [{"name": c.name, "context": {"cluster": c.name, "user": user}}],
            "current-context": c.name,
        });
        write_yaml(&dir.join(format!("{name}.kubeconfig")), &doc)?;
    }
    Ok(())
}

fn write_yaml(path: &Path, doc: &serde_json::Value) -> anyhow::Result<()> {
    write_private(path, serde_yaml_ng::to_string(doc)?.as_bytes())
}
