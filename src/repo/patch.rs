//! kustomize patches as Flux and kustomize apply them to built objects: strategic-merge
//! patches (maps merged, lists of named items merged by `name`, other lists replaced) and
//! JSON 6902 operations (`add`, `replace`, `remove`), each with its target selector.
//!
//! ```
//! use platform_acceptance::repo::patch::Patch;
//! let p = Patch::parse("kind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n", None).unwrap();
//! let mut obj = serde_json::json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1, "paused": false}});
//! assert!(p.apply(&mut obj).unwrap());
//! assert_eq!(obj["spec"], serde_json::json!({"replicas": 3, "paused": false}));
//! ```

use regex::Regex;
use serde_json::Value;

/// Which objects a patch applies to (kustomize's `target`): `name` and `namespace` are
/// regular expressions matched against the whole value; selectors are `key=value` lists.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

impl Target {
    /// From a `target:` map.
    pub fn from_value(v: &Value) -> Target {
        let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        Target {
            group: s("group"),
            version: s("version"),
            kind: s("kind"),
            name: s("name"),
            namespace: s("namespace"),
            label_selector: s("labelSelector"),
            annotation_selector: s("annotationSelector"),
        }
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let at = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
        let (group, version) = group_version(obj);
        let exact = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let regex = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| Regex::new(&format!("^(?:{w})$")).is_ok_and(|r| r.is_match(have)))
        };
        exact(&self.group, group)
            && exact(&self.version, version)
            && exact(&self.kind, at("/kind"))
            && regex(&self.name, at("/metadata/name"))
            && regex(&self.namespace, at("/metadata/namespace"))
            && selector(&self.label_selector, obj.pointer("/metadata/labels"))
            && selector(&self.annotation_selector, obj.pointer("/metadata/annotations"))
    }
}

/// An object's API group and version (`apps/v1` → `apps`, `v1`; core `v1` → ``, `v1`).
pub(super) fn group_version(obj: &Value) -> (&str, &str) {
    let api_version = obj.pointer("/apiVersion").and_then(Value::as_str).unwrap_or("");
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// `a=b,c=d` (also `a==b`, `a!=b`, bare `a` for "has the key") against a string map.
fn selector(sel: &Option<String>, map: Option<&Value>) -> bool {
    let Some(sel) = sel else { return true };
    sel.split(',').map(str::trim).filter(|t| !t.is_empty()).all(|term| {
        let get = |k: &str| map.and_then(|m| m.get(k.trim())).and_then(Value::as_str);
        if let Some((k, v)) = term.split_once("!=") {
            get(k) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            get(k) == Some(v.trim())
        } else {
            get(term).is_some()
        }
    })
}

#[derive(Debug, Clone)]
pub enum Body {
    /// A strategic-merge patch: a partial object.
    Merge(Value),
    /// JSON 6902 operations.
    Json(Vec<Value>),
}

#[derive(Debug, Clone)]
pub struct Patch {
    pub target: Option<Target>,
    pub body: Body,
}

impl Patch {
    /// Parses patch text (YAML or JSON): a list is JSON 6902, a map a strategic-merge patch.
    pub fn parse(text: &str, target: Option<Target>) -> Result<Patch, String> {
        let v: Value = super::parse_yaml(text).map_err(|e| e.to_string())?;
        match v {
            Value::Array(ops) => Ok(Patch { target, body: Body::Json(ops) }),
            Value::Object(_) => Ok(Patch { target, body: Body::Merge(v) }),
            other => Err(format!("a patch is a map or a list of operations, not {other}")),
        }
    }

    /// Applies the patch when `obj` is its target; `Ok(true)` when it applied.
    /// A strategic-merge patch without a target applies to the object of its kind and name.
    pub fn apply(&self, obj: &mut Value) -> Result<bool, String> {
        let applies = match (&self.target, &self.body) {
            (Some(t), _) => t.matches(obj),
            (None, Body::Merge(p)) => {
                let same = |ptr: &str| p.pointer(ptr).is_none_or(|v| Some(v) == obj.pointer(ptr));
                p.pointer("/kind") == obj.pointer("/kind") && same("/metadata/name") && same("/metadata/namespace")
            }
            (None, Body::Json(_)) => false,
        };
        if !applies {
            return Ok(false);
        }
        match &self.body {
            Body::Merge(p) => {
                let mut p = p.clone();
                // A targeted patch's own kind and name are placeholders (often "not-used").
                if self.target.is_some()
                    && let Some(meta) = p.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    meta.remove("name");
                    meta.remove("namespace");
                }
                merge(obj, &p);
                Ok(true)
            }
            Body::Json(ops) => ops.iter().try_for_each(|op| json_op(obj, op)).map(|()| true),
        }
    }
}

/// Strategic merge, reduced: maps merge key by key, `null` deletes, lists whose items all
/// have a `name` merge item by item, other lists are replaced.
fn merge(obj: &mut Value, patch: &Value) {
    match (obj, patch) {
        (Value::Object(o), Value::Object(p)) => {
            for (k, pv) in p {
                if pv.is_null() {
                    o.remove(k);
                } else if let Some(ov) = o.get_mut(k) {
                    merge(ov, pv);
                } else {
                    o.insert(k.clone(), pv.clone());
                }
            }
        }
        (Value::Array(o), Value::Array(p)) if named(o) && named(p) => {
            for item in p {
                match o.iter_mut().find(|x| x.get("name") == item.get("name")) {
                    Some(existing) => merge(existing, item),
                    None => o.push(item.clone()),
                }
            }
        }
        (o, p) => *o = p.clone(),
    }
}

fn named(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i.get("name").is_some_and(Value::is_string))
}

fn json_op(obj: &mut Value, op: &Value) -> Result<(), String> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
    let path = op.get("path").and_then(Value::as_str).ok_or("operation without path")?;
    let (parent, last) = path.rsplit_once('/').ok_or_else(|| format!("invalid path {path:?}"))?;
    let last = last.replace("~1", "/").replace("~0", "~");
    let missing = || format!("{kind} {path}: no such path");
    match kind {
        "add" | "replace" => {
            let value = op.get("value").cloned().unwrap_or(Value::Null);
            match obj.pointer_mut(parent).ok_or_else(missing)? {
                Value::Object(m) => {
                    if kind == "replace" && !m.contains_key(&last) {
                        return Err(missing());
                    }
                    m.insert(last, value);
                }
                Value::Array(a) if last == "-" && kind == "add" => a.push(value),
                Value::Array(a) => {
                    let i: usize = last.parse().map_err(|_| missing())?;
                    match kind {
                        "add" if i <= a.len() => a.insert(i, value),
                        "replace" if i < a.len() => a[i] = value,
                        _ => return Err(missing()),
                    }
                }
                _ => return Err(missing()),
            }
        }
        "remove" => match obj.pointer_mut(parent).ok_or_else(missing)? {
            Value::Object(m) => {
                m.remove(&last).ok_or_else(missing)?;
            }
            Value::Array(a) => {
                let i: usize = last.parse().map_err(|_| missing())?;
                if i >= a.len() {
                    return Err(missing());
                }
                a.remove(i);
            }
            _ => return Err(missing()),
        },
        other => return Err(format!("operation {other:?} is not supported")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targeted_merge_patch_applies_to_matching_objects_only() {
        let p = Patch::parse(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: not-used\nspec:\n  postBuild:\n    substitute:\n      CLUSTER: main\n",
            Some(Target { group: Some("kustomize.toolkit.fluxcd.io".into()), kind: Some("Kustomization".into()), ..Target::default() }),
        )
        .unwrap();
        let mut ks = json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "app"}, "spec": {"path": "./a"}});
        assert!(p.apply(&mut ks).unwrap());
        assert_eq!(ks["metadata"]["name"], "app", "the placeholder name is not merged");
        assert_eq!(ks["spec"]["postBuild"]["substitute"]["CLUSTER"], "main");
        let mut other = json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "metadata": {"name": "x"}});
        assert!(!p.apply(&mut other).unwrap());
        assert!(other.get("spec").is_none());
    }

    #[test]
    fn named_lists_merge_by_name_and_other_lists_are_replaced() {
        let p = Patch::parse("kind: Deployment\nmetadata:\n  name: web\nspec:\n  containers:\n    - name: app\n      image: app:2\n  args: [b]\n", None).unwrap();
        let mut d = json!({"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": "app:1", "ports": [80]}, {"name": "side", "image": "s"}], "args": ["a"]}});
        p.apply(&mut d).unwrap();
        assert_eq!(d["spec"]["containers"][0], json!({"name": "app", "image": "app:2", "ports": [80]}));
        assert_eq!(d["spec"]["containers"][1]["name"], "side");
        assert_eq!(d["spec"]["args"], json!(["b"]));
        let mut other = json!({"kind": "Deployment", "metadata": {"name": "api"}, "spec": {}});
        assert!(!p.apply(&mut other).unwrap(), "an untargeted patch applies to its own kind and name only");
    }

    #[test]
    fn json6902_operations_and_a_missing_path() {
        let t = Some(Target { kind: Some("Cluster".into()), name: Some("pg-.*".into()), ..Target::default() });
        let p = Patch::parse("- op: replace\n  path: /spec/instances\n  value: 3\n- op: add\n  path: /spec/args/-\n  value: x\n- op: remove\n  path: /spec/bootstrap\n", t.clone()).unwrap();
        let mut c = json!({"kind": "Cluster", "metadata": {"name": "pg-main"}, "spec": {"instances": 1, "args": [], "bootstrap": {}}});
        assert!(p.apply(&mut c).unwrap());
        assert_eq!(c["spec"], json!({"instances": 3, "args": ["x"]}));
        let mut other = json!({"kind": "Cluster", "metadata": {"name": "main"}, "spec": {}});
        assert!(!p.apply(&mut other).unwrap(), "name is matched as a whole");
        let bad = Patch::parse("- op: replace\n  path: /spec/nothing\n  value: 1\n", t).unwrap();
        let err = bad.apply(&mut json!({"kind": "Cluster", "metadata": {"name": "pg-a"}, "spec": {}})).unwrap_err();
        assert_eq!(err, "replace /spec/nothing: no such path");
    }
}
