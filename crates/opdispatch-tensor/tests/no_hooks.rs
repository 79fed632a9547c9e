//! Without installed hooks, attaching a Python object must be refused (its own
//! test binary, so no other test has installed hooks).
use opdispatch_tensor::{AttachError, Device, ScalarType, Tensor};
use std::ptr::NonNull;

#[test]
fn attach_without_hooks_is_refused() {
    let t = Tensor::zeros(&[1], ScalarType::Int64, Device::Cpu).unwrap();
    let mut fake = 0u8;
    // SAFETY: the call fails before the pointer is stored or used.
    let r = unsafe { t.attach_pyobject(NonNull::from(&mut fake).cast()) };
    assert_eq!(r, Err(AttachError::NoHooks));
    assert!(!t.has_pyobject());
    assert!(t.pyobj_slot().get().is_none());
}
