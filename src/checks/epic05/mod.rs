//! EPIC-5 checks: cert-manager (5.1) and External Secrets with 1Password (5.2), both clusters.
//!
//! They prove that the repository deploys cert-manager with Let's Encrypt ClusterIssuers and
//! the External Secrets Operator with a 1Password ClusterSecretStore on both clusters, and that
//! on the clusters the operators run, the ClusterIssuers and the store are Ready (1Password
//! Connect served), the platform's Certificates are issued and its ExternalSecrets synced.
//!
//! [`repo`] holds the repository layer, [`live`] the cluster layer.
//!
//! Citations `§n [ID]` refer to docs/reference/components.md.

use crate::check::Check;

mod certificate;
mod live;
mod repo;

const CLUSTERISSUER_FILE: &str = "kubernetes/infrastructure/security/cert-manager/clusterissuer.yaml";
const CLUSTERSECRETSTORE_FILE: &str = "kubernetes/infrastructure/security/external-secrets/clustersecretstore.yaml";
/// Let's Encrypt ACME directories (production and staging) are served under this domain.
const LETSENCRYPT_DOMAIN: &str = "api.letsencrypt.org";
/// ClusterSecretStore versions a cluster may serve (docs/reference/components.md §10.1): v1, or v1beta1 on ESO < 0.17.
const ESO_VERSIONS: [&str; 2] = ["external-secrets.io/v1", "external-secrets.io/v1beta1"];

pub fn checks() -> Vec<Check> {
    vec![
        // 5.1 cert-manager
        Check::repo("5.1", "cert-manager base HelmRelease created", "cert_manager_base_helmrelease", repo::cert_manager_base),
        Check::repo("5.1", "cert-manager infrastructure config created", "cert_manager_config_applied", repo::cert_manager_config),
        Check::repo("5.1", "ClusterIssuer manifests created", "letsencrypt_clusterissuers_rendered", repo::cluster_issuers),
        Check::cluster("5.1", "cert-manager deployed to infra cluster", "cert_manager_deployed_infra", live::cert_manager_deployed),
        Check::cluster("5.1", "cert-manager deployed to apps cluster (automatic)", "cert_manager_deployed_apps", live::cert_manager_deployed),
        Check::cluster("5.1", "ClusterIssuer for Let's Encrypt created", "letsencrypt_clusterissuer_ready", live::letsencrypt_issuer_ready),
        Check::cluster("5.1", "Test certificate issued successfully", "test_certificate_issued", certificate::test_certificate_issued).writes(),
        // 5.2 External Secrets with 1Password
        Check::repo("5.2", "External Secrets Operator base HelmRelease created", "external_secrets_base_helmrelease", repo::eso_base),
        Check::repo("5.2", "External Secrets infrastructure config created", "external_secrets_config_applied", repo::eso_config),
        Check::repo("5.2", "ClusterSecretStore for 1Password configured", "onepassword_clustersecretstore", repo::onepassword_store),
        Check::cluster("5.2", "Operator deployed to infra cluster", "external_secrets_deployed_infra", live::eso_deployed),
        Check::cluster("5.2", "Operator deployed to apps cluster (automatic)", "external_secrets_deployed_apps", live::eso_deployed),
        Check::cluster("5.2", "1Password Connect accessible", "onepassword_connect_accessible", live::onepassword_connect_accessible),
        Check::cluster("5.2", "Test ExternalSecret syncs successfully", "external_secrets_synced", live::external_secrets_synced),
    ]
}
