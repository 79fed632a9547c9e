//! Helpers shared by the integration tests: a minimal tensor type with a fixed key set, and
//! unique namespaces (all tests of a binary share the process-wide dispatcher).

// TODO(issue 16): workspace lint not yet fixed here (crate being restructured); drop this allow once it is.
#![allow(unreachable_pub)]
#![allow(dead_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use opdispatch_dispatch::{DispatchKey, DispatchKeySet, IValue, TensorLike, TensorRef};

/// What a [`TestTensor`] points to.
#[derive(Debug)]
pub struct Inner {
    pub keys: DispatchKeySet,
    pub id: u64,
}

/// An `Arc`-backed tensor that only carries a key set and an id.
#[derive(Debug, Clone)]
pub struct TestTensor(pub Arc<Inner>);

// SAFETY: `into_raw` hands over one strong count of the Arc, `from_raw` takes it back,
// `retain_raw` adds one, and `key_set_raw` only reads through a live pointer.
unsafe impl TensorLike for TestTensor {
    fn key_set(&self) -> DispatchKeySet {
        self.0.keys
    }
    fn into_raw(self) -> NonNull<()> {
        NonNull::new(Arc::into_raw(self.0) as *mut ()).expect("Arc pointers are non-null")
    }
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: caller contract: `p` came from `into_raw` and owns one count.
        TestTensor(unsafe { Arc::from_raw(p.as_ptr() as *const Inner) })
    }
    unsafe fn retain_raw(p: NonNull<()>) {
        // SAFETY: caller contract: `p` points to a live Inner owned by an Arc.
        unsafe { Arc::increment_strong_count(p.as_ptr() as *const Inner) }
    }
    unsafe fn key_set_raw(p: NonNull<()>) -> DispatchKeySet {
        // SAFETY: caller contract: `p` points to a live Inner.
        unsafe { (*(p.as_ptr() as *const Inner)).keys }
    }
}

/// A boxed tensor with exactly these keys.
pub fn tensor(keys: &[DispatchKey]) -> TensorRef {
    tensor_id(keys, 0)
}

/// A boxed tensor with these keys and an id (to check identity through kernels).
pub fn tensor_id(keys: &[DispatchKey], id: u64) -> TensorRef {
    TensorRef::new(TestTensor(Arc::new(Inner {
        keys: DispatchKeySet::from_keys(keys),
        id,
    })))
}

/// The id of a boxed [`TestTensor`].
pub fn id_of(t: &TensorRef) -> u64 {
    t.downcast::<TestTensor>().expect("a TestTensor").0.id
}

pub fn t(keys: &[DispatchKey]) -> IValue {
    IValue::Tensor(tensor(keys))
}

/// A fresh namespace name.
pub fn unique_ns(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("__{prefix}_{}__", N.fetch_add(1, Ordering::Relaxed))
}
