//! Untyped storage: the byte buffer tensors view, with its PyObject slot.
//!
//! Buffers are `Vec<u64>` so every dtype's elements are naturally aligned.
//! Meta storage records a byte size but allocates nothing. CUDA storage owns a block of
//! device memory from the device's caching allocator ([`opdispatch_cuda::DeviceBuffer`],
//! returned to the cache when the storage dies) and has no host bytes: the CUDA loops
//! address it by [`Storage::device_ptr`]. Access goes through
//! an `RwLock`: kernels take one lock at a time (they copy inputs out or build
//! outputs in fresh buffers), so aliasing inputs and outputs cannot deadlock.

use crate::error::{Result, TensorError};
use crate::pyobject::{intrusive_handle_api, IntrusivePtr, IntrusiveTarget, RcHeader};
use crate::Device;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Debug)]
struct Buffer {
    words: Vec<u64>,
    /// Word at which the data starts (non-zero only to align a large buffer).
    start: usize,
    nbytes: usize,
}

impl Buffer {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `words` is initialized memory of at least `nbytes` bytes
        // (checked at construction/resize); `u8` has alignment 1 and no invalid
        // values, and the borrow of `self` bounds the lifetime.
        unsafe { std::slice::from_raw_parts(self.data().cast::<u8>(), self.nbytes) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; the unique borrow of `self` makes the slice unique.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().add(self.start).cast::<u8>(),
                self.nbytes,
            )
        }
    }
    fn data(&self) -> *const u64 {
        // SAFETY: `start <= words.len()` (set with the words it indexes).
        unsafe { self.words.as_ptr().add(self.start) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // Small buffers go back to this thread's cache (see `small_buffers`).
        if self.words.capacity() <= crate::small_buffers::MAX_WORDS {
            crate::small_buffers::give(std::mem::take(&mut self.words));
        }
    }
}

fn words_for(nbytes: usize) -> usize {
    nbytes.div_ceil(8)
}

/// The heap object behind a [`Storage`] handle (c10's `StorageImpl`).
#[derive(Debug)]
pub struct StorageImpl {
    header: RcHeader,
    device: Device,
    resizable: bool,
    data: RwLock<Buffer>,
    /// The device memory of CUDA storage (`None` on CPU and Meta; boxed so CPU storage keeps
    /// its size).
    cuda: Option<Box<opdispatch_cuda::DeviceBuffer>>,
    /// Autograd's version counter, shared by every tensor viewing this storage.
    version: std::sync::atomic::AtomicU64,
}

impl IntrusiveTarget for StorageImpl {
    fn header(&self) -> &RcHeader {
        &self.header
    }
}

/// Strong, intrusive handle to a [`StorageImpl`]. Cloning is a refcount bump
/// that follows the PyObject protocol in [`crate::pyobject`].
#[derive(Clone)]
pub struct Storage(IntrusivePtr<StorageImpl>);

intrusive_handle_api!(Storage, StorageImpl);

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("device", &self.device())
            .field("nbytes", &self.nbytes())
            .field("use_count", &self.use_count())
            .finish()
    }
}

/// Read access to a storage's bytes; holds the read lock.
pub struct StorageRead<'a>(RwLockReadGuard<'a, Buffer>);
impl std::ops::Deref for StorageRead<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.bytes()
    }
}

/// Write access to a storage's bytes; holds the write lock.
pub struct StorageWrite<'a>(RwLockWriteGuard<'a, Buffer>);
impl std::ops::Deref for StorageWrite<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.bytes()
    }
}
impl std::ops::DerefMut for StorageWrite<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.bytes_mut()
    }
}

/// A zeroed buffer of `words` 8-byte words, or PyTorch's allocation error instead of aborting
/// the process when the allocator refuses. Allocated zeroed (`calloc`): memory fresh from the
/// OS is zero already, so a large buffer costs no pass of its own (`zeros(10**7)` took 35 ms
/// of page faults and writes before, and `ones` wrote its memory twice).
pub(crate) fn zeroed_words(words: usize) -> Result<Vec<u64>> {
    if words == 0 {
        return Ok(Vec::new());
    }
    if let Some(mut v) = crate::small_buffers::take(words) {
        v.resize(words, 0);
        return Ok(v);
    }
    let layout = std::alloc::Layout::array::<u64>(words).map_err(|_| out_of_memory(words))?;
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<u64>();
    if p.is_null() {
        return Err(out_of_memory(words));
    }
    // SAFETY: `p` is a global-allocator allocation with the layout a `Vec<u64>` of capacity
    // `words` uses, and all-zero bytes are `words` valid `u64`s.
    Ok(unsafe { Vec::from_raw_parts(p, words, words) })
}

fn out_of_memory(words: usize) -> TensorError {
    TensorError::other(format!(
        "DefaultCPUAllocator: not enough memory: you tried to allocate {} bytes.",
        words.saturating_mul(8)
    ))
}

/// An empty buffer with room for `words` words (uninitialized capacity), or PyTorch's
/// allocation error.
pub(crate) fn uninit_words(words: usize) -> Result<Vec<u64>> {
    if let Some(v) = crate::small_buffers::take(words) {
        return Ok(v);
    }
    let mut v: Vec<u64> = Vec::new();
    v.try_reserve_exact(words)
        .map_err(|_| out_of_memory(words))?;
    Ok(v)
}

/// Buffers of at least this many bytes start on a 64-byte boundary, as c10's CPU allocator
/// aligns every buffer: glibc hands out 16-byte-aligned blocks, and AVX loads and stores that
/// straddle cache lines cost in-place kernels a quarter of their time (`mul_` of 1M floats,
/// 58 us unaligned, 43 us aligned). Smaller buffers stay as allocated (no padding).
const ALIGN_FROM: usize = 4096;
const ALIGN_WORDS: usize = 8;

/// A new buffer whose data starts `start` words into `words`, aligned when large.
pub(crate) struct WordBuf {
    words: Vec<u64>,
    start: usize,
}

impl WordBuf {
    fn pad(nbytes: usize) -> usize {
        if nbytes >= ALIGN_FROM {
            ALIGN_WORDS - 1
        } else {
            0
        }
    }
    fn start_of(words: &[u64], pad: usize) -> usize {
        if pad == 0 {
            return 0;
        }
        let misalign = (words.as_ptr() as usize / 8) % ALIGN_WORDS;
        (ALIGN_WORDS - misalign) % ALIGN_WORDS
    }
    /// Room for `nbytes` (uninitialized): fill it through [`WordBuf::data`], then
    /// [`WordBuf::assume_init`].
    pub(crate) fn uninit(nbytes: usize) -> Result<Self> {
        let pad = Self::pad(nbytes);
        let words = uninit_words(words_for(nbytes) + pad)?;
        let start = Self::start_of(&words, pad);
        Ok(WordBuf { words, start })
    }
    /// `nbytes` of zeros (`calloc`, so fresh pages cost no pass).
    pub(crate) fn zeroed(nbytes: usize) -> Result<Self> {
        let pad = Self::pad(nbytes);
        let words = zeroed_words(words_for(nbytes) + pad)?;
        let start = Self::start_of(&words, pad);
        Ok(WordBuf { words, start })
    }
    /// The first data byte (64-byte aligned for large buffers); `words_for(nbytes) * 8` bytes
    /// are writable from it.
    pub(crate) fn data(&mut self) -> *mut u8 {
        // SAFETY: `start` is below the capacity reserved for the padding.
        unsafe { self.words.as_mut_ptr().add(self.start).cast::<u8>() }
    }
    /// Marks an [`WordBuf::uninit`] buffer's `nbytes` as written; the bytes after them in
    /// the last word (under 8, never data) are zeroed here, so callers write only their data.
    ///
    /// # Safety
    /// The first `nbytes` bytes from [`WordBuf::data`] were written.
    pub(crate) unsafe fn assume_init(&mut self, nbytes: usize) {
        let tail = words_for(nbytes) * 8 - nbytes;
        let data = self.data();
        // SAFETY: `words_for(nbytes) * 8` bytes from `data` are writable (see `data`).
        unsafe { std::ptr::write_bytes(data.add(nbytes), 0, tail) };
        let spare = self.words.spare_capacity_mut();
        for w in &mut spare[..self.start] {
            w.write(0);
        }
        // SAFETY: the padding words were written just above, the data words by the caller
        // and the tail of the last one here.
        unsafe { self.words.set_len(self.start + words_for(nbytes)) };
    }
    /// The storage adopting this buffer (CPU, resizable) with `nbytes` of data.
    pub(crate) fn into_storage(self, nbytes: usize) -> Storage {
        Storage::from_buffer(self.into_buffer(nbytes), Device::Cpu, true)
    }
    fn into_buffer(self, nbytes: usize) -> Buffer {
        assert!(self.start + words_for(nbytes) <= self.words.len());
        Buffer {
            words: self.words,
            start: self.start,
            nbytes,
        }
    }
}

impl Storage {
    /// Zero-filled storage of `nbytes` on `device` (Meta allocates nothing).
    pub fn new(nbytes: usize, device: Device, resizable: bool) -> Result<Storage> {
        device.check_available()?;
        if let Device::Cuda(i) = device {
            let b = opdispatch_cuda::DeviceBuffer::zeroed(usize::from(i), nbytes)
                .map_err(crate::cuda::cuda_err)?;
            return Ok(Self::from_device(b, device, resizable));
        }
        if device.is_meta() {
            let buf = Buffer {
                words: Vec::new(),
                start: 0,
                nbytes,
            };
            return Ok(Self::from_buffer(buf, device, resizable));
        }
        let buf = WordBuf::zeroed(nbytes)?.into_buffer(nbytes);
        Ok(Self::from_buffer(buf, device, resizable))
    }

    /// CPU storage holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Storage {
        let mut words = crate::small_buffers::take(words_for(bytes.len())).unwrap_or_default();
        words.resize(words_for(bytes.len()), 0);
        let mut buf = Buffer {
            words,
            start: 0,
            nbytes: bytes.len(),
        };
        buf.bytes_mut().copy_from_slice(bytes);
        Self::from_buffer(buf, Device::Cpu, true)
    }

    /// CPU storage adopting an 8-byte-aligned buffer (used by kernels that fill outputs directly).
    pub(crate) fn from_words(words: Vec<u64>, nbytes: usize) -> Storage {
        assert!(nbytes <= words.len() * 8);
        Self::from_buffer(
            Buffer {
                words,
                start: 0,
                nbytes,
            },
            Device::Cpu,
            true,
        )
    }

    /// Uninitialised CUDA storage of `nbytes` on device `index` (`torch.empty`'s).
    pub fn cuda_uninit(nbytes: usize, index: u8, resizable: bool) -> Result<Storage> {
        let device = Device::Cuda(index);
        device.check_available()?;
        let b = opdispatch_cuda::DeviceBuffer::uninit(usize::from(index), nbytes)
            .map_err(crate::cuda::cuda_err)?;
        Ok(Self::from_device(b, device, resizable))
    }

    fn from_device(b: opdispatch_cuda::DeviceBuffer, device: Device, resizable: bool) -> Storage {
        let nbytes = b.nbytes();
        let buf = Buffer {
            words: Vec::new(),
            start: 0,
            nbytes,
        };
        Self::from_parts(buf, Some(Box::new(b)), device, resizable)
    }

    fn from_buffer(buf: Buffer, device: Device, resizable: bool) -> Storage {
        Self::from_parts(buf, None, device, resizable)
    }

    fn from_parts(
        buf: Buffer,
        cuda: Option<Box<opdispatch_cuda::DeviceBuffer>>,
        device: Device,
        resizable: bool,
    ) -> Storage {
        Storage(IntrusivePtr::new(StorageImpl {
            header: RcHeader::new(),
            device,
            resizable,
            data: RwLock::new(buf),
            cuda,
            version: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// The device address of CUDA storage's first byte (`None` on CPU and Meta).
    pub fn device_ptr(&self) -> Option<u64> {
        self.0.cuda.as_ref().map(|b| b.ptr())
    }

    /// The autograd version counter (bumped by every in-place write through a view of it).
    pub fn version(&self) -> u64 {
        self.0.version.load(std::sync::atomic::Ordering::Acquire)
    }
    pub fn bump_version(&self) {
        self.0
            .version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    pub fn same_storage(&self, other: &Storage) -> bool {
        self.ptr_eq(other)
    }

    pub fn device(&self) -> Device {
        self.0.device
    }

    pub fn resizable(&self) -> bool {
        self.0.resizable
    }

    pub fn nbytes(&self) -> usize {
        self.lock_read().nbytes
    }

    fn lock_read(&self) -> RwLockReadGuard<'_, Buffer> {
        // A panic while holding the lock leaves plain bytes behind; keep going.
        self.0
            .data
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_write(&self) -> RwLockWriteGuard<'_, Buffer> {
        self.0
            .data
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Read the bytes. Errors on Meta storage, which has none, and on CUDA storage, whose
    /// bytes are on the device (copy it to the host first).
    pub fn read(&self) -> Result<StorageRead<'_>> {
        if !self.device().is_cpu() {
            return Err(TensorError::NoData(self.device()));
        }
        Ok(StorageRead(self.lock_read()))
    }

    /// Write the bytes. Errors on Meta and CUDA storage (see [`Storage::read`]).
    pub fn write(&self) -> Result<StorageWrite<'_>> {
        if !self.device().is_cpu() {
            return Err(TensorError::NoData(self.device()));
        }
        Ok(StorageWrite(self.lock_write()))
    }

    /// Write access if no other access is held now (`None` when it would block, or on Meta):
    /// for kernels that already hold another storage's lock and must not wait for this one.
    pub(crate) fn try_write(&self) -> Option<StorageWrite<'_>> {
        if !self.device().is_cpu() {
            return None;
        }
        match self.0.data.try_write() {
            Ok(g) => Some(StorageWrite(g)),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(StorageWrite(p.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Address of the first byte (0 for Meta, the device address for CUDA); for `data_ptr()`
    /// style identity.
    pub fn data_ptr(&self) -> usize {
        if let Some(p) = self.device_ptr() {
            p as usize
        } else if self.device().is_meta() {
            0
        } else {
            self.lock_read().data() as usize
        }
    }

    /// Grow or shrink to `nbytes` (new bytes are zero). Like PyTorch, only
    /// resizable storages may change size.
    pub fn resize(&self, nbytes: usize) -> Result<()> {
        if !self.resizable() {
            return Err(TensorError::other(
                "Trying to resize storage that is not resizable",
            ));
        }
        let mut g = self.lock_write();
        if let Some(b) = &self.0.cuda {
            // Device storage keeps its block: it may shrink, and grow back within it.
            if nbytes > b.nbytes() {
                return Err(TensorError::other(format!(
                    "opdispatch cannot grow CUDA storage in place (from {} to {nbytes} bytes)",
                    b.nbytes()
                )));
            }
            g.nbytes = nbytes;
            return Ok(());
        }
        if !self.device().is_meta() {
            let old = g.nbytes;
            let want = g.start + words_for(nbytes);
            if want > g.words.len() {
                let extra = want - g.words.len();
                g.words.try_reserve_exact(extra).map_err(|_| {
                    TensorError::other(format!(
                        "DefaultCPUAllocator: not enough memory: you tried to allocate {nbytes} bytes."
                    ))
                })?;
            }
            g.words.resize(want, 0);
            g.nbytes = nbytes;
            if nbytes > old {
                // Bytes past the old end inside the last old word may be stale.
                g.bytes_mut()[old..].fill(0);
            }
        } else {
            g.nbytes = nbytes;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_meta() {
        let s = Storage::new(10, Device::Cpu, true).unwrap();
        assert_eq!(s.nbytes(), 10);
        assert_eq!(&*s.read().unwrap(), &[0u8; 10]);
        s.write().unwrap()[3] = 7;
        s.resize(20).unwrap();
        assert_eq!(s.read().unwrap()[3], 7);
        assert_eq!(s.read().unwrap()[19], 0);
        let m = Storage::new(1 << 40, Device::Meta, false).unwrap();
        assert_eq!(m.nbytes(), 1 << 40);
        assert!(m.read().is_err());
        assert!(m.resize(3).is_err());
        if !opdispatch_cuda::is_available() {
            assert!(Storage::new(4, Device::Cuda(0), true).is_err());
        }
        let b = Storage::from_bytes(&[1, 2, 3]);
        assert_eq!(&*b.read().unwrap(), &[1, 2, 3]);
    }

    #[test]
    fn large_buffers_start_on_64_bytes() {
        for n in [ALIGN_FROM, ALIGN_FROM + 3, 1 << 20] {
            let s = Storage::new(n, Device::Cpu, true).unwrap();
            assert_eq!(s.data_ptr() % 64, 0);
            assert!(s.read().unwrap().iter().all(|&b| b == 0));
            s.write().unwrap()[n - 1] = 9;
            s.resize(n + 100).unwrap();
            assert_eq!(s.data_ptr() % 64, 0);
            assert_eq!(
                (s.read().unwrap()[n - 1], s.read().unwrap()[n + 99]),
                (9, 0)
            );
            s.resize(5).unwrap();
            assert_eq!(s.nbytes(), 5);
            let mut w = WordBuf::uninit(n).unwrap();
            let p = w.data();
            assert_eq!(p as usize % 64, 0);
            // SAFETY: `words_for(n) * 8` bytes are writable from `p`.
            unsafe {
                std::ptr::write_bytes(p, 7, words_for(n) * 8);
                w.assume_init(n);
            }
            let st = w.into_storage(n);
            assert_eq!(st.data_ptr() % 64, 0);
            assert!(st.read().unwrap().iter().all(|&b| b == 7));
        }
    }
}
