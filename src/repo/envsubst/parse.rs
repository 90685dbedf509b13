//! The scanner and parser of `${...}` expressions: ports of Go's `parse/scan.go` and `parse/parse.go`.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use super::{Func, MAX_NESTING, Node, decode_rune, into_string};

/// Go's parse errors; the messages are Go's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ParseError {
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
pub(super) fn parse(text: &str) -> Result<Vec<Node>, ParseError> {
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
