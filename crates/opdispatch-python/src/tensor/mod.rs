//! Python `Tensor` and `UntypedStorage`, and PyObject preservation (spec 6.5, refcount-coupled).
//!
//! A Python object holds one counted handle to its impl. Outside hermetic mode, wrapping an impl
//! returns the object recorded in its `PyObjectSlot` (creating and attaching one if there is
//! none); the tensor crate's intrusive count then keeps that object alive exactly while Rust
//! holds further references (hooks below). In hermetic mode every wrap makes a fresh object and
//! the slot is neither read nor written.
//!
//! Submodules: `object` (the pyclasses), `preserve` (hooks, wrap/unwrap), `alloc` (tp_alloc
//! probing), `dtypes`, `args` (argument parsing), `data` (nested lists), `repr`.

mod alloc;
mod args;
mod data;
mod dtypes;
mod object;
mod preserve;
mod repr;

pub(crate) use alloc::*;
pub(crate) use args::*;
pub(crate) use data::*;
pub(crate) use dtypes::*;
pub(crate) use object::*;
pub(crate) use preserve::*;
use repr::*;
