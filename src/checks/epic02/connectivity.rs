//! 2.3.5 "Cross-cluster connectivity verified", as traffic over the mesh's own exports:
//! every valid ServiceExport of one cluster must be imported by every other cluster
//! (Cilium's MCS controller creates the ServiceImport only from state it reads from the
//! peer over ClusterMesh, §2.4 [C6]), and from each other cluster at least one exported
//! service must answer a TCP connection by its `…svc.clusterset.local` name, resolved and
//! connected from inside that cluster (the relay). A failure names the hop: import, DNS,
//! connect. Exports that do not answer while another one does are named in the evidence:
//! the criterion is that the clusters reach each other, each service's own criterion says
//! whether it works.
//!
//! Writes nothing itself; the relay pod it connects through is the run's (so without
//! `--allow-writes` against real clusters only the import hop is proven, and the evidence
//! says so).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::check::{CheckContext, CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::cluster::objects;
use crate::repo::scalar_text;

/// One exported service as another cluster imports it.
struct Imported {
    from: String,
    to: String,
    host: String,
    port: Option<u16>,
}

pub(super) async fn peer_exports_reached(ctx: Ctx) -> CheckResult<Outcome> {
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    let mut findings = vec![];
    let mut imported = vec![];
    let mut exports_total = 0;
    // The API versions read, for the evidence (the MCS API moves: v1alpha1, v1beta1).
    let mut versions = BTreeSet::new();
    for (cluster, client) in target.peers.iter() {
        let exports = match objects::list(client, &SERVICE_EXPORT, None, None).await {
            Ok(e) => e,
            Err(Outcome::Fail { findings: f }) => {
                findings.extend(f.into_iter().map(|f| Finding::new(format!("{} (cluster {cluster})", f.object), f.expected, f.observed)));
                continue;
            }
            Err(o) => return Err(o),
        };
        for export in exports.iter().filter(|e| e.condition("Valid").is_none_or(|c| c.status != "False")) {
            exports_total += 1;
            versions.insert(format!("ServiceExport {} on {cluster}", export.api_version));
            let ns = export.namespace().unwrap_or("default");
            for (other, other_client) in target.peers.iter().filter(|(c, _)| *c != cluster) {
                let object = format!("ServiceImport {ns}/{} (cluster {other})", export.name());
                match objects::get(other_client, &SERVICE_IMPORT, Some(ns), export.name()).await {
                    Ok(Some(import)) => {
                        versions.insert(format!("ServiceImport {} on {other}", import.api_version));
                        let from: Vec<String> = import.get("/status/clusters").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c.get("cluster").map(scalar_text)).collect();
                        if !from.is_empty() && !from.contains(cluster) {
                            findings.push(Finding::new(object, format!("status.clusters to include {cluster}"), format!("{from:?}")));
                        } else {
                            let port = import.get("/spec/ports/0/port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
                            imported.push(Imported { from: cluster.clone(), to: other.clone(), host: format!("{}.{ns}.svc.clusterset.local", export.name()), port });
                        }
                    }
                    Ok(None) => findings.push(Finding::new(object, format!("imported from the ServiceExport on cluster {cluster} (ClusterMesh MCS sync)"), "not found")),
                    Err(Outcome::Fail { findings: f }) => findings.extend(f.into_iter().map(|f| Finding::new(format!("{} (cluster {other})", f.object), f.expected, f.observed))),
                    Err(o) => return Err(o),
                }
            }
        }
    }
    if exports_total == 0 && findings.is_empty() {
        return Err(Outcome::fail("ServiceExports (all clusters)", "at least one exported service whose import shows the mesh syncs", "none"));
    }
    let read: Vec<String> = versions.into_iter().collect();
    let mut evidence = vec![format!("{exports_total} ServiceExports, {} imports on the peer clusters (read {})", imported.len(), read.join(", "))];
    evidence.extend(traffic(&ctx, &imported, &mut findings).await?);
    Ok(Outcome::from_findings(findings, evidence.join("; ")))
}

/// For each direction (exporting cluster -> importing cluster), connects to the imported
/// names from inside the importing cluster until one answers.
async fn traffic(ctx: &CheckContext, imported: &[Imported], findings: &mut Vec<Finding>) -> CheckResult<Vec<String>> {
    let directions: BTreeSet<(&str, &str)> = imported.iter().map(|i| (i.from.as_str(), i.to.as_str())).collect();
    let mut evidence = vec![];
    for (from, to) in directions {
        let mut failed = vec![];
        let mut silent = 0;
        let mut answered = None;
        for i in imported.iter().filter(|i| i.from == from && i.to == to) {
            let Some(port) = i.port else {
                failed.push(format!("{}: no port in the ServiceImport", i.host));
                continue;
            };
            match connect(ctx, to, &i.host, port).await {
                Ok(()) => {
                    answered = Some(format!("{}:{port}", i.host));
                    break;
                }
                Err(Outcome::Skip { reason }) => {
                    evidence.push(format!("no traffic sent ({reason})"));
                    return Ok(evidence);
                }
                Err(o) => {
                    silent += usize::from(matches!(o, Outcome::Error { .. }));
                    failed.push(o.details().join("; "));
                }
            }
        }
        let unreachable = if failed.is_empty() { String::new() } else { format!(" (not answering: {})", first_of(&failed, 3)) };
        match answered {
            Some(name) => evidence.push(format!("from {to}: {name} of {from} answered{unreachable}")),
            // Nothing answered at all, not even a refusal: not evaluated.
            None if silent == failed.len() => return Err(Outcome::error(format!("services exported by {from}, from inside cluster {to}: {}; not evaluated", first_of(&failed, 1)))),
            None => findings.push(Finding::new(
                format!("services exported by {from}, from inside cluster {to}"),
                "at least one answers a TCP connection by its clusterset.local name",
                first_of(&failed, 3),
            )),
        }
    }
    Ok(evidence)
}

/// The first `n` of `lines`, and how many more there are.
fn first_of(lines: &[String], n: usize) -> String {
    let shown = lines.iter().take(n).cloned().collect::<Vec<_>>().join("; ");
    match lines.len().saturating_sub(n) {
        0 => shown,
        more => format!("{shown}; and {more} more"),
    }
}

/// Resolves `host` as cluster `cluster` does and opens a TCP connection to it from there.
async fn connect(ctx: &CheckContext, cluster: &str, host: &str, port: u16) -> Result<(), Outcome> {
    let addr = ctx.resolve_in(cluster, host, port).await?;
    match tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => {
            ctx.reached(addr);
            Ok(())
        }
        Ok(Err(e)) => Err(ctx.exchange_failed(addr, format!("{host}:{port}"), "a TCP connection", crate::errline::Failure::unreachable(e.to_string()))),
        Err(_) => Err(ctx.exchange_failed(addr, format!("{host}:{port}"), "a TCP connection", crate::errline::Failure::no_answer("no answer within 10s"))),
    }
}
