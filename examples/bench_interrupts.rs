//! Interrupts and leftovers: whole-suite runs on the simulation stopped at random points,
//! by SIGINT and SIGTERM in turn, then by SIGKILL followed by `sweep`. For each run it
//! prints when the signal came, the exit status, whether the JSON report was written (and
//! says interrupted), how long the exit took, and what was left in the clusters once
//! deletions finished: namespaces labelled `platform-acceptance.io/disposable` and Velero
//! objects labelled with a run. Prints figures; asserts nothing.
//!
//! `cargo run --release --example bench_interrupts -- [RUNS] [SEED]` (default 50 runs;
//! needs a running simulation: `platform-acceptance sim up`; about 20 s per run)

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use platform_acceptance::cluster::lease::{DISPOSABLE_LABEL, RUN_LABEL};
use platform_acceptance::sim::{self, SimConfig};

const KILLED: usize = 3;
/// Latest signal point: about the length of a whole-suite run.
const LATEST_MS: u64 = 25_000;

/// xorshift64*: reproducible points from a seed.
struct Points(u64);

impl Points {
    fn next_ms(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        300 + self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % (LATEST_MS - 300)
    }
}

/// Disposable namespaces, and Velero objects of some run, on both clusters.
async fn leftovers(cfg: &SimConfig) -> anyhow::Result<Vec<String>> {
    let mut out = vec![];
    for cluster in ["infra", "apps"] {
        let client = sim::client(cfg, cluster).await?;
        let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        out.extend(ns.list(&ListParams::default().labels(DISPOSABLE_LABEL)).await?.items.into_iter().map(|n| format!("{cluster}: namespace {}", n.metadata.name.unwrap_or_default())));
        for kind in ["Backup", "Restore", "BackupStorageLocation", "DeleteBackupRequest"] {
            let ar = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("velero.io", "v1", kind));
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "velero", &ar);
            out.extend(api.list(&ListParams::default().labels(RUN_LABEL)).await?.items.into_iter().map(|o| format!("{cluster}: {kind} velero/{}", o.metadata.name.unwrap_or_default())));
        }
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "velero");
        out.extend(secrets.list(&ListParams::default().labels(RUN_LABEL)).await?.items.into_iter().map(|s| format!("{cluster}: Secret velero/{}", s.metadata.name.unwrap_or_default())));
    }
    Ok(out)
}

/// Leftovers once deletions have finished (namespaces terminate), waiting up to `within`.
async fn settled(cfg: &SimConfig, within: Duration) -> anyhow::Result<Vec<String>> {
    let t = Instant::now();
    loop {
        let left = leftovers(cfg).await?;
        if left.is_empty() || t.elapsed() > within {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn run(bin: &PathBuf, json: &PathBuf) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--repo", "fixtures/gitops", "--sim", "--progress", "quiet", "--json"]).arg(json).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    cmd
}

#[tokio::main]
async fn main() {
    if let Err(e) = bench().await {
        eprintln!("bench_interrupts: error: {e:#}");
        std::process::exit(1);
    }
}

async fn bench() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let seed: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0x9E37_79B9_7F4A_7C15);
    let cfg = SimConfig::from_env();
    let bin = sim::process::harness_binary().ok_or_else(|| anyhow::anyhow!("no platform-acceptance binary next to this example"))?;
    let before = settled(&cfg, Duration::from_secs(60)).await?;
    anyhow::ensure!(before.is_empty(), "the simulation has leftovers before the benchmark: {before:?} (run `platform-acceptance sweep --sim`)");
    let dir = tempfile::tempdir()?;
    let mut points = Points(seed);
    let (mut reports, mut clean, mut exits_ok) = (0, 0, 0);
    println!("{:>3}  {:<7} {:>8} {:>5} {:>7} {:>9}  leftovers", "run", "signal", "at", "exit", "report", "exit took");
    for i in 0..runs {
        let (signal, name) = if i % 2 == 0 { (libc::SIGINT, "SIGINT") } else { (libc::SIGTERM, "SIGTERM") };
        let json = dir.path().join(format!("run-{i}.json"));
        let at = Duration::from_millis(points.next_ms());
        let mut child = run(&bin, &json).spawn()?;
        tokio::time::sleep(at).await;
        let sent = Instant::now();
        let finished_before = child.try_wait()?.is_some();
        if !finished_before {
            unsafe { libc::kill(child.id() as i32, signal) };
        }
        let status = tokio::task::spawn_blocking(move || child.wait()).await??;
        let took = sent.elapsed();
        let code = status.code().unwrap_or(-1);
        let want = if finished_before { [0, 1] } else if signal == libc::SIGINT { [130, 130] } else { [143, 143] };
        exits_ok += usize::from(want.contains(&code));
        let report = std::fs::read_to_string(&json).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let written = report.as_ref().is_some_and(|r| finished_before || r.pointer("/summary/interrupted") == Some(&serde_json::Value::Bool(true)));
        reports += usize::from(written);
        let left = settled(&cfg, Duration::from_secs(90)).await?;
        clean += usize::from(left.is_empty());
        println!(
            "{i:>3}  {name:<7} {:>7.1}s {code:>5} {:>7} {:>8.1}s  {}",
            at.as_secs_f64(),
            if written { "yes" } else { "NO" },
            took.as_secs_f64(),
            if left.is_empty() { "none".to_string() } else { left.join(", ") }
        );
    }
    println!("signals: {runs} runs, {exits_ok} with the expected exit status (130 SIGINT, 143 SIGTERM, 0/1 when the run ended first), {reports} reports written, {clean} with nothing left");

    // SIGKILL: nothing runs the cleanups; `sweep` removes what the dead runs left once their Leases expire.
    let mut killed_left = vec![];
    for i in 0..KILLED {
        let json = dir.path().join(format!("killed-{i}.json"));
        let at = Duration::from_millis(8_000 + points.next_ms() % 12_000);
        let mut child = run(&bin, &json).spawn()?;
        tokio::time::sleep(at).await;
        let _ = child.kill();
        let _ = child.wait();
        killed_left.push((at, leftovers(&cfg).await?.len()));
    }
    println!("SIGKILL: {KILLED} runs killed at {}; objects left: {}", killed_left.iter().map(|(a, _)| format!("{:.1}s", a.as_secs_f64())).collect::<Vec<_>>().join(", "), killed_left.last().map(|(_, n)| *n).unwrap_or(0));
    // A run's Lease lasts 60 s from its last renewal.
    tokio::time::sleep(Duration::from_secs(65)).await;
    let t = Instant::now();
    let out = Command::new(&bin).args(["sweep", "--sim", "--repo", "fixtures/gitops"]).output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    let left = settled(&cfg, Duration::from_secs(90)).await?;
    println!("after sweep ({:.1}s, exit {}): {} object(s) left{}", t.elapsed().as_secs_f64(), out.status.code().unwrap_or(-1), left.len(), if left.is_empty() { String::new() } else { format!(": {}", left.join(", ")) });
    Ok(())
}
