//! The schema parser (declarations, types, alias annotations, defaults).

use crate::custom_class::is_custom_class_registered;
use crate::error::SchemaParseError;
use crate::lexer::{self, Kind, Lexer, Token};
use crate::value::DefaultValue;
use crate::{
    AliasInfo, Argument, FunctionSchema, OperatorName, OperatorNameParts, SchemaOrName, Type,
};

type PResult<T> = Result<T, SchemaParseError>;

/// Largest list a `T[N] x=v` default may expand to before we report the
/// allocation failure PyTorch would eventually hit.
const MAX_REPEAT: i64 = 1 << 22;

const UNKNOWN_TYPE: &str = "unknown type specifier. Common valid schema types include Tensor, SymInt, int, float, bool, Scalar; for a full list, please see https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/README.md#func ";

/// Dtype names accepted as `ScalarType` defaults, with their enum values.
const DTYPE_NAMES: &[(&str, i64)] = &[
    ("uint8", 0),
    ("int8", 1),
    ("int16", 2),
    ("short", 2),
    ("int32", 3),
    ("int", 3),
    ("int64", 4),
    ("long", 4),
    ("float16", 5),
    ("half", 5),
    ("float32", 6),
    ("float", 6),
    ("float64", 7),
    ("double", 7),
    ("complex32", 8),
    ("chalf", 8),
    ("complex64", 9),
    ("cfloat", 9),
    ("complex128", 10),
    ("cdouble", 10),
    ("bool", 11),
    ("qint8", 12),
    ("quint8", 13),
    ("qint32", 14),
    ("bfloat16", 15),
    ("quint4x2", 16),
    ("quint2x4", 17),
    ("bits1x8", 18),
    ("bits2x4", 19),
    ("bits4x2", 20),
    ("bits8", 21),
    ("bits16", 22),
    ("float8_e5m2", 23),
    ("float8_e4m3fn", 24),
    ("float8_e5m2fnuz", 25),
    ("float8_e4m3fnuz", 26),
    ("uint16", 27),
    ("uint32", 28),
    ("uint64", 29),
    ("uint1", 30),
    ("bit", 30),
    ("uint2", 31),
    ("uint3", 32),
    ("uint4", 33),
    ("uint5", 34),
    ("uint6", 35),
    ("uint7", 36),
    ("int1", 37),
    ("int2", 38),
    ("int3", 39),
    ("int4", 40),
    ("int5", 41),
    ("int6", 42),
    ("int7", 43),
    ("float8_e8m0fnu", 44),
    ("float4_e2m1fn_x2", 45),
];

/// PyTorch's device type names, in its order (`c10::DeviceType`'s parse list).
pub const DEVICE_TYPES: &[&str] = &[
    "cpu",
    "cuda",
    "ipu",
    "xpu",
    "mkldnn",
    "opengl",
    "opencl",
    "ideep",
    "hip",
    "ve",
    "fpga",
    "maia",
    "xla",
    "lazy",
    "vulkan",
    "mps",
    "meta",
    "hpu",
    "mtia",
    "privateuseone",
];

fn std_ex(what: &str) -> SchemaParseError {
    SchemaParseError::std_exception(what)
}

/// `std::stoll` on a token's text.
fn stoll(s: &str) -> PResult<i64> {
    let b = s
        .trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return Err(std_ex("stoll"));
    }
    let mut v: i128 = 0;
    for &c in &digits[..n] {
        v = v * 10 + i128::from(c - b'0');
        if v > i128::from(i64::MAX) + 1 {
            return Err(std_ex("stoll"));
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).map_err(|_| std_ex("stoll"))
}

fn parse_hex_float(body: &[u8]) -> f64 {
    // body starts after "0x"
    let mut i = 0;
    let mut mant = 0f64;
    let mut exp: i64 = 0;
    while i < body.len() && body[i].is_ascii_hexdigit() {
        mant = mant * 16.0 + f64::from((body[i] as char).to_digit(16).unwrap_or(0));
        i += 1;
    }
    if i < body.len() && body[i] == b'.' {
        i += 1;
        while i < body.len() && body[i].is_ascii_hexdigit() {
            mant = mant * 16.0 + f64::from((body[i] as char).to_digit(16).unwrap_or(0));
            exp -= 4;
            i += 1;
        }
    }
    if i < body.len() && (body[i] == b'p' || body[i] == b'P') {
        if let Ok(e) = std::str::from_utf8(&body[i + 1..])
            .unwrap_or("0")
            .parse::<i64>()
        {
            exp = exp.saturating_add(e);
        }
    }
    mant * 2f64.powi(exp.clamp(-5000, 5000) as i32)
}

/// `std::stod` on a token's text.
fn stod(s: &str) -> PResult<f64> {
    let b = s
        .trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r'])
        .as_bytes();
    let (neg, body) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let first = body.first().copied().unwrap_or(0);
    if first.is_ascii_alphabetic() {
        // inf / nan spellings never reach here from a number token
        return Err(std_ex("stod"));
    }
    let len = lexer::strtod_len(body);
    if len == 0 {
        return Err(std_ex("stod"));
    }
    let text = &body[..len];
    let nonzero_digits;
    let v = if len > 2 && (text[1] == b'x' || text[1] == b'X') {
        nonzero_digits = text[2..]
            .iter()
            .take_while(|c| **c != b'p' && **c != b'P')
            .any(|c| c.is_ascii_hexdigit() && *c != b'0');
        parse_hex_float(&text[2..])
    } else {
        let t = std::str::from_utf8(text).unwrap_or("0");
        let mantissa_end = t.find(['e', 'E']).unwrap_or(t.len());
        nonzero_digits = t[..mantissa_end]
            .bytes()
            .any(|c| c.is_ascii_digit() && c != b'0');
        let mut norm = String::with_capacity(t.len() + 2);
        let mut prev_dot = false;
        for (i, ch) in t.char_indices() {
            if prev_dot && !ch.is_ascii_digit() {
                norm.push('0');
            }
            if ch == '.' && i == 0 {
                norm.push('0');
            }
            norm.push(ch);
            prev_dot = ch == '.';
        }
        if prev_dot {
            norm.push('0');
        }
        norm.parse::<f64>().map_err(|_| std_ex("stod"))?
    };
    if v.is_infinite() || (nonzero_digits && (v == 0.0 || v.is_subnormal())) {
        return Err(std_ex("stod"));
    }
    Ok(if neg { -v } else { v })
}

fn is_possibly_optional_scalar_type(t: &Type) -> bool {
    match t {
        Type::ScalarType => true,
        Type::Optional(inner) => is_possibly_optional_scalar_type(inner),
        _ => false,
    }
}

fn internal(cond: &str, msg: impl Into<String>) -> SchemaParseError {
    SchemaParseError::internal_assert(cond, file!(), line!(), msg)
}

fn to_int(v: &DefaultValue) -> PResult<i64> {
    match v {
        DefaultValue::Int(i) => Ok(*i),
        _ => Err(internal("0", "expected int")),
    }
}
fn to_double(v: &DefaultValue) -> PResult<f64> {
    match v {
        DefaultValue::Float(d) => Ok(*d),
        _ => Err(internal("0", "expected double")),
    }
}
fn to_bool(v: &DefaultValue) -> PResult<bool> {
    match v {
        DefaultValue::Bool(b) => Ok(*b),
        _ => Err(internal("0", "expected bool")),
    }
}
fn to_complex(v: &DefaultValue) -> PResult<(f64, f64)> {
    match v {
        DefaultValue::Complex(r, i) => Ok((*r, *i)),
        other => Err(internal(
            "isComplexDouble()",
            format!("Expected ComplexDouble but got {}", other.tag_kind()),
        )),
    }
}

/// `c10::Device(const std::string&)`, returning the printed form.
fn parse_device(s: &str) -> PResult<String> {
    if s.is_empty() {
        return Err(SchemaParseError::check("Device string must not be empty"));
    }
    let invalid = || SchemaParseError::check(format!("Invalid device string: '{s}'"));
    let (ty, index) = match s.find(':') {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    if ty.is_empty() || !ty.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_') {
        return Err(invalid());
    }
    if let Some(idx) = index {
        if idx.is_empty()
            || !idx.bytes().all(|c| c.is_ascii_digit())
            || (idx.len() > 1 && idx.starts_with('0'))
        {
            return Err(invalid());
        }
    }
    if !DEVICE_TYPES.contains(&ty) {
        return Err(SchemaParseError::check(format!(
            "Expected one of {} device type at start of device string: {}",
            DEVICE_TYPES.join(", "),
            ty
        )));
    }
    match index {
        None => Ok(ty.to_string()),
        Some(idx) => {
            let v: i64 = idx.parse().map_err(|_| invalid())?;
            if v > i64::from(i8::MAX) {
                return Err(invalid());
            }
            Ok(format!("{ty}:{v}"))
        }
    }
}

/// Nesting limit for types (PyTorch recurses without bound; we refuse
/// instead of overflowing the stack).
const MAX_TYPE_DEPTH: usize = 40;

fn type_depth(t: &Type) -> usize {
    match t {
        Type::Optional(x) | Type::List(x) | Type::Future(x) | Type::Await(x) | Type::RRef(x) => {
            1 + type_depth(x)
        }
        Type::Dict(k, v) => 1 + type_depth(k).max(type_depth(v)),
        Type::Tuple(ts) | Type::Union(ts) => 1 + ts.iter().map(type_depth).max().unwrap_or(0),
        _ => 1,
    }
}

pub(crate) struct Parser<'a> {
    lx: Lexer<'a>,
    allow_typevars: bool,
    next_alias_id: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, allow_typevars: bool) -> PResult<Self> {
        Ok(Parser {
            lx: Lexer::new(src)?,
            allow_typevars,
            next_alias_id: 0,
            depth: 0,
        })
    }

    fn src(&self) -> &'a str {
        self.lx.src
    }

    fn report_at(&self, t: &Token, msg: impl Into<String>) -> SchemaParseError {
        SchemaParseError::report(self.src(), (t.start, t.end), msg)
    }

    fn report_cur(&self, msg: impl Into<String>) -> SchemaParseError {
        let t = *self.lx.cur();
        self.report_at(&t, msg)
    }

    fn cur_kind(&self) -> Kind {
        self.lx.cur().kind
    }

    fn cur_text(&self) -> &'a str {
        let t = self.lx.cur();
        &self.lx.src[t.start..t.end]
    }

    fn expect_text(&mut self, k: Kind) -> PResult<&'a str> {
        let t = self.lx.expect(k)?;
        Ok(self.lx.text(&t))
    }

    fn parse_list(
        &mut self,
        begin: Option<u8>,
        sep: u8,
        end: Option<u8>,
        mut cb: impl FnMut(&mut Self) -> PResult<()>,
    ) -> PResult<()> {
        if let Some(b) = begin {
            self.lx.expect(Kind::Char(b))?;
        }
        let at_end = match end {
            Some(e) => self.cur_kind() == Kind::Char(e),
            None => false,
        };
        if !at_end {
            loop {
                cb(self)?;
                if !self.lx.next_if(Kind::Char(sep))? {
                    break;
                }
            }
        }
        if let Some(e) = end {
            self.lx.expect(Kind::Char(e))?;
        }
        Ok(())
    }

    fn parse_exactly_one_declaration(&mut self) -> PResult<SchemaOrName> {
        let result = self.parse_declaration()?;
        self.lx.next_if(Kind::Newline)?;
        self.lx.expect(Kind::Eof)?;
        Ok(result)
    }

    fn parse_name(&mut self) -> PResult<OperatorName> {
        let mut name = self.expect_text(Kind::Ident)?.to_string();
        if self.lx.next_if(Kind::Char(b':'))? {
            self.lx.expect(Kind::Char(b':'))?;
            let second = self.expect_text(Kind::Ident)?;
            name = format!("{name}::{second}");
        }
        let mut overload = String::new();
        if self.lx.next_if(Kind::Char(b'.'))? {
            overload = self.expect_text(Kind::Ident)?.to_string();
        }
        if overload == "default" || overload.starts_with("__") {
            return Err(SchemaParseError::check(format!(
                "{overload} is not a legal overload name for aten operators"
            )));
        }
        Ok(OperatorName {
            name,
            overload_name: overload,
        })
    }

    fn parse_declaration(&mut self) -> PResult<SchemaOrName> {
        let name = self.parse_name()?;
        if self.cur_kind() != Kind::Char(b'(') {
            return Ok(SchemaOrName::Name(name));
        }
        // Collected inline, then moved to exactly-sized vectors: a registry keeps thousands
        // of schemas, and a growing Vec would leave each with room for four arguments.
        let mut arguments = smallvec::SmallVec::<[Argument; 4]>::new();
        let mut returns = smallvec::SmallVec::<[Argument; 2]>::new();
        let mut kwarg_only = false;
        let mut is_vararg = false;
        let mut is_varret = false;
        self.parse_list(Some(b'('), b',', Some(b')'), |p| {
            if is_vararg {
                return Err(p.report_cur("... must be the last element of the argument list"));
            }
            if p.lx.next_if(Kind::Char(b'*'))? {
                kwarg_only = true;
            } else if p.lx.next_if(lexer::dots())? {
                is_vararg = true;
            } else {
                arguments.push(p.parse_argument(false, kwarg_only)?);
            }
            Ok(())
        })?;
        if is_vararg && arguments.iter().any(|a| a.default.is_some()) {
            return Err(self.report_cur("schemas with vararg (...) can't have default value args"));
        }
        self.lx.expect(lexer::arrow())?;
        if self.lx.next_if(lexer::dots())? {
            is_varret = true;
        } else if self.cur_kind() == Kind::Char(b'(') {
            self.parse_list(Some(b'('), b',', Some(b')'), |p| {
                if is_varret {
                    return Err(p.report_cur("... must be the last element of the return list"));
                }
                if p.lx.next_if(lexer::dots())? {
                    is_varret = true;
                } else {
                    returns.push(p.parse_argument(true, false)?);
                }
                Ok(())
            })?;
        } else {
            returns.push(self.parse_argument(true, false)?);
        }
        let schema = FunctionSchema::new(
            name,
            exact_vec(&mut arguments),
            exact_vec(&mut returns),
            is_vararg,
            is_varret,
        )?;
        Ok(SchemaOrName::Schema(schema))
    }

    fn optional(t: Type) -> PResult<Type> {
        Type::optional_of(t).map_err(|m| internal("false", m))
    }

    fn parse_argument(&mut self, is_return: bool, kwarg_only: bool) -> PResult<Argument> {
        let (mut ty, mut alias_info) = self.parse_type()?;
        let mut n = None;
        if self.lx.next_if(Kind::Char(b'['))? {
            ty = Type::List(Box::new(ty));
            let num = self.expect_text(Kind::Number)?;
            // stored as int32_t in PyTorch
            n = Some(i64::from(stoll(num)? as i32));
            self.lx.expect(Kind::Char(b']'))?;
            let mut container = self.parse_alias_annotation()?;
            if let Some(inner) = alias_info.take() {
                let c = container.get_or_insert_with(|| AliasInfo {
                    is_write: inner.is_write,
                    ..AliasInfo::default()
                });
                c.contained.push(inner);
            }
            alias_info = container;
            if self.lx.next_if(Kind::Char(b'?'))? {
                ty = Self::optional(ty)?;
            }
        }
        let name;
        let mut default = None;
        if is_return {
            name = if self.cur_kind() == Kind::Ident {
                let t = self.lx.next()?;
                self.lx.text(&t).to_string()
            } else {
                String::new()
            };
        } else {
            name = self.expect_text(Kind::Ident)?.to_string();
            if self.lx.next_if(Kind::Char(b'='))? {
                default = Some(self.parse_default_value(&ty, n)?);
            }
        }
        Ok(Argument {
            name,
            ty,
            n,
            default,
            kwarg_only: !is_return && kwarg_only,
            alias_info: alias_info.map(Box::new),
        })
    }

    /// `parseType()`: the fake type (used for anything nested in another type).
    fn parse_nested_type(&mut self) -> PResult<Type> {
        Ok(self.parse_type()?.0.fake())
    }

    /// `parseFakeAndRealType()`, returning the real type.
    fn parse_type(&mut self) -> PResult<(Type, Option<AliasInfo>)> {
        if self.depth >= MAX_TYPE_DEPTH {
            return Err(self.report_cur(format!(
                "type nesting exceeds the supported depth of {MAX_TYPE_DEPTH}"
            )));
        }
        self.depth += 1;
        let r = self.parse_type_inner();
        self.depth -= 1;
        r
    }

    fn parse_type_inner(&mut self) -> PResult<(Type, Option<AliasInfo>)> {
        let mut alias_info = None;
        let cur = self.cur_kind();
        let text = if cur == Kind::Ident {
            self.cur_text()
        } else {
            ""
        };
        let mut ty = if cur == Kind::Char(b'(') {
            let mut elems = Vec::new();
            self.parse_list(Some(b'('), b',', Some(b')'), |p| {
                elems.push(p.parse_nested_type()?);
                Ok(())
            })?;
            Type::Tuple(elems)
        } else if cur == Kind::Ident && (text == "Future" || text == "Await" || text == "RRef") {
            self.lx.next()?;
            self.lx.expect(Kind::Char(b'('))?;
            let inner = Box::new(self.parse_nested_type()?);
            self.lx.expect(Kind::Char(b')'))?;
            match text {
                "Future" => Type::Future(inner),
                "Await" => Type::Await(inner),
                _ => Type::RRef(inner),
            }
        } else if cur == Kind::Ident && text == "Tensor" {
            self.lx.next()?;
            alias_info = self.parse_alias_annotation()?;
            Type::Tensor
        } else if cur == Kind::Ident && text == "Dict" {
            self.lx.next()?;
            self.lx.expect(Kind::Char(b'('))?;
            let k = self.parse_nested_type()?;
            self.lx.expect(Kind::Char(b','))?;
            let v = self.parse_nested_type()?;
            self.lx.expect(Kind::Char(b')'))?;
            alias_info = self.parse_alias_annotation()?;
            Type::Dict(Box::new(k), Box::new(v))
        } else if cur == Kind::Ident && text == "Union" {
            self.lx.next()?;
            self.lx.expect(Kind::Char(b'('))?;
            let mut members = vec![self.parse_nested_type()?];
            while self.cur_kind() != Kind::Char(b')') {
                self.lx.expect(Kind::Char(b','))?;
                members.push(self.parse_nested_type()?);
            }
            self.lx.expect(Kind::Char(b')'))?;
            alias_info = self.parse_alias_annotation()?;
            Type::union_of(members).map_err(|m| internal("false", m))?
        } else if cur == Kind::Ident && text == "__torch__" {
            self.lx.next()?;
            self.lx.expect(Kind::Char(b'.'))?;
            for expected in ["torch", "classes"] {
                let t = self.lx.expect(Kind::Ident)?;
                let got = self.lx.text(&t);
                if got != expected {
                    return Err(
                        self.report_at(&t, format!("Expected classes namespace but got {got}"))
                    );
                }
                self.lx.expect(Kind::Char(b'.'))?;
            }
            let ns = self.expect_text(Kind::Ident)?;
            self.lx.expect(Kind::Char(b'.'))?;
            let cls_tok = self.lx.expect(Kind::Ident)?;
            let cls = self.lx.text(&cls_tok);
            if !is_custom_class_registered(ns, cls) {
                return Err(self.report_at(
                    &cls_tok,
                    format!(
                        "Unknown custom class type {ns}.{cls}. Please ensure it is registered."
                    ),
                ));
            }
            Type::Class(format!("__torch__.torch.classes.{ns}.{cls}"))
        } else {
            let t = self.parse_base_type()?;
            alias_info = self.parse_alias_annotation()?;
            t
        };
        let mut list_depth = self.depth + type_depth(&ty);
        loop {
            if self.cur_kind() == Kind::Char(b'[') && self.lx.lookahead()?.kind == Kind::Char(b']')
            {
                list_depth += 1;
                if list_depth > MAX_TYPE_DEPTH {
                    return Err(self.report_cur(format!(
                        "type nesting exceeds the supported depth of {MAX_TYPE_DEPTH}"
                    )));
                }
                self.lx.next()?;
                self.lx.next()?;
                ty = Type::List(Box::new(ty));
                let mut container = self.parse_alias_annotation()?;
                if let Some(inner) = alias_info.take() {
                    let c = container.get_or_insert_with(|| AliasInfo {
                        is_write: inner.is_write,
                        ..AliasInfo::default()
                    });
                    c.contained.push(inner);
                }
                alias_info = container;
            } else if self.lx.next_if(Kind::Char(b'?'))? {
                ty = Self::optional(ty)?;
            } else {
                break;
            }
        }
        Ok((ty, alias_info))
    }

    fn parse_base_type(&mut self) -> PResult<Type> {
        let tok = *self.lx.cur();
        if !self.lx.next_if(lexer::none_kw())? && !self.lx.next_if(lexer::none_type_kw())? {
            self.lx.expect(Kind::Ident)?;
        }
        let text = self.lx.text(&tok);
        let t = match text {
            "Generator" => Type::Generator,
            "Dimname" => Type::Str,
            "ScalarType" => Type::ScalarType,
            "Layout" => Type::Layout,
            "MemoryFormat" => Type::MemoryFormat,
            "Storage" => Type::Storage,
            "QScheme" => Type::QScheme,
            "Quantizer" => Type::Quantizer,
            "ConstQuantizerPtr" => Type::Int,
            "Device" => Type::Device,
            "DeviceIndex" => Type::Int,
            "Stream" => Type::Stream,
            "Scalar" => Type::Scalar,
            "str" => Type::Str,
            "float" => Type::Float,
            "complex" => Type::Complex,
            "int" => Type::Int,
            "SymInt" => Type::SymInt,
            "SymBool" => Type::SymBool,
            "bool" => Type::Bool,
            "None" | "NoneType" => Type::NoneType,
            "Capsule" => Type::Capsule,
            "Any" => Type::Any,
            "AnyClassType" => Type::AnyClassType,
            "AnyEnumType" => Type::AnyEnumType,
            _ => {
                if self.allow_typevars
                    && text.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                {
                    return Ok(Type::Var(text.to_string()));
                }
                let msg = match text {
                    "double" => "Use `float` instead of `double` in an operator's schema string. `float` in schema corresponds to the double type in C++",
                    "int64_t" => "Use `SymInt` or `int` instead of `int64_t` in an operator's schema string. `SymInt` corresponds to c10::SymInt in C++ while `int` in schema corresponds to the int64_t type in C++.",
                    _ => UNKNOWN_TYPE,
                };
                return Err(self.report_at(&tok, msg));
            }
        };
        Ok(t)
    }

    fn alias_set_list(&mut self, info: &mut AliasInfo, after: bool) -> PResult<()> {
        self.parse_list(None, b'|', None, |p| {
            if p.lx.next_if(Kind::Char(b'*'))? {
                if after {
                    info.add_after_set(AliasInfo::WILDCARD);
                } else {
                    info.add_before_set(AliasInfo::WILDCARD);
                }
            } else if !(if after {
                info.is_wildcard_after()
            } else {
                info.is_wildcard_before()
            }) {
                let name = p.expect_text(Kind::Ident)?;
                if after {
                    info.add_after_set(name);
                } else {
                    info.add_before_set(name);
                }
            }
            Ok(())
        })
    }

    fn parse_alias_annotation(&mut self) -> PResult<Option<AliasInfo>> {
        if !matches!(self.cur_kind(), Kind::Char(b'(' | b'!')) {
            return Ok(None);
        }
        let mut info = AliasInfo::default();
        if self.lx.next_if(Kind::Char(b'('))? {
            self.alias_set_list(&mut info, false)?;
            if self.lx.next_if(Kind::Char(b'!'))? {
                info.is_write = true;
            }
            if self.lx.next_if(lexer::arrow())? {
                self.alias_set_list(&mut info, true)?;
            } else {
                // Same elements, same (reversed-insertion) iteration order.
                info.after_sets = Vec::new();
                for s in info.before_sets.clone().iter().rev() {
                    info.add_after_set(s);
                }
            }
            self.lx.expect(Kind::Char(b')'))?;
        } else if self.lx.next_if(Kind::Char(b'!'))? {
            let name = format!("${}", self.next_alias_id);
            self.next_alias_id += 1;
            info.add_before_set(&name);
            info.is_write = true;
        } else {
            return Ok(None);
        }
        Ok(Some(info))
    }

    fn parse_string_literal(&self, range: (usize, usize), text: &str) -> PResult<DefaultValue> {
        let b = text.as_bytes();
        let quote = b.first().copied().unwrap_or(b'"');
        let qlen = if b.len() >= 3 && b[..3].iter().all(|&c| c == quote) {
            3
        } else {
            1
        };
        let inner_end = b.len().saturating_sub(qlen).max(qlen);
        let mut s: Vec<u8> = b[qlen.min(b.len())..inner_end.min(b.len())].to_vec();
        let err = |m: &str| SchemaParseError::report(self.src(), range, m);
        let mut pos = s.iter().position(|&c| c == b'\\');
        while let Some(p) = pos {
            let next = s.get(p + 1).copied().unwrap_or(0);
            let mut to_erase = 2;
            let c = match next {
                b'\\' | b'\'' | b'"' | b'\n' => next,
                b'a' => 0x07,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => b'\n',
                b'v' => 0x0b,
                b't' => b'\t',
                b'x' => return Err(err("unsupported hex specifier")),
                b'u' | b'U' => return Err(err("unsupported unicode specifier")),
                _ => {
                    let oct = if p + 3 >= s.len() {
                        None
                    } else {
                        let d = &s[p + 1..p + 4];
                        if d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                            let v = u32::from(d[0] - b'0') * 64
                                + u32::from(d[1] - b'0') * 8
                                + u32::from(d[2] - b'0');
                            if v < 256 {
                                Some(v as u8)
                            } else {
                                None
                            }
                        } else {
                            None
                        }
                    };
                    match oct {
                        Some(v) => {
                            to_erase = 4;
                            v
                        }
                        None => return Err(err(" ill formed octal specifier")),
                    }
                }
            };
            let end = (p + to_erase).min(s.len());
            s.splice(p..end, [c]);
            pos = s
                .iter()
                .skip(p + 1)
                .position(|&c| c == b'\\')
                .map(|q| q + p + 1);
        }
        Ok(match String::from_utf8(s) {
            Ok(st) => DefaultValue::Str(st),
            Err(e) => DefaultValue::Bytes(e.into_bytes()),
        })
    }

    fn parse_single_constant(&mut self, kind: &Type, real: &Type) -> PResult<DefaultValue> {
        let k = self.cur_kind();
        if k == lexer::true_kw() {
            self.lx.next()?;
            return Ok(DefaultValue::Bool(true));
        }
        if k == lexer::false_kw() {
            self.lx.next()?;
            return Ok(DefaultValue::Bool(false));
        }
        if k == lexer::none_kw() {
            self.lx.next()?;
            return Ok(DefaultValue::None);
        }
        if k == Kind::StringLiteral {
            let t = self.lx.next()?;
            return self.parse_string_literal((t.start, t.end), self.lx.text(&t));
        }
        if k == Kind::Ident {
            let t = self.lx.next()?;
            let text = self.lx.text(&t);
            let v = match text {
                "float" => 6,
                "complex" => 9,
                "long" => 4,
                "strided" => 0,
                "Mean" => 1,
                "contiguous_format" => 0,
                _ => {
                    let dtype = DTYPE_NAMES
                        .iter()
                        .find(|(n, _)| *n == text)
                        .map(|(_, v)| *v);
                    match dtype {
                        Some(v) if is_possibly_optional_scalar_type(real) => v,
                        _ => return Err(self.report_cur("invalid numeric default value")),
                    }
                }
            };
            return Ok(DefaultValue::Int(v));
        }
        let n = if self.lx.next_if(Kind::Char(b'-'))? {
            format!("-{}", self.expect_text(Kind::Number)?)
        } else {
            self.expect_text(Kind::Number)?.to_string()
        };
        if *kind == Type::Complex || n.contains('j') {
            let mut body = n.clone();
            body.pop();
            let imag = stod(&body)?;
            Ok(DefaultValue::Complex(0.0, imag))
        } else if *kind == Type::Float || n.contains('.') || n.contains('e') {
            Ok(DefaultValue::Float(stod(&n)?))
        } else {
            Ok(DefaultValue::Int(stoll(&n)?))
        }
    }

    fn convert_to_list(
        &self,
        elem: &Type,
        range: (usize, usize),
        vs: Vec<DefaultValue>,
    ) -> PResult<DefaultValue> {
        Ok(match elem {
            Type::Complex => {
                DefaultValue::ComplexList(vs.iter().map(to_complex).collect::<PResult<_>>()?)
            }
            Type::Float => {
                DefaultValue::FloatList(vs.iter().map(to_double).collect::<PResult<_>>()?)
            }
            Type::Int => DefaultValue::IntList(vs.iter().map(to_int).collect::<PResult<_>>()?),
            Type::Bool => DefaultValue::BoolList(vs.iter().map(to_bool).collect::<PResult<_>>()?),
            _ => {
                return Err(SchemaParseError::report(
                    self.src(),
                    range,
                    "lists are only supported for float, int and complex types",
                ))
            }
        })
    }

    fn parse_default_value(&mut self, real: &Type, n: Option<i64>) -> PResult<DefaultValue> {
        let fake = real.fake();
        let cur = *self.lx.cur();
        let range = (cur.start, cur.end);
        match &fake {
            Type::Tensor | Type::Generator | Type::Quantizer => {
                self.lx.expect(lexer::none_kw())?;
                Ok(DefaultValue::None)
            }
            Type::Str
            | Type::Optional(_)
            | Type::Scalar
            | Type::Int
            | Type::Bool
            | Type::Float
            | Type::Complex => self.parse_single_constant(&fake, real),
            Type::Device => {
                let t = self.lx.expect(Kind::StringLiteral)?;
                let v = self.parse_string_literal(range, self.lx.text(&t))?;
                let text = match &v {
                    DefaultValue::Str(s) => s.clone(),
                    DefaultValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                };
                Ok(DefaultValue::Device(parse_device(&text)?))
            }
            Type::List(elem) => {
                let real_elem = match real {
                    Type::List(e) => e.as_ref().clone(),
                    other => other.clone(),
                };
                if cur.kind == Kind::Ident {
                    self.lx.expect(lexer::none_kw())?;
                    Ok(DefaultValue::None)
                } else if n.is_some() && cur.kind != Kind::Char(b'[') {
                    let v = self.parse_single_constant(elem, &real_elem)?;
                    let count = n.unwrap_or(0);
                    if count < 0 {
                        return Err(std_ex("cannot create std::vector larger than max_size()"));
                    }
                    if count > MAX_REPEAT {
                        return Err(std_ex("std::bad_alloc"));
                    }
                    let repeated = vec![v; count as usize];
                    self.convert_to_list(elem, range, repeated)
                } else {
                    let open = self.lx.expect(Kind::Char(b'['))?;
                    let mut vs = Vec::new();
                    if self.cur_kind() != Kind::Char(b']') {
                        loop {
                            vs.push(self.parse_single_constant(elem, &real_elem)?);
                            if !self.lx.next_if(Kind::Char(b','))? {
                                break;
                            }
                        }
                    }
                    self.lx.expect(Kind::Char(b']'))?;
                    self.convert_to_list(elem, (open.start, open.end), vs)
                }
            }
            _ => Err(SchemaParseError::report(
                self.src(),
                range,
                "unexpected type, file a bug report",
            )),
        }
    }
}

/// `torch::jit::parseSchemaOrName(s, allow_typevars)`.  Type variables are
/// always allowed when `s` starts with `aten::` or `prim::`.
pub fn parse_schema_or_name_with_options(
    s: &str,
    allow_typevars: bool,
) -> Result<SchemaOrName, SchemaParseError> {
    let allow = allow_typevars || s.starts_with("aten::") || s.starts_with("prim::");
    Parser::new(s, allow)?.parse_exactly_one_declaration()
}

/// The elements, drained into a vector of exactly their number (`SmallVec::into_vec` leaves
/// room for four, and moving the inline array itself costs a copy of all its room).
fn exact_vec<A: smallvec::Array>(items: &mut smallvec::SmallVec<A>) -> Vec<A::Item> {
    let mut v = Vec::with_capacity(items.len());
    v.extend(items.drain(..));
    v
}

/// `parseSchemaOrName(s)` with type variables disallowed (except for `aten::`/`prim::`).
pub fn parse_schema_or_name(s: &str) -> Result<SchemaOrName, SchemaParseError> {
    parse_schema_or_name_with_options(s, false)
}

/// `parseSchema(s, allow_typevars)`.
pub fn parse_schema_with_options(
    s: &str,
    allow_typevars: bool,
) -> Result<FunctionSchema, SchemaParseError> {
    match parse_schema_or_name_with_options(s, allow_typevars)? {
        SchemaOrName::Schema(schema) => Ok(schema),
        SchemaOrName::Name(_) => Err(SchemaParseError::check(
            "Tried to parse a function schema but only the operator name was given",
        )),
    }
}

/// `parseSchema(s)`: a full schema is required.
pub fn parse_schema(s: &str) -> Result<FunctionSchema, SchemaParseError> {
    parse_schema_with_options(s, false)
}

/// `parseName(s)`: an operator name only.
pub fn parse_name(s: &str) -> Result<OperatorName, SchemaParseError> {
    if let Some(n) = parse_name_parts(s) {
        return Ok(n.to_name());
    }
    match parse_schema_or_name(s)? {
        SchemaOrName::Name(n) => Ok(n),
        SchemaOrName::Schema(_) => Err(SchemaParseError::check(
            "Tried to parse an operator name but function schema was given",
        )),
    }
}

/// The common case of [`parse_name`], without the lexer and without allocating:
/// `[ns::]name[.overload]` made of plain identifiers that are not lexer keywords, with a legal
/// overload. `None` for anything else (including every input that would be an error): give
/// that to `parse_name`, whose result is then the same as this one would have been.
pub fn parse_name_parts(s: &str) -> Option<OperatorNameParts<'_>> {
    fn ident(p: &str) -> bool {
        matches!(p.as_bytes().first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
            && !crate::lexer::is_keyword(p)
    }
    // One pass over the bytes (this runs for every impl): only identifier bytes, at most one
    // "::" and at most one '.' after it.
    let b = s.as_bytes();
    let (mut sep, mut dot) = (None, None);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_alphanumeric() || c == b'_' => {}
            b':' if sep.is_none() && dot.is_none() && b.get(i + 1) == Some(&b':') => {
                sep = Some(i);
                i += 1;
            }
            b'.' if dot.is_none() => dot = Some(i),
            _ => return None,
        }
        i += 1;
    }
    let (qualified, overload) = match dot {
        Some(d) => (&s[..d], &s[d + 1..]),
        None => (s, ""),
    };
    let (ns, base) = match sep {
        Some(p) => (Some(&s[..p]), &qualified[p + 2..]),
        None => (None, qualified),
    };
    let ok = ident(base)
        && ns.is_none_or(ident)
        && (dot.is_none()
            || (ident(overload) && overload != "default" && !overload.starts_with("__")));
    ok.then_some(OperatorNameParts {
        namespace: ns,
        base,
        overload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_name_parts_agrees_with_the_parser() {
        for s in [
            "foo",
            "ns::foo",
            "ns::foo.ovl",
            "foo.Tensor",
            "_x1::y_2.z3",
            "foo.default",
            "foo.__x",
            "def",
            "ns::if",
            "foo.",
            ".foo",
            "ns::",
            "a::b::c",
            "a.b.c",
            "1abc",
            "foo bar",
            "None",
            "True.x",
            "x.None",
            "is",
            "not",
            "ns::foo.in",
            "Ellipsis",
            "NoneType",
            "a:b",
            "a::b.c.d",
            "a.b::c",
            "ns::foo.",
            "::foo",
            "ns::.x",
            "_::x",
            "ns:::x",
            "ns::x.y:z",
            "é::x",
            "ns::_x.__y",
            "ns::x.def",
        ] {
            let fast = parse_name_parts(s);
            let slow = match parse_schema_or_name(s) {
                Ok(SchemaOrName::Name(n)) => Some(n),
                _ => None,
            };
            if let Some(f) = fast {
                let owned = f.to_name();
                assert_eq!(Some(&owned), slow.as_ref(), "{s}");
                // The parts and the owned name agree both ways, and print alike.
                assert_eq!(owned.parts(), f, "{s}");
                assert!(f.matches(&owned), "{s}");
                assert_eq!(f.to_string(), owned.to_string(), "{s}");
            }
        }
    }

    #[test]
    fn name_parts_match_only_their_name() {
        let parts = |s| parse_name_parts(s).expect("simple");
        let n = parse_name("ns::foo.ovl").unwrap();
        assert!(parts("ns::foo.ovl").matches(&n));
        for other in [
            "ns::foo",
            "ns::fo.ovl",
            "n::foo.ovl",
            "foo.ovl",
            "ns::foox.ovl",
            "nsx::foo.ovl",
        ] {
            assert!(!parts(other).matches(&n), "{other}");
        }
        // A name without a namespace gets the library's, and keeps its own otherwise.
        let (p, applied) = parts("foo.ovl").with_namespace_if_not_set("ns");
        assert!(applied && p.matches(&n));
        let (p, applied) = parts("other::foo").with_namespace_if_not_set("ns");
        assert!(!applied && p.namespace == Some("other"));
        let bare = parse_name("foo").unwrap();
        assert!(parts("foo").matches(&bare) && !parts("ns::foo").matches(&bare));
    }

    #[test]
    fn numbers() {
        assert_eq!(stoll("12").unwrap(), 12);
        assert_eq!(stoll("1e5").unwrap(), 1);
        assert!(stoll(".5").is_err());
        assert!(stoll("99999999999999999999").is_err());
        assert_eq!(stod("1.").unwrap(), 1.0);
        assert_eq!(stod(".5").unwrap(), 0.5);
        assert_eq!(stod("1.e2").unwrap(), 100.0);
        assert_eq!(stod("-1e-5").unwrap(), -1e-5);
        assert_eq!(stod("0x10").unwrap(), 16.0);
        assert!(stod("1e400").is_err());
        assert!(stod("").is_err());
    }

    #[test]
    fn error_texts() {
        let e = parse_schema("foo(Tensr x) -> Tensor").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("\n{UNKNOWN_TYPE}:\nfoo(Tensr x) -> Tensor\n    ~~~~~ <--- HERE\n")
        );
        let e = parse_schema("foo(Tensor x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected ) but found 'eof' here:\nfoo(Tensor x"
        );
        let e = parse_schema("foo(Tensor x) => Tensor").unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected arrow but found '=' here:\nfoo(Tensor x) => Tensor\n              ~ <--- HERE\n"
        );
        let e = parse_schema("foo.default(Tensor x) -> Tensor").unwrap_err();
        assert_eq!(
            e.to_string(),
            "default is not a legal overload name for aten operators"
        );
        let e = parse_schema("foo(int a=1, int b) -> ()").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("!seen_default_arg || arg.kwarg_only() INTERNAL ASSERT FAILED at \""));
        assert!(e.to_string().ends_with("Non-default positional argument follows default argument. Parameter b in foo(int a=1, int b) -> ()"));
        let e = parse_schema("foo(int[2] a=[1.5]) -> ()").unwrap_err();
        assert!(e.to_string().starts_with("0 INTERNAL ASSERT FAILED"));
        assert!(e.to_string().ends_with("expected int"));
        let e = parse_schema("foo(Tensor x, ..., int y) -> ()").unwrap_err();
        assert_eq!(
            e.first_line(),
            "... must be the last element of the argument list:"
        );
        let e = parse_schema("foo(Tensor x, ...) -> (Tensor, ..., Tensor)").unwrap_err();
        assert_eq!(
            e.first_line(),
            "... must be the last element of the return list:"
        );
        let e = parse_schema("foo(int x=1, ...) -> ()").unwrap_err();
        assert_eq!(
            e.first_line(),
            "schemas with vararg (...) can't have default value args:"
        );
        let e = parse_schema("foo(Tensor x) -> Tensor $").unwrap_err();
        assert_eq!(e.first_line(), "expected a valid token but found ' ' here:");
        assert!(parse_name("foo(Tensor x) -> Tensor").is_err());
        assert_eq!(
            parse_schema("foo").unwrap_err().to_string(),
            "Tried to parse a function schema but only the operator name was given"
        );
        let e = parse_schema("foo(t x) -> t").unwrap_err();
        assert_eq!(e.message(), UNKNOWN_TYPE);
        assert!(parse_schema("aten::foo(t x) -> t").is_ok());
        assert!(parse_schema_with_options("foo(t x) -> t", true).is_ok());
    }

    #[test]
    fn printing_details() {
        let cases = [
            ("f(int[2] stride=1, int[2] pad=[0, 1], SymInt[2] s=1) -> ()", "f(int[2] stride=1, int[2] pad=[0, 1], SymInt[2] s=[1, 1]) -> ()"),
            ("f(Tensor(a!)[] out, Tensor[](b) x, Tensor(a)[](b!) y) -> ()", "f(Tensor(a!)[] out, Tensor[](b) x, Tensor(a)[](b!) y) -> ()"),
            ("f(Tensor! x) -> Tensor(a -> *)", "f(Tensor($0! -> ) x) -> Tensor(a -> *)"),
            ("f(str s=\"a\\tb\", float e=1e-5, float g=2, bool b=True) -> ()", "f(str s=\"a\\tb\", float e=1.0000000000000001e-05, float g=2., bool b=True) -> ()"),
            ("f(ScalarType? dtype=float, Layout l=strided, MemoryFormat m=contiguous_format, int r=Mean) -> ()", "f(ScalarType? dtype=6, Layout l=0, MemoryFormat m=0, int r=1) -> ()"),
            ("f(complex c=1j, Device d=\"cuda:1\") -> ((int, str))", "f(complex c=0.+1.j, Device d=cuda:1) -> ((int, str))"),
            ("f(Dict(str, ScalarType) d, (ScalarType, int) t) -> (int a, ...)", "f(Dict(str, int) d, (int, int) t) -> (int a, ...)"),
            ("f(*, Tensor a, ...) -> ...", "f(*, Tensor a, ...) -> ..."),
            ("f(Tensor?? a, Scalar? s=None) -> ()", "f(Tensor? a, Scalar? s=None) -> ()"),
        ];
        for (src, want) in cases {
            assert_eq!(parse_schema(src).unwrap().to_string(), want, "{src}");
        }
    }

    #[test]
    fn basic_schema() {
        let s = parse_schema(
            "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "aten::add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor"
        );
        assert_eq!(s.dispatch_arg_indices(), vec![0, 1]);
    }
}
