//! The one fixture of every test that runs against the local two-cluster simulation.
//!
//! ```ignore
//! let Some(fx) = SimFixture::start("my_test").await else { return };
//! fx.run("2.1.7").await.expect_none_failing();
//! fx.patch_status("infra", "apps/v1", "DaemonSet", Some("kube-system"), "cilium", json!({"numberReady": 0})).await;
//! fx.run("2.1.7").await.expect_failing(&["2.1.7 [infra]"]);
//! // dropping `fx` (also on a failed assertion) puts the healthy platform back
//! ```
//!
//! * Gate: the simulation tests run by default (and in CI); `PA_SIM_TESTS=0` skips them
//!   with a printed reason ([`enabled`]).
//! * Lock: the fixture holds `sim::test_lock` for its lifetime, so simulation tests in
//!   different test binaries never overlap.
//! * Setup: `sim up` (reusing a running simulation), the data services, the healthy scenario.
//! * Restore: on drop — also when an assertion panics — the registered restores run (newest
//!   first), then the healthy scenario is applied again. [`SimFixture::restore`] does the
//!   same in the test's flow (before a final "healthy again" check); drop then only repeats
//!   it if the fixture changed something since. Changes made through a client taken with
//!   [`SimFixture::client`] count as changes.
//! * Targets: [`targets`] is the only place the simulation's cluster targets are obtained.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::LocalBoxFuture;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use platform_acceptance::check::Target;
use platform_acceptance::cluster::access::{Access, Basis, Provenance};
use platform_acceptance::runner::{RunConfig, RunReport};
use platform_acceptance::session::Session;
use platform_acceptance::sim::data::Endpoints;
use platform_acceptance::sim::{self, FileLock, SimConfig};
use serde_json::{Value, json};

use super::{DOC, GITOPS};

/// Field manager of every change a test makes (the healthy scenario's forced apply takes the
/// fields back).
pub const MANAGER: &str = "platform-acceptance-test";

/// Whether the simulation tests run: yes unless `PA_SIM_TESTS=0` (then prints why `test` is skipped).
pub fn enabled(test: &str) -> bool {
    if std::env::var("PA_SIM_TESTS").as_deref() == Ok("0") {
        println!("{test}: skipped because PA_SIM_TESTS=0 (unset it to run the simulation tests; they need `make sim-build`)");
        return false;
    }
    true
}

/// The gate and the test lock only, for the tests of the simulation's own lifecycle
/// (`sim up`/`down`), which must not have the data services and scenario set up for them.
pub async fn lock_only(test: &str) -> Option<(SimConfig, FileLock)> {
    if !enabled(test) {
        return None;
    }
    let cfg = SimConfig::from_env();
    let lock = sim::test_lock(&cfg).await.expect("simulation test lock");
    Some((cfg, lock))
}

/// Removes what earlier runs left on the clusters (a run whose API server was down when it
/// ended could not remove its namespaces or its Lease): with the test lock held no run is
/// alive, so every run Lease is dropped and `sweep` then removes what those runs owned.
async fn sweep_dead_runs(clients: &BTreeMap<String, kube::Client>) {
    use k8s_openapi::api::coordination::v1::Lease;
    use platform_acceptance::cluster::lease;
    for (cluster, client) in clients {
        let leases: Api<Lease> = Api::namespaced(client.clone(), lease::LEASE_NAMESPACE);
        let listed = leases.list(&Default::default()).await.unwrap_or_else(|e| panic!("Leases on {cluster}: {e}"));
        for name in listed.items.into_iter().filter_map(|l| l.metadata.name).filter(|n| n.starts_with(&lease::lease_name(""))) {
            let _ = leases.delete(&name, &DeleteParams::default()).await;
        }
        let swept = lease::sweep(client).await.unwrap_or_else(|e| panic!("sweep on {cluster}: {e}"));
        if !swept.removed.is_empty() {
            eprintln!("swept on {cluster} what earlier runs left: {}", swept.removed.join(", "));
        }
    }
}

/// The simulation's cluster targets (clients, peers, and the relay as the data path, as
/// `run --sim`). The only call of the library's target function in the tests.
pub async fn targets(clusters: &[String]) -> BTreeMap<String, Target> {
    targets_as(clusters, None).await
}

/// As [`targets`], every request (the relay's included) sent as `user` when given (`run --as`).
pub async fn targets_as(clusters: &[String], user: Option<&str>) -> BTreeMap<String, Target> {
    use platform_acceptance::cluster::relay::{self, DEFAULT_IMAGE};
    let mut targets = platform_acceptance::sim::targets::targets(clusters, &BTreeMap::new()).await.expect("simulation targets");
    if let Some(user) = user {
        for t in targets.values_mut() {
            *t = t.acting_as(user).expect("user name");
        }
    }
    relay::attach(&mut targets, DEFAULT_IMAGE);
    targets
}

/// The default run configuration with `n` retries.
/// How a run on the simulation reaches names.
enum Names {
    /// As `run --sim`: the relay, the simulation's own records.
    Sim,
    /// `--network direct` with a test's endpoint map (its mock behind cluster names).
    Direct(Endpoints),
    /// The relay, with a test's map for the DNS records of names outside the clusters.
    SiteRecords(Endpoints),
}

/// A state a test constructed on the simulation: bases as the simulation judges them,
/// but nothing is "not provable" (the test wrote what the check reads).
struct Constructed(Arc<dyn Provenance>);

impl Provenance for Constructed {
    fn basis(&self, accesses: &[Access]) -> Basis {
        self.0.basis(accesses)
    }

    fn describe(&self) -> &str {
        "a test-constructed state"
    }
}

/// The revision the simulated Flux reports for the fixture repository.
pub fn served_revision() -> String {
    sim::scenario::served_revision(&SimConfig::from_env()).expect("the served revision")
}

pub fn retries(n: u32) -> RunConfig {
    RunConfig { retries: n, ..RunConfig::default() }
}

/// A status condition as controllers write it (`observedGeneration` when given).
pub fn condition(type_: &str, status: &str, reason: &str, message: &str, generation: Option<i64>) -> Value {
    let mut c = json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"});
    if let Some(g) = generation {
        c["observedGeneration"] = json!(g);
    }
    c
}

/// A deferred restore: gets the configuration, builds its own clients (it may run on the
/// drop path, in a runtime of its own).
type RestoreFn = Box<dyn FnOnce(SimConfig) -> LocalBoxFuture<'static, anyhow::Result<()>> + Send>;

pub struct SimFixture {
    cfg: SimConfig,
    clients: BTreeMap<String, kube::Client>,
    restores: Mutex<Vec<(String, RestoreFn)>>,
    /// Something may differ from the healthy scenario.
    dirty: AtomicBool,
    /// `sim down` ran: nothing to restore.
    down: AtomicBool,
    /// Last field: released after `Drop::drop` has restored.
    _lock: FileLock,
}

impl SimFixture {
    /// Gate, lock, `sim up`, data services, healthy scenario. `None` when the gate skips `test`.
    pub async fn start(test: &str) -> Option<SimFixture> {
        let (cfg, lock) = lock_only(test).await?;
        let t = Instant::now();
        sim::up_with(&cfg, sim::scenario::apply(&cfg, "healthy")).await.expect("sim up, data services, scenario healthy");
        let mut clients = BTreeMap::new();
        for spec in sim::cluster_specs(&cfg).expect("cluster specs") {
            let client = sim::client(&cfg, &spec.name).await.unwrap_or_else(|e| panic!("client {}: {e:#}", spec.name));
            clients.insert(spec.name, client);
        }
        sweep_dead_runs(&clients).await;
        eprintln!("{test}: simulation up, healthy, in {:.1}s", t.elapsed().as_secs_f64());
        Some(SimFixture { cfg, clients, restores: Mutex::new(vec![]), dirty: AtomicBool::new(false), down: AtomicBool::new(false), _lock: lock })
    }

    pub fn cfg(&self) -> &SimConfig {
        &self.cfg
    }

    fn touch(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }

    /// A client of `cluster` (counts as a change: the test may write through it).
    pub fn client(&self, cluster: &str) -> kube::Client {
        self.touch();
        self.kube(cluster)
    }

    /// The client of `cluster`, for the fixture's own reads and writes.
    fn kube(&self, cluster: &str) -> kube::Client {
        self.clients.get(cluster).unwrap_or_else(|| panic!("no simulated cluster {cluster}")).clone()
    }

    /// The endpoint map the simulation publishes (loopback addresses of in-cluster names).
    pub fn endpoints(&self) -> Endpoints {
        sim::data::endpoints(&self.cfg).expect("endpoint map")
    }

    /// What `cluster`'s CoreDNS answers for `name` (addresses, or the response code).
    pub async fn dns(&self, cluster: &str, name: &str) -> Result<Vec<std::net::IpAddr>, String> {
        let specs = sim::cluster::cluster_specs(&self.cfg).expect("cluster specs");
        let c = specs.iter().find(|c| c.name == cluster).unwrap_or_else(|| panic!("no simulated cluster {cluster}"));
        sim::dns::query(std::net::SocketAddr::from(([127, 0, 0, 1], c.ports.dns)), name).await
    }

    /// Waits (15 s at most) until `cluster`'s CoreDNS has (`resolves`) or has not an
    /// address for `name`: it follows the API server by watch, a moment behind.
    pub async fn wait_dns(&self, cluster: &str, name: &str, resolves: bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answer = self.dns(cluster, name).await;
            if answer.as_ref().is_ok_and(|a| !a.is_empty()) == resolves {
                return;
            }
            assert!(Instant::now() < deadline, "{cluster}: {name} still answers {answer:?} after 15 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // ---- runs -------------------------------------------------------------------------

    /// Runs `selection` (`"2.1.7,2.2"`) on the simulation without retries: the state is
    /// settled before a run, so a failure shows at once.
    pub async fn run(&self, selection: &str) -> RunReport {
        self.run_with(selection, retries(0)).await
    }

    /// Runs `selection` with `config` (retries, phase, timeout).
    pub async fn run_with(&self, selection: &str, config: RunConfig) -> RunReport {
        self.run_inner(selection, config, None).await
    }

    /// Runs `selection` with `endpoints` in place of the simulation's endpoint map (a test's
    /// own mock behind cluster names): `--network direct`, cluster names through each
    /// cluster's CoreDNS from the host, then the test's map.
    pub async fn run_resolving(&self, selection: &str, config: RunConfig, endpoints: Endpoints) -> RunReport {
        self.run_full(selection, config, Names::Direct(endpoints), false, true).await
    }

    /// Runs `selection` through the relay, as `run --sim`, with the DNS records of names
    /// outside the clusters (story 1.3) taken from `records` (so a record can be wrong or missing).
    pub async fn run_with_records(&self, selection: &str, config: RunConfig, records: Endpoints) -> RunReport {
        self.run_full(selection, config, Names::SiteRecords(records), false, true).await
    }

    /// Runs `selection` on a state the test constructed, so criteria the simulation
    /// itself cannot prove (2.1.9, 7.2.9, ...) are evaluated instead of skipped: the
    /// test, not the simulation, wrote what they read.
    pub async fn run_constructed(&self, selection: &str, records: Option<Endpoints>) -> RunReport {
        self.run_full(selection, retries(0), records.map_or(Names::Sim, Names::SiteRecords), true, true).await
    }

    /// Runs `selection` as a run without `--allow-writes` would: checks that write are
    /// skipped, every other write is refused before it leaves the process.
    pub async fn run_read_only(&self, selection: &str, config: RunConfig) -> RunReport {
        self.run_full(selection, config, Names::Sim, false, false).await
    }

    async fn run_inner(&self, selection: &str, config: RunConfig, endpoints: Option<Endpoints>) -> RunReport {
        self.run_full(selection, config, endpoints.map_or(Names::Sim, Names::Direct), false, true).await
    }

    /// Runs `selection` with every request sent as `user` (impersonation, as `run --as`).
    pub async fn run_as(&self, selection: &str, config: RunConfig, user: &str) -> RunReport {
        let session = Session::new(DOC, Some(Path::new(GITOPS))).expect("session");
        let targets = targets_as(&session.coverage.clusters, Some(user)).await;
        let session = session.with_targets(targets);
        let only = session.selectors(&[selection.to_string()]).unwrap_or_else(|e| panic!("selection {selection}: {e}"));
        session.run(&only, &[], config).await
    }

    async fn run_full(&self, selection: &str, config: RunConfig, names: Names, constructed: bool, writable: bool) -> RunReport {
        let session = Session::new(DOC, Some(Path::new(GITOPS))).expect("session");
        let relay = matches!(names, Names::SiteRecords(_));
        let mut targets = match names {
            Names::Sim => targets(&session.coverage.clusters).await,
            Names::Direct(e) | Names::SiteRecords(e) => {
                let mut targets = platform_acceptance::sim::targets::targets(&session.coverage.clusters, &BTreeMap::new()).await.expect("simulation targets");
                let resolvers = sim::targets::resolvers(&self.cfg, &e).expect("the clusters' resolvers");
                for (name, t) in targets.iter_mut() {
                    t.resolver = resolvers[name].clone();
                }
                if relay {
                    platform_acceptance::cluster::relay::attach(&mut targets, platform_acceptance::cluster::relay::DEFAULT_IMAGE);
                }
                targets
            }
        };
        for t in targets.values_mut() {
            t.writable &= writable;
        }
        if constructed {
            for t in targets.values_mut() {
                t.provenance = Arc::new(Constructed(t.provenance.clone()));
            }
        }
        let session = session.with_targets(targets);
        let only = session.selectors(&[selection.to_string()]).unwrap_or_else(|e| panic!("selection {selection}: {e}"));
        session.run(&only, &[], config).await
    }

    // ---- scenarios, restore, down -----------------------------------------------------

    /// Switches to scenario `name` (every change made before is undone by it).
    pub async fn scenario(&self, name: &str) {
        self.touch();
        sim::scenario::apply(&self.cfg, name).await.unwrap_or_else(|e| panic!("scenario {name}: {e:#}"));
    }

    /// Registers a restore for something the healthy scenario does not put back; it runs
    /// before the healthy scenario, on [`restore`](Self::restore) or drop.
    pub fn on_restore<F>(&self, what: &str, f: impl FnOnce(SimConfig) -> F + Send + 'static)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + 'static,
    {
        self.touch();
        self.restores.lock().unwrap().push((what.to_string(), Box::new(move |cfg| Box::pin(f(cfg)))));
    }

    /// Runs the registered restores (newest first), then applies the healthy scenario.
    pub async fn restore(&self) {
        let restores = std::mem::take(&mut *self.restores.lock().unwrap());
        let errors = restore_all(&self.cfg, restores).await;
        assert!(errors.is_empty(), "restore failed:\n{}", errors.join("\n"));
        self.dirty.store(false, Ordering::SeqCst);
    }

    /// `sim down` (the fixture then has nothing to restore; it keeps the lock).
    pub async fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        sim::down(&self.cfg).await.expect("sim down");
    }

    // ---- objects ----------------------------------------------------------------------

    /// A dynamic API for `kind` of `api_version` (`"v1"`, `"apps/v1"`), through discovery;
    /// namespaced when the kind is and `ns` is given. Counts as a change (the test may write
    /// through it); reads go through [`get`](Self::get).
    pub async fn dynamic(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
        self.touch();
        self.api(cluster, api_version, kind, ns).await
    }

    async fn api(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
        dynamic(&self.kube(cluster), api_version, kind, ns).await
    }

    pub async fn get_opt(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        let api = self.api(cluster, api_version, kind, ns).await;
        let o = api.get_opt(name).await.unwrap_or_else(|e| panic!("{cluster}: get {kind} {name}: {e}"));
        o.map(|o| serde_json::to_value(o).unwrap())
    }

    /// The object as JSON; panics if it does not exist.
    pub async fn get(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Value {
        self.get_opt(cluster, api_version, kind, ns, name).await.unwrap_or_else(|| panic!("{cluster}: {kind} {name} missing"))
    }

    /// `metadata.generation` of an object (for a condition's `observedGeneration`).
    pub async fn generation(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<i64> {
        self.get(cluster, api_version, kind, ns, name).await.pointer("/metadata/generation").and_then(Value::as_i64)
    }

    /// A Secret's data, decoded.
    /// A value rotated in 1Password: sets field `field` of item `item` in the simulation's
    /// vault (what the 1Password Connect stand-in serves) to `value`, has the real
    /// external-secrets controller sync ExternalSecret `ns/name` on `cluster` at once (the
    /// `force-sync` annotation), and waits (60 s at most) until its target Secret holds
    /// `value` under `key`. Returns the field's previous value: the vault outlives scenarios
    /// (`healthy` keeps what it holds), so a test puts it back the same way.
    pub async fn rotate_in_1password(&self, (item, field): (&str, &str), value: &str, (cluster, ns, name, key): (&str, &str, &str, &str)) -> String {
        self.touch();
        let mut vault = sim::data::Vault::load(&self.cfg).expect("the simulation's vault");
        let before = vault.value(item, field).unwrap_or_else(|| panic!("1Password item {item} has no field {field}")).to_string();
        vault.set(item, field, value);
        vault.save(&self.cfg).expect("saving the vault");
        let es = self.dynamic(cluster, "external-secrets.io/v1", "ExternalSecret", Some(ns)).await;
        let target = es.get(name).await.unwrap_or_else(|e| panic!("{cluster}: ExternalSecret {ns}/{name}: {e}")).data["spec"]["target"]["name"].as_str().unwrap_or(name).to_string();
        let stamp = json!({"metadata": {"annotations": {"force-sync": format!("{:?}", std::time::SystemTime::now())}}});
        es.patch(name, &PatchParams::default(), &Patch::Merge(&stamp)).await.unwrap_or_else(|e| panic!("{cluster}: force-sync ExternalSecret {ns}/{name}: {e}"));
        let t = Instant::now();
        while self.secret(cluster, ns, &target).await.get(key).map(String::as_str) != Some(value) {
            assert!(t.elapsed() < Duration::from_secs(60), "{cluster}: external-secrets did not sync {item}/{field} into Secret {ns}/{target} within 60s");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        before
    }

    pub async fn secret(&self, cluster: &str, ns: &str, name: &str) -> BTreeMap<String, String> {
        let s = Api::<Secret>::namespaced(self.kube(cluster), ns).get(name).await.unwrap_or_else(|e| panic!("{cluster}: Secret {ns}/{name}: {e}"));
        s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned())).collect()
    }

    /// Server-side applies `body` (top-level fields besides apiVersion/kind/metadata.name/namespace)
    /// to an object, creating it if absent.
    pub async fn apply(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>, name: &str, body: Value) {
        self.touch();
        let obj = object(api_version, kind, ns, name, body);
        let api = self.api(cluster, api_version, kind, ns).await;
        api.patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&obj)).await.unwrap_or_else(|e| panic!("{cluster}: apply {kind} {name}: {e}"));
    }

    /// Server-side applies `status` to an object's status subresource (what its controller would write).
    pub async fn patch_status(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>, name: &str, status: Value) {
        self.touch();
        let obj = object(api_version, kind, ns, name, json!({"status": status}));
        let api = self.api(cluster, api_version, kind, ns).await;
        api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("{cluster}: patch status of {kind} {name}: {e}"));
    }

    pub async fn delete(&self, cluster: &str, api_version: &str, kind: &str, ns: Option<&str>, name: &str) {
        self.touch();
        let api = self.api(cluster, api_version, kind, ns).await;
        api.delete(name, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{cluster}: delete {kind} {name}: {e}"));
    }

    /// Sets one key of a Secret (merge patch of `stringData`).
    pub async fn set_secret_key(&self, cluster: &str, ns: &str, name: &str, key: &str, value: &str) {
        self.touch();
        let api: Api<Secret> = Api::namespaced(self.kube(cluster), ns);
        let pp = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
        api.patch(name, &pp, &Patch::Merge(json!({"stringData": {key: value}}))).await.unwrap_or_else(|e| panic!("{cluster}: Secret {ns}/{name}: {e}"));
    }

    /// Scales a Deployment (the controllers then act on it; see [`wait_not_ready`](Self::wait_not_ready)).
    pub async fn scale(&self, cluster: &str, ns: &str, deployment: &str, replicas: i32) {
        self.touch();
        let api: Api<Deployment> = Api::namespaced(self.kube(cluster), ns);
        let pp = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
        api.patch(deployment, &pp, &Patch::Merge(json!({"spec": {"replicas": replicas}})))
            .await
            .unwrap_or_else(|e| panic!("{cluster}: scale Deployment {ns}/{deployment}: {e}"));
    }

    /// Ready count of a `"Deployment"` (readyReplicas) or `"DaemonSet"` (numberReady).
    pub async fn ready_count(&self, cluster: &str, kind: &str, ns: &str, name: &str) -> i32 {
        let client = self.kube(cluster);
        let what = format!("{cluster}: {kind} {ns}/{name}");
        match kind {
            "DaemonSet" => Api::<DaemonSet>::namespaced(client, ns).get(name).await.unwrap_or_else(|e| panic!("{what}: {e}")).status.map(|s| s.number_ready).unwrap_or(0),
            "Deployment" => Api::<Deployment>::namespaced(client, ns).get(name).await.unwrap_or_else(|e| panic!("{what}: {e}")).status.and_then(|s| s.ready_replicas).unwrap_or(0),
            other => panic!("ready_count: {other} is neither Deployment nor DaemonSet"),
        }
    }

    /// Waits (30 s at most) until the workload has no ready pod.
    pub async fn wait_not_ready(&self, cluster: &str, kind: &str, ns: &str, name: &str) {
        self.wait_ready_count(cluster, kind, ns, name, false).await
    }

    /// Waits (30 s at most) until the workload has a ready pod.
    pub async fn wait_ready(&self, cluster: &str, kind: &str, ns: &str, name: &str) {
        self.wait_ready_count(cluster, kind, ns, name, true).await
    }

    async fn wait_ready_count(&self, cluster: &str, kind: &str, ns: &str, name: &str, ready: bool) {
        let start = Instant::now();
        loop {
            let n = self.ready_count(cluster, kind, ns, name).await;
            if (n > 0) == ready {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{cluster}: {kind} {ns}/{name} has {n} ready after 30s");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Deletes a CustomResourceDefinition and waits until it is gone (instance cleanup is
    /// asynchronous); registers its re-installation from the cached CRDs (what `sim up` installed).
    pub async fn delete_crd(&self, cluster: &str, name: &str) {
        let doc = sim::crds::load(&self.cfg.cache_dir).expect("cached CRDs").into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("CRD {name} not in the cache"));
        let owned = cluster.to_string();
        self.on_restore(&format!("CRD {name} on {cluster}"), move |cfg| async move {
            let client = sim::client(&cfg, &owned).await?;
            sim::crds::install(&client, &[doc], Duration::from_secs(60)).await
        });
        self.delete(cluster, "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name).await;
        let api = self.api(cluster, "apiextensions.k8s.io/v1", "CustomResourceDefinition", None).await;
        let start = Instant::now();
        while api.get_opt(name).await.unwrap().is_some() {
            assert!(start.elapsed() < Duration::from_secs(60), "{cluster}: CRD {name} still present 60s after its deletion");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops one data service (`"postgres"`, `"redis"`, `"minio"`); registers restarting it.
    pub async fn stop_data_service(&self, service: &str) {
        self.on_restore(&format!("data service {service}"), |cfg| async move { sim::data::start(&cfg).await.map(|_| ()) });
        let rec = sim::process::lookup(&self.cfg.state_dir, sim::SHARED_SCOPE, service).unwrap_or_else(|| panic!("data service {service} not registered"));
        sim::process::stop_process(&rec, Duration::from_secs(10)).await;
        sim::process::unregister_process(&self.cfg.state_dir, sim::SHARED_SCOPE, service).unwrap();
    }

    /// Starts the data services that are not running.
    pub async fn start_data_services(&self) -> Endpoints {
        sim::data::start(&self.cfg).await.expect("sim data services")
    }
}

impl Drop for SimFixture {
    fn drop(&mut self) {
        let restores = std::mem::take(&mut *self.restores.lock().unwrap_or_else(|e| e.into_inner()));
        if self.down.load(Ordering::SeqCst) || (restores.is_empty() && !self.dirty.load(Ordering::SeqCst)) {
            return;
        }
        let cfg = self.cfg.clone();
        // A runtime of its own on another thread: drop may run inside the test's runtime,
        // or while a failed assertion unwinds.
        let errors = std::thread::spawn(move || tokio::runtime::Runtime::new().unwrap().block_on(restore_all(&cfg, restores))).join();
        match errors {
            Ok(errors) if errors.is_empty() => {}
            Ok(errors) => eprintln!("simulation fixture: restore failed:\n{}", errors.join("\n")),
            Err(_) => eprintln!("simulation fixture: restore panicked"),
        }
    }
}

/// Registered restores (newest first), then the healthy scenario; the errors, each named.
async fn restore_all(cfg: &SimConfig, restores: Vec<(String, RestoreFn)>) -> Vec<String> {
    let mut errors = vec![];
    for (what, f) in restores.into_iter().rev() {
        if let Err(e) = f(cfg.clone()).await {
            errors.push(format!("{what}: {e:#}"));
        }
    }
    if let Err(e) = sim::scenario::apply(cfg, "healthy").await {
        errors.push(format!("scenario healthy: {e:#}"));
    }
    errors
}

/// `apiVersion`, `kind`, `metadata.name`/`namespace`, then the fields of `body`.
fn object(api_version: &str, kind: &str, ns: Option<&str>, name: &str, body: Value) -> Value {
    let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
    if let Some(ns) = ns {
        obj["metadata"]["namespace"] = json!(ns);
    }
    for (k, v) in body.as_object().expect("body is an object") {
        obj[k] = v.clone();
    }
    obj
}

/// A dynamic API through discovery (see [`SimFixture::dynamic`]).
/// Waits (a watch) until object `name` of `api` is in `status.phase` `phase`, or, with `None`,
/// gone; panics with `what` when `within` passes first.
pub async fn wait_phase(api: &Api<DynamicObject>, name: &str, phase: Option<&str>, within: Duration, what: &str) {
    let want = phase.map(str::to_string);
    let cond = move |o: Option<&DynamicObject>| match (&want, o) {
        (Some(p), Some(o)) => o.data["status"]["phase"] == p.as_str(),
        (None, o) => o.is_none(),
        (Some(_), None) => false,
    };
    wait_for(api, name, cond, within, what).await
}

/// Waits (a watch) until object `name` of `api` (None when absent) meets `cond`; panics with
/// `what` when `within` passes first.
pub async fn wait_for(api: &Api<DynamicObject>, name: &str, cond: impl kube::runtime::wait::Condition<DynamicObject>, within: Duration, what: &str) {
    let waited = tokio::time::timeout(within, kube::runtime::wait::await_condition(api.clone(), name, cond)).await;
    assert!(matches!(waited, Ok(Ok(_))), "{what} ({waited:?})");
}

/// Creates again an object a test deleted, from its copy read before (server-set metadata dropped).
pub async fn recreate(api: &Api<DynamicObject>, mut object: DynamicObject) {
    object.metadata.resource_version = None;
    object.metadata.uid = None;
    object.metadata.managed_fields = None;
    object.metadata.creation_timestamp = None;
    api.create(&kube::api::PostParams::default(), &object).await.unwrap();
}

pub async fn dynamic(client: &kube::Client, api_version: &str, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (ar, caps) = kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
        .await
        .unwrap_or_else(|e| panic!("discovery of {api_version} {kind}: {e}"));
    match (caps.scope, ns) {
        (kube::discovery::Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    }
}
