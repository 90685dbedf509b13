//! **Stand-in** for the Helm chart repositories the platform's HelmRepositories name
//! (`https://charts.jetstack.io`, `https://charts.rook.io/release`, ...). The real Flux
//! source-controller fetches their `index.yaml` and charts, and the real helm-controller
//! installs every HelmRelease from them; the charts are the simulation's.
//!
//! Each chart a HelmRelease asks for is served under the name and a version its
//! `spec.chart.spec.version` admits ([`lowest_version`]: an exact version as it is, a range
//! as the lowest version it admits). A chart holds `Chart.yaml` and an empty `values.yaml`,
//! and **no templates**: installing it makes a Helm release (history, values, Secret
//! `sh.helm.release.v1.*`) and no objects; the workloads the real chart would create are
//! the simulation's (`sim/scenarios/workloads.yaml`). The repository index is Helm's
//! (`apiVersion: v1`, `entries` by chart name, each with `urls` and the archive's
//! `digest`), as `helm repo index` writes it.
//!
//! The OCI repositories the platform's OCIRepositories name (`oci://ghcr.io/...`) are served
//! the same way, as a read-only OCI distribution registry (`/v2/`, manifests by tag and
//! digest, blobs, tag lists): per repository one Helm chart artifact as `helm push` makes it,
//! an image manifest with the chart's config (`application/vnd.cncf.helm.config.v1+json`)
//! and the chart archive as its one layer
//! (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`), tagged with the
//! OCIRepository's `ref.tag` (the chart version, as `helm push` tags it).
//!
//! The scenarios write the repositories under `$STATE/charts/<host>/<path>/` ([`write`]);
//! [`serve`] answers HTTPS on [`CHART_PORT`] inside the simulation's network with a
//! certificate for every chart host signed by the simulation's CA, by the request's `Host`
//! and path. The chart hosts lead there through the endpoint map
//! ([`crate::sim::data::Endpoints`]), and source-controller trusts the CA (`SSL_CERT_FILE`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::SimConfig;

/// Loopback port of the chart repositories (fixed, like the other shared stand-ins).
pub const CHART_PORT: u16 = 19093;

/// One chart a HelmRelease asks for: the repository's URL, the chart's name and the
/// version served for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Chart {
    pub repo_url: String,
    pub name: String,
    pub version: String,
}

/// `$STATE/charts`: the repositories, one directory per host and path.
pub fn charts_dir(cfg: &SimConfig) -> PathBuf {
    cfg.state_dir.join("charts")
}

/// `(host, port, path)` of an `https://` repository URL; None for any other scheme (see
/// [`oci_parts`]).
///
/// ```
/// use platform_acceptance::sim::charts::https_parts;
/// assert_eq!(https_parts("https://charts.rook.io/release"), Some(("charts.rook.io".into(), 443, "release".into())));
/// assert_eq!(https_parts("https://backube.github.io/helm-charts/"), Some(("backube.github.io".into(), 443, "helm-charts".into())));
/// assert_eq!(https_parts("https://h:8443"), Some(("h".into(), 8443, String::new())));
/// assert_eq!(https_parts("oci://ghcr.io/o/charts"), None);
/// ```
pub fn https_parts(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("https://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (authority, 443),
    };
    let path = path.trim_matches('/');
    (!host.is_empty() && !path.split('/').any(|p| p == "..")).then(|| (host.to_ascii_lowercase(), port, path.to_string()))
}

/// `(host, port, path)` of an `oci://` repository URL; None for any other scheme.
///
/// ```
/// use platform_acceptance::sim::charts::oci_parts;
/// assert_eq!(oci_parts("oci://ghcr.io/spegel-org/helm-charts/spegel"), Some(("ghcr.io".into(), 443, "spegel-org/helm-charts/spegel".into())));
/// assert_eq!(oci_parts("https://ghcr.io/o/c"), None);
/// ```
pub fn oci_parts(url: &str) -> Option<(String, u16, String)> {
    https_parts(&format!("https://{}", url.strip_prefix("oci://")?)).filter(|(_, _, path)| !path.is_empty())
}

/// The directory under `root` (`$STATE/charts`) that holds OCI repository `url`:
/// `<host>:<port>/v2/<path>`, the registry's own paths.
fn oci_dir(root: &Path, url: &str) -> Option<PathBuf> {
    let (host, port, path) = oci_parts(url)?;
    Some(root.join(format!("{host}:{port}")).join("v2").join(path))
}

/// `(host, port, path)` of an OCIRepository (the document) the simulation's registry plays:
/// an `oci://` URL.
pub fn served_oci_repository(oci_repository: &serde_json::Value) -> Option<(String, u16, String)> {
    oci_parts(oci_repository.pointer("/spec/url")?.as_str()?)
}

/// `(host, port, path)` of a HelmRepository (the document) the simulation's chart
/// repositories play: an `https://` URL and not `type: oci`.
pub fn served_repository(helm_repository: &serde_json::Value) -> Option<(String, u16, String)> {
    let spec = helm_repository.get("spec")?;
    if spec.get("type").and_then(serde_json::Value::as_str) == Some("oci") {
        return None;
    }
    https_parts(spec.get("url")?.as_str()?)
}

/// The version served for a HelmRelease's `spec.chart.spec.version`: an exact version as
/// it is (without a leading `v`), a range or wildcard as the lowest version it admits,
/// `0.0.0` for none or `*` (a real repository would offer many; the simulation offers one).
///
/// ```
/// use platform_acceptance::sim::charts::lowest_version;
/// assert_eq!(lowest_version("1.19.1"), "1.19.1");
/// assert_eq!(lowest_version("v1.17.x"), "1.17.0");
/// assert_eq!(lowest_version("4.x"), "4.0.0");
/// assert_eq!(lowest_version(">=0.40.0 <1.0.0"), "0.40.0");
/// assert_eq!(lowest_version("~1.2"), "1.2.0");
/// assert_eq!(lowest_version("*"), "0.0.0");
/// assert_eq!(lowest_version(""), "0.0.0");
/// assert_eq!(lowest_version("2.0.0-rc.1"), "2.0.0-rc.1");
/// ```
pub fn lowest_version(constraint: &str) -> String {
    let first = constraint.split([' ', ',', '|']).find(|p| !p.is_empty()).unwrap_or("");
    let bare = first.trim_start_matches(['>', '=', '^', '~', 'v', 'V']);
    let (core, pre) = bare.split_once('-').map_or((bare, None), |(c, p)| (c, Some(p)));
    let mut parts: Vec<String> = core
        .split('.')
        .map(|p| if p.is_empty() || p.eq_ignore_ascii_case("x") || p == "*" { "0".to_string() } else { p.to_string() })
        .collect();
    parts.resize(3, "0".into());
    let version = parts[..3].join(".");
    match pre {
        Some(p) if !p.is_empty() => format!("{version}-{p}"),
        _ => version,
    }
}

/// The chart archive (`<name>-<version>.tgz`): `<name>/Chart.yaml` and `<name>/values.yaml`,
/// with fixed times and owners, so the same chart gives the same bytes (and digest).
pub fn archive(name: &str, version: &str) -> Result<Vec<u8>> {
    archive_with(name, version, &[])
}

/// [`archive`] with more files (path in the chart, content), e.g. a template.
fn archive_with(name: &str, version: &str, extra: &[(&str, &str)]) -> Result<Vec<u8>> {
    let chart_yaml = format!(
        "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"{version}\"\ntype: application\ndescription: Stand-in chart of the platform-acceptance simulation (no templates; the workloads are the simulation's)\n"
    );
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (file, body) in [("Chart.yaml", chart_yaml.as_str()), ("values.yaml", "{}\n")].into_iter().chain(extra.iter().copied()) {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{file}"), body.as_bytes())?;
    }
    let gz = tar.into_inner()?;
    Ok(gz.finish()?)
}

/// Writes one repository per URL of `charts` and of `repositories` (the https:// Helm
/// repositories the sources name; one no HelmRelease installs from still answers, with an
/// index of no charts, as a real one answers whatever is asked of it): the archives and
/// `index.yaml`, replacing what an earlier scenario wrote there (left as it is when it holds
/// these charts already, so a fetch under way never sees a repository missing).
pub fn write(cfg: &SimConfig, charts: &BTreeSet<Chart>, repositories: &BTreeSet<String>) -> Result<()> {
    let root = charts_dir(cfg);
    let stamp = format!("{:x}\n", Sha256::digest(format!("{charts:?} {repositories:?}").as_bytes()));
    if std::fs::read_to_string(root.join(".charts")).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(());
    }
    let mut by_repo: BTreeMap<&str, Vec<&Chart>> = repositories.iter().map(|url| (url.as_str(), vec![])).collect();
    for c in charts {
        by_repo.entry(c.repo_url.as_str()).or_default().push(c);
    }
    let tmp = root.with_extension("new");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    for (url, list) in by_repo {
        if let Some(dir) = oci_dir(&tmp, url) {
            write_oci(&dir, &list)?;
            continue;
        }
        let Some((host, port, path)) = https_parts(url) else { bail!("{url} is neither an https:// Helm repository nor an oci:// one") };
        let dir = tmp.join(format!("{host}:{port}")).join(&path);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut entries: BTreeMap<&str, Vec<serde_json::Value>> = BTreeMap::new();
        for c in list {
            let file = format!("{}-{}.tgz", c.name, c.version);
            let bytes = archive(&c.name, &c.version)?;
            std::fs::write(dir.join(&file), &bytes)?;
            entries.entry(&c.name).or_default().push(serde_json::json!({
                "apiVersion": "v2", "name": c.name, "version": c.version, "appVersion": c.version, "type": "application",
                "created": "2026-01-01T00:00:00Z",
                "digest": format!("{:x}", Sha256::digest(&bytes)),
                "urls": [format!("{}/{file}", url.trim_end_matches('/'))],
            }));
        }
        let index = serde_json::json!({"apiVersion": "v1", "entries": entries, "generated": "2026-01-01T00:00:00Z"});
        let mut f = std::fs::File::create(dir.join("index.yaml"))?;
        f.write_all(serde_yaml_ng::to_string(&index)?.as_bytes())?;
    }
    std::fs::create_dir_all(&tmp)?;
    std::fs::write(tmp.join(".charts"), &stamp)?;
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    std::fs::rename(&tmp, &root).with_context(|| format!("moving {} to {}", tmp.display(), root.display()))?;
    Ok(())
}

/// Media type of an OCI image manifest, the kind `helm push` uploads.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// One OCI repository under `dir` (`.../v2/<path>`): each chart of `list` as a Helm chart
/// artifact, its blobs under `blobs/sha256:<hex>` and its manifest under
/// `manifests/<version>` (the tag) and `manifests/sha256:<hex>`.
fn write_oci(dir: &Path, list: &[&Chart]) -> Result<()> {
    for c in list {
        write_oci_chart(dir, c, &archive(&c.name, &c.version)?)?;
    }
    Ok(())
}

/// Serves `chart` from its OCI repository (`chart.repo_url`, `oci://`) as a chart whose one
/// template calls Helm's `fail` with `message`: a release of it cannot be rendered, so
/// helm-controller's install or upgrade fails with Helm's own error. The source-controller
/// sees a new digest under the same tag at its next pull. The next [`write`] serves the
/// scenario's charts again.
pub fn serve_failing_chart(cfg: &SimConfig, chart: &Chart, message: &str) -> Result<()> {
    let root = charts_dir(cfg);
    let Some(dir) = oci_dir(&root, &chart.repo_url) else { bail!("{} is not an oci:// repository", chart.repo_url) };
    let template = format!("{{{{ fail {message:?} }}}}\n");
    let bytes = archive_with(&chart.name, &chart.version, &[("templates/fail.yaml", &template)])?;
    write_oci_chart(&dir, chart, &bytes)?;
    // What is served is no longer what the stamp says.
    match std::fs::remove_file(root.join(".charts")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The revision source-controller records for an OCIRepository pulled from `url` at `tag`
/// now (`<tag>@sha256:<manifest digest>`), or None when nothing is served there.
pub fn served_oci_revision(cfg: &SimConfig, url: &str, tag: &str) -> Option<String> {
    let manifest = std::fs::read(oci_dir(&charts_dir(cfg), url)?.join("manifests").join(tag)).ok()?;
    Some(format!("{tag}@sha256:{:x}", Sha256::digest(&manifest)))
}

/// One Helm chart artifact (`archive`, the chart's bytes) in the OCI repository under `dir`.
fn write_oci_chart(dir: &Path, c: &Chart, archive: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir.join("blobs")).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("manifests"))?;
    let blob = |bytes: &[u8]| -> Result<serde_json::Value> {
        let digest = format!("sha256:{:x}", Sha256::digest(bytes));
        std::fs::write(dir.join("blobs").join(&digest), bytes)?;
        Ok(serde_json::json!({"digest": digest, "size": bytes.len()}))
    };
    let config = serde_json::json!({"apiVersion": "v2", "name": c.name, "version": c.version, "appVersion": c.version, "type": "application"});
    let mut config = blob(&serde_json::to_vec(&config)?)?;
    config["mediaType"] = "application/vnd.cncf.helm.config.v1+json".into();
    let mut layer = blob(archive)?;
    layer["mediaType"] = "application/vnd.cncf.helm.chart.content.v1.tar+gzip".into();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer],
        "annotations": {"org.opencontainers.image.title": c.name, "org.opencontainers.image.version": c.version},
    }))?;
    std::fs::write(dir.join("manifests").join(format!("sha256:{:x}", Sha256::digest(&manifest))), &manifest)?;
    std::fs::write(dir.join("manifests").join(&c.version), &manifest)?;
    Ok(())
}

/// The registry's answer to `path` (`/v2/...`) on `host`: (status, content type, body,
/// `Docker-Content-Digest`). None for a path that is not the registry's.
fn registry_answer(root: &Path, host: &str, path: &str) -> Option<(u16, &'static str, Vec<u8>, Option<String>)> {
    let path = path.split(['?', '#']).next()?;
    if path == "/v2/" || path == "/v2" {
        return Some((200, "application/json", b"{}".to_vec(), None));
    }
    let rest = path.strip_prefix("/v2/")?;
    if rest.split('/').any(|p| p == ".." || p.is_empty()) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    let authority = if host.contains(':') { host } else { format!("{host}:443") };
    let base = root.join(authority).join("v2");
    let not_found = |code: &str| Some((404, "application/json", format!("{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"{path} not found\"}}]}}").into_bytes(), None));
    if let Some(name) = rest.strip_suffix("/tags/list") {
        let Ok(entries) = std::fs::read_dir(base.join(name).join("manifests")) else { return not_found("NAME_UNKNOWN") };
        let mut tags: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|t| !t.starts_with("sha256:")).collect();
        tags.sort();
        return Some((200, "application/json", serde_json::to_vec(&serde_json::json!({"name": name, "tags": tags})).ok()?, None));
    }
    let (name, kind, reference) = match (rest.rsplit_once("/manifests/"), rest.rsplit_once("/blobs/")) {
        (Some((n, r)), _) => (n, "manifests", r),
        (None, Some((n, r))) => (n, "blobs", r),
        _ => return None,
    };
    match std::fs::read(base.join(name).join(kind).join(reference)) {
        Ok(body) => {
            let digest = format!("sha256:{:x}", Sha256::digest(&body));
            let ctype = if kind == "manifests" { OCI_MANIFEST } else { "application/octet-stream" };
            Some((200, ctype, body, Some(digest)))
        }
        Err(_) => not_found(if kind == "manifests" { "MANIFEST_UNKNOWN" } else { "BLOB_UNKNOWN" }),
    }
}

/// The file under `root` that `GET path` on `host` (the `Host` header, port included
/// unless 443) asks for, if it is a chart repository's file.
fn file_for(root: &Path, host: &str, path: &str) -> Option<PathBuf> {
    let host = host.to_ascii_lowercase();
    let (h, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse::<u16>().ok()?),
        None => (host.clone(), 443),
    };
    let path = path.split(['?', '#']).next()?.trim_start_matches('/');
    if path.split('/').any(|p| p == ".." || p.is_empty()) || !(path.ends_with("/index.yaml") || path == "index.yaml" || path.ends_with(".tgz")) {
        return None;
    }
    let f = root.join(format!("{h}:{port}")).join(path);
    f.is_file().then_some(f)
}

/// Serves the repositories under [`charts_dir`] over HTTPS on `bind` for `hosts`.
pub async fn serve_on(cfg: SimConfig, bind: std::net::SocketAddr, hosts: Vec<String>) -> Result<()> {
    let (cert, key) = super::pki::Pki::at(&cfg.state_dir).serving_cert("Helm chart repositories", &hosts)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let root = charts_dir(&cfg);
    loop {
        let (sock, _) = listener.accept().await?;
        let (acceptor, root) = (acceptor.clone(), root.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(sock).await else { return };
            while let Some((method, path, headers, _)) = super::observability::read_request(&mut tls).await {
                let host = headers.get("host").map(String::as_str).unwrap_or_default();
                let answer = registry_answer(&root, host, &path).or_else(|| {
                    let body = file_for(&root, host, &path).and_then(|f| std::fs::read(f).ok())?;
                    Some((200, if path.ends_with(".tgz") { "application/gzip" } else { "text/yaml" }, body, None))
                });
                let (status, ctype, body, digest) = match (method.as_str(), answer) {
                    ("GET" | "HEAD", Some(a)) => a,
                    ("GET" | "HEAD", None) => (404, "text/plain", b"404 page not found\n".to_vec(), None),
                    _ => (405, "text/plain", b"method not allowed\n".to_vec(), None),
                };
                let digest = digest.map(|d| format!("Docker-Content-Digest: {d}\r\n")).unwrap_or_default();
                let head = format!("HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{digest}\r\n", body.len());
                let body = if method == "HEAD" { &[][..] } else { &body[..] };
                if tls.write_all(head.as_bytes()).await.is_err() || tls.write_all(body).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Serves the chart repositories the platform's HelmRepositories and OCIRepositories name on
/// [`CHART_PORT`].
pub async fn serve(cfg: &SimConfig) -> Result<()> {
    let plan = super::data::DataPlan::from_repo(&cfg.repo)?;
    let hosts: BTreeSet<String> = plan.chart_hosts.iter().map(|(h, _)| h.clone()).collect();
    if hosts.is_empty() {
        return Ok(());
    }
    serve_on(cfg.clone(), ([127, 0, 0, 1], CHART_PORT).into(), hosts.into_iter().collect()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn a_chart_archive_is_what_helm_loads_and_the_same_each_time() {
        let bytes = archive("rook-ceph", "1.17.0").unwrap();
        assert_eq!(bytes, archive("rook-ceph", "1.17.0").unwrap(), "the same chart gives the same bytes");
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut files = BTreeMap::new();
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            files.insert(e.path().unwrap().display().to_string(), s);
        }
        assert_eq!(files.keys().collect::<Vec<_>>(), ["rook-ceph/Chart.yaml", "rook-ceph/values.yaml"]);
        let chart: serde_json::Value = serde_yaml_ng::from_str(&files["rook-ceph/Chart.yaml"]).unwrap();
        assert_eq!((chart["apiVersion"].as_str(), chart["name"].as_str(), chart["version"].as_str()), (Some("v2"), Some("rook-ceph"), Some("1.17.0")));
    }

    #[test]
    fn an_oci_repository_serves_a_helm_chart_artifact_by_tag_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SimConfig { state_dir: dir.path().to_path_buf(), ..SimConfig::from_env() };
        let chart = Chart { repo_url: "oci://ghcr.io/spegel-org/helm-charts/spegel".into(), name: "spegel".into(), version: "v0.7.4".into() };
        write(&cfg, &BTreeSet::from([chart]), &BTreeSet::new()).unwrap();
        let root = charts_dir(&cfg);
        assert_eq!(registry_answer(&root, "ghcr.io", "/v2/").map(|a| a.0), Some(200), "the API version check answers anonymously");
        let (status, ctype, manifest, digest) = registry_answer(&root, "ghcr.io", "/v2/spegel-org/helm-charts/spegel/manifests/v0.7.4").unwrap();
        assert_eq!((status, ctype), (200, OCI_MANIFEST));
        let digest = digest.unwrap();
        assert_eq!(digest, format!("sha256:{:x}", Sha256::digest(&manifest)), "Docker-Content-Digest is the manifest's digest");
        let by_digest = registry_answer(&root, "ghcr.io:443", &format!("/v2/spegel-org/helm-charts/spegel/manifests/{digest}")).unwrap();
        assert_eq!(by_digest.2, manifest, "the same manifest by digest");
        let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m["config"]["mediaType"], "application/vnd.cncf.helm.config.v1+json");
        let layer = &m["layers"][0];
        assert_eq!(layer["mediaType"], "application/vnd.cncf.helm.chart.content.v1.tar+gzip");
        let blob = registry_answer(&root, "ghcr.io", &format!("/v2/spegel-org/helm-charts/spegel/blobs/{}", layer["digest"].as_str().unwrap())).unwrap();
        assert_eq!(blob.2, archive("spegel", "v0.7.4").unwrap(), "the layer is the chart archive");
        assert_eq!(blob.2.len() as u64, layer["size"].as_u64().unwrap());
        let tags: serde_json::Value = serde_json::from_slice(&registry_answer(&root, "ghcr.io", "/v2/spegel-org/helm-charts/spegel/tags/list").unwrap().2).unwrap();
        assert_eq!(tags["tags"], serde_json::json!(["v0.7.4"]));
        let missing = registry_answer(&root, "ghcr.io", "/v2/spegel-org/helm-charts/spegel/manifests/v9.9.9").unwrap();
        assert_eq!(missing.0, 404);
        assert!(String::from_utf8_lossy(&missing.2).contains("MANIFEST_UNKNOWN"));
        assert_eq!(registry_answer(&root, "quay.io", "/v2/spegel-org/helm-charts/spegel/manifests/v0.7.4").unwrap().0, 404, "another host");
        assert!(registry_answer(&root, "ghcr.io", "/v2/../../etc/passwd/blobs/x").is_none());
        assert!(registry_answer(&root, "ghcr.io", "/index.yaml").is_none(), "not the registry's");
        assert_eq!(served_oci_revision(&cfg, "oci://ghcr.io/spegel-org/helm-charts/spegel", "v0.7.4"), Some(format!("v0.7.4@{digest}")));
        assert_eq!(served_oci_revision(&cfg, "oci://ghcr.io/spegel-org/helm-charts/spegel", "v9.9.9"), None);
    }

    #[test]
    fn a_failing_chart_replaces_the_served_one_under_its_tag_until_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SimConfig { state_dir: dir.path().to_path_buf(), ..SimConfig::from_env() };
        let chart = Chart { repo_url: "oci://ghcr.io/bjw-s-labs/helm/app-template".into(), name: "app-template".into(), version: "3.7.3".into() };
        let charts = BTreeSet::from([chart.clone()]);
        write(&cfg, &charts, &BTreeSet::new()).unwrap();
        let good = served_oci_revision(&cfg, &chart.repo_url, "3.7.3").unwrap();
        serve_failing_chart(&cfg, &chart, "broken on purpose").unwrap();
        let bad = served_oci_revision(&cfg, &chart.repo_url, "3.7.3").unwrap();
        assert_ne!(bad, good, "a new digest under the same tag");
        let root = charts_dir(&cfg);
        let m: serde_json::Value = serde_json::from_slice(&registry_answer(&root, "ghcr.io", "/v2/bjw-s-labs/helm/app-template/manifests/3.7.3").unwrap().2).unwrap();
        let layer = registry_answer(&root, "ghcr.io", &format!("/v2/bjw-s-labs/helm/app-template/blobs/{}", m["layers"][0]["digest"].as_str().unwrap())).unwrap().2;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
        let template = tar.entries().unwrap().map(|e| e.unwrap()).find(|e| e.path().unwrap().ends_with("templates/fail.yaml")).map(|mut e| {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            s
        });
        assert_eq!(template.as_deref(), Some("{{ fail \"broken on purpose\" }}\n"));
        write(&cfg, &charts, &BTreeSet::new()).unwrap();
        assert_eq!(served_oci_revision(&cfg, &chart.repo_url, "3.7.3").unwrap(), good, "the scenario's chart again");
        assert!(serve_failing_chart(&cfg, &Chart { repo_url: "https://charts.jetstack.io".into(), ..chart }, "x").is_err(), "only OCI repositories");
    }

    #[test]
    fn repositories_are_written_per_host_and_path_and_served_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SimConfig { state_dir: dir.path().to_path_buf(), ..SimConfig::from_env() };
        let c = |url: &str, name: &str, v: &str| Chart { repo_url: url.into(), name: name.into(), version: v.into() };
        let charts = BTreeSet::from([
            c("https://charts.rook.io/release", "rook-ceph", "1.17.0"),
            c("https://charts.rook.io/release", "rook-ceph-cluster", "1.17.0"),
            c("https://charts.jetstack.io", "cert-manager", "1.18.2"),
        ]);
        write(&cfg, &charts, &BTreeSet::new()).unwrap();
        let root = charts_dir(&cfg);
        let index: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(file_for(&root, "charts.rook.io", "/release/index.yaml").unwrap()).unwrap()).unwrap();
        let entry = &index["entries"]["rook-ceph"][0];
        assert_eq!(entry["urls"][0], "https://charts.rook.io/release/rook-ceph-1.17.0.tgz");
        let tgz = std::fs::read(file_for(&root, "charts.rook.io:443", "/release/rook-ceph-1.17.0.tgz").unwrap()).unwrap();
        assert_eq!(entry["digest"].as_str().unwrap(), format!("{:x}", Sha256::digest(&tgz)));
        assert!(file_for(&root, "charts.jetstack.io", "/index.yaml").is_some());
        assert!(file_for(&root, "charts.jetstack.io", "/release/index.yaml").is_none(), "another host's path");
        assert!(file_for(&root, "charts.rook.io", "/release/../../etc/passwd").is_none());
        assert!(file_for(&root, "charts.rook.io", "/release/Chart.yaml").is_none(), "only indexes and archives");
        // A later scenario's charts replace the earlier ones.
        write(&cfg, &BTreeSet::from([c("https://charts.jetstack.io", "cert-manager", "1.19.0")]), &BTreeSet::new()).unwrap();
        assert!(file_for(&root, "charts.rook.io", "/release/index.yaml").is_none());
        assert!(file_for(&root, "charts.jetstack.io", "/cert-manager-1.19.0.tgz").is_some());
        // A repository no HelmRelease installs from answers with an index of no charts.
        write(&cfg, &BTreeSet::new(), &BTreeSet::from(["https://helm.cilium.io".to_string()])).unwrap();
        let index: serde_json::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(file_for(&root, "helm.cilium.io", "/index.yaml").unwrap()).unwrap()).unwrap();
        assert_eq!(index["entries"], serde_json::json!({}));
    }
}
