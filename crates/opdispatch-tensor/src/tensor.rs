//! `TensorImpl` (sizes, strides, offset, dtype, device, dispatch key set and
//! PyObject slot over a shared [`Storage`]) and its intrusive handle
//! [`Tensor`]: factories, metadata accessors and data export.

use crate::element::{dispatch_dtype, Element, C64};
use crate::error::{Result, TensorError};
use crate::pyobject::{intrusive_handle_api, IntrusivePtr, IntrusiveTarget, RcHeader};
use crate::{Device, Scalar, ScalarType, Storage, DEFAULT_DTYPE};
use opdispatch_keys::{DispatchKey, DispatchKeySet};
use std::sync::atomic::{AtomicU64, Ordering};

/// The dispatch keys a tensor on `device` carries (c10's `computeDispatchKeySet`
/// for dense tensors, plus the autograd/autocast/inplace-or-view keys).
pub fn compute_key_set(device: Device) -> DispatchKeySet {
    // Every tensor construction asks: compute each device kind's set once.
    static SETS: std::sync::LazyLock<[DispatchKeySet; 3]> = std::sync::LazyLock::new(|| {
        [
            compute_key_set_uncached(Device::Cpu),
            compute_key_set_uncached(Device::Meta),
            compute_key_set_uncached(Device::Cuda(0)),
        ]
    });
    match device {
        Device::Cpu => SETS[0],
        Device::Meta => SETS[1],
        Device::Cuda(_) => SETS[2],
    }
}

fn compute_key_set_uncached(device: Device) -> DispatchKeySet {
    match device {
        Device::Cpu => DispatchKeySet::from_keys(&[
            DispatchKey::CPU,
            DispatchKey::ADInplaceOrView,
            DispatchKey::AutogradCPU,
            DispatchKey::AutocastCPU,
        ]),
        Device::Meta => DispatchKeySet::from_keys(&[
            DispatchKey::Meta,
            DispatchKey::ADInplaceOrView,
            DispatchKey::AutogradMeta,
        ]),
        Device::Cuda(_) => DispatchKeySet::from_keys(&[
            DispatchKey::CUDA,
            DispatchKey::ADInplaceOrView,
            DispatchKey::AutogradCUDA,
            DispatchKey::AutocastCUDA,
        ]),
    }
}

/// The heap object behind a [`Tensor`] handle (c10's `TensorImpl`).
#[derive(Debug)]
pub struct TensorImpl {
    header: RcHeader,
    storage: Storage,
    sizes: Dims,
    strides: Dims,
    /// Derived from sizes and strides once (as c10 caches them): the hot paths ask often.
    numel: usize,
    contiguous: bool,
    storage_offset: usize,
    dtype: ScalarType,
    /// Raw `DispatchKeySet`; atomic so the Python layer can add the Python keys.
    key_set: AtomicU64,
    /// A Python number wrapped as a 0-dim tensor (lowest `result_type` priority).
    wrapped_number: bool,
    /// Autograd's per-tensor state (c10's `autograd_meta_`), created on first need: a tensor
    /// that never meets autograd pays one empty word.
    autograd_meta: std::sync::OnceLock<Box<dyn AutogradMetaInterface>>,
}

/// What the tensor runtime knows of autograd's per-tensor metadata (c10's
/// `AutogradMetaInterface`): the autograd crate stores its own type here and downcasts it back,
/// so this crate never depends on the engine.
pub trait AutogradMetaInterface: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the tensor requires grad (a leaf flagged so, or the output of a recorded op).
    fn requires_grad(&self) -> bool;
    fn as_any(&self) -> &dyn std::any::Any;
}

impl IntrusiveTarget for TensorImpl {
    fn header(&self) -> &RcHeader {
        &self.header
    }
}

/// Strong, intrusive handle to a [`TensorImpl`]. Cloning is a refcount bump
/// that follows the PyObject protocol in [`crate::pyobject`]; views share the
/// storage but are distinct impls.
#[derive(Clone)]
pub struct Tensor(IntrusivePtr<TensorImpl>);

intrusive_handle_api!(Tensor, TensorImpl);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Tensor");
        d.field("sizes", &self.sizes())
            .field("dtype", &self.dtype())
            .field("device", &self.device());
        if !self.is_meta() && self.numel() <= 16 {
            if let Ok(v) = self.to_scalars() {
                d.field("data", &v);
            }
        }
        d.finish()
    }
}

/// Row-major contiguity, ignoring the strides of size-1 dimensions (as c10 does).
fn compute_contiguous(sizes: &[usize], strides: &[usize], numel: usize) -> bool {
    if numel == 0 {
        return true;
    }
    let mut expected = 1;
    for (&s, &st) in sizes.iter().zip(strides).rev() {
        if s != 1 {
            if st != expected {
                return false;
            }
            expected *= s;
        }
    }
    true
}

/// Sizes or strides, inline up to 5 dimensions (no allocation for the common shapes).
pub type Dims = smallvec::SmallVec<[usize; 5]>;

/// Geometry handed to the constructors: a `Dims` moves in, a slice is copied in one go.
/// (`SmallVec`'s `From<&[T]>` and `Clone` go element by element through `extend`, which
/// showed up at several percent of small-tensor autograd profiles.)
pub(crate) trait IntoDims {
    fn into_dims(self) -> Dims;
}
impl IntoDims for Dims {
    #[inline]
    fn into_dims(self) -> Dims {
        self
    }
}
impl IntoDims for &Dims {
    #[inline]
    fn into_dims(self) -> Dims {
        Dims::from_slice(self)
    }
}
impl IntoDims for &[usize] {
    #[inline]
    fn into_dims(self) -> Dims {
        Dims::from_slice(self)
    }
}
impl<const N: usize> IntoDims for &[usize; N] {
    #[inline]
    fn into_dims(self) -> Dims {
        Dims::from_slice(self)
    }
}
impl IntoDims for Vec<usize> {
    #[inline]
    fn into_dims(self) -> Dims {
        if self.len() <= 5 {
            Dims::from_slice(&self)
        } else {
            Dims::from_vec(self)
        }
    }
}

/// Row-major strides for `sizes`.
pub fn contiguous_strides(sizes: &[usize]) -> Vec<usize> {
    contiguous_strides_dims(sizes).into_vec()
}

/// [`contiguous_strides`] without a heap allocation for up to 5 dimensions.
pub fn contiguous_strides_dims(sizes: &[usize]) -> Dims {
    // Filled back to front in a plain array for the inline case: `from_elem` then indexing
    // costs a length check per write.
    if sizes.len() <= 5 {
        let mut buf = [0usize; 5];
        let mut acc = 1usize;
        for i in (0..sizes.len()).rev() {
            buf[i] = acc;
            acc = acc.saturating_mul(sizes[i].max(1));
        }
        return Dims::from_buf_and_len(buf, sizes.len());
    }
    let mut strides = Dims::from_elem(0, sizes.len());
    let mut acc = 1usize;
    for i in (0..sizes.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(sizes[i].max(1));
    }
    strides
}

pub(crate) fn numel_of(sizes: &[usize]) -> Result<usize> {
    sizes
        .iter()
        .try_fold(1usize, |a, &s| a.checked_mul(s))
        .ok_or_else(|| {
            TensorError::shape(format!(
                "Storage size calculation overflowed with sizes={sizes:?}"
            ))
        })
}

/// Bytes a view needs: one past its furthest element.
fn required_bytes(sizes: &[usize], strides: &[usize], offset: usize, itemsize: usize) -> usize {
    if sizes.contains(&0) {
        return 0;
    }
    let last: usize = sizes.iter().zip(strides).map(|(s, st)| (s - 1) * st).sum();
    (offset + last + 1) * itemsize
}

/// Python-style nested export (`tolist()`).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Scalar(Scalar),
    List(Vec<TensorData>),
}

pub(crate) fn scalar_of<T: Element>(v: T) -> Scalar {
    match T::DTYPE {
        ScalarType::Bool => Scalar::Bool(v.to_bool()),
        t if t.is_integral(false) => Scalar::Int(v.to_i64()),
        t if t.is_complex() => {
            let c = v.to_c64();
            Scalar::Complex(c.re, c.im)
        }
        _ => Scalar::Float(v.to_f64()),
    }
}

pub(crate) fn elem_of_scalar<T: Element>(s: Scalar) -> T {
    match s {
        Scalar::Bool(b) => T::from_bool(b),
        Scalar::Int(i) => T::from_i64(i),
        Scalar::Float(f) => T::from_f64(f),
        Scalar::Complex(re, im) => T::from_c64(C64::new(re, im)),
    }
}

/// Visit the storage offsets (in elements) of a strided view in row-major order.
pub(crate) fn for_each_offset(
    sizes: &[usize],
    strides: &[usize],
    base: usize,
    mut f: impl FnMut(usize),
) {
    if sizes.contains(&0) {
        return;
    }
    let nd = sizes.len();
    if nd == 0 {
        f(base);
        return;
    }
    let (inner_n, inner_s) = (sizes[nd - 1], strides[nd - 1]);
    let mut idx = vec![0usize; nd - 1];
    let mut off = base;
    loop {
        let mut o = off;
        for _ in 0..inner_n {
            f(o);
            o += inner_s;
        }
        // Odometer over the outer dimensions.
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            off += strides[d];
            if idx[d] < sizes[d] {
                break;
            }
            off -= strides[d] * sizes[d];
            idx[d] = 0;
        }
    }
}

/// A computation domain kernels convert elements into.
pub(crate) trait Domain: Copy + Send + Sync + 'static {
    fn from_elem<T: Element>(v: T) -> Self;
    fn into_elem<T: Element>(self) -> T;
}
impl Domain for f64 {
    fn from_elem<T: Element>(v: T) -> Self {
        v.to_f64()
    }
    fn into_elem<T: Element>(self) -> T {
        T::from_f64(self)
    }
}
impl Domain for i64 {
    fn from_elem<T: Element>(v: T) -> Self {
        v.to_i64()
    }
    fn into_elem<T: Element>(self) -> T {
        T::from_i64(self)
    }
}
impl Domain for bool {
    fn from_elem<T: Element>(v: T) -> Self {
        v.to_bool()
    }
    fn into_elem<T: Element>(self) -> T {
        T::from_bool(self)
    }
}
impl Domain for C64 {
    fn from_elem<T: Element>(v: T) -> Self {
        v.to_c64()
    }
    fn into_elem<T: Element>(self) -> T {
        T::from_c64(self)
    }
}

/// Encode `vals` as a fresh contiguous CPU tensor of `dtype`.
pub(crate) fn tensor_from_domain<D: Domain>(
    vals: &[D],
    sizes: &[usize],
    dtype: ScalarType,
) -> Tensor {
    let isz = dtype.itemsize();
    let nbytes = vals.len() * isz;
    let mut words = vec![0u64; nbytes.div_ceil(8)];
    {
        // SAFETY: reinterpreting initialized u64s as bytes is always valid.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), nbytes) };
        dispatch_dtype!(dtype, T => {
            for (v, chunk) in vals.iter().zip(bytes.chunks_exact_mut(isz)) {
                v.into_elem::<T>().write(chunk);
            }
        });
    }
    Tensor::from_storage_contiguous(Storage::from_words(words, nbytes), sizes, dtype)
}

impl Tensor {
    /// A view of `storage` (PyTorch's `as_strided` on a storage). Checks that
    /// the view fits inside the storage.
    pub fn from_parts(
        storage: Storage,
        sizes: impl Into<Dims>,
        strides: impl Into<Dims>,
        storage_offset: usize,
        dtype: ScalarType,
    ) -> Result<Tensor> {
        let (sizes, strides) = (sizes.into(), strides.into());
        if sizes.len() != strides.len() {
            return Err(TensorError::shape(format!(
                "mismatch in length of strides and shape: {} vs {}",
                strides.len(),
                sizes.len()
            )));
        }
        let need = required_bytes(&sizes, &strides, storage_offset, dtype.itemsize());
        let have = storage.nbytes();
        if need > have {
            return Err(TensorError::other(format!(
                "setStorage: sizes {sizes:?}, strides {strides:?}, storage offset {storage_offset}, and itemsize {} requiring a storage size of {need} are out of bounds for storage of size {have}",
                dtype.itemsize()
            )));
        }
        Ok(Self::from_parts_unchecked(
            storage,
            sizes,
            strides,
            storage_offset,
            dtype,
            false,
        ))
    }

    pub(crate) fn from_parts_unchecked(
        storage: Storage,
        sizes: impl IntoDims,
        strides: impl IntoDims,
        storage_offset: usize,
        dtype: ScalarType,
        wrapped_number: bool,
    ) -> Tensor {
        let (sizes, strides): (Dims, Dims) = (sizes.into_dims(), strides.into_dims());
        debug_assert!(
            storage.nbytes() >= required_bytes(&sizes, &strides, storage_offset, dtype.itemsize())
        );
        let device = storage.device();
        let numel = sizes.iter().product();
        let contiguous = compute_contiguous(&sizes, &strides, numel);
        Tensor(IntrusivePtr::new(TensorImpl {
            header: RcHeader::new(),
            storage,
            sizes,
            strides,
            numel,
            contiguous,
            storage_offset,
            dtype,
            key_set: AtomicU64::new(compute_key_set(device).raw_repr()),
            wrapped_number,
            autograd_meta: std::sync::OnceLock::new(),
        }))
    }

    pub(crate) fn from_storage_contiguous(
        storage: Storage,
        sizes: impl IntoDims,
        dtype: ScalarType,
    ) -> Tensor {
        let sizes: Dims = sizes.into_dims();
        let strides = contiguous_strides_dims(&sizes);
        Self::from_parts_unchecked(storage, sizes, strides, 0, dtype, false)
    }

    /// A new view of this tensor's storage with other geometry (no bounds check
    /// beyond a debug assertion: callers compute in-bounds geometry).
    pub(crate) fn view_with(
        &self,
        sizes: Vec<usize>,
        strides: Vec<usize>,
        storage_offset: usize,
    ) -> Tensor {
        Self::from_parts_unchecked(
            self.storage(),
            sizes,
            strides,
            storage_offset,
            self.dtype(),
            false,
        )
    }

    /// Uninitialized-in-spirit (zero-filled) contiguous tensor.
    pub fn empty(sizes: &[usize], dtype: ScalarType, device: Device) -> Result<Tensor> {
        let n = numel_of(sizes)?;
        let nbytes = n
            .checked_mul(dtype.itemsize())
            .ok_or_else(|| TensorError::shape("size overflow"))?;
        let storage = match device {
            // Device memory is not zeroed for `empty` (one memset launch saved per output).
            Device::Cuda(i) => Storage::cuda_uninit(nbytes, i, true)?,
            _ => Storage::new(nbytes, device, true)?,
        };
        Ok(Self::from_storage_contiguous(storage, sizes, dtype))
    }

    pub fn zeros(sizes: &[usize], dtype: ScalarType, device: Device) -> Result<Tensor> {
        if let Device::Cuda(_) = device {
            let n = numel_of(sizes)?;
            let nbytes = n
                .checked_mul(dtype.itemsize())
                .ok_or_else(|| TensorError::shape("size overflow"))?;
            let storage = Storage::new(nbytes, device, true)?;
            return Ok(Self::from_storage_contiguous(storage, sizes, dtype));
        }
        Self::empty(sizes, dtype, device)
    }

    pub fn ones(sizes: &[usize], dtype: ScalarType, device: Device) -> Result<Tensor> {
        Self::full(sizes, Scalar::Int(1), dtype, device)
    }

    /// A tensor filled with `value` converted to `dtype`.
    pub fn full(
        sizes: &[usize],
        value: Scalar,
        dtype: ScalarType,
        device: Device,
    ) -> Result<Tensor> {
        let t = Self::empty(sizes, dtype, device)?;
        // The constructors allocate on any device; a device without data (Meta) has no
        // elements to fill.
        if !device.is_meta() {
            t.fill_(value)?;
        }
        Ok(t)
    }

    /// `arange(start, end, step)`. Without `dtype`, int64 if all bounds are
    /// integers, else the default float dtype.
    pub fn arange(
        start: Scalar,
        end: Scalar,
        step: Scalar,
        dtype: Option<ScalarType>,
        device: Device,
    ) -> Result<Tensor> {
        let any_float = [start, end, step]
            .iter()
            .any(|s| s.is_floating_point() || s.is_complex());
        let dtype = dtype.unwrap_or(if any_float {
            DEFAULT_DTYPE
        } else {
            ScalarType::Int64
        });
        let (s, e, st) = (start.to_f64(), end.to_f64(), step.to_f64());
        if st == 0.0 {
            return Err(TensorError::other("step must be nonzero"));
        }
        if !s.is_finite() || !e.is_finite() {
            return Err(TensorError::other(format!("unsupported range: {s} -> {e}")));
        }
        if (st > 0.0 && e < s) || (st < 0.0 && e > s) {
            return Err(TensorError::other(
                "upper bound and larger bound inconsistent with step sign",
            ));
        }
        let n = if any_float || !dtype.is_integral(true) {
            ((e - s) / st).ceil() as usize
        } else {
            let (s, e, st) = (start.to_i64(), end.to_i64(), step.to_i64());
            let span = e - s;
            (span / st + i64::from(span % st != 0)) as usize
        };
        let out = Self::empty(&[n], dtype, device)?;
        if device.is_meta() {
            return Ok(out);
        }
        let integral = dtype.is_integral(true) && !any_float;
        let (start_i, step_i) = (start.to_i64(), step.to_i64());
        crate::release::released(n, || -> Result<()> {
            let mut w = out.storage_ref().write()?;
            let isz = dtype.itemsize();
            dispatch_dtype!(dtype, T => {
                for (i, c) in w.chunks_exact_mut(isz).enumerate().take(n) {
                    // The conversions `Scalar::Int` / `Scalar::Float` elements get.
                    let v = if integral {
                        T::from_i64(start_i + i as i64 * step_i)
                    } else {
                        T::from_f64(s + i as f64 * st)
                    };
                    v.write(c);
                }
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// A CPU tensor holding `data` with shape `sizes`.
    pub fn from_vec<T: Element>(data: Vec<T>, sizes: &[usize]) -> Result<Tensor> {
        let n = numel_of(sizes)?;
        if n != data.len() {
            return Err(TensorError::shape(format!(
                "shape '{sizes:?}' is invalid for input of size {}",
                data.len()
            )));
        }
        let isz = T::DTYPE.itemsize();
        let nbytes = n * isz;
        let mut words = crate::storage::zeroed_words(nbytes.div_ceil(8))?;
        // SAFETY: reinterpreting initialized u64s as bytes is always valid.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), nbytes) };
        for (v, c) in data.iter().zip(bytes.chunks_exact_mut(isz)) {
            v.write(c);
        }
        Ok(Self::from_storage_contiguous(
            Storage::from_words(words, nbytes),
            sizes,
            T::DTYPE,
        ))
    }

    /// A 0-dim tensor holding `value` as `dtype`.
    pub fn scalar_tensor(value: Scalar, dtype: ScalarType, device: Device) -> Result<Tensor> {
        Self::full(&[], value, dtype, device)
    }

    /// A Python number as a 0-dim CPU "wrapped number" tensor: it takes part in
    /// type promotion with the lowest priority (ATen's `wrapped_scalar_tensor`).
    pub fn wrapped_scalar(value: Scalar) -> Tensor {
        let dtype = match value {
            Scalar::Complex(..) => ScalarType::ComplexFloat,
            s => s.natural_dtype(),
        };
        let t = Self::scalar_tensor(value, dtype, Device::Cpu).expect("cpu allocation");
        Self::from_parts_unchecked(t.storage(), vec![], vec![], 0, dtype, true)
    }

    // ---- metadata ----

    pub fn sizes(&self) -> &[usize] {
        &self.0.sizes
    }
    pub fn strides(&self) -> &[usize] {
        &self.0.strides
    }
    pub fn storage_offset(&self) -> usize {
        self.0.storage_offset
    }
    pub fn dim(&self) -> usize {
        self.0.sizes.len()
    }
    pub fn numel(&self) -> usize {
        self.0.numel
    }
    pub fn dtype(&self) -> ScalarType {
        self.0.dtype
    }
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }
    pub fn is_meta(&self) -> bool {
        self.device().is_meta()
    }
    pub fn is_floating_point(&self) -> bool {
        self.dtype().is_floating_point()
    }
    pub fn is_complex(&self) -> bool {
        self.dtype().is_complex()
    }
    pub fn element_size(&self) -> usize {
        self.dtype().itemsize()
    }
    /// Whether this is a Python number wrapped by [`Tensor::wrapped_scalar`].
    /// Autograd's metadata, if autograd has touched this tensor.
    #[inline]
    pub fn autograd_meta(&self) -> Option<&dyn AutogradMetaInterface> {
        self.0.autograd_meta.get().map(|b| &**b)
    }
    /// Autograd's metadata, created by `init` the first time it is asked for.
    pub fn autograd_meta_or_init(
        &self,
        init: impl FnOnce() -> Box<dyn AutogradMetaInterface>,
    ) -> &dyn AutogradMetaInterface {
        &**self.0.autograd_meta.get_or_init(init)
    }
    /// Whether autograd records operations on this tensor.
    #[inline]
    pub fn requires_grad(&self) -> bool {
        self.autograd_meta()
            .is_some_and(AutogradMetaInterface::requires_grad)
    }
    /// The version counter shared by every view of this tensor's storage (`t._version`).
    pub fn version(&self) -> u64 {
        self.0.storage.version()
    }
    /// Records an in-place write (ADInplaceOrView's `increment_version`).
    pub fn bump_version(&self) {
        self.0.storage.bump_version();
    }
    /// A new impl over the same storage and geometry with no autograd state (what autograd
    /// keeps of a saved output, and the data of `detach()`).
    pub fn shallow_alias(&self) -> Tensor {
        Self::from_parts_unchecked(
            self.storage(),
            &self.0.sizes,
            &self.0.strides,
            self.0.storage_offset,
            self.0.dtype,
            self.0.wrapped_number,
        )
    }
    /// Whether both tensors view the same storage.
    pub fn is_alias_of(&self, other: &Tensor) -> bool {
        self.0.storage.same_storage(&other.0.storage)
    }
    /// Identity of the impl (two handles of one tensor compare equal).
    pub fn impl_id(&self) -> usize {
        self.unsafe_impl_ptr().addr()
    }
    pub fn is_wrapped_number(&self) -> bool {
        self.0.wrapped_number
    }
    /// The shared storage handle (the same impl for every view of it).
    pub fn storage(&self) -> Storage {
        self.0.storage.clone()
    }
    /// Borrow the storage handle without a refcount bump (which, with a
    /// Python object attached, could mean a trip through the PyObject hooks).
    pub fn storage_ref(&self) -> &Storage {
        &self.0.storage
    }
    /// Address of the first element (0 for Meta).
    pub fn data_ptr(&self) -> usize {
        match self.0.storage.data_ptr() {
            0 => 0,
            p => p + self.storage_offset() * self.element_size(),
        }
    }

    /// Size of dimension `dim` (negative counts from the end).
    pub fn size(&self, dim: i64) -> Result<usize> {
        Ok(self.0.sizes[crate::ops::wrap_dim(dim, self.dim())?])
    }

    /// Row-major contiguity, ignoring the strides of size-1 dimensions.
    pub fn is_contiguous(&self) -> bool {
        self.0.contiguous
    }

    /// Whether the elements fill a block of memory exactly, in some order of the dimensions
    /// (torch's `is_non_overlapping_and_dense`): sorted by stride, each dimension's stride is
    /// the product of the sizes before it (dimensions of size 1 do not count).
    pub fn is_non_overlapping_and_dense(&self) -> bool {
        if self.0.contiguous {
            return true;
        }
        let mut dims: smallvec::SmallVec<[(usize, usize); 6]> = self
            .sizes()
            .iter()
            .zip(self.strides())
            .filter(|(&n, _)| n != 1)
            .map(|(&n, &s)| (s, n))
            .collect();
        dims.sort_unstable();
        let mut expected = 1;
        for (stride, size) in dims {
            if stride != expected {
                return false;
            }
            expected *= size;
        }
        true
    }

    /// The dispatch key set (device keys, plus Python keys if enabled).
    pub fn key_set(&self) -> DispatchKeySet {
        DispatchKeySet::from_raw_repr(self.0.key_set.load(Ordering::Acquire))
    }

    /// Add or remove `Python` and `PythonTLSSnapshot` (TensorImpl's
    /// `set_python_dispatch`), done for subclasses with `__torch_dispatch__`.
    pub fn set_python_dispatch(&self, on: bool) {
        let py = DispatchKeySet::from_keys(&[DispatchKey::Python, DispatchKey::PythonTLSSnapshot]);
        let _ = self
            .0
            .key_set
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |raw| {
                let ks = DispatchKeySet::from_raw_repr(raw);
                Some(
                    if on {
                        ks.add_set(py)
                    } else {
                        ks.difference(py)
                    }
                    .raw_repr(),
                )
            });
    }

    pub fn is_python_dispatch(&self) -> bool {
        self.key_set().has(DispatchKey::Python)
    }

    // ---- data access ----

    /// Convert every element (row-major) into a computation domain.
    pub(crate) fn load<D: Domain>(&self) -> Result<Vec<D>> {
        if let Device::Cuda(_) = self.device() {
            return crate::cuda::to_host(self)?.load();
        }
        self.load_strided(self.sizes(), self.strides())
    }

    /// Like `load`, with explicit (e.g. broadcast, stride-0) geometry over this
    /// tensor's storage and offset.
    pub(crate) fn load_strided<D: Domain>(
        &self,
        sizes: &[usize],
        strides: &[usize],
    ) -> Result<Vec<D>> {
        let st = self.0.storage.read()?;
        let isz = self.element_size();
        let mut out = Vec::with_capacity(sizes.iter().product());
        dispatch_dtype!(self.dtype(), T => {
            for_each_offset(sizes, strides, self.storage_offset(), |o| {
                out.push(D::from_elem(T::read(&st[o * isz..(o + 1) * isz])));
            });
        });
        Ok(out)
    }

    /// Write `vals` (row-major over this tensor's shape) through its strides.
    pub(crate) fn store<D: Domain>(&self, vals: &[D]) -> Result<()> {
        debug_assert_eq!(vals.len(), self.numel());
        let mut st = self.0.storage.write()?;
        let isz = self.element_size();
        let mut i = 0;
        dispatch_dtype!(self.dtype(), T => {
            for_each_offset(self.sizes(), self.strides(), self.storage_offset(), |o| {
                vals[i].into_elem::<T>().write(&mut st[o * isz..(o + 1) * isz]);
                i += 1;
            });
        });
        Ok(())
    }

    /// All elements, row-major, as Python scalars of this dtype's kind.
    pub fn to_scalars(&self) -> Result<Vec<Scalar>> {
        if let Device::Cuda(_) = self.device() {
            return crate::cuda::to_host(self)?.to_scalars();
        }
        let st = self.0.storage.read()?;
        let isz = self.element_size();
        let mut out = Vec::with_capacity(self.numel());
        dispatch_dtype!(self.dtype(), T => {
            for_each_offset(self.sizes(), self.strides(), self.storage_offset(), |o| {
                out.push(scalar_of(T::read(&st[o * isz..(o + 1) * isz])));
            });
        });
        Ok(out)
    }

    /// All elements converted to `T`, row-major.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if let Device::Cuda(_) = self.device() {
            return crate::cuda::to_host(self)?.to_vec();
        }
        let st = self.0.storage.read()?;
        let isz = self.element_size();
        let mut out = Vec::with_capacity(self.numel());
        dispatch_dtype!(self.dtype(), S => {
            for_each_offset(self.sizes(), self.strides(), self.storage_offset(), |o| {
                let v = S::read(&st[o * isz..(o + 1) * isz]);
                out.push(match T::DTYPE {
                    ScalarType::ComplexFloat => T::from_c64(v.to_c64()),
                    ScalarType::Bool => T::from_bool(v.to_bool()),
                    t if t.is_integral(false) && S::DTYPE.is_integral(true) => T::from_i64(v.to_i64()),
                    _ => T::from_f64(v.to_f64()),
                });
            });
        });
        Ok(out)
    }

    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        self.load::<f64>()
    }

    pub fn to_vec_i64(&self) -> Result<Vec<i64>> {
        self.load::<i64>()
    }

    pub fn to_vec_bool(&self) -> Result<Vec<bool>> {
        self.load::<bool>()
    }

    /// The single element of a one-element tensor.
    pub fn item(&self) -> Result<Scalar> {
        if self.numel() != 1 {
            return Err(TensorError::Value(format!(
                "a Tensor with {} elements cannot be converted to Scalar",
                self.numel()
            )));
        }
        Ok(self.to_scalars()?[0])
    }

    /// Nested export for `tolist()`: a 0-dim tensor gives a bare scalar.
    pub fn to_data(&self) -> Result<TensorData> {
        let flat = self.to_scalars()?;
        fn build(flat: &[Scalar], sizes: &[usize]) -> TensorData {
            match sizes.split_first() {
                None => TensorData::Scalar(flat[0]),
                Some((&n, rest)) => {
                    let chunk: usize = rest.iter().product();
                    TensorData::List(
                        (0..n)
                            .map(|i| build(&flat[i * chunk..(i + 1) * chunk], rest))
                            .collect(),
                    )
                }
            }
        }
        Ok(build(&flat, self.sizes()))
    }
}

impl Tensor {
    /// `self.fill_(value)`; see [`crate::ops::fill_`].
    pub fn fill_(&self, value: Scalar) -> Result<()> {
        if let Device::Cuda(_) = self.device() {
            return crate::cuda::fill_(self, value);
        }
        crate::ops::fill_(self, value)
    }

    /// `self.contiguous()`; the same handle when already contiguous.
    pub fn contiguous(&self) -> Result<Tensor> {
        if let Device::Cuda(_) = self.device() {
            return crate::cuda::contiguous(self);
        }
        crate::ops::contiguous(self)
    }
}
