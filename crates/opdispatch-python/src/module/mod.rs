//! `_dispatch_library` / `_DispatchModule` and the `_dispatch_*` introspection functions.
//!
//! Submodules: `library` (registration: def/impl/fallback), `kernel` (Python callable ->
//! kernel), `introspect` (the `_dispatch_*` helpers), `handle` (the operator handle and its
//! calls), `vectorcall` (its fast call entry), `fast_call` (typed calls for the plain aten
//! shapes).

pub(crate) mod fast_call;
mod handle;
mod introspect;
mod kernel;
mod library;
mod vectorcall;

pub(crate) use handle::*;
pub(crate) use introspect::*;
use kernel::*;
pub(crate) use library::*;
pub(crate) use vectorcall::*;
