//! Benchmark of the local simulation: cold `sim up` (fresh state) of the control planes to
//! all-Ready, first without a template (CRDs applied, template written), then from the
//! template (`sim::template`); then what `platform-acceptance sim up` does from built
//! binaries: control planes from the template, data services, real controllers and the
//! `healthy` scenario applied and settled; warm `sim up` (already running), total RSS of its
//! processes, `sim down`.
//! Uses its own state directory and ports so it never touches a running simulation.
//! Prints figures; asserts nothing.
//!
//! `cargo run --release --example bench_sim` (needs `make sim-build`)

use std::time::Instant;

#[path = "common/table.rs"]
mod table;

use platform_acceptance::sim::{self, SimConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cfg = SimConfig::from_env();
    cfg.state_dir = std::env::temp_dir().join(format!("pa-bench-sim-{}", std::process::id()));
    // SAFETY: single-threaded at this point; set before any sim code reads it.
    unsafe { std::env::set_var("PA_SIM_PORT_BASE", std::env::var("PA_BENCH_PORT_BASE").unwrap_or_else(|_| "24100".into())) };

    // This benchmark's own ports make its own templates: removed, so the first start is cold.
    let fingerprint = sim::crds::fingerprint(&cfg.cache_dir);
    for c in sim::cluster_specs(&cfg)? {
        let _ = std::fs::remove_dir_all(sim::template::root(&cfg).join(sim::template::key(&cfg, &c, &fingerprint)));
    }
    let t = Instant::now();
    sim::up(&cfg).await?;
    let first = t.elapsed();
    sim::down(&cfg).await?;

    let t = Instant::now();
    let status = sim::up(&cfg).await?;
    let cold = t.elapsed();
    anyhow::ensure!(status.from_template.len() == 2, "the second cold start did not begin from the templates");
    let rss_mib = status.total_rss_kib() as f64 / 1024.0;

    sim::down(&cfg).await?;
    let t = Instant::now();
    let (settled, _) = sim::up_with(&cfg, sim::scenario::apply(&cfg, "healthy")).await?;
    let healthy = t.elapsed();
    let settled_rss_mib = settled.total_rss_kib() as f64 / 1024.0;

    let t = Instant::now();
    sim::up(&cfg).await?;
    let warm = t.elapsed();

    let t = Instant::now();
    sim::down(&cfg).await?;
    let down = t.elapsed();

    println!("sim up, first cold (CRDs applied, template written): {:>7.1} s", first.as_secs_f64());
    println!("sim up, cold from the template                      : {:>7.1} s   (goal ≤ 20 s)", cold.as_secs_f64());
    println!("sim up to the healthy scenario applied and settled  : {:>7.1} s   (goal ≤ 30 s with real controllers)", healthy.as_secs_f64());
    println!("sim up, warm (already running)                      : {:>7.1} s", warm.as_secs_f64());
    println!("sim down                                            : {:>7.1} s", down.as_secs_f64());
    println!("RSS of control-plane processes after up             : {:>7.0} MiB (goal ≤ 3072 MiB)", rss_mib);
    table::row("sim up, control planes cold from the template", format!("{:.1} s", cold.as_secs_f64()), "≤ 20 s");
    table::row("sim up from built binaries to healthy applied and settled", format!("{:.1} s", healthy.as_secs_f64()), "≤ 30 s");
    table::row("sim up, control planes without a template (CRDs applied)", format!("{:.1} s", first.as_secs_f64()), "");
    println!("RSS of every process with healthy applied           : {:>7.0} MiB", settled_rss_mib);
    table::row("simulation RSS, every process, healthy applied", format!("{settled_rss_mib:.0} MiB"), "");
    Ok(())
}
