//! EPIC-6 checks: observability. VictoriaMetrics stack (6.1), VictoriaLogs + vmauth (6.2),
//! Fluent Bit (6.3).
//!
//! They prove that the repository defines the stack's base HelmReleases and workload
//! configs, its components, storage on Rook Ceph, the log tenants and Grafana's
//! VictoriaLogs datasource, and that fluent-bit forwards each cluster's logs with its own
//! tenant header; on the clusters, that the stack's custom resources and workloads are
//! ready (6.1.5, 6.2.3, 6.3.5, 6.3.6) and that vmselect, Grafana and VictoriaLogs answer
//! over HTTP through `ctx.resolve` (6.1.6-6.1.8, 6.3.7, 6.3.8). Repository-layer checks
//! are in [`repo`], cluster and data-plane checks in [`live`].
//!
//! Citations `§n [ID]` refer to docs/reference/components.md.

mod live;
mod repo;

use crate::check::Check;

const VM_STACK_CHARTS: &[&str] = &["victoria-metrics-k8s-stack"];
const LOGS_CHARTS: &[&str] = &["victoria-logs-single"];
const VMAUTH_CHARTS: &[&str] = &["victoria-metrics-auth"];
const FLUENT_BIT_CHARTS: &[&str] = &["fluent-bit"];
/// Grafana plugin and datasource type of VictoriaLogs.
const LOGS_DATASOURCE_TYPE: &str = "victoriametrics-logs-datasource";

/// Every criterion of EPIC-6, in document order.
pub fn checks() -> Vec<Check> {
    vec![
        // Story 6.1
        Check::repo("6.1", "Victoria Metrics stack base HelmRelease created", "vm_stack_base_helmrelease", repo::vm_stack_base),
        Check::repo("6.1", "VM stack workload config created", "vm_stack_config_applied", repo::vm_stack_config),
        Check::repo("6.1", "Includes: VMCluster, VMAgent, VMAlert, Grafana", "vm_stack_components_enabled", repo::vm_stack_components),
        Check::repo("6.1", "Persistent storage configured (Rook Ceph)", "vm_stack_storage_rook_ceph", repo::vm_stack_storage),
        Check::cluster("6.1", "Deployed on infra cluster", "vm_stack_operational", live::vm_stack_operational),
        Check::data_plane("6.1", "VMAgent scraping infra cluster metrics", "vmagent_scrapes_cluster", live::vmagent_scrapes_cluster),
        Check::data_plane("6.1", "Grafana accessible with Victoria Metrics datasource", "grafana_vm_datasource", live::grafana_vm_datasource),
        Check::data_plane("6.1", "Metrics visible in Grafana", "grafana_shows_metrics", live::grafana_shows_metrics),
        // Story 6.2
        Check::repo("6.2", "Victoria Logs base HelmRelease created", "victoria_logs_base_helmrelease", repo::logs_base),
        Check::repo("6.2", "Victoria Logs workload config created", "victoria_logs_config_applied", repo::logs_config),
        Check::cluster("6.2", "Deployed on infra cluster", "victoria_logs_ready", live::victoria_logs_ready),
        Check::repo("6.2", "Logs storage configured", "victoria_logs_storage", repo::logs_storage),
        Check::repo("6.2", "VMAuth configured for multi-tenancy", "vmauth_tenants", repo::vmauth_tenants),
        Check::repo("6.2", "Grafana datasource configured", "grafana_victorialogs_datasource", repo::grafana_logs_datasource),
        // Story 6.3
        Check::repo("6.3", "Fluent-bit base HelmRelease created", "fluent_bit_base_helmrelease", repo::fluent_bit_base),
        Check::repo("6.3", "Fluent-bit workload config created", "fluent_bit_config_applied", repo::fluent_bit_config),
        Check::repo("6.3", "Configured to forward to Victoria Logs", "fluent_bit_output_victorialogs", repo::fluent_bit_forwards),
        Check::repo("6.3", "Multi-tenant configuration (infra/apps tenant headers)", "fluent_bit_tenant_header", repo::fluent_bit_tenant_header),
        Check::cluster("6.3", "Deployed to infra cluster", "fluent_bit_ready_infra", live::fluent_bit_ready),
        Check::cluster("6.3", "Deployed to apps cluster (automatic with tenant variable)", "fluent_bit_ready_apps", live::fluent_bit_ready),
        Check::data_plane("6.3", "Logs forwarded to Victoria Logs", "logs_in_victoria_logs", live::logs_in_victoria_logs),
        Check::data_plane("6.3", "Logs visible in Grafana", "logs_in_grafana", live::logs_in_grafana),
    ]
}
