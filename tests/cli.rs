//! The `wgrad` command end to end, driving the built binary on small data the tests make:
//! train → checkpoint → resume → reconstruct → classify → encode; bit-identical resume on the
//! CPU reference and on each GPU adapter; a PyTorch-layout checkpoint; bad data.
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wgrad::io::Checkpoint;
use wgrad::nn::{AutoencoderConfig, init_params};
use wgrad::{ConvParams, Tensor};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgrad-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wgrad(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_wgrad"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    println!(
        "$ wgrad {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(args: &[&str]) -> String {
    let out = wgrad(args);
    assert!(out.status.success(), "wgrad {} failed", args.join(" "));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The backends to check: the CPU reference and every GPU backend present.
fn backends() -> Vec<&'static str> {
    let mut b = vec!["cpu"];
    for ctx in wgrad::GpuContext::all(&wgrad::Options::default())
        .into_iter()
        .flatten()
    {
        match ctx.backend() {
            wgpu::Backend::Vulkan => b.push("vulkan"),
            wgpu::Backend::Gl => b.push("gl"),
            wgpu::Backend::Metal => b.push("metal"),
            wgpu::Backend::Dx12 => b.push("dx12"),
            _ => {}
        }
    }
    if b.len() == 1 && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no GPU adapter; CI=true makes this a failure");
    }
    b
}

fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    Checkpoint::load(path)
        .unwrap()
        .tensors
        .into_iter()
        .map(|(n, t)| (n, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn resume_is_bit_identical_on_every_backend() {
    for backend in backends() {
        let d = dir(&format!("resume-{backend}"));
        let (a, b) = (d.join("a.safetensors"), d.join("b.safetensors"));
        let common = ["train", "--batch", "8", "--backend", backend, "--seed", "3"];
        let run = |extra: &[&str]| ok(&[&common[..], extra].concat());
        run(&["--steps", "6", "--save", a.to_str().unwrap()]);
        run(&["--steps", "3", "--save", b.to_str().unwrap()]);
        run(&[
            "--steps",
            "6",
            "--resume",
            b.to_str().unwrap(),
            "--save",
            b.to_str().unwrap(),
        ]);
        assert_eq!(
            tensors(&a),
            tensors(&b),
            "{backend}: resumed parameters differ from an uninterrupted run"
        );
        let side = |p: &Path| {
            tensors(&p.with_file_name(format!(
                "{}.optim-6.safetensors",
                p.file_stem().unwrap().to_str().unwrap()
            )))
        };
        assert_eq!(
            side(&a),
            side(&b),
            "{backend}: resumed optimizer state differs"
        );
        assert!(
            !d.join("b.optim-3.safetensors").exists(),
            "the superseded optimizer state is removed"
        );
        // The loss log of the resumed run continues the first one.
        let log = std::fs::read_to_string(d.join("b.loss.csv")).unwrap();
        assert_eq!(log.lines().count(), 7, "header + 6 steps:\n{log}");
    }
}

/// A folder of ten 28×28 PNGs: a bright square at a different place in each.
fn ten_pngs(d: &Path) -> PathBuf {
    let pngs = d.join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    for i in 0..10u32 {
        image::GrayImage::from_fn(28, 28, |x, y| {
            let inside = (x + 2 * i) % 28 < 9 && (y + 3 * i) % 28 < 9;
            image::Luma([if inside { 230 } else { 20 }])
        })
        .save(pngs.join(format!("{i}.png")))
        .unwrap();
    }
    pngs
}

/// Ten PNGs as two labelled classes (one sub-folder each), for classifiers.
fn two_classes(d: &Path) -> PathBuf {
    let labelled = d.join("labelled");
    for (i, f) in std::fs::read_dir(ten_pngs(d)).unwrap().enumerate() {
        let class = labelled.join(if i % 2 == 0 { "a" } else { "b" });
        std::fs::create_dir_all(&class).unwrap();
        let f = f.unwrap().path();
        std::fs::copy(&f, class.join(f.file_name().unwrap())).unwrap();
    }
    labelled
}

/// A data set smaller than --batch trains (one batch of all of it), and the last batch of an
/// epoch holds the remainder (dropped with --drop-last), on every backend; a run resumed across
/// those partial batches is still bit-identical to an uninterrupted one.
#[test]
fn small_data_sets_and_partial_batches_train_on_every_backend() {
    let d = dir("partial");
    let pngs = ten_pngs(&d);
    let data = pngs.to_str().unwrap();
    for backend in backends() {
        let path = |name: &str| d.join(format!("{name}-{backend}.safetensors"));
        let train = |extra: &[&str]| {
            let common = ["train", "--data", data, "--backend", backend, "--seed", "1"];
            ok(&[&common[..], extra].concat())
        };
        // 9 training images (one is held out) and batches of 64: one step an epoch.
        let small = path("small");
        let out = train(&[
            "--batch",
            "64",
            "--epochs",
            "2",
            "--save",
            small.to_str().unwrap(),
        ]);
        assert!(out.contains("trained 2 steps"), "{backend}: {out}");
        // Batches of 4: 4, 4 and the remaining 1 each epoch; 7 steps run into the third epoch.
        let (a, b) = (path("a"), path("b"));
        let out = train(&[
            "--batch",
            "4",
            "--steps",
            "7",
            "--save",
            a.to_str().unwrap(),
        ]);
        assert!(out.contains("trained 7 steps"), "{backend}: {out}");
        let log = std::fs::read_to_string(d.join(format!("a-{backend}.loss.csv"))).unwrap();
        assert_eq!(
            log.lines().count(),
            8,
            "{backend}: header + 7 steps:\n{log}"
        );
        train(&[
            "--batch",
            "4",
            "--steps",
            "4",
            "--save",
            b.to_str().unwrap(),
        ]);
        let resumed = [
            "--batch",
            "4",
            "--steps",
            "7",
            "--resume",
            b.to_str().unwrap(),
            "--save",
            b.to_str().unwrap(),
        ];
        train(&resumed);
        assert_eq!(
            tensors(&a),
            tensors(&b),
            "{backend}: resumed across partial batches, the parameters differ"
        );
        // --drop-last: the single remaining image is left out, two steps an epoch.
        let dropped = path("dropped");
        let out = train(&[
            "--batch",
            "4",
            "--epochs",
            "2",
            "--drop-last",
            "--save",
            dropped.to_str().unwrap(),
        ]);
        assert!(out.contains("trained 4 steps"), "{backend}: {out}");
    }
}

/// `train --lr 1e30` over a good checkpoint, on every backend: it stops with one line naming the
/// step where the run diverged, exits non-zero, and leaves the good checkpoint (and the optimizer
/// state it names) as they were and loadable.
#[test]
fn a_diverging_run_stops_and_keeps_the_good_checkpoint() {
    for backend in backends() {
        let d = dir(&format!("diverge-{backend}"));
        let good = d.join("good.safetensors");
        let g = good.to_str().unwrap();
        let common = ["train", "--batch", "8", "--backend", backend, "--save", g];
        ok(&[&common[..], &["--steps", "2"]].concat());
        let files = |d: &Path| {
            let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .map(|e| {
                    let p = e.path();
                    (p.display().to_string(), std::fs::read(&p).unwrap())
                })
                .collect();
            v.sort();
            v
        };
        let before = files(&d);
        let out = wgrad(&[&common[..], &["--steps", "3", "--lr", "1e30"]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        assert!(!out.status.success(), "{backend}: a diverging run exited 0");
        assert!(
            last.starts_with("wgrad: training diverged at step") && last.contains("not finite"),
            "{backend}: {err}"
        );
        assert!(
            files(&d) == before,
            "{backend}: the good checkpoint's files changed"
        );
        let saved = wgrad::io::load_model(&good).unwrap();
        assert_eq!(saved.state.step, 2);
        assert!(
            saved
                .state
                .params
                .iter()
                .all(|(_, t)| t.data.iter().all(|v| v.is_finite()))
        );
    }
}

#[test]
fn train_reconstruct_classify_encode() {
    let d = dir("flow");
    let ckpt = d.join("ae.safetensors");
    let c = ckpt.to_str().unwrap();
    // 100 steps at lr 3e-3 take the autoencoder past its early plateau (where it draws the mean
    // image and the code carries little), so the frozen encoder's codes are worth classifying.
    let out = ok(&[
        "train", "--steps", "100", "--batch", "32", "--lr", "3e-3", "--save", c, "--every", "50",
    ]);
    assert!(out.contains("held-out loss"), "{out}");
    for f in [
        "ae.loss.csv",
        "ae.loss.png",
        "ae.reconstructions.png",
        "ae.optim-100.safetensors",
    ] {
        assert!(d.join(f).exists(), "{f} missing");
    }
    let grid = d.join("grid.png");
    let out = ok(&[
        "reconstruct",
        "--ckpt",
        c,
        "--out",
        grid.to_str().unwrap(),
        "--count",
        "4",
    ]);
    assert!(out.contains("loss"), "{out}");
    let png = image::open(&grid).unwrap();
    assert!(
        png.width() > 4 * 28 && png.height() > 2 * 28,
        "{}x{}",
        png.width(),
        png.height()
    );
    let out = ok(&[
        "classify", "--ckpt", c, "--epochs", "1", "--batch", "32", "--lr", "3e-3",
    ]);
    let acc: f64 = out
        .split("accuracy ")
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        acc > 2.0 * 100.0 / 6.0,
        "accuracy {acc}% not clearly above chance (16.7%):\n{out}"
    );
    let codes = d.join("codes.safetensors");
    ok(&["encode", "--ckpt", c, "--out", codes.to_str().unwrap()]);
    let f = Checkpoint::load(&codes).unwrap();
    assert_eq!(f.get("train.codes").unwrap().shape.dims(), [6000, 32]);
    assert_eq!(f.get("test.labels").unwrap().shape.dims(), [1000]);
}

#[test]
fn steps_zero_writes_the_freshly_initialised_model() {
    let d = dir("fresh");
    let ckpt = d.join("m.safetensors");
    ok(&[
        "train",
        "--steps",
        "0",
        "--seed",
        "5",
        "--backend",
        "cpu",
        "--save",
        ckpt.to_str().unwrap(),
    ]);
    let want = init_params(&AutoencoderConfig::default().params(), 5);
    let got = Checkpoint::load(&ckpt).unwrap();
    assert_eq!(got.tensors.len(), want.len());
    for (name, t) in &want {
        assert_eq!(got.get(name).unwrap(), t, "{name}");
    }
}

/// One 28×28 image as an IDX file (a single image: it is both the train and the shown set).
fn one_image_idx(path: &Path) -> Tensor {
    let pixels: Vec<u8> = (0..784).map(|k| ((k * 37) % 251) as u8).collect();
    let mut bytes = vec![0, 0, 8, 3];
    for d in [1u32, 28, 28] {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(&pixels);
    std::fs::write(path, bytes).unwrap();
    Tensor::new(
        [1, 1, 28, 28],
        pixels.iter().map(|&p| p as f32 / 255.0).collect(),
    )
    .unwrap()
}

#[test]
fn a_pytorch_layout_checkpoint_gives_the_independently_computed_loss() {
    let d = dir("pytorch");
    // A state_dict as PyTorch would save it: names and layouts only, no wgrad metadata.
    let mut ckpt = Checkpoint::new();
    let specs = AutoencoderConfig::default().params();
    for (i, s) in specs.iter().enumerate() {
        ckpt.insert(
            s.name.clone(),
            Tensor::uniform(s.shape.clone(), -0.3, 0.3, 100 + i as u64),
        );
    }
    ckpt.metadata.insert("format".into(), "pt".into());
    let path = d.join("torch.safetensors");
    ckpt.save(&path).unwrap();
    let x = one_image_idx(&d.join("one-images-idx3-ubyte"));
    // The loss by hand, with the nested-loop CPU convolutions and a plain linear layer.
    use wgrad::cpu::conv::{conv_transpose2d_forward, conv2d_forward};
    use wgrad::spec::Activation::{Relu, Sigmoid};
    let w = |n: &str| ckpt.get(n).unwrap().clone();
    let linear = |x: &Tensor, wn: &str, bn: &str| {
        let (w, b) = (w(wn), w(bn));
        let (o, i) = (w.shape.dims()[0], w.shape.dims()[1]);
        let y: Vec<f32> = (0..o)
            .map(|r| {
                (b.data[r] as f64
                    + (0..i)
                        .map(|c| w.data[r * i + c] as f64 * x.data[c] as f64)
                        .sum::<f64>()) as f32
            })
            .collect();
        Tensor::new([1, o], y).unwrap()
    };
    let s2 = ConvParams::square(2, 1, 1);
    let h = conv2d_forward(
        &x,
        &w("encoder.0.weight"),
        Some(&w("encoder.0.bias")),
        s2,
        Relu,
    )
    .unwrap();
    let h = conv2d_forward(
        &h,
        &w("encoder.2.weight"),
        Some(&w("encoder.2.bias")),
        s2,
        Relu,
    )
    .unwrap();
    let code = linear(
        &h.reshape([1, 1568]).unwrap(),
        "encoder.5.weight",
        "encoder.5.bias",
    );
    let h = linear(&code, "decoder.0.weight", "decoder.0.bias");
    let h = Tensor::new([1, 32, 7, 7], h.data.iter().map(|v| v.max(0.0)).collect()).unwrap();
    let up = s2.with_output_padding(1);
    let h = conv_transpose2d_forward(&h, &w("decoder.3.weight"), Some(&w("decoder.3.bias")), up)
        .unwrap();
    let h = Tensor::new(h.shape.clone(), h.data.iter().map(|v| v.max(0.0)).collect()).unwrap();
    let y = conv_transpose2d_forward(&h, &w("decoder.5.weight"), Some(&w("decoder.5.bias")), up)
        .unwrap();
    let want: f64 = y
        .data
        .iter()
        .zip(&x.data)
        .map(|(&v, &t)| (Sigmoid.apply(v as f64) - t as f64).powi(2))
        .sum::<f64>()
        / 784.0;
    for backend in backends() {
        let out = ok(&[
            "reconstruct",
            "--ckpt",
            path.to_str().unwrap(),
            "--data",
            d.join("one-images-idx3-ubyte").to_str().unwrap(),
            "--out",
            d.join(format!("{backend}.png")).to_str().unwrap(),
            "--backend",
            backend,
        ]);
        let got: f64 = out.split("loss ").nth(1).unwrap().trim().parse().unwrap();
        println!("{backend}: loss {got} vs {want} computed by hand");
        assert!(
            (got - want).abs() <= 1e-5 * want.max(1e-3),
            "{backend}: {got} vs {want}"
        );
    }
}

/// Runs `wgrad train` on bad data; it must fail with one line naming `file` and `what`.
fn refuses(data: &Path, file: &str, what: &str) {
    let out = wgrad(&[
        "train",
        "--steps",
        "1",
        "--backend",
        "cpu",
        "--data",
        data.to_str().unwrap(),
        "--save",
        "/tmp/never.safetensors",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "bad data accepted: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{err}");
    assert!(
        lines[0].starts_with("wgrad: ") && lines[0].contains(file) && lines[0].contains(what),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_data_gets_one_error_line_naming_the_file() {
    let d = dir("bad");
    let header = |magic: u8, dims: &[u32]| {
        let mut v = vec![0, 0, 8, magic];
        for x in dims {
            v.extend(x.to_be_bytes());
        }
        v
    };
    // Truncated: the header promises 10 images, the file holds 2.
    let mut b = header(3, &[10, 28, 28]);
    b.extend(vec![0u8; 2 * 784]);
    std::fs::write(d.join("trunc-images-idx3-ubyte"), &b).unwrap();
    refuses(
        &d.join("trunc-images-idx3-ubyte"),
        "trunc-images-idx3-ubyte",
        "truncated",
    );
    // Wrong magic number.
    let mut b = header(1, &[784]);
    b.extend(vec![0u8; 784]);
    std::fs::write(d.join("magic-images-idx3-ubyte"), &b).unwrap();
    refuses(
        &d.join("magic-images-idx3-ubyte"),
        "magic-images-idx3-ubyte",
        "magic",
    );
    // Image and label counts that differ.
    let mut b = header(3, &[3, 28, 28]);
    b.extend(vec![0u8; 3 * 784]);
    std::fs::write(d.join("count-images-idx3-ubyte"), &b).unwrap();
    let mut l = header(1, &[2]);
    l.extend([1u8, 2]);
    std::fs::write(d.join("count-labels-idx1-ubyte"), &l).unwrap();
    refuses(&d.join("count-images-idx3-ubyte"), "count-", "labels");
    // A folder of PNGs of mixed sizes.
    let mixed = d.join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    image::GrayImage::new(28, 28)
        .save(mixed.join("a.png"))
        .unwrap();
    image::GrayImage::new(20, 20)
        .save(mixed.join("b.png"))
        .unwrap();
    refuses(&mixed, "b.png", "20");
    // An empty folder.
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    refuses(&empty, "empty", "PNG");
    // A corrupt PNG.
    let corrupt = d.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("x.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    refuses(&corrupt, "x.png", "");
}

#[test]
fn bad_flags_and_missing_files_fail_cleanly() {
    let out = wgrad(&["reconstruct", "--ckpt", "/nonexistent/c.safetensors"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.lines().count() == 1
            && err.contains("/nonexistent/c.safetensors"),
        "{err}"
    );
    let out = wgrad(&[
        "train",
        "--optimizer",
        "adam",
        "--momentum",
        "0.9",
        "--steps",
        "1",
    ]);
    assert!(!out.status.success());
    // A loss the preset's decoder (ending in a Sigmoid) does not fit, and one that is unknown.
    for (loss, what) in [("bce_with_logits", "Sigmoid"), ("huber", "--loss")] {
        let out = wgrad(&["train", "--loss", loss, "--steps", "1", "--backend", "cpu"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.lines().count() == 1 && err.contains(what),
            "--loss {loss}: {err}"
        );
    }
}

/// Numbers at the edges of their types, in the flags that size something: each run ends with
/// one error line naming what was wrong, never a panic. `--epochs` times the steps of an
/// epoch, a batch of 2⁶⁴ − 1 images and a classifier of 2⁶⁴ − 1 hidden units
/// overflowed or panicked before.
#[test]
fn extreme_numbers_in_flags_fail_cleanly() {
    let d = dir("extreme");
    let save = d.join("m.safetensors");
    let save = save.to_str().unwrap();
    ok(&[
        "train",
        "--backend",
        "cpu",
        "--steps",
        "1",
        "--batch",
        "2",
        "--save",
        save,
    ]);
    let max = u64::MAX.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--epochs", &max], "--epochs"),
        (vec!["train", "--batch", &max, "--steps", "1"], "more than"),
        (vec!["train", "--batch", "0", "--steps", "1"], "batch"),
        (vec!["train", "--lr", "nan", "--steps", "1"], "lr must be"),
        (vec!["train", "--lr", "inf", "--steps", "1"], "lr must be"),
        (vec!["train", "--lr=-1", "--steps", "1"], "lr must be"),
        (
            vec!["train", "--weight-decay", "nan", "--steps", "1"],
            "weight",
        ),
        (
            vec!["classify", "--ckpt", save, "--epochs", &max],
            "--epochs",
        ),
        (
            vec![
                "classify", "--ckpt", save, "--hidden", &max, "--epochs", "1",
            ],
            "more than",
        ),
        (
            vec!["classify", "--ckpt", save, "--batch", &max, "--epochs", "1"],
            "more than",
        ),
    ];
    for (mut args, what) in cases {
        args.extend(["--backend", "cpu"]);
        if args[0] == "train" {
            args.extend(["--save", save]);
        }
        let out = wgrad(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "wgrad {}: {err}", args.join(" "));
        assert_eq!(
            out.status.code(),
            Some(1),
            "wgrad {}: {err}",
            args.join(" ")
        );
        let line = err.lines().find(|l| l.starts_with("wgrad:")).unwrap_or("");
        assert!(line.contains(what), "wgrad {}: {err}", args.join(" "));
    }
}

/// Every example config in examples/configs trains end to end on the built-in data (CPU
/// reference, a few steps), and its checkpoint reconstructs, encodes (ten PNGs) and trains a
/// classifier (the same PNGs as two classes).
#[test]
fn example_configs_train_end_to_end() {
    let d = dir("examples");
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&configs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 2, "example configs: {names:?}");
    let pngs = ten_pngs(&d);
    let pngs = pngs.to_str().unwrap();
    let labelled = two_classes(&d);
    let labelled = labelled.to_str().unwrap();
    for config in &names {
        let stem = config.file_stem().unwrap().to_str().unwrap();
        let save = d.join(format!("{stem}.safetensors"));
        let out = d.join(format!("{stem}.png"));
        let codes = d.join(format!("{stem}.codes.safetensors"));
        let (config, save) = (config.to_str().unwrap(), save.to_str().unwrap());
        let (out_s, codes_s) = (out.to_str().unwrap(), codes.to_str().unwrap());
        let cpu = ["--backend", "cpu"];
        let train = [
            "train", "--config", config, "--steps", "3", "--batch", "8", "--save", save,
        ];
        ok(&[&train[..], &cpu].concat());
        if stem == "batchnorm" {
            // PyTorch's buffers: the batch count an I64 scalar holding the steps taken.
            let bytes = std::fs::read(save).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
            let count = &header["encoder.1.num_batches_tracked"];
            assert_eq!(count["dtype"], "I64", "{count}");
            assert_eq!(count["shape"], serde_json::json!([]), "{count}");
            for buffer in ["running_mean", "running_var"] {
                assert_eq!(
                    header[format!("decoder.4.{buffer}")]["shape"],
                    serde_json::json!([16])
                );
            }
            let c = Checkpoint::load(save).unwrap();
            let count = c.get("encoder.1.num_batches_tracked").unwrap();
            assert_eq!(count.data, [3.0]);
        }
        let csv = std::fs::read_to_string(d.join(format!("{stem}.loss.csv"))).unwrap();
        let losses: Vec<f32> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
            .collect();
        assert!(
            losses.len() == 3 && losses.iter().all(|l| l.is_finite()),
            "{stem}: {losses:?}"
        );
        ok(&[&["reconstruct", "--ckpt", save, "--out", out_s][..], &cpu].concat());
        assert!(out.exists(), "{stem}: no reconstruction grid");
        // A variational autoencoder also decodes random codes.
        let samples = d.join(format!("{stem}.samples.png"));
        assert_eq!(
            samples.exists(),
            stem == "variational",
            "{stem}: samples grid"
        );
        // Encoding the built-in set (7,000 images) on the CPU reference takes ~20 s: ten PNGs.
        let encode = ["encode", "--ckpt", save, "--data", pngs, "--out", codes_s];
        ok(&[&encode[..], &cpu].concat());
        // A classifier on the code (flattened first where it has spatial axes).
        let classify = [
            "classify", "--ckpt", save, "--data", labelled, "--epochs", "1",
        ];
        ok(&[&classify[..], &["--batch", "4"], &cpu[..]].concat());
    }
}

/// `wgrad compare` on a tiny budget: the three runs, their table and the plot (CPU reference,
/// ten labelled PNGs, one epoch each).
#[test]
fn compare_trains_three_classifiers_and_plots_them() {
    let d = dir("compare");
    let labelled = two_classes(&d);
    let ckpt = d.join("ae.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    ok(&["train", "--steps", "0", "--backend", "cpu", "--save", ckpt]);
    let out = ok(&[
        "compare",
        "--ckpt",
        ckpt,
        "--data",
        labelled.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch",
        "4",
        "--backend",
        "cpu",
    ]);
    for row in [
        "frozen encoder + head",
        "encoder + head, jointly",
        "same network from scratch",
    ] {
        assert!(out.contains(row), "{out}");
    }
    // The frozen run trains the head only (Linear 32→64, Linear 64→2); the other two train the
    // encoder as well.
    let params: Vec<usize> = out
        .lines()
        .filter(|l| l.contains('%') && !l.contains("chance"))
        .map(|l| l.split_whitespace().last().unwrap().parse().unwrap())
        .collect();
    assert_eq!(params.len(), 3, "{out}");
    assert_eq!(params[0], 32 * 64 + 64 + 64 * 2 + 2, "{out}");
    assert!(params[1] > params[0] && params[1] == params[2], "{out}");
    assert!(d.join("ae.compare.png").exists());
}
