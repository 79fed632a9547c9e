//! Incremental master-table updates (PyTorch's `updateDispatchTable_` family).

use opdispatch_keys::{dispatch_table_index_for_key, runtime_keys_in_table_order, DispatchKey};

use super::compute::{compute_entry_with, front, AliasFronts};
use super::{AnnotatedKernel, Fallbacks, Garbage, MasterTable, OpState, OperatorEntry};

/// Incremental updates of the master table (PyTorch's `updateDispatchTable_` family).
pub(crate) struct TableUpdate<'a> {
    st: &'a OpState,
    fronts: AliasFronts<'a>,
    fallbacks: &'a Fallbacks,
    pub(crate) table: &'a mut MasterTable,
}

/// Runs `f` on the operator's master table, then drops the published snapshot so the next
/// reader copies the updated master. Callers put a kernel they remove into
/// `garbage.annotated` before calling this (see [`MasterTable::release_unused`]).
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
    // An operation that let go of a kernel (it is in the garbage) may have left the master
    // the only other holder of it: release what no slot uses, after the locks.
    if !garbage.annotated.is_empty() {
        master.release_unused(&mut garbage.kernels);
    }
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
