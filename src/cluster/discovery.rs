//! API versions from discovery: which versions of a kind a cluster serves, and what that
//! means for a check that understands only some of them.
//!
//! [`super::objects::resource`] asks for the versions a check understands, preferred first.
//! When none is served, this module asks the group's discovery document which versions
//! *are* served: a kind served only at versions the check does not read is an Error naming
//! them (the check cannot judge it, the platform may be fine), not a Fail "not installed".
//!
//! ```
//! use platform_acceptance::cluster::discovery::{judge_served, Served};
//! let understood = ["v1beta1", "v1alpha1"];
//! assert_eq!(judge_served(&understood, &["v1beta1".into()]), Served::At("v1beta1".into()));
//! assert_eq!(judge_served(&understood, &["v1alpha2".into()]), Served::OnlyUnknown(vec!["v1alpha2".into()]));
//! assert_eq!(judge_served(&understood, &[]), Served::Not);
//! ```

/// How a kind is served, seen from a check that understands some of its versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// At this version, the first of the understood ones the cluster serves.
    At(String),
    /// Only at versions the check does not understand.
    OnlyUnknown(Vec<String>),
    /// Not at all (no CRD).
    Not,
}

/// The decision from the served versions (`served`, any order) and the understood ones
/// (preferred first).
pub fn judge_served(understood: &[&str], served: &[String]) -> Served {
    if let Some(v) = understood.iter().find(|v| served.iter().any(|s| s == *v)) {
        return Served::At(v.to_string());
    }
    if served.is_empty() { Served::Not } else { Served::OnlyUnknown(served.to_vec()) }
}

/// Versions of `group` that serve `kind`, from the group's discovery document; empty when
/// the group is not served at all.
pub async fn served_versions(client: &kube::Client, group: &str, kind: &str) -> Result<Vec<String>, kube::Error> {
    // One GET /apis (the group list), then one GET per version of the group.
    let g = match kube::discovery::group(client, group).await {
        Ok(g) => g,
        Err(kube::Error::Discovery(kube::error::DiscoveryError::MissingApiGroup(_))) => return Ok(vec![]),
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let versions: Vec<String> = g.versions().map(str::to_string).collect();
    Ok(versions.into_iter().filter(|v| g.versioned_resources(v).iter().any(|(ar, _)| ar.kind == kind)).collect())
}

/// The Error outcome text for a kind served only at versions the check does not read.
pub fn unknown_versions_message(group: &str, kind: &str, understood: &[&str], served: &[String]) -> String {
    format!(
        "API {group}/{kind} is served only at [{}], which this check does not read (it understands [{}]): update the check for the new version",
        served.join(", "),
        understood.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use crate::cluster::objects::{resource, Kind};
    use crate::outcome::Verdict;

    const EXPORT: Kind = Kind::namespaced("multicluster.x-k8s.io", &["v1beta1", "v1alpha1"], "ServiceExport");

    /// A cluster serving ServiceExport at `versions` (the group's discovery documents).
    fn serving(versions: &[&str]) -> kube::Client {
        let mut paths = BTreeMap::new();
        let gvs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("multicluster.x-k8s.io/{v}"), "version": v})).collect();
        let groups = if versions.is_empty() { json!([]) } else { json!([{"name": "multicluster.x-k8s.io", "versions": gvs, "preferredVersion": gvs[0]}]) };
        paths.insert("/apis".to_string(), json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
        for v in versions {
            paths.insert(
                format!("/apis/multicluster.x-k8s.io/{v}"),
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("multicluster.x-k8s.io/{v}"),
                       "resources": [{"name": "serviceexports", "singularName": "serviceexport", "namespaced": true, "kind": "ServiceExport", "verbs": ["get", "list", "watch"]}]}),
            );
        }
        crate::cluster::fake::FakeApi::new(move |path| paths.get(path).map(|v| (200, v.clone()))).client()
    }

    #[tokio::test]
    async fn the_version_read_is_the_first_understood_one_served() {
        let (_, version) = resource(&serving(&["v1beta1"]), &EXPORT).await.unwrap();
        assert_eq!(version, "multicluster.x-k8s.io/v1beta1", "main asked for v1alpha1 only and called this not served");
        let (_, version) = resource(&serving(&["v1alpha1", "v1beta1"]), &EXPORT).await.unwrap();
        assert_eq!(version, "multicluster.x-k8s.io/v1beta1");
        let (_, version) = resource(&serving(&["v1alpha1"]), &EXPORT).await.unwrap();
        assert_eq!(version, "multicluster.x-k8s.io/v1alpha1");
    }

    #[tokio::test]
    async fn a_version_the_check_does_not_read_is_an_error_naming_it_and_none_is_a_fail() {
        let o = resource(&serving(&["v1alpha2"]), &EXPORT).await.unwrap_err();
        assert_eq!(o.verdict(), Verdict::Error);
        assert_eq!(o.summary(), "API multicluster.x-k8s.io/ServiceExport is served only at [v1alpha2], which this check does not read (it understands [v1beta1, v1alpha1]): update the check for the new version");
        let o = resource(&serving(&[]), &EXPORT).await.unwrap_err();
        assert_eq!(o.verdict(), Verdict::Fail);
        assert!(o.summary().contains("not served"), "{}", o.summary());
    }
}
