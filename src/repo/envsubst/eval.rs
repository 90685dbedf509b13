//! Evaluation of parsed references and the substitution functions: ports of Go's `template.go` and
//! `funcs.go`.

use std::collections::BTreeMap;

use super::pattern::{BadPattern, glob_match};
use super::{Node, decode_rune, go_chars};

/// Appends the value of `nodes` to `out`. The error is what Go's panic would say.
pub(super) fn eval_nodes(nodes: &[Node], vars: &BTreeMap<String, String>, out: &mut Vec<u8>) -> Result<(), String> {
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
