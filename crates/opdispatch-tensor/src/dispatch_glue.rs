//! Plugs `Tensor` into the dispatcher: boxed tensors (`IValue::Tensor`) are this crate's
//! intrusive handles, so boxing or cloning one is a single count increment.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use opdispatch_dispatch::{KernelArg, TensorLike, TensorRef};
use opdispatch_keys::DispatchKeySet;
use opdispatch_schema::Type;

use crate::{Tensor, TensorImpl};

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
