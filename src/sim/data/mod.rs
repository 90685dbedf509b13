//! Data services of the simulation: the real programs behind the platform's
//! data plane, run on loopback.
//!
//! | platform object (fixtures/gitops)                       | stand-in here                                   | port  |
//! |----------------------------------------------------------|-------------------------------------------------|-------|
//! | CNPG `Cluster` `postgres-shared` (ns `databases`)        | PostgreSQL (Debian `postgresql`), run as `postgres` | 15432 |
//! | `Dragonfly` `dragonfly` (ns `databases`, Redis protocol) | `redis-server` (Debian `redis-server`)          | 16379 |
//! | MinIO at `${MINIO_ENDPOINT}` (velero/volsync/cnpg buckets) | MinIO (`$PA_CACHE/bin/minio`)                 | 19000 |
//! | VictoriaMetrics stack's metrics storage                  | VictoriaMetrics single-node                     | 18428 |
//! | its `vmselect` Service (`/select/0/prometheus/…`)         | vmauth in front of the single node              | 18481 |
//! | `victoria-logs-server` (tenants by `AccountID`)          | VictoriaLogs single-node                        | 19428 |
//!
//! State lives in `$STATE/shared/`: `postgres/` (data directory, owned by
//! `postgres`), `redis/`, `minio/`, `<service>.log` and `vault.json` (mode 0600) —
//! the 1Password stand-in: every secret value the platform's ExternalSecrets read,
//! generated at first start and kept. The processes are in the registry
//! (`$STATE/pids/shared--<service>.json`, see [`super::process`]).
//! `$STATE/endpoints.json` maps in-cluster DNS names to the loopback sockets
//! ([`Endpoints::resolve`]).
//!
//! What the fixture says the data plane holds: [`DataPlan`] (`plan`); the vault:
//! `vault`; the endpoint map: `endpoints`; process state, logs, stop: `supervise`;
//! one launcher per service: `postgres`, `redis`, `minio`, `victoria` (the three
//! observability engines).
//!
//! No secret value is ever printed: [`Vault`] has a redacting `Debug`, and log
//! tails quoted in errors have every known secret value replaced by `***`.

mod endpoints;
mod minio;
mod plan;
mod postgres;
mod redis;
mod supervise;
mod vault;
mod victoria;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use anyhow::Result;

pub use endpoints::{Endpoint, Endpoints, endpoints};
pub use minio::{ensure_users as ensure_minio_users, minio_address, s3_client, set_policy as set_minio_policy, set_user_policies as set_minio_user_policies};
pub use plan::DataPlan;
pub use postgres::postgres_bin_dir;
pub use redis::redis_connection;
pub use supervise::{SERVICES, ServiceState, ServiceStatus, log_file, log_tail, status, stop, tree_rss_kib};
pub use vault::{Vault, random_token};
pub use victoria::{Engines, VICTORIA_LOGS_PORT, VICTORIA_METRICS_PORT, VMAUTH_PORT, commands as victoria_commands, vmauth_config};

use super::SimConfig;

/// Loopback ports of the data services.
pub const POSTGRES_PORT: u16 = 15432;
pub const REDIS_PORT: u16 = 16379;
pub const MINIO_PORT: u16 = 19000;
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Where each data-service port of the host (`127.0.0.1:<port>`) is served inside the
/// simulation's network ([`super::network`]): PostgreSQL, Redis and MinIO's console on the
/// namespace's loopback, MinIO at the address `MINIO_ENDPOINT` names, the observability
/// engines, and every Gateway listener ([`gateway_forwards`]).
pub fn inside_forwards(plan: &DataPlan) -> Vec<super::network::Forward> {
    let lo = |p: u16| super::network::Forward { host_port: p, inside: std::net::SocketAddr::new(LOOPBACK, p) };
    vec![
        lo(POSTGRES_PORT),
        lo(REDIS_PORT),
        super::network::Forward { host_port: MINIO_PORT, inside: minio_address(plan) },
        lo(MINIO_PORT + 1),
        lo(VICTORIA_METRICS_PORT),
        lo(VMAUTH_PORT),
        lo(VICTORIA_LOGS_PORT),
    ]
    .into_iter()
    .chain(gateway_forwards(plan))
    .collect()
}

/// First host port of the forwards to the Gateways' listeners (one per address and port,
/// in the plan's order), for the endpoint map of `--network direct`.
pub const GATEWAY_PORT_BASE: u16 = 19500;

/// The host forwards to every Gateway listener inside the simulation's network.
pub fn gateway_forwards(plan: &DataPlan) -> Vec<super::network::Forward> {
    plan.gateways.iter().zip(GATEWAY_PORT_BASE..).map(|(inside, host_port)| super::network::Forward { host_port, inside: *inside }).collect()
}

/// How to install the Debian packages the data services need.
pub const INSTALL_HINT: &str = "apt-get install -y postgresql redis-server";

fn shared_dir(cfg: &SimConfig) -> PathBuf {
    cfg.state_dir.join("shared")
}

/// Starts PostgreSQL, Redis, MinIO and the observability engines (idempotent: running services are kept,
/// crashed ones are restarted after their log tail is reported on stderr),
/// provisions roles/databases and buckets, writes `$STATE/endpoints.json`.
pub async fn start(cfg: &SimConfig) -> Result<Endpoints> {
    if super::network::namespace_path(&cfg.state_dir).is_none() {
        anyhow::bail!("the simulation's network is not up: run `platform-acceptance sim up` first");
    }
    let plan = DataPlan::from_repo(&cfg.repo)?;
    std::fs::create_dir_all(shared_dir(cfg))?;
    let vault = Vault::load_or_create(cfg, &plan)?;
    for s in status(cfg) {
        if let ServiceState::Crashed { pid, log_tail } = &s.state {
            eprintln!("sim: data service {} (pid {pid}) had died; restarting it. Last log lines:\n{log_tail}", s.name);
            super::process::unregister_process(&cfg.state_dir, supervise::SCOPE, s.name)?;
        }
    }
    let (pg, redis, minio, victoria) = tokio::join!(
        postgres::start_postgres(cfg, &plan, &vault),
        redis::start_redis(cfg, &vault),
        minio::start_minio(cfg, &plan, &vault),
        victoria::start_victoria(cfg)
    );
    pg?;
    redis?;
    minio?;
    victoria?;
    let endpoints = Endpoints::for_plan(&plan);
    endpoints.write(cfg)?;
    if let Err(e) = super::provisioner::ensure(cfg).await {
        eprintln!("sim: {e:#}; PVCs of dynamically provisioned classes will stay Pending");
    }
    Ok(endpoints)
}
