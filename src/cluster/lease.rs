//! Who owns what a run created, and clearing up after runs that died.
//!
//! A run that may write holds a `coordination.k8s.io/v1` Lease per cluster, named
//! `platform-acceptance-run-<id>` in namespace `default` and renewed while it runs.
//! Everything a check creates lives in a namespace labelled [`DISPOSABLE_LABEL`] and
//! [`RUN_LABEL`]` = <id>`, except what a component wants in its own namespace (Velero's
//! Backups and Restores), which carries the run label there. [`sweep`] removes both for runs
//! whose Lease is gone or expired (a run killed with SIGKILL, a machine that died), never
//! those of a run still renewing its Lease, and never anything without the run label.
//!
//! ```
//! use platform_acceptance::cluster::lease::{lease_name, expired};
//! assert_eq!(lease_name("ab12cd34"), "platform-acceptance-run-ab12cd34");
//! let renewed = time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(100);
//! assert!(!expired(Some(renewed), 30, renewed + time::Duration::seconds(29)));
//! assert!(expired(Some(renewed), 30, renewed + time::Duration::seconds(31)));
//! assert!(expired(None, 30, renewed), "a Lease never renewed is not holding anything");
//! // Lease times are MicroTime: exactly six fractional digits
//! let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::nanoseconds(1_500_123_456);
//! assert_eq!(platform_acceptance::cluster::lease::micro_time(t), "1970-01-01T00:00:01.500123Z");
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use super::objects::{self, Kind};

/// Label on everything a run creates: the run's id.
pub const RUN_LABEL: &str = "platform-acceptance.io/run";
/// Label on every namespace a check creates.
pub const DISPOSABLE_LABEL: &str = "platform-acceptance.io/disposable";
/// Where run Leases live.
pub const LEASE_NAMESPACE: &str = "default";
/// Field manager of the harness's own writes.
pub const MANAGER: &str = "platform-acceptance";

pub fn lease_name(run: &str) -> String {
    format!("platform-acceptance-run-{run}")
}

/// A Lease renewed at `renewed` for `seconds` has expired at `now` (or was never renewed).
pub fn expired(renewed: Option<time::OffsetDateTime>, seconds: i64, now: time::OffsetDateTime) -> bool {
    renewed.is_none_or(|r| r + time::Duration::seconds(seconds) < now)
}

/// Kubernetes MicroTime: RFC 3339 in UTC with exactly six fractional digits.
pub fn micro_time(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

/// Creates or renews the run's Lease on one cluster, valid for `seconds`.
pub async fn renew(client: &kube::Client, run: &str, holder: &str, seconds: i32) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = time::OffsetDateTime::now_utc();
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": lease_name(run), "labels": {RUN_LABEL: run}},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": micro_time(now)},
    });
    api.patch(&lease_name(run), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&lease)).await.map(|_| ())
}

/// Deletes the run's Lease (the run ended; its objects are gone with its cleanups).
pub async fn release(client: &kube::Client, run: &str) {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let _ = api.delete(&lease_name(run), &DeleteParams::default()).await;
}

/// What [`sweep`] did on one cluster.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Namespaces deleted: `name (run id)`.
    pub removed: Vec<String>,
    /// Namespaces of runs whose Lease is still renewed: `name (run id)`.
    pub live: Vec<String>,
    /// Disposable namespaces without a run label: left alone.
    pub unowned: Vec<String>,
    /// Objects of dead runs that could not be removed, with the reason.
    pub failed: Vec<String>,
}

/// Whether each run still holds its Lease, asked once per run.
struct Runs {
    leases: Api<Lease>,
    now: time::OffsetDateTime,
    alive: BTreeMap<String, bool>,
}

impl Runs {
    async fn live(&mut self, run: &str) -> Result<bool, kube::Error> {
        if let Some(l) = self.alive.get(run) {
            return Ok(*l);
        }
        let l = match self.leases.get_opt(&lease_name(run)).await? {
            Some(lease) => {
                let spec = lease.spec.unwrap_or_default();
                !expired(spec.renew_time.map(|t| to_offset(&t.0)), spec.lease_duration_seconds.unwrap_or(0).into(), self.now)
            }
            None => false,
        };
        self.alive.insert(run.to_string(), l);
        Ok(l)
    }
}

/// Deletes the namespaces of runs whose Lease expired or is gone, and the objects such runs
/// made in a component's own namespace ([`sweep_velero`]); see the module docs.
pub async fn sweep(client: &kube::Client) -> Result<Swept, kube::Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let mut runs = Runs { leases: leases.clone(), now: time::OffsetDateTime::now_utc(), alive: BTreeMap::new() };
    let mut out = Swept::default();
    for ns in namespaces.list(&ListParams::default().labels(DISPOSABLE_LABEL)).await? {
        let name = ns.metadata.name.clone().unwrap_or_default();
        // Already being deleted (by a cleanup or an earlier sweep): nothing left to do.
        if ns.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(run) = ns.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)).cloned() else {
            out.unowned.push(name);
            continue;
        };
        if runs.live(&run).await? {
            out.live.push(format!("{name} ({run})"));
        } else {
            namespaces.delete(&name, &DeleteParams::default()).await?;
            out.removed.push(format!("{name} ({run})"));
        }
    }
    sweep_velero(client, &mut runs, &mut out).await?;
    // Leases of runs that are over and own nothing any more.
    for (run, live) in runs.alive {
        if !live {
            let _ = leases.delete(&lease_name(&run), &DeleteParams::default()).await;
        }
    }
    Ok(out)
}

const VELERO_REQUEST: Kind = Kind::namespaced("velero.io", &["v1"], "DeleteBackupRequest");
const VELERO_BACKUP: Kind = Kind::namespaced("velero.io", &["v1"], "Backup");
const VELERO_RESTORE: Kind = Kind::namespaced("velero.io", &["v1"], "Restore");
const VELERO_LOCATION: Kind = Kind::namespaced("velero.io", &["v1"], "BackupStorageLocation");
const SECRET: Kind = Kind::namespaced("", &["v1"], "Secret");

/// Phases in which Velero is still taking a Backup (and refuses to delete it).
const BACKUP_RUNNING: [&str; 6] = ["ReadyToStart", "InProgress", "WaitingForPluginOperations", "WaitingForPluginOperationsPartiallyFailed", "Finalizing", "FinalizingPartiallyFailed"];
/// Phases of a Restore Velero is still working on (velero `pkg/apis/velero/v1/restore_types.go`).
const RESTORE_RUNNING: [&str; 7] = ["", "New", "InProgress", "WaitingForPluginOperations", "WaitingForPluginOperationsPartiallyFailed", "Finalizing", "FinalizingPartiallyFailed"];
/// How long removing a Backup or Restore waits for Velero to finish it (within the
/// runner's 30 s bound on cleanups).
const VELERO_END_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Waits, bounded by [`VELERO_END_WAIT`], while Velero is still working on object `name`
/// of `kind` (its phase is one of `running`). Not tied to the run's cancellation: cleanups
/// run after it.
async fn until_velero_done(client: &kube::Client, kind: &Kind, ns: &str, name: &str, running: &[&str]) -> Result<(), crate::outcome::Outcome> {
    let deadline = tokio::time::Instant::now() + VELERO_END_WAIT;
    while tokio::time::Instant::now() < deadline {
        match objects::get(client, kind, Some(ns), name).await? {
            Some(o) if running.contains(&o.str("/status/phase").unwrap_or("")) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            _ => break,
        }
    }
    Ok(())
}

/// Removes a Velero Restore the run made once Velero has finished it (waited for up to
/// 20 s): a Restore still running would create its target namespace again after the
/// run's cleanup deleted it.
pub async fn remove_velero_restore(client: &kube::Client, ns: &str, name: &str) -> Result<(), crate::outcome::Outcome> {
    until_velero_done(client, &VELERO_RESTORE, ns, name, &RESTORE_RUNNING).await?;
    objects::delete(client, &VELERO_RESTORE, Some(ns), name).await
}

/// Removes a Velero Backup the run made (or synced). One that never reached the bucket
/// (`FailedValidation`, or still waiting in Velero's queue), or whose location is read-only or gone, is deleted
/// as an object; any other is handed to Velero with a `DeleteBackupRequest` labelled with
/// the run, unless one is still pending, once Velero has finished taking it (waited for up
/// to 20 s).
pub async fn remove_velero_backup(client: &kube::Client, backup: &objects::Found, run: &str) -> Result<(), crate::outcome::Outcome> {
    let (ns, name) = (backup.object.metadata.namespace.clone().unwrap_or_default(), backup.name().to_string());
    // Nothing of it in a bucket this cluster may write: delete the object. That is a Backup that
    // never ran, or one read through a location that is read-only or gone (its files belong to
    // the cluster that wrote them, and without a location nothing syncs the object back).
    let location = backup.str("/spec/storageLocation").unwrap_or("default");
    let writable = objects::get(client, &VELERO_LOCATION, Some(&ns), location)
        .await?
        .is_some_and(|l| l.str("/spec/accessMode") != Some("ReadOnly"));
    if !writable || matches!(backup.str("/status/phase").unwrap_or(""), "" | "New" | "Queued" | "FailedValidation") {
        return objects::delete(client, &VELERO_BACKUP, Some(&ns), &name).await;
    }
    // Velero refuses to delete a Backup it is still taking ("backup is still in progress",
    // pkg/controller/backup_deletion_controller.go): wait, bounded, until it has ended.
    until_velero_done(client, &VELERO_BACKUP, &ns, &name, &BACKUP_RUNNING).await?;
    let requests = objects::list(client, &VELERO_REQUEST, Some(&ns), Some(&format!("velero.io/backup-name={name}"))).await?;
    if requests.iter().any(|r| r.str("/status/phase") != Some("Processed")) {
        return Ok(());
    }
    objects::create(client, &VELERO_REQUEST, Some(&ns), serde_json::json!({
        "metadata": {"generateName": format!("{name}-"), "namespace": ns, "labels": {RUN_LABEL: run, "velero.io/backup-name": name}},
        "spec": {"backupName": name},
    }))
    .await
    .map(|_| ())
}

/// Velero's objects live in Velero's namespace, not in a disposable one. A dead run's
/// temporary BackupStorageLocations, Secrets and Restores are deleted; its Backups are removed
/// with [`remove_velero_backup`]: through Velero with a `DeleteBackupRequest` (as `velero
/// backup delete` does, files first) when they are in a location this cluster writes, since
/// deleting the object alone would leave the files and Velero's backup sync would bring the
/// object back. Clusters without Velero have nothing to sweep here.
async fn sweep_velero(client: &kube::Client, runs: &mut Runs, out: &mut Swept) -> Result<(), kube::Error> {
    // Locations (and their credential copies) go before the Backups read through them, so
    // those are deleted as objects and never handed to a Velero that could reach the files.
    for (kind, what) in [(&VELERO_LOCATION, "BackupStorageLocation"), (&SECRET, "Secret"), (&VELERO_RESTORE, "Restore"), (&VELERO_BACKUP, "Backup")] {
        let Ok(found) = objects::list(client, kind, None, Some(RUN_LABEL)).await else { continue };
        for o in found {
            let (ns, name) = (o.object.metadata.namespace.clone().unwrap_or_default(), o.name().to_string());
            let run = o.object.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)).cloned().unwrap_or_default();
            if o.object.metadata.deletion_timestamp.is_some() || o.str("/status/phase") == Some("Deleting") {
                continue;
            }
            if runs.live(&run).await? {
                out.live.push(format!("{what} {ns}/{name} ({run})"));
                continue;
            }
            let done = if kind.kind == "Backup" { remove_velero_backup(client, &o, &run).await } else { objects::delete(client, kind, Some(&ns), &name).await };
            match done {
                Ok(()) => out.removed.push(format!("{what} {ns}/{name} ({run})")),
                Err(e) => out.failed.push(format!("{what} {ns}/{name} ({run}): {}", e.summary())),
            }
        }
    }
    Ok(())
}

fn to_offset(t: &k8s_openapi::jiff::Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Creates a namespace labelled as the run's and disposable (used by the checks' kit and tests).
pub async fn create_namespace(client: &kube::Client, name: &str, run: &str) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {DISPOSABLE_LABEL: "true", RUN_LABEL: run}}
    }))
    .expect("namespace object");
    api.create(&PostParams::default(), &ns).await.map(|_| ())
}

/// How long a new namespace may take to get its `default` ServiceAccount.
pub const SERVICE_ACCOUNT_WAIT: Duration = Duration::from_secs(30);

/// Waits (at most `within`) until namespace `ns` has its `default` ServiceAccount: `true`
/// once it does, `false` if it still has none. kube-controller-manager's serviceaccount
/// controller creates it shortly after the namespace (later when the controller is busy or
/// its watch has just been broken); until then the API server refuses every pod there
/// ("error looking up service account NS/default"). Kubernetes' own e2e framework waits the
/// same way (`WaitForDefaultServiceAccountInNamespace`) before it starts pods in a test
/// namespace.
pub async fn default_service_account(client: &kube::Client, ns: &str, within: Duration) -> Result<bool, kube::Error> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if api.get_opt("default").await?.is_some() {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200).min(deadline - tokio::time::Instant::now())).await;
    }
}

/// Why no pod can start in a namespace the run created.
pub fn no_service_account(ns: &str, within: Duration) -> String {
    format!(
        "namespace {ns} has no ServiceAccount default after {}s, so no pod can start there (kube-controller-manager's serviceaccount controller creates it)",
        within.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::json;

    use super::default_service_account;
    use crate::cluster::fake::FakeApi;

    const PATH: &str = "/api/v1/namespaces/pa-x/serviceaccounts/default";

    #[tokio::test]
    async fn a_namespace_is_ready_for_pods_once_its_default_service_account_exists() {
        // The controller creates it after the third look.
        let looks = Arc::new(AtomicUsize::new(0));
        let seen = looks.clone();
        let fake = FakeApi::new(move |path| {
            assert_eq!(path, PATH);
            (seen.fetch_add(1, Ordering::SeqCst) >= 2).then(|| (200, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "pa-x"}})))
        });
        assert!(default_service_account(&fake.client(), "pa-x", Duration::from_secs(5)).await.unwrap());
        assert_eq!(looks.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_namespace_without_its_service_account_is_reported_after_the_wait() {
        let fake = FakeApi::new(|_| None);
        let t = std::time::Instant::now();
        assert!(!default_service_account(&fake.client(), "pa-x", Duration::from_millis(500)).await.unwrap());
        assert!(t.elapsed() < Duration::from_secs(2), "bounded by the wait: {:?}", t.elapsed());
        assert!(fake.asked().len() >= 2, "looked again before giving up: {:?}", fake.asked());
        // A refusal to read is an error, not a missing account.
        let forbidden = FakeApi::new(|_| Some((403, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "serviceaccounts \"default\" is forbidden"}))));
        assert!(default_service_account(&forbidden.client(), "pa-x", Duration::from_millis(500)).await.is_err());
    }
}
