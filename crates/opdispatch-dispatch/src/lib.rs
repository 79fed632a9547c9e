//! opdispatch's dispatcher core: operators, libraries, kernels, computed dispatch tables,
//! thread-local key sets and the boxed and typed calling conventions.
//!
//! This crate never links Python. Tensors plug in through [`TensorLike`]; front ends (the Python
//! package) plug in boxed kernels through [`BoxedKernel`] and errors through
//! [`DispatchError::External`].
//!
//! ```
//! use opdispatch_dispatch::{CppFunction, Dispatcher, IValue, Library, LibraryKind, DispatchKey};
//! let mut lib = Library::new(LibraryKind::Def, "doc_example", None, file!(), line!()).unwrap();
//! lib.def("answer() -> int", None).unwrap();
//! lib.impl_("answer", CppFunction::typed((|| 42) as fn() -> i64)
//!     .dispatch(DispatchKey::CompositeExplicitAutograd)).unwrap();
//! let op = Dispatcher::singleton().find_schema_or_throw("doc_example::answer", "").unwrap();
//! let mut stack = opdispatch_dispatch::stack![];
//! op.call_boxed(&mut stack).unwrap();
//! assert!(matches!(stack[..], [IValue::Int(42)]));
//! ```

pub mod dispatcher;
pub mod error;
pub mod explain;
mod fallbacks;
pub mod ivalue;
pub mod kernel;
mod kernel_lists;
mod key_order;
pub mod library;
pub mod operator;
mod rcu;
mod tag;
pub mod testing;
pub mod tls;
pub mod trace;
pub mod typed;

pub use dispatcher::{set_warning_handler, Dispatcher, RegistrationHandle};
pub use error::{DispatchError, Result};
pub use explain::{ArgumentKeys, Explanation};
pub use ivalue::{IValue, OpaqueValue, Stack, TensorLike, TensorRef};
pub use kernel::{BoxedKernel, KernelFunction};
pub use library::{parse_alias_analysis_kind, CppFunction, Library, LibraryKind};
pub use operator::{CallWalk, OperatorHandle, Provenance, SlotExplanation};
pub use tag::Tag;
pub use tls::{
    tls_is_dispatch_key_excluded, tls_is_dispatch_key_included, tls_local_dispatch_key_set,
    tls_set_dispatch_key_excluded, tls_set_dispatch_key_included, EnableHermeticPyObject,
    ExcludeDispatchKeyGuard, ForceDispatchKeyGuard, HermeticPyObjectTLS, IncludeDispatchKeyGuard,
    LocalDispatchKeySet,
};
pub use typed::{KernelArg, KernelOutput, KernelReturn, KernelSignature, TypedOperatorHandle};

pub use opdispatch_keys::{BackendComponent, DispatchKey, DispatchKeySet};
pub use opdispatch_schema::{FunctionSchema, OperatorName};

/// Defines a library block in the spirit of `TORCH_LIBRARY` / `TORCH_LIBRARY_IMPL`: builds the
/// [`Library`] (recording this file and line), runs the body and returns the library, which
/// keeps the registrations alive until dropped.
///
/// ```
/// use opdispatch_dispatch::{library, CppFunction, DispatchKey};
/// let lib = library!(DEF macro_doc, |m| {
///     m.def("twice(int x) -> int", None)?;
///     m.impl_("twice", CppFunction::typed((|x: i64| x * 2) as fn(i64) -> i64)
///         .dispatch(DispatchKey::CompositeExplicitAutograd))?;
///     Ok(())
/// }).unwrap();
/// # drop(lib);
/// ```
#[macro_export]
macro_rules! library {
    (DEF $ns:ident, |$m:ident| $body:block) => {
        $crate::library!(@make $crate::LibraryKind::Def, stringify!($ns), None, |$m| $body)
    };
    (FRAGMENT $ns:ident, |$m:ident| $body:block) => {
        $crate::library!(@make $crate::LibraryKind::Fragment, stringify!($ns), None, |$m| $body)
    };
    (IMPL $ns:tt, $key:ident, |$m:ident| $body:block) => {
        $crate::library!(@make $crate::LibraryKind::Impl, stringify!($ns), Some($crate::DispatchKey::$key), |$m| $body)
    };
    (@make $kind:expr, $ns:expr, $key:expr, |$m:ident| $body:block) => {
        (|| -> $crate::Result<$crate::Library> {
            let mut $m = $crate::Library::new($kind, $ns, $key, file!(), line!())?;
            {
                let $m = &mut $m;
                let r: $crate::Result<()> = (|| $body)();
                r?;
            }
            Ok($m)
        })()
    };
}
