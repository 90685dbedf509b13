//! Velero Backups read as history: the newest *finished* Backup is the verdict, the ones
//! still running are reported as in progress.
//!
//! Phases (§21 [VE1], vmware-tanzu/velero `pkg/apis/velero/v1/backup_types.go`, `BackupPhase`):
//! a Backup is in progress from `New` (or no phase yet) through `Queued` and `ReadyToStart`
//! (v1.18 backup queue), `InProgress`, `WaitingForPluginOperations(PartiallyFailed)` and
//! `Finalizing(PartiallyFailed)` — "the backup is not usable yet" — and finished in
//! `Completed`, `PartiallyFailed`, `Failed` or `FailedValidation`. `Deleting` Backups are
//! being removed (expired or deleted) and are neither.

use crate::cluster::objects::Found;

/// Phases of a Backup that is still being taken (see the module documentation).
pub(super) const IN_PROGRESS: [&str; 9] =
    ["", "New", "Queued", "ReadyToStart", "InProgress", "WaitingForPluginOperations", "WaitingForPluginOperationsPartiallyFailed", "Finalizing", "FinalizingPartiallyFailed"];

/// Phases of a Backup that ran to an end.
pub(super) const FINISHED: [&str; 4] = ["Completed", "PartiallyFailed", "Failed", "FailedValidation"];

/// A Backup's phase (`New` when the controller has not written one yet).
pub(super) fn phase(b: &Found) -> &str {
    b.str("/status/phase").filter(|p| !p.is_empty()).unwrap_or("New")
}

fn created(b: &Found) -> i64 {
    b.object.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(0)
}

/// The Backups of one Schedule (or namespace), split the way a person reads them.
pub(super) struct History<'a> {
    /// The newest Backup that ran to an end, whatever its result.
    pub newest_finished: Option<&'a Found>,
    /// Backups still being taken, newest first.
    pub in_progress: Vec<&'a Found>,
}

impl<'a> History<'a> {
    pub fn of(backups: &'a [Found]) -> Self {
        let newest_finished = backups.iter().filter(|b| FINISHED.contains(&phase(b))).max_by_key(|b| created(b));
        let mut in_progress: Vec<&Found> = backups.iter().filter(|b| IN_PROGRESS.contains(&b.str("/status/phase").unwrap_or(""))).collect();
        in_progress.sort_by_key(|b| std::cmp::Reverse(created(b)));
        History { newest_finished, in_progress }
    }

    /// `x (InProgress), y (Finalizing)`: the first three, then a count.
    pub fn in_progress_text(&self) -> String {
        let mut shown: Vec<String> = self.in_progress.iter().take(3).map(|b| format!("{} ({})", b.name(), phase(b))).collect();
        if self.in_progress.len() > 3 {
            shown.push(format!("and {} more", self.in_progress.len() - 3));
        }
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use kube::api::DynamicObject;
    use serde_json::json;

    use super::*;

    /// A Backup as Velero writes it (§21 [VE1]: status.phase, startTimestamp, completionTimestamp).
    pub(crate) fn backup(name: &str, created: &str, phase: Option<&str>) -> Found {
        let mut status = json!({"startTimestamp": created});
        if let Some(p) = phase {
            status["phase"] = json!(p);
        }
        if phase == Some("Completed") {
            status["completionTimestamp"] = json!(created);
        }
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": "velero", "creationTimestamp": created, "labels": {"velero.io/schedule-name": "weekly"}},
            "spec": {"storageLocation": "default"},
            "status": status,
        }))
        .unwrap();
        Found { object, api_version: "velero.io/v1".into() }
    }

    #[test]
    fn newest_finished_backup_is_judged_and_running_ones_reported() {
        let backups = vec![
            backup("weekly-20261116", "2026-11-16T03:00:00Z", Some("Failed")),
            backup("weekly-20261123", "2026-11-23T03:00:00Z", Some("Completed")),
            backup("weekly-20261130", "2026-11-30T03:00:00Z", Some("WaitingForPluginOperations")),
            backup("weekly-20261201", "2026-12-01T03:00:00Z", None),
        ];
        // main judged the newest by creationTimestamp: a Backup still being taken.
        let newest_created = backups.iter().max_by_key(|b| created(b)).unwrap();
        assert_ne!(phase(newest_created), "Completed", "main's rule would fail here");
        let h = History::of(&backups);
        assert_eq!(h.newest_finished.map(Found::name), Some("weekly-20261123"));
        assert_eq!(h.in_progress_text(), "weekly-20261201 (New), weekly-20261130 (WaitingForPluginOperations)");
    }

    #[test]
    fn deleting_backups_are_neither_and_a_failed_newest_is_what_counts() {
        let backups = vec![
            backup("weekly-1", "2026-11-16T03:00:00Z", Some("Completed")),
            backup("weekly-2", "2026-11-23T03:00:00Z", Some("PartiallyFailed")),
            backup("weekly-0", "2026-11-09T03:00:00Z", Some("Deleting")),
        ];
        let h = History::of(&backups);
        assert_eq!(h.newest_finished.map(|b| (b.name(), phase(b))), Some(("weekly-2", "PartiallyFailed")));
        assert!(h.in_progress.is_empty());
    }
}
