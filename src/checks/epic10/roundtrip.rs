//! The Velero round trip: back up a disposable namespace, find the backup in the bucket,
//! delete the namespace, restore it under another name and compare what came back.
//!
//! Writes (declared by the checks with `.writes()`): a disposable namespace with a
//! ConfigMap, a Secret and a labelled set of ConfigMaps; a Backup and a Restore in Velero's
//! namespace, both labelled with the run's id. Cleanup deletes the restored namespace and the
//! Restore, and asks Velero to delete the Backup with a `DeleteBackupRequest` (deleting the
//! Backup object alone would leave its files, and Velero's backup sync would bring it back).
//! The disaster-recovery part of 10.4.2 also writes, on the restoring cluster, a temporary
//! read-only BackupStorageLocation and a copy of the other cluster's location credential
//! (both labelled), deleted before the Backup objects Velero synced through them.
//! `sweep` does the same for runs that died (see [`crate::cluster::lease`]).
//!
//! Phases and fields (§21 [VE1], Velero `pkg/apis/velero/v1/{backup,restore}_types.go`):
//! both kinds finish in `Completed`, `PartiallyFailed`, `Failed` or `FailedValidation`, with
//! `status.validationErrors`, `failureReason`, `errors` and `warnings`; a Restore maps
//! namespaces with `spec.namespaceMapping`. In the bucket a Backup is
//! `<prefix>/backups/<name>/<name>.tar.gz` and `velero-backup.json`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::backups::{self, FINISHED};
use super::live::{location_credential, location_store, velero_namespace, BACKUP, BSL};
use crate::check::{CheckResult, Ctx, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::lease::RUN_LABEL;
use crate::cluster::objects::{self as kobjects, Kind};

const RESTORE: Kind = Kind::namespaced("velero.io", &["v1"], "Restore");
/// Label of the ConfigMaps restored as a set.
const SET_LABEL: &str = "platform-acceptance.io/set";
/// How long Velero may take for each of the backup and the restore.
const WAIT: Duration = Duration::from_secs(25);
/// How long Velero may take to validate a new location and sync its Backups: its sync
/// controller looks at the locations once a minute and skips one not yet validated (§21).
const SYNC_WAIT: Duration = Duration::from_secs(150);

/// Where a step runs: a cluster's client and Velero's namespace there.
#[derive(Clone, Copy)]
struct Side<'a> {
    cluster: &'a str,
    client: &'a kube::Client,
    velero: &'a str,
}

/// A Backup of a sample namespace, Completed and found in the bucket.
struct Taken {
    src: String,
    sample: Sample,
    backup: kobjects::Found,
    stored: String,
}

/// 10.3.6, 10.4.2: back up a namespace with Velero, restore it elsewhere, compare.
pub(super) async fn velero_round_trip(ctx: Ctx) -> CheckResult<Outcome> {
    let velero = velero_namespace(&ctx)?;
    let here = Side { cluster: &ctx.cluster, client: ctx.kube()?, velero: &velero };
    let taken = take_backup(&ctx, here).await?;
    // The original goes; what comes back can only come from the bucket.
    let _ = Api::<Namespace>::all(here.client.clone()).delete(&taken.src, &DeleteParams::default()).await;
    let restored = restore_and_compare(&ctx, here, &taken).await?;
    Ok(Outcome::pass(format!("{}; {}; {restored}", describe_backup(&taken.backup), taken.stored)))
}

/// 10.4.2: the Schedules' own Backups are working, a backup made now restores, and a backup
/// another cluster took restores here (disaster recovery, [`restore_from_peers`]).
pub(super) async fn velero_backups_working(ctx: Ctx) -> CheckResult<Outcome> {
    let scheduled = super::live::velero_schedules_working(ctx.clone()).await.into_outcome();
    let round_trip = velero_round_trip(ctx.clone()).await.into_outcome();
    Ok(Outcome::all([scheduled, round_trip, restore_from_peers(ctx).await.into_outcome()]))
}

/// Disaster recovery: every other cluster backs up a sample namespace with its own Velero;
/// this cluster reads that backup through a temporary read-only BackupStorageLocation on the
/// other cluster's bucket (its credential copied into a temporary Secret), restores it and
/// compares. Read-only: Velero here can neither write nor delete the other cluster's files.
/// Velero's namespace is taken to be the same on every cluster (one shared base).
async fn restore_from_peers(ctx: Ctx) -> CheckResult<Outcome> {
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    let velero = velero_namespace(&ctx)?;
    let here = Side { cluster: &ctx.cluster, client: ctx.kube()?, velero: &velero };
    let mut outcomes = vec![];
    for (cluster, client) in target.peers.iter().filter(|(c, _)| **c != ctx.cluster) {
        let there = Side { cluster, client, velero: &velero };
        outcomes.push(restore_from(&ctx, there, here).await.into_outcome());
    }
    Ok(Outcome::all(outcomes))
}

async fn restore_from(ctx: &Ctx, there: Side<'_>, here: Side<'_>) -> CheckResult<Outcome> {
    let taken = take_backup(ctx, there).await?;
    let source = kobjects::require(there.client, &BSL, Some(there.velero), taken.backup.str("/spec/storageLocation").unwrap_or("default")).await?;
    let location = read_only_location(ctx, there, here, &source).await?;
    let name = taken.backup.name();
    let synced = wait::object(ctx, here.client, &BACKUP, Some(here.velero), name, SYNC_WAIT, |b| backups::phase(b) == "Completed").await?;
    if synced.is_none() {
        let state = kobjects::get(here.client, &BSL, Some(here.velero), &location).await?.map(|l| format!("location {location} {}{}", l.str("/status/phase").unwrap_or("not validated yet"), l.str("/status/message").map(|m| format!(" ({m})")).unwrap_or_default()));
        return Err(Outcome::fail(format!("Backup {}/{name} of cluster {} on cluster {} (Velero's backup sync)", here.velero, there.cluster, here.cluster), format!("synced from read-only location {location} within {}s", SYNC_WAIT.as_secs()), state.unwrap_or("location gone".into())));
    }
    let restored = restore_and_compare(ctx, here, &taken).await?;
    Ok(Outcome::pass(format!("disaster recovery: {} of cluster {}, read through read-only location {location} on cluster {}; {restored}", taken.backup.describe(&BACKUP), there.cluster, here.cluster)))
}

/// A read-only BackupStorageLocation on `here` for the bucket of `source` on `there`, with a
/// copy of its credential; both labelled with the run. Cleanup deletes the location first and
/// then the Backups Velero synced from it (deleted as objects: the files are the other
/// cluster's, and without the location nothing brings the objects back).
async fn read_only_location(ctx: &Ctx, there: Side<'_>, here: Side<'_>, source: &kobjects::Found) -> CheckResult<String> {
    let (secret, key) = location_credential(ctx, source);
    let cred = Api::<Secret>::namespaced(there.client.clone(), there.velero).get_opt(&secret).await.map_err(|e| crate::cluster::api_error(&format!("get Secret {}/{secret} (cluster {})", there.velero, there.cluster), e))?;
    let value = cred.and_then(|s| s.data?.remove(&key)).ok_or_else(|| Outcome::fail(format!("Secret {}/{secret} key {key} (cluster {})", there.velero, there.cluster), "present (the location's credential)", "missing"))?;
    let name = format!("pa-dr-{}", crate::random::token(8).to_ascii_lowercase());
    let labels = BTreeMap::from([(RUN_LABEL.to_string(), ctx.run.clone())]);
    let copy = Secret { metadata: kube::api::ObjectMeta { name: Some(name.clone()), labels: Some(labels), ..Default::default() }, data: Some(BTreeMap::from([("cloud".to_string(), value)])), ..Default::default() };
    let secrets = Api::<Secret>::namespaced(here.client.clone(), here.velero);
    secrets.create(&PostParams::default(), &copy).await.map_err(|e| crate::cluster::api_error(&format!("create Secret {}/{name} (cluster {})", here.velero, here.cluster), e))?;
    let (c, ns, n, run) = (here.client.clone(), here.velero.to_string(), name.clone(), ctx.run.clone());
    ctx.cleanup.defer(async move {
        let _ = Api::<Secret>::namespaced(c.clone(), &ns).delete(&n, &DeleteParams::default()).await;
        let _ = kobjects::delete(&c, &BSL, Some(&ns), &n).await;
        for b in kobjects::list(&c, &BACKUP, Some(&ns), Some(&format!("velero.io/storage-location={n}"))).await.unwrap_or_default() {
            let _ = crate::cluster::lease::remove_velero_backup(&c, &b, &run).await;
        }
    });
    let spec = source.get("/spec").cloned().unwrap_or_default();
    kobjects::create(here.client, &BSL, Some(here.velero), json!({
        "metadata": {"name": name, "namespace": here.velero, "labels": {RUN_LABEL: ctx.run}},
        "spec": {"provider": spec["provider"], "objectStorage": spec["objectStorage"], "config": spec["config"], "credential": {"name": name, "key": "cloud"}, "accessMode": "ReadOnly", "default": false},
    }))
    .await?;
    Ok(name)
}

/// A sample namespace on `side`, backed up by Velero there; the Backup is handed back to
/// Velero for deletion when the check ends.
async fn take_backup(ctx: &Ctx, side: Side<'_>) -> CheckResult<Taken> {
    let src = disposable_namespace(ctx, side.client, "velero").await?;
    let sample = Sample::new();
    sample.create(side.client, &src).await?;
    create_backup(ctx, side, &src).await?;
    let backup = finished(ctx, side, &BACKUP, &src).await?;
    let stored = backup_files(ctx, side, &backup).await?;
    Ok(Taken { src, sample, backup, stored })
}

/// Restores `taken` on `side` into a new namespace (`namespaceMapping`) and compares it with the sample.
async fn restore_and_compare(ctx: &Ctx, side: Side<'_>, taken: &Taken) -> CheckResult<String> {
    let dst = format!("{}-r", &taken.src[..taken.src.len().min(61)]);
    let (namespaces, d) = (Api::<Namespace>::all(side.client.clone()), dst.clone());
    ctx.cleanup.defer(async move {
        let _ = namespaces.delete(&d, &DeleteParams::default()).await;
    });
    let name = format!("{}-{}", taken.backup.name(), crate::random::token(4).to_ascii_lowercase());
    kobjects::create(side.client, &RESTORE, Some(side.velero), json!({
        "metadata": {"name": name, "namespace": side.velero, "labels": {RUN_LABEL: ctx.run}},
        "spec": {"backupName": taken.backup.name(), "includedNamespaces": [taken.src], "namespaceMapping": {&taken.src: &dst}, "restorePVs": false},
    }))
    .await?;
    let (c, ns, n) = (side.client.clone(), side.velero.to_string(), name.clone());
    // Runs before the namespace's removal above (cleanups run last first).
    ctx.cleanup.defer(async move {
        let _ = crate::cluster::lease::remove_velero_restore(&c, &ns, &n).await;
    });
    let restore = finished(ctx, side, &RESTORE, &name).await?;
    let compared = taken.sample.compare(side.client, &dst, side.cluster).await?;
    Ok(format!(
        "{} Completed into namespace {dst} ({} items, {} warning(s)); {compared}",
        restore.describe(&RESTORE),
        restore.get("/status/progress/itemsRestored").map(|v| v.to_string()).unwrap_or("?".into()),
        restore.get("/status/warnings").and_then(|v| v.as_i64()).unwrap_or(0),
    ))
}

fn describe_backup(b: &kobjects::Found) -> String {
    format!("{} Completed ({} items)", b.describe(&BACKUP), b.get("/status/progress/itemsBackedUp").map(|v| v.to_string()).unwrap_or("?".into()))
}

/// A Backup of `src` in the default storage location; its removal through Velero is registered.
async fn create_backup(ctx: &Ctx, side: Side<'_>, src: &str) -> CheckResult<()> {
    kobjects::create(side.client, &BACKUP, Some(side.velero), json!({
        "metadata": {"name": src, "namespace": side.velero, "labels": {RUN_LABEL: ctx.run}},
        "spec": {"includedNamespaces": [src], "ttl": "1h0m0s", "snapshotVolumes": false, "defaultVolumesToFsBackup": false},
    }))
    .await?;
    let (c, ns, n, run) = (side.client.clone(), side.velero.to_string(), src.to_string(), ctx.run.clone());
    ctx.cleanup.defer(async move {
        if let Ok(Some(b)) = kobjects::get(&c, &BACKUP, Some(&ns), &n).await {
            let _ = crate::cluster::lease::remove_velero_backup(&c, &b, &run).await;
        }
    });
    Ok(())
}

/// Waits for a Backup or Restore to finish; anything but `Completed` is a Fail in Velero's words.
async fn finished(ctx: &Ctx, side: Side<'_>, kind: &Kind, name: &str) -> CheckResult<kobjects::Found> {
    let (client, velero) = (side.client, side.velero);
    let object = format!("{} {velero}/{name} (cluster {})", kind.kind, side.cluster);
    let done = wait::object(ctx, client, kind, Some(velero), name, WAIT, |o| FINISHED.contains(&backups::phase(o))).await?;
    let Some(o) = done else {
        let phase = kobjects::get(client, kind, Some(velero), name).await?.map(|o| backups::phase(&o).to_string()).unwrap_or("gone".into());
        let behind = if phase == "Queued" { queued_behind(client, velero, name).await } else { String::new() };
        let state = format!("{phase}{behind}{}", location_state(client, velero).await);
        // Still being worked on (or waiting in Velero's queue): in progress, which the runner
        // waits for a bounded time before the Fail stands.
        if backups::IN_PROGRESS.contains(&phase.as_str()) {
            return Err(Outcome::in_progress(object, format!("Completed within {}s", WAIT.as_secs()), state));
        }
        return Err(Outcome::fail(object, format!("Completed within {}s", WAIT.as_secs()), state));
    };
    match backups::phase(&o) {
        "Completed" => Ok(o),
        phase => {
            let reasons: Vec<String> = o.get("/status/validationErrors").and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()).map(String::from)
                .chain(o.str("/status/failureReason").map(String::from))
                .chain(o.get("/status/errors").and_then(|v| v.as_i64()).filter(|n| *n > 0).map(|n| format!("{n} error(s)")))
                .collect();
            Err(Outcome::fail(object, "Completed", format!("{phase} ({}){}", reasons.join("; "), location_state(client, velero).await)))
        }
    }
}

/// ` behind x (InProgress), y (Queued)`: the Backups Velero runs first (its queue takes one at
/// a time and holds back a Backup whose namespaces overlap a running one).
async fn queued_behind(client: &kube::Client, velero: &str, name: &str) -> String {
    let Ok(all) = kobjects::list(client, &BACKUP, Some(velero), None).await else { return String::new() };
    let ahead: Vec<kobjects::Found> = all.into_iter().filter(|b| b.name() != name && matches!(backups::phase(b), "Queued" | "ReadyToStart" | "InProgress")).collect();
    if ahead.is_empty() {
        return String::new();
    }
    format!(" behind {}", backups::History::of(&ahead).in_progress_text())
}

/// `; storage location default Unavailable (...)` when the default location is not Available.
async fn location_state(client: &kube::Client, velero: &str) -> String {
    let Ok(locations) = kobjects::list(client, &BSL, Some(velero), None).await else { return String::new() };
    locations
        .iter()
        .filter(|l| l.str("/status/phase") != Some("Available"))
        .map(|l| format!("; storage location {} {}{}", l.name(), l.str("/status/phase").unwrap_or("without phase"), l.str("/status/message").map(|m| format!(" ({m})")).unwrap_or_default()))
        .collect()
}

/// The tarball and the metadata of the Backup in its location's bucket.
async fn backup_files(ctx: &Ctx, side: Side<'_>, b: &kobjects::Found) -> CheckResult<String> {
    let location = b.str("/spec/storageLocation").unwrap_or("default");
    let bsl = kobjects::require(side.client, &BSL, Some(side.velero), location).await?;
    let store = location_store(ctx, side.client, side.velero, &bsl).await?;
    let dir = format!("{}backups/{}/", store.prefix, b.name());
    let where_ = format!("s3://{}/{dir} at {}", store.bucket, store.via);
    let keys = list_keys(ctx, &store.store, &store.bucket, &dir, 100, &where_, "readable with the location's credential").await?;
    let missing: Vec<String> = [format!("{}.tar.gz", b.name()), "velero-backup.json".into()].into_iter().filter(|f| !keys.iter().any(|(k, _)| *k == format!("{dir}{f}"))).collect();
    if !missing.is_empty() {
        return Err(Outcome::fail(format!("{} in {where_}", b.describe(&BACKUP)), "the backup's tarball and metadata", format!("missing {} ({} object(s) there)", missing.join(", "), keys.len())));
    }
    Ok(format!("{where_}: tarball and velero-backup.json among {} object(s)", keys.len()))
}

/// What the round trip backs up: one ConfigMap, one Secret and a set of labelled ConfigMaps,
/// with random contents.
struct Sample {
    configmaps: BTreeMap<String, BTreeMap<String, String>>,
    secret: BTreeMap<String, Vec<u8>>,
    set: usize,
}

const CONFIG: &str = "pa-config";
const SECRET: &str = "pa-secret";

impl Sample {
    fn new() -> Self {
        let set = 3;
        let mut configmaps = BTreeMap::from([(CONFIG.to_string(), BTreeMap::from([("token".to_string(), crate::random::token(16))]))]);
        for i in 0..set {
            configmaps.insert(format!("pa-set-{i}"), BTreeMap::from([("index".to_string(), i.to_string())]));
        }
        let secret = BTreeMap::from([("password".to_string(), crate::random::token(24).into_bytes())]);
        Sample { configmaps, secret, set }
    }

    async fn create(&self, client: &kube::Client, ns: &str) -> CheckResult<()> {
        let pp = PostParams::default();
        for (name, data) in &self.configmaps {
            let labels = if name.starts_with("pa-set-") { json!({SET_LABEL: "velero"}) } else { json!({}) };
            let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": data})).map_err(Outcome::error)?;
            Api::<ConfigMap>::namespaced(client.clone(), ns).create(&pp, &cm).await.map_err(|e| crate::cluster::api_error(&format!("create ConfigMap {ns}/{name}"), e))?;
        }
        let data: BTreeMap<String, k8s_openapi::ByteString> = self.secret.iter().map(|(k, v)| (k.clone(), k8s_openapi::ByteString(v.clone()))).collect();
        let secret = Secret { metadata: kube::api::ObjectMeta { name: Some(SECRET.into()), ..Default::default() }, data: Some(data), ..Default::default() };
        Api::<Secret>::namespaced(client.clone(), ns).create(&pp, &secret).await.map_err(|e| crate::cluster::api_error(&format!("create Secret {ns}/{SECRET}"), e))?;
        Ok(())
    }

    /// The restored objects equal the originals; secrets are compared by digest, never shown.
    async fn compare(&self, client: &kube::Client, ns: &str, cluster: &str) -> CheckResult<String> {
        let configmaps = Api::<ConfigMap>::namespaced(client.clone(), ns);
        let restored = configmaps.list(&ListParams::default()).await.map_err(|e| crate::cluster::api_error(&format!("list ConfigMaps in {ns}"), e))?;
        let mut findings = vec![];
        for (name, data) in &self.configmaps {
            let object = format!("restored ConfigMap {ns}/{name} (cluster {cluster})");
            match restored.items.iter().find(|c| c.metadata.name.as_deref() == Some(name)) {
                None => findings.push(crate::check::Finding::new(object, "present", "not restored")),
                Some(c) if c.data.clone().unwrap_or_default() != *data => findings.push(crate::check::Finding::new(object, format!("data {data:?}"), format!("{:?}", c.data.clone().unwrap_or_default()))),
                Some(_) => {}
            }
        }
        let set = restored.items.iter().filter(|c| c.metadata.labels.as_ref().and_then(|l| l.get(SET_LABEL)).is_some()).count();
        if set != self.set {
            findings.push(crate::check::Finding::new(format!("restored ConfigMaps labelled {SET_LABEL} in {ns}"), self.set.to_string(), set.to_string()));
        }
        let secret = Api::<Secret>::namespaced(client.clone(), ns).get_opt(SECRET).await.map_err(|e| crate::cluster::api_error(&format!("get Secret {ns}/{SECRET}"), e))?;
        let got: BTreeMap<String, Vec<u8>> = secret.as_ref().and_then(|s| s.data.clone()).unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        if digest(&got) != digest(&self.secret) {
            let observed = if secret.is_none() { "not restored".to_string() } else { format!("data digest {}", digest(&got)) };
            findings.push(crate::check::Finding::new(format!("restored Secret {ns}/{SECRET} (cluster {cluster})"), format!("data digest {}", digest(&self.secret)), observed));
        }
        if !findings.is_empty() {
            return Err(Outcome::from_findings(findings, ""));
        }
        Ok(format!("{} ConfigMaps ({} in the labelled set) and Secret {SECRET} equal to the originals (data digest {})", self.configmaps.len(), self.set, digest(&self.secret)))
    }
}

/// `sha256:<first 12 hex digits>` of a Secret's data (keys and values).
fn digest(data: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v);
        h.update([0]);
    }
    let hex: String = h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differ_by_any_byte_and_never_show_the_value() {
        let a = BTreeMap::from([("password".to_string(), b"hunter2".to_vec())]);
        let b = BTreeMap::from([("password".to_string(), b"hunter3".to_vec())]);
        assert_ne!(digest(&a), digest(&b));
        assert!(digest(&a).starts_with("sha256:") && !digest(&a).contains("hunter"));
        assert_eq!(digest(&a), digest(&a.clone()));
    }
}
