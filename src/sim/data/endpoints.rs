//! The endpoint map `$STATE/endpoints.json`: every in-cluster name (and port) of a data
//! service, of the observability engines and the Grafana stand-in, the MinIO address and the API server DNS
//! records, with the loopback socket that serves it here. Holds no secret.
//!
//! It is the simulation's stand-in for the service data path (kube-proxy, Cilium), not for
//! name resolution: whether a cluster name resolves at all, on which cluster, and whether
//! a `…svc.clusterset.local` name exists, is asked of the cluster's CoreDNS first
//! ([`crate::sim::dns`]), so the map holds only `…svc.cluster.local` names.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{DataPlan, LOOPBACK, MINIO_PORT, POSTGRES_PORT, REDIS_PORT};
use crate::sim::{SimConfig, observability};

/// One in-cluster name and the loopback socket that serves it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// `postgres`, `redis`, `minio`, `victoria-metrics`, `victoria-logs`, `grafana-stand-in`, or `dns` (an API endpoint record; nothing local serves it).
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

    /// Every address the map gives `host`, on any port (its DNS records).
    pub fn addresses(&self, host: &str) -> Vec<IpAddr> {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        let mut out: Vec<IpAddr> = self.endpoints.iter().filter(|e| e.host == h).map(|e| e.addr.ip()).collect();
        out.sort();
        out.dedup();
        out
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
        // CNPG services <cluster>-rw/-ro/-r, port 5432 (docs/reference/components.md §14 [PG1][PG2]) and
        // the fixture's extra global Service <cluster>-global.
        for suffix in ["rw", "ro", "r", "global"] {
            e.add_service("postgres", &format!("{}-{suffix}", plan.pg_cluster), &plan.pg_namespace, 5432, pg);
        }
        // Dragonfly Service = CR name, port 6379 `redis` (docs/reference/components.md §15 [DF3]).
        if let Some((svc, ns)) = &plan.dragonfly {
            e.add_service("redis", svc, ns, 6379, SocketAddr::new(LOOPBACK, REDIS_PORT));
        }
        // MinIO runs outside the clusters at ${MINIO_ENDPOINT}.
        for (h, p) in &plan.minio_endpoints {
            e.add("minio", h, *p, SocketAddr::new(LOOPBACK, MINIO_PORT));
        }
        // The observability engines (real) and the Grafana stand-in.
        let engines = super::Engines::sim();
        e.add("grafana-stand-in", observability::GRAFANA.0, observability::GRAFANA.1, SocketAddr::new(LOOPBACK, observability::OBSERVABILITY_PORT));
        e.add("victoria-metrics", observability::VMSELECT.0, observability::VMSELECT.1, engines.vmselect);
        e.add("victoria-logs", observability::VICTORIA_LOGS.0, observability::VICTORIA_LOGS.1, engines.logs);
        // 1Password Connect (stand-in, src/sim/onepassword.rs) at every store's connectHost.
        for (h, p) in &plan.onepassword_connect {
            e.add("onepassword-connect-stand-in", h, *p, SocketAddr::new(LOOPBACK, crate::sim::onepassword::CONNECT_PORT));
        }
        // The Git host of the sync GitRepository: the simulation's Git server (gitssh.rs).
        for (h, p) in &plan.git_ssh {
            e.add("git-server", h, *p, SocketAddr::new(LOOPBACK, crate::sim::scenario::GIT_SSH_PORT));
        }
        // The hosts of the https:// HelmRepositories: the simulation's chart repositories (charts.rs).
        for (h, p) in &plan.chart_hosts {
            e.add("chart-repositories-stand-in", h, *p, SocketAddr::new(LOOPBACK, crate::sim::charts::CHART_PORT));
        }
        // The Gateways' listeners, where the Gateway stand-in answers (src/sim/gateway.rs).
        for f in super::gateway_forwards(plan) {
            e.add("gateway-stand-in", &f.inside.ip().to_string(), f.inside.port(), SocketAddr::new(LOOPBACK, f.host_port));
        }
        for (host, addr) in &plan.api_records {
            e.add("dns", host, addr.port(), *addr);
        }
        e
    }

    pub(super) fn write(&self, cfg: &SimConfig) -> Result<()> {
        std::fs::create_dir_all(&cfg.state_dir)?;
        std::fs::write(Self::path(cfg), serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}

/// Reads `$STATE/endpoints.json` (written by [`super::start`]).
pub fn endpoints(cfg: &SimConfig) -> Result<Endpoints> {
    let path = Endpoints::path(cfg);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {} (is the sim up?)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            gateways: vec![],
            api_records: vec![],
            onepassword_connect: vec![("onepassword-connect.external-secrets.svc.cluster.local".into(), 8080)],
            onepassword_vaults: vec!["Prod".into()],
            git_ssh: vec![("github.com".into(), 22)],
            chart_hosts: vec![("charts.jetstack.io".into(), 443)],
        };
        let e = Endpoints::for_plan(&plan);
        let pg = e.resolve("postgres-shared-rw.databases.svc.cluster.local", 5432).unwrap();
        assert_eq!(pg.port(), POSTGRES_PORT);
        assert_eq!(e.resolve("POSTGRES-SHARED-RO.databases.svc.cluster.local.", 5432), Some(pg));
        assert_eq!(e.resolve("dragonfly.databases.svc.cluster.local", 6379).unwrap().port(), REDIS_PORT);
        assert_eq!(e.resolve("10.25.11.3", 9000).unwrap().port(), MINIO_PORT);
        assert_eq!(e.resolve("onepassword-connect.external-secrets.svc.cluster.local", 8080).unwrap().port(), crate::sim::onepassword::CONNECT_PORT);
        assert_eq!(e.resolve("github.com", 22).unwrap().port(), crate::sim::scenario::GIT_SSH_PORT);
        assert_eq!(e.resolve("charts.jetstack.io", 443).unwrap().port(), crate::sim::charts::CHART_PORT);
        // ClusterMesh names are the clusters' DNS to answer (crate::sim::dns), never the map's.
        assert_eq!(e.resolve("postgres-shared-rw.databases.svc.clusterset.local", 5432), None);
        assert_eq!(e.resolve("postgres-shared-rw.databases.svc.cluster.local", 6379), None);
    }
}
