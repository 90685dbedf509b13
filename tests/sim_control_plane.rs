//! The local two-cluster simulation's control plane (`platform-acceptance sim up/down`).
//!
//! Needs the binaries and CRDs from `make sim-build` (= sim/build.sh && sim/crds.sh)
//! in `$PA_CACHE`. These tests run by default; `PA_SIM_TESTS=0` skips them (with a
//! printed reason). They reuse a simulation that is already up, and hold
//! `sim::test_lock` for their whole run, as every test that uses the simulation must
//! (gate and lock from the shared fixture, `support::sim::lock_only`: these tests drive
//! `sim up`/`down` themselves, without data services or scenario).

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use platform_acceptance::sim;
use serde_json::json;
use support::sim::lock_only;

/// (cluster, POD_CIDR, SERVICE_CIDR) as the fixture repository sets them.
const CLUSTERS: [(&str, &str, &str); 2] =
    [("infra", "10.244.0.0/16", "10.245.0.0/16"), ("apps", "10.246.0.0/16", "10.247.0.0/16")];

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => last = e,
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {}s waiting for {what} (last error: {last})",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}", n % 1_000_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_two_ready_clusters() {
    let Some((cfg, _lock)) = lock_only("control_plane_two_ready_clusters").await else { return };
    let st = sim::up(&cfg).await.expect("sim up");
    println!("{st}");
    assert!(st.is_healthy(), "sim up returned an unhealthy simulation:\n{st}");
    assert!(sim::kubeconfig_path(&cfg).is_file());

    // The cluster CIDRs come from the repository.
    let specs = sim::cluster_specs(&cfg).expect("cluster specs");
    assert_eq!(specs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["infra", "apps"]);
    for ((name, pod, svc), spec) in CLUSTERS.iter().zip(&specs) {
        assert_eq!(&spec.name, name);
        assert_eq!(spec.pod_cidr.to_string(), *pod, "{name} POD_CIDR");
        assert_eq!(spec.service_cidr.to_string(), *svc, "{name} SERVICE_CIDR");
    }

    let crds = sim::crds::load(&cfg.cache_dir).expect("load cached CRDs");
    assert!(!crds.is_empty(), "no CRDs in {}/crds: run sim/crds.sh", cfg.cache_dir.display());

    let mut ready_nodes = 0;
    let mut all_node_cidrs: Vec<IpNet> = vec![];
    for (name, pod, svc) in CLUSTERS {
        let pod_net: IpNet = pod.parse().unwrap();
        let svc_net: IpNet = svc.parse().unwrap();
        let client = sim::client(&cfg, name).await.expect("client");

        // Three Ready nodes with their InternalIPs and podCIDRs inside POD_CIDR.
        let nodes = Api::<Node>::all(client.clone()).list(&ListParams::default()).await.expect("list nodes");
        let names: BTreeSet<String> = nodes.items.iter().filter_map(|n| n.metadata.name.clone()).collect();
        let want: BTreeSet<String> = (1..=3).map(|i| format!("{name}-{i:02}")).collect();
        assert_eq!(names, want, "{name} nodes");
        for n in &nodes.items {
            let node = n.metadata.name.clone().unwrap();
            assert!(sim::kwok::node_ready(n), "{name}/{node} not Ready with a podCIDR: {:?}", n.status);
            ready_nodes += 1;
            let cidr: IpNet = n.spec.as_ref().and_then(|s| s.pod_cidr.clone()).unwrap().parse().unwrap();
            assert!(pod_net.contains(&cidr), "{name}/{node} podCIDR {cidr} outside {pod_net}");
            assert_eq!(cidr.prefix_len(), 24, "{name}/{node} podCIDR {cidr}");
            all_node_cidrs.push(cidr);
            let labels = n.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels.get("kubernetes.io/hostname"), Some(&node));
            assert!(labels.contains_key("node-role.kubernetes.io/control-plane"), "{node} labels {labels:?}");
            let ip = n
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"));
            let idx: u32 = node[node.len() - 2..].parse().unwrap();
            let base = if name == "infra" { 10 } else { 13 };
            assert_eq!(
                ip.map(|a| a.address.as_str()),
                Some(format!("10.25.11.{}", base + idx).as_str()),
                "{node} InternalIP"
            );
        }

        // Every cached CRD is Established.
        let missing = sim::crds::not_established(&client, &crds).await.expect("list CRDs");
        assert!(missing.is_empty(), "{name}: CRDs not Established: {missing:?}");

        // A Service gets a ClusterIP inside SERVICE_CIDR; a Pod is scheduled and Running
        // with an IP from its node's podCIDR; deleting the namespace completes.
        let ns = unique("pa-sim-test");
        let ns_api: Api<Namespace> = Api::all(client.clone());
        ns_api
            .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap())
            .await
            .expect("create namespace");
        let svc_api: Api<Service> = Api::namespaced(client.clone(), &ns);
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
        }))
        .unwrap();
        let service = svc_api.create(&PostParams::default(), &service).await.expect("create service");
        let cluster_ip: std::net::IpAddr = service.spec.unwrap().cluster_ip.unwrap().parse().unwrap();
        assert!(svc_net.contains(&cluster_ip), "{name}: ClusterIP {cluster_ip} outside {svc_net}");

        let pod_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}
        }))
        .unwrap();
        // The namespace's default ServiceAccount comes from the controller-manager; the
        // ServiceAccount admission plugin rejects pods until it exists.
        wait_for(&format!("{name}: pod created"), Duration::from_secs(30), || {
            let pod_api = pod_api.clone();
            let pod = pod.clone();
            async move { pod_api.create(&PostParams::default(), &pod).await.map(|_| true).map_err(|e| e.to_string()) }
        })
        .await;
        wait_for(&format!("{name}: pod Running"), Duration::from_secs(60), || {
            let pod_api = pod_api.clone();
            async move {
                let p = pod_api.get("web").await.map_err(|e| e.to_string())?;
                Ok(p.status.and_then(|s| s.phase).as_deref() == Some("Running"))
            }
        })
        .await;
        let p = pod_api.get("web").await.unwrap();
        let node_name = p.spec.unwrap().node_name.unwrap();
        let pod_ip: std::net::IpAddr = p.status.unwrap().pod_ip.unwrap().parse().unwrap();
        let node = Api::<Node>::all(client.clone()).get(&node_name).await.unwrap();
        let node_cidr: IpNet = node.spec.unwrap().pod_cidr.unwrap().parse().unwrap();
        assert!(node_cidr.contains(&pod_ip), "{name}: pod IP {pod_ip} outside {node_name}'s podCIDR {node_cidr}");

        let cm_api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
        cm_api
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "x"}, "data": {"a": "b"}})).unwrap(),
            )
            .await
            .expect("create configmap");
        ns_api.delete(&ns, &DeleteParams::default()).await.expect("delete namespace");
        wait_for(&format!("{name}: namespace {ns} deleted"), Duration::from_secs(90), || {
            let ns_api = ns_api.clone();
            let ns = ns.clone();
            async move { ns_api.get_opt(&ns).await.map(|n| n.is_none()).map_err(|e| e.to_string()) }
        })
        .await;
    }
    assert_eq!(ready_nodes, 6);
    // podCIDRs pairwise disjoint.
    for (i, a) in all_node_cidrs.iter().enumerate() {
        for b in &all_node_cidrs[i + 1..] {
            assert!(!a.contains(b) && !b.contains(a), "podCIDRs overlap: {a} and {b}");
        }
    }

    // A second `up` is quick and changes nothing.
    let t = Instant::now();
    let again = sim::up(&cfg).await.expect("second sim up");
    assert!(again.is_healthy());
    assert!(t.elapsed() < Duration::from_secs(10), "warm sim up took {:?}", t.elapsed());
}

/// Listening TCP ports from /proc/net/tcp{,6} (state 0A), parsed here independently of the library.
fn listening_ports() -> BTreeSet<u16> {
    let mut out = BTreeSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 3 && f[3] == "0A" {
                out.insert(u16::from_str_radix(f[1].rsplit(':').next().unwrap(), 16).unwrap());
            }
        }
    }
    out
}

/// Start time of a pid (field 22 of /proc/<pid>/stat), None if there is no such process or it is a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f[0] == "Z" || f[0] == "X" {
        return None;
    }
    f.get(19)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_leaves_no_process_and_no_port() {
    // Let control_plane_two_ready_clusters take the lock first when both run, so a
    // cold start is not paid twice (down, then a cold up again).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Some((cfg, _lock)) = lock_only("down_leaves_no_process_and_no_port").await else { return };
    sim::up(&cfg).await.expect("sim up");
    let records = sim::registered_processes(&cfg.state_dir);
    assert!(records.len() >= 10, "expected at least 10 registered processes, got {records:?}");
    let specs = sim::cluster_specs(&cfg).unwrap();
    let mut ports: BTreeSet<u16> = specs.iter().flat_map(|c| c.ports.all()).collect();
    ports.extend(records.iter().flat_map(|r| r.ports.iter().copied()));
    let listening = listening_ports();
    for c in &specs {
        assert!(
            listening.contains(&c.ports.apiserver),
            "{} API port {} not listening before down",
            c.name,
            c.ports.apiserver
        );
    }
    for r in &records {
        assert_eq!(
            start_time(r.pid),
            Some(r.start_time),
            "{}/{} (pid {}) not running before down",
            r.scope,
            r.name,
            r.pid
        );
    }

    sim::down(&cfg).await.expect("sim down");

    for r in &records {
        assert_ne!(
            start_time(r.pid),
            Some(r.start_time),
            "{}/{} (pid {}) still runs after down",
            r.scope,
            r.name,
            r.pid
        );
    }
    let still: Vec<u16> = listening_ports().intersection(&ports).copied().collect();
    assert!(still.is_empty(), "ports still listening after down: {still:?}");
    assert!(!cfg.state_dir.exists(), "state directory {} still exists", cfg.state_dir.display());
    // A second down is a no-op.
    sim::down(&cfg).await.expect("second sim down");

    // The first cold start kept each cluster's etcd with its nodes and CRDs as a template;
    // the next cold start begins from it and ends with the same control plane.
    // (A simulation started before templates existed never wrote one: a cold start does.)
    let fingerprint = sim::crds::fingerprint(&cfg.cache_dir);
    let missing = |c: &sim::ClusterSpec| sim::template::find(&cfg, &sim::template::key(&cfg, c, &fingerprint)).is_none();
    if specs.iter().any(missing) {
        let st = sim::up(&cfg).await.expect("cold sim up");
        assert!(st.from_template.is_empty(), "{st}");
        sim::down(&cfg).await.expect("sim down");
    }
    for c in &specs {
        assert!(!missing(c), "no template for {} after a cold start", c.name);
    }
    let st = sim::up(&cfg).await.expect("sim up from templates");
    assert_eq!(st.from_template, ["infra", "apps"], "{st}");
    assert!(st.is_healthy(), "{st}");
    let crds = sim::crds::load(&cfg.cache_dir).expect("load cached CRDs");
    for c in &specs {
        let client = sim::client(&cfg, &c.name).await.expect("client");
        let missing = sim::crds::not_established(&client, &crds).await.expect("list CRDs");
        assert!(missing.is_empty(), "{}: CRDs not Established after a start from the template: {missing:?}", c.name);
    }
    sim::down(&cfg).await.expect("sim down after the start from templates");
}

/// Manual driver: `PA_SIM_CLI=up|down|status cargo test --test sim_control_plane cli_driver -- --ignored --nocapture`
/// (control plane only: no data services, no scenario).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "manual: runs sim up/down/status per $PA_SIM_CLI"]
async fn cli_driver() {
    let cfg = sim::SimConfig::from_env();
    let result = match std::env::var("PA_SIM_CLI").unwrap_or_default().as_str() {
        "up" => sim::up(&cfg).await.map(|st| println!("{st}")),
        "down" => sim::down(&cfg).await,
        _ => sim::status(&cfg).await.map(|st| println!("{st}")),
    };
    if let Err(e) = result {
        panic!("{e:#}");
    }
}
