//! `DispatchKeySet`: a 64-bit set of backend bits and functionality bits
//! (spec 1.4) plus the runtime table index computation (spec 1.7).

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, BitXor, BitXorAssign, Sub, SubAssign};

use crate::key::{FUNCTIONALITY_BLOCK, NUM_RUNTIME_ENTRIES};
use crate::table::{BackendComponent, DispatchKey, BLOCKS, NUM_BACKENDS, NUM_FUNCTIONALITY_KEYS};

/// Mask of all backend bits (`full_backend_mask`).
pub const FULL_BACKEND_MASK: u64 = (1u64 << NUM_BACKENDS) - 1;

/// Mask of all functionality bits, after shifting out the backend bits.
const FUNCTIONALITY_MASK: u64 = (1u64 << (NUM_FUNCTIONALITY_KEYS - 1)) - 1;

/// `64 - clz(x)`: 1-based index of the highest set bit, 0 for an empty word.
#[inline(always)]
const fn index_of_highest_bit(x: u64) -> u32 {
    64 - x.leading_zeros()
}

/// The functionality bit of functionality key `k` (which must not be Undefined).
const fn functionality_bit(k: DispatchKey) -> u64 {
    1u64 << (NUM_BACKENDS + k as usize - 1)
}

/// A set of dispatch keys, stored as the cross product of functionality bits
/// and backend bits, exactly like `c10::DispatchKeySet`. The zero pattern is
/// the empty set so TLS-style zero initialisation works.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct DispatchKeySet {
    repr: u64,
}

impl DispatchKeySet {
    /// The empty set.
    pub const EMPTY: Self = Self { repr: 0 };
    /// Every backend bit and every functionality bit.
    pub const FULL: Self = Self {
        repr: (1u64 << (NUM_BACKENDS + NUM_FUNCTIONALITY_KEYS - 1)) - 1,
    };

    /// Wraps a raw bit pattern (`DispatchKeySet(RAW, x)`).
    pub const fn from_raw_repr(x: u64) -> Self {
        Self { repr: x }
    }

    /// The raw bit pattern.
    pub const fn raw_repr(self) -> u64 {
        self.repr
    }

    /// `DispatchKeySet(FULL_AFTER, k)`: all backend bits, every functionality
    /// strictly below `k`, and PythonDispatcher (which must always be reachable).
    pub const fn full_after(k: DispatchKey) -> Self {
        let shift = NUM_BACKENDS + k.to_functionality_key() as usize - 1;
        Self {
            repr: (1u64 << shift) - 1,
        }
        .add(DispatchKey::PythonDispatcher)
    }

    /// The set holding one key. Per-backend runtime keys set both their
    /// functionality and backend bit; aliases give the empty set
    /// (aliases are never members of a DispatchKeySet).
    pub const fn from_key(k: DispatchKey) -> Self {
        if matches!(k, DispatchKey::Undefined) || k.is_alias() {
            return Self::EMPTY;
        }
        if k.is_functionality_key() {
            return Self {
                repr: functionality_bit(k),
            };
        }
        let f = k.to_functionality_key();
        let b = Self::from_backend(k.to_backend_component());
        Self {
            repr: functionality_bit(f) | b.repr,
        }
    }

    /// The set holding one backend bit (empty for `InvalidBit`).
    pub const fn from_backend(b: BackendComponent) -> Self {
        match b {
            BackendComponent::InvalidBit => Self::EMPTY,
            _ => Self {
                repr: 1u64 << (b as u8 - 1),
            },
        }
    }

    /// The union of `from_key` over `keys`.
    pub const fn from_keys(keys: &[DispatchKey]) -> Self {
        let mut repr = 0;
        let mut i = 0;
        while i < keys.len() {
            repr |= Self::from_key(keys[i]).repr;
            i += 1;
        }
        Self { repr }
    }

    /// The union of `from_backend` over `backends`.
    pub const fn from_backends(backends: &[BackendComponent]) -> Self {
        let mut repr = 0;
        let mut i = 0;
        while i < backends.len() {
            repr |= Self::from_backend(backends[i]).repr;
            i += 1;
        }
        Self { repr }
    }

    /// Every bit of `k` is present. Because the set is a cross product,
    /// `{CPU, AutogradCUDA}.has(CUDA)` is true. `Undefined` and aliases map to
    /// the empty set, so they are vacuously "present" (release PyTorch behaviour).
    pub const fn has(self, k: DispatchKey) -> bool {
        self.has_all(Self::from_key(k))
    }

    /// Every bit of `o` is present.
    pub const fn has_all(self, o: Self) -> bool {
        self.repr & o.repr == o.repr
    }

    /// Some bit of `o` is present.
    pub const fn has_any(self, o: Self) -> bool {
        self.repr & o.repr != 0
    }

    /// The backend bit of `b` is present (false for `InvalidBit`).
    pub const fn has_backend(self, b: BackendComponent) -> bool {
        let s = Self::from_backend(b);
        s.repr != 0 && self.has_all(s)
    }

    /// Same as `has_all`.
    pub const fn is_superset_of(self, o: Self) -> bool {
        self.has_all(o)
    }

    /// Union with the bits of `k`.
    pub const fn add(self, k: DispatchKey) -> Self {
        Self {
            repr: self.repr | Self::from_key(k).repr,
        }
    }

    /// Union with `o`.
    pub const fn add_set(self, o: Self) -> Self {
        Self {
            repr: self.repr | o.repr,
        }
    }

    /// Union with the backend bit of `b`.
    pub const fn add_backend(self, b: BackendComponent) -> Self {
        self.add_set(Self::from_backend(b))
    }

    /// Intersection with `o`.
    pub const fn intersect(self, o: Self) -> Self {
        Self {
            repr: self.repr & o.repr,
        }
    }

    /// Set difference on functionality bits only; backend bits of `self` are
    /// kept, since other keys in the set may still need them.
    pub const fn difference(self, o: Self) -> Self {
        Self {
            repr: self.repr & (FULL_BACKEND_MASK | !o.repr),
        }
    }

    /// Clears only `k`'s functionality bit: `remove(AutogradCPU)` drops
    /// autograd for every backend and keeps CPUBit (PyTorch quirk).
    pub const fn remove(self, k: DispatchKey) -> Self {
        Self {
            repr: self.repr & !(Self::from_key(k).repr & !FULL_BACKEND_MASK),
        }
    }

    /// Clears the backend bit of `b`.
    pub const fn remove_backend(self, b: BackendComponent) -> Self {
        Self {
            repr: self.repr & !Self::from_backend(b).repr,
        }
    }

    /// No bit at all is set.
    pub const fn is_empty(self) -> bool {
        self.repr == 0
    }

    /// Only the backend bits.
    pub const fn backend_bits(self) -> Self {
        Self {
            repr: self.repr & FULL_BACKEND_MASK,
        }
    }

    /// Only the functionality bits.
    pub const fn functionality_bits(self) -> Self {
        Self {
            repr: self.repr & !FULL_BACKEND_MASK,
        }
    }

    /// `indexOfHighestBit()`: 0 for the empty set.
    pub const fn index_of_highest_bit(self) -> u32 {
        index_of_highest_bit(self.repr)
    }

    /// The highest functionality key present (`Undefined` when none).
    pub const fn highest_functionality_key(self) -> DispatchKey {
        let f = index_of_highest_bit((self.repr >> NUM_BACKENDS) & FUNCTIONALITY_MASK);
        match DispatchKey::from_u16(f as u16) {
            Some(k) => k,
            None => DispatchKey::Undefined,
        }
    }

    /// The highest backend present (`InvalidBit` when none).
    pub const fn highest_backend_key(self) -> BackendComponent {
        let j = index_of_highest_bit(self.repr & FULL_BACKEND_MASK);
        BackendComponent::ALL[j as usize]
    }

    /// The key that would be dispatched to first. For a per-backend
    /// functionality without a backend bit this is the `StartOf*` placeholder.
    pub const fn highest_priority_type_id(self) -> DispatchKey {
        let f = self.highest_functionality_key();
        if f.is_per_backend_functionality() {
            BLOCKS[FUNCTIONALITY_BLOCK[f as usize] as usize][self.highest_backend_key() as usize]
        } else {
            f
        }
    }

    /// Zero-based index of the highest backend (CPU -> 0 ... Meta -> 15; 0 if none).
    pub const fn get_backend_index(self) -> usize {
        index_of_highest_bit((self.repr & FULL_BACKEND_MASK) >> 1) as usize
    }

    /// Slot in an operator's runtime dispatch table for the highest-priority
    /// key of this set. Hot path: two `clz`, one table load, two adds.
    #[inline]
    pub fn dispatch_table_index(self) -> usize {
        let fidx = index_of_highest_bit(self.repr >> NUM_BACKENDS) as usize;
        let om = OFFSETS_AND_MASKS[fidx & 63];
        let bidx = index_of_highest_bit((self.repr & om.mask as u64) >> 1) as usize;
        om.offset as usize + bidx
    }

    /// Runtime keys in ascending priority (spec 1.4 iteration order).
    pub fn iter(self) -> DispatchKeySetIter {
        DispatchKeySetIter {
            functionality: (self.repr >> NUM_BACKENDS) & FUNCTIONALITY_MASK,
            backends: self.repr & FULL_BACKEND_MASK,
            current_backends: 0,
            current_block: 0,
        }
    }
}

/// Per-functionality `(offset, mask)` entry of the runtime table layout.
#[derive(Copy, Clone)]
struct OffsetAndMask {
    offset: u16,
    mask: u16,
}

/// `offsetsAndMasks`, padded to 64 entries so the hot path needs no bounds
/// check (functionality indices past the last key hit zeroed entries -> slot 0).
const OFFSETS_AND_MASKS: [OffsetAndMask; 64] = {
    let mut t = [OffsetAndMask { offset: 0, mask: 0 }; 64];
    let mut i = 1;
    while i < NUM_FUNCTIONALITY_KEYS {
        let prev = t[i - 1];
        let step = if prev.mask == 0 {
            1
        } else {
            NUM_BACKENDS as u16
        };
        let per_backend = FUNCTIONALITY_BLOCK[i] != u8::MAX;
        t[i] = OffsetAndMask {
            offset: prev.offset + step,
            mask: if per_backend {
                FULL_BACKEND_MASK as u16
            } else {
                0
            },
        };
        i += 1;
    }
    assert!(t[NUM_FUNCTIONALITY_KEYS - 1].offset as usize == NUM_RUNTIME_ENTRIES - 1);
    t
};

/// Index -> runtime key: Undefined at 0, then `FULL` iteration order.
const RUNTIME_TABLE_ORDER: [DispatchKey; NUM_RUNTIME_ENTRIES] = {
    let mut t = [DispatchKey::Undefined; NUM_RUNTIME_ENTRIES];
    let mut n = 1;
    let mut k = 1;
    while k < NUM_FUNCTIONALITY_KEYS {
        let blk = FUNCTIONALITY_BLOCK[k];
        if blk == u8::MAX {
            t[n] = DispatchKey::ALL[k];
            n += 1;
        } else {
            let mut b = 1;
            while b <= NUM_BACKENDS {
                t[n] = BLOCKS[blk as usize][b];
                n += 1;
                b += 1;
            }
        }
        k += 1;
    }
    assert!(n == NUM_RUNTIME_ENTRIES);
    t
};

/// Runtime table slot of key `k`; aliases map to 0 and building blocks such as
/// `Dense` map to their CPU instance (spec 1.7 consequences).
#[inline]
pub fn dispatch_table_index_for_key(k: DispatchKey) -> usize {
    DispatchKeySet::from_key(k).dispatch_table_index()
}

/// Inverse of [`dispatch_table_index_for_key`] over runtime keys; panics when
/// `i >= NUM_RUNTIME_ENTRIES`.
pub const fn runtime_key_for_index(i: usize) -> DispatchKey {
    RUNTIME_TABLE_ORDER[i]
}

/// All `NUM_RUNTIME_ENTRIES` runtime keys in table order (Undefined first).
pub fn runtime_keys_in_table_order() -> &'static [DispatchKey] {
    &RUNTIME_TABLE_ORDER
}

/// Iterator over the runtime keys of a set, ascending.
#[derive(Clone, Debug)]
pub struct DispatchKeySetIter {
    /// Functionality bits not yet visited (bit k-1 for key k).
    functionality: u64,
    /// Backend bits of the whole set.
    backends: u64,
    /// Backend bits still to yield for the current per-backend functionality.
    current_backends: u64,
    /// Block index of the current per-backend functionality.
    current_block: usize,
}

impl Iterator for DispatchKeySetIter {
    type Item = DispatchKey;

    fn next(&mut self) -> Option<DispatchKey> {
        loop {
            if self.current_backends != 0 {
                let b = self.current_backends.trailing_zeros() as usize + 1;
                self.current_backends &= self.current_backends - 1;
                return Some(BLOCKS[self.current_block][b]);
            }
            if self.functionality == 0 {
                return None;
            }
            let k = self.functionality.trailing_zeros() as usize + 1;
            self.functionality &= self.functionality - 1;
            match FUNCTIONALITY_BLOCK[k] {
                u8::MAX => return Some(DispatchKey::ALL[k]),
                blk => {
                    self.current_block = blk as usize;
                    self.current_backends = self.backends;
                }
            }
        }
    }
}

impl std::iter::FusedIterator for DispatchKeySetIter {}

impl IntoIterator for DispatchKeySet {
    type Item = DispatchKey;
    type IntoIter = DispatchKeySetIter;
    fn into_iter(self) -> DispatchKeySetIter {
        self.iter()
    }
}

impl From<DispatchKey> for DispatchKeySet {
    fn from(k: DispatchKey) -> Self {
        Self::from_key(k)
    }
}

impl From<BackendComponent> for DispatchKeySet {
    fn from(b: BackendComponent) -> Self {
        Self::from_backend(b)
    }
}

impl FromIterator<DispatchKey> for DispatchKeySet {
    fn from_iter<I: IntoIterator<Item = DispatchKey>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::add)
    }
}

impl BitOr for DispatchKeySet {
    type Output = Self;
    fn bitor(self, o: Self) -> Self {
        self.add_set(o)
    }
}

impl BitOrAssign for DispatchKeySet {
    fn bitor_assign(&mut self, o: Self) {
        *self = *self | o;
    }
}

impl BitAnd for DispatchKeySet {
    type Output = Self;
    fn bitand(self, o: Self) -> Self {
        self.intersect(o)
    }
}

impl BitAndAssign for DispatchKeySet {
    fn bitand_assign(&mut self, o: Self) {
        *self = *self & o;
    }
}

impl BitXor for DispatchKeySet {
    type Output = Self;
    fn bitxor(self, o: Self) -> Self {
        Self {
            repr: self.repr ^ o.repr,
        }
    }
}

impl BitXorAssign for DispatchKeySet {
    fn bitxor_assign(&mut self, o: Self) {
        *self = *self ^ o;
    }
}

/// Removes functionality bits only (see [`DispatchKeySet::difference`]).
impl Sub for DispatchKeySet {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        self.difference(o)
    }
}

impl SubAssign for DispatchKeySet {
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}

impl fmt::Display for DispatchKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DispatchKeySet(")?;
        for (i, k) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.name())?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for DispatchKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
