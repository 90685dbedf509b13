//! Installs the CRDs collected by `sim/crds.sh` (`$PA_CACHE/crds/**/*.yaml`) with
//! server-side apply and waits for them to be Established.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sha2::Digest;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};

use super::FIELD_MANAGER;

/// One CRD document from the cache.
#[derive(Debug, Clone)]
pub struct CrdDoc {
    pub name: String,
    pub file: PathBuf,
    pub value: serde_json::Value,
}

/// Hand-written stand-in CRDs (repository path, text), for kinds whose upstream CRD is not
/// obtainable here (see each file for why). They are installed at start with the collected
/// CRDs, so they are in the cluster templates and exist before Velero reads API discovery.
pub const STANDIN: [(&str, &str); 2] = [
    ("sim/scenarios/crds/dragonfly-standin.yaml", include_str!("../../sim/scenarios/crds/dragonfly-standin.yaml")),
    ("sim/scenarios/crds/keycloak-standin.yaml", include_str!("../../sim/scenarios/crds/keycloak-standin.yaml")),
];

/// The stand-in CRDs ([`STANDIN`]) as documents.
pub fn standin() -> anyhow::Result<Vec<CrdDoc>> {
    let mut out = vec![];
    for (path, text) in STANDIN {
        parse_text(Path::new(path), text, &mut out)?;
    }
    Ok(out)
}

/// Every CRD under `$PA_CACHE/crds` (recursively, `*.yaml`/`*.yml`, multi-document
/// files split), sorted by file, then the stand-in CRDs ([`STANDIN`]).
pub fn load(cache_dir: &Path) -> anyhow::Result<Vec<CrdDoc>> {
    let mut docs = load_from(&cache_dir.join("crds"))?;
    docs.extend(standin()?);
    Ok(docs)
}

/// Every CRD under `root`, as [`load`] reads `$PA_CACHE/crds` (e.g. the later releases
/// in `$PA_CACHE/crds-next/<component>` that a scenario serves).
pub fn load_from(root: &Path) -> anyhow::Result<Vec<CrdDoc>> {
    let mut out = vec![];
    for p in yaml_files(root)? {
        parse_file(&p, &mut out)?;
    }
    Ok(out)
}

/// CRD `name` under `root`, as [`load_from`] would find it: only the file `<name>.yaml`
/// (as `sim/crds.sh` names them) is parsed when there is one, every file otherwise.
pub fn find_in(root: &Path, name: &str) -> anyhow::Result<Option<CrdDoc>> {
    let files = yaml_files(root)?;
    let file_name = format!("{name}.yaml");
    let mut out = vec![];
    for p in files.iter().filter(|p| p.file_name().is_some_and(|f| *f == *file_name)) {
        parse_file(p, &mut out)?;
    }
    if !out.iter().any(|d| d.name == name) {
        out = load_from(root)?;
    }
    Ok(out.into_iter().find(|d| d.name == name))
}

fn yaml_files(root: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = vec![];
    if !root.is_dir() {
        return Ok(files);
    }
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry?;
        let p = entry.path();
        if entry.file_type().is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            files.push(p.to_path_buf());
        }
    }
    Ok(files)
}

fn parse_file(p: &Path, out: &mut Vec<CrdDoc>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
    parse_text(p, &text, out)
}

fn parse_text(p: &Path, text: &str, out: &mut Vec<CrdDoc>) -> anyhow::Result<()> {
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc).with_context(|| format!("parse {}", p.display()))?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
            continue;
        }
        let name = value.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        if name.is_empty() {
            bail!("{}: CRD without metadata.name", p.display());
        }
        out.push(CrdDoc { name, file: p.to_path_buf(), value });
    }
    Ok(())
}

/// Fingerprint of the CRD set (paths, sizes, modification times; the stand-ins' digests):
/// `up` skips the install when the cluster's stamp matches.
pub fn fingerprint(cache_dir: &Path) -> String {
    let root = cache_dir.join("crds");
    let mut lines = vec![];
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name().into_iter().filter_map(Result::ok) {
        if !entry.file_type().is_file() || !entry.path().extension().is_some_and(|x| x == "yaml" || x == "yml") {
            continue;
        }
        let meta = entry.metadata().ok();
        let mtime =
            meta.as_ref().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        lines.push(format!(
            "{} {} {}",
            entry.path().display(),
            meta.map(|m| m.len()).unwrap_or(0),
            mtime.map(|d| d.as_nanos()).unwrap_or(0)
        ));
    }
    for (path, text) in STANDIN {
        lines.push(format!("{path} {:x}", sha2::Sha256::digest(text.as_bytes())));
    }
    lines.join("\n")
}

/// Applies every CRD (field manager `platform-acceptance-sim`, forced) and waits
/// until all are Established. The wait watches CRD events from just before the
/// apply instead of listing: a list of all CRDs is ~30 MB, and serialising it over
/// and over would keep the API servers busy.
pub async fn install(client: &kube::Client, crds: &[CrdDoc], timeout: Duration) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let start_rv =
        api.list_metadata(&ListParams::default().limit(1)).await?.metadata.resource_version.unwrap_or_default();
    let established_now: Vec<Option<String>> = futures::stream::iter(crds.iter().map(|crd| {
        let api = api.clone();
        let pp = pp.clone();
        async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match api.patch(&crd.name, &pp, &Patch::Apply(&crd.value)).await {
                    Ok(applied) => return Ok(is_established(&applied).then(|| crd.name.clone())),
                    // The API server can answer 409/429/5xx while it digests many CRDs at once.
                    Err(kube::Error::Api(e)) if attempt < 5 && (e.code == 409 || e.code == 429 || e.code >= 500) => {
                        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "apply CRD {} ({})",
                            crd.name,
                            crd.file.display()
                        )));
                    }
                }
            }
        }
    }))
    .buffer_unordered(8)
    .try_collect()
    .await?;
    let done: BTreeSet<String> = established_now.into_iter().flatten().collect();
    let mut pending: BTreeSet<String> = crds.iter().map(|c| c.name.clone()).filter(|n| !done.contains(n)).collect();
    let deadline = Instant::now() + timeout;
    if !pending.is_empty() && !start_rv.is_empty() {
        let watched = async {
            let mut events = api.watch(&WatchParams::default().timeout(290), &start_rv).await?.boxed();
            while !pending.is_empty() {
                match events.try_next().await? {
                    Some(WatchEvent::Added(c) | WatchEvent::Modified(c)) => {
                        if is_established(&c)
                            && let Some(n) = &c.metadata.name
                        {
                            pending.remove(n);
                        }
                    }
                    Some(WatchEvent::Error(e)) => bail!("watch: {}", crate::errline::kube(&kube::Error::Api(e.clone()))),
                    Some(_) => {}
                    None => bail!("watch ended"),
                }
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout_at(deadline.into(), watched).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(_)) => {} // fall back to polling below
            Err(_) => {
                let list: Vec<_> = pending.into_iter().take(10).collect();
                bail!("CRDs not Established after {}s: {}", timeout.as_secs(), list.join(", "));
            }
        }
    }
    let rest: Vec<CrdDoc> = crds.iter().filter(|c| pending.contains(&c.name)).cloned().collect();
    wait_established(client, &rest, deadline.saturating_duration_since(Instant::now())).await
}

fn is_established(c: &CustomResourceDefinition) -> bool {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
}

/// Waits until every CRD of `crds` is Established.
pub async fn wait_established(client: &kube::Client, crds: &[CrdDoc], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = not_established(client, crds).await?;
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let list: Vec<_> = missing.into_iter().take(10).collect();
            bail!("CRDs not Established after {}s: {}", timeout.as_secs(), list.join(", "));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Names of the CRDs of `crds` that are not (yet) Established.
pub async fn not_established(client: &kube::Client, crds: &[CrdDoc]) -> anyhow::Result<BTreeSet<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established: BTreeSet<String> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(is_established)
        .filter_map(|c| c.metadata.name)
        .collect();
    Ok(crds.iter().map(|c| c.name.clone()).filter(|n| !established.contains(n)).collect())
}

/// Names of the CRDs present in the cluster (metadata only: cheap).
pub async fn present(client: &kube::Client) -> anyhow::Result<BTreeSet<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    Ok(api.list_metadata(&ListParams::default()).await?.items.into_iter().filter_map(|c| c.metadata.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: NAME\n";

    #[test]
    fn the_stand_in_crds_are_installed_with_the_collected_ones_and_change_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("crds/velero")).unwrap();
        std::fs::write(dir.path().join("crds/velero/backups.velero.io.yaml"), CRD.replace("NAME", "backups.velero.io")).unwrap();
        let names: Vec<String> = load(dir.path()).unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names[0], "backups.velero.io", "the collected CRDs first");
        let standin: Vec<String> = standin().unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names[1..], standin[..]);
        assert!(standin.contains(&"dragonflies.dragonflydb.io".to_string()), "{standin:?}");
        let fp = fingerprint(dir.path());
        assert!(fp.contains("backups.velero.io.yaml") && fp.contains("sim/scenarios/crds/keycloak-standin.yaml "), "{fp}");
    }

    #[test]
    fn a_crd_is_found_by_its_file_name_or_by_reading_every_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("velero")).unwrap();
        std::fs::write(dir.path().join("velero/backups.velero.io.yaml"), CRD.replace("NAME", "backups.velero.io")).unwrap();
        std::fs::write(dir.path().join("velero/all.yaml"), CRD.replace("NAME", "restores.velero.io")).unwrap();
        std::fs::write(dir.path().join("velero/broken.yaml"), "kind: [").unwrap();
        // Found through its own file: the broken one is never read.
        assert_eq!(find_in(dir.path(), "backups.velero.io").unwrap().unwrap().file, dir.path().join("velero/backups.velero.io.yaml"));
        // Not named after its CRD: every file is read, and the broken one is reported.
        let err = find_in(dir.path(), "restores.velero.io").unwrap_err();
        assert!(format!("{err:#}").contains("broken.yaml"), "{err:#}");
        std::fs::remove_file(dir.path().join("velero/broken.yaml")).unwrap();
        assert_eq!(find_in(dir.path(), "restores.velero.io").unwrap().unwrap().name, "restores.velero.io");
        assert!(find_in(dir.path(), "schedules.velero.io").unwrap().is_none());
    }
}
