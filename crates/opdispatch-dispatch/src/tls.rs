//! Thread-local dispatch state: the local include/exclude key sets and the hermetic-PyObject flag.
//!
//! The key sets are stored XOR the defaults (PyTorch's "Note [TLS Initialization]"), so a
//! zero-initialised thread already includes BackendSelect/ADInplaceOrView and excludes the
//! autocast keys. Every guard restores exactly what it changed when dropped, also during a panic.

use std::cell::Cell;

use opdispatch_keys::{
    DispatchKey, DispatchKeySet, DEFAULT_EXCLUDED_SET, DEFAULT_INCLUDED_SET, FULL_BACKEND_MASK,
};

/// All of this module's per-thread state in one thread-local, so a call or a hermetic guard
/// pays one TLS lookup (in a shared library each lookup is a `__tls_get_addr` call).
struct ThreadState {
    /// `[included, excluded]`, each XOR its default.
    raw: Cell<[u64; 2]>,
    hermetic: Cell<bool>,
}

thread_local! {
    static STATE: ThreadState = const {
        ThreadState { raw: Cell::new([0, 0]), hermetic: Cell::new(false) }
    };
}

/// The decoded thread-local include and exclude sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDispatchKeySet {
    pub included: DispatchKeySet,
    pub excluded: DispatchKeySet,
}

/// The effective local include/exclude sets of this thread.
#[inline]
pub fn tls_local_dispatch_key_set() -> LocalDispatchKeySet {
    let [inc, exc] = STATE.with(|s| s.raw.get());
    LocalDispatchKeySet {
        included: DispatchKeySet::from_raw_repr(inc) ^ DEFAULT_INCLUDED_SET,
        excluded: DispatchKeySet::from_raw_repr(exc) ^ DEFAULT_EXCLUDED_SET,
    }
}

fn set_included(ks: DispatchKeySet) {
    STATE.with(|s| {
        let c = &s.raw;
        let [_, exc] = c.get();
        c.set([(ks ^ DEFAULT_INCLUDED_SET).raw_repr(), exc]);
    });
}

fn set_excluded(ks: DispatchKeySet) {
    STATE.with(|s| {
        let c = &s.raw;
        let [inc, _] = c.get();
        c.set([inc, (ks ^ DEFAULT_EXCLUDED_SET).raw_repr()]);
    });
}

/// Overwrites both local sets (PyTorch's `_force_tls_local_dispatch_key_set`).
pub fn force_tls_local_dispatch_key_set(lks: LocalDispatchKeySet) {
    set_included(lks.included);
    set_excluded(lks.excluded);
}

/// Whether `k` is in the local exclude set.
pub fn tls_is_dispatch_key_excluded(k: DispatchKey) -> bool {
    tls_local_dispatch_key_set().excluded.has(k)
}

/// Whether `k` is in the local include set.
pub fn tls_is_dispatch_key_included(k: DispatchKey) -> bool {
    tls_local_dispatch_key_set().included.has(k)
}

/// Adds `k` to, or removes it from, the local exclude set.
pub fn tls_set_dispatch_key_excluded(k: DispatchKey, desired: bool) {
    let cur = tls_local_dispatch_key_set().excluded;
    set_excluded(if desired { cur.add(k) } else { cur.remove(k) });
}

/// Adds `k` to, or removes it from, the local include set.
pub fn tls_set_dispatch_key_included(k: DispatchKey, desired: bool) {
    let cur = tls_local_dispatch_key_set().included;
    set_included(if desired { cur.add(k) } else { cur.remove(k) });
}

/// Includes `ks` for the guard's lifetime. Only keys not already included are added and later
/// removed (`delta = ks - included`), so nested guards compose.
#[must_use = "the keys are included only while the guard lives"]
pub struct IncludeDispatchKeyGuard {
    delta: DispatchKeySet,
    /// Backend bits this guard added (not present before), cleared again on drop.
    added_backends: u64,
}

impl IncludeDispatchKeyGuard {
    pub fn new(ks: DispatchKeySet) -> Self {
        let cur = tls_local_dispatch_key_set().included;
        let delta = ks - cur;
        if !delta.is_empty() {
            set_included(cur | delta);
        }
        let added_backends = delta.raw_repr() & FULL_BACKEND_MASK & !cur.raw_repr();
        Self {
            delta,
            added_backends,
        }
    }
}

impl Drop for IncludeDispatchKeyGuard {
    fn drop(&mut self) {
        if !self.delta.is_empty() {
            // `-` keeps backend bits; PyTorch 2.15's observable behaviour is that a guard
            // leaves no backend bit behind, so the ones it added are cleared too.
            let rest = tls_local_dispatch_key_set().included - self.delta;
            set_included(DispatchKeySet::from_raw_repr(
                rest.raw_repr() & !self.added_backends,
            ));
        }
    }
}

/// Excludes `ks` for the guard's lifetime (same delta rule as [`IncludeDispatchKeyGuard`]).
#[must_use = "the keys are excluded only while the guard lives"]
pub struct ExcludeDispatchKeyGuard {
    delta: DispatchKeySet,
    /// Backend bits this guard added (not present before), cleared again on drop.
    added_backends: u64,
}

impl ExcludeDispatchKeyGuard {
    pub fn new(ks: DispatchKeySet) -> Self {
        let cur = tls_local_dispatch_key_set().excluded;
        let delta = ks - cur;
        if !delta.is_empty() {
            set_excluded(cur | delta);
        }
        let added_backends = delta.raw_repr() & FULL_BACKEND_MASK & !cur.raw_repr();
        Self {
            delta,
            added_backends,
        }
    }
}

impl Drop for ExcludeDispatchKeyGuard {
    fn drop(&mut self) {
        if !self.delta.is_empty() {
            // `-` keeps backend bits; PyTorch 2.15's observable behaviour is that a guard
            // leaves no backend bit behind, so the ones it added are cleared too.
            let rest = tls_local_dispatch_key_set().excluded - self.delta;
            set_excluded(DispatchKeySet::from_raw_repr(
                rest.raw_repr() & !self.added_backends,
            ));
        }
    }
}

/// Replaces both local sets for the guard's lifetime and restores the previous ones on drop.
/// With [`ForceDispatchKeyGuard::preserve`] it only snapshots and restores.
#[must_use = "the sets are restored when the guard drops"]
pub struct ForceDispatchKeyGuard {
    saved: LocalDispatchKeySet,
}

impl ForceDispatchKeyGuard {
    pub fn new(included: DispatchKeySet, excluded: DispatchKeySet) -> Self {
        let saved = tls_local_dispatch_key_set();
        force_tls_local_dispatch_key_set(LocalDispatchKeySet { included, excluded });
        Self { saved }
    }
    /// Snapshot now, restore on drop.
    pub fn preserve() -> Self {
        Self {
            saved: tls_local_dispatch_key_set(),
        }
    }
}

impl Drop for ForceDispatchKeyGuard {
    fn drop(&mut self) {
        force_tls_local_dispatch_key_set(self.saved);
    }
}

/// PyTorch's `HermeticPyObjectTLS`: while set, tensors crossing into Python get fresh objects
/// and their PyObject slots are neither read nor written.
pub struct HermeticPyObjectTLS;

impl HermeticPyObjectTLS {
    /// The flag on this thread.
    #[inline]
    pub fn get_state() -> bool {
        STATE.with(|s| s.hermetic.get())
    }
    /// Sets the flag on this thread.
    pub fn set_state(state: bool) {
        STATE.with(|s| s.hermetic.set(state));
    }
}

/// Hermetic mode for its lifetime (PyTorch's `EnableHermeticPyObject`): sets the flag, excludes
/// the Python key and un-includes Python and PythonTLSSnapshot, so Python subclasses and modes
/// cannot be re-entered; restores those bits (and only those) on drop. Nests, and restores
/// during unwinding too. Python kernels enter it on every call, so it touches the
/// thread-local once on entry and once on exit.
#[must_use = "hermetic mode lasts only while the guard lives"]
pub struct EnableHermeticPyObject {
    old_state: bool,
    /// The guarded bits of the effective included / excluded sets before the guard.
    old_included: u64,
    old_excluded: u64,
}

const HERMETIC_INCLUDE_BITS: u64 = DispatchKeySet::from_key(DispatchKey::Python).raw_repr()
    | DispatchKeySet::from_key(DispatchKey::PythonTLSSnapshot).raw_repr();
const HERMETIC_EXCLUDE_BITS: u64 = DispatchKeySet::from_key(DispatchKey::Python).raw_repr();

impl EnableHermeticPyObject {
    pub fn new() -> Self {
        let d_inc = DEFAULT_INCLUDED_SET.raw_repr();
        let d_exc = DEFAULT_EXCLUDED_SET.raw_repr();
        // Stored values are XOR the defaults; work on the effective sets.
        let (old_state, old_included, old_excluded) = STATE.with(|s| {
            let old_state = s.hermetic.replace(true);
            let c = &s.raw;
            let [inc, exc] = c.get();
            let (inc, exc) = (inc ^ d_inc, exc ^ d_exc);
            c.set([
                (inc & !HERMETIC_INCLUDE_BITS) ^ d_inc,
                (exc | HERMETIC_EXCLUDE_BITS) ^ d_exc,
            ]);
            (
                old_state,
                inc & HERMETIC_INCLUDE_BITS,
                exc & HERMETIC_EXCLUDE_BITS,
            )
        });
        Self {
            old_state,
            old_included,
            old_excluded,
        }
    }
}

impl Default for EnableHermeticPyObject {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for EnableHermeticPyObject {
    fn drop(&mut self) {
        let d_inc = DEFAULT_INCLUDED_SET.raw_repr();
        let d_exc = DEFAULT_EXCLUDED_SET.raw_repr();
        STATE.with(|s| {
            s.hermetic.set(self.old_state);
            let c = &s.raw;
            let [inc, exc] = c.get();
            c.set([
                ((inc ^ d_inc) & !HERMETIC_INCLUDE_BITS | self.old_included) ^ d_inc,
                ((exc ^ d_exc) & !HERMETIC_EXCLUDE_BITS | self.old_excluded) ^ d_exc,
            ]);
        });
    }
}
