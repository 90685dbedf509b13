//! Flux in the scenarios. The real source-controller, kustomize-controller and helm-controller run per
//! cluster (`sim/go/flux`) and reconcile the GitOps repository from the simulation's Git
//! server, which plays the Git host the repository's sync `GitRepository` names (e.g.
//! `ssh://git@github.com/<owner>/<repo>`, unchanged): inside the simulation's network
//! that host is the simulation's SSH server ([`crate::sim::gitssh`]), and the
//! `flux-system` Secret holds the deploy key and the server's host key, as `flux bootstrap`
//! writes them. The served branch has two commits:
//!
//! 1. **as given**: the repository's files;
//! 2. **simulation overlay**: what the simulation must change for Flux to reconcile the
//!    repository here, and nothing else:
//!    - ACME issuers become CA issuers of the same name (`certmanager`);
//!    - sources the simulation cannot serve (other Git repositories and OCI
//!      HelmRepositories) and the Kustomizations and HelmReleases built from them are
//!      labelled [`STAND_IN_LABEL`]: the controllers do not watch them
//!      (`--watch-label-selector`, [`WATCH_SELECTOR`]) and the simulation writes their
//!      status (`status.yaml`);
//!    - documents of kinds the clusters do not serve are left out, with a comment.
//!
//! The `https://` HelmRepositories and the `oci://` OCIRepositories keep their URLs: inside
//! the simulation's network their hosts are the simulation's chart repositories and registry
//! ([`crate::sim::charts`]), which serve a chart without templates for every HelmRelease and
//! OCI repository ([`wanted_charts`]), and the real helm-controller installs each of them.
//!
//! The simulation renders and applies the overlay commit's tree, so what it applies is what
//! Flux applies, Flux never puts back what the simulation replaced, and
//! `lastAppliedRevision` is the served overlay commit. A scenario may add a commit on top
//! ([`commit_on_top`]: `kustomization-failed` commits a dangling path, `lived-in` moves the
//! ServiceExports to the MCS API version its clusters serve); `healthy` serves the overlay
//! commit again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::certmanager::acme_to_ca;
use super::client::{ClusterSim, Kind, Kinds};
use super::{STAND_IN_ANNOTATION, str_at};
use crate::repo::GitopsRepo;
use crate::sim::{SimConfig, git};

/// Label of a Flux object the simulation reconciles in place of Flux (its status comes
/// from `status.yaml`); the annotation of the same key says why.
pub const STAND_IN_LABEL: &str = STAND_IN_ANNOTATION;
/// The Flux controllers' `--watch-label-selector`: every object but the stand-ins.
pub const WATCH_SELECTOR: &str = "!sim.platform-acceptance.io/stand-in";
/// Where the simulation's Git server listens (inside its network namespace); the Git host
/// of the sync URL (e.g. `github.com:22`) leads there ([`crate::sim::data::Endpoints`]).
pub const GIT_SSH_PORT: u16 = 19092;
/// Name of the bootstrap's GitRepository, Kustomization and Secret (`flux bootstrap`).
pub const SYNC: &str = "flux-system";
/// Author of the commits the simulation writes.
const BASE_MESSAGE: &str = "The GitOps repository as given";
const OVERLAY_MESSAGE: &str = "Simulation overlay: ACME issuers as CA issuers; sources the simulation cannot serve (and what is built from them) labelled sim.platform-acceptance.io/stand-in; kinds the clusters do not serve left out";
/// How long `healthy` waits for Flux to fetch and apply the served revision.
const FLUX_TIMEOUT: Duration = Duration::from_secs(240);
/// Flux's annotation asking for a reconciliation now (`flux reconcile`).
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// With the same value as [`REQUESTED_AT`], a HelmRelease upgrade although nothing changed
/// (`flux reconcile helmrelease --force`).
const FORCE_AT: &str = "reconcile.fluxcd.io/forceAt";

/// The merge patch asking a Flux object to reconcile now, as `flux reconcile` does; with
/// `force`, as `flux reconcile helmrelease --force` does.
pub fn reconcile_request(force: bool) -> Value {
    let now = super::now();
    let annotations = if force { json!({REQUESTED_AT: now, FORCE_AT: now}) } else { json!({REQUESTED_AT: now}) };
    json!({"metadata": {"annotations": annotations}})
}

/// What the simulation serves: the overlay commit's tree (rendered and applied by the
/// scenarios) and the revision Flux reports for it.
pub(super) struct Served {
    pub(super) repo: GitopsRepo,
    /// `<branch>@sha1:<overlay commit>`, Flux's form.
    pub(super) revision: String,
}

/// `$STATE/git`: the served repositories (`repos/`), the SSH keys (`ssh/`) and the overlay
/// commit's tree (`worktree/`).
pub fn git_dir(cfg: &SimConfig) -> PathBuf {
    cfg.state_dir.join("git")
}

/// Root of the bare repositories the Git server serves.
pub fn repos_dir(cfg: &SimConfig) -> PathBuf {
    git_dir(cfg).join("repos")
}

/// The sync source of `repo`: URL and branch of GitRepository `flux-system` (the first one;
/// every cluster's bootstrap names the same repository).
pub fn sync_source(repo: &GitopsRepo) -> Option<(String, String)> {
    repo.documents
        .iter()
        .find(|d| d.kind() == "GitRepository" && d.name() == SYNC && d.api_version().starts_with("source.toolkit.fluxcd.io/"))
        .and_then(|d| {
            let url = d.value.pointer("/spec/url")?.as_str()?.to_string();
            let branch = d.value.pointer("/spec/ref/branch").and_then(Value::as_str).unwrap_or("main").to_string();
            Some((url, branch))
        })
}

/// `(host, port)` and repository path of an `ssh://[user@]host[:port]/path` URL.
///
/// ```
/// use platform_acceptance::sim::scenario::ssh_url_parts;
/// assert_eq!(ssh_url_parts("ssh://git@github.com/o/r"), Some((("github.com".into(), 22), "o/r".into())));
/// assert_eq!(ssh_url_parts("ssh://git@git.example:2222/o/r.git"), Some((("git.example".into(), 2222), "o/r".into())));
/// assert_eq!(ssh_url_parts("https://github.com/o/r"), None);
/// ```
pub fn ssh_url_parts(url: &str) -> Option<((String, u16), String)> {
    let rest = url.strip_prefix("ssh://")?;
    let (authority, path) = rest.split_once('/')?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 22),
    };
    let path = path.trim_matches('/').trim_end_matches(".git");
    (!host.is_empty() && !path.is_empty() && !path.split('/').any(|p| p == "..")).then(|| ((host.to_string(), port), path.to_string()))
}

/// Serves `given` (see the module docs): writes the two commits (the same input gives the
/// same commits, so a served repository that already holds them is left as it is, and one
/// with a scenario's commit on top is put back), and checks the overlay's tree out.
pub(super) fn serve(cfg: &SimConfig, given: &GitopsRepo, kinds: &Kinds) -> Result<Served> {
    let (url, branch) = sync_source(given).context("the repository has no GitRepository flux-system (gotk-sync.yaml) to serve")?;
    let (_, path) = ssh_url_parts(&url)
        .with_context(|| format!("GitRepository flux-system: {url} is not an ssh:// URL; the simulation serves Git over SSH only"))?;
    let bare = repos_dir(cfg).join(format!("{path}.git"));
    let changes = overlay_changes(given, &|api_version, kind| kinds.contains_key(&(api_version.to_string(), kind.to_string())))?;
    let fresh = bare.with_extension("git.new");
    let commits = git::create(&fresh, &branch, &given.root, BASE_MESSAGE, OVERLAY_MESSAGE, &changes)?;
    if git::head(&bare, &branch).ok().as_deref() == Some(commits.overlay.as_str()) {
        std::fs::remove_dir_all(&fresh).ok();
    } else {
        if bare.exists() {
            std::fs::remove_dir_all(&bare).with_context(|| format!("removing {}", bare.display()))?;
        }
        std::fs::rename(&fresh, &bare).with_context(|| format!("moving {} to {}", fresh.display(), bare.display()))?;
    }
    // The bootstrap registered the clusters' deploy key with the Git host.
    let keys = crate::sim::gitssh::Keys::ensure(&git_dir(cfg).join("ssh"))?;
    std::fs::write(keys.authorized_keys(), keys.identity_pub()?)?;
    let worktree = git_dir(cfg).join("worktree");
    let stamp = git_dir(cfg).join("worktree.commit");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(commits.overlay.as_str()) {
        git::checkout(&bare, &commits.overlay, &worktree)?;
        std::fs::write(&stamp, &commits.overlay)?;
    }
    let repo = GitopsRepo::load(&worktree).with_context(|| format!("loading the overlay commit's tree {}", worktree.display()))?;
    let revision = format!("{branch}@sha1:{}", commits.overlay);
    std::fs::write(git_dir(cfg).join("served-revision"), &revision)?;
    crate::sim::charts::write(cfg, &wanted_charts(&repo), &served_repositories(&repo)).context("writing the chart repositories")?;
    Ok(Served { repo, revision })
}

/// Secret `flux-system/flux-system` as `flux bootstrap` writes it for an SSH URL: the deploy
/// key (`identity`, `identity.pub`) the Git server accepts and the server's host key under
/// the host the URL names (`known_hosts`).
pub(super) fn bootstrap_secret(cfg: &SimConfig) -> Result<Value> {
    let given = GitopsRepo::load(&cfg.repo)?;
    let (url, _) = sync_source(&given).context("no GitRepository flux-system")?;
    let ((host, port), _) = ssh_url_parts(&url).context("not an ssh:// URL")?;
    let keys = crate::sim::gitssh::Keys::ensure(&git_dir(cfg).join("ssh"))?;
    let known = if port == 22 { host } else { format!("[{host}]:{port}") };
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SYNC, "namespace": SYNC},
        "type": "Opaque",
        "stringData": {"identity": keys.identity()?, "identity.pub": keys.identity_pub()?, "known_hosts": keys.known_hosts(&known)?},
    }))
}

/// The served repository's bare directory and branch.
fn served_branch(cfg: &SimConfig, given: &GitopsRepo) -> Result<(PathBuf, String)> {
    let (url, branch) = sync_source(given).context("no GitRepository flux-system")?;
    let (_, path) = ssh_url_parts(&url).context("not an ssh:// URL")?;
    Ok((repos_dir(cfg).join(format!("{path}.git")), branch))
}

/// The revision the served branch points at now, in Flux's form.
pub(super) fn head_revision(cfg: &SimConfig, given: &GitopsRepo) -> Result<String> {
    let (bare, branch) = served_branch(cfg, given)?;
    Ok(format!("{branch}@sha1:{}", git::head(&bare, &branch)?))
}

/// Adds a commit made of `edits` on top of the served branch; returns the new revision in
/// Flux's form. An edit whose `replace` finds nothing, or a file the branch does not have,
/// is an error (a scenario that no longer matches the repository says so).
pub(super) fn commit_on_top(cfg: &SimConfig, given: &GitopsRepo, message: &str, edits: &[super::model::Edit]) -> Result<String> {
    let (bare, branch) = served_branch(cfg, given)?;
    let mut changes = BTreeMap::new();
    for e in edits {
        let bytes = git::read(&bare, &branch, &e.file).with_context(|| format!("{} is not on the served branch", e.file))?;
        let mut text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", e.file))?;
        if let Some([from, to]) = &e.replace {
            if !text.contains(from.as_str()) {
                bail!("{}: {from:?} does not occur in it", e.file);
            }
            text = text.replace(from.as_str(), to);
        }
        if let Some(more) = &e.append {
            text.push_str(more);
        }
        changes.insert(e.file.clone(), Some(text.into_bytes()));
    }
    let commit = git::commit_on_top(&bare, &branch, message, &changes)?;
    Ok(format!("{branch}@sha1:{commit}"))
}

/// The overlay commit's changes: every file with a document the simulation changes,
/// rewritten (its other documents kept as written). A document of a kind the clusters do
/// not serve (`served` says no; e.g. Flux's notification kinds, whose controller and CRDs
/// are not obtainable here) is left out with a comment saying so, since Flux would fail
/// the whole Kustomization on it ("no matches for kind").
fn overlay_changes(given: &GitopsRepo, served: &dyn Fn(&str, &str) -> bool) -> Result<BTreeMap<String, Option<Vec<u8>>>> {
    let served_repos = served_sources(given);
    let mut by_file: BTreeMap<&Path, Vec<&crate::repo::Document>> = BTreeMap::new();
    for d in &given.documents {
        by_file.entry(d.file.as_path()).or_default().push(d);
    }
    let mut changes = BTreeMap::new();
    for (file, docs) in by_file {
        let mut changed = false;
        let mut text = String::new();
        for d in docs {
            let mut v = d.value.clone();
            let (av, kind) = (str_at(&v, "/apiVersion"), str_at(&v, "/kind"));
            if !av.is_empty() && !kind.is_empty() && !av.starts_with("kustomize.config.k8s.io/") && !served(av, kind) {
                changed = true;
                text.push_str(&format!("---\n# {kind} {} ({av}) left out by the simulation overlay: the simulated clusters do not serve {kind}\n", d.name()));
                continue;
            }
            let part = if overlay(&mut v, &served_repos) {
                changed = true;
                serde_yaml_ng::to_string(&v)?
            } else {
                d.raw.clone()
            };
            text.push_str("---\n");
            text.push_str(part.trim_end_matches('\n'));
            text.push('\n');
        }
        if changed {
            changes.insert(file.to_string_lossy().replace('\\', "/"), Some(text.into_bytes()));
        }
    }
    Ok(changes)
}

/// The Flux sources the simulation serves, as `(kind, name)`: the sync GitRepository (its
/// Git server), every `https://` HelmRepository and every `oci://` OCIRepository (its chart
/// repositories and registry, [`crate::sim::charts`]).
fn served_sources(given: &GitopsRepo) -> BTreeSet<(String, String)> {
    given
        .documents
        .iter()
        .filter(|d| d.api_version().starts_with("source.toolkit.fluxcd.io/"))
        .filter(|d| match d.kind() {
            "GitRepository" => d.name() == SYNC,
            "HelmRepository" => crate::sim::charts::served_repository(&d.value).is_some(),
            "OCIRepository" => crate::sim::charts::served_oci_repository(&d.value).is_some(),
            _ => false,
        })
        .map(|d| (d.kind().to_string(), d.name().to_string()))
        .collect()
}

/// The overlay's change of one document (see the module docs); whether it changed.
fn overlay(v: &mut Value, served: &BTreeSet<(String, String)>) -> bool {
    let group = str_at(v, "/apiVersion").split('/').next().unwrap_or("").to_string();
    let kind = str_at(v, "/kind").to_string();
    let serves = |kind: &str, name: &str| served.contains(&(kind.to_string(), name.to_string()));
    let why = match (group.as_str(), kind.as_str()) {
        ("source.toolkit.fluxcd.io", k) if serves(k, str_at(v, "/metadata/name")) => None,
        ("source.toolkit.fluxcd.io", _) => {
            Some(format!("Flux source not served in the simulation ({}); its status is the simulation's", str_at(v, "/spec/url")))
        }
        ("kustomize.toolkit.fluxcd.io", "Kustomization") if !serves(str_at(v, "/spec/sourceRef/kind"), str_at(v, "/spec/sourceRef/name")) => {
            Some(format!(
                "built from {} {}, which the simulation does not serve; its status is the simulation's",
                str_at(v, "/spec/sourceRef/kind"),
                str_at(v, "/spec/sourceRef/name")
            ))
        }
        ("helm.toolkit.fluxcd.io", "HelmRelease") => {
            let (k, n) = match v.pointer("/spec/chartRef") {
                Some(r) => (str_at(r, "/kind"), str_at(r, "/name")),
                None => (str_at(v, "/spec/chart/spec/sourceRef/kind"), str_at(v, "/spec/chart/spec/sourceRef/name")),
            };
            (!serves(k, n)).then(|| format!("chart from {k} {n}, which the simulation does not serve; its status is the simulation's"))
        }
        _ => None,
    };
    match why {
        Some(why) => {
            let meta = v["metadata"].as_object_mut().expect("metadata");
            meta.entry("labels").or_insert_with(|| json!({}))[STAND_IN_LABEL] = json!("true");
            meta.entry("annotations").or_insert_with(|| json!({}))[STAND_IN_ANNOTATION] = json!(why);
            true
        }
        None => acme_to_ca(v),
    }
}

/// Whether `o` is a Flux object the real controllers reconcile (not a stand-in).
pub(super) fn reconciled_by_flux(o: &Value) -> bool {
    let (av, kind) = (str_at(o, "/apiVersion"), str_at(o, "/kind"));
    let flux = av.starts_with("source.toolkit.fluxcd.io/")
        || (av.starts_with("kustomize.toolkit.fluxcd.io/") && kind == "Kustomization")
        || (av.starts_with("helm.toolkit.fluxcd.io/") && kind == "HelmRelease");
    flux && o.pointer(&format!("/metadata/labels/{}", STAND_IN_LABEL.replace('/', "~1"))).is_none()
}

/// The URLs of the https:// HelmRepositories of `repo` the simulation serves.
fn served_repositories(repo: &GitopsRepo) -> BTreeSet<String> {
    repo.documents
        .iter()
        .filter(|d| d.kind() == "HelmRepository" && crate::sim::charts::served_repository(&d.value).is_some())
        .map(|d| str_at(&d.value, "/spec/url").to_string())
        .collect()
}

/// The charts the real helm-controller installs from the simulation's chart repositories:
/// one per HelmRelease of `repo` (the overlay commit's tree) built from a served
/// HelmRepository, under the chart's name and a version its constraint admits, and one per
/// served OCIRepository (the chart artifact it pulls).
pub(super) fn wanted_charts(repo: &GitopsRepo) -> BTreeSet<crate::sim::charts::Chart> {
    let urls: BTreeMap<&str, &str> = repo
        .documents
        .iter()
        .filter(|d| d.kind() == "HelmRepository" && crate::sim::charts::served_repository(&d.value).is_some())
        .map(|d| (d.name(), str_at(&d.value, "/spec/url")))
        .collect();
    repo.documents
        .iter()
        .filter(|d| d.kind() == "HelmRelease" && reconciled_by_flux(&d.value))
        .filter_map(|d| {
            let spec = d.value.pointer("/spec/chart/spec")?;
            let url = urls.get(str_at(spec, "/sourceRef/name")).filter(|_| str_at(spec, "/sourceRef/kind") == "HelmRepository")?;
            Some(crate::sim::charts::Chart {
                repo_url: url.to_string(),
                name: str_at(spec, "/chart").to_string(),
                version: crate::sim::charts::lowest_version(str_at(spec, "/version")),
            })
        })
        .chain(repo.documents.iter().filter(|d| d.kind() == "OCIRepository" && reconciled_by_flux(&d.value)).filter_map(|d| {
            // One chart artifact per OCI repository, named as its last path segment and
            // tagged as `ref.tag` asks (`helm push` tags a chart with its version), the
            // lowest version `ref.semver` admits, or `latest` (Flux's default).
            let (_, _, path) = crate::sim::charts::served_oci_repository(&d.value)?;
            Some(crate::sim::charts::Chart { repo_url: str_at(&d.value, "/spec/url").to_string(), name: path.rsplit('/').next()?.to_string(), version: oci_tag(&d.value) })
        }))
        .collect()
}

/// The tag the simulation's registry serves an OCIRepository's chart under: `ref.tag`, the
/// lowest version `ref.semver` admits, or `latest` (Flux's default).
fn oci_tag(oci_repository: &Value) -> String {
    match (oci_repository.pointer("/spec/ref/tag").and_then(Value::as_str), oci_repository.pointer("/spec/ref/semver").and_then(Value::as_str)) {
        (_, Some(range)) => crate::sim::charts::lowest_version(range),
        (Some(tag), None) => tag.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// Why the wait for Flux waits on an object it does not find.
const NOT_FOUND: &str = "not found";

/// Whether Flux is done with a Flux object as it stands: Ready (or not) for its current
/// generation and not reconciling, so nothing makes it look again before its interval.
fn idle(o: &Value) -> bool {
    let observed = o.pointer("/status/observedGeneration").and_then(Value::as_i64);
    let conditions = super::certmanager::conditions(o);
    observed == o.pointer("/metadata/generation").and_then(Value::as_i64)
        && conditions.iter().any(|c| c["type"] == "Ready" && c["status"] != "Unknown")
        && !conditions.iter().any(|c| c["type"] == "Reconciling" && c["status"] == "True")
}

/// Why a Flux object is not done yet at `revision`, or None when it is.
fn pending(o: &Value, revision: &str) -> Option<String> {
    let generation = o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = o.pointer("/status/observedGeneration").and_then(Value::as_i64);
    let ready = super::certmanager::conditions(o).iter().find(|c| c["type"] == "Ready");
    // A Kustomization applies the served revision and a GitRepository fetches it; a
    // HelmRepository's artifact is its index and a HelmRelease's revision its chart version.
    let (have, at_revision) = match str_at(o, "/kind") {
        "Kustomization" => (str_at(o, "/status/lastAppliedRevision"), true),
        "GitRepository" => (str_at(o, "/status/artifact/revision"), true),
        "HelmRelease" => (str_at(o, "/status/lastAttemptedRevision"), false),
        _ => (str_at(o, "/status/artifact/revision"), false),
    };
    match ready {
        Some(c) if c["status"] == "True" && observed == generation && (have == revision || !at_revision) => None,
        Some(c) => Some(format!("Ready={} ({}: {}), revision {have:?}", str_at(c, "/status"), str_at(c, "/reason"), str_at(c, "/message"))),
        None => Some("no Ready condition yet (is Flux running? see `sim status`)".into()),
    }
}

/// A 40-digit commit id, its first 12 digits captured.
static COMMIT_ID: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"\b([0-9a-f]{12})[0-9a-f]{28}\b").expect("regex"));

/// `text` with every 40-digit commit id cut to its first 12 digits (progress lines).
fn short_shas(text: &str) -> String {
    COMMIT_ID.replace_all(text, "$1").into_owned()
}

impl ClusterSim {
    /// Waits until Flux has fetched and applied the served revision: every GitRepository and
    /// Kustomization in `objects` that Flux reconciles is Ready for its generation at
    /// `self.revision`, every such HelmRepository, OCIRepository and HelmRelease Ready for
    /// its generation, and every OCIRepository at the digest the registry serves now. One
    /// that is not is asked to reconcile now every 10 s, as `flux reconcile` does (a
    /// HelmRelease with `--force`). Returns how many there are.
    pub(super) async fn wait_flux(&self, kinds: &Kinds, objects: &[Value]) -> Result<usize> {
        self.wait_flux_at(kinds, objects, &self.revision).await
    }

    /// Like [`Self::wait_flux`], for every Flux object of this cluster that Flux reconciles,
    /// at `revision` (after a scenario's commit).
    pub(super) async fn wait_flux_applied(&self, kinds: &Kinds, revision: &str) -> Result<usize> {
        let mut objects = vec![];
        for (av, kind) in [
            ("source.toolkit.fluxcd.io/v1", "GitRepository"),
            ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
            ("source.toolkit.fluxcd.io/v1", "HelmRepository"),
            ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
            ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
        ] {
            let Some(k) = kinds.get(&(av.to_string(), kind.to_string())) else { bail!("{kind} is not served on {}", self.cluster) };
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &k.ar);
            for o in api.list(&Default::default()).await.with_context(|| format!("listing {kind} on {}", self.cluster))?.items {
                let mut v = serde_json::to_value(&o)?;
                v["apiVersion"] = json!(av);
                v["kind"] = json!(kind);
                objects.push(v);
            }
        }
        self.wait_flux_at(kinds, &objects, revision).await
    }

    async fn wait_flux_at(&self, kinds: &Kinds, objects: &[Value], revision: &str) -> Result<usize> {
        // An OCIRepository must also hold what the registry serves now (a scenario may have
        // served another chart under the same tag): (kind, namespace, name, that revision).
        let targets: Vec<(&Kind, &str, &str, Option<String>)> = objects
            .iter()
            .filter(|o| reconciled_by_flux(o))
            .filter_map(|o| {
                let kind = kinds.get(&(str_at(o, "/apiVersion").to_string(), str_at(o, "/kind").to_string()))?;
                // Without a namespace it was applied by no one (healthy's objects): the
                // Kustomization that failed to apply it is what the wait reports.
                if str_at(o, "/metadata/namespace").is_empty() {
                    return None;
                }
                let served = (str_at(o, "/kind") == "OCIRepository")
                    .then(|| crate::sim::charts::served_oci_revision(&self.cfg, str_at(o, "/spec/url"), &oci_tag(o)))
                    .flatten();
                Some((kind, str_at(o, "/metadata/namespace"), str_at(o, "/metadata/name"), served))
            })
            .collect();
        let start = Instant::now();
        // None until the first look: then only what Flux has no reason to touch is asked at
        // once; what it is still working on gets 10 s of its own before being asked (asking
        // a Kustomization in the middle of an apply makes it apply everything a second time).
        let mut asked: Option<Instant> = None;
        let mut reported = 0;
        loop {
            // One read of each kind a round (the API server is what every controller here
            // waits on), then each target's state from it.
            let mut seen: BTreeMap<(&str, String, String), Value> = BTreeMap::new();
            for kind in targets.iter().map(|t| (t.0.ar.kind.as_str(), t.0)).collect::<BTreeMap<_, _>>().into_values() {
                let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.ar);
                for o in api.list(&Default::default()).await.with_context(|| format!("listing {} on {}", kind.ar.kind, self.cluster))? {
                    let key = (kind.ar.kind.as_str(), o.metadata.namespace.clone().unwrap_or_default(), o.metadata.name.clone().unwrap_or_default());
                    seen.insert(key, serde_json::to_value(&o)?);
                }
            }
            let mut waiting = vec![];
            for (kind, ns, name, served) in &targets {
                let what = format!("{} {ns}/{name}", kind.ar.kind);
                let Some(o) = seen.get(&(kind.ar.kind.as_str(), ns.to_string(), name.to_string())) else {
                    waiting.push((*kind, *ns, *name, what, NOT_FOUND.to_string(), false));
                    continue;
                };
                let have = str_at(o, "/status/artifact/revision");
                let why = pending(o, revision).or_else(|| served.as_ref().filter(|s| *s != have).map(|s| format!("artifact {have:?}, the registry serves {s:?}")));
                if let Some(why) = why {
                    waiting.push((*kind, *ns, *name, what, why, idle(o)));
                }
            }
            if waiting.is_empty() {
                return Ok(targets.len());
            }
            // Progress on a long wait: what Flux has not applied yet, every 15 s.
            let waited = start.elapsed().as_secs();
            if waited >= 15 && waited / 15 != reported / 15 {
                reported = waited;
                let names: Vec<&str> = waiting.iter().take(3).map(|w| w.3.as_str()).collect();
                let more = waiting.len().saturating_sub(names.len());
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                eprintln!(
                    "sim: {}: waiting {waited}s for Flux to apply {}: {} of {} not yet ({}{more}); {}: {}",
                    self.cluster,
                    short_shas(revision),
                    waiting.len(),
                    targets.len(),
                    names.join(", "),
                    waiting[0].3,
                    short_shas(waiting[0].4.lines().next().unwrap_or("")).chars().take(200).collect::<String>()
                );
            }
            if start.elapsed() > FLUX_TIMEOUT {
                let list: Vec<String> = waiting.iter().map(|w| format!("{}: {}", w.3, w.4)).collect();
                bail!("Flux on {} has not applied {revision} after {}s: {}", self.cluster, FLUX_TIMEOUT.as_secs(), list.join("; "));
            }
            let first = asked.is_none();
            if asked.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                // Nothing to ask of an object that is not there (yet).
                for (kind, ns, name, what, _, _) in waiting.iter().filter(|w| w.4 != NOT_FOUND && (!first || w.5)) {
                    // A HelmRelease not Ready is upgraded as `flux reconcile helmrelease
                    // --force` does: helm-controller leaves the status of a release it finds in
                    // sync as it is, whatever put it there.
                    let force = kind.ar.kind == "HelmRelease";
                    let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &kind.ar);
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&reconcile_request(force)))
                        .await
                        .with_context(|| format!("asking {what} on {} to reconcile", self.cluster))?;
                }
                asked = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Asks the sync GitRepository to fetch now (after a commit was added).
    pub(super) async fn fetch_now(&self, kinds: &Kinds) -> Result<()> {
        let Some(kind) = kinds.get(&("source.toolkit.fluxcd.io/v1".to_string(), "GitRepository".to_string())) else {
            bail!("GitRepository is not served on {}", self.cluster)
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), SYNC, &kind.ar);
        api.patch(SYNC, &PatchParams::default(), &Patch::Merge(&reconcile_request(false))).await.with_context(|| format!("asking GitRepository {SYNC}/{SYNC} on {} to fetch", self.cluster))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(y: &str) -> Value {
        serde_yaml_ng::from_str(y).unwrap()
    }

    #[test]
    fn progress_lines_cut_commit_ids() {
        assert_eq!(
            short_shas("revision \"main@sha1:11fa2a4e0d7ab0b0d1dd780e53bcd2728a5cc57f\", sha256:abc"),
            "revision \"main@sha1:11fa2a4e0d7a\", sha256:abc"
        );
        assert_eq!(short_shas("no id here"), "no id here");
    }

    #[test]
    fn overlay_labels_unserved_sources_and_what_is_built_from_them() {
        let served = BTreeSet::from([("GitRepository".to_string(), "flux-system".to_string()), ("HelmRepository".to_string(), "jetstack".to_string())]);
        let mut sync = doc("apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: flux-system, namespace: flux-system}\nspec: {url: 'ssh://git@github.com/o/r'}\n");
        assert!(!overlay(&mut sync, &served), "the sync repository is served as it is");
        let mut helm = doc("apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: jetstack, namespace: flux-system}\nspec: {url: 'https://charts.jetstack.io'}\n");
        assert!(!overlay(&mut helm, &served), "an https:// HelmRepository is served as it is");
        assert!(reconciled_by_flux(&helm));
        let mut oci = doc("apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: spegel, namespace: flux-system}\nspec: {url: 'oci://ghcr.io/spegel-org/helm-charts/spegel'}\n");
        assert!(overlay(&mut oci, &served));
        assert!(!reconciled_by_flux(&oci));
        assert!(str_at(&oci, "/metadata/annotations/sim.platform-acceptance.io~1stand-in").contains("oci://ghcr.io/spegel-org"));
        let mut hr = doc("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: cert-manager, namespace: cert-manager}\nspec: {chart: {spec: {chart: cert-manager, version: 1.x, sourceRef: {kind: HelmRepository, name: jetstack}}}}\n");
        assert!(!overlay(&mut hr, &served), "installed by the real helm-controller");
        assert!(reconciled_by_flux(&hr));
        let mut from_oci = doc("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: spegel, namespace: kube-system}\nspec: {chartRef: {kind: OCIRepository, name: spegel}}\n");
        assert!(overlay(&mut from_oci, &served));
        assert!(!reconciled_by_flux(&from_oci));
        assert!(str_at(&from_oci, "/metadata/annotations/sim.platform-acceptance.io~1stand-in").contains("OCIRepository spegel"));
        let mut ks = doc("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: crds, namespace: flux-system}\nspec: {sourceRef: {kind: GitRepository, name: gateway-api}}\n");
        assert!(overlay(&mut ks, &served));
        let mut own = doc("apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: apps, namespace: flux-system}\nspec: {sourceRef: {kind: GitRepository, name: flux-system}}\n");
        assert!(!overlay(&mut own, &served));
        assert!(reconciled_by_flux(&own) && reconciled_by_flux(&sync));
        let mut acme = doc("apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: le}\nspec: {acme: {server: 'https://acme'}}\n");
        assert!(overlay(&mut acme, &served));
        assert_eq!(str_at(&acme, "/spec/ca/secretName"), "le-sim-ca");
    }

    #[test]
    fn a_scenario_commit_edits_the_served_branch_and_says_when_it_no_longer_matches() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("repo");
        std::fs::create_dir_all(src.join("kubernetes/clusters/infra/flux-system")).unwrap();
        std::fs::write(src.join("kubernetes/clusters/infra/flux-system/gotk-sync.yaml"), "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  url: ssh://git@github.com/o/r\n").unwrap();
        std::fs::write(src.join("kubernetes/export.yaml"), "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: db\n").unwrap();
        let cfg = SimConfig { state_dir: dir.path().join("state"), ..SimConfig::from_env() };
        let given = GitopsRepo::load(&src).unwrap();
        let served = serve(&cfg, &given, &Kinds::new()).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!served.repo.documents.iter().any(|d| d.kind() == "ServiceExport"), "a kind the clusters do not serve is left out");
        let edit = |from: &str| super::super::model::Edit { file: "kubernetes/export.yaml".into(), append: Some("# moved\n".into()), replace: Some([from.into(), "multicluster.x-k8s.io/v1beta1".into()]) };
        let rev = commit_on_top(&cfg, &given, "move", &[edit("multicluster.x-k8s.io/v1alpha1")]).unwrap();
        assert_eq!(head_revision(&cfg, &given).unwrap(), rev);
        assert_ne!(rev, served.revision);
        let err = commit_on_top(&cfg, &given, "again", &[edit("multicluster.x-k8s.io/v1alpha1")]).unwrap_err().to_string();
        assert!(err.contains("does not occur"), "{err}");
        // Serving again puts the overlay commit back.
        assert_eq!(serve(&cfg, &given, &Kinds::new()).unwrap().revision, served.revision);
        assert_eq!(head_revision(&cfg, &given).unwrap(), served.revision);
    }

    #[test]
    fn every_helm_release_from_a_served_repository_and_every_oci_repository_gets_a_chart() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("kubernetes/clusters/infra/flux-system");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("gotk-sync.yaml"), "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: flux-system, namespace: flux-system}\nspec: {url: 'ssh://git@github.com/o/r'}\n").unwrap();
        std::fs::write(
            dir.path().join("kubernetes/sources.yaml"),
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: rook-release, namespace: flux-system}\nspec: {url: 'https://charts.rook.io/release'}\n---\n\
             apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: oci-charts, namespace: flux-system}\nspec: {type: oci, url: 'oci://ghcr.io/o/charts'}\n---\n\
             apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: rook-ceph-operator, namespace: rook-ceph}\nspec: {chart: {spec: {chart: rook-ceph, version: v1.17.x, sourceRef: {kind: HelmRepository, name: rook-release}}}}\n---\n\
             apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: x, namespace: x, labels: {sim.platform-acceptance.io/stand-in: 'true'}}\nspec: {chart: {spec: {chart: x, version: 1.0.0, sourceRef: {kind: HelmRepository, name: oci-charts}}}}\n---\n\
             apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: spegel, namespace: flux-system}\nspec: {url: 'oci://ghcr.io/spegel-org/helm-charts/spegel', ref: {tag: v0.7.4}}\n---\n\
             apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: ranged, namespace: flux-system}\nspec: {url: 'oci://ghcr.io/o/ranged', ref: {semver: '>=1.2.0'}}\n",
        )
        .unwrap();
        let repo = GitopsRepo::load(dir.path()).unwrap();
        let charts: Vec<_> = wanted_charts(&repo).into_iter().map(|c| format!("{} {} {}", c.repo_url, c.name, c.version)).collect();
        assert_eq!(
            charts,
            ["https://charts.rook.io/release rook-ceph 1.17.0", "oci://ghcr.io/o/ranged ranged 1.2.0", "oci://ghcr.io/spegel-org/helm-charts/spegel spegel v0.7.4"]
        );
    }

    #[test]
    fn pending_names_what_flux_has_not_done() {
        let rev = "main@sha1:abc";
        let ks = |status: &str, applied: &str, observed: i64| {
            json!({"kind": "Kustomization", "metadata": {"generation": 2}, "status": {"observedGeneration": observed, "lastAppliedRevision": applied,
                "conditions": [{"type": "Ready", "status": status, "reason": "BuildFailed", "message": "kustomize build failed"}]}})
        };
        assert_eq!(pending(&ks("True", rev, 2), rev), None);
        assert!(pending(&ks("False", rev, 2), rev).unwrap().contains("Ready=False (BuildFailed: kustomize build failed)"));
        assert!(pending(&ks("True", "main@sha1:old", 2), rev).is_some(), "an older revision is not done");
        assert!(pending(&ks("True", rev, 1), rev).is_some(), "an older generation is not done");
        assert!(pending(&json!({"kind": "GitRepository"}), rev).unwrap().contains("no Ready condition"));
        let hr = |status: &str| json!({"kind": "HelmRelease", "metadata": {"generation": 1}, "status": {"observedGeneration": 1, "lastAttemptedRevision": "1.17.0",
            "conditions": [{"type": "Ready", "status": status, "reason": "InstallFailed", "message": "chart not found"}]}});
        assert_eq!(pending(&hr("True"), rev), None, "a HelmRelease's revision is its chart version");
        assert!(pending(&hr("False"), rev).unwrap().contains("InstallFailed"));
    }

    #[test]
    fn overlay_changes_rewrite_only_files_with_changed_documents() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("kubernetes/clusters/infra/flux-system");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("gotk-sync.yaml"), "---\n# kept\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  url: ssh://git@github.com/o/r\n").unwrap();
        std::fs::write(dir.path().join("kubernetes/sources.yaml"), "---\n# first\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\nmetadata:\n  name: errors\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: x\n  namespace: flux-system\nspec:\n  type: oci\n  url: oci://x\n").unwrap();
        let repo = GitopsRepo::load(dir.path()).unwrap();
        let changes = overlay_changes(&repo, &|_, kind| kind != "Alert").unwrap();
        assert_eq!(changes.keys().collect::<Vec<_>>(), vec!["kubernetes/sources.yaml"]);
        let text = String::from_utf8(changes["kubernetes/sources.yaml"].clone().unwrap()).unwrap();
        assert!(text.starts_with("---\n# first\napiVersion: v1\nkind: Namespace"), "{text}");
        assert!(text.contains("sim.platform-acceptance.io/stand-in: 'true'"), "{text}");
        assert!(text.contains("# Alert errors (notification.toolkit.fluxcd.io/v1beta3) left out by the simulation overlay") && !text.contains("kind: Alert"), "{text}");
        assert_eq!(sync_source(&repo), Some(("ssh://git@github.com/o/r".into(), "main".into())));
    }
}
