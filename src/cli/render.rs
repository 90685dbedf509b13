//! `render`: what the repository makes Flux apply to a cluster, as input for deploy scripts
//! that install the platform without Flux's help first (Cilium before any CNI exists) or
//! point a fresh Flux at the commit under test (ci/kind-deploy.sh).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::checks::kit::helm::{helm_values, merge, Release, HELMRELEASE_GROUP};
use crate::repo::{GitopsRepo, Rendered, RenderedObject};
use crate::session::profile::TargetProfile;

#[derive(clap::Subcommand, Debug)]
pub enum RenderCommand {
    /// The values helm-controller passes to Helm for a HelmRelease (`values` over
    /// `valuesFrom` ConfigMaps, variables substituted), as YAML.
    #[command(after_help = "Example:\n  platform-acceptance render values --repo . --cluster infra --release kube-system/cilium > cilium-values.yaml")]
    Values(Target),
    /// `helm upgrade --install` arguments installing a HelmRelease's chart the way
    /// helm-controller does (so it adopts the release later): `RELEASE [--repo URL] CHART
    /// --version V --namespace NS` (an `oci://` reference for OCI sources).
    #[command(after_help = "Example:\n  read -r -a args <<< \"$(platform-acceptance render helm-args --repo . --cluster infra --release kube-system/cilium)\"\n  helm upgrade --install \"${args[@]}\" --values cilium-values.yaml")]
    HelmArgs(Target),
    /// Flux's entry objects for a cluster, pointed at one commit: the GitRepository
    /// `flux-system` and the Kustomization `flux-system` applying the cluster's directory
    /// (without the directory's own bootstrap copies of those two, which track the real
    /// branch), carrying the profile's variable replacements and suspensions as patches on
    /// the Kustomizations it applies.
    #[command(after_help = "Example:\n  platform-acceptance render bootstrap --repo . --cluster infra --url https://github.com/org/gitops \\\n      --revision \"$GITHUB_SHA\" --profile ci/kind-profile.yaml | kubectl --context kind-infra apply -f -")]
    Bootstrap {
        #[command(flatten)]
        on: On,
        /// Git URL Flux clones.
        #[arg(long)]
        url: String,
        /// Commit Flux applies.
        #[arg(long)]
        revision: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct On {
    /// GitOps repository.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Cluster (a directory under the repository's clusters/).
    #[arg(long)]
    cluster: String,
    /// Target profile whose variables replace the repository's.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct Target {
    #[command(flatten)]
    on: On,
    /// The HelmRelease, NAMESPACE/NAME.
    #[arg(long)]
    release: String,
}

pub fn run(command: RenderCommand) -> Result<String, String> {
    match command {
        RenderCommand::Values(t) => {
            let (repo, profile) = open(&t.on)?;
            let rendered = repo.render(&t.on.cluster).map_err(|e| e.to_string())?;
            let hr = helmrelease(&rendered, &t.release)?;
            let mut values = helm_values(&rendered, hr);
            if let Some(extra) = profile.as_ref().and_then(|p| p.values.get(&t.on.cluster)).and_then(|v| v.get(&t.release)) {
                merge(&mut values, extra);
            }
            serde_yaml_ng::to_string(&values).map_err(|e| e.to_string())
        }
        RenderCommand::HelmArgs(t) => {
            let rendered = open(&t.on)?.0.render(&t.on.cluster).map_err(|e| e.to_string())?;
            let hr = helmrelease(&rendered, &t.release)?;
            let release = Release::of(hr);
            let mut args = vec![release.name];
            args.extend(chart_args(&rendered, hr)?);
            args.extend(["--namespace".into(), release.namespace]);
            Ok(args.join(" ") + "\n")
        }
        RenderCommand::Bootstrap { on, url, revision } => {
            let (repo, profile) = open(&on)?;
            bootstrap(&repo, &on.cluster, &url, &revision, profile.as_ref())
        }
    }
}

/// The repository with the profile's variables in force (the profile validated against it).
fn open(on: &On) -> Result<(GitopsRepo, Option<TargetProfile>), String> {
    let mut repo = GitopsRepo::load(&on.repo).map_err(|e| e.to_string())?;
    repo.check_cluster(&on.cluster).map_err(|e| e.to_string())?;
    let profile = on.profile.as_deref().map(TargetProfile::load).transpose()?;
    if let Some(p) = &profile {
        p.validate(None, repo.clusters(), Some(&repo))?;
        p.apply_to_repo(&mut repo);
    }
    Ok((repo, profile))
}

fn helmrelease<'a>(r: &'a Rendered, release: &str) -> Result<&'a RenderedObject, String> {
    let (ns, name) = release.split_once('/').ok_or_else(|| format!("--release {release:?}: expected NAMESPACE/NAME"))?;
    let all: Vec<&RenderedObject> = r.of_kind("HelmRelease").filter(|o| o.api_version().starts_with(HELMRELEASE_GROUP)).collect();
    all.iter().copied().find(|o| o.name() == name && o.namespace() == Some(ns)).ok_or_else(|| {
        let known: Vec<String> = all.iter().map(|o| format!("{}/{}", o.namespace().unwrap_or(""), o.name())).collect();
        format!("cluster {} renders no HelmRelease {release} (it renders: {})", r.cluster, known.join(", "))
    })
}

/// `helm upgrade --install` arguments for the HelmRelease's chart.
fn chart_args(r: &Rendered, hr: &RenderedObject) -> Result<Vec<String>, String> {
    let source = |kind: &str, name: &str, ns: Option<&str>| {
        let ns = ns.or(hr.namespace());
        r.objects
            .iter()
            .find(|o| o.kind() == kind && o.name() == name && o.namespace() == ns && o.api_version().starts_with("source.toolkit.fluxcd.io/"))
            .ok_or_else(|| format!("{}: chart source {kind} {}/{name} is not rendered on cluster {}", hr.describe(), ns.unwrap_or(""), r.cluster))
    };
    if let Some(chart) = hr.str("/spec/chart/spec/chart") {
        let kind = hr.str("/spec/chart/spec/sourceRef/kind").unwrap_or("HelmRepository");
        let name = hr.str("/spec/chart/spec/sourceRef/name").unwrap_or("");
        let src = source(kind, name, hr.str("/spec/chart/spec/sourceRef/namespace"))?;
        let url = src.str("/spec/url").ok_or_else(|| format!("{} has no spec.url", src.describe()))?;
        let mut args = if src.str("/spec/type") == Some("oci") || url.starts_with("oci://") {
            vec![format!("{}/{chart}", url.trim_end_matches('/'))]
        } else {
            vec!["--repo".into(), url.into(), chart.into()]
        };
        if let Some(v) = hr.str("/spec/chart/spec/version") {
            args.extend(["--version".into(), v.into()]);
        }
        return Ok(args);
    }
    if let Some(name) = hr.str("/spec/chartRef/name") {
        let kind = hr.str("/spec/chartRef/kind").unwrap_or("OCIRepository");
        let src = source(kind, name, hr.str("/spec/chartRef/namespace"))?;
        let url = src.str("/spec/url").ok_or_else(|| format!("{} has no spec.url", src.describe()))?;
        let mut args = vec![url.to_string()];
        if let Some(tag) = src.str("/spec/ref/tag") {
            args.extend(["--version".into(), tag.into()]);
        }
        return Ok(args);
    }
    Err(format!("{}: neither spec.chart.spec.chart nor spec.chartRef", hr.describe()))
}

/// GitRepository + Kustomization `flux-system` for `cluster` at `revision`, with the
/// profile's replacements as patches on the Kustomizations the cluster directory holds.
fn bootstrap(repo: &GitopsRepo, cluster: &str, url: &str, revision: &str, profile: Option<&TargetProfile>) -> Result<String, String> {
    let dir = repo.cluster_dir(cluster);
    let mut patches = vec![];
    if let Some(p) = profile {
        let ks = repo.flux_kustomizations(cluster).map_err(|e| e.to_string())?;
        let vars = p.variables.get(cluster);
        let suspended = p.suspend.get(cluster);
        let release_patches = release_patches(repo, cluster, p)?;
        for k in ks.iter().filter(|k| k.name != "flux-system") {
            let mut spec = serde_json::Map::new();
            let own: Vec<&Value> = release_patches.iter().filter(|(by, _)| by.rsplit('/').next() == Some(k.name.as_str())).map(|(_, v)| v).collect();
            if !own.is_empty() {
                // A merge patch replaces the list: keep the Kustomization's own patches first.
                let all: Vec<Value> = k.patches.iter().cloned().chain(own.into_iter().cloned()).collect();
                spec.insert("patches".into(), Value::Array(all));
            }
            let replaced: serde_json::Map<String, Value> = vars
                .into_iter()
                .flatten()
                .filter(|(var, _)| k.substitute.contains_key(*var))
                .map(|(var, value)| (var.clone(), Value::String(value.clone())))
                .collect();
            if !replaced.is_empty() {
                spec.insert("postBuild".into(), json!({"substitute": replaced}));
            }
            if suspended.is_some_and(|s| s.contains(&k.name)) {
                spec.insert("suspend".into(), Value::Bool(true));
            }
            // A suspended Kustomization never becomes Ready: its dependents go on without it.
            let kept: Vec<&String> = k.depends_on.iter().filter(|d| !suspended.is_some_and(|s| s.contains(*d))).collect();
            if kept.len() < k.depends_on.len() {
                spec.insert("dependsOn".into(), Value::Array(kept.iter().map(|d| json!({"name": d})).collect()));
            }
            if spec.is_empty() {
                continue;
            }
            let patch = json!({"apiVersion": k.api_version, "kind": "Kustomization", "metadata": {"name": k.name}, "spec": spec});
            patches.push(json!({
                "patch": serde_yaml_ng::to_string(&patch).map_err(|e| e.to_string())?,
                "target": {"kind": "Kustomization", "name": k.name},
            }));
        }
    }
    // The cluster directory usually holds `flux bootstrap`'s own GitRepository and
    // Kustomization `flux-system` (tracking the real branch): removed from the build, so
    // applying the directory does not point Flux back at it.
    for kind in ["GitRepository", "Kustomization"] {
        let present = repo.documents_under(&dir).any(|d| d.kind() == kind && d.name() == "flux-system" && d.api_version().contains("toolkit.fluxcd.io"));
        if present {
            let api = if kind == "GitRepository" { "source.toolkit.fluxcd.io/v1" } else { "kustomize.toolkit.fluxcd.io/v1" };
            let delete = json!({"$patch": "delete", "apiVersion": api, "kind": kind, "metadata": {"name": "flux-system", "namespace": "flux-system"}});
            patches.push(json!({"patch": serde_yaml_ng::to_string(&delete).map_err(|e| e.to_string())?, "target": {"kind": kind, "name": "flux-system"}}));
        }
    }
    let path = format!("./{}", path_text(&dir));
    let source = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"interval": "1m0s", "url": url, "ref": {"commit": revision}},
    });
    let mut spec = json!({"interval": "10m0s", "path": path, "prune": true, "wait": false, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}});
    if !patches.is_empty() {
        spec["patches"] = Value::Array(patches);
    }
    let sync = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "flux-system", "namespace": "flux-system"}, "spec": spec});
    let header = match profile {
        Some(p) => format!("# Flux entry objects for cluster {cluster} at {revision}, profile {}\n", p.name),
        None => format!("# Flux entry objects for cluster {cluster} at {revision}\n"),
    };
    let doc = |v: &Value| serde_yaml_ng::to_string(v).map_err(|e| e.to_string());
    Ok(format!("{header}---\n{}---\n{}", doc(&source)?, doc(&sync)?))
}

/// For each profile values entry of `cluster`: (the Flux Kustomization that applies the
/// HelmRelease, a Kustomization patch merging the values into it).
fn release_patches(repo: &GitopsRepo, cluster: &str, p: &TargetProfile) -> Result<Vec<(String, Value)>, String> {
    let Some(releases) = p.values.get(cluster) else { return Ok(vec![]) };
    let rendered = repo.render(cluster).map_err(|e| e.to_string())?;
    let mut out = vec![];
    for (release, values) in releases {
        let hr = helmrelease(&rendered, release)?;
        let patch = json!({"apiVersion": hr.api_version(), "kind": "HelmRelease",
            "metadata": {"name": hr.name(), "namespace": hr.namespace()}, "spec": {"values": values}});
        let text = serde_yaml_ng::to_string(&patch).map_err(|e| e.to_string())?;
        out.push((hr.applied_by.clone(), json!({"patch": text, "target": {"kind": "HelmRelease", "name": hr.name(), "namespace": hr.namespace()}})));
    }
    Ok(out)
}

fn path_text(p: &Path) -> String {
    p.iter().map(|c| c.to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}
