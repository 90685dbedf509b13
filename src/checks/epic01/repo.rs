//! EPIC-1 repository layer: the Talos node patches, templates, scripts and Taskfiles
//! of Story 1.1.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde_json::Value;

use super::{CONVERT_SCRIPT, HOSTNAMES_CRITERION, NODE_RANGES, OVERLAY, TASKFILES, TEMPLATE};
use crate::check::{CheckResult, Ctx, Finding, Outcome};
use crate::checks::kit::prelude::*;
use crate::repo::{str_at, GitopsRepo};

fn nodes(cluster: &str) -> CheckResult<Vec<Ipv4Addr>> {
    let (_, range) = NODE_RANGES.iter().find(|(c, _)| *c == cluster).ok_or_else(|| Outcome::error(format!("no node range for {cluster}")))?;
    let (s, e) = crate::net::parse_ip_range(range).map_err(Outcome::error)?;
    Ok((u32::from(s)..=u32::from(e)).map(Ipv4Addr::from).collect())
}

fn node_file(cluster: &str, ip: Ipv4Addr) -> PathBuf {
    PathBuf::from(format!("talos/{cluster}/{ip}.yaml"))
}

/// The node patch's machine configuration: of a multi-document patch, the document with
/// `machine:` (the others are Talos documents of their own kinds), else the first.
fn node_doc(repo: &GitopsRepo, file: &PathBuf) -> Option<Value> {
    let docs: Vec<&Value> = repo.documents.iter().filter(|d| &d.file == file).map(|d| &d.value).collect();
    docs.iter().find(|v| v.get("machine").is_some()).or(docs.first()).map(|v| (*v).clone())
}

/// The hostname a node patch sets: `machine.network.hostname`, or a `HostnameConfig`
/// document's `hostname` (Talos 1.12 multi-document configuration).
fn patch_hostname<'a>(docs: &[&'a Value]) -> Option<&'a str> {
    docs.iter()
        .find_map(|v| str_at(v, "/machine/network/hostname"))
        .or_else(|| docs.iter().filter(|v| str_at(v, "/kind") == Some("HostnameConfig")).find_map(|v| str_at(v, "/hostname")))
}

pub(super) async fn talos_conversion_done(ctx: Ctx) -> CheckResult<Outcome> {
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
        .files_under(Path::new("talos/nodes"))
        .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|f| f.display().to_string())
        .collect();
    if !leftovers.is_empty() {
        findings.push(Finding::new("talos/nodes/", "no unconverted single-cluster node configs", leftovers.join(", ")));
    }
    Ok(Outcome::from_findings(findings, format!("{CONVERT_SCRIPT} present; {written} node configs in the split layout, no talos/nodes/ left")))
}

pub(super) async fn talos_node_configs_split(ctx: Ctx) -> CheckResult<Outcome> {
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
        for f in repo.files_under(Path::new(&format!("talos/{cluster}"))) {
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
}

pub(super) async fn talos_hostnames(ctx: Ctx) -> CheckResult<Outcome> {
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
        let mut files: BTreeMap<&Path, Vec<&Value>> = BTreeMap::new();
        for d in repo.documents.iter().filter(|d| d.file.parent() == Some(dir.as_path())) {
            files.entry(d.file.as_path()).or_default().push(&d.value);
        }
        for (path, docs) in &files {
            let file = path.display().to_string();
            match patch_hostname(docs) {
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
}

pub(super) async fn talos_template_parameterised(ctx: Ctx) -> CheckResult<Outcome> {
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
}

pub(super) async fn taskfiles_take_cluster(ctx: Ctx) -> CheckResult<Outcome> {
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
}
