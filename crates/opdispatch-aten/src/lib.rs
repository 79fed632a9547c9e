//! The `aten` operator library, registered through the dispatcher like any other library.
//!
//! [`register`] defines every operator in [`SCHEMAS`] (PyTorch's exact schemas, as
//! `torch._C._jit_get_all_schemas()` prints them) in a `TORCH_LIBRARY(aten, m)`-style DEF
//! block, then registers kernels in IMPL blocks:
//!
//! - **CPU** and **Meta**: most operators. The kernels call the plain `ops::*` functions, which
//!   compute output metadata first and only touch data on CPU, so one function serves both keys.
//! - **CompositeImplicitAutograd**: operators PyTorch decomposes (`matmul`, `reshape`,
//!   `contiguous`, `to.dtype`, `item`, `where.ScalarOther`, ...). Where the decomposition is
//!   into other aten operators it calls them through the dispatcher.
//! - **CompositeExplicitAutograd**: factories without tensor arguments (`empty`, `zeros`,
//!   `ones`, `full`, `arange`, `scalar_tensor`). They dispatch on Undefined (BackendSelect falls
//!   through) and pick the device from their `device` argument.
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

mod args;
mod kernels;

use std::sync::OnceLock;

use opdispatch_dispatch::{DispatchError, DispatchKey, Library, LibraryKind, Tag};
use opdispatch_schema::AliasAnalysisKind;

pub use args::{scalar_type_code, scalar_type_from_code};
pub use opdispatch_tensor::AtenError;

/// Each operator's tags as PyTorch 2.15 reports them (`OpOverload.tags`), by overload name, in
/// the order of [`SCHEMAS`].
const TAGS: &[(&str, &[Tag])] = &[
    ("empty.memory_format", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("zeros", &[Tag::Pt2CompliantTag]),
    ("ones", &[Tag::Pt2CompliantTag]),
    ("full", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("scalar_tensor", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("arange", &[Tag::Pt2CompliantTag]),
    ("arange.start", &[Tag::Pt2CompliantTag]),
    ("arange.start_step", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("empty_like", &[Tag::Pt2CompliantTag]),
    ("zeros_like", &[Tag::Pt2CompliantTag]),
    ("ones_like", &[Tag::Pt2CompliantTag]),
    ("full_like", &[Tag::Core, Tag::Pt2CompliantTag]),
    (
        "add.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "add.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "sub.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "sub.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    ("rsub.Tensor", &[Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("rsub.Scalar", &[Tag::Pointwise, Tag::Pt2CompliantTag]),
    (
        "mul.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "mul.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "div.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "div.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "pow.Tensor_Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "pow.Tensor_Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "maximum",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "minimum",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "add_.Tensor",
        &[Tag::Inplace, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "sub_.Tensor",
        &[Tag::Inplace, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "mul_.Tensor",
        &[Tag::Inplace, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "div_.Tensor",
        &[Tag::Inplace, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    ("neg", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("abs", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("exp", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("log", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("sin", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("cos", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("sqrt", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("relu", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    (
        "sigmoid",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    ("tanh", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    (
        "reciprocal",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "eq.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "eq.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "ne.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "ne.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "lt.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "lt.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "le.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "le.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "gt.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "gt.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "ge.Tensor",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "ge.Scalar",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "where.self",
        &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    ("where.ScalarOther", &[Tag::Pt2CompliantTag]),
    ("sum", &[Tag::Pt2CompliantTag, Tag::Reduction]),
    (
        "sum.dim_IntList",
        &[Tag::Core, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    ("mean", &[Tag::Core, Tag::Pt2CompliantTag, Tag::Reduction]),
    (
        "mean.dim",
        &[Tag::Core, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    ("max", &[Tag::Pt2CompliantTag, Tag::Reduction]),
    (
        "max.dim",
        &[Tag::Core, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    ("min", &[Tag::Pt2CompliantTag, Tag::Reduction]),
    (
        "min.dim",
        &[Tag::Core, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    ("argmax", &[Tag::Core, Tag::Pt2CompliantTag, Tag::Reduction]),
    ("argmin", &[Tag::Core, Tag::Pt2CompliantTag, Tag::Reduction]),
    ("matmul", &[Tag::Pt2CompliantTag]),
    ("mm", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("bmm", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("dot", &[Tag::Pt2CompliantTag]),
    ("mv", &[Tag::Pt2CompliantTag]),
    ("view", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("reshape", &[Tag::Pt2CompliantTag]),
    ("flatten.using_ints", &[Tag::Pt2CompliantTag]),
    ("transpose.int", &[Tag::Pt2CompliantTag]),
    ("t", &[Tag::Pt2CompliantTag]),
    ("permute", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("squeeze", &[Tag::Pt2CompliantTag]),
    ("squeeze.dim", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("unsqueeze", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("expand", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("select.int", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("slice.Tensor", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("narrow", &[Tag::Pt2CompliantTag]),
    ("alias", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("detach", &[Tag::Pt2CompliantTag]),
    ("contiguous", &[Tag::Pt2CompliantTag]),
    ("clone", &[Tag::Core, Tag::Pointwise, Tag::Pt2CompliantTag]),
    ("copy_", &[Tag::Inplace, Tag::Pt2CompliantTag]),
    ("fill_.Scalar", &[Tag::Inplace, Tag::Pt2CompliantTag]),
    ("zero_", &[Tag::Inplace, Tag::Pt2CompliantTag]),
    ("to.dtype", &[Tag::Pt2CompliantTag]),
    ("_to_copy", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("item", &[Tag::DataDependentOutput, Tag::Pt2CompliantTag]),
    (
        "_local_scalar_dense",
        &[Tag::Core, Tag::DataDependentOutput, Tag::Pt2CompliantTag],
    ),
    ("cat", &[Tag::Core, Tag::Pt2CompliantTag]),
    ("stack", &[Tag::Pt2CompliantTag]),
    ("rand", &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag]),
    (
        "randn",
        &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag],
    ),
    (
        "randint",
        &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag],
    ),
    (
        "randint.low",
        &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag],
    ),
    (
        "rand_like",
        &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag],
    ),
    (
        "randn_like",
        &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag],
    ),
    (
        "uniform_",
        &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag],
    ),
    (
        "normal_",
        &[Tag::NondeterministicSeeded, Tag::Pt2CompliantTag],
    ),
];

/// Every operator the aten library defines, exactly as PyTorch 2.15 prints its schema
/// (without the `aten::` namespace, which the DEF block adds).
pub const SCHEMAS: &[&str] = &[
    // Factories.
    "empty.memory_format(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "zeros(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "ones(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "full(SymInt[] size, Scalar fill_value, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "scalar_tensor(Scalar s, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "arange(Scalar end, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "arange.start(Scalar start, Scalar end, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "arange.start_step(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "empty_like(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "zeros_like(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "ones_like(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "full_like(Tensor self, Scalar fill_value, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    // Binary arithmetic.
    "add.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
    "add.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor",
    "sub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
    "sub.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor",
    "rsub.Tensor(Tensor self, Tensor other, *, Scalar alpha=1) -> Tensor",
    "rsub.Scalar(Tensor self, Scalar other, Scalar alpha=1) -> Tensor",
    "mul.Tensor(Tensor self, Tensor other) -> Tensor",
    "mul.Scalar(Tensor self, Scalar other) -> Tensor",
    "div.Tensor(Tensor self, Tensor other) -> Tensor",
    "div.Scalar(Tensor self, Scalar other) -> Tensor",
    "pow.Tensor_Tensor(Tensor self, Tensor exponent) -> Tensor",
    "pow.Tensor_Scalar(Tensor self, Scalar exponent) -> Tensor",
    "maximum(Tensor self, Tensor other) -> Tensor",
    "minimum(Tensor self, Tensor other) -> Tensor",
    "add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)",
    "sub_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)",
    "mul_.Tensor(Tensor(a!) self, Tensor other) -> Tensor(a!)",
    "div_.Tensor(Tensor(a!) self, Tensor other) -> Tensor(a!)",
    // Unary.
    "neg(Tensor self) -> Tensor",
    "abs(Tensor self) -> Tensor",
    "exp(Tensor self) -> Tensor",
    "log(Tensor self) -> Tensor",
    "sin(Tensor self) -> Tensor",
    "cos(Tensor self) -> Tensor",
    "sqrt(Tensor self) -> Tensor",
    "relu(Tensor self) -> Tensor",
    "sigmoid(Tensor self) -> Tensor",
    "tanh(Tensor self) -> Tensor",
    "reciprocal(Tensor self) -> Tensor",
    // Comparisons and selection.
    "eq.Tensor(Tensor self, Tensor other) -> Tensor",
    "eq.Scalar(Tensor self, Scalar other) -> Tensor",
    "ne.Tensor(Tensor self, Tensor other) -> Tensor",
    "ne.Scalar(Tensor self, Scalar other) -> Tensor",
    "lt.Tensor(Tensor self, Tensor other) -> Tensor",
    "lt.Scalar(Tensor self, Scalar other) -> Tensor",
    "le.Tensor(Tensor self, Tensor other) -> Tensor",
    "le.Scalar(Tensor self, Scalar other) -> Tensor",
    "gt.Tensor(Tensor self, Tensor other) -> Tensor",
    "gt.Scalar(Tensor self, Scalar other) -> Tensor",
    "ge.Tensor(Tensor self, Tensor other) -> Tensor",
    "ge.Scalar(Tensor self, Scalar other) -> Tensor",
    "where.self(Tensor condition, Tensor self, Tensor other) -> Tensor",
    "where.ScalarOther(Tensor condition, Tensor self, Scalar other) -> Tensor",
    // Reductions.
    "sum(Tensor self, *, ScalarType? dtype=None) -> Tensor",
    "sum.dim_IntList(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
    "mean(Tensor self, *, ScalarType? dtype=None) -> Tensor",
    "mean.dim(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None) -> Tensor",
    "max(Tensor self) -> Tensor",
    "max.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)",
    "min(Tensor self) -> Tensor",
    "min.dim(Tensor self, int dim, bool keepdim=False) -> (Tensor values, Tensor indices)",
    "argmax(Tensor self, int? dim=None, bool keepdim=False) -> Tensor",
    "argmin(Tensor self, int? dim=None, bool keepdim=False) -> Tensor",
    // Linear algebra.
    "matmul(Tensor self, Tensor other) -> Tensor",
    "mm(Tensor self, Tensor mat2) -> Tensor",
    "bmm(Tensor self, Tensor mat2) -> Tensor",
    "dot(Tensor self, Tensor tensor) -> Tensor",
    "mv(Tensor self, Tensor vec) -> Tensor",
    // Views and shape.
    "view(Tensor(a) self, SymInt[] size) -> Tensor(a)",
    "reshape(Tensor(a) self, SymInt[] shape) -> Tensor(a)",
    "flatten.using_ints(Tensor(a) self, int start_dim=0, int end_dim=-1) -> Tensor(a)",
    "transpose.int(Tensor(a) self, int dim0, int dim1) -> Tensor(a)",
    "t(Tensor(a) self) -> Tensor(a)",
    "permute(Tensor(a) self, int[] dims) -> Tensor(a)",
    "squeeze(Tensor(a) self) -> Tensor(a)",
    "squeeze.dim(Tensor(a) self, int dim) -> Tensor(a)",
    "unsqueeze(Tensor(a) self, int dim) -> Tensor(a)",
    "expand(Tensor(a) self, SymInt[] size, *, bool implicit=False) -> Tensor(a)",
    "select.int(Tensor(a) self, int dim, SymInt index) -> Tensor(a)",
    "slice.Tensor(Tensor(a) self, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1) -> Tensor(a)",
    "narrow(Tensor(a) self, int dim, SymInt start, SymInt length) -> Tensor(a)",
    "alias(Tensor(a) self) -> Tensor(a)",
    "detach(Tensor(a) self) -> Tensor(a)",
    // Copies, fills, conversions.
    "contiguous(Tensor(a) self, *, MemoryFormat memory_format=0) -> Tensor(a)",
    "clone(Tensor self, *, MemoryFormat? memory_format=None) -> Tensor",
    "copy_(Tensor(a!) self, Tensor src, bool non_blocking=False) -> Tensor(a!)",
    "fill_.Scalar(Tensor(a!) self, Scalar value) -> Tensor(a!)",
    "zero_(Tensor(a!) self) -> Tensor(a!)",
    "to.dtype(Tensor(a) self, ScalarType dtype, bool non_blocking=False, bool copy=False, MemoryFormat? memory_format=None) -> Tensor(a)",
    "_to_copy(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, bool non_blocking=False, MemoryFormat? memory_format=None) -> Tensor",
    "item(Tensor self) -> Scalar",
    "_local_scalar_dense(Tensor self) -> Scalar",
    // Joining.
    "cat(Tensor[] tensors, int dim=0) -> Tensor",
    "stack(Tensor[] tensors, int dim=0) -> Tensor",
    // Random (the CPU generator: ops/random.rs).
    "rand(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "randn(SymInt[] size, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "randint(SymInt high, SymInt[] size, *, ScalarType? dtype=4, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "randint.low(SymInt low, SymInt high, SymInt[] size, *, ScalarType? dtype=4, Layout? layout=None, Device? device=None, bool? pin_memory=None) -> Tensor",
    "rand_like(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "randn_like(Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, MemoryFormat? memory_format=None) -> Tensor",
    "uniform_(Tensor(a!) self, float from=0., float to=1., *, Generator? generator=None) -> Tensor(a!)",
    "normal_(Tensor(a!) self, float mean=0., float std=1., *, Generator? generator=None) -> Tensor(a!)",
];

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
    let mut libraries = vec![def];
    let impl_lib = |key: DispatchKey, line: u32| {
        Library::new(LibraryKind::Impl, "aten", Some(key), file!(), line)
    };
    let mut cpu = impl_lib(DispatchKey::CPU, line!())?;
    let mut meta = impl_lib(DispatchKey::Meta, line!())?;
    let mut cia = impl_lib(DispatchKey::CompositeImplicitAutograd, line!())?;
    let mut cea = impl_lib(DispatchKey::CompositeExplicitAutograd, line!())?;
    for (name, placement, f) in kernels::kernels() {
        match placement {
            kernels::Placement::Backend => {
                cpu.impl_(name, f.clone())?;
                meta.impl_(name, f)?;
            }
            kernels::Placement::Implicit => cia.impl_(name, f)?,
            kernels::Placement::Explicit => cea.impl_(name, f)?,
        }
    }
    libraries.extend([cpu, meta, cia, cea]);
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
