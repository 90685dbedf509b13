//! What Flux would apply to a cluster: each Flux Kustomization's `spec.path` built
//! the way kustomize does (following `resources:` and `components:`, applying each
//! level's `namespace:`; a directory without a kustomization file contributes the
//! manifests Flux's generator lists: every .yaml/.yml below it, a sub-directory with
//! its own kustomization file built as a kustomization instead), `spec.targetNamespace`
//! on top, then post-build substitution with that Kustomization's variables, only
//! where it has `spec.postBuild`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::replace::Replacement;
use super::{envsubst, flux, patch, str_at, Document, FluxKustomization, GitopsRepo};
use crate::outcome::Finding;

const KUSTOMIZE_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// A manifest after substitution.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedObject {
    pub file: PathBuf,
    /// The Flux Kustomization that applies it.
    pub applied_by: String,
    pub value: Value,
    /// For a HelmRelease: the chart helm-controller installs, from `spec.chart.spec.chart`
    /// or the source `spec.chartRef` names (an OCIRepository's URL ends with the chart,
    /// a HelmChart has `spec.chart`); `None` when neither says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
}

impl RenderedObject {
    pub fn kind(&self) -> &str {
        str_at(&self.value, "/kind").unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        str_at(&self.value, "/apiVersion").unwrap_or("")
    }
    pub fn name(&self) -> &str {
        str_at(&self.value, "/metadata/name").unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        str_at(&self.value, "/metadata/namespace")
    }
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }
    pub fn str(&self, pointer: &str) -> Option<&str> {
        str_at(&self.value, pointer)
    }
    /// `Kind/name (file)` for messages.
    pub fn describe(&self) -> String {
        format!("{}/{} ({})", self.kind(), self.name(), self.file.display())
    }
}

/// Something that keeps Flux from applying the tree as written.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `dangling-path`, `missing-flux-path`, `depends-on`, `patch`, `substitute-from`,
    /// `unresolved-variable`, `invalid-after-substitution`, `namespace`
    pub category: &'static str,
    pub finding: Finding,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub cluster: String,
    pub objects: Vec<RenderedObject>,
    pub problems: Vec<Problem>,
    /// Flux Kustomizations rendered, by name.
    pub kustomizations: Vec<String>,
}

impl Rendered {
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a RenderedObject> + 'a {
        self.objects.iter().filter(move |o| o.kind() == kind)
    }
    pub fn problems_of<'a>(&'a self, category: &'a str) -> impl Iterator<Item = &'a Problem> + 'a {
        self.problems.iter().filter(move |p| p.category == category)
    }
}

/// One cluster's rendering and what it read.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub rendered: Arc<Rendered>,
    /// Files rendering loaded as manifests or kustomization files.
    pub reached: BTreeSet<PathBuf>,
    /// The first malformed file rendering needed (Flux fails that Kustomization).
    pub malformed: Option<super::Malformed>,
    /// What rendering does not model where the repository uses it, one line each.
    pub notes: Vec<String>,
}

pub(super) fn render(repo: &GitopsRepo, cluster: &str, entry: &[FluxKustomization]) -> Outcome {
    let mut out = Rendered { cluster: cluster.into(), objects: vec![], problems: vec![], kustomizations: vec![] };
    let mut builder = Builder { repo, reached: BTreeSet::new(), malformed: None, problems: vec![], notes: vec![] };
    let mut queue: VecDeque<FluxKustomization> = entry.iter().cloned().collect();
    // The sources that are this repository: those the cluster's entry Kustomizations use.
    let own_sources: BTreeSet<String> = entry.iter().map(|k| k.source_ref.clone()).collect();
    // Flux applies the cluster's directory itself through the Kustomization `flux bootstrap`
    // (gotk-sync.yaml) or the Flux Operator's FluxInstance (spec.sync.path) creates; when the
    // repository does not hold it, it is added as Flux names it.
    let dir = repo.cluster_dir(cluster);
    if !entry.iter().any(|k| normalize(Path::new(k.path.trim_start_matches("./"))) == dir) {
        queue.push_front(bootstrap_kustomization(&dir, entry));
    }
    let mut seen = BTreeSet::new();
    let mut applied: Vec<FluxKustomization> = vec![];
    let mut unresolved = Unresolved::new();
    // Kustomizations with a substituteFrom source whose keys only a secret store knows.
    let mut open: BTreeMap<String, String> = BTreeMap::new();
    while let Some(k) = queue.pop_front() {
        if !seen.insert(k.name.clone()) {
            continue;
        }
        out.kustomizations.push(k.name.clone());
        applied.push(k.clone());
        // Flux substitutes only when spec.postBuild is present.
        let values = if k.post_build {
            let vars = flux::variables(repo, cluster, &k);
            out.problems.extend(vars.problems.iter().map(|f| Problem { category: "substitute-from", finding: f.clone() }));
            if !vars.open.is_empty() {
                open.insert(k.name.clone(), vars.open.join(", "));
            }
            let values = flux_values(&vars.values());
            if let Some(bad) = values.keys().find(|name| !VAR_NAME.is_match(name)) {
                out.problems.push(Problem {
                    category: "substitute-from",
                    finding: Finding::new(
                        format!("{}: Kustomization {} variable {bad:?}", k.file.display(), k.name),
                        format!("a name matching {}", VAR_NAME.as_str()),
                        "invalid, so Flux fails the Kustomization",
                    ),
                });
            }
            // kustomize-controller substitutes only when there is a variable.
            (!values.is_empty()).then_some(values)
        } else {
            None
        };
        let dir = normalize(Path::new(k.path.trim_start_matches("./")));
        if !repo.root.join(&dir).is_dir() {
            out.problems.push(Problem {
                category: "missing-flux-path",
                finding: Finding::new(
                    format!("{}: Kustomization {} spec.path", k.file.display(), k.name),
                    "an existing directory",
                    format!("{:?} does not exist", k.path),
                ),
            });
            continue;
        }
        let mut built = vec![];
        builder.build(&dir, &mut vec![], &mut built);
        // spec.components: kustomize components Flux adds to the kustomization it builds the
        // path with (paths relative to spec.path).
        for c in &k.components {
            let target = normalize(&dir.join(c));
            match KUSTOMIZE_FILES.iter().map(|f| target.join(f)).find(|p| repo.root.join(p).is_file()) {
                Some(config) => builder.kustomization(&target, &config, &mut vec![], &mut built),
                None => out.problems.push(Problem {
                    category: "dangling-path",
                    finding: Finding::new(
                        format!("{}: Kustomization {} spec.components entry {c:?}", k.file.display(), k.name),
                        "a directory with a kustomization file",
                        format!("{} has none", target.display()),
                    ),
                }),
            }
        }
        for field in ["namePrefix", "nameSuffix", "images"].iter().filter(|f| k.unsupported.iter().any(|u| u == **f)) {
            builder.notes.push(format!("{}: Kustomization {} `spec.{field}` is not applied by the harness's rendering; the objects it would change are read as written", k.file.display(), k.name));
        }
        let spec = serde_json::json!({ "patches": k.patches });
        let (patches, problems) = patches_of(repo, &spec, &dir, &k.file);
        out.problems.extend(problems);
        let mut flux_level: Vec<Arc<Transform>> = patches.into_iter().map(Arc::new).collect();
        flux_level.extend(k.target_namespace.clone().map(|ns| Arc::new(Transform::Namespace(ns))));
        for b in built {
            let Some(mut obj) = substitute(&b.doc, &k, values.as_ref(), &mut unresolved, &mut out.problems) else { continue };
            // Each kustomization level in turn, the outermost last; then Flux's own
            // spec.patches and spec.targetNamespace, which it writes into the kustomization
            // it builds the path with.
            transform(&mut obj, &b.transforms, values.as_ref(), &mut out.problems);
            transform(&mut obj, &flux_level, values.as_ref(), &mut out.problems);
            // Nested Flux Kustomizations are applied too, with their own variables.
            if obj.kind() == "Kustomization" && obj.api_version().starts_with(FLUX_KUSTOMIZE_GROUP) {
                let nested = super::flux::kustomizations_from(&obj.value, &obj.file);
                // One built from another source (an upstream GitRepository of CRDs) has a
                // spec.path inside that source, not inside this repository.
                if !seen.contains(&nested.name) && own_sources.contains(&nested.source_ref) {
                    queue.push_back(nested);
                }
            }
            out.objects.push(obj);
        }
    }
    // One finding per variable and Kustomization, however many manifests use it.
    for ((kustomization, name), (file, sources, manifests)) in unresolved {
        // It may come from a source whose keys are not known here: no finding, a note.
        if let Some(source) = open.get(&kustomization) {
            builder.notes.push(format!("{}: Kustomization {kustomization} substitutes ${{{name}}}, which only {source} can define; not judged", file.display()));
            continue;
        }
        let mut listed = manifests.iter().take(LISTED).cloned().collect::<Vec<_>>().join("; ");
        if manifests.len() > LISTED {
            listed.push_str(&format!(" and {} more", manifests.len() - LISTED));
        }
        out.problems.push(Problem {
            category: "unresolved-variable",
            finding: Finding::new(
                format!("${{{name}}} (applied by {kustomization})"),
                format!("{name} defined in {} or {sources}", file.display()),
                format!("not defined, renders empty in {listed}"),
            ),
        });
    }
    // A dependsOn naming no Kustomization of this cluster: Flux never reconciles the dependent.
    // Kustomizations built from another source (upstream CRDs) are applied too, just not built here.
    let known: BTreeSet<&str> = applied
        .iter()
        .map(|k| k.name.as_str())
        .chain(out.objects.iter().filter(|o| o.kind() == "Kustomization" && o.api_version().starts_with(FLUX_KUSTOMIZE_GROUP)).map(|o| o.name()))
        .collect();
    for k in &applied {
        for d in k.depends_on.iter().filter(|d| !known.contains(d.as_str())) {
            out.problems.push(Problem {
                category: "depends-on",
                finding: Finding::new(
                    format!("{}: Kustomization {} dependsOn", k.file.display(), k.name),
                    format!("a Flux Kustomization of cluster {cluster}"),
                    format!("{d:?} is not defined for this cluster, so Flux never reconciles {}", k.name),
                ),
            });
        }
    }
    // A dependsOn cycle: Flux waits on each Kustomization of it forever.
    for cycle in depends_on_cycles(&applied) {
        let first = applied.iter().find(|k| k.name == cycle[0]).expect("cycle of applied names");
        out.problems.push(Problem {
            category: "depends-on",
            finding: Finding::new(
                format!("{}: Kustomization {} dependsOn", first.file.display(), first.name),
                "no dependsOn cycle",
                format!("dependsOn cycle {} → {}, so Flux never reconciles any of them", cycle.join(" → "), cycle[0]),
            ),
        });
    }
    // A namespaced object left without a namespace: server-side apply refuses it, and with it
    // the whole Kustomization that applies it.
    let scopes = super::scope::Scopes::default().with_crds(out.objects.iter().map(|o| &o.value));
    for o in out.objects.iter().filter(|o| o.namespace().is_none_or(str::is_empty) && scopes.namespaced(o.api_version(), o.kind()) == Some(true)) {
        out.problems.push(Problem {
            category: "namespace",
            finding: Finding::new(
                format!("{} (applied by {})", o.describe(), o.applied_by),
                "metadata.namespace, a namespace: in its kustomization or the Kustomization's spec.targetNamespace",
                format!("none, so Flux fails Kustomization {} ({}/{} namespace not specified)", o.applied_by, o.kind(), o.name()),
            ),
        });
    }
    out.problems.extend(builder.problems);
    let charts: Vec<Option<String>> = out.objects.iter().map(|o| chart_of(&out.objects, o)).collect();
    for (o, chart) in out.objects.iter_mut().zip(charts) {
        o.chart = chart;
    }
    Outcome { rendered: Arc::new(out), reached: builder.reached, malformed: builder.malformed, notes: builder.notes }
}

/// The Kustomization flux-system/flux-system that applies the cluster's directory, from
/// the same source as the cluster's own Kustomizations.
fn bootstrap_kustomization(dir: &Path, entry: &[FluxKustomization]) -> FluxKustomization {
    FluxKustomization {
        name: "flux-system".into(),
        namespace: "flux-system".into(),
        api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
        file: dir.to_path_buf(),
        path: format!("./{}", dir.display()),
        post_build: false,
        substitute: BTreeMap::new(),
        substitute_from: vec![],
        depends_on: vec![],
        target_namespace: None,
        patches: vec![],
        components: vec![],
        unsupported: vec![],
        source_ref: entry.first().map_or_else(|| "GitRepository/flux-system/flux-system".into(), |k| k.source_ref.clone()),
    }
}

/// Each dependsOn cycle (of two or more Kustomizations) among `applied` once, as the names along it (starting at the
/// smallest name, so the same cycle found from another member is not repeated).
fn depends_on_cycles(applied: &[FluxKustomization]) -> Vec<Vec<String>> {
    let graph: BTreeMap<&str, Vec<&str>> = applied.iter().map(|k| (k.name.as_str(), k.depends_on.iter().map(String::as_str).collect())).collect();
    let mut cycles: BTreeSet<Vec<String>> = BTreeSet::new();
    // Depth-first from every name; `path` is the current chain (bounded by the number of names).
    fn walk<'a>(at: &'a str, graph: &BTreeMap<&'a str, Vec<&'a str>>, path: &mut Vec<&'a str>, done: &mut BTreeSet<&'a str>, cycles: &mut BTreeSet<Vec<String>>) {
        if let Some(i) = path.iter().position(|p| *p == at) {
            let mut cycle: Vec<String> = path[i..].iter().map(|s| s.to_string()).collect();
            let min = cycle.iter().enumerate().min_by_key(|(_, n)| n.as_str()).map(|(i, _)| i).unwrap_or(0);
            cycle.rotate_left(min);
            cycles.insert(cycle);
            return;
        }
        if done.contains(at) {
            return;
        }
        path.push(at);
        for next in graph.get(at).into_iter().flatten() {
            // A Kustomization naming itself is left to the existing-name check.
            if *next != at && graph.contains_key(next) {
                walk(next, graph, path, done, cycles);
            }
        }
        path.pop();
        done.insert(at);
    }
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        walk(start, &graph, &mut vec![], &mut done, &mut cycles);
    }
    cycles.into_iter().collect()
}

const FLUX_KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io/";
const FLUX_SOURCE_GROUP: &str = "source.toolkit.fluxcd.io/";

/// The chart a rendered HelmRelease installs (see [`RenderedObject::chart`]).
fn chart_of(objects: &[RenderedObject], hr: &RenderedObject) -> Option<String> {
    if hr.kind() != "HelmRelease" || !hr.api_version().starts_with("helm.toolkit.fluxcd.io/") {
        return None;
    }
    if let Some(chart) = hr.str("/spec/chart/spec/chart") {
        return Some(chart.to_string());
    }
    let kind = hr.str("/spec/chartRef/kind")?;
    let name = hr.str("/spec/chartRef/name")?;
    let ns = hr.str("/spec/chartRef/namespace").or(hr.namespace());
    let source = objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name && o.api_version().starts_with(FLUX_SOURCE_GROUP) && (ns.is_none() || o.namespace() == ns));
    match (kind, source) {
        // oci://ghcr.io/home-operations/charts-mirror/cilium → cilium
        ("OCIRepository", Some(src)) => src.str("/spec/url").and_then(|u| u.trim_end_matches('/').rsplit('/').next()).map(String::from),
        ("HelmChart", Some(src)) => src.str("/spec/chart").map(String::from),
        _ => None,
    }
}

/// Variables left unresolved, by (Flux Kustomization, variable): its file, its
/// `substituteFrom` sources in words, and the manifests.
type Unresolved = BTreeMap<(String, String), (PathBuf, String, Vec<String>)>;

/// A Kustomization's `substituteFrom` sources for messages: "its substituteFrom sources
/// (ConfigMap cluster-settings, Secret cluster-secrets)", or "a substituteFrom source" when it has none.
fn substitute_sources(k: &FluxKustomization) -> String {
    if k.substitute_from.is_empty() {
        return "a substituteFrom source".into();
    }
    let refs: Vec<String> = k.substitute_from.iter().map(|r| format!("{} {}", r.kind, r.name)).collect();
    format!("its substituteFrom sources ({})", refs.join(", "))
}

/// Variable names Flux accepts (kustomize-controller's `varsubRegex`).
static VAR_NAME: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new("^[_[:alpha:]][_[:alpha:][:digit:]]*$").expect("static regex"));

/// Variable values as Flux substitutes them: with every newline removed.
fn flux_values(values: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    values.iter().map(|(k, v)| (k.clone(), v.replace('\n', ""))).collect()
}

/// Manifests listed in one finding before "and N more".
const LISTED: usize = 5;

fn substitute(
    doc: &Document,
    k: &FluxKustomization,
    vars: Option<&BTreeMap<String, String>>,
    unresolved: &mut Unresolved,
    problems: &mut Vec<Problem>,
) -> Option<RenderedObject> {
    let disabled = str_at(&doc.value, &format!("/metadata/annotations/{}", SUBSTITUTE_ANNOTATION.replace('/', "~1")))
        == Some("disabled");
    let Some(vars) = vars.filter(|_| !disabled) else {
        return Some(RenderedObject { file: doc.file.clone(), applied_by: k.name.clone(), value: doc.value.clone(), chart: None });
    };
    let mut result = envsubst::substitute(&doc.raw, vars);
    if result.error.is_some() {
        // The text Flux substitutes is kustomize's output, without comments: an expression
        // it cannot parse may sit in a comment only.
        result = envsubst::substitute(&serde_yaml_ng::to_string(&doc.value).unwrap_or_default(), vars);
    }
    if let Some(e) = result.error {
        // Flux fails the whole Kustomization with this error.
        problems.push(Problem {
            category: "invalid-after-substitution",
            finding: Finding::new(format!("{} (applied by {})", doc.describe(), k.name), "text Flux can substitute", e),
        });
        return Some(RenderedObject { file: doc.file.clone(), applied_by: k.name.clone(), value: doc.value.clone(), chart: None });
    }
    // `kustomize build` drops comments before Flux substitutes: a reference that only a
    // comment holds is never substituted, so it is no problem. Keep those in the document's values.
    let in_values = references_in_values(&doc.value);
    for name in result.unresolved.iter().filter(|n| in_values.contains(*n)) {
        unresolved.entry((k.name.clone(), name.clone())).or_insert_with(|| (k.file.clone(), substitute_sources(k), vec![])).2.push(doc.describe());
    }
    match super::parse_yaml(&result.text) {
        Ok(value) => Some(RenderedObject { file: doc.file.clone(), applied_by: k.name.clone(), value, chart: None }),
        Err(e) => {
            problems.push(Problem {
                category: "invalid-after-substitution",
                finding: Finding::new(doc.describe(), "valid YAML after substitution", e.to_string()),
            });
            None
        }
    }
}

/// Cluster-scoped kinds, rendered without a namespace: the built-in ones, which kustomize
/// leaves alone, and those of the platform's CRDs (`scope: Cluster`), on which kustomize sets
/// one that the API server clears when the object is applied; the rendering shows what the
/// cluster stores.
const CLUSTER_SCOPED: [&str; 55] = [
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "CiliumBGPAdvertisement",
    "CiliumBGPClusterConfig",
    "CiliumBGPNodeConfig",
    "CiliumBGPNodeConfigOverride",
    "CiliumBGPPeerConfig",
    "CiliumBGPPeeringPolicy",
    "CiliumCIDRGroup",
    "CiliumClusterwideEnvoyConfig",
    "CiliumClusterwideNetworkPolicy",
    "CiliumEgressGatewayPolicy",
    "CiliumEndpointSlice",
    "CiliumIdentity",
    "CiliumL2AnnouncementPolicy",
    "CiliumLoadBalancerIPPool",
    "CiliumNode",
    "CiliumPodIPPool",
    "ClusterExternalSecret",
    "ClusterGenerator",
    "ClusterImageCatalog",
    "ClusterIssuer",
    "ClusterPushSecret",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterSecretStore",
    "ClusterTrustBundle",
    "CustomResourceDefinition",
    "DeviceClass",
    "FlowSchema",
    "GatewayClass",
    "IPAddress",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "ObjectBucket",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "ResourceSlice",
    "RuntimeClass",
    "ServiceCIDR",
    "StorageClass",
    "StorageVersionMigration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeAttributesClass",
    "VolumeSnapshotClass",
];

/// kustomize's namespace transformer: `metadata.namespace` of namespaced objects, the
/// name of a `v1` Namespace, (Cluster)RoleBinding subjects named `default`, and the
/// service namespaces of APIServices and CRD conversion webhooks.
fn set_namespace(obj: &mut Value, ns: &str) {
    let kind = str_at(obj, "/kind").unwrap_or_default().to_string();
    let api_version = str_at(obj, "/apiVersion").unwrap_or_default().to_string();
    let ns_value = Value::String(ns.to_string());
    if kind == "Namespace" && api_version == "v1" && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), ns_value.clone());
    }
    if kind == "RoleBinding" || kind == "ClusterRoleBinding" {
        for s in obj.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
            if s.get("name").and_then(Value::as_str) == Some("default") && let Some(s) = s.as_object_mut() {
                s.insert("namespace".into(), ns_value.clone());
            }
        }
    }
    if kind == "APIService"
        && api_version.starts_with("apiregistration.k8s.io/")
        && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        && let Some(service) = spec.entry("service").or_insert_with(|| serde_json::json!({})).as_object_mut()
    {
        service.insert("namespace".into(), ns_value.clone());
    }
    if kind == "CustomResourceDefinition" && let Some(Value::Object(service)) = obj.pointer_mut("/spec/conversion/webhook/clientConfig/service") {
        service.insert("namespace".into(), ns_value.clone());
    }
    if CLUSTER_SCOPED.contains(&kind.as_str()) {
        return;
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("namespace".into(), ns_value);
    }
}

/// A manifest document and what each kustomization it passed through does to it, innermost first.
struct Built<'a> {
    /// A document of the repository, or one a generator made.
    doc: std::borrow::Cow<'a, Document>,
    transforms: Vec<Arc<Transform>>,
}

/// What a kustomization level does to every object it builds.
#[derive(Debug)]
enum Transform {
    /// kustomize `namespace:` (Flux `spec.targetNamespace` is one at the top).
    Namespace(String),
    /// A patch: its text (substituted with the Flux Kustomization's variables before it is
    /// parsed, as Flux substitutes after kustomize applied it), target, and declaring file.
    Patch { text: String, target: Option<patch::Target>, source: PathBuf },
    /// A replacement with the value its source had when the kustomization was built.
    Replace { replacement: Replacement, value: Value, source: PathBuf },
}

impl Transform {
    /// Applies this transform to one object; an error is kustomize's (the build fails).
    fn apply(&self, obj: &mut Value, subst: &dyn Fn(&str) -> String) -> Result<(), String> {
        match self {
            Transform::Namespace(ns) => {
                set_namespace(obj, &subst(ns));
                Ok(())
            }
            Transform::Patch { text, target, .. } => {
                if target.as_ref().is_some_and(|t| !t.matches(obj)) {
                    return Ok(());
                }
                patch::Patch::parse(&subst(text), target.clone()).and_then(|p| p.apply(obj)).map(|_| ())
            }
            Transform::Replace { replacement, value, .. } => {
                let value = match value {
                    Value::String(s) => Value::String(subst(s)),
                    other => other.clone(),
                };
                replacement.apply(obj, &value).map(|_| ())
            }
        }
    }
}

/// The patches a kustomization file (or a Flux Kustomization's `spec`) declares, in the
/// order kustomize applies them: `patchesStrategicMerge`, `patches`, `patchesJson6902`.
fn patches_of(repo: &GitopsRepo, v: &Value, dir: &Path, source: &Path) -> (Vec<Transform>, Vec<Problem>) {
    let mut out = vec![];
    let mut problems = vec![];
    let mut text_of = |inline: Option<&str>, path: Option<&str>| -> Option<String> {
        if let Some(t) = inline {
            return Some(t.to_string());
        }
        let file = normalize(&dir.join(path?));
        match std::fs::read_to_string(repo.root.join(&file)) {
            Ok(t) => Some(t),
            Err(_) => {
                problems.push(Problem {
                    category: "dangling-path",
                    finding: Finding::new(format!("{}: patch path {:?}", source.display(), path.unwrap_or_default()), "an existing file", "does not exist"),
                });
                None
            }
        }
    };
    for entry in v.get("patchesStrategicMerge").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        let inline = entry.contains('\n') || entry.contains(": ");
        if let Some(text) = text_of(inline.then_some(entry), (!inline).then_some(entry)) {
            out.push(Transform::Patch { text, target: None, source: source.to_path_buf() });
        }
    }
    for field in ["patches", "patchesJson6902"] {
        for p in v.get(field).and_then(Value::as_array).into_iter().flatten() {
            let target = p.get("target").map(patch::Target::from_value);
            if let Some(text) = text_of(str_at(p, "/patch"), str_at(p, "/path")) {
                out.push(Transform::Patch { text, target, source: source.to_path_buf() });
            }
        }
    }
    (out, problems)
}

/// Applies a Built's transforms (innermost first) to its substituted object.
fn transform(obj: &mut RenderedObject, transforms: &[Arc<Transform>], vars: Option<&BTreeMap<String, String>>, problems: &mut Vec<Problem>) {
    let subst = |t: &str| vars.map_or_else(|| t.to_string(), |v| envsubst::substitute(t, v).text);
    for t in transforms {
        if let Err(e) = t.apply(&mut obj.value, &subst) {
            let (category, source, what, expected) = match t.as_ref() {
                Transform::Patch { source, .. } => ("patch", source, "patch", "a patch kustomize can apply"),
                Transform::Replace { source, .. } => ("kustomize", source, "replacement", "a replacement kustomize can apply"),
                Transform::Namespace(_) => continue,
            };
            problems.push(Problem { category, finding: Finding::new(format!("{}: {what} of {}", source.display(), obj.describe()), expected, e) });
        }
    }
}

/// kustomization fields the rendering does not apply; each use is a warning naming the file.
const UNSUPPORTED: [&str; 14] = [
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
    "helmCharts",
    "vars",
    "generators",
    "transformers",
    "validators",
    "openapi",
    "configurations",
];

/// kustomize build, reduced to what decides which manifests are included and their namespace.
struct Builder<'a> {
    repo: &'a GitopsRepo,
    reached: BTreeSet<PathBuf>,
    malformed: Option<super::Malformed>,
    problems: Vec<Problem>,
    /// What the rendering does not model, one line each (reported as warnings).
    notes: Vec<String>,
}

impl<'a> Builder<'a> {
    /// Every manifest document of a file, noting a malformed one.
    fn file(&mut self, file: &Path, out: &mut Vec<Built<'a>>) {
        self.reached.insert(file.to_path_buf());
        if let Some(m) = self.repo.malformed_at(file) {
            self.malformed.get_or_insert_with(|| m.clone());
        }
        let repo = self.repo;
        out.extend(repo.documents.iter().filter(|d| d.file == file).map(|doc| Built { doc: std::borrow::Cow::Borrowed(doc), transforms: vec![] }));
    }

    fn build(&mut self, dir: &Path, stack: &mut Vec<PathBuf>, out: &mut Vec<Built<'a>>) {
        match KUSTOMIZE_FILES.iter().map(|f| dir.join(f)).find(|p| self.repo.root.join(p).is_file()) {
            Some(config) => {
                let mut here = vec![];
                self.kustomization(dir, &config, stack, &mut here);
                out.extend(here);
            }
            // Flux generates a kustomization.yaml listing every .yaml/.yml file below `dir`,
            // except that a sub-directory with its own kustomization file is listed as a
            // directory (built by kustomize) and not descended into.
            None => {
                if self.enter(dir, stack) {
                    self.generated(dir, stack, out);
                    stack.pop();
                }
            }
        }
    }

    fn enter(&mut self, dir: &Path, stack: &mut Vec<PathBuf>) -> bool {
        if stack.contains(&dir.to_path_buf()) {
            self.problems.push(Problem {
                category: "dangling-path",
                finding: Finding::new(dir.display().to_string(), "no kustomization cycle", "directory includes itself"),
            });
            return false;
        }
        stack.push(dir.to_path_buf());
        true
    }

    /// Builds the kustomization file `config` of `dir` into `here`: its resources, then its
    /// components (each adds its resources to `here` and patches all of `here`, as
    /// kustomize applies a component to the kustomization that lists it), then its own
    /// patches and `namespace:` on everything.
    fn kustomization(&mut self, dir: &Path, config: &Path, stack: &mut Vec<PathBuf>, here: &mut Vec<Built<'a>>) {
        if !self.enter(dir, stack) {
            return;
        }
        let repo = self.repo;
        self.reached.insert(config.to_path_buf());
        if let Some(m) = repo.malformed_at(config) {
            self.malformed.get_or_insert_with(|| m.clone());
        }
        let value = repo.documents.iter().find(|d| d.file == config).map(|d| &d.value);
        for (field, entry) in value.map(entries).unwrap_or_default() {
            if entry.contains("://") || entry.starts_with("github.com/") {
                continue; // remote bases are not part of this repository
            }
            let target = normalize(&dir.join(&entry));
            let abs = repo.root.join(&target);
            if target.starts_with("..") {
                self.problems.push(dangling(config, field, &entry, "path leaves the repository"));
            } else if abs.is_file() {
                self.file(&target, here);
            } else if abs.is_dir() && field == "components" {
                match KUSTOMIZE_FILES.iter().map(|f| target.join(f)).find(|p| repo.root.join(p).is_file()) {
                    Some(component) => self.kustomization(&target, &component, stack, here),
                    None => self.problems.push(dangling(config, field, &entry, "has no kustomization file")),
                }
            } else if abs.is_dir() {
                self.build(&target, stack, here);
            } else if abs.symlink_metadata().is_ok() {
                self.problems.push(dangling(config, field, &entry, "not a regular file or directory (a FIFO, socket, device or broken link)"));
            } else {
                self.problems.push(dangling(config, field, &entry, "does not exist"));
            }
        }
        if let Some(v) = value {
            for field in UNSUPPORTED.iter().filter(|f| v.get(**f).is_some_and(|x| !x.is_null())) {
                self.notes.push(format!("{}: `{field}` is not applied by the harness's rendering; the objects it would change are read as written", config.display()));
            }
            self.generate(v, dir, config, here);
            let (patches, problems) = patches_of(repo, v, dir, config);
            self.problems.extend(problems);
            let mut level: Vec<Arc<Transform>> = patches.into_iter().map(Arc::new).collect();
            if let Some(ns) = str_at(v, "/namespace").filter(|ns| !ns.is_empty()) {
                level.push(Arc::new(Transform::Namespace(ns.to_string())));
            }
            // Replacements run last, reading their source from the objects as every other
            // transformer of this level left them.
            let replacements = self.replacements(v, dir, config);
            if !replacements.is_empty() {
                let mut current: Vec<Value> = here
                    .iter()
                    .map(|b| {
                        let mut v = b.doc.value.clone();
                        for t in b.transforms.iter().chain(&level) {
                            let _ = t.apply(&mut v, &|s: &str| s.to_string());
                        }
                        v
                    })
                    .collect();
                for (i, replacement) in replacements {
                    match replacement.source_value(&current) {
                        Ok(value) => {
                            for o in current.iter_mut() {
                                // A target kustomize cannot write is reported when the object is rendered.
                                let _ = replacement.apply(o, &value);
                            }
                            level.push(Arc::new(Transform::Replace { replacement, value, source: config.to_path_buf() }));
                        }
                        Err(e) => self.problems.push(Problem {
                            category: "kustomize",
                            finding: Finding::new(format!("{}: replacements[{i}]", config.display()), "a replacement kustomize can apply", e),
                        }),
                    }
                }
            }
            if !level.is_empty() {
                here.iter_mut().for_each(|b| b.transforms.extend(level.iter().cloned()));
            }
        }
        stack.pop();
    }

    /// The ConfigMaps and Secrets a kustomization file's generators make, added to `here`.
    fn generate(&mut self, v: &Value, dir: &Path, config: &Path, here: &mut Vec<Built<'a>>) {
        let root = self.repo.root.clone();
        let read = |p: &str| {
            let file = normalize(&dir.join(p));
            (!file.starts_with("..")).then(|| std::fs::read(root.join(&file)).ok()).flatten()
        };
        for (field, kind) in [("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")] {
            for (i, g) in v.get(field).and_then(Value::as_array).into_iter().flatten().enumerate() {
                match super::generate::generate(kind, g, v.get("generatorOptions"), &read) {
                    Ok(out) => {
                        if out.hashed {
                            self.notes.push(format!(
                                "{}: {field}[{i}] names {kind} {} with kustomize's hash suffix; references to it in other objects are not rewritten here",
                                config.display(),
                                out.value["metadata"]["name"].as_str().unwrap_or_default()
                            ));
                        }
                        let raw = serde_yaml_ng::to_string(&out.value).unwrap_or_default();
                        let doc = Document { file: config.to_path_buf(), index: 0, raw, value: out.value };
                        here.push(Built { doc: std::borrow::Cow::Owned(doc), transforms: vec![] });
                    }
                    Err(e) => self.problems.push(Problem {
                        category: "kustomize",
                        finding: Finding::new(format!("{}: {field}[{i}]", config.display()), "a generator kustomize can build", e),
                    }),
                }
            }
        }
    }

    /// A kustomization's `replacements:`, inline or read from `path:` files (a list or one
    /// replacement each), numbered as written; one that cannot be read is a problem.
    fn replacements(&mut self, v: &Value, dir: &Path, config: &Path) -> Vec<(usize, Replacement)> {
        let mut out = vec![];
        for (i, entry) in v.get("replacements").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let fail = |e: String| Problem {
                category: "kustomize",
                finding: Finding::new(format!("{}: replacements[{i}]", config.display()), "a replacement kustomize can apply", e),
            };
            let entries: Vec<Value> = match str_at(entry, "/path") {
                None => vec![entry.clone()],
                Some(path) => {
                    let file = normalize(&dir.join(path));
                    self.reached.insert(file.clone());
                    let text = std::fs::read_to_string(self.repo.root.join(&file)).map_err(|e| format!("{}: {e}", file.display()));
                    match text.and_then(|t| super::parse_yaml(&t).map_err(|e| format!("{}: {e}", file.display()))) {
                        Ok(Value::Array(items)) => items,
                        Ok(one) => vec![one],
                        Err(e) => {
                            self.problems.push(fail(e));
                            continue;
                        }
                    }
                }
            };
            for e in entries {
                match Replacement::parse(&e) {
                    Ok(r) => out.push((i, r)),
                    Err(msg) => self.problems.push(fail(msg)),
                }
            }
        }
        out
    }

    fn generated(&mut self, dir: &Path, stack: &mut Vec<PathBuf>, out: &mut Vec<Built<'a>>) {
        let repo = self.repo;
        let Ok(read) = std::fs::read_dir(repo.root.join(dir)) else { return };
        let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue; // .git and other hidden entries are not part of the source
            }
            let rel = dir.join(e.file_name());
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if KUSTOMIZE_FILES.iter().any(|f| repo.root.join(&rel).join(f).is_file()) {
                    self.build(&rel, stack, out);
                } else {
                    self.generated(&rel, stack, out);
                }
            } else if kind.is_file() && matches!(rel.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                let mut here = vec![];
                self.file(&rel, &mut here);
                out.extend(here.into_iter().filter(|b| !is_kustomize_config(&b.doc)));
            }
        }
    }
}

/// `resources:` and `components:` entries of a kustomization file, with the field they come from.
fn entries(v: &Value) -> Vec<(&'static str, String)> {
    let resources = list(v, "resources").into_iter().map(|e| ("resources", e));
    let components = list(v, "components").into_iter().map(|e| ("components", e));
    resources.chain(components).collect()
}

fn dangling(config: &Path, field: &str, entry: &str, observed: &str) -> Problem {
    let what = if field == "components" { "components entry" } else { "resources entry" };
    Problem {
        category: "dangling-path",
        finding: Finding::new(format!("{}: {what} {entry:?}", config.display()), "an existing file or directory", observed),
    }
}

fn is_kustomize_config(d: &Document) -> bool {
    d.api_version().starts_with("kustomize.config.k8s.io/")
}

/// Whether a file is a kustomization file by its name.
pub(super) fn is_kustomization_file(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| KUSTOMIZE_FILES.contains(&n))
}

fn list(v: &Value, key: &str) -> Vec<String> {
    v.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect()).unwrap_or_default()
}

/// Lexical normalisation (`a/b/../c` → `a/c`); a path escaping the root keeps its `..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = vec![];
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// Names referenced (`${NAME}` without default) by the strings and keys of a parsed document.
fn references_in_values(v: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        let mut add = |s: &str| out.extend(envsubst::references(s).into_iter().filter(|r| !r.has_default).map(|r| r.name));
        match v {
            Value::String(s) => add(s),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| {
                out.extend(envsubst::references(k).into_iter().filter(|r| !r.has_default).map(|r| r.name));
                walk(x, out)
            }),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::super::GitopsRepo;

    #[test]
    fn a_reference_only_in_a_comment_is_not_unresolved() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "kubernetes/clusters/c1/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: main\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    substitute:\n      CLUSTER: c1\n"));
        // kustomize build drops the comment, so Flux never sees ${COMMENTED}; ${MISSING} is real.
        write(root, "kubernetes/apps/cm.yaml", "# set per cluster: ${COMMENTED}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${CLUSTER}  # ${ALSO_COMMENTED}\ndata:\n  script: |\n    # in a block scalar: ${MISSING}\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        let unresolved: Vec<&str> = r.problems_of("unresolved-variable").map(|p| p.finding.object.as_str()).collect();
        assert_eq!(unresolved.len(), 1, "{unresolved:?}");
        assert!(unresolved[0].starts_with("${MISSING}"), "{unresolved:?}");
        assert_eq!(applied(&r)[0].name(), "cm-c1");
    }

    #[test]
    fn a_substitute_from_source_held_outside_the_entry_directory_defines_its_keys_with_unknown_values() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ks = |cluster: &str| format!("{FLUX_KS}metadata:\n  name: tunnel\n  namespace: network\nspec:\n  path: ./kubernetes/apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    substituteFrom:\n      - kind: Secret\n        name: tunnel-id\n    substitute:\n      CLUSTER: {cluster}\n");
        write(root, "kubernetes/clusters/c1/ks.yaml", &ks("c1"));
        write(root, "kubernetes/clusters/c2/ks.yaml", &ks("c2"));
        write(root, "kubernetes/apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tunnel-${CLUSTER}\n  namespace: network\ndata:\n  id: ${TUNNEL_ID}\n");
        // Created by a bootstrap script from a password manager reference, not by Flux.
        write(root, "bootstrap/network/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tunnel-id\nstringData:\n  TUNNEL_ID: op://vault/tunnel/id\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(applied(&r)[0].str("/data/id"), Some("${TUNNEL_ID}"), "the value is unknown: the text shows what Flux fills in");
        let vars = repo.variables("c1").unwrap();
        let skip = vars.require("TUNNEL_ID").unwrap_err();
        assert!(format!("{skip:?}").contains("Secret tunnel-id (bootstrap/network/secret.yaml, outside the entry directory of cluster c1"), "{skip:?}");
        // Another cluster's entry directory is not this cluster's: there it is missing.
        std::fs::remove_file(root.join("bootstrap/network/secret.yaml")).unwrap();
        write(root, "kubernetes/clusters/c2/secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tunnel-id\n  namespace: network\nstringData:\n  TUNNEL_ID: x\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        assert_eq!(r.problems_of("substitute-from").count(), 1, "{:?}", r.problems);
        assert!(repo.render("c2").unwrap().problems.is_empty());
    }

    #[test]
    fn a_substitute_from_secret_an_external_secret_makes_defines_the_keys_its_manifest_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // The parent Kustomization applies the ExternalSecret; the child substitutes from the
        // Secret external-secrets makes of it (a community pattern).
        write(root, "kubernetes/clusters/c1/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: apps\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"));
        write(root, "kubernetes/apps/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: radio\nresources:\n  - externalsecret.yaml\n  - ks.yaml\n");
        let es = |spec: &str| format!("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: acars\nspec:\n  secretStoreRef:\n    kind: ClusterSecretStore\n    name: onepassword\n  target:\n    name: acars-secret\n{spec}");
        write(root, "kubernetes/apps/externalsecret.yaml", &es("    template:\n      data:\n        LATITUDE: \"{{ .LATITUDE }}\"\n  dataFrom:\n    - extract:\n        key: acars\n"));
        write(root, "kubernetes/apps/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: acars\nspec:\n  path: ./kubernetes/acars\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n    namespace: flux-system\n  postBuild:\n    substitute:\n      APP: acars\n    substituteFrom:\n      - kind: Secret\n        name: acars-secret\n"));
        write(root, "kubernetes/acars/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: acars\n  namespace: radio\ndata:\n  lat: ${LATITUDE}\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.objects.iter().find(|o| o.name() == "acars" && o.kind() == "ConfigMap").unwrap().str("/data/lat"), Some("${LATITUDE}"));
        // A key the template does not make is unresolved.
        write(root, "kubernetes/acars/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: acars\n  namespace: radio\ndata:\n  lat: ${LONGITUDE}\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let unresolved: Vec<&str> = r.problems_of("unresolved-variable").map(|p| p.finding.object.as_str()).collect();
        assert_eq!(unresolved, ["${LONGITUDE} (applied by acars)"]);
        // dataFrom without a template: only the store knows the keys, so nothing is judged (a note says so).
        write(root, "kubernetes/apps/externalsecret.yaml", &es("  dataFrom:\n    - extract:\n        key: acars\n"));
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(repo.warnings().iter().any(|w| w.contains("${LONGITUDE}") && w.contains("ExternalSecret acars")), "{:?}", repo.warnings());
        // No ExternalSecret making it: the Secret is missing.
        std::fs::remove_file(root.join("kubernetes/apps/externalsecret.yaml")).unwrap();
        write(root, "kubernetes/apps/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: radio\nresources:\n  - ks.yaml\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(r.problems_of("substitute-from").count(), 1, "{:?}", r.problems);
    }

    const FLUX_KS: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n";

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    const KZ: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n";

    /// A cluster `c1` whose one Flux Kustomization builds `path` with `spec` lines added.
    fn cluster(root: &std::path::Path, path: &str, spec: &str) {
        write(root, "kubernetes/clusters/c1/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: main\n  namespace: flux-system\nspec:\n  path: {path}\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n{spec}"));
    }

    fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    }

    /// The objects the cluster's own Kustomizations apply (not the cluster directory itself,
    /// which the bootstrap Kustomization flux-system applies).
    fn applied(r: &super::Rendered) -> Vec<&super::RenderedObject> {
        r.objects.iter().filter(|o| o.applied_by != "flux-system").collect()
    }

    fn names(r: &super::Rendered) -> Vec<String> {
        applied(r).iter().map(|o| format!("{}/{}", o.namespace().unwrap_or("-"), o.name())).collect()
    }

    #[test]
    fn generated_kustomization_builds_sub_folders_with_their_own_kustomization_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        write(root, "apps/top.yaml", &cm("top"));
        write(root, "apps/plain/deep.yaml", &cm("deep"));
        // Flux lists this folder as a directory: kustomize builds only what it names.
        write(root, "apps/app/kustomization.yaml", &format!("{KZ}resources:\n  - listed.yaml\n"));
        write(root, "apps/app/listed.yaml", &cm("listed"));
        write(root, "apps/app/unlisted.yaml", &cm("unlisted"));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(names(&r), ["-/listed", "-/deep", "-/top"]);
    }

    #[test]
    fn kustomize_namespace_and_target_namespace_apply_to_namespaced_objects_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "apps/kustomization.yaml", &format!("{KZ}namespace: inner\nresources:\n  - cm.yaml\n  - ns.yaml\n"));
        write(root, "apps/cm.yaml", &format!("{}  namespace: written\n", cm("a")));
        write(root, "apps/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: inner\n");
        cluster(root, "./apps", "");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(names(&r), ["inner/a", "-/inner"], "kustomize namespace: overrides the written one");
        cluster(root, "./apps", "  targetNamespace: outer\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(names(&r), ["outer/a", "-/outer"], "targetNamespace is applied last; kustomize names a Namespace after it");
    }

    #[test]
    fn variables_are_substituted_only_where_post_build_is_present() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: apps\ndata:\n  zone: ${ZONE}\n  cluster: ${CLUSTER}\n");
        cluster(root, "./apps", "");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(applied(&r)[0].str("/data/zone"), Some("${ZONE}"), "without postBuild Flux leaves the text literal");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        cluster(root, "./apps", "  postBuild:\n    substitute:\n      CLUSTER: c1\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(applied(&r)[0].str("/data/cluster"), Some("c1"));
        let unresolved: Vec<&str> = r.problems_of("unresolved-variable").map(|p| p.finding.object.as_str()).collect();
        assert!(unresolved.len() == 1 && unresolved[0].starts_with("${ZONE}"), "{unresolved:?}");
    }

    #[test]
    fn depends_on_a_kustomization_the_cluster_lacks_is_a_problem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "apps/cm.yaml", &cm("a"));
        cluster(root, "./apps", "  dependsOn:\n    - name: main\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(r.problems_of("depends-on").count(), 0, "{:?}", r.problems);
        // One from another source (upstream CRDs) is applied by Flux, though not built from here.
        write(root, "apps/crds.yaml", &format!("{FLUX_KS}metadata:\n  name: upstream-crds\n  namespace: flux-system\nspec:\n  path: ./crds\n  sourceRef:\n    kind: GitRepository\n    name: upstream\n"));
        cluster(root, "./apps", "  dependsOn:\n    - name: upstream-crds\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(r.problems_of("depends-on").count(), 0, "{:?}", r.problems);
        cluster(root, "./apps", "  dependsOn:\n    - name: main\n    - name: cert-manager\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let p: Vec<_> = r.problems_of("depends-on").map(|p| &p.finding).collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].object, "kubernetes/clusters/c1/ks.yaml: Kustomization main dependsOn");
        assert!(p[0].observed.contains("\"cert-manager\" is not defined"), "{}", p[0].observed);
    }

    #[test]
    fn a_depends_on_cycle_is_one_problem_naming_the_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "apps/cm.yaml", &cm("a"));
        let ks = |name: &str, dep: &str| format!("{FLUX_KS}metadata:\n  name: {name}\n  namespace: flux-system\nspec:\n  path: ./apps\n  dependsOn:\n    - name: {dep}\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n");
        write(root, "kubernetes/clusters/c1/ks.yaml", &[ks("main", "b"), ks("b", "c"), ks("c", "main")].join("---\n"));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let p: Vec<_> = r.problems_of("depends-on").map(|p| &p.finding).collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].observed, "dependsOn cycle b → c → main → b, so Flux never reconciles any of them");
        write(root, "kubernetes/clusters/c1/ks.yaml", &[ks("main", "b"), ks("b", "c"), ks("c", "x")].join("---\n"));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert!(r.problems_of("depends-on").all(|p| !p.finding.observed.contains("cycle")), "{:?}", r.problems);
    }

    #[test]
    fn components_are_built_and_a_missing_one_is_named_as_a_component() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        write(root, "apps/kustomization.yaml", &format!("{KZ}resources:\n  - cm.yaml\ncomponents:\n  - ../components/alerts\n"));
        write(root, "apps/cm.yaml", &cm("a"));
        write(root, "components/alerts/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n  - rule.yaml\n");
        write(root, "components/alerts/rule.yaml", &cm("rule"));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(names(&r), ["-/a", "-/rule"]);
        std::fs::remove_dir_all(root.join("components")).unwrap();
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let p: Vec<_> = r.problems_of("dangling-path").map(|p| p.finding.object.as_str()).collect();
        assert_eq!(p, ["apps/kustomization.yaml: components entry \"../components/alerts\""]);
    }

    #[test]
    fn component_patches_apply_to_the_kustomization_that_lists_the_component() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        write(root, "apps/kustomization.yaml", &format!("{KZ}namespace: apps\nresources:\n  - cm.yaml\ncomponents:\n  - ../components/label\n"));
        write(root, "apps/cm.yaml", &cm("a"));
        write(root, "components/label/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - target:\n      kind: ConfigMap\n    patch: |-\n      - op: add\n        path: /metadata/labels\n        value: {tier: shared}\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(applied(&r)[0].str("/metadata/labels/tier"), Some("shared"));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        // A patch path that does not exist is named with the file that declares it.
        write(root, "apps/kustomization.yaml", &format!("{KZ}resources:\n  - cm.yaml\npatches:\n  - path: gone.yaml\n"));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert!(applied(&r)[0].get("/metadata/labels").is_none());
        let p: Vec<_> = r.problems_of("dangling-path").map(|p| p.finding.object.as_str()).collect();
        assert_eq!(p, ["apps/kustomization.yaml: patch path \"gone.yaml\""]);
    }

    #[test]
    fn flux_patches_give_child_kustomizations_post_build_with_the_parent_variables() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let own = "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n";
        let patch = "  postBuild:\n    substitute:\n      CLUSTER: main\n  patches:\n    - target:\n        group: kustomize.toolkit.fluxcd.io\n        kind: Kustomization\n      patch: |-\n        apiVersion: kustomize.toolkit.fluxcd.io/v1\n        kind: Kustomization\n        metadata:\n          name: not-used\n        spec:\n          postBuild:\n            substitute:\n              CLUSTER: ${CLUSTER}\n";
        cluster(root, "./apps", patch);
        write(root, "apps/kustomization.yaml", &format!("{KZ}resources:\n  - app/ks.yaml\n"));
        write(root, "apps/app/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: app\n  namespace: flux-system\nspec:\n  path: ./apps/app/app\n  targetNamespace: media\n{own}"));
        write(root, "apps/app/app/kustomization.yaml", &format!("{KZ}resources:\n  - cm.yaml\n"));
        write(root, "apps/app/app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-${CLUSTER}\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(r.kustomizations, ["flux-system", "main", "app"], "flux-system applies the cluster directory");
        assert_eq!(names(&r), ["flux-system/app", "media/app-main"]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn substitute_from_reads_the_kustomizations_own_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: flux-system\ndata:\n  ZONE: a\n";
        write(root, "kubernetes/clusters/c1/settings.yaml", settings);
        write(root, "apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  zone: ${ZONE}\n");
        let post_build = "  postBuild:\n    substituteFrom:\n      - kind: ConfigMap\n        name: settings\n";
        cluster(root, "./apps", post_build);
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(applied(&r)[0].str("/data/zone"), Some("a"));
        // The same Kustomization in another namespace: Flux finds no ConfigMap there.
        let ks = root.join("kubernetes/clusters/c1/ks.yaml");
        std::fs::write(&ks, std::fs::read_to_string(&ks).unwrap().replace("namespace: flux-system", "namespace: media")).unwrap();
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let p: Vec<String> = r.problems_of("substitute-from").map(|p| p.finding.to_string()).collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("ConfigMap media/settings in kubernetes/clusters/c1"), "{p:?}");
    }

    #[test]
    fn what_flux_cannot_substitute_is_a_problem_naming_object_and_variable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // `${VAR-default}` does not parse in Flux's envsubst (only `=` and the colon forms do).
        write(root, "apps/cm.yaml", "# a comment Flux never sees: ${NOT-PARSED}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: ${ZONE-a}\n");
        write(root, "apps/ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata:\n  a: ${ZONE}\n  b: \"# ${ZONE^^}\"\n");
        cluster(root, "./apps", "  postBuild:\n    substitute:\n      ZONE: a\n      cluster.name: c1\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let invalid: Vec<String> = r.problems_of("invalid-after-substitution").map(|p| p.finding.to_string()).collect();
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert!(invalid[0].contains("apps/cm.yaml (ConfigMap/cm) (applied by main)") && invalid[0].contains("variable substitution failed"), "{invalid:?}");
        let ok = r.objects.iter().find(|o| o.name() == "ok").unwrap();
        assert_eq!((ok.str("/data/a"), ok.str("/data/b")), (Some("a"), Some("# A")));
        let names: Vec<String> = r.problems_of("substitute-from").map(|p| p.finding.to_string()).collect();
        assert!(names.iter().any(|n| n.contains("variable \"cluster.name\"") && n.contains("Flux fails the Kustomization")), "{names:?}");
    }

    #[test]
    fn variables_from_a_sops_encrypted_secret_are_unknown_not_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sops = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-secrets\n  namespace: flux-system\nstringData:\n  SECRET_DOMAIN: ENC[AES256_GCM,data:q2Vz,iv:aa,tag:bb,type:str]\nsops:\n  age:\n    - recipient: age1example\n  mac: ENC[AES256_GCM,data:cc,iv:dd,tag:ee,type:str]\n  version: 3.9.0\n";
        write(root, "kubernetes/clusters/c1/cluster-secrets.sops.yaml", sops);
        write(root, "apps/route.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: route\n  namespace: apps\ndata:\n  host: grafana.${SECRET_DOMAIN}\n");
        cluster(root, "./apps", "  postBuild:\n    substituteFrom:\n      - kind: Secret\n        name: cluster-secrets\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        // Neither the ciphertext nor an empty value: the reference Flux fills in, and no problem.
        assert_eq!(applied(&r)[0].str("/data/host"), Some("grafana.${SECRET_DOMAIN}"));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let vars = repo.variables("c1").unwrap();
        assert_eq!(vars.get("SECRET_DOMAIN"), None);
        let skip = vars.expect_eq("SECRET_DOMAIN", "example.org");
        assert_eq!(skip.verdict(), crate::outcome::Verdict::Skip);
        assert!(skip.summary().contains("SOPS-encrypted Secret cluster-secrets"), "{}", skip.summary());
        assert!(!skip.summary().contains("ENC["), "{}", skip.summary());
    }

    #[test]
    fn post_build_without_any_variable_substitutes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "apps/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: apps\ndata:\n  a: ${LEFT}\n");
        cluster(root, "./apps", "  postBuild:\n    substituteFrom:\n      - kind: Secret\n        name: absent\n        optional: true\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(applied(&r)[0].str("/data/a"), Some("${LEFT}"));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn a_replacement_kustomize_cannot_apply_is_a_problem_naming_the_kustomization_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        write(root, "apps/cm.yaml", &format!("{}  namespace: media\n", cm("a")));
        let replacement = "replacements:\n  - source:\n      kind: Namespace\n    targets:\n      - select:\n          kind: ConfigMap\n        fieldPaths:\n          - data.ns\n";
        write(root, "apps/kustomization.yaml", &format!("{KZ}resources:\n  - cm.yaml\n{replacement}"));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let p: Vec<String> = r.problems_of("kustomize").map(|p| p.finding.to_string()).collect();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("apps/kustomization.yaml: replacements[0]") && p[0].contains("nothing selected by Namespace.[noVer].[noGrp]/[noName].[noNs]"), "{p:?}");
        // With a Namespace to read, the value lands where the target asks (created there).
        write(root, "apps/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: media\n");
        write(root, "apps/kustomization.yaml", &format!("{KZ}resources:\n  - cm.yaml\n  - ns.yaml\n{}", replacement.replace("data.ns\n", "data.ns\n        options:\n          create: true\n")));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(applied(&r)[0].str("/data/ns"), Some("media"));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
    }

    #[test]
    fn kustomize_fields_the_rendering_does_not_apply_are_warnings_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "  images:\n    - name: app\n      newTag: \"2\"\n");
        write(root, "apps/kustomization.yaml", &format!("{KZ}namePrefix: staging-\nresources:\n  - cm.yaml\n"));
        write(root, "apps/cm.yaml", &cm("a"));
        let repo = GitopsRepo::load(root).unwrap();
        assert_eq!(names(&repo.render("c1").unwrap()), ["-/a"], "read as written");
        let w = repo.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|l| l.starts_with("apps/kustomization.yaml: `namePrefix` is not applied")), "{w:?}");
        assert!(w.iter().any(|l| l.starts_with("kubernetes/clusters/c1/ks.yaml: Kustomization main `spec.images` is not applied")), "{w:?}");
    }

    #[test]
    fn flux_spec_components_are_built_relative_to_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps/app", "  components:\n    - ../../components/backup\n");
        write(root, "apps/app/cm.yaml", &cm("a"));
        write(root, "components/backup/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources:\n  - source.yaml\n");
        write(root, "components/backup/source.yaml", &cm("backup"));
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        assert_eq!(names(&r), ["-/a", "-/backup"]);
        cluster(root, "./apps/app", "  components:\n    - ../../components/gone\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let p: Vec<_> = r.problems_of("dangling-path").map(|p| p.finding.object.as_str()).collect();
        assert_eq!(p, ["kubernetes/clusters/c1/ks.yaml: Kustomization main spec.components entry \"../../components/gone\""]);
    }

    #[test]
    fn chart_ref_to_an_oci_repository_is_the_last_segment_of_its_url() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        write(root, "apps/oci.yaml", "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: cilium-charts\n  namespace: kube-system\nspec:\n  url: oci://ghcr.io/home-operations/charts-mirror/cilium\n");
        write(root, "apps/hr.yaml", "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cni\n  namespace: kube-system\nspec:\n  chartRef:\n    kind: OCIRepository\n    name: cilium-charts\n");
        write(root, "apps/other.yaml", "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: lost\n  namespace: default\nspec:\n  chartRef:\n    kind: OCIRepository\n    name: cilium-charts\n");
        let r = GitopsRepo::load(root).unwrap().render("c1").unwrap();
        let chart = |name: &str| r.of_kind("HelmRelease").find(|o| o.name() == name).unwrap().chart.clone();
        assert_eq!(chart("cni").as_deref(), Some("cilium"));
        assert_eq!(chart("lost"), None, "the OCIRepository is in another namespace");
    }

    #[test]
    fn malformed_yaml_nothing_reaches_is_a_warning_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        write(root, "apps/cm.yaml", &cm("a"));
        write(root, "attic/old.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n");
        let repo = GitopsRepo::load(root).unwrap();
        assert_eq!(applied(&repo.render("c1").unwrap()).len(), 1);
        let warnings = repo.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("malformed YAML in attic/old.yaml:5: "), "{}", warnings[0]);
        assert!(warnings[0].contains("no Flux Kustomization of any cluster reaches it"), "{}", warnings[0]);
    }

    #[test]
    fn malformed_yaml_rendering_needs_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        write(root, "apps/cm.yaml", &cm("a"));
        write(root, "apps/sub/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n");
        let repo = GitopsRepo::load(root).unwrap();
        let err = repo.render("c1").unwrap_err().to_string();
        assert!(err.starts_with("malformed YAML in apps/sub/broken.yaml:5: "), "{err}");
        assert!(repo.warnings().is_empty(), "a reached file is an error, not a warning: {:?}", repo.warnings());
    }

    #[test]
    fn generator_inputs_are_data_not_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cluster(root, "./apps", "");
        // An application's own config with its own YAML tags, loaded by a configMapGenerator.
        let config = "sonarr:\n  series:\n    base_url: http://sonarr\n    api_key: !env_var SONARR_API_KEY\n";
        write(root, "apps/config/recyclarr.yml", config);
        write(root, "apps/values.yaml", "replicas: [\n");
        write(root, "apps/cm.yaml", &cm("a"));
        write(root, "apps/kustomization.yaml", &format!("{KZ}resources:\n  - cm.yaml\nconfigMapGenerator:\n  - name: recyclarr\n    files:\n      - recyclarr.yml=./config/recyclarr.yml\n  - name: values\n    files:\n      - values.yaml\n"));
        let repo = GitopsRepo::load(root).unwrap();
        assert!(repo.malformed.is_empty(), "{:?}", repo.malformed);
        assert!(repo.data_files.contains(std::path::Path::new("apps/config/recyclarr.yml")), "{:?}", repo.data_files);
        let r = repo.render("c1").unwrap();
        assert_eq!(names(&r), ["-/a", "-/recyclarr-dft9f28d84", "-/values-mh57gkb758"], "the generators' ConfigMaps hold the files as text");
        assert_eq!(applied(&r)[1].str("/data/recyclarr.yml"), Some(config));
        // kustomize would also rewrite references to the hashed names: said, not modelled.
        let warnings = repo.warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("apps/kustomization.yaml: configMapGenerator[0] names ConfigMap recyclarr-dft9f28d84 with kustomize's hash suffix"), "{warnings:?}");
        // The same file, named by no generator, is YAML the harness cannot parse: a warning.
        write(root, "apps/kustomization.yaml", &format!("{KZ}resources:\n  - cm.yaml\n"));
        let repo = GitopsRepo::load(root).unwrap();
        assert_eq!(repo.malformed.len(), 2, "{:?}", repo.malformed);
        assert_eq!(repo.warnings().len(), 2);
    }

    #[test]
    fn nested_kustomization_from_another_source_is_not_built_from_this_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let own = "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n";
        write(root, "kubernetes/clusters/c1/ks.yaml", &format!("{FLUX_KS}metadata:\n  name: main\n  namespace: flux-system\nspec:\n  path: ./kubernetes/apps\n{own}"));
        write(root, "kubernetes/apps/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - upstream.yaml\n  - local.yaml\n");
        // Upstream CRDs: spec.path is inside the upstream repository, here it would be the whole tree.
        write(root, "kubernetes/apps/upstream.yaml", &format!("{FLUX_KS}metadata:\n  name: upstream-crds\n  namespace: flux-system\nspec:\n  path: ./kubernetes\n  sourceRef:\n    kind: GitRepository\n    name: upstream\n"));
        write(root, "kubernetes/apps/local.yaml", &format!("{FLUX_KS}metadata:\n  name: local\n  namespace: flux-system\nspec:\n  path: ./kubernetes/extra\n{own}"));
        write(root, "kubernetes/extra/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: apps\n");
        let repo = GitopsRepo::load(root).unwrap();
        let r = repo.render("c1").unwrap();
        assert_eq!(r.kustomizations, ["flux-system", "main", "local"]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.of_kind("ConfigMap").count(), 1, "the same-source nested Kustomization is still built");
    }
}
