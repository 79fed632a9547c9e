//! Host implementations of opdispatch's generated kernels, chosen by name and reading the
//! parameters as the CUDA C sources declare them (see `opdispatch_cuda::codegen`):
//!
//! ```text
//! od_<binop>_<a>_<b>_<c>_<out>_{contig,strided}   (out*, a*, b*, long long n, double alpha[, geometry<3>])
//! od_<unop>_<a>_<c>_<out>_{contig,strided}        (out*, a*, long long n[, geometry<2>])
//! od_fill_<t>_{contig,strided}                     (out*, long long n, t value[, geometry<1>])
//! od_where_<t>_strided                             (out*, bool* c, a*, b*, long long n, geometry<4>)
//! od_reduce_<op>_<a>_<acc>_<out>                   (out*, long long* idx, in*, long long outer, long long r, double scale)
//! ```
//!
//! Values compute in `f32` for float/bfloat16 computation types, `f64` for double and `i64`
//! (wrapping) for integers and bool, as the kernels' C types do.

use std::ffi::c_void;

use crate::check_range;

/// Element types, by the tags of the kernel names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
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
    fn from_tag(s: &str) -> Option<Ty> {
        Some(match s {
            "b8" => Ty::Bool,
            "u8" => Ty::U8,
            "i8" => Ty::I8,
            "i16" => Ty::I16,
            "i32" => Ty::I32,
            "i64" => Ty::I64,
            "bf16" => Ty::BF16,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            Ty::Bool | Ty::U8 | Ty::I8 => 1,
            Ty::I16 | Ty::BF16 => 2,
            Ty::I32 | Ty::F32 => 4,
            Ty::I64 | Ty::F64 => 8,
        }
    }
}

/// A value in a computation domain.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum V {
    F(f32),
    D(f64),
    I(i64),
}

/// The computation domain of type `c`.
fn zero(c: Ty) -> V {
    match c {
        Ty::BF16 | Ty::F32 => V::F(0.0),
        Ty::F64 => V::D(0.0),
        _ => V::I(0),
    }
}

pub(crate) fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

pub(crate) fn f32_to_bf16(f: f32) -> u16 {
    let u = f.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 0x40) as u16;
    }
    let u = u.wrapping_add(0x7fff + ((u >> 16) & 1));
    (u >> 16) as u16
}

/// Loads element `i` of type `t` at `p` into the domain of `c`.
unsafe fn load(t: Ty, p: u64, i: i64, c: Ty) -> V {
    let a = p + (i * t.size() as i64) as u64;
    check_range(a, t.size(), "a kernel read");
    let (f, n): (f64, i64) = match t {
        Ty::Bool => {
            let v = i64::from(*(a as *const u8) != 0);
            (v as f64, v)
        }
        Ty::U8 => {
            let v = i64::from(*(a as *const u8));
            (v as f64, v)
        }
        Ty::I8 => {
            let v = i64::from(*(a as *const i8));
            (v as f64, v)
        }
        Ty::I16 => {
            let v = i64::from(*(a as *const i16));
            (v as f64, v)
        }
        Ty::I32 => {
            let v = i64::from(*(a as *const i32));
            (v as f64, v)
        }
        Ty::I64 => {
            let v = *(a as *const i64);
            (v as f64, v)
        }
        Ty::BF16 => {
            let v = f64::from(bf16_to_f32(*(a as *const u16)));
            (v, v as i64)
        }
        Ty::F32 => {
            let v = f64::from(*(a as *const f32));
            (v, v as i64)
        }
        Ty::F64 => {
            let v = *(a as *const f64);
            (v, v as i64)
        }
    };
    match zero(c) {
        V::F(_) => V::F(f as f32),
        V::D(_) => V::D(f),
        V::I(_) => V::I(n),
    }
}

/// Stores `v` as type `t` at element `i` of `p` (C's conversions).
unsafe fn store(t: Ty, p: u64, i: i64, v: V) {
    let a = p + (i * t.size() as i64) as u64;
    check_range(a, t.size(), "a kernel write");
    let (f, n) = match v {
        V::F(x) => (f64::from(x), x as i64),
        V::D(x) => (x, x as i64),
        V::I(x) => (x as f64, x),
    };
    let truthy = match v {
        V::I(x) => x != 0,
        _ => f != 0.0,
    };
    match t {
        Ty::Bool => *(a as *mut u8) = u8::from(truthy),
        Ty::U8 => *(a as *mut u8) = n as u8,
        Ty::I8 => *(a as *mut i8) = n as i8,
        Ty::I16 => *(a as *mut i16) = n as i16,
        Ty::I32 => *(a as *mut i32) = n as i32,
        Ty::I64 => *(a as *mut i64) = n,
        Ty::BF16 => *(a as *mut u16) = f32_to_bf16(f as f32),
        Ty::F32 => *(a as *mut f32) = f as f32,
        Ty::F64 => *(a as *mut f64) = f,
    }
}

fn is_nan(v: V) -> bool {
    match v {
        V::F(x) => x.is_nan(),
        V::D(x) => x.is_nan(),
        V::I(_) => false,
    }
}

fn binop(op: &str, x: V, y: V, alpha: f64) -> V {
    use V::*;
    let b = |c: bool| I(i64::from(c));
    match (x, y) {
        (F(x), F(y)) => {
            let a = alpha as f32;
            match op {
                "add" => F(x + a * y),
                "sub" => F(x - a * y),
                "mul" => F(x * y),
                "div" => F(x / y),
                "maximum" => F(if x.is_nan() || y.is_nan() {
                    x + y
                } else {
                    x.max(y)
                }),
                "minimum" => F(if x.is_nan() || y.is_nan() {
                    x + y
                } else {
                    x.min(y)
                }),
                "pow" => F(x.powf(y)),
                _ => b(cmp(op, x.partial_cmp(&y))),
            }
        }
        (D(x), D(y)) => match op {
            "add" => D(x + alpha * y),
            "sub" => D(x - alpha * y),
            "mul" => D(x * y),
            "div" => D(x / y),
            "maximum" => D(if x.is_nan() || y.is_nan() {
                x + y
            } else {
                x.max(y)
            }),
            "minimum" => D(if x.is_nan() || y.is_nan() {
                x + y
            } else {
                x.min(y)
            }),
            "pow" => D(x.powf(y)),
            _ => b(cmp(op, x.partial_cmp(&y))),
        },
        (I(x), I(y)) => {
            let a = alpha as i64;
            match op {
                "add" => I(x.wrapping_add(a.wrapping_mul(y))),
                "sub" => I(x.wrapping_sub(a.wrapping_mul(y))),
                "mul" => I(x.wrapping_mul(y)),
                "maximum" => I(x.max(y)),
                "minimum" => I(x.min(y)),
                "pow" => {
                    let (mut base, mut e, mut r) = (x, y, 1i64);
                    while e > 0 {
                        if e & 1 == 1 {
                            r = r.wrapping_mul(base);
                        }
                        base = base.wrapping_mul(base);
                        e >>= 1;
                    }
                    I(r)
                }
                _ => b(cmp(op, Some(x.cmp(&y)))),
            }
        }
        _ => unreachable!("operands load into one domain"),
    }
}

fn cmp(op: &str, o: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    match (op, o) {
        ("ne", None) => true,
        (_, None) => false,
        ("eq", Some(o)) => o == Equal,
        ("ne", Some(o)) => o != Equal,
        ("lt", Some(o)) => o == Less,
        ("le", Some(o)) => o != Greater,
        ("gt", Some(o)) => o == Greater,
        ("ge", Some(o)) => o != Less,
        _ => panic!("cuda emulator: unknown comparison {op}"),
    }
}

fn unop(op: &str, x: V) -> V {
    use V::*;
    macro_rules! float {
        ($x:expr, $one:expr, $zero:expr) => {{
            let x = $x;
            match op {
                "neg" => -x,
                "abs" => x.abs(),
                "exp" => x.exp(),
                "log" => x.ln(),
                "sin" => x.sin(),
                "cos" => x.cos(),
                "sqrt" => x.sqrt(),
                "relu" => {
                    if x.is_nan() || x > $zero {
                        x
                    } else {
                        $zero
                    }
                }
                "sigmoid" => $one / ($one + (-x).exp()),
                "tanh" => x.tanh(),
                "reciprocal" => $one / x,
                "cast" => x,
                _ => panic!("cuda emulator: unknown unary {op}"),
            }
        }};
    }
    match x {
        F(x) => F(float!(x, 1f32, 0f32)),
        D(x) => D(float!(x, 1f64, 0f64)),
        I(x) => I(match op {
            "neg" => x.wrapping_neg(),
            "abs" => x.wrapping_abs(),
            "relu" => x.max(0),
            "cast" => x,
            _ => panic!("cuda emulator: {op} has no integer kernel"),
        }),
    }
}

/// What a kernel name asks for.
#[derive(Debug)]
pub(crate) enum Kernel {
    Binary {
        op: String,
        a: Ty,
        b: Ty,
        c: Ty,
        out: Ty,
        strided: bool,
    },
    Unary {
        op: String,
        a: Ty,
        c: Ty,
        out: Ty,
        strided: bool,
    },
    Fill {
        t: Ty,
        strided: bool,
    },
    Where {
        t: Ty,
    },
    Reduce {
        op: String,
        a: Ty,
        acc: Ty,
        out: Ty,
    },
}

const BINARY: [&str; 13] = [
    "add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "ne", "lt", "le", "gt", "ge",
];
const UNARY: [&str; 12] = [
    "neg",
    "abs",
    "exp",
    "log",
    "sin",
    "cos",
    "sqrt",
    "relu",
    "sigmoid",
    "tanh",
    "reciprocal",
    "cast",
];

impl Kernel {
    pub(crate) fn parse(name: &str) -> Option<Kernel> {
        let parts: Vec<&str> = name.strip_prefix("od_")?.split('_').collect();
        let t = |i: usize| parts.get(i).and_then(|s| Ty::from_tag(s));
        let strided = |s: &str| match s {
            "strided" => Some(true),
            "contig" => Some(false),
            _ => None,
        };
        match parts.as_slice() {
            [op, _, _, _, _, v] if BINARY.contains(op) => Some(Kernel::Binary {
                op: (*op).to_owned(),
                a: t(1)?,
                b: t(2)?,
                c: t(3)?,
                out: t(4)?,
                strided: strided(v)?,
            }),
            [op, _, _, _, v] if UNARY.contains(op) => Some(Kernel::Unary {
                op: (*op).to_owned(),
                a: t(1)?,
                c: t(2)?,
                out: t(3)?,
                strided: strided(v)?,
            }),
            ["fill", _, v] => Some(Kernel::Fill {
                t: t(1)?,
                strided: strided(v)?,
            }),
            ["where", _, "strided"] => Some(Kernel::Where { t: t(1)? }),
            ["reduce", op, _, _, _] if ["sum", "max", "min"].contains(op) => Some(Kernel::Reduce {
                op: (*op).to_owned(),
                a: t(2)?,
                acc: t(3)?,
                out: t(4)?,
            }),
            _ => None,
        }
    }

    /// Runs the kernel over the parameters `cuLaunchKernel` received.
    pub(crate) unsafe fn run(&self, params: *mut *mut c_void) {
        let arg = |i: usize| *params.add(i);
        let u64_at = |i: usize| *arg(i).cast::<u64>();
        let i64_at = |i: usize| *arg(i).cast::<i64>();
        let f64_at = |i: usize| *arg(i).cast::<f64>();
        match self {
            Kernel::Binary {
                op,
                a,
                b,
                c,
                out,
                strided,
            } => {
                let (po, pa, pb, n, alpha) =
                    (u64_at(0), u64_at(1), u64_at(2), i64_at(3), f64_at(4));
                let g = strided.then(|| Geometry::read(arg(5), 3));
                for i in 0..n {
                    let off = g.as_ref().map_or([i; 4], |g| g.offsets(i));
                    let x = load(*a, pa, off[1], *c);
                    let y = load(*b, pb, off[2], *c);
                    store(*out, po, off[0], binop(op, x, y, alpha));
                }
            }
            Kernel::Unary {
                op,
                a,
                c,
                out,
                strided,
            } => {
                let (po, pa, n) = (u64_at(0), u64_at(1), i64_at(2));
                let g = strided.then(|| Geometry::read(arg(3), 2));
                for i in 0..n {
                    let off = g.as_ref().map_or([i; 4], |g| g.offsets(i));
                    let x = load(*a, pa, off[1], *c);
                    store(*out, po, off[0], unop(op, x));
                }
            }
            Kernel::Fill { t, strided } => {
                let (po, n) = (u64_at(0), i64_at(1));
                let v = arg(2).cast::<u8>();
                let g = strided.then(|| Geometry::read(arg(3), 1));
                for i in 0..n {
                    let off = g.as_ref().map_or([i; 4], |g| g.offsets(i));
                    let dst = po + (off[0] * t.size() as i64) as u64;
                    check_range(dst, t.size(), "fill");
                    std::ptr::copy_nonoverlapping(v, dst as *mut u8, t.size());
                }
            }
            Kernel::Where { t } => {
                let (po, pc, pa, pb, n) = (u64_at(0), u64_at(1), u64_at(2), u64_at(3), i64_at(4));
                let g = Geometry::read(arg(5), 4);
                let s = t.size() as i64;
                for i in 0..n {
                    let off = g.offsets(i);
                    check_range(pc + off[1] as u64, 1, "where condition");
                    let take_a = *((pc + off[1] as u64) as *const u8) != 0;
                    let src = if take_a {
                        pa + (off[2] * s) as u64
                    } else {
                        pb + (off[3] * s) as u64
                    };
                    let dst = po + (off[0] * s) as u64;
                    check_range(src, s as usize, "where source");
                    check_range(dst, s as usize, "where output");
                    std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, s as usize);
                }
            }
            Kernel::Reduce { op, a, acc, out } => {
                let (po, pi, pin) = (u64_at(0), u64_at(1), u64_at(2));
                let (outer, r, scale) = (i64_at(3), i64_at(4), f64_at(5));
                for row in 0..outer {
                    let base = row * r;
                    if op == "sum" {
                        let mut v = zero(*acc);
                        for j in 0..r {
                            v = binop("add", v, load(*a, pin, base + j, *acc), 1.0);
                        }
                        let scaled = match v {
                            V::F(x) => V::F((f64::from(x) * scale) as f32),
                            V::D(x) => V::D(x * scale),
                            V::I(x) => V::I((x as f64 * scale) as i64),
                        };
                        if po != 0 {
                            store(*out, po, row, scaled);
                        }
                        continue;
                    }
                    let better = |y: V, v: V| if op == "max" { y > v } else { y < v };
                    let (mut v, mut vi) = (zero(*acc), -1i64);
                    for j in 0..r {
                        let y = load(*a, pin, base + j, *acc);
                        let take = vi < 0 || (!is_nan(v) && (is_nan(y) || better(y, v)));
                        if take {
                            (v, vi) = (y, j);
                        }
                    }
                    if po != 0 {
                        store(*out, po, row, v);
                    }
                    if pi != 0 {
                        store(Ty::I64, pi, row, V::I(vi));
                    }
                }
            }
        }
    }
}

/// The `od_geometry<N>` struct a strided kernel receives.
struct Geometry {
    ndim: usize,
    sizes: [i64; 8],
    strides: Vec<[i64; 8]>,
    offsets: Vec<i64>,
}

impl Geometry {
    unsafe fn read(p: *mut c_void, n: usize) -> Geometry {
        let w = p.cast::<i64>();
        let ndim = *w as usize;
        assert!(ndim <= 8, "cuda emulator: geometry with {ndim} dimensions");
        let mut sizes = [0i64; 8];
        for (d, s) in sizes.iter_mut().enumerate() {
            *s = *w.add(1 + d);
        }
        let strides = (0..n)
            .map(|k| std::array::from_fn(|d| *w.add(9 + k * 8 + d)))
            .collect();
        let offsets = (0..n).map(|k| *w.add(9 + n * 8 + k)).collect();
        Geometry {
            ndim,
            sizes,
            strides,
            offsets,
        }
    }

    /// Each operand's element offset for linear index `i` (as `od_offsets`).
    fn offsets(&self, mut i: i64) -> [i64; 4] {
        let mut off = [0i64; 4];
        for (k, o) in self.offsets.iter().enumerate() {
            off[k] = *o;
        }
        for d in (0..self.ndim).rev() {
            let idx = i % self.sizes[d];
            i /= self.sizes[d];
            for (k, st) in self.strides.iter().enumerate() {
                off[k] += idx * st[d];
            }
        }
        off
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_parse_back() {
        assert!(matches!(
            Kernel::parse("od_add_f32_i64_f32_f32_strided"),
            Some(Kernel::Binary {
                a: Ty::F32,
                b: Ty::I64,
                strided: true,
                ..
            })
        ));
        assert!(matches!(
            Kernel::parse("od_cast_bf16_f32_b8_contig"),
            Some(Kernel::Unary {
                a: Ty::BF16,
                out: Ty::Bool,
                strided: false,
                ..
            })
        ));
        assert!(matches!(
            Kernel::parse("od_where_i64_strided"),
            Some(Kernel::Where { t: Ty::I64 })
        ));
        assert!(matches!(
            Kernel::parse("od_reduce_max_f32_f32_f32"),
            Some(Kernel::Reduce { .. })
        ));
        assert!(Kernel::parse("od_add_f32_f32_contig").is_none());
        assert!(Kernel::parse("matmul").is_none());
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(bf16_to_f32(0x4040), 3.0);
    }
}
