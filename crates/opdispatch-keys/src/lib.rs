//! Dispatch keys, backend components and dispatch key sets of the
//! `opdispatch` operator dispatcher (spec sections 1.1-1.8).
//!
//! Numbering matches PyTorch 2.15, so values and names round-trip with
//! `torch._C.DispatchKey`, and the runtime table layout (`NUM_RUNTIME_ENTRIES`
//! slots per operator) matches what 2.15 prints for computed tables.
//! All closed sets come from one macro table (`table.rs`).
//!
//! ```
//! use opdispatch_keys::{DispatchKey as K, DispatchKeySet};
//! let ks = DispatchKeySet::from_key(K::CPU) | DispatchKeySet::from_key(K::AutogradCUDA);
//! assert_eq!(ks.to_string(), "DispatchKeySet(CPU, CUDA, AutogradCPU, AutogradCUDA)");
//! assert_eq!(ks.highest_priority_type_id(), K::AutogradCUDA);
//! assert_eq!(ks.dispatch_table_index(), opdispatch_keys::dispatch_table_index_for_key(K::AutogradCUDA));
//! ```

#![forbid(unsafe_code)]

mod key;
mod keyset;
mod sets;
mod table;

pub use key::{
    python_enum_entries, to_runtime_per_backend_functionality_key, BackendComponent, DispatchKey,
    ParseDispatchKeyError, NUM_BACKENDS, NUM_FUNCTIONALITY_KEYS, NUM_RUNTIME_ENTRIES,
};
pub use keyset::{
    dispatch_table_index_for_key, runtime_key_for_index, runtime_keys_in_table_order,
    DispatchKeySet, DispatchKeySetIter, FULL_BACKEND_MASK,
};
pub use sets::*;
pub use table::NUM_PER_BACKEND_FUNCTIONALITIES;

#[cfg(test)]
mod tests;
