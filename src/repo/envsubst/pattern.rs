//! Shell pattern matching for the `#` `##` `%` `%%` trims: a port of Go's `path/match.go` (`path.Match`,
//! with `*` and `?` matching `/` too).

use super::decode_rune;

/// A malformed pattern (Go's `ErrBadPattern`): the trims then leave the value whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BadPattern;

/// Whether all of `name` matches `pattern`.
pub(super) fn glob_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, BadPattern> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
