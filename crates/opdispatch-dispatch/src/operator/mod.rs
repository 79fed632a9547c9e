//! `OperatorEntry`: one operator's registrations, its computed dispatch table and its dumps.
//!
//! Registrations (schema, kernels per key) live behind the dispatcher's registration lock,
//! together with the operator's *master* dispatch table, which every (de)registration updates
//! incrementally with PyTorch's `updateDispatchTable_` rules. Those rules refresh only the keys a
//! registration names (plus Undefined and the backend's autograd key), so, as in PyTorch, some
//! entries can keep an earlier value; calls observe that, and the conformance recordings
//! depend on it. Calls read an immutable snapshot of the master without any lock; a
//! registration drops the snapshot and the next reader copies the master again, so bulk
//! registration does not copy the table once per registration.
//!
//! Files: `register.rs` (what each registration changes, with its checks), `table.rs` (master
//! and snapshot tables), `compute.rs` (precedence), `update.rs` (incremental updates),
//! `garbage.rs` (deferred release), `dump.rs` (dumps and invariants), `handle.rs`
//! (`OperatorHandle`). The fields of `OperatorEntry` and `OpState` are private to this module.

mod compute;
mod dump;
mod explain;
mod garbage;
mod handle;
mod register;
mod table;
mod update;

use std::sync::Arc;

use opdispatch_keys::DispatchKey;
use opdispatch_schema::{FunctionSchema, OperatorName};
use parking_lot::Mutex;

use crate::kernel::KernelFunction;

pub use explain::{CallWalk, SlotExplanation};
pub(crate) use garbage::Garbage;
pub use handle::OperatorHandle;
pub(crate) use register::ImplRegistration;
pub(crate) use table::{DispatchTable, MasterTable};

/// A registered kernel with where it came from.
#[derive(Clone)]
pub struct AnnotatedKernel {
    pub kernel: KernelFunction,
    pub inferred_schema: Option<Arc<FunctionSchema>>,
    pub debug: Arc<str>,
    /// Identifies this registration so its handle removes exactly it.
    pub(crate) id: u64,
}

impl AnnotatedKernel {
    pub(crate) fn ambiguous_autograd_other() -> Self {
        Self {
            kernel: KernelFunction::ambiguous_autograd_other(),
            inferred_schema: None,
            debug: Arc::from("ambiguous_autogradother"),
            id: 0,
        }
    }
}

/// The schema and where it was defined.
#[derive(Clone)]
pub struct AnnotatedSchema {
    pub schema: Arc<FunctionSchema>,
    pub debug: Arc<str>,
}

/// The C++-signature analogue: the Rust type of a typed kernel, recorded so that two typed
/// kernels of one operator agree.
#[derive(Clone)]
pub(crate) struct CppSignatureWithDebug {
    pub(crate) sig: std::any::TypeId,
    pub(crate) sig_name: &'static str,
    pub(crate) debug: Arc<str>,
    pub(crate) dispatch_key: Option<DispatchKey>,
}

/// Mutable registration state of one operator (guarded by the dispatcher's lock).
pub(crate) struct OpState {
    schema: Option<AnnotatedSchema>,
    /// The def's tags (go with the schema).
    tags: Vec<crate::Tag>,
    /// Per key, newest first; never holds the Undefined key.
    kernels: crate::kernel_lists::KernelLists,
    def_count: usize,
    def_and_impl_count: usize,
    cpp_signature: Option<CppSignatureWithDebug>,
    /// PyTorch's hash-map iteration order over `kernels` (see `key_order`).
    key_order: crate::key_order::KernelKeyOrder,
    /// The incrementally maintained table (always `Some` outside `update_master`, except for
    /// an operator removed from the registry, which gets none: see `OperatorEntry::detach_if_unused`).
    master: Option<Box<MasterTable>>,
    /// Bit `k` set iff `kernels` has key `k`: table updates probe many keys that have none.
    kernel_keys: [u64; 3],
}

impl OpState {
    fn note_key_added(&mut self, k: DispatchKey) {
        let v = usize::from(k.as_u16());
        self.kernel_keys[v / 64] |= 1 << (v % 64);
    }
    fn note_key_removed(&mut self, k: DispatchKey) {
        let v = usize::from(k.as_u16());
        self.kernel_keys[v / 64] &= !(1 << (v % 64));
    }
    #[inline]
    pub(super) fn may_have(&self, k: DispatchKey) -> bool {
        let v = usize::from(k.as_u16());
        self.kernel_keys[v / 64] & (1 << (v % 64)) != 0
    }
}

/// Where a computed table entry came from (the bracketed label of `dump_computed_table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Kernel,
    DefaultBackendKernel,
    NestedKernel,
    MathKernel,
    AmbiguousAutogradOther,
    AutogradKernel,
    BatchedKernel,
    BackendFallback,
    Missing,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::DefaultBackendKernel => "default backend kernel",
            Self::NestedKernel => "nested kernel",
            Self::MathKernel => "math kernel",
            Self::AmbiguousAutogradOther => "ambiguous autogradother",
            Self::AutogradKernel => "autograd kernel",
            Self::BatchedKernel => "batched kernel",
            Self::BackendFallback => "backend fallback",
            Self::Missing => "missing",
        }
    }
}

/// One operator: name, registrations and computed table.
pub struct OperatorEntry {
    name: OperatorName,
    /// The registry's hash of `name`, kept so removing the operator reads no name.
    name_hash: u64,
    state: Mutex<OpState>,
    /// `None` after a change, until the next reader rebuilds it.
    table: crate::rcu::RcuCell<DispatchTable>,
}

/// Read access to the global backend fallbacks while computing tables.
pub(crate) type Fallbacks = [Option<AnnotatedKernel>];

impl OperatorEntry {
    /// A new operator whose table starts as `fresh` (the backend fallbacks only).
    pub(crate) fn new(name: OperatorName, name_hash: u64, fresh: &MasterTable) -> Self {
        let t = fresh.clone();
        let st = OpState {
            schema: None,
            tags: Vec::new(),
            kernels: Default::default(),
            def_count: 0,
            def_and_impl_count: 0,
            cpp_signature: None,
            key_order: Default::default(),
            master: Some(Box::new(t)),
            kernel_keys: [0; 3],
        };
        Self {
            name,
            name_hash,
            state: Mutex::new(st),
            table: crate::rcu::RcuCell::empty(),
        }
    }

    pub fn operator_name(&self) -> &OperatorName {
        &self.name
    }

    /// The registry's hash of the name.
    pub(crate) fn name_hash(&self) -> u64 {
        self.name_hash
    }

    /// The registration state; take the registry lock first (see the lock discipline).
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, OpState> {
        self.state.lock()
    }

    /// The snapshot calls read, built from the master (or, for an operator removed from the
    /// registry, from `fresh`, the backend fallbacks of now) and published, unless one is
    /// published already. `st` is this operator's state: the caller holds the registry lock
    /// and this guard, which order it against registrations.
    pub(crate) fn snapshot_for_calls(
        &self,
        st: &OpState,
        fresh: &MasterTable,
    ) -> Arc<DispatchTable> {
        if let Some(t) = self.table.load_full() {
            return t;
        }
        let t = Arc::new(match st.master.as_deref() {
            Some(master) => master.snapshot(),
            // An operator removed from the registry (its handle kept elsewhere) has no master:
            // no registration updates it any more, so it gets none either, only a snapshot of
            // the backend fallbacks of now, which owns what it uses.
            None => fresh.snapshot(),
        });
        self.table.publish(t.clone());
        t
    }

    /// The newest kernel registered directly for `k`, if any.
    pub(crate) fn direct_kernel(&self, k: DispatchKey) -> Option<KernelFunction> {
        self.state.lock().kernels.front(k).map(|a| a.kernel.clone())
    }

    /// The published snapshot, if no registration has dropped it since.
    #[inline]
    pub(crate) fn published_table<'g>(
        &self,
        g: &'g crate::rcu::ReadGuard,
    ) -> Option<&'g DispatchTable> {
        self.table.load(g)
    }
}
