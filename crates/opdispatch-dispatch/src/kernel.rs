//! `KernelFunction`: what a dispatch table slot holds.
//!
//! Every valid kernel is callable boxed. A kernel written in Rust with a typed signature also
//! keeps its plain function pointer (the "unboxed" entry), so typed calls skip boxing entirely.

use std::any::TypeId;
use std::fmt;
use std::sync::Arc;

use opdispatch_keys::DispatchKeySet;

use crate::error::{DispatchError, Result};
use crate::ivalue::Stack;
use crate::operator::OperatorHandle;

/// A kernel that works on the boxed stack: it pops the operator's arguments and pushes its
/// returns.
pub trait BoxedKernel: Send + Sync + 'static {
    /// Runs the kernel. `ks` is the (masked) key set the call dispatched on; pass it on,
    /// minus the current key, when redispatching.
    fn call(&self, op: &OperatorHandle, ks: DispatchKeySet, stack: &mut Stack) -> Result<()>;
    /// A short label for what kind of kernel this is, shown by `explain` and the table view
    /// (front ends name theirs, e.g. "python").
    fn kind(&self) -> &'static str {
        "boxed"
    }
}

impl<F> BoxedKernel for F
where
    F: Fn(&OperatorHandle, DispatchKeySet, &mut Stack) -> Result<()> + Send + Sync + 'static,
{
    fn call(&self, op: &OperatorHandle, ks: DispatchKeySet, stack: &mut Stack) -> Result<()> {
        self(op, ks, stack)
    }
}

pub(crate) enum Boxed {
    /// Never runs: dispatch masks the key out (see `fallthrough_kernel` in PyTorch).
    Fallthrough,
    /// Redispatches with `ks & mask` and does nothing else (the autograd fallback when nothing
    /// requires grad, PreDispatch, PythonTLSSnapshot). Typed calls apply the mask and look up
    /// again in the same table instead of boxing their arguments for it.
    RedispatchMasked(DispatchKeySet),
    /// Marks the AutogradOther slot when a math kernel would hide a backend kernel.
    AmbiguousAutogradOther,
    Functor(Arc<dyn BoxedKernel>),
    /// The boxed form of a typed kernel: a per-signature function that unboxes the stack and
    /// calls the kernel's `fn` pointer (`KernelInner::unboxed`). No allocation of its own.
    Typed(TypedTrampoline),
}

/// Runs the typed kernel behind an erased `fn` pointer on the boxed stack.
pub(crate) type TypedTrampoline = unsafe fn(*const (), &mut Stack) -> Result<()>;

/// A type-erased plain `fn` pointer plus the type it was erased from.
#[derive(Clone, Copy)]
pub(crate) struct Unboxed {
    pub(crate) ptr: *const (),
    pub(crate) sig: TypeId,
}
// SAFETY: the pointer is a `fn` item pointer, which is immutable and callable from any thread.
unsafe impl Send for Unboxed {}
// SAFETY: as above.
unsafe impl Sync for Unboxed {}

pub(crate) struct KernelInner {
    pub(crate) boxed: Boxed,
    pub(crate) unboxed: Option<Unboxed>,
}

static FALLTHROUGH: std::sync::LazyLock<Arc<KernelInner>> = std::sync::LazyLock::new(|| {
    Arc::new(KernelInner {
        boxed: Boxed::Fallthrough,
        unboxed: None,
    })
});
static AMBIGUOUS: std::sync::LazyLock<Arc<KernelInner>> = std::sync::LazyLock::new(|| {
    Arc::new(KernelInner {
        boxed: Boxed::AmbiguousAutogradOther,
        unboxed: None,
    })
});

/// A slot of a dispatch table, or a registered kernel: one pointer (`None` = missing), so a
/// table of 137 slots stays small and copying a slot is one count increment.
#[derive(Clone, Default)]
pub struct KernelFunction {
    pub(crate) inner: Option<Arc<KernelInner>>,
}

impl KernelFunction {
    /// The invalid ("missing") kernel.
    pub const fn missing() -> Self {
        Self { inner: None }
    }
    /// A fallthrough: dispatch skips this key and tries the next one.
    pub fn fallthrough() -> Self {
        Self {
            inner: Some(FALLTHROUGH.clone()),
        }
    }
    pub(crate) fn ambiguous_autograd_other() -> Self {
        Self {
            inner: Some(AMBIGUOUS.clone()),
        }
    }
    /// A kernel that only redispatches to `ks & mask` (a valid, non-fallthrough kernel).
    pub fn redispatch_masked(mask: DispatchKeySet) -> Self {
        Self {
            inner: Some(Arc::new(KernelInner {
                boxed: Boxed::RedispatchMasked(mask),
                unboxed: None,
            })),
        }
    }
    /// A boxed kernel.
    pub fn from_boxed(k: impl BoxedKernel) -> Self {
        Self::from_boxed_arc(Arc::new(k))
    }
    /// A boxed kernel already behind an `Arc`.
    pub fn from_boxed_arc(k: Arc<dyn BoxedKernel>) -> Self {
        Self {
            inner: Some(Arc::new(KernelInner {
                boxed: Boxed::Functor(k),
                unboxed: None,
            })),
        }
    }
    /// A kernel with both a boxed entry and a typed `fn` pointer of type `F`.
    ///
    /// # Safety
    /// `f` must be a `fn` pointer (`F` a `fn(..) -> ..` type) and `boxed` must run `f` (passed
    /// back as the erased pointer) on the boxed stack.
    pub(crate) unsafe fn from_unboxed<F: Copy + 'static>(f: F, boxed: TypedTrampoline) -> Self {
        debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*const ()>());
        // SAFETY: F is a fn pointer of pointer size (caller contract).
        let ptr = unsafe { std::mem::transmute_copy::<F, *const ()>(&f) };
        Self {
            inner: Some(Arc::new(KernelInner {
                boxed: Boxed::Typed(boxed),
                unboxed: Some(Unboxed {
                    ptr,
                    sig: TypeId::of::<F>(),
                }),
            })),
        }
    }
    /// Whether the slot holds a kernel.
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.inner.is_some()
    }
    /// Whether the kernel has a typed entry.
    pub fn is_valid_unboxed(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.unboxed.is_some())
    }
    /// Whether this is a fallthrough.
    #[inline]
    pub fn is_fallthrough(&self) -> bool {
        KernelRef::of(self).is_fallthrough()
    }
    /// Same kernel (identity), as PyTorch's `_equalsBoxedAndUnboxed`.
    #[inline]
    pub fn same_as(&self, other: &Self) -> bool {
        KernelRef::of(self) == KernelRef::of(other)
    }
    /// PyTorch's `KernelFunction::dumpState`: "fallthrough " / "boxed " / "unboxed ".
    pub fn dump_state(&self) -> String {
        let mut s = String::new();
        if let Some(i) = &self.inner {
            if matches!(i.boxed, Boxed::Fallthrough) {
                s.push_str("fallthrough ");
            }
            s.push_str("boxed ");
            if i.unboxed.is_some() {
                s.push_str("unboxed ");
            }
        }
        s
    }
    /// What the kernel is, by label: `missing`, `fallthrough`, `redispatch`, `ambiguous`,
    /// `native` (typed Rust), or its boxed functor's own label (`boxed`, `python`, ...).
    pub fn kind(&self) -> &'static str {
        kind_label(self.inner.as_deref())
    }
    /// Runs the kernel on the boxed stack.
    pub fn call_boxed(
        &self,
        op: &OperatorHandle,
        ks: DispatchKeySet,
        stack: &mut Stack,
    ) -> Result<()> {
        call_inner(self.inner.as_deref(), op, ks, stack)
    }
}

fn kind_label(inner: Option<&KernelInner>) -> &'static str {
    match inner.map(|i| &i.boxed) {
        None => "missing",
        Some(Boxed::Fallthrough) => "fallthrough",
        Some(Boxed::RedispatchMasked(_)) => "redispatch",
        Some(Boxed::AmbiguousAutogradOther) => "ambiguous",
        Some(Boxed::Typed(_)) => "native",
        Some(Boxed::Functor(f)) => f.kind(),
    }
}

fn call_inner(
    inner: Option<&KernelInner>,
    op: &OperatorHandle,
    ks: DispatchKeySet,
    stack: &mut Stack,
) -> Result<()> {
    match inner.map(|i| &i.boxed) {
        Some(Boxed::Functor(k)) => k.call(op, ks, stack),
        Some(Boxed::Typed(tr)) => {
            let ptr = inner.and_then(|i| i.unboxed).map(|u| u.ptr);
            let ptr = ptr.expect("a typed kernel keeps its fn pointer");
            // SAFETY: `tr` was created together with `ptr` for the same signature.
            unsafe { tr(ptr, stack) }
        }
        Some(Boxed::RedispatchMasked(mask)) => op.redispatch_boxed(ks & *mask, stack),
        Some(Boxed::Fallthrough) => Err(DispatchError::Internal(FALLTHROUGH_EXECUTED.to_owned())),
        Some(Boxed::AmbiguousAutogradOther) => Err(DispatchError::Internal(format!(
            "{} has kernels registered to both CompositeImplicitAutograd and a backend mapped to AutogradOther. This makes the backend kernel unreachable; the dispatcher will always prefer the CompositeImplicitAutograd lowering (see Note [Ambiguity in AutogradOther kernel]). If you want to override CompositeImplicitAutograd, please open an issue to request a dedicated Autograd dispatch key for the backend.\nIf you only want to run inference instead of training, in C++, add `c10::InferenceMode mode;` before model.forward(); in Python, use `torch.inference_mode()` as a context manager (see https://pytorch.org/docs/stable/generated/torch.inference_mode.html).\nCanonical state\n~~~~~~~~~~~\n{}\n\n",
            op.operator_name(),
            op.dump_state()
        ))),
        None => Err(DispatchError::Internal(format!(
            "tried to call an invalid kernel of {}",
            op.operator_name()
        ))),
    }
}

/// A slot of a published snapshot: a borrowed pointer to a kernel (`None` = missing). Only
/// `DispatchTable` holds these, next to one strong reference per distinct kernel (its
/// `owners`), and lends them out only as borrows of itself, so slots are plain pointers:
/// filling a snapshot costs no count traffic per slot. (Master tables hold owned kernels.)
///
/// Deliberately neither `Copy` nor `Clone`: code outside the snapshot only ever has a
/// `&KernelRef` borrowed from a live table, so the borrow checker keeps it from outliving the
/// table's `owners`. `KernelRef::of` makes the only others, for the duration of a borrow of
/// their `KernelFunction`, and for filling a snapshot next to its owners.
#[derive(PartialEq, Eq)]
pub(crate) struct KernelRef(Option<std::ptr::NonNull<KernelInner>>);

// SAFETY: a KernelRef is only dereferenced while its table keeps the kernel alive, and
// KernelInner is Send + Sync (everything in it is).
unsafe impl Send for KernelRef {}
// SAFETY: as above.
unsafe impl Sync for KernelRef {}

impl KernelRef {
    /// The slot value for `k`; valid while something holds `k`'s reference.
    #[inline]
    pub(crate) fn of(k: &KernelFunction) -> Self {
        Self(
            k.inner
                .as_ref()
                .map(|a| std::ptr::NonNull::from(a.as_ref())),
        )
    }
    #[inline]
    fn get(&self) -> Option<&KernelInner> {
        // SAFETY: the owning table holds a strong reference to every kernel its slots point
        // to for as long as the table (and so this borrow of its slot) lives.
        self.0.map(|p| unsafe { &*p.as_ptr() })
    }
    #[inline]
    pub(crate) fn is_valid(&self) -> bool {
        self.0.is_some()
    }
    #[inline]
    pub(crate) fn is_fallthrough(&self) -> bool {
        self.get()
            .is_some_and(|i| matches!(i.boxed, Boxed::Fallthrough))
    }
    #[inline]
    pub(crate) fn redispatch_mask(&self) -> Option<DispatchKeySet> {
        match self.get()?.boxed {
            Boxed::RedispatchMasked(m) => Some(m),
            _ => None,
        }
    }
    #[inline]
    pub(crate) fn unboxed_as<F: Copy + 'static>(&self) -> Option<F> {
        match self.get()?.unboxed {
            Some(u) if u.sig == TypeId::of::<F>() => {
                // SAFETY: the TypeId proves the pointer was erased from an `F`.
                Some(unsafe { std::mem::transmute_copy::<*const (), F>(&u.ptr) })
            }
            _ => None,
        }
    }
    #[inline]
    pub(crate) fn same_as(&self, k: &KernelFunction) -> bool {
        *self == Self::of(k)
    }
    /// See [`KernelFunction::kind`].
    pub(crate) fn kind(&self) -> &'static str {
        kind_label(self.get())
    }
    /// Runs the kernel on the boxed stack (see [`KernelFunction::call_boxed`]).
    pub(crate) fn call_boxed(
        &self,
        op: &OperatorHandle,
        ks: DispatchKeySet,
        stack: &mut Stack,
    ) -> Result<()> {
        call_inner(self.get(), op, ks, stack)
    }
}

impl fmt::Debug for KernelFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KernelFunction[ {}]", self.dump_state())
    }
}

pub(crate) const FALLTHROUGH_EXECUTED: &str = "fallthrough_kernel was executed but it should have been short-circuited by the dispatcher. This could occur if you registered a fallthrough kernel as a override for a specific operator (as opposed to a backend fallback); this is NOT currently supported, and we do not intend to add support for it in the near future.  If you do find yourself in need of this, let us know in the bug tracker.";
