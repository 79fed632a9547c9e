//! CUDA C source for the device kernels, compiled at run time with NVRTC (see
//! [`crate::nvrtc`]), one source per (operator, element types): shipping PTX would tie the
//! wheel to one set of GPU architectures and the toolkit's compiler.
//!
//! Pointwise operators get two entry points: `<name>_contig` over contiguous operands, and
//! `<name>_strided` over any strides with broadcasting, whose geometry ([`Geometry`]: sizes,
//! per-operand strides and offsets, up to [`MAX_DIMS`] dimensions) is passed by value. Both
//! use a grid-stride loop, so any launch size covers any element count. Reductions fold the
//! last axis of an `[outer, r]` contiguous input, one block of [`REDUCE_THREADS`] threads per
//! output element.
//!
//! Names are `od_<op>_<type tags>_<variant>` with the tags of [`Ty::tag`]; the host emulator
//! (tests/cuda_emulator) reads the operator and types back from them.
//! bfloat16 is stored as its 16 bits and computes in `float`, as PyTorch's `opmath` does.

/// The most dimensions a strided kernel indexes.
pub const MAX_DIMS: usize = 8;
/// Threads per block of the reduction kernels (their shared arrays are sized for it).
pub const REDUCE_THREADS: u32 = 256;

/// Element types the kernels are generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ty {
    Bool,
    U8,
    I8,
    I16,
    I32,
    I64,
    BF16,
    F32,
    F64,
}

impl Ty {
    pub const ALL: [Ty; 9] = [
        Ty::Bool,
        Ty::U8,
        Ty::I8,
        Ty::I16,
        Ty::I32,
        Ty::I64,
        Ty::BF16,
        Ty::F32,
        Ty::F64,
    ];

    /// The short name used in kernel names.
    pub fn tag(self) -> &'static str {
        match self {
            Ty::Bool => "b8",
            Ty::U8 => "u8",
            Ty::I8 => "i8",
            Ty::I16 => "i16",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
            Ty::BF16 => "bf16",
            Ty::F32 => "f32",
            Ty::F64 => "f64",
        }
    }

    /// The C type elements are stored as.
    pub fn storage(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::U8 => "unsigned char",
            Ty::I8 => "signed char",
            Ty::I16 => "short",
            Ty::I32 => "int",
            Ty::I64 => "long long",
            Ty::BF16 => "unsigned short",
            Ty::F32 => "float",
            Ty::F64 => "double",
        }
    }

    /// The C type values of this type compute in.
    pub fn compute(self) -> &'static str {
        match self {
            Ty::BF16 => "float",
            t => t.storage(),
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Ty::BF16 | Ty::F32 | Ty::F64)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Ty::Bool | Ty::U8 | Ty::I8 => 1,
            Ty::I16 | Ty::BF16 => 2,
            Ty::I32 | Ty::F32 => 4,
            Ty::I64 | Ty::F64 => 8,
        }
    }

    /// The type whose tag is `tag`.
    pub fn from_tag(tag: &str) -> Option<Ty> {
        Ty::ALL.into_iter().find(|t| t.tag() == tag)
    }
}

/// Reads element `e` (an lvalue of type `t`) as computation type `c`.
fn load(t: Ty, c: &str, e: &str) -> String {
    match t {
        Ty::BF16 => format!("({c})od_bf16_to_f({e})"),
        _ => format!("({c})({e})"),
    }
}

/// Converts expression `e` to storage type `t`.
fn store(t: Ty, e: &str) -> String {
    match t {
        Ty::BF16 => format!("od_f_to_bf16((float)({e}))"),
        Ty::Bool => format!("(bool)({e})"),
        _ => format!("({})({e})", t.storage()),
    }
}

/// A binary operator, written over `x`, `y` (converted to the computation type) and `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Binary {
    pub const ALL: [Binary; 13] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Maximum,
        Binary::Minimum,
        Binary::Pow,
        Binary::Eq,
        Binary::Ne,
        Binary::Lt,
        Binary::Le,
        Binary::Gt,
        Binary::Ge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Maximum => "maximum",
            Binary::Minimum => "minimum",
            Binary::Pow => "pow",
            Binary::Eq => "eq",
            Binary::Ne => "ne",
            Binary::Lt => "lt",
            Binary::Le => "le",
            Binary::Gt => "gt",
            Binary::Ge => "ge",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            Binary::Eq | Binary::Ne | Binary::Lt | Binary::Le | Binary::Gt | Binary::Ge
        )
    }

    /// The expression in the computation type `c`; `float` says whether `c` is floating.
    fn expr(self, c: &str, float: bool) -> String {
        match self {
            Binary::Add => format!("x + ({c})alpha * y"),
            Binary::Sub => format!("x - ({c})alpha * y"),
            Binary::Mul => "x * y".into(),
            // Integer division never reaches here: true division computes in a float type.
            Binary::Div => "x / y".into(),
            // NaN from either side wins, as torch.maximum/minimum.
            Binary::Maximum if float => "(x != x || y != y) ? (x + y) : (x > y ? x : y)".into(),
            Binary::Minimum if float => "(x != x || y != y) ? (x + y) : (x < y ? x : y)".into(),
            Binary::Maximum => "x > y ? x : y".into(),
            Binary::Minimum => "x < y ? x : y".into(),
            Binary::Pow if float => "pow(x, y)".into(),
            Binary::Pow => "od_ipow(x, y)".into(),
            Binary::Eq => "x == y".into(),
            Binary::Ne => "x != y".into(),
            Binary::Lt => "x < y".into(),
            Binary::Le => "x <= y".into(),
            Binary::Gt => "x > y".into(),
            Binary::Ge => "x >= y".into(),
        }
    }
}

/// A unary operator over `x` in the computation type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unary {
    Neg,
    Abs,
    Exp,
    Log,
    Sin,
    Cos,
    Sqrt,
    Relu,
    Sigmoid,
    Tanh,
    Reciprocal,
    /// A conversion (`copy_` / `to` between dtypes, and strided copies).
    Cast,
}

impl Unary {
    pub const ALL: [Unary; 12] = [
        Unary::Neg,
        Unary::Abs,
        Unary::Exp,
        Unary::Log,
        Unary::Sin,
        Unary::Cos,
        Unary::Sqrt,
        Unary::Relu,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Reciprocal,
        Unary::Cast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Sqrt => "sqrt",
            Unary::Relu => "relu",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Reciprocal => "reciprocal",
            Unary::Cast => "cast",
        }
    }

    /// Whether the operator only exists for floating computation types.
    pub fn needs_float(self) -> bool {
        matches!(
            self,
            Unary::Exp
                | Unary::Log
                | Unary::Sin
                | Unary::Cos
                | Unary::Sqrt
                | Unary::Sigmoid
                | Unary::Tanh
                | Unary::Reciprocal
        )
    }

    fn expr(self, c: &str, float: bool) -> String {
        match self {
            Unary::Neg => "-x".into(),
            Unary::Abs if float => "fabs(x)".into(),
            Unary::Abs => format!("x < ({c})0 ? ({c})-x : x"),
            Unary::Exp => "exp(x)".into(),
            Unary::Log => "log(x)".into(),
            Unary::Sin => "sin(x)".into(),
            Unary::Cos => "cos(x)".into(),
            Unary::Sqrt => "sqrt(x)".into(),
            // NaN stays NaN (torch's clamp_min).
            Unary::Relu => format!("(x != x || x > ({c})0) ? x : ({c})0"),
            Unary::Sigmoid => format!("({c})1 / (({c})1 + exp(-x))"),
            Unary::Tanh => "tanh(x)".into(),
            Unary::Reciprocal => format!("({c})1 / x"),
            Unary::Cast => "x".into(),
        }
    }
}

/// A reduction over the last axis of an `[outer, r]` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// The sum times `scale` (1 for `sum`, `1/r` for `mean`).
    Sum,
    /// The largest value (NaN wins) and the first index holding it.
    Max,
    /// The smallest value (NaN wins) and the first index holding it.
    Min,
}

impl Reduce {
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Max => "max",
            Reduce::Min => "min",
        }
    }
}

/// The geometry a strided kernel receives by value (`od_geometry` in the sources): `N`
/// operands (output first).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry<const N: usize> {
    pub ndim: i64,
    pub sizes: [i64; MAX_DIMS],
    pub strides: [[i64; MAX_DIMS]; N],
    pub offsets: [i64; N],
}

const PRELUDE: &str = r#"
template <int N> struct od_geometry {
    long long ndim;
    long long sizes[8];
    long long strides[N][8];
    long long offsets[N];
};
template <typename T> __device__ T od_ipow(T base, T exp) {
    T r = 1;
    while (exp > 0) { if (exp & 1) r *= base; base *= base; exp >>= 1; }
    return r;
}
template <int N> __device__ void od_offsets(const od_geometry<N>& g, long long i, long long* off) {
    for (int k = 0; k < N; ++k) off[k] = g.offsets[k];
    for (long long d = g.ndim - 1; d >= 0; --d) {
        long long idx = i % g.sizes[d];
        i /= g.sizes[d];
        for (int k = 0; k < N; ++k) off[k] += idx * g.strides[k][d];
    }
}
__device__ float od_bf16_to_f(unsigned short b) { return __uint_as_float(((unsigned int)b) << 16); }
__device__ unsigned short od_f_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
#define OD_LOOP(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)
"#;

/// The kernel name of `op` over inputs of type `a`, `b` computing in `c` into `out` (without
/// the `_contig` / `_strided` suffix).
pub fn binary_name(op: Binary, a: Ty, b: Ty, c: Ty, out: Ty) -> String {
    format!(
        "od_{}_{}_{}_{}_{}",
        op.name(),
        a.tag(),
        b.tag(),
        c.tag(),
        out.tag()
    )
}

/// Source of the binary kernels `<name>_contig(out, a, b, n, alpha)` and
/// `<name>_strided(out, a, b, n, alpha, geometry<3>)` (operands 0: out, 1: a, 2: b).
pub fn binary_source(op: Binary, a: Ty, b: Ty, c: Ty, out: Ty) -> String {
    let name = binary_name(op, a, b, c, out);
    let cc = c.compute();
    let e = store(out, &op.expr(cc, c.is_float()));
    let (o, sa, sb) = (out.storage(), a.storage(), b.storage());
    let (xa, yb) = (load(a, cc, "pa[i]"), load(b, cc, "pb[i]"));
    let (xs, ys) = (load(a, cc, "pa[off[1]]"), load(b, cc, "pb[off[2]]"));
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {name}_contig({o}* o, const {sa}* pa, const {sb}* pb, long long n, double alpha) {{
    OD_LOOP(i, n) {{ {cc} x = {xa}; {cc} y = {yb}; o[i] = {e}; }}
}}
extern "C" __global__ void {name}_strided({o}* o, const {sa}* pa, const {sb}* pb, long long n, double alpha, od_geometry<3> g) {{
    OD_LOOP(i, n) {{
        long long off[3];
        od_offsets<3>(g, i, off);
        {cc} x = {xs}; {cc} y = {ys};
        o[off[0]] = {e};
    }}
}}
"#
    )
}

/// The kernel name of unary `op` from `a` computing in `c` into `out`.
pub fn unary_name(op: Unary, a: Ty, c: Ty, out: Ty) -> String {
    format!("od_{}_{}_{}_{}", op.name(), a.tag(), c.tag(), out.tag())
}

/// Source of `<name>_contig(out, a, n)` and `<name>_strided(out, a, n, geometry<2>)`.
pub fn unary_source(op: Unary, a: Ty, c: Ty, out: Ty) -> String {
    let name = unary_name(op, a, c, out);
    let cc = c.compute();
    let e = store(out, &op.expr(cc, c.is_float()));
    let (o, sa) = (out.storage(), a.storage());
    let (xa, xs) = (load(a, cc, "pa[i]"), load(a, cc, "pa[off[1]]"));
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {name}_contig({o}* o, const {sa}* pa, long long n) {{
    OD_LOOP(i, n) {{ {cc} x = {xa}; o[i] = {e}; }}
}}
extern "C" __global__ void {name}_strided({o}* o, const {sa}* pa, long long n, od_geometry<2> g) {{
    OD_LOOP(i, n) {{
        long long off[2];
        od_offsets<2>(g, i, off);
        {cc} x = {xs};
        o[off[0]] = {e};
    }}
}}
"#
    )
}

/// Kernel names of the fill and select kernels of element type `t`: `od_fill_<t>_contig`,
/// `od_fill_<t>_strided` and `od_where_<t>_strided`.
pub fn fill_name(t: Ty) -> String {
    format!("od_fill_{}", t.tag())
}
pub fn where_name(t: Ty) -> String {
    format!("od_where_{}", t.tag())
}

/// Source of `od_fill_<t>_contig(out, n, value)`, `od_fill_<t>_strided(out, n, value,
/// geometry<1>)` (the value in the storage type: bfloat16 as its bits) and
/// `od_where_<t>_strided(out, cond, a, b, n, geometry<4>)`.
pub fn fill_and_where_source(t: Ty) -> String {
    let (f, w, s) = (fill_name(t), where_name(t), t.storage());
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {f}_contig({s}* o, long long n, {s} v) {{
    OD_LOOP(i, n) o[i] = v;
}}
extern "C" __global__ void {f}_strided({s}* o, long long n, {s} v, od_geometry<1> g) {{
    OD_LOOP(i, n) {{ long long off[1]; od_offsets<1>(g, i, off); o[off[0]] = v; }}
}}
extern "C" __global__ void {w}_strided({s}* o, const bool* c, const {s}* pa, const {s}* pb, long long n, od_geometry<4> g) {{
    OD_LOOP(i, n) {{
        long long off[4];
        od_offsets<4>(g, i, off);
        o[off[0]] = c[off[1]] ? pa[off[2]] : pb[off[3]];
    }}
}}
"#
    )
}

/// The kernel name of reduction `op` from `a` accumulating in `acc` into `out`.
pub fn reduce_name(op: Reduce, a: Ty, acc: Ty, out: Ty) -> String {
    format!(
        "od_reduce_{}_{}_{}_{}",
        op.name(),
        a.tag(),
        acc.tag(),
        out.tag()
    )
}

/// Source of `<name>(out, indices, in, outer, r, scale)`: block `b` folds row `b` (and every
/// `gridDim.x`-th after it) of the contiguous `[outer, r]` input. `out` (values) and
/// `indices` (int64, Max/Min only) may each be null.
pub fn reduce_source(op: Reduce, a: Ty, acc: Ty, out: Ty) -> String {
    let name = reduce_name(op, a, acc, out);
    let (ca, sa, so) = (acc.compute(), a.storage(), out.storage());
    let x = load(a, ca, "row[j]");
    let result = store(out, "v");
    let body = match op {
        Reduce::Sum => format!(
            r#"
        {ca} v = ({ca})0;
        for (long long j = threadIdx.x; j < r; j += blockDim.x) v += {x};
        sv[threadIdx.x] = v;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {{
            if (threadIdx.x < s) sv[threadIdx.x] += sv[threadIdx.x + s];
            __syncthreads();
        }}
        if (threadIdx.x == 0 && o) {{ {ca} v = ({ca})(sv[0] * scale); o[row_i] = {result}; }}
        __syncthreads();"#
        ),
        Reduce::Max | Reduce::Min => format!(
            r#"
        {ca} v = ({ca})0; long long vi = -1;
        for (long long j = threadIdx.x; j < r; j += blockDim.x) {{
            {ca} y = {x};
            if (od_take(v, vi, y, j)) {{ v = y; vi = j; }}
        }}
        sv[threadIdx.x] = v; si[threadIdx.x] = vi;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {{
            if (threadIdx.x < s && od_take(sv[threadIdx.x], si[threadIdx.x], sv[threadIdx.x + s], si[threadIdx.x + s])) {{
                sv[threadIdx.x] = sv[threadIdx.x + s]; si[threadIdx.x] = si[threadIdx.x + s];
            }}
            __syncthreads();
        }}
        if (threadIdx.x == 0) {{ {ca} v = sv[0]; if (o) o[row_i] = {result}; if (idx) idx[row_i] = si[0]; }}
        __syncthreads();"#
        ),
    };
    let take = match op {
        Reduce::Sum => String::new(),
        Reduce::Max | Reduce::Min => {
            let better = if op == Reduce::Max { ">" } else { "<" };
            format!(
                r#"
// Whether candidate (y, j) replaces the best so far (v, vi): an empty best (vi < 0), a NaN
// (the first one wins), a strictly better value, or an equal one at a lower index.
__device__ bool od_take({ca} v, long long vi, {ca} y, long long j) {{
    if (j < 0) return false;
    if (vi < 0) return true;
    bool vn = v != v, yn = y != y;
    if (vn) return yn && j < vi;
    if (yn) return true;
    return y {better} v || (y == v && j < vi);
}}"#
            )
        }
    };
    format!(
        r#"{PRELUDE}{take}
extern "C" __global__ void {name}({so}* o, long long* idx, const {sa}* in, long long outer, long long r, double scale) {{
    __shared__ {ca} sv[{REDUCE_THREADS}];
    __shared__ long long si[{REDUCE_THREADS}];
    (void)si;
    for (long long row_i = blockIdx.x; row_i < outer; row_i += gridDim.x) {{
        const {sa}* row = in + row_i * r;{body}
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sources_are_deterministic_and_complete() {
        let s = binary_source(Binary::Add, Ty::F32, Ty::F32, Ty::F32, Ty::F32);
        assert!(s.contains("od_add_f32_f32_f32_f32_contig"));
        assert!(s.contains("od_add_f32_f32_f32_f32_strided"));
        assert!(s.contains("x + (float)alpha * y"));
        let c = binary_source(Binary::Lt, Ty::I64, Ty::F64, Ty::F64, Ty::Bool);
        assert!(c.contains(
            "od_lt_i64_f64_f64_b8_contig(bool* o, const long long* pa, const double* pb"
        ));
        let p = binary_source(Binary::Pow, Ty::I64, Ty::I64, Ty::I64, Ty::I64);
        assert!(p.contains("od_ipow(x, y)"));
        let u = unary_source(Unary::Relu, Ty::F32, Ty::F32, Ty::F32);
        assert!(u.contains("(x != x || x > (float)0) ? x : (float)0"));
        let b = unary_source(Unary::Cast, Ty::F32, Ty::F32, Ty::BF16);
        assert!(b.contains("od_f_to_bf16"));
        assert!(fill_and_where_source(Ty::I64).contains("od_where_i64_strided("));
        assert!(reduce_source(Reduce::Max, Ty::F32, Ty::F32, Ty::F32).contains("od_take"));
        assert!(Unary::Exp.needs_float() && !Unary::Abs.needs_float());
        for t in Ty::ALL {
            assert_eq!(Ty::from_tag(t.tag()), Some(t));
        }
        assert_eq!(std::mem::size_of::<Geometry<3>>(), 8 * (1 + 8 + 24 + 3));
    }
}
