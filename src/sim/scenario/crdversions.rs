//! API versions that move: a scenario serves a CRD from a later upstream release
//! ([`Op::ServeCrd`](super::model::Op::ServeCrd)), e.g. the MCS API at `v1beta1` only,
//! and every scenario first puts back the CRDs installed at start.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use serde_json::Value;

use super::client::ClusterSim;
use super::model::{Op, breaks_on};
use crate::sim::crds;

const SERVED_TIMEOUT: Duration = Duration::from_secs(30);

/// `(name, served)` of every version of a CRD document.
fn versions(spec: &Value) -> Vec<(String, bool)> {
    spec.pointer("/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap_or("").to_string(), v["served"].as_bool().unwrap_or(false)))
        .collect()
}

/// The spec of `later` serving only `served`, stored at `installed`'s storage version.
fn served_spec(later: &Value, installed: &Value, served: &[String]) -> Result<Value> {
    let storage = installed
        .pointer("/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .ok_or_else(|| anyhow!("the installed CRD has no storage version"))?
        .to_string();
    let mut spec = later.clone();
    let names: Vec<String> = versions(later).into_iter().map(|(n, _)| n).collect();
    for want in served.iter().chain([&storage]) {
        if !names.contains(want) {
            bail!("the later release has no version {want} (it has {names:?})");
        }
    }
    for v in spec.pointer_mut("/versions").and_then(Value::as_array_mut).into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("").to_string();
        v["served"] = Value::Bool(served.contains(&name));
        v["storage"] = Value::Bool(name == storage);
    }
    Ok(spec)
}

impl ClusterSim {
    fn crds(&self) -> Api<CustomResourceDefinition> {
        Api::all(self.client.clone())
    }

    /// Replaces CRD `name`'s spec with `spec` (PUT, keeping metadata and status).
    async fn replace_crd_spec(&self, name: &str, spec: Value) -> Result<()> {
        let mut crd = serde_json::to_value(self.crds().get(name).await.with_context(|| format!("CRD {name}"))?)?;
        crd["spec"] = spec;
        let crd: CustomResourceDefinition = serde_json::from_value(crd)?;
        self.crds().replace(name, &PostParams::default(), &crd).await.with_context(|| format!("replace CRD {name}"))?;
        Ok(())
    }

    /// Serves CRD `name` from release `release` at the `served` versions only.
    pub(super) async fn serve_crd(&self, name: &str, release: &str, served: &[String]) -> Result<()> {
        let dir = self.cache_dir.join("crds-next").join(release);
        let later = crds::find_in(&dir, name)?.ok_or_else(|| anyhow!("CRD {name} not in {} (run sim/crds.sh)", dir.display()))?;
        let installed = crds::find_in(&self.cache_dir.join("crds"), name)?.ok_or_else(|| anyhow!("CRD {name} is not installed by the simulation"))?;
        let spec = served_spec(&later.value["spec"], &installed.value["spec"], served).with_context(|| format!("CRD {name} of {}", later.file.display()))?;
        let group = spec["group"].as_str().unwrap_or("").to_string();
        let plural = spec.pointer("/names/plural").and_then(Value::as_str).unwrap_or("").to_string();
        self.replace_crd_spec(name, spec).await?;
        // Discovery shows the change a moment after the CRD is written.
        let deadline = Instant::now() + SERVED_TIMEOUT;
        for version in served {
            let path = format!("/apis/{group}/{version}");
            loop {
                let doc = self.client.request_text(http::Request::get(&path).body(vec![])?).await.unwrap_or_default();
                if doc.contains(&format!("\"name\":\"{plural}\"")) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{path} does not list {plural} {}s after CRD {name} was replaced", SERVED_TIMEOUT.as_secs());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Puts back every CRD a scenario serves from a later release, as installed at start,
    /// and then restarts the Velero server, which reads API discovery only at start and
    /// every 5 minutes (its backups would list versions no longer served), and Flux's
    /// kustomize-controller (after the served versions changed under it, its health check of
    /// the ServiceExports it applies was seen running on with every object current). Returns
    /// how many CRDs were changed.
    pub(super) async fn restore_crds(&self) -> Result<usize> {
        let mut names = vec![];
        for op in breaks_on(&self.cluster)? {
            if let Op::ServeCrd { name, .. } = op
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        let mut restored = 0;
        for name in names {
            let Some(installed) = crds::find_in(&self.cache_dir.join("crds"), &name)? else { continue };
            let current = serde_json::to_value(self.crds().get(&name).await.with_context(|| format!("CRD {name}"))?)?;
            if versions(&current["spec"]) != versions(&installed.value["spec"]) {
                self.replace_crd_spec(&name, installed.value["spec"].clone()).await?;
                restored += 1;
            }
        }
        if restored > 0 {
            crate::sim::restart_addon(&self.cfg, &self.cluster, "velero").await?;
            crate::sim::restart_addon(&self.cfg, &self.cluster, "kustomize-controller").await?;
        }
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_later_release_is_served_at_the_asked_versions_and_stored_as_installed() {
        let later = json!({"versions": [{"name": "v1alpha1", "served": true, "storage": false}, {"name": "v1beta1", "served": true, "storage": true}]});
        let installed = json!({"versions": [{"name": "v1alpha1", "served": true, "storage": true}]});
        let spec = served_spec(&later, &installed, &["v1beta1".into()]).unwrap();
        assert_eq!(spec["versions"], json!([{"name": "v1alpha1", "served": false, "storage": true}, {"name": "v1beta1", "served": true, "storage": false}]));
        let err = served_spec(&later, &installed, &["v2".into()]).unwrap_err();
        assert_eq!(err.to_string(), r#"the later release has no version v2 (it has ["v1alpha1", "v1beta1"])"#);
    }
}
