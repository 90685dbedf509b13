//! Outages caused on purpose in a running simulation, for the reliability tests: a
//! control-plane process killed and started again, a data service restarted, the network
//! to one address dropped. A run never causes them.
//!
//! | outage | how | what it stands for |
//! |---|---|---|
//! | [`kill`] + [`super::start_component`] | SIGKILL to the registered process, then its usual command line again | an API server or etcd crashing and its supervisor (kubelet, systemd) restarting it |
//! | [`stop_data_service`] + [`super::data::start`] | PostgreSQL: SIGINT (fast shutdown: sessions are ended); Redis, MinIO: SIGTERM; then started again | `pg_ctl restart -m fast`, a database pod replaced |
//! | [`blackhole`] | an nftables rule inside the simulation's network namespace dropping every packet to the address | a firewall or a dead link that drops traffic: connections hang instead of being refused |
//!
//! The nftables table lives in the simulation's own namespace only (the host's ruleset is
//! untouched) and goes with [`Blackhole`] when it is dropped, and with the namespace at
//! `sim down`.
//!
//! ```no_run
//! # async fn f(cfg: &platform_acceptance::sim::SimConfig) -> anyhow::Result<()> {
//! use platform_acceptance::sim::{self, outage};
//! outage::kill(cfg, "apps", "kube-apiserver").await?;
//! // ... the run meets a dead API server ...
//! sim::start_component(cfg, "apps", "kube-apiserver").await?;
//! let blocked = outage::blackhole(cfg, "10.25.11.3:9000".parse()?)?;
//! // ... connections to MinIO hang ...
//! drop(blocked); // traffic flows again
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::SimConfig;
use super::process::{self, lookup};

/// Sends SIGKILL to the registered process `name` of `scope` (a cluster, or `shared` for
/// the data services) and returns its pid once it is gone. Its registry entry stays, as a
/// crash would leave it.
pub async fn kill(cfg: &SimConfig, scope: &str, name: &str) -> anyhow::Result<u32> {
    signal_and_wait(cfg, scope, name, libc::SIGKILL, Duration::from_secs(10)).await
}

async fn signal_and_wait(cfg: &SimConfig, scope: &str, name: &str, sig: i32, within: Duration) -> anyhow::Result<u32> {
    let rec = lookup(&cfg.state_dir, scope, name).filter(process::ProcessRecord::is_alive).with_context(|| format!("{scope}/{name} is not running"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(rec.pid as i32, sig) } != 0 {
        bail!("signal {sig} to {scope}/{name} (pid {}): {}", rec.pid, std::io::Error::last_os_error());
    }
    let deadline = Instant::now() + within;
    while rec.is_alive() {
        if Instant::now() > deadline {
            bail!("{scope}/{name} (pid {}) still runs {}s after signal {sig}", rec.pid, within.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(rec.pid)
}

/// Stops data service `service` (one of [`super::data::SERVICES`]) the way an operator's
/// restart does; [`super::data::start`] starts it again with its data and waits until it
/// serves.
pub async fn stop_data_service(cfg: &SimConfig, service: &str) -> anyhow::Result<()> {
    if !super::data::SERVICES.contains(&service) {
        bail!("{service} is not a data service of the simulation (services: {})", super::data::SERVICES.join(", "));
    }
    // PostgreSQL's SIGTERM waits for every client to leave; SIGINT ends their sessions.
    let sig = if service == "postgres" { libc::SIGINT } else { libc::SIGTERM };
    signal_and_wait(cfg, super::SHARED_SCOPE, service, sig, Duration::from_secs(30)).await?;
    process::unregister_process(&cfg.state_dir, super::SHARED_SCOPE, service)
}

/// Every packet to `addr` inside the simulation's network is dropped until the returned
/// guard is dropped.
pub fn blackhole(cfg: &SimConfig, addr: SocketAddr) -> anyhow::Result<Blackhole> {
    let ns = super::network::namespace_path(&cfg.state_dir).context("the simulation's network is not up")?;
    let table = format!("pa_blackhole_{}", addr.port());
    let family = if addr.is_ipv4() { "ip" } else { "ip6" };
    let hole = Blackhole { ns, table };
    let rules = format!(
        "table inet {t} {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    {family} daddr {ip} tcp dport {port} drop\n  }}\n}}\n",
        t = hole.table,
        ip = addr.ip(),
        port = addr.port()
    );
    hole.nft(&["-f", "-"], Some(&rules))?;
    Ok(hole)
}

/// An nftables table dropping traffic inside the simulation's network; removed on drop.
pub struct Blackhole {
    ns: PathBuf,
    table: String,
}

impl Blackhole {
    fn nft(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
        use std::io::Write as _;
        let mut child = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .arg("nft")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("nsenter nft (scripts/deps.sh installs nftables)")?;
        if let Some(text) = stdin {
            child.stdin.take().expect("piped").write_all(text.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        if let Err(e) = self.nft(&["delete", "table", "inet", &self.table], None) {
            eprintln!("sim: could not remove nftables table {}: {e:#}", self.table);
        }
    }
}
