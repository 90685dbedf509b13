//! EPIC-1 cluster and data-plane checks: the nodes of each cluster at their documented
//! addresses, the API servers healthy, one kubeconfig for all clusters, the pre-CNI
//! NotReady state, disjoint podCIDRs, and the API DNS records.

use std::net::IpAddr;

use super::ALL_NOT_READY;
use crate::check::{CheckResult, Ctx, Outcome};
use crate::cluster::{api_error, nodes};

/// `name → address` as the criterion writes it.
fn dns_record_of(criterion: &str) -> Option<(String, IpAddr)> {
    let inner = criterion.split_once('(')?.1.rsplit_once(')')?.0;
    let (name, ip) = inner.split_once('→').or_else(|| inner.split_once("->"))?;
    Some((name.trim().to_string(), ip.trim().parse().ok()?))
}

/// The record resolves, with the resolver the harness reaches the clusters through, to
/// the address the criterion names.
pub(super) async fn dns_record_resolves(ctx: Ctx, criterion: &'static str) -> CheckResult<Outcome> {
    let (name, want) = dns_record_of(criterion).ok_or_else(|| Outcome::error(format!("criterion {criterion:?} names no `name → address` record")))?;
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    let object = format!("DNS A record {name}");
    let via = target.resolver.describe();
    let observed: Vec<IpAddr> = target
        .resolver
        .addresses(&name)
        .await
        .map_err(|e| {
            if e.not_asked {
                Outcome::error(format!("{object}: {e} ({via}); not evaluated"))
            } else {
                Outcome::fail(object.clone(), format!("resolves to {want}"), format!("lookup failed: {e} ({via})"))
            }
        })?;
    let shown = || observed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if observed.contains(&want) {
        Ok(Outcome::pass(format!("{name} resolves to {} ({via})", shown())))
    } else if observed.is_empty() {
        Ok(Outcome::fail(object, format!("resolves to {want}"), format!("no record ({via})")))
    } else {
        Ok(Outcome::fail(object, format!("resolves to {want}"), format!("{} ({via})", shown())))
    }
}

/// The cluster's nodes sit at exactly the addresses the criterion names.
pub(super) async fn nodes_at_documented_addresses(ctx: Ctx, criterion: &'static str) -> CheckResult<Outcome> {
    let range = crate::net::range_in_text(criterion).ok_or_else(|| Outcome::error(format!("criterion {criterion:?} names no address range")))?;
    let expected = range.addresses().ok_or_else(|| {
        Outcome::error(format!("criterion names the range {range} of {} addresses; node addresses are compared for ranges of at most {}", range.size(), crate::net::MAX_RANGE_ADDRESSES))
    })?;
    let client = ctx.kube()?;
    let n = nodes::list(client, &ctx.cluster).await?;
    Ok(nodes::expect_internal_ips(&ctx.cluster, &n, &expected))
}

/// The API server reports ready and nodes have registered with it.
pub(super) async fn cluster_bootstrapped_and_healthy(ctx: Ctx) -> CheckResult<Outcome> {
    let client = ctx.kube()?;
    let readyz = raw_get(client, "/readyz").await.map_err(|e| api_error(&format!("GET /readyz on cluster {}", ctx.cluster), e))?;
    if readyz.trim() != "ok" {
        return Err(Outcome::fail(format!("cluster {} /readyz", ctx.cluster), "ok", readyz.trim().to_string()));
    }
    let version = client.apiserver_version().await.map(|v| v.git_version).unwrap_or_else(|_| "unknown".into());
    let n = nodes::list(client, &ctx.cluster).await?;
    if n.is_empty() {
        return Err(Outcome::fail(format!("cluster {}", ctx.cluster), "nodes registered", "no nodes"));
    }
    Ok(Outcome::pass(format!("cluster {}: /readyz ok, Kubernetes {version}, {} nodes registered", ctx.cluster, n.len())))
}

/// One kubeconfig holds a working context for every cluster of the repository.
pub(super) async fn kubeconfig_contexts_merged(ctx: Ctx) -> CheckResult<Outcome> {
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    let expected: Vec<String> = match ctx.repo() {
        Ok(r) => r.clusters().to_vec(),
        Err(_) => target.peers.keys().cloned().collect(),
    };
    let mut outcomes = vec![];
    for cluster in &expected {
        outcomes.push(match target.peers.get(cluster) {
            None => Outcome::fail(format!("kubeconfig context for cluster {cluster}"), "present", "missing"),
            Some(client) => match client.apiserver_version().await {
                Ok(v) => Outcome::pass(format!("context for {cluster} answers: Kubernetes {}", v.git_version)),
                Err(e) => api_error(&format!("context for cluster {cluster}"), e),
            },
        });
    }
    Ok(Outcome::all(outcomes))
}

/// Right after bootstrap, before the CNI, every node of every cluster is NotReady.
pub(super) async fn all_nodes_not_ready_before_cni(ctx: Ctx) -> CheckResult<Outcome> {
    let expected: usize = ALL_NOT_READY.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or(0);
    let all = nodes_of_every_cluster(&ctx).await?;
    let total: usize = all.iter().map(|(_, n)| n.len()).sum();
    let mut outcomes: Vec<Outcome> = all.iter().map(|(c, n)| nodes::expect_all_not_ready(c, n)).collect();
    if total != expected {
        outcomes.push(Outcome::fail("nodes across all clusters", format!("{expected} nodes"), format!("{total} nodes")));
    }
    Ok(Outcome::all(outcomes))
}

/// Every node's podCIDR lies in its cluster's POD_CIDR (from the repository) and none overlap.
pub(super) async fn pod_cidrs_non_overlapping(ctx: Ctx) -> CheckResult<Outcome> {
    let all = nodes_of_every_cluster(&ctx).await?;
    let mut input = vec![];
    for (cluster, n) in all {
        let range = match ctx.repo() {
            Ok(repo) => {
                let value = repo.variables(&cluster).map_err(Outcome::error)?.require("POD_CIDR")?.to_string();
                let nets = crate::net::cidrs_of(&value).map_err(|e| Outcome::fail(format!("POD_CIDR of cluster {cluster}"), "a CIDR", e))?;
                nets.first().copied()
            }
            Err(_) => None,
        };
        input.push((cluster, n, range));
    }
    Ok(nodes::expect_disjoint_pod_cidrs(&input))
}

async fn nodes_of_every_cluster(ctx: &Ctx) -> CheckResult<Vec<(String, Vec<nodes::NodeFacts>)>> {
    let target = ctx.target.as_ref().ok_or_else(|| Outcome::skip("no cluster target"))?;
    let mut out = vec![];
    for (cluster, client) in target.peers.iter() {
        out.push((cluster.clone(), nodes::list(client, cluster).await?));
    }
    Ok(out)
}

async fn raw_get(client: &kube::Client, path: &str) -> Result<String, kube::Error> {
    let req = http::Request::get(path).body(Vec::new()).map_err(kube::Error::HttpError)?;
    client.request_text(req).await
}

#[cfg(test)]
mod tests {
    use super::dns_record_of;

    #[test]
    fn dns_record_is_read_from_the_criterion() {
        let (name, ip) = dns_record_of(super::super::DNS_INFRA).unwrap();
        assert_eq!((name.as_str(), ip.to_string().as_str()), ("infra-k8s.monosense.io", "10.25.11.11"));
        assert_eq!(dns_record_of("DNS records created (apps-k8s.monosense.io -> 10.25.11.14)").unwrap().1.to_string(), "10.25.11.14");
        assert!(dns_record_of("DNS records created").is_none());
    }
}
