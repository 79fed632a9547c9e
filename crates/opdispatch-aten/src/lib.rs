//! The `aten` operator library, registered through the dispatcher like any other library.
//!
//! [`register`] defines every operator in [`SCHEMAS`] (PyTorch's exact schemas and tags, as
//! PyTorch 2.15 reports them) in a `TORCH_LIBRARY(aten, m)`-style DEF block, then fills one
//! IMPL block per dispatch key, each from its own module:
//!
//! ```text
//! schemas.rs            DEF: every schema and its tags
//! cpu/                  CPU: the runtime's CPU loops (opdispatch_tensor::ops)
//! meta/                 Meta: the meta functions (ops::meta) plus a Meta allocation
//! generic.rs            views and *_like factories: no data touched, in CPU's and Meta's lists
//! composite/implicit.rs CompositeImplicitAutograd: decompositions through the dispatcher
//! composite/explicit.rs CompositeExplicitAutograd: factories, random factories, lift_fresh
//! out_variants.rs       the `out=` overloads (schemas, tags) and their one CompositeExplicitAutograd kernel
//! cuda/                 CUDA: the runtime's CUDA loops (opdispatch_tensor::cuda), the same meta functions
//! ```
//!
//! No kernel branches on the device: a call reaches the backend's kernel through the
//! dispatcher, and the shape, dtype and argument checks both backends need live once in the
//! runtime's meta functions (PyTorch's structured-kernel split). Kernels that build on other
//! operators (`_to_copy` on `copy_`, `rand` on `uniform_`) call them through the dispatcher,
//! so the destination's backend does the work.
//!
//! Kernels whose arguments all have a Rust [`KernelArg`](opdispatch_dispatch::KernelArg)
//! (`Tensor`, `Scalar`, `int`, `bool`, `int[]`, `Tensor[]`) are typed, so Rust callers can use
//! `op.typed::<fn(Tensor, Tensor, Scalar) -> Result<Tensor>>()` and skip boxing; the others
//! (optional arguments, ScalarType, Device, Layout, MemoryFormat) are boxed closures.
//!
//! Errors raised by the tensor runtime travel as
//! `DispatchError::External(Arc<AtenError>)`, so front ends can downcast to [`AtenError`] and
//! map [`TensorError`] variants to their own exception classes.
//!
//! ```
//! use opdispatch_dispatch::{Dispatcher, IValue, KernelArg, Result};
//! use opdispatch_tensor::{Scalar, Tensor};
//! use opdispatch_aten as aten;
//!
//! aten::register();
//! let add = Dispatcher::singleton().find_schema_or_throw("aten::add", "Tensor").unwrap();
//! let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
//! // Typed: no boxing on the way to the CPU kernel.
//! let typed = add.typed::<fn(Tensor, Tensor, Scalar) -> Result<Tensor>>().unwrap();
//! let r = typed.call(a.clone(), a.clone(), Scalar::Int(2)).unwrap();
//! assert_eq!(r.to_vec::<f32>().unwrap(), vec![3.0, 6.0]);
//! // Boxed: every argument on the stack, defaults included.
//! let mut stack = opdispatch_dispatch::stack![a.clone().into_ivalue(), a.into_ivalue(), IValue::Int(1)];
//! add.call_boxed(&mut stack).unwrap();
//! let r = Tensor::from_ivalue(stack.pop().unwrap()).unwrap();
//! assert_eq!(r.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
//! ```

#![forbid(unsafe_code)]

mod args;
mod calling;
mod composite;
mod cpu;
mod cuda;
mod generic;
mod meta;
mod more;
mod out_variants;
mod schemas;

use std::sync::OnceLock;

use opdispatch_dispatch::{DispatchError, DispatchKey, Library, LibraryKind};
use opdispatch_schema::AliasAnalysisKind;

pub use args::{scalar_type_code, scalar_type_from_code};
pub use opdispatch_tensor::AtenError;
pub use out_variants::OUT_VARIANTS;
pub use schemas::SCHEMAS;
use schemas::TAGS;

/// The registered aten library: the DEF block and the IMPL blocks, alive for the process.
pub struct AtenLibrary {
    libraries: Vec<Library>,
    op_names: Vec<String>,
}

impl std::fmt::Debug for AtenLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtenLibrary")
            .field("libraries", &self.libraries)
            .field("ops", &self.op_names.len())
            .finish()
    }
}

impl AtenLibrary {
    /// Every operator defined, as "aten::name.overload", in [`SCHEMAS`] order.
    pub fn op_names(&self) -> &[String] {
        &self.op_names
    }
    /// The library blocks (DEF first, then the IMPL blocks).
    pub fn libraries(&self) -> &[Library] {
        &self.libraries
    }
}

static ATEN: OnceLock<Result<AtenLibrary, DispatchError>> = OnceLock::new();

/// Registers the aten library once per process and returns it (later calls return the same
/// library). Fails if the registration failed, for example because something else already
/// defined the `aten` namespace.
pub fn try_register() -> Result<&'static AtenLibrary, DispatchError> {
    ATEN.get_or_init(build).as_ref().map_err(Clone::clone)
}

/// [`try_register`], panicking if registration failed (a programming error: another
/// `TORCH_LIBRARY(aten, ...)` block).
pub fn register() -> &'static AtenLibrary {
    match try_register() {
        Ok(lib) => lib,
        Err(e) => panic!("registering the aten library failed: {e}"),
    }
}

fn build() -> Result<AtenLibrary, DispatchError> {
    let mut def = Library::new(LibraryKind::Def, "aten", None, file!(), line!())?;
    let mut op_names = Vec::with_capacity(SCHEMAS.len());
    for (s, (tag_name, tags)) in SCHEMAS.iter().zip(TAGS) {
        debug_assert_eq!(s.split('(').next(), Some(*tag_name));
        let name = def.def_with_tags(s, Some(AliasAnalysisKind::FromSchema), tags)?;
        op_names.push(name.to_string());
    }
    for (s, _, tags) in out_variants::OUT_VARIANTS {
        let name = def.def_with_tags(s, Some(AliasAnalysisKind::FromSchema), tags)?;
        op_names.push(name.to_string());
    }
    let mut libraries = vec![def];
    // One IMPL block per key, each filled by its own module.
    let blocks = [
        (DispatchKey::CPU, cpu::kernels(), cpu::REGISTERED_AT),
        (DispatchKey::CUDA, cuda::kernels(), cuda::REGISTERED_AT),
        (DispatchKey::Meta, meta::kernels(), meta::REGISTERED_AT),
        (
            DispatchKey::CompositeImplicitAutograd,
            composite::implicit::kernels(),
            composite::implicit::REGISTERED_AT,
        ),
        (
            DispatchKey::CompositeExplicitAutograd,
            composite::explicit::kernels()
                .into_iter()
                .chain(out_variants::kernels())
                .collect(),
            composite::explicit::REGISTERED_AT,
        ),
    ];
    for (key, kernels, (file, line)) in blocks {
        let kernels = more::with_more(key, kernels);
        // A second kernel for one operator in a block would silently override the first.
        let mut seen = std::collections::HashSet::new();
        if let Some((name, _)) = kernels.iter().find(|(n, _)| !seen.insert(*n)) {
            return Err(DispatchError::Internal(format!(
                "aten: two {key:?} kernels for {name}"
            )));
        }
        let mut lib = Library::new(LibraryKind::Impl, "aten", Some(key), file, line)?;
        for (name, f) in kernels {
            lib.impl_(name, f)?;
        }
        libraries.push(lib);
    }
    Ok(AtenLibrary {
        libraries,
        op_names,
    })
}

#[cfg(test)]
mod tag_tests {
    use super::{SCHEMAS, TAGS};
    use opdispatch_dispatch::{Dispatcher, Tag};

    #[test]
    fn every_schema_has_its_tags_in_order() {
        assert_eq!(SCHEMAS.len(), TAGS.len());
        for (s, (name, _)) in SCHEMAS.iter().zip(TAGS) {
            assert_eq!(s.split('(').next(), Some(*name));
        }
    }

    #[test]
    fn registered_operators_carry_pytorchs_tags() {
        super::register();
        let add = Dispatcher::singleton()
            .find_schema_or_throw("aten::add", "Tensor")
            .unwrap();
        assert_eq!(
            add.tags(),
            [Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]
        );
    }
}
