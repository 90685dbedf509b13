//! EPIC-8: Keycloak operator and instance, SSO for Grafana, GitLab and Harbor.
//!
//! These checks prove that the repository declares the Keycloak operator and one Keycloak
//! instance on the shared PostgreSQL, with its admin credentials from 1Password, a
//! cert-manager certificate for its host name and backups through its database cluster, and
//! that Grafana, GitLab and Harbor sign in through a client of that Keycloak; and that on the
//! cluster the operator is deployed and healthy and the admin console answers through its HTTPRoute
//! and the Gateway, with a ready Keycloak behind it. Test logins (8.3.4) are left to a person.
//!
//! `repo` reads the GitOps repository, `live` the Kubernetes API. Citations `§n [ID]` refer
//! to docs/reference/components.md.

mod live;
mod repo;

use crate::check::Check;

const OPERATOR_BASE: &str = "kubernetes/bases/keycloak-operator/helmrelease.yaml";
const OPERATOR_CONFIG: &str = "kubernetes/workloads/platform/auth/keycloak/operator/kustomization.yaml";
const INSTANCE_FILE: &str = "kubernetes/workloads/platform/auth/keycloak/instance/keycloak.yaml";

pub fn checks() -> Vec<Check> {
    vec![
        // 8.1
        Check::repo("8.1", "Keycloak operator base HelmRelease created", "keycloak_operator_base_helmrelease", repo::keycloak_operator_base_helmrelease),
        Check::repo("8.1", "Keycloak operator infrastructure config created", "keycloak_operator_config", repo::keycloak_operator_config),
        Check::cluster("8.1", "Operator deployed on infra cluster", "keycloak_operator_deployed", live::keycloak_operator_deployed),
        Check::cluster("8.1", "Operator healthy", "keycloak_operator_healthy", live::keycloak_operator_healthy),
        // 8.2
        Check::repo("8.2", "Keycloak instance manifest created", "keycloak_instance_manifest", repo::keycloak_instance_manifest),
        Check::repo("8.2", "Connected to shared PostgreSQL (CloudNativePG)", "keycloak_uses_shared_postgres", repo::keycloak_uses_shared_postgres),
        Check::repo("8.2", "Admin credentials in 1Password", "keycloak_admin_from_1password", repo::keycloak_admin_from_1password),
        Check::data_plane("8.2", "Admin console accessible via HTTPRoute", "keycloak_console_reachable", live::keycloak_console_reachable),
        Check::repo("8.2", "TLS certificate configured (cert-manager)", "keycloak_tls_certificate", repo::keycloak_tls_certificate),
        Check::repo("8.2", "Backup configured", "keycloak_backup_configured", repo::keycloak_backup_configured),
        // 8.3
        Check::repo("8.3", "Grafana configured with Keycloak SSO (OIDC)", "grafana_keycloak_sso", repo::grafana_keycloak_sso).once(),
        Check::repo("8.3", "GitLab configured with Keycloak SSO (OIDC)", "gitlab_keycloak_sso", repo::gitlab_keycloak_sso_all).once(),
        Check::repo("8.3", "Harbor configured with Keycloak SSO (OIDC)", "harbor_keycloak_sso", repo::harbor_keycloak_sso_all).once(),
        Check::manual(
            "8.3",
            "Test logins work for each service",
            "A login is an interactive OIDC authorization-code flow in a browser (Grafana, GitLab and Harbor each redirect to \
             Keycloak, a person signs in, possibly with a second factor, and is sent back with a session). The harness holds no \
             user's credentials and must not create users or sessions in Keycloak's realm (that would mutate the production \
             identity store outside a disposable namespace). The configuration behind it is proven by 8.3.1-8.3.3 (repository) \
             and 8.2.4 (route). A person signs in to https://grafana.<domain>, https://gitlab.<domain> and \
             https://harbor.<domain> with a Keycloak account and confirms each lands logged in as that user.",
        ),
    ]
}
