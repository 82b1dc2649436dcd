//! Shapes, and the only place that does convolution output-size arithmetic.

use crate::error::{Error, Result};
use std::fmt;

/// The most elements one tensor may hold: the kernels index with u32. Every size that comes
/// from a user (a config, a batch size, a checkpoint) is checked against it with checked
/// arithmetic ([`checked_numel`]) before anything is allocated or dispatched.
pub const MAX_ELEMENTS: usize = u32::MAX as usize;

/// The number of elements of `dims`, or an error naming `op` and `what` when the product
/// overflows or exceeds [`MAX_ELEMENTS`].
pub fn checked_numel(op: &str, what: &str, dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            Error::invalid(
                op,
                format!(
                    "{what} {} has more than {MAX_ELEMENTS} elements (2³² − 1, the most a kernel can index)",
                    Shape::from(dims)
                ),
            )
        })
}

/// Dimensions of a dense, row-major (C-contiguous) tensor. NCHW for images.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }
    pub fn dims(&self) -> &[usize] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// Number of elements (1 for a scalar of rank 0). Saturates at `usize::MAX` rather than
    /// overflowing (a shape from a file may claim anything; [`checked_numel`] is the check).
    pub fn numel(&self) -> usize {
        if self.0.contains(&0) {
            return 0;
        }
        self.0.iter().fold(1usize, |acc, &d| acc.saturating_mul(d))
    }
    /// Dimension `i`, counting from the end when negative-style indexing is wanted via `rank`.
    pub fn dim(&self, i: usize) -> usize {
        self.0[i]
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape(d.to_vec())
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape(d.to_vec())
    }
}

/// Stride, padding and dilation of a 2-D convolution (PyTorch meaning), plus `output_padding`,
/// which only a transposed convolution uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub output_padding: [usize; 2],
}

impl Default for ConvParams {
    fn default() -> Self {
        ConvParams {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            output_padding: [0, 0],
        }
    }
}

impl ConvParams {
    /// Same stride, padding and dilation in both directions.
    pub fn square(stride: usize, padding: usize, dilation: usize) -> Self {
        ConvParams {
            stride: [stride; 2],
            padding: [padding; 2],
            dilation: [dilation; 2],
            output_padding: [0, 0],
        }
    }
    pub fn with_output_padding(mut self, op: usize) -> Self {
        self.output_padding = [op; 2];
        self
    }
}

/// The full geometry of one convolution, seen from the *convolution* side: an image of
/// `channels × height × width` is cut into `kernel` windows, giving `out_h × out_w` positions.
///
/// A transposed convolution is described by the geometry of the convolution it transposes: its
/// output is this geometry's image, and its input has this geometry's `out_h × out_w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: [usize; 2],
    pub params: ConvParams,
    pub out_h: usize,
    pub out_w: usize,
}

impl ConvGeometry {
    /// Rows of the im2col matrix: `channels · kh · kw`.
    pub fn col_rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }
    /// Columns of the im2col matrix of one image: `out_h · out_w`.
    pub fn col_cols(&self) -> usize {
        self.out_h * self.out_w
    }
    /// Shape of the image tensor `[batch, channels, height, width]`.
    pub fn image_shape(&self) -> Shape {
        Shape::new([self.batch, self.channels, self.height, self.width])
    }
    /// Shape of the im2col tensor `[batch, channels·kh·kw, out_h·out_w]`.
    pub fn cols_shape(&self) -> Shape {
        Shape::new([self.batch, self.col_rows(), self.col_cols()])
    }
    /// Shape `[batch, filters, out_h, out_w]` of a tensor with one value per window position and
    /// filter: a conv2d's output, or a conv_transpose2d's input.
    pub fn windows_shape(&self, filters: usize) -> Shape {
        Shape::new([self.batch, filters, self.out_h, self.out_w])
    }

    /// The geometry, if its image and im2col tensors stay within [`MAX_ELEMENTS`] (checked
    /// arithmetic: after this, [`ConvGeometry::col_rows`] and the shapes cannot overflow).
    fn sized(self, op: &str) -> Result<ConvGeometry> {
        let [kh, kw] = self.kernel;
        checked_numel(
            op,
            "the image",
            &[self.batch, self.channels, self.height, self.width],
        )?;
        checked_numel(
            op,
            "the im2col matrix",
            &[self.batch, self.channels, kh, kw, self.out_h, self.out_w],
        )?;
        Ok(self)
    }

    /// Fails unless every size is non-zero: kernels index with these and divide by the strides.
    /// (A geometry from [`conv2d_geometry`] or [`conv_transpose2d_geometry`] always passes; this
    /// guards hand-built ones.)
    pub fn check(&self, op: &str) -> Result<()> {
        check_params(op, self.kernel, &self.params)?;
        let dims = [
            self.batch,
            self.channels,
            self.height,
            self.width,
            self.out_h,
            self.out_w,
        ];
        if dims.contains(&0) {
            return Err(Error::invalid(
                op,
                format!(
                    "geometry has a zero size: image {}, {}×{} window positions",
                    self.image_shape(),
                    self.out_h,
                    self.out_w
                ),
            ));
        }
        Ok(())
    }
}

fn check_params(op: &str, kernel: [usize; 2], p: &ConvParams) -> Result<()> {
    if kernel.contains(&0) {
        return Err(Error::invalid(
            op,
            format!("kernel size {kernel:?} has a zero"),
        ));
    }
    if p.stride.contains(&0) {
        return Err(Error::invalid(
            op,
            format!("stride {:?} has a zero", p.stride),
        ));
    }
    if p.dilation.contains(&0) {
        return Err(Error::invalid(
            op,
            format!("dilation {:?} has a zero", p.dilation),
        ));
    }
    Ok(())
}

/// Geometry of `conv2d` over an input of shape `[n, c, h, w]` with a `kh × kw` kernel.
/// Output size: `⌊(h + 2p − d(k−1) − 1)/s⌋ + 1`, as in PyTorch.
pub fn conv2d_geometry(
    op: &str,
    input: &Shape,
    kernel: [usize; 2],
    p: ConvParams,
) -> Result<ConvGeometry> {
    check_params(op, kernel, &p)?;
    let [n, c, h, w] = rank4(op, "input", input)?;
    let out = |i: usize, size: usize| -> Result<usize> {
        let (span, padded) = (p.dilation[i]
            .checked_mul(kernel[i] - 1)
            .and_then(|x| x.checked_add(1)))
        .zip(
            p.padding[i]
                .checked_mul(2)
                .and_then(|x| x.checked_add(size)),
        )
        .ok_or_else(|| too_big(op, input, kernel, &p))?;
        if padded < span {
            return Err(Error::invalid(
                op,
                format!(
                    "input {input} padded by {:?} is smaller than the dilated kernel {kernel:?} (dilation {:?}): no output",
                    p.padding, p.dilation
                ),
            ));
        }
        Ok((padded - span) / p.stride[i] + 1)
    };
    let (out_h, out_w) = (out(0, h)?, out(1, w)?);
    if p.output_padding != [0, 0] {
        return Err(Error::invalid(
            op,
            "output_padding is only meaningful for conv_transpose2d",
        ));
    }
    ConvGeometry {
        batch: n,
        channels: c,
        height: h,
        width: w,
        kernel,
        params: p,
        out_h,
        out_w,
    }
    .sized(op)
}

/// The error for convolution sizes whose arithmetic overflows.
fn too_big(op: &str, input: &Shape, kernel: [usize; 2], p: &ConvParams) -> Error {
    Error::invalid(
        op,
        format!(
            "input {input} with kernel {kernel:?}, stride {:?}, padding {:?} and dilation {:?} gives sizes beyond {MAX_ELEMENTS} elements",
            p.stride, p.padding, p.dilation
        ),
    )
}

/// Geometry of `conv_transpose2d` over an input `[n, c_in, h, w]` producing `c_out` channels.
/// Output size: `(h − 1)s − 2p + d(k − 1) + output_padding + 1`, as in PyTorch. The returned
/// geometry is that of the convolution being transposed: its image is the output
/// `[n, c_out, oh, ow]` and its `out_h × out_w` is the input's `h × w`.
pub fn conv_transpose2d_geometry(
    op: &str,
    input: &Shape,
    c_out: usize,
    kernel: [usize; 2],
    p: ConvParams,
) -> Result<ConvGeometry> {
    check_params(op, kernel, &p)?;
    let [n, _c_in, h, w] = rank4(op, "input", input)?;
    if c_out == 0 {
        return Err(Error::invalid(
            op,
            format!("input {input}: zero output channels"),
        ));
    }
    let mut size = [0usize; 2];
    for i in 0..2 {
        if p.output_padding[i] >= p.stride[i] && p.output_padding[i] >= p.dilation[i] {
            return Err(Error::invalid(
                op,
                format!(
                    "output_padding {:?} must be smaller than stride {:?} or dilation {:?}",
                    p.output_padding, p.stride, p.dilation
                ),
            ));
        }
        let hw = [h, w][i];
        if hw == 0 {
            return Err(Error::invalid(op, format!("input {input} has a zero size")));
        }
        let full = (hw - 1)
            .checked_mul(p.stride[i])
            .zip(p.dilation[i].checked_mul(kernel[i] - 1))
            .and_then(|(a, b)| a.checked_add(b))
            .and_then(|x| x.checked_add(p.output_padding[i]))
            .and_then(|x| x.checked_add(1))
            .zip(p.padding[i].checked_mul(2))
            .ok_or_else(|| too_big(op, input, kernel, &p))?;
        let (full, padding2) = full;
        if full <= padding2 {
            return Err(Error::invalid(
                op,
                format!(
                    "input {input} with padding {:?} leaves no output",
                    p.padding
                ),
            ));
        }
        size[i] = full - padding2;
    }
    ConvGeometry {
        batch: n,
        channels: c_out,
        height: size[0],
        width: size[1],
        kernel,
        params: p,
        out_h: h,
        out_w: w,
    }
    .sized(op)
}

/// Geometry of a `Conv2d` layer from its input `[n, c, h, w]` and weight `[f, c, kh, kw]`
/// (PyTorch's `[out, in, kh, kw]`), with `f`, the number of filters (output channels).
pub fn conv2d_layer(
    op: &str,
    input: &Shape,
    weight: &Shape,
    p: ConvParams,
) -> Result<(ConvGeometry, usize)> {
    let [_, c, _, _] = rank4(op, "input", input)?;
    let [f, wc, kh, kw] = rank4(op, "weight", weight)?;
    if wc != c {
        return Err(Error::invalid(
            op,
            format!(
                "weight {weight} [out, in, kh, kw] takes {wc} input channels but input {input} has {c}"
            ),
        ));
    }
    Ok((conv2d_geometry(op, input, [kh, kw], p)?, f))
}

/// Geometry of a `ConvTranspose2d` layer from its input `[n, f, h, w]` and weight
/// `[f, c, kh, kw]` (PyTorch's `[in, out, kh, kw]`), with `f`, its input channels. The weight
/// has the same layout as that of the conv2d being transposed: `f` filters over `c` channels.
pub fn conv_transpose2d_layer(
    op: &str,
    input: &Shape,
    weight: &Shape,
    p: ConvParams,
) -> Result<(ConvGeometry, usize)> {
    let [_, f, _, _] = rank4(op, "input", input)?;
    let [wf, c, kh, kw] = rank4(op, "weight", weight)?;
    if wf != f {
        return Err(Error::invalid(
            op,
            format!(
                "weight {weight} [in, out, kh, kw] takes {wf} input channels but input {input} has {f}"
            ),
        ));
    }
    Ok((conv_transpose2d_geometry(op, input, c, [kh, kw], p)?, f))
}

/// Fails unless `got` has as many elements as `want` (a buffer may be a view of another shape).
pub fn same_numel(op: &str, what: &str, got: &Shape, want: &Shape) -> Result<()> {
    if got.numel() != want.numel() {
        return Err(Error::invalid(
            op,
            format!(
                "{what} has shape {got} ({} elements) but {want} ({} elements) is needed",
                got.numel(),
                want.numel()
            ),
        ));
    }
    Ok(())
}

/// Destructures a rank-4 shape with no zero dimension, or says which tensor was wrong.
pub fn rank4(op: &str, what: &str, s: &Shape) -> Result<[usize; 4]> {
    // `contains`, not a product of the dimensions: huge dimensions must not overflow.
    match *s.dims() {
        [a, b, c, d] if !s.0.contains(&0) => Ok([a, b, c, d]),
        [_, _, _, _] => Err(Error::invalid(
            op,
            format!("{what} shape {s} has a zero-sized dimension"),
        )),
        _ => Err(Error::invalid(
            op,
            format!("{what} must be rank 4 (NCHW), got {s}"),
        )),
    }
}

/// Fails when any dimension is zero: no kernel is dispatched over nothing.
pub fn nonempty(op: &str, what: &str, s: &Shape) -> Result<()> {
    if s.numel() == 0 {
        return Err(Error::invalid(
            op,
            format!("{what} shape {s} has a zero-sized dimension"),
        ));
    }
    Ok(())
}

/// Fails unless two shapes are equal.
pub fn same(op: &str, a_name: &str, a: &Shape, b_name: &str, b: &Shape) -> Result<()> {
    if a != b {
        return Err(Error::invalid(
            op,
            format!("{a_name} {a} and {b_name} {b} must have the same shape"),
        ));
    }
    Ok(())
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape(d)
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
