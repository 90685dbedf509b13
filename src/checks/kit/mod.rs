//! The helper kit the epic modules share, one module per concern, so each check reads
//! like its criterion and every rule (which chart a HelmRelease installs, the Helm
//! release name Flux uses, how a cron schedule reads) is written once. When a workload
//! counts as ready is decided one layer down, in `cluster::objects` (`Rollout`), for the
//! kit and the checks alike.
//!
//! | module | what |
//! |---|---|
//! | [`rendered`] | the evaluated cluster's repository, variables and rendered objects |
//! | [`helm`] | HelmReleases: chart, [`helm::Release`] (name and namespace by Flux's rules), values |
//! | [`flux`] | kustomize/Flux reachability of directories |
//! | [`layout`] | a path the plan names, found elsewhere: the deviation naming both |
//! | [`components`] | "manifests / base HelmRelease / config created" shapes |
//! | [`secrets`] | Secrets and the ExternalSecrets that produce them |
//! | [`services`] | host names → CNPG/Dragonfly, connection settings, Keycloak issuers |
//! | [`storage`] | the Rook Ceph RBD StorageClass and CephCluster |
//! | [`cron`] | schedules, timestamps, ages |
//! | [`live`] | readiness on a cluster: HelmRelease, workloads, routes, endpoints |
//! | [`gateway`] | a page requested through the Gateway a route attaches to |
//! | [`s3`] | the object store through the target's resolver |
//! | [`disposable`] | disposable namespaces, the only place a check writes |
//! | [`mcs`] | the MCS-API kinds (ServiceExport, ServiceImport) at the versions the checks read |

pub mod components;
pub mod cron;
pub mod disposable;
pub mod flux;
pub mod gateway;
pub mod helm;
pub mod layout;
pub mod live;
pub mod mcs;
pub mod rendered;
pub mod s3;
pub mod secrets;
pub mod services;
pub mod storage;
pub mod wait;
pub mod x509;

/// Everything above in one import, for the epic modules: `use crate::checks::kit::prelude::*;`.
pub mod prelude {
    pub use super::components::*;
    pub use super::cron::*;
    pub use super::disposable::{disposable_namespace_everywhere, namespace as disposable_namespace};
    pub use super::flux::*;
    pub use super::gateway::{route_answers, Page};
    pub use super::helm::*;
    pub use super::layout::{deviation, missing_outcome, variables_deviation};
    pub use super::live::*;
    pub use super::mcs::*;
    pub use super::rendered::*;
    pub use super::s3::*;
    pub use super::secrets::*;
    pub use super::services::*;
    pub use super::storage::*;
    pub use super::wait;
}
