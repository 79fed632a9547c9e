//! Classification and conversion helpers for [`DispatchKey`] and
//! [`BackendComponent`] (spec 1.3, 1.8). Everything here is derived from the
//! tables in `table.rs`, never from hand-written value ranges.

use std::fmt;
use std::str::FromStr;

pub use crate::table::{BackendComponent, DispatchKey, NUM_BACKENDS, NUM_FUNCTIONALITY_KEYS};
use crate::table::{
    BLOCKS, BLOCK_LEN, NUM_PER_BACKEND_FUNCTIONALITIES, PER_BACKEND_FUNCTIONALITIES,
};

/// Size of the per-operator runtime dispatch table: one slot per functionality
/// key (Undefined included) plus 15 extra slots for each per-backend functionality.
pub const NUM_RUNTIME_ENTRIES: usize =
    NUM_FUNCTIONALITY_KEYS + NUM_PER_BACKEND_FUNCTIONALITIES * (NUM_BACKENDS - 1);

/// Value of the first per-backend block's `StartOf*` key.
const FIRST_BLOCK_VALUE: u16 = BLOCKS[0][0] as u16;

/// One past the last per-backend runtime key (`EndOfRuntimeBackendKeys + 1`).
const END_OF_BLOCKS_VALUE: u16 =
    FIRST_BLOCK_VALUE + (NUM_PER_BACKEND_FUNCTIONALITIES * BLOCK_LEN) as u16;

/// Number of possible `u16` values up to the largest variant, for `from_u16`.
const VALUE_SPACE: usize = DispatchKey::ALL[DispatchKey::ALL.len() - 1] as usize + 1;

/// Value -> variant lookup, built at compile time from `DispatchKey::ALL`.
const BY_VALUE: [Option<DispatchKey>; VALUE_SPACE] = {
    let mut t = [None; VALUE_SPACE];
    let mut i = 0;
    while i < DispatchKey::ALL.len() {
        let k = DispatchKey::ALL[i];
        t[k as usize] = Some(k);
        i += 1;
    }
    t
};

/// Functionality value -> block index (or `u8::MAX` when not per-backend).
pub(crate) const FUNCTIONALITY_BLOCK: [u8; NUM_FUNCTIONALITY_KEYS] = {
    let mut t = [u8::MAX; NUM_FUNCTIONALITY_KEYS];
    let mut i = 0;
    while i < NUM_PER_BACKEND_FUNCTIONALITIES {
        t[PER_BACKEND_FUNCTIONALITIES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

impl BackendComponent {
    /// Inverse of `as u8`; `None` for values past `MetaBit`.
    pub const fn from_u8(v: u8) -> Option<Self> {
        if (v as usize) < Self::ALL.len() {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }

    /// The numeric value (`InvalidBit` = 0, `MetaBit` = 16).
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

impl DispatchKey {
    /// Inverse of [`DispatchKey::as_u16`]; `None` for unused values such as
    /// `EndOfFunctionalityKeys` (which is not a variant here).
    pub const fn from_u16(v: u16) -> Option<Self> {
        if (v as usize) < VALUE_SPACE {
            BY_VALUE[v as usize]
        } else {
            None
        }
    }

    /// The numeric value; matches PyTorch 2.15's `DispatchKey` values.
    pub const fn as_u16(self) -> u16 {
        self as u16
    }

    /// Index of the per-backend block this key lies in (StartOf* included).
    pub(crate) const fn block_index(self) -> Option<usize> {
        let v = self as u16;
        if v >= FIRST_BLOCK_VALUE && v < END_OF_BLOCKS_VALUE {
            Some((v - FIRST_BLOCK_VALUE) as usize / BLOCK_LEN)
        } else {
            None
        }
    }

    /// Whether this is a key with a DispatchKeySet functionality bit of its
    /// own (or `Undefined`), i.e. it lies in region (a) of the enum.
    pub const fn is_functionality_key(self) -> bool {
        (self as usize) < NUM_FUNCTIONALITY_KEYS
    }

    /// Alias keys name a set of runtime keys and never get a table slot.
    pub const fn is_alias(self) -> bool {
        self as u16 >= DispatchKey::ALIASES[0] as u16
    }

    /// True for the six building blocks (Dense, Quantized, Sparse, SparseCsr,
    /// NestedTensor, AutogradFunctionality) that are instantiated per backend.
    pub const fn is_per_backend_functionality(self) -> bool {
        self.is_functionality_key() && FUNCTIONALITY_BLOCK[self as usize] != u8::MAX
    }

    /// True for the `StartOf<F>Backends` placeholders (backend offset 0).
    pub const fn is_start_of_backends(self) -> bool {
        match self.block_index() {
            Some(blk) => BLOCKS[blk][0] as u16 == self as u16,
            None => false,
        }
    }

    /// True for a runtime key of a per-backend block, e.g. `CPU` or `AutogradMeta`.
    pub const fn is_per_backend_runtime_key(self) -> bool {
        self.block_index().is_some() && !self.is_start_of_backends()
    }

    /// Whether the key owns a slot in the runtime table. `Undefined` counts
    /// (it owns slot 0); aliases, building blocks and StartOf* do not.
    pub const fn is_runtime(self) -> bool {
        !self.is_alias() && !self.is_per_backend_functionality() && !self.is_start_of_backends()
    }

    /// `toFunctionalityKey`: the key itself for functionality keys, the block's
    /// building block for per-backend keys, `Undefined` for aliases.
    pub const fn to_functionality_key(self) -> DispatchKey {
        if self.is_functionality_key() {
            return self;
        }
        match self.block_index() {
            Some(blk) => PER_BACKEND_FUNCTIONALITIES[blk],
            None => DispatchKey::Undefined,
        }
    }

    /// `toBackendComponent`: the offset inside a per-backend block, else `InvalidBit`.
    pub const fn to_backend_component(self) -> BackendComponent {
        match self.block_index() {
            Some(_) => {
                let off = (self as u16 - FIRST_BLOCK_VALUE) as usize % BLOCK_LEN;
                BackendComponent::ALL[off]
            }
            None => BackendComponent::InvalidBit,
        }
    }

    /// `parseDispatchKey`: exact names of functionality, alias and per-backend
    /// runtime keys, plus "Undefined". StartOf* and BC names are rejected.
    pub fn parse(s: &str) -> Result<Self, ParseDispatchKeyError> {
        // A name -> key map built once: the linear scan over every key's name was a visible
        // part of each Python registration (keys arrive as strings there).
        static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, DispatchKey>> =
            std::sync::OnceLock::new();
        let by_name = BY_NAME.get_or_init(|| {
            let mut m = std::collections::HashMap::new();
            for k in DispatchKey::ALL.iter().copied() {
                if !k.is_start_of_backends() {
                    m.entry(k.variant_name()).or_insert(k);
                }
            }
            m
        });
        by_name
            .get(s)
            .copied()
            .ok_or_else(|| ParseDispatchKeyError(s.to_owned()))
    }
}

/// `toRuntimePerBackendFunctionalityKey`: the instance of per-backend
/// functionality `functionality` for backend `b` (`StartOf*` for `InvalidBit`),
/// or `Undefined` when `functionality` is not per-backend.
pub const fn to_runtime_per_backend_functionality_key(
    functionality: DispatchKey,
    b: BackendComponent,
) -> DispatchKey {
    if functionality.is_per_backend_functionality() {
        BLOCKS[FUNCTIONALITY_BLOCK[functionality as usize] as usize][b as usize]
    } else {
        DispatchKey::Undefined
    }
}

/// Error of [`DispatchKey::parse`]; carries the rejected input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDispatchKeyError(pub String);

impl fmt::Display for ParseDispatchKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not parse dispatch key: {}", self.0)
    }
}

impl std::error::Error for ParseDispatchKeyError {}

impl FromStr for DispatchKey {
    type Err = ParseDispatchKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DispatchKey::parse(s)
    }
}

impl fmt::Display for DispatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for BackendComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `(name, key)` pairs of PyTorch 2.15's Python `DispatchKey` enum, in
/// the order 2.15 lists them, including the `EndOf<F>Backends` BC names (which share
/// the value of the block's Meta key). Front ends can bind exactly these.
pub fn python_enum_entries() -> &'static [(&'static str, DispatchKey)] {
    static ENTRIES: std::sync::OnceLock<Vec<(&'static str, DispatchKey)>> =
        std::sync::OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut out = Vec::new();
        let last_block = NUM_PER_BACKEND_FUNCTIONALITIES - 1;
        for &k in DispatchKey::ALL {
            if !k.is_exposed_to_python() {
                continue;
            }
            let end_name = match k.block_index() {
                Some(blk) if k.to_backend_component() as usize == NUM_BACKENDS => {
                    Some((blk, crate::table::BLOCK_END_NAMES[blk]))
                }
                _ => None,
            };
            // Observed 2.15 order: the BC name precedes the Meta key except in
            // the last block, where it follows it.
            match end_name {
                Some((blk, name)) if blk != last_block => {
                    out.push((name, k));
                    out.push((k.variant_name(), k));
                }
                Some((_, name)) => {
                    out.push((k.variant_name(), k));
                    out.push((name, k));
                }
                None => out.push((k.variant_name(), k)),
            }
        }
        out
    })
}
