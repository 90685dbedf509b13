//! Storage facts several epics share: the Rook Ceph RBD StorageClass and the CephCluster.

use serde_json::Value;

use super::rendered::find;
use crate::check::{Finding, Outcome};
use crate::repo::{Rendered, RenderedObject};

/// Criterion 4.2.6 and story 6.1 ("Uses `OBSERVABILITY_BLOCK_SC` (rook-ceph-block)").
pub const RBD_STORAGE_CLASS: &str = "rook-ceph-block";

/// Upstream: the RBD provisioner is `<operator namespace>.rbd.csi.ceph.com` (docs/reference/components.md §7).
pub const RBD_PROVISIONER_SUFFIX: &str = ".rbd.csi.ceph.com";

/// The rendered CephCluster (`ceph.rook.io/*`), or a Fail.
pub fn ceph_cluster(rendered: &Rendered) -> Result<&RenderedObject, Outcome> {
    rendered.of_kind("CephCluster").find(|o| o.api_version().starts_with("ceph.rook.io/")).ok_or_else(|| {
        Outcome::fail(
            "CephCluster (ceph.rook.io/v1)",
            format!("rendered for cluster {}", rendered.cluster),
            "not rendered",
        )
    })
}

/// A finding when `class` (used by `object`) is not the Rook Ceph RBD StorageClass rendered for the cluster.
pub fn not_rook_block_class(rendered: &Rendered, object: &str, class: Option<&str>) -> Option<Finding> {
    let expected = format!("{RBD_STORAGE_CLASS:?} (a Rook Ceph RBD StorageClass rendered for cluster {})", rendered.cluster);
    let Some(class) = class.filter(|c| !c.is_empty()) else {
        return Some(Finding::new(object, expected, "no storageClassName"));
    };
    if class != RBD_STORAGE_CLASS {
        return Some(Finding::new(object, expected, format!("{class:?}")));
    }
    match rendered.of_kind("StorageClass").find(|s| s.name() == class) {
        None => Some(Finding::new(object, expected, format!("{class:?}, but no StorageClass {class} is rendered"))),
        Some(sc) if !sc.str("/provisioner").unwrap_or("").ends_with(RBD_PROVISIONER_SUFFIX) => Some(Finding::new(
            object,
            expected,
            format!("{class:?} with provisioner {:?}", sc.str("/provisioner").unwrap_or("")),
        )),
        Some(_) => None,
    }
}

/// Where a CNPG Cluster's backups go: its barmanObjectStore, or the barman-cloud plugin's ObjectStore.
pub fn backup_store(r: &crate::repo::Rendered, c: &crate::repo::RenderedObject) -> Result<(String, Value), Finding> {
    if let Some(store) = c.get("/spec/backup/barmanObjectStore") {
        return Ok((format!("{} spec.backup.barmanObjectStore", c.describe()), store.clone()));
    }
    let plugin = c.get("/spec/plugins").and_then(Value::as_array).into_iter().flatten().find(|p| {
        p.get("name").and_then(Value::as_str) == Some("barman-cloud.cloudnative-pg.io") && p.pointer("/parameters/barmanObjectName").is_some()
    });
    if let Some(name) = plugin.and_then(|p| p.pointer("/parameters/barmanObjectName")).and_then(Value::as_str) {
        return match find(r, "barmancloud.cnpg.io", "ObjectStore", name, c.namespace()) {
            Some(os) => Ok((format!("{} spec.configuration", os.describe()), os.get("/spec/configuration").cloned().unwrap_or(Value::Null))),
            None => Err(Finding::new(format!("{} barman-cloud plugin", c.describe()), format!("ObjectStore {name} rendered"), "not found")),
        };
    }
    Err(Finding::new(c.describe(), "spec.backup.barmanObjectStore or the barman-cloud plugin", "no backup object store configured"))
}
