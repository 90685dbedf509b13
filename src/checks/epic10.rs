//! EPIC-10 checks: VolSync and Velero.
//!
//! Writing a check here? Read docs/CHECKS-GUIDE.md first ({GUIDE} in your task): conventions, helpers, test support, rules for shared files and the shared CARGO_TARGET_DIR.
//!
//! Repository layer first (`repo_checks`), then the live layers (`cluster_checks`):
//! VolSync and Velero deployed (10.1.4, 10.2.1, 10.3.4 with the BackupStorageLocation
//! Available, 10.4.1); backups proven by status *and* by the object store itself
//! (data plane, S3 with the credentials of the component's own Secret): the restic
//! repository holds snapshots (10.1.6, 10.2.2), Velero's Backup objects are in the
//! bucket (10.3.6, 10.4.2).

use serde_json::Value;

use crate::check::{Check, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{Rendered, RenderedObject};

const VOLSYNC_BASE: &str = "kubernetes/bases/volsync/helmrelease.yaml";
const VOLSYNC_CONFIG: &str = "kubernetes/infrastructure/backup/volsync/kustomization.yaml";
const VELERO_BASE: &str = "kubernetes/bases/velero/helmrelease.yaml";
const VELERO_CONFIG: &str = "kubernetes/infrastructure/backup/velero/kustomization.yaml";
const WEEKLY: &str = "Schedule created for weekly backups";

pub fn checks() -> Vec<Check> {
    [repo_checks(), cluster_checks()].concat()
}

fn repo_checks() -> Vec<Check> {
    vec![
        Check::repo("10.1", "VolSync operator base HelmRelease created", "volsync_base_helmrelease", volsync_base_helmrelease),
        Check::repo("10.1", "VolSync infrastructure config created", "volsync_config", volsync_config),
        Check::repo("10.1", "MinIO bucket configured for backups", "volsync_minio_bucket", volsync_minio_bucket),
        Check::repo("10.1", "Test ReplicationSource created", "volsync_test_replication_source", volsync_test_replication_source),
        Check::repo("10.3", "Velero base HelmRelease created", "velero_base_helmrelease", velero_base_helmrelease),
        Check::repo("10.3", "Velero infrastructure config created", "velero_config", velero_config),
        Check::repo("10.3", "MinIO configured as backup destination", "velero_minio_destination", velero_minio_destination),
        Check::repo("10.3", WEEKLY, "velero_weekly_schedule", velero_weekly_schedule),
    ]
}

async fn volsync_base_helmrelease(ctx: Ctx) -> Outcome {
    outcome(|| Ok(base_helmrelease(repo(&ctx)?, &ctx.cluster, VOLSYNC_BASE, "volsync")))
}

async fn volsync_config(ctx: Ctx) -> Outcome {
    outcome(|| Ok(component_config(repo(&ctx)?, &ctx.cluster, VOLSYNC_CONFIG, Provides::Base("bases/volsync"))))
}

async fn velero_base_helmrelease(ctx: Ctx) -> Outcome {
    outcome(|| Ok(base_helmrelease(repo(&ctx)?, &ctx.cluster, VELERO_BASE, "velero")))
}

async fn velero_config(ctx: Ctx) -> Outcome {
    outcome(|| Ok(component_config(repo(&ctx)?, &ctx.cluster, VELERO_CONFIG, Provides::Base("bases/velero"))))
}

/// Restic repository Secrets: those ReplicationSources use, and every ExternalSecret templating RESTIC_REPOSITORY.
fn restic_repositories(r: &Rendered) -> Vec<(&RenderedObject, Option<&str>)> {
    let mut out: Vec<(&RenderedObject, Option<&str>)> =
        objects(r, ES_GROUP, "ExternalSecret").into_iter().filter_map(|es| template_value(es, "RESTIC_REPOSITORY").map(|v| (es, Some(v)))).collect();
    for rs in objects(r, "volsync.backube", "ReplicationSource") {
        let used = rs.str("/spec/restic/repository").and_then(|secret| external_secret_for(r, rs.namespace(), secret));
        if let Some(es) = used.filter(|es| !out.iter().any(|(e, _)| std::ptr::eq(*e, *es))) {
            out.push((es, template_value(es, "RESTIC_REPOSITORY")));
        }
    }
    out
}

async fn volsync_minio_bucket(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let r = rendered(&ctx)?;
        let minio = minio_endpoint(repo, &ctx.cluster)?;
        let repos = restic_repositories(&r);
        if repos.is_empty() {
            return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a restic repository Secret (ExternalSecret templating RESTIC_REPOSITORY) for VolSync", "none"));
        }
        Ok(Outcome::all(repos.into_iter().map(|(es, value)| {
            let object = format!("{} RESTIC_REPOSITORY", es.describe());
            let Some(value) = value else {
                return Outcome::fail(object, "s3:<MinIO endpoint>/<bucket>/<path>", "not templated");
            };
            let url = value.strip_prefix("s3:").unwrap_or("");
            let rest = normalize_url(url).strip_prefix(&format!("{minio}/")).map(String::from);
            match rest.as_deref().map(|r| r.split('/').next().unwrap_or("")) {
                Some(bucket) if !bucket.is_empty() => Outcome::pass(format!("{object} = {value} (MinIO {minio}, bucket {bucket})")),
                _ => Outcome::fail(object, format!("s3:{minio}/<bucket>/... (MINIO_ENDPOINT)"), format!("{value:?}")),
            }
        })))
    })
}

async fn volsync_test_replication_source(ctx: Ctx) -> Outcome {
    outcome(|| {
        let r = rendered(&ctx)?;
        let sources = objects(&r, "volsync.backube", "ReplicationSource");
        if sources.is_empty() {
            return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a ReplicationSource (volsync.backube) rendered", "none"));
        }
        Ok(Outcome::all(sources.iter().map(|rs| {
            let mut findings = vec![];
            let pvc = rs.str("/spec/sourcePVC").unwrap_or("");
            if find(&r, "", "PersistentVolumeClaim", pvc, rs.namespace()).is_none() {
                findings.push(Finding::new(format!("{} spec.sourcePVC", rs.describe()), "a PersistentVolumeClaim rendered in the same namespace", format!("{pvc:?} not found")));
            }
            let schedule = rs.str("/spec/trigger/schedule");
            let manual = rs.str("/spec/trigger/manual");
            match (schedule, manual) {
                (Some(s), _) => {
                    if let Err(e) = cron_frequency(s) {
                        findings.push(Finding::new(format!("{} spec.trigger.schedule", rs.describe()), "a cron schedule", format!("{s:?}: {e}")));
                    }
                }
                (None, Some(_)) => {}
                (None, None) => findings.push(Finding::new(format!("{} spec.trigger", rs.describe()), "a schedule or manual trigger", "none")),
            }
            let mover = ["restic", "rclone", "rsync", "rsyncTLS", "syncthing"].iter().find(|m| rs.get(&format!("/spec/{m}")).is_some());
            match mover {
                Some(&"restic") => {
                    let secret = rs.str("/spec/restic/repository").unwrap_or("");
                    if let Err(f) = secret_from_external_secret(&r, rs.namespace(), secret, &format!("{} spec.restic.repository", rs.describe())) {
                        findings.push(f);
                    }
                }
                Some(_) => {}
                None => findings.push(Finding::new(format!("{} spec", rs.describe()), "a mover (restic, rclone, rsync...)", "none")),
            }
            Outcome::from_findings(findings, format!("{} source {pvc}, schedule {:?}, mover {}", rs.describe(), schedule.unwrap_or("manual"), mover.unwrap_or(&"?")))
        })))
    })
}

/// Velero BackupStorageLocations: the chart's `configuration.backupStorageLocation` and rendered objects.
fn storage_locations(r: &Rendered) -> Vec<(String, Value)> {
    let mut out = vec![];
    for hr in objects(r, HELM_GROUP, "HelmRelease").into_iter().filter(|h| squash(&chart_name(h)) == "velero") {
        let v = helm_values(r, hr);
        match v.pointer("/configuration/backupStorageLocation") {
            Some(Value::Array(list)) => {
                for (i, b) in list.iter().enumerate() {
                    out.push((format!("{} configuration.backupStorageLocation[{i}]", hr.describe()), b.clone()));
                }
            }
            Some(b @ Value::Object(_)) => out.push((format!("{} configuration.backupStorageLocation", hr.describe()), b.clone())),
            _ => {}
        }
    }
    for bsl in objects(r, "velero.io", "BackupStorageLocation") {
        let mut v = bsl.get("/spec").cloned().unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("name".into(), Value::String(bsl.name().into()));
            if let Some(b) = bsl.get("/spec/objectStorage/bucket") {
                m.insert("bucket".into(), b.clone());
            }
        }
        out.push((bsl.describe(), v));
    }
    out
}

async fn velero_minio_destination(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let r = rendered(&ctx)?;
        let minio = minio_endpoint(repo, &ctx.cluster)?;
        let bsls = storage_locations(&r);
        if bsls.is_empty() {
            return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a Velero BackupStorageLocation (chart values or velero.io object)", "none"));
        }
        let mut outcomes: Vec<Outcome> = bsls
            .iter()
            .map(|(object, b)| {
                let mut findings = vec![];
                let url = b.pointer("/config/s3Url").and_then(Value::as_str).unwrap_or("");
                if normalize_url(url) != minio {
                    findings.push(Finding::new(format!("{object} config.s3Url"), format!("the MinIO endpoint {minio:?} (MINIO_ENDPOINT)"), format!("{url:?}")));
                }
                let provider = b.get("provider").and_then(Value::as_str).unwrap_or("");
                if !provider.contains("aws") {
                    findings.push(Finding::new(format!("{object} provider"), "an S3 provider (aws plugin) for MinIO", format!("{provider:?}")));
                }
                let bucket = b.get("bucket").and_then(Value::as_str).unwrap_or("");
                if bucket.is_empty() {
                    findings.push(Finding::new(format!("{object} bucket"), "a bucket", "not set"));
                }
                Outcome::from_findings(findings, format!("{object}: {url} (MinIO) bucket {bucket}"))
            })
            .collect();
        // Credentials for the plugin: the chart's existingSecret, from an ExternalSecret.
        for hr in objects(&r, HELM_GROUP, "HelmRelease").into_iter().filter(|h| squash(&chart_name(h)) == "velero") {
            let v = helm_values(&r, hr);
            if let Some(secret) = v.pointer("/credentials/existingSecret").and_then(Value::as_str) {
                outcomes.push(match secret_from_external_secret(&r, hr.namespace(), secret, &format!("{} credentials.existingSecret", hr.describe())) {
                    Ok(es) => Outcome::pass(format!("credentials from {}", es.describe())),
                    Err(f) => Outcome::Fail { findings: vec![f] },
                });
            }
        }
        Ok(Outcome::all(outcomes))
    })
}

async fn velero_weekly_schedule(ctx: Ctx) -> Outcome {
    outcome(|| {
        let r = rendered(&ctx)?;
        let word = WEEKLY.split_whitespace().find_map(|w| runs_per_week(w).map(|n| (w, n)));
        let (word, want) = word.ok_or_else(|| Outcome::error(format!("no frequency word in {WEEKLY:?}")))?;
        let schedules = objects(&r, "velero.io", "Schedule");
        if schedules.is_empty() {
            return Ok(Outcome::fail(format!("cluster {}", ctx.cluster), "a Velero Schedule (velero.io) rendered", "none"));
        }
        let locations: Vec<String> = storage_locations(&r).iter().filter_map(|(_, b)| b.get("name").and_then(Value::as_str).map(String::from)).collect();
        let mut seen = vec![];
        for s in &schedules {
            let cron = s.str("/spec/schedule").unwrap_or("");
            let freq = match cron_frequency(cron) {
                Ok(f) => f,
                Err(e) => {
                    seen.push(format!("{} {cron:?}: {e}", s.describe()));
                    continue;
                }
            };
            if freq != Frequency::PerWeek(want) {
                seen.push(format!("{} {cron:?} {freq}", s.describe()));
                continue;
            }
            let location = s.str("/spec/template/storageLocation").unwrap_or("default");
            if !locations.iter().any(|l| l == location) {
                return Ok(Outcome::fail(
                    format!("{} spec.template.storageLocation", s.describe()),
                    format!("a BackupStorageLocation rendered on cluster {} ([{}])", ctx.cluster, locations.join(", ")),
                    format!("{location:?}"),
                ));
            }
            let ttl = s.str("/spec/template/ttl").unwrap_or("default 720h");
            return Ok(Outcome::pass(format!("{} schedule {cron:?} {freq} ({word}), location {location}, ttl {ttl}", s.describe())));
        }
        Ok(Outcome::fail("Velero Schedules", format!("a schedule that runs {word} ({want} run(s) a week)"), seen.join("; ")))
    })
}

// ---------------------------------------------------------------------------
// Live layers
// ---------------------------------------------------------------------------

use crate::cluster::objects::{self as kobjects, Kind};

/// §20 [VS1]
const REPLICATION_SOURCE: Kind = Kind::namespaced("volsync.backube", &["v1alpha1"], "ReplicationSource");
/// §21 [VE1][VE3][VE4]
const BACKUP: Kind = Kind::namespaced("velero.io", &["v1"], "Backup");
const BSL: Kind = Kind::namespaced("velero.io", &["v1"], "BackupStorageLocation");
const SCHEDULE: Kind = Kind::namespaced("velero.io", &["v1"], "Schedule");

fn cluster_checks() -> Vec<Check> {
    vec![
        Check::cluster("10.1", "Deployed on infra cluster", "volsync_deployed", volsync_deployed),
        Check::data_plane("10.1", "Backup runs successfully", "volsync_backup_runs", volsync_backups_succeed),
        Check::cluster("10.2", "VolSync deployed on apps cluster (automatic via shared base)", "volsync_deployed_apps", volsync_deployed),
        Check::data_plane("10.2", "Test replication working", "volsync_replication_working", volsync_backups_succeed),
        Check::cluster("10.3", "Deployed on infra cluster", "velero_deployed", velero_deployed),
        Check::data_plane("10.3", "Test backup created successfully", "velero_test_backup", velero_test_backup),
        Check::cluster("10.4", "Velero deployed on apps cluster (automatic)", "velero_deployed_apps", velero_deployed),
        Check::data_plane("10.4", "Backups working", "velero_backups_working", velero_backups_working),
    ]
}

/// §20 [VS7]: chart selector `app.kubernetes.io/name=volsync`, `app.kubernetes.io/instance=<release>`.
async fn volsync_deployed(ctx: Ctx) -> Outcome {
    component_deployed(&ctx, "volsync", |r| format!("app.kubernetes.io/name=volsync,app.kubernetes.io/instance={r}")).await
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
async fn volsync_backups_succeed(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let r = match rendered(&ctx) { Ok(r) => r, Err(o) => return o };
    let sources: Vec<RenderedObject> = objects(&r, "volsync.backube", "ReplicationSource").into_iter().cloned().collect();
    if sources.is_empty() {
        return Outcome::fail(format!("cluster {}", ctx.cluster), "a ReplicationSource in the repository's manifests", "none");
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
            outcomes.push(restic_repository_has_snapshots(&ctx, client, ns, secret).await);
        }
    }
    Outcome::all(outcomes)
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

async fn restic_repository_has_snapshots(ctx: &Ctx, client: &kube::Client, ns: &str, secret: &str) -> Outcome {
    let data = match secret_data(client, &ctx.cluster, ns, secret).await { Ok(d) => d, Err(o) => return o };
    let object = format!("Secret {ns}/{secret} (cluster {})", ctx.cluster);
    let key = |k: &str| data.get(k).cloned().ok_or_else(|| Outcome::fail(format!("{object} key {k}"), "present", "missing"));
    let (repo, id, key_secret) = match (key("RESTIC_REPOSITORY"), key("AWS_ACCESS_KEY_ID"), key("AWS_SECRET_ACCESS_KEY")) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (a, b, c) => return Outcome::all([a.err(), b.err(), c.err()].into_iter().flatten()),
    };
    let Some((endpoint, bucket, path)) = restic_location(&repo) else {
        return Outcome::fail(format!("{object} RESTIC_REPOSITORY"), "s3:<endpoint>/<bucket>/<path>", "another backend (only S3 repositories are read)");
    };
    let region = data.get("AWS_DEFAULT_REGION").map(String::as_str).unwrap_or("us-east-1");
    let (s3, via) = match s3_client(ctx, &endpoint, region, &id, &key_secret).await { Ok(c) => c, Err(o) => return o };
    let prefix = if path.is_empty() { String::new() } else { format!("{path}/") };
    let where_ = format!("restic repository s3://{bucket}/{prefix} at {via}");
    let config = match list_keys(&s3, &bucket, &format!("{prefix}config"), 1).await {
        Ok(k) => k,
        Err(e) => return Outcome::fail(where_, "readable with the Secret's keys", e),
    };
    if !config.iter().any(|(k, _)| *k == format!("{prefix}config")) {
        return Outcome::fail(where_, "an initialised repository (object config)", "no config object");
    }
    let snapshots = match list_keys(&s3, &bucket, &format!("{prefix}snapshots/"), 1000).await {
        Ok(k) => k,
        Err(e) => return Outcome::fail(where_, "readable with the Secret's keys", e),
    };
    match snapshots.iter().map(|(_, t)| *t).max() {
        None => Outcome::fail(where_, "at least one snapshot (snapshots/<id>)", "no snapshots"),
        Some(newest) => Outcome::pass(format!("{where_}: {} snapshot(s), newest written {} ago", snapshots.len(), age_text(now_seconds() - newest))),
    }
}

/// §21 [VE5]: Deployment `velero` and DaemonSet `node-agent` carry the release labels;
/// §21 [VE3]: every BackupStorageLocation of the release namespace is `Available`.
async fn velero_deployed(ctx: Ctx) -> Outcome {
    let deployed = component_deployed(&ctx, "velero", |r| format!("app.kubernetes.io/name=velero,app.kubernetes.io/instance={r}")).await;
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let hr = match rendered_release(&ctx, "velero") { Ok(h) => h, Err(o) => return Outcome::all([deployed, o]) };
    let ns = Release::of(&hr).namespace;
    let locations = match kobjects::list(client, &BSL, Some(&ns), None).await { Ok(l) => l, Err(o) => return Outcome::all([deployed, o]) };
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
    Outcome::all(outcomes)
}

/// Velero's namespace on this cluster (the release namespace of the velero HelmRelease).
fn velero_namespace(ctx: &Ctx) -> Result<String, Outcome> {
    Ok(Release::of(&rendered_release(ctx, "velero")?).namespace)
}

fn completion(b: &kobjects::Found) -> i64 {
    b.str("/status/completionTimestamp").and_then(epoch_seconds).unwrap_or(0)
}

/// A Backup `Completed` (§21 [VE1]) exists, and the newest one is in its storage location:
/// `<prefix>/backups/<name>/velero-backup.json` is in the bucket (Velero's object-store
/// layout), read with the BackupStorageLocation's own credential.
async fn velero_test_backup(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let ns = match velero_namespace(&ctx) { Ok(n) => n, Err(o) => return o };
    let backups = match kobjects::list(client, &BACKUP, Some(&ns), None).await { Ok(b) => b, Err(o) => return o };
    let newest = backups.iter().filter(|b| b.str("/status/phase") == Some("Completed")).max_by_key(|b| completion(b));
    let Some(b) = newest else {
        let seen: Vec<String> = backups.iter().map(|b| format!("{} {}", b.name(), b.str("/status/phase").unwrap_or("New"))).collect();
        return Outcome::fail(format!("Velero Backups in {ns} (cluster {})", ctx.cluster), "a Backup with status.phase Completed", if seen.is_empty() { "no Backups".to_string() } else { format!("[{}]", seen.join(", ")) });
    };
    Outcome::all([backup_summary(b, &ctx.cluster), backup_in_store(&ctx, client, &ns, b).await])
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

/// The Backup's metadata object in its BackupStorageLocation's bucket.
async fn backup_in_store(ctx: &Ctx, client: &kube::Client, ns: &str, b: &kobjects::Found) -> Outcome {
    let location = b.str("/spec/storageLocation").unwrap_or("default");
    let bsl = match kobjects::require(client, &BSL, Some(ns), location).await { Ok(l) => l, Err(o) => return o };
    let bucket = bsl.str("/spec/objectStorage/bucket").unwrap_or("");
    let prefix = bsl.str("/spec/objectStorage/prefix").map(|p| format!("{}/", p.trim_matches('/'))).unwrap_or_default();
    let endpoint = bsl.str("/spec/config/s3Url").unwrap_or("");
    let region = bsl.str("/spec/config/region").unwrap_or("us-east-1");
    if endpoint.is_empty() {
        return Outcome::fail(format!("{} spec.config.s3Url", bsl.describe(&BSL)), "an S3 endpoint (MinIO)", "not set");
    }
    // The location's credential, else the chart's Secret (credentials.existingSecret, key cloud).
    let (secret, key) = match (bsl.str("/spec/credential/name"), bsl.str("/spec/credential/key")) {
        (Some(n), Some(k)) => (n.to_string(), k.to_string()),
        _ => {
            let hr = rendered_release(ctx, "velero").ok();
            let v = hr.as_ref().and_then(|h| rendered(ctx).ok().map(|r| helm_values(&r, h)));
            (v.as_ref().and_then(|v| v.pointer("/credentials/existingSecret")).and_then(Value::as_str).unwrap_or("velero").to_string(), "cloud".to_string())
        }
    };
    let data = match secret_data(client, &ctx.cluster, ns, &secret).await { Ok(d) => d, Err(o) => return o };
    let Some((id, key_secret)) = data.get(&key).and_then(|t| aws_ini_keys(t)) else {
        return Outcome::fail(format!("Secret {ns}/{secret} key {key} (cluster {})", ctx.cluster), "an AWS credentials file with [default] keys", "missing or unparsable");
    };
    let (s3, via) = match s3_client(ctx, endpoint, region, &id, &key_secret).await { Ok(c) => c, Err(o) => return o };
    let dir = format!("{prefix}backups/{}/", b.name());
    let where_ = format!("s3://{bucket}/{dir} at {via}");
    match list_keys(&s3, bucket, &dir, 100).await {
        Err(e) => Outcome::fail(where_, format!("readable with Secret {ns}/{secret}"), e),
        Ok(keys) => {
            let meta = format!("{dir}velero-backup.json");
            if keys.iter().any(|(k, _)| *k == meta) {
                Outcome::pass(format!("{where_}: {} object(s) incl. velero-backup.json", keys.len()))
            } else {
                Outcome::fail(format!("{} in {where_}", b.describe(&BACKUP)), "velero-backup.json (the backup's metadata, uploaded by Velero)", if keys.is_empty() { "no objects".to_string() } else { format!("{} other object(s), no velero-backup.json", keys.len()) })
            }
        }
    }
}

/// Every Velero Schedule of the repository on this cluster is `Enabled`, ran within its
/// interval (`status.lastBackup`), and its newest Backup (label `velero.io/schedule-name`)
/// is `Completed` and in the bucket.
async fn velero_backups_working(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let r = match rendered(&ctx) { Ok(r) => r, Err(o) => return o };
    let schedules: Vec<RenderedObject> = objects(&r, "velero.io", "Schedule").into_iter().cloned().collect();
    if schedules.is_empty() {
        return Outcome::fail(format!("cluster {}", ctx.cluster), "a Velero Schedule in the repository's manifests", "none");
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
        let backups = match kobjects::list(client, &BACKUP, Some(ns), Some(&format!("velero.io/schedule-name={}", s.name()))).await { Ok(b) => b, Err(o) => return o };
        let Some(newest) = backups.iter().max_by_key(|b| b.object.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(0)) else {
            outcomes.push(Outcome::fail(format!("{object}: Backups labelled velero.io/schedule-name={}", s.name()), "the schedule's backups", "none"));
            continue;
        };
        let phase = newest.str("/status/phase").unwrap_or("New");
        if phase != "Completed" {
            outcomes.push(Outcome::fail(format!("{} (cluster {}) status.phase", newest.describe(&BACKUP), ctx.cluster), "Completed", format!("{phase:?}{}", newest.str("/status/failureReason").map(|m| format!(" ({m})")).unwrap_or_default())));
            continue;
        }
        outcomes.push(backup_summary(newest, &ctx.cluster));
        outcomes.push(backup_in_store(&ctx, client, ns, newest).await);
    }
    Outcome::all(outcomes)
}
