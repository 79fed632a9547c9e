//! Calling conventions the kernel modules share: boxed kernels over [`Args`], handles to other
//! aten operators for decompositions, and the typed kernel signatures.

use std::sync::OnceLock;

use opdispatch_dispatch::{
    CppFunction, DispatchError, DispatchKeySet, Dispatcher, IValue, KernelArg, OperatorHandle,
    Result, Stack, TensorRef,
};
use opdispatch_tensor::{Scalar, Tensor};

use crate::args::Args;

pub(crate) type Fn1 = fn(Tensor) -> Result<Tensor>;
pub(crate) type Fn2 = fn(Tensor, Tensor) -> Result<Tensor>;
pub(crate) type Fn3 = fn(Tensor, Tensor, Tensor) -> Result<Tensor>;
pub(crate) type FnTs = fn(Tensor, Scalar) -> Result<Tensor>;
pub(crate) type FnTts = fn(Tensor, Tensor, Scalar) -> Result<Tensor>;
pub(crate) type FnTss = fn(Tensor, Scalar, Scalar) -> Result<Tensor>;
pub(crate) type FnTi = fn(Tensor, i64) -> Result<Tensor>;
pub(crate) type FnTii = fn(Tensor, i64, i64) -> Result<Tensor>;
pub(crate) type FnTl = fn(Tensor, Vec<i64>) -> Result<Tensor>;
pub(crate) type FnMaxDim = fn(Tensor, i64, bool) -> Result<(Tensor, Tensor)>;
pub(crate) type FnList = fn(Vec<TensorRef>, i64) -> Result<Tensor>;

/// Where a module's kernels go: `(operator name, kernel)` pairs.
pub(crate) type Kernels = Vec<(&'static str, CppFunction)>;

/// A boxed kernel that pops the operator's arguments into [`Args`] and pushes one return.
pub(crate) fn boxed(
    f: impl Fn(&mut Args) -> Result<IValue> + Send + Sync + 'static,
) -> CppFunction {
    CppFunction::boxed(
        move |op: &OperatorHandle, _ks: DispatchKeySet, stack: &mut Stack| {
            let mut args = Args::take(stack, op.num_arguments())?;
            let out = f(&mut args)?;
            stack.push(out);
            Ok(())
        },
    )
}

pub(crate) fn tv(t: Tensor) -> IValue {
    t.into_ivalue()
}

/// The handle of another aten operator, looked up once.
pub(crate) fn cached(
    cell: &'static OnceLock<OperatorHandle>,
    name: &str,
    overload: &str,
) -> Result<OperatorHandle> {
    if let Some(h) = cell.get() {
        return Ok(h.clone());
    }
    let h = Dispatcher::singleton().find_schema_or_throw(name, overload)?;
    Ok(cell.get_or_init(|| h).clone())
}

/// A handle to another aten operator, looked up once per call site.
macro_rules! aten_op {
    ($name:literal, $overload:literal) => {{
        static H: std::sync::OnceLock<opdispatch_dispatch::OperatorHandle> =
            std::sync::OnceLock::new();
        $crate::calling::cached(&H, concat!("aten::", $name), $overload)?
    }};
}
pub(crate) use aten_op;

/// Calls an aten operator boxed (a fresh call: TLS and the arguments' keys decide the kernel)
/// and returns its single result.
pub(crate) fn call1(op: OperatorHandle, mut stack: Stack) -> Result<IValue> {
    op.call_boxed(&mut stack)?;
    stack
        .pop()
        .ok_or_else(|| DispatchError::Internal("operator returned nothing".into()))
}

pub(crate) fn tensor_result(v: IValue) -> Result<Tensor> {
    Tensor::from_ivalue(v)
}
