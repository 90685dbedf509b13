//! Flux post-build variable substitution: a port of `github.com/fluxcd/pkg/envsubst` v1.8.0 as
//! the kustomize-controller calls it (`varSubstitution` in `github.com/fluxcd/pkg/kustomize`).
//!
//! Flux calls it in non-strict mode: every name maps to its value, or to the empty string when
//! it is not defined, so an unset variable and an empty one are the same thing.
//!
//! | Expression | Result |
//! |---|---|
//! | `${VAR}` | the value, empty when unset |
//! | `${VAR:-d}` `${VAR:=d}` `${VAR=d}` `${VAR:+d}` `${VAR:?d}` | the value, or `d` when the value is empty: all five do the same (`:+` does not swap in `d` for a set value, `:?` raises no error) |
//! | `${#VAR}` | the length in bytes |
//! | `${VAR^}` `${VAR^^}` `${VAR,}` `${VAR,,}` | first / every character upper-cased, first / every character lower-cased |
//! | `${VAR:off}` `${VAR:off:len}` | a substring by byte offsets; a negative offset counts from the end, a negative length stops that many bytes before the end; an offset or length that is not a number leaves the value whole |
//! | `${VAR#pat}` `${VAR##pat}` `${VAR%pat}` `${VAR%%pat}` | the shortest / longest prefix, the shortest / longest suffix matching a shell pattern removed (`*` `?` `[a-z]` `[^a]` `\c`; `*` and `?` also match `/`; a malformed pattern removes nothing). `%` and `%%` match the reversed value against the reversed pattern text, so there a class is written backwards: `${F%]9-0[}` drops a trailing digit |
//! | `${VAR/old/new}` `${VAR//old/new}` `${VAR/#old/new}` `${VAR/%old/new}` | the first / every / a leading / a trailing `old` (literal text, not a pattern) replaced; `${VAR/old/}` removes it |
//! | `$$` | `$`, outside `${...}` and in the arguments of `/`: `$${VAR}` is the literal text `${VAR}` |
//! | `\/` `\\` | `/` and `\`, in the arguments of `/` only |
//!
//! Arguments may hold references (`${A:=${B}-x}`, `${VAR:${OFF}}`). `${VAR-d}`, `${VAR+d}` and
//! `${VAR?d}` (no colon) are not Flux syntax: like any malformed expression (an unterminated
//! `${`, `${}`, `${VAR }`, ...) they fail the object's whole Kustomization ("variable
//! substitution failed: missing closing brace"); [`Substituted::error`] carries that message.
//!
//! Where this port departs from the Go code, on input Flux never sees or that no manifest holds:
//! - Go reads a NUL character as the end of the text and drops the rest; here it is ordinary
//!   text. Flux substitutes the YAML kustomize writes back, where a NUL is escaped as `\0`.
//! - Which characters make up a name, and how characters change case, follow the Unicode
//!   version of Rust (17.0 for Rust 1.95) rather than Go's (15.0): characters added or changed
//!   since differ. Flux only defines variables with ASCII names.
//! - References nested more than [`MAX_NESTING`] deep are refused, so that no input can exhaust
//!   the stack; Go has no limit.
//! - A substring that cuts a multi-byte character leaves invalid UTF-8, which Flux then fails to
//!   read back as YAML; here the broken bytes become U+FFFD.
//! - An offset plus a length past the largest 64-bit integer makes Go panic (the controller
//!   recovers and fails the Kustomization); here it is an error.
//!
//! ```
//! use std::collections::BTreeMap;
//! use platform_acceptance::repo::envsubst::substitute;
//! let vars = BTreeMap::from([("CLUSTER".to_string(), "infra".to_string())]);
//! let out = substitute("name: ${CLUSTER}-${ZONE:=a}-${MISSING}", &vars);
//! assert_eq!(out.text, "name: infra-a-");
//! assert_eq!(out.unresolved, vec!["MISSING".to_string()]);
//! assert_eq!(out.error, None);
//!
//! let bad = substitute("name: ${CLUSTER-a}", &vars);
//! assert_eq!(bad.text, "name: ${CLUSTER-a}");
//! assert_eq!(bad.error.as_deref(), Some("variable substitution failed: missing closing brace"));
//! ```

mod eval;
mod parse;
mod pattern;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use eval::eval_nodes;
use parse::parse;

/// How deep references may nest inside the arguments of others (`${A:=${B:=${C}}}` is 3 deep).
pub const MAX_NESTING: usize = 100;

/// A `${NAME...}` reference in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    /// Whether the expression supplies a value for an empty or unset variable (`:-` `:=` `=`
    /// `:+` `:?`), so that an unset variable is no omission. The other operators (length, case,
    /// substring, trims, replacements) work on the variable's value and do not.
    pub has_default: bool,
}

/// The outcome of [`substitute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    /// The substituted text; the input unchanged when [`Self::error`] is set.
    pub text: String,
    /// Variables referenced without a default and not defined, once each in order of first use
    /// (Flux renders them empty); empty when [`Self::error`] is set.
    pub unresolved: Vec<String>,
    /// Why Flux would refuse the text, in Flux's words ("variable substitution failed: missing
    /// closing brace"). The kustomize-controller then fails the whole Kustomization ("post build
    /// failed for '<gvk>/<name>': envsubst error: variable substitution failed: ...") and
    /// applies none of its objects.
    pub error: Option<String>,
}

/// Every `${NAME...}` reference in a text, in order, nested ones after the one holding them.
/// Escaped references (`$${NAME}`) are none; a text Flux cannot parse has none (see
/// [`Substituted::error`]).
pub fn references(text: &str) -> Vec<Reference> {
    let mut out = vec![];
    if let Ok(nodes) = parse(text) {
        collect_references(&nodes, &mut out);
    }
    out
}

/// Substitutes `vars` into a text as Flux's kustomize-controller does (`postBuild.substitute`).
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Substituted {
    let failed = |error: String| Substituted { text: text.to_string(), unresolved: vec![], error: Some(error) };
    let nodes = match parse(text) {
        Ok(nodes) => nodes,
        Err(e) => return failed(format!("variable substitution failed: {e}")),
    };
    let mut out = Vec::with_capacity(text.len());
    if let Err(panic) = eval_nodes(&nodes, vars, &mut out) {
        return failed(panic);
    }
    let mut refs = vec![];
    collect_references(&nodes, &mut refs);
    let mut seen = BTreeSet::new();
    let unresolved = refs
        .into_iter()
        .filter(|r| !r.has_default && !vars.contains_key(&r.name))
        .map(|r| r.name)
        .filter(|n| seen.insert(n.clone()))
        .collect();
    Substituted { text: into_string(out), unresolved, error: None }
}

/// The references of parsed nodes, each before those in its arguments.
fn collect_references(nodes: &[Node], out: &mut Vec<Reference>) {
    for node in nodes {
        if let Node::Func(f) = node {
            out.push(Reference { name: f.param.clone(), has_default: is_default_op(&f.op) });
            collect_references(&f.args, out);
        }
    }
}

/// Whether an operator supplies a value for an unset variable (Go's `isDefaultOp`; the parser
/// only produces the ones with a colon and `=`).
fn is_default_op(op: &str) -> bool {
    matches!(op, "-" | "+" | "=" | "?" | ":-" | ":+" | ":=" | ":?")
}

// ---------------------------------------------------------------------------------------------
// Parse tree (parse/node.go)
// ---------------------------------------------------------------------------------------------

/// An element of a parsed text. Go nests a list node per token; a flat list evaluates alike.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// Literal text, escapes already resolved (bytes: the scanner works on bytes, as Go does).
    Text(Vec<u8>),
    Func(Func),
}

/// `${param<op>args}`: `op` is empty for `${param}`, `#` for `${#param}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Func {
    param: String,
    op: String,
    /// One node per argument (`${V:1:2}`: two), or per piece of a default (`${V:=a${B}c}`: three).
    args: Vec<Node>,
}

// ---------------------------------------------------------------------------------------------
// Bytes read as Go reads strings
// ---------------------------------------------------------------------------------------------

/// The first character of `b` and its width, as Go's `utf8.DecodeRune`: an invalid byte is
/// U+FFFD of width 1, the end U+FFFD of width 0.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let head = &b[..b.len().min(4)];
    match head.utf8_chunks().next() {
        None => (char::REPLACEMENT_CHARACTER, 0),
        Some(chunk) => chunk.valid().chars().next().map_or((char::REPLACEMENT_CHARACTER, 1), |c| (c, c.len_utf8())),
    }
}

/// The characters of `s` as Go's `range` reads them: each byte of an invalid sequence U+FFFD.
fn go_chars(s: &[u8]) -> impl Iterator<Item = char> + '_ {
    s.utf8_chunks().flat_map(|c| c.valid().chars().chain(std::iter::repeat_n(char::REPLACEMENT_CHARACTER, c.invalid().len())))
}

/// Bytes as text; invalid UTF-8 (only a substring can make it) becomes U+FFFD.
fn into_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
