//! Benchmark at scale: the node and workload criteria on a simulated apps cluster grown to
//! N kwok nodes and P pods, for each (N, P) given (default 100/1000 and 1000/10000): wall time
//! of the criteria and the peak RSS of the process that ran them (a child process per run),
//! with the run's read cache. Adds nodes `bench-NNNN` (kwok runs them, and every DaemonSet puts a pod
//! on each) and P pods bound to them in namespace `pa-bench-scale` to the running simulation,
//! then restarts the simulation (`sim down`, `sim up` with `healthy`) instead of removing
//! them. Prints figures; asserts nothing.
//!
//! `--keep` leaves the grown cluster running (to measure again with `--measure-run`; bring
//! the simulation down afterwards).
//!
//! `cargo run --release --example bench_scale [-- 100:1000 1000:10000]` (needs a running
//! simulation, `platform-acceptance sim up`, and the release binary beside the example,
//! `cargo build --release --bin platform-acceptance`, for the restart)

#[path = "common/rss.rs"]
mod rss;
#[path = "common/table.rs"]
mod table;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use platform_acceptance::runner::RunConfig;
use platform_acceptance::session::Session;
use platform_acceptance::sim::{self, SimConfig};
use serde_json::json;

const DOC: &str = "fixtures/multi-cluster-epics.md";
const GITOPS: &str = "fixtures/gitops";
const NS: &str = "pa-bench-scale";
const LABEL: &str = "platform-acceptance.io/bench";
/// Node and workload criteria of the apps cluster and of both clusters.
const CRITERIA: &str = "1.3.4,1.3.5,1.3.6,1.3.8,2.2.8,2.4.6,3.3.5,5.1.5,5.2.5,9.1.5,9.3.1";

/// Runs the criteria in a child process (this benchmark started with `--measure-run`) and
/// returns its figures and its peak RSS in MiB, which the child reports itself
/// ([`rss::peak_rss_mib`]: the kernel's `ru_maxrss` for the child would include the memory
/// this benchmark took to grow the cluster).
fn measured_run() -> anyhow::Result<((f64, u64, usize, usize), f64)> {
    let out = std::process::Command::new(std::env::current_exe()?).arg("--measure-run").stderr(std::process::Stdio::inherit()).output()?;
    if !out.status.success() {
        anyhow::bail!("the measured run ended with {}", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<&str> = line.lines().last().unwrap_or_default().split_whitespace().collect();
    let [secs, requests, units, evaluated, hwm_mib] = figures.as_slice() else { anyhow::bail!("the measured run printed {line:?}") };
    Ok(((secs.parse()?, requests.parse()?, units.parse()?, evaluated.parse()?), hwm_mib.parse()?))
}

/// The child's part: the criteria once, against the running simulation; prints
/// `seconds requests units evaluated peak-RSS-MiB`. Units are not blocked by failed
/// stories: the bench nodes are not the nodes the repository declares, so 1.3.4 (node
/// addresses) fails on a grown cluster, and blocking would skip every criterion after it.
async fn run_criteria() -> anyhow::Result<()> {
    let session = Session::new(DOC, Some(Path::new(GITOPS)))?;
    let mut targets = sim::targets::targets(&session.coverage.clusters, &Default::default()).await.map_err(anyhow::Error::msg)?;
    platform_acceptance::cluster::relay::attach(&mut targets, platform_acceptance::cluster::relay::DEFAULT_IMAGE);
    let session = session.with_targets(targets);
    let only = session.selectors(&[CRITERIA.to_string()])?;
    let t = Instant::now();
    let report = session.run(&only, &[], RunConfig { retries: 0, block: false, ..RunConfig::default() }).await;
    let secs = t.elapsed().as_secs_f64();
    let evaluated = report.results.iter().filter(|r| r.outcome.verdict() != platform_acceptance::outcome::Verdict::Skip).count();
    println!("{secs} {} {} {evaluated} {}", report.summary.api_requests.total, report.results.len(), rss::peak_rss_mib());
    Ok(())
}

async fn grow(client: &kube::Client, nodes: usize, pods: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let api: Api<Node> = Api::all(client.clone());
    let pp = PatchParams::apply("pa-bench").force();
    let have = api.list(&ListParams::default().labels(&format!("{LABEL}=scale"))).await?.items.len();
    let capacity: std::collections::BTreeMap<&str, &str> = sim::kwok::NODE_CAPACITY.into_iter().collect();
    futures::stream::iter((have..nodes).map(|i| {
        let (api, pp, capacity) = (&api, &pp, &capacity);
        async move {
            let name = node_name(i);
            let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {LABEL: "scale", "kubernetes.io/hostname": name, "type": "kwok"},
                "annotations": {sim::kwok::NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"}},
                "status": {"capacity": capacity, "allocatable": capacity}});
            api.patch(&name, pp, &Patch::Apply(node)).await.map(drop)
        }
    }))
    .buffer_unordered(16)
    .try_collect::<Vec<()>>()
    .await?;
    let ns: Api<Namespace> = Api::all(client.clone());
    let _ = ns.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": NS, "labels": {LABEL: "scale"}}}))?).await;
    // Pods bound to the bench nodes directly (as a DaemonSet controller would), so neither
    // the ReplicaSet controller's nor the scheduler's request rate limits the size; kwok
    // runs them.
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), NS);
    let have = pods_api.list(&ListParams::default()).await?.items.len();
    futures::stream::iter((have..pods).map(|i| {
        let pods_api = &pods_api;
        async move {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("scale-{i:05}"), "namespace": NS, "labels": {"app": "scale", LABEL: "scale"}},
                "spec": {"nodeName": node_name(i % nodes.max(1)), "containers": [{"name": "c", "image": "registry.invalid/pause:1"}], "tolerations": [{"operator": "Exists"}]}});
            // A pod left by an interrupted earlier run is as good as a new one.
            match pods_api.create(&PostParams::default(), &serde_json::from_value(pod)?).await {
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                done => done.map(drop).map_err(anyhow::Error::from),
            }
        }
    }))
    .buffer_unordered(16)
    .try_collect::<Vec<()>>()
    .await?;
    println!("  {nodes} nodes and {pods} pods created in {:.0} s", t.elapsed().as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut said = Instant::now();
    loop {
        let running = pods_api.list(&ListParams::default()).await?.items.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        if running >= pods || Instant::now() > deadline {
            println!("  grown to {nodes} nodes, {running}/{pods} pods Running after {:.0} s", t.elapsed().as_secs_f64());
            return Ok(());
        }
        if said.elapsed() > Duration::from_secs(30) {
            eprintln!("  … {running}/{pods} pods Running after {:.0} s", t.elapsed().as_secs_f64());
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

fn node_name(i: usize) -> String {
    format!("bench-{i:04}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("--measure-run") {
        return run_criteria().await;
    }
    let sizes: Vec<(usize, usize)> = {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let parsed: Vec<(usize, usize)> = args.iter().filter_map(|a| a.split_once(':')).filter_map(|(n, p)| Some((n.parse().ok()?, p.parse().ok()?))).collect();
        if parsed.is_empty() { vec![(100, 1000), (1000, 10000)] } else { parsed }
    };
    // Checked before the cluster grows: restarting the simulation afterwards needs it.
    sim::process::harness_binary().ok_or_else(|| anyhow::anyhow!("no platform-acceptance binary next to this example (cargo build --release --bin platform-acceptance, or set PA_BIN)"))?;
    let cfg = SimConfig::from_env();
    let client = sim::client(&cfg, "apps").await?;
    println!("cores: {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    println!("node and workload criteria ({CRITERIA}), each run a process of its own:");
    let row = |what: String| -> anyhow::Result<()> {
        let ((secs, requests, units, evaluated), rss) = measured_run()?;
        println!("  {what} | {units} units, {evaluated} evaluated | {secs:>5.2} s | {requests} requests | peak RSS {rss:.0} MiB");
        table::row(&format!("node and workload criteria, {what}"), format!("{secs:.2} s, {requests} requests, peak RSS {rss:.0} MiB"), "≤ 5 s, ≤ 200 MiB");
        Ok(())
    };
    row("apps as the repository declares it".into())?;
    let outcome = async {
        for (nodes, pods) in &sizes {
            grow(&client, *nodes, *pods).await?;
            row(format!("apps with {nodes} nodes, {pods} more pods"))?;
        }
        anyhow::Ok(())
    }
    .await;
    if std::env::args().any(|a| a == "--keep") {
        println!("  the grown apps cluster is left running (--keep); `platform-acceptance sim down` removes it");
        return outcome;
    }
    // The grown cluster is thrown away rather than shrunk: deleting a thousand nodes and
    // waiting for the pod garbage collector to remove the DaemonSets' pods on them takes
    // over an hour; a fresh simulation takes about a minute.
    let t = Instant::now();
    sim::down(&cfg).await?;
    sim::up_with(&cfg, sim::scenario::apply(&cfg, "healthy")).await?;
    println!("  simulation restarted with `healthy` in {:.0} s (the grown apps cluster is gone)", t.elapsed().as_secs_f64());
    outcome
}
