//! Detached child processes and the pid registry in `$STATE/pids/`.
//!
//! Every process the simulation runs — the control-plane components started by
//! [`super::up`] and anything another module starts (data services) — is recorded
//! as one JSON file `$STATE/pids/<scope>--<name>.json` ([`ProcessRecord`]).
//! `scope` is a cluster name (`infra`, `apps`) or `shared`. [`super::down`] stops
//! every recorded process, so a module that starts a process must register it
//! (use [`spawn_detached`], which does, or [`register_process`] for a pid started
//! some other way).
//!
//! A record keeps the process's start time (field 22 of `/proc/<pid>/stat`), so a
//! pid that the kernel reused for an unrelated process is never taken for ours
//! and never signalled.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// One registered process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessRecord {
    /// Cluster name (`infra`, `apps`) or `shared`.
    pub scope: String,
    /// Component name (`kube-apiserver`, `minio`, ...), unique within the scope.
    pub name: String,
    pub pid: u32,
    /// `/proc/<pid>/stat` starttime (clock ticks after boot): tells our process from a reused pid.
    pub start_time: u64,
    /// TCP ports the process listens on (on 127.0.0.1), for status and for `down`'s check.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Log file (stdout and stderr), if known.
    #[serde(default)]
    pub log: Option<PathBuf>,
    /// Command line, for messages.
    #[serde(default)]
    pub command: Vec<String>,
}

impl ProcessRecord {
    /// True if the recorded process still runs (same pid and start time, not a zombie).
    pub fn is_alive(&self) -> bool {
        match proc_stat(self.pid) {
            Some(st) => st.start_time == self.start_time && st.state != 'Z' && st.state != 'X',
            None => false,
        }
    }
    /// Resident memory now (VmRSS), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        if self.is_alive() { rss_kib(self.pid) } else { None }
    }
    /// Last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.log.as_deref().map(|p| log_tail(p, lines)).unwrap_or_default()
    }
}

/// Directory of the registry: `$STATE/pids`.
pub fn pids_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pids")
}

fn record_path(state_dir: &Path, scope: &str, name: &str) -> PathBuf {
    pids_dir(state_dir).join(format!("{scope}--{name}.json"))
}

/// Registers a process that was started some other way (its start time is read now).
/// `scope` is a cluster name or `"shared"`. Replaces an earlier record of the same scope/name.
pub fn register_process(state_dir: &Path, scope: &str, name: &str, pid: u32) -> anyhow::Result<ProcessRecord> {
    register_process_with(state_dir, scope, name, pid, &[], None)
}

/// Like [`register_process`], with the ports it listens on and its log file
/// (shown by `sim status`; `down` checks the ports are closed afterwards).
pub fn register_process_with(
    state_dir: &Path,
    scope: &str,
    name: &str,
    pid: u32,
    ports: &[u16],
    log: Option<&Path>,
) -> anyhow::Result<ProcessRecord> {
    let st = proc_stat(pid).with_context(|| format!("cannot register {scope}/{name}: no process with pid {pid}"))?;
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
        })
        .unwrap_or_default();
    let rec = ProcessRecord {
        scope: scope.into(),
        name: name.into(),
        pid,
        start_time: st.start_time,
        ports: ports.to_vec(),
        log: log.map(Path::to_path_buf),
        command,
    };
    write_record(state_dir, &rec)?;
    Ok(rec)
}

fn write_record(state_dir: &Path, rec: &ProcessRecord) -> anyhow::Result<()> {
    let dir = pids_dir(state_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = record_path(state_dir, &rec.scope, &rec.name);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(rec)?).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// Removes a record (the process itself is not touched).
pub fn unregister_process(state_dir: &Path, scope: &str, name: &str) -> anyhow::Result<()> {
    match std::fs::remove_file(record_path(state_dir, scope, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The record of `scope/name`, alive or not.
pub fn lookup(state_dir: &Path, scope: &str, name: &str) -> Option<ProcessRecord> {
    let text = std::fs::read(record_path(state_dir, scope, name)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Every record, sorted by scope and name.
pub fn registered_processes(state_dir: &Path) -> Vec<ProcessRecord> {
    let Ok(rd) = std::fs::read_dir(pids_dir(state_dir)) else {
        return vec![];
    };
    let mut out: Vec<ProcessRecord> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| (&a.scope, &a.name).cmp(&(&b.scope, &b.name)));
    out
}

/// Log file of `scope/name`: `$STATE/<scope>/<name>.log`.
pub fn log_path(state_dir: &Path, scope: &str, name: &str) -> PathBuf {
    state_dir.join(scope).join(format!("{name}.log"))
}

/// Starts `cmd` detached — own process group, stdin from /dev/null, stdout and
/// stderr appended to `$STATE/<scope>/<name>.log`, inside the simulation's network
/// namespace ([`super::network`]) — and registers it. The caller returns while it keeps
/// running; [`super::down`] stops it. Only the network process itself starts on the host.
///
/// Refuses if a live process is already registered under `scope/name`, if one of
/// `ports` is already listening where the process will listen (naming the process that
/// holds it), or if the network namespace does not exist.
pub fn spawn_detached(
    state_dir: &Path,
    scope: &str,
    name: &str,
    cmd: &mut Command,
    ports: &[u16],
) -> anyhow::Result<ProcessRecord> {
    if let Some(rec) = lookup(state_dir, scope, name).filter(ProcessRecord::is_alive) {
        bail!("{scope}/{name} already runs (pid {})", rec.pid);
    }
    let on_host = scope == super::SHARED_SCOPE && name == super::network::NAME;
    let namespace = if on_host {
        None
    } else {
        Some(super::network::open_namespace(state_dir).with_context(|| {
            format!("cannot start {scope}/{name}: the simulation's network is not up (run `platform-acceptance sim up`)")
        })?)
    };
    for &p in ports {
        if on_host {
            ensure_port_free_on_host(p, &format!("{scope} {name}"))?;
        } else {
            ensure_port_free(state_dir, p, &format!("{scope} {name}"))?;
        }
    }
    let log = log_path(state_dir, scope, name);
    std::fs::create_dir_all(log.parent().expect("log has a parent"))?;
    let mut file =
        OpenOptions::new().create(true).append(true).open(&log).with_context(|| format!("open {}", log.display()))?;
    let argv = argv(cmd);
    let now =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    writeln!(file, "==== platform-acceptance sim: starting {scope}/{name} at {now}\n==== {}", argv.join(" "))?;
    let err = file.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(err).process_group(0);
    // Spawned from a thread that entered the namespace: the child is born inside it, before
    // any uid change the command asks for (setns after setuid would be refused).
    let spawned = match &namespace {
        None => cmd.spawn(),
        Some(ns) => std::thread::scope(|s| {
            s.spawn(|| {
                super::network::enter(ns)?;
                cmd.spawn()
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("spawning thread panicked")))
        }),
    };
    let mut child = spawned.with_context(|| format!("start {scope}/{name} ({})", argv[0]))?;
    let pid = child.id();
    // Reap the child when it exits, so it never lingers as a zombie in a long-lived
    // caller (a test binary); once the caller exits, init adopts it.
    std::thread::Builder::new().name(format!("reap-{name}")).spawn(move || {
        let _ = child.wait();
    })?;
    let st =
        proc_stat(pid).with_context(|| format!("{scope}/{name} (pid {pid}) exited at once; see {}", log.display()))?;
    let rec = ProcessRecord {
        scope: scope.into(),
        name: name.into(),
        pid,
        start_time: st.start_time,
        ports: ports.to_vec(),
        log: Some(log),
        command: argv,
    };
    write_record(state_dir, &rec)?;
    Ok(rec)
}

/// The `platform-acceptance` binary, for the simulation's own processes (network,
/// provisioner): `$PA_BIN`, the current executable, or the one Cargo builds next to a
/// test binary (`target/<profile>/platform-acceptance`).
pub fn harness_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PA_BIN").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    let exe = std::env::current_exe().ok()?;
    if exe.file_name().is_some_and(|n| n == "platform-acceptance") {
        return Some(exe);
    }
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/platform-acceptance
    exe.ancestors().skip(1).take(2).map(|d| d.join("platform-acceptance")).find(|p| p.is_file())
}

/// Program and arguments of a command, as [`ProcessRecord::command`] keeps them.
pub fn argv(cmd: &Command) -> Vec<String> {
    std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|s| s.to_string_lossy().into_owned()).collect()
}

/// Stops a process: SIGTERM to its process group (or to the pid, when it leads no
/// group), then SIGKILL after `grace`. Returns once it is gone. A record whose
/// process is already gone (or whose pid now belongs to another process) is left alone.
pub async fn stop_process(rec: &ProcessRecord, grace: Duration) {
    if !rec.is_alive() {
        return;
    }
    let group = proc_stat(rec.pid).is_some_and(|st| st.pgrp == rec.pid);
    let target = if group { -(rec.pid as i32) } else { rec.pid as i32 };
    signal(target, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while rec.is_alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if rec.is_alive() {
        signal(target, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while rec.is_alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if group {
        // Members of the group that outlived the leader.
        for pid in pids_in_group(rec.pid) {
            signal(pid as i32, libc::SIGKILL);
        }
    }
}

fn signal(target: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(target, sig);
    }
}

fn pids_in_group(pgrp: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| proc_stat(*pid).is_some_and(|st| st.pgrp == pgrp && st.state != 'Z'))
        .collect()
}

pub(crate) struct ProcStat {
    pub state: char,
    pub pgrp: u32,
    pub start_time: u64,
}

pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    //  utime stime cutime cstime priority nice threads itrealvalue starttime ..."
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Last `lines` lines of a file ("" if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = std::fs::read(path) else {
        return String::new();
    };
    let start = bytes.len().saturating_sub(64 * 1024);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The `net/` directory of `/proc` that shows the simulation's network namespace (else the host's).
fn proc_net(state_dir: Option<&Path>) -> PathBuf {
    state_dir
        .and_then(super::network::namespace_path)
        .and_then(|ns| ns.parent().and_then(Path::parent).map(|task| task.join("net")))
        .unwrap_or_else(|| PathBuf::from("/proc/net"))
}

/// Every TCP port in LISTEN state in the host's network (IPv4 and IPv6), with the socket inodes.
pub fn listening_ports() -> BTreeMap<u16, BTreeSet<u64>> {
    listening_ports_at(&proc_net(None))
}

/// Every TCP port in LISTEN state inside the simulation's network (the host's when it does not exist).
pub fn listening_ports_inside(state_dir: &Path) -> BTreeMap<u16, BTreeSet<u64>> {
    listening_ports_at(&proc_net(Some(state_dir)))
}

/// Every TCP listener of a `/proc/.../net` directory: (local address, port, inode).
pub fn listeners_at(net: &Path) -> Vec<(IpAddr, u16, u64)> {
    let mut out = vec![];
    for file in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(net.join(file)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((addr, port)) = f[1].split_once(':') else { continue };
            let (Ok(port), Ok(inode)) = (u16::from_str_radix(port, 16), f[9].parse()) else { continue };
            let ip = match addr.len() {
                8 => u32::from_str_radix(addr, 16).ok().map(|v| IpAddr::from(v.to_ne_bytes())),
                32 => {
                    let mut b = [0u8; 16];
                    for (i, chunk) in b.chunks_mut(4).enumerate() {
                        let v = u32::from_str_radix(&addr[8 * i..8 * i + 8], 16).unwrap_or(0);
                        chunk.copy_from_slice(&v.to_ne_bytes());
                    }
                    Some(IpAddr::from(b))
                }
                _ => None,
            };
            if let Some(ip) = ip {
                out.push((ip, port, inode));
            }
        }
    }
    out
}

fn listening_ports_at(net: &Path) -> BTreeMap<u16, BTreeSet<u64>> {
    let mut out: BTreeMap<u16, BTreeSet<u64>> = BTreeMap::new();
    for file in [net.join("tcp"), net.join("tcp6")] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some(port) = f[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) else {
                continue;
            };
            let inode = f[9].parse().unwrap_or(0);
            out.entry(port).or_default().insert(inode);
        }
    }
    out
}

/// True if something listens on TCP `port` (any address) in the host's network.
pub fn port_listening(port: u16) -> bool {
    listening_ports().contains_key(&port)
}

/// The process holding a listening socket on `port` in the host's network: (pid, command name).
pub fn port_owner(port: u16) -> Option<(u32, String)> {
    owner_of(listening_ports().remove(&port)?)
}

/// The process holding one of these socket inodes: (pid, command name).
fn owner_of(inodes: BTreeSet<u64>) -> Option<(u32, String)> {
    let rd = std::fs::read_dir("/proc").ok()?;
    for pid in rd.filter_map(Result::ok).filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) =
                t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse::<u64>().ok())
                && inodes.contains(&inode)
            {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
                return Some((pid, comm));
            }
        }
    }
    None
}

/// Fails with a one-line message if `port` is already listening inside the simulation's
/// network (where its processes listen).
pub fn ensure_port_free(state_dir: &Path, port: u16, what: &str) -> anyhow::Result<()> {
    port_free_in(listening_ports_inside(state_dir), port, what)
}

/// Fails with a one-line message if `port` is already listening in the host's network.
pub fn ensure_port_free_on_host(port: u16, what: &str) -> anyhow::Result<()> {
    port_free_in(listening_ports(), port, what)
}

fn port_free_in(mut listening: BTreeMap<u16, BTreeSet<u64>>, port: u16, what: &str) -> anyhow::Result<()> {
    let Some(inodes) = listening.remove(&port) else {
        return Ok(());
    };
    let holder = match owner_of(inodes) {
        Some((pid, comm)) => format!("pid {pid} ({comm})"),
        None => "another process".to_string(),
    };
    bail!(
        "port {port} (for {what}) is already in use by {holder}, which is not part of this simulation; stop it or set PA_SIM_PORT_BASE to another base port"
    )
}
