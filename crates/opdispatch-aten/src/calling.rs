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

/// Registers the typed kernels every data backend implements, from functions of these names
/// in the invoking module (so CPU and Meta cannot drift apart in what they cover).
macro_rules! typed_backend_kernels {
    ($k:ident) => {{
        use opdispatch_dispatch::CppFunction;
        use opdispatch_tensor::{Scalar, Tensor};
        use $crate::calling::{Fn1, Fn2, Fn3, FnList, FnMaxDim, FnTs, FnTss, FnTts};
        let typed: [(&'static str, CppFunction); 33] = [
            ("tanh_backward", CppFunction::typed(tanh_backward as Fn2)),
            ("add.Tensor", CppFunction::typed(add_t as FnTts)),
            ("add.Scalar", CppFunction::typed(add_s as FnTss)),
            ("sub.Tensor", CppFunction::typed(sub_t as FnTts)),
            ("sub.Scalar", CppFunction::typed(sub_s as FnTss)),
            ("rsub.Tensor", CppFunction::typed(rsub_t as FnTts)),
            ("mul.Tensor", CppFunction::typed(mul_t as Fn2)),
            ("mul.Scalar", CppFunction::typed(mul_s as FnTs)),
            ("div.Tensor", CppFunction::typed(div_t as Fn2)),
            ("div.Scalar", CppFunction::typed(div_s as FnTs)),
            ("pow.Tensor_Tensor", CppFunction::typed(pow_tt as Fn2)),
            ("pow.Tensor_Scalar", CppFunction::typed(pow_ts as FnTs)),
            (
                "pow.Scalar",
                CppFunction::typed(
                    pow_st as fn(Scalar, Tensor) -> opdispatch_dispatch::Result<Tensor>,
                ),
            ),
            ("maximum", CppFunction::typed(maximum as Fn2)),
            ("minimum", CppFunction::typed(minimum as Fn2)),
            ("add_.Tensor", CppFunction::typed(add_inplace as FnTts)),
            ("sub_.Tensor", CppFunction::typed(sub_inplace as FnTts)),
            ("mul_.Tensor", CppFunction::typed(mul_inplace as Fn2)),
            ("div_.Tensor", CppFunction::typed(div_inplace as Fn2)),
            ("where.self", CppFunction::typed(where_self as Fn3)),
            ("max", CppFunction::typed(max_all as Fn1)),
            ("max.dim", CppFunction::typed(max_dim as FnMaxDim)),
            ("min", CppFunction::typed(min_all as Fn1)),
            ("min.dim", CppFunction::typed(min_dim as FnMaxDim)),
            ("mm", CppFunction::typed(mm as Fn2)),
            ("bmm", CppFunction::typed(bmm as Fn2)),
            ("dot", CppFunction::typed(dot as Fn2)),
            ("mv", CppFunction::typed(mv as Fn2)),
            (
                "copy_",
                CppFunction::typed(
                    copy_ as fn(Tensor, Tensor, bool) -> opdispatch_dispatch::Result<Tensor>,
                ),
            ),
            ("fill_.Scalar", CppFunction::typed(fill_scalar as FnTs)),
            ("fill_.Tensor", CppFunction::typed(fill_tensor as Fn2)),
            ("zero_", CppFunction::typed(zero_ as Fn1)),
            (
                "_local_scalar_dense",
                CppFunction::typed(
                    local_scalar_dense as fn(Tensor) -> opdispatch_dispatch::Result<Scalar>,
                ),
            ),
        ];
        $k.extend(typed);
        for (name, f) in [
            ("neg", neg as Fn1),
            ("abs", abs),
            ("exp", exp),
            ("log", log),
            ("sin", sin),
            ("cos", cos),
            ("sqrt", sqrt),
            ("relu", relu),
            ("sigmoid", sigmoid),
            ("tanh", tanh),
            ("reciprocal", reciprocal),
        ] {
            $k.push((name, CppFunction::typed(f)));
        }
        for (name, f) in [
            ("eq.Tensor", eq_t as Fn2),
            ("ne.Tensor", ne_t),
            ("lt.Tensor", lt_t),
            ("le.Tensor", le_t),
            ("gt.Tensor", gt_t),
            ("ge.Tensor", ge_t),
        ] {
            $k.push((name, CppFunction::typed(f)));
        }
        for (name, f) in [
            ("eq.Scalar", eq_s as FnTs),
            ("ne.Scalar", ne_s),
            ("lt.Scalar", lt_s),
            ("le.Scalar", le_s),
            ("gt.Scalar", gt_s),
            ("ge.Scalar", ge_s),
        ] {
            $k.push((name, CppFunction::typed(f)));
        }
        for (name, f) in [("cat", cat as FnList), ("stack", stack)] {
            $k.push((name, CppFunction::typed(f)));
        }
    }};
}
pub(crate) use typed_backend_kernels;
