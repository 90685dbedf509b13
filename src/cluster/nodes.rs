//! Node facts the bootstrap and CNI criteria read: readiness, InternalIP, podCIDR.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::outcome::Outcome;

#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub ready: bool,
    /// Reason/message of the Ready condition, for evidence.
    pub ready_detail: String,
    pub internal_ip: Option<String>,
    pub pod_cidrs: Vec<String>,
}

/// Lists the cluster's nodes (one LIST, shared by whatever the check derives).
pub async fn list(client: &kube::Client, cluster: &str) -> Result<Vec<NodeFacts>, Outcome> {
    let api: Api<Node> = Api::all(client.clone());
    let nodes = api.list(&ListParams::default()).await.map_err(|e| super::api_error(&format!("list nodes of cluster {cluster}"), e))?;
    let mut facts: Vec<NodeFacts> = nodes.items.iter().map(facts_of).collect();
    facts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(facts)
}

fn facts_of(n: &Node) -> NodeFacts {
    let name = n.metadata.name.clone().unwrap_or_default();
    let status = n.status.as_ref();
    let ready_cond = status.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let ready = ready_cond.is_some_and(|c| c.status == "True");
    let ready_detail = ready_cond
        .map(|c| format!("Ready={} ({})", c.status, c.reason.clone().unwrap_or_default()))
        .unwrap_or_else(|| "no Ready condition".into());
    let internal_ip = status
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map(|a| a.address.clone());
    let spec = n.spec.as_ref();
    let mut pod_cidrs: Vec<String> = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    if pod_cidrs.is_empty() {
        pod_cidrs.extend(spec.and_then(|s| s.pod_cidr.clone()));
    }
    NodeFacts { name, ready, ready_detail, internal_ip, pod_cidrs }
}

/// Passes when the nodes' InternalIPs are exactly `expected` (order ignored).
pub fn expect_internal_ips(cluster: &str, nodes: &[NodeFacts], expected: &[std::net::IpAddr]) -> Outcome {
    let mut observed: Vec<String> = nodes.iter().map(|n| n.internal_ip.clone().unwrap_or_else(|| format!("{}:no-InternalIP", n.name))).collect();
    observed.sort();
    let mut want: Vec<String> = expected.iter().map(ToString::to_string).collect();
    want.sort();
    if observed == want {
        Outcome::pass(format!("cluster {cluster}: nodes {} at {}", names(nodes), observed.join(", ")))
    } else {
        Outcome::fail(format!("cluster {cluster} nodes ({})", names(nodes)), format!("InternalIPs [{}]", want.join(", ")), format!("[{}]", observed.join(", ")))
    }
}

/// Passes when every node is Ready (and there is at least one).
pub fn expect_all_ready(cluster: &str, nodes: &[NodeFacts]) -> Outcome {
    if nodes.is_empty() {
        return Outcome::fail(format!("cluster {cluster}"), "nodes registered and Ready", "no nodes");
    }
    let findings: Vec<_> = nodes
        .iter()
        .filter(|n| !n.ready)
        .map(|n| crate::outcome::Finding::new(format!("Node/{} (cluster {cluster})", n.name), "Ready=True", n.ready_detail.clone()))
        .collect();
    Outcome::from_findings(findings, format!("cluster {cluster}: {} nodes Ready ({})", nodes.len(), names(nodes)))
}

/// Passes when every node is NotReady (the state right after bootstrap, before the CNI).
pub fn expect_all_not_ready(cluster: &str, nodes: &[NodeFacts]) -> Outcome {
    let findings: Vec<_> = nodes
        .iter()
        .filter(|n| n.ready)
        .map(|n| crate::outcome::Finding::new(format!("Node/{} (cluster {cluster})", n.name), "NotReady (no CNI yet)", n.ready_detail.clone()))
        .collect();
    Outcome::from_findings(findings, format!("cluster {cluster}: {} nodes NotReady", nodes.len()))
}

/// Every node has a podCIDR, inside its cluster's POD_CIDR when known, and no two
/// podCIDRs overlap, within or across clusters.
pub fn expect_disjoint_pod_cidrs(clusters: &[(String, Vec<NodeFacts>, Option<ipnet::IpNet>)]) -> Outcome {
    let mut findings = vec![];
    let mut seen: Vec<(String, ipnet::IpNet)> = vec![];
    for (cluster, nodes, range) in clusters {
        for n in nodes {
            let object = format!("Node/{} (cluster {cluster}) spec.podCIDR", n.name);
            if n.pod_cidrs.is_empty() {
                findings.push(crate::outcome::Finding::new(object.clone(), "a podCIDR", "none allocated"));
            }
            for raw in &n.pod_cidrs {
                let Ok(net) = raw.parse::<ipnet::IpNet>() else {
                    findings.push(crate::outcome::Finding::new(object.clone(), "a CIDR", raw.clone()));
                    continue;
                };
                if let Some(range) = range
                    && !range.contains(&net)
                {
                    findings.push(crate::outcome::Finding::new(object.clone(), format!("inside POD_CIDR {range}"), net.to_string()));
                }
                for (other, other_net) in &seen {
                    if crate::net::overlaps(&net, other_net) {
                        findings.push(crate::outcome::Finding::new(object.clone(), format!("disjoint from {other} ({other_net})"), format!("{net} overlaps")));
                    }
                }
                seen.push((format!("Node/{} (cluster {cluster})", n.name), net));
            }
        }
    }
    let evidence = seen.iter().map(|(o, n)| format!("{o}={n}")).collect::<Vec<_>>().join(", ");
    Outcome::from_findings(findings, format!("podCIDRs disjoint: {evidence}"))
}

fn names(nodes: &[NodeFacts]) -> String {
    nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: bool, ip: &str, cidr: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            ready,
            ready_detail: format!("Ready={}", if ready { "True" } else { "False" }),
            internal_ip: Some(ip.into()),
            pod_cidrs: if cidr.is_empty() { vec![] } else { vec![cidr.into()] },
        }
    }

    #[test]
    fn overlapping_or_out_of_range_pod_cidrs_fail_naming_the_node() {
        let infra = vec![node("infra-01", true, "10.25.11.11", "10.244.0.0/24"), node("infra-02", true, "10.25.11.12", "10.244.0.0/24")];
        let apps = vec![node("apps-01", true, "10.25.11.14", "10.244.1.0/24")];
        let o = expect_disjoint_pod_cidrs(&[
            ("infra".into(), infra, Some("10.244.0.0/16".parse().unwrap())),
            ("apps".into(), apps, Some("10.246.0.0/16".parse().unwrap())),
        ]);
        let text = o.details().join("\n");
        assert!(text.contains("Node/infra-02 (cluster infra) spec.podCIDR: expected disjoint from Node/infra-01"), "{text}");
        assert!(text.contains("Node/apps-01 (cluster apps) spec.podCIDR: expected inside POD_CIDR 10.246.0.0/16, observed 10.244.1.0/24"), "{text}");
    }

    #[test]
    fn disjoint_pod_cidrs_pass() {
        let infra = vec![node("infra-01", true, "10.25.11.11", "10.244.0.0/24"), node("infra-02", true, "10.25.11.12", "10.244.1.0/24")];
        let o = expect_disjoint_pod_cidrs(&[("infra".into(), infra, Some("10.244.0.0/16".parse().unwrap()))]);
        assert_eq!(o.verdict(), crate::outcome::Verdict::Pass, "{o:?}");
    }

    #[test]
    fn readiness_names_the_node_and_condition() {
        let nodes = vec![node("apps-01", true, "10.25.11.14", ""), node("apps-02", false, "10.25.11.15", "")];
        let o = expect_all_ready("apps", &nodes);
        assert_eq!(o.summary(), "Node/apps-02 (cluster apps): expected Ready=True, observed Ready=False");
        assert_eq!(expect_all_not_ready("apps", &nodes).verdict(), crate::outcome::Verdict::Fail);
        assert_eq!(expect_all_ready("apps", &[]).verdict(), crate::outcome::Verdict::Fail);
    }

    #[test]
    fn internal_ips_compare_as_sets() {
        let nodes = vec![node("infra-02", true, "10.25.11.12", ""), node("infra-01", true, "10.25.11.11", "")];
        let want: Vec<std::net::IpAddr> = vec!["10.25.11.11".parse().unwrap(), "10.25.11.12".parse().unwrap()];
        assert_eq!(expect_internal_ips("infra", &nodes, &want).verdict(), crate::outcome::Verdict::Pass);
        let o = expect_internal_ips("infra", &nodes[..1], &want);
        assert!(o.summary().contains("expected InternalIPs [10.25.11.11, 10.25.11.12], observed [10.25.11.12]"), "{}", o.summary());
    }
}
