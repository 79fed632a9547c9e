//! Random fills on PyTorch's CPU generator: an mt19937 seeded as PyTorch seeds it, and the
//! same sampling arithmetic as ATen's CPU distribution kernels, so `manual_seed(s)` followed
//! by `rand`, `randn` or `randint` gives PyTorch's numbers.
//!
//! - uniform (float32 and below): the low 24 bits of one 32-bit draw, times 2^-24; float64: the
//!   low 53 bits of a 64-bit draw (two 32-bit draws, the first high), times 2^-53.
//! - normal, 16 or more contiguous elements: fill with uniforms, then Box-Muller in blocks of 16
//!   (the last block recomputed from fresh uniforms when the size is not a multiple of 16);
//!   fewer: one Box-Muller pair in double per two draws, the sine half cached for the next one.
//! - randint: a 32-bit draw modulo the range (64-bit when the range needs it).

use std::sync::Mutex;

use rand_mt::Mt;

use crate::error::Result;
use crate::{ScalarType, Tensor};

/// PyTorch's `default_rng_seed_val`.
pub const DEFAULT_SEED: u64 = 67_280_421_310_721;

struct CpuGenerator {
    mt: Mt,
    seed: u64,
    next_double_normal: Option<f64>,
}

impl CpuGenerator {
    fn new(seed: u64) -> Self {
        Self {
            // mt19937 takes the seed's low 32 bits, as PyTorch's `mt19937(seed)` does.
            mt: Mt::new(seed as u32),
            seed,
            next_double_normal: None,
        }
    }
    fn random(&mut self) -> u32 {
        self.mt.next_u32()
    }
    fn random64(&mut self) -> u64 {
        let hi = u64::from(self.random());
        let lo = u64::from(self.random());
        (hi << 32) | lo
    }
    fn uniform_f32(&mut self) -> f32 {
        (self.random() & ((1 << 24) - 1)) as f32 * (1.0 / (1u32 << 24) as f32)
    }
    fn uniform_f64(&mut self) -> f64 {
        (self.random64() & ((1u64 << 53) - 1)) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn normal_f64(&mut self, mean: f64, std: f64) -> f64 {
        if let Some(v) = self.next_double_normal.take() {
            return v * std + mean;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let r = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.next_double_normal = Some(r * theta.sin());
        r * theta.cos() * std + mean
    }
}

static GENERATOR: Mutex<Option<CpuGenerator>> = Mutex::new(None);

fn with_gen<R>(f: impl FnOnce(&mut CpuGenerator) -> R) -> R {
    let mut g = GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(g.get_or_insert_with(|| CpuGenerator::new(DEFAULT_SEED)))
}

/// `torch.manual_seed(seed)` for the CPU generator.
pub fn manual_seed(seed: u64) {
    with_gen(|g| *g = CpuGenerator::new(seed));
}

/// `torch.initial_seed()`.
pub fn initial_seed() -> u64 {
    with_gen(|g| g.seed)
}

/// Writes `values` (row-major) into `t`.
fn store_f32(t: &Tensor, values: Vec<f32>) -> Result<()> {
    let src = Tensor::from_vec(values, t.sizes())?;
    super::copy_(t, &src)
}

fn store_f64(t: &Tensor, values: Vec<f64>) -> Result<()> {
    let src = Tensor::from_vec(values, t.sizes())?;
    super::copy_(t, &src)
}

/// `t.uniform_(from, to)`.
pub fn uniform_(t: &Tensor, from: f64, to: f64) -> Result<()> {
    super::meta::random_float_fill(t, "uniform_")?;
    let n = t.numel();
    if t.dtype() == ScalarType::Float64 {
        let v = with_gen(|g| {
            (0..n)
                .map(|_| g.uniform_f64() * (to - from) + from)
                .collect()
        });
        store_f64(t, v)
    } else {
        let (from, to) = (from as f32, to as f32);
        let v = with_gen(|g| {
            (0..n)
                .map(|_| g.uniform_f32() * (to - from) + from)
                .collect()
        });
        store_f32(t, v)
    }
}

macro_rules! normal_fill {
    ($name:ident, $t:ty, $uniform:ident) => {
        fn $name(g: &mut CpuGenerator, n: usize, mean: $t, std: $t) -> Vec<$t> {
            fn block(d: &mut [$t], mean: $t, std: $t) {
                for j in 0..8 {
                    let u1 = 1.0 - d[j];
                    let u2 = d[j + 8];
                    let radius = (-2.0 * u1.ln()).sqrt();
                    let theta = 2.0 * (std::f64::consts::PI as $t) * u2;
                    d[j] = radius * theta.cos() * std + mean;
                    d[j + 8] = radius * theta.sin() * std + mean;
                }
            }
            let mut d: Vec<$t> = (0..n).map(|_| g.$uniform()).collect();
            let mut i = 0;
            while i + 16 <= n {
                block(&mut d[i..i + 16], mean, std);
                i += 16;
            }
            if n % 16 != 0 {
                let tail = &mut d[n - 16..];
                for x in tail.iter_mut() {
                    *x = g.$uniform();
                }
                block(tail, mean, std);
            }
            d
        }
    };
}
normal_fill!(normal_fill_f32, f32, uniform_f32);
normal_fill!(normal_fill_f64, f64, uniform_f64);

/// `t.normal_(mean, std)`.
pub fn normal_(t: &Tensor, mean: f64, std: f64) -> Result<()> {
    super::meta::normal_(t, std)?;
    let n = t.numel();
    let filled = n >= 16 && t.is_contiguous();
    if t.dtype() == ScalarType::Float64 {
        let v = with_gen(|g| {
            if filled {
                normal_fill_f64(g, n, mean, std)
            } else {
                (0..n).map(|_| g.normal_f64(mean, std)).collect()
            }
        });
        store_f64(t, v)
    } else {
        let v = with_gen(|g| {
            if filled {
                normal_fill_f32(g, n, mean as f32, std as f32)
            } else {
                (0..n).map(|_| g.normal_f64(mean, std) as f32).collect()
            }
        });
        store_f32(t, v)
    }
}

/// `t.random_(low, high)`: integers in `[low, high)`.
pub fn random_from_to_(t: &Tensor, low: i64, high: i64) -> Result<()> {
    super::meta::random_from_to_(low, high)?;
    let range = (high as i128 - low as i128) as u128;
    let n = t.numel();
    let v: Vec<i64> = with_gen(|g| {
        (0..n)
            .map(|_| {
                let r = if range >= 1u128 << 32 {
                    u128::from(g.random64()) % range
                } else {
                    u128::from(g.random()) % range
                };
                (low as i128 + r as i128) as i64
            })
            .collect()
    });
    let src = Tensor::from_vec(v, t.sizes())?;
    super::copy_(t, &src)
}
