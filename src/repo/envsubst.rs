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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

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

/// Go's parse errors; the messages are Go's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseError {
    BadSubstitution,
    MissingClosingBrace,
    ParseVariableName,
    ParseFuncSubstitution,
    ParseDefaultFunction,
    /// This port's own: references nested deeper than [`MAX_NESTING`].
    TooDeep,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSubstitution => f.write_str("bad substitution"),
            Self::MissingClosingBrace => f.write_str("missing closing brace"),
            Self::ParseVariableName => f.write_str("unable to parse variable name"),
            Self::ParseFuncSubstitution => f.write_str("unable to parse substitution within function"),
            Self::ParseDefaultFunction => f.write_str("unable to parse default function"),
            Self::TooDeep => write!(f, "references nested more than {MAX_NESTING} deep"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scanner (parse/scan.go)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Illegal,
    Eof,
    Ident,
    Lbrack,
    Rbrack,
}

/// Mode bits: which tokens [`Scanner::scan`] recognises.
const SCAN_IDENT: u8 = 1;
const SCAN_LBRACK: u8 = 2;
const SCAN_RBRACK: u8 = 4;
const SCAN_ESCAPE: u8 = 8;

/// Escape bits: which escapes an identifier may hold when `SCAN_ESCAPE` is on.
const ESCAPE_DOLLAR: u8 = 1;
const ESCAPE_BACKSLASH: u8 = 2;
const ESCAPE_ALL: u8 = ESCAPE_DOLLAR | ESCAPE_BACKSLASH;

/// Whether an identifier takes character `r`, `i` bytes into it (counting `r`).
type Accept = fn(char, usize) -> bool;

/// Go's scanner, state for state: Flux's quirks (an escape removed from the buffer itself, a
/// step back by the width of the last character read rather than of the character stepped
/// over) come from these exact moves, so they are kept.
struct Scanner {
    buf: Vec<u8>,
    pos: usize,
    start: usize,
    width: usize,
    mode: u8,
    escape_chars: u8,
    accept: Accept,
}

impl Scanner {
    fn new(text: &str) -> Self {
        Scanner { buf: text.as_bytes().to_vec(), pos: 0, start: 0, width: 0, mode: 0, escape_chars: 0, accept: accept_rune }
    }

    /// The next character, `None` at the end.
    fn read(&mut self) -> Option<char> {
        if self.pos >= self.buf.len() {
            self.width = 0;
            return None;
        }
        let (r, w) = decode_rune(&self.buf[self.pos..]);
        self.width = w;
        self.pos += w;
        Some(r)
    }

    /// Steps back by the width of the last character read.
    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(self.width);
    }

    /// Drops the (one-byte) character just read from the buffer: the escape of an escape pair,
    /// whose second character then counts as already read.
    fn skip(&mut self) {
        if (1..=self.buf.len()).contains(&self.pos) {
            self.buf.remove(self.pos - 1);
        }
    }

    fn peek(&mut self) -> Option<char> {
        let r = self.read();
        self.unread();
        r
    }

    /// The text of the token last scanned.
    fn token(&self) -> Vec<u8> {
        let end = self.pos.min(self.buf.len());
        self.buf.get(self.start..end).unwrap_or_default().to_vec()
    }

    fn token_string(&self) -> String {
        into_string(self.token())
    }

    fn scan(&mut self) -> Token {
        self.start = self.pos;
        let Some(r) = self.read() else { return Token::Eof };
        if self.scan_lbrack(r) {
            Token::Lbrack
        } else if self.scan_rbrack(r) {
            Token::Rbrack
        } else if self.scan_ident(r) {
            Token::Ident
        } else {
            Token::Illegal
        }
    }

    /// Reads an identifier starting with `r`: characters `accept` takes and escape pairs, up to
    /// the end, a `${`, or a character it refuses.
    fn scan_ident(&mut self, r: char) -> bool {
        if self.mode & SCAN_IDENT == 0 {
            return false;
        }
        if self.scan_escaped(r) {
            self.skip();
        } else if !(self.accept)(r, self.pos.saturating_sub(self.start)) {
            return false;
        }
        loop {
            let Some(r) = self.read() else {
                self.unread();
                break;
            };
            if self.scan_lbrack(r) {
                self.unread();
                self.unread();
                break;
            }
            if self.scan_escaped(r) {
                self.skip();
                continue;
            }
            if !(self.accept)(r, self.pos.saturating_sub(self.start)) {
                self.unread();
                break;
            }
        }
        true
    }

    /// Whether `r` starts a `${` (then read whole).
    fn scan_lbrack(&mut self, r: char) -> bool {
        if self.mode & SCAN_LBRACK == 0 || r != '$' {
            return false;
        }
        if self.read() == Some('{') {
            return true;
        }
        self.unread();
        false
    }

    fn scan_rbrack(&mut self, r: char) -> bool {
        self.mode & SCAN_RBRACK != 0 && r == '}'
    }

    /// Whether `r` escapes the next character: `$$`, or `\/` and `\\`.
    fn scan_escaped(&mut self, r: char) -> bool {
        if self.mode & SCAN_ESCAPE == 0 {
            return false;
        }
        if r == '$' && self.escape_chars & ESCAPE_DOLLAR != 0 && self.peek() == Some('$') {
            return true;
        }
        r == '\\' && self.escape_chars & ESCAPE_BACKSLASH != 0 && matches!(self.peek(), Some('/' | '\\'))
    }
}

fn accept_rune(_: char, _: usize) -> bool {
    true
}

/// Go's `unicode.IsLetter || unicode.IsDigit || '_'`.
fn accept_ident(r: char, _: usize) -> bool {
    static LETTER_OR_DIGIT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\A[\p{L}\p{Nd}]\z").expect("static regex"));
    r == '_' || r.is_ascii_alphanumeric() || (!r.is_ascii() && LETTER_OR_DIGIT.is_match(r.encode_utf8(&mut [0; 4])))
}

fn accept_colon(r: char, _: usize) -> bool {
    r == ':'
}

fn accept_one_hash(r: char, i: usize) -> bool {
    r == '#' && i == 1
}

fn accept_not_closing(r: char, _: usize) -> bool {
    r != '}'
}

fn accept_hash_func(r: char, i: usize) -> bool {
    r == '#' && i < 3
}

fn accept_percent_func(r: char, i: usize) -> bool {
    r == '%' && i < 3
}

fn accept_default_func(r: char, i: usize) -> bool {
    (i == 1 && r == ':') || (i == 2 && matches!(r, '=' | '-' | '?' | '+'))
}

fn accept_replace_func(r: char, i: usize) -> bool {
    (i == 1 && r == '/') || (i == 2 && matches!(r, '/' | '#' | '%'))
}

fn accept_one_equal(r: char, i: usize) -> bool {
    i == 1 && r == '='
}

fn accept_one_colon(r: char, i: usize) -> bool {
    i == 1 && r == ':'
}

fn reject_colon_close(r: char, _: usize) -> bool {
    r != ':' && r != '}'
}

fn accept_slash(r: char, _: usize) -> bool {
    r == '/'
}

fn accept_not_slash(r: char, _: usize) -> bool {
    r != '/'
}

fn accept_casing_func(r: char, i: usize) -> bool {
    (r == ',' || r == '^') && i < 3
}

// ---------------------------------------------------------------------------------------------
// Parser (parse/parse.go)
// ---------------------------------------------------------------------------------------------

/// Parses a text into literal text and references.
fn parse(text: &str) -> Result<Vec<Node>, ParseError> {
    let mut p = Parser { sc: Scanner::new(text) };
    let mut nodes = vec![];
    // Go's parseAny, one token per round instead of one recursion per token.
    loop {
        p.sc.accept = accept_rune;
        p.sc.mode = SCAN_IDENT | SCAN_LBRACK | SCAN_ESCAPE;
        p.sc.escape_chars = ESCAPE_DOLLAR;
        match p.sc.scan() {
            Token::Ident => nodes.push(Node::Text(p.sc.token())),
            Token::Eof => return Ok(nodes),
            Token::Lbrack => nodes.push(p.parse_func(1)?),
            _ => return Err(ParseError::BadSubstitution),
        }
    }
}

struct Parser {
    sc: Scanner,
}

impl Parser {
    /// Parses what follows a `${`; `depth` counts the `${` open around it, itself included.
    fn parse_func(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_NESTING {
            return Err(ParseError::TooDeep);
        }
        self.sc.escape_chars = ESCAPE_ALL;
        if self.sc.peek() == Some('#') {
            return self.parse_len_func();
        }
        self.sc.accept = accept_ident;
        self.sc.mode = SCAN_IDENT;
        let name = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::ParseVariableName),
        };
        match self.sc.peek() {
            Some(':') => return self.parse_default_or_substr(name, depth),
            Some('=') => return self.parse_default_func(name, depth),
            Some(',' | '^') => return self.parse_casing_func(name),
            Some('/') => return self.parse_replace_func(name, depth),
            Some('#') => return self.parse_remove_func(name, accept_hash_func, depth),
            Some('%') => return self.parse_remove_func(name, accept_percent_func, depth),
            _ => {}
        }
        self.sc.accept = accept_ident;
        self.sc.mode = SCAN_RBRACK;
        match self.sc.scan() {
            Token::Rbrack => Ok(Node::Func(Func { param: name, op: String::new(), args: vec![] })),
            _ => Err(ParseError::MissingClosingBrace),
        }
    }

    /// One argument: a nested reference or text up to a character `accept` refuses.
    fn parse_param(&mut self, accept: Accept, mode: u8, depth: usize) -> Result<Node, ParseError> {
        self.sc.accept = accept;
        self.sc.mode = mode | SCAN_LBRACK;
        match self.sc.scan() {
            Token::Lbrack => self.parse_func(depth + 1),
            Token::Ident | Token::Rbrack => Ok(Node::Text(self.sc.token())),
            _ => Err(ParseError::ParseFuncSubstitution),
        }
    }

    /// `${name:` starts a default (`:=` `:-` `:?` `:+`) or a substring.
    fn parse_default_or_substr(&mut self, name: String, depth: usize) -> Result<Node, ParseError> {
        // Go steps back by the width of the peeked character, not of the ':': when that is a
        // multi-byte character the substring's scan starts inside the name and fails.
        self.sc.read();
        let r = self.sc.peek();
        self.sc.unread();
        match r {
            Some('=' | '-' | '?' | '+') => self.parse_default_func(name, depth),
            _ => self.parse_substr_func(name, depth),
        }
    }

    /// `${name:offset}`, `${name:offset:length}`.
    fn parse_substr_func(&mut self, param: String, depth: usize) -> Result<Node, ParseError> {
        self.sc.accept = accept_one_colon;
        self.sc.mode = SCAN_IDENT;
        let op = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::BadSubstitution),
        };
        let mut args = vec![self.parse_param(reject_colon_close, SCAN_IDENT, depth)?];
        self.sc.accept = accept_colon;
        self.sc.mode = SCAN_IDENT | SCAN_RBRACK;
        match self.sc.scan() {
            Token::Rbrack => return Ok(Node::Func(Func { param, op, args })),
            Token::Ident => {}
            _ => return Err(ParseError::BadSubstitution),
        }
        args.push(self.parse_param(accept_not_closing, SCAN_IDENT, depth)?);
        self.consume_rbrack()?;
        Ok(Node::Func(Func { param, op, args }))
    }

    /// `${name#pattern}`, `${name##pattern}`, `${name%pattern}`, `${name%%pattern}`.
    fn parse_remove_func(&mut self, param: String, accept: Accept, depth: usize) -> Result<Node, ParseError> {
        self.sc.accept = accept;
        self.sc.mode = SCAN_IDENT;
        let op = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::BadSubstitution),
        };
        let args = vec![self.parse_param(accept_not_closing, SCAN_IDENT, depth)?];
        self.consume_rbrack()?;
        Ok(Node::Func(Func { param, op, args }))
    }

    /// `${name/old/new}`, `${name//old/new}`, `${name/#old/new}`, `${name/%old/new}`, and each
    /// with an empty `new`.
    fn parse_replace_func(&mut self, param: String, depth: usize) -> Result<Node, ParseError> {
        self.sc.accept = accept_replace_func;
        self.sc.mode = SCAN_IDENT;
        let op = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::BadSubstitution),
        };
        let mut args = vec![self.parse_param(accept_not_slash, SCAN_IDENT | SCAN_ESCAPE, depth)?];
        self.sc.accept = accept_slash;
        self.sc.mode = SCAN_IDENT;
        if self.sc.scan() != Token::Ident {
            return Err(ParseError::BadSubstitution);
        }
        if self.sc.peek() != Some('}') {
            args.push(self.parse_param(accept_not_closing, SCAN_IDENT | SCAN_ESCAPE, depth)?);
        }
        self.consume_rbrack()?;
        Ok(Node::Func(Func { param, op, args }))
    }

    /// `${name=default}`, `${name:=default}`, `${name:-default}`, `${name:?default}`,
    /// `${name:+default}`: the default in pieces, text and references.
    fn parse_default_func(&mut self, param: String, depth: usize) -> Result<Node, ParseError> {
        self.sc.accept = if self.sc.peek() == Some('=') { accept_one_equal } else { accept_default_func };
        self.sc.mode = SCAN_IDENT;
        let op = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::ParseDefaultFunction),
        };
        let mut args = vec![];
        while self.sc.peek() != Some('}') {
            args.push(self.parse_param(accept_not_closing, SCAN_IDENT, depth)?);
        }
        self.consume_rbrack()?;
        Ok(Node::Func(Func { param, op, args }))
    }

    /// `${name,}`, `${name,,}`, `${name^}`, `${name^^}`.
    fn parse_casing_func(&mut self, param: String) -> Result<Node, ParseError> {
        self.sc.accept = accept_casing_func;
        self.sc.mode = SCAN_IDENT;
        let op = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::BadSubstitution),
        };
        self.consume_rbrack()?;
        Ok(Node::Func(Func { param, op, args: vec![] }))
    }

    /// `${#name}`.
    fn parse_len_func(&mut self) -> Result<Node, ParseError> {
        self.sc.accept = accept_one_hash;
        self.sc.mode = SCAN_IDENT;
        let op = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::BadSubstitution),
        };
        self.sc.accept = accept_ident;
        self.sc.mode = SCAN_IDENT;
        let param = match self.sc.scan() {
            Token::Ident => self.sc.token_string(),
            _ => return Err(ParseError::BadSubstitution),
        };
        self.consume_rbrack()?;
        Ok(Node::Func(Func { param, op, args: vec![] }))
    }

    fn consume_rbrack(&mut self) -> Result<(), ParseError> {
        self.sc.mode = SCAN_RBRACK;
        match self.sc.scan() {
            Token::Rbrack => Ok(()),
            _ => Err(ParseError::BadSubstitution),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation (template.go, funcs.go)
// ---------------------------------------------------------------------------------------------

/// Appends the value of `nodes` to `out`. The error is what Go's panic would say.
fn eval_nodes(nodes: &[Node], vars: &BTreeMap<String, String>, out: &mut Vec<u8>) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(text) => out.extend_from_slice(text),
            Node::Func(f) => {
                // Go evaluates every argument, used or not, before reading the variable.
                let mut args = Vec::with_capacity(f.args.len());
                for arg in &f.args {
                    let mut value = vec![];
                    eval_nodes(std::slice::from_ref(arg), vars, &mut value)?;
                    args.push(value);
                }
                let value = vars.get(&f.param).map_or(&[][..], |v| v.as_bytes());
                out.extend(apply(&f.op, value, &args)?);
            }
        }
    }
    Ok(())
}

/// Applies operator `op` to value `s` (Go's `lookupFunc`).
fn apply(op: &str, s: &[u8], args: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let first = args.first().map(Vec::as_slice);
    Ok(match (op, first) {
        (",", _) => map_first(s, simple_lower),
        (",,", _) => map_all(s, simple_lower),
        ("^", _) => map_first(s, simple_upper),
        ("^^", _) => map_all(s, simple_upper),
        ("#", None) => s.len().to_string().into_bytes(),
        ("#", Some(pattern)) => trim_shortest(s, pattern),
        ("##", Some(pattern)) => trim_longest(s, pattern),
        ("%", Some(pattern)) => reverse(&trim_shortest(&reverse(s), &reverse(pattern))),
        ("%%", Some(pattern)) => reverse(&trim_longest(&reverse(s), &reverse(pattern))),
        (":", _) => to_substr(s, args)?,
        ("/#", _) => match args {
            [old, new] if s.starts_with(old) => replace(s, old, new, Some(1)),
            _ => s.to_vec(),
        },
        ("/%", _) => match args {
            [old, new] if s.ends_with(old) => [&s[..s.len() - old.len()], new.as_slice()].concat(),
            _ => s.to_vec(),
        },
        ("/", Some(old)) => replace(s, old, args.get(1).map_or(&[][..], Vec::as_slice), Some(1)),
        ("//", Some(old)) => replace(s, old, args.get(1).map_or(&[][..], Vec::as_slice), None),
        ("##" | "%" | "%%" | "/" | "//", None) => s.to_vec(),
        // `${VAR}` and every default operator: the value, or the default's pieces joined.
        _ if s.is_empty() && !args.is_empty() => args.concat(),
        _ => s.to_vec(),
    })
}

/// `${VAR:offset}`, `${VAR:offset:length}` in bytes (Go's `toSubstr`).
fn to_substr(s: &[u8], args: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    // Go's strconv.Atoi: an optional sign and decimal digits that fit 64 bits.
    let atoi = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<i64>().ok();
    let slice = |from: i64, to: i64| s.get(from as usize..to as usize).unwrap_or_default().to_vec();
    let len = s.len() as i64;
    let Some(mut pos) = args.first().and_then(|a| atoi(a)) else { return Ok(s.to_vec()) };
    if pos < 0 {
        pos = (len + pos).max(0);
    }
    let Some(length) = args.get(1) else { return Ok(if pos < len { slice(pos, len) } else { vec![] }) };
    let Some(length) = atoi(length) else { return Ok(s.to_vec()) };
    if length < 0 {
        let end = len + length;
        return Ok(if end < pos { vec![] } else { slice(pos, end) });
    }
    match pos.checked_add(length) {
        // Go's int wraps around here and slicing with the negative end panics.
        None => Err(format!("panic: runtime error: slice bounds out of range [:{}] [recovered]", pos.wrapping_add(length))),
        Some(end) if end >= len => Ok(if pos < len { slice(pos, len) } else { vec![] }),
        Some(end) => Ok(slice(pos, end)),
    }
}

/// Go's `strings.Replace`: the first `limit` (all for `None`) non-overlapping `old` replaced; an
/// empty `old` matches before every character and at the end.
fn replace(s: &[u8], old: &[u8], new: &[u8], limit: Option<usize>) -> Vec<u8> {
    let matches = if old.is_empty() { go_chars(s).count() + 1 } else { find_all(s, old).count() };
    if old == new || matches == 0 {
        return s.to_vec();
    }
    let n = limit.map_or(matches, |l| l.min(matches));
    let mut out = Vec::with_capacity(s.len() + n * new.len());
    let mut start = 0;
    for i in 0..n {
        let j = if old.is_empty() {
            start + if i > 0 { decode_rune(&s[start..]).1 } else { 0 }
        } else {
            start + find(&s[start..], old).unwrap_or(s.len() - start)
        };
        out.extend_from_slice(&s[start..j]);
        out.extend_from_slice(new);
        start = (j + old.len()).min(s.len());
    }
    out.extend_from_slice(&s[start..]);
    out
}

/// Where `needle` (not empty) first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where the non-overlapping occurrences of `needle` (not empty) start.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let at = from + find(hay.get(from..)?, needle)?;
        from = at + needle.len();
        Some(at)
    })
}

/// `s` without its shortest non-empty prefix matching `pattern` (Go's `trimShortest`).
fn trim_shortest(s: &[u8], pattern: &[u8]) -> Vec<u8> {
    let mut shortest = 0;
    for end in (1..=s.len()).rev() {
        match glob_match(pattern, &s[..end]) {
            Err(BadPattern) => return s.to_vec(),
            Ok(true) => shortest = end,
            Ok(false) => {}
        }
    }
    s[shortest..].to_vec()
}

/// `s` without its longest non-empty prefix matching `pattern` (Go's `trimLongest`).
fn trim_longest(s: &[u8], pattern: &[u8]) -> Vec<u8> {
    for end in (1..=s.len()).rev() {
        match glob_match(pattern, &s[..end]) {
            Err(BadPattern) => break,
            Ok(true) => return s[end..].to_vec(),
            Ok(false) => {}
        }
    }
    s.to_vec()
}

/// The characters of `s` in reverse order (Go's `reverse`, through `[]rune`).
fn reverse(s: &[u8]) -> Vec<u8> {
    let mut chars: Vec<char> = go_chars(s).collect();
    chars.reverse();
    chars.into_iter().collect::<String>().into_bytes()
}

/// Go's `strings.ToLower`/`ToUpper`: each character mapped, invalid bytes to U+FFFD.
fn map_all(s: &[u8], f: fn(char) -> char) -> Vec<u8> {
    go_chars(s).map(f).collect::<String>().into_bytes()
}

/// Go's `toLowerFirst`/`toUpperFirst`: the first character mapped.
fn map_first(s: &[u8], f: fn(char) -> char) -> Vec<u8> {
    if s.is_empty() {
        return vec![];
    }
    let (r, n) = decode_rune(s);
    let mut out = f(r).to_string().into_bytes();
    out.extend_from_slice(&s[n..]);
    out
}

/// Go's `unicode.ToUpper`: Unicode's simple (one character) upper-case mapping.
fn simple_upper(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        // Rust gives the full mapping. Where that is several characters the simple mapping is
        // the character itself, but for the Greek letters with ypogegrammeni (ᾳ → ᾼ).
        _ => match c {
            '\u{1F80}'..='\u{1F87}' | '\u{1F90}'..='\u{1F97}' | '\u{1FA0}'..='\u{1FA7}' => {
                char::from_u32(c as u32 + 8).unwrap_or(c)
            }
            '\u{1FB3}' => '\u{1FBC}',
            '\u{1FC3}' => '\u{1FCC}',
            '\u{1FF3}' => '\u{1FFC}',
            _ => c,
        },
    }
}

/// Go's `unicode.ToLower`: Unicode's simple (one character) lower-case mapping.
fn simple_lower(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        // The one character whose full mapping is longer: İ → i̇, simply i.
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

// ---------------------------------------------------------------------------------------------
// Shell patterns (path/match.go: Go's path.Match, with `*` and `?` matching `/` too)
// ---------------------------------------------------------------------------------------------

/// A malformed pattern (Go's `ErrBadPattern`): the trims then leave the value whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BadPattern;

/// Whether all of `name` matches `pattern`.
fn glob_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` takes the rest of the name.
            return Ok(true);
        }
        // The chunk at the current position; the last chunk must take the rest of the name.
        let here = match_chunk(chunk, name);
        if let Ok(Some(t)) = here
            && (t.is_empty() || !pattern.is_empty())
        {
            name = t;
            continue;
        }
        here?;
        if star {
            // Or after skipping i + 1 bytes.
            for i in 0..name.len() {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if pattern.is_empty() && !t.is_empty() {
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// The next piece of a pattern: leading `*`s, then characters up to the next `*` outside `[...]`.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = pattern {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Whether `chunk` (no `*`) matches the start of `s`: what is left of `s` if so.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    while let Some(&c) = chunk.first() {
        if s.is_empty() {
            return Ok(None);
        }
        match c {
            b'[' => {
                let (r, n) = decode_rune(s);
                s = &s[n..];
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        (hi, chunk) = get_esc(&chunk[1..])?;
                    }
                    matched |= lo <= r && r <= hi;
                    ranges += 1;
                }
                if matched == negated {
                    return Ok(None);
                }
            }
            b'?' => {
                s = &s[decode_rune(s).1..];
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                }
                let Some(&literal) = chunk.first() else { return Err(BadPattern) };
                if literal != s[0] {
                    return Ok(None);
                }
                s = &s[1..];
                chunk = &chunk[1..];
            }
        }
    }
    Ok(Some(s))
}

/// A character of a `[...]` class, possibly escaped, and the chunk after it (which must go on).
fn get_esc(mut chunk: &[u8]) -> Result<(char, &[u8]), BadPattern> {
    match chunk.first() {
        None | Some(b'-' | b']') => return Err(BadPattern),
        Some(b'\\') => chunk = &chunk[1..],
        Some(_) => {}
    }
    if chunk.is_empty() {
        return Err(BadPattern);
    }
    let (r, n) = decode_rune(chunk);
    if (r == char::REPLACEMENT_CHARACTER && n == 1) || n == chunk.len() {
        return Err(BadPattern);
    }
    Ok((r, &chunk[n..]))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Variables as `(name, value)` pairs.
    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn vars(pairs: Pairs<'_>) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The text `input` gives with `params`, or the error.
    fn eval(input: &str, params: Pairs<'_>) -> Result<String, String> {
        let out = substitute(input, &vars(params));
        match out.error {
            Some(e) => {
                assert_eq!(out.text, input, "a failed substitution leaves the text as it was");
                Err(e)
            }
            None => Ok(out.text),
        }
    }

    #[test]
    fn default_forms_follow_envsubst() {
        // Flux maps an unset variable to "" (non-strict mode), so every default operator
        // replaces an empty value as well as an unset one; `:+` and `:?` are defaults too.
        let v = vars(&[("EMPTY", ""), ("SET", "x")]);
        let text = "${EMPTY:-d}|${EMPTY=d}|${UNSET=d}|${SET:=d}|${EMPTY:+d}|${SET:+d}|${UNSET:?d}";
        assert_eq!(substitute(text, &v).text, "d|d|d|x|d|x|d");
        // Bash would give "" for `${EMPTY-d}`; Flux's parser knows no operator without a colon
        // but `=`, so `-`, `+` and `?` alone are malformed and fail the whole text.
        for bare in ["${EMPTY-d}", "${UNSET+d}", "${SET?d}"] {
            let out = substitute(bare, &v);
            assert_eq!(out.error.as_deref(), Some("variable substitution failed: missing closing brace"), "{bare}");
            assert_eq!(out.text, bare);
        }
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

    #[test]
    fn escaped_nested_default_stays_literal() {
        let out = substitute("user: $${POSTGRES_USERNAME:=$${APP}}", &vars(&[("APP", "x")]));
        assert_eq!(out.text, "user: ${POSTGRES_USERNAME:=${APP}}");
        assert!(out.unresolved.is_empty());
        assert!(references("$${POSTGRES_USERNAME:=$${APP}}").is_empty());
    }

    #[test]
    fn references_tell_defaults_from_the_rest() {
        let refs = |text: &str| references(text).into_iter().map(|r| (r.name, r.has_default)).collect::<Vec<_>>();
        assert_eq!(refs("${A:=${B}} ${C^^} ${#D} ${E:1} ${F%.*} ${G/a/b} ${H:+x}"), [
            ("A".into(), true),
            ("B".into(), false),
            ("C".into(), false),
            ("D".into(), false),
            ("E".into(), false),
            ("F".into(), false),
            ("G".into(), false),
            ("H".into(), true),
        ]);
        assert!(refs("${A-x} ${B}").is_empty(), "a text Flux refuses refers to nothing");
    }

    #[test]
    fn a_reference_nested_in_a_default_is_unresolved_too() {
        let out = substitute("${A:=${B}}|${A:=x}", &vars(&[]));
        assert_eq!(out.text, "|x");
        assert_eq!(out.unresolved, vec!["B".to_string()]);
    }

    /// envsubst's `TestExpand` (eval_test.go), run the way Flux runs it.
    #[test]
    fn go_expand_cases() {
        let cases: &[(Pairs<'_>, &str, &str)] = &[
            (&[], "abcdEFGH28ij", "abcdEFGH28ij"),
            (&[("var01", "abcdEFGH28ij")], "${#var01}", "12"),
            (&[("var01", "abcdEFGH28ij")], "${var01^}", "AbcdEFGH28ij"),
            (&[("var01", "abcdEFGH28ij")], "${var01^^}", "ABCDEFGH28IJ"),
            (&[("var01", "ABCDEFGH28IJ")], "${var01,}", "aBCDEFGH28IJ"),
            (&[("var01", "ABCDEFGH28IJ")], "${var01,,}", "abcdefgh28ij"),
            (&[("path_name", "/home/bozo/ideas/thoughts.for.today")], "${path_name:11}", "ideas/thoughts.for.today"),
            (&[("path_name", "/home/bozo/ideas/thoughts.for.today")], "${path_name:11:5}", "ideas"),
            (&[("var", "abc")], "${var=xyz}", "abc"),
            (&[], "${var=xyz}", "xyz"),
            (&[("default_var", "foo")], "something ${var=${default_var}}", "something foo"),
            (&[("default_var", "foo1")], "foo: ${var=${default_var}-suffix}", "foo: foo1-suffix"),
            (&[("default_var", "foo1")], "foo: ${var=prefix${default_var}-suffix}", "foo: prefixfoo1-suffix"),
            (&[], "${var:=xyz}", "xyz"),
            (&[("stringZ", "abcABC123ABCabc")], "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ"),
            (&[("stringZ", "abcABC123ABCabc")], "${stringZ/#abc/XYZ}", "XYZABC123ABCabc"),
            (&[("stringZ", "abcABC123ABCabc")], "${stringZ//abc/xyz}", "xyzABC123ABCxyz"),
            (&[("stringZ", "abcABC123ABCabc")], "${stringZ/abc/xyz}", "xyzABC123ABCabc"),
            (&[("filename", "bash.string.txt")], "${filename#*.}", "string.txt"),
            (&[("filename", "path/to/file")], "${filename#*/}", "to/file"),
            (&[("filename", "/path/to/file")], "${filename#*/}", "path/to/file"),
            (&[("filename", "bash.string.txt")], "${filename##*.}", "txt"),
            (&[("filename", "path/to/file")], "${filename##*/}", "file"),
            (&[("filename", "/path/to/file")], "${filename##*/}", "file"),
            (&[("filename", "bash.string.txt")], "${filename%.*}", "bash.string"),
            (&[("filename", "bash.string.txt")], "${filename%%.*}", "bash"),
            (&[("var01", "abcdEFGH28ij")], "${var=${var01^^}}", "ABCDEFGH28IJ"),
            (&[("var01", "abcdEFGH28ij")], "$${var01}", "${var01}"),
            (
                &[("var01", "abcdEFGH28ij")],
                "some text ${var01}$${var$${var01}$var01${var01}",
                "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
            ),
            (&[("default_var", "foo")], "something $${var=${default_var}}", "something ${var=foo}"),
            (&[("stringZ", "foo/bar")], r"${stringZ/\//-}", "foo-bar"),
            (&[("stringZ", "foo/bar/baz")], r"${stringZ//\//-}", "foo-bar-baz"),
            (&[("default_var", "foo")], r"\\something ${var=${default_var}}", r"\\something foo"),
            (&[("stringZ", "foo.bar")], "${stringZ/./}", "foobar"),
        ];
        for (params, input, output) in cases {
            assert_eq!(eval(input, params).as_deref(), Ok(*output), "{input}");
        }
    }

    /// envsubst's `Test_substr` (funcs_test.go), through `${VAR:offset:length}`.
    #[test]
    fn go_substr_cases() {
        // A `-` straight after the `:` would make `:-`, a default, and an argument is either
        // text or one reference: negative numbers come from variables.
        let negative = [("M1", "-1"), ("M3", "-3"), ("M4", "-4"), ("M8", "-8"), ("M300", "-300")];
        let cases = [
            ("123456789123456789", "0:8", "12345678"),
            ("123456789123456789", "1:8", "23456789"),
            ("123456789123456789", "9", "123456789"),
            ("123456789123456789", "9:50", "123456789"),
            ("123456789123456789", "${M3}:2", "78"),
            ("123456789123456789", "${M300}:3", "123"),
            ("12345678", "9:1", ""),
            ("hello world", "2:${M1}", "llo worl"),
            ("hello world", "0:${M3}", "hello wo"),
            ("hello world", "8:${M8}", ""),
            ("hello world", "${M4}:${M1}", "orl"),
            // not numbers: the value whole
            ("hello", "x", "hello"),
            ("hello", " -1", "hello"),
            ("hello", "1:y", "hello"),
        ];
        for (value, args, output) in cases {
            let input = format!("${{V:{args}}}");
            let params: Vec<_> = negative.iter().copied().chain([("V", value)]).collect();
            assert_eq!(eval(&input, &params).as_deref(), Ok(output), "{value} {input}");
        }
        assert_eq!(eval("${V:-1}", &[("V", "hello")]).as_deref(), Ok("hello"), "`:-` is a default");
        assert_eq!(eval("${V:1::2}", &[("V", "hello")]).as_deref(), Ok("el"), "a run of colons is one delimiter");
        assert!(eval("${V:${M1}1}", &[("V", "hello")]).is_err(), "a reference and text make no argument");
    }

    #[test]
    fn substring_offsets_that_overflow_fail_as_go_panics() {
        let out = substitute("${V:1:9223372036854775807}", &vars(&[("V", "abc")]));
        assert_eq!(out.text, "${V:1:9223372036854775807}");
        assert_eq!(
            out.error.as_deref(),
            Some("panic: runtime error: slice bounds out of range [:-9223372036854775808] [recovered]")
        );
        assert_eq!(eval("${V:9223372036854775808}", &[("V", "abc")]).as_deref(), Ok("abc"), "beyond 64 bits is no number");
    }

    #[test]
    fn lengths_and_substrings_count_bytes() {
        assert_eq!(eval("${#V}", &[("V", "héllo")]).as_deref(), Ok("6"));
        assert_eq!(eval("${V:3}", &[("V", "héllo")]).as_deref(), Ok("llo"));
        assert_eq!(eval("${V:0:2}", &[("V", "héllo")]).as_deref(), Ok("h\u{FFFD}"), "half an é");
    }

    #[test]
    fn case_functions_use_simple_case_mapping() {
        let v = [("V", "ßİᾳǅﬀ"), ("W", "élan")];
        assert_eq!(eval("${V^^}|${V,,}", &v).as_deref(), Ok("ßİᾼǄﬀ|ßiᾳǆﬀ"));
        assert_eq!(eval("${W^}|${W^^}|${E^}|${E,,}", &v).as_deref(), Ok("Élan|ÉLAN||"));
    }

    #[test]
    fn trims_match_shell_patterns() {
        let v = [("V", "abc/def$$"), ("F", "a.tar.gz")];
        let cases = [
            ("${V%%c*}", "ab"),
            ("${V%?}", "abc/def$"),
            ("${V#*[b-c]}", "c/def$$"),
            ("${V##*[b-c]}", "/def$$"),
            ("${V#[^b]}", "bc/def$$"),
            ("${V#[!a]}", "bc/def$$"), // `!` is no negation: the class is `!` or `a`
            ("${V#\\a}", "bc/def$$"),
            ("${V#[}", "abc/def$$"), // a malformed pattern trims nothing
            ("${V#*/}", "def$$"),
            ("${F%.*}", "a.tar"),
            ("${F%%.*}", "a"),
            ("${F#*.}", "tar.gz"),
            ("${F##*.}", "gz"),
            ("${F%.t?r.gz}", "a"),
            // `%` and `%%` match the reversed value against the reversed pattern text, so a
            // class must be written backwards and a forward one makes a bad pattern.
            ("${F%[a-z]}", "a.tar.gz"),
            ("${F%]z-a[}", "a.tar.g"),
            ("${F%%[a-z]*}", "a.tar.gz"),
            ("${F#${PAT}}", ".tar.gz"),
        ];
        for (input, output) in cases {
            assert_eq!(eval(input, &[v[0], v[1], ("PAT", "?")]).as_deref(), Ok(output), "{input}");
        }
    }

    #[test]
    fn replacements() {
        let v = [("V", "a-b-c"), ("E", ""), ("S", "/"), ("P", "x/y")];
        let cases = [
            ("${V/-/+}", "a+b-c"),
            ("${V//-/+}", "a+b+c"),
            ("${V//-/}", "abc"),
            ("${V/#a/z}", "z-b-c"),
            ("${V/#b/z}", "a-b-c"),
            ("${V/%c/z}", "a-b-z"),
            ("${V/%b/z}", "a-b-c"),
            ("${V/-/${S}}", "a/b-c"),
            (r"${P/\//\\}", r"x\y"),
            ("${V/$$/x}", "a-b-c"),
            ("${E/a/b}", ""),
            ("${E:=${V//-/.}}", "a.b.c"),
        ];
        for (input, output) in cases {
            assert_eq!(eval(input, &v).as_deref(), Ok(output), "{input}");
        }
    }

    #[test]
    fn escapes_apply_only_where_go_scans_them() {
        let v = [("V", "x"), ("B", "b")];
        // `$$` is an escape outside `${...}` and in `/` arguments, not in a default...
        assert_eq!(eval("$$V $$$ ${E:=$$} ${E:=$${B}}", &v).as_deref(), Ok("$V $$ $$ $b"));
        // ...and a backslash only in `/` arguments.
        assert_eq!(eval(r"\${V} ${E:=\/}", &v).as_deref(), Ok(r"\x \/"));
    }

    #[test]
    fn malformed_expressions_fail_the_text() {
        let cases = [
            ("${", "unable to parse variable name"),
            ("${}", "unable to parse variable name"),
            ("${:}", "unable to parse variable name"),
            ("${ V}", "unable to parse variable name"),
            ("a ${V", "missing closing brace"),
            ("${V }", "missing closing brace"),
            ("${V-x}", "missing closing brace"),
            ("${#}", "bad substitution"),
            ("${#V", "bad substitution"),
            ("${##V}", "bad substitution"),
            ("${V,,,}", "bad substitution"),
            ("${V/a}", "bad substitution"),
            ("${V:é}", "bad substitution"), // Go steps back the width of `é` over the `:`
            ("${V:}", "unable to parse substitution within function"),
            ("${V:1:}", "unable to parse substitution within function"),
            ("${V#}", "unable to parse substitution within function"),
            ("${V:=${W}", "unable to parse substitution within function"),
            ("ok ${V} then ${", "unable to parse variable name"),
        ];
        for (input, error) in cases {
            let out = substitute(input, &vars(&[("V", "v")]));
            assert_eq!(out.error, Some(format!("variable substitution failed: {error}")), "{input}");
            assert_eq!(out.text, input);
            assert!(out.unresolved.is_empty());
            assert!(references(input).is_empty());
        }
    }

    #[test]
    fn odd_but_valid_texts() {
        let v = [("V", "v")];
        let cases = [
            ("$", "$"),
            ("$$", "$"),
            ("}", "}"),
            ("${V}}", "v}"),
            ("${V:=a}b}", "vb}"),
            ("${V==a}${E==a}", "v=a"),
            ("${V/}/y}", "v"),
            ("${é}${V_1}${_}${9}", ""),
            ("a\0b ${V}", "a\0b v"), // Go would stop at the NUL
        ];
        for (input, output) in cases {
            assert_eq!(eval(input, &v).as_deref(), Ok(output), "{input:?}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let ok = format!("{}x{}", "${A:=".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert_eq!(eval(&ok, &[]).as_deref(), Ok("x"));
        let deep = "${A:=".repeat(100_000);
        let out = substitute(&deep, &vars(&[]));
        assert_eq!(out.error, Some(format!("variable substitution failed: references nested more than {MAX_NESTING} deep")));
        let many = "${A}".repeat(100_000);
        assert_eq!(substitute(&many, &vars(&[("A", "a")])).text.len(), 100_000);
    }

    #[test]
    fn glob_match_follows_go() {
        let m = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert_eq!(m("*", "a/b"), Ok(true));
        assert_eq!(m("a*b", "a/x/b"), Ok(true));
        assert_eq!(m("a?b", "a/b"), Ok(true));
        assert_eq!(m("[a-c]*", "b"), Ok(true));
        assert_eq!(m("[^a-c]", "b"), Ok(false));
        assert_eq!(m("\\*", "*"), Ok(true));
        assert_eq!(m("a*", "ba"), Ok(false));
        assert_eq!(m("*c", "abcbc"), Ok(true));
        assert_eq!(m("[", "a"), Err(BadPattern));
        assert_eq!(m("[a-", "a"), Err(BadPattern));
        assert_eq!(m("a\\", "a"), Ok(false), "the name runs out before the bad escape is read");
        assert_eq!(m("\\", "a"), Err(BadPattern));
    }
}

