//! "Test replication working" (10.2.2): VolSync backs up and restores. The test
//! ReplicationSource synced and its repository holds snapshots (as for 10.1.6); then a
//! ReplicationDestination in a disposable namespace restores that restic repository into a new
//! volume, and what it restored is the repository's newest snapshot.
//!
//! Writes (declared with `.writes()`): a disposable namespace with a copy of the restic
//! repository Secret (never shown) and the ReplicationDestination; the volume VolSync
//! provisions for it goes with the namespace.
//!
//! Fields (§20 [VS2][VS3], volsync `api/v1alpha1/replicationdestination_types.go`): spec
//! `trigger.manual` starts one sync, `restic.{repository, copyMethod, capacity, accessModes,
//! storageClassName}`; status `lastManualSync` (set to the trigger when that sync is done),
//! `latestMoverStatus.{result, logs}` (the mover's `restic restore` output, which names the
//! snapshot: `restoring <Snapshot 1a2b3c4d of [/data] ...>`) and `latestImage` (the volume).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::live::restic_snapshots;
use crate::check::{CheckResult, Ctx, IntoOutcome, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::lease::RUN_LABEL;
use crate::cluster::objects::{self as kobjects, Kind};

const REPLICATION_DESTINATION: Kind = Kind::namespaced("volsync.backube", &["v1alpha1"], "ReplicationDestination");
const NAME: &str = "pa-restore";
/// How long the mover may take: image pull, repository check, restore.
pub(super) const RESTORE_WAIT: Duration = Duration::from_secs(300);

/// 10.2.2: the test ReplicationSource backs up (as 10.1.6 judges it), and a
/// ReplicationDestination restores the newest snapshot of its repository.
pub(super) async fn volsync_replication_works(ctx: Ctx) -> CheckResult<Outcome> {
    let source = super::live::volsync_backups_succeed(ctx.clone()).await.into_outcome();
    if source.verdict() != crate::check::Verdict::Pass {
        return Ok(source);
    }
    Ok(Outcome::all([source, volsync_restore(ctx).await.into_outcome()]))
}

async fn volsync_restore(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let r = rendered(&ctx)?;
    let Some(rs) = objects(&r, "volsync.backube", "ReplicationSource").into_iter().next().cloned() else {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "a ReplicationSource in the repository's manifests (its repository is restored)", "none"));
    };
    let (ns, secret) = (rs.namespace().unwrap_or("default").to_string(), rs.str("/spec/restic/repository").unwrap_or_default().to_string());
    let (snapshots, where_) = restic_snapshots(&ctx, client, &ns, &secret).await?;
    let Some((newest, _)) = snapshots.iter().max_by_key(|(_, t)| *t) else {
        return Err(Outcome::fail(where_, "a snapshot to restore", "no snapshots"));
    };
    let newest_id = newest.rsplit('/').next().unwrap_or_default().to_string();

    let dst = disposable_namespace(&ctx, client, "volsync").await?;
    copy_secret(client, &ns, &secret, &dst).await?;
    kobjects::create(client, &REPLICATION_DESTINATION, Some(&dst), json!({
        "metadata": {"name": NAME, "namespace": dst, "labels": {RUN_LABEL: ctx.run}},
        "spec": {"trigger": {"manual": ctx.run}, "restic": {
            "repository": secret, "copyMethod": "Direct", "capacity": "1Gi", "accessModes": ["ReadWriteOnce"],
            "storageClassName": rs.get("/spec/restic/storageClassName"), "moverSecurityContext": rs.get("/spec/restic/moverSecurityContext"),
        }},
    }))
    .await?;
    let object = format!("ReplicationDestination {dst}/{NAME} (cluster {}) from {}", ctx.cluster, where_);
    let run = ctx.run.clone();
    let done = wait::object(&ctx, client, &REPLICATION_DESTINATION, Some(&dst), NAME, RESTORE_WAIT, move |d| d.str("/status/lastManualSync") == Some(run.as_str())).await?;
    let Some(d) = done else {
        let state = kobjects::get(client, &REPLICATION_DESTINATION, Some(&dst), NAME).await?.and_then(|d| d.condition("Synchronizing")).map(|c| format!("Synchronizing={} ({}: {})", c.status, c.reason, c.message));
        return Err(Outcome::fail(object, format!("the manual sync done within {}s", RESTORE_WAIT.as_secs()), state.unwrap_or("no status (is VolSync's controller running?)".into())));
    };
    let logs = d.str("/status/latestMoverStatus/logs").unwrap_or("");
    if d.str("/status/latestMoverStatus/result") != Some("Successful") {
        return Err(Outcome::fail(object, "latestMoverStatus.result Successful", format!("{:?}: {}", d.str("/status/latestMoverStatus/result").unwrap_or("none"), last_line(logs))));
    }
    match restored_snapshot(logs) {
        Some(id) if newest_id.starts_with(id) => Ok(Outcome::pass(format!(
            "{object}: restored snapshot {id} (the repository's newest of {}) into {}",
            snapshots.len(),
            d.str("/status/latestImage/name").map(|n| format!("PVC {n}")).unwrap_or("its volume".into())
        ))),
        Some(id) => Err(Outcome::fail(object, format!("the newest snapshot {}", &newest_id[..newest_id.len().min(8)]), format!("snapshot {id} restored"))),
        None => Err(Outcome::fail(object, "the mover's log naming the snapshot restored", format!("no \"restoring <Snapshot ...>\" line: {}", last_line(logs)))),
    }
}

/// The repository Secret, copied into the disposable namespace (VolSync reads it from the
/// ReplicationDestination's namespace).
async fn copy_secret(client: &kube::Client, ns: &str, name: &str, dst: &str) -> CheckResult<()> {
    let s = Api::<Secret>::namespaced(client.clone(), ns).get(name).await.map_err(|e| crate::cluster::api_error(&format!("get Secret {ns}/{name}"), e))?;
    let copy = Secret { metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() }, data: s.data, ..Default::default() };
    Api::<Secret>::namespaced(client.clone(), dst).create(&PostParams::default(), &copy).await.map_err(|e| crate::cluster::api_error(&format!("create Secret {dst}/{name}"), e))?;
    Ok(())
}

/// The short id in restic's `restoring <Snapshot 1a2b3c4d of [/data] at ...>` line.
fn restored_snapshot(logs: &str) -> Option<&str> {
    let marker = ["restoring <Snapshot ", "restoring snapshot "].into_iter().find(|m| logs.contains(m))?;
    let rest = &logs[logs.find(marker)? + marker.len()..];
    let id = rest.split_whitespace().next()?;
    (id.len() >= 8 && id.chars().all(|c| c.is_ascii_hexdigit())).then_some(id)
}

/// The mover log's last non-empty line, bounded.
fn last_line(logs: &str) -> String {
    let line = logs.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no log");
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tail VolSync keeps of a restic mover's restore (mover-restic `entry.sh`: `restic restore`).
    const LOGS: &str = "== Checking directory for content ===\n== Restoring ===\nrestoring <Snapshot 6f0c9a1e of [/data] at 2026-11-30 18:00:04.12 +0000 UTC by @volsync> to .\nSummary: Restored 3 files/dirs (12 B) in 0:00\n=== Done ===";

    #[test]
    fn the_restored_snapshot_is_read_from_the_movers_log() {
        assert_eq!(restored_snapshot(LOGS), Some("6f0c9a1e"));
        assert_eq!(restored_snapshot("=== Done ==="), None);
        assert_eq!(restored_snapshot("restoring <Snapshot latest of"), None, "not an id");
        assert_eq!(restored_snapshot("restoring snapshot 6f0c9a1e of [/data] at ..."), Some("6f0c9a1e"));
        assert_eq!(last_line(LOGS), "=== Done ===");
    }
}
