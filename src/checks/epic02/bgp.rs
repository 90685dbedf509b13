//! 2.1.9 on a BGPv1 cluster: what a `CiliumBGPPeeringPolicy` lets a reader see.
//!
//! BGPv1 (`cilium.io/v2alpha1` CiliumBGPPeeringPolicy, removed in Cilium 1.19, §2.2 [C3])
//! declares `spec.virtualRouters[].localASN` and `.neighbors[].peerAddress` (CIDR, `/32` for
//! one host) / `.peerASN` (cilium/cilium `pkg/k8s/apis/cilium.io/v2alpha1/bgp_types.go`,
//! `CiliumBGPPeeringPolicySpec`, `CiliumBGPNeighbor`) and publishes no status (§2.3 [C5]).
//! So on a v1-only cluster the check reads the policies, fails when none peers with the
//! upstream router the repository names, and otherwise says what it read and that the
//! session state is not exposed through the API (Skip, not Error: nothing went wrong).

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

/// The verdict on a cluster whose only BGP configuration is BGPv1 `policies` (non-empty).
pub(super) fn judge_bgp_v1(policies: &[Found], kind: &Kind, peer: Option<&str>, cluster: &str) -> Outcome {
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
            "cluster {cluster} runs BGPv1; read {}. BGPv1 publishes no session state through the API, so the session itself is not verified here: \
             check `cilium-dbg bgp peers` in an agent pod, or migrate to BGPv2, whose CiliumBGPNodeConfig status carries it",
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
        let o = judge_bgp_v1(&[policy("10.25.11.1/32")], &POLICY, Some("10.25.11.1"), "infra");
        assert_eq!(o.verdict(), Verdict::Skip, "main said Error here");
        assert!(o.summary().starts_with("cluster infra runs BGPv1; read CiliumBGPPeeringPolicy bgp-peering-policy (cilium.io/v2alpha1): ASN 64512 → 10.25.11.1 (ASN 64501)."), "{}", o.summary());
    }

    #[test]
    fn a_v1_policy_without_the_upstream_router_fails() {
        let o = judge_bgp_v1(&[policy("10.25.11.9/32")], &POLICY, Some("10.25.11.1"), "infra");
        assert_eq!(o.summary(), "CiliumBGPPeeringPolicies (cluster infra, BGPv1): expected a neighbor 10.25.11.1 (CILIUM_BGP_PEER_ADDRESS), observed CiliumBGPPeeringPolicy bgp-peering-policy (cilium.io/v2alpha1): ASN 64512 → 10.25.11.9 (ASN 64501)");
    }
}
