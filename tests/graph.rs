//! Graph-level tests on the CPU reference (no GPU needed): the whole graph's gradients against
//! finite differences, frozen parameters, refusal of models whose layers do not fit, and the
//! memory plan of the default preset.
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

use wgrad::exec::{Device, Feed, ProgramSpec, Session};
use wgrad::graph::{Graph, MemoryPlan, NodeId, backward, fuse_activations};
use wgrad::nn::{AutoencoderConfig, Layer, Optimizer, Sequential, Size2, init_params};
use wgrad::train::training_graph;
use wgrad::{Error, SgdConfig, Tensor};

/// A small model with every layer type, ending in the loss `loss` builds.
fn every_layer() -> Sequential {
    Sequential::new(
        "net",
        vec![
            Layer::conv2d(2, 3, 3, 2, 1),
            Layer::LeakyReLU {
                negative_slope: 0.1,
            },
            Layer::SiLU,
            Layer::conv_transpose2d(3, 2, 3, 2, 1, 1),
            Layer::Tanh,
            Layer::Flatten,
            Layer::linear(72, 12),
            // After a matmul, but not fusible into it (its gradient needs the input).
            Layer::GELU,
            Layer::ReLU,
            Layer::Unflatten {
                dims: vec![3, 2, 2],
            },
            Layer::Flatten,
            Layer::linear(12, 4),
            Layer::Sigmoid,
        ],
    )
}

struct Built {
    graph: Graph,
    input: NodeId,
    labels: Option<NodeId>,
    loss: NodeId,
}

/// Pooling and upsampling between a convolution and a Linear: 6×6 → 3×3 (max) → 6×6 (nearest)
/// → 6×6 (average, overlapping and padded). Apart from `every_layer`, whose early gradients they
/// would shrink below what f32 finite differences resolve.
fn pooling_layers() -> Sequential {
    Sequential::new(
        "net",
        vec![
            Layer::conv2d(2, 3, 3, 1, 1),
            Layer::MaxPool2d {
                kernel_size: Size2::Square(2),
                stride: None,
                padding: Size2::default(),
            },
            Layer::Upsample {
                scale_factor: Size2::Pair([2, 2]),
                mode: "nearest".into(),
            },
            Layer::AvgPool2d {
                kernel_size: Size2::Square(3),
                stride: Some(Size2::Square(1)),
                padding: Size2::Square(1),
            },
            Layer::Flatten,
            Layer::linear(108, 4),
        ],
    )
}

/// The convolution options PyTorch has beyond the preset's: non-square kernels, strides and
/// paddings, dilation, and no bias (6×6 → 4×3 → 8×3 → 4).
fn conv_option_layers() -> Sequential {
    use wgrad::nn::Size2::{Pair, Square};
    Sequential::new(
        "net",
        vec![
            Layer::Conv2d {
                in_channels: 2,
                out_channels: 3,
                kernel_size: Pair([3, 2]),
                stride: Pair([1, 2]),
                padding: Pair([1, 0]),
                dilation: Pair([2, 1]),
                bias: false,
            },
            Layer::Tanh,
            Layer::ConvTranspose2d {
                in_channels: 3,
                out_channels: 2,
                kernel_size: Pair([2, 3]),
                stride: Pair([2, 1]),
                padding: Pair([0, 1]),
                output_padding: Square(0),
                dilation: Square(1),
                bias: false,
            },
            Layer::Flatten,
            Layer::Linear {
                in_features: 48,
                out_features: 4,
                bias: false,
            },
        ],
    )
}

/// The model on a `[2, 2, 6, 6]` batch, with MSE against a target or cross-entropy on labels.
fn build(model: fn() -> Sequential, cross_entropy: bool) -> Built {
    let mut g = Graph::new();
    let input = g.input("x", [2, 2, 6, 6]).unwrap();
    let y = model().forward(&mut g, input).unwrap();
    let (loss, labels) = if cross_entropy {
        let l = g.labels("labels", 2).unwrap();
        (g.cross_entropy(y, l).unwrap(), Some(l))
    } else {
        let t = g.constant("target", Tensor::uniform([2, 4], 0.0, 1.0, 5));
        (g.mse_loss(y, t).unwrap(), None)
    };
    Built {
        graph: g,
        input,
        labels,
        loss,
    }
}

fn loss_of(
    model: fn() -> Sequential,
    params: &[(String, Tensor)],
    cross_entropy: bool,
    x: &Tensor,
) -> f64 {
    let b = build(model, cross_entropy);
    let mut s = Session::new(Device::Cpu, params.to_vec(), &|_| false, None).unwrap();
    let mut p = s
        .compile(
            b.graph,
            ProgramSpec {
                loss: Some(b.loss),
                ..Default::default()
            },
        )
        .unwrap();
    let labels = [1u32, 3];
    let mut feeds = vec![(b.input, Feed::Data(x))];
    if let Some(l) = b.labels {
        feeds.push((l, Feed::Labels(&labels)));
    }
    s.run(&mut p, &feeds).unwrap();
    s.last_loss(&mut p).unwrap() as f64
}

fn finite_differences(model: fn() -> Sequential, cross_entropy: bool) {
    let params = init_params(&model().params(), 11);
    let x = Tensor::uniform([2, 2, 6, 6], -1.0, 1.0, 3);
    let mut b = build(model, cross_entropy);
    let grads = backward(&mut b.graph, b.loss, &|_| false).unwrap();
    let mut s = Session::new(Device::Cpu, params.clone(), &|_| false, None).unwrap();
    let mut p = s
        .compile(
            b.graph,
            ProgramSpec {
                loss: Some(b.loss),
                grads: Some(grads),
                ..Default::default()
            },
        )
        .unwrap();
    let labels = [1u32, 3];
    let mut feeds = vec![(b.input, Feed::Data(&x))];
    if let Some(l) = b.labels {
        feeds.push((l, Feed::Labels(&labels)));
    }
    s.run(&mut p, &feeds).unwrap();
    let analytic = s.gradients(&p).unwrap();
    assert_eq!(analytic.len(), params.len());
    // Central differences of the graph (f32 tensors, f64 sums), compared in f64. ReLU and
    // LeakyReLU have kinks: where a ±h step crosses one, the one-sided differences disagree and
    // the central one means nothing, so such elements are counted and skipped (a few at most).
    let h = 1e-2f32;
    let base = loss_of(model, &params, cross_entropy, &x);
    let (mut checked, mut kinks) = (0, 0);
    for (k, (name, g)) in analytic.iter().enumerate() {
        let scale = g.data.iter().fold(1e-4f64, |m, v| m.max(v.abs() as f64));
        let mut worst = 0f64;
        for i in 0..g.numel() {
            let mut plus = params.clone();
            plus[k].1.data[i] += h;
            let mut minus = params.clone();
            minus[k].1.data[i] -= h;
            let (lp, lm) = (
                loss_of(model, &plus, cross_entropy, &x),
                loss_of(model, &minus, cross_entropy, &x),
            );
            let (fwd, bwd) = ((lp - base) / h as f64, (base - lm) / h as f64);
            if (fwd - bwd).abs() > 0.01 * scale {
                kinks += 1;
                continue;
            }
            checked += 1;
            let numeric = (lp - lm) / (2.0 * h as f64);
            worst = worst.max((numeric - g.data[i] as f64).abs() / scale);
        }
        println!(
            "{name}: largest |numeric − analytic| / max|grad| = {worst:.2e} (max|grad| {scale:.2e})"
        );
        assert!(
            worst < 1e-2,
            "{name}: gradient differs from finite differences by {worst:.3e} of its scale"
        );
    }
    println!("{checked} elements checked, {kinks} skipped at a kink");
    assert!(
        kinks * 10 < checked,
        "too many kinks: {kinks} of {}",
        kinks + checked
    );
}

#[test]
fn whole_graph_gradients_match_finite_differences_mse() {
    finite_differences(every_layer, false);
}

#[test]
fn conv_option_gradients_match_finite_differences() {
    let model = conv_option_layers();
    // No bias anywhere: three weights, the state_dict PyTorch would have.
    let names: Vec<String> = model.params().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["net.0.weight", "net.2.weight", "net.4.weight"]);
    let shapes: Vec<Vec<usize>> = model
        .params()
        .iter()
        .map(|p| p.shape.dims().to_vec())
        .collect();
    assert_eq!(shapes, [vec![3, 2, 3, 2], vec![3, 2, 2, 3], vec![4, 48]]);
    finite_differences(conv_option_layers, false);
    // The options survive a config round trip; defaults stay out of the TOML.
    let config = AutoencoderConfig {
        image: [2, 6, 6],
        encoder: model.layers.clone(),
        decoder: vec![
            Layer::linear(4, 72),
            Layer::Unflatten {
                dims: vec![2, 6, 6],
            },
        ],
        ..AutoencoderConfig::default()
    };
    let text = config.to_toml();
    assert!(
        text.contains("dilation = [2, 1]") && text.contains("bias = false"),
        "{text}"
    );
    assert_eq!(text.matches("dilation").count(), 1, "{text}");
    assert_eq!(AutoencoderConfig::from_toml(&text, "test").unwrap(), config);
}

#[test]
fn pooling_gradients_match_finite_differences() {
    finite_differences(pooling_layers, false);
    finite_differences(pooling_layers, true);
}

#[test]
fn whole_graph_gradients_match_finite_differences_cross_entropy() {
    finite_differences(every_layer, true);
}

#[test]
fn frozen_parameters_keep_their_bits_and_get_no_gradient() {
    let config = AutoencoderConfig::default();
    let params = init_params(&config.params(), 1);
    let frozen = |n: &str| n.starts_with("encoder.");
    let wgrad::train::TrainingGraph {
        graph,
        input,
        loss,
        grads,
        ..
    } = training_graph(&config, 4, &frozen).unwrap();
    let names: Vec<&str> = grads.params.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "decoder.0.weight",
            "decoder.0.bias",
            "decoder.3.weight",
            "decoder.3.bias",
            "decoder.5.weight",
            "decoder.5.bias"
        ]
    );
    let sgd = Optimizer::Sgd(SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
        ..SgdConfig::default()
    });
    let mut s = Session::new(Device::Cpu, params.clone(), &frozen, Some(sgd)).unwrap();
    let mut p = s
        .compile(
            graph,
            ProgramSpec {
                loss: Some(loss),
                grads: Some(grads),
                ..Default::default()
            },
        )
        .unwrap();
    let x = Tensor::uniform([4, 1, 28, 28], 0.0, 1.0, 2);
    for _ in 0..3 {
        s.step(&mut p, &[(input, Feed::Data(&x))]).unwrap();
    }
    let after = s.state().unwrap();
    for ((name, before), (_, now)) in params.iter().zip(&after.params) {
        let same = before
            .data
            .iter()
            .zip(&now.data)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert_eq!(
            same,
            frozen(name),
            "{name}: frozen {} but changed {}",
            frozen(name),
            !same
        );
    }
    assert!(
        after
            .optimizer
            .iter()
            .all(|(n, _)| n.starts_with("decoder.")),
        "no optimizer state for frozen parameters"
    );
}

#[test]
fn frozen_encoder_computes_fewer_kernels() {
    let config = AutoencoderConfig::default();
    let params = init_params(&config.params(), 1);
    let count = |frozen: &dyn Fn(&str) -> bool| {
        let wgrad::train::TrainingGraph {
            graph, loss, grads, ..
        } = training_graph(&config, 2, frozen).unwrap();
        let s = Session::new(Device::Cpu, params.clone(), frozen, None).unwrap();
        s.compile(
            graph,
            ProgramSpec {
                loss: Some(loss),
                grads: Some(grads),
                ..Default::default()
            },
        )
        .unwrap()
        .launch_count()
    };
    let (all, frozen) = (
        count(&|_| false),
        count(&|n: &str| n.starts_with("encoder.")),
    );
    println!("kernels per step: {all} training everything, {frozen} with the encoder frozen");
    assert!(frozen < all);
}

fn model_error(e: Error) -> (String, String) {
    match e {
        Error::Model { layer, message } => (layer, message),
        other => panic!("expected a model error, got {other}"),
    }
}

#[test]
fn a_linear_layer_that_does_not_fit_is_refused_naming_it() {
    let mut config = AutoencoderConfig::default();
    config.encoder[5] = Layer::linear(1500, 32);
    let (layer, message) = model_error(config.check().unwrap_err());
    println!("{layer}: {message}");
    assert!(layer.starts_with("encoder.5"), "{layer}");
    assert!(
        message.contains("[1, 1568]") && message.contains("[32, 1500]"),
        "{message}"
    );
}

#[test]
fn an_image_size_the_stride_two_stack_cannot_halve_is_refused() {
    let (layer, message) = model_error(AutoencoderConfig::preset(1, 27, 32, [16, 32]).unwrap_err());
    println!("{layer}: {message}");
    assert!(
        message.contains("27") && message.contains("multiple of 4"),
        "{message}"
    );
    // The default layers on 30×30 images: 30 → 15 → 8, so the Linear gets 2048 features.
    let config = AutoencoderConfig {
        image: [1, 30, 30],
        ..AutoencoderConfig::default()
    };
    let (layer, message) = model_error(config.check().unwrap_err());
    println!("{layer}: {message}");
    assert!(
        layer.starts_with("encoder.5") && message.contains("2048"),
        "{layer}: {message}"
    );
    // A decoder that gives back the wrong size.
    let mut config = AutoencoderConfig::default();
    config.decoder[5] = Layer::conv_transpose2d(16, 1, 3, 2, 1, 0);
    let (layer, message) = model_error(config.check().unwrap_err());
    println!("{layer}: {message}");
    assert!(
        layer.starts_with("decoder.6") && message.contains("[1, 1, 27, 27]"),
        "{layer}: {message}"
    );
}

#[test]
fn configs_round_trip_through_toml() {
    let config = AutoencoderConfig::default();
    let text = config.to_toml();
    assert_eq!(
        AutoencoderConfig::from_toml(&text, "x.toml").unwrap(),
        config
    );
    let err = AutoencoderConfig::from_toml("image = [1, 28]\n", "bad.toml").unwrap_err();
    assert!(err.to_string().starts_with("bad.toml:"), "{err}");
}

#[test]
fn default_preset_memory_plan_at_batch_64() {
    let config = AutoencoderConfig::default();
    let wgrad::train::TrainingGraph {
        graph, loss, grads, ..
    } = training_graph(&config, 64, &|_| false).unwrap();
    let grad_nodes: Vec<NodeId> = grads.params.iter().map(|p| p.2).collect();
    let plan = MemoryPlan::new(&graph, &[loss], &grad_nodes);
    let (peak, naive) = (plan.peak_bytes(), plan.naive_bytes);
    println!(
        "default preset, batch 64: planned peak {peak} bytes ({:.2} MiB) in {} pool buffers + {} fixed, naive sum {naive} bytes ({:.2} MiB): {:.0}%",
        peak as f64 / 1048576.0,
        plan.slot_bytes.len(),
        plan.fixed_bytes,
        naive as f64 / 1048576.0,
        100.0 * peak as f64 / naive as f64
    );
    assert!(peak < naive);
}

#[test]
fn activations_fuse_into_the_matmul_before_them() {
    let mut g = Graph::new();
    let x = g.input("x", [2, 1, 28, 28]).unwrap();
    AutoencoderConfig::default()
        .encoder()
        .forward(&mut g, x)
        .unwrap();
    // encoder.1 and encoder.3 (ReLU after each conv's matmul) fuse; nothing else can.
    assert_eq!(fuse_activations(&mut g, &[]), 2);
}

#[test]
fn no_two_live_tensors_share_a_pool_buffer() {
    use wgrad::graph::Storage;
    for batch in [1, 3, 64] {
        let config = AutoencoderConfig::default();
        let wgrad::train::TrainingGraph {
            graph, loss, grads, ..
        } = training_graph(&config, batch, &|_| false).unwrap();
        let grad_nodes: Vec<NodeId> = grads.params.iter().map(|p| p.2).collect();
        let plan = MemoryPlan::new(&graph, &[loss], &grad_nodes);
        // Live range of each pool tensor: from the node that writes it to the last node that
        // reads it (directly or through views).
        let root = |mut i: usize| loop {
            match plan.storage[i] {
                Storage::View(r) => i = r.0,
                _ => return i,
            }
        };
        let mut range: Vec<Option<(usize, usize)>> = vec![None; graph.len()];
        for (i, s) in plan.storage.iter().enumerate() {
            if let Storage::Pool(_) = s {
                range[i] = Some((i, if i == loss.0 { usize::MAX } else { i }));
            }
        }
        for (i, n) in graph.nodes().iter().enumerate() {
            if plan.storage[i] == Storage::Skipped || matches!(plan.storage[i], Storage::View(_)) {
                continue;
            }
            for x in &n.inputs {
                let r = root(x.0);
                if let Some((s, e)) = range[r] {
                    range[r] = Some((s, e.max(i)));
                }
            }
        }
        let pool: Vec<(usize, usize, (usize, usize))> = plan
            .storage
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Storage::Pool(slot) => Some((i, *slot, range[i].unwrap())),
                _ => None,
            })
            .collect();
        for (a, sa, (a0, a1)) in &pool {
            for (b, sb, (b0, b1)) in &pool {
                if a < b && sa == sb {
                    assert!(
                        a1 < b0 || b1 < a0,
                        "batch {batch}: nodes {a} ({a0}..{a1}) and {b} ({b0}..{b1}) share slot {sa}"
                    );
                }
            }
            let bytes = graph.shape(NodeId(*a)).numel() as u64 * 4;
            assert!(
                plan.slot_bytes[*sa] >= bytes,
                "slot {sa} too small for node {a}"
            );
        }
    }
}

/// A trainer whose state was loaded from an earlier run counts its steps from there: losses are
/// keyed by the optimizer step, with no arithmetic on the program's own run count to underflow.
#[test]
fn a_resumed_trainer_counts_from_its_state() {
    use wgrad::train::Trainer;
    let config = AutoencoderConfig::default();
    let adam = Optimizer::Adam(wgrad::AdamConfig::adam());
    let mut first = Trainer::new(Device::Cpu, config.clone(), 2, adam, 1).unwrap();
    let x = Tensor::uniform([2, 1, 28, 28], 0.0, 1.0, 4);
    for _ in 0..3 {
        first.step(&x).unwrap();
    }
    let state = first.state().unwrap();
    let mut resumed = Trainer::new(Device::Cpu, config, 2, adam, 1).unwrap();
    resumed.load_state(&state).unwrap();
    resumed.step(&x).unwrap();
    let steps: Vec<u64> = resumed
        .flush_losses()
        .unwrap()
        .iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(steps, vec![4]);
    // And an earlier state loaded into a trainer that has run further.
    let mut early = state.clone();
    early.step = 1;
    resumed.load_state(&early).unwrap();
    resumed.step(&x).unwrap();
    let steps: Vec<u64> = resumed
        .flush_losses()
        .unwrap()
        .iter()
        .map(|l| l.0)
        .collect();
    assert_eq!(steps, vec![2]);
}

/// Saving keeps exactly one sidecar per checkpoint: the one it names. Sidecars of earlier steps,
/// and one that a run killed between writing a sidecar and its checkpoint left behind, go; files
/// of other checkpoints or other names stay.
#[test]
fn saving_keeps_only_the_named_sidecar() {
    use wgrad::io::{Checkpoint, load_model, save_model};
    use wgrad::train::Trainer;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.safetensors");
    let config = AutoencoderConfig::default();
    let adam = Optimizer::Adam(wgrad::AdamConfig::adam());
    let mut t = Trainer::new(Device::Cpu, config.clone(), 2, adam, 1).unwrap();
    let x = Tensor::uniform([2, 1, 28, 28], 0.0, 1.0, 4);
    for name in [
        "a.optim-7.safetensors",
        "b.optim-1.safetensors",
        "a.optim-x.safetensors",
    ] {
        std::fs::write(dir.path().join(name), b"stray").unwrap();
    }
    for _ in 0..2 {
        t.step(&x).unwrap();
        save_model(&path, &config, &t.state().unwrap(), Some("adam"), &[]).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "a.optim-2.safetensors",
            "a.optim-x.safetensors",
            "a.safetensors",
            "b.optim-1.safetensors"
        ]
    );
    let named = &Checkpoint::load(&path).unwrap().metadata["wgrad.optimizer_state"];
    assert_eq!(named, "a.optim-2.safetensors");
    assert_eq!(load_model(&path).unwrap().state.step, 2);
}

#[test]
fn gelu_and_silu_stay_pointwise() {
    use wgrad::spec::{Activation, MatmulSpec};
    for act in [Activation::Gelu, Activation::Silu] {
        let mut g = Graph::new();
        let x = g.input("x", [4, 8]).unwrap();
        let w = g.param("w", [3, 8]).unwrap();
        let y = g.linear(x, w, None).unwrap();
        g.activation(y, act);
        assert_eq!(fuse_activations(&mut g, &[]), 0, "{act:?} fused");
        // Asked for directly, a matmul epilogue refuses it by name.
        let mut spec = MatmulSpec::new(2, 3, 4);
        spec.act = act;
        let e = spec.check(8, 12, 0, 6).unwrap_err().to_string();
        assert!(
            e.contains("matmul") && e.contains(&format!("{act:?}")),
            "{e}"
        );
    }
}

/// Each reconstruction loss trains the preset on the CPU reference (loss falls over a few
/// steps), its reconstructions are images in [0, 1], the config round-trips through TOML with
/// its loss, and the mismatches between loss and the decoder's last layer are refused by name.
#[test]
fn every_reconstruction_loss_trains() {
    use wgrad::spec::PointLoss;
    use wgrad::train::Trainer;
    let x = Tensor::uniform([4, 1, 28, 28], 0.0, 1.0, 5);
    for loss in PointLoss::ALL {
        let mut config = AutoencoderConfig {
            loss,
            ..AutoencoderConfig::default()
        };
        if loss == PointLoss::BceWithLogits {
            config.decoder.pop(); // the loss applies the sigmoid itself
        }
        let back = AutoencoderConfig::from_toml(&config.to_toml(), "test").unwrap();
        assert_eq!(back, config);
        let adam = Optimizer::Adam(wgrad::AdamConfig {
            lr: 1e-2,
            ..wgrad::AdamConfig::adam()
        });
        let mut t = Trainer::new(Device::Cpu, config, 4, adam, 1).unwrap();
        for _ in 0..8 {
            t.step(&x).unwrap();
        }
        let losses: Vec<f32> = t.flush_losses().unwrap().iter().map(|l| l.1).collect();
        assert!(
            losses[7] < losses[0],
            "{loss:?}: {:?} does not fall",
            losses
        );
        let (_, recon, _) = t.evaluate(&x).unwrap();
        assert!(
            recon.data.iter().all(|v| (0.0..=1.0).contains(v)),
            "{loss:?}: reconstructions leave [0, 1]"
        );
    }
    let bce_on_logits = AutoencoderConfig {
        loss: PointLoss::Bce,
        decoder: {
            let mut d = AutoencoderConfig::default().decoder;
            d.pop();
            d
        },
        ..AutoencoderConfig::default()
    };
    let (layer, message) = model_error(bce_on_logits.check().unwrap_err());
    assert!(
        layer == "decoder.5" && message.contains("Sigmoid"),
        "{layer}: {message}"
    );
    let double_sigmoid = AutoencoderConfig {
        loss: PointLoss::BceWithLogits,
        ..AutoencoderConfig::default()
    };
    let (_, message) = model_error(double_sigmoid.check().unwrap_err());
    assert!(message.contains("bce_with_logits"), "{message}");
}

/// A denoising autoencoder draws its noise from the step: a trainer resumed from step 2 takes
/// step 3 to the same loss, to the bit, as one that never stopped (CPU reference); the noise is
/// really there (the first step's loss differs from a plain autoencoder's); a bad std is refused.
#[test]
fn denoising_noise_follows_the_step() {
    use wgrad::nn::Noise;
    use wgrad::train::Trainer;
    let noisy = AutoencoderConfig {
        noise: Some(Noise { std: 0.3, seed: 4 }),
        ..AutoencoderConfig::default()
    };
    assert_eq!(
        AutoencoderConfig::from_toml(&noisy.to_toml(), "test").unwrap(),
        noisy
    );
    let x = Tensor::uniform([2, 1, 28, 28], 0.0, 1.0, 6);
    let (_, whole, _) = resumes_to_the_bit(&noisy, &x);
    let adam = Optimizer::Adam(wgrad::AdamConfig::adam());
    let mut plain = Trainer::new(Device::Cpu, AutoencoderConfig::default(), 2, adam, 1).unwrap();
    plain.step(&x).unwrap();
    assert_ne!(loss_bits(&mut plain)[0], whole[0], "no noise was added");
    let bad = AutoencoderConfig {
        noise: Some(Noise {
            std: f32::NAN,
            seed: 0,
        }),
        ..AutoencoderConfig::default()
    };
    let e = bad.check().unwrap_err().to_string();
    assert!(e.contains("gaussian_noise") && e.contains("std"), "{e}");
}

/// Dropout is on in training graphs only: a trainer's steps draw masks from the step (a resumed
/// run takes step 3 to the same loss, to the bit), evaluation is deterministic and the identity,
/// and a bad p is refused naming the layer.
#[test]
fn dropout_trains_and_evaluates_as_pytorch_modes_do() {
    let mut config = AutoencoderConfig::default();
    config.encoder.insert(5, Layer::Dropout { p: 0.2 }); // before the code's Linear
    let text = config.to_toml();
    assert_eq!(AutoencoderConfig::from_toml(&text, "test").unwrap(), config);
    let t = training_graph(&config, 2, &|_| false).unwrap();
    let ops: Vec<&str> = t.graph.nodes().iter().map(|n| n.op.name()).collect();
    assert!(ops.contains(&"dropout_forward") && ops.contains(&"dropout_backward"));
    let mut eval = Graph::new();
    config.forward(&mut eval, 2).unwrap();
    assert!(
        !eval
            .nodes()
            .iter()
            .any(|n| n.op.name().starts_with("dropout"))
    );
    let x = Tensor::uniform([2, 1, 28, 28], 0.0, 1.0, 7);
    let (mut whole, ..) = resumes_to_the_bit(&config, &x);
    let (a, ..) = whole.evaluate(&x).unwrap();
    let (b, ..) = whole.evaluate(&x).unwrap();
    assert_eq!(a.to_bits(), b.to_bits(), "evaluation is deterministic");
    config.encoder[5] = Layer::Dropout { p: 1.5 };
    let (layer, message) = model_error(config.check().unwrap_err());
    assert!(
        layer.starts_with("encoder.5") && message.contains("p 1.5"),
        "{layer}: {message}"
    );
}

/// For each of `grads` (named as in `params`), the largest difference between it and the central
/// difference (step 1e-2) of `loss` over `params`, relative to the gradient's largest magnitude
/// (at least `floor`).
fn central_difference_errors(
    params: &[(String, Tensor)],
    grads: &[(String, Tensor)],
    floor: f64,
    loss: impl Fn(&[(String, Tensor)]) -> f64,
) -> Vec<(String, f64)> {
    let h = 1e-2f32;
    grads
        .iter()
        .map(|(name, g)| {
            let k = params.iter().position(|(n, _)| n == name).unwrap();
            let scale = g.data.iter().fold(floor, |m, v| m.max(v.abs() as f64));
            let mut worst = 0f64;
            for i in 0..g.numel() {
                let (mut plus, mut minus) = (params.to_vec(), params.to_vec());
                plus[k].1.data[i] += h;
                minus[k].1.data[i] -= h;
                let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h as f64);
                worst = worst.max((numeric - g.data[i] as f64).abs() / scale);
            }
            (name.clone(), worst)
        })
        .collect()
}

/// The bits of every loss `t` has not reported yet.
fn loss_bits(t: &mut wgrad::train::Trainer) -> Vec<u32> {
    t.flush_losses()
        .unwrap()
        .iter()
        .map(|l| l.1.to_bits())
        .collect()
}

/// Three Adam steps of `config` on `x` (CPU reference, batch 2, seed 1), and the same run cut
/// after two steps and resumed from its state: asserts that the resumed third step's loss has
/// the uninterrupted run's bits. Returns the uninterrupted trainer, its losses' bits and the
/// resumed trainer.
fn resumes_to_the_bit(
    config: &AutoencoderConfig,
    x: &Tensor,
) -> (wgrad::train::Trainer, Vec<u32>, wgrad::train::Trainer) {
    use wgrad::train::Trainer;
    let adam = Optimizer::Adam(wgrad::AdamConfig::adam());
    let new = || Trainer::new(Device::Cpu, config.clone(), 2, adam, 1).unwrap();
    let mut whole = new();
    for _ in 0..3 {
        whole.step(x).unwrap();
    }
    let losses = loss_bits(&mut whole);
    let mut first = new();
    first.step(x).unwrap();
    first.step(x).unwrap();
    let mut resumed = new();
    resumed.load_state(&first.state().unwrap()).unwrap();
    resumed.step(x).unwrap();
    assert_eq!(
        loss_bits(&mut resumed),
        losses[2..],
        "step 3 after a resume"
    );
    (whole, losses, resumed)
}

/// A small variational autoencoder: `[1, 4, 4]` images, a latent of 3 (the encoder gives 6).
fn small_vae(beta: f32) -> AutoencoderConfig {
    use wgrad::nn::Variational;
    AutoencoderConfig {
        image: [1, 4, 4],
        loss: wgrad::spec::PointLoss::Bce,
        noise: None,
        variational: Some(Variational { beta, seed: 3 }),
        encoder: vec![
            Layer::Flatten,
            Layer::linear(16, 8),
            Layer::Tanh,
            Layer::linear(8, 6),
        ],
        decoder: vec![
            Layer::linear(3, 16),
            Layer::Unflatten {
                dims: vec![1, 4, 4],
            },
            Layer::Sigmoid,
        ],
    }
}

/// The loss of a VAE training step (fed step 7) with `params`, and its gradients.
fn vae_step(
    config: &AutoencoderConfig,
    params: &[(String, Tensor)],
    x: &Tensor,
) -> (f64, Vec<(String, Tensor)>) {
    let t = training_graph(config, 2, &|_| false).unwrap();
    let step = t
        .step_input
        .expect("a VAE's training graph draws from the step");
    let mut s = Session::new(Device::Cpu, params.to_vec(), &|_| false, None).unwrap();
    let spec = ProgramSpec::training(t.loss, t.grads, false);
    let mut p = s.compile(t.graph, spec).unwrap();
    let feeds = [(t.input, Feed::Data(x)), (step, Feed::Labels(&[7]))];
    s.run(&mut p, &feeds).unwrap();
    (
        s.last_loss(&mut p).unwrap() as f64,
        s.gradients(&p).unwrap(),
    )
}

/// A variational autoencoder's training step — reconstruction of a sample plus β·KL — has the
/// gradients central differences give (the sample is fixed by the step, so the loss is a plain
/// function of the parameters); β scales the KL part alone; the evaluation graph decodes the
/// means (no sampling); configs round-trip; a bad latent width or β is refused by name.
#[test]
fn variational_autoencoder_gradients_match_finite_differences() {
    let config = small_vae(0.5);
    assert_eq!(
        AutoencoderConfig::from_toml(&config.to_toml(), "test").unwrap(),
        config
    );
    let params = init_params(&config.params(), 5);
    let x = Tensor::uniform([2, 1, 4, 4], 0.05, 0.95, 8);
    let (base, grads) = vae_step(&config, &params, &x);
    let errors = central_difference_errors(&params, &grads, 1e-4, |p| vae_step(&config, p, &x).0);
    for (name, worst) in errors {
        println!("{name}: largest |numeric − analytic| / max|grad| = {worst:.2e}");
        assert!(worst < 1e-2, "{name}: off by {worst:.3e} of its scale");
    }
    // β only weighs the KL term: the difference of two β is (Δβ)·KL/(C·H·W), the same KL.
    let (kl_free, _) = vae_step(&small_vae(0.0), &params, &x);
    let (double, _) = vae_step(&small_vae(1.0), &params, &x);
    let kl_half = base - kl_free;
    assert!(kl_half > 0.0, "the KL term is positive: {kl_half}");
    assert!(
        ((double - kl_free) - 2.0 * kl_half).abs() < 1e-5,
        "{double} {kl_free} {base}"
    );
    // Evaluation decodes the means: no sample, no step input.
    let mut eval = Graph::new();
    let n = config.forward(&mut eval, 2).unwrap();
    assert!(n.step_input.is_none());
    assert!(!eval.nodes().iter().any(|n| n.op.name() == "reparameterize"));
    assert_eq!(eval.shape(n.code).dims(), [2, 3]);
    // Refusals.
    let mut odd = small_vae(1.0);
    odd.encoder[3] = Layer::linear(8, 5);
    let (layer, message) = model_error(odd.check().unwrap_err());
    assert!(
        layer == "encoder.3" && message.contains("2·latent"),
        "{layer}: {message}"
    );
    let (layer, message) = model_error(small_vae(f32::NAN).check().unwrap_err());
    assert!(
        layer == "variational" && message.contains("beta"),
        "{layer}: {message}"
    );
}

/// Convolution → BatchNorm2d → Tanh → Flatten → Linear → BatchNorm1d, on `[3, 2, 4, 4]`.
fn batch_norm_model() -> Sequential {
    let bn = |c| Layer::BatchNorm2d {
        num_features: c,
        eps: 1e-5,
        momentum: 0.1,
    };
    Sequential::new(
        "net",
        vec![
            Layer::Conv2d {
                in_channels: 2,
                out_channels: 3,
                kernel_size: Size2::Square(3),
                stride: Size2::Square(1),
                padding: Size2::Square(1),
                dilation: Size2::Square(1),
                bias: false,
            },
            bn(3),
            Layer::Tanh,
            Layer::Flatten,
            Layer::linear(48, 4),
            Layer::BatchNorm1d {
                num_features: 4,
                eps: 1e-3,
                momentum: 0.3,
            },
        ],
    )
}

/// Parameters for [`batch_norm_model`]: its defaults, with the normalisations' weights, biases
/// and running moments moved off 1 and 0 so that every term of the gradient shows.
fn batch_norm_params() -> Vec<(String, Tensor)> {
    let mut params = init_params(&batch_norm_model().params(), 12);
    for (k, (name, t)) in params.iter_mut().enumerate() {
        let (lo, hi) = match name.rsplit('.').next().unwrap() {
            "running_var" | "weight" if t.shape.rank() == 1 => (0.5, 1.5),
            "running_mean" | "bias" => (-0.3, 0.3),
            _ => continue,
        };
        *t = Tensor::uniform(t.shape.clone(), lo, hi, 100 + k as u64);
    }
    params
}

/// Named tensors (gradients, parameters).
type Named = Vec<(String, Tensor)>;

/// Loss, gradients and parameters after one step (SGD, lr 0) of [`batch_norm_model`] under
/// MSE, in training or evaluation mode.
fn batch_norm_step(params: &[(String, Tensor)], x: &Tensor, training: bool) -> (f64, Named, Named) {
    let model = batch_norm_model();
    let buffers: Vec<String> = model
        .params()
        .into_iter()
        .filter(|p| p.buffer)
        .map(|p| p.name)
        .collect();
    let frozen = |n: &str| buffers.iter().any(|b| b == n);
    let mut g = Graph::new();
    g.set_training(training);
    let input = g.input("x", [3, 2, 4, 4]).unwrap();
    let y = model.forward(&mut g, input).unwrap();
    let t = g.constant("target", Tensor::uniform([3, 4], -1.0, 1.0, 5));
    let loss = g.mse_loss(y, t).unwrap();
    let grads = backward(&mut g, loss, &frozen).unwrap();
    let sgd = Optimizer::Sgd(SgdConfig::new(0.0));
    let mut s = Session::new(Device::Cpu, params.to_vec(), &frozen, Some(sgd)).unwrap();
    let mut p = s
        .compile(g, ProgramSpec::training(loss, grads, false))
        .unwrap();
    s.step(&mut p, &[(input, Feed::Data(x))]).unwrap();
    let l = s.flush_losses(&mut p).unwrap()[0].1 as f64;
    (l, s.gradients(&p).unwrap(), s.state().unwrap().params)
}

/// Batch normalisation's gradients, in training (through the batch's moments) and in evaluation
/// (running moments constant), against central differences of the whole graph.
#[test]
fn batch_norm_gradients_match_finite_differences() {
    let params = batch_norm_params();
    let x = Tensor::uniform([3, 2, 4, 4], -1.0, 1.0, 9);
    for training in [true, false] {
        let (_, grads, _) = batch_norm_step(&params, &x, training);
        assert_eq!(
            grads.len(),
            7,
            "conv weight, linear weight and bias, two BN pairs"
        );
        // The floor 1e-3: a bias right before a training-mode batch norm has a zero gradient
        // (the batch mean takes it away), which f32 loss differences show as ~1e-5.
        let errors = central_difference_errors(&params, &grads, 1e-3, |p| {
            batch_norm_step(p, &x, training).0
        });
        for (name, worst) in errors {
            println!("training {training}: {name}: {worst:.2e} of max|grad|");
            assert!(
                worst < 1e-2,
                "training {training}: {name}: off by {worst:.3e}"
            );
        }
    }
}

/// A training step moves the running moments as PyTorch does — `(1 − m)·running + m·batch`, the
/// batch variance unbiased — and counts the batch, computed here from the data in f64; an
/// evaluation step leaves them alone; a plain run (no step) too.
#[test]
fn batch_norm_running_moments_follow_pytorch() {
    let params = batch_norm_params();
    let x = Tensor::uniform([3, 2, 4, 4], -1.0, 1.0, 9);
    let get = |ps: &[(String, Tensor)], name: &str| {
        ps.iter().find(|(n, _)| n == name).unwrap().1.data.clone()
    };
    let (_, _, after) = batch_norm_step(&params, &x, true);
    // The first BatchNorm2d's input: the bias-free convolution of x, on the CPU twin.
    let w = get(&params, "net.0.weight");
    let w = Tensor::new([3, 2, 3, 3], w).unwrap();
    let p = wgrad::ConvParams::square(1, 1, 1);
    let conv = wgrad::cpu::conv::conv2d_forward(&x, &w, None, p, wgrad::Activation::None).unwrap();
    let m = 0.1;
    for c in 0..3 {
        let v: Vec<f64> = (0..3)
            .flat_map(|b| conv.data[(b * 3 + c) * 16..(b * 3 + c + 1) * 16].to_vec())
            .map(|v| v as f64)
            .collect();
        let mean = v.iter().sum::<f64>() / 48.0;
        let unbiased = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 47.0;
        let rm = (1.0 - m) * get(&params, "net.1.running_mean")[c] as f64 + m * mean;
        let rv = (1.0 - m) * get(&params, "net.1.running_var")[c] as f64 + m * unbiased;
        let (got_m, got_v) = (
            get(&after, "net.1.running_mean")[c],
            get(&after, "net.1.running_var")[c],
        );
        assert!(
            (got_m as f64 - rm).abs() < 1e-6,
            "channel {c}: mean {got_m} vs {rm}"
        );
        assert!(
            (got_v as f64 - rv).abs() < 1e-5,
            "channel {c}: var {got_v} vs {rv}"
        );
    }
    assert_eq!(get(&after, "net.1.num_batches_tracked"), [1.0]);
    assert_eq!(get(&after, "net.5.num_batches_tracked"), [1.0]);
    let (_, _, evaluated) = batch_norm_step(&params, &x, false);
    for name in [
        "net.1.running_mean",
        "net.1.running_var",
        "net.5.num_batches_tracked",
    ] {
        assert_eq!(
            get(&evaluated, name),
            get(&params, name),
            "{name} moved in evaluation"
        );
    }
}

/// The autoencoder trainer with batch normalisation: the buffers are in the state (and no
/// optimizer state for them), a resumed run takes step 3 to the same bits, the example config
/// round-trips, and a batch norm that cannot train (one value per channel) or does not fit is
/// refused naming the layer.
#[test]
fn batch_norm_autoencoder_trains_and_resumes() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/configs/batchnorm.toml"
    ))
    .unwrap();
    let config = AutoencoderConfig::from_toml(&text, "batchnorm.toml").unwrap();
    assert_eq!(
        AutoencoderConfig::from_toml(&config.to_toml(), "t").unwrap(),
        config
    );
    assert_eq!(
        config.buffers().len(),
        12,
        "four BatchNorm2d × three buffers"
    );
    let x = Tensor::uniform([2, 1, 28, 28], 0.0, 1.0, 7);
    let (whole, _, resumed) = resumes_to_the_bit(&config, &x);
    let state = whole.state().unwrap();
    let count = state
        .params
        .iter()
        .find(|(n, _)| n == "encoder.1.num_batches_tracked");
    assert_eq!(count.unwrap().1.data, [3.0]);
    assert!(!state.optimizer.iter().any(|(n, _)| n.contains("running")));
    assert_eq!(resumed.state().unwrap().params, state.params);
    // One value per channel cannot train (PyTorch refuses it too).
    let mut one = Graph::new();
    one.set_training(true);
    let i = one.input("x", [1, 4]).unwrap();
    let bn = Layer::BatchNorm1d {
        num_features: 4,
        eps: 1e-5,
        momentum: 0.1,
    };
    let e = bn.forward(&mut one, "bn", i).unwrap_err().to_string();
    assert!(e.contains("more than one value per channel"), "{e}");
    let mut wrong = config.clone();
    wrong.encoder[1] = Layer::BatchNorm2d {
        num_features: 8,
        eps: 1e-5,
        momentum: 0.1,
    };
    let (layer, message) = model_error(wrong.check().unwrap_err());
    assert!(
        layer.starts_with("encoder.1") && message.contains("C = 8"),
        "{layer}: {message}"
    );
}
