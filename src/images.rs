//! A batch of images as the trainer and the classifier take it: host data, or a tensor already
//! on the GPU (a host application's own buffer), fed without a trip through host memory.

use crate::error::{Error, Result};
use crate::exec::Feed;
use crate::gpu::GpuTensor;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// A batch of `[N, C, H, W]` images.
#[derive(Clone, Copy, Debug)]
pub enum Images<'a> {
    Host(&'a Tensor),
    /// f32 on the session's GPU; its buffer needs `COPY_SRC` (see [`GpuTensor::from_buffer`]).
    Gpu(&'a GpuTensor),
}

impl<'a> From<&'a Tensor> for Images<'a> {
    fn from(t: &'a Tensor) -> Self {
        Images::Host(t)
    }
}

impl<'a> From<&'a GpuTensor> for Images<'a> {
    fn from(t: &'a GpuTensor) -> Self {
        Images::Gpu(t)
    }
}

impl<'a> Images<'a> {
    pub fn shape(&self) -> &Shape {
        match self {
            Images::Host(t) => &t.shape,
            Images::Gpu(t) => &t.shape,
        }
    }

    /// The feed for an images input.
    pub fn feed(&self) -> Feed<'a> {
        match *self {
            Images::Host(t) => Feed::Data(t),
            Images::Gpu(t) => Feed::Gpu(t),
        }
    }

    /// The batch size, after checking that the images are `[N, C, H, W]` with `image`'s
    /// `[C, H, W]` and `1 ≤ N ≤ max` (`max` 0: any N).
    pub fn batch(&self, op: &str, image: [usize; 3], max: usize) -> Result<usize> {
        let n = self.shape().dims().first().copied().unwrap_or(0);
        let [c, h, w] = image;
        let want = Shape::new([n, c, h, w]);
        if n == 0 || self.shape() != &want {
            return Err(Error::invalid(
                op,
                format!(
                    "images {} should be [N, C, H, W] = [N, {c}, {h}, {w}] with N ≥ 1",
                    self.shape()
                ),
            ));
        }
        if max > 0 && n > max {
            return Err(Error::invalid(
                op,
                format!(
                    "a batch of {n} images is larger than the {max} this model was built for: steps take at most that many (build it with a larger batch)"
                ),
            ));
        }
        Ok(n)
    }
}
