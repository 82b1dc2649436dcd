//! CPU twins of shaders/pointwise.wgsl, and the shape checks both sides share.
//!
//! Each function computes in f64 and rounds once to f32. Activations use [`Activation::apply`],
//! the same definition the matmul epilogue's reference uses. Backward functions follow PyTorch's
//! conventions: `relu'(0) = 0`, leaky ReLU takes the slope for `x ≤ 0`, and the sigmoid and tanh
//! gradients take the forward *output* `y`.

use crate::error::{Error, Result};
use crate::shape::{Shape, nonempty, same};
use crate::spec::Activation;
use crate::tensor::Tensor;

/// Checks the operands of a two-input elementwise op: same shape, no zero-sized dimension.
pub fn check_binary(op: &str, a_name: &str, a: &Shape, b_name: &str, b: &Shape) -> Result<()> {
    same(op, a_name, a, b_name, b)?;
    nonempty(op, a_name, a)
}

/// `(channels, inner)` of `bias_add_channel` for `x` `[N, C, spatial...]` and `b` `[C]`, where
/// `inner` is the product of the spatial dimensions (1 for `[N, C]`).
pub fn bias_channel_dims(x: &Shape, b: &Shape) -> Result<(usize, usize)> {
    let op = "bias_add_channel";
    nonempty(op, "x", x)?;
    if x.rank() < 2 {
        return Err(Error::invalid(
            op,
            format!("x must be [N, C, spatial...] (rank ≥ 2), got {x}"),
        ));
    }
    let c = x.dim(1);
    if b.dims() != [c] {
        return Err(Error::invalid(
            op,
            format!("bias must be [{c}] for x {x} (one per channel, dimension 1), got {b}"),
        ));
    }
    Ok((c, x.dims()[2..].iter().product()))
}

/// The column count of `bias_add_column` for `x` `[rows, cols]` and `b` `[cols]`.
pub fn bias_column_dims(x: &Shape, b: &Shape) -> Result<usize> {
    let op = "bias_add_column";
    nonempty(op, "x", x)?;
    let &[_, cols] = x.dims() else {
        return Err(Error::invalid(
            op,
            format!("x must be [rows, cols] (rank 2), got {x}"),
        ));
    };
    if b.dims() != [cols] {
        return Err(Error::invalid(
            op,
            format!("bias must be [{cols}] for x {x} (one per column), got {b}"),
        ));
    }
    Ok(cols)
}

fn unary(op: &str, x: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor> {
    nonempty(op, "x", &x.shape)?;
    let data = x.data.iter().map(|&v| f(v as f64) as f32).collect();
    Tensor::new(x.shape.clone(), data)
}

fn binary(
    op: &str,
    names: [&str; 2],
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(f64, f64) -> f64,
) -> Result<Tensor> {
    check_binary(op, names[0], &a.shape, names[1], &b.shape)?;
    let data = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&u, &v)| f(u as f64, v as f64) as f32)
        .collect();
    Tensor::new(a.shape.clone(), data)
}

pub fn relu_forward(x: &Tensor) -> Result<Tensor> {
    unary("relu_forward", x, |v| Activation::Relu.apply(v))
}

/// `dx = 0` where `x ≤ 0`, else `dy` (PyTorch's `threshold_backward`: a NaN `x` passes `dy`).
pub fn relu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("relu_backward", ["x", "dy"], x, dy, |x, dy| {
        if x <= 0.0 { 0.0 } else { dy }
    })
}

/// `x` for `x > 0`, else `slope·x` (PyTorch's `negative_slope`).
pub fn leaky_relu_forward(slope: f32, x: &Tensor) -> Result<Tensor> {
    unary("leaky_relu_forward", x, |v| {
        Activation::LeakyRelu(slope).apply(v)
    })
}

/// `dx = dy` where `x > 0`, else `slope·dy`.
pub fn leaky_relu_backward(slope: f32, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("leaky_relu_backward", ["x", "dy"], x, dy, |x, dy| {
        if x > 0.0 { dy } else { slope as f64 * dy }
    })
}

pub fn sigmoid_forward(x: &Tensor) -> Result<Tensor> {
    unary("sigmoid_forward", x, |v| Activation::Sigmoid.apply(v))
}

/// `dx = dy·y·(1 − y)` from the forward output `y`.
pub fn sigmoid_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("sigmoid_backward", ["y", "dy"], y, dy, |y, dy| {
        dy * y * (1.0 - y)
    })
}

pub fn tanh_forward(x: &Tensor) -> Result<Tensor> {
    unary("tanh_forward", x, |v| Activation::Tanh.apply(v))
}

/// `dx = dy·(1 − y²)` from the forward output `y`.
pub fn tanh_backward(y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("tanh_backward", ["y", "dy"], y, dy, |y, dy| {
        dy * (1.0 - y * y)
    })
}

/// `y = x·Φ(x)` (PyTorch's exact GELU).
pub fn gelu_forward(x: &Tensor) -> Result<Tensor> {
    unary("gelu_forward", x, |v| Activation::Gelu.apply(v))
}

/// `dx = dy·(Φ(x) + x·φ(x))` from the input `x` (φ the standard normal density).
pub fn gelu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("gelu_backward", ["x", "dy"], x, dy, |x, dy| {
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        dy * (crate::spec::std_normal_cdf(x) + x * pdf)
    })
}

/// `y = x·σ(x)`.
pub fn silu_forward(x: &Tensor) -> Result<Tensor> {
    unary("silu_forward", x, |v| Activation::Silu.apply(v))
}

/// `dx = dy·σ(x)·(1 + x·(1 − σ(x)))` from the input `x`.
pub fn silu_backward(x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    binary("silu_backward", ["x", "dy"], x, dy, |x, dy| {
        let s = Activation::Sigmoid.apply(x);
        dy * s * (1.0 + x * (1.0 - s))
    })
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("add", ["a", "b"], a, b, |a, b| a + b)
}

pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("sub", ["a", "b"], a, b, |a, b| a - b)
}

pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary("mul", ["a", "b"], a, b, |a, b| a * b)
}

/// `s·x`.
pub fn scale(s: f32, x: &Tensor) -> Result<Tensor> {
    unary("scale", x, |v| s as f64 * v)
}

/// `y[n, c, ...] = x[n, c, ...] + b[c]` for `x` `[N, C, spatial...]`.
pub fn bias_add_channel(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (channels, inner) = bias_channel_dims(&x.shape, &b.shape)?;
    let mut y = x.clone();
    for (i, v) in y.data.iter_mut().enumerate() {
        *v = (*v as f64 + b.data[(i / inner) % channels] as f64) as f32;
    }
    Ok(y)
}

/// `y[r, c] = x[r, c] + b[c]` for `x` `[rows, cols]`.
pub fn bias_add_column(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let cols = bias_column_dims(&x.shape, &b.shape)?;
    let mut y = x.clone();
    for (i, v) in y.data.iter_mut().enumerate() {
        *v = (*v as f64 + b.data[i % cols] as f64) as f32;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    //! Each backward twin against central differences of its forward twin, in f64: for
    //! `L(x) = Σ dy·f(x)`, `∂L/∂x_i = (L(x + h·e_i) − L(x − h·e_i)) / 2h` must equal `dx_i`.

    use super::*;
    use crate::cpu::finite_diff::{dot, numeric_grad};

    /// Inputs in [-2, 2) kept at least 0.05 from the kinks of relu and leaky relu at 0, so the
    /// ±h steps never cross them.
    fn inputs() -> Tensor {
        let mut x = Tensor::uniform([3, 7], -2.0, 2.0, 11);
        for v in &mut x.data {
            if v.abs() < 0.05 {
                *v += 0.1;
            }
        }
        x
    }

    fn assert_close(what: &str, analytic: &[f32], numeric: &[f64], tol: f64) {
        for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
            let err = (a as f64 - n).abs();
            assert!(
                err <= tol * (1.0 + n.abs()),
                "{what}[{i}]: analytic {a} numeric {n} (error {err:e})"
            );
        }
    }

    fn check(
        what: &str,
        forward: impl Fn(&Tensor) -> Tensor,
        backward: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
    ) {
        let x = inputs();
        let dy = Tensor::uniform([3, 7], -1.0, 1.0, 12);
        let y = forward(&x);
        let dx = backward(&x, &y, &dy);
        let numeric = numeric_grad(&x, 1e-2, |x| dot(&dy, &forward(x)));
        assert_close(what, &dx.data, &numeric, 1e-3);
    }

    #[test]
    fn activation_gradients_match_finite_differences() {
        check(
            "relu",
            |x| relu_forward(x).unwrap(),
            |x, _, dy| relu_backward(x, dy).unwrap(),
        );
        check(
            "leaky_relu",
            |x| leaky_relu_forward(0.2, x).unwrap(),
            |x, _, dy| leaky_relu_backward(0.2, x, dy).unwrap(),
        );
        check(
            "sigmoid",
            |x| sigmoid_forward(x).unwrap(),
            |_, y, dy| sigmoid_backward(y, dy).unwrap(),
        );
        check(
            "tanh",
            |x| tanh_forward(x).unwrap(),
            |_, y, dy| tanh_backward(y, dy).unwrap(),
        );
        check(
            "gelu",
            |x| gelu_forward(x).unwrap(),
            |x, _, dy| gelu_backward(x, dy).unwrap(),
        );
        check(
            "silu",
            |x| silu_forward(x).unwrap(),
            |x, _, dy| silu_backward(x, dy).unwrap(),
        );
        // mul's gradient with respect to a is mul(dy, b), and scale's is scale(s, dy).
        let b = Tensor::uniform([3, 7], -1.0, 1.0, 13);
        check(
            "mul",
            |x| mul(x, &b).unwrap(),
            |_, _, dy| mul(dy, &b).unwrap(),
        );
        check(
            "scale",
            |x| scale(-1.5, x).unwrap(),
            |_, _, dy| scale(-1.5, dy).unwrap(),
        );
    }

    #[test]
    fn conventions_at_zero_follow_pytorch() {
        let x = Tensor::new([2], vec![0.0, -0.0]).unwrap();
        let dy = Tensor::new([2], vec![3.0, 3.0]).unwrap();
        assert_eq!(relu_backward(&x, &dy).unwrap().data, [0.0, 0.0]);
        assert_eq!(leaky_relu_backward(0.1, &x, &dy).unwrap().data, [0.3, 0.3]);
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_op() {
        let a = Tensor::zeros([2, 3]);
        let b = Tensor::zeros([3, 2]);
        let err = add(&a, &b).unwrap_err().to_string();
        assert!(err.contains("add") && err.contains("[2, 3]"), "{err}");
        let empty = Tensor::zeros([0, 3]);
        assert!(
            relu_forward(&empty)
                .unwrap_err()
                .to_string()
                .contains("relu_forward")
        );
        let x = Tensor::zeros([2, 3, 4, 4]);
        let err = bias_add_channel(&x, &Tensor::zeros([4])).unwrap_err();
        assert!(err.to_string().contains("bias_add_channel"), "{err}");
        let err = bias_add_column(&x, &Tensor::zeros([4])).unwrap_err();
        assert!(err.to_string().contains("bias_add_column"), "{err}");
    }
}
