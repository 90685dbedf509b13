//! The Multi-Cluster Services API kinds (`multicluster.x-k8s.io`), as every epic reads them.
//!
//! Versions understood, preferred first: **v1beta1** (kubernetes-sigs/mcs-api@06391488f209
//! `pkg/apis/v1beta1/serviceexport.go`, `serviceimport.go`; Cilium's development branch
//! moved its MCS controllers there) and **v1alpha1** (§2.4 [MCS1], Cilium ≤ 1.19). The
//! fields the checks read are the same in both: ServiceExport `status.conditions[]` of type
//! `Valid` and `Conflict` (v1beta1 adds `Ready`), ServiceImport `spec.ports[].port` and
//! `status.clusters[].cluster`. Any other served version (e.g. the interim v1alpha2) is an
//! Error naming it ([`crate::cluster::discovery`]); the evidence names the version read
//! (`Found::describe`).

use crate::cluster::objects::Kind;

/// Versions of `multicluster.x-k8s.io` the checks understand, preferred first.
pub const MCS_VERSIONS: &[&str] = &["v1beta1", "v1alpha1"];

/// ServiceExport (§2.4 [C6][MCS1]).
pub const SERVICE_EXPORT: Kind = Kind::namespaced("multicluster.x-k8s.io", MCS_VERSIONS, "ServiceExport");

/// ServiceImport (§2.4 [C6]).
pub const SERVICE_IMPORT: Kind = Kind::namespaced("multicluster.x-k8s.io", MCS_VERSIONS, "ServiceImport");
