//! EPIC-1 checks: Talos multi-cluster bootstrap.
//!
//! Repository layer: the Talos node patches, templates, scripts and Taskfiles
//! that Story 1.1 lists. Story 1.2 happens in 1Password and on a workstation
//! (manual). Story 1.3 is about running clusters and DNS: cluster layer (nodes,
//! kubeconfig contexts) and data-plane (the API DNS records, resolved).

use crate::check::Phase;
use crate::cluster::nodes;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;

use crate::check::{Check, CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{str_at, GitopsRepo};

/// Repository layer first, then the live layers.
pub fn checks() -> Vec<Check> {
    [repo_checks(), cluster_checks()].concat()
}

fn repo_checks() -> Vec<Check> {
    vec![
        // Story 1.1
        Check::repo("1.1", "`convert-to-multicluster.sh` script executed successfully", "talos_conversion_done", talos_conversion_done).once(),
        Check::repo("1.1", "Node configs moved to `talos/infra/` and `talos/apps/`", "talos_node_configs_split", talos_node_configs_split).once(),
        Check::repo("1.1", HOSTNAMES_CRITERION, "talos_hostnames", talos_hostnames).once(),
        Check::repo(
            "1.1",
            "`machineconfig.yaml.j2` updated with cluster parameterization",
            "talos_template_parameterised",
            talos_template_parameterised,
        ),
        Check::repo("1.1", "Taskfiles updated with CLUSTER parameter support", "taskfiles_take_cluster", taskfiles_take_cluster).once(),
        Check::manual(
            "1.1",
            "machineconfig.yaml.j2 validated with `talosctl validate`",
            "talosctl validate needs the template rendered (minijinja-cli) and its op:// references resolved by `op inject` \
             against 1Password vault Prod, plus the talosctl binary: run `task talos:validate CLUSTER=infra` and \
             `CLUSTER=apps` on a workstation signed in to 1Password and confirm every node config validates",
        ),
        // Story 1.2
        Check::manual(
            "1.2",
            "Secrets generated for infra cluster",
            "`talosctl gen secrets` output lives only in /tmp on the operator's workstation and in 1Password, never in Git \
             (.gitignore excludes talos/**/*secrets*.yaml): a person confirms the infra bundle exists by opening item \
             infra-talos in vault Prod (fields MACHINE_TOKEN, CLUSTER_CA_CRT, ... that talos/machineconfig.yaml.j2 references)",
        ),
        Check::manual(
            "1.2",
            "Secrets generated for apps cluster",
            "`talosctl gen secrets` output lives only in /tmp on the operator's workstation and in 1Password, never in Git: \
             a person confirms the apps bundle exists by opening item apps-talos in vault Prod",
        ),
        Check::manual(
            "1.2",
            "Secrets imported to 1Password (infra-talos item)",
            "the harness has no 1Password access: a person runs `op item get infra-talos --vault Prod` and checks that every \
             op://Prod/infra-talos/<FIELD> referenced by talos/machineconfig.yaml.j2 is a field of the item",
        ),
        Check::manual(
            "1.2",
            "Secrets imported to 1Password (apps-talos item)",
            "the harness has no 1Password access: a person runs `op item get apps-talos --vault Prod` and checks that every \
             op://Prod/apps-talos/<FIELD> referenced by talos/machineconfig.yaml.j2 is a field of the item",
        ),
        Check::manual(
            "1.2",
            "`op inject` tested and working",
            "needs the 1Password CLI signed in to vault Prod: a person runs \
             `echo \"op://Prod/infra-talos/MACHINE_TOKEN\" | op inject` (and the same for apps-talos) and sees a token, not an error",
        ),
    ]
}

const HOSTNAMES_CRITERION: &str = "Hostnames updated (infra-01, infra-02, infra-03, apps-01, apps-02, apps-03)";

/// Node addresses per cluster, from Story 1.3's criteria ("Infra cluster deployed
/// (10.25.11.11-13)", "Apps cluster deployed (10.25.11.14-16)") and Story 1.1's file list.
const NODE_RANGES: [(&str, &str); 2] = [("infra", "10.25.11.11-13"), ("apps", "10.25.11.14-16")];

const CONVERT_SCRIPT: &str = "scripts/convert-to-multicluster.sh";

fn nodes(cluster: &str) -> CheckResult<Vec<Ipv4Addr>> {
    let (_, range) = NODE_RANGES.iter().find(|(c, _)| *c == cluster).ok_or_else(|| Outcome::error(format!("no node range for {cluster}")))?;
    let (s, e) = crate::net::parse_ip_range(range).map_err(Outcome::error)?;
    Ok((u32::from(s)..=u32::from(e)).map(Ipv4Addr::from).collect())
}

fn node_file(cluster: &str, ip: Ipv4Addr) -> PathBuf {
    PathBuf::from(format!("talos/{cluster}/{ip}.yaml"))
}

/// The node patch's single document, if the file exists and parses.
fn node_doc(repo: &GitopsRepo, file: &PathBuf) -> Option<Value> {
    repo.documents.iter().find(|d| &d.file == file).map(|d| d.value.clone())
}

async fn talos_conversion_done(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let mut findings = vec![];
        if repo.resolve(CONVERT_SCRIPT).is_none() {
            findings.push(Finding::new(CONVERT_SCRIPT, "file present in the repository", "missing"));
        }
        // The script writes talos/<cluster>/<ip>.yaml from the old talos/nodes/<ip>.yaml.
        let mut written = 0;
        for (cluster, _) in NODE_RANGES {
            for ip in nodes(cluster)? {
                let file = node_file(cluster, ip);
                if repo.root.join(&file).is_file() {
                    written += 1;
                } else {
                    findings.push(Finding::new(file.display().to_string(), format!("written by {CONVERT_SCRIPT}"), "missing"));
                }
            }
        }
        let leftovers: Vec<String> = repo
            .files_under(std::path::Path::new("talos/nodes"))
            .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .map(|f| f.display().to_string())
            .collect();
        if !leftovers.is_empty() {
            findings.push(Finding::new("talos/nodes/", "no unconverted single-cluster node configs", leftovers.join(", ")));
        }
        Ok(Outcome::from_findings(findings, format!("{CONVERT_SCRIPT} present; {written} node configs in the split layout, no talos/nodes/ left")))
    })
}

async fn talos_node_configs_split(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let mut findings = vec![];
        let mut count = 0;
        for (cluster, _) in NODE_RANGES {
            for ip in nodes(cluster)? {
                let file = node_file(cluster, ip);
                let Some(doc) = node_doc(repo, &file) else {
                    findings.push(Finding::new(file.display().to_string(), format!("node config of {ip} in talos/{cluster}/"), "missing"));
                    continue;
                };
                count += 1;
                if let Some(name) = str_at(&doc, "/cluster/clusterName").filter(|n| *n != cluster) {
                    findings.push(Finding::new(format!("{}: cluster.clusterName", file.display()), cluster, name));
                }
                let addresses: Vec<String> = doc
                    .pointer("/machine/network/interfaces")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|i| i.get("addresses").and_then(Value::as_array).cloned().unwrap_or_default())
                    .filter_map(|a| a.as_str().map(String::from))
                    .collect();
                if !addresses.is_empty() && !addresses.iter().any(|a| a.split('/').next() == Some(&ip.to_string())) {
                    findings.push(Finding::new(format!("{}: machine.network.interfaces[].addresses", file.display()), format!("{ip}/<prefix>"), format!("{addresses:?}")));
                }
            }
            // A node config of another cluster's address in this directory.
            for f in repo.files_under(std::path::Path::new(&format!("talos/{cluster}"))) {
                let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if let Ok(ip) = stem.parse::<Ipv4Addr>()
                    && !nodes(cluster)?.contains(&ip)
                {
                    let range = NODE_RANGES.iter().find(|(c, _)| *c == cluster).map(|(_, r)| *r).unwrap_or("");
                    findings.push(Finding::new(f.display().to_string(), format!("only {cluster} nodes ({range}) in talos/{cluster}/"), format!("node {ip}")));
                }
            }
        }
        Ok(Outcome::from_findings(findings, format!("{count} node configs in talos/infra/ and talos/apps/ with matching clusterName and address")))
    })
}

async fn talos_hostnames(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let list = HOSTNAMES_CRITERION.split_once('(').and_then(|(_, r)| r.split_once(')')).map(|(l, _)| l).unwrap_or("");
        let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for h in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let cluster = h.rsplit_once('-').map(|(c, _)| c).unwrap_or(h);
            expected.entry(cluster.to_string()).or_default().insert(h.to_string());
        }
        let mut findings = vec![];
        for (cluster, want) in &expected {
            let dir = PathBuf::from(format!("talos/{cluster}"));
            let mut seen: BTreeMap<String, String> = BTreeMap::new();
            for d in repo.documents.iter().filter(|d| d.file.parent() == Some(dir.as_path())) {
                let file = d.file.display().to_string();
                match str_at(&d.value, "/machine/network/hostname") {
                    None => findings.push(Finding::new(format!("{file}: machine.network.hostname"), format!("one of {want:?}"), "not set")),
                    Some(h) if !want.contains(h) => findings.push(Finding::new(format!("{file}: machine.network.hostname"), format!("one of {want:?}"), h)),
                    Some(h) => {
                        if let Some(prev) = seen.insert(h.to_string(), file.clone()) {
                            findings.push(Finding::new(format!("{file}: machine.network.hostname"), format!("unique (also set in {prev})"), h));
                        }
                    }
                }
            }
            for h in want.iter().filter(|h| !seen.contains_key(*h)) {
                findings.push(Finding::new(format!("talos/{cluster}/*.yaml: machine.network.hostname"), h.as_str(), "no node config sets it"));
            }
        }
        let all: Vec<&String> = expected.values().flatten().collect();
        Ok(Outcome::from_findings(findings, format!("machine.network.hostname set to {all:?} in talos/<cluster>/")))
    })
}

const TEMPLATE: &str = "talos/machineconfig.yaml.j2";
const OVERLAY: &str = "talos/machineconfig-multicluster.yaml.j2";

async fn talos_template_parameterised(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let mut findings = vec![];
        let mut texts = vec![];
        for f in [TEMPLATE, OVERLAY] {
            match repo.resolve(f).and_then(|p| repo.read_text(&p)) {
                Some(t) => texts.push((f, t)),
                None => findings.push(Finding::new(f, "file present in the repository", "missing")),
            }
        }
        let param = Regex::new(r#"ENV\.CLUSTER\b|env\(\s*["']CLUSTER["']|\{\{-?\s*CLUSTER\b|\{%-?[^%]*\bCLUSTER\b"#).expect("static regex");
        let literal_name = Regex::new(r"(?m)^\s*clusterName:\s*([^\s{#][^\s#]*)\s*$").expect("static regex");
        for (f, text) in &texts {
            if !param.is_match(text) {
                findings.push(Finding::new(*f, "the cluster read from the CLUSTER parameter (e.g. ENV.CLUSTER)", "no reference to CLUSTER"));
            }
            if let Some(c) = literal_name.captures(text) {
                findings.push(Finding::new(format!("{f}: cluster.clusterName"), "a template expression ({{ cluster }})", format!("the literal {:?}", &c[1])));
            }
        }
        // The pod and service subnets Talos gives this cluster are the ones Cilium is configured with.
        let vars = variables(&ctx)?;
        let all: String = texts.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n");
        if !texts.is_empty() {
            for name in ["POD_CIDR", "SERVICE_CIDR"] {
                let Some(raw) = vars.get(name) else { continue };
                for net in crate::net::cidrs_of(raw).unwrap_or_default() {
                    if !all.contains(&net.to_string()) {
                        findings.push(Finding::new(
                            format!("{TEMPLATE} / {OVERLAY}: {} subnet of {}", if name == "POD_CIDR" { "pod" } else { "service" }, ctx.cluster),
                            format!("{net} ({})", vars.object(name)),
                            "not in the templates",
                        ));
                    }
                }
            }
        }
        Ok(Outcome::from_findings(findings, format!("{TEMPLATE} and {OVERLAY} read CLUSTER; subnets of {} match its POD_CIDR/SERVICE_CIDR", ctx.cluster)))
    })
}

const TASKFILES: [&str; 2] = [".taskfiles/talos/Taskfile.yaml", ".taskfiles/bootstrap/Taskfile.yaml"];

async fn taskfiles_take_cluster(ctx: Ctx) -> Outcome {
    outcome(|| {
        let repo = repo(&ctx)?;
        let mut findings = vec![];
        let mut evidence = vec![];
        for f in TASKFILES {
            let Some(doc) = repo.documents_in(f).into_iter().next() else {
                findings.push(Finding::new(f, "a Taskfile present in the repository", if repo.resolve(f).is_some() { "no YAML document" } else { "missing" }));
                continue;
            };
            let tasks = doc.value.get("tasks").and_then(Value::as_object).cloned().unwrap_or_default();
            let mut taking = vec![];
            for (name, task) in &tasks {
                let requires: Vec<String> =
                    task.pointer("/requires/vars").and_then(Value::as_array).into_iter().flatten().map(|v| v.as_str().map(String::from).unwrap_or_else(|| str_at(v, "/name").unwrap_or("").to_string())).collect();
                let text = serde_json::to_string(task).unwrap_or_default();
                let uses = text.contains(".CLUSTER}}") || text.contains(".CLUSTER ") || text.contains(".CLUSTER}");
                if requires.iter().any(|r| r == "CLUSTER") {
                    taking.push(name.clone());
                } else if uses {
                    findings.push(Finding::new(format!("{f}: task {name} requires.vars"), "CLUSTER (the task uses {{.CLUSTER}})", format!("{requires:?}")));
                }
            }
            if f.contains("/talos/") && !taking.iter().any(|t| t == "apply-node") {
                findings.push(Finding::new(format!("{f}: task apply-node"), "requires.vars with CLUSTER", if tasks.contains_key("apply-node") { "does not require CLUSTER" } else { "no task apply-node" }));
            }
            if taking.is_empty() {
                findings.push(Finding::new(f, "tasks taking a CLUSTER parameter", "none"));
            }
            evidence.push(format!("{f}: {} task(s) require CLUSTER ({})", taking.len(), taking.join(", ")));
        }
        Ok(Outcome::from_findings(findings, evidence.join("; ")))
    })
}

// ---- cluster layer (live Kubernetes API) -------------------------------------

const INFRA_DEPLOYED: &str = "Infra cluster deployed (10.25.11.11-13)";
const APPS_DEPLOYED: &str = "Apps cluster deployed (10.25.11.14-16)";
const ALL_NOT_READY: &str = "All 6 nodes in NotReady state (expected - no CNI yet)";

const DNS_INFRA: &str = "DNS records created (infra-k8s.monosense.io → 10.25.11.11)";
const DNS_APPS: &str = "DNS records created (apps-k8s.monosense.io → 10.25.11.14)";

fn cluster_checks() -> Vec<Check> {
    vec![
        Check::data_plane("1.3", DNS_INFRA, "dns_record_infra_api", |ctx| dns_record_resolves(ctx, DNS_INFRA)).once(),
        Check::data_plane("1.3", DNS_APPS, "dns_record_apps_api", |ctx| dns_record_resolves(ctx, DNS_APPS)).once(),
        Check::cluster("1.3", INFRA_DEPLOYED, "infra_nodes_at_documented_addresses", |ctx| nodes_at_documented_addresses(ctx, INFRA_DEPLOYED)),
        Check::cluster("1.3", APPS_DEPLOYED, "apps_nodes_at_documented_addresses", |ctx| nodes_at_documented_addresses(ctx, APPS_DEPLOYED)),
        Check::cluster("1.3", "Both clusters bootstrapped and healthy", "cluster_bootstrapped_and_healthy", cluster_bootstrapped_and_healthy),
        Check::cluster("1.3", "Kubeconfigs generated and merged", "kubeconfig_contexts_merged", kubeconfig_contexts_merged).once(),
        Check::cluster("1.3", ALL_NOT_READY, "all_nodes_not_ready_before_cni", all_nodes_not_ready_before_cni).once().in_phase(Phase::Bootstrap),
        Check::cluster("1.3", "PodCIDRs verified as non-overlapping", "pod_cidrs_non_overlapping", pod_cidrs_non_overlapping).once(),
    ]
}

/// Port of the Kubernetes API behind the record: Talos' cluster endpoint is
/// `https://<cluster>-k8s.monosense.io:6443` (talos/machineconfig.yaml.j2).
const API_PORT: u16 = 6443;

/// `name → address` as the criterion writes it.
fn dns_record_of(criterion: &str) -> Option<(String, std::net::IpAddr)> {
    let inner = criterion.split_once('(')?.1.rsplit_once(')')?.0;
    let (name, ip) = inner.split_once('→').or_else(|| inner.split_once("->"))?;
    Some((name.trim().to_string(), ip.trim().parse().ok()?))
}

/// The record resolves, with the resolver the harness reaches the clusters through, to
/// the address the criterion names.
async fn dns_record_resolves(ctx: Ctx, criterion: &'static str) -> Outcome {
    let Some((name, want)) = dns_record_of(criterion) else {
        return Outcome::error(format!("criterion {criterion:?} names no `name → address` record"));
    };
    let Some(target) = &ctx.target else { return Outcome::skip("no cluster target") };
    let object = format!("DNS A record {name}");
    let via = target.resolver.describe();
    let observed: Vec<std::net::IpAddr> = match target.resolver.lookup(&name, API_PORT).await {
        Ok(addrs) => addrs.iter().map(|a| a.ip()).collect(),
        Err(e) => return Outcome::fail(object, format!("resolves to {want}"), format!("lookup failed: {e} ({via})")),
    };
    if observed.contains(&want) {
        Outcome::pass(format!("{name} resolves to {} ({via})", observed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))
    } else if observed.is_empty() {
        Outcome::fail(object, format!("resolves to {want}"), format!("no record ({via})"))
    } else {
        Outcome::fail(object, format!("resolves to {want}"), format!("{} ({via})", observed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")))
    }
}

/// The cluster's nodes sit at exactly the addresses the criterion names.
async fn nodes_at_documented_addresses(ctx: Ctx, criterion: &'static str) -> Outcome {
    let Some(range) = crate::net::range_in_text(criterion) else {
        return Outcome::error(format!("criterion {criterion:?} names no address range"));
    };
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    match nodes::list(client, &ctx.cluster).await {
        Ok(n) => nodes::expect_internal_ips(&ctx.cluster, &n, &range.addresses()),
        Err(o) => o,
    }
}

/// The API server reports ready and nodes have registered with it.
async fn cluster_bootstrapped_and_healthy(ctx: Ctx) -> Outcome {
    let client = match ctx.kube() { Ok(c) => c, Err(o) => return o };
    let readyz = match raw_get(client, "/readyz").await {
        Ok(body) => body,
        Err(e) => return crate::cluster::api_error(&format!("GET /readyz on cluster {}", ctx.cluster), e),
    };
    if readyz.trim() != "ok" {
        return Outcome::fail(format!("cluster {} /readyz", ctx.cluster), "ok", readyz.trim().to_string());
    }
    let version = client.apiserver_version().await.map(|v| v.git_version).unwrap_or_else(|_| "unknown".into());
    match nodes::list(client, &ctx.cluster).await {
        Ok(n) if n.is_empty() => Outcome::fail(format!("cluster {}", ctx.cluster), "nodes registered", "no nodes"),
        Ok(n) => Outcome::pass(format!("cluster {}: /readyz ok, Kubernetes {version}, {} nodes registered", ctx.cluster, n.len())),
        Err(o) => o,
    }
}

/// One kubeconfig holds a working context for every cluster of the repository.
async fn kubeconfig_contexts_merged(ctx: Ctx) -> Outcome {
    let Some(target) = &ctx.target else { return Outcome::skip("no cluster target") };
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
                Err(e) => crate::cluster::api_error(&format!("context for cluster {cluster}"), e),
            },
        });
    }
    Outcome::all(outcomes)
}

/// Right after bootstrap, before the CNI, every node of every cluster is NotReady.
async fn all_nodes_not_ready_before_cni(ctx: Ctx) -> Outcome {
    let expected: usize = ALL_NOT_READY.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or(0);
    let all = match nodes_of_every_cluster(&ctx).await { Ok(a) => a, Err(o) => return o };
    let total: usize = all.iter().map(|(_, n)| n.len()).sum();
    let mut outcomes: Vec<Outcome> = all.iter().map(|(c, n)| nodes::expect_all_not_ready(c, n)).collect();
    if total != expected {
        outcomes.push(Outcome::fail("nodes across all clusters", format!("{expected} nodes"), format!("{total} nodes")));
    }
    Outcome::all(outcomes)
}

/// Every node's podCIDR lies in its cluster's POD_CIDR (from the repository) and none overlap.
async fn pod_cidrs_non_overlapping(ctx: Ctx) -> Outcome {
    let all = match nodes_of_every_cluster(&ctx).await { Ok(a) => a, Err(o) => return o };
    let mut input = vec![];
    for (cluster, n) in all {
        let range = match ctx.repo() {
            Ok(repo) => match repo.variables(&cluster).map_err(Outcome::error).and_then(|v| v.require("POD_CIDR").map(str::to_string)) {
                Ok(value) => match crate::net::cidrs_of(&value) {
                    Ok(c) => c.first().copied(),
                    Err(e) => return Outcome::fail(format!("POD_CIDR of cluster {cluster}"), "a CIDR", e),
                },
                Err(o) => return o,
            },
            Err(_) => None,
        };
        input.push((cluster, n, range));
    }
    nodes::expect_disjoint_pod_cidrs(&input)
}

async fn nodes_of_every_cluster(ctx: &Ctx) -> Result<Vec<(String, Vec<nodes::NodeFacts>)>, Outcome> {
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
    #[test]
    fn dns_record_is_read_from_the_criterion() {
        let (name, ip) = super::dns_record_of(super::DNS_INFRA).unwrap();
        assert_eq!((name.as_str(), ip.to_string().as_str()), ("infra-k8s.monosense.io", "10.25.11.11"));
        assert_eq!(super::dns_record_of("DNS records created (apps-k8s.monosense.io -> 10.25.11.14)").unwrap().1.to_string(), "10.25.11.14");
        assert!(super::dns_record_of("DNS records created").is_none());
    }
}
