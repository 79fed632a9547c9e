//! JIT types as they appear in operator schemas.

use std::cmp::Ordering;
use std::fmt;

/// A schema type.  Argument types are stored as *real* types (ScalarType,
/// Layout, MemoryFormat and SymInt are kept); [`Type::fake`] gives the type
/// used for boxing (those four become `int`).
///
/// Equality is PyTorch's type equality: structural, except that a union of
/// exactly `int`, `float` and `complex` equals `Scalar`.
#[derive(Clone, Debug)]
pub enum Type {
    Tensor,
    Int,
    SymInt,
    SymBool,
    Float,
    Complex,
    Bool,
    Str,
    /// `Scalar` in schemas (PyTorch's NumberType).
    Scalar,
    ScalarType,
    Layout,
    MemoryFormat,
    Device,
    Generator,
    Storage,
    Stream,
    QScheme,
    Quantizer,
    Capsule,
    Any,
    AnyClassType,
    AnyEnumType,
    NoneType,
    Optional(Box<Type>),
    List(Box<Type>),
    Tuple(Vec<Type>),
    Dict(Box<Type>, Box<Type>),
    /// A union of at least two types (after standardization).
    Union(Vec<Type>),
    Future(Box<Type>),
    Await(Box<Type>),
    RRef(Box<Type>),
    /// A type variable (lower-case identifier, only where type variables are allowed).
    Var(String),
    /// A registered custom class, by qualified name (`__torch__.torch.classes.ns.Name`).
    Class(String),
}

fn is_number_union(ts: &[Type]) -> bool {
    ts.len() == 3 && union_can_hold_number(ts)
}

impl PartialEq for Type {
    fn eq(&self, other: &Self) -> bool {
        use Type::*;
        match (self, other) {
            (Union(ts), Scalar) | (Scalar, Union(ts)) => is_number_union(ts),
            (Union(a), Union(b)) => a.len() == b.len() && a.iter().all(|x| b.contains(x)),
            (Optional(a), Optional(b))
            | (List(a), List(b))
            | (Future(a), Future(b))
            | (Await(a), Await(b))
            | (RRef(a), RRef(b)) => a == b,
            (Tuple(a), Tuple(b)) => a == b,
            (Dict(k1, v1), Dict(k2, v2)) => k1 == k2 && v1 == v2,
            (Var(a), Var(b)) | (Class(a), Class(b)) => a == b,
            _ => {
                std::mem::discriminant(self) == std::mem::discriminant(other)
                    && !matches!(
                        self,
                        Union(_)
                            | Optional(_)
                            | List(_)
                            | Future(_)
                            | Await(_)
                            | RRef(_)
                            | Tuple(_)
                            | Dict(..)
                            | Var(_)
                            | Class(_)
                    )
            }
        }
    }
}

impl Eq for Type {}

impl std::hash::Hash for Type {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Type::Union(ts) if is_number_union(ts) => Type::Scalar.hash(state),
            Type::Union(ts) => {
                std::mem::discriminant(self).hash(state);
                // order-insensitive
                ts.len().hash(state);
            }
            Type::Optional(t)
            | Type::List(t)
            | Type::Future(t)
            | Type::Await(t)
            | Type::RRef(t) => {
                std::mem::discriminant(self).hash(state);
                t.hash(state);
            }
            Type::Tuple(ts) => {
                std::mem::discriminant(self).hash(state);
                ts.hash(state);
            }
            Type::Dict(k, v) => {
                std::mem::discriminant(self).hash(state);
                k.hash(state);
                v.hash(state);
            }
            Type::Var(n) | Type::Class(n) => {
                std::mem::discriminant(self).hash(state);
                n.hash(state);
            }
            _ => std::mem::discriminant(self).hash(state),
        }
    }
}

impl Type {
    /// True for the argument types the dispatch key extractor looks at:
    /// subtypes of `Tensor`, `Tensor?`, `Tensor[]` or `Tensor?[]`.
    pub fn is_tensor_like(&self) -> bool {
        // The common argument types, answered without building the comparison types (every
        // def computes this for each argument).
        match self {
            Type::Tensor => return true,
            Type::Int
            | Type::SymInt
            | Type::SymBool
            | Type::Float
            | Type::Complex
            | Type::Bool
            | Type::Str
            | Type::Scalar
            | Type::ScalarType
            | Type::Layout
            | Type::MemoryFormat
            | Type::Device => return false,
            _ => {}
        }
        self.is_tensor_like_by_subtyping()
    }

    /// PyTorch's definition: a subtype of Tensor, Tensor?, Tensor[] or Tensor?[].
    fn is_tensor_like_by_subtyping(&self) -> bool {
        let t = self.fake();
        let opt_tensor = Type::Optional(Box::new(Type::Tensor));
        t.is_subtype_of(&Type::Tensor)
            || t.is_subtype_of(&opt_tensor)
            || t.is_subtype_of(&Type::List(Box::new(Type::Tensor)))
            || t.is_subtype_of(&Type::List(Box::new(opt_tensor)))
    }

    /// The fake type: ScalarType, Layout, MemoryFormat and SymInt become `int`
    /// (recursively).
    pub fn fake(&self) -> Type {
        match self {
            Type::ScalarType | Type::Layout | Type::MemoryFormat | Type::SymInt => Type::Int,
            Type::Optional(t) => Type::Optional(Box::new(t.fake())),
            Type::List(t) => Type::List(Box::new(t.fake())),
            Type::Tuple(ts) => Type::Tuple(ts.iter().map(Type::fake).collect()),
            Type::Dict(k, v) => Type::Dict(Box::new(k.fake()), Box::new(v.fake())),
            Type::Union(ts) => Type::Union(ts.iter().map(Type::fake).collect()),
            Type::Future(t) => Type::Future(Box::new(t.fake())),
            Type::Await(t) => Type::Await(Box::new(t.fake())),
            Type::RRef(t) => Type::RRef(Box::new(t.fake())),
            other => other.clone(),
        }
    }

    /// `T?` with PyTorch's flattening (`T??` is `T?`).  Errors when the result
    /// would not be a valid union (e.g. `None?`).
    pub fn optional_of(inner: Type) -> Result<Type, String> {
        let union = standardize_union(&[inner.clone(), Type::NoneType]);
        if union.len() == 1 {
            return Err(single_type_union_message(
                &[inner, Type::NoneType],
                &union[0],
            ));
        }
        if union.len() == 2 {
            let contained = if union[0] != Type::NoneType {
                union[0].clone()
            } else {
                union[1].clone()
            };
            return Ok(Type::Optional(Box::new(contained)));
        }
        let is_numbertype = match &inner {
            Type::Union(ts) => ts.len() == 3 && union_can_hold_number(ts),
            _ => false,
        };
        if inner == Type::Scalar || is_numbertype {
            return Ok(Type::Optional(Box::new(Type::Scalar)));
        }
        let without_none: Vec<Type> = union
            .into_iter()
            .filter(|t| !t.is_subtype_of(&Type::NoneType))
            .collect();
        let contained = if without_none.len() == 1 {
            without_none.into_iter().next().unwrap_or(Type::NoneType)
        } else {
            Type::union_of(without_none)?
        };
        Ok(Type::Optional(Box::new(contained)))
    }

    /// `Union(...)` as `UnionType::create` builds it: flattened, deduplicated,
    /// sorted; a union of one type plus None becomes an Optional.
    pub fn union_of(types: Vec<Type>) -> Result<Type, String> {
        if types.is_empty() {
            return Err("Cannot create an empty Union".to_string());
        }
        let std = standardize_union(&types);
        if std.len() == 1 {
            return Err(single_type_union_message(&types, &std[0]));
        }
        let has_none = std.contains(&Type::NoneType);
        if has_none {
            let has = |t: &Type| std.contains(t);
            if std.len() == 4 && has(&Type::Int) && has(&Type::Float) && has(&Type::Complex) {
                return Ok(Type::Optional(Box::new(Type::Scalar)));
            }
            if std.len() == 2 {
                let not_none = if std[0] != Type::NoneType {
                    std[0].clone()
                } else {
                    std[1].clone()
                };
                return Type::optional_of(not_none);
            }
        }
        Ok(Type::Union(std))
    }

    /// Structural subtyping, as far as schema types need it.
    pub fn is_subtype_of(&self, other: &Type) -> bool {
        if self == other {
            return true;
        }
        match (self, other) {
            (_, Type::Any) => true,
            (Type::Class(_), Type::AnyClassType) => true,
            (Type::Int | Type::Float | Type::Complex, Type::Scalar) => true,
            (Type::Union(ts), _) => ts.iter().all(|t| t.is_subtype_of(other)),
            (Type::Optional(a), Type::Optional(b)) => a.is_subtype_of(b),
            (Type::Optional(a), Type::Union(us)) => {
                us.iter().any(|u| Type::NoneType.is_subtype_of(u))
                    && us.iter().any(|u| a.is_subtype_of(u))
            }
            (Type::NoneType, Type::Optional(_)) => true,
            (_, Type::Optional(b)) => self.is_subtype_of(b),
            (_, Type::Union(us)) => us.iter().any(|u| self.is_subtype_of(u)),
            (Type::Tuple(a), Type::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.is_subtype_of(y))
            }
            (Type::Future(a), Type::Future(b)) => a.is_subtype_of(b),
            (Type::Await(a), Type::Await(b)) => a.is_subtype_of(b),
            (Type::RRef(a), Type::RRef(b)) => a.is_subtype_of(b),
            _ => false,
        }
    }

    /// The position of this type's kind in PyTorch's `TypeKind` enumeration
    /// (used to order union members).
    fn kind_order(&self) -> u32 {
        match self {
            Type::Any => 0,
            Type::AnyEnumType => 2,
            Type::Tensor => 3,
            Type::Storage => 4,
            Type::Tuple(_) => 5,
            Type::List(_) => 6,
            Type::Dict(..) => 7,
            Type::Scalar => 8,
            Type::Float => 9,
            Type::Complex => 10,
            Type::Future(_) => 11,
            Type::Await(_) => 12,
            Type::RRef(_) => 13,
            Type::Int => 14,
            Type::NoneType => 15,
            Type::Str => 16,
            Type::Generator => 17,
            Type::Quantizer => 18,
            Type::Bool => 19,
            Type::Optional(_) => 20,
            Type::Var(_) => 21,
            Type::Device => 22,
            Type::Stream => 23,
            Type::Class(_) => 25,
            Type::Capsule => 27,
            Type::QScheme => 29,
            Type::ScalarType => 30,
            Type::Layout => 31,
            Type::MemoryFormat => 32,
            Type::AnyClassType => 35,
            Type::SymInt => 36,
            Type::SymBool => 38,
            Type::Union(_) => 39,
        }
    }
}

fn union_can_hold_number(ts: &[Type]) -> bool {
    [Type::Int, Type::Float, Type::Complex]
        .iter()
        .all(|n| ts.iter().any(|t| n.is_subtype_of(t)))
}

fn single_type_union_message(original: &[Type], single: &Type) -> String {
    let mut msg =
        String::from("After type unification was performed, the Union with the original types {");
    for (i, t) in original.iter().enumerate() {
        msg.push_str(&t.to_string());
        if i > 0 {
            msg.push(',');
        }
        msg.push(' ');
    }
    msg.push_str("} has the single type ");
    msg.push_str(&single.to_string());
    msg.push_str(". Use the common supertype instead of creating a Uniontype");
    msg
}

fn flatten_into(t: &Type, out: &mut Vec<Type>) {
    match t {
        Type::Union(ts) => ts.iter().for_each(|x| flatten_into(x, out)),
        Type::Optional(inner) => {
            flatten_into(inner, out);
            out.push(Type::NoneType);
        }
        Type::Scalar => {
            out.push(Type::Int);
            out.push(Type::Float);
            out.push(Type::Complex);
        }
        other => out.push(other.clone()),
    }
}

fn unify_for_union(a: &Type, b: &Type) -> Option<Type> {
    let a_none = a.is_subtype_of(&Type::NoneType);
    let b_none = b.is_subtype_of(&Type::NoneType);
    if a_none != b_none {
        return None;
    }
    if a.is_subtype_of(b) {
        return Some(b.clone());
    }
    if b.is_subtype_of(a) {
        return Some(a.clone());
    }
    if let (Type::Tuple(x), Type::Tuple(y)) = (a, b) {
        if x.len() == y.len() {
            let mut elems = Vec::with_capacity(x.len());
            for (p, q) in x.iter().zip(y) {
                elems.push(unify_for_union(p, q)?);
            }
            return Some(Type::Tuple(elems));
        }
    }
    None
}

fn standardize_union(types: &[Type]) -> Vec<Type> {
    let mut v = Vec::new();
    for t in types {
        flatten_into(t, &mut v);
    }
    if v.is_empty() {
        return v;
    }
    let mut end = v.len() - 1;
    let mut i = v.len() - 1;
    while i > 0 {
        let mut j = (i - 1).min(end);
        loop {
            if let Some(u) = unify_for_union(&v[i], &v[j]) {
                v[j] = u;
                v[i] = v[end].clone();
                end = end.saturating_sub(1);
                break;
            }
            if j == 0 {
                break;
            }
            j -= 1;
        }
        i -= 1;
    }
    v.truncate(end + 1);
    v.sort_by(|a, b| match a.kind_order().cmp(&b.kind_order()) {
        Ordering::Equal => a.to_string().cmp(&b.to_string()),
        o => o,
    });
    v
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Tensor => f.write_str("Tensor"),
            Type::Int => f.write_str("int"),
            Type::SymInt => f.write_str("SymInt"),
            Type::SymBool => f.write_str("SymBool"),
            Type::Float => f.write_str("float"),
            Type::Complex => f.write_str("complex"),
            Type::Bool => f.write_str("bool"),
            Type::Str => f.write_str("str"),
            Type::Scalar => f.write_str("Scalar"),
            Type::ScalarType => f.write_str("ScalarType"),
            Type::Layout => f.write_str("Layout"),
            Type::MemoryFormat => f.write_str("MemoryFormat"),
            Type::Device => f.write_str("Device"),
            Type::Generator => f.write_str("Generator"),
            Type::Storage => f.write_str("Storage"),
            Type::Stream => f.write_str("Stream"),
            Type::QScheme => f.write_str("QScheme"),
            Type::Quantizer => f.write_str("Quantizer"),
            Type::Capsule => f.write_str("Capsule"),
            Type::Any => f.write_str("Any"),
            Type::AnyClassType => f.write_str("AnyClassType"),
            Type::AnyEnumType => f.write_str("AnyEnumType"),
            Type::NoneType => f.write_str("NoneType"),
            Type::Optional(t) => write!(f, "{t}?"),
            Type::List(t) => write!(f, "{t}[]"),
            Type::Tuple(ts) => {
                f.write_str("(")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
            Type::Dict(k, v) => write!(f, "Dict({k}, {v})"),
            Type::Union(ts) => {
                let can_hold_number = union_can_hold_number(ts);
                let is_number = |t: &Type| matches!(t, Type::Int | Type::Float | Type::Complex);
                f.write_str("Union(")?;
                let mut printed = false;
                for (i, t) in ts.iter().enumerate() {
                    if !can_hold_number || !is_number(t) {
                        if i > 0 {
                            f.write_str(", ")?;
                            printed = true;
                        }
                        write!(f, "{t}")?;
                    }
                }
                if can_hold_number {
                    if printed {
                        f.write_str(", ")?;
                    }
                    f.write_str("Scalar")?;
                }
                f.write_str(")")
            }
            Type::Future(t) => write!(f, "Future({t})"),
            Type::Await(t) => write!(f, "Await({t})"),
            Type::RRef(t) => write!(f, "RRef({t})"),
            Type::Var(n) => f.write_str(n),
            Type::Class(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tensor_like_shortcuts_agree_with_subtyping() {
        use super::Type as T;
        for t in [
            T::Tensor,
            T::Int,
            T::SymInt,
            T::SymBool,
            T::Float,
            T::Complex,
            T::Bool,
            T::Str,
            T::Scalar,
            T::ScalarType,
            T::Layout,
            T::MemoryFormat,
            T::Device,
        ] {
            assert_eq!(t.is_tensor_like(), t.is_tensor_like_by_subtyping(), "{t:?}");
        }
    }

    use super::*;

    #[test]
    fn optional_flattening() {
        let t = Type::optional_of(Type::Optional(Box::new(Type::Tensor))).unwrap();
        assert_eq!(t.to_string(), "Tensor?");
        assert!(Type::optional_of(Type::NoneType).is_err());
        assert_eq!(
            Type::optional_of(Type::Scalar).unwrap().to_string(),
            "Scalar?"
        );
        assert_eq!(Type::optional_of(Type::Any).unwrap().to_string(), "Any?");
    }

    #[test]
    fn unions() {
        let u = Type::union_of(vec![Type::Str, Type::Int]).unwrap();
        assert_eq!(u.to_string(), "Union(int, str)");
        let o = Type::union_of(vec![Type::Int, Type::NoneType]).unwrap();
        assert_eq!(o.to_string(), "int?");
        assert!(Type::union_of(vec![Type::Int, Type::Int]).is_err());
    }

    #[test]
    fn tensor_like() {
        assert!(Type::Tensor.is_tensor_like());
        assert!(Type::Optional(Box::new(Type::Tensor)).is_tensor_like());
        assert!(Type::List(Box::new(Type::Tensor)).is_tensor_like());
        assert!(Type::List(Box::new(Type::Optional(Box::new(Type::Tensor)))).is_tensor_like());
        assert!(!Type::Int.is_tensor_like());
        assert!(!Type::List(Box::new(Type::Int)).is_tensor_like());
    }
}
