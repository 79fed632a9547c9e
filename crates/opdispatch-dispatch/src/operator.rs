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

use std::fmt::Write as _;
use std::sync::Arc;

use opdispatch_keys::{
    dispatch_table_index_for_key, get_backend_key_set_from_autograd, is_included_in_alias,
    runtime_keys_in_table_order, DispatchKey, DispatchKeySet, AUTOGRADOTHER_BACKENDS, NUM_BACKENDS,
    NUM_RUNTIME_ENTRIES,
};
use opdispatch_schema::{FunctionSchema, OperatorName};
use parking_lot::Mutex;

use crate::kernel::{KernelFunction, KernelRef};
use crate::tls::tls_local_dispatch_key_set;

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
    pub(crate) schema: Option<AnnotatedSchema>,
    /// The def's tags (go with the schema).
    pub(crate) tags: Vec<crate::Tag>,
    /// Per key, newest first; never holds the Undefined key.
    pub(crate) kernels: crate::kernel_lists::KernelLists,
    pub(crate) def_count: usize,
    pub(crate) def_and_impl_count: usize,
    pub(crate) cpp_signature: Option<CppSignatureWithDebug>,
    /// PyTorch's hash-map iteration order over `kernels` (see `key_order`).
    pub(crate) key_order: crate::key_order::KernelKeyOrder,
    /// The incrementally maintained table (always `Some` outside `update_master`, except for
    /// an operator removed from the registry, which gets none: see `Registry::cleanup`).
    pub(crate) master: Option<Box<MasterTable>>,
    /// Bit `k` set iff `kernels` has key `k`: table updates probe many keys that have none.
    pub(crate) kernel_keys: [u64; 3],
}

impl OpState {
    pub(crate) fn note_key_added(&mut self, k: DispatchKey) {
        let v = usize::from(k.as_u16());
        self.kernel_keys[v / 64] |= 1 << (v % 64);
    }
    pub(crate) fn note_key_removed(&mut self, k: DispatchKey) {
        let v = usize::from(k.as_u16());
        self.kernel_keys[v / 64] &= !(1 << (v % 64));
    }
    #[inline]
    fn may_have(&self, k: DispatchKey) -> bool {
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

/// What a table holds besides its kernels: key extraction and fallthrough masks, and the
/// schema. The master table keeps it current; snapshots copy it.
#[derive(Clone)]
pub(crate) struct TableMeta {
    /// Bit `i` set: the `i`-th argument counted from the end is a dispatch argument.
    pub(crate) dispatch_arg_indices_reverse: u64,
    pub(crate) non_fallthrough_keys: DispatchKeySet,
    pub(crate) non_fallthrough_keys_per_backend: [DispatchKeySet; NUM_BACKENDS],
    pub(crate) requires_bitset_per_backend: bool,
    /// The current schema, so callers read it without the registration lock.
    pub(crate) schema: Option<Arc<FunctionSchema>>,
}

impl TableMeta {
    fn new() -> Self {
        Self {
            dispatch_arg_indices_reverse: 0,
            non_fallthrough_keys: DispatchKeySet::FULL,
            non_fallthrough_keys_per_backend: [DispatchKeySet::FULL; NUM_BACKENDS],
            requires_bitset_per_backend: false,
            schema: None,
        }
    }

    /// Updates the fallthrough masks for `k`. `requires_bitset_per_backend` is derived from
    /// the per-backend masks afterwards (`refresh_requires_bitset`), once per batch of updates.
    fn set_operator_has_fallthrough_for_key(&mut self, k: DispatchKey, has_fallthrough: bool) {
        // `remove(k)` clears k's functionality bits only; `add(k)` sets all of k's bits. Both
        // are one AND plus one OR, applied to whole arrays so the loop vectorizes.
        let key_bits = DispatchKeySet::from_key(k).raw_repr();
        let (and, or) = if has_fallthrough {
            (!(key_bits & !opdispatch_keys::FULL_BACKEND_MASK), 0)
        } else {
            (!0u64, key_bits)
        };
        let upd = |ks: &mut DispatchKeySet| {
            *ks = DispatchKeySet::from_raw_repr((ks.raw_repr() & and) | or)
        };
        upd(&mut self.non_fallthrough_keys);
        if k.to_functionality_key().is_per_backend_functionality() {
            let b = k.to_backend_component() as usize;
            debug_assert!((1..=NUM_BACKENDS).contains(&b));
            upd(&mut self.non_fallthrough_keys_per_backend[b - 1]);
        } else {
            for ks in &mut self.non_fallthrough_keys_per_backend {
                upd(ks);
            }
        }
    }

    fn refresh_requires_bitset(&mut self) {
        self.requires_bitset_per_backend = self
            .non_fallthrough_keys_per_backend
            .windows(2)
            .any(|w| w[0] != w[1]);
    }
}

/// An operator's master table: kept under the registration lock and updated in place by every
/// (de)registration, with PyTorch's incremental rules. Calls never read it; they read a
/// [`DispatchTable`] snapshot of it.
///
/// Its slots are one byte each, indices into a short list of the distinct kernels they use
/// (an operator has a handful in up to 137 slots), so a master is about a quarter of a
/// snapshot's size: registering thousands of operators writes that much less fresh memory.
///
/// The kernels are borrowed: every slot points to a kernel the registrations own (one in the
/// operator's kernel lists, a backend fallback, or a static one). A deregistration moves its
/// kernel to the `Garbage` and recomputes every slot that can hold it (the slots of its key's
/// runtime set, and Undefined for composite keys) before the garbage is dropped.
/// `check_invariants` verifies this.
#[derive(Clone)]
pub(crate) struct MasterTable {
    /// Per slot: 0 for missing, else 1 + the kernel's index in `kernels`.
    slots: [u8; NUM_RUNTIME_ENTRIES],
    /// The kernels slots point to. One no slot uses any more stays listed (a registration
    /// often brings it back) until the list is full, which compacts it.
    kernels: smallvec::SmallVec<[KernelRef; 8]>,
    pub(crate) meta: TableMeta,
}

impl MasterTable {
    /// A fresh operator's table: exactly the backend fallbacks (it has no kernels yet).
    pub(crate) fn fresh(fallbacks: &Fallbacks) -> Self {
        let mut t = Self {
            slots: [0; NUM_RUNTIME_ENTRIES],
            kernels: smallvec::SmallVec::new(),
            meta: TableMeta::new(),
        };
        for (i, fb) in fallbacks.iter().enumerate() {
            if let Some(fb) = fb {
                t.set_entry(i, &fb.kernel);
                if fb.kernel.is_fallthrough() {
                    t.meta.set_operator_has_fallthrough_for_key(
                        opdispatch_keys::runtime_key_for_index(i),
                        true,
                    );
                }
            }
        }
        t.meta.refresh_requires_bitset();
        t
    }

    /// The kernel of slot `idx`.
    #[inline]
    pub(crate) fn slot(&self, idx: usize) -> KernelRef {
        match self.slots[idx] {
            0 => KernelRef::MISSING,
            i => self.kernels[usize::from(i) - 1],
        }
    }

    /// Points slot `idx` at `k`, which the registrations own.
    #[inline]
    pub(crate) fn set_entry(&mut self, idx: usize, k: &KernelFunction) {
        let r = KernelRef::of(k);
        self.slots[idx] = if r.is_valid() { self.index_of(r) } else { 0 };
    }

    /// `r`'s slot value, listing it if needed.
    #[inline]
    fn index_of(&mut self, r: KernelRef) -> u8 {
        // Newest first: an alias update sets dozens of slots to the kernel it just added.
        match self.kernels.iter().rposition(|&e| e == r) {
            Some(i) => Self::slot_value(i),
            None => self.push_kernel(r),
        }
    }

    #[cold]
    fn push_kernel(&mut self, r: KernelRef) -> u8 {
        if self.kernels.len() == usize::from(u8::MAX) {
            self.compact();
        }
        self.kernels.push(r);
        Self::slot_value(self.kernels.len() - 1)
    }

    #[inline]
    fn slot_value(i: usize) -> u8 {
        debug_assert!(i < usize::from(u8::MAX));
        // At most 255 kernels are listed (`push_kernel` compacts a full list).
        (i + 1) as u8
    }

    /// Drops the kernels no slot uses. At most 137 can be in use, so this frees room.
    fn compact(&mut self) {
        let mut remap = [0u8; 256];
        let mut kept = smallvec::SmallVec::<[KernelRef; 8]>::new();
        for s in &mut self.slots {
            if *s != 0 {
                let old = usize::from(*s);
                if remap[old] == 0 {
                    kept.push(self.kernels[old - 1]);
                    remap[old] = Self::slot_value(kept.len() - 1);
                }
                *s = remap[old];
            }
        }
        self.kernels = kept;
    }

    /// The table calls read, holding its own reference to each kernel its slots use, so it
    /// may outlive the registrations. Runs under the registration lock.
    pub(crate) fn snapshot(&self) -> DispatchTable {
        let mut used = [false; 256];
        let entries = std::array::from_fn(|i| {
            used[usize::from(self.slots[i])] = true;
            self.slot(i)
        });
        let owners = self
            .kernels
            .iter()
            .enumerate()
            .filter(|(i, _)| used[i + 1])
            // SAFETY: a master's slots point to kernels the registrations own (the registry's
            // template: the backend fallbacks). The caller holds the registration lock, or the
            // operator's state lock, under which every removal of one of them updates this
            // master before the kernel is released.
            .map(|(_, r)| unsafe { r.upgrade() })
            .collect();
        DispatchTable {
            entries,
            owners,
            meta: self.meta.clone(),
        }
    }

    /// Whether every slot's kernel is one the registrations own (see the type's docs).
    pub(crate) fn slots_owned_by(&self, st: &OpState, fallbacks: &Fallbacks) -> bool {
        let owned = |e: KernelRef| {
            st.kernels.iter().any(|(_, a, _)| e.same_as(&a.kernel))
                || fallbacks.iter().flatten().any(|f| e.same_as(&f.kernel))
                || e.same_as(&AMBIGUOUS.kernel)
        };
        (0..NUM_RUNTIME_ENTRIES).all(|i| !self.slot(i).is_valid() || owned(self.slot(i)))
    }
}

/// The per-operator snapshot calls read: kernels by runtime index plus the key-extraction
/// state. Published by the first call after a registration and read without any lock.
pub(crate) struct DispatchTable {
    /// Inline, so a call reaches its slot with one load less and a table is one allocation.
    pub(crate) entries: [KernelRef; NUM_RUNTIME_ENTRIES],
    /// One strong reference per distinct kernel in `entries`.
    owners: smallvec::SmallVec<[KernelFunction; 8]>,
    pub(crate) meta: TableMeta,
}

impl DispatchTable {
    /// Whether `owners` are exactly the distinct kernels of the slots.
    pub(crate) fn owners_match_slots(&self) -> bool {
        let used = |o: &KernelFunction| self.entries.iter().any(|e| e.same_as(o));
        self.owners.iter().all(used)
            && self
                .entries
                .iter()
                .all(|e| !e.is_valid() || self.owners.iter().any(|o| e.same_as(o)))
    }

    /// Applies the local TLS sets and the fallthrough mask to the arguments' keys.
    #[inline]
    pub(crate) fn mask_and_tls(&self, ks: DispatchKeySet) -> DispatchKeySet {
        let tls = tls_local_dispatch_key_set();
        let effective = (ks | tls.included) - tls.excluded;
        let mask = if self.meta.requires_bitset_per_backend {
            self.meta.non_fallthrough_keys_per_backend[effective.get_backend_index()]
        } else {
            self.meta.non_fallthrough_keys
        };
        effective & mask
    }

    /// Boxed key extraction (PyTorch's `getDispatchKeySetBoxed`).
    #[inline]
    pub(crate) fn key_set_boxed(&self, stack: &[crate::IValue]) -> DispatchKeySet {
        let mut ks = DispatchKeySet::EMPTY;
        let mut bits = self.meta.dispatch_arg_indices_reverse;
        let len = stack.len();
        while bits != 0 {
            let r = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if r < len {
                ks |= stack[len - 1 - r].key_set();
            }
        }
        self.mask_and_tls(ks)
    }
}

/// One operator: name, registrations and computed table.
pub struct OperatorEntry {
    pub(crate) name: OperatorName,
    /// The registry's hash of `name`, kept so removing the operator reads no name.
    pub(crate) name_hash: u64,
    pub(crate) state: Mutex<OpState>,
    /// `None` after a change, until the next reader rebuilds it.
    pub(crate) table: crate::rcu::RcuCell<DispatchTable>,
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
}

#[inline]
fn front(st: &OpState, k: DispatchKey) -> Option<&AnnotatedKernel> {
    if !st.may_have(k) {
        return None;
    }
    st.kernels.front(k)
}

/// `hasKernelForAnyDispatchKey`: any non-alias key with a kernel that `ks` has.
fn has_kernel_for_any(st: &OpState, ks: DispatchKeySet) -> bool {
    st.kernels.keys().any(|k| !k.is_alias() && ks.has(k))
}

static MISSING: std::sync::LazyLock<AnnotatedKernel> =
    std::sync::LazyLock::new(|| AnnotatedKernel {
        kernel: KernelFunction::missing(),
        inferred_schema: None,
        debug: Arc::from(""),
        id: 0,
    });
static AMBIGUOUS: std::sync::LazyLock<AnnotatedKernel> =
    std::sync::LazyLock::new(AnnotatedKernel::ambiguous_autograd_other);

/// The first kernel of each alias key, looked up once per batch of table updates rather than
/// once per runtime key (an alias update recomputes dozens of entries).
pub(crate) struct AliasFronts<'a> {
    ceanf: Option<&'a AnnotatedKernel>,
    cea: Option<&'a AnnotatedKernel>,
    nested: Option<&'a AnnotatedKernel>,
    cia: Option<&'a AnnotatedKernel>,
    autograd: Option<&'a AnnotatedKernel>,
    batched: Option<&'a AnnotatedKernel>,
}

impl<'a> AliasFronts<'a> {
    pub(crate) fn of(st: &'a OpState) -> Self {
        use DispatchKey as K;
        Self {
            ceanf: front(st, K::CompositeExplicitAutogradNonFunctional),
            cea: front(st, K::CompositeExplicitAutograd),
            nested: front(st, K::CompositeImplicitAutogradNestedTensor),
            cia: front(st, K::CompositeImplicitAutograd),
            autograd: front(st, K::Autograd),
            batched: front(st, K::FuncTorchBatchedDecomposition),
        }
    }
}

// Which alias keys include a runtime key: bits of `ALIAS_MEMBERSHIP`.
const IN_CEANF: u8 = 1;
const IN_CEA: u8 = 2;
const IN_NESTED: u8 = 4;
const IN_CIA: u8 = 8;
const IN_AUTOGRAD: u8 = 16;
const IN_BATCHED: u8 = 32;

/// The alias keys that include `k`, as `IN_*` bits.
const fn alias_membership(k: DispatchKey) -> u8 {
    use DispatchKey as K;
    const ALIASES: [(DispatchKey, u8); 6] = [
        (K::CompositeExplicitAutogradNonFunctional, IN_CEANF),
        (K::CompositeExplicitAutograd, IN_CEA),
        (K::CompositeImplicitAutogradNestedTensor, IN_NESTED),
        (K::CompositeImplicitAutograd, IN_CIA),
        (K::Autograd, IN_AUTOGRAD),
        (K::FuncTorchBatchedDecomposition, IN_BATCHED),
    ];
    let mut bits = 0;
    let mut a = 0;
    while a < ALIASES.len() {
        if is_included_in_alias(k, ALIASES[a].0) {
            bits |= ALIASES[a].1;
        }
        a += 1;
    }
    bits
}

/// [`alias_membership`] of each runtime table slot's key, built at compile time: an alias
/// registration recomputes dozens of slots, each of which used to test up to six key sets.
static ALIAS_MEMBERSHIP: [u8; NUM_RUNTIME_ENTRIES] = {
    let mut m = [0u8; NUM_RUNTIME_ENTRIES];
    let mut i = 0;
    while i < NUM_RUNTIME_ENTRIES {
        m[i] = alias_membership(opdispatch_keys::runtime_key_for_index(i));
        i += 1;
    }
    m
};

/// PyTorch's `computeDispatchTableEntryWithDebug`: the precedence rules of spec 3.5. Returns a
/// reference: table updates only copy the kernel when the slot actually changes.
pub(crate) fn compute_entry<'a>(
    st: &'a OpState,
    fallbacks: &'a Fallbacks,
    k: DispatchKey,
) -> (&'a AnnotatedKernel, Provenance) {
    // Any key may be asked about here, not only the runtime key of its slot.
    let idx = dispatch_table_index_for_key(k);
    entry_for(
        st,
        &AliasFronts::of(st),
        fallbacks,
        k,
        idx,
        alias_membership(k),
    )
}

/// [`compute_entry`] for the runtime key `k` of table slot `idx`, with the alias kernels
/// already looked up.
#[inline]
pub(crate) fn compute_entry_with<'a>(
    st: &'a OpState,
    fronts: &AliasFronts<'a>,
    fallbacks: &'a Fallbacks,
    k: DispatchKey,
    idx: usize,
) -> (&'a AnnotatedKernel, Provenance) {
    debug_assert_eq!(opdispatch_keys::runtime_key_for_index(idx), k);
    entry_for(st, fronts, fallbacks, k, idx, ALIAS_MEMBERSHIP[idx])
}

/// The precedence rules, given k's table slot `idx` and its `IN_*` alias membership.
fn entry_for<'a>(
    st: &'a OpState,
    fronts: &AliasFronts<'a>,
    fallbacks: &'a Fallbacks,
    k: DispatchKey,
    idx: usize,
    member: u8,
) -> (&'a AnnotatedKernel, Provenance) {
    use DispatchKey as K;
    if let Some(kern) = front(st, k) {
        return (kern, Provenance::Kernel);
    }
    let undefined = k == K::Undefined;
    if let Some(kern) = fronts.ceanf {
        if undefined || member & IN_CEANF != 0 {
            return (kern, Provenance::DefaultBackendKernel);
        }
    }
    let cea = fronts.cea;
    if let Some(kern) = cea {
        if undefined || member & IN_CEA != 0 {
            return (kern, Provenance::DefaultBackendKernel);
        }
    }
    if let Some(kern) = fronts.nested {
        if member & IN_NESTED != 0 {
            return (kern, Provenance::NestedKernel);
        }
    }
    if let Some(kern) = fronts.cia {
        if undefined || member & IN_CIA != 0 {
            if k == K::AutogradOther && has_kernel_for_any(st, AUTOGRADOTHER_BACKENDS) {
                return (&AMBIGUOUS, Provenance::AmbiguousAutogradOther);
            }
            let has_backend_kernel =
                cea.is_some() || has_kernel_for_any(st, get_backend_key_set_from_autograd(k));
            if !has_backend_kernel {
                return (kern, Provenance::MathKernel);
            }
        }
    }
    if let Some(kern) = fronts.autograd {
        if member & IN_AUTOGRAD != 0 {
            return (kern, Provenance::AutogradKernel);
        }
    }
    if let Some(kern) = fronts.batched {
        if member & IN_BATCHED != 0 {
            return (kern, Provenance::BatchedKernel);
        }
    }
    if let Some(Some(fb)) = fallbacks.get(idx) {
        return (fb, Provenance::BackendFallback);
    }
    (&MISSING, Provenance::Missing)
}

/// Builds the bitset of dispatch arguments, counted from the end.
pub(crate) fn dispatch_arg_bitset(schema: &FunctionSchema) -> crate::Result<u64> {
    let n = schema.arguments.len();
    if n > 64 {
        return Err(crate::DispatchError::Runtime(format!(
            "The function schema has {n} arguments but this PyTorch build only supports 64"
        )));
    }
    let mut bits = 0u64;
    for (i, a) in schema.arguments.iter().enumerate() {
        if a.ty.is_tensor_like() {
            bits |= 1 << (n - 1 - i);
        }
    }
    Ok(bits)
}

/// Computes the whole dispatch table from the registrations, as a fresh operator would get it
/// (used by `checkInvariants`).
pub(crate) fn build_table(st: &OpState, fallbacks: &Fallbacks) -> MasterTable {
    let fronts = AliasFronts::of(st);
    let mut t = MasterTable::fresh(&[]);
    if let Some(a) = &st.schema {
        t.meta.schema = Some(a.schema.clone());
        // A registered schema always passed this check at def time.
        t.meta.dispatch_arg_indices_reverse = dispatch_arg_bitset(&a.schema).unwrap_or(0);
    }
    for (idx, &k) in runtime_keys_in_table_order().iter().enumerate() {
        let (kern, _) = compute_entry_with(st, &fronts, fallbacks, k, idx);
        t.set_entry(idx, &kern.kernel);
        t.meta
            .set_operator_has_fallthrough_for_key(k, kern.kernel.is_fallthrough());
    }
    t.meta.refresh_requires_bitset();
    t
}

/// Values taken out of the registry while its locks are held. One of them may be the last
/// reference to a Python kernel, and releasing that runs arbitrary Python code (`__del__`,
/// finalizers) that may call back into the dispatcher, so they are dropped only after every
/// lock is released: callers create the `Garbage` before taking the locks.
#[derive(Default)]
pub(crate) struct Garbage {
    pub(crate) annotated: Vec<AnnotatedKernel>,
    pub(crate) tables: Vec<crate::rcu::Retired>,
    /// Master tables of removed operators, kept boxed as `OpState` held them (no moves).
    #[allow(clippy::vec_box)]
    pub(crate) masters: Vec<Box<MasterTable>>,
    pub(crate) ops: Vec<crate::OperatorHandle>,
}

impl Drop for Garbage {
    fn drop(&mut self) {
        // Unpublished snapshots may still be read by calls in flight.
        crate::rcu::retire_all(std::mem::take(&mut self.tables));
    }
}

/// Incremental updates of the master table (PyTorch's `updateDispatchTable_` family).
pub(crate) struct TableUpdate<'a> {
    st: &'a OpState,
    fronts: AliasFronts<'a>,
    fallbacks: &'a Fallbacks,
    pub(crate) table: &'a mut MasterTable,
}

/// Runs `f` on the operator's master table, then drops the published snapshot so the next
/// reader copies the updated master.
pub(crate) fn update_master(
    entry: &OperatorEntry,
    st: &mut OpState,
    fallbacks: &Fallbacks,
    garbage: &mut Garbage,
    f: impl FnOnce(&mut TableUpdate<'_>),
) {
    let mut master = st
        .master
        .take()
        .expect("master table present outside update_master");
    {
        let mut upd = TableUpdate {
            st,
            fronts: AliasFronts::of(st),
            fallbacks,
            table: &mut master,
        };
        f(&mut upd);
    }
    master.meta.refresh_requires_bitset();
    st.master = Some(master);
    if let Some(old) = entry.table.take() {
        garbage.tables.push(old);
    }
}

/// Runtime keys with their table indices.
type RuntimeKeys = Box<[(DispatchKey, usize)]>;

/// Per key (by `as_u16`): its runtime keys and their table indices, in
/// `get_runtime_dispatch_key_set` order. Alias updates walk these lists for every registration.
static RUNTIME_EXPANSION: std::sync::LazyLock<Vec<RuntimeKeys>> = std::sync::LazyLock::new(|| {
    let n = DispatchKey::ALL
        .iter()
        .map(|k| usize::from(k.as_u16()))
        .max()
        .unwrap_or(0)
        + 1;
    let mut v: Vec<RuntimeKeys> = vec![Box::default(); n];
    for &k in DispatchKey::ALL {
        v[usize::from(k.as_u16())] = opdispatch_keys::get_runtime_dispatch_key_set(k)
            .iter()
            .map(|rk| (rk, dispatch_table_index_for_key(rk)))
            .collect();
    }
    v
});

impl<'a> TableUpdate<'a> {
    fn update_entry(&mut self, k: DispatchKey) {
        self.update_entries(&[(k, dispatch_table_index_for_key(k))]);
    }

    /// `update_entry` for runtime keys with their table indices, in one loop: an alias key
    /// expands to dozens.
    fn update_entries(&mut self, keys: &[(DispatchKey, usize)]) {
        for &(k, idx) in keys {
            let (kern, _) = compute_entry_with(self.st, &self.fronts, self.fallbacks, k, idx);
            self.write(k, idx, kern);
        }
    }

    /// [`Self::update_entries`] for the runtime keys of `alias`, given that `kernel` (the
    /// alias's own) is what precedence picks for each of them that has no kernel of its own.
    /// This is the common case of registering a CompositeExplicitAutograd kernel (dozens of
    /// slots), which then needs no precedence walk per slot.
    fn update_alias_entries(&mut self, keys: &[(DispatchKey, usize)], kernel: &'a AnnotatedKernel) {
        for &(k, idx) in keys {
            let kern = front(self.st, k).unwrap_or(kernel);
            debug_assert!(std::ptr::eq(
                kern,
                compute_entry_with(self.st, &self.fronts, self.fallbacks, k, idx).0
            ));
            self.write(k, idx, kern);
        }
    }

    /// The kernel precedence picks for every runtime key of `alias` that has no kernel of its
    /// own, when that is simply the alias's kernel: the alias has one and no alias above it in
    /// precedence (spec 3.5) has one. CompositeImplicitAutograd is never such an alias: its
    /// kernel's use depends on the key (the AutogradOther and backend-kernel rules).
    fn sole_alias_kernel(&self, alias: DispatchKey) -> Option<&'a AnnotatedKernel> {
        match alias {
            DispatchKey::CompositeExplicitAutogradNonFunctional => self.fronts.ceanf,
            DispatchKey::CompositeExplicitAutograd if self.fronts.ceanf.is_none() => {
                self.fronts.cea
            }
            _ => None,
        }
    }

    /// Points slot `idx` (runtime key `k`) at `kern` if it points elsewhere, applying k's
    /// fallthrough status to the masks when it changes.
    #[inline(always)]
    fn write(&mut self, k: DispatchKey, idx: usize, kern: &'a AnnotatedKernel) {
        let slot = self.table.slot(idx);
        // PyTorch re-applies k's fallthrough status to the masks on every update. Doing it
        // only when the status changes gives the same dispatch: a per-backend mask's bit for k
        // only ever reflects k's own slot, and the shared mask (whose functionality bits all
        // backends' keys write, last writer wins) is consulted only while all per-backend masks
        // agree, i.e. while every writer of a bit has the same current status, which the last
        // status change wrote.
        if slot.same_as(&kern.kernel) {
            return;
        }
        let (new_ft, old_ft) = (kern.kernel.is_fallthrough(), slot.is_fallthrough());
        if old_ft || new_ft {
            self.table
                .meta
                .set_operator_has_fallthrough_for_key(k, new_ft);
        }
        self.table.set_entry(idx, &kern.kernel);
    }

    /// `updateDispatchTable_(k)` (spec 3.6).
    pub(crate) fn update(&mut self, k: DispatchKey) {
        use DispatchKey as K;
        if k == K::Undefined {
            self.update_entry(K::Undefined);
            return;
        }
        let keys = &RUNTIME_EXPANSION[usize::from(k.as_u16())];
        match self.sole_alias_kernel(k) {
            Some(kernel) => self.update_alias_entries(keys, kernel),
            None => self.update_entries(keys),
        }
        if matches!(
            k,
            K::CompositeImplicitAutograd
                | K::CompositeExplicitAutograd
                | K::CompositeExplicitAutogradNonFunctional
        ) {
            self.update_entry(K::Undefined);
        }
        if k.is_backend_dispatch_key() {
            self.update_entry(opdispatch_keys::get_autograd_key_from_backend(
                k.to_backend_component(),
            ));
        }
    }

    /// `updateDispatchTableFull_()`.
    pub(crate) fn update_full(&mut self) {
        self.update(DispatchKey::Undefined);
        for &k in &runtime_keys_in_table_order()[1..] {
            self.update(k);
        }
    }
}

impl OperatorEntry {
    /// PyTorch's `dumpState()`: the canonical (non-derived) registration state.
    pub fn dump_state(&self) -> String {
        self.dump_state_of(&self.state.lock())
    }

    pub(crate) fn dump_state_of(&self, st: &OpState) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "name: {}", self.name);
        match &st.schema {
            Some(a) => {
                let _ = writeln!(s, "schema: {}", a.schema);
                let _ = writeln!(s, "debug: {}", a.debug);
                let _ = writeln!(
                    s,
                    "alias analysis kind: {}{}",
                    a.schema.alias_analysis(),
                    if a.schema.is_default_alias_analysis_kind() {
                        " (default)"
                    } else {
                        ""
                    }
                );
            }
            None => s.push_str("schema: (none)\n"),
        }
        for (k, kern, active) in st.kernels.iter() {
            let _ = writeln!(
                s,
                "{}{}{}: {} :: {} [ {}]",
                k.name(),
                if k.is_alias() { "[alias]" } else { "" },
                if active { "" } else { " (inactive)" },
                kern.debug,
                kern.inferred_schema
                    .as_ref()
                    .map_or_else(|| "(none)".to_owned(), |sc| sc.to_string()),
                kern.kernel.dump_state()
            );
        }
        s
    }

    pub(crate) fn dump_computed_table_with(&self, st: &OpState, fallbacks: &Fallbacks) -> String {
        let mut s = String::new();
        for &k in runtime_keys_in_table_order() {
            let (kern, prov) = compute_entry(st, fallbacks, k);
            if kern.kernel.is_valid() {
                let _ = writeln!(
                    s,
                    "{}: {}{} [{}]",
                    k.name(),
                    if kern.kernel.is_fallthrough() {
                        "fallthrough "
                    } else {
                        ""
                    },
                    kern.debug,
                    prov.as_str()
                );
            }
        }
        s
    }

    /// `listAllDispatchKeys()`: keys (table order, Undefined excluded) whose stored entry is valid.
    pub(crate) fn list_all_dispatch_keys(table: &DispatchTable) -> String {
        let names: Vec<&str> = runtime_keys_in_table_order()[1..]
            .iter()
            .filter(|&&k| table.entries[dispatch_table_index_for_key(k)].is_valid())
            .map(|k| k.name())
            .collect();
        format!("[{}]", names.join(", "))
    }

    /// `checkInvariants()`: the stored table (when built) equals a recomputation.
    pub(crate) fn check_invariants_with(
        &self,
        st: &OpState,
        fallbacks: &Fallbacks,
    ) -> crate::Result<()> {
        let mut ok = true;
        if let Some(a) = &st.schema {
            ok &= a.schema.operator_name() == &self.name;
        }
        ok &= !st.kernels.contains(DispatchKey::Undefined);
        if let Some(table) = st.master.as_deref() {
            let fresh = build_table(st, fallbacks);
            let (fm, tm) = (&fresh.meta, &table.meta);
            ok &= fm.dispatch_arg_indices_reverse == tm.dispatch_arg_indices_reverse;
            ok &= fm.non_fallthrough_keys_per_backend == tm.non_fallthrough_keys_per_backend;
            ok &= fm.requires_bitset_per_backend == tm.requires_bitset_per_backend;
            ok &= table.slots_owned_by(st, fallbacks);
            if let Some(snapshot) = self.table.load_full() {
                ok &= snapshot.owners_match_slots();
            }
            // The shared mask is only consulted while the per-backend masks agree; then it must
            // mask exactly what they mask.
            if !tm.requires_bitset_per_backend {
                let func = !opdispatch_keys::FULL_BACKEND_MASK;
                ok &= tm.non_fallthrough_keys.raw_repr() & func
                    == tm.non_fallthrough_keys_per_backend[0].raw_repr() & func;
            }
            for i in 0..NUM_RUNTIME_ENTRIES {
                ok &= fresh.slot(i) == table.slot(i);
            }
        }
        if ok {
            Ok(())
        } else {
            Err(crate::DispatchError::Internal(format!(
                "Canonical state\n~~~~~~~~~~~\n{}\n\nComputed table:\n~~~~~~~~~~~\n{}",
                self.dump_state_of(st),
                self.dump_computed_table_with(st, fallbacks)
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_kernel() -> KernelFunction {
        // A kernel of its own (the fallthrough is shared), so its count is this test's alone.
        KernelFunction::redispatch_masked(DispatchKeySet::FULL)
    }

    #[test]
    fn ownership_checks_see_unowned_slots_and_snapshot_references() {
        let empty = MasterTable::fresh(&[]);
        let entry = OperatorEntry::new(OperatorName::new("test::own", ""), 0, &empty);
        let mut st = entry.state.lock();
        let k = own_kernel();
        let idx = dispatch_table_index_for_key(DispatchKey::CPU);
        let mut t = MasterTable::fresh(&[]);
        assert!(t.slots_owned_by(&st, &[]));
        // A slot pointing at a kernel no registration holds breaks the invariant...
        t.set_entry(idx, &k);
        assert!(!t.slots_owned_by(&st, &[]));
        // ...and holds it once the operator's kernel list does.
        st.kernels.push_front(
            DispatchKey::CPU,
            AnnotatedKernel {
                kernel: k.clone(),
                inferred_schema: None,
                debug: Arc::from("test"),
                id: 1,
            },
        );
        assert!(t.slots_owned_by(&st, &[]));
        // A snapshot owns what its slots use: one reference per distinct kernel.
        let before = Arc::strong_count(k.inner.as_ref().unwrap());
        t.set_entry(idx + 1, &k);
        let snap = t.snapshot();
        assert!(snap.owners_match_slots());
        assert!(
            snap.entries[idx] == KernelRef::of(&k) && snap.entries[idx + 1] == snap.entries[idx]
        );
        assert_eq!(Arc::strong_count(k.inner.as_ref().unwrap()), before + 1);
        drop(snap);
        assert_eq!(Arc::strong_count(k.inner.as_ref().unwrap()), before);
    }

    #[test]
    fn master_kernel_list_compacts_when_full() {
        let mut t = MasterTable::fresh(&[]);
        let keep = own_kernel();
        t.set_entry(0, &keep);
        t.set_entry(NUM_RUNTIME_ENTRIES - 1, &keep);
        // Hundreds of kernels pass through one slot; all but the last fall out of use.
        let mut ks = Vec::new();
        for _ in 0..600 {
            let k = own_kernel();
            t.set_entry(5, &k);
            ks.push(k);
        }
        assert!(t.kernels.len() <= usize::from(u8::MAX));
        assert!(t.slot(0) == KernelRef::of(&keep) && t.slot(NUM_RUNTIME_ENTRIES - 1) == t.slot(0));
        assert!(t.slot(5) == KernelRef::of(ks.last().unwrap()));
        assert!(!t.slot(6).is_valid());
        let snap = t.snapshot();
        assert!(snap.owners_match_slots());
        assert_eq!(snap.owners.len(), 2);
        // Clearing a slot makes it missing again.
        t.set_entry(5, &KernelFunction::missing());
        assert!(!t.slot(5).is_valid());
    }
}
