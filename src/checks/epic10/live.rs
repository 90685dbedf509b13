//! EPIC-10, cluster and data-plane layers: VolSync and Velero deployed, and backups proven by
//! their status and by the object store itself, read over S3 with the credentials of the
//! component's own Secret.

use serde_json::Value;

use crate::check::{CheckResult, Ctx, Finding, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects::{self as kobjects, Kind};
use crate::repo::RenderedObject;

use super::backups::{self, History};

/// §20 [VS1]
pub(super) const REPLICATION_SOURCE: Kind = Kind::namespaced("volsync.backube", &["v1alpha1"], "ReplicationSource");

/// §21 [VE1][VE3][VE4]
pub(super) const BACKUP: Kind = Kind::namespaced("velero.io", &["v1"], "Backup");
pub(super) const BSL: Kind = Kind::namespaced("velero.io", &["v1"], "BackupStorageLocation");
const SCHEDULE: Kind = Kind::namespaced("velero.io", &["v1"], "Schedule");

// ---------------------------------------------------------------------------
// VolSync
// ---------------------------------------------------------------------------

/// §20 [VS7]: chart selector `app.kubernetes.io/name=volsync`, `app.kubernetes.io/instance=<release>`.
pub(super) async fn volsync_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(component_deployed(&ctx, "volsync", |r| format!("app.kubernetes.io/name=volsync,app.kubernetes.io/instance={r}")).await)
}

/// A run is late when older than two schedule intervals (one missed run).
fn late(interval: i64) -> i64 {
    2 * interval
}

/// Every ReplicationSource of the repository on this cluster last synced successfully
/// within its schedule (§20 [VS2][VS3]: `lastSyncTime`, `latestMoverStatus.result`,
/// condition `Synchronizing` not reason `Error`), and its restic repository in the object
/// store (the `RESTIC_REPOSITORY` of its Secret, read with the Secret's own keys) holds a
/// `config` and at least one snapshot.
pub(super) async fn volsync_backups_succeed(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let sources: Vec<RenderedObject> = objects(&r, "volsync.backube", "ReplicationSource").into_iter().cloned().collect();
    if sources.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a ReplicationSource in the repository's manifests", "none"));
    }
    let mut outcomes = vec![];
    for rs in &sources {
        let ns = rs.namespace().unwrap_or("default");
        let found = match kobjects::require(client, &REPLICATION_SOURCE, Some(ns), rs.name()).await {
            Ok(f) => f,
            Err(o) => {
                outcomes.push(o);
                continue;
            }
        };
        let status = replication_status(&found, &ctx.cluster, rs.str("/spec/trigger/schedule"));
        let failed = !matches!(status, Outcome::Pass { .. });
        outcomes.push(status);
        if failed {
            continue;
        }
        if let Some(secret) = rs.str("/spec/restic/repository") {
            outcomes.push(restic_repository_has_snapshots(&ctx, client, ns, secret).await.into_outcome());
        }
    }
    Ok(Outcome::all(outcomes))
}

fn replication_status(found: &kobjects::Found, cluster: &str, schedule: Option<&str>) -> Outcome {
    let object = format!("{} (cluster {cluster})", found.describe(&REPLICATION_SOURCE));
    let mut findings = vec![];
    let result = found.str("/status/latestMoverStatus/result");
    if result != Some("Successful") {
        findings.push(Finding::new(format!("{object} status.latestMoverStatus.result"), "Successful", format!("{:?}", result.unwrap_or("none (no mover has run)"))));
    }
    if let Some(c) = found.condition("Synchronizing").filter(|c| c.reason == "Error") {
        findings.push(Finding::new(format!("{object} condition Synchronizing"), "a reason other than Error", format!("{}: {}", c.reason, c.message)));
    }
    let last = found.str("/status/lastSyncTime");
    let age = last.and_then(epoch_seconds).map(|t| now_seconds() - t);
    let interval = schedule.and_then(cron_interval);
    match (age, interval) {
        (None, _) => findings.push(Finding::new(format!("{object} status.lastSyncTime"), "a successful sync", "never synced")),
        (Some(a), Some(i)) if a > late(i) => findings.push(Finding::new(
            format!("{object} status.lastSyncTime"),
            format!("within {} (two runs of schedule {:?})", age_text(late(i)), schedule.unwrap_or("")),
            format!("{} ago ({})", age_text(a), last.unwrap_or("")),
        )),
        _ => {}
    }
    Outcome::from_findings(findings, format!("{object}: last sync {} ago, result Successful", age.map(age_text).unwrap_or_default()))
}

/// `s3:<endpoint>/<bucket>/<path>` of a restic repository.
fn restic_location(repo: &str) -> Option<(String, String, String)> {
    let url = repo.strip_prefix("s3:")?;
    let (scheme, rest) = url.split_once("://").map(|(s, r)| (format!("{s}://"), r)).unwrap_or(("https://".into(), url));
    let mut parts = rest.splitn(3, '/');
    let host = parts.next()?;
    let bucket = parts.next().filter(|b| !b.is_empty())?;
    let path = parts.next().unwrap_or("").trim_end_matches('/');
    Some((format!("{scheme}{host}"), bucket.to_string(), path.to_string()))
}

/// The snapshots of a restic repository named by a VolSync repository Secret: `(key,
/// written)` of each `snapshots/<id>` object, and where it was read. A repository without
/// `config` is a Fail.
pub(super) async fn restic_snapshots(ctx: &Ctx, client: &kube::Client, ns: &str, secret: &str) -> CheckResult<(Vec<(String, i64)>, String)> {
    let data = secret_data(client, &ctx.cluster, ns, secret).await?;
    let object = format!("Secret {ns}/{secret} (cluster {})", ctx.cluster);
    let key = |k: &str| data.get(k).cloned().ok_or_else(|| Outcome::fail(format!("{object} key {k}"), "present", "missing"));
    let (repo, id, key_secret) = match (key("RESTIC_REPOSITORY"), key("AWS_ACCESS_KEY_ID"), key("AWS_SECRET_ACCESS_KEY")) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (a, b, c) => return Err(Outcome::all([a.err(), b.err(), c.err()].into_iter().flatten())),
    };
    let Some((endpoint, bucket, path)) = restic_location(&repo) else {
        return Err(Outcome::fail(format!("{object} RESTIC_REPOSITORY"), "s3:<endpoint>/<bucket>/<path>", "another backend (only S3 repositories are read)"));
    };
    let region = data.get("AWS_DEFAULT_REGION").map(String::as_str).unwrap_or("us-east-1");
    let store = s3_client(ctx, &endpoint, region, &id, &key_secret).await?;
    let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
    let where_ = format!("restic repository s3://{bucket}/{prefix} at {}", store.via);
    let config = list_keys(ctx, &store, &bucket, &format!("{prefix}config"), 1, &where_, "readable with the Secret's keys").await?;
    if !config.iter().any(|(k, _)| *k == format!("{prefix}config")) {
        return Err(Outcome::fail(where_, "an initialised repository (object config)", "no config object"));
    }
    let snapshots = list_keys(ctx, &store, &bucket, &format!("{prefix}snapshots/"), 1000, &where_, "readable with the Secret's keys").await?;
    Ok((snapshots, where_))
}

async fn restic_repository_has_snapshots(ctx: &Ctx, client: &kube::Client, ns: &str, secret: &str) -> CheckResult<Outcome> {
    let (snapshots, where_) = restic_snapshots(ctx, client, ns, secret).await?;
    Ok(match snapshots.iter().map(|(_, t)| *t).max() {
        None => Outcome::fail(where_, "at least one snapshot (snapshots/<id>)", "no snapshots"),
        Some(newest) => Outcome::pass(format!("{where_}: {} snapshot(s), newest written {} ago", snapshots.len(), age_text(now_seconds() - newest))),
    })
}

// ---------------------------------------------------------------------------
// Velero
// ---------------------------------------------------------------------------

/// §21 [VE5]: Deployment `velero` and DaemonSet `node-agent` carry the release labels;
/// §21 [VE3]: every BackupStorageLocation of the release namespace is `Available`.
pub(super) async fn velero_deployed(ctx: Ctx) -> CheckResult<Outcome> {
    let deployed = component_deployed(&ctx, "velero", |r| format!("app.kubernetes.io/name=velero,app.kubernetes.io/instance={r}")).await;
    let client = ctx.kube()?;
    // Without the release or its locations, the verdict on the Deployment still counts.
    let with_deployed = |o| Outcome::all([deployed.clone(), o]);
    let hr = rendered_release(&ctx, "velero").map_err(with_deployed)?;
    let ns = Release::of(&hr).namespace;
    let locations = kobjects::list(client, &BSL, Some(&ns), None).await.map_err(with_deployed)?;
    let mut outcomes = vec![deployed];
    if locations.is_empty() {
        outcomes.push(Outcome::fail(format!("BackupStorageLocations in {ns} (cluster {})", ctx.cluster), "at least one, Available", "none"));
    }
    for l in &locations {
        let object = format!("{} (cluster {})", l.describe(&BSL), ctx.cluster);
        let phase = l.str("/status/phase").unwrap_or("");
        outcomes.push(if phase == "Available" {
            Outcome::pass(format!("{object}: Available (validated {})", l.str("/status/lastValidationTime").unwrap_or("?")))
        } else {
            Outcome::fail(format!("{object} status.phase"), "Available", format!("{:?}{}", phase, l.str("/status/message").map(|m| format!(" ({m})")).unwrap_or_default()))
        });
    }
    Ok(Outcome::all(outcomes))
}

/// Velero's namespace on this cluster (the release namespace of the velero HelmRelease).
pub(super) fn velero_namespace(ctx: &Ctx) -> Result<String, Outcome> {
    Ok(Release::of(&rendered_release(ctx, "velero")?).namespace)
}

fn completion(b: &kobjects::Found) -> i64 {
    b.str("/status/completionTimestamp").and_then(epoch_seconds).unwrap_or(0)
}

fn backup_summary(b: &kobjects::Found, cluster: &str) -> Outcome {
    let object = format!("{} (cluster {cluster})", b.describe(&BACKUP));
    let items = b.get("/status/progress/itemsBackedUp").map(|v| v.to_string()).unwrap_or("?".into());
    let errors = b.get("/status/errors").and_then(Value::as_i64).unwrap_or(0);
    if errors > 0 {
        return Outcome::fail(format!("{object} status.errors"), "0", errors.to_string());
    }
    Outcome::pass(format!("{object}: Completed {} ago, {items} items", age_text(now_seconds() - completion(b))))
}

/// A BackupStorageLocation's bucket as Velero reaches it: an S3 client with the location's
/// credential ([`location_credential`]), the bucket, the key prefix (`<prefix>/` or empty) and where it was reached.
pub(super) struct Location {
    pub store: Store,
    pub bucket: String,
    pub prefix: String,
    pub via: String,
}

/// The Secret and key holding a location's AWS credentials file: the location's own
/// `spec.credential`, else the chart's Secret (`credentials.existingSecret`, key `cloud`).
pub(super) fn location_credential(ctx: &Ctx, bsl: &kobjects::Found) -> (String, String) {
    match (bsl.str("/spec/credential/name"), bsl.str("/spec/credential/key")) {
        (Some(n), Some(k)) => (n.to_string(), k.to_string()),
        _ => {
            let hr = rendered_release(ctx, "velero").ok();
            let v = hr.as_ref().and_then(|h| rendered(ctx).ok().map(|r| helm_values(&r, h)));
            (v.as_ref().and_then(|v| v.pointer("/credentials/existingSecret")).and_then(Value::as_str).unwrap_or("velero").to_string(), "cloud".to_string())
        }
    }
}

pub(super) async fn location_store(ctx: &Ctx, client: &kube::Client, ns: &str, bsl: &kobjects::Found) -> CheckResult<Location> {
    let bucket = bsl.str("/spec/objectStorage/bucket").unwrap_or("").to_string();
    let prefix = bsl.str("/spec/objectStorage/prefix").map(|p| format!("{}/", p.trim_matches('/'))).unwrap_or_default();
    let endpoint = bsl.str("/spec/config/s3Url").unwrap_or("");
    let region = bsl.str("/spec/config/region").unwrap_or("us-east-1");
    if endpoint.is_empty() {
        return Err(Outcome::fail(format!("{} spec.config.s3Url", bsl.describe(&BSL)), "an S3 endpoint (MinIO)", "not set"));
    }
    let (secret, key) = location_credential(ctx, bsl);
    let data = secret_data(client, &ctx.cluster, ns, &secret).await?;
    let Some((id, key_secret)) = data.get(&key).and_then(|t| aws_ini_keys(t)) else {
        return Err(Outcome::fail(format!("Secret {ns}/{secret} key {key} (cluster {})", ctx.cluster), "an AWS credentials file with [default] keys", "missing or unparsable"));
    };
    let store = s3_client(ctx, endpoint, region, &id, &key_secret).await?;
    let via = format!("{}, with Secret {ns}/{secret}", store.via);
    Ok(Location { store, bucket, prefix, via })
}

/// The Backup's metadata object in its BackupStorageLocation's bucket.
async fn backup_in_store(ctx: &Ctx, client: &kube::Client, ns: &str, b: &kobjects::Found) -> CheckResult<Outcome> {
    let location = b.str("/spec/storageLocation").unwrap_or("default");
    let bsl = kobjects::require(client, &BSL, Some(ns), location).await?;
    let store = location_store(ctx, client, ns, &bsl).await?;
    let dir = format!("{}backups/{}/", store.prefix, b.name());
    let where_ = format!("s3://{}/{dir} at {}", store.bucket, store.via);
    Ok(match list_keys(ctx, &store.store, &store.bucket, &dir, 100, &where_, "readable with the location's credential").await {
        Err(o) => o,
        Ok(keys) => {
            let meta = format!("{dir}velero-backup.json");
            if keys.iter().any(|(k, _)| *k == meta) {
                Outcome::pass(format!("{where_}: {} object(s) incl. velero-backup.json", keys.len()))
            } else {
                Outcome::fail(format!("{} in {where_}", b.describe(&BACKUP)), "velero-backup.json (the backup's metadata, uploaded by Velero)", if keys.is_empty() { "no objects".to_string() } else { format!("{} other object(s), no velero-backup.json", keys.len()) })
            }
        }
    })
}

/// Every Velero Schedule of the repository on this cluster is `Enabled`, ran within its
/// interval (`status.lastBackup`), and its newest Backup (label `velero.io/schedule-name`)
/// is `Completed` and in the bucket.
pub(super) async fn velero_schedules_working(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let schedules: Vec<RenderedObject> = objects(&r, "velero.io", "Schedule").into_iter().cloned().collect();
    if schedules.is_empty() {
        return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a Velero Schedule in the repository's manifests", "none"));
    }
    let mut outcomes = vec![];
    for s in &schedules {
        let ns = s.namespace().unwrap_or("velero");
        let found = match kobjects::require(client, &SCHEDULE, Some(ns), s.name()).await {
            Ok(f) => f,
            Err(o) => {
                outcomes.push(o);
                continue;
            }
        };
        let object = format!("{} (cluster {})", found.describe(&SCHEDULE), ctx.cluster);
        let phase = found.str("/status/phase").unwrap_or("");
        if phase != "Enabled" {
            outcomes.push(Outcome::fail(format!("{object} status.phase"), "Enabled", format!("{phase:?}")));
            continue;
        }
        let interval = s.str("/spec/schedule").and_then(cron_interval);
        let last = found.str("/status/lastBackup").and_then(epoch_seconds);
        match (last, interval) {
            (None, _) => {
                outcomes.push(Outcome::fail(format!("{object} status.lastBackup"), "a backup run", "never ran"));
                continue;
            }
            (Some(t), Some(i)) if now_seconds() - t > late(i) => {
                outcomes.push(Outcome::fail(format!("{object} status.lastBackup"), format!("within {}", age_text(late(i))), format!("{} ago", age_text(now_seconds() - t))));
                continue;
            }
            _ => {}
        }
        let backups = kobjects::list(client, &BACKUP, Some(ns), Some(&format!("velero.io/schedule-name={}", s.name()))).await?;
        // The newest *finished* run is the verdict; runs still in progress are reported, and
        // when nothing has finished yet the Fail says so (the runner retries it).
        let history = History::of(&backups);
        let running = if history.in_progress.is_empty() { String::new() } else { format!("; in progress: {}", history.in_progress_text()) };
        let Some(newest) = history.newest_finished else {
            let observed = if backups.is_empty() { "none".to_string() } else { format!("none finished yet{running}") };
            outcomes.push(Outcome::fail(format!("{object}: Backups labelled velero.io/schedule-name={}", s.name()), "a finished Backup of the schedule, Completed", observed));
            continue;
        };
        let phase = backups::phase(newest);
        if phase != "Completed" {
            outcomes.push(Outcome::fail(format!("{} (cluster {}) status.phase", newest.describe(&BACKUP), ctx.cluster), "Completed (the newest finished Backup of the schedule)", format!("{phase:?}{}{running}", newest.str("/status/failureReason").map(|m| format!(" ({m})")).unwrap_or_default())));
            continue;
        }
        if !running.is_empty() {
            outcomes.push(Outcome::pass(format!("{object}: {} newer Backup(s) in progress: {}", history.in_progress.len(), history.in_progress_text())));
        }
        outcomes.push(backup_summary(newest, &ctx.cluster));
        outcomes.push(backup_in_store(&ctx, client, ns, newest).await.into_outcome());
    }
    Ok(Outcome::all(outcomes))
}
