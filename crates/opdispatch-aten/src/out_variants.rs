//! The `out=` overloads of the functional operators (PyTorch 2.15's exact schemas and tags),
//! each paired with the functional overload it computes. One kernel serves them all, at
//! CompositeExplicitAutograd: run the functional overload through the dispatcher, check the
//! result fits `out` (torch's dtype rule; same shape, since this runtime cannot resize a tensor
//! in place), copy it in and return `out`. A mode sees only the `.out` call, as in torch.
//!
//! The list was generated from torch 2.15 (`torch._C._jit_get_schemas_for_operator`): every
//! overload with one `out` argument and one return whose other arguments match one of this
//! library's functional overloads exactly.

use opdispatch_dispatch::Tag;

/// (`.out` schema without the namespace, the functional overload it computes, its tags).
pub const OUT_VARIANTS: &[(&str, &str, &[Tag])] = &[
    (
        "_log_softmax.out(Tensor self, int dim, bool half_to_float, *, Tensor(a!) out) -> Tensor(a!)",
        "_log_softmax",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "_log_softmax_backward_data.out(Tensor grad_output, Tensor output, int dim, ScalarType input_dtype, *, Tensor(a!) out) -> Tensor(a!)",
        "_log_softmax_backward_data",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "_softmax.out(Tensor self, int dim, bool half_to_float, *, Tensor(a!) out) -> Tensor(a!)",
        "_softmax",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "_softmax_backward_data.out(Tensor grad_output, Tensor output, int dim, ScalarType input_dtype, *, Tensor(a!) grad_input) -> Tensor(a!)",
        "_softmax_backward_data",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "_unsafe_view.out(Tensor self, SymInt[] size, *, Tensor(a!) out) -> Tensor(a!)",
        "_unsafe_view",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "abs.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "abs",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "acos.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "acos",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "add.out(Tensor self, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> Tensor(a!)",
        "add.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "add.Scalar_out(Tensor self, Scalar other, Scalar alpha=1, *, Tensor(a!) out) -> Tensor(a!)",
        "add.Scalar",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "addmm.out(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1, Tensor(a!) out) -> Tensor(a!)",
        "addmm",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "all.out(Tensor self, int dim, bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "all.dim",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "all.all_out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "all",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "amax.out(Tensor self, int[1] dim=[], bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "amax",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "amin.out(Tensor self, int[1] dim=[], bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "amin",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "any.out(Tensor self, int dim, bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "any.dim",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "any.all_out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "any",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "argmax.out(Tensor self, int? dim=None, bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "argmax",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "argmin.out(Tensor self, int? dim=None, bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "argmin",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "asin.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "asin",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "atan.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "atan",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "atan2.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "atan2",
        &[Tag::Core, Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "bmm.out(Tensor self, Tensor mat2, *, Tensor(a!) out) -> Tensor(a!)",
        "bmm",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "cat.out(Tensor[] tensors, int dim=0, *, Tensor(a!) out) -> Tensor(a!)",
        "cat",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "ceil.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "ceil",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clamp.out(Tensor self, Scalar? min=None, Scalar? max=None, *, Tensor(a!) out) -> Tensor(a!)",
        "clamp",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clamp.Tensor_out(Tensor self, Tensor? min=None, Tensor? max=None, *, Tensor(a!) out) -> Tensor(a!)",
        "clamp.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clamp_max.out(Tensor self, Scalar max, *, Tensor(a!) out) -> Tensor(a!)",
        "clamp_max",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clamp_max.Tensor_out(Tensor self, Tensor max, *, Tensor(a!) out) -> Tensor(a!)",
        "clamp_max.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clamp_min.out(Tensor self, Scalar min, *, Tensor(a!) out) -> Tensor(a!)",
        "clamp_min",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clamp_min.Tensor_out(Tensor self, Tensor min, *, Tensor(a!) out) -> Tensor(a!)",
        "clamp_min.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clip.out(Tensor self, Scalar? min=None, Scalar? max=None, *, Tensor(a!) out) -> Tensor(a!)",
        "clip",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "clip.Tensor_out(Tensor self, Tensor? min=None, Tensor? max=None, *, Tensor(a!) out) -> Tensor(a!)",
        "clip.Tensor",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "clone.out(Tensor self, *, MemoryFormat? memory_format=None, Tensor(a!) out) -> Tensor(a!)",
        "clone",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "cos.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "cos",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "cosh.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "cosh",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "cumprod.out(Tensor self, int dim, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "cumprod",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "cumsum.out(Tensor self, int dim, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "cumsum",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "diag.out(Tensor self, int diagonal=0, *, Tensor(a!) out) -> Tensor(a!)",
        "diag",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "div.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "div.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "div.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "div.Scalar",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "dot.out(Tensor self, Tensor tensor, *, Tensor(a!) out) -> Tensor(a!)",
        "dot",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "eq.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "eq.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "eq.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "eq.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "erf.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "erf",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "exp.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "exp",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "exp2.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "exp2",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "expm1.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "expm1",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "flip.out(Tensor self, int[] dims, *, Tensor(a!) out) -> Tensor(a!)",
        "flip",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "floor.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "floor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "floor_divide.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "floor_divide",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "floor_divide.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "floor_divide.Scalar",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "fmod.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "fmod.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "fmod.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "fmod.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "frac.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "frac",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "gather.out(Tensor self, int dim, Tensor index, *, bool sparse_grad=False, Tensor(a!) out) -> Tensor(a!)",
        "gather",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "ge.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "ge.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "ge.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "ge.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "gt.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "gt.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "gt.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "gt.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "index_add.out(Tensor self, int dim, Tensor index, Tensor source, *, Scalar alpha=1, Tensor(a!) out) -> Tensor(a!)",
        "index_add",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "index_select.out(Tensor self, int dim, Tensor index, *, Tensor(a!) out) -> Tensor(a!)",
        "index_select",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "isinf.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "isinf",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "isnan.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "isnan",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "le.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "le.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "le.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "le.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "lerp.Scalar_out(Tensor self, Tensor end, Scalar weight, *, Tensor(a!) out) -> Tensor(a!)",
        "lerp.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "lerp.Tensor_out(Tensor self, Tensor end, Tensor weight, *, Tensor(a!) out) -> Tensor(a!)",
        "lerp.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "log.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "log",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "log10.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "log10",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "log1p.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "log1p",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "log2.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "log2",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "log_softmax.int_out(Tensor self, int dim, ScalarType? dtype=None, *, Tensor(a!) out) -> Tensor(a!)",
        "log_softmax.int",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "logical_and.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "logical_and",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "logical_not.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "logical_not",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "logical_or.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "logical_or",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "logical_xor.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "logical_xor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "logsumexp.out(Tensor self, int[1] dim, bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "logsumexp",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "lt.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "lt.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "lt.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "lt.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "masked_fill.Scalar_out(Tensor self, Tensor mask, Scalar value, *, Tensor(a!) out) -> Tensor(a!)",
        "masked_fill.Scalar",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "masked_fill.Tensor_out(Tensor self, Tensor mask, Tensor value, *, Tensor(a!) out) -> Tensor(a!)",
        "masked_fill.Tensor",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "matmul.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "matmul",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "max.unary_out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "max",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "maximum.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "maximum",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "mean.out(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "mean.dim",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "mean.dtype_out(Tensor self, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "mean",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "min.unary_out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "min",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "minimum.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "minimum",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "mm.out(Tensor self, Tensor mat2, *, Tensor(a!) out) -> Tensor(a!)",
        "mm",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "mul.out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "mul.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "mul.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "mul.Scalar",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "mv.out(Tensor self, Tensor vec, *, Tensor(a!) out) -> Tensor(a!)",
        "mv",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "nan_to_num.out(Tensor self, float? nan=None, float? posinf=None, float? neginf=None, *, Tensor(a!) out) -> Tensor(a!)",
        "nan_to_num",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "ne.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "ne.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "ne.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "ne.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "neg.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "neg",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "outer.out(Tensor self, Tensor vec2, *, Tensor(a!) out) -> Tensor(a!)",
        "outer",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "pow.Tensor_Tensor_out(Tensor self, Tensor exponent, *, Tensor(a!) out) -> Tensor(a!)",
        "pow.Tensor_Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "pow.Scalar_out(Scalar self, Tensor exponent, *, Tensor(a!) out) -> Tensor(a!)",
        "pow.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "pow.Tensor_Scalar_out(Tensor self, Scalar exponent, *, Tensor(a!) out) -> Tensor(a!)",
        "pow.Tensor_Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "prod.int_out(Tensor self, int dim, bool keepdim=False, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "prod.dim_int",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "prod.out(Tensor self, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "prod",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "reciprocal.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "reciprocal",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "relu.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "relu",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "remainder.Tensor_out(Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "remainder.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "remainder.Scalar_out(Tensor self, Scalar other, *, Tensor(a!) out) -> Tensor(a!)",
        "remainder.Scalar",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "roll.out(Tensor self, SymInt[1] shifts, int[1] dims=[], *, Tensor(a!) out) -> Tensor(a!)",
        "roll",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "round.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "round",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "rsqrt.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "rsqrt",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "rsub.Tensor_out(Tensor self, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> Tensor(a!)",
        "rsub.Tensor",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "rsub.Scalar_out(Tensor self, Scalar other, Scalar alpha=1, *, Tensor(a!) out) -> Tensor(a!)",
        "rsub.Scalar",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "scatter.src_out(Tensor self, int dim, Tensor index, Tensor src, *, Tensor(a!) out) -> Tensor(a!)",
        "scatter.src",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "scatter.value_out(Tensor self, int dim, Tensor index, Scalar value, *, Tensor(a!) out) -> Tensor(a!)",
        "scatter.value",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "scatter_add.out(Tensor self, int dim, Tensor index, Tensor src, *, Tensor(a!) out) -> Tensor(a!)",
        "scatter_add",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "sigmoid.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "sigmoid",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "sign.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "sign",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "sin.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "sin",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "sinh.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "sinh",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "softmax.int_out(Tensor self, int dim, ScalarType? dtype=None, *, Tensor(a!) out) -> Tensor(a!)",
        "softmax.int",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "sqrt.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "sqrt",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "square.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "square",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "stack.out(Tensor[] tensors, int dim=0, *, Tensor(a!) out) -> Tensor(a!)",
        "stack",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "std.correction_out(Tensor self, int[1]? dim=None, *, Scalar? correction=None, bool keepdim=False, Tensor(a!) out) -> Tensor(a!)",
        "std.correction",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "std.out(Tensor self, int[1]? dim, bool unbiased=True, bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "std.dim",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "sub.out(Tensor self, Tensor other, *, Scalar alpha=1, Tensor(a!) out) -> Tensor(a!)",
        "sub.Tensor",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "sub.Scalar_out(Tensor self, Scalar other, Scalar alpha=1, *, Tensor(a!) out) -> Tensor(a!)",
        "sub.Scalar",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "sum.IntList_out(Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "sum.dim_IntList",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "sum.out(Tensor self, *, ScalarType? dtype=None, Tensor(a!) out) -> Tensor(a!)",
        "sum",
        &[Tag::Generated, Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "tan.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "tan",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "tanh.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "tanh",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "tanh_backward.grad_input(Tensor grad_output, Tensor output, *, Tensor(a!) grad_input) -> Tensor(a!)",
        "tanh_backward",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "tril.out(Tensor self, SymInt diagonal=0, *, Tensor(a!) out) -> Tensor(a!)",
        "tril",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "triu.out(Tensor self, SymInt diagonal=0, *, Tensor(a!) out) -> Tensor(a!)",
        "triu",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
    (
        "trunc.out(Tensor self, *, Tensor(a!) out) -> Tensor(a!)",
        "trunc",
        &[Tag::Out, Tag::Pointwise, Tag::Pt2CompliantTag],
    ),
    (
        "var.correction_out(Tensor self, int[1]? dim=None, *, Scalar? correction=None, bool keepdim=False, Tensor(a!) out) -> Tensor(a!)",
        "var.correction",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "var.out(Tensor self, int[1]? dim, bool unbiased=True, bool keepdim=False, *, Tensor(a!) out) -> Tensor(a!)",
        "var.dim",
        &[Tag::Out, Tag::Pt2CompliantTag, Tag::Reduction],
    ),
    (
        "where.self_out(Tensor condition, Tensor self, Tensor other, *, Tensor(a!) out) -> Tensor(a!)",
        "where.self",
        &[Tag::Out, Tag::Pt2CompliantTag],
    ),
];

/// The CompositeExplicitAutograd kernels of [`OUT_VARIANTS`].
pub(crate) fn kernels() -> crate::calling::Kernels {
    OUT_VARIANTS
        .iter()
        .map(|&(schema, functional, _)| {
            let name = schema.split('(').next().expect("a schema has a name");
            (name, out_kernel(functional))
        })
        .collect()
}

/// `name.out(...)`: the functional overload `functional` on the other arguments, copied into
/// `out`, which is returned.
fn out_kernel(functional: &'static str) -> opdispatch_dispatch::CppFunction {
    use std::sync::{Arc, OnceLock};

    use opdispatch_dispatch::{
        DispatchError, DispatchKeySet, Dispatcher, IValue, KernelArg, OperatorHandle, Stack,
    };
    use opdispatch_tensor::{Tensor, TensorError};

    let cell: Arc<OnceLock<OperatorHandle>> = Arc::new(OnceLock::new());
    opdispatch_dispatch::CppFunction::boxed(
        move |op: &OperatorHandle, _ks: DispatchKeySet, stack: &mut Stack| {
            let schema = op
                .schema()
                .ok_or_else(|| DispatchError::Internal("out= operator without a schema".into()))?;
            let pos = schema
                .arguments
                .iter()
                .position(opdispatch_schema::Argument::is_out)
                .ok_or_else(|| DispatchError::Internal("out= operator without out".into()))?;
            let start = stack
                .len()
                .checked_sub(schema.arguments.len())
                .ok_or_else(|| DispatchError::Internal("stack too short".into()))?;
            let out_value = stack.remove(start + pos);
            let out = Tensor::from_ivalue(out_value.clone())?;
            let f = match cell.get() {
                Some(h) => h,
                None => {
                    let (base, overload) = functional.split_once('.').unwrap_or((functional, ""));
                    let h = Dispatcher::singleton()
                        .find_schema_or_throw(&format!("aten::{base}"), overload)?;
                    cell.get_or_init(|| h)
                }
            };
            f.call_boxed(stack)?;
            let r = Tensor::from_ivalue(
                stack
                    .pop()
                    .ok_or_else(|| DispatchError::Internal("operator returned nothing".into()))?,
            )?;
            if !opdispatch_tensor::dtype::can_cast(r.dtype(), out.dtype()) {
                return Err(TensorError::dtype(format!(
                    "result type {} can't be cast to the desired output type {}",
                    r.dtype().cpp_name(),
                    out.dtype().cpp_name()
                ))
                .into());
            }
            if r.sizes() != out.sizes() {
                // torch resizes `out` (warning when it had elements); tensors here keep their
                // geometry for life, so the caller must pass the right shape.
                return Err(TensorError::shape(format!(
                    "out= tensor has shape {:?} but the result has shape {:?}; opdispatch cannot resize an out= tensor in place, pass one of the result's shape",
                    out.sizes(),
                    r.sizes()
                ))
                .into());
            }
            let copy = crate::calling::aten_op!("copy_", "");
            let mut s: Stack = opdispatch_dispatch::stack![
                out.clone().into_ivalue(),
                r.into_ivalue(),
                IValue::Bool(false)
            ];
            copy.call_boxed(&mut s)?;
            stack.push(out_value);
            Ok(())
        },
    )
}
