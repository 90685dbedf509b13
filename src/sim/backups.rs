//! Backup data the healthy platform would have written: the VolSync restic mover's
//! repository and snapshot (the real `restic` binary, as the mover runs it; VolSync does
//! not run here, so this is a documented stand-in). Velero's backups are the real Velero
//! server's work: [`seed`] runs each Schedule once when its newest Backup is not Completed
//! (the cron does not fire during a test) and waits until Velero has completed it. Called by the `healthy` scenario (and every fault scenario,
//! which starts from it).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use super::SimConfig;

/// Seeds `cluster`'s backup data; idempotent (restic init tolerates an existing repository).
pub async fn seed(cfg: &SimConfig, cluster: &str) -> Result<()> {
    let endpoints = super::data::endpoints(cfg)?;
    let client = super::client(cfg, cluster).await?;
    let restic = async { restic_snapshot(&client, cluster, &endpoints).await.with_context(|| format!("VolSync restic data on {cluster}")) };
    let velero = async { velero_schedules(&client).await.with_context(|| format!("Velero on {cluster}")) };
    tokio::try_join!(restic, velero).map(|_| ())
}

/// Secret `ns/name`, once it exists: it is an ExternalSecret's target, which the real
/// external-secrets controller writes shortly after the scenario applied it (two minutes at
/// most, as `healthy` waits for the sync).
pub(crate) async fn written_secret(client: &kube::Client, ns: &str, name: &str) -> Result<Secret> {
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match api.get_opt(name).await.with_context(|| format!("Secret {ns}/{name}"))? {
            Some(s) => return Ok(s),
            None if std::time::Instant::now() > deadline => anyhow::bail!("Secret {ns}/{name}: not written by external-secrets within 120s"),
            None => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

/// [`written_secret`]'s data.
async fn secret(client: &kube::Client, ns: &str, name: &str) -> Result<BTreeMap<String, String>> {
    let s = written_secret(client, ns, name).await?;
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
    let restic = async |args: &[&str]| -> Result<std::process::Output> {
        tokio::process::Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", &repository)
            .env("RESTIC_PASSWORD", s.get("RESTIC_PASSWORD").map(String::as_str).unwrap_or_default())
            .env("AWS_ACCESS_KEY_ID", s.get("AWS_ACCESS_KEY_ID").map(String::as_str).unwrap_or_default())
            .env("AWS_SECRET_ACCESS_KEY", s.get("AWS_SECRET_ACCESS_KEY").map(String::as_str).unwrap_or_default())
            .env("RESTIC_CACHE_DIR", dir.join(".cache"))
            .kill_on_drop(true)
            .output()
            .await
            .context("restic not installed: apt-get install -y restic")
    };
    let snapshots = restic(&["snapshots", "--json"]).await?;
    if snapshots.status.success() && String::from_utf8_lossy(&snapshots.stdout).trim().starts_with("[{") {
        return Ok(()); // already seeded
    }
    let init = restic(&["init"]).await?;
    if !init.status.success() && !String::from_utf8_lossy(&init.stderr).contains("already") {
        bail!("restic init failed (exit {:?})", init.status.code());
    }
    let backup = restic(&["backup", "--host", &format!("sim-{cluster}"), dir.join("data.txt").to_str().unwrap_or("data.txt")]).await?;
    if !backup.status.success() {
        bail!("restic backup failed (exit {:?})", backup.status.code());
    }
    Ok(())
}

/// Makes sure every Velero Schedule has run and its newest Backup is Completed: when not,
/// the Schedule is made due ([`run_schedule`]) and the real Velero server runs it. Fails
/// with Velero's own reason when the storage location is not Available or the Backup does
/// not complete.
async fn velero_schedules(client: &kube::Client) -> Result<()> {
    let schedules = Api::<DynamicObject>::namespaced_with(client.clone(), "velero", &velero_ar("Schedule"));
    for s in schedules.list(&ListParams::default()).await? {
        // Settled means the location validated too, also when the Schedule has run (a Velero
        // just restarted validates it again before it takes a backup there).
        let location = s.data.pointer("/spec/template/storageLocation").and_then(Value::as_str).unwrap_or("default");
        location_available(client, location).await?;
        let name = s.metadata.name.clone().unwrap_or_default();
        let backups = Api::<DynamicObject>::namespaced_with(client.clone(), "velero", &velero_ar("Backup"));
        let lp = ListParams::default().labels(&format!("velero.io/schedule-name={name}"));
        let newest = backups.list(&lp).await?.items.into_iter().max_by_key(|b| b.metadata.creation_timestamp.clone().map(|t| t.0));
        let ran = s.data.pointer("/status/lastBackup").is_some_and(|v| !v.is_null());
        match newest.as_ref().map(phase) {
            Some("Completed") if ran => continue,
            Some(p) if !ENDED.contains(&p) => {
                wait_backup(&backups, newest.and_then(|b| b.metadata.name).as_deref().unwrap_or_default()).await?
            }
            _ => run_schedule(client, &name, true).await?,
        }
    }
    Ok(())
}

fn velero_ar(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("velero.io", "v1", kind))
}

/// Waits (60 s at most) until Velero reports BackupStorageLocation `location` Available.
async fn location_available(client: &kube::Client, location: &str) -> Result<()> {
    let bsls = Api::<DynamicObject>::namespaced_with(client.clone(), "velero", &velero_ar("BackupStorageLocation"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let bsl = bsls.get(location).await.with_context(|| format!("BackupStorageLocation velero/{location}"))?;
        if phase(&bsl) == "Available" {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("BackupStorageLocation velero/{location} is {:?} after 60s: {}", phase(&bsl), bsl.data.pointer("/status/message").and_then(Value::as_str).unwrap_or("no message"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

fn phase(o: &DynamicObject) -> &str {
    o.data.pointer("/status/phase").and_then(Value::as_str).unwrap_or("")
}

/// Makes Velero Schedule `name` due now and waits (up to 3 minutes) until the real Velero
/// server has run it and completed the Backup (with `wait` false: until Velero has
/// created the Backup, which then runs on its own). The cron does not fire during a test, so
/// the simulation writes the history a running platform has (the previous run, two cron
/// periods ago, as `status.lastBackup`); Velero's schedule controller then finds the
/// Schedule due, creates `<schedule>-<yyyyMMddHHmmss>` and sets `lastBackup` itself.
pub async fn run_schedule(client: &kube::Client, name: &str, wait: bool) -> Result<()> {
    let schedules = Api::<DynamicObject>::namespaced_with(client.clone(), "velero", &velero_ar("Schedule"));
    let schedule = schedules.get(name).await.with_context(|| format!("Schedule velero/{name}"))?;
    let location = schedule.data.pointer("/spec/template/storageLocation").and_then(Value::as_str).unwrap_or("default").to_string();
    location_available(client, &location).await?;
    let backups = Api::<DynamicObject>::namespaced_with(client.clone(), "velero", &velero_ar("Backup"));
    let lp = ListParams::default().labels(&format!("velero.io/schedule-name={name}"));
    let before: Vec<String> = backups.list(&lp).await?.items.into_iter().filter_map(|b| b.metadata.name).collect();
    // Two cron periods of the fixture's weekly schedule; any shorter cron is due as well.
    let previous = time::OffsetDateTime::now_utc() - time::Duration::days(15);
    let previous = previous.replace_nanosecond(0).unwrap_or(previous).format(&time::format_description::well_known::Rfc3339)?;
    let patch = serde_json::json!({"status": {"lastBackup": previous}});
    // Velero's CRDs have no status subresource: status is patched on the object.
    schedules.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.with_context(|| format!("status.lastBackup of Schedule velero/{name}"))?;
    // Velero's schedule controller reacts to changes of the spec only (SpecChangePredicate),
    // otherwise once a minute: pause and unpause the Schedule (`velero schedule pause` /
    // `unpause`), and Velero finds it due at once. The fixture sets no `spec.paused`.
    for paused in [serde_json::json!(true), Value::Null] {
        let patch = serde_json::json!({"spec": {"paused": paused}});
        schedules.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.with_context(|| format!("spec.paused of Schedule velero/{name}"))?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let backup = loop {
        let new = backups.list(&lp).await?.items.into_iter().filter_map(|b| b.metadata.name).find(|n| !before.contains(n));
        if let Some(b) = new {
            break b;
        }
        if std::time::Instant::now() > deadline {
            bail!("Velero did not run Schedule velero/{name} within 60s of it being due (see velero.log)");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    if !wait {
        return Ok(());
    }
    wait_backup(&backups, &backup).await
}

/// Velero's phases of a Backup that has ended (pkg/apis/velero/v1/backup_types.go); every
/// other phase (New, Queued, ReadyToStart, InProgress, WaitingForPluginOperations*,
/// Finalizing*) is still under way.
const ENDED: [&str; 5] = ["Completed", "PartiallyFailed", "Failed", "FailedValidation", "Deleting"];

async fn wait_backup(backups: &Api<DynamicObject>, name: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let b = backups.get(name).await.with_context(|| format!("Backup velero/{name}"))?;
        match phase(&b) {
            "Completed" => return Ok(()),
            p if !ENDED.contains(&p) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await
            }
            other => {
                let why = ["/status/failureReason", "/status/validationErrors"]
                    .iter()
                    .filter_map(|p| b.data.pointer(p))
                    .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                    .collect::<Vec<_>>()
                    .join("; ");
                let when = if ENDED.contains(&other) { "" } else { " after 180s" };
                bail!("Velero Backup velero/{name} is {other:?}{when} (expected Completed){}", if why.is_empty() { String::new() } else { format!(": {why}") });
            }
        }
    }
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
