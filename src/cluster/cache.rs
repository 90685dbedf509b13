//! The run's read cache: one LIST per resource type and cluster serves every read of it.
//!
//! Within one run, the first read of a resource type on a cluster — a GET of one object, or
//! a LIST in one namespace or in all, with or without a label selector — LISTs that type
//! in all namespaces once; every later read of the type is answered from that list. API
//! discovery documents (`/api`, `/apis`, each group and group version) are built from one
//! aggregated discovery request per cluster and run (`apidiscovery.k8s.io/v2`, as kubectl
//! reads it); on an API server without it each document is fetched once, its 404 too.
//! Concurrent first reads wait for the one LIST in flight.
//!
//! A retry of a check must see the cluster as it is now, not as the first attempt saw it:
//! each attempt carries a [`Freshness`], and a list fetched before the attempt started is
//! LISTed again (one request, whose answer then serves every other check as well).
//!
//! Not cached, sent as they are: writes, and every object read of a check that writes (a
//! round trip polls objects it created; it reads discovery from the cache); requests with a
//! field selector, `watch`, `limit`, `resourceVersion` or a label selector this module
//! cannot parse; metadata-only and table reads (`Accept: …;as=…`); subresources
//! (`/status`, `/log`); ConfigMaps and Events. Secrets are never listed (the harness's
//! role may only `get` them): a Secret read by name is fetched once and its answer, or its
//! 404, serves every later read of it in the run ([`Read::Secret`]).
//! The cache LISTs in pages of 2000 items (`limit`, `continue`: one request for any list of
//! a platform, a few megabytes at a time for tens of thousands of pods) and keeps every item
//! without `metadata.managedFields` (the field owners' records, often a third of an object);
//! CustomResourceDefinitions also without their OpenAPI schemas (`spec.versions[].schema`,
//! megabytes). No check reads either: a check that needs them must not read through the cache.
//! When the cluster-wide LIST is refused (RBAC that allows some namespaces only) or fails,
//! the original request is sent instead, and so is every later read of that type.
//!
//! ```
//! use platform_acceptance::cluster::cache::{classify, Read, Selector};
//! let r = classify("GET", "/apis/apps/v1/namespaces/flux-system/deployments/helm-controller", None).unwrap();
//! assert_eq!(r, Read::Object { collection: "/apis/apps/v1/deployments".into(), namespace: Some("flux-system".into()), name: "helm-controller".into() });
//! let r = classify("GET", "/api/v1/namespaces/velero/pods", Some("labelSelector=app%3Dvelero")).unwrap();
//! assert_eq!(r, Read::List { collection: "/api/v1/pods".into(), namespace: Some("velero".into()), selector: Selector::parse("app=velero") });
//! assert_eq!(classify("GET", "/api/v1/namespaces/velero/pods/velero-0/log", None), None);
//! let r = classify("GET", "/api/v1/namespaces/velero/secrets/cloud", None).unwrap();
//! assert_eq!(r, Read::Secret("/api/v1/namespaces/velero/secrets/cloud".into()));
//! assert_eq!(classify("GET", "/api/v1/namespaces/velero/secrets", None), None);
//! assert_eq!(classify("GET", "/api/v1/pods", Some("fieldSelector=spec.nodeName%3Dn1")), None);
//! assert_eq!(classify("GET", "/apis/velero.io/v1", None), Some(Read::Discovery("/apis/velero.io/v1".into())));
//! assert_eq!(classify("GET", "/apis/velero.io", None), Some(Read::Discovery("/apis/velero.io".into())));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use super::access::{AccessLog, api_access};

/// Resource types read one object at a time, never listed for the cache: ConfigMaps
/// (data), Events.
const NOT_LISTED: [&str; 2] = ["configmaps", "events"];

/// The CRD collection, whose list is kept without schemas ([`slim`]).
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// What a read asks for, in the terms the cache answers it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// An API discovery document (`/api`, `/apis`, `/apis/<group>/<version>`, `/version`).
    Discovery(String),
    /// A LIST of `collection` (the all-namespaces path), in one namespace or all.
    List { collection: String, namespace: Option<String>, selector: Option<Selector> },
    /// One object of `collection` by name.
    Object { collection: String, namespace: Option<String>, name: String },
    /// One Secret by its path, kept by name (Secrets are never listed).
    Secret(String),
}

/// The cacheable read a request is, if it is one.
pub fn classify(method: &str, path: &str, query: Option<&str>) -> Option<Read> {
    if method != "GET" {
        return None;
    }
    let params: Vec<(String, String)> = query.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
    let (base, rest) = match parts.as_slice() {
        ["version"] | ["api"] | ["apis"] | ["apis", _] => return params.is_empty().then(|| Read::Discovery(path.to_string())),
        ["api", v, rest @ ..] => (format!("/api/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("/apis/{g}/{v}"), rest),
        _ => return None,
    };
    let (resource, namespace, name) = match rest {
        [] => return params.is_empty().then_some(Read::Discovery(base)),
        ["namespaces", _, "status" | "finalize"] => return None,
        ["namespaces", ns, resource] => (*resource, Some(ns.to_string()), None),
        ["namespaces", ns, resource, name] => (*resource, Some(ns.to_string()), Some(name.to_string())),
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, None, Some(name.to_string())),
        _ => return None,
    };
    if NOT_LISTED.contains(&resource) {
        return None;
    }
    if resource == "secrets" {
        return (name.is_some() && namespace.is_some() && params.is_empty()).then(|| Read::Secret(path.to_string()));
    }
    let collection = format!("{base}/{resource}");
    match name {
        Some(name) => params.is_empty().then_some(Read::Object { collection, namespace, name }),
        None => {
            let mut selector = None;
            for (k, v) in &params {
                match k.as_str() {
                    "labelSelector" => selector = Some(Selector::parse(v)?),
                    _ => return None,
                }
            }
            Some(Read::List { collection, namespace, selector })
        }
    }
}

/// A Kubernetes label selector (`a=b,c!=d,e in (f,g),!h,i`), as the API server matches it.
///
/// ```
/// use std::collections::BTreeMap;
/// use platform_acceptance::cluster::cache::Selector;
/// let labels = BTreeMap::from([("app".to_string(), "velero".to_string()), ("tier".to_string(), "backup".to_string())]);
/// assert!(Selector::parse("app=velero,tier in (backup, db)").unwrap().matches(&labels));
/// assert!(Selector::parse("app==velero,!missing,zone!=a,zone notin (b)").unwrap().matches(&labels));
/// assert!(!Selector::parse("app,tier=db").unwrap().matches(&labels));
/// assert_eq!(Selector::parse("app=(x"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    Absent(String),
    In(String, Vec<String>),
    /// Also matches objects without the key (`!=`, `notin`).
    NotIn(String, Vec<String>),
}

impl Selector {
    /// `None` for anything the API server's grammar would not accept as written here.
    pub fn parse(text: &str) -> Option<Selector> {
        let mut terms = vec![];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    terms.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        terms.push(&text[start..]);
        let mut reqs = vec![];
        for term in terms.into_iter().map(str::trim).filter(|t| !t.is_empty()) {
            reqs.push(requirement(term)?);
        }
        Some(Selector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::Absent(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

fn requirement(term: &str) -> Option<Requirement> {
    let word = |s: &str| {
        let s = s.trim();
        s.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c)).then(|| s.to_string())
    };
    let key = |s: &str| word(s).filter(|k| !k.is_empty());
    let set = |s: &str| -> Option<Vec<String>> {
        let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
        inner.split(',').map(word).collect()
    };
    if let Some(k) = term.strip_prefix('!') {
        return key(k).map(Requirement::Absent);
    }
    if let Some((k, vs)) = term.split_once(" notin ") {
        return Some(Requirement::NotIn(key(k)?, set(vs)?));
    }
    if let Some((k, vs)) = term.split_once(" in ") {
        return Some(Requirement::In(key(k)?, set(vs)?));
    }
    if let Some((k, v)) = term.split_once("!=") {
        return Some(Requirement::NotIn(key(k)?, vec![word(v)?]));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Some(Requirement::In(key(k)?, vec![word(v)?]));
    }
    key(term).map(Requirement::Exists)
}

/// How new an answer a check's current attempt needs: anything from this run on its first
/// attempt, nothing older than the attempt on a retry. The runner moves it at each retry.
#[derive(Debug, Clone)]
pub struct Freshness {
    floor: Arc<Mutex<Option<Instant>>>,
    /// Objects too, or discovery documents only (a check that writes polls its own objects).
    objects: bool,
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness { floor: Arc::default(), objects: true }
    }
}

impl Freshness {
    /// Discovery from the cache, every object read sent: for checks that write.
    pub fn discovery_only() -> Self {
        Freshness { objects: false, ..Freshness::default() }
    }

    /// From now on, answers must have been fetched at `since` or later.
    pub fn require_since(&self, since: Instant) {
        *self.floor.lock().expect("freshness lock") = Some(since);
    }

    fn floor(&self) -> Option<Instant> {
        *self.floor.lock().expect("freshness lock")
    }
}

/// What a fetch brought, and when.
struct Entry {
    fetched: Instant,
    answer: Fetched,
}

enum Fetched {
    /// A discovery document, as the API server sent it, or its 404 (a group or version the
    /// cluster does not serve: asked again by every check that resolves a kind there).
    Document(http::StatusCode, bytes::Bytes),
    /// The aggregated discovery document, parsed (group documents are built from it).
    Aggregated(Arc<Value>),
    /// A LIST, as its items' JSON text and what reads select them by.
    List(Arc<Listed>),
    /// The request was refused or failed: the original requests are sent.
    Refused,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// The cache of one run, for every cluster it reads. Created by the runner per run.
#[derive(Default)]
pub struct RunCache {
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl RunCache {
    pub fn new() -> Arc<RunCache> {
        Arc::new(RunCache::default())
    }

    fn slot(&self, cluster: &str, key: &str) -> Slot {
        self.slots.lock().expect("cache lock").entry((cluster.to_string(), key.to_string())).or_default().clone()
    }

    /// The answer to `read` on `cluster`, fetched through `inner` when the cache has none
    /// new enough; `None` when the original request must be sent (the LIST was refused or
    /// failed). Requests actually sent are counted in `log`.
    pub async fn answer(&self, cluster: &str, inner: &kube::Client, read: &Read, freshness: &Freshness, log: &AccessLog) -> Option<http::Response<kube::client::Body>> {
        let (key, floor) = match read {
            Read::Discovery(path) => (path.as_str(), None),
            _ if !freshness.objects => return None,
            Read::List { collection, .. } | Read::Object { collection, .. } | Read::Secret(collection) => (collection.as_str(), freshness.floor()),
        };
        if let Read::Discovery(path) = read
            && let Some(response) = self.answer_from_aggregated(cluster, inner, path, log).await
        {
            return Some(response);
        }
        let slot = self.slot(cluster, key);
        let mut entry = slot.lock().await;
        if entry.as_ref().is_none_or(|e| floor.is_some_and(|f| e.fetched < f)) {
            let fetched = Instant::now();
            // A refusal is remembered: later reads of the type go out as they are, at once.
            let answer = fetch(cluster, inner, key, matches!(read, Read::Discovery(_) | Read::Secret(_)), log).await.unwrap_or(Fetched::Refused);
            *entry = Some(Entry { fetched, answer });
        }
        let (status, body) = match (read, &entry.as_ref().expect("filled above").answer) {
            (Read::Discovery(_) | Read::Secret(_), Fetched::Document(status, body)) => (status.as_u16(), body.clone()),
            (Read::List { namespace, selector, .. }, Fetched::List(list)) => (200, list_body(list, namespace.as_deref(), selector.as_ref())),
            (Read::Object { collection, namespace, name }, Fetched::List(list)) => object_body(list, collection, namespace.as_deref(), name),
            _ => return None,
        };
        json_response(status, body)
    }

    /// A discovery document (`/apis`, `/apis/<group>`, `/apis/<group>/<version>`, `/api`,
    /// `/api/v1`), built from the cluster's aggregated discovery
    /// (`apidiscovery.k8s.io/v2`, one request per cluster and run for every group, as
    /// kubectl reads it); a 404 for what the cluster does not serve. `None` for other paths
    /// and for API servers without aggregated discovery (then each document is fetched).
    async fn answer_from_aggregated(&self, cluster: &str, inner: &kube::Client, path: &str, log: &AccessLog) -> Option<http::Response<kube::client::Body>> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (root, group, version) = match parts.as_slice() {
            ["api"] => ("/api", None, None),
            ["api", v] => ("/api", Some(""), Some(*v)),
            ["apis"] => ("/apis", None, None),
            ["apis", g] => ("/apis", Some(*g), None),
            ["apis", g, v] => ("/apis", Some(*g), Some(*v)),
            _ => return None,
        };
        let slot = self.slot(cluster, &format!("{root} (aggregated)"));
        let mut entry = slot.lock().await;
        if entry.is_none() {
            let fetched = Instant::now();
            let answer = fetch_aggregated(cluster, inner, root, log).await.unwrap_or(Fetched::Refused);
            *entry = Some(Entry { fetched, answer });
        }
        let Some(Entry { answer: Fetched::Aggregated(doc), .. }) = entry.as_ref() else { return None };
        let document = match group {
            Some(group) => aggregated::document(doc, group, version),
            None => Some(aggregated::root(doc, root)),
        };
        let (status, body) = match document {
            Some(d) => (200, d),
            None => (404, not_found("the server could not find the requested resource".into(), json!({}))),
        };
        json_response(status, serde_json::to_vec(&body).ok()?.into())
    }
}

fn json_response(status: u16, body: bytes::Bytes) -> Option<http::Response<kube::client::Body>> {
    http::Response::builder().status(status).header("content-type", "application/json").body(kube::client::Body::from(body)).ok()
}

/// The API server's 404 `Status`.
fn not_found(message: String, details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": "NotFound", "details": details, "code": 404})
}

/// Aggregated discovery (`GET /apis` or `/api` with `Accept: ...;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`):
/// the list of every group with its versions and resources, or `None` when the server
/// answers with the older `APIGroupList`/`APIVersions` (no aggregated discovery).
async fn fetch_aggregated(cluster: &str, inner: &kube::Client, root: &str, log: &AccessLog) -> Option<Fetched> {
    if let Some(a) = api_access(cluster, "GET", root) {
        log.count(&a);
    }
    let req = http::Request::get(root)
        .header(http::header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;q=0.9")
        .body(kube::client::Body::empty())
        .ok()?;
    let resp = inner.send(req).await.ok()?;
    if resp.status() != http::StatusCode::OK {
        return None;
    }
    let doc: Value = serde_json::from_slice(&resp.into_body().collect_bytes().await.ok()?).ok()?;
    (doc["kind"] == "APIGroupDiscoveryList").then(|| Fetched::Aggregated(Arc::new(doc)))
}

/// Discovery documents as the API server serves them at `/apis/<group>` (`APIGroup`) and
/// `/api/v1`, `/apis/<group>/<version>` (`APIResourceList`), built from an
/// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList` (versions in preference order).
mod aggregated {
    use serde_json::{Value, json};

    fn group_version(group: &str, version: &str) -> String {
        if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
    }

    fn api_group(item: &Value) -> Option<Value> {
        let group = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let listed: Vec<Value> = item["versions"]
            .as_array()?
            .iter()
            .filter_map(|v| v["version"].as_str())
            .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
            .collect();
        Some(json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": listed, "preferredVersion": listed.first()?}))
    }

    /// `/apis` (`APIGroupList`) or `/api` (`APIVersions`).
    pub fn root(list: &Value, root: &str) -> Value {
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if root == "/api" {
            let versions: Vec<Value> = items.iter().flat_map(|i| i["versions"].as_array().cloned().unwrap_or_default()).map(|v| v["version"].clone()).collect();
            return json!({"kind": "APIVersions", "versions": versions, "serverAddressByClientCIDRs": []});
        }
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": items.iter().filter_map(api_group).collect::<Vec<_>>()})
    }

    pub fn document(list: &Value, group: &str, version: Option<&str>) -> Option<Value> {
        let item = list["items"].as_array()?.iter().find(|i| i.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("") == group)?;
        let versions = item["versions"].as_array()?;
        let Some(version) = version else { return api_group(item) };
        let v = versions.iter().find(|v| v["version"] == version)?;
        let mut resources = vec![];
        for r in v["resources"].as_array().into_iter().flatten() {
            let name = r["resource"].as_str().unwrap_or_default();
            let namespaced = r["scope"] == "Namespaced";
            let mut out = json!({"name": name, "singularName": r["singularResource"].as_str().unwrap_or_default(), "namespaced": namespaced,
                "kind": r.pointer("/responseKind/kind").cloned().unwrap_or_default(), "verbs": r["verbs"].clone()});
            for field in ["shortNames", "categories"] {
                if r[field].is_array() {
                    out[field] = r[field].clone();
                }
            }
            resources.push(out);
            for sub in r["subresources"].as_array().into_iter().flatten() {
                resources.push(json!({"name": format!("{name}/{}", sub["subresource"].as_str().unwrap_or_default()), "singularName": "", "namespaced": namespaced,
                    "kind": sub.pointer("/responseKind/kind").cloned().unwrap_or_default(), "verbs": sub["verbs"].clone()}));
            }
        }
        Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version(group, version), "resources": resources}))
    }
}

/// A LIST, or with `document` one document kept as it came (its 404 too).
async fn fetch(cluster: &str, inner: &kube::Client, path: &str, document: bool, log: &AccessLog) -> Option<Fetched> {
    if !document {
        return fetch_list(cluster, inner, path, log).await.map(|l| Fetched::List(Arc::new(l)));
    }
    let (status, body) = get(cluster, inner, path, log).await?;
    (status == http::StatusCode::OK || status == http::StatusCode::NOT_FOUND).then_some(Fetched::Document(status, body))
}

/// One GET of `path` (with its query), counted in `log`: the status and the body.
async fn get(cluster: &str, inner: &kube::Client, path: &str, log: &AccessLog) -> Option<(http::StatusCode, bytes::Bytes)> {
    if let Some(a) = api_access(cluster, "GET", path.split('?').next().unwrap_or(path)) {
        log.count(&a);
    }
    let req = http::Request::get(path).body(kube::client::Body::empty()).ok()?;
    let resp = inner.send(req).await.ok()?;
    let status = resp.status();
    Some((status, resp.into_body().collect_bytes().await.ok()?))
}

/// Items per page of the cache's LISTs: one request for the lists of a platform, and no
/// more than a few megabytes in flight for a cluster with tens of thousands of pods.
const PAGE: usize = 2000;

/// The LIST of `collection`, in pages of [`PAGE`] items (`limit` and `continue`, one
/// consistent snapshot), each item kept without `metadata.managedFields` (and a CRD without
/// its schemas): the field owners' records, often a third of an object, which no check reads.
async fn fetch_list(cluster: &str, inner: &kube::Client, collection: &str, log: &AccessLog) -> Option<Listed> {
    #[derive(serde::Deserialize)]
    struct Page<'a> {
        #[serde(default)]
        kind: String,
        #[serde(default, rename = "apiVersion")]
        api_version: String,
        #[serde(default)]
        metadata: PageMeta,
        #[serde(borrow, default)]
        items: Option<Vec<&'a serde_json::value::RawValue>>,
    }
    #[derive(serde::Deserialize, Default)]
    struct PageMeta {
        #[serde(rename = "resourceVersion")]
        resource_version: Option<String>,
        #[serde(rename = "continue")]
        next: Option<String>,
    }
    let mut body: Vec<u8> = vec![];
    let mut next: Option<String> = None;
    loop {
        let token = next.as_deref().map(|t| format!("&continue={}", form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>())).unwrap_or_default();
        let (status, bytes) = get(cluster, inner, &format!("{collection}?limit={PAGE}{token}"), log).await?;
        if status != http::StatusCode::OK {
            return None;
        }
        let page: Page = serde_json::from_slice(&bytes).ok()?;
        if body.is_empty() {
            body = list_open(&page.kind, &page.api_version, page.metadata.resource_version.as_deref());
        }
        for raw in page.items.unwrap_or_default() {
            // An item ends with `}`: anything but the opening `[` before it is an item.
            if body.last() != Some(&b'[') {
                body.push(b',');
            }
            body.extend_from_slice(slim(raw.get(), collection == CRDS)?.as_bytes());
        }
        next = page.metadata.next.filter(|t| !t.is_empty());
        if next.is_none() {
            break;
        }
    }
    body.extend_from_slice(b"]}");
    Listed::parse(body.into())
}

/// An item of a LIST without `metadata.managedFields` (and, for a CRD, without the OpenAPI
/// schema of each version: megabytes the checks never read).
fn slim(item: &str, crd: bool) -> Option<String> {
    let mut v: Value = serde_json::from_str(item).ok()?;
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if crd {
        for version in v.pointer_mut("/spec/versions").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(version) = version.as_object_mut() {
                version.remove("schema");
            }
        }
    }
    serde_json::to_string(&v).ok()
}

/// A LIST as the API server sent it, with an index of its items: each item's namespace,
/// name and labels, and where its JSON text is in the body. Answers are cut from the body,
/// so the cache holds the list's bytes once and no parsed tree of it (a LIST of 10 000 pods
/// is tens of megabytes as text, several times that as a `serde_json::Value`).
struct Listed {
    body: bytes::Bytes,
    kind: String,
    api_version: String,
    resource_version: Option<String>,
    items: Vec<Item>,
}

struct Item {
    namespace: Option<String>,
    name: String,
    labels: BTreeMap<String, String>,
    /// The item names its kind itself (custom resources do; built-in types in a list do not).
    has_kind: bool,
    span: std::ops::Range<usize>,
}

impl Listed {
    fn parse(body: bytes::Bytes) -> Option<Listed> {
        #[derive(serde::Deserialize)]
        struct List<'a> {
            #[serde(default)]
            kind: String,
            #[serde(default, rename = "apiVersion")]
            api_version: String,
            #[serde(default)]
            metadata: ListMeta,
            #[serde(borrow, default)]
            items: Option<Vec<&'a serde_json::value::RawValue>>,
        }
        #[derive(serde::Deserialize, Default)]
        struct ListMeta {
            #[serde(rename = "resourceVersion")]
            resource_version: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct One {
            kind: Option<String>,
            #[serde(default)]
            metadata: Meta,
        }
        #[derive(serde::Deserialize, Default)]
        struct Meta {
            #[serde(default)]
            name: String,
            namespace: Option<String>,
            #[serde(default)]
            labels: Option<BTreeMap<String, String>>,
        }
        let list: List = serde_json::from_slice(&body).ok()?;
        let base = body.as_ptr() as usize;
        let mut items = vec![];
        for raw in list.items.unwrap_or_default() {
            let one: One = serde_json::from_str(raw.get()).ok()?;
            let start = raw.get().as_ptr() as usize - base;
            items.push(Item {
                namespace: one.metadata.namespace,
                name: one.metadata.name,
                labels: one.metadata.labels.unwrap_or_default(),
                has_kind: one.kind.is_some(),
                span: start..start + raw.get().len(),
            });
        }
        Some(Listed { kind: list.kind, api_version: list.api_version, resource_version: list.metadata.resource_version, items, body })
    }

    fn text(&self, item: &Item) -> &str {
        std::str::from_utf8(&self.body[item.span.clone()]).unwrap_or("{}")
    }
}

fn in_scope(item: &Item, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| item.namespace.as_deref() == Some(ns))
}

/// A list's JSON up to its first item: `{"kind":…,"apiVersion":…,"metadata":{…},"items":[`.
fn list_open(kind: &str, api_version: &str, resource_version: Option<&str>) -> Vec<u8> {
    let head = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version}}).to_string();
    let mut body = Vec::with_capacity(head.len() + 16);
    body.extend_from_slice(head.strip_suffix('}').unwrap_or(&head).as_bytes());
    body.extend_from_slice(b",\"items\":[");
    body
}

fn list_body(list: &Listed, namespace: Option<&str>, selector: Option<&Selector>) -> bytes::Bytes {
    let mut body = list_open(&list.kind, &list.api_version, list.resource_version.as_deref());
    let mut first = true;
    for item in list.items.iter().filter(|i| in_scope(i, namespace) && selector.is_none_or(|s| s.matches(&i.labels))) {
        if !std::mem::take(&mut first) {
            body.push(b',');
        }
        body.extend_from_slice(list.text(item).as_bytes());
    }
    body.extend_from_slice(b"]}");
    body.into()
}

/// The object as a GET returns it (with apiVersion and kind), or the API server's 404.
fn object_body(list: &Listed, collection: &str, namespace: Option<&str>, name: &str) -> (u16, bytes::Bytes) {
    let Some(item) = list.items.iter().find(|i| in_scope(i, namespace) && i.name == name) else {
        let resource = collection.rsplit('/').next().unwrap_or_default();
        let status = not_found(format!("{resource} \"{name}\" not found"), json!({"name": name, "kind": resource}));
        return (404, serde_json::to_vec(&status).unwrap_or_default().into());
    };
    let text = list.text(item);
    if item.has_kind {
        return (200, bytes::Bytes::copy_from_slice(text.as_bytes()));
    }
    // `{…}` of a list item without apiVersion and kind: both go in front.
    let kind = list.kind.strip_suffix("List").unwrap_or(&list.kind);
    let head = format!("{{\"apiVersion\":{},\"kind\":{}", json!(list.api_version), json!(kind));
    let rest = text.trim_start().strip_prefix('{').unwrap_or("}").trim_start();
    let separator = if rest.starts_with('}') { "" } else { "," };
    (200, format!("{head}{separator}{rest}").into_bytes().into())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams};

    use super::*;
    use crate::cluster::fake::FakeApi;

    /// An API server with two Deployments; a cluster-wide LIST of pods is forbidden (RBAC
    /// for one namespace only), the pods of namespace `x` are served.
    fn fake() -> FakeApi {
        FakeApi::new(|path| match path {
            "/apis/apps/v1/deployments" => Some((200, json!({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "7"}, "items": [
                {"metadata": {"name": "a", "namespace": "x", "labels": {"app": "a"}}},
                {"metadata": {"name": "b", "namespace": "y", "labels": {"app": "b"}}}]}))),
            "/api/v1/namespaces/x/pods" => Some((200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{"metadata": {"name": "p", "namespace": "x"}}]}))),
            "/api/v1/pods" => Some((403, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403, "message": "pods is forbidden"}))),
            _ => None,
        })
    }

    fn recorded(fake: &FakeApi, log: &AccessLog, reads: &(Arc<RunCache>, Freshness)) -> kube::Client {
        let target = fake.target();
        target.recorded("infra", log, false, Some(reads)).client
    }

    #[tokio::test]
    async fn one_list_serves_every_read_until_a_retry_asks_for_newer() {
        let (fake, log) = (fake(), AccessLog::default());
        let reads = (RunCache::new(), Freshness::default());
        let client = recorded(&fake, &log, &reads);
        let in_x: Api<Deployment> = Api::namespaced(client.clone(), "x");
        let in_y: Api<Deployment> = Api::namespaced(client.clone(), "y");
        assert_eq!(in_x.get("a").await.unwrap().metadata.name.as_deref(), Some("a"));
        assert!(in_x.get_opt("b").await.unwrap().is_none(), "b lives in y");
        assert_eq!(in_y.list(&ListParams::default()).await.unwrap().items.len(), 1);
        let all: Api<Deployment> = Api::all(client.clone());
        assert_eq!(all.list(&ListParams::default().labels("app in (a,b)")).await.unwrap().items.len(), 2);
        assert_eq!(fake.asked(), ["/apis/apps/v1/deployments"], "one LIST answered four reads");
        // Another unit of the same run shares the list.
        let other = recorded(&fake, &AccessLog::default(), &(reads.0.clone(), Freshness::default()));
        Api::<Deployment>::namespaced(other, "x").get("a").await.unwrap();
        assert_eq!(fake.asked().len(), 1);
        // A retry needs answers from its own attempt on: one new LIST.
        reads.1.require_since(Instant::now());
        in_y.get("b").await.unwrap();
        in_x.get("a").await.unwrap();
        assert_eq!(fake.asked().len(), 2);
        assert_eq!(log.requests().get("list apps/deployments on infra"), Some(&2), "{:?}", log.requests());
        assert!(log.entries().iter().any(|a| a.to_string() == "get apps/deployments on infra"), "reads are noted for the basis");
    }

    #[tokio::test]
    async fn a_long_list_is_fetched_in_pages_and_kept_without_field_owners() {
        let fake = FakeApi::with_query(|path, query| {
            let item = |name: &str| json!({"metadata": {"name": name, "namespace": "x", "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]}, "status": {"phase": "Running"}});
            match (path, query) {
                ("/api/v1/pods", Some(q)) if q.contains("continue=next%2Fpage") => Some((200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": [item("p2")]}))),
                ("/api/v1/pods", Some(q)) if q.contains("limit=") => Some((200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9", "continue": "next/page"}, "items": [item("p1")]}))),
                _ => None,
            }
        });
        let (log, reads) = (AccessLog::default(), (RunCache::new(), Freshness::default()));
        let pods: Api<Pod> = Api::namespaced(recorded(&fake, &log, &reads), "x");
        let names: Vec<String> = pods.list(&ListParams::default()).await.unwrap().items.into_iter().filter_map(|p| p.metadata.name).collect();
        assert_eq!(names, ["p1", "p2"]);
        let p2 = pods.get("p2").await.unwrap();
        assert_eq!(p2.metadata.managed_fields, None, "field owners are dropped");
        assert_eq!(p2.status.and_then(|s| s.phase).as_deref(), Some("Running"), "the rest is kept");
        assert_eq!(fake.asked(), ["/api/v1/pods", "/api/v1/pods"], "two pages, then every read from them");
        assert_eq!(log.requests().get("list pods on infra"), Some(&2));
    }

    #[tokio::test]
    async fn a_secret_is_read_once_by_name_and_crds_are_kept_without_schemas() {
        use k8s_openapi::api::core::v1::Secret;
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let fake = FakeApi::new(|path| match path {
            "/api/v1/namespaces/x/secrets/s1" => Some((200, json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s1", "namespace": "x"}}))),
            "/api/v1/namespaces/x/secrets" => Some((200, json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": []}))),
            CRDS => Some((200, json!({"kind": "CustomResourceDefinitionList", "apiVersion": "apiextensions.k8s.io/v1", "metadata": {}, "items": [
                {"metadata": {"name": "backups.velero.io"}, "spec": {"group": "velero.io", "scope": "Namespaced", "names": {"kind": "Backup", "plural": "backups"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]},
                 "status": {"conditions": [{"type": "Established", "status": "True"}]}}]}))),
            _ => None,
        });
        let log = AccessLog::default();
        let reads = (RunCache::new(), Freshness::default());
        let client = recorded(&fake, &log, &reads);
        let in_x: Api<Secret> = Api::namespaced(client.clone(), "x");
        for _ in 0..2 {
            assert!(in_x.get_opt("s1").await.unwrap().is_some());
            assert!(in_x.get_opt("s2").await.unwrap().is_none(), "the 404 is kept too");
        }
        in_x.list(&ListParams::default()).await.unwrap();
        assert_eq!(fake.asked(), ["/api/v1/namespaces/x/secrets/s1", "/api/v1/namespaces/x/secrets/s2", "/api/v1/namespaces/x/secrets"], "each Secret once; never listed by the cache");
        reads.1.require_since(Instant::now());
        in_x.get("s1").await.unwrap();
        assert_eq!(fake.asked().len(), 4, "a retry reads the Secret again");
        let crds: Api<CustomResourceDefinition> = Api::all(client);
        let crd = crds.get("backups.velero.io").await.unwrap();
        assert_eq!(crd.spec.versions[0].name, "v1");
        assert!(crd.spec.versions[0].schema.is_none(), "kept without its schema");
        assert_eq!(crd.status.and_then(|s| s.conditions).map(|c| c.len()), Some(1));
        assert!(crds.get_opt("schedules.velero.io").await.unwrap().is_none());
        assert_eq!(fake.asked().len(), 5, "one LIST answered both CRD reads");
    }

    #[tokio::test]
    async fn a_refused_list_sends_the_reads_as_they_are() {
        let (fake, log) = (fake(), AccessLog::default());
        let client = recorded(&fake, &log, &(RunCache::new(), Freshness::default()));
        let pods: Api<Pod> = Api::namespaced(client, "x");
        for _ in 0..2 {
            assert_eq!(pods.list(&ListParams::default()).await.unwrap().items.len(), 1);
        }
        assert_eq!(fake.asked(), ["/api/v1/pods", "/api/v1/namespaces/x/pods", "/api/v1/namespaces/x/pods"], "the refusal is remembered");
        assert_eq!(log.requests().values().sum::<u64>(), 3);
    }

    #[tokio::test]
    async fn a_group_the_cluster_does_not_serve_is_asked_once() {
        let (fake, log) = (fake(), AccessLog::default());
        let reads = (RunCache::new(), Freshness::default());
        for _ in 0..3 {
            let client = recorded(&fake, &log, &reads);
            let err = client.request_text(http::Request::get("/apis/multicluster.x-k8s.io/v1beta1").body(vec![]).unwrap()).await.unwrap_err();
            assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err}");
        }
        assert_eq!(fake.asked(), ["/apis", "/apis/multicluster.x-k8s.io/v1beta1"], "no aggregated discovery here; the 404 answers the later units");
    }

    /// An API server with aggregated discovery (velero.io v1 with Backups and their status)
    /// or, when `aggregated` is false, only the older documents.
    fn discovering(aggregated: bool) -> FakeApi {
        FakeApi::new(move |path| match path {
            "/apis" if aggregated => Some((200, json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
                {"metadata": {"name": "velero.io"}, "versions": [{"version": "v1", "resources": [
                    {"resource": "backups", "singularResource": "backup", "scope": "Namespaced", "responseKind": {"group": "velero.io", "version": "v1", "kind": "Backup"},
                     "verbs": ["get", "list"], "subresources": [{"subresource": "status", "responseKind": {"kind": "Backup"}, "verbs": ["get"]}]}]}]}]}))),
            "/apis" => Some((200, json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))),
            "/apis/velero.io/v1" if !aggregated => Some((200, json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "velero.io/v1",
                "resources": [{"name": "backups", "singularName": "backup", "namespaced": true, "kind": "Backup", "verbs": ["get", "list"]}]}))),
            _ => None,
        })
    }

    #[tokio::test]
    async fn group_documents_come_from_one_aggregated_discovery_per_cluster() {
        let gvk = |v: &str| kube::api::GroupVersionKind::gvk("velero.io", v, "Backup");
        let (fake, log) = (discovering(true), AccessLog::default());
        let reads = (RunCache::new(), Freshness::default());
        for _ in 0..2 {
            let client = recorded(&fake, &log, &reads);
            let (ar, caps) = kube::discovery::pinned_kind(&client, &gvk("v1")).await.unwrap();
            assert_eq!((ar.plural.as_str(), &caps.scope), ("backups", &kube::discovery::Scope::Namespaced));
            assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"), "{caps:?}");
            assert!(kube::discovery::pinned_kind(&client, &gvk("v2")).await.is_err(), "a version not served is the API server's 404");
            let group = kube::discovery::group(&client, "velero.io").await.unwrap();
            assert_eq!(group.preferred_version_or_latest(), "v1");
        }
        assert_eq!(fake.asked(), ["/apis"], "one request answered every discovery read");
        assert_eq!(log.requests().get("get /apis on infra"), Some(&1));

        // An API server without aggregated discovery: each document is fetched once.
        let fake = discovering(false);
        let client = recorded(&fake, &AccessLog::default(), &(RunCache::new(), Freshness::default()));
        for _ in 0..2 {
            kube::discovery::pinned_kind(&client, &gvk("v1")).await.unwrap();
        }
        assert_eq!(fake.asked(), ["/apis", "/apis/velero.io/v1"]);
    }

    fn list() -> Listed {
        let text = json!({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "42"}, "items": [
            {"metadata": {"name": "a", "namespace": "x", "labels": {"app": "a"}}},
            {"metadata": {"name": "b", "namespace": "y", "labels": {"app": "b"}}, "spec": {"replicas": 2}},
            {"metadata": {"name": "a", "namespace": "y"}},
        ]})
        .to_string();
        // As an API server writes it: whitespace between tokens.
        Listed::parse(text.replace(",\"", ", \"").replace(":{", ": {").into()).unwrap()
    }

    #[test]
    fn lists_filter_by_namespace_and_selector() {
        let body: Value = serde_json::from_slice(&list_body(&list(), Some("y"), None)).unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 2);
        let body: Value = serde_json::from_slice(&list_body(&list(), None, Selector::parse("app").as_ref())).unwrap();
        assert_eq!(body["items"].as_array().unwrap().len(), 2);
        assert_eq!(body["metadata"]["resourceVersion"], "42");
        assert_eq!(body["kind"], "DeploymentList");
    }

    #[test]
    fn objects_carry_their_kind_or_are_not_found() {
        let (code, body) = object_body(&list(), "/apis/apps/v1/deployments", Some("y"), "a");
        let obj: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((code, obj["kind"].as_str(), obj["apiVersion"].as_str(), obj.pointer("/metadata/namespace").and_then(Value::as_str)), (200, Some("Deployment"), Some("apps/v1"), Some("y")));
        let (_, body) = object_body(&list(), "/apis/apps/v1/deployments", Some("y"), "b");
        let obj: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((obj["kind"].as_str(), obj["spec"]["replicas"].as_i64()), (Some("Deployment"), Some(2)), "the item's own fields follow");
        let custom = Listed::parse(r#"{"kind": "BackupList", "apiVersion": "velero.io/v1", "items": [{"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "b", "namespace": "velero"}}]}"#.into()).unwrap();
        let (_, body) = object_body(&custom, "/apis/velero.io/v1/backups", Some("velero"), "b");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(text.matches("\"kind\"").count(), 1, "a custom resource names its kind once: {text}");
        let (code, body) = object_body(&list(), "/apis/apps/v1/deployments", Some("z"), "a");
        let status: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    }

    #[test]
    fn selectors_follow_the_api_servers_grammar() {
        let none = BTreeMap::new();
        assert!(Selector::parse("a!=b").unwrap().matches(&none), "!= matches objects without the key");
        assert!(Selector::parse("a notin (b)").unwrap().matches(&none));
        assert!(!Selector::parse("a in (b)").unwrap().matches(&none));
        assert!(Selector::parse("").unwrap().matches(&none), "the empty selector matches everything");
        for bad in ["a in b", "a=b c", "=b", "a in (b", "!"] {
            assert_eq!(Selector::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_plain_reads_are_cacheable() {
        assert_eq!(classify("POST", "/api/v1/namespaces", None), None);
        assert_eq!(classify("GET", "/api/v1/namespaces/x/status", None), None);
        assert_eq!(classify("GET", "/api/v1/nodes", Some("watch=true")), None);
        assert_eq!(classify("GET", "/api/v1/nodes", Some("limit=500")), None);
        assert_eq!(classify("GET", "/apis/apps/v1/namespaces/x/deployments/y", Some("resourceVersion=0")), None);
        assert_eq!(classify("GET", "/api/v1/namespaces/velero", None), Some(Read::Object { collection: "/api/v1/namespaces".into(), namespace: None, name: "velero".into() }));
        assert_eq!(classify("GET", "/api/v1/nodes", None), Some(Read::List { collection: "/api/v1/nodes".into(), namespace: None, selector: None }));
    }
}
