//! The harness and chainsaw side by side on the running simulation: the same criteria
//! (`fixtures/chainsaw/`, one chainsaw test per criterion and cluster, 44 in all), wall
//! time and API requests of each, and their verdicts on the healthy platform and on fault
//! scenarios. Prints figures; asserts nothing.
//!
//! Requests are counted the same way for both tools, by the API servers: each tool runs
//! as its own impersonated user (`pa-bench-harness`, `pa-bench-chainsaw`, bound to
//! cluster-admin for the run), and a FlowSchema per user lets API Priority and Fairness
//! count its requests (`apiserver_flowcontrol_dispatched_requests_total{flow_schema}`),
//! which the controllers' own traffic never reaches.
//!
//! ```text
//! sim/build.sh chainsaw                       # once: chainsaw v0.2.12 from the Go module proxy
//! cargo build --release --bin platform-acceptance
//! platform-acceptance sim up
//! cargo run --release --example bench_chainsaw [-- SCENARIO ...]   # default: cni-down ceph-degraded
//! ```
//!
//! Fault scenarios are applied to the running simulation and `healthy` is applied again
//! at the end.

#[path = "common/table.rs"]
mod table;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::flowcontrol::v1::FlowSchema;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use platform_acceptance::sim::{self, SimConfig};
use serde_json::{Value, json};

const TOOLS: [&str; 2] = ["harness", "chainsaw"];
const RUNS: usize = 3;
const MANAGER: &str = "pa-bench-chainsaw";

/// `(criterion, cluster)` of chainsaw test `c<id with dashes>-<cluster>`.
fn unit_of(test: &str) -> Option<(String, String)> {
    let (id, cluster) = test.strip_prefix('c')?.rsplit_once('-')?;
    Some((id.replace('-', "."), cluster.to_string()))
}

/// `(criterion, cluster)` of every chainsaw test in `dir`.
fn units(dir: &Path) -> anyhow::Result<BTreeSet<(String, String)>> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir)? {
        out.extend(unit_of(&e?.file_name().to_string_lossy()));
    }
    Ok(out)
}

fn user(tool: &str) -> String {
    format!("pa-bench-{tool}")
}

/// The simulation's kubeconfig with every user impersonating `pa-bench-<tool>`.
fn kubeconfig_as(cfg: &SimConfig, tool: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let mut kc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(sim::kubeconfig_path(cfg))?)?;
    for u in kc.get_mut("users").and_then(|u| u.as_sequence_mut()).context("kubeconfig without users")? {
        if let Some(m) = u.get_mut("user").and_then(|u| u.as_mapping_mut()) {
            m.insert("as".into(), user(tool).into());
        }
    }
    let path = dir.join(format!("{tool}.kubeconfig"));
    std::fs::write(&path, serde_yaml_ng::to_string(&kc)?)?;
    Ok(path)
}

/// Per tool: cluster-admin for its user and a FlowSchema that counts its requests.
async fn set_up(client: &kube::Client) -> anyhow::Result<()> {
    let pp = PatchParams::apply(MANAGER).force();
    for tool in TOOLS {
        let name = user(tool);
        let binding: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGER}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        }))?;
        Api::<ClusterRoleBinding>::all(client.clone()).patch(&name, &pp, &Patch::Apply(&binding)).await?;
        let schema: FlowSchema = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": MANAGER}},
            "spec": {
                "matchingPrecedence": 500,
                "priorityLevelConfiguration": {"name": "workload-high"},
                "rules": [{
                    "subjects": [{"kind": "User", "user": {"name": name}}],
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }],
            },
        }))?;
        Api::<FlowSchema>::all(client.clone()).patch(&name, &pp, &Patch::Apply(&schema)).await?;
    }
    Ok(())
}

async fn tear_down(client: &kube::Client) {
    for tool in TOOLS {
        let _ = Api::<ClusterRoleBinding>::all(client.clone()).delete(&user(tool), &DeleteParams::default()).await;
        let _ = Api::<FlowSchema>::all(client.clone()).delete(&user(tool), &DeleteParams::default()).await;
    }
}

/// Requests API Priority and Fairness dispatched for `pa-bench-<tool>` on this API server.
async fn dispatched(client: &kube::Client, tool: &str) -> anyhow::Result<u64> {
    let text = client.request_text(http::Request::get("/metrics").body(vec![])?).await?;
    let label = format!("flow_schema=\"{}\"", user(tool));
    Ok(text
        .lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_dispatched_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

async fn dispatched_all(clients: &[kube::Client], tool: &str) -> anyhow::Result<u64> {
    let mut n = 0;
    for c in clients {
        n += dispatched(c, tool).await?;
    }
    Ok(n)
}

/// Failing units of one run of `tool`, and its wall time.
fn run_tool(tool: &str, ctx: &Ctx, units: &BTreeSet<(String, String)>) -> anyhow::Result<(BTreeSet<(String, String)>, Duration)> {
    let out = ctx.dir.join(format!("{tool}-report"));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let kubeconfig = kubeconfig_as(&ctx.cfg, tool, &ctx.dir)?;
    let t = Instant::now();
    if tool == "harness" {
        let ids: BTreeSet<&str> = units.iter().map(|(id, _)| id.as_str()).collect();
        let status = std::process::Command::new(&ctx.harness)
            .args(["run", "--repo", "fixtures/gitops", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(["--only", &ids.into_iter().collect::<Vec<_>>().join(","), "--progress", "quiet", "--json"])
            .arg(out.join("report.json"))
            .stdout(std::process::Stdio::null())
            .status()?;
        let elapsed = t.elapsed();
        let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).with_context(|| format!("harness exited {status}"))?)?;
        let failed = report["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|u| !matches!(u["outcome"]["verdict"].as_str(), Some("pass" | "skip")))
            .map(|u| (u["id"].as_str().unwrap_or("").to_string(), u["cluster"].as_str().unwrap_or("").to_string()))
            .collect();
        return Ok((failed, elapsed));
    }
    let mut cmd = std::process::Command::new(&ctx.chainsaw);
    cmd.arg("test").arg("--test-dir").arg(&ctx.tests);
    for c in ["infra", "apps"] {
        cmd.arg("--cluster").arg(format!("{c}={}:{c}", kubeconfig.display()));
    }
    cmd.args(["--report-format", "JSON", "--report-name", "report", "--report-path"])
        .arg(&out)
        .args(["--assert-timeout", "20s", "--no-color"])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let status = cmd.status()?;
    let elapsed = t.elapsed();
    let report: Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).with_context(|| format!("chainsaw exited {status}"))?)?;
    let mut failed = BTreeSet::new();
    for test in report["tests"].as_array().into_iter().flatten() {
        let failure = test["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["operations"].as_array().into_iter().flatten())
            .any(|o| o.get("failure").is_some());
        if failure {
            failed.extend(unit_of(test["name"].as_str().unwrap_or("")));
        }
    }
    Ok((failed, elapsed))
}

struct Ctx {
    cfg: SimConfig,
    dir: PathBuf,
    tests: PathBuf,
    harness: PathBuf,
    chainsaw: PathBuf,
}

fn show(set: &BTreeSet<(String, String)>) -> String {
    if set.is_empty() {
        return "none".into();
    }
    set.iter().map(|(id, c)| format!("{id}@{c}")).collect::<Vec<_>>().join(", ")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = SimConfig::from_env();
    let chainsaw = cfg.cache_dir.join("bin/chainsaw");
    if !chainsaw.is_file() {
        println!("harness vs chainsaw                       : skipped (no {}; build it with `sim/build.sh chainsaw`)", chainsaw.display());
        return Ok(());
    }
    let harness = sim::process::harness_binary().context("no platform-acceptance binary next to this example (cargo build --release --bin platform-acceptance)")?;
    if !sim::status(&cfg).await.is_ok_and(|s| s.is_healthy()) {
        bail!("the simulation is not up: run `platform-acceptance sim up` first");
    }
    let dir = std::env::temp_dir().join(format!("pa-bench-chainsaw-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let tests = PathBuf::from("fixtures/chainsaw");
    let units = units(&tests)?;
    let ctx = Ctx { cfg, dir, tests, harness, chainsaw };
    let mut clients = vec![];
    for c in ["infra", "apps"] {
        clients.push(sim::client(&ctx.cfg, c).await?);
    }
    for c in &clients {
        set_up(c).await?;
    }
    let result = bench(&ctx, &clients, &units).await;
    for c in &clients {
        tear_down(c).await;
    }
    let _ = std::fs::remove_dir_all(&ctx.dir);
    result
}

async fn bench(ctx: &Ctx, clients: &[kube::Client], units: &BTreeSet<(String, String)>) -> anyhow::Result<()> {
    let ids: BTreeSet<&str> = units.iter().map(|(id, _)| id.as_str()).collect();
    println!("harness vs chainsaw v0.2.12: {} criteria, {} tests (criterion x cluster), {RUNS} runs each after one warm-up, healthy scenario", ids.len(), units.len());
    let mut figures: BTreeMap<&str, (Vec<f64>, Vec<u64>)> = BTreeMap::new();
    for tool in TOOLS {
        let (failed, _) = run_tool(tool, ctx, units)?;
        if !failed.is_empty() {
            println!("  {tool} fails on the healthy platform: {}", show(&failed));
        }
        for _ in 0..RUNS {
            let before = dispatched_all(clients, tool).await?;
            let (_, wall) = run_tool(tool, ctx, units)?;
            let after = dispatched_all(clients, tool).await?;
            let f = figures.entry(tool).or_default();
            f.0.push(wall.as_secs_f64());
            f.1.push(after - before);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (tool, (walls, requests)) in &figures {
        println!(
            "  {tool:<8}: wall {:>6.2} s (median; {}), API requests per run {:?} (counted by the API servers)",
            median(walls),
            walls.iter().map(|w| format!("{w:.2}")).collect::<Vec<_>>().join(", "),
            requests
        );
    }
    let (h, c) = (&figures["harness"], &figures["chainsaw"]);
    let (wall_ratio, request_ratio) = (median(&c.0) / median(&h.0), c.1.iter().sum::<u64>() as f64 / h.1.iter().sum::<u64>().max(1) as f64);
    println!("  ratio   : chainsaw/harness wall {wall_ratio:.1}x (goal ≥ 5x), requests {request_ratio:.1}x (goal ≥ 5x)");
    let per_run = |v: &[u64]| v.iter().sum::<u64>() / v.len().max(1) as u64;
    table::row(
        &format!("harness vs chainsaw, {} read-only criteria: wall time", ids.len()),
        format!("{:.2} s vs {:.2} s ({wall_ratio:.1}x)", median(&h.0), median(&c.0)),
        "chainsaw ≥ 5x",
    );
    table::row(
        &format!("harness vs chainsaw, {} read-only criteria: API requests per run", ids.len()),
        format!("{} vs {} ({request_ratio:.1}x)", per_run(&h.1), per_run(&c.1)),
        "chainsaw ≥ 5x",
    );

    let scenarios: Vec<String> = std::env::args().skip(1).collect();
    let scenarios = if scenarios.is_empty() { vec!["cni-down".to_string(), "ceph-degraded".to_string()] } else { scenarios };
    for name in &scenarios {
        sim::scenario::apply(&ctx.cfg, name).await?;
        let (hf, _) = run_tool("harness", ctx, units)?;
        let (cf, _) = run_tool("chainsaw", ctx, units)?;
        let same = hf == cf;
        println!("  scenario {name}: harness fails {}; chainsaw fails {}{}", show(&hf), show(&cf), if same { " (same)" } else { "" });
        table::row(&format!("harness vs chainsaw, scenario {name}: same failing units"), if same { "yes".to_string() } else { "no".to_string() }, "yes");
        if !same {
            println!("    only the harness: {}", show(&hf.difference(&cf).cloned().collect()));
            println!("    only chainsaw   : {}", show(&cf.difference(&hf).cloned().collect()));
        }
    }
    if !scenarios.is_empty() {
        sim::scenario::apply(&ctx.cfg, "healthy").await?;
    }
    Ok(())
}
