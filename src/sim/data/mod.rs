//! Data services of the simulation: the real programs behind the platform's
//! data plane, run on loopback.
//!
//! | platform object (fixtures/gitops)                       | stand-in here                                   | port  |
//! |----------------------------------------------------------|-------------------------------------------------|-------|
//! | CNPG `Cluster` `postgres-shared` (ns `databases`)        | PostgreSQL (Debian `postgresql`), run as `postgres` | 15432 |
//! | `Dragonfly` `dragonfly` (ns `databases`, Redis protocol) | `redis-server` (Debian `redis-server`)          | 16379 |
//! | MinIO at `${MINIO_ENDPOINT}` (velero/volsync/cnpg buckets) | MinIO (`$PA_CACHE/bin/minio`)                 | 19000 |
//!
//! State lives in `$STATE/shared/`: `postgres/` (data directory, owned by
//! `postgres`), `redis/`, `minio/`, `logs/<service>.log`, `run/<service>.pid`
//! and `vault.json` (mode 0600) — the 1Password stand-in: every secret value
//! the platform's ExternalSecrets read, generated at first start and kept.
//! `$STATE/endpoints.json` maps in-cluster DNS names to the loopback sockets
//! ([`Endpoints::resolve`]).
//!
//! No secret value is ever printed: [`Vault`] has a redacting `Debug`, and log
//! tails quoted in errors have every known secret value replaced by `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{SimConfig, process};
use crate::repo::GitopsRepo;

/// Loopback ports of the data services.
pub const POSTGRES_PORT: u16 = 15432;
pub const REDIS_PORT: u16 = 16379;
pub const MINIO_PORT: u16 = 19000;
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub const INSTALL_HINT: &str = "apt-get install -y postgresql redis-server";

// ---------------------------------------------------------------------------
// What the fixture says the data plane holds
// ---------------------------------------------------------------------------

/// The data-plane facts read from fixtures/gitops (infra + apps renders).
#[derive(Debug, Clone, Serialize)]
pub struct DataPlan {
    /// CNPG Cluster name and namespace (`postgres-shared`, `databases`).
    pub pg_cluster: String,
    pub pg_namespace: String,
    /// `spec.bootstrap.initdb` database/owner (CNPG default `app`/`app`).
    pub initdb_database: String,
    pub initdb_owner: String,
    /// `spec.managed.roles[].name`.
    pub roles: Vec<String>,
    /// CNPG `Database` objects: (database name, owner).
    pub databases: Vec<(String, String)>,
    /// Dragonfly CR name and namespace (its Service has the same name, port 6379).
    pub dragonfly: Option<(String, String)>,
    /// Every `*_BUCKET` Flux variable of every cluster.
    pub buckets: Vec<String>,
    /// `host:port` of every cluster's `MINIO_ENDPOINT`.
    pub minio_endpoints: Vec<(String, u16)>,
    /// The platform's DNS zone as the sim models it: `<cluster>-k8s.<SECRET_DOMAIN>:6443`
    /// → the cluster's first control-plane node (the lowest address under talos/<cluster>/),
    /// the records story 1.3 creates at the DNS provider.
    pub api_records: Vec<(String, SocketAddr)>,
}

impl DataPlan {
    pub fn from_repo(repo: &Path) -> Result<DataPlan> {
        let repo = GitopsRepo::load(repo).with_context(|| format!("loading GitOps repo {}", repo.display()))?;
        let mut plan = DataPlan {
            pg_cluster: "postgres-shared".into(),
            pg_namespace: "databases".into(),
            initdb_database: "app".into(),
            initdb_owner: "app".into(),
            roles: vec![],
            databases: vec![],
            dragonfly: None,
            buckets: vec![],
            minio_endpoints: vec![],
            api_records: vec![],
        };
        for cluster in repo.clusters().to_vec() {
            let vars = repo.variables(&cluster)?;
            for (k, v) in vars.values() {
                if k.ends_with("_BUCKET") && !v.is_empty() && !plan.buckets.contains(&v) {
                    plan.buckets.push(v.clone());
                }
                if k == "MINIO_ENDPOINT"
                    && let Some((h, p)) = host_port_of_url(&v)
                    && !plan.minio_endpoints.contains(&(h.clone(), p))
                {
                    plan.minio_endpoints.push((h, p));
                }
            }
            if let Some(domain) = vars.get("SECRET_DOMAIN") {
                let first_node = repo
                    .files_under(Path::new("talos").join(&cluster).as_path())
                    .filter_map(|f| f.file_stem()?.to_str()?.parse::<std::net::Ipv4Addr>().ok())
                    .min();
                if let Some(ip) = first_node {
                    plan.api_records.push((format!("{cluster}-k8s.{domain}"), SocketAddr::new(ip.into(), 6443)));
                }
            }
            let rendered = repo.render(&cluster)?;
            for o in &rendered.objects {
                let group = o.api_version().split('/').next().unwrap_or("");
                match (group, o.kind()) {
                    ("postgresql.cnpg.io", "Cluster") => {
                        plan.pg_cluster = o.name().to_string();
                        plan.pg_namespace = o.namespace().unwrap_or("default").to_string();
                        if let Some(db) = o.str("/spec/bootstrap/initdb/database") {
                            plan.initdb_database = db.into();
                        }
                        if let Some(owner) = o.str("/spec/bootstrap/initdb/owner") {
                            plan.initdb_owner = owner.into();
                        }
                        for r in o.get("/spec/managed/roles").and_then(Value::as_array).into_iter().flatten() {
                            if let Some(n) = r.get("name").and_then(Value::as_str)
                                && !plan.roles.iter().any(|x| x == n)
                            {
                                plan.roles.push(n.to_string());
                            }
                        }
                    }
                    ("postgresql.cnpg.io", "Database") => {
                        let name = o.str("/spec/name").unwrap_or(o.name()).to_string();
                        let owner = o.str("/spec/owner").unwrap_or("postgres").to_string();
                        if !plan.databases.iter().any(|(d, _)| *d == name) {
                            plan.databases.push((name, owner));
                        }
                    }
                    ("dragonflydb.io", "Dragonfly") => {
                        let svc = o.str("/spec/serviceSpec/name").unwrap_or(o.name()).to_string();
                        plan.dragonfly = Some((svc, o.namespace().unwrap_or("default").to_string()));
                    }
                    _ => {}
                }
            }
        }
        // Database owners are roles too.
        for (_, owner) in plan.databases.clone() {
            if owner != "postgres" && !plan.roles.contains(&owner) {
                plan.roles.push(owner);
            }
        }
        plan.buckets.sort();
        Ok(plan)
    }

    /// Every application role, the initdb owner first.
    pub fn all_roles(&self) -> Vec<String> {
        let mut v = vec![self.initdb_owner.clone()];
        v.extend(self.roles.iter().filter(|r| **r != self.initdb_owner).cloned());
        v
    }

    /// Every application database with its owner, the initdb database first.
    pub fn all_databases(&self) -> Vec<(String, String)> {
        let mut v = vec![(self.initdb_database.clone(), self.initdb_owner.clone())];
        v.extend(self.databases.iter().filter(|(d, _)| *d != self.initdb_database).cloned());
        v
    }
}

fn host_port_of_url(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let hostport = rest.split('/').next()?;
    let (h, p) = hostport.rsplit_once(':').map(|(h, p)| (h, p.parse().ok())).unwrap_or((hostport, None));
    let default = if url.starts_with("https://") { 443 } else { 80 };
    Some((h.to_string(), p.unwrap_or(default)))
}

// ---------------------------------------------------------------------------
// Vault: the 1Password stand-in
// ---------------------------------------------------------------------------

/// Item -> property -> value: what 1Password would hold for the ClusterSecretStore
/// `onepassword`. Item names are the fixture's `remoteRef.key` / `extract.key`.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Vault {
    items: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(skip)]
    dirty: bool,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape: BTreeMap<&str, Vec<&str>> =
            self.items.iter().map(|(k, v)| (k.as_str(), v.keys().map(String::as_str).collect())).collect();
        f.debug_struct("Vault").field("items (values redacted)", &shape).finish()
    }
}

/// Internal item names (not referenced by the fixture).
const ITEM_PG_SUPERUSER: &str = "sim-postgres-superuser";
const ITEM_MINIO_ROOT: &str = "sim-minio-root";

impl Vault {
    pub fn path(cfg: &SimConfig) -> PathBuf {
        shared_dir(cfg).join("vault.json")
    }

    /// Loads the vault, creating it (mode 0600) with the data services' credentials.
    pub fn load_or_create(cfg: &SimConfig, plan: &DataPlan) -> Result<Vault> {
        let path = Self::path(cfg);
        let mut vault = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vault::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        vault.ensure(ITEM_PG_SUPERUSER, "password", || random_token(32));
        for role in plan.all_roles() {
            vault.ensure(&format!("postgres-{role}"), "password", || random_token(32));
        }
        vault.ensure("dragonfly", "password", || random_token(32));
        vault.ensure(ITEM_MINIO_ROOT, "access_key_id", || format!("sim{}", random_token(13).to_lowercase()));
        vault.ensure(ITEM_MINIO_ROOT, "secret_access_key", || random_token(40));
        vault.save(cfg)?;
        Ok(vault)
    }

    /// Reads the vault written by [`start`].
    pub fn load(cfg: &SimConfig) -> Result<Vault> {
        let path = Self::path(cfg);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading {} (run the data services first: sim up)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    fn ensure(&mut self, item: &str, prop: &str, make: impl FnOnce() -> String) {
        let entry = self.items.entry(item.to_string()).or_default();
        if !entry.contains_key(prop) {
            entry.insert(prop.to_string(), make());
            self.dirty = true;
        }
    }

    /// Writes the vault if anything was generated since it was loaded.
    pub fn save(&mut self, cfg: &SimConfig) -> Result<()> {
        let path = Self::path(cfg);
        if !self.dirty && path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(shared_dir(cfg))?;
        write_private(&path, &serde_json::to_vec_pretty(self)?)?;
        self.dirty = false;
        Ok(())
    }

    /// One property of an item, as ESO's 1Password provider returns it.
    /// MinIO items (`*minio*`) resolve to the sim's MinIO credentials plus a
    /// generated restic password; any other unknown property is generated once
    /// and kept, so every Secret the fixture declares gets a stable value.
    pub fn property(&mut self, item: &str, prop: &str) -> String {
        if let Some(v) = self.items.get(item).and_then(|m| m.get(prop)) {
            return v.clone();
        }
        let value = if item.contains("minio") && (prop == "access_key_id" || prop == "secret_access_key") {
            self.items.get(ITEM_MINIO_ROOT).and_then(|m| m.get(prop)).cloned().unwrap_or_else(|| random_token(32))
        } else if item.starts_with("postgres-") && prop == "username" {
            item.trim_start_matches("postgres-").to_string()
        } else {
            random_token(32)
        };
        self.items.entry(item.into()).or_default().insert(prop.into(), value.clone());
        self.dirty = true;
        value
    }

    /// Every property of an item (`dataFrom.extract`); `wanted` adds properties the
    /// caller knows the template needs.
    pub fn extract(&mut self, item: &str, wanted: &[String]) -> BTreeMap<String, String> {
        for w in wanted {
            self.property(item, w);
        }
        self.items.get(item).cloned().unwrap_or_default()
    }

    pub fn postgres_superuser_password(&self) -> Result<&str> {
        self.get(ITEM_PG_SUPERUSER, "password")
    }
    pub fn role_password(&self, role: &str) -> Result<&str> {
        self.get(&format!("postgres-{role}"), "password")
    }
    pub fn redis_password(&self) -> Result<&str> {
        self.get("dragonfly", "password")
    }
    /// (access key, secret key) of MinIO's root user.
    pub fn minio_root(&self) -> Result<(&str, &str)> {
        Ok((self.get(ITEM_MINIO_ROOT, "access_key_id")?, self.get(ITEM_MINIO_ROOT, "secret_access_key")?))
    }

    fn get(&self, item: &str, prop: &str) -> Result<&str> {
        self.items
            .get(item)
            .and_then(|m| m.get(prop))
            .map(String::as_str)
            .ok_or_else(|| anyhow!("vault has no {item}/{prop} (data services not initialised?)"))
    }

    /// Replaces every secret value in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        let mut values: Vec<&String> = self.items.values().flat_map(|m| m.values()).filter(|v| v.len() >= 6).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        for v in values {
            out = out.replace(v.as_str(), "***");
        }
        out
    }
}

/// Alphanumeric token from /dev/urandom (rejection sampling, no modulo bias).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf).expect("read /dev/urandom");
        for b in buf {
            if (b as usize) < 248 && out.len() < len {
                out.push(ALPHABET[(b as usize) % 62] as char);
            }
        }
    }
    out
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Endpoint map
// ---------------------------------------------------------------------------

/// One in-cluster name and the loopback socket that serves it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// `postgres`, `redis`, `minio`, or `dns` (an API endpoint record; nothing local serves it).
    pub service: String,
    pub host: String,
    pub port: u16,
    pub addr: SocketAddr,
}

/// `$STATE/endpoints.json`: in-cluster DNS name + port -> loopback socket.
/// Holds no secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoints {
    pub endpoints: Vec<Endpoint>,
}

impl Endpoints {
    pub fn path(cfg: &SimConfig) -> PathBuf {
        cfg.state_dir.join("endpoints.json")
    }

    /// Where `host:port` (as a Secret or a manifest names it) is served.
    /// Names are matched case-insensitively, a trailing dot ignored; a loopback
    /// address resolves to itself.
    pub fn resolve(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = h.parse::<IpAddr>()
            && ip.is_loopback()
        {
            return Some(SocketAddr::new(ip, port));
        }
        self.endpoints.iter().find(|e| e.port == port && e.host == h).map(|e| e.addr)
    }

    /// The first endpoint of a service (`postgres`, `redis`, `minio`).
    pub fn of(&self, service: &str) -> Option<SocketAddr> {
        self.endpoints.iter().find(|e| e.service == service).map(|e| e.addr)
    }

    fn add_service(&mut self, service: &str, svc: &str, ns: &str, port: u16, addr: SocketAddr) {
        for host in [
            svc.to_string(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
            format!("{svc}.{ns}.svc.clusterset.local"),
        ] {
            self.add(service, &host, port, addr);
        }
    }

    fn add(&mut self, service: &str, host: &str, port: u16, addr: SocketAddr) {
        let host = host.to_ascii_lowercase();
        if !self.endpoints.iter().any(|e| e.host == host && e.port == port) {
            self.endpoints.push(Endpoint { service: service.into(), host, port, addr });
        }
    }

    pub fn for_plan(plan: &DataPlan) -> Endpoints {
        let mut e = Endpoints::default();
        let pg = SocketAddr::new(LOOPBACK, POSTGRES_PORT);
        // CNPG services <cluster>-rw/-ro/-r, port 5432 (reference §14 [PG1][PG2]) and
        // the fixture's extra global Service <cluster>-global.
        for suffix in ["rw", "ro", "r", "global"] {
            e.add_service("postgres", &format!("{}-{suffix}", plan.pg_cluster), &plan.pg_namespace, 5432, pg);
        }
        // Dragonfly Service = CR name, port 6379 `redis` (reference §15 [DF3]).
        if let Some((svc, ns)) = &plan.dragonfly {
            e.add_service("redis", svc, ns, 6379, SocketAddr::new(LOOPBACK, REDIS_PORT));
        }
        // MinIO runs outside the clusters at ${MINIO_ENDPOINT}.
        for (h, p) in &plan.minio_endpoints {
            e.add("minio", h, *p, SocketAddr::new(LOOPBACK, MINIO_PORT));
        }
        for (host, port) in super::observability::HOSTS {
            e.add("mock-observability", host, port, SocketAddr::new(LOOPBACK, super::observability::OBSERVABILITY_PORT));
        }
        for (host, addr) in &plan.api_records {
            e.add("dns", host, addr.port(), *addr);
        }
        e
    }

    fn write(&self, cfg: &SimConfig) -> Result<()> {
        std::fs::create_dir_all(&cfg.state_dir)?;
        std::fs::write(Self::path(cfg), serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}

/// Reads `$STATE/endpoints.json` (written by [`start`]).
pub fn endpoints(cfg: &SimConfig) -> Result<Endpoints> {
    let path = Endpoints::path(cfg);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {} (is the sim up?)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// The three data services.
pub const SERVICES: [&str; 3] = ["postgres", "redis", "minio"];

fn shared_dir(cfg: &SimConfig) -> PathBuf {
    cfg.state_dir.join("shared")
}

/// Registry scope of the data services (`$STATE/pids/shared--<service>.json`).
const SCOPE: &str = "shared";

/// Log of a data service: `$STATE/shared/<service>.log`.
pub fn log_file(cfg: &SimConfig, service: &str) -> PathBuf {
    process::log_path(&cfg.state_dir, SCOPE, service)
}

/// State of one data service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ServiceState {
    /// `rss_kib` covers the process and its children (postgres forks backends).
    Running { pid: u32, rss_kib: u64 },
    Stopped,
    /// Registered but gone: the log tail (secrets redacted).
    Crashed { pid: u32, log_tail: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: &'static str,
    pub port: u16,
    #[serde(flatten)]
    pub state: ServiceState,
}

fn port_of(service: &str) -> u16 {
    match service {
        "postgres" => POSTGRES_PORT,
        "redis" => REDIS_PORT,
        _ => MINIO_PORT,
    }
}

fn running(cfg: &SimConfig, service: &str) -> Option<process::ProcessRecord> {
    process::lookup(&cfg.state_dir, SCOPE, service).filter(process::ProcessRecord::is_alive)
}

/// Total RSS of a process and its descendants, KiB.
pub fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = process::rss_kib(pid).unwrap_or(0);
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            total += tree_rss_kib(c);
        }
    }
    total
}

/// Last `lines` lines of a service log, with every known secret value redacted.
pub fn log_tail(cfg: &SimConfig, service: &str, lines: usize) -> String {
    let tail = process::log_tail(&log_file(cfg, service), lines);
    match Vault::load(cfg) {
        Ok(v) => v.redact(&tail),
        Err(_) => tail,
    }
}

/// State of each data service.
pub fn status(cfg: &SimConfig) -> Vec<ServiceStatus> {
    SERVICES
        .iter()
        .map(|&name| {
            let state = match process::lookup(&cfg.state_dir, SCOPE, name) {
                None => ServiceState::Stopped,
                Some(rec) if rec.is_alive() => ServiceState::Running { pid: rec.pid, rss_kib: tree_rss_kib(rec.pid) },
                Some(rec) => ServiceState::Crashed { pid: rec.pid, log_tail: log_tail(cfg, name, 20) },
            };
            ServiceStatus { name, port: port_of(name), state }
        })
        .collect()
}

fn crashed_error(cfg: &SimConfig, service: &str, what: &str) -> anyhow::Error {
    anyhow!("{service} {what}; last lines of {}:\n{}", log_file(cfg, service).display(), log_tail(cfg, service, 25))
}

/// Waits until `ready()` succeeds, failing early (with the log tail) if the process dies.
async fn wait_ready<F, Fut>(cfg: &SimConfig, rec: &process::ProcessRecord, timeout: Duration, mut ready: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let service = rec.name.as_str();
    let start = Instant::now();
    let mut last_err = None;
    while start.elapsed() < timeout {
        if !rec.is_alive() {
            return Err(crashed_error(cfg, service, "exited during start-up"));
        }
        match ready().await {
            Ok(()) => return Ok(()),
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(crashed_error(
        cfg,
        service,
        &format!("not ready after {}s ({})", timeout.as_secs(), last_err.map(|e| e.to_string()).unwrap_or_default()),
    ))
}

/// Stops every data service (idempotent; `sim down` does the same through the
/// process registry). Data and credentials stay.
pub async fn stop(cfg: &SimConfig) -> Result<()> {
    for s in SERVICES {
        if let Some(rec) = process::lookup(&cfg.state_dir, SCOPE, s) {
            process::stop_process(&rec, Duration::from_secs(15)).await;
            process::unregister_process(&cfg.state_dir, SCOPE, s)?;
        }
    }
    Ok(())
}

/// Starts PostgreSQL, Redis and MinIO (idempotent: running services are kept,
/// crashed ones are restarted after their log tail is reported on stderr),
/// provisions roles/databases and buckets, writes `$STATE/endpoints.json`.
pub async fn start(cfg: &SimConfig) -> Result<Endpoints> {
    let plan = DataPlan::from_repo(&cfg.repo)?;
    std::fs::create_dir_all(shared_dir(cfg))?;
    let vault = Vault::load_or_create(cfg, &plan)?;
    for s in status(cfg) {
        if let ServiceState::Crashed { pid, log_tail } = &s.state {
            eprintln!("sim: data service {} (pid {pid}) had died; restarting it. Last log lines:\n{log_tail}", s.name);
            process::unregister_process(&cfg.state_dir, SCOPE, s.name)?;
        }
    }
    let (pg, redis, minio) =
        tokio::join!(start_postgres(cfg, &plan, &vault), start_redis(cfg, &vault), start_minio(cfg, &plan, &vault));
    pg?;
    redis?;
    minio?;
    let endpoints = Endpoints::for_plan(&plan);
    endpoints.write(cfg)?;
    if let Err(e) = super::provisioner::ensure(cfg).await {
        eprintln!("sim: {e:#}; PVCs of dynamically provisioned classes will stay Pending");
    }
    Ok(endpoints)
}

// ---- PostgreSQL -------------------------------------------------------------

/// Highest `/usr/lib/postgresql/<ver>/bin` holding `postgres` and `initdb`.
pub fn postgres_bin_dir() -> Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let v: u32 = e.file_name().to_str()?.parse().ok()?;
                    let bin = e.path().join("bin");
                    (bin.join("postgres").is_file() && bin.join("initdb").is_file()).then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().map(|(_, p)| p).ok_or_else(|| anyhow!("postgresql not installed: {INSTALL_HINT}"))
}

/// uid/gid of the `postgres` system user, created if missing (PostgreSQL refuses root).
fn postgres_user() -> Result<(u32, u32)> {
    let lookup = || -> Option<(u32, u32)> {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
        let f: Vec<&str> = line.split(':').collect();
        Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
    };
    if let Some(ids) = lookup() {
        return Ok(ids);
    }
    let st = Command::new("useradd")
        .args(["--system", "--user-group", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/false", "postgres"])
        .status()
        .context("useradd postgres")?;
    if !st.success() {
        bail!("could not create the postgres system user (useradd exited {st})");
    }
    lookup().ok_or_else(|| anyhow!("postgres user missing after useradd"))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).with_context(|| format!("chown {}", path.display()))
}

/// PostgreSQL's user must be able to traverse to the data directory.
fn make_traversable(dir: &Path) -> Result<()> {
    let mut p = dir.to_path_buf();
    loop {
        if let Ok(meta) = std::fs::metadata(&p) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode | 0o011))
                    .with_context(|| format!("chmod o+x {}", p.display()))?;
            }
        }
        if !p.pop() || p.as_os_str().is_empty() {
            break;
        }
    }
    Ok(())
}

async fn pg_connect(vault: &Vault, user: &str, password: &str, db: &str) -> Result<tokio_postgres::Client> {
    let _ = vault;
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1").port(POSTGRES_PORT).user(user).password(password).dbname(db);
    c.connect_timeout(Duration::from_secs(3));
    let (client, conn) = c.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn start_postgres(cfg: &SimConfig, plan: &DataPlan, vault: &Vault) -> Result<()> {
    let bin = postgres_bin_dir()?;
    let (uid, gid) = postgres_user()?;
    let data = shared_dir(cfg).join("postgres");
    let superpw = vault.postgres_superuser_password()?.to_string();
    let rec = match running(cfg, "postgres") {
        Some(rec) => rec,
        None => {
            make_traversable(&shared_dir(cfg))?;
            std::fs::create_dir_all(&data)?;
            chown(&data, uid, gid)?;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
            if !data.join("PG_VERSION").exists() {
                let pwfile = shared_dir(cfg).join(".pg-initdb-pw");
                write_private(&pwfile, superpw.as_bytes())?;
                chown(&pwfile, uid, gid)?;
                let out = Command::new(bin.join("initdb"))
                    .arg("-D")
                    .arg(&data)
                    .args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"])
                    .arg(format!("--pwfile={}", pwfile.display()))
                    .uid(uid)
                    .gid(gid)
                    .env("HOME", &data)
                    .current_dir(&data)
                    .output()
                    .context("running initdb")?;
                let _ = std::fs::remove_file(&pwfile);
                if !out.status.success() {
                    bail!(
                        "initdb failed ({}):\n{}",
                        out.status,
                        vault.redact(&String::from_utf8_lossy(&out.stderr))
                    );
                }
            }
            let mut cmd = Command::new(bin.join("postgres"));
            cmd.arg("-D").arg(&data);
            for setting in [
                "listen_addresses=127.0.0.1".to_string(),
                format!("port={POSTGRES_PORT}"),
                "unix_socket_directories=".into(),
                "password_encryption=scram-sha-256".into(),
                // never echo a failing statement (it may carry a password)
                "log_min_error_statement=panic".into(),
                "max_connections=100".into(),
                "shared_buffers=16MB".into(),
                // a simulation: durability is not the point
                "fsync=off".into(),
                "synchronous_commit=off".into(),
                "full_page_writes=off".into(),
            ] {
                cmd.arg("-c").arg(setting);
            }
            cmd.uid(uid).gid(gid).env("HOME", &data).current_dir(&data);
            process::spawn_detached(&cfg.state_dir, SCOPE, "postgres", &mut cmd, &[POSTGRES_PORT])?
        }
    };
    wait_ready(cfg, &rec, Duration::from_secs(60), || async {
        pg_connect(vault, "postgres", &superpw, "postgres").await.map(|_| ())
    })
    .await?;
    provision_postgres(plan, vault, &superpw).await
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Roles with their passwords and databases with their owners, as CNPG's
/// `managed.roles` and `Database` reconcilers would leave them.
async fn provision_postgres(plan: &DataPlan, vault: &Vault, superpw: &str) -> Result<()> {
    let admin = pg_connect(vault, "postgres", superpw, "postgres").await.context("postgres admin connection")?;
    for role in plan.all_roles() {
        let pw = vault.role_password(&role)?;
        let exists = !admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role]).await?.is_empty();
        let verb = if exists { "ALTER" } else { "CREATE" };
        admin
            .batch_execute(&format!("{verb} ROLE {} WITH LOGIN PASSWORD {}", ident(&role), literal(pw)))
            .await
            .map_err(|e| anyhow!("{verb} ROLE {role} failed: {}", vault.redact(&e.to_string())))?;
    }
    for (db, owner) in plan.all_databases() {
        let exists = !admin.query("SELECT 1 FROM pg_database WHERE datname = $1", &[&db]).await?.is_empty();
        if !exists {
            // Database spec in the fixture: encoding UTF8, locale C, template0.
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
                    ident(&db),
                    ident(&owner)
                ))
                .await
                .with_context(|| format!("CREATE DATABASE {db}"))?;
        } else {
            admin.batch_execute(&format!("ALTER DATABASE {} OWNER TO {}", ident(&db), ident(&owner))).await?;
        }
    }
    Ok(())
}

// ---- Redis (Dragonfly stand-in) ----------------------------------------------

/// A Redis client for `addr` authenticating with `password` (default user).
pub fn redis_client(addr: SocketAddr, password: &str) -> Result<redis::Client> {
    use redis::IntoConnectionInfo;
    let info = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
        .into_connection_info()?
        .set_redis_settings(redis::RedisConnectionInfo::default().set_password(password));
    Ok(redis::Client::open(info)?)
}

async fn redis_ping(password: &str) -> Result<()> {
    let client = redis_client(SocketAddr::new(LOOPBACK, REDIS_PORT), password)?;
    let mut conn = tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection()).await??;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    if pong != "PONG" {
        bail!("PING answered {pong:?}");
    }
    Ok(())
}

async fn start_redis(cfg: &SimConfig, vault: &Vault) -> Result<()> {
    let password = vault.redis_password()?.to_string();
    let rec = match running(cfg, "redis") {
        Some(rec) => rec,
        None => {
            let exe = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
                .into_iter()
                .find(|p| Path::new(p).is_file())
                .ok_or_else(|| anyhow!("redis-server not installed: {INSTALL_HINT}"))?;
            let dir = shared_dir(cfg).join("redis");
            std::fs::create_dir_all(&dir)?;
            let conf = dir.join("redis.conf");
            // the password goes in a 0600 file, not on the command line
            write_private(
                &conf,
                format!(
                    "bind 127.0.0.1\nport {REDIS_PORT}\nprotected-mode yes\ndaemonize no\nsave \"\"\nappendonly no\n\
                     dir {}\nrequirepass {password}\nloglevel notice\n",
                    dir.display()
                )
                .as_bytes(),
            )?;
            let mut cmd = Command::new(exe);
            cmd.arg(&conf).current_dir(&dir);
            process::spawn_detached(&cfg.state_dir, SCOPE, "redis", &mut cmd, &[REDIS_PORT])?
        }
    };
    wait_ready(cfg, &rec, Duration::from_secs(30), || redis_ping(&password)).await
}

// ---- MinIO -------------------------------------------------------------------

/// An S3 client for the sim's MinIO (path-style, region us-east-1).
pub fn s3_client(endpoint: SocketAddr, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new(access_key, secret_key, None, None, "platform-acceptance-sim");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{endpoint}"))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn start_minio(cfg: &SimConfig, plan: &DataPlan, vault: &Vault) -> Result<()> {
    let (user, pass) = vault.minio_root()?;
    let rec = match running(cfg, "minio") {
        Some(rec) => rec,
        None => {
            let exe = cfg.cache_dir.join("bin").join("minio");
            if !exe.is_file() {
                bail!("MinIO binary not found at {} (build it: sim/build.sh)", exe.display());
            }
            let data = shared_dir(cfg).join("minio");
            std::fs::create_dir_all(&data)?;
            let mut cmd = Command::new(exe);
            cmd.args(["server", "--quiet", "--address"])
                .arg(format!("127.0.0.1:{MINIO_PORT}"))
                .arg("--console-address")
                .arg(format!("127.0.0.1:{}", MINIO_PORT + 1))
                .arg(&data)
                .env("MINIO_ROOT_USER", user)
                .env("MINIO_ROOT_PASSWORD", pass)
                .env("MINIO_BROWSER", "off")
                .env("MINIO_UPDATE", "off")
                .env("HOME", &data)
                .current_dir(&data);
            process::spawn_detached(&cfg.state_dir, SCOPE, "minio", &mut cmd, &[MINIO_PORT, MINIO_PORT + 1])?
        }
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    let url = format!("http://127.0.0.1:{MINIO_PORT}/minio/health/live");
    wait_ready(cfg, &rec, Duration::from_secs(60), || {
        let http = http.clone();
        let url = url.clone();
        async move {
            let r = http.get(&url).send().await?;
            if r.status().is_success() { Ok(()) } else { bail!("health answered {}", r.status()) }
        }
    })
    .await?;
    let s3 = s3_client(SocketAddr::new(LOOPBACK, MINIO_PORT), user, pass);
    let existing: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .map_err(|e| anyhow!("MinIO ListBuckets: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    for b in &plan.buckets {
        if !existing.contains(b) {
            s3.create_bucket()
                .bucket(b)
                .send()
                .await
                .map_err(|e| anyhow!("MinIO CreateBucket {b}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_alphanumeric_and_distinct() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn vault_debug_and_redact_hide_values() {
        let mut v = Vault::default();
        v.ensure("dragonfly", "password", || "s3cr3tValue42".into());
        assert!(!format!("{v:?}").contains("s3cr3tValue42"));
        assert_eq!(v.redact("auth s3cr3tValue42 failed"), "auth *** failed");
    }

    #[test]
    fn resolve_maps_cluster_names_to_loopback() {
        let plan = DataPlan {
            pg_cluster: "postgres-shared".into(),
            pg_namespace: "databases".into(),
            initdb_database: "app".into(),
            initdb_owner: "app".into(),
            roles: vec![],
            databases: vec![],
            dragonfly: Some(("dragonfly".into(), "databases".into())),
            buckets: vec![],
            minio_endpoints: vec![("10.25.11.3".into(), 9000)],
            api_records: vec![],
        };
        let e = Endpoints::for_plan(&plan);
        let pg = e.resolve("postgres-shared-rw.databases.svc.clusterset.local", 5432).unwrap();
        assert_eq!(pg.port(), POSTGRES_PORT);
        assert_eq!(e.resolve("POSTGRES-SHARED-RO.databases.svc.cluster.local.", 5432), Some(pg));
        assert_eq!(e.resolve("dragonfly.databases.svc.cluster.local", 6379).unwrap().port(), REDIS_PORT);
        assert_eq!(e.resolve("10.25.11.3", 9000).unwrap().port(), MINIO_PORT);
        assert_eq!(e.resolve("postgres-shared-rw.databases.svc.cluster.local", 6379), None);
        assert_eq!(host_port_of_url("http://10.25.11.3:9000"), Some(("10.25.11.3".into(), 9000)));
    }
}
