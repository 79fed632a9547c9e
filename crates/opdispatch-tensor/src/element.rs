//! Rust element types behind each [`ScalarType`], and the conversions kernels
//! use to move values between a tensor's bytes and a computation domain
//! (`bool`, `i64`, `f64` or `Complex<f64>`).
//!
//! Values are read and written with `from_ne_bytes`/`to_ne_bytes`, so the
//! generic paths need no alignment and no `unsafe`; only the contiguous fast
//! paths reinterpret byte slices, through [`cast_slice`]/[`cast_slice_mut`].

use crate::ScalarType;
use half::{bf16, f16};
use num_complex::Complex;

/// Complex numbers in the `f64` computation domain.
pub type C64 = Complex<f64>;

/// A Rust type that is the element type of one [`ScalarType`].
pub trait Element: Copy + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    const DTYPE: ScalarType;
    /// Decode from exactly `DTYPE.itemsize()` native-endian bytes.
    fn read(b: &[u8]) -> Self;
    /// Encode into exactly `DTYPE.itemsize()` bytes.
    fn write(self, b: &mut [u8]);
    fn to_f64(self) -> f64;
    fn to_i64(self) -> i64;
    fn to_bool(self) -> bool;
    fn to_c64(self) -> C64 {
        C64::new(self.to_f64(), 0.0)
    }
    fn from_f64(v: f64) -> Self;
    fn from_i64(v: i64) -> Self;
    fn from_bool(v: bool) -> Self;
    fn from_c64(v: C64) -> Self {
        // Casting complex to real keeps the real part (PyTorch warns and does the same).
        Self::from_f64(v.re)
    }
}

macro_rules! int_element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: ScalarType = ScalarType::$d;
            fn read(b: &[u8]) -> Self {
                <$t>::from_ne_bytes(b.try_into().expect("element width"))
            }
            fn write(self, b: &mut [u8]) {
                b.copy_from_slice(&self.to_ne_bytes())
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn to_bool(self) -> bool {
                self != 0
            }
            fn from_f64(v: f64) -> Self {
                // Truncation toward zero, like a C++ static_cast; out of range
                // goes through i64 and wraps, matching common PyTorch CPU results.
                (v as i64) as $t
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            fn from_bool(v: bool) -> Self {
                v as $t
            }
        }
    };
}
int_element!(u8, UInt8);
int_element!(i8, Int8);
int_element!(i16, Int16);
int_element!(i32, Int32);
int_element!(i64, Int64);

impl Element for bool {
    const DTYPE: ScalarType = ScalarType::Bool;
    fn read(b: &[u8]) -> Self {
        // Any non-zero byte is true, so arbitrary bytes are never UB.
        b[0] != 0
    }
    fn write(self, b: &mut [u8]) {
        b[0] = self as u8;
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_bool(self) -> bool {
        self
    }
    fn to_c64(self) -> C64 {
        C64::new(self.to_f64(), 0.0)
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn from_bool(v: bool) -> Self {
        v
    }
    fn from_c64(v: C64) -> Self {
        v.re != 0.0 || v.im != 0.0
    }
}

macro_rules! float_element {
    ($t:ty, $d:ident, $to:expr, $from:expr, $bits:ty) => {
        impl Element for $t {
            const DTYPE: ScalarType = ScalarType::$d;
            fn read(b: &[u8]) -> Self {
                <$t>::from_bits(<$bits>::from_ne_bytes(b.try_into().expect("element width")))
            }
            fn write(self, b: &mut [u8]) {
                b.copy_from_slice(&self.to_bits().to_ne_bytes())
            }
            fn to_f64(self) -> f64 {
                $to(self)
            }
            fn to_i64(self) -> i64 {
                $to(self) as i64
            }
            fn to_bool(self) -> bool {
                $to(self) != 0.0
            }
            fn from_f64(v: f64) -> Self {
                $from(v)
            }
            fn from_i64(v: i64) -> Self {
                $from(v as f64)
            }
            fn from_bool(v: bool) -> Self {
                $from(v as u8 as f64)
            }
        }
    };
}
float_element!(f32, Float32, |x: f32| x as f64, |v: f64| v as f32, u32);
float_element!(f64, Float64, |x: f64| x, |v: f64| v, u64);
float_element!(f16, Float16, |x: f16| x.to_f64(), f16::from_f64, u16);
float_element!(bf16, BFloat16, |x: bf16| x.to_f64(), bf16::from_f64, u16);

impl Element for Complex<f32> {
    const DTYPE: ScalarType = ScalarType::ComplexFloat;
    fn read(b: &[u8]) -> Self {
        Complex::new(f32::read(&b[..4]), f32::read(&b[4..8]))
    }
    fn write(self, b: &mut [u8]) {
        self.re.write(&mut b[..4]);
        self.im.write(&mut b[4..8]);
    }
    fn to_f64(self) -> f64 {
        self.re as f64
    }
    fn to_i64(self) -> i64 {
        self.re as i64
    }
    fn to_bool(self) -> bool {
        self.re != 0.0 || self.im != 0.0
    }
    fn to_c64(self) -> C64 {
        C64::new(self.re as f64, self.im as f64)
    }
    fn from_f64(v: f64) -> Self {
        Complex::new(v as f32, 0.0)
    }
    fn from_i64(v: i64) -> Self {
        Complex::new(v as f32, 0.0)
    }
    fn from_bool(v: bool) -> Self {
        Complex::new(v as u8 as f32, 0.0)
    }
    fn from_c64(v: C64) -> Self {
        Complex::new(v.re as f32, v.im as f32)
    }
}

/// Call `$body` with type alias `$T` bound to the element type of `$dtype`.
macro_rules! dispatch_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::ScalarType::Bool => {
                type $T = bool;
                $body
            }
            $crate::ScalarType::UInt8 => {
                type $T = u8;
                $body
            }
            $crate::ScalarType::Int8 => {
                type $T = i8;
                $body
            }
            $crate::ScalarType::Int16 => {
                type $T = i16;
                $body
            }
            $crate::ScalarType::Int32 => {
                type $T = i32;
                $body
            }
            $crate::ScalarType::Int64 => {
                type $T = i64;
                $body
            }
            $crate::ScalarType::Float16 => {
                type $T = half::f16;
                $body
            }
            $crate::ScalarType::BFloat16 => {
                type $T = half::bf16;
                $body
            }
            $crate::ScalarType::Float32 => {
                type $T = f32;
                $body
            }
            $crate::ScalarType::Float64 => {
                type $T = f64;
                $body
            }
            $crate::ScalarType::ComplexFloat => {
                type $T = num_complex::Complex<f32>;
                $body
            }
        }
    };
}
pub(crate) use dispatch_dtype;

/// Element types for which every bit pattern is a valid value, so byte slices
/// may be reinterpreted as slices of them.
///
/// # Safety
/// Implement only for types with no padding and no invalid bit patterns.
pub(crate) unsafe trait Pod: Copy + 'static {}
// SAFETY: plain integers and IEEE floats: every bit pattern is valid, no padding.
unsafe impl Pod for f32 {}
// SAFETY: as above.
unsafe impl Pod for f64 {}
// SAFETY: as above.
unsafe impl Pod for i64 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}

/// View `bytes` as `&[T]`; `None` if misaligned or not a whole number of elements.
pub(crate) fn cast_slice<T: Pod>(bytes: &[u8]) -> Option<&[T]> {
    // SAFETY: `T: Pod`, so any initialized bytes form valid `T`s; `align_to`
    // only places correctly aligned, in-bounds elements in the middle part.
    let (pre, mid, post) = unsafe { bytes.align_to::<T>() };
    (pre.is_empty() && post.is_empty()).then_some(mid)
}

/// View `bytes` as `&mut [T]`; `None` if misaligned or not a whole number of elements.
pub(crate) fn cast_slice_mut<T: Pod>(bytes: &mut [u8]) -> Option<&mut [T]> {
    // SAFETY: as in `cast_slice`; any `T` written is valid bytes back.
    let (pre, mid, post) = unsafe { bytes.align_to_mut::<T>() };
    (pre.is_empty() && post.is_empty()).then_some(mid)
}
