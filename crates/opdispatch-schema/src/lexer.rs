//! A lexer with the token rules of the TorchScript lexer, as far as schema
//! strings exercise them (numbers, strings, identifiers, keywords, punctuation,
//! newlines and indentation), including its lazy, one-token-ahead error timing.

use crate::error::SchemaParseError;

/// Token kinds.  Single characters stand for themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Char(u8),
    Eof,
    Whitespace,
    WhitespaceEof,
    Number,
    Newline,
    Indent,
    Dedent,
    Ident,
    StringLiteral,
    /// A multi-character token from [`MULTI`], by index.
    Multi(u8),
}

/// Whether `word` is spelled like a multi-character token (a keyword such as `def` or `None`).
pub(crate) fn is_keyword(word: &str) -> bool {
    word.as_bytes()
        .first()
        .is_some_and(|&b| multi_starting_with(b).any(|i| MULTI[usize::from(i)].0 == word))
}

// Token indices are stored as `u8` (`Kind::Multi`, the tables below).
const _: () = assert!(MULTI.len() < 256);

/// Indices into [`MULTI`] sorted by first byte, each group in `MULTI`'s order (which decides
/// ties), built at compile time; [`MULTI_GROUP`] gives each byte's range of it.
const MULTI_BY_FIRST_BYTE: [u8; MULTI.len()] = {
    let mut order = [0u8; MULTI.len()];
    let mut n = 0;
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < MULTI.len() {
            if MULTI[i].0.as_bytes()[0] as usize == b {
                order[n] = i as u8;
                n += 1;
            }
            i += 1;
        }
        b += 1;
    }
    order
};

/// Per first byte, the `(start, end)` range of [`MULTI_BY_FIRST_BYTE`] that starts with it.
const MULTI_GROUP: [(u8, u8); 256] = {
    let mut g = [(0u8, 0u8); 256];
    let mut k = 0;
    while k < MULTI_BY_FIRST_BYTE.len() {
        let b = MULTI[MULTI_BY_FIRST_BYTE[k] as usize].0.as_bytes()[0] as usize;
        if g[b].1 == 0 {
            g[b].0 = k as u8;
        }
        g[b].1 = k as u8 + 1;
        k += 1;
    }
    g
};

/// The indices into [`MULTI`] of the spellings that start with `b`, in `MULTI`'s order.
fn multi_starting_with(b: u8) -> impl Iterator<Item = u8> {
    let (start, end) = MULTI_GROUP[usize::from(b)];
    MULTI_BY_FIRST_BYTE[usize::from(start)..usize::from(end)]
        .iter()
        .copied()
}

/// Multi-character tokens: (spelling, kind name used in messages).
const MULTI: &[(&str, &str)] = &[
    ("def", "def"),
    ("<=>", "equivalent"),
    ("if", "if"),
    ("else", "else"),
    ("elif", "elif"),
    ("while", "while"),
    ("return", "return"),
    ("is", "is"),
    ("is not", "is not"),
    ("!=", "ne"),
    ("==", "eq"),
    ("<=", "le"),
    (">=", "ge"),
    ("//", "floordiv"),
    ("True", "True"),
    ("False", "False"),
    ("None", "None"),
    ("and", "and"),
    ("or", "or"),
    ("not", "not"),
    ("<<", "<<"),
    (">>", ">>"),
    ("+=", "+="),
    ("-=", "-="),
    ("*=", "*="),
    ("/=", "/="),
    ("%=", "%="),
    ("|=", "|="),
    ("&=", "&="),
    ("^=", "^="),
    ("<<=", "<<="),
    (">>=", ">>="),
    ("**=", "**="),
    ("global", "global"),
    ("**", "pow operator"),
    ("->", "arrow"),
    ("# type:", "type comment"),
    ("raise", "raise"),
    ("assert", "assert"),
    ("...", "dots"),
    ("break", "break"),
    ("continue", "continue"),
    ("del", "del"),
    ("pass", "pass"),
    ("class", "class"),
    ("import", "import"),
    ("with", "with"),
    ("as", "as"),
    ("not in", "not in"),
    ("for", "for"),
    ("in", "in"),
    ("Ellipsis", "Ellipsis"),
    ("NoneType", "NoneType"),
];

const SINGLE_CHARS: &[u8] = b"+-*/%@()[]:,={}><.?!&^|~";

/// `SINGLE_CHARS` as a byte-indexed table (asked once per token).
const IS_SINGLE_CHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < SINGLE_CHARS.len() {
        t[SINGLE_CHARS[i] as usize] = true;
        i += 1;
    }
    t
};

/// The token kind of a multi-character spelling, computed at compile time (the parser asks
/// for these on every type and argument; a run-time search of `MULTI` showed up in profiles).
const fn multi(spelling: &str) -> Kind {
    let want = spelling.as_bytes();
    let mut i = 0;
    while i < MULTI.len() {
        let have = MULTI[i].0.as_bytes();
        if have.len() == want.len() {
            let mut j = 0;
            while j < want.len() && have[j] == want[j] {
                j += 1;
            }
            if j == want.len() {
                return Kind::Multi(i as u8);
            }
        }
        i += 1;
    }
    panic!("not a multi-character token")
}

const ARROW: Kind = multi("->");
const DOTS: Kind = multi("...");
const NONE_KW: Kind = multi("None");
const NONE_TYPE_KW: Kind = multi("NoneType");
const TRUE_KW: Kind = multi("True");
const FALSE_KW: Kind = multi("False");

pub(crate) fn arrow() -> Kind {
    ARROW
}
pub(crate) fn dots() -> Kind {
    DOTS
}
pub(crate) fn none_kw() -> Kind {
    NONE_KW
}
pub(crate) fn none_type_kw() -> Kind {
    NONE_TYPE_KW
}
pub(crate) fn true_kw() -> Kind {
    TRUE_KW
}
pub(crate) fn false_kw() -> Kind {
    FALSE_KW
}

/// The name of a kind as it appears in `expected X but found 'Y' here`.
pub(crate) fn kind_name(k: Kind) -> String {
    match k {
        Kind::Char(c) => (c as char).to_string(),
        Kind::Eof => "eof".into(),
        Kind::Whitespace => "whitespace".into(),
        Kind::WhitespaceEof => "whitespace_eof".into(),
        Kind::Number => "number".into(),
        Kind::Newline => "newline".into(),
        Kind::Indent => "indent".into(),
        Kind::Dedent => "dedent".into(),
        Kind::Ident => "ident".into(),
        Kind::StringLiteral => "string_literal".into(),
        Kind::Multi(i) => MULTI.get(i as usize).map(|m| m.1).unwrap_or("?").into(),
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | 0x0b | 0x0c | b'\r')
}

fn valid_ident(i: usize, c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || (i > 0 && c.is_ascii_digit())
}

/// Length of the longest prefix of `s` that C `strtod` would consume, for a
/// string that does not start with a sign, a letter or whitespace.
pub(crate) fn strtod_len(s: &[u8]) -> usize {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    // hexadecimal
    if at(0) == b'0' && (at(1) == b'x' || at(1) == b'X') {
        let mut i = 2;
        let mut digits = 0;
        while at(i).is_ascii_hexdigit() {
            i += 1;
            digits += 1;
        }
        if at(i) == b'.' {
            i += 1;
            while at(i).is_ascii_hexdigit() {
                i += 1;
                digits += 1;
            }
        }
        if digits > 0 {
            if at(i) == b'p' || at(i) == b'P' {
                let mut j = i + 1;
                if at(j) == b'+' || at(j) == b'-' {
                    j += 1;
                }
                if at(j).is_ascii_digit() {
                    while at(j).is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            return i;
        }
        return 1; // just the "0"
    }
    let mut i = 0;
    let mut digits = 0;
    while at(i).is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if at(i) == b'.' {
        i += 1;
        while at(i).is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return 0;
    }
    if at(i) == b'e' || at(i) == b'E' {
        let mut j = i + 1;
        if at(j) == b'+' || at(j) == b'-' {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            while at(j).is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    i
}

fn number_len(s: &[u8]) -> usize {
    let first = s.first().copied().unwrap_or(0);
    if first == b'-' || first == b'+' || first.is_ascii_alphabetic() {
        return 0;
    }
    let mut len = strtod_len(s);
    if len > 0 && s.get(len) == Some(&b'j') {
        len += 1;
    }
    len
}

fn is_char_count(c: u8, s: &[u8], start: usize, len: usize) -> bool {
    start + len <= s.len() && s[start..start + len].iter().all(|&x| x == c)
}

fn string_len(s: &[u8]) -> Option<usize> {
    let quote = *s.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let qlen = if is_char_count(quote, s, 0, 3) { 3 } else { 1 };
    let mut end = qlen;
    while end < s.len() && !is_char_count(quote, s, end, qlen) {
        if s[end] == b'\n' && qlen != 3 {
            return None;
        }
        if s[end] == b'\\' {
            end += 1;
        }
        end += 1;
    }
    if end < s.len() {
        Some(end + qlen)
    } else {
        None
    }
}

pub(crate) struct Lexer<'a> {
    pub src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    nesting: usize,
    // Inline: a schema has no indentation and at most a couple of queued tokens, so parsing
    // one allocates nothing here.
    indent_stack: smallvec::SmallVec<[usize; 4]>,
    /// Lexed tokens not consumed yet: `next_tokens[head..]`, the current one first. Consuming
    /// one moves `head`; the queue is emptied only when it runs out (no shifting per token).
    next_tokens: smallvec::SmallVec<[Token; 4]>,
    head: usize,
}

struct Raw {
    kind: Kind,
    start: usize,
    end: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Result<Self, SchemaParseError> {
        let mut lx = Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            nesting: 0,
            indent_stack: smallvec::SmallVec::new(),
            next_tokens: smallvec::SmallVec::new(),
            head: 0,
        };
        let first = lx.lex_raw(true)?;
        lx.indent_stack.push(first.end - first.start);
        lx.lex()?;
        Ok(lx)
    }

    fn at(&self, i: usize) -> u8 {
        self.bytes.get(i).copied().unwrap_or(0)
    }

    /// The TorchScript `SharedParserData::match`.
    fn match_token(
        &self,
        mut pos: usize,
        continuation: bool,
        whitespace_token: bool,
    ) -> Result<Raw, usize> {
        let mut start = pos;
        let len = self.bytes.len();
        let mut ws = whitespace_token;
        loop {
            while pos < len && is_blank(self.bytes[pos]) {
                pos += 1;
            }
            if pos < len {
                let c = self.bytes[pos];
                if c == b'#' && !self.bytes[pos..].starts_with(b"# type:") {
                    while pos < len && self.bytes[pos] != b'\n' {
                        pos += 1;
                    }
                    start = pos;
                    continue;
                }
                if c == b'\\' && self.at(pos + 1) == b'\n' && pos + 1 < len && !ws {
                    pos += 2;
                    start = pos;
                    ws = false;
                    continue;
                }
                if c == b'\n' {
                    pos += 1;
                    start = pos;
                    ws = !continuation;
                    continue;
                }
            }
            break;
        }
        if ws {
            let kind = if pos >= len {
                Kind::WhitespaceEof
            } else {
                Kind::Whitespace
            };
            return Ok(Raw {
                kind,
                start,
                end: pos,
            });
        }
        if pos >= len {
            return Ok(Raw {
                kind: Kind::Eof,
                start: pos,
                end: pos,
            });
        }
        let start = pos;
        let rest = &self.bytes[pos..];
        // Only a digit or '.' can start a number (`strtod` of anything else is empty).
        let n = if rest[0].is_ascii_digit() || rest[0] == b'.' {
            number_len(rest)
        } else {
            0
        };
        if n > 0 {
            return Ok(Raw {
                kind: Kind::Number,
                start,
                end: start + n,
            });
        }
        if let Some(n) = string_len(rest) {
            return Ok(Raw {
                kind: Kind::StringLiteral,
                start,
                end: start + n,
            });
        }
        let mut ident_len = 0;
        while ident_len < rest.len() && valid_ident(ident_len, rest[ident_len]) {
            ident_len += 1;
        }
        let mut tok_len = 0;
        let mut tok_kind = None;
        if IS_SINGLE_CHAR[usize::from(rest[0])] {
            tok_len = 1;
            tok_kind = Some(Kind::Char(rest[0]));
        }
        for i in multi_starting_with(rest[0]) {
            let sp = MULTI[usize::from(i)].0.as_bytes();
            // Shorter than the identifier here, a keyword cannot win (the longest token does).
            if sp.len() > tok_len && sp.len() >= ident_len && rest.starts_with(sp) {
                tok_len = sp.len();
                tok_kind = Some(Kind::Multi(i));
            }
        }
        match tok_kind {
            Some(k) if tok_len >= ident_len => Ok(Raw {
                kind: k,
                start,
                end: start + tok_len,
            }),
            _ if ident_len > 0 => Ok(Raw {
                kind: Kind::Ident,
                start,
                end: start + ident_len,
            }),
            _ => Err(start),
        }
    }

    fn lex_raw(&mut self, whitespace_token: bool) -> Result<Raw, SchemaParseError> {
        match self.match_token(self.pos, self.nesting > 0, whitespace_token) {
            Ok(r) => {
                self.pos = r.end;
                Ok(r)
            }
            Err(p) => {
                // PyTorch names the character at the lexer's position (before
                // any blanks are skipped) and highlights the byte where matching failed.
                let c = self.src[self.pos..].chars().next().unwrap_or('\0');
                let end = (p + 1).min(self.bytes.len());
                Err(SchemaParseError::lexer(
                    self.src,
                    (p, end),
                    format!("expected a valid token but found '{c}' here"),
                ))
            }
        }
    }

    fn lex(&mut self) -> Result<(), SchemaParseError> {
        let r = self.lex_raw(false)?;
        let mut kind = r.kind;
        match r.kind {
            Kind::Char(b'(') | Kind::Char(b'[') | Kind::Char(b'{') => {
                self.nesting = self.nesting.wrapping_add(1);
            }
            Kind::Char(b')') | Kind::Char(b']') | Kind::Char(b'}') => {
                self.nesting = self.nesting.wrapping_sub(1);
            }
            Kind::Whitespace | Kind::WhitespaceEof => {
                let depth = if r.kind == Kind::WhitespaceEof {
                    self.indent_stack.first().copied().unwrap_or(0)
                } else {
                    r.end - r.start
                };
                let back = self.indent_stack.last().copied().unwrap_or(0);
                if depth > back {
                    self.indent_stack.push(depth);
                    kind = Kind::Indent;
                } else if depth == back {
                    kind = Kind::Newline;
                } else {
                    self.next_tokens.push(Token {
                        kind: Kind::Newline,
                        start: r.start,
                        end: r.end,
                    });
                    while self.indent_stack.last().copied() != Some(depth) {
                        self.indent_stack.pop();
                        self.next_tokens.push(Token {
                            kind: Kind::Dedent,
                            start: r.start,
                            end: r.end,
                        });
                        if self.indent_stack.is_empty() {
                            return Err(SchemaParseError::lexer(
                                self.src,
                                (r.start, r.end),
                                format!("invalid indent level {depth}"),
                            ));
                        }
                    }
                    return Ok(());
                }
            }
            _ => {}
        }
        self.next_tokens.push(Token {
            kind,
            start: r.start,
            end: r.end,
        });
        Ok(())
    }

    pub(crate) fn cur(&self) -> &Token {
        // The queue is never empty between calls (see `next`).
        &self.next_tokens[self.head]
    }

    pub(crate) fn next(&mut self) -> Result<Token, SchemaParseError> {
        let t = match self.next_tokens.get(self.head) {
            Some(&t) => t,
            None => Token {
                kind: Kind::Eof,
                start: self.bytes.len(),
                end: self.bytes.len(),
            },
        };
        self.head += 1;
        if self.head >= self.next_tokens.len() {
            self.next_tokens.clear();
            self.head = 0;
            self.lex()?;
        }
        Ok(t)
    }

    pub(crate) fn next_if(&mut self, k: Kind) -> Result<bool, SchemaParseError> {
        if self.cur().kind != k {
            return Ok(false);
        }
        self.next()?;
        Ok(true)
    }

    pub(crate) fn lookahead(&mut self) -> Result<&Token, SchemaParseError> {
        if self.next_tokens.len() - self.head < 2 {
            self.lex()?;
        }
        Ok(&self.next_tokens[self.head + 1])
    }

    pub(crate) fn text(&self, t: &Token) -> &'a str {
        &self.src[t.start..t.end]
    }

    pub(crate) fn expected_error(&self, what: &str) -> SchemaParseError {
        let t = self.cur();
        SchemaParseError::lexer(
            self.src,
            (t.start, t.end),
            format!("expected {} but found '{}' here", what, kind_name(t.kind)),
        )
    }

    pub(crate) fn expect(&mut self, k: Kind) -> Result<Token, SchemaParseError> {
        if self.cur().kind != k {
            return Err(self.expected_error(&kind_name(k)));
        }
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Kind> {
        let mut lx = Lexer::new(s).unwrap();
        let mut v = vec![];
        loop {
            let t = lx.next().unwrap();
            v.push(t.kind);
            if t.kind == Kind::Eof {
                break;
            }
        }
        v
    }

    #[test]
    fn numbers_and_idents() {
        assert_eq!(strtod_len(b"1.5e3x"), 5);
        assert_eq!(strtod_len(b".1bad"), 2);
        assert_eq!(strtod_len(b"1e"), 1);
        assert_eq!(strtod_len(b"0x1fz"), 4);
        assert_eq!(strtod_len(b"0xg"), 1);
        assert_eq!(
            kinds("a.1b"),
            vec![Kind::Ident, Kind::Number, Kind::Ident, Kind::Eof]
        );
        assert_eq!(kinds("is not"), vec![multi("is not"), Kind::Eof]);
        assert_eq!(kinds("define"), vec![Kind::Ident, Kind::Eof]);
        assert_eq!(
            kinds("a->b"),
            vec![Kind::Ident, arrow(), Kind::Ident, Kind::Eof]
        );
        assert_eq!(kinds("x\n"), vec![Kind::Ident, Kind::Newline, Kind::Eof]);
    }
}
