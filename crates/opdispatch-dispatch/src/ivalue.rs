//! Boxed values: the `IValue` enum a boxed kernel reads from and writes to its `Stack`.
//!
//! The dispatcher does not know the tensor type. A tensor crate plugs in through
//! [`TensorLike`]: it hands over an intrusively counted pointer plus a static vtable, so cloning
//! a boxed tensor is one atomic increment (no allocation) and the dispatcher can ask any boxed
//! tensor for its key set.

use std::any::TypeId;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use opdispatch_keys::DispatchKeySet;

/// What a tensor type must provide to travel through the dispatcher.
///
/// # Safety
/// `into_raw` must return a pointer that owns one reference; `from_raw` must take that reference
/// back; `retain_raw` must add a reference to a live pointer. The pointer must stay valid while
/// any reference exists, and the type must be safe to share across threads.
pub unsafe trait TensorLike: Clone + Send + Sync + 'static {
    /// Keys this tensor contributes to dispatch (device, layout and functionality keys).
    fn key_set(&self) -> DispatchKeySet;
    /// Gives up this handle's reference as a raw pointer.
    fn into_raw(self) -> NonNull<()>;
    /// Rebuilds a handle from a pointer returned by `into_raw`.
    ///
    /// # Safety
    /// `p` must come from `into_raw` of the same type and own one reference.
    unsafe fn from_raw(p: NonNull<()>) -> Self;
    /// Adds one reference to a live pointer.
    ///
    /// # Safety
    /// `p` must point to a live value of this type.
    unsafe fn retain_raw(p: NonNull<()>);
    /// Key set of the value behind `p` without touching its count.
    ///
    /// # Safety
    /// `p` must point to a live value of this type.
    unsafe fn key_set_raw(p: NonNull<()>) -> DispatchKeySet;
}

struct TensorVTable {
    retain: unsafe fn(NonNull<()>),
    release: unsafe fn(NonNull<()>),
    key_set: unsafe fn(NonNull<()>) -> DispatchKeySet,
    type_id: TypeId,
}

struct VTableOf<T>(std::marker::PhantomData<T>);
impl<T: TensorLike> VTableOf<T> {
    const VTABLE: TensorVTable = TensorVTable {
        retain: T::retain_raw,
        release: Self::release,
        key_set: T::key_set_raw,
        type_id: TypeId::of::<T>(),
    };
    unsafe fn release(p: NonNull<()>) {
        // SAFETY: the caller owns one reference, which `from_raw` takes back and drop releases.
        drop(unsafe { T::from_raw(p) });
    }
}

/// A type-erased, reference-counted tensor handle held by an [`IValue`].
pub struct TensorRef {
    raw: NonNull<()>,
    vt: &'static TensorVTable,
}

// SAFETY: `TensorLike` requires the underlying handle to be Send + Sync.
unsafe impl Send for TensorRef {}
// SAFETY: as above.
unsafe impl Sync for TensorRef {}

impl TensorRef {
    /// Boxes a concrete tensor handle.
    pub fn new<T: TensorLike>(t: T) -> Self {
        Self {
            raw: t.into_raw(),
            vt: &VTableOf::<T>::VTABLE,
        }
    }
    /// The tensor's dispatch key set.
    #[inline]
    pub fn key_set(&self) -> DispatchKeySet {
        // SAFETY: `raw` is live while `self` holds its reference.
        unsafe { (self.vt.key_set)(self.raw) }
    }
    /// Whether the handle holds a `T`.
    pub fn is<T: TensorLike>(&self) -> bool {
        self.vt.type_id == TypeId::of::<T>()
    }
    /// A new `T` handle to the same tensor (one more reference), if the type matches.
    pub fn downcast<T: TensorLike>(&self) -> Option<T> {
        if !self.is::<T>() {
            return None;
        }
        // SAFETY: type checked above; retain adds the reference that from_raw takes over.
        unsafe {
            T::retain_raw(self.raw);
            Some(T::from_raw(self.raw))
        }
    }
    /// Converts back into a `T` without touching the count, if the type matches.
    pub fn into_inner<T: TensorLike>(self) -> Result<T, Self> {
        if !self.is::<T>() {
            return Err(self);
        }
        let raw = self.raw;
        std::mem::forget(self);
        // SAFETY: type checked; the reference owned by `self` moves into the result.
        Ok(unsafe { T::from_raw(raw) })
    }
    /// Identity: both handles point to the same tensor.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
    /// The raw pointer, for identity comparisons only.
    pub fn as_ptr(&self) -> *const () {
        self.raw.as_ptr()
    }
}

impl Clone for TensorRef {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: `raw` is live; the new handle owns the added reference.
        unsafe { (self.vt.retain)(self.raw) };
        Self {
            raw: self.raw,
            vt: self.vt,
        }
    }
}

impl Drop for TensorRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this handle owns exactly one reference.
        unsafe { (self.vt.release)(self.raw) }
    }
}

impl fmt::Debug for TensorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({:p}, {})", self.raw.as_ptr(), self.key_set())
    }
}

/// An opaque value owned by a front end (for example a Python object) that rides on the stack.
pub trait OpaqueValue: fmt::Debug + Send + Sync + 'static {
    /// Downcasting hook.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A boxed value, as PyTorch's `c10::IValue`.
#[derive(Debug, Clone, Default)]
pub enum IValue {
    /// `None` (also the value of an absent optional).
    #[default]
    None,
    Bool(bool),
    Int(i64),
    Double(f64),
    Complex(f64, f64),
    Str(Arc<str>),
    Tensor(TensorRef),
    /// `Tensor[]`.
    TensorList(Vec<TensorRef>),
    /// `Tensor?[]`.
    OptionalTensorList(Vec<Option<TensorRef>>),
    IntList(Vec<i64>),
    DoubleList(Vec<f64>),
    BoolList(Vec<bool>),
    /// A generic list (`str[]`, `Scalar[]`, ...).
    List(Vec<IValue>),
    Tuple(Vec<IValue>),
    /// A device string such as "cpu" or "cuda:0".
    Device(Arc<str>),
    /// A value the dispatcher does not interpret.
    Opaque(Arc<dyn OpaqueValue>),
}

impl IValue {
    /// Ors the key sets of every tensor this value holds (the boxed key extraction of one slot).
    #[inline]
    pub fn key_set(&self) -> DispatchKeySet {
        match self {
            Self::Tensor(t) => t.key_set(),
            Self::TensorList(ts) => ts
                .iter()
                .fold(DispatchKeySet::EMPTY, |a, t| a | t.key_set()),
            Self::OptionalTensorList(ts) => ts
                .iter()
                .flatten()
                .fold(DispatchKeySet::EMPTY, |a, t| a | t.key_set()),
            Self::List(vs) => vs.iter().fold(DispatchKeySet::EMPTY, |a, v| match v {
                Self::Tensor(t) => a | t.key_set(),
                _ => a,
            }),
            _ => DispatchKeySet::EMPTY,
        }
    }
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }
    pub fn as_tensor(&self) -> Option<&TensorRef> {
        match self {
            Self::Tensor(t) => Some(t),
            _ => None,
        }
    }
    /// A short type name for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::None => "NoneType",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Double(_) => "float",
            Self::Complex(..) => "complex",
            Self::Str(_) => "str",
            Self::Tensor(_) => "Tensor",
            Self::TensorList(_) => "Tensor[]",
            Self::OptionalTensorList(_) => "Tensor?[]",
            Self::IntList(_) => "int[]",
            Self::DoubleList(_) => "float[]",
            Self::BoolList(_) => "bool[]",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Device(_) => "Device",
            Self::Opaque(_) => "object",
        }
    }
}

/// The boxed calling convention's argument and result stack. Inline up to 8 values, so a
/// typical boxed call (a few arguments, one or two results) allocates nothing for its stack.
pub type Stack = smallvec::SmallVec<[IValue; 8]>;

/// Builds a [`Stack`] from values, like `vec!`.
#[macro_export]
macro_rules! stack {
    ($($v:expr),* $(,)?) => { $crate::Stack::from_iter([$($v),*]) };
}
