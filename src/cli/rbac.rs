//! `platform-acceptance rbac`: the roles the harness needs, as manifests to apply.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};

use crate::cluster::rbac::{self, RbacAccess};

#[derive(Args, Debug)]
#[command(
    long_about = "Prints the manifests that let the harness run with least privilege: a Namespace and \
ServiceAccount, the ClusterRole platform-acceptance-read (what the cluster and data-plane checks read, \
Secrets included) bound to it, and with --allow-writes the ClusterRole platform-acceptance-round-trips \
(creating and deleting the round trips' objects, Velero Backups and Restores, commands in Cilium agent \
pods, the data-plane relay's pods and port-forwards: close to cluster-admin) bound to it as well. Apply them to every cluster, then try them from an \
admin kubeconfig with `run --as system:serviceaccount:NAMESPACE:NAME` before handing out a token.\n\n\
The accesses come from a table recorded from runs on the simulation (a test runs the whole suite as \
this ServiceAccount and fails on any Forbidden); with --from, from the `api_requests` of JSON reports \
of your own runs instead.",
    after_help = "Examples:\n  \
platform-acceptance rbac | kubectl --context infra apply -f -\n  \
platform-acceptance rbac --allow-writes --service-account ops/acceptance > rbac.yaml\n  \
platform-acceptance rbac --from out/report.json          # what one run asked for\n\n\
A kubeconfig for the ServiceAccount, per cluster:\n  \
kubectl -n platform-acceptance create token harness --duration=24h   # the token\n  \
kubectl config set-credentials pa-harness --token=TOKEN\n  \
kubectl config set-context infra --cluster=CLUSTER --user=pa-harness"
)]
pub struct RbacArgs {
    /// Also grant what round trips (--allow-writes) do.
    #[arg(long)]
    pub allow_writes: bool,
    /// The ServiceAccount to bind, NAMESPACE/NAME.
    #[arg(long, default_value = "platform-acceptance/harness", value_name = "NAMESPACE/NAME")]
    pub service_account: String,
    /// JSON report of `run --json`: grant what its runs asked for (repeatable) instead of the built-in table.
    #[arg(long, value_name = "REPORT")]
    pub from: Vec<PathBuf>,
}

/// The accesses of JSON reports (`summary.api_requests.by_access`).
fn from_reports(paths: &[PathBuf]) -> Result<Vec<RbacAccess>, String> {
    let mut out = std::collections::BTreeSet::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        let report: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not a JSON report of `run --json`: {e}", p.display()))?;
        let by = report.pointer("/summary/api_requests/by_access").and_then(Value::as_object).ok_or_else(|| format!("{} has no summary.api_requests.by_access (not a report of a run against clusters?)", p.display()))?;
        out.extend(by.keys().filter_map(|k| RbacAccess::parse(k)));
    }
    Ok(out.into_iter().collect())
}

/// The manifests, as YAML documents.
pub fn manifests(args: &RbacArgs) -> Result<String, String> {
    let (ns, name) = args.service_account.split_once('/').filter(|(n, s)| !n.is_empty() && !s.is_empty()).ok_or_else(|| format!("--service-account {:?}: expected NAMESPACE/NAME", args.service_account))?;
    let accesses = if args.from.is_empty() { rbac::accesses() } else { from_reports(&args.from)? };
    let [read, trips] = rbac::roles(&accesses);
    let labels = json!({"app.kubernetes.io/name": "platform-acceptance"});
    let binding = |role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": format!("{role}-{ns}-{name}"), "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": [{"kind": "ServiceAccount", "namespace": ns, "name": name}]})
    };
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "labels": labels}}),
        read,
        binding(rbac::READ_ROLE),
    ];
    if args.allow_writes {
        docs.push(trips);
        docs.push(binding(rbac::ROUND_TRIP_ROLE));
    }
    let mut out = format!(
        "# platform-acceptance: least-privilege roles for ServiceAccount {ns}/{name} ({} accesses{})\n",
        accesses.len(),
        if args.allow_writes { ", round trips included" } else { "; round trips (--allow-writes) not granted" }
    );
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&d).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
