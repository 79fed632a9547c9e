//! PyObject preservation, Rust half: the intrusive reference count shared by
//! [`Tensor`](crate::Tensor) and [`Storage`](crate::Storage), the
//! [`PyObjectSlot`] each impl carries, and the interpreter-agnostic
//! [`PyObjectHooks`] the Python crate installs (spec §6.5, "era C").
//!
//! # Protocol
//!
//! Each impl has one count word: the low bits are the strong count, the top
//! bit is `HAS_PYOBJECT`. Every `Tensor`/`Storage` handle is one strong count.
//!
//! 1. The Python layer creates a Python object for an impl (holding the GIL),
//!    gives that object one strong handle (e.g. via `into_raw`), and calls
//!    [`attach_pyobject`](crate::Tensor::attach_pyobject). The slot is CAS-ed
//!    from null to the object (a lost race returns the winner, which the caller
//!    must use instead), then `HAS_PYOBJECT` is set with a CAS loop. If, at the
//!    instant the bit is set, the strong count is above 1, exactly one
//!    `hooks.incref(obj)` has been issued: the invariant below holds from then on.
//! 2. **Invariant**: while `HAS_PYOBJECT` is set, the Rust side owns exactly one
//!    Python reference to the object iff the strong count is at least 2, i.e.
//!    iff some holder other than the Python object exists. So the Python object
//!    (same `id`, same `__dict__`) stays alive while Rust holds the tensor, and is
//!    collectable by Python's GC (cycles through `__dict__` included) once only it
//!    holds the impl.
//! 3. A clone that moves the count **1 -> 2** calls `hooks.incref(obj)`; a drop
//!    that moves it **2 -> 1** calls `hooks.decref(obj)`.
//! 4. When the Python object is deallocated, the Python layer calls
//!    [`detach_pyobject`](crate::Tensor::detach_pyobject) (the count is 1 then:
//!    only the dying object holds the impl) and drops its handle, which frees
//!    the impl.
//!
//! # Races
//!
//! * A 1 -> 2 clone can only be made by someone borrowing the Python object's
//!   own handle, so that thread holds a Python reference and the object cannot
//!   die under the `incref`.
//! * A 2 -> 1 drop racing with a 1 -> 2 clone: the cloning thread borrows from
//!   the Python object (previous point), so the Python refcount stays above the
//!   one reference the `decref` gives up, whichever hook runs first.
//! * `attach` racing with clones/drops on other threads is resolved by the CAS
//!   that sets the bit (see 1).
//! * The hooks may be called from any thread, with or without the GIL. Taking
//!   the GIL (`PyGILState_Ensure`) inside the hook is the hook's business.
//!   [`disarm_pyobject_hooks`] turns them into no-ops at interpreter shutdown.
//!
//! Weak references are not implemented, so the `try_incref` path of §6.5 is
//! not needed.

use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Interpreter-agnostic hooks; the Python crate installs them once.
///
/// `obj` is always a pointer that was passed to an `attach_pyobject` call and
/// has not been detached since.
pub trait PyObjectHooks: Send + Sync + 'static {
    /// `Py_INCREF(obj)`; acquire the GIL if the calling thread does not hold it.
    fn incref(&self, obj: *mut c_void);
    /// `Py_DECREF(obj)`; acquire the GIL if the calling thread does not hold it.
    fn decref(&self, obj: *mut c_void);
    /// Whether only the Rust side's reference keeps `obj` alive (no Python code can reach it).
    /// Conservative default: `false`.
    fn only_native_reference(&self, obj: *mut c_void) -> bool {
        let _ = obj;
        false
    }
}

static HOOKS: OnceLock<&'static dyn PyObjectHooks> = OnceLock::new();
static DISARMED: AtomicBool = AtomicBool::new(false);

/// Install the process-wide hooks. Returns false (and keeps the old ones) if
/// hooks were already installed.
pub fn install_pyobject_hooks(h: &'static dyn PyObjectHooks) -> bool {
    HOOKS.set(h).is_ok()
}

/// Whether hooks are installed (and not disarmed).
pub fn pyobject_hooks_installed() -> bool {
    HOOKS.get().is_some() && !DISARMED.load(Ordering::Acquire)
}

/// Make all later hook calls no-ops (PyInterpreter's `disarm()`): call at
/// interpreter finalization so tensors outliving the interpreter never call
/// into it.
pub fn disarm_pyobject_hooks() {
    DISARMED.store(true, Ordering::Release);
}

/// Whether [`disarm_pyobject_hooks`] ran (the interpreter is finalizing or gone).
pub fn pyobject_hooks_disarmed() -> bool {
    DISARMED.load(Ordering::Acquire)
}

pub(crate) fn hooks() -> Option<&'static dyn PyObjectHooks> {
    if DISARMED.load(Ordering::Acquire) {
        return None;
    }
    HOOKS.get().copied()
}

/// Back pointer from an impl to its Python object (null = none).
#[derive(Debug, Default)]
pub struct PyObjectSlot {
    obj: AtomicPtr<c_void>,
}

impl PyObjectSlot {
    pub const fn new() -> Self {
        PyObjectSlot {
            obj: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The attached object, if any (acquire load).
    pub fn get(&self) -> Option<NonNull<c_void>> {
        NonNull::new(self.obj.load(Ordering::Acquire))
    }

    /// Store `p` without touching the count word.
    ///
    /// # Safety
    /// Low level: the hooks will be handed `p`, so it must be an object the
    /// installed hooks accept. Prefer `attach_pyobject`, which also maintains
    /// the refcount invariant.
    pub unsafe fn set(&self, p: NonNull<c_void>) {
        self.obj.store(p.as_ptr(), Ordering::Release);
    }

    /// CAS from empty to `p`; on failure returns the current object.
    fn try_set(&self, p: NonNull<c_void>) -> Result<(), NonNull<c_void>> {
        match self.obj.compare_exchange(
            ptr::null_mut(),
            p.as_ptr(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            // The CAS failed, so the value is not null.
            Err(cur) => Err(NonNull::new(cur).expect("failed CAS from null saw null")),
        }
    }

    /// Empty the slot, returning what it held.
    pub fn clear(&self) -> Option<NonNull<c_void>> {
        NonNull::new(self.obj.swap(ptr::null_mut(), Ordering::AcqRel))
    }
}

/// Why `attach_pyobject` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// Another object won the race (or was attached earlier); use it instead.
    AlreadyAttached(NonNull<c_void>),
    /// No hooks are installed (or they were disarmed), so the invariant could
    /// not be kept.
    NoHooks,
}

const HAS_PYOBJECT: usize = 1 << (usize::BITS - 1);
const COUNT_MASK: usize = HAS_PYOBJECT - 1;
/// Above this we abort rather than risk overflowing into the flag bit.
const MAX_COUNT: usize = COUNT_MASK >> 1;

/// The count word plus slot that every intrusive target embeds.
#[derive(Debug)]
pub(crate) struct RcHeader {
    count: AtomicUsize,
    slot: PyObjectSlot,
}

impl RcHeader {
    /// A header for a freshly allocated target owned by one handle.
    pub(crate) const fn new() -> Self {
        RcHeader {
            count: AtomicUsize::new(1),
            slot: PyObjectSlot::new(),
        }
    }

    pub(crate) fn slot(&self) -> &PyObjectSlot {
        &self.slot
    }

    pub(crate) fn use_count(&self) -> usize {
        self.count.load(Ordering::Acquire) & COUNT_MASK
    }

    pub(crate) fn has_pyobject(&self) -> bool {
        self.count.load(Ordering::Acquire) & HAS_PYOBJECT != 0
    }

    /// Take one more strong count (a clone).
    fn retain(&self) {
        let prev = self.count.fetch_add(1, Ordering::Relaxed);
        if prev & COUNT_MASK >= MAX_COUNT {
            std::process::abort();
        }
        if prev == (HAS_PYOBJECT | 1) {
            // Pairs with the release CAS that set the flag after storing the slot.
            fence(Ordering::Acquire);
            if let (Some(h), Some(obj)) = (hooks(), self.slot.get()) {
                h.incref(obj.as_ptr());
            }
        }
    }

    /// Give up one strong count; true when it was the last and the target must be freed.
    fn release(&self) -> bool {
        let prev = self.count.fetch_sub(1, Ordering::Release);
        if prev & COUNT_MASK == 1 {
            fence(Ordering::Acquire);
            return true;
        }
        if prev == (HAS_PYOBJECT | 2) {
            fence(Ordering::Acquire);
            if let (Some(h), Some(obj)) = (hooks(), self.slot.get()) {
                h.decref(obj.as_ptr());
            }
        }
        false
    }

    /// Gives up one strong count without the decref hook when that count is the only one
    /// besides the attached Python object's (`HAS_PYOBJECT | 2`), and returns the object: the
    /// Python reference the Rust side held (invariant 2) passes to the caller. Otherwise
    /// changes nothing and returns `None`.
    pub(crate) fn try_release_to_pyobject(&self) -> Option<NonNull<c_void>> {
        // Disarmed hooks: the Rust side holds no Python reference to pass on.
        hooks()?;
        self.count
            .compare_exchange(
                HAS_PYOBJECT | 2,
                HAS_PYOBJECT | 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()?;
        // The flag was set, so the slot is (attach stores it first); the object cannot be
        // detached meanwhile, since the reference we now own keeps it alive.
        self.slot.get()
    }

    /// See the module docs, step 1.
    ///
    /// # Safety
    /// `obj` must be a live Python object that holds one strong handle to this
    /// target and that stays valid until `detach` is called for it.
    pub(crate) unsafe fn attach(&self, obj: NonNull<c_void>) -> Result<(), AttachError> {
        let h = hooks().ok_or(AttachError::NoHooks)?;
        self.slot
            .try_set(obj)
            .map_err(AttachError::AlreadyAttached)?;
        let mut cur = self.count.load(Ordering::Relaxed);
        let mut holding = false;
        loop {
            // Keep one Python reference iff the count we publish the flag with is >= 2.
            let need = cur & COUNT_MASK > 1;
            if need && !holding {
                h.incref(obj.as_ptr());
                holding = true;
            } else if !need && holding {
                // The caller holds `obj`, so this cannot free it.
                h.decref(obj.as_ptr());
                holding = false;
            }
            match self.count.compare_exchange_weak(
                cur,
                cur | HAS_PYOBJECT,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }

    /// See the module docs, step 4. Returns the detached object.
    pub(crate) fn detach(&self) -> Option<NonNull<c_void>> {
        let prev = self.count.fetch_and(!HAS_PYOBJECT, Ordering::AcqRel);
        let obj = self.slot.clear();
        if prev & HAS_PYOBJECT != 0 && prev & COUNT_MASK > 1 {
            // Detached while Rust still held a Python reference: give it back so
            // the object is not leaked. (The Python layer only detaches at
            // dealloc, when the count is 1, so this is a defensive path.)
            if let (Some(h), Some(o)) = (hooks(), obj) {
                h.decref(o.as_ptr());
            }
        }
        obj
    }
}

/// Implemented by heap objects managed by [`IntrusivePtr`].
pub(crate) trait IntrusiveTarget: Send + Sync + 'static {
    fn header(&self) -> &RcHeader;
}

/// A strong, counted pointer to a boxed `T` whose count lives inside `T`.
pub(crate) struct IntrusivePtr<T: IntrusiveTarget> {
    ptr: NonNull<T>,
}

// SAFETY: the pointee is `Send + Sync` (trait bound) and the count is atomic,
// so handles may move and be shared across threads like `Arc<T>`.
unsafe impl<T: IntrusiveTarget> Send for IntrusivePtr<T> {}
// SAFETY: as above.
unsafe impl<T: IntrusiveTarget> Sync for IntrusivePtr<T> {}

impl<T: IntrusiveTarget> IntrusivePtr<T> {
    /// Box `value`; its header must have been created with [`RcHeader::new`] (count 1).
    pub(crate) fn new(value: T) -> Self {
        debug_assert_eq!(value.header().use_count(), 1);
        let b = Box::new(value);
        IntrusivePtr {
            ptr: NonNull::from(Box::leak(b)),
        }
    }

    pub(crate) fn as_ptr(&self) -> NonNull<T> {
        self.ptr
    }

    /// Give up the handle without touching the count.
    pub(crate) fn into_raw(self) -> NonNull<T> {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }

    /// # Safety
    /// `p` must come from `into_raw` and its count must not have been given back yet.
    pub(crate) unsafe fn from_raw(p: NonNull<T>) -> Self {
        IntrusivePtr { ptr: p }
    }
}

impl<T: IntrusiveTarget> std::ops::Deref for IntrusivePtr<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we own a strong count, so the box is alive.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: IntrusiveTarget> Clone for IntrusivePtr<T> {
    fn clone(&self) -> Self {
        self.header().retain();
        IntrusivePtr { ptr: self.ptr }
    }
}

impl<T: IntrusiveTarget> Drop for IntrusivePtr<T> {
    fn drop(&mut self) {
        if self.header().release() {
            #[cfg(test)]
            test_support::note_drop(self.ptr.as_ptr() as usize);
            // SAFETY: the count reached zero, so this was the last handle; the
            // pointer came from `Box::leak` in `new`.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        }
    }
}

/// Generates the PyObject/refcount part of a handle type's API.
macro_rules! intrusive_handle_api {
    ($handle:ident, $imp:ident) => {
        impl $handle {
            /// Number of strong handles, including the one a Python object holds.
            pub fn use_count(&self) -> usize {
                self.0.header().use_count()
            }

            /// Whether both handles point at the same impl.
            pub fn ptr_eq(&self, other: &Self) -> bool {
                self.0.as_ptr() == other.0.as_ptr()
            }

            /// Address of the impl: stable identity for the Python layer.
            pub fn unsafe_impl_ptr(&self) -> *const $imp {
                self.0.as_ptr().as_ptr()
            }

            /// The impl's back pointer to its Python object.
            pub fn pyobj_slot(&self) -> &$crate::pyobject::PyObjectSlot {
                self.0.header().slot()
            }

            /// Whether a Python object is attached (the `HAS_PYOBJECT` bit).
            pub fn has_pyobject(&self) -> bool {
                self.0.header().has_pyobject()
            }

            /// Whether this handle is the only way to reach the impl: no other strong handle,
            /// and no Python code holding its object (torch's `use_count() == 1`, which does not
            /// count a preserved object that only the impl keeps alive).
            pub fn is_sole_reference(&self) -> bool {
                let header = self.0.header();
                match header.use_count() {
                    1 => !header.has_pyobject(),
                    2 if header.has_pyobject() => {
                        match ($crate::pyobject::hooks(), header.slot().get()) {
                            (Some(h), Some(obj)) => h.only_native_reference(obj.as_ptr()),
                            _ => false,
                        }
                    }
                    _ => false,
                }
            }

            /// Couple `obj` with this impl (module docs, step 1). On
            /// `AlreadyAttached(winner)` the caller must discard its object
            /// and use `winner`.
            ///
            /// # Safety
            /// Call with the GIL held. `obj` must be a live Python object that owns
            /// one strong handle to this impl (e.g. from `into_raw`) and stays
            /// valid until `detach_pyobject`.
            pub unsafe fn attach_pyobject(
                &self,
                obj: std::ptr::NonNull<std::ffi::c_void>,
            ) -> Result<(), $crate::pyobject::AttachError> {
                // SAFETY: forwarded contract.
                unsafe { self.0.header().attach(obj) }
            }

            /// Uncouple the Python object (module docs, step 4): call from its
            /// dealloc, before releasing the handle it owns.
            pub fn detach_pyobject(&self) -> Option<std::ptr::NonNull<std::ffi::c_void>> {
                self.0.header().detach()
            }

            /// Gives up this handle, returning the attached Python object with a reference the
            /// caller now owns, when this was the only handle besides the object's own: the
            /// Python reference the Rust side held passes over instead of being dropped by the
            /// decref hook (and taken again by the caller). Otherwise returns the handle.
            pub fn into_pyobject_ref(self) -> Result<std::ptr::NonNull<std::ffi::c_void>, Self> {
                match self.0.header().try_release_to_pyobject() {
                    Some(p) => {
                        // The count was given up above.
                        std::mem::forget(self);
                        Ok(p)
                    }
                    None => Err(self),
                }
            }

            /// Leak this handle as a raw pointer (keeps its strong count).
            pub fn into_raw(self) -> std::ptr::NonNull<$imp> {
                self.0.into_raw()
            }

            /// Re-adopt a handle leaked by `into_raw`.
            ///
            /// # Safety
            /// `p` must come from `into_raw` of this type, and each raw pointer may
            /// be re-adopted once.
            pub unsafe fn from_raw(p: std::ptr::NonNull<$imp>) -> Self {
                // SAFETY: forwarded contract.
                $handle(unsafe { $crate::pyobject::IntrusivePtr::from_raw(p) })
            }

            /// A new handle from a borrowed raw pointer (takes a strong count).
            ///
            /// # Safety
            /// `p` must point at a live impl for the duration of the call (e.g. it is
            /// held by a live `into_raw` handle).
            pub unsafe fn clone_from_raw(p: std::ptr::NonNull<$imp>) -> Self {
                // SAFETY: the caller guarantees `p` is live; we take a fresh count
                // and forget the temporary so the borrowed count is untouched.
                let tmp = std::mem::ManuallyDrop::new($handle(unsafe {
                    $crate::pyobject::IntrusivePtr::from_raw(p)
                }));
                (*tmp).clone()
            }
        }
    };
}
pub(crate) use intrusive_handle_api;

#[cfg(test)]
pub(crate) mod test_support {
    use std::cell::RefCell;
    thread_local! {
        static DROPPED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }
    pub(crate) fn note_drop(addr: usize) {
        DROPPED.with(|d| d.borrow_mut().push(addr));
    }
    /// Whether an impl at `addr` was freed on this thread since the last `reset`.
    pub(crate) fn dropped(addr: usize) -> bool {
        DROPPED.with(|d| d.borrow().contains(&addr))
    }
    pub(crate) fn reset() {
        DROPPED.with(|d| d.borrow_mut().clear());
    }
}

#[cfg(test)]
mod tests {
    //! The era-C protocol against a fake interpreter: each fake object has a
    //! Python refcount; when it reaches zero the fake "dealloc" detaches and
    //! releases the handle the object owns, as the Python layer will.
    use super::test_support::{dropped, reset};
    use super::*;
    use crate::{Device, ScalarType, Storage, Tensor, TensorImpl};
    use std::sync::atomic::AtomicIsize;

    struct FakeObj {
        refcnt: AtomicIsize,
        increfs: AtomicUsize,
        decrefs: AtomicUsize,
        /// The counted handle the Python object owns (`into_raw`).
        owned: AtomicPtr<TensorImpl>,
        owned_storage: AtomicPtr<crate::StorageImpl>,
        deallocs: AtomicUsize,
    }

    impl FakeObj {
        fn new() -> &'static FakeObj {
            Box::leak(Box::new(FakeObj {
                refcnt: AtomicIsize::new(1),
                increfs: AtomicUsize::new(0),
                decrefs: AtomicUsize::new(0),
                owned: AtomicPtr::new(ptr::null_mut()),
                owned_storage: AtomicPtr::new(ptr::null_mut()),
                deallocs: AtomicUsize::new(0),
            }))
        }
        fn as_ptr(&'static self) -> NonNull<c_void> {
            NonNull::from(self).cast()
        }
        /// What `THPVariable_Wrap` does for a fresh tensor.
        fn wrap(t: &Tensor) -> &'static FakeObj {
            let o = FakeObj::new();
            o.owned
                .store(t.clone().into_raw().as_ptr(), Ordering::SeqCst);
            // SAFETY: `o` is live, owns a handle, and is never freed (leaked).
            unsafe { t.attach_pyobject(o.as_ptr()) }.unwrap();
            o
        }
        fn wrap_storage(s: &Storage) -> &'static FakeObj {
            let o = FakeObj::new();
            o.owned_storage
                .store(s.clone().into_raw().as_ptr(), Ordering::SeqCst);
            // SAFETY: as in `wrap`.
            unsafe { s.attach_pyobject(o.as_ptr()) }.unwrap();
            o
        }
        fn py_decref(&self) {
            if self.refcnt.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.dealloc();
            }
        }
        fn py_incref(&self) {
            self.refcnt.fetch_add(1, Ordering::SeqCst);
        }
        fn dealloc(&self) {
            self.deallocs.fetch_add(1, Ordering::SeqCst);
            if let Some(p) = NonNull::new(self.owned.swap(ptr::null_mut(), Ordering::SeqCst)) {
                // SAFETY: `p` came from `into_raw` in `wrap` and is re-adopted once.
                let t = unsafe { Tensor::from_raw(p) };
                assert_eq!(t.use_count(), 1, "a Tensor's Python object should only be destroyed when the Tensor has no other references too");
                assert_eq!(t.detach_pyobject(), Some(NonNull::from(self).cast()));
            }
            if let Some(p) =
                NonNull::new(self.owned_storage.swap(ptr::null_mut(), Ordering::SeqCst))
            {
                // SAFETY: as above.
                let s = unsafe { Storage::from_raw(p) };
                assert_eq!(s.use_count(), 1);
                s.detach_pyobject();
            }
        }
        fn refs(&self) -> isize {
            self.refcnt.load(Ordering::SeqCst)
        }
    }

    struct FakeHooks;
    impl PyObjectHooks for FakeHooks {
        fn incref(&self, obj: *mut c_void) {
            // SAFETY: only `FakeObj`s are ever attached in these tests.
            let o = unsafe { &*(obj as *const FakeObj) };
            o.increfs.fetch_add(1, Ordering::SeqCst);
            o.py_incref();
        }
        fn decref(&self, obj: *mut c_void) {
            // SAFETY: as above.
            let o = unsafe { &*(obj as *const FakeObj) };
            o.decrefs.fetch_add(1, Ordering::SeqCst);
            o.py_decref();
        }
    }
    static HOOKS_IMPL: FakeHooks = FakeHooks;

    fn setup() {
        install_pyobject_hooks(&HOOKS_IMPL);
        reset();
    }

    fn tensor() -> Tensor {
        Tensor::zeros(&[2], ScalarType::Float32, Device::Cpu).unwrap()
    }

    #[test]
    fn plain_handles_count_and_free() {
        setup();
        let t = tensor();
        let addr = t.unsafe_impl_ptr() as usize;
        assert_eq!(t.use_count(), 1);
        let u = t.clone();
        assert!(u.ptr_eq(&t));
        assert_eq!(t.use_count(), 2);
        drop(u);
        assert_eq!(t.use_count(), 1);
        assert!(!t.has_pyobject());
        drop(t);
        assert!(dropped(addr));
    }

    #[test]
    fn raw_round_trip() {
        setup();
        let t = tensor();
        let addr = t.unsafe_impl_ptr() as usize;
        let raw = t.clone().into_raw();
        assert_eq!(t.use_count(), 2);
        // SAFETY: `raw` is held by the leaked handle above.
        let c = unsafe { Tensor::clone_from_raw(raw) };
        assert_eq!(t.use_count(), 3);
        drop(c);
        // SAFETY: re-adopt the leaked handle exactly once.
        drop(unsafe { Tensor::from_raw(raw) });
        assert_eq!(t.use_count(), 1);
        drop(t);
        assert!(dropped(addr));
    }

    #[test]
    fn attach_with_rust_holder_increfs_once() {
        setup();
        let t = tensor();
        let addr = t.unsafe_impl_ptr() as usize;
        // Python wraps while Rust (`t`) still holds it: count 2 at attach.
        let o = FakeObj::wrap(&t);
        assert!(t.has_pyobject());
        assert_eq!(t.use_count(), 2);
        assert_eq!(o.increfs.load(Ordering::SeqCst), 1);
        assert_eq!(o.refs(), 2); // Python's own reference + the one Rust holds
        assert_eq!(t.pyobj_slot().get(), Some(o.as_ptr()));
        // More Rust clones do not touch the Python refcount (only 1<->2 does).
        let u = t.clone();
        assert_eq!(o.refs(), 2);
        drop(u);
        assert_eq!(o.refs(), 2);
        // Python drops its reference: the object survives because Rust holds it.
        o.py_decref();
        assert_eq!(o.refs(), 1);
        assert_eq!(o.deallocs.load(Ordering::SeqCst), 0);
        // Last Rust holder goes: 2 -> 1 decrefs, the object deallocates, detaches,
        // releases its handle, and the impl is freed.
        drop(t);
        assert_eq!(o.decrefs.load(Ordering::SeqCst), 1);
        assert_eq!(o.deallocs.load(Ordering::SeqCst), 1);
        assert!(dropped(addr));
    }

    #[test]
    fn only_pyobject_holds_then_rust_retakes() {
        setup();
        let t = tensor();
        let addr = t.unsafe_impl_ptr() as usize;
        let o = FakeObj::wrap(&t);
        drop(t); // 2 -> 1: Rust gives its Python reference back
        assert_eq!(o.refs(), 1);
        assert_eq!(o.increfs.load(Ordering::SeqCst), 1);
        assert_eq!(o.decrefs.load(Ordering::SeqCst), 1);
        // The Python layer hands the tensor to Rust again (1 -> 2).
        let raw = NonNull::new(o.owned.load(Ordering::SeqCst)).unwrap();
        // SAFETY: the object's handle is live.
        let back = unsafe { Tensor::clone_from_raw(raw) };
        assert_eq!(o.refs(), 2);
        assert_eq!(
            back.pyobj_slot().get(),
            Some(o.as_ptr()),
            "same Python object comes back"
        );
        o.py_decref(); // Python forgets it; Rust keeps it alive
        assert_eq!(o.refs(), 1);
        assert!(!dropped(addr));
        drop(back);
        assert_eq!(o.deallocs.load(Ordering::SeqCst), 1);
        assert_eq!(
            o.increfs.load(Ordering::SeqCst),
            o.decrefs.load(Ordering::SeqCst)
        );
        assert!(dropped(addr));
    }

    #[test]
    fn last_rust_handle_passes_its_python_reference_on() {
        setup();
        let t = tensor();
        let o = FakeObj::wrap(&t); // t plus the object's handle: Rust holds one reference
        assert_eq!(o.refs(), 2);
        let extra = t.clone();
        // Two Rust handles besides the object's: nothing passes, the handle comes back.
        let extra = extra.into_pyobject_ref().unwrap_err();
        drop(extra);
        // The last one: its Python reference passes to the caller, no hook runs.
        let p = t.into_pyobject_ref().expect("the object comes back");
        assert_eq!(p, o.as_ptr());
        assert_eq!(o.refs(), 2, "the caller now owns the reference Rust held");
        assert_eq!(o.increfs.load(Ordering::SeqCst), 1);
        assert_eq!(o.decrefs.load(Ordering::SeqCst), 0);
        o.py_decref(); // the caller is done with it
        o.py_decref(); // Python drops the original reference: the object dies
        assert_eq!(o.deallocs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn fresh_unique_attach_does_not_incref() {
        setup();
        let t = tensor();
        let addr = t.unsafe_impl_ptr() as usize;
        let o = FakeObj::new();
        let raw = t.into_raw(); // the Python object is the only holder
                                // SAFETY: re-borrow for the call; `o` owns `raw`.
        let view = std::mem::ManuallyDrop::new(unsafe { Tensor::from_raw(raw) });
        o.owned.store(raw.as_ptr(), Ordering::SeqCst);
        // SAFETY: `o` is live and owns the handle.
        unsafe { view.attach_pyobject(o.as_ptr()) }.unwrap();
        assert_eq!(o.increfs.load(Ordering::SeqCst), 0);
        assert_eq!(o.refs(), 1);
        // A second attach loses and reports the winner.
        let other = FakeObj::new();
        // SAFETY: `other` is live; the call fails without storing it.
        let e = unsafe { view.attach_pyobject(other.as_ptr()) };
        assert_eq!(e, Err(AttachError::AlreadyAttached(o.as_ptr())));
        o.py_decref();
        assert_eq!(o.deallocs.load(Ordering::SeqCst), 1);
        assert!(dropped(addr));
    }

    #[test]
    fn views_share_storage_and_storage_protocol() {
        setup();
        let t = tensor();
        let s = t.storage();
        assert!(s.ptr_eq(&t.storage()));
        let saddr = s.unsafe_impl_ptr() as usize;
        let o = FakeObj::wrap_storage(&s);
        assert_eq!(o.refs(), 2);
        let v = crate::ops::view(&t, &[1, 2]).unwrap();
        drop(t);
        drop(s);
        // The view still holds the storage impl, so Rust still holds the object.
        assert_eq!(o.refs(), 2);
        o.py_decref();
        assert_eq!(o.refs(), 1);
        drop(v);
        assert_eq!(o.deallocs.load(Ordering::SeqCst), 1);
        assert!(dropped(saddr));
    }

    #[test]
    fn threads_clone_and_drop() {
        setup();
        let t = tensor();
        let o = FakeObj::wrap(&t);
        o.py_decref(); // only Rust (`t`) keeps the object now
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for _ in 0..2000 {
                        let c = t.clone();
                        let d = c.clone();
                        drop(c);
                        drop(d);
                    }
                });
            }
        });
        assert_eq!(t.use_count(), 2);
        assert_eq!(o.refs(), 1);
        // Python picks it up again, Rust lets go, Python lets go: freed.
        o.py_incref();
        drop(t);
        o.py_decref();
        assert_eq!(o.deallocs.load(Ordering::SeqCst), 1);
        assert_eq!(
            o.increfs.load(Ordering::SeqCst),
            o.decrefs.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn handles_are_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tensor>();
        check::<Storage>();
        check::<PyObjectSlot>();
    }
}
