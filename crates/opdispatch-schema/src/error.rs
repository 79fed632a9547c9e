//! Parse errors, formatted the way PyTorch's exceptions read from Python.

use std::fmt;

/// How PyTorch raised the error (all of them surface as `RuntimeError` in Python).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ErrorReport` from the schema parser: `"\n<message>:\n<highlight>"`.
    Report,
    /// The lexer's `expected ...` / `reportError`: `"<message>:\n<highlight>"`.
    Lexer,
    /// `TORCH_CHECK`: the message alone.
    Check,
    /// `TORCH_INTERNAL_ASSERT`: `<cond> INTERNAL ASSERT FAILED at "<file>":<line>, please report a bug to PyTorch. <message>`.
    InternalAssert,
    /// A C++ standard-library exception (`std::stoll` / `std::stod` failures, allocation failures): its `what()`.
    StdException,
}

/// A schema parse (or schema construction) error.  `Display` gives the exact
/// text of `str(e)` for the corresponding PyTorch exception.
///
/// Boxed, so the parser's `Result`s stay a word or two wide: every token passes through one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.text)]
pub struct SchemaParseError(Box<Details>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Details {
    kind: ErrorKind,
    message: String,
    /// Byte range of the offending token in the input, when there is one.
    range: Option<(usize, usize)>,
    text: String,
}

impl SchemaParseError {
    pub(crate) fn report(source: &str, range: (usize, usize), message: impl Into<String>) -> Self {
        let message = message.into();
        let text = format!("\n{}:\n{}", message, highlight(source, range.0, range.1));
        SchemaParseError(Box::new(Details {
            kind: ErrorKind::Report,
            message,
            range: Some(range),
            text,
        }))
    }

    pub(crate) fn lexer(source: &str, range: (usize, usize), message: impl Into<String>) -> Self {
        let message = message.into();
        let text = format!("{}:\n{}", message, highlight(source, range.0, range.1));
        SchemaParseError(Box::new(Details {
            kind: ErrorKind::Lexer,
            message,
            range: Some(range),
            text,
        }))
    }

    pub(crate) fn check(message: impl Into<String>) -> Self {
        let message = message.into();
        SchemaParseError(Box::new(Details {
            kind: ErrorKind::Check,
            text: message.clone(),
            message,
            range: None,
        }))
    }

    pub(crate) fn internal_assert(
        cond: &str,
        file: &str,
        line: u32,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        let text = format!(
            "{cond} INTERNAL ASSERT FAILED at \"{file}\":{line}, please report a bug to PyTorch. {message}"
        );
        SchemaParseError(Box::new(Details {
            kind: ErrorKind::InternalAssert,
            message,
            range: None,
            text,
        }))
    }

    pub(crate) fn std_exception(what: &str) -> Self {
        SchemaParseError(Box::new(Details {
            kind: ErrorKind::StdException,
            message: what.to_string(),
            range: None,
            text: what.to_string(),
        }))
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message without the source excerpt (e.g. `expected ) but found 'eof' here`).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Byte range `[start, end)` of the highlighted token, if any.
    pub fn range(&self) -> Option<(usize, usize)> {
        self.0.range
    }

    /// The Python exception type name PyTorch raises for this error.
    pub fn python_type(&self) -> &'static str {
        "RuntimeError"
    }

    /// The first non-empty line of `str(e)`, as the conformance kit records it.
    pub fn first_line(&self) -> &str {
        self.0.text.lines().find(|l| !l.is_empty()).unwrap_or("")
    }
}

/// The number of context lines PyTorch prints around a highlighted range.
const CONTEXT: usize = 3;

/// `SourceRange::highlight`: the source lines around `[start, end)` with the
/// range underlined by `~` and marked `<--- HERE`.
pub(crate) fn highlight(source: &str, start: usize, end: usize) -> String {
    let s = source.as_bytes();
    let len = s.len();
    let at = |i: usize| -> u8 { s.get(i).copied().unwrap_or(0) };
    let mut out: Vec<u8> = Vec::new();
    if end.saturating_sub(start) == len {
        return source.to_string();
    }
    let range_end = end.min(len);
    if start > len {
        return String::new();
    }
    let mut begin_line = start;
    while begin_line > 0 && s[begin_line - 1] != b'\n' {
        begin_line -= 1;
    }
    let mut end_line = range_end;
    while end_line < len && s[end_line] != b'\n' {
        end_line += 1;
    }
    let mut begin_context = begin_line;
    let mut seen = 0;
    while begin_context > 0 {
        if s[begin_context - 1] == b'\n' {
            seen += 1;
        }
        if seen >= CONTEXT {
            break;
        }
        begin_context -= 1;
    }
    let mut end_context = end_line;
    let mut seen = 0;
    while end_context < len {
        if s[end_context] == b'\n' {
            seen += 1;
        }
        if seen >= CONTEXT {
            break;
        }
        end_context += 1;
    }
    out.extend_from_slice(&s[begin_context..start]);
    let mut line_start = start;
    let mut line_end = start;
    while line_start < range_end {
        while line_end < len && s[line_end] != b'\n' {
            line_end += 1;
        }
        let stop = (line_end + 1).min(len);
        let actual = &s[line_start..stop];
        out.extend_from_slice(actual);
        if actual.last() != Some(&b'\n') {
            out.push(b'\n');
        }
        let mut hl_begin = line_start;
        while hl_begin > 0 && s[hl_begin - 1] != b'\n' {
            hl_begin -= 1;
        }
        let mut hl_end = line_start;
        while hl_end < range_end && s[hl_end] != b'\n' {
            hl_end += 1;
        }
        let empty = s[hl_begin..hl_end]
            .iter()
            .enumerate()
            .take_while(|(k, c)| **c == b' ' || hl_begin + k < start)
            .count();
        let hl = hl_end - hl_begin - empty;
        if hl > 0 {
            let more_lines = (line_end..=range_end).any(|i| at(i) != b'\n' && at(i) != b' ');
            out.extend(std::iter::repeat_n(b' ', empty));
            out.extend(std::iter::repeat_n(b'~', hl));
            if more_lines && line_end != range_end {
                out.push(b'\n');
            } else {
                out.extend_from_slice(b" <--- HERE\n");
            }
        }
        line_end += 1;
        line_start = line_end;
    }
    if line_end <= len {
        let stop = if end_context >= line_end {
            end_context
        } else {
            len
        };
        let tail = &s[line_end..stop];
        out.extend_from_slice(tail);
        if !tail.is_empty() && tail.last() != Some(&b'\n') {
            out.push(b'\n');
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Report => "report",
            ErrorKind::Lexer => "lexer",
            ErrorKind::Check => "check",
            ErrorKind::InternalAssert => "internal assert",
            ErrorKind::StdException => "std exception",
        };
        f.write_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_single_line() {
        let src = "foo(Tensr x) -> Tensor";
        assert_eq!(
            highlight(src, 4, 9),
            "foo(Tensr x) -> Tensor\n    ~~~~~ <--- HERE\n"
        );
    }

    #[test]
    fn highlight_eof() {
        let src = "foo(Tensor x";
        assert_eq!(highlight(src, 12, 12), "foo(Tensor x");
    }
}
