//! Backup data the healthy platform would have written: the VolSync restic mover's
//! repository and snapshot (the real `restic` binary, as the mover runs it), and the
//! objects Velero uploads for each Backup (`backups/<name>/velero-backup.json` + tarball;
//! the Velero server is not run here, so this upload is a documented stand-in).
//! Called by the `healthy` scenario (and every fault scenario, which starts from it).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::SimConfig;

/// Seeds both clusters' backup data; idempotent (restic init tolerates an existing repository).
pub async fn seed(cfg: &SimConfig) -> Result<()> {
    let endpoints = super::data::endpoints(cfg)?;
    for cluster in ["infra", "apps"] {
        let client = super::client(cfg, cluster).await?;
        restic_snapshot(&client, cluster, &endpoints).await.with_context(|| format!("VolSync restic data on {cluster}"))?;
        velero_upload(&client, &endpoints).await.with_context(|| format!("Velero backup objects on {cluster}"))?;
    }
    Ok(())
}

async fn secret(client: &kube::Client, ns: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let s = Api::<Secret>::namespaced(client.clone(), ns).get(name).await.with_context(|| format!("Secret {ns}/{name}"))?;
    Ok(s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect())
}

/// `s3:http://10.25.11.3:9000/bucket/path` → `host:port`.
fn s3_authority(url: &str) -> Option<(String, u16)> {
    let rest = url.trim_start_matches("s3:").split("://").nth(1)?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

async fn restic_snapshot(client: &kube::Client, cluster: &str, endpoints: &super::data::Endpoints) -> Result<()> {
    let s = secret(client, "volsync-system", "volsync-restic-config").await?;
    let repository = s.get("RESTIC_REPOSITORY").context("RESTIC_REPOSITORY key")?;
    let (host, port) = s3_authority(repository).context("RESTIC_REPOSITORY is not an s3:http(s)://host:port/... URL")?;
    let addr = endpoints.resolve(&host, port).with_context(|| format!("no sim endpoint serves {host}:{port}"))?;
    let repository = repository.replace(&format!("{host}:{port}"), &addr.to_string());
    let scratch = Scratch::new(cluster)?;
    let dir = scratch.0.clone();
    std::fs::write(dir.join("data.txt"), format!("volsync test data of {cluster}\n"))?;
    let restic = |args: &[&str]| -> Result<std::process::Output> {
        std::process::Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", &repository)
            .env("RESTIC_PASSWORD", s.get("RESTIC_PASSWORD").map(String::as_str).unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", s.get("AWS_ACCESS_KEY_ID").map(String::as_str).unwrap_or_default())
            .env("AWS_SECRET_ACCESS_KEY", s.get("AWS_SECRET_ACCESS_KEY").map(String::as_str).unwrap_or_default())
            .env("RESTIC_CACHE_DIR", dir.join(".cache"))
            .output()
            .context("restic not installed: apt-get install -y restic")
    };
    let snapshots = restic(&["snapshots", "--json"])?;
    if snapshots.status.success() && String::from_utf8_lossy(&snapshots.stdout).trim().starts_with("[{") {
        return Ok(()); // already seeded
    }
    let init = restic(&["init"])?;
    if !init.status.success() && !String::from_utf8_lossy(&init.stderr).contains("already") {
        bail!("restic init failed (exit {:?})", init.status.code());
    }
    let backup = restic(&["backup", "--host", &format!("sim-{cluster}"), dir.join("data.txt").to_str().unwrap_or("data.txt")])?;
    if !backup.status.success() {
        bail!("restic backup failed (exit {:?})", backup.status.code());
    }
    Ok(())
}

/// A scratch directory for restic (data and cache), removed on every way out.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(cluster: &str) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("pa-sim-restic-{cluster}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ini(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| l.trim().strip_prefix(key).and_then(|r| r.trim().strip_prefix('=')).map(|v| v.trim().to_string()))
}

async fn velero_upload(client: &kube::Client, endpoints: &super::data::Endpoints) -> Result<()> {
    let ar = |kind: &str| ApiResource::from_gvk(&GroupVersionKind::gvk("velero.io", "v1", kind));
    let bsls = Api::<DynamicObject>::namespaced_with(client.clone(), "velero", &ar("BackupStorageLocation")).list(&ListParams::default()).await?;
    let Some(bsl) = bsls.items.first() else { return Ok(()) };
    let bucket = bsl.data.pointer("/spec/objectStorage/bucket").and_then(Value::as_str).context("BSL bucket")?.to_string();
    let s3url = bsl.data.pointer("/spec/config/s3Url").and_then(Value::as_str).context("BSL config.s3Url")?;
    let (host, port) = s3_authority(&format!("s3:{s3url}")).context("BSL s3Url host:port")?;
    let addr = endpoints.resolve(&host, port).with_context(|| format!("no sim endpoint serves {host}:{port}"))?;
    let creds = secret(client, "velero", "velero-minio").await?;
    let cloud = creds.get("cloud").context("velero-minio key cloud")?;
    let (id, key) = (ini(cloud, "aws_access_key_id").context("aws_access_key_id")?, ini(cloud, "aws_secret_access_key").context("aws_secret_access_key")?);
    let s3 = super::data::s3_client(addr, &id, &key);
    let backups = Api::<DynamicObject>::namespaced_with(client.clone(), "velero", &ar("Backup")).list(&ListParams::default()).await?;
    for b in backups {
        let name = b.metadata.name.clone().unwrap_or_default();
        let body = serde_json::to_vec(&b)?;
        // An empty gzip stream stands in for the resource tarball.
        let tarball = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for (k, data) in [(format!("backups/{name}/velero-backup.json"), body), (format!("backups/{name}/{name}.tar.gz"), tarball)] {
            s3.put_object().bucket(&bucket).key(k).body(data.into()).send().await.with_context(|| format!("upload to s3://{bucket}"))?;
        }
    }
    Ok(())
}
