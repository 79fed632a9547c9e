//! CUDA C source for the pointwise kernels, compiled at run time with NVRTC (see
//! [`crate::nvrtc`]), one kernel per (operator, element types): shipping PTX would tie the
//! wheel to one set of GPU architectures and the toolkit's compiler.
//!
//! Each operator gets two entry points: `<name>_contig` over contiguous operands, and
//! `<name>_strided` over any strides with broadcasting, whose geometry (sizes, per-operand
//! strides and offsets, up to [`MAX_DIMS`] dimensions) is passed by value. Both use a
//! grid-stride loop, so any launch size covers any element count. Element types are given
//! as C type names (`float`, `double`, `long long`, `int`, `short`, `signed char`,
//! `unsigned char`, `bool`): the dtype table of the tensor runtime maps its dtypes to them.

/// The most dimensions a strided kernel indexes.
pub const MAX_DIMS: usize = 8;

/// A binary operator, written over `x`, `y` (converted to the computation type) and `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn name(self) -> &'static str {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// A conversion (`copy_` / `to` between dtypes).
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

    fn name(self) -> &'static str {
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

fn is_float(c: &str) -> bool {
    matches!(c, "float" | "double")
}

/// A C identifier piece for a type name (`long long` -> `long_long`).
fn ident(c: &str) -> String {
    c.replace(' ', "_")
}

const PRELUDE: &str = r#"
struct od_geometry {
    long long ndim;
    long long sizes[8];
    long long strides[3][8];
    long long offsets[3];
};
template <typename T> __device__ T od_ipow(T base, T exp) {
    T r = 1;
    while (exp > 0) { if (exp & 1) r *= base; base *= base; exp >>= 1; }
    return r;
}
__device__ void od_offsets(const od_geometry& g, long long i, int nops, long long* off) {
    for (int k = 0; k < nops; ++k) off[k] = g.offsets[k];
    for (long long d = g.ndim - 1; d >= 0; --d) {
        long long idx = i % g.sizes[d];
        i /= g.sizes[d];
        for (int k = 0; k < nops; ++k) off[k] += idx * g.strides[k][d];
    }
}
"#;

/// The kernel name of `op` over inputs of type `a`, `b` computing in `c` into `out`.
pub fn binary_name(op: Binary, a: &str, b: &str, c: &str, out: &str) -> String {
    format!(
        "od_{}_{}_{}_{}_{}",
        op.name(),
        ident(a),
        ident(b),
        ident(c),
        ident(out)
    )
}

/// Source of the binary kernels `<name>_contig(out, a, b, n, alpha)` and
/// `<name>_strided(out, a, b, n, alpha, geometry)` (operands 0: out, 1: a, 2: b).
pub fn binary_source(op: Binary, a: &str, b: &str, c: &str, out: &str) -> String {
    let name = binary_name(op, a, b, c, out);
    let e = op.expr(c, is_float(c));
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {name}_contig({out}* o, const {a}* pa, const {b}* pb, long long n, double alpha) {{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {{
        {c} x = ({c})pa[i]; {c} y = ({c})pb[i];
        o[i] = ({out})({e});
    }}
}}
extern "C" __global__ void {name}_strided({out}* o, const {a}* pa, const {b}* pb, long long n, double alpha, od_geometry g) {{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {{
        long long off[3];
        od_offsets(g, i, 3, off);
        {c} x = ({c})pa[off[1]]; {c} y = ({c})pb[off[2]];
        o[off[0]] = ({out})({e});
    }}
}}
"#
    )
}

/// The kernel name of unary `op` from `a` computing in `c` into `out`.
pub fn unary_name(op: Unary, a: &str, c: &str, out: &str) -> String {
    format!("od_{}_{}_{}_{}", op.name(), ident(a), ident(c), ident(out))
}

/// Source of `<name>_contig(out, a, n)` and `<name>_strided(out, a, n, geometry)`.
pub fn unary_source(op: Unary, a: &str, c: &str, out: &str) -> String {
    let name = unary_name(op, a, c, out);
    let e = op.expr(c, is_float(c));
    format!(
        r#"{PRELUDE}
extern "C" __global__ void {name}_contig({out}* o, const {a}* pa, long long n) {{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {{
        {c} x = ({c})pa[i];
        o[i] = ({out})({e});
    }}
}}
extern "C" __global__ void {name}_strided({out}* o, const {a}* pa, long long n, od_geometry g) {{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {{
        long long off[3];
        od_offsets(g, i, 2, off);
        {c} x = ({c})pa[off[1]];
        o[off[0]] = ({out})({e});
    }}
}}
"#
    )
}

/// Source of `od_fill_<t>(out, n, value)` (contiguous) and `od_where_<t>` (strided select).
pub fn fill_and_where_source(t: &str) -> String {
    let id = ident(t);
    format!(
        r#"{PRELUDE}
extern "C" __global__ void od_fill_{id}({t}* o, long long n, {t} v) {{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) o[i] = v;
}}
struct od_geometry4 {{ long long ndim; long long sizes[8]; long long strides[4][8]; long long offsets[4]; }};
extern "C" __global__ void od_where_{id}({t}* o, const bool* c, const {t}* pa, const {t}* pb, long long n, od_geometry4 g) {{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x) {{
        long long off[4], r = i;
        for (int k = 0; k < 4; ++k) off[k] = g.offsets[k];
        for (long long d = g.ndim - 1; d >= 0; --d) {{
            long long idx = r % g.sizes[d];
            r /= g.sizes[d];
            for (int k = 0; k < 4; ++k) off[k] += idx * g.strides[k][d];
        }}
        o[off[0]] = c[off[1]] ? pa[off[2]] : pb[off[3]];
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
        let s = binary_source(Binary::Add, "float", "float", "float", "float");
        assert!(s.contains("od_add_float_float_float_float_contig"));
        assert!(s.contains("od_add_float_float_float_float_strided"));
        assert!(s.contains("x + (float)alpha * y"));
        let c = binary_source(Binary::Lt, "long long", "double", "double", "bool");
        assert!(c.contains("od_lt_long_long_double_double_bool_contig(bool* o, const long long* pa, const double* pb"));
        let p = binary_source(
            Binary::Pow,
            "long long",
            "long long",
            "long long",
            "long long",
        );
        assert!(p.contains("od_ipow(x, y)"));
        let u = unary_source(Unary::Relu, "float", "float", "float");
        assert!(u.contains("(x != x || x > (float)0) ? x : (float)0"));
        assert!(fill_and_where_source("long long").contains("od_where_long_long("));
        assert!(Unary::Exp.needs_float() && !Unary::Abs.needs_float());
    }
}
