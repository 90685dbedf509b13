//! [`DataPlan`]: what `fixtures/gitops` says the data plane holds — the CNPG cluster,
//! its roles and databases, the Dragonfly instance, the buckets and MinIO endpoints,
//! and the API server DNS records — read from every cluster's Flux variables and
//! rendered objects.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use crate::repo::GitopsRepo;

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
    /// → the cluster's first control-plane node (the lowest address under `talos/<cluster>/`),
    /// the records story 1.3 creates at the DNS provider.
    pub api_records: Vec<(String, SocketAddr)>,
    /// Every listener address of every Gateway (`spec.addresses` × listener ports), where
    /// the Gateway stand-in answers inside the simulation's network.
    pub gateways: Vec<SocketAddr>,
    /// `host:port` of every 1Password store's `connectHost` (where the Connect stand-in answers).
    pub onepassword_connect: Vec<(String, u16)>,
    /// The vaults the 1Password stores name (`spec.provider.onepassword.vaults`).
    pub onepassword_vaults: Vec<String>,
    /// `host:port` of the Git host the clusters' Flux syncs from (`ssh://` URL of
    /// GitRepository `flux-system`), played by the simulation's Git server.
    pub git_ssh: Vec<(String, u16)>,
    /// `host:port` of every `https://` HelmRepository and `oci://` OCIRepository, played by
    /// the simulation's chart repositories ([`crate::sim::charts`]).
    pub chart_hosts: Vec<(String, u16)>,
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
            gateways: vec![],
            onepassword_connect: vec![],
            onepassword_vaults: vec![],
            git_ssh: vec![],
            chart_hosts: vec![],
        };
        if let Some(((host, port), _)) = crate::sim::scenario::sync_source(&repo).and_then(|(url, _)| crate::sim::scenario::ssh_url_parts(&url)) {
            plan.git_ssh.push((host, port));
        }
        for d in repo.documents.iter().filter(|d| d.api_version().starts_with("source.toolkit.fluxcd.io/")) {
            let served = match d.kind() {
                "HelmRepository" => crate::sim::charts::served_repository(&d.value),
                "OCIRepository" => crate::sim::charts::served_oci_repository(&d.value),
                _ => None,
            };
            if let Some((host, port, _)) = served
                && !plan.chart_hosts.contains(&(host.clone(), port))
            {
                plan.chart_hosts.push((host, port));
            }
        }
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
                    ("gateway.networking.k8s.io", "Gateway") => {
                        let ips = o.get("/spec/addresses").and_then(Value::as_array).into_iter().flatten().filter_map(|a| a.get("value")?.as_str()?.parse::<std::net::IpAddr>().ok());
                        let ports: Vec<u16> = o.get("/spec/listeners").and_then(Value::as_array).into_iter().flatten().filter_map(|l| u16::try_from(l.get("port")?.as_u64()?).ok()).collect();
                        for a in ips.flat_map(|ip| ports.iter().map(move |p| SocketAddr::new(ip, *p))) {
                            if !plan.gateways.contains(&a) {
                                plan.gateways.push(a);
                            }
                        }
                    }
                    ("external-secrets.io", "ClusterSecretStore" | "SecretStore") if o.get("/spec/provider/onepassword").is_some() => {
                        if let Some(hp) = o.str("/spec/provider/onepassword/connectHost").and_then(host_port_of_url)
                            && !plan.onepassword_connect.contains(&hp)
                        {
                            plan.onepassword_connect.push(hp);
                        }
                        let vaults = o.get("/spec/provider/onepassword/vaults").and_then(Value::as_object).into_iter().flatten();
                        for v in vaults.map(|(name, _)| name.clone()) {
                            if !plan.onepassword_vaults.contains(&v) {
                                plan.onepassword_vaults.push(v);
                            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_of_url_defaults_the_port_by_scheme() {
        assert_eq!(host_port_of_url("http://10.25.11.3:9000"), Some(("10.25.11.3".into(), 9000)));
        assert_eq!(host_port_of_url("https://minio.example/bucket"), Some(("minio.example".into(), 443)));
        assert_eq!(host_port_of_url("http://minio.example"), Some(("minio.example".into(), 80)));
    }
}
