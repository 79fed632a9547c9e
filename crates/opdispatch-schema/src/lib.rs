//! The PyTorch operator schema language: parsing, canonical printing and the
//! schema comparison the dispatcher uses when registering kernels.
//!
//! Parsing follows `torch/csrc/jit/frontend/function_schema_parser.cpp` and
//! `schema_type_parser.cpp` (PyTorch 2.15); printing follows
//! `operator<<(FunctionSchema)`.  Errors read exactly like the Python
//! `str(e)` of the exception PyTorch raises.

#![forbid(unsafe_code)]

mod custom_class;
mod error;
mod lexer;
mod parser;
mod types;
mod value;

use std::fmt;

pub use custom_class::{is_custom_class_registered, register_custom_class};
pub use error::{ErrorKind, SchemaParseError};
pub use parser::{
    parse_name, parse_name_parts, parse_schema, parse_schema_or_name,
    parse_schema_or_name_with_options, parse_schema_with_options, DEVICE_TYPES,
};
pub use types::Type;
pub use value::DefaultValue;

/// An operator name: `ns::op` (or a bare `op`) plus an overload name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct OperatorName {
    pub name: String,
    pub overload_name: String,
}

impl OperatorName {
    pub fn new(name: impl Into<String>, overload_name: impl Into<String>) -> Self {
        OperatorName {
            name: name.into(),
            overload_name: overload_name.into(),
        }
    }

    /// The namespace (text before the first `::`), if any.
    pub fn namespace(&self) -> Option<&str> {
        ns_separator(&self.name).map(|p| &self.name[..p])
    }

    /// Prefix the name with `ns::` when it has no namespace; returns whether it did.
    pub fn set_namespace_if_not_set(&mut self, ns: &str) -> bool {
        if self.namespace().is_some() {
            return false;
        }
        self.name = qualified(ns, &self.name);
        true
    }

    /// The name after the namespace (the whole name when there is none).
    pub fn base_name(&self) -> &str {
        match ns_separator(&self.name) {
            Some(p) => &self.name[p + 2..],
            None => &self.name,
        }
    }

    /// The name as borrowed parts.
    pub fn parts(&self) -> OperatorNameParts<'_> {
        let (namespace, base) = match ns_separator(&self.name) {
            Some(p) => (Some(&self.name[..p]), &self.name[p + 2..]),
            None => (None, &self.name[..]),
        };
        OperatorNameParts {
            namespace,
            base,
            overload: &self.overload_name,
        }
    }
}

/// An operator name as borrowed parts, `namespace::base.overload`: what a registration names
/// before the namespace is applied, looked up without joining the parts into a new string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorNameParts<'a> {
    pub namespace: Option<&'a str>,
    pub base: &'a str,
    pub overload: &'a str,
}

impl<'a> OperatorNameParts<'a> {
    /// With `ns` as the namespace when there is none; the flag says whether it was applied
    /// (as [`OperatorName::set_namespace_if_not_set`]).
    pub fn with_namespace_if_not_set(self, ns: &'a str) -> (Self, bool) {
        match self.namespace {
            Some(_) => (self, false),
            None => (
                Self {
                    namespace: Some(ns),
                    ..self
                },
                true,
            ),
        }
    }

    /// Whether `n` is this name.
    pub fn matches(&self, n: &OperatorName) -> bool {
        n.overload_name == self.overload && {
            let q = n.name.as_str();
            match self.namespace {
                None => q == self.base,
                Some(ns) => {
                    q.len() == ns.len() + 2 + self.base.len()
                        && q.starts_with(ns)
                        && q[ns.len()..].starts_with("::")
                        && q.ends_with(self.base)
                }
            }
        }
    }

    /// The owned name, built in one exact-size allocation.
    pub fn to_name(&self) -> OperatorName {
        let name = match self.namespace {
            None => self.base.to_owned(),
            Some(ns) => qualified(ns, self.base),
        };
        OperatorName {
            name,
            overload_name: self.overload.to_owned(),
        }
    }
}

impl fmt::Display for OperatorNameParts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = self.namespace {
            write!(f, "{ns}::")?;
        }
        f.write_str(self.base)?;
        if !self.overload.is_empty() {
            write!(f, ".{}", self.overload)?;
        }
        Ok(())
    }
}

/// `ns::base` in one exact-size allocation (registration does this for every def).
fn qualified(ns: &str, base: &str) -> String {
    let mut q = String::with_capacity(ns.len() + 2 + base.len());
    q.push_str(ns);
    q.push_str("::");
    q.push_str(base);
    q
}

/// Byte offset of the first `::` (registration asks this per call, so a byte scan rather than
/// a substring searcher).
fn ns_separator(name: &str) -> Option<usize> {
    name.as_bytes().windows(2).position(|w| w == b"::")
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.overload_name.is_empty() {
            write!(f, ".{}", self.overload_name)?;
        }
        Ok(())
    }
}

/// `c10::AliasAnalysisKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AliasAnalysisKind {
    InternalSpecialCase,
    Conservative,
    FromSchema,
    PureFunction,
}

impl AliasAnalysisKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AliasAnalysisKind::InternalSpecialCase => "INTERNAL_SPECIAL_CASE",
            AliasAnalysisKind::Conservative => "CONSERVATIVE",
            AliasAnalysisKind::FromSchema => "FROM_SCHEMA",
            AliasAnalysisKind::PureFunction => "PURE_FUNCTION",
        }
    }
}

impl fmt::Display for AliasAnalysisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown alias analysis kind: `could not parse <k>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("could not parse {0}")]
pub struct ParseAliasAnalysisKindError(pub String);

impl std::str::FromStr for AliasAnalysisKind {
    type Err = ParseAliasAnalysisKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "INTERNAL_SPECIAL_CASE" => AliasAnalysisKind::InternalSpecialCase,
            "CONSERVATIVE" => AliasAnalysisKind::Conservative,
            "FROM_SCHEMA" => AliasAnalysisKind::FromSchema,
            "PURE_FUNCTION" => AliasAnalysisKind::PureFunction,
            _ => return Err(ParseAliasAnalysisKindError(s.to_string())),
        })
    }
}

/// Alias annotation of an argument or return (`Tensor(a!)`, `Tensor(a -> *)`,
/// `Tensor(a)[]`, ...).  Set names are unqualified (`a`, `*`, `$0`); each set
/// list holds no duplicates and is kept in the order PyTorch iterates it.
#[derive(Clone, Debug, Default)]
pub struct AliasInfo {
    pub before_sets: Vec<String>,
    pub after_sets: Vec<String>,
    pub is_write: bool,
    pub contained: Vec<AliasInfo>,
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

impl PartialEq for AliasInfo {
    fn eq(&self, other: &Self) -> bool {
        self.is_write == other.is_write
            && same_set(&self.before_sets, &other.before_sets)
            && same_set(&self.after_sets, &other.after_sets)
            && self.contained == other.contained
    }
}

impl AliasInfo {
    pub const WILDCARD: &'static str = "*";

    fn add_to(sets: &mut Vec<String>, name: &str) {
        if !sets.iter().any(|s| s == name) {
            // Matches the iteration order of the C++ unordered_set for the
            // schemas PyTorch ships: the most recently added set comes first.
            sets.insert(0, name.to_string());
        }
    }

    pub fn add_before_set(&mut self, name: &str) {
        Self::add_to(&mut self.before_sets, name);
    }

    pub fn add_after_set(&mut self, name: &str) {
        Self::add_to(&mut self.after_sets, name);
    }

    pub fn is_wildcard_before(&self) -> bool {
        self.before_sets.iter().any(|s| s == Self::WILDCARD)
    }

    pub fn is_wildcard_after(&self) -> bool {
        self.after_sets.iter().any(|s| s == Self::WILDCARD)
    }
}

impl fmt::Display for AliasInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        f.write_str(&self.before_sets.join("|"))?;
        if self.is_write {
            f.write_str("!")?;
        }
        if !same_set(&self.before_sets, &self.after_sets) {
            f.write_str(" -> ")?;
            f.write_str(&self.after_sets.join("|"))?;
        }
        f.write_str(")")
    }
}

/// A schema argument or return.  `ty` is the real type.
#[derive(Clone, Debug, PartialEq)]
pub struct Argument {
    pub name: String,
    pub ty: Type,
    /// The static list size of `T[N]` (a C++ `int32_t`).
    pub n: Option<i64>,
    pub default: Option<DefaultValue>,
    pub kwarg_only: bool,
    /// Boxed: most arguments have none, and a schema is kept for the process's lifetime.
    pub alias_info: Option<Box<AliasInfo>>,
}

impl Argument {
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Argument {
            name: name.into(),
            ty,
            n: None,
            default: None,
            kwarg_only: false,
            alias_info: None,
        }
    }

    /// The fake type (ScalarType/Layout/MemoryFormat/SymInt as `int`).
    pub fn fake_type(&self) -> Type {
        self.ty.fake()
    }

    /// Kwarg-only with a write alias.
    pub fn is_out(&self) -> bool {
        self.kwarg_only && self.alias_info.as_ref().is_some_and(|a| a.is_write)
    }
}

impl fmt::Display for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (is_opt, unopt) = match &self.ty {
            Type::Optional(inner) => (true, inner.as_ref()),
            t => (false, t),
        };
        if let Type::List(elem) = unopt {
            write!(f, "{elem}")?;
            if let Some(first) = self.alias_info.as_ref().and_then(|a| a.contained.first()) {
                write!(f, "{first}")?;
            }
            match self.n {
                Some(n) => write!(f, "[{n}]")?,
                None => f.write_str("[]")?,
            }
        } else {
            write!(f, "{unopt}")?;
        }
        if let Some(a) = &self.alias_info {
            if !a.before_sets.is_empty() {
                write!(f, "{a}")?;
            }
        }
        if is_opt {
            f.write_str("?")?;
        }
        if !self.name.is_empty() {
            write!(f, " {}", self.name)?;
        }
        if let Some(d) = &self.default {
            f.write_str("=")?;
            let stringy = self.ty == Type::Str || *unopt == Type::Str;
            match (d.string_bytes(), d) {
                (Some(bytes), _) if stringy => f.write_str(&value::quoted_string(bytes))?,
                (_, DefaultValue::IntList(v))
                    if matches!(&self.ty, Type::List(e) if **e == Type::Int)
                        && v.len() > 1
                        && v.iter().all(|x| *x == v[0]) =>
                {
                    write!(f, "{}", v[0])?;
                }
                _ => write!(f, "{d}")?,
            }
        }
        Ok(())
    }
}

/// A parsed operator schema.
#[derive(Clone, Debug)]
pub struct FunctionSchema {
    pub name: OperatorName,
    pub arguments: Vec<Argument>,
    pub returns: Vec<Argument>,
    pub is_vararg: bool,
    pub is_varret: bool,
    pub alias_kind: Option<AliasAnalysisKind>,
}

impl PartialEq for FunctionSchema {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.arguments == other.arguments
            && self.returns == other.returns
            && self.is_vararg == other.is_vararg
            && self.is_varret == other.is_varret
    }
}

impl FunctionSchema {
    /// Build a schema, running PyTorch's construction check (a positional
    /// argument without default may not follow one with a default, lists excepted).
    pub fn new(
        name: OperatorName,
        arguments: Vec<Argument>,
        returns: Vec<Argument>,
        is_vararg: bool,
        is_varret: bool,
    ) -> Result<Self, SchemaParseError> {
        let schema = FunctionSchema {
            name,
            arguments,
            returns,
            is_vararg,
            is_varret,
            alias_kind: None,
        };
        schema.check()?;
        Ok(schema)
    }

    fn check(&self) -> Result<(), SchemaParseError> {
        let mut seen_default = false;
        for arg in &self.arguments {
            if arg.default.is_some() {
                seen_default = true;
            } else if matches!(arg.fake_type(), Type::List(_)) {
                continue;
            } else if seen_default && !arg.kwarg_only {
                return Err(SchemaParseError::internal_assert(
                    "!seen_default_arg || arg.kwarg_only()",
                    file!(),
                    line!(),
                    format!(
                        "Non-default positional argument follows default argument. Parameter {} in {}",
                        arg.name, self
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn operator_name(&self) -> &OperatorName {
        &self.name
    }

    pub fn alias_analysis(&self) -> AliasAnalysisKind {
        self.alias_kind.unwrap_or(AliasAnalysisKind::Conservative)
    }

    pub fn is_default_alias_analysis_kind(&self) -> bool {
        self.alias_kind.is_none()
    }

    pub fn set_alias_analysis(&mut self, kind: AliasAnalysisKind) {
        self.alias_kind = Some(kind);
    }

    /// Indices of the arguments the dispatch key extractor looks at.
    pub fn dispatch_arg_indices(&self) -> Vec<usize> {
        self.arguments
            .iter()
            .enumerate()
            .filter(|(_, a)| a.ty.is_tensor_like())
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether any argument is written to (has a write alias).
    pub fn is_mutable(&self) -> bool {
        self.arguments
            .iter()
            .any(|a| a.alias_info.as_ref().is_some_and(|x| x.is_write))
    }

    /// `cloneWithRealTypes(with_symint)`: argument types are the real types,
    /// except that without `with_symint` SymInt-like arguments keep the fake
    /// type; returns always use real types.  (Types here are stored real, so
    /// this only rewrites SymInt-like arguments.)
    pub fn clone_with_real_types(&self, with_symint: bool) -> FunctionSchema {
        let mut s = self.clone();
        if !with_symint {
            for a in &mut s.arguments {
                if is_symint_like(&a.ty) {
                    a.ty = a.ty.fake();
                }
            }
        }
        s
    }
}

fn is_symint_like(t: &Type) -> bool {
    let sym = Type::SymInt;
    let opt = Type::Optional(Box::new(Type::SymInt));
    let list = Type::List(Box::new(Type::SymInt));
    let opt_list = Type::Optional(Box::new(Type::List(Box::new(Type::SymInt))));
    *t == sym || *t == opt || *t == list || *t == opt_list
}

impl fmt::Display for FunctionSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        let mut seen_kwarg_only = false;
        for (i, a) in self.arguments.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if a.kwarg_only && !seen_kwarg_only {
                f.write_str("*, ")?;
                seen_kwarg_only = true;
            }
            write!(f, "{a}")?;
        }
        if self.is_vararg {
            if !self.arguments.is_empty() {
                f.write_str(", ")?;
            }
            f.write_str("...")?;
        }
        f.write_str(") -> ")?;
        let single = self.returns.len() == 1 && !self.is_varret;
        let mut need_paren = !(single || (self.returns.is_empty() && self.is_varret));
        if single && self.returns[0].to_string().starts_with('(') {
            need_paren = true;
        }
        if need_paren {
            f.write_str("(")?;
        }
        for (i, r) in self.returns.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}")?;
        }
        if self.is_varret {
            if !self.returns.is_empty() {
                f.write_str(", ")?;
            }
            f.write_str("...")?;
        }
        if need_paren {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Result of [`parse_schema_or_name`].
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaOrName {
    Schema(FunctionSchema),
    Name(OperatorName),
}

impl SchemaOrName {
    pub fn operator_name(&self) -> &OperatorName {
        match self {
            SchemaOrName::Schema(s) => &s.name,
            SchemaOrName::Name(n) => n,
        }
    }
}

/// PyTorch's `findSchemaDifferences(specified.cloneWithRealTypes(false),
/// inferred.cloneWithRealTypes())`, as `checkSchema` runs it when a kernel with
/// an inferred schema meets a `def()`'d schema.  Returns the `reason:` text,
/// with the specified schema's value first (`"... 2 vs 1."`).
pub fn find_schema_differences(
    inferred: &FunctionSchema,
    specified: &FunctionSchema,
) -> Option<String> {
    find_schema_differences_with_symint(inferred, specified, false)
}

/// As [`find_schema_differences`], with the kernel's `isValidSymUnboxed()`
/// deciding whether SymInt-like arguments of the specified schema compare as
/// `SymInt` (true) or `int` (false).
pub fn find_schema_differences_with_symint(
    inferred: &FunctionSchema,
    specified: &FunctionSchema,
    kernel_is_valid_sym_unboxed: bool,
) -> Option<String> {
    let lhs = specified.clone_with_real_types(kernel_is_valid_sym_unboxed);
    let rhs = inferred.clone_with_real_types(true);
    if lhs.arguments.len() != rhs.arguments.len() {
        return Some(format!(
            "The number of arguments is different. {} vs {}.",
            lhs.arguments.len(),
            rhs.arguments.len()
        ));
    }
    if lhs.returns.len() != rhs.returns.len() {
        return Some(format!(
            "The number of returns is different. {} vs {}.",
            lhs.returns.len(),
            rhs.returns.len()
        ));
    }
    for (i, (l, r)) in lhs.arguments.iter().zip(&rhs.arguments).enumerate() {
        if l.ty != r.ty {
            return Some(format!(
                "Type mismatch in argument {}: {} vs {}.",
                i + 1,
                l.ty,
                r.ty
            ));
        }
    }
    for (i, (l, r)) in lhs.returns.iter().zip(&rhs.returns).enumerate() {
        if l.ty != r.ty {
            return Some(format!(
                "Type mismatch in return {}: {} vs {}.",
                i + 1,
                l.ty,
                r.ty
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_name() {
        let mut n = OperatorName::new("foo", "ovl");
        assert_eq!(n.namespace(), None);
        assert!(n.set_namespace_if_not_set("ns"));
        assert!(!n.set_namespace_if_not_set("other"));
        assert_eq!(n.to_string(), "ns::foo.ovl");
        assert_eq!(n.base_name(), "foo");
        assert_eq!(n.namespace(), Some("ns"));
    }

    #[test]
    fn alias_kind_parse() {
        assert_eq!(
            "FROM_SCHEMA".parse::<AliasAnalysisKind>().unwrap(),
            AliasAnalysisKind::FromSchema
        );
        assert_eq!(
            "bogus"
                .parse::<AliasAnalysisKind>()
                .unwrap_err()
                .to_string(),
            "could not parse bogus"
        );
    }

    #[test]
    fn inferred_schema_prints() {
        let mut a = Argument::new("_0", Type::Tensor);
        a.kwarg_only = false;
        let r = Argument::new("_0", Type::Tensor);
        let s =
            FunctionSchema::new(OperatorName::new("", ""), vec![a], vec![r], false, false).unwrap();
        assert_eq!(s.to_string(), "(Tensor _0) -> Tensor _0");
    }

    #[test]
    fn differences() {
        let inferred = parse_schema("f(Tensor _0) -> Tensor _0").unwrap();
        let spec = parse_schema("f(int x) -> Tensor").unwrap();
        assert_eq!(
            find_schema_differences(&inferred, &spec).unwrap(),
            "Type mismatch in argument 1: int vs Tensor."
        );
        let spec = parse_schema("f(Tensor x, *, int k=2) -> Tensor").unwrap();
        assert_eq!(
            find_schema_differences(&inferred, &spec).unwrap(),
            "The number of arguments is different. 2 vs 1."
        );
        let spec = parse_schema("f(Tensor x) -> (Tensor, Tensor)").unwrap();
        assert_eq!(
            find_schema_differences(&inferred, &spec).unwrap(),
            "The number of returns is different. 2 vs 1."
        );
        let spec = parse_schema("f(Tensor x) -> Tensor").unwrap();
        assert_eq!(find_schema_differences(&inferred, &spec), None);
    }
}
