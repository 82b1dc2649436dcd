//! One node evaluated by the CPU twin of its kernel ([`crate::cpu`]), in f64 where they sum.

use crate::cpu;
use crate::error::{Error, Result};
use crate::graph::{Node, Op};
use crate::spec::Activation;
use crate::tensor::Tensor;

/// Class labels are kept on the CPU side as f32 values (exact below 2²⁴).
pub(crate) fn labels_of(t: &Tensor) -> Vec<u32> {
    t.data.iter().map(|&v| v as u32).collect()
}

/// The mean and variance a batch-norm node reads: `inputs[1..3]` when it has `running` inputs,
/// else the rows of the batch's `[2, C]` moments `inputs[1]`.
fn moments(inputs: &[&Tensor], running: usize) -> Result<(Tensor, Tensor)> {
    if inputs.len() == running {
        return Ok((inputs[1].clone(), inputs[2].clone()));
    }
    let s = inputs[1];
    Ok((cpu::batch_norm::row(s, 0)?, cpu::batch_norm::row(s, 1)?))
}

/// The value of `node` from the values of its inputs.
pub(crate) fn eval(node: &Node, inputs: &[&Tensor]) -> Result<Tensor> {
    let x = |i: usize| inputs[i];
    let shaped = |data: Vec<f32>| Tensor::new(node.shape.clone(), data);
    match &node.op {
        Op::Input | Op::Labels | Op::Param => Err(Error::invalid(
            &node.name,
            "a fed or stored value has no kernel (the executor provides it)",
        )),
        Op::Const(t) => Ok((**t).clone()),
        Op::Im2col(g) => shaped(cpu::im2col::im2col(g, &x(0).data)?),
        Op::Col2im(g) => match inputs.get(1) {
            Some(b) => shaped(cpu::im2col::col2im_bias(g, &x(0).data, &b.data)?),
            None => shaped(cpu::im2col::col2im(g, &x(0).data)?),
        },
        Op::Matmul(spec) => {
            let bias = inputs.get(2).map_or(&[][..], |b| &b.data[..]);
            shaped(cpu::matmul::matmul(spec, &x(0).data, &x(1).data, bias)?)
        }
        Op::Noise { std, seed } => {
            cpu::noise::gaussian_noise(x(0), *std, *seed, labels_of(x(1))[0])
        }
        Op::Dropout { p, seed } => cpu::noise::dropout_forward(x(0), *p, *seed, labels_of(x(1))[0]),
        Op::DropoutGrad { p, seed } => {
            cpu::noise::dropout_backward(x(0), *p, *seed, labels_of(x(1))[0])
        }
        Op::Reparameterize { seed } => cpu::noise::reparameterize(x(0), *seed, labels_of(x(1))[0]),
        Op::ReparameterizeGrad { seed } => {
            cpu::noise::reparameterize_backward(x(0), x(1), *seed, labels_of(x(2))[0])
        }
        Op::KlDivergence => cpu::loss::kl_divergence(x(0)),
        Op::KlDivergenceGrad => cpu::loss::kl_divergence_backward(x(0), x(1)),
        Op::BatchNormStats => cpu::batch_norm::batch_norm_stats(x(0)),
        // The batch's [2, C] moments (training) or the running mean and variance (evaluation).
        Op::BatchNorm { eps } => {
            let (m, v) = moments(inputs, 5)?;
            cpu::batch_norm::batch_norm_forward(
                x(0),
                &m,
                &v,
                x(inputs.len() - 2),
                x(inputs.len() - 1),
                *eps,
            )
        }
        Op::BatchNormSums { eps } => {
            let (m, v) = moments(inputs, 4)?;
            cpu::batch_norm::batch_norm_backward_sums(x(0), &m, &v, x(inputs.len() - 1), *eps)
        }
        Op::BatchNormGrad { eps } => {
            let (m, v) = moments(&inputs[..2], 3)?;
            cpu::batch_norm::batch_norm_backward(x(0), &m, &v, x(2), x(3), x(4), *eps)
        }
        Op::BatchNormGradEval { eps } => {
            cpu::batch_norm::batch_norm_backward_eval(x(0), x(1), x(2), *eps)
        }
        Op::Pool(s) => cpu::pool::forward(s, x(0)),
        // dy comes last; x (first) only for a max pool, which alone reads it.
        Op::PoolGrad(s) => cpu::pool::backward(s, x(0), x(inputs.len() - 1)),
        Op::Activation(act) => match act {
            Activation::None => Ok(x(0).clone()),
            Activation::Relu => cpu::pointwise::relu_forward(x(0)),
            Activation::LeakyRelu(s) => cpu::pointwise::leaky_relu_forward(*s, x(0)),
            Activation::Sigmoid => cpu::pointwise::sigmoid_forward(x(0)),
            Activation::Tanh => cpu::pointwise::tanh_forward(x(0)),
            Activation::Gelu => cpu::pointwise::gelu_forward(x(0)),
            Activation::Silu => cpu::pointwise::silu_forward(x(0)),
        },
        Op::ActivationGrad(act) => match act {
            Activation::None => Ok(x(1).clone()),
            Activation::Relu => cpu::pointwise::relu_backward(x(0), x(1)),
            Activation::LeakyRelu(s) => cpu::pointwise::leaky_relu_backward(*s, x(0), x(1)),
            Activation::Sigmoid => cpu::pointwise::sigmoid_backward(x(0), x(1)),
            Activation::Tanh => cpu::pointwise::tanh_backward(x(0), x(1)),
            Activation::Gelu => cpu::pointwise::gelu_backward(x(0), x(1)),
            Activation::Silu => cpu::pointwise::silu_backward(x(0), x(1)),
        },
        Op::Add => cpu::pointwise::add(x(0), x(1)),
        Op::Scale(s) => cpu::pointwise::scale(*s, x(0)),
        Op::Reshape => shaped(x(0).data.clone()),
        Op::PointLoss(k) => cpu::loss::point_loss(*k, x(0), x(1)),
        Op::PointLossGrad(k) => cpu::loss::point_loss_backward(*k, x(0), x(1), x(2)),
        Op::CrossEntropy => cpu::loss::softmax_cross_entropy(x(0), &labels_of(x(1))),
        Op::CrossEntropyGrad => {
            cpu::loss::softmax_cross_entropy_backward(x(0), &labels_of(x(1)), x(2))
        }
    }
}
