//! kustomize's `configMapGenerator` and `secretGenerator`: the ConfigMaps and Secrets a
//! kustomization file generates from `literals`, `files` and `envs`, with
//! `generatorOptions` (labels, annotations, `immutable`, `disableNameSuffixHash`) and
//! each generator's own `options` on top.
//!
//! The name suffix hash is kustomize's (sha256 of the object's name, data and kind,
//! encoded as kustomize encodes it); kustomize also rewrites references to the generated
//! name in other objects of the build, which is not modelled here: the caller reports it.
//! `behavior: merge` and `behavior: replace` (which edit a generated object of a base) are
//! not supported either; they are an error naming the generator.
//!
//! ```
//! let g = serde_json::json!({"name": "app", "literals": ["mode=fast"]});
//! let opts = serde_json::json!({"disableNameSuffixHash": true});
//! let cm = platform_acceptance::repo::generate::generate("ConfigMap", &g, Some(&opts), &|_| None).unwrap();
//! assert_eq!(cm.value["metadata"]["name"], "app");
//! assert_eq!(cm.value["data"]["mode"], "fast");
//! ```

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A generated ConfigMap or Secret.
#[derive(Debug, Clone)]
pub struct Generated {
    pub value: Value,
    /// Whether the name carries kustomize's content hash (references are then rewritten
    /// by kustomize, not here).
    pub hashed: bool,
}

/// File contents a generator reads, by the path as written (relative to the kustomization).
pub type ReadFile<'a> = dyn Fn(&str) -> Option<Vec<u8>> + 'a;

/// Generates one object of `kind` (`ConfigMap` or `Secret`) from one generator entry.
pub fn generate(kind: &str, g: &Value, global: Option<&Value>, read: &ReadFile<'_>) -> Result<Generated, String> {
    let name = g.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()).ok_or("a generator needs a name")?;
    if let Some(b) = g.get("behavior").and_then(Value::as_str).filter(|b| *b != "create") {
        return Err(format!("{kind} generator {name}: behavior {b:?} (merging into a base's generated object) is not supported"));
    }
    let mut text: BTreeMap<String, String> = BTreeMap::new();
    let mut binary: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for l in strings(g, "literals") {
        let (k, v) = l.split_once('=').ok_or_else(|| format!("literal {l:?} is not key=value"))?;
        text.insert(k.trim().to_string(), unquote(v).to_string());
    }
    for f in strings(g, "files") {
        let (key, path) = match f.split_once('=') {
            Some((k, p)) => (k.trim().to_string(), p.trim()),
            None => (f.rsplit('/').next().unwrap_or(f).to_string(), f.trim()),
        };
        let bytes = read(path).ok_or_else(|| format!("{kind} generator {name}: file {path:?} cannot be read"))?;
        match String::from_utf8(bytes) {
            Ok(s) => {
                text.insert(key, s);
            }
            Err(e) => {
                binary.insert(key, e.into_bytes());
            }
        }
    }
    let env_files = strings(g, "envs").into_iter().chain(g.get("env").and_then(Value::as_str));
    for path in env_files {
        let bytes = read(path).ok_or_else(|| format!("{kind} generator {name}: env file {path:?} cannot be read"))?;
        for line in String::from_utf8_lossy(&bytes).lines() {
            let line = line.trim_start_matches('\u{feff}').trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // A bare KEY takes its value from the environment kustomize runs in: not known here.
            if let Some((k, v)) = line.split_once('=') {
                text.insert(k.trim().to_string(), v.to_string());
            }
        }
    }
    let option = |key: &str| g.pointer(&format!("/options/{key}")).or_else(|| global.and_then(|o| o.get(key)));
    let disable_hash = option("disableNameSuffixHash").and_then(Value::as_bool).unwrap_or(false);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut obj = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
    if kind == "Secret" {
        let data: BTreeMap<String, String> =
            text.iter().map(|(k, v)| (k.clone(), b64(v.as_bytes()))).chain(binary.iter().map(|(k, v)| (k.clone(), b64(v)))).collect();
        obj["type"] = json!(g.get("type").and_then(Value::as_str).unwrap_or("Opaque"));
        if !data.is_empty() {
            obj["data"] = json!(data);
        }
    } else {
        if !text.is_empty() {
            obj["data"] = json!(text);
        }
        if !binary.is_empty() {
            obj["binaryData"] = json!(binary.iter().map(|(k, v)| (k.clone(), b64(v))).collect::<BTreeMap<_, _>>());
        }
    }
    if let Some(ns) = g.get("namespace").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        obj["metadata"]["namespace"] = json!(ns);
    }
    for field in ["labels", "annotations"] {
        let mut merged = serde_json::Map::new();
        for source in [global.and_then(|o| o.get(field)), g.pointer(&format!("/options/{field}"))] {
            if let Some(Value::Object(m)) = source {
                merged.extend(m.clone());
            }
        }
        if !merged.is_empty() {
            obj["metadata"][field] = Value::Object(merged);
        }
    }
    if option("immutable").and_then(Value::as_bool) == Some(true) {
        obj["immutable"] = json!(true);
    }
    if !disable_hash {
        obj["metadata"]["name"] = json!(format!("{name}-{}", name_hash(&obj)));
    }
    Ok(Generated { value: obj, hashed: !disable_hash })
}

fn strings<'a>(g: &'a Value, key: &str) -> Vec<&'a str> {
    g.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

/// A literal's value without one pair of matching surrounding quotes.
fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// kustomize's name suffix: the first 10 hex digits of sha256 over the JSON of the
/// object's kind, name and data (Go's `json.Marshal`: keys sorted, HTML characters
/// escaped), with 0, 1, 3, a, e replaced by g, h, k, m, t. kustomize looks the name up
/// as one field called `metadata/name`, which no object has, so the name it hashes is
/// always empty (kustomize/api hasher.go); the same is done here.
fn name_hash(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = json!("");
    let or_empty = |v: &Value| if v.is_null() { json!("") } else { v.clone() };
    let mut m: BTreeMap<&str, Value> = BTreeMap::from([("kind", json!(kind)), ("name", name), ("data", or_empty(&obj["data"]))]);
    if kind == "Secret" {
        m.insert("type", or_empty(&obj["type"]));
    } else if obj["binaryData"].is_object() {
        m.insert("binaryData", obj["binaryData"].clone());
    }
    let encoded = serde_json::to_string(&m)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029");
    let hex: String = Sha256::digest(encoded.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    hex[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(path: &str) -> Option<Vec<u8>> {
        match path {
            "config/app.yaml" => Some(b"a: 1\n".to_vec()),
            "app.env" => Some(b"# comment\nMODE=fast\n\nLEVEL=2\n".to_vec()),
            _ => None,
        }
    }

    #[test]
    fn literals_files_and_env_files_become_data() {
        let g = json!({"name": "app", "literals": ["quoted=\"x y\""], "files": ["config/app.yaml", "renamed.yaml=config/app.yaml"], "envs": ["app.env"],
                       "options": {"labels": {"l": "1"}, "disableNameSuffixHash": true}});
        let out = generate("ConfigMap", &g, Some(&json!({"annotations": {"a": "2"}})), &files).unwrap();
        assert!(!out.hashed);
        assert_eq!(out.value["data"], json!({"quoted": "x y", "app.yaml": "a: 1\n", "renamed.yaml": "a: 1\n", "MODE": "fast", "LEVEL": "2"}));
        assert_eq!(out.value["metadata"], json!({"name": "app", "labels": {"l": "1"}, "annotations": {"a": "2"}}));
    }

    #[test]
    fn the_name_carries_kustomizes_hash_unless_disabled() {
        // As kustomize-controller names configMapGenerator [{name: example, literals: [foo=bar]}]
        // (sim/go/flux-render).
        let out = generate("ConfigMap", &json!({"name": "example", "literals": ["foo=bar"]}), None, &files).unwrap();
        assert!(out.hashed);
        assert_eq!(out.value["metadata"]["name"], "example-798k5k7g9f");
        let s = generate("Secret", &json!({"name": "s", "literals": ["k=v"], "options": {"disableNameSuffixHash": true}}), None, &files).unwrap();
        assert_eq!(s.value["data"]["k"], "dg==");
        assert_eq!(s.value["type"], "Opaque");
    }

    #[test]
    fn unreadable_files_and_merge_behaviour_are_errors() {
        assert_eq!(generate("ConfigMap", &json!({"name": "x", "files": ["missing"]}), None, &files).unwrap_err(), "ConfigMap generator x: file \"missing\" cannot be read");
        assert!(generate("ConfigMap", &json!({"name": "x", "behavior": "merge"}), None, &files).unwrap_err().contains("not supported"));
    }
}
