//! `OperatorHandle`: the cheap reference to an operator that calls and kernels hold.
//!
//! Kernels receive one (`BoxedKernel::call`), so it lives here, below the dispatcher: the
//! kernel module depends on this type, and the dispatcher on the operator module, never back.
//! The call entry points (`call_boxed`, `with_table`, ...) are implemented in `dispatcher.rs`,
//! which owns the registration lock they may need.

use std::sync::Arc;

use opdispatch_keys::{runtime_key_for_index, DispatchKey, DispatchKeySet};
use opdispatch_schema::OperatorName;

use super::OperatorEntry;

/// A cheap, clonable reference to a registered operator. It stays usable after the operator
/// is deregistered (calls then find no kernels), unlike PyTorch's dangling handles.
#[derive(Clone)]
pub struct OperatorHandle(pub(crate) Arc<OperatorEntry>);

impl PartialEq for OperatorHandle {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}
impl Eq for OperatorHandle {}

impl std::fmt::Debug for OperatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperatorHandle({})", self.0.name)
    }
}

impl OperatorHandle {
    pub fn operator_name(&self) -> &OperatorName {
        &self.0.name
    }
    /// Where the schema was defined.
    pub fn debug(&self) -> Option<String> {
        self.0
            .state
            .lock()
            .schema
            .as_ref()
            .map(|a| a.debug.to_string())
    }
    pub fn has_schema(&self) -> bool {
        self.0.state.lock().schema.is_some()
    }
    /// The tags its def gave the operator (none without a def).
    pub fn tags(&self) -> Vec<crate::Tag> {
        self.0.state.lock().tags.clone()
    }
    /// Whether a kernel was registered directly for `k` (alias keys included).
    pub fn has_kernel_for_dispatch_key(&self, k: DispatchKey) -> bool {
        self.0.state.lock().kernels.contains(k)
    }
    /// Whether the direct kernel for `k` is a fallthrough.
    pub fn kernel_for_dispatch_key_is_fallthrough(&self, k: DispatchKey) -> bool {
        self.0
            .state
            .lock()
            .kernels
            .front(k)
            .is_some_and(|a| a.kernel.is_fallthrough())
    }
    /// `hasKernelForAnyDispatchKey`.
    pub fn has_kernel_for_any_dispatch_key(&self, ks: DispatchKeySet) -> bool {
        self.0
            .state
            .lock()
            .kernels
            .keys()
            .any(|k| !k.is_alias() && ks.has(k))
    }
    pub fn dump_state(&self) -> String {
        self.0.dump_state()
    }
    /// A stable address for identity (for caches keyed by operator).
    pub fn as_ptr(&self) -> *const () {
        Arc::as_ptr(&self.0).cast()
    }
    /// Key for a runtime table index (re-exported helper for front ends).
    pub fn runtime_key_for_index(i: usize) -> DispatchKey {
        runtime_key_for_index(i)
    }
}
