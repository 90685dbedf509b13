//! kustomize `replacements`: copy one field of one built object (the source) into fields
//! of the objects a target selects, as kustomize's replacement transformer does after
//! every other transformer of the same kustomization.
//!
//! Supported as kustomize documents them: `source` (`group`, `version`, `kind`, `name`,
//! `namespace`, `fieldPath` defaulting to `metadata.name`, `options.delimiter`/`index`)
//! or `sourceValue`; `targets` with `select` and `reject` (group/version/kind exact,
//! name/namespace as regular expressions, `labelSelector`/`annotationSelector`),
//! `fieldPaths` (dotted, `[key=value]` list items, numeric indexes, `*` for every item),
//! `options.create`, `options.delimiter`/`index`. Field paths into structured data held
//! in a string (JSON inside a ConfigMap value) are not supported: that is an error
//! naming the path.
//!
//! ```
//! use platform_acceptance::repo::replace::Replacement;
//! let r = Replacement::parse(&serde_json::json!({
//!     "source": {"kind": "Namespace"},
//!     "targets": [{"select": {"kind": "Kustomization"}, "fieldPaths": ["spec.targetNamespace"], "options": {"create": true}}],
//! })).unwrap();
//! let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "media"}});
//! let value = r.source_value(&[ns]).unwrap();
//! let mut ks = serde_json::json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "app"}, "spec": {}});
//! assert!(r.apply(&mut ks, &value).unwrap());
//! assert_eq!(ks["spec"]["targetNamespace"], "media");
//! ```

use serde_json::Value;

use super::patch::Target;

/// One entry of a kustomization's `replacements:` (inline, or one of a `path:` file's).
#[derive(Debug, Clone)]
pub struct Replacement {
    source: Source,
    targets: Vec<TargetSpec>,
}

#[derive(Debug, Clone)]
enum Source {
    Object { select: [Option<String>; 5], field_path: String, delimiter: Option<(String, i64)> },
    Value(String),
}

#[derive(Debug, Clone)]
struct TargetSpec {
    select: Target,
    reject: Vec<Target>,
    field_paths: Vec<String>,
    create: bool,
    delimiter: Option<(String, i64)>,
}

const DEFAULT_FIELD_PATH: &str = "metadata.name";

fn delimiter(options: Option<&Value>) -> Option<(String, i64)> {
    let o = options?;
    let d = o.get("delimiter").and_then(Value::as_str).filter(|d| !d.is_empty())?;
    Some((d.to_string(), o.get("index").and_then(Value::as_i64).unwrap_or(0)))
}

impl Replacement {
    /// From one `replacements:` entry (not a `path:` entry: read the file and parse each).
    pub fn parse(v: &Value) -> Result<Replacement, String> {
        let targets = v.get("targets").and_then(Value::as_array).filter(|t| !t.is_empty());
        let source = match (v.get("source"), v.get("sourceValue").and_then(Value::as_str)) {
            (Some(_), Some(_)) => return Err("value and resource selectors are mutually exclusive".into()),
            (None, Some(value)) => Source::Value(value.to_string()),
            (Some(s), None) => {
                let f = |k: &str| s.get(k).and_then(Value::as_str).filter(|x| !x.is_empty()).map(String::from);
                Source::Object {
                    select: [f("group"), f("version"), f("kind"), f("name"), f("namespace")],
                    field_path: f("fieldPath").unwrap_or_else(|| DEFAULT_FIELD_PATH.into()),
                    delimiter: delimiter(s.get("options")),
                }
            }
            (None, None) => return Err("replacements must specify a source and at least one target".into()),
        };
        let Some(targets) = targets else { return Err("replacements must specify a source and at least one target".into()) };
        let mut out = vec![];
        for t in targets {
            let Some(select) = t.get("select") else { return Err("target must specify resources to select".into()) };
            let mut field_paths: Vec<String> = t.get("fieldPaths").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
            if field_paths.is_empty() {
                field_paths.push(DEFAULT_FIELD_PATH.into());
            }
            out.push(TargetSpec {
                select: Target::from_value(select),
                reject: t.get("reject").and_then(Value::as_array).into_iter().flatten().map(Target::from_value).collect(),
                field_paths,
                create: t.pointer("/options/create").and_then(Value::as_bool).unwrap_or(false),
                delimiter: delimiter(t.get("options")),
            });
        }
        Ok(Replacement { source, targets: out })
    }

    /// The value to copy: the source field of the one object `objects` the source selects.
    pub fn source_value(&self, objects: &[Value]) -> Result<Value, String> {
        let (select, field_path, delim) = match &self.source {
            Source::Value(v) => return Ok(Value::String(v.clone())),
            Source::Object { select, field_path, delimiter } => (select, field_path, delimiter),
        };
        let shown = select_text(select);
        let mut matches = objects.iter().filter(|o| selected_by(o, select));
        let (Some(source), None) = (matches.next(), matches.next()) else {
            let n = objects.iter().filter(|o| selected_by(o, select)).count();
            return Err(if n == 0 { format!("nothing selected by {shown}") } else { format!("multiple matches for selector {shown}") });
        };
        let found = lookup(source, &split_path(field_path)).into_iter().next();
        let value = match found {
            Some(v) if !is_empty(v) => v.clone(),
            _ => return Err(format!("fieldPath `{field_path}` is missing for replacement source {shown}")),
        };
        match delim {
            None => Ok(value),
            Some((d, index)) => {
                let text = scalar_text(&value).ok_or("delimiter option can only be used with scalar nodes")?;
                let parts: Vec<&str> = text.split(d.as_str()).collect();
                usize::try_from(*index)
                    .ok()
                    .and_then(|i| parts.get(i))
                    .map(|p| Value::String(p.to_string()))
                    .ok_or_else(|| format!("options.index {index} is out of bounds for value {text}"))
            }
        }
    }

    /// Writes `value` into every field path of every target that selects `obj`; whether
    /// any target selected it.
    pub fn apply(&self, obj: &mut Value, value: &Value) -> Result<bool, String> {
        let mut selected = false;
        for t in &self.targets {
            if !t.select.matches(obj) || t.reject.iter().any(|r| r.matches(obj)) {
                continue;
            }
            selected = true;
            for fp in &t.field_paths {
                let path = split_path(fp);
                let fields = lookup_mut(obj, &path, t.create.then_some(value));
                if fields.is_empty() {
                    let verb = if t.create { "find or create" } else { "find" };
                    return Err(format!("unable to {verb} field {fp:?} in replacement target"));
                }
                for field in fields {
                    set(field, value, t.delimiter.as_ref())?;
                }
            }
        }
        Ok(selected)
    }
}

/// `kind.version.group/name.namespace` as kustomize prints a selector, `[noKind]` etc. for empty parts.
fn select_text(s: &[Option<String>; 5]) -> String {
    let p = |i: usize, none: &str| s[i].clone().unwrap_or_else(|| none.to_string());
    format!("{}.{}.{}/{}.{}", p(2, "[noKind]"), p(1, "[noVer]"), p(0, "[noGrp]"), p(3, "[noName]"), p(4, "[noNs]"))
}

/// kustomize's `ResId.IsSelectedBy`: every part the selector names matches exactly.
fn selected_by(obj: &Value, s: &[Option<String>; 5]) -> bool {
    let at = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (group, version) = super::patch::group_version(obj);
    let have = [group, version, at("/kind"), at("/metadata/name"), at("/metadata/namespace")];
    s.iter().zip(have).all(|(want, have)| want.as_deref().is_none_or(|w| w == have))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// A scalar's text ([`super::scalar_text`]); `None` for null, lists and maps.
fn scalar_text(v: &Value) -> Option<String> {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)).then(|| super::scalar_text(v))
}

/// Splits a field path at dots outside `[...]` (kyaml's `SmarterPathSplitter`).
fn split_path(path: &str) -> Vec<String> {
    let mut out = vec![];
    let mut part = String::new();
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                out.push(std::mem::take(&mut part));
                continue;
            }
            _ => {}
        }
        part.push(c);
    }
    out.push(part);
    out
}

/// `[key=value]` as (key, value).
fn item_selector(part: &str) -> Option<(&str, &str)> {
    part.strip_prefix('[')?.strip_suffix(']')?.split_once('=')
}

fn matches_item(item: &Value, key: &str, want: &str) -> bool {
    item.get(key).and_then(scalar_text).is_some_and(|v| v == want)
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let Some((part, rest)) = path.split_first() else { return vec![v] };
    match v {
        Value::Array(items) => {
            if part == "*" {
                items.iter().flat_map(|i| lookup(i, rest)).collect()
            } else if let Some((k, want)) = item_selector(part) {
                items.iter().filter(|i| matches_item(i, k, want)).flat_map(|i| lookup(i, rest)).collect()
            } else if let Ok(i) = part.parse::<usize>() {
                items.get(i).map(|i| lookup(i, rest)).unwrap_or_default()
            } else {
                vec![]
            }
        }
        Value::Object(m) => m.get(part.as_str()).map(|x| lookup(x, rest)).unwrap_or_default(),
        _ => vec![],
    }
}

/// The fields at `path`, created (maps for inner parts, `[key=value]` items appended)
/// when `create` holds the value to be written.
fn lookup_mut<'a>(v: &'a mut Value, path: &[String], create: Option<&Value>) -> Vec<&'a mut Value> {
    let Some((part, rest)) = path.split_first() else { return vec![v] };
    let filler = |rest: &[String]| if rest.is_empty() { create.cloned().unwrap_or(Value::Null) } else { Value::Object(Default::default()) };
    match v {
        Value::Array(items) => {
            if part == "*" {
                return items.iter_mut().flat_map(|i| lookup_mut(i, rest, create)).collect();
            }
            if let Some((k, want)) = item_selector(part) {
                if create.is_some() && !items.iter().any(|i| matches_item(i, k, want)) {
                    items.push(serde_json::json!({ k: want }));
                }
                return items.iter_mut().filter(|i| matches_item(i, k, want)).flat_map(|i| lookup_mut(i, rest, create)).collect();
            }
            match part.parse::<usize>() {
                Ok(i) => items.get_mut(i).map(|i| lookup_mut(i, rest, create)).unwrap_or_default(),
                Err(_) => vec![],
            }
        }
        Value::Object(m) => {
            if !m.contains_key(part.as_str()) {
                if create.is_none() {
                    return vec![];
                }
                m.insert(part.clone(), filler(rest));
            }
            m.get_mut(part.as_str()).map(|x| lookup_mut(x, rest, create)).unwrap_or_default()
        }
        Value::Null if create.is_some() => {
            *v = Value::Object(Default::default());
            lookup_mut(v, path, create)
        }
        _ => vec![],
    }
}

/// Writes the value into one field: a scalar field keeps its type where the text allows
/// (kustomize keeps the target node's tag); with a delimiter, one part of the field's text.
fn set(field: &mut Value, value: &Value, delim: Option<&(String, i64)>) -> Result<(), String> {
    let mut value = value.clone();
    if let Some((d, index)) = delim {
        let current = scalar_text(field).ok_or("delimiter option can only be used with scalar nodes")?;
        let v = scalar_text(&value).unwrap_or_default();
        let mut parts: Vec<String> = current.split(d.as_str()).map(String::from).collect();
        match usize::try_from(*index) {
            Err(_) => parts.insert(0, v),
            Ok(i) if i >= parts.len() => parts.push(v),
            Ok(i) => parts[i] = v,
        }
        value = Value::String(parts.join(d));
    }
    *field = match (&*field, scalar_text(&value)) {
        (Value::Number(_), Some(t)) => t.parse::<i64>().map(Value::from).or_else(|_| t.parse::<f64>().map(Value::from)).unwrap_or(Value::String(t)),
        (Value::Bool(_), Some(t)) if t == "true" || t == "false" => Value::Bool(t == "true"),
        (Value::String(_), Some(t)) => Value::String(t),
        _ => value,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(v: Value) -> Replacement {
        Replacement::parse(&v).unwrap()
    }

    #[test]
    fn source_must_select_exactly_one_object() {
        let rep = r(json!({"source": {"kind": "ConfigMap", "fieldPath": "data.a"}, "targets": [{"select": {"kind": "Secret"}}]}));
        assert_eq!(rep.source_value(&[]).unwrap_err(), "nothing selected by ConfigMap.[noVer].[noGrp]/[noName].[noNs]");
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        assert!(rep.source_value(&[cm.clone(), cm.clone()]).unwrap_err().starts_with("multiple matches for selector"));
        assert_eq!(rep.source_value(&[cm]).unwrap(), json!("1"));
    }

    #[test]
    fn list_items_by_key_indexes_and_delimiters() {
        let dep = json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "proxy:1"}, {"name": "app", "image": "registry/app:1.0"}]}}}});
        let rep = r(json!({
            "source": {"kind": "Deployment", "fieldPath": "spec.template.spec.containers.[name=app].image", "options": {"delimiter": ":", "index": 1}},
            "targets": [{"select": {"kind": "ConfigMap"}, "fieldPaths": ["data.version"], "options": {"create": true}},
                        {"select": {"kind": "Deployment"}, "fieldPaths": ["spec.template.spec.containers.0.image"], "options": {"delimiter": ":", "index": 1}}],
        }));
        let value = rep.source_value(std::slice::from_ref(&dep)).unwrap();
        assert_eq!(value, json!("1.0"));
        let mut cm = json!({"kind": "ConfigMap", "metadata": {"name": "v"}});
        assert!(rep.apply(&mut cm, &value).unwrap());
        assert_eq!(cm["data"]["version"], "1.0");
        let mut d = dep.clone();
        rep.apply(&mut d, &value).unwrap();
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "proxy:1.0");
    }

    #[test]
    fn a_missing_target_field_is_an_error_unless_created() {
        let rep = r(json!({"sourceValue": "3", "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.replicas"]}]}));
        let mut d = json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {}});
        assert_eq!(rep.apply(&mut d, &json!("3")).unwrap_err(), "unable to find field \"spec.replicas\" in replacement target");
        let mut d = json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
        rep.apply(&mut d, &json!("3")).unwrap();
        assert_eq!(d["spec"]["replicas"], json!(3), "the target keeps its type");
    }

    #[test]
    fn rejected_and_unselected_objects_are_left_alone() {
        let rep = r(json!({"sourceValue": "x", "targets": [{"select": {"kind": "ConfigMap"}, "reject": [{"name": "keep.*"}], "fieldPaths": ["data.a"]}]}));
        let mut keep = json!({"kind": "ConfigMap", "metadata": {"name": "keep-me"}, "data": {"a": "1"}});
        assert!(!rep.apply(&mut keep, &json!("x")).unwrap());
        assert_eq!(keep["data"]["a"], "1");
        let mut other = json!({"kind": "Secret", "metadata": {"name": "s"}});
        assert!(!rep.apply(&mut other, &json!("x")).unwrap());
    }
}
