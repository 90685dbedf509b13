//! 2.1.9 on a BGPv1 cluster: what a `CiliumBGPPeeringPolicy` lets a reader see.
//!
//! BGPv1 (`cilium.io/v2alpha1` CiliumBGPPeeringPolicy, removed in Cilium 1.19, §2.2 [C3])
//! declares `spec.virtualRouters[].localASN` and `.neighbors[].peerAddress` (CIDR, `/32` for
//! one host) / `.peerASN` (cilium/cilium `pkg/k8s/apis/cilium.io/v2alpha1/bgp_types.go`,
//! `CiliumBGPPeeringPolicySpec`, `CiliumBGPNeighbor`) and publishes no status (§2.3 [C5]).
//! So on a v1-only cluster the check reads the policies and fails when none peers with the
//! upstream router the repository names. The session state lives only in each Cilium agent:
//! the check asks every agent pod (`kube-system`, `k8s-app=cilium`, container
//! `cilium-agent`) for `cilium-dbg bgp peers -o json` through `pods/exec`, a JSON list of
//! the agent API's `BgpPeer` (cilium `api/v1/models/bgp_peer.go`: `local-asn`,
//! `peer-address`, `peer-asn`, `session-state` one of idle, connect, active, opensent,
//! openconfirm, established; `pkg/bgpv1/types/conversions.go`). When no agent can be asked
//! (exec forbidden, no agent pod, the command missing) it says what the policies declare
//! and why the sessions were not read (Skip, not Error: the platform may be fine).

use serde::Deserialize;
use serde_json::Value;

use crate::check::Outcome;
use crate::cluster::objects::{Found, Kind};
use crate::repo::scalar_text;

/// `(localASN, peerAddress without prefix length, peerASN)` of every neighbor of `policy`.
fn neighbors(policy: &Found) -> Vec<(String, String, String)> {
    let mut out = vec![];
    for router in policy.get("/spec/virtualRouters").and_then(Value::as_array).into_iter().flatten() {
        let local = router.get("localASN").map(scalar_text).unwrap_or_default();
        for n in router.get("neighbors").and_then(Value::as_array).into_iter().flatten() {
            let addr = n.get("peerAddress").map(scalar_text).unwrap_or_default();
            let addr = addr.split('/').next().unwrap_or("").trim().to_string();
            out.push((local.clone(), addr, n.get("peerASN").map(scalar_text).unwrap_or_default()));
        }
    }
    out
}

/// One peer as `cilium-dbg bgp peers -o json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct AgentPeer {
    #[serde(rename = "local-asn", default)]
    pub local_asn: i64,
    #[serde(rename = "peer-address", default)]
    pub peer_address: String,
    #[serde(rename = "peer-asn", default)]
    pub peer_asn: i64,
    #[serde(rename = "session-state", default)]
    pub session_state: String,
}

/// The peers of one agent's `cilium-dbg bgp peers -o json`.
pub(super) fn parse_agent_peers(json: &str) -> Result<Vec<AgentPeer>, String> {
    serde_json::from_str(json.trim()).map_err(|e| format!("not the JSON list of BgpPeer that cilium-dbg prints ({e})"))
}

/// What one agent said: `(node, pod, peers)`.
pub(super) type AgentReport = (String, String, Vec<AgentPeer>);

/// Every agent has a session with `peer` (the upstream router; any peer when the
/// repository names none) in state `established`.
pub(super) fn judge_agent_sessions(reports: &[AgentReport], peer: Option<&str>, cluster: &str) -> Outcome {
    let want = peer.map(|p| format!("a session with {p} established")).unwrap_or_else(|| "a session established".into());
    let mut findings = vec![];
    let mut evidence = vec![];
    for (node, pod, peers) in reports {
        let object = format!("Cilium agent kube-system/{pod} on node {node} (cluster {cluster}, `cilium-dbg bgp peers`)");
        let matching: Vec<&AgentPeer> = peers.iter().filter(|p| peer.is_none_or(|want| p.peer_address == want)).collect();
        let seen = |ps: &[&AgentPeer]| ps.iter().map(|p| format!("{} (ASN {}) {}", p.peer_address, p.peer_asn, p.session_state)).collect::<Vec<_>>().join(", ");
        match matching.iter().find(|p| p.session_state == "established") {
            Some(p) => evidence.push(format!("{node}: ASN {} → {} (ASN {}) established", p.local_asn, p.peer_address, p.peer_asn)),
            None if matching.is_empty() => findings.push(crate::check::Finding::new(object, want.clone(), if peers.is_empty() { "no peers".to_string() } else { format!("peers {}", seen(&peers.iter().collect::<Vec<_>>())) })),
            None => findings.push(crate::check::Finding::new(object, want.clone(), seen(&matching))),
        }
    }
    Outcome::from_findings(findings, format!("cluster {cluster} (BGPv1, read from the agents): {}", evidence.join(", ")))
}

/// The verdict on a cluster whose only BGP configuration is BGPv1 `policies` (non-empty).
/// `unread` says why the agents' sessions could not be read.
pub(super) fn judge_bgp_v1(policies: &[Found], kind: &Kind, peer: Option<&str>, cluster: &str, unread: &str) -> Outcome {
    let read: Vec<String> = policies
        .iter()
        .map(|p| {
            let ns: Vec<String> = neighbors(p).iter().map(|(l, a, r)| format!("ASN {l} → {a} (ASN {r})")).collect();
            format!("{}: {}", p.describe(kind), if ns.is_empty() { "no neighbors".to_string() } else { ns.join(", ") })
        })
        .collect();
    let peered = |want: &str| policies.iter().flat_map(neighbors).any(|(_, a, _)| a == want);
    match peer {
        Some(want) if !peered(want) => Outcome::fail(format!("CiliumBGPPeeringPolicies (cluster {cluster}, BGPv1)"), format!("a neighbor {want} (CILIUM_BGP_PEER_ADDRESS)"), read.join("; ")),
        _ => Outcome::skip(format!(
            "cluster {cluster} runs BGPv1; read {}. BGPv1 publishes no session state through the API and the agents could not be asked ({unread}), \
             so the session itself is not verified here: check `cilium-dbg bgp peers` in an agent pod, or migrate to BGPv2, whose CiliumBGPNodeConfig status carries it",
            read.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use kube::api::DynamicObject;
    use serde_json::json;

    use super::*;
    use crate::check::Verdict;

    const POLICY: Kind = Kind::cluster_scoped("cilium.io", &["v2alpha1"], "CiliumBGPPeeringPolicy");

    fn policy(peer: &str) -> Found {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "cilium.io/v2alpha1", "kind": "CiliumBGPPeeringPolicy", "metadata": {"name": "bgp-peering-policy"},
            "spec": {"virtualRouters": [{"localASN": 64512, "exportPodCIDR": true, "neighbors": [{"peerAddress": peer, "peerASN": 64501}]}]},
        }))
        .unwrap();
        Found { object, api_version: "cilium.io/v2alpha1".into() }
    }

    #[test]
    fn a_v1_cluster_says_what_was_read_instead_of_an_error() {
        let o = judge_bgp_v1(&[policy("10.25.11.1/32")], &POLICY, Some("10.25.11.1"), "infra", "no Cilium agent pod");
        assert_eq!(o.verdict(), Verdict::Skip, "main said Error here");
        assert!(o.summary().starts_with("cluster infra runs BGPv1; read CiliumBGPPeeringPolicy bgp-peering-policy (cilium.io/v2alpha1): ASN 64512 → 10.25.11.1 (ASN 64501). BGPv1 publishes no session state through the API and the agents could not be asked (no Cilium agent pod)"), "{}", o.summary());
    }

    #[test]
    fn a_v1_policy_without_the_upstream_router_fails() {
        let o = judge_bgp_v1(&[policy("10.25.11.9/32")], &POLICY, Some("10.25.11.1"), "infra", "");
        assert_eq!(o.summary(), "CiliumBGPPeeringPolicies (cluster infra, BGPv1): expected a neighbor 10.25.11.1 (CILIUM_BGP_PEER_ADDRESS), observed CiliumBGPPeeringPolicy bgp-peering-policy (cilium.io/v2alpha1): ASN 64512 → 10.25.11.9 (ASN 64501)");
    }

    /// What `cilium-dbg bgp peers -o json` prints for one peer (fields of cilium's BgpPeer).
    fn agent(state: &str, peer: &str) -> String {
        format!(r#"[{{"applied-hold-time-seconds":90,"families":[{{"afi":"ipv4","safi":"unicast","received":1,"advertised":2}}],"local-asn":64512,"peer-address":"{peer}","peer-asn":64501,"peer-port":179,"session-state":"{state}","uptime-nanoseconds":120000000000}}]"#)
    }

    #[test]
    fn agents_with_an_established_session_to_the_router_pass() {
        let peers = parse_agent_peers(&agent("established", "10.25.11.1")).unwrap();
        let reports = vec![("infra-01".to_string(), "cilium-abcde".to_string(), peers.clone()), ("infra-02".to_string(), "cilium-fghij".to_string(), peers)];
        let o = judge_agent_sessions(&reports, Some("10.25.11.1"), "infra");
        assert_eq!(o.verdict(), Verdict::Pass, "main skipped here: the v1 session state was never read");
        assert_eq!(o.details(), ["cluster infra (BGPv1, read from the agents): infra-01: ASN 64512 → 10.25.11.1 (ASN 64501) established, infra-02: ASN 64512 → 10.25.11.1 (ASN 64501) established"]);
    }

    #[test]
    fn an_agent_whose_session_is_not_established_fails_naming_it() {
        let reports = vec![
            ("infra-01".to_string(), "cilium-abcde".to_string(), parse_agent_peers(&agent("established", "10.25.11.1")).unwrap()),
            ("infra-02".to_string(), "cilium-fghij".to_string(), parse_agent_peers(&agent("active", "10.25.11.1")).unwrap()),
            ("infra-03".to_string(), "cilium-klmno".to_string(), parse_agent_peers(&agent("established", "10.25.11.9")).unwrap()),
        ];
        let o = judge_agent_sessions(&reports, Some("10.25.11.1"), "infra");
        assert_eq!(o.verdict(), Verdict::Fail);
        assert_eq!(
            o.details(),
            [
                "Cilium agent kube-system/cilium-fghij on node infra-02 (cluster infra, `cilium-dbg bgp peers`): expected a session with 10.25.11.1 established, observed 10.25.11.1 (ASN 64501) active",
                "Cilium agent kube-system/cilium-klmno on node infra-03 (cluster infra, `cilium-dbg bgp peers`): expected a session with 10.25.11.1 established, observed peers 10.25.11.9 (ASN 64501) established",
            ]
        );
        assert!(parse_agent_peers("BGP Control Plane is disabled").unwrap_err().starts_with("not the JSON list of BgpPeer"));
    }
}
