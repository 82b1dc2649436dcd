//! Host tensors: a `Vec<f32>` with its [`Shape`], and seeded initialisers.

use crate::error::{Error, Result};
use crate::shape::Shape;

/// A dense row-major f32 tensor in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Shape,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Wraps `data`, checking that its length matches `shape`.
    pub fn new(shape: impl Into<Shape>, data: Vec<f32>) -> Result<Self> {
        let shape = shape.into();
        if data.len() != shape.numel() {
            return Err(Error::invalid(
                "Tensor::new",
                format!(
                    "shape {shape} needs {} values, got {}",
                    shape.numel(),
                    data.len()
                ),
            ));
        }
        Ok(Tensor { shape, data })
    }

    pub fn zeros(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        Tensor {
            data: vec![0.0; shape.numel()],
            shape,
        }
    }

    pub fn full(shape: impl Into<Shape>, value: f32) -> Self {
        let shape = shape.into();
        Tensor {
            data: vec![value; shape.numel()],
            shape,
        }
    }

    /// Values drawn uniformly from `[lo, hi)` by [`Rng`] seeded with `seed`.
    pub fn uniform(shape: impl Into<Shape>, lo: f32, hi: f32, seed: u64) -> Self {
        let shape = shape.into();
        let mut rng = Rng::new(seed);
        let data = (0..shape.numel()).map(|_| rng.uniform(lo, hi)).collect();
        Tensor { shape, data }
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The same data under another shape with the same number of elements.
    pub fn reshape(mut self, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        if shape.numel() != self.shape.numel() {
            return Err(Error::invalid(
                "reshape",
                format!(
                    "cannot view {} as {shape}: element counts differ",
                    self.shape
                ),
            ));
        }
        self.shape = shape;
        Ok(self)
    }
}

/// SplitMix64: a tiny, fast generator whose output is fixed by its definition, so a seed gives
/// the same tensors on every platform and in every version of wgrad (checkpoints and tests rely
/// on that; a general-purpose RNG crate is free to change its streams between releases).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[0, 1)` with 24 random bits (every f32 in the range is exact).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }
    /// A standard normal draw (Box–Muller on two uniforms; `1 − u` keeps the log finite).
    pub fn normal(&mut self) -> f32 {
        let (u1, u2) = (1.0 - self.next_f32() as f64, self.next_f32() as f64);
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
    /// Uniform integer in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
