//! Flux HelmReleases as helm-controller reads them: which chart a release installs,
//! the Helm release name and namespace it installs into, its merged values, and the
//! base HelmRelease files of the repository.

use serde_json::Value;

use super::rendered::{find, group, key_at};
use crate::check::{CheckContext, Finding, Outcome};
use crate::repo::{scalar_text, GitopsRepo, Rendered, RenderedObject};

pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";

/// The chart a HelmRelease installs: `spec.chart.spec.chart`, else the source named by
/// `spec.chartRef` (an OCIRepository or HelmChart).
///
/// ```
/// use platform_acceptance::checks::kit::helm::chart_of;
/// let hr = serde_json::json!({"spec": {"chart": {"spec": {"chart": "cilium", "version": "1.16.x"}}}});
/// assert_eq!(chart_of(&hr), Some("cilium"));
/// let by_ref = serde_json::json!({"spec": {"chartRef": {"kind": "OCIRepository", "name": "podinfo"}}});
/// assert_eq!(chart_of(&by_ref), Some("podinfo"));
/// assert_eq!(chart_of(&serde_json::json!({"spec": {}})), None);
/// ```
pub fn chart_of(value: &Value) -> Option<&str> {
    crate::repo::str_at(value, "/spec/chart/spec/chart").or_else(|| crate::repo::str_at(value, "/spec/chartRef/name"))
}

/// The chart of a rendered HelmRelease (resolved through its `chartRef` source when
/// rendering found it, else [`chart_of`]), `""` when it names none.
///
/// ```
/// use platform_acceptance::checks::kit::helm::chart_name;
/// use platform_acceptance::repo::RenderedObject;
/// let hr = RenderedObject {
///     file: "kubernetes/bases/fluent-bit/helmrelease.yaml".into(),
///     applied_by: "flux-system/infrastructure".into(),
///     value: serde_json::json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
///         "metadata": {"name": "fluent-bit", "namespace": "observability"},
///         "spec": {"chart": {"spec": {"chart": "fluent-bit", "sourceRef": {"kind": "HelmRepository", "name": "fluent"}}}}}),
///     chart: None,
/// };
/// assert_eq!(chart_name(&hr), "fluent-bit");
/// let by_ref = RenderedObject { chart: Some("cilium".into()), ..hr.clone() };
/// assert_eq!(chart_name(&by_ref), "cilium");
/// let unnamed = RenderedObject { value: serde_json::json!({"kind": "HelmRelease", "spec": {}}), ..hr };
/// assert_eq!(chart_name(&unnamed), "");
/// ```
pub fn chart_name(hr: &RenderedObject) -> String {
    hr.chart.as_deref().or_else(|| chart_of(&hr.value)).unwrap_or("").to_string()
}

/// Resolves the HelmRelease's chart source among the rendered objects.
pub fn chart_source(r: &Rendered, hr: &RenderedObject) -> Result<String, Finding> {
    let (kind, name, ns) = if let Some(name) = hr.str("/spec/chart/spec/sourceRef/name") {
        (hr.str("/spec/chart/spec/sourceRef/kind").unwrap_or("HelmRepository"), name, hr.str("/spec/chart/spec/sourceRef/namespace"))
    } else if let Some(name) = hr.str("/spec/chartRef/name") {
        (hr.str("/spec/chartRef/kind").unwrap_or("OCIRepository"), name, hr.str("/spec/chartRef/namespace"))
    } else {
        return Err(Finding::new(hr.describe(), "spec.chart.spec.sourceRef or spec.chartRef", "neither set"));
    };
    let ns = ns.or(hr.namespace());
    match r.objects.iter().find(|o| o.kind() == kind && o.name() == name && o.namespace() == ns && group(o) == "source.toolkit.fluxcd.io") {
        Some(src) => Ok(format!("{} {} (chart {:?} from {} {}/{})", hr.api_version(), hr.describe(), chart_name(hr), kind, ns.unwrap_or(""), src.name())),
        None => Err(Finding::new(
            format!("{} chart source", hr.describe()),
            format!("{kind} {}/{name} rendered on cluster {}", ns.unwrap_or(""), r.cluster),
            "not found",
        )),
    }
}

/// `values` merged with `valuesFrom` ConfigMaps (rendered), the way helm-controller merges them.
pub fn helm_values(r: &Rendered, hr: &RenderedObject) -> Value {
    let mut merged = Value::Object(Default::default());
    for vf in hr.get("/spec/valuesFrom").and_then(Value::as_array).into_iter().flatten() {
        if vf.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
            continue;
        }
        let name = vf.get("name").and_then(Value::as_str).unwrap_or("");
        let key = vf.get("valuesKey").and_then(Value::as_str).unwrap_or("values.yaml");
        let text = find(r, "", "ConfigMap", name, hr.namespace()).and_then(|cm| key_at(&cm.value, "/data", key)).and_then(Value::as_str);
        if let Some(v) = text.and_then(|t| serde_yaml_ng::from_str::<Value>(t).ok()) {
            merge(&mut merged, &v);
        }
    }
    if let Some(v) = hr.get("/spec/values") {
        merge(&mut merged, v);
    }
    merged
}

/// Merges Helm values `from` over `into` (maps key by key, anything else replaced), as Helm
/// merges values files.
pub fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// API group prefix of Flux HelmReleases (`v2`, and the older `v2beta2`/`v2beta1`).
pub const HELMRELEASE_GROUP: &str = "helm.toolkit.fluxcd.io/";


/// Passes when `path` holds a Flux HelmRelease installing one of `charts`.
pub fn file_has_helmrelease(repo: &GitopsRepo, path: &str, charts: &[&str]) -> Outcome {
    let expected = format!("a HelmRelease ({HELMRELEASE_GROUP}*) of chart {}", charts.join(" or "));
    if repo.resolve(path).is_none() {
        return super::layout::missing_outcome(repo, path, path, expected, "file missing");
    }
    let docs = repo.documents_in(path);
    let found = docs.iter().find(|d| {
        d.kind() == "HelmRelease"
            && d.api_version().starts_with(HELMRELEASE_GROUP)
            && chart_of(&d.value).is_some_and(|c| charts.contains(&c))
    });
    match found {
        Some(d) => Outcome::pass(format!(
            "{path}: {} HelmRelease/{} chart {}",
            d.api_version(),
            d.name(),
            chart_of(&d.value).unwrap_or_default()
        )),
        None => {
            let seen: Vec<String> = docs
                .iter()
                .map(|d| match chart_of(&d.value) {
                    Some(chart) => format!("{} {}/{} chart {chart}", d.api_version(), d.kind(), d.name()),
                    None => format!("{} {}/{}", d.api_version(), d.kind(), d.name()),
                })
                .collect();
            Outcome::fail(path, expected, format!("[{}]", seen.join(", ")))
        }
    }
}

/// The rendered HelmReleases installing one of `charts`.
pub fn rendered_helmreleases<'a>(rendered: &'a Rendered, charts: &'a [&'a str]) -> impl Iterator<Item = &'a crate::repo::RenderedObject> + 'a {
    rendered
        .of_kind("HelmRelease")
        .filter(|o| o.api_version().starts_with(HELMRELEASE_GROUP) && charts.contains(&chart_name(o).as_str()))
}

/// The one rendered HelmRelease of one of `charts`, or a Fail naming the cluster.
pub fn rendered_helmrelease<'a>(rendered: &'a Rendered, charts: &'a [&'a str]) -> Result<&'a crate::repo::RenderedObject, Outcome> {
    rendered_helmreleases(rendered, charts).next().ok_or_else(|| {
        Outcome::fail(
            format!("HelmRelease of chart {}", charts.join(" or ")),
            format!("rendered for cluster {}", rendered.cluster),
            "not rendered",
        )
    })
}

/// The rendered HelmRelease (helm.toolkit.fluxcd.io) of a chart.
pub fn helm_release<'a>(r: &'a Rendered, chart: &str) -> Option<&'a RenderedObject> {
    r.of_kind("HelmRelease")
        .filter(|o| o.api_version().starts_with("helm.toolkit.fluxcd.io/"))
        .find(|o| chart_name(o) == chart)
}

/// A Helm release as helm-controller installs it from a HelmRelease: the release name and
/// namespace, the values as rendered, and the HelmRelease object itself.
///
/// Flux's rules (docs/reference/components.md §6.1 [F3]): the namespace is
/// `spec.targetNamespace`, else the HelmRelease's own; the name is `spec.releaseName`,
/// else `<targetNamespace>-<name>` when a target namespace is set, else `<name>`.
///
/// ```
/// use platform_acceptance::checks::kit::helm::Release;
/// use platform_acceptance::repo::RenderedObject;
/// let hr = RenderedObject {
///     file: "hr.yaml".into(),
///     applied_by: "apps".into(),
///     value: serde_json::json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
///         "metadata": {"name": "cilium", "namespace": "flux-system"},
///         "spec": {"targetNamespace": "kube-system", "values": {"fullnameOverride": ""}}}),
///     chart: None,
/// };
/// let r = Release::of(&hr);
/// assert_eq!((r.name.as_str(), r.namespace.as_str()), ("kube-system-cilium", "kube-system"));
/// assert_eq!(r.fullname("cilium"), "kube-system-cilium");
/// ```
#[derive(Debug, Clone)]
pub struct Release {
    /// Helm release name.
    pub name: String,
    /// Namespace the release installs into.
    pub namespace: String,
    /// The HelmRelease object's own namespace and name.
    pub hr_namespace: String,
    pub hr_name: String,
    pub values: Option<Value>,
    /// Where the names came from, for evidence.
    pub source: String,
}

impl Release {
    /// The release a rendered HelmRelease installs.
    pub fn of(hr: &RenderedObject) -> Release {
        let target = hr.str("/spec/targetNamespace");
        let hr_namespace = hr.namespace().unwrap_or("default").to_string();
        let name = match (hr.str("/spec/releaseName"), target) {
            (Some(r), _) => r.to_string(),
            (None, Some(t)) => format!("{t}-{}", hr.name()),
            (None, None) => hr.name().to_string(),
        };
        Release {
            name,
            namespace: target.map(str::to_string).unwrap_or_else(|| hr_namespace.clone()),
            hr_namespace,
            hr_name: hr.name().to_string(),
            values: hr.get("/spec/values").cloned(),
            source: hr.describe(),
        }
    }

    /// The rendered HelmRelease of `chart` for the check's cluster, else the chart's upstream
    /// defaults (release `chart` in `default_ns`) when no repository renders one.
    pub fn rendered_or_default(ctx: &CheckContext, chart: &str, default_ns: &str) -> Release {
        if let Ok(repo) = ctx.repo()
            && let Ok(r) = repo.render(&ctx.cluster)
            && let Some(hr) = helm_release(&r, chart)
        {
            return Release::of(hr);
        }
        Release {
            name: chart.into(),
            namespace: default_ns.into(),
            hr_namespace: default_ns.into(),
            hr_name: chart.into(),
            values: None,
            source: format!("chart {chart} defaults (no repository)"),
        }
    }

    /// `values` at a JSON pointer as text (`/hubble/relay/enabled` → "true").
    pub fn value(&self, pointer: &str) -> Option<String> {
        self.values.as_ref().and_then(|v| v.pointer(pointer)).map(scalar_text)
    }

    /// The chart's default fullname: `fullnameOverride` when set, else the release name if it
    /// contains the chart name, else `<release>-<chart>` (Helm convention).
    pub fn fullname(&self, chart: &str) -> String {
        if let Some(f) = self.value("/fullnameOverride").filter(|f| !f.is_empty()) {
            return f;
        }
        if self.name.contains(chart) { self.name.clone() } else { format!("{}-{chart}", self.name) }
    }
}
