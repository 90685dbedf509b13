//! EPIC-2 repository layer: the per-cluster variables (Story 2.1's "Variables Used" and
//! Story 2.2's apps values): defined where the stories say, with the documented values,
//! and distinct from (or not overlapping) the other cluster's.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use serde_json::Value;

use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{scalar_text, GitopsRepo, RenderedObject, Variables};

/// Variables Used of Story 2.1 (from `clusters/infra/infrastructure.yaml`).
const INFRA_VARIABLES_USED: [(&str, &str); 8] = [
    ("CLUSTER_ID", "1"),
    ("POD_CIDR", "10.244.0.0/16"),
    ("SERVICE_CIDR", "10.245.0.0/16"),
    ("CLUSTERMESH_IP", "10.25.11.100"),
    ("CILIUM_BGP_LOCAL_ASN", "64512"),
    ("CILIUM_BGP_PEER_ASN", "64501"),
    ("CILIUM_BGP_PEER_ADDRESS", "10.25.11.1/32"),
    ("CILIUM_GATEWAY_LB_IP", "10.25.11.120"),
];

pub(super) async fn infra_cluster_variables_defined(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let file = repo.cluster_dir(&ctx.cluster).join("infrastructure.yaml");
    let vars = variables(&ctx)?;
    let mut findings = vec![];
    let elsewhere = vars.file != file;
    if elsewhere {
        findings.push(variables_deviation(&file, &vars));
    }
    for (name, expected) in INFRA_VARIABLES_USED {
        match vars.entries.get(name) {
            None => findings.push(Finding::new(vars.object(name), format!("defined ({expected:?})"), "not defined")),
            // From a SOPS-encrypted Secret: defined, its value unknown without the key.
            Some(v) if v.is_unknown() => {}
            // Where the variables live is the deviation above; their values are still checked.
            Some(v) if !elsewhere && v.source != crate::repo::VarSource::Substitute => findings.push(Finding::new(
                vars.object(name),
                format!("in postBuild.substitute of {}", file.display()),
                format!("only from {:?}", v.source),
            )),
            Some(v) if !crate::net::same_value(&v.value, expected) => findings.push(Finding::new(vars.object(name), format!("{expected:?}"), v.shown())),
            Some(_) => {}
        }
    }
    let r = rendered(&ctx)?;
    findings.extend(r.problems_of("unresolved-variable").chain(r.problems_of("substitute-from")).map(|p| p.finding.clone()));
    Ok(Outcome::from_findings(
        findings,
        format!("{}: {} variables, all {} Variables Used present; every ${{VAR}} rendered for {} defined", file.display(), vars.entries.len(), INFRA_VARIABLES_USED.len(), ctx.cluster),
    ))
}

// ---------------------------------------------------------------------------
// Story 2.2 (apps)
// ---------------------------------------------------------------------------

/// The variables Story 2.2's task block shows in `clusters/apps/infrastructure.yaml`.
const APPS_TASK_VARIABLES: [&str; 6] = ["CLUSTER", "CLUSTER_ID", "POD_CIDR", "SERVICE_CIDR", "CLUSTERMESH_IP", "CILIUM_BGP_LOCAL_ASN"];

pub(super) async fn apps_infrastructure_yaml_variables(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let file = repo.cluster_dir(&ctx.cluster).join("infrastructure.yaml");
    if !repo.root.join(&file).is_file() {
        return Ok(match repo.variables(&ctx.cluster) {
            Ok(vars) => Outcome::Fail { findings: vec![variables_deviation(&file, &vars)] },
            Err(_) => Outcome::fail(file.display().to_string(), "file present in the repository", "missing"),
        });
    }
    let flux: Vec<_> = repo.flux_kustomizations(&ctx.cluster).map_err(Outcome::error)?.into_iter().filter(|k| k.file == file).collect();
    let Some(main) = flux.iter().find(|k| !k.substitute.is_empty()) else {
        return Ok(Outcome::fail(
            file.display().to_string(),
            "a Flux Kustomization (kustomize.toolkit.fluxcd.io) with postBuild.substitute",
            format!("{} Flux Kustomization(s), none with postBuild.substitute", flux.len()),
        ));
    };
    let mut findings = vec![];
    for name in APPS_TASK_VARIABLES {
        if !main.substitute.contains_key(name) {
            findings.push(Finding::new(format!("{}: Kustomization {} postBuild.substitute.{name}", file.display(), main.name), "defined", "not defined"));
        }
    }
    if let Some(c) = main.substitute.get("CLUSTER").filter(|c| *c != &ctx.cluster) {
        findings.push(Finding::new(format!("{}: CLUSTER", file.display()), format!("{:?} (the cluster's own name)", ctx.cluster), format!("{c:?}")));
    }
    Ok(Outcome::from_findings(findings, format!("{}: Kustomization {} substitutes {} variables, CLUSTER = {:?}", file.display(), main.name, main.substitute.len(), ctx.cluster)))
}

pub(super) async fn cluster_id_unique(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let vars = variables(&ctx)?;
    let expected = "2"; // CLUSTER_ID set to "2"
    let mut out = vec![vars.expect_eq("CLUSTER_ID", expected)];
    if let Some(id) = vars.get("CLUSTER_ID") {
        out.push(distinct_from_peers(repo, &ctx.cluster, &vars, "CLUSTER_ID", id)?);
    }
    Ok(Outcome::all(out))
}

pub(super) async fn pod_cidr_non_overlapping(ctx: Ctx) -> CheckResult<Outcome> {
    cidr_non_overlapping(&ctx, "POD_CIDR", "10.246.0.0/16")
}

pub(super) async fn service_cidr_non_overlapping(ctx: Ctx) -> CheckResult<Outcome> {
    cidr_non_overlapping(&ctx, "SERVICE_CIDR", "10.247.0.0/16")
}

/// `name` equals `expected` (plain or JSON-list form) and overlaps no other network:
/// the cluster's other CIDR, and both CIDRs of every other cluster.
fn cidr_non_overlapping(ctx: &Ctx, name: &str, expected: &str) -> CheckResult<Outcome> {
    let repo = repo(ctx)?;
    let vars = variables(ctx)?;
    let raw = vars.require(name)?;
    let mine = match crate::net::cidrs_of(raw) {
        Ok(n) => n,
        Err(e) => return Ok(Outcome::fail(vars.object(name), format!("CIDR {expected}"), format!("{raw:?} ({e})"))),
    };
    let mut findings = vec![];
    let want: IpNet = expected.parse().map_err(Outcome::error)?;
    if mine != [want] {
        findings.push(Finding::new(vars.object(name), expected, format!("{raw:?}")));
    }
    let mut others: Vec<(String, String, Vec<IpNet>)> = vec![];
    for other in ["POD_CIDR", "SERVICE_CIDR"].into_iter().filter(|o| *o != name) {
        if let Some(v) = vars.get(other).and_then(|v| crate::net::cidrs_of(v).ok()) {
            others.push((vars.object(other), other.to_string(), v));
        }
    }
    for (_, pv) in other_variables(repo, &ctx.cluster)? {
        for other in ["POD_CIDR", "SERVICE_CIDR"] {
            if let Some(v) = pv.get(other).and_then(|v| crate::net::cidrs_of(v).ok()) {
                others.push((pv.object(other), other.to_string(), v));
            }
        }
    }
    for net in &mine {
        for (object, other, nets) in &others {
            for o in nets.iter().filter(|o| crate::net::overlaps(net, o)) {
                findings.push(Finding::new(vars.object(name), format!("a range not overlapping {other} {o} ({object})"), format!("{net}")));
            }
        }
    }
    Ok(Outcome::from_findings(findings, format!("{} = {raw:?}, disjoint from {} other cluster networks", vars.object(name), others.len())))
}

pub(super) async fn lb_pool_variables(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let vars = variables(&ctx)?;
    let (start, end) = crate::net::parse_ip_range("10.25.11.150-199").map_err(Outcome::error)?;
    let mut findings = vec![];
    for (name, want) in [("CILIUM_LB_POOL_START", start), ("CILIUM_LB_POOL_END", end)] {
        match vars.get(name) {
            None => findings.push(Finding::new(vars.object(name), format!("{want:?}"), "not defined")),
            Some(v) if v.parse::<Ipv4Addr>().ok() != Some(want) => findings.push(Finding::new(vars.object(name), format!("{want:?}"), format!("{v:?}"))),
            Some(_) => {}
        }
    }
    let Some(pool) = lb_pool(&vars)? else { return Ok(Outcome::Fail { findings }) };
    let pool_text = format!("{}-{}", pool.0, pool.1);
    if pool.0 > pool.1 {
        findings.push(Finding::new(vars.object("CILIUM_LB_POOL_START"), format!("<= CILIUM_LB_POOL_END {}", pool.1), pool.0.to_string()));
    }
    for (c, pv) in other_variables(repo, &ctx.cluster)? {
        if let Ok(Some(other)) = lb_pool(&pv)
            && u32::from(pool.0) <= u32::from(other.1)
            && u32::from(other.0) <= u32::from(pool.1)
        {
            findings.push(Finding::new(
                vars.object("CILIUM_LB_POOL_START/END"),
                format!("a pool disjoint from cluster {c}'s {}-{} ({})", other.0, other.1, pv.file.display()),
                pool_text.clone(),
            ));
        }
    }
    for name in ["CLUSTERMESH_IP", "CILIUM_GATEWAY_LB_IP"] {
        match vars.get(name) {
            None => findings.push(Finding::new(vars.object(name), format!("an address in {pool_text}"), "not defined")),
            Some(v) if !v.parse::<Ipv4Addr>().is_ok_and(|ip| crate::net::in_range(ip, pool)) => {
                findings.push(Finding::new(vars.object(name), format!("an address in the cluster's pool {pool_text}"), format!("{v:?}")))
            }
            Some(_) => {}
        }
    }
    let r = rendered(&ctx)?;
    let pools: Vec<&RenderedObject> = r.of_kind("CiliumLoadBalancerIPPool").collect();
    if pools.is_empty() {
        findings.push(Finding::new(format!("cluster {}: rendered manifests", ctx.cluster), format!("a CiliumLoadBalancerIPPool inside {pool_text}"), "none rendered"));
    }
    for p in &pools {
        let blocks = pool_blocks(&p.value);
        if blocks.is_empty() {
            findings.push(Finding::new(format!("{} spec.blocks", p.describe()), format!("blocks inside {pool_text}"), "no parsable block"));
        }
        for b in blocks {
            match b {
                Ok((s, e)) if u32::from(s) <= u32::from(e) && crate::net::in_range(s, pool) && crate::net::in_range(e, pool) => {}
                Ok((s, e)) => findings.push(Finding::new(format!("{} spec.blocks", p.describe()), format!("a block inside {pool_text}"), format!("{s}-{e}"))),
                Err(raw) => findings.push(Finding::new(format!("{} spec.blocks", p.describe()), format!("a block inside {pool_text}"), raw)),
            }
        }
    }
    Ok(Outcome::from_findings(
        findings,
        format!("{}: pool {pool_text}, disjoint from other clusters; CLUSTERMESH_IP and CILIUM_GATEWAY_LB_IP inside; {} CiliumLoadBalancerIPPool(s) inside", vars.file.display(), pools.len()),
    ))
}

pub(super) async fn bgp_asn_distinct(ctx: Ctx) -> CheckResult<Outcome> {
    let repo = repo(&ctx)?;
    let vars = variables(&ctx)?;
    let mut out = vec![vars.expect_eq("CILIUM_BGP_LOCAL_ASN", "64513")];
    if let Some(asn) = vars.get("CILIUM_BGP_LOCAL_ASN") {
        out.push(distinct_from_peers(repo, &ctx.cluster, &vars, "CILIUM_BGP_LOCAL_ASN", asn)?);
    }
    Ok(Outcome::all(out))
}

pub(super) async fn clustermesh_ip_in_pool(ctx: Ctx) -> CheckResult<Outcome> {
    let vars = variables(&ctx)?;
    let mut out = vec![vars.expect_eq("CLUSTERMESH_IP", "10.25.11.150")];
    if let (Some(ip), Some(pool)) = (vars.get("CLUSTERMESH_IP"), lb_pool(&vars)?)
        && !ip.parse::<Ipv4Addr>().is_ok_and(|a| crate::net::in_range(a, pool))
    {
        out.push(Outcome::fail(vars.object("CLUSTERMESH_IP"), format!("an address in the cluster's pool {}-{}", pool.0, pool.1), format!("{ip:?}")));
    }
    Ok(Outcome::all(out))
}

/// Fails when another cluster has the same value for `name`.
fn distinct_from_peers(repo: &GitopsRepo, cluster: &str, vars: &Variables, name: &str, value: &str) -> CheckResult<Outcome> {
    let findings: Vec<Finding> = other_variables(repo, cluster)?
        .into_iter()
        .filter(|(_, pv)| pv.get(name).is_some_and(|v| v.trim() == value.trim()))
        .map(|(c, pv)| Finding::new(vars.object(name), format!("a value different from cluster {c}'s ({})", pv.object(name)), format!("{value:?} (duplicate)")))
        .collect();
    Ok(Outcome::from_findings(findings, format!("{} = {value:?}, unique across clusters", vars.object(name))))
}

/// The cluster's LB pool from CILIUM_LB_POOL_START/END; None when either is undefined.
fn lb_pool(vars: &Variables) -> CheckResult<Option<(Ipv4Addr, Ipv4Addr)>> {
    let (Some(s), Some(e)) = (vars.get("CILIUM_LB_POOL_START"), vars.get("CILIUM_LB_POOL_END")) else { return Ok(None) };
    let parse = |name: &str, v: &str| v.trim().parse::<Ipv4Addr>().map_err(|_| Outcome::fail(vars.object(name), "an IPv4 address", format!("{v:?}")));
    Ok(Some((parse("CILIUM_LB_POOL_START", s)?, parse("CILIUM_LB_POOL_END", e)?)))
}

/// Address ranges of a CiliumLoadBalancerIPPool (`spec.blocks[]` start/stop or cidr,
/// and the older `spec.cidrs[]`); an unparsable block is returned as its text.
/// Works on the object as rendered from the repository and as read from a cluster.
pub(super) fn pool_blocks(pool: &Value) -> Vec<Result<(Ipv4Addr, Ipv4Addr), String>> {
    let mut out = vec![];
    for field in ["/spec/blocks", "/spec/cidrs"] {
        for b in pool.pointer(field).and_then(Value::as_array).into_iter().flatten() {
            let block = if let Some(cidr) = b.get("cidr") {
                match scalar_text(cidr).parse::<ipnet::Ipv4Net>() {
                    Ok(n) => Ok((n.network(), n.broadcast())),
                    Err(_) => Err(format!("cidr {:?}", scalar_text(cidr))),
                }
            } else {
                let s = b.get("start").map(scalar_text).unwrap_or_default();
                let e = b.get("stop").map(scalar_text).unwrap_or_else(|| s.clone());
                match (s.parse::<Ipv4Addr>(), e.parse::<Ipv4Addr>()) {
                    (Ok(s), Ok(e)) => Ok((s, e)),
                    _ => Err(format!("start {s:?} stop {e:?}")),
                }
            };
            out.push(block);
        }
    }
    out
}


