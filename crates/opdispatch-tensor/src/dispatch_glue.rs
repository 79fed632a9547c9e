//! Plugs the runtime into the dispatcher: boxed tensors (`IValue::Tensor`) are this crate's
//! intrusive handles, so boxing or cloning one is a single count increment; `Scalar` is a
//! typed kernel argument; runtime errors travel through the dispatcher as [`AtenError`].
//!
//! These impls live here rather than in `opdispatch-aten` because Rust's orphan rule puts an
//! impl of a dispatcher trait for a runtime type in one of the two crates that own them.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use opdispatch_dispatch::{DispatchError, IValue, KernelArg, TensorLike, TensorRef};
use opdispatch_keys::DispatchKeySet;
use opdispatch_schema::Type;

use crate::{Scalar, Tensor, TensorError, TensorImpl};

/// A tensor-runtime error raised inside a kernel, carried through the dispatcher as
/// `DispatchError::External`, so front ends can downcast to it and map [`TensorError`]
/// variants to their own exception classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtenError(pub TensorError);

impl std::fmt::Display for AtenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AtenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl AtenError {
    /// The [`TensorError`] behind a dispatcher error, if a kernel raised one.
    pub fn from_dispatch_error(e: &DispatchError) -> Option<&TensorError> {
        match e {
            DispatchError::External(inner) => inner.downcast_ref::<AtenError>().map(|a| &a.0),
            _ => None,
        }
    }
}

impl From<AtenError> for DispatchError {
    fn from(e: AtenError) -> Self {
        DispatchError::External(Arc::new(e))
    }
}

impl From<TensorError> for DispatchError {
    fn from(e: TensorError) -> Self {
        AtenError(e).into()
    }
}

/// Scalars box as PyTorch's boxed convention has them: Bool/Int/Double/Complex.
impl KernelArg for Scalar {
    fn schema_type() -> Type {
        Type::Scalar
    }
    fn from_ivalue(v: IValue) -> opdispatch_dispatch::Result<Self> {
        match v {
            IValue::Bool(b) => Ok(Scalar::Bool(b)),
            IValue::Int(i) => Ok(Scalar::Int(i)),
            IValue::Double(f) => Ok(Scalar::Float(f)),
            IValue::Complex(re, im) => Ok(Scalar::Complex(re, im)),
            other => Err(DispatchError::Type(format!(
                "expected a value of type 'Scalar' but found '{}'",
                other.type_name()
            ))),
        }
    }
    fn into_ivalue(self) -> IValue {
        match self {
            Scalar::Bool(b) => IValue::Bool(b),
            Scalar::Int(i) => IValue::Int(i),
            Scalar::Float(f) => IValue::Double(f),
            Scalar::Complex(re, im) => IValue::Complex(re, im),
        }
    }
}

// SAFETY: `into_raw`/`from_raw` transfer exactly one count; `retain_raw` adds one to a live
// impl; Tensor is Send + Sync.
unsafe impl TensorLike for Tensor {
    #[inline]
    fn key_set(&self) -> DispatchKeySet {
        Tensor::key_set(self)
    }
    fn into_raw(self) -> NonNull<()> {
        Tensor::into_raw(self).cast()
    }
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: forwarded contract (p came from into_raw and owns one count).
        unsafe { Tensor::from_raw(p.cast::<TensorImpl>()) }
    }
    unsafe fn retain_raw(p: NonNull<()>) {
        // SAFETY: p is live; the clone's count is intentionally leaked into the caller's handle.
        std::mem::forget(unsafe { Tensor::clone_from_raw(p.cast::<TensorImpl>()) });
    }
    #[inline]
    unsafe fn key_set_raw(p: NonNull<()>) -> DispatchKeySet {
        // SAFETY: p is live; ManuallyDrop keeps the borrowed count untouched.
        let t = ManuallyDrop::new(unsafe { Tensor::from_raw(p.cast::<TensorImpl>()) });
        t.key_set()
    }
}

impl KernelArg for Tensor {
    fn schema_type() -> Type {
        Type::Tensor
    }
    #[inline]
    fn arg_key_set(&self) -> DispatchKeySet {
        self.key_set()
    }
    fn from_ivalue(v: opdispatch_dispatch::IValue) -> opdispatch_dispatch::Result<Self> {
        match v {
            opdispatch_dispatch::IValue::Tensor(t) => t.into_inner::<Tensor>().map_err(|_| {
                opdispatch_dispatch::DispatchError::Type("expected an opdispatch Tensor".into())
            }),
            other => Err(opdispatch_dispatch::DispatchError::Type(format!(
                "expected a value of type 'Tensor' but found '{}'",
                other.type_name()
            ))),
        }
    }
    fn into_ivalue(self) -> opdispatch_dispatch::IValue {
        opdispatch_dispatch::IValue::Tensor(TensorRef::new(self))
    }
}
