//! The GitOps repository: every YAML document in it, the clusters it defines, each
//! cluster's Flux variables, and each cluster's rendered manifests.
//!
//! ```
//! let repo = platform_acceptance::repo::GitopsRepo::load("fixtures/gitops").unwrap();
//! assert_eq!(repo.clusters(), ["apps", "infra"]);
//! let vars = repo.variables("apps").unwrap();
//! assert_eq!(vars.get("CLUSTER_ID"), Some("2"));
//! let rendered = repo.render("apps").unwrap();
//! assert!(rendered.objects.iter().any(|o| o.kind() == "HelmRelease"));
//! ```

pub mod envsubst;
pub mod generate;
pub mod helmfile;
mod flux;
pub mod patch;
pub mod replace;
mod render;
pub mod scope;

pub use flux::{FluxKustomization, SubstituteRef, VarSource, Variable, Variables};
pub use render::{normalize as normalize_path, Problem, RenderedObject, Rendered};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("repository {0} does not exist or is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("malformed YAML in {0}, which the cluster's Flux Kustomizations load as a manifest")]
    Malformed(Malformed),
    #[error("repository {0} has no clusters (expected kubernetes/clusters/<name>/ or clusters/<name>/ directories)")]
    NoClusters(PathBuf),
    #[error("cluster {cluster:?} is not defined in the repository (clusters: {known})")]
    UnknownCluster { cluster: String, known: String },
    #[error("cluster {0} has no Flux Kustomization with postBuild variables in its infrastructure.yaml")]
    NoVariables(String),
}

/// One YAML document of a file, as loaded (before any substitution).
#[derive(Debug, Clone)]
pub struct Document {
    /// Path relative to the repository root.
    pub file: PathBuf,
    /// 0-based index of the document within its file.
    pub index: usize,
    /// The document's own source text.
    pub raw: String,
    pub value: Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.value.get("apiVersion").and_then(Value::as_str).unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    }
    /// `file#index kind/name`, for messages.
    pub fn describe(&self) -> String {
        format!("{} ({}/{})", self.file.display(), self.kind(), self.name())
    }
}

/// A YAML file that could not be parsed: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// Path relative to the repository root.
    pub file: PathBuf,
    /// 1-based line of the error, when the parser says.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A loaded repository. Rendering per cluster is computed once and shared by all checks.
///
/// Loading never fails on file contents: a YAML file that does not parse is kept in
/// [`GitopsRepo::malformed`] and only matters where Flux would load it as a manifest
/// (then [`GitopsRepo::render`] of that cluster is an error naming `file:line`); files a
/// kustomization loads as data (`configMapGenerator`/`secretGenerator` `files:`/`envs:`,
/// patch files, `helmCharts` `valuesFile`) are never parsed as manifests.
#[derive(Debug)]
pub struct GitopsRepo {
    pub root: PathBuf,
    /// Directory holding `bases/`, `infrastructure/`, `workloads/`, `clusters/` (relative).
    pub kubernetes_dir: PathBuf,
    /// Every file (relative path), YAML or not.
    pub files: Vec<PathBuf>,
    /// Every YAML document of every file that is not loaded as data.
    pub documents: Vec<Document>,
    /// YAML files (not loaded as data) that do not parse.
    pub malformed: Vec<Malformed>,
    /// Files a kustomization loads as data (generator inputs, Helm values files).
    pub data_files: BTreeSet<PathBuf>,
    clusters: Vec<String>,
    rendered: Mutex<HashMap<String, render::Outcome>>,
    /// Variable values a target profile replaces, per cluster: (profile name, VAR → value).
    overrides: BTreeMap<String, (String, BTreeMap<String, String>)>,
}

const SKIP_DIRS: [&str; 3] = [".git", "node_modules", "target"];

/// Largest YAML file read as manifests (the largest CRD bundles are a few MiB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

impl GitopsRepo {
    /// Loads every file of the repository. Only a missing root or an unreadable
    /// directory is an error; malformed YAML is recorded in [`GitopsRepo::malformed`].
    pub fn load(root: impl AsRef<Path>) -> Result<Self, RepoError> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(RepoError::NotADirectory(root));
        }
        let mut files = vec![];
        let mut parsed: Vec<(PathBuf, Result<Vec<Document>, Malformed>)> = vec![];
        let walker = walkdir::WalkDir::new(&root).sort_by_file_name().into_iter().filter_entry(|e| {
            !(e.file_type().is_dir() && SKIP_DIRS.iter().any(|d| e.file_name() == *d))
        });
        for entry in walker {
            let entry = entry.map_err(|e| RepoError::Read {
                path: e.path().map(Path::to_path_buf).unwrap_or_else(|| root.clone()),
                source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk error")),
            })?;
            let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path()).to_path_buf();
            let kind = entry.file_type();
            if !kind.is_file() {
                // A FIFO, socket or device named like a manifest is never opened (reading a
                // FIFO blocks); it is kept as malformed so a rendering that needs it says so.
                if !kind.is_dir() && !kind.is_symlink() && is_yaml(&rel) {
                    parsed.push((rel.clone(), Err(Malformed { file: rel, line: None, message: "not a regular file (a FIFO, socket or device); not read".into() })));
                }
                continue;
            }
            if let Ok(meta) = entry.metadata()
                && meta.len() > MAX_FILE_BYTES
                && is_yaml(&rel)
            {
                let message = format!("{} MiB; manifests larger than {} MiB are not read", meta.len() >> 20, MAX_FILE_BYTES >> 20);
                parsed.push((rel.clone(), Err(Malformed { file: rel.clone(), line: None, message })));
                files.push(rel);
                continue;
            }
            if is_yaml(&rel) {
                let result = match std::fs::read_to_string(entry.path()) {
                    Ok(text) => parse_documents(&rel, &text),
                    Err(e) => Err(Malformed { file: rel.clone(), line: None, message: format!("cannot read: {e}") }),
                };
                parsed.push((rel.clone(), result));
            }
            files.push(rel);
        }
        let data_files = data_files(parsed.iter().filter_map(|(_, r)| r.as_ref().ok()).flatten());
        let mut documents = vec![];
        let mut malformed = vec![];
        for (file, result) in parsed {
            match result {
                _ if data_files.contains(&file) => {}
                Ok(docs) => documents.extend(docs),
                Err(m) => malformed.push(m),
            }
        }
        let kubernetes_dir = if root.join("kubernetes").is_dir() { PathBuf::from("kubernetes") } else { PathBuf::new() };
        let clusters_dir = root.join(&kubernetes_dir).join("clusters");
        let mut clusters: Vec<String> = std::fs::read_dir(&clusters_dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        clusters.sort();
        if clusters.is_empty() {
            return Err(RepoError::NoClusters(root));
        }
        Ok(GitopsRepo { root, kubernetes_dir, files, documents, malformed, data_files, clusters, rendered: Mutex::default(), overrides: BTreeMap::new() })
    }

    /// Cluster names, from the repository's `clusters/` directories.
    pub fn clusters(&self) -> &[String] {
        &self.clusters
    }

    /// Resolves a path as the planning document writes it (`bases/cilium/`,
    /// `clusters/infra/infrastructure.yaml`, `kubernetes/bases/...`, `talos/infra/`)
    /// to a path relative to the root, if it exists.
    /// A path that is absolute or leaves the root (`/etc`, `../x`) resolves to nothing.
    pub fn resolve(&self, doc_path: &str) -> Option<PathBuf> {
        let p = normalize_path(Path::new(doc_path.trim_start_matches("./").trim_end_matches('/')));
        if p.has_root() || !p.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            return None;
        }
        [p.clone(), self.kubernetes_dir.join(&p)]
            .into_iter()
            .find(|candidate| self.root.join(candidate).exists())
    }

    /// The cluster's entry directory relative to the root: `kubernetes/clusters/infra`.
    pub fn cluster_dir(&self, cluster: &str) -> PathBuf {
        self.kubernetes_dir.join("clusters").join(cluster)
    }

    /// Documents of one file (relative path, or as the planning document writes it).
    pub fn documents_in(&self, doc_path: &str) -> Vec<&Document> {
        let Some(path) = self.resolve(doc_path) else { return vec![] };
        self.documents.iter().filter(|d| d.file == path).collect()
    }

    /// Documents under a directory (recursively).
    pub fn documents_under(&self, dir: &Path) -> impl Iterator<Item = &Document> {
        let dir = dir.to_path_buf();
        self.documents.iter().filter(move |d| d.file.starts_with(&dir))
    }

    pub fn check_cluster(&self, cluster: &str) -> Result<(), RepoError> {
        if self.clusters.iter().any(|c| c == cluster) {
            Ok(())
        } else {
            Err(RepoError::UnknownCluster { cluster: cluster.into(), known: self.clusters.join(", ") })
        }
    }

    /// The cluster's Flux Kustomizations (from every YAML file in its entry directory).
    /// A malformed file there is an error: Flux applies the whole directory.
    pub fn flux_kustomizations(&self, cluster: &str) -> Result<Vec<FluxKustomization>, RepoError> {
        self.check_cluster(cluster)?;
        let dir = self.cluster_dir(cluster);
        if let Some(m) = self.malformed.iter().find(|m| m.file.starts_with(&dir)) {
            return Err(RepoError::Malformed(m.clone()));
        }
        Ok(flux::kustomizations(self, cluster))
    }

    /// The malformed file at `file`, if it is one.
    pub fn malformed_at(&self, file: &Path) -> Option<&Malformed> {
        self.malformed.iter().find(|m| m.file == file)
    }

    /// Replaces variables of `cluster` wherever one of its Flux Kustomizations substitutes
    /// them, as a target profile's deploy step does on that target (see
    /// `session::profile`). Variables no Kustomization defines are left alone; rendering
    /// done before is discarded.
    pub fn override_variables(&mut self, cluster: &str, profile: &str, values: BTreeMap<String, String>) {
        self.overrides.insert(cluster.to_string(), (profile.to_string(), values));
        self.rendered.get_mut().expect("render cache").clear();
    }

    /// The cluster's variables: those of the Flux Kustomization in `infrastructure.yaml`.
    pub fn variables(&self, cluster: &str) -> Result<Variables, RepoError> {
        let all = self.flux_kustomizations(cluster)?;
        let main = flux::main_kustomization(&all, &self.cluster_dir(cluster))
            .ok_or_else(|| RepoError::NoVariables(cluster.to_string()))?;
        Ok(flux::variables(self, cluster, main))
    }

    /// Every manifest Flux would apply to the cluster, variables substituted.
    /// Computed once per cluster and shared. An error when a file that rendering
    /// loads as a manifest is malformed (Flux fails that Kustomization).
    pub fn render(&self, cluster: &str) -> Result<Arc<Rendered>, RepoError> {
        let outcome = self.render_outcome(cluster)?;
        match outcome.malformed {
            Some(m) => Err(RepoError::Malformed(m)),
            None => Ok(outcome.rendered),
        }
    }

    fn render_outcome(&self, cluster: &str) -> Result<render::Outcome, RepoError> {
        if let Some(r) = self.rendered.lock().expect("render cache").get(cluster) {
            return Ok(r.clone());
        }
        let kustomizations = self.flux_kustomizations(cluster)?;
        let outcome = render::render(self, cluster, &kustomizations);
        self.rendered.lock().expect("render cache").insert(cluster.to_string(), outcome.clone());
        Ok(outcome)
    }

    /// The releases bootstrap helmfiles install outside Flux (see [`helmfile`]), and a
    /// note for each helmfile that cannot be read.
    pub fn helmfile_releases(&self) -> (Vec<helmfile::Release>, Vec<String>) {
        let mut releases = vec![];
        let mut notes = vec![];
        for file in self.files.iter().filter(|f| helmfile::is_helmfile(f)) {
            let parsed = self.read_text(file).ok_or_else(|| format!("{}: cannot be read", file.display())).and_then(|t| helmfile::parse(file, &t));
            match parsed {
                Ok(r) => releases.extend(r),
                Err(e) => notes.push(format!("helmfile not read: {e}")),
            }
        }
        (releases, notes)
    }

    /// Problems of the repository that decide no criterion, one line each: malformed YAML
    /// files that no cluster's Flux Kustomizations reach (Flux never parses them), and
    /// what the rendering does not model where the repository uses it.
    pub fn warnings(&self) -> Vec<String> {
        let mut reached: BTreeSet<PathBuf> = BTreeSet::new();
        let mut notes: BTreeSet<String> = BTreeSet::new();
        for c in &self.clusters {
            let dir = self.cluster_dir(c);
            reached.extend(self.malformed.iter().filter(|m| m.file.starts_with(&dir)).map(|m| m.file.clone()));
            if let Ok(o) = self.render_outcome(c) {
                reached.extend(o.reached.iter().cloned());
                notes.extend(o.notes.iter().cloned());
            }
        }
        self.malformed
            .iter()
            .filter(|m| !reached.contains(&m.file))
            .map(|m| format!("malformed YAML in {m} (no Flux Kustomization of any cluster reaches it, so Flux never parses it)"))
            .chain(notes)
            .chain(self.helmfile_releases().1)
            .collect()
    }

    /// Every file relative path under a directory.
    pub fn files_under<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a PathBuf> + 'a {
        self.files.iter().filter(move |f| f.starts_with(dir))
    }

    pub fn read_text(&self, rel: &Path) -> Option<String> {
        std::fs::read_to_string(self.root.join(rel)).ok()
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Files kustomize loads as data rather than as manifests: what the kustomization files
/// among `docs` name in `configMapGenerator`/`secretGenerator` (`files:` as `path` or
/// `key=path`, `envs:`, `env:`), patch files (`patches`/`patchesJson6902` `path:`,
/// `patchesStrategicMerge` entries), `replacements` `path:` files and `helmCharts`
/// (`valuesFile`), relative to the root.
fn data_files<'a>(docs: impl Iterator<Item = &'a Document>) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for d in docs.filter(|d| render::is_kustomization_file(&d.file)) {
        let dir = d.file.parent().unwrap_or(Path::new(""));
        let mut add = |entry: &str| {
            let path = entry.rsplit_once('=').map_or(entry, |(_, p)| p).trim();
            if !path.is_empty() {
                out.insert(render::normalize(&dir.join(path)));
            }
        };
        for generator in ["configMapGenerator", "secretGenerator"] {
            for g in d.value.get(generator).and_then(Value::as_array).into_iter().flatten() {
                for key in ["files", "envs"] {
                    g.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).for_each(&mut add);
                }
                if let Some(env) = g.get("env").and_then(Value::as_str) {
                    add(env);
                }
            }
        }
        // Patch files are partial objects, applied to manifests, not manifests themselves.
        for p in ["patches", "patchesJson6902"].iter().flat_map(|f| d.value.get(*f).and_then(Value::as_array).into_iter().flatten()) {
            if let Some(path) = p.get("path").and_then(Value::as_str) {
                add(path);
            }
        }
        for p in d.value.get("patchesStrategicMerge").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !p.contains('\n') && !p.contains(": ") {
                add(p);
            }
        }
        for r in d.value.get("replacements").and_then(Value::as_array).into_iter().flatten() {
            if let Some(path) = r.get("path").and_then(Value::as_str) {
                add(path);
            }
        }
        for chart in d.value.get("helmCharts").and_then(Value::as_array).into_iter().flatten() {
            if let Some(values) = chart.get("valuesFile").and_then(Value::as_str) {
                add(values);
            }
        }
    }
    out
}

/// Parses one YAML document as kustomize reads it: merge keys (`<<: *anchor`) are merged
/// into the map that holds them, and a plain (unquoted) `key: 0755` is the octal number
/// YAML 1.1 and Go's YAML libraries read (493), not the text YAML 1.2 readers keep.
pub(crate) fn parse_yaml(text: &str) -> Result<Value, serde_yaml_ng::Error> {
    let mut value: Value = if text.contains("<<") {
        let mut v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)?;
        v.apply_merge()?;
        serde_json::to_value(v).map_err(<serde_yaml_ng::Error as serde::de::Error>::custom)?
    } else {
        serde_yaml_ng::from_str(text)?
    };
    let octal = plain_octals(text);
    if !octal.is_empty() {
        octal_numbers(&mut value, &octal);
    }
    Ok(value)
}

static PLAIN_OCTAL: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"(?m)^[ \t]*(?:- )?([A-Za-z0-9_.-]+):[ \t]+(0[0-7]+)[ \t]*(?:#.*)?$").expect("static regex"));

/// `(key, digits)` of every line that writes an unquoted octal value.
fn plain_octals(text: &str) -> BTreeSet<(String, String)> {
    if !text.contains(": 0") {
        return BTreeSet::new();
    }
    PLAIN_OCTAL.captures_iter(text).map(|c| (c[1].to_string(), c[2].to_string())).collect()
}

/// Turns the string values of those keys back into the numbers they were written as.
fn octal_numbers(v: &mut Value, octal: &BTreeSet<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if let Value::String(s) = x
                    && octal.contains(&(k.clone(), s.clone()))
                    && let Ok(n) = i64::from_str_radix(&s[1..], 8)
                {
                    *x = Value::from(n);
                } else {
                    octal_numbers(x, octal);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| octal_numbers(x, octal)),
        _ => {}
    }
}

/// Splits a file into documents at `---` lines and parses each one.
fn parse_documents(file: &Path, text: &str) -> Result<Vec<Document>, Malformed> {
    let mut docs = vec![];
    let mut chunk = String::new();
    let mut chunk_line = 1usize;
    let mut index = 0usize;
    let mut flush = |chunk: &mut String, start_line: usize, docs: &mut Vec<Document>| -> Result<(), Malformed> {
        let raw = std::mem::take(chunk);
        let value: Value = parse_yaml(&raw).map_err(|e| Malformed {
            file: file.to_path_buf(),
            line: Some(e.location().map_or(start_line, |l| l.line() + start_line - 1)),
            message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
        })?;
        if !value.is_null() {
            docs.push(Document { file: file.to_path_buf(), index, raw, value });
            index += 1;
        }
        Ok(())
    };
    for (n, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            flush(&mut chunk, chunk_line, &mut docs)?;
            chunk_line = n + 2;
            continue;
        }
        chunk.push_str(line);
        chunk.push('\n');
    }
    flush(&mut chunk, chunk_line, &mut docs)?;
    Ok(docs)
}

/// A string field by JSON pointer, for terse lookups in checks.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Values of a string map (ConfigMap `data`, `postBuild.substitute`) as owned strings;
/// numbers and booleans are rendered as text, the way Flux reads them.
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect())
        .unwrap_or_default()
}

pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
