//! PyTorch's `computeDispatchTableEntryWithDebug`: which kernel a table slot gets.

use std::sync::Arc;

use opdispatch_keys::{
    dispatch_table_index_for_key, get_backend_key_set_from_autograd, is_included_in_alias,
    runtime_keys_in_table_order, DispatchKey, DispatchKeySet, AUTOGRADOTHER_BACKENDS,
    NUM_RUNTIME_ENTRIES,
};
use opdispatch_schema::FunctionSchema;

use super::{AnnotatedKernel, Fallbacks, MasterTable, OpState, Provenance};
use crate::kernel::KernelFunction;

#[inline]
pub(super) fn front(st: &OpState, k: DispatchKey) -> Option<&AnnotatedKernel> {
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
pub(super) static AMBIGUOUS: std::sync::LazyLock<AnnotatedKernel> =
    std::sync::LazyLock::new(AnnotatedKernel::ambiguous_autograd_other);

/// The first kernel of each alias key, looked up once per batch of table updates rather than
/// once per runtime key (an alias update recomputes dozens of entries).
pub(crate) struct AliasFronts<'a> {
    pub(super) ceanf: Option<&'a AnnotatedKernel>,
    pub(super) cea: Option<&'a AnnotatedKernel>,
    pub(super) nested: Option<&'a AnnotatedKernel>,
    pub(super) cia: Option<&'a AnnotatedKernel>,
    pub(super) autograd: Option<&'a AnnotatedKernel>,
    pub(super) batched: Option<&'a AnnotatedKernel>,
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
pub(super) fn build_table(st: &OpState, fallbacks: &Fallbacks) -> MasterTable {
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
