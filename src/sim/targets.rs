//! The simulation as a run target: its kubeconfig, and per cluster how data-plane traffic
//! reaches services. By default (`--network relay`) exactly as on real clusters: a relay pod
//! per cluster and API-server port-forwards ([`crate::cluster::relay`]); kwok hands each
//! forward to the simulation's relay stand-in ([`super::relay`]). With `--network direct`,
//! cluster names are asked of that cluster's real CoreDNS from the host, then reach the
//! process the simulation runs behind the Service ([`super::dns::ClusterDns`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cluster::Target;
use crate::cluster::access::Provenance;
use crate::cluster::resolve::Resolve;

use super::SimConfig;
use super::data::Endpoints;

/// Targets of the running simulation, one per cluster, each resolving service names
/// through its cluster's DNS from this machine (`--network direct`; the relay is attached
/// by the caller, [`crate::cluster::relay::attach`]). Errors are one line saying how to
/// start it.
pub async fn targets(clusters: &[String], overrides: &BTreeMap<String, String>) -> Result<BTreeMap<String, Target>, String> {
    let cfg = SimConfig::from_env();
    let path = super::kubeconfig_path(&cfg);
    if !path.exists() {
        return Err(format!("--sim: no simulation running ({} missing); start it with `platform-acceptance sim up`", path.display()));
    }
    let mut targets = crate::cluster::targets(&path, clusters, overrides).await.map_err(|e| e.to_string())?;
    let endpoints = super::data::endpoints(&cfg).map_err(|e| format!("--sim: no endpoint map ({e:#}); run `platform-acceptance sim up`"))?;
    // Which Secrets and ConfigMaps only the simulation wrote (unknown if a cluster cannot be read).
    let mut clients = Some(vec![]);
    for name in targets.keys() {
        match (super::client(&cfg, name).await, clients.as_mut()) {
            (Ok(c), Some(list)) => list.push((name.clone(), c)),
            _ => clients = None,
        }
    }
    let written = match clients {
        Some(clients) => super::basis::Simulation::read_written(&clients).await,
        None => None,
    };
    let provenance: Arc<dyn Provenance> = Arc::new(super::basis::Simulation { endpoints: endpoints.clone(), written });
    let resolvers = resolvers(&cfg, &endpoints).map_err(|e| format!("--sim: {e:#}"))?;
    for (name, t) in targets.iter_mut() {
        if let Some(r) = resolvers.get(name) {
            t.resolver = r.clone();
        }
        t.provenance = provenance.clone();
        // The simulation is ours: round trips may create (and remove) their objects.
        t.writable = true;
    }
    Ok(targets)
}

/// One resolver per simulated cluster: names through its CoreDNS, addresses then
/// through `endpoints` (the simulation's map, or a test's).
pub fn resolvers(cfg: &SimConfig, endpoints: &Endpoints) -> anyhow::Result<BTreeMap<String, Arc<dyn Resolve>>> {
    let specs = super::cluster::cluster_specs(cfg)?;
    Ok(specs
        .iter()
        .map(|c| (c.name.clone(), Arc::new(super::dns::ClusterDns::new(&c.name, &specs, endpoints.clone())) as Arc<dyn Resolve>))
        .collect())
}
