//! Flux post-build variable substitution (`${VAR}`, `${VAR:=default}`, `${VAR:-default}`,
//! `${VAR=default}`, `${VAR-default}`, `$${VAR}` as an escaped literal), as the
//! kustomize-controller applies it to rendered manifests.
//!
//! ```
//! use std::collections::BTreeMap;
//! use platform_acceptance::repo::envsubst::substitute;
//! let vars = BTreeMap::from([("CLUSTER".to_string(), "infra".to_string())]);
//! let out = substitute("name: ${CLUSTER}-${ZONE:=a}-${MISSING}", &vars);
//! assert_eq!(out.text, "name: infra-a-");
//! assert_eq!(out.unresolved, vec!["MISSING".to_string()]);
//! ```

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\$\{|\$\{([_A-Za-z][_A-Za-z0-9]*)(?:(:?[-=])([^}]*))?\}").expect("static regex")
});

/// Variable names a text refers to with `${NAME...}` (escaped `$${...}` excluded).
pub fn references(text: &str) -> Vec<Reference> {
    REFERENCE
        .captures_iter(text)
        .filter_map(|c| {
            let name = c.get(1)?.as_str().to_string();
            Some(Reference { name, has_default: c.get(2).is_some() })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub has_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    pub text: String,
    /// Variables referenced without a default and not defined (Flux renders them empty).
    pub unresolved: Vec<String>,
}

pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Substituted {
    let mut unresolved = vec![];
    let out = REFERENCE.replace_all(text, |c: &regex::Captures<'_>| {
        let Some(name) = c.get(1) else { return "${".to_string() };
        let value = vars.get(name.as_str());
        match (c.get(2).map(|m| m.as_str()), value) {
            // `:-`/`:=` also replace an empty value; `-`/`=` only an unset one.
            (Some(":-" | ":="), Some(v)) if v.is_empty() => c[3].to_string(),
            (_, Some(v)) => v.clone(),
            (Some(_), None) => c[3].to_string(),
            (None, None) => {
                unresolved.push(name.as_str().to_string());
                String::new()
            }
        }
    });
    // once per name, in order of first use (`${A} ${B} ${A}` → A, B)
    let mut seen = std::collections::BTreeSet::new();
    unresolved.retain(|n| seen.insert(n.clone()));
    Substituted { text: out.into_owned(), unresolved }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn default_forms_follow_envsubst() {
        let v = vars(&[("EMPTY", ""), ("SET", "x")]);
        assert_eq!(substitute("${EMPTY:-d}|${EMPTY-d}|${UNSET=d}|${SET:=d}", &v).text, "d||d|x");
    }

    #[test]
    fn unresolved_names_are_reported_once() {
        let out = substitute("${A} ${B} ${A}", &vars(&[]));
        assert_eq!(out.unresolved, vec!["A".to_string(), "B".to_string()]);
    }

    #[test]
    fn escaped_reference_is_kept_literal() {
        let out = substitute("a $${NOT_A_VAR} b", &vars(&[]));
        assert_eq!(out.text, "a ${NOT_A_VAR} b");
        assert!(out.unresolved.is_empty());
        assert!(references("$${X}").is_empty());
    }
}
