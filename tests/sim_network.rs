//! The simulation runs in a network namespace of its own: every process but the network
//! process is inside it, the repository's addresses exist only there, anything else is
//! unreachable at once, the host sees nothing but loopback forwards, each cluster's names are
//! answered by its own CoreDNS inside, and a namespace whose
//! holder was killed is replaced, with every process in it, by the next `sim up`.

mod support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use platform_acceptance::sim::{self, network, process};
use support::ReportExt;
use support::sim::SimFixture;

fn ns_of(path: &Path) -> String {
    std::fs::read_link(path).map(|p| p.display().to_string()).unwrap_or_default()
}

/// Every pid of the simulation: registered processes and their descendants.
fn simulation_pids(state_dir: &Path) -> BTreeSet<u32> {
    fn walk(pid: u32, out: &mut BTreeSet<u32>) {
        if !out.insert(pid) {
            return;
        }
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            walk(c, out);
        }
    }
    let mut out = BTreeSet::new();
    for r in sim::registered_processes(state_dir).into_iter().filter(|r| r.is_alive()) {
        walk(r.pid, &mut out);
    }
    out
}

fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return BTreeSet::new() };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|t| t.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

/// Connects to each address from a thread inside the namespace: (address, result, time taken).
fn connect_from_inside(state_dir: &Path, addrs: &[&str]) -> Vec<(String, std::io::Result<()>, Duration)> {
    let ns = network::open_namespace(state_dir).expect("the namespace is open");
    let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    std::thread::spawn(move || {
        network::enter(&ns).expect("setns");
        addrs
            .into_iter()
            .map(|a| {
                let t = Instant::now();
                let r = TcpStream::connect_timeout(&a.parse::<SocketAddr>().unwrap(), Duration::from_secs(3)).map(drop);
                (a, r, t.elapsed())
            })
            .collect()
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulation_lives_in_its_own_network() {
    let Some(fx) = SimFixture::start("the_simulation_lives_in_its_own_network").await else { return };
    let state = fx.cfg().state_dir.clone();
    let net = network::running(&state).expect("the network process runs");
    let inside = ns_of(&network::namespace_path(&state).expect("the namespace exists"));
    let host = ns_of(Path::new("/proc/self/ns/net"));
    assert_ne!(inside, host, "the namespace is not the host's network");

    // Every registered process but the network process is inside.
    for r in sim::registered_processes(&state).into_iter().filter(|r| r.is_alive() && r.pid != net.pid) {
        assert_eq!(ns_of(Path::new(&format!("/proc/{}/ns/net", r.pid))), inside, "{}/{} (pid {}) is not inside", r.scope, r.name, r.pid);
    }

    // Inside: the repository's addresses exist (MinIO where MINIO_ENDPOINT says, the API
    // servers on the namespace's loopback); everything else fails at once.
    let api = sim::cluster_specs(fx.cfg()).unwrap()[0].ports.apiserver;
    let api = format!("127.0.0.1:{api}");
    let results = connect_from_inside(&state, &["10.25.11.3:9000", &api, "192.0.2.1:80", "10.25.12.1:443", "1.1.1.1:443", "10.96.0.1:443"]);
    for (addr, r, took) in &results {
        match addr.as_str() {
            "10.25.11.3:9000" => assert!(r.is_ok(), "MinIO at 10.25.11.3:9000 from inside: {r:?}"),
            a if a == api => assert!(r.is_ok(), "API server at {a} from inside: {r:?}"),
            _ => {
                let e = r.as_ref().expect_err(&format!("{addr} is outside the simulation and must be unreachable"));
                assert_eq!(e.raw_os_error(), Some(libc::ENETUNREACH), "{addr}: {e}");
                assert!(*took < Duration::from_millis(100), "{addr} failed only after {took:?}");
            }
        }
    }

    // On the host the simulation listens on loopback only.
    let ours: BTreeSet<u64> = simulation_pids(&state).into_iter().flat_map(socket_inodes).collect();
    let exposed: Vec<String> = process::listeners_at(Path::new("/proc/net"))
        .into_iter()
        .filter(|(ip, _, inode)| ours.contains(inode) && !ip.is_loopback())
        .map(|(ip, port, _)| format!("{ip}:{port}"))
        .collect();
    assert!(exposed.is_empty(), "the simulation listens on host addresses other than loopback: {exposed:?}");
    let forwarded: BTreeSet<u16> = process::listeners_at(Path::new("/proc/net"))
        .into_iter()
        .filter(|(_, _, inode)| ours.contains(inode))
        .map(|(_, port, _)| port)
        .collect();
    assert!(forwarded.contains(&sim::data::MINIO_PORT), "MinIO is forwarded to the host's loopback: {forwarded:?}");

    // Names: each cluster's real CoreDNS, at its cluster DNS address inside, answers from
    // that cluster's own Services (the API server's `kubernetes` Service at the first
    // address of the cluster's range), and nothing for a Service that does not exist.
    for c in sim::cluster_specs(fx.cfg()).unwrap() {
        assert!(connect_from_inside(&state, &[&format!("{}:53", c.dns_ip)])[0].1.is_ok(), "{}: CoreDNS at {}:53 inside", c.name, c.dns_ip);
        assert_eq!(fx.dns(&c.name, "kubernetes.default.svc.cluster.local").await, Ok(vec![c.service_ip]), "{}", c.name);
        let missing = fx.dns(&c.name, "no-such-service.default.svc.cluster.local").await;
        assert_eq!(missing, Err("NXDOMAIN".to_string()), "{}", c.name);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_network_is_replaced_with_everything_inside_it() {
    let Some(fx) = SimFixture::start("a_killed_network_is_replaced_with_everything_inside_it").await else { return };
    let state = fx.cfg().state_dir.clone();
    let net = network::running(&state).unwrap();
    // The processes inside the namespace, each recorded with its start time, so a reused pid does not count.
    let inside: Vec<_> = sim::registered_processes(&state).into_iter().filter(|r| r.is_alive() && r.pid != net.pid).collect();
    assert!(!inside.is_empty(), "the simulation runs processes inside its namespace");
    // SAFETY: kill(2) on the network process's pid, recorded with its start time and alive.
    unsafe { libc::kill(net.pid as i32, libc::SIGKILL) };
    while net.is_alive() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    sim::up(fx.cfg()).await.expect("sim up after the network was killed");
    sim::data::start(fx.cfg()).await.expect("data services in the new namespace");
    let replacement = network::running(&state).expect("a new network process");
    assert!(replacement.pid != net.pid || replacement.start_time != net.start_time, "a new network process");
    // Namespace inode numbers are reused once a namespace is freed, so the old processes are
    // identified by pid and start time, not by the inode of their namespace.
    let left: Vec<String> = inside.iter().filter(|r| r.is_alive()).map(|r| format!("{}/{} ({})", r.scope, r.name, r.pid)).collect();
    assert!(left.is_empty(), "processes of the old namespace still run: {left:?}");
    let new = ns_of(&network::namespace_path(&state).unwrap());
    let outside: Vec<String> = sim::registered_processes(&state)
        .into_iter()
        .filter(|r| r.is_alive() && r.pid != replacement.pid)
        .filter(|r| ns_of(Path::new(&format!("/proc/{}/ns/net", r.pid))) != new)
        .map(|r| format!("{}/{} ({})", r.scope, r.name, r.pid))
        .collect();
    assert!(outside.is_empty(), "processes outside the new namespace: {outside:?}");
    // Reachable again from the host through the new forwards.
    sim::scenario::apply(fx.cfg(), "healthy").await.expect("healthy scenario in the new namespace");
    fx.run("7.4").await.expect_none_failing();
}
