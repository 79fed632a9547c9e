//! Default values of schema arguments and their printed form.

use std::fmt;

/// A default value, printed the way PyTorch prints the corresponding IValue
/// inside a schema.
#[derive(Clone, Debug, PartialEq)]
pub enum DefaultValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// (real, imaginary)
    Complex(f64, f64),
    Str(String),
    /// A string whose bytes are not valid UTF-8 (produced by octal escapes).
    Bytes(Vec<u8>),
    IntList(Vec<i64>),
    FloatList(Vec<f64>),
    BoolList(Vec<bool>),
    ComplexList(Vec<(f64, f64)>),
    /// A device, in its printed form (`cpu`, `cuda:1`).
    Device(String),
}

impl DefaultValue {
    /// The IValue tag name PyTorch uses in diagnostics.
    pub(crate) fn tag_kind(&self) -> &'static str {
        match self {
            DefaultValue::None => "None",
            DefaultValue::Bool(_) => "Bool",
            DefaultValue::Int(_) => "Int",
            DefaultValue::Float(_) => "Double",
            DefaultValue::Complex(..) => "ComplexDouble",
            DefaultValue::Str(_) | DefaultValue::Bytes(_) => "String",
            DefaultValue::IntList(_)
            | DefaultValue::FloatList(_)
            | DefaultValue::BoolList(_)
            | DefaultValue::ComplexList(_) => "GenericList",
            DefaultValue::Device(_) => "Device",
        }
    }

    /// The string bytes, when this is a string value.
    pub fn string_bytes(&self) -> Option<&[u8]> {
        match self {
            DefaultValue::Str(s) => Some(s.as_bytes()),
            DefaultValue::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// `%.17g` formatting (what `std::setprecision(17)` gives for a double).
pub(crate) fn format_g17(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    const P: i32 = 17;
    let sci = format!("{:.*e}", (P - 1) as usize, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..P).contains(&exp) {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (P - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// IValue `operator<<` for a double.
pub(crate) fn format_double(d: f64) -> String {
    if d.is_finite() && (d == 0.0 || d.is_normal()) {
        // C++ converts with truncation; out-of-range values never compare equal.
        if d.abs() < 9.2e18 {
            let i = d as i64;
            if i as f64 == d {
                return format!("{i}.");
            }
        }
    }
    format_g17(d)
}

pub(crate) fn format_complex(re: f64, im: f64) -> String {
    let sign = if im >= 0.0 { '+' } else { '-' };
    format!("{}{}{}j", format_double(re), sign, format_double(im.abs()))
}

/// PyTorch's `printQuotedString`, over raw bytes.
pub(crate) fn quoted_string(bytes: &[u8]) -> String {
    let mut out: Vec<u8> = vec![b'"'];
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\'' => out.extend_from_slice(b"\\'"),
            b'"' => out.extend_from_slice(b"\\\""),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x0b => out.extend_from_slice(b"\\v"),
            0x20..=0x7e => out.push(b),
            _ => {
                // Same digit arithmetic as the C++ code on a (signed) char.
                let mut s = b as i8;
                let d2 = s % 8;
                s /= 8;
                let d1 = s % 8;
                s /= 8;
                let d0 = s;
                out.push(b'\\');
                for d in [d0, d1, d2] {
                    out.push(b'0'.wrapping_add(d as u8));
                }
            }
        }
    }
    out.push(b'"');
    String::from_utf8_lossy(&out).into_owned()
}

fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    each: impl Fn(&T) -> String,
) -> fmt::Result {
    f.write_str("[")?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(&each(x))?;
    }
    f.write_str("]")
}

/// IValue `operator<<` (strings are printed raw, as PyTorch does).
impl fmt::Display for DefaultValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefaultValue::None => f.write_str("None"),
            DefaultValue::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            DefaultValue::Int(i) => write!(f, "{i}"),
            DefaultValue::Float(d) => f.write_str(&format_double(*d)),
            DefaultValue::Complex(re, im) => f.write_str(&format_complex(*re, *im)),
            DefaultValue::Str(s) => f.write_str(s),
            DefaultValue::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            DefaultValue::IntList(v) => write_list(f, v, ToString::to_string),
            DefaultValue::FloatList(v) => write_list(f, v, |x| format_double(*x)),
            DefaultValue::BoolList(v) => {
                write_list(f, v, |x| if *x { "True".into() } else { "False".into() })
            }
            DefaultValue::ComplexList(v) => write_list(f, v, |(r, i)| format_complex(*r, *i)),
            DefaultValue::Device(d) => f.write_str(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles() {
        assert_eq!(format_double(1e-5), "1.0000000000000001e-05");
        assert_eq!(format_double(0.5), "0.5");
        assert_eq!(format_double(1.0), "1.");
        assert_eq!(format_double(-0.0), "0.");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1.0 / 3.0), "0.33333333333333331");
        assert_eq!(format_double(1e-8), "1e-08");
        assert_eq!(format_double(1e-6), "9.9999999999999995e-07");
        assert_eq!(format_double(1e300), "1.0000000000000001e+300");
        assert_eq!(format_double(123456.25), "123456.25");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(5e-324), "4.9406564584124654e-324");
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted_string(b"a\"'\\\n"), "\"a\\\"\\'\\\\\\n\"");
        assert_eq!(quoted_string(&[1]), "\"\\001\"");
        assert_eq!(quoted_string(&[0xc3]), "\"\\0)+\"");
    }
}
