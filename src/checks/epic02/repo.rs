//! EPIC-2 repository layer: Cilium (BGP, Gateway API, ClusterMesh), the ClusterMesh
//! ExternalSecret, External DNS and Spegel as the repository renders them per cluster.
//! The per-cluster variables of Stories 2.1 and 2.2 are in [`super::variables`].

use serde_json::Value;

use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{scalar_text, Rendered, RenderedObject, Variables};

// ---------------------------------------------------------------------------
// Story 2.1
// ---------------------------------------------------------------------------

const CILIUM_INFRA_DIR: &str = "infrastructure/networking/cilium/";
/// "Files Created" of Story 2.1, relative to `infrastructure/networking/cilium/`.
const CILIUM_INFRA_FILES: [&str; 4] =
    ["kustomization.yaml", "bgp/bgppeeringpolicy.yaml", "clustermesh/externalsecret.yaml", "gateway/gatewayclass.yaml"];

pub(super) async fn cilium_base_helmrelease(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(base_dir_helmrelease(repo(&ctx)?, "bases/cilium/", "cilium"))
}

pub(super) async fn cilium_infrastructure_configs(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    Ok(infrastructure_config(repo(&ctx)?, &r, CILIUM_INFRA_DIR, "bases/cilium", &CILIUM_INFRA_FILES))
}

pub(super) async fn cilium_bgp_control_plane(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    let vars = variables(&ctx)?;
    let cilium = cilium_release(&r)?;
    let mut findings = vec![];
    let mut evidence = vec![];
    expect_value(cilium, "/spec/values/bgpControlPlane/enabled", "true", &mut findings);
    let policies: Vec<&RenderedObject> =
        r.of_kind("CiliumBGPPeeringPolicy").filter(|o| o.api_version().starts_with("cilium.io/")).collect();
    // BGPv2 (CiliumBGPClusterConfig + PeerConfig + Advertisement) replaces the policy the
    // plan names, which Cilium 1.19 removed; either configures the BGP control plane.
    let v2 = bgp_v2(&r, &vars, &mut findings, &mut evidence);
    if policies.is_empty() && !v2 {
        findings.push(Finding::new(
            format!("cluster {}: rendered manifests", ctx.cluster),
            "a CiliumBGPPeeringPolicy, or a CiliumBGPClusterConfig (BGPv2) (cilium.io)",
            format!("none among {} rendered objects", r.objects.len()),
        ));
    }
    for policy in policies {
        let routers = policy.get("/spec/virtualRouters").and_then(Value::as_array).cloned().unwrap_or_default();
        if routers.is_empty() {
            findings.push(Finding::new(format!("{} spec.virtualRouters", policy.describe()), "at least one virtual router", "none"));
        }
        for (i, router) in routers.iter().enumerate() {
            let at = format!("{} spec.virtualRouters[{i}]", policy.describe());
            expect_var(&vars, "CILIUM_BGP_LOCAL_ASN", router.get("localASN"), &format!("{at}.localASN"), &mut findings);
            let neighbors = router.get("neighbors").and_then(Value::as_array).cloned().unwrap_or_default();
            if neighbors.is_empty() {
                findings.push(Finding::new(format!("{at}.neighbors"), "at least one BGP neighbor (the upstream router)", "none"));
            }
            for (j, n) in neighbors.iter().enumerate() {
                expect_var(&vars, "CILIUM_BGP_PEER_ASN", n.get("peerASN"), &format!("{at}.neighbors[{j}].peerASN"), &mut findings);
                expect_var(&vars, "CILIUM_BGP_PEER_ADDRESS", n.get("peerAddress"), &format!("{at}.neighbors[{j}].peerAddress"), &mut findings);
            }
        }
        evidence.push(format!("{} {}: localASN = CILIUM_BGP_LOCAL_ASN {:?}", policy.api_version(), policy.describe(), vars.get("CILIUM_BGP_LOCAL_ASN").unwrap_or("")));
    }
    evidence.push(format!("{}: bgpControlPlane.enabled = true", cilium.describe()));
    Ok(Outcome::from_findings(findings, evidence.join("; ")))
}

pub(super) async fn cilium_gateway_api_enabled(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    let cilium = cilium_release(&r)?;
    let mut findings = vec![];
    expect_value(cilium, "/spec/values/gatewayAPI/enabled", "true", &mut findings);
    // Cilium's Gateway API (Envoy-based) requires the kube-proxy replacement.
    let kpr = cilium.get("/spec/values/kubeProxyReplacement").map(scalar_text).unwrap_or_default();
    if !matches!(kpr.as_str(), "true" | "strict") {
        findings.push(Finding::new(
            format!("{} values.kubeProxyReplacement", cilium.describe()),
            "true (Cilium's Gateway API needs the kube-proxy replacement)",
            if kpr.is_empty() { "not set".to_string() } else { kpr },
        ));
    }
    // A proxy must exist: the embedded one (envoy.enabled=false) or the cilium-envoy DaemonSet.
    let classes: Vec<&RenderedObject> = r
        .of_kind("GatewayClass")
        .filter(|o| o.api_version().starts_with("gateway.networking.k8s.io/"))
        .filter(|o| o.str("/spec/controllerName") == Some(CILIUM_GATEWAY_CONTROLLER))
        .collect();
    if classes.is_empty() {
        let seen: Vec<String> =
            r.of_kind("GatewayClass").map(|o| format!("{} ({})", o.describe(), o.str("/spec/controllerName").unwrap_or("-"))).collect();
        findings.push(Finding::new(
            format!("cluster {}: rendered GatewayClass", ctx.cluster),
            format!("a GatewayClass with controllerName {CILIUM_GATEWAY_CONTROLLER} (Story 2.1: gateway/gatewayclass.yaml)"),
            if seen.is_empty() { "no GatewayClass rendered".to_string() } else { seen.join(", ") },
        ));
    }
    let crds_provided = r.of_kind("GitRepository").any(|o| o.str("/spec/url").is_some_and(|u| u.contains("kubernetes-sigs/gateway-api")))
        || r.of_kind("CustomResourceDefinition").any(|o| o.name().ends_with(".gateway.networking.k8s.io"));
    if !crds_provided {
        findings.push(Finding::new(
            format!("cluster {}: rendered manifests", ctx.cluster),
            "the Gateway API CRDs (GitRepository of kubernetes-sigs/gateway-api or the CRDs themselves)",
            "not rendered",
        ));
    }
    Ok(Outcome::from_findings(
        findings,
        format!(
            "{}: gatewayAPI.enabled = true, envoy.enabled = {}; GatewayClass {}",
            cilium.describe(),
            cilium.get("/spec/values/envoy/enabled").map(scalar_text).unwrap_or_else(|| "chart default".into()),
            classes.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
        ),
    ))
}

const CILIUM_GATEWAY_CONTROLLER: &str = "io.cilium/gateway-controller";

pub(super) async fn clustermesh_configuration_prepared(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let vars = variables(&ctx)?;
    let cilium = cilium_release(&r)?;
    let mut findings = vec![];
    expect_var(&vars, "CLUSTER", cilium.get("/spec/values/cluster/name"), &format!("{} values.cluster.name", cilium.describe()), &mut findings);
    expect_var(&vars, "CLUSTER_ID", cilium.get("/spec/values/cluster/id"), &format!("{} values.cluster.id", cilium.describe()), &mut findings);
    let id = cilium.get("/spec/values/cluster/id").map(scalar_text).unwrap_or_default();
    if !id.parse::<u32>().is_ok_and(|n| (1..=255).contains(&n)) {
        findings.push(Finding::new(format!("{} values.cluster.id", cilium.describe()), "an integer 1-255 (ClusterMesh)", format!("{id:?}")));
    }
    expect_value(cilium, "/spec/values/clustermesh/useAPIServer", "true", &mut findings);
    // The clustermesh-apiserver must be reachable on the cluster's fixed CLUSTERMESH_IP.
    let svc = "/spec/values/clustermesh/apiserver/service";
    let ann = cilium.get(&format!("{svc}/annotations/lbipam.cilium.io~1ips")).map(scalar_text);
    let lb_ip = cilium.get(&format!("{svc}/loadBalancerIP")).map(scalar_text);
    let observed = ann.clone().or(lb_ip.clone()).unwrap_or_default();
    match vars.get("CLUSTERMESH_IP") {
        None => findings.push(Finding::new(vars.object("CLUSTERMESH_IP"), "defined", "not defined")),
        Some(ip) if !observed.split(',').any(|a| a.trim() == ip) => findings.push(Finding::new(
            format!("{} values.clustermesh.apiserver.service (lbipam.cilium.io/ips or loadBalancerIP)", cilium.describe()),
            format!("CLUSTERMESH_IP {ip:?}"),
            if observed.is_empty() { "not set".to_string() } else { format!("{observed:?}") },
        )),
        Some(_) => {}
    }
    expect_value(cilium, &format!("{svc}/type"), "LoadBalancer", &mut findings);
    // Peer settings, where the repository declares them, must match the peer's own values.
    if let Some(peer) = vars.get("CLUSTERMESH_REMOTE_CLUSTER") {
        let peers = other_variables(repo, &ctx.cluster)?;
        match peers.iter().find(|(_, v)| v.get("CLUSTER") == Some(peer) || v.cluster == peer) {
            None => findings.push(Finding::new(
                vars.object("CLUSTERMESH_REMOTE_CLUSTER"),
                format!("the name of another cluster ({})", peers.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ")),
                format!("{peer:?}"),
            )),
            Some((_, pv)) => {
                for (mine, theirs) in [("CLUSTERMESH_REMOTE_IP", "CLUSTERMESH_IP"), ("CLUSTERMESH_REMOTE_POD_CIDR", "POD_CIDR")] {
                    let (Some(a), Some(b)) = (vars.get(mine), pv.get(theirs)) else { continue };
                    if !crate::net::same_value(a, b) {
                        findings.push(Finding::new(vars.object(mine), format!("{theirs} of {peer}: {b:?} ({})", pv.file.display()), format!("{a:?}")));
                    }
                }
            }
        }
    }
    Ok(Outcome::from_findings(
        findings,
        format!(
            "{}: cluster.name {:?}, cluster.id {id}, clustermesh-apiserver on {observed}, peer {:?}",
            cilium.describe(),
            vars.get("CLUSTER").unwrap_or(""),
            vars.get("CLUSTERMESH_REMOTE_CLUSTER").unwrap_or("-")
        ),
    ))
}

// ---------------------------------------------------------------------------
// Story 2.3
// ---------------------------------------------------------------------------

pub(super) async fn clustermesh_externalsecret(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let dir = resolve_dir(repo, "infrastructure/networking/cilium/clustermesh/")?;
    let in_dir: Vec<&RenderedObject> = r.objects.iter().filter(|o| o.file.starts_with(&dir) && o.kind() == "ExternalSecret").collect();
    let Some(es) = in_dir.iter().copied().find(|o| o.api_version().starts_with("external-secrets.io/")) else {
        let kinds: Vec<String> = repo.documents_under(&dir).map(|d| d.describe()).collect();
        return Ok(Outcome::fail(
            format!("{}/ (rendered for {})", dir.display(), ctx.cluster),
            "an ExternalSecret (external-secrets.io)",
            if kinds.is_empty() { "no manifests".to_string() } else { format!("rendered: none; files hold {}", kinds.join(", ")) },
        ));
    };
    let mut findings = vec![];
    // Cilium reads the Secret from its own namespace (kube-system unless the release says otherwise).
    let cilium = helm_release(&r, "cilium");
    let cilium_ns = cilium.and_then(|c| c.str("/spec/targetNamespace").or(c.namespace())).unwrap_or("kube-system");
    let target = es.str("/spec/target/name").unwrap_or(es.name());
    if target != "cilium-clustermesh" {
        findings.push(Finding::new(format!("{} spec.target.name", es.describe()), "cilium-clustermesh (the Secret Cilium reads)", target));
    }
    if es.namespace() != Some(cilium_ns) {
        findings.push(Finding::new(format!("{} metadata.namespace", es.describe()), format!("{cilium_ns} (Cilium's namespace)"), es.namespace().unwrap_or("not set")));
    }
    findings.extend(store_finding(&r, es));
    // One key set per remote cluster, where the keys are spelled out.
    let mut keys: Vec<String> =
        es.get("/spec/target/template/data").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    keys.extend(es.get("/spec/data").and_then(Value::as_array).into_iter().flatten().filter_map(|d| d.get("secretKey")).map(scalar_text));
    if !keys.is_empty() {
        for (peer, pv) in other_variables(repo, &ctx.cluster)? {
            let name = pv.get("CLUSTER").unwrap_or(&peer).to_string();
            if !keys.contains(&name) {
                findings.push(Finding::new(format!("{} Secret keys", es.describe()), format!("a key {name:?} (remote cluster)"), format!("{keys:?}")));
            }
        }
    }
    Ok(Outcome::from_findings(findings, format!("{} {} → Secret {cilium_ns}/{target}, keys {keys:?}", es.api_version(), es.describe())))
}

// ---------------------------------------------------------------------------
// Story 2.4
// ---------------------------------------------------------------------------

pub(super) async fn external_dns_base_helmrelease(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(base_dir_helmrelease(repo(&ctx)?, "kubernetes/bases/external-dns/", "external-dns"))
}

pub(super) async fn external_dns_infrastructure_config(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    Ok(infrastructure_config(
        repo(&ctx)?,
        &r,
        "kubernetes/infrastructure/networking/external-dns/",
        "bases/external-dns",
        &["kustomization.yaml", "externalsecret.yaml"],
    ))
}

/// The rendered external-dns HelmRelease, or a Fail naming what was rendered instead.
fn external_dns_release(r: &Rendered) -> CheckResult<&RenderedObject> {
    helm_release(r, "external-dns").ok_or_else(|| {
        Outcome::fail(format!("cluster {}: rendered HelmReleases", r.cluster), "a HelmRelease of chart external-dns", release_names(r))
    })
}

/// `(secret name, key)` of the Cloudflare token env var of the external-dns values.
fn cloudflare_token_ref(hr: &RenderedObject) -> Option<(String, String)> {
    let env = hr.get("/spec/values/env").and_then(Value::as_array)?;
    env.iter()
        .filter(|e| matches!(e.get("name").and_then(Value::as_str), Some("CF_API_TOKEN" | "CF_API_KEY")))
        .find_map(|e| {
            let r = e.pointer("/valueFrom/secretKeyRef")?;
            Some((r.get("name").map(scalar_text)?, r.get("key").map(scalar_text)?))
        })
}

pub(super) async fn external_dns_cloudflare_provider(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let vars = variables(&ctx)?;
    let hr = external_dns_release(&r)?;
    let mut findings = vec![];
    let provider = hr.get("/spec/values/provider/name").or_else(|| hr.get("/spec/values/provider")).map(scalar_text).unwrap_or_default();
    if provider != "cloudflare" {
        findings.push(Finding::new(format!("{} values.provider.name", hr.describe()), "cloudflare", if provider.is_empty() { "not set".into() } else { provider }));
    }
    if cloudflare_token_ref(hr).is_none() {
        let literal = hr
            .get("/spec/values/env")
            .and_then(Value::as_array)
            .is_some_and(|env| env.iter().any(|e| e.get("name").and_then(Value::as_str) == Some("CF_API_TOKEN") && e.get("value").is_some()));
        findings.push(Finding::new(
            format!("{} values.env", hr.describe()),
            "CF_API_TOKEN from a Secret (valueFrom.secretKeyRef)",
            if literal { "a literal value (credential in Git)" } else { "no CF_API_TOKEN" },
        ));
    }
    let filters: Vec<String> = hr.get("/spec/values/domainFilters").and_then(Value::as_array).into_iter().flatten().map(scalar_text).collect();
    match vars.get("SECRET_DOMAIN") {
        Some(d) if !filters.iter().any(|f| f == d) => {
            findings.push(Finding::new(format!("{} values.domainFilters", hr.describe()), format!("contains SECRET_DOMAIN {d:?}"), format!("{filters:?}")))
        }
        None if filters.iter().all(|f| f.is_empty()) => {
            findings.push(Finding::new(format!("{} values.domainFilters", hr.describe()), "the Cloudflare zone", format!("{filters:?}")))
        }
        _ => {}
    }
    // Both clusters write into one zone: each must own its records (TXT registry owner).
    let owner = hr.get("/spec/values/txtOwnerId").map(scalar_text).unwrap_or_default();
    if owner.is_empty() {
        findings.push(Finding::new(format!("{} values.txtOwnerId", hr.describe()), "a per-cluster owner id", "not set"));
    }
    for peer in repo.clusters().iter().filter(|c| **c != ctx.cluster) {
        let Ok(pr) = repo.render(peer) else { continue };
        if let Some(other) = helm_release(&pr, "external-dns")
            && !owner.is_empty()
            && other.get("/spec/values/txtOwnerId").map(scalar_text).as_deref() == Some(owner.as_str())
        {
            findings.push(Finding::new(
                format!("{} values.txtOwnerId", hr.describe()),
                format!("an owner id different from cluster {peer}'s"),
                format!("{owner:?} on both clusters"),
            ));
        }
    }
    Ok(Outcome::from_findings(findings, format!("{} {}: provider cloudflare, token from Secret, domainFilters {filters:?}, txtOwnerId {owner:?}", hr.api_version(), hr.describe())))
}

pub(super) async fn external_dns_cloudflare_externalsecret(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let r = rendered(&ctx)?;
    let vars = variables(&ctx)?;
    let hr = external_dns_release(&r)?;
    let ns = hr.str("/spec/targetNamespace").or(hr.namespace()).unwrap_or("default").to_string();
    let Some((secret, key)) = cloudflare_token_ref(hr) else {
        return Ok(Outcome::fail(format!("{} values.env", hr.describe()), "CF_API_TOKEN from a Secret (valueFrom.secretKeyRef)", "no Secret reference"));
    };
    let dir = resolve_dir(repo, "kubernetes/infrastructure/networking/external-dns/")?;
    let candidates: Vec<&RenderedObject> = r
        .of_kind("ExternalSecret")
        .filter(|o| o.api_version().starts_with("external-secrets.io/"))
        .filter(|o| o.str("/spec/target/name").unwrap_or(o.name()) == secret && o.namespace() == Some(ns.as_str()))
        .collect();
    let Some(es) = candidates.first().copied() else {
        let seen: Vec<String> = r
            .of_kind("ExternalSecret")
            .filter(|o| o.file.starts_with(&dir))
            .map(|o| format!("{} → Secret {}/{}", o.describe(), o.namespace().unwrap_or("-"), o.str("/spec/target/name").unwrap_or(o.name())))
            .collect();
        return Ok(Outcome::fail(
            format!("cluster {}: ExternalSecret for Secret {ns}/{secret}", ctx.cluster),
            format!("an ExternalSecret (external-secrets.io) targeting {ns}/{secret}, as {} references", hr.describe()),
            if seen.is_empty() { format!("none rendered from {}", dir.display()) } else { seen.join(", ") },
        ));
    };
    let mut findings = vec![];
    if !es.file.starts_with(&dir) {
        findings.push(Finding::new(es.describe(), format!("defined in {}", dir.display()), es.file.display().to_string()));
    }
    findings.extend(store_finding(&r, es));
    let data = es.get("/spec/data").and_then(Value::as_array).cloned().unwrap_or_default();
    let item = data.iter().find(|d| d.get("secretKey").map(scalar_text).as_deref() == Some(key.as_str()));
    match item {
        None if es.get("/spec/dataFrom").is_none() => findings.push(Finding::new(
            format!("{} spec.data", es.describe()),
            format!("secretKey {key:?} (the key external-dns reads)"),
            format!("{:?}", data.iter().filter_map(|d| d.get("secretKey")).map(scalar_text).collect::<Vec<_>>()),
        )),
        None => {}
        Some(d) => {
            let remote = d.pointer("/remoteRef/key").map(scalar_text).unwrap_or_default();
            match vars.get("EXTERNAL_DNS_CLOUDFLARE_SECRET_PATH") {
                Some(path) if remote != path => findings.push(Finding::new(
                    format!("{} spec.data[{key}].remoteRef.key", es.describe()),
                    format!("EXTERNAL_DNS_CLOUDFLARE_SECRET_PATH {path:?}"),
                    format!("{remote:?}"),
                )),
                _ if remote.is_empty() => findings.push(Finding::new(format!("{} spec.data[{key}].remoteRef.key", es.describe()), "a 1Password item", "empty")),
                _ => {}
            }
        }
    }
    Ok(Outcome::from_findings(findings, format!("{} {} → Secret {ns}/{secret} key {key}", es.api_version(), es.describe())))
}

// ---------------------------------------------------------------------------
// Story 2.5
// ---------------------------------------------------------------------------

pub(super) async fn spegel_base_helmrelease(ctx: Ctx) -> CheckResult<Outcome> {
    Ok(base_dir_helmrelease(repo(&ctx)?, "kubernetes/bases/spegel/", "spegel"))
}

pub(super) async fn spegel_infrastructure_config(ctx: Ctx) -> CheckResult<Outcome> {
    let r = rendered(&ctx)?;
    Ok(infrastructure_config(repo(&ctx)?, &r, "kubernetes/infrastructure/networking/spegel/", "bases/spegel", &["kustomization.yaml"]))
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn release_names(r: &Rendered) -> String {
    let names: Vec<String> = r.of_kind("HelmRelease").map(|o| format!("{} (chart {})", o.name(), chart_name(o))).collect();
    if names.is_empty() { "no HelmRelease rendered".into() } else { names.join(", ") }
}

fn cilium_release(r: &Rendered) -> CheckResult<&RenderedObject> {
    helm_release(r, "cilium")
        .ok_or_else(|| Outcome::fail(format!("cluster {}: rendered HelmReleases", r.cluster), "a HelmRelease of chart cilium", release_names(r)))
}

/// A Fail finding unless the ExternalSecret's store is rendered for the same cluster.
fn store_finding(r: &Rendered, es: &RenderedObject) -> Option<Finding> {
    let kind = es.str("/spec/secretStoreRef/kind").unwrap_or("SecretStore");
    let name = es.str("/spec/secretStoreRef/name").unwrap_or("");
    let found = r.of_kind(kind).any(|s| s.name() == name && (kind == "ClusterSecretStore" || s.namespace() == es.namespace()));
    (!found).then(|| Finding::new(format!("{} spec.secretStoreRef", es.describe()), format!("{kind} {name:?} rendered for cluster {}", r.cluster), "not rendered"))
}

/// Pushes a finding unless the rendered value at `pointer` reads as `expected`.
fn expect_value(o: &RenderedObject, pointer: &str, expected: &str, findings: &mut Vec<Finding>) {
    let observed = o.get(pointer).map(scalar_text);
    if observed.as_deref() != Some(expected) {
        let field = pointer.trim_start_matches("/spec/").replace('/', ".").replace("~1", "/");
        findings.push(Finding::new(format!("{} {field}", o.describe()), expected, observed.unwrap_or_else(|| "not set".into())));
    }
}

/// Pushes a finding unless a rendered value equals the cluster variable `name`.
/// The BGPv2 configuration of a rendering, checked like the policy: every instance's
/// `localASN`, every peer's `peerASN` and `peerAddress` (an address; the variable may be
/// written as a `/32` prefix, as BGPv1 wants it), a rendered CiliumBGPPeerConfig for each
/// `peerConfigRef`, and at least one CiliumBGPAdvertisement. `false` when there is none.
fn bgp_v2(r: &Rendered, vars: &Variables, findings: &mut Vec<Finding>, evidence: &mut Vec<String>) -> bool {
    let cilium = |kind: &'static str| r.of_kind(kind).filter(|o| o.api_version().starts_with("cilium.io/"));
    let configs: Vec<&RenderedObject> = cilium("CiliumBGPClusterConfig").collect();
    if configs.is_empty() {
        return false;
    }
    let peer_configs: Vec<&str> = cilium("CiliumBGPPeerConfig").map(|o| o.name()).collect();
    for config in &configs {
        let instances = config.get("/spec/bgpInstances").and_then(Value::as_array).cloned().unwrap_or_default();
        if instances.is_empty() {
            findings.push(Finding::new(format!("{} spec.bgpInstances", config.describe()), "at least one BGP instance", "none"));
        }
        for (i, instance) in instances.iter().enumerate() {
            let at = format!("{} spec.bgpInstances[{i}]", config.describe());
            expect_var(vars, "CILIUM_BGP_LOCAL_ASN", instance.get("localASN"), &format!("{at}.localASN"), findings);
            let peers = instance.get("peers").and_then(Value::as_array).cloned().unwrap_or_default();
            if peers.is_empty() {
                findings.push(Finding::new(format!("{at}.peers"), "at least one BGP peer (the upstream router)", "none"));
            }
            for (j, p) in peers.iter().enumerate() {
                expect_var(vars, "CILIUM_BGP_PEER_ASN", p.get("peerASN"), &format!("{at}.peers[{j}].peerASN"), findings);
                let address = p.get("peerAddress").map(scalar_text);
                match vars.get("CILIUM_BGP_PEER_ADDRESS") {
                    None => findings.push(Finding::new(vars.object("CILIUM_BGP_PEER_ADDRESS"), format!("defined (used by {at}.peers[{j}].peerAddress)"), "not defined")),
                    Some(want) if address.as_deref() != Some(want.strip_suffix("/32").unwrap_or(want)) => findings.push(Finding::new(
                        format!("{at}.peers[{j}].peerAddress"),
                        format!("the address of CILIUM_BGP_PEER_ADDRESS {want:?}"),
                        address.map(|a| format!("{a:?}")).unwrap_or_else(|| "not set".into()),
                    )),
                    Some(_) => {}
                }
                if let Some(name) = p.pointer("/peerConfigRef/name").and_then(Value::as_str)
                    && !peer_configs.contains(&name)
                {
                    findings.push(Finding::new(
                        format!("{at}.peers[{j}].peerConfigRef"),
                        format!("a rendered CiliumBGPPeerConfig {name}"),
                        format!("CiliumBGPPeerConfig objects rendered: [{}]", peer_configs.join(", ")),
                    ));
                }
            }
        }
        evidence.push(format!("{} {} (BGPv2 in place of CiliumBGPPeeringPolicy): localASN = CILIUM_BGP_LOCAL_ASN {:?}", config.api_version(), config.describe(), vars.get("CILIUM_BGP_LOCAL_ASN").unwrap_or("")));
    }
    if cilium("CiliumBGPAdvertisement").next().is_none() {
        findings.push(Finding::new(format!("cluster {}: rendered manifests", r.cluster), "a CiliumBGPAdvertisement (what the BGPv2 peers announce)", "none"));
    }
    true
}

fn expect_var(vars: &Variables, name: &str, observed: Option<&Value>, object: &str, findings: &mut Vec<Finding>) {
    let observed = observed.map(scalar_text);
    match vars.get(name) {
        None => findings.push(Finding::new(vars.object(name), format!("defined (used by {object})"), "not defined")),
        Some(want) if observed.as_deref() != Some(want) => {
            findings.push(Finding::new(object, format!("{name} {want:?}"), observed.map(|o| format!("{o:?}")).unwrap_or_else(|| "not set".into())))
        }
        Some(_) => {}
    }
}

