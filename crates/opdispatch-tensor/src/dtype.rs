//! Scalar types (`dtype`s), Python-style scalars, and type promotion.
//!
//! Promotion reproduces c10's `promoteTypes` lookup table restricted to the
//! dtypes this crate supports, and ATen's `result_type` category rules
//! (`ResultTypeState`: dimensioned tensors outrank zero-dim tensors, which
//! outrank wrapped Python numbers, unless a lower-priority operand belongs to a
//! higher *category* bool < integral < floating < complex).

use crate::error::{Result, TensorError};
use num_complex::Complex;

/// The element type of a tensor. Order and names follow `c10::ScalarType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScalarType {
    Bool,
    UInt8,
    Int8,
    Int16,
    Int32,
    Int64,
    Float16,
    BFloat16,
    Float32,
    Float64,
    ComplexFloat,
}

/// The dtype a Python `float` (and factory functions without a dtype) map to.
pub const DEFAULT_DTYPE: ScalarType = ScalarType::Float32;

impl ScalarType {
    /// Every supported dtype, in declaration order.
    pub const ALL: [ScalarType; 11] = [
        ScalarType::Bool,
        ScalarType::UInt8,
        ScalarType::Int8,
        ScalarType::Int16,
        ScalarType::Int32,
        ScalarType::Int64,
        ScalarType::Float16,
        ScalarType::BFloat16,
        ScalarType::Float32,
        ScalarType::Float64,
        ScalarType::ComplexFloat,
    ];

    /// PyTorch's `c10::ScalarType` number (Byte=0 ... BFloat16=15): how a `ScalarType`
    /// argument travels in a boxed call.
    pub const fn c10_code(self) -> i64 {
        match self {
            ScalarType::UInt8 => 0,
            ScalarType::Int8 => 1,
            ScalarType::Int16 => 2,
            ScalarType::Int32 => 3,
            ScalarType::Int64 => 4,
            ScalarType::Float16 => 5,
            ScalarType::Float32 => 6,
            ScalarType::Float64 => 7,
            ScalarType::ComplexFloat => 9,
            ScalarType::Bool => 11,
            ScalarType::BFloat16 => 15,
        }
    }

    /// The dtype with c10 number `code`, if opdispatch has it (inverse of [`Self::c10_code`]).
    pub fn from_c10_code(code: i64) -> Option<ScalarType> {
        ScalarType::ALL.into_iter().find(|st| st.c10_code() == code)
    }

    /// Bytes per element.
    pub const fn itemsize(self) -> usize {
        match self {
            ScalarType::Bool | ScalarType::UInt8 | ScalarType::Int8 => 1,
            ScalarType::Int16 | ScalarType::Float16 | ScalarType::BFloat16 => 2,
            ScalarType::Int32 | ScalarType::Float32 => 4,
            ScalarType::Int64 | ScalarType::Float64 | ScalarType::ComplexFloat => 8,
        }
    }

    /// The Python attribute name (`opdispatch.float32` prints as `float32`).
    pub const fn name(self) -> &'static str {
        match self {
            ScalarType::Bool => "bool",
            ScalarType::UInt8 => "uint8",
            ScalarType::Int8 => "int8",
            ScalarType::Int16 => "int16",
            ScalarType::Int32 => "int32",
            ScalarType::Int64 => "int64",
            ScalarType::Float16 => "float16",
            ScalarType::BFloat16 => "bfloat16",
            ScalarType::Float32 => "float32",
            ScalarType::Float64 => "float64",
            ScalarType::ComplexFloat => "complex64",
        }
    }

    /// c10's `toString(ScalarType)` ("Float", "Long", ...), used in kernel errors.
    pub const fn cpp_name(self) -> &'static str {
        match self {
            ScalarType::Bool => "Bool",
            ScalarType::UInt8 => "Byte",
            ScalarType::Int8 => "Char",
            ScalarType::Int16 => "Short",
            ScalarType::Int32 => "Int",
            ScalarType::Int64 => "Long",
            ScalarType::Float16 => "Half",
            ScalarType::BFloat16 => "BFloat16",
            ScalarType::Float32 => "Float",
            ScalarType::Float64 => "Double",
            ScalarType::ComplexFloat => "ComplexFloat",
        }
    }

    /// The C++ element type name, as in "expected m1 and m2 to have the same dtype, but got: float != double".
    pub const fn cpp_type_name(self) -> &'static str {
        match self {
            ScalarType::Bool => "bool",
            ScalarType::UInt8 => "unsigned char",
            ScalarType::Int8 => "signed char",
            ScalarType::Int16 => "short int",
            ScalarType::Int32 => "int",
            ScalarType::Int64 => "long int",
            ScalarType::Float16 => "c10::Half",
            ScalarType::BFloat16 => "c10::BFloat16",
            ScalarType::Float32 => "float",
            ScalarType::Float64 => "double",
            ScalarType::ComplexFloat => "c10::complex<float>",
        }
    }

    /// Parse a Python-facing name; accepts the aliases PyTorch exposes
    /// (`float`, `double`, `half`, `long`, `int`, `short`, `cfloat`).
    pub fn from_name(s: &str) -> Option<ScalarType> {
        let s = s
            .strip_prefix("torch.")
            .or_else(|| s.strip_prefix("opdispatch."))
            .unwrap_or(s);
        Some(match s {
            "bool" => ScalarType::Bool,
            "uint8" => ScalarType::UInt8,
            "int8" => ScalarType::Int8,
            "int16" | "short" => ScalarType::Int16,
            "int32" | "int" => ScalarType::Int32,
            "int64" | "long" => ScalarType::Int64,
            "float16" | "half" => ScalarType::Float16,
            "bfloat16" => ScalarType::BFloat16,
            "float32" | "float" => ScalarType::Float32,
            "float64" | "double" => ScalarType::Float64,
            "complex64" | "cfloat" => ScalarType::ComplexFloat,
            _ => return None,
        })
    }

    pub const fn is_floating_point(self) -> bool {
        matches!(
            self,
            ScalarType::Float16 | ScalarType::BFloat16 | ScalarType::Float32 | ScalarType::Float64
        )
    }

    pub const fn is_complex(self) -> bool {
        matches!(self, ScalarType::ComplexFloat)
    }

    /// Integral types; `include_bool` mirrors c10's `isIntegralType(t, includeBool)`.
    pub const fn is_integral(self, include_bool: bool) -> bool {
        match self {
            ScalarType::Bool => include_bool,
            ScalarType::UInt8
            | ScalarType::Int8
            | ScalarType::Int16
            | ScalarType::Int32
            | ScalarType::Int64 => true,
            _ => false,
        }
    }

    pub const fn is_signed(self) -> bool {
        !matches!(self, ScalarType::Bool | ScalarType::UInt8)
    }

    /// The real counterpart of a complex type (`ComplexFloat -> Float32`), else itself.
    pub const fn to_real(self) -> ScalarType {
        match self {
            ScalarType::ComplexFloat => ScalarType::Float32,
            t => t,
        }
    }

    /// The complex counterpart of a floating type, where this crate has one.
    pub fn to_complex(self) -> Result<ScalarType> {
        match self {
            ScalarType::Float16
            | ScalarType::BFloat16
            | ScalarType::Float32
            | ScalarType::ComplexFloat => Ok(ScalarType::ComplexFloat),
            other => Err(TensorError::dtype(format!(
                "complex counterpart of {} (ComplexDouble) is not supported by opdispatch",
                other.name()
            ))),
        }
    }

    fn category(self) -> u8 {
        if self == ScalarType::Bool {
            0
        } else if self.is_integral(false) {
            1
        } else if self.is_floating_point() {
            2
        } else {
            3
        }
    }
}

impl std::fmt::Display for ScalarType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// c10's `promoteTypes`: the smallest dtype both operands convert to safely.
///
/// The only pair PyTorch promotes to a dtype this crate lacks is
/// `ComplexFloat`/`Float64` (-> ComplexDouble); that one is an error.
pub fn promote_types(a: ScalarType, b: ScalarType) -> Result<ScalarType> {
    use ScalarType::*;
    if a == b {
        return Ok(a);
    }
    // Symmetric table; order the pair so each case is written once.
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    Ok(match (x, y) {
        (Bool, other) => other,
        (UInt8, Int8) => Int16,
        // Integral with a wider integral, any float or complex: the other wins.
        (UInt8 | Int8 | Int16 | Int32, other) => other,
        (Int64, other) => other,
        (Float16, BFloat16) => Float32,
        (Float16, other) => other,
        (BFloat16, Float32 | Float64 | ComplexFloat) => y,
        (Float32, other) => other,
        (Float64, ComplexFloat) => {
            return Err(TensorError::dtype(
                "Promotion of complex64 and float64 requires complex128, which opdispatch does not support",
            ))
        }
        _ => unreachable!("promote_types: unordered pair ({x:?}, {y:?})"),
    })
}

/// A Python number: what a `Scalar` argument in a schema carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Complex(f64, f64),
}

impl Scalar {
    /// The dtype a wrapped number of this kind has *before* category rules
    /// (c10's `Scalar::type()`: bool, int64, float64, complex).
    pub fn natural_dtype(self) -> ScalarType {
        match self {
            Scalar::Bool(_) => ScalarType::Bool,
            Scalar::Int(_) => ScalarType::Int64,
            Scalar::Float(_) => ScalarType::Float64,
            Scalar::Complex(..) => ScalarType::ComplexFloat,
        }
    }
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as u8 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
            Scalar::Complex(re, _) => re,
        }
    }
    pub fn to_i64(self) -> i64 {
        match self {
            Scalar::Bool(b) => b as i64,
            Scalar::Int(i) => i,
            Scalar::Float(f) => f as i64,
            Scalar::Complex(re, _) => re as i64,
        }
    }
    pub fn to_bool(self) -> bool {
        match self {
            Scalar::Bool(b) => b,
            Scalar::Int(i) => i != 0,
            Scalar::Float(f) => f != 0.0,
            Scalar::Complex(re, im) => re != 0.0 || im != 0.0,
        }
    }
    pub fn to_c64(self) -> Complex<f64> {
        match self {
            Scalar::Complex(re, im) => Complex::new(re, im),
            other => Complex::new(other.to_f64(), 0.0),
        }
    }
    pub fn is_floating_point(self) -> bool {
        matches!(self, Scalar::Float(_))
    }
    pub fn is_complex(self) -> bool {
        matches!(self, Scalar::Complex(..))
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x:?}"),
            Scalar::Complex(re, im) => write!(f, "({re:?}{im:+?}j)"),
        }
    }
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}
impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Int(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::Int(v as i64)
    }
}
impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}
impl From<f32> for Scalar {
    fn from(v: f32) -> Self {
        Scalar::Float(v as f64)
    }
}

/// How an operand takes part in `result_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperandKind {
    /// A tensor with at least one dimension.
    Dimensioned,
    /// A zero-dimensional tensor.
    ZeroDim,
    /// A Python number (`is_wrapped_number` in ATen).
    WrappedNumber,
}

/// ATen's `ResultTypeState`, folded one operand at a time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResultTypeState {
    dim_result: Option<ScalarType>,
    zero_result: Option<ScalarType>,
    wrapped_result: Option<ScalarType>,
}

fn promote_opt(a: Option<ScalarType>, b: ScalarType) -> Result<Option<ScalarType>> {
    Ok(Some(match a {
        None => b,
        Some(a) => promote_types(a, b)?,
    }))
}

fn combine_categories(
    higher: Option<ScalarType>,
    lower: Option<ScalarType>,
) -> Result<Option<ScalarType>> {
    let Some(h) = higher else { return Ok(lower) };
    let Some(l) = lower else { return Ok(higher) };
    if h.is_complex() {
        return Ok(Some(h));
    }
    if l.is_complex() {
        // A floating higher keeps its precision but becomes complex.
        return Ok(Some(if h.is_floating_point() {
            h.to_complex()?
        } else {
            l
        }));
    }
    if h.is_floating_point() {
        return Ok(Some(h));
    }
    if h == ScalarType::Bool || l.is_floating_point() {
        return Ok(Some(promote_types(h, l)?));
    }
    Ok(Some(h))
}

impl ResultTypeState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold one operand of dtype `dtype`.
    pub fn update(&mut self, dtype: ScalarType, kind: OperandKind) -> Result<()> {
        match kind {
            OperandKind::Dimensioned => self.dim_result = promote_opt(self.dim_result, dtype)?,
            OperandKind::ZeroDim => self.zero_result = promote_opt(self.zero_result, dtype)?,
            OperandKind::WrappedNumber => {
                // Wrapped floats/complexes take the default dtype's precision.
                let d = if dtype.is_floating_point() {
                    DEFAULT_DTYPE
                } else if dtype.is_complex() {
                    DEFAULT_DTYPE.to_complex()?
                } else {
                    dtype
                };
                self.wrapped_result = promote_opt(self.wrapped_result, d)?;
            }
        }
        Ok(())
    }

    /// Fold a Python number.
    pub fn update_scalar(&mut self, s: Scalar) -> Result<()> {
        self.update(s.natural_dtype(), OperandKind::WrappedNumber)
    }

    /// The result; `None` when no operand was folded.
    pub fn result(&self) -> Result<Option<ScalarType>> {
        let low = combine_categories(self.zero_result, self.wrapped_result)?;
        combine_categories(self.dim_result, low)
    }
}

/// Whether a value of category `from` may be written into a tensor of `to`
/// without an unsafe narrowing of category (`canCast`): used by in-place ops.
pub fn can_cast(from: ScalarType, to: ScalarType) -> bool {
    from.category() <= to.category()
}

#[cfg(test)]
mod tests {
    use super::ScalarType::*;
    use super::*;

    #[test]
    fn promote_table_samples() {
        let p = |a, b| promote_types(a, b).unwrap();
        assert_eq!(p(UInt8, Int8), Int16);
        assert_eq!(p(Int8, UInt8), Int16);
        assert_eq!(p(Bool, UInt8), UInt8);
        assert_eq!(p(Bool, Bool), Bool);
        assert_eq!(p(Int32, Int64), Int64);
        assert_eq!(p(Int64, Float16), Float16);
        assert_eq!(p(Float16, BFloat16), Float32);
        assert_eq!(p(BFloat16, Int64), BFloat16);
        assert_eq!(p(BFloat16, Float64), Float64);
        assert_eq!(p(Float32, Float64), Float64);
        assert_eq!(p(Float16, ComplexFloat), ComplexFloat);
        assert_eq!(p(Int64, ComplexFloat), ComplexFloat);
        assert!(promote_types(Float64, ComplexFloat).is_err());
        // symmetric and idempotent over the whole table
        for a in ScalarType::ALL {
            assert_eq!(p(a, a), a);
            for b in ScalarType::ALL {
                assert_eq!(promote_types(a, b), promote_types(b, a));
            }
        }
    }

    fn rt(ops: &[(ScalarType, OperandKind)]) -> ScalarType {
        let mut s = ResultTypeState::new();
        for (d, k) in ops {
            s.update(*d, *k).unwrap();
        }
        s.result().unwrap().unwrap()
    }

    #[test]
    fn result_type_categories() {
        use OperandKind::*;
        // int tensor + python float -> default float
        assert_eq!(
            rt(&[(Int64, Dimensioned), (Float64, WrappedNumber)]),
            Float32
        );
        // bool tensor + python int -> int64
        assert_eq!(rt(&[(Bool, Dimensioned), (Int64, WrappedNumber)]), Int64);
        // int8 tensor + python int stays int8
        assert_eq!(rt(&[(Int8, Dimensioned), (Int64, WrappedNumber)]), Int8);
        // half tensor + python float stays half
        assert_eq!(
            rt(&[(Float16, Dimensioned), (Float64, WrappedNumber)]),
            Float16
        );
        // float tensor + zero-dim double stays float
        assert_eq!(rt(&[(Float32, Dimensioned), (Float64, ZeroDim)]), Float32);
        // int tensor + zero-dim double -> double (higher category)
        assert_eq!(rt(&[(Int32, Dimensioned), (Float64, ZeroDim)]), Float64);
        // two zero-dim tensors promote normally
        assert_eq!(rt(&[(Int32, ZeroDim), (Float64, ZeroDim)]), Float64);
        // float tensor + python complex -> complex64
        assert_eq!(
            rt(&[(Float32, Dimensioned), (ComplexFloat, WrappedNumber)]),
            ComplexFloat
        );
        // only wrapped numbers
        assert_eq!(
            rt(&[(Int64, WrappedNumber), (Float64, WrappedNumber)]),
            Float32
        );
    }
}
