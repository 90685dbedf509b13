//! 7.2.9 "Failover tested": proven only by what a promotion of a standby leaves behind.
//!
//! - CloudNativePG always creates the first primary as instance serial 1: it refuses to
//!   create a primary once `status.latestGeneratedNode` is not 0 and names the pod
//!   `<cluster>-<serial>` (cloudnative-pg `internal/controller/cluster_create.go`,
//!   `createPrimaryInstance`, read at 016c52a9fe14). A `bootstrap.recovery` restore and a
//!   replica-cluster promotion both promote that first instance in place, so a
//!   `status.currentPrimary` other than `<cluster>-1` exists only after a standby was
//!   promoted: a failover or a switchover.
//! - The operator records the promotion as events on the Cluster: `FailingOver` and
//!   `FailoverTarget` (failover), `SwitchingOver` (primary on an unschedulable node),
//!   `Switchover` (switchover before a rolling update) — cloudnative-pg
//!   `internal/controller/replicas.go` (read at 00da6b3c5d47) and `cluster_upgrade.go`.
//!   Events expire (the API server's `--event-ttl`, 1 h by default), so they prove a
//!   recent test only; the primary's name stays.
//! - `status.timelineID > 1` alone proves nothing: `bootstrap.recovery` and a replica-cluster
//!   promotion start a new timeline without any failover (§14 [PG1]).

use k8s_openapi::api::core::v1::Event;
use serde_json::Value;

use crate::check::{Finding, Outcome};
use crate::cluster::objects::{Found, Kind};

/// CNPG event reasons of a failover.
pub(super) const FAILOVER_EVENTS: [&str; 2] = ["FailingOver", "FailoverTarget"];
/// CNPG event reasons of a switchover.
pub(super) const SWITCHOVER_EVENTS: [&str; 2] = ["SwitchingOver", "Switchover"];

/// The verdict on one Cluster, given the events recorded on it.
pub(super) fn judge_failover(c: &Found, kind: &Kind, events: &[Event]) -> Outcome {
    let object = c.describe(kind);
    let current = c.str("/status/currentPrimary").unwrap_or("");
    let target = c.str("/status/targetPrimary").unwrap_or("");
    if current.is_empty() || current != target {
        return Outcome::fail(format!("{object} status.currentPrimary"), format!("equal to status.targetPrimary {target:?} (failover finished)"), format!("{current:?}"));
    }
    let first = format!("{}-1", c.name());
    let timeline = c.get("/status/timelineID").and_then(Value::as_i64).unwrap_or(0);
    let since = c.str("/status/currentPrimaryTimestamp").map(|t| format!(" since {t}")).unwrap_or_default();
    let recorded: Vec<String> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(c.name()) && e.involved_object.kind.as_deref() == Some(kind.kind))
        .filter(|e| e.reason.as_deref().is_some_and(|r| FAILOVER_EVENTS.contains(&r) || SWITCHOVER_EVENTS.contains(&r)))
        .map(|e| format!("{} ({})", e.reason.clone().unwrap_or_default(), e.message.clone().unwrap_or_default()))
        .collect();
    let promoted = current != first;
    if !promoted && recorded.is_empty() {
        let note = if timeline > 1 { " — a new timeline without a promoted standby is no proof: a bootstrap.recovery restore or a replica-cluster promotion also starts one" } else { "" };
        return Outcome::Fail {
            findings: vec![Finding::new(
                format!("{object} status.currentPrimary"),
                format!("a promoted standby: a primary other than the first instance {first}, or a CloudNativePG failover/switchover event on the Cluster ({})", [FAILOVER_EVENTS, SWITCHOVER_EVENTS].concat().join(", ")),
                format!("{current:?} (the first instance), timeline {timeline}, no such event{note}"),
            )],
        };
    }
    let mut evidence = format!("{object}: primary {current}{since}, timeline {timeline}");
    if promoted {
        evidence.push_str(&format!("; a standby was promoted (the first primary was {first})"));
    }
    if !recorded.is_empty() {
        let more = recorded.len().saturating_sub(2);
        evidence.push_str(&format!("; events: {}{}", recorded.iter().take(2).cloned().collect::<Vec<_>>().join(", "), if more > 0 { format!(" and {more} more") } else { String::new() }));
    }
    Outcome::pass(evidence)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ObjectReference;
    use kube::api::DynamicObject;
    use serde_json::json;

    use super::*;
    use crate::check::Verdict;

    const PG: Kind = Kind::namespaced("postgresql.cnpg.io", &["v1"], "Cluster");

    /// A Cluster's status as CNPG writes it (§14 [PG1]).
    fn cluster(current: &str, target: &str, timeline: i64, recovery: bool) -> Found {
        let bootstrap = if recovery { json!({"recovery": {"source": "postgres-shared-backup"}}) } else { json!({"initdb": {"database": "app"}}) };
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "pg", "namespace": "databases"},
            "spec": {"instances": 3, "bootstrap": bootstrap},
            "status": {"currentPrimary": current, "targetPrimary": target, "timelineID": timeline, "currentPrimaryTimestamp": "2026-11-30T10:00:00.000000Z", "latestGeneratedNode": 3},
        }))
        .unwrap();
        Found { object, api_version: "postgresql.cnpg.io/v1".into() }
    }

    fn event(reason: &str, message: &str) -> Event {
        Event {
            involved_object: ObjectReference { kind: Some("Cluster".into()), name: Some("pg".into()), namespace: Some("databases".into()), ..Default::default() },
            reason: Some(reason.into()),
            message: Some(message.into()),
            ..Default::default()
        }
    }

    /// main's rule: a timeline above 1 and a settled primary.
    fn old_rule_passes(c: &Found) -> bool {
        c.get("/status/timelineID").and_then(Value::as_i64).is_some_and(|t| t > 1) && c.str("/status/currentPrimary") == c.str("/status/targetPrimary")
    }

    #[test]
    fn a_restore_starts_a_new_timeline_without_a_failover() {
        let restored = cluster("pg-1", "pg-1", 2, true);
        assert!(old_rule_passes(&restored), "main's rule takes the restore's timeline for a failover");
        let o = judge_failover(&restored, &PG, &[]);
        assert_eq!(o.verdict(), Verdict::Fail);
        let text = o.summary();
        assert!(text.starts_with("Cluster databases/pg (postgresql.cnpg.io/v1) status.currentPrimary: expected a promoted standby: a primary other than the first instance pg-1"), "{text}");
        assert!(text.contains("observed \"pg-1\" (the first instance), timeline 2, no such event — a new timeline without a promoted standby is no proof"), "{text}");
        // Unrelated events on the Cluster are no proof either.
        assert_eq!(judge_failover(&restored, &PG, &[event("CreatingInstance", "Primary instance (from backup)")]).verdict(), Verdict::Fail);
    }

    #[test]
    fn a_promoted_standby_or_a_failover_event_proves_it() {
        let o = judge_failover(&cluster("pg-2", "pg-2", 2, false), &PG, &[]);
        assert_eq!(o.summary(), "Cluster databases/pg (postgresql.cnpg.io/v1): primary pg-2 since 2026-11-30T10:00:00.000000Z, timeline 2; a standby was promoted (the first primary was pg-1)");
        // Failed over and back to pg-1: the events are the proof.
        let back = cluster("pg-1", "pg-1", 3, false);
        let o = judge_failover(&back, &PG, &[event("FailingOver", "Current primary isn't healthy, initiating a failover from pg-2")]);
        assert_eq!(o.verdict(), Verdict::Pass, "{}", o.summary());
        assert!(o.summary().ends_with("; events: FailingOver (Current primary isn't healthy, initiating a failover from pg-2)"), "{}", o.summary());
    }

    #[test]
    fn a_pending_switchover_fails() {
        let o = judge_failover(&cluster("pg-1", "pg-2", 1, false), &PG, &[event("Switchover", "Initiating switchover to pg-2 to upgrade pg-1")]);
        assert_eq!(o.summary(), "Cluster databases/pg (postgresql.cnpg.io/v1) status.currentPrimary: expected equal to status.targetPrimary \"pg-2\" (failover finished), observed \"pg-1\"");
    }
}
