//! The two table types: the master every registration updates and the snapshot calls read.

use std::sync::Arc;

use opdispatch_keys::{DispatchKey, DispatchKeySet, NUM_BACKENDS, NUM_RUNTIME_ENTRIES};
use opdispatch_schema::FunctionSchema;

use super::compute::AMBIGUOUS;
use super::{Fallbacks, OpState};
use crate::kernel::{KernelFunction, KernelRef};
use crate::tls::tls_local_dispatch_key_set;

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
    pub(super) fn set_operator_has_fallthrough_for_key(
        &mut self,
        k: DispatchKey,
        has_fallthrough: bool,
    ) {
        // `remove(k)` clears k's functionality bits only; `add(k)` sets all of k's bits. Both
        // are one AND plus one OR, applied to whole arrays so the loop vectorizes.
        let key_bits = DispatchKeySet::from_key(k).raw_repr();
        let (and, or) = if has_fallthrough {
            (!(key_bits & !opdispatch_keys::FULL_BACKEND_MASK), 0)
        } else {
            (!0u64, key_bits)
        };
        let upd = |ks: &mut DispatchKeySet| {
            *ks = DispatchKeySet::from_raw_repr((ks.raw_repr() & and) | or);
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

    /// `ks` without the keys whose slot is a fallthrough (for `ks`'s backend).
    #[inline]
    pub(crate) fn drop_fallthroughs(&self, ks: DispatchKeySet) -> DispatchKeySet {
        let mask = if self.requires_bitset_per_backend {
            self.non_fallthrough_keys_per_backend[ks.get_backend_index()]
        } else {
            self.non_fallthrough_keys
        };
        ks & mask
    }

    pub(super) fn refresh_requires_bitset(&mut self) {
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
/// The list holds one strong reference per kernel, so a slot can never outlive its kernel
/// (the compiler checks this: there are no raw pointers here). Writing a slot counts nothing;
/// only listing a kernel for the first time takes a reference. Every slot's kernel is also
/// one the registrations own (the operator's kernel lists, a backend fallback, or a static):
/// a deregistration moves its kernel to the `Garbage` and recomputes every slot that can hold
/// it, then [`MasterTable::release_unused`] moves the list's now unused references to the
/// `Garbage` too, so the master never keeps a deregistered kernel alive and never drops the
/// last reference to one under the locks. `check_invariants` verifies this.
#[derive(Clone)]
pub(crate) struct MasterTable {
    /// Per slot: 0 for missing, else 1 + the kernel's index in `kernels`.
    slots: [u8; NUM_RUNTIME_ENTRIES],
    /// The kernels slots point to. One no slot uses any more stays listed (a registration
    /// often brings it back) until the list is full, which compacts it, or until a
    /// deregistration releases it (`release_unused`).
    kernels: smallvec::SmallVec<[KernelFunction; 8]>,
    pub(crate) meta: TableMeta,
}

/// The slot value of a missing kernel.
static MISSING_KERNEL: KernelFunction = KernelFunction::missing();

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
    pub(crate) fn slot(&self, idx: usize) -> &KernelFunction {
        match self.slots[idx] {
            0 => &MISSING_KERNEL,
            i => &self.kernels[usize::from(i) - 1],
        }
    }

    /// Points slot `idx` at `k`.
    #[inline]
    pub(crate) fn set_entry(&mut self, idx: usize, k: &KernelFunction) {
        self.slots[idx] = if k.is_valid() { self.index_of(k) } else { 0 };
    }

    /// `k`'s slot value, listing it if needed.
    #[inline]
    fn index_of(&mut self, k: &KernelFunction) -> u8 {
        // Newest first: an alias update sets dozens of slots to the kernel it just added.
        match self.kernels.iter().rposition(|e| e.same_as(k)) {
            Some(i) => Self::slot_value(i),
            None => self.push_kernel(k),
        }
    }

    #[cold]
    fn push_kernel(&mut self, k: &KernelFunction) -> u8 {
        if self.kernels.len() == usize::from(u8::MAX) {
            for unused in self.compact() {
                // Never the last reference: unused entries are released (`release_unused`)
                // whenever a registration lets go of a kernel, so the others are still owned.
                debug_assert!(unused
                    .inner
                    .as_ref()
                    .is_none_or(|a| Arc::strong_count(a) > 1));
                drop(unused);
            }
        }
        self.kernels.push(k.clone());
        Self::slot_value(self.kernels.len() - 1)
    }

    #[inline]
    fn slot_value(i: usize) -> u8 {
        debug_assert!(i < usize::from(u8::MAX));
        // At most 255 kernels are listed (`push_kernel` compacts a full list).
        (i + 1) as u8
    }

    /// Drops the kernels no slot uses from the list and returns them. At most 137 can be in
    /// use, so this frees room.
    fn compact(&mut self) -> smallvec::SmallVec<[KernelFunction; 8]> {
        let mut remap = [0u8; 256];
        let mut old = std::mem::take(&mut self.kernels);
        for s in &mut self.slots {
            if *s != 0 {
                let o = usize::from(*s);
                if remap[o] == 0 {
                    self.kernels.push(std::mem::take(&mut old[o - 1]));
                    remap[o] = Self::slot_value(self.kernels.len() - 1);
                }
                *s = remap[o];
            }
        }
        old.retain(|k| k.is_valid());
        old
    }

    /// Moves the listed kernels no slot uses any more to `out`: after a deregistration one of
    /// them may be the last reference to a kernel, which must be released after the locks.
    pub(crate) fn release_unused(&mut self, out: &mut Vec<KernelFunction>) {
        let mut used = [false; 256];
        for &s in &self.slots {
            used[usize::from(s)] = true;
        }
        if (1..=self.kernels.len()).all(|i| used[i]) {
            return;
        }
        out.extend(self.compact());
    }

    /// The table calls read, holding its own reference to each kernel its slots use, so it
    /// may outlive the registrations.
    pub(crate) fn snapshot(&self) -> DispatchTable {
        let mut used = [false; 256];
        let entries = std::array::from_fn(|i| {
            used[usize::from(self.slots[i])] = true;
            KernelRef::of(self.slot(i))
        });
        let owners = self
            .kernels
            .iter()
            .enumerate()
            .filter(|(i, _)| used[i + 1])
            .map(|(_, k)| k.clone())
            .collect();
        DispatchTable {
            entries,
            owners,
            meta: self.meta.clone(),
        }
    }

    /// Whether every slot's kernel is one the registrations own, and no listed kernel is only
    /// kept alive by this table (see the type's docs).
    pub(crate) fn slots_owned_by(&self, st: &OpState, fallbacks: &Fallbacks) -> bool {
        let owned = |e: &KernelFunction| {
            st.kernels.iter().any(|(_, a, _)| e.same_as(&a.kernel))
                || fallbacks.iter().flatten().any(|f| e.same_as(&f.kernel))
                || e.same_as(&AMBIGUOUS.kernel)
        };
        (0..NUM_RUNTIME_ENTRIES).all(|i| !self.slot(i).is_valid() || owned(self.slot(i)))
            && self.kernels.iter().all(owned)
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
        self.meta
            .drop_fallthroughs((ks | tls.included) - tls.excluded)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::{AnnotatedKernel, OperatorEntry};
    use opdispatch_keys::dispatch_table_index_for_key;
    use opdispatch_schema::OperatorName;

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
        // More than the 255 a u8 index holds; fewer under Miri (slow), still past the limit.
        let n = if cfg!(miri) { 300 } else { 600 };
        for _ in 0..n {
            let k = own_kernel();
            t.set_entry(5, &k);
            ks.push(k);
        }
        assert!(t.kernels.len() <= usize::from(u8::MAX));
        assert!(t.slot(0).same_as(&keep) && t.slot(NUM_RUNTIME_ENTRIES - 1).same_as(t.slot(0)));
        assert!(t.slot(5).same_as(ks.last().unwrap()));
        assert!(!t.slot(6).is_valid());
        let snap = t.snapshot();
        assert!(snap.owners_match_slots());
        assert_eq!(snap.owners.len(), 2);
        // Clearing a slot makes it missing again.
        t.set_entry(5, &KernelFunction::missing());
        assert!(!t.slot(5).is_valid());
    }

    #[test]
    fn release_unused_hands_back_references_no_slot_uses() {
        let mut t = MasterTable::fresh(&[]);
        let (a, b) = (own_kernel(), own_kernel());
        let count = |k: &KernelFunction| Arc::strong_count(k.inner.as_ref().unwrap());
        t.set_entry(3, &a);
        t.set_entry(4, &b);
        assert_eq!((count(&a), count(&b)), (2, 2));
        let mut out = Vec::new();
        // Everything listed is in use: nothing to release.
        t.release_unused(&mut out);
        assert!(out.is_empty());
        // `a` leaves its slot (as a deregistration recomputes it): the master lets it go.
        t.set_entry(3, &KernelFunction::missing());
        t.release_unused(&mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].same_as(&a));
        drop(out);
        assert_eq!((count(&a), count(&b)), (1, 2));
        assert!(t.slot(4).same_as(&b) && !t.slot(3).is_valid());
        drop(t);
        assert_eq!(count(&b), 1);
    }
}
