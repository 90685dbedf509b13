//! Least privilege for the harness: every API access the checks make, and the two
//! ClusterRoles that grant exactly those (`platform-acceptance rbac` prints them).
//!
//! The accesses are a table (`rbac-accesses.txt` next to this file) recorded from runs on
//! the simulation; `tests/sim_rbac.rs` runs the whole suite as a ServiceAccount bound to
//! these roles and fails on any Forbidden or on an access the table lacks.
//!
//! - [`READ_ROLE`]: what the cluster and data-plane checks read. Every resource read at all
//!   may be read with `get`, `list` and `watch` (the read cache lists where a check gets),
//!   except Secrets: only the verbs the checks use on them.
//! - [`ROUND_TRIP_ROLE`]: what `--allow-writes` adds: creating and deleting the round
//!   trips' objects (disposable namespaces and what goes in them, Certificates, Velero
//!   Backups and Restores) and `create pods/exec` (commands in Cilium agents). Creating
//!   Velero Restores or running commands in agent pods is close to cluster-admin.
//!
//! ```
//! use platform_acceptance::cluster::rbac::{accesses, roles};
//! let all = accesses();
//! assert!(all.iter().any(|a| a.verb == "list" && a.group == "apps" && a.resource == "deployments"));
//! let [read, round_trips] = roles(&all);
//! assert_eq!(read["metadata"]["name"], "platform-acceptance-read");
//! assert_eq!(round_trips["metadata"]["name"], "platform-acceptance-round-trips");
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// Name of the read-only ClusterRole.
pub const READ_ROLE: &str = "platform-acceptance-read";
/// Name of the ClusterRole `--allow-writes` needs in addition.
pub const ROUND_TRIP_ROLE: &str = "platform-acceptance-round-trips";

const TABLE: &str = include_str!("rbac-accesses.txt");

/// One access: a verb on a resource of an API group (`""` for core), or on a
/// non-resource path (`resource` starts with `/`, `group` empty).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RbacAccess {
    pub verb: String,
    pub group: String,
    pub resource: String,
    /// Granted by [`ROUND_TRIP_ROLE`] even when a read (what `sweep` reads to clean up).
    pub round_trip: bool,
}

impl RbacAccess {
    /// `list apps/deployments`, `get secrets`, `get /version`; a trailing ` on <cluster>`
    /// (the form of `api_requests.by_access`) is dropped. `None` for API discovery
    /// (`/api`, `/apis`, a group's document) and for text of another shape.
    pub fn parse(text: &str) -> Option<RbacAccess> {
        let text = text.split(" on ").next()?.trim();
        let (verb, what) = text.split_once(' ')?;
        let discovery = what.ends_with("(discovery)") || what == "/api" || what == "/apis" || what.starts_with("/api/") || what.starts_with("/apis/");
        if discovery || what.contains(' ') {
            return None;
        }
        let (group, resource) = match what.strip_prefix('/') {
            Some(_) => ("", what),
            // `pods/exec` is core; `apps/deployments` is group/resource: a group has a dot or is one of the
            // few built-in groups without one.
            None => match what.split_once('/') {
                Some((g, r)) if g.contains('.') || ["apps", "batch", "policy", "autoscaling"].contains(&g) => (g, r),
                _ => ("", what),
            },
        };
        Some(RbacAccess { verb: verb.into(), group: group.into(), resource: resource.into(), round_trip: false })
    }

    fn is_read(&self) -> bool {
        matches!(self.verb.as_str(), "get" | "list" | "watch") && !self.round_trip
    }
}

impl std::fmt::Display for RbacAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.group.as_str() {
            "" => write!(f, "{} {}", self.verb, self.resource),
            g => write!(f, "{} {g}/{}", self.verb, self.resource),
        }
    }
}

/// The accesses of the table, sorted. A line ending in `[round-trips]` is granted by
/// [`ROUND_TRIP_ROLE`] even when it reads.
pub fn accesses() -> Vec<RbacAccess> {
    let lines = TABLE.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let set: BTreeSet<RbacAccess> = lines
        .filter_map(|l| match l.strip_suffix("[round-trips]") {
            Some(l) => RbacAccess::parse(l.trim()).map(|a| RbacAccess { round_trip: true, ..a }),
            None => RbacAccess::parse(l),
        })
        .collect();
    set.into_iter().collect()
}

/// The two ClusterRoles granting `accesses`: [`READ_ROLE`] and [`ROUND_TRIP_ROLE`].
pub fn roles(accesses: &[RbacAccess]) -> [Value; 2] {
    let mut read: BTreeMap<(String, Vec<String>), BTreeSet<String>> = BTreeMap::new();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let mut secret_verbs: BTreeSet<String> = BTreeSet::new();
    let mut writes: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for a in accesses {
        match (a.resource.starts_with('/'), a.is_read()) {
            (false, false) if a.round_trip => {
                writes.entry((a.group.clone(), a.resource.clone())).or_default().insert(a.verb.clone());
            }
            (true, _) => {
                paths.insert(a.resource.clone());
            }
            (false, true) if a.group.is_empty() && a.resource == "secrets" => {
                secret_verbs.insert(a.verb.clone());
            }
            (false, true) => {
                read.entry((a.group.clone(), vec!["get".into(), "list".into(), "watch".into()])).or_default().insert(a.resource.clone());
            }
            (false, false) => {
                writes.entry((a.group.clone(), a.resource.clone())).or_default().insert(a.verb.clone());
            }
        }
    }
    let mut read_rules: Vec<Value> = read.into_iter().map(|((g, verbs), res)| json!({"apiGroups": [g], "resources": res, "verbs": verbs})).collect();
    if !secret_verbs.is_empty() {
        read_rules.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": secret_verbs}));
    }
    if !paths.is_empty() {
        read_rules.push(json!({"nonResourceURLs": paths, "verbs": ["get"]}));
    }
    // One rule per group and verb set.
    let mut grouped: BTreeMap<(String, Vec<String>), BTreeSet<String>> = BTreeMap::new();
    for ((g, r), verbs) in writes {
        grouped.entry((g, verbs.into_iter().collect())).or_default().insert(r);
    }
    let write_rules: Vec<Value> = grouped.into_iter().map(|((g, verbs), res)| json!({"apiGroups": [g], "resources": res, "verbs": verbs})).collect();
    let role = |name: &str, what: &str, rules: Vec<Value>| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "platform-acceptance"}, "annotations": {"platform-acceptance/grants": what}},
               "rules": rules})
    };
    [
        role(READ_ROLE, "what the cluster and data-plane checks read (Secrets included: the data-plane checks log in with the platform's credentials)", read_rules),
        role(ROUND_TRIP_ROLE, "what --allow-writes adds: the round trips' objects, Velero Backups and Restores, commands in Cilium agent pods; close to cluster-admin", write_rules),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `rules` (of a ClusterRole) grant `access`.
    fn grants(rules: &[Value], access: &RbacAccess) -> bool {
        let has = |v: &Value, key: &str, want: &str| v.get(key).and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x == want || x == "*"));
        rules.iter().any(|r| {
            let verb = has(r, "verbs", &access.verb);
            match access.resource.starts_with('/') {
                true => verb && has(r, "nonResourceURLs", &access.resource),
                false => verb && has(r, "apiGroups", &access.group) && has(r, "resources", &access.resource),
            }
        })
    }

    #[test]
    fn accesses_read_as_the_report_writes_them() {
        let a = |s: &str| RbacAccess::parse(s).map(|a| (a.verb, a.group, a.resource));
        assert_eq!(a("list apps/deployments on infra"), Some(("list".into(), "apps".into(), "deployments".into())));
        assert_eq!(a("get secrets on apps"), Some(("get".into(), "".into(), "secrets".into())));
        assert_eq!(a("create pods/exec"), Some(("create".into(), "".into(), "pods/exec".into())));
        assert_eq!(a("create velero.io/backups"), Some(("create".into(), "velero.io".into(), "backups".into())));
        assert_eq!(a("get /version on infra"), Some(("get".into(), "".into(), "/version".into())));
        assert_eq!(a("get velero.io/(discovery) on infra"), None);
        assert_eq!(a("get /apis on infra"), None, "aggregated discovery");
    }

    #[test]
    fn the_roles_grant_every_access_of_the_table_and_nothing_it_lacks() {
        let all = accesses();
        let [read, trips] = roles(&all);
        let rules: Vec<Value> = [&read, &trips].iter().flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default()).collect();
        for a in &all {
            assert!(grants(&rules, a), "{a} not granted");
        }
        let read_rules = read["rules"].as_array().unwrap();
        let writes = all.iter().filter(|a| !matches!(a.verb.as_str(), "get" | "list" | "watch"));
        assert!(!writes.clone().any(|a| grants(read_rules, a)), "the read role writes nothing");
        assert!(grants(read_rules, &RbacAccess::parse("watch apps/deployments").unwrap()), "a resource read may be listed and watched");
        assert!(!grants(read_rules, &RbacAccess::parse("list secrets").unwrap()), "Secrets only as the checks read them");
        assert!(grants(trips["rules"].as_array().unwrap(), &RbacAccess::parse("list secrets").unwrap()), "sweep finds a dead run's Secrets");
        assert!(!grants(&rules, &RbacAccess::parse("delete nodes").unwrap()));
        assert!(grants(trips["rules"].as_array().unwrap(), &RbacAccess::parse("create pods/exec").unwrap()));
    }
}
