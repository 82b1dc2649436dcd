//! Files of a training run: checkpoints, image grids, loss logs and plots.
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

use std::collections::BTreeMap;
use std::fs;
use std::io::BufReader;
use std::path::Path;
use wgrad::io::checkpoint::{META_CONFIG, META_OPTIMIZER, META_STEP};
use wgrad::io::image_grid::{GAP, GAP_LEVEL};
use wgrad::io::loss_log::CSV_HEADER;
use wgrad::io::plot::PLOT_SIZE;
use wgrad::io::{Checkpoint, LossLog, LossRow, io_error, write_atomic, write_grid};
use wgrad::{Error, Shape, Tensor};

// ---------------------------------------------------------------- helpers

/// Names in `dir`, sorted (to see that no temporary file is left).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A safetensors file written by hand from the format's definition: an 8-byte little-endian
/// header length, the JSON header padded with spaces to a multiple of 8 (as the Python and Rust
/// writers do), then the tensor bytes.
fn safetensors_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

fn le_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn load_err(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    let err = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(err, Error::Data { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(name), "message does not name the file: {msg}");
    msg
}

struct Png {
    width: usize,
    height: usize,
    color: png::ColorType,
    pixels: Vec<u8>,
}

fn decode_png(path: &Path) -> Png {
    let dec = png::Decoder::new(BufReader::new(fs::File::open(path).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    Png {
        width: info.width as usize,
        height: info.height as usize,
        color: info.color_type,
        pixels,
    }
}

impl Png {
    fn channels(&self) -> usize {
        match self.color {
            png::ColorType::Grayscale => 1,
            png::ColorType::Rgb => 3,
            c => panic!("unexpected colour type {c:?}"),
        }
    }
    fn at(&self, x: usize, y: usize) -> &[u8] {
        let c = self.channels();
        let i = (y * self.width + x) * c;
        &self.pixels[i..i + c]
    }
}

// ---------------------------------------------------------------- checkpoints

fn sample_checkpoint() -> Checkpoint {
    let mut c = Checkpoint::new();
    // Odd sizes, a scalar, a zero-size tensor, and values whose bits must survive.
    c.insert(
        "encoder.0.weight",
        Tensor::uniform([8, 1, 3, 3], -1.0, 1.0, 1),
    );
    c.insert("encoder.0.bias", Tensor::uniform([8], -1.0, 1.0, 2));
    c.insert("decoder.1.weight", Tensor::uniform([3, 5, 7], -1.0, 1.0, 3));
    c.insert(
        "scalar",
        Tensor::new(Shape::new(Vec::<usize>::new()), vec![42.5]).unwrap(),
    );
    c.insert("empty", Tensor::zeros([0, 4]));
    let special = vec![
        -0.0,
        f32::MIN_POSITIVE / 8.0, // subnormal
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_1234), // NaN with a payload
        f32::MAX,
        1.0e-30,
    ];
    c.insert("special", Tensor::new([7], special).unwrap());
    c.metadata.insert(
        META_CONFIG.into(),
        "{\"latent\": 16,\n \"name\": \"ae \\\"mnist\\\" ✓\"}".into(),
    );
    c.metadata.insert(
        META_OPTIMIZER.into(),
        "adam lr=0.001 betas=(0.9, 0.999)".into(),
    );
    c.set_step(123_456_789_012);
    c
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let saved = sample_checkpoint();
    saved.save(&path).unwrap();
    let loaded = Checkpoint::load(&path).unwrap();

    assert_eq!(loaded.source.as_deref(), Some(path.as_path()));
    // Loaded tensors come back sorted by name.
    let mut names: Vec<&str> = saved.names().collect();
    names.sort();
    assert_eq!(loaded.names().collect::<Vec<_>>(), names);
    for (name, t) in &saved.tensors {
        let l = loaded.require(name, &t.shape).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&l.data), bits(&t.data), "tensor {name}");
    }
    assert_eq!(loaded.metadata, saved.metadata);
    assert_eq!(loaded.step().unwrap(), Some(123_456_789_012));
    assert_eq!(entries(dir.path()), ["ckpt.safetensors"]);
}

#[test]
fn checkpoint_without_metadata_or_tensors_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.safetensors");
    Checkpoint::new().save(&path).unwrap();
    let loaded = Checkpoint::load(&path).unwrap();
    assert!(loaded.tensors.is_empty());
    assert!(loaded.metadata.is_empty());
    assert_eq!(loaded.step().unwrap(), None);
}

#[test]
fn saved_file_follows_the_safetensors_layout() {
    // Read our own output by hand: an external reader needs exactly this.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout.safetensors");
    let mut c = Checkpoint::new();
    c.insert("w", Tensor::new([2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    c.metadata.insert(META_STEP.into(), "7".into());
    c.save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["w"]["dtype"], "F32");
    assert_eq!(header["w"]["shape"], serde_json::json!([2, 2]));
    assert_eq!(header["w"]["data_offsets"], serde_json::json!([0, 16]));
    assert_eq!(header["__metadata__"]["wgrad.step"], "7");
    assert_eq!(&bytes[8 + n..], le_f32(&[1.0, 2.0, 3.0, 4.0]).as_slice());
}

#[test]
fn loads_a_hand_written_pytorch_style_file() {
    // What safetensors.torch.save_file writes for a small state_dict: `__metadata__` with
    // format=pt, tensors sorted by dtype alignment then name, offsets relative to the data start.
    // F64 and half-precision tensors are converted to f32.
    let conv_w: Vec<f32> = (0..8).map(|i| i as f32 * 0.5 - 1.0).collect(); // [2, 1, 2, 2]
    let bias = [0.25f32, -0.75];
    let lin64 = [1.5f64, -2.25, 1e-3];
    let half16 = [0.5f32, -1.0, 65504.0];
    let bf = [3.0f32, -0.0078125];

    let mut data = Vec::new();
    for v in lin64 {
        data.extend(v.to_le_bytes());
    }
    let f64_end = data.len();
    data.extend(le_f32(&bias));
    let bias_end = data.len();
    data.extend(le_f32(&conv_w));
    let conv_end = data.len();
    for v in bf {
        data.extend(half::bf16::from_f32(v).to_le_bytes());
    }
    let bf_end = data.len();
    for v in half16 {
        data.extend(half::f16::from_f32(v).to_le_bytes());
    }
    let f16_end = data.len();
    let header = format!(
        concat!(
            r#"{{"__metadata__":{{"format":"pt"}},"#,
            r#""fc.weight":{{"dtype":"F64","shape":[1,3],"data_offsets":[0,{}]}},"#,
            r#""decoder.bias":{{"dtype":"F32","shape":[2],"data_offsets":[{},{}]}},"#,
            r#""encoder.0.weight":{{"dtype":"F32","shape":[2,1,2,2],"data_offsets":[{},{}]}},"#,
            r#""bf":{{"dtype":"BF16","shape":[2],"data_offsets":[{},{}]}},"#,
            r#""half":{{"dtype":"F16","shape":[3],"data_offsets":[{},{}]}}}}"#
        ),
        f64_end, f64_end, bias_end, bias_end, conv_end, conv_end, bf_end, bf_end, f16_end
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torch.safetensors");
    fs::write(&path, safetensors_bytes(&header, &data)).unwrap();

    let c = Checkpoint::load(&path).unwrap();
    assert_eq!(
        c.names().collect::<Vec<_>>(),
        [
            "bf",
            "decoder.bias",
            "encoder.0.weight",
            "fc.weight",
            "half"
        ]
    );
    assert_eq!(
        c.require("encoder.0.weight", &Shape::new([2, 1, 2, 2]))
            .unwrap()
            .data,
        conv_w
    );
    assert_eq!(
        c.require("decoder.bias", &Shape::new([2])).unwrap().data,
        bias
    );
    assert_eq!(
        c.require("fc.weight", &Shape::new([1, 3])).unwrap().data,
        lin64.map(|v| v as f32)
    );
    assert_eq!(c.require("half", &Shape::new([3])).unwrap().data, half16);
    assert_eq!(c.require("bf", &Shape::new([2])).unwrap().data, bf);
    assert_eq!(
        c.metadata,
        BTreeMap::from([("format".to_string(), "pt".to_string())])
    );
}

#[test]
fn unsupported_and_unknown_dtypes_name_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    // PyTorch's batch count is an I64 scalar: converted, and saved back as I64.
    let ints = safetensors_bytes(
        r#"{"bn.num_batches_tracked":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}"#,
        &5i64.to_le_bytes(),
    );
    let path = dir.path().join("ints.safetensors");
    std::fs::write(&path, &ints).unwrap();
    let c = Checkpoint::load(&path).unwrap();
    let count = c.require("bn.num_batches_tracked", &Shape::new(Vec::<usize>::new()));
    assert_eq!(count.unwrap().data, [5.0]);
    c.save(&path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        ints,
        "saved back as the same I64 bytes"
    );
    let bytes = safetensors_bytes(
        r#"{"mask":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
        &[1u8, 0],
    );
    let msg = load_err(dir.path(), "bytes.safetensors", &bytes);
    assert!(msg.contains("'mask'") && msg.contains("U8"), "{msg}");

    let unknown = safetensors_bytes(
        r#"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}}"#,
        &[0u8],
    );
    let msg = load_err(dir.path(), "q4.safetensors", &unknown);
    assert!(msg.contains("'w'") && msg.contains("Q4"), "{msg}");
}

#[test]
fn byte_length_not_matching_the_shape_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = safetensors_bytes(
        r#"{"encoder.0.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}"#,
        &[0u8; 20],
    );
    let msg = load_err(dir.path(), "short.safetensors", &bytes);
    assert!(msg.contains("'encoder.0.weight'"), "{msg}");
    assert!(
        msg.contains("[2, 3]") && msg.contains("24") && msg.contains("20"),
        "{msg}"
    );
}

#[test]
fn truncated_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    sample_checkpoint().save(&good).unwrap();
    let bytes = fs::read(&good).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;

    // Cut in the tensor data.
    let msg = load_err(
        dir.path(),
        "cut-data.safetensors",
        &bytes[..bytes.len() - 5],
    );
    assert!(msg.contains("truncated"), "{msg}");
    // Cut in the header.
    let msg = load_err(dir.path(), "cut-header.safetensors", &bytes[..8 + n / 2]);
    assert!(msg.contains("runs past the end"), "{msg}");
    // Cut in the length field.
    let msg = load_err(dir.path(), "cut-length.safetensors", &bytes[..3]);
    assert!(msg.contains("too short"), "{msg}");
    // Empty file.
    load_err(dir.path(), "empty.safetensors", &[]);
    // Trailing garbage is as wrong as missing bytes.
    let mut longer = bytes.clone();
    longer.extend([1, 2, 3]);
    let msg = load_err(dir.path(), "long.safetensors", &longer);
    assert!(msg.contains("trailing"), "{msg}");
}

#[test]
fn corrupt_headers_and_other_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let msg = load_err(
        dir.path(),
        "json.safetensors",
        &safetensors_bytes(r#"{"w": {"dtype": "F32", "shape": [1], "#, &[]),
    );
    assert!(msg.contains("header"), "{msg}");
    let mut not_utf8 = safetensors_bytes("{}", &[]);
    not_utf8[9] = 0xff;
    let msg = load_err(dir.path(), "utf8.safetensors", &not_utf8);
    assert!(msg.contains("UTF-8"), "{msg}");
    let msg = load_err(
        dir.path(),
        "meta.safetensors",
        &safetensors_bytes(r#"{"__metadata__":{"step":3}}"#, &[]),
    );
    assert!(msg.contains("__metadata__"), "{msg}");
    // A PNG, a text file: the length field reads as some huge number.
    let msg = load_err(dir.path(), "image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    assert!(msg.contains("not a safetensors file"), "{msg}");
    load_err(dir.path(), "notes.txt", b"step,epoch,train_loss\n1,0,0.5\n");

    let err = Checkpoint::load(dir.path().join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.safetensors"));
}

#[test]
fn failed_save_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let old = sample_checkpoint();
    old.save(&path).unwrap();
    let old_bytes = fs::read(&path).unwrap();

    // A writer that dies halfway through the new checkpoint's bytes.
    let mut new = Checkpoint::new();
    new.insert("w", Tensor::uniform([256, 256], 0.0, 1.0, 9));
    let scratch = dir.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    new.save(scratch.join("new.safetensors")).unwrap();
    let new_bytes = fs::read(scratch.join("new.safetensors")).unwrap();
    let err = write_atomic(&path, |w| {
        w.write_all(&new_bytes[..new_bytes.len() / 2])
            .map_err(|e| io_error(&path, "writing", e))?;
        Err(Error::Io {
            path: path.display().to_string(),
            message: "simulated: disk full".into(),
        })
    })
    .unwrap_err();
    assert!(err.to_string().contains("disk full"));
    assert_eq!(fs::read(&path).unwrap(), old_bytes);
    assert_eq!(entries(dir.path()), ["ckpt.safetensors", "scratch"]);
    let loaded = Checkpoint::load(&path).unwrap();
    assert_eq!(loaded.metadata, old.metadata);

    // A save refused before writing leaves it alone too.
    let mut bad = Checkpoint::new();
    bad.tensors.push(("w".into(), Tensor::zeros([1])));
    bad.tensors.push(("w".into(), Tensor::zeros([1])));
    assert!(bad.save(&path).is_err());
    assert_eq!(fs::read(&path).unwrap(), old_bytes);

    // And a successful save replaces it whole.
    new.save(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), new_bytes);
    assert_eq!(entries(dir.path()), ["ckpt.safetensors", "scratch"]);
}

// ---------------------------------------------------------------- image grids

/// Expected level of image `i`, channel `ch`, pixel `(y, x)` of `t`.
fn level(t: &Tensor, i: usize, ch: usize, y: usize, x: usize) -> u8 {
    let [_, c, h, w] = t.shape.dims().try_into().unwrap();
    let v = t.data[((i * c + ch) * h + y) * w + x];
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[test]
fn grayscale_grid_has_originals_above_reconstructions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let (n, h, w, scale, columns) = (3, 4, 5, 3, 2);
    // Values outside [0, 1] check the clamping.
    let originals = Tensor::uniform([n, 1, h, w], -0.2, 1.2, 11);
    let recons = Tensor::uniform([n, 1, h, w], 0.0, 1.0, 12);
    write_grid(&path, &[&originals, &recons], columns, scale).unwrap();

    let png = decode_png(&path);
    assert_eq!(png.color, png::ColorType::Grayscale);
    assert_eq!(png.width, GAP + columns * (w * scale + GAP));
    assert_eq!(png.height, GAP + 2 * (h * scale + GAP));
    for (r, t) in [&originals, &recons].into_iter().enumerate() {
        for col in 0..columns {
            let (x0, y0) = (GAP + col * (w * scale + GAP), GAP + r * (h * scale + GAP));
            for y in 0..h * scale {
                for x in 0..w * scale {
                    assert_eq!(
                        png.at(x0 + x, y0 + y)[0],
                        level(t, col, 0, y / scale, x / scale),
                        "row {r} column {col} pixel ({y}, {x})"
                    );
                }
            }
        }
    }
    // Borders.
    assert_eq!(png.at(0, 0), [GAP_LEVEL]);
    assert_eq!(png.at(GAP + w * scale, GAP), [GAP_LEVEL]);
    assert_eq!(png.at(GAP, GAP + h * scale), [GAP_LEVEL]);
    assert_eq!(entries(dir.path()), ["grid.png"]);
}

#[test]
fn rgb_grid_repeats_grey_rows_and_leaves_missing_cells_grey() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rgb.png");
    let colour = Tensor::uniform([2, 3, 2, 3], 0.0, 1.0, 21);
    let grey = Tensor::uniform([1, 1, 2, 3], 0.0, 1.0, 22); // one image for two columns
    write_grid(&path, &[&colour, &grey], 2, 1).unwrap();
    let png = decode_png(&path);
    assert_eq!(png.color, png::ColorType::Rgb);
    assert_eq!(
        (png.width, png.height),
        (GAP + 2 * (3 + GAP), GAP + 2 * (2 + GAP))
    );
    let cell = |r: usize, c: usize| (GAP + c * (3 + GAP), GAP + r * (2 + GAP));
    let (x0, y0) = cell(0, 1);
    for ch in 0..3 {
        assert_eq!(png.at(x0 + 2, y0 + 1)[ch], level(&colour, 1, ch, 1, 2));
    }
    let (x0, y0) = cell(1, 0);
    let g = level(&grey, 0, 0, 1, 0);
    assert_eq!(png.at(x0, y0 + 1), [g, g, g]);
    let (x0, y0) = cell(1, 1);
    assert_eq!(png.at(x0 + 1, y0 + 1), [GAP_LEVEL; 3]);
}

#[test]
fn grid_errors_name_the_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.png");
    let a = Tensor::zeros([2, 1, 28, 28]);
    let b = Tensor::zeros([2, 1, 14, 14]);
    let msg = write_grid(&path, &[&a, &b], 2, 1).unwrap_err().to_string();
    assert!(
        msg.contains("bad.png") && msg.contains("[2, 1, 14, 14]") && msg.contains("[2, 1, 28, 28]"),
        "{msg}"
    );
    let two = Tensor::zeros([2, 2, 28, 28]);
    let msg = write_grid(&path, &[&two], 2, 1).unwrap_err().to_string();
    assert!(msg.contains("[2, 2, 28, 28]"), "{msg}");
    let flat = Tensor::zeros([2, 784]);
    assert!(
        write_grid(&path, &[&flat], 2, 1)
            .unwrap_err()
            .to_string()
            .contains("[2, 784]")
    );
    assert!(write_grid(&path, &[&a], 0, 1).is_err());
    assert!(write_grid(&path, &[&a], 2, 0).is_err());
    assert!(write_grid(&path, &[], 2, 1).is_err());
    let lying = Tensor {
        shape: Shape::new([2, 1, 28, 28]),
        data: vec![0.0; 3],
    };
    assert!(write_grid(&path, &[&lying], 2, 1).is_err());
    let huge = Tensor::zeros([1, 1, 1, 1]);
    assert!(write_grid(&path, &[&huge], 1, usize::MAX / 2).is_err());
    assert!(entries(dir.path()).is_empty());
}

// ---------------------------------------------------------------- loss log and plot

fn sample_log(rows: usize) -> LossLog {
    let mut log = LossLog::new();
    for i in 0..rows as u64 {
        let step = (i + 1) * 50;
        log.push(LossRow {
            step,
            epoch: i / 4,
            train_loss: 0.5 * (-(i as f32) / 6.0).exp() + 0.01,
            test_loss: (i % 4 == 3).then(|| 0.6 * (-(i as f32) / 6.0).exp() + 0.015),
            images_per_s: 1234.5 + i as f32 / 3.0,
        });
    }
    log
}

/// Every field's bits, so that NaN compares equal to itself.
fn bits(log: &LossLog) -> Vec<(u64, u64, u32, Option<u32>, u32)> {
    log.rows
        .iter()
        .map(|r| {
            (
                r.step,
                r.epoch,
                r.train_loss.to_bits(),
                r.test_loss.map(f32::to_bits),
                r.images_per_s.to_bits(),
            )
        })
        .collect()
}

#[test]
fn csv_round_trip_and_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.csv");
    let mut log = sample_log(9);
    log.rows[2].train_loss = f32::NAN; // a diverged step survives the round trip too
    log.write_csv(&path).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().next(), Some(CSV_HEADER));
    assert_eq!(text.lines().count(), 10);
    let back = LossLog::read_csv(&path).unwrap();
    assert_eq!(bits(&back), bits(&log));

    // Resume from a checkpoint at step 300: later rows go, new ones are appended.
    let mut resumed = back;
    resumed.retain_through(300);
    assert_eq!(resumed.rows.len(), 6);
    resumed.push(LossRow {
        step: 350,
        epoch: 1,
        train_loss: 0.1,
        test_loss: None,
        images_per_s: 1.0,
    });
    resumed.write_csv(&path).unwrap();
    assert_eq!(bits(&LossLog::read_csv(&path).unwrap()), bits(&resumed));
}

#[test]
fn csv_errors_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.csv");
    let check = |text: &str, want: &[&str]| {
        fs::write(&path, text).unwrap();
        let err = LossLog::read_csv(&path).unwrap_err();
        assert!(matches!(err, Error::Data { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("loss.csv"), "{msg}");
        for w in want {
            assert!(msg.contains(w), "{msg} lacks {w}");
        }
    };
    check("", &["header"]);
    check("a,b\n", &["line 1", "header"]);
    check(
        &format!("{CSV_HEADER}\n1,0,0.5,,10\n2,0,oops,,10\n"),
        &["line 3", "train_loss", "oops"],
    );
    check(
        &format!("{CSV_HEADER}\n-1,0,0.5,,10\n"),
        &["line 2", "step"],
    );
    check(
        &format!("{CSV_HEADER}\n1,0,0.5\n"),
        &["line 2", "5 columns"],
    );
    // Windows line endings and a trailing blank line are fine.
    fs::write(&path, format!("{CSV_HEADER}\r\n1,0,0.5,0.6,10\r\n\r\n")).unwrap();
    assert_eq!(
        LossLog::read_csv(&path).unwrap().rows[0].test_loss,
        Some(0.6)
    );
}

/// Distinct colours of an RGB image.
fn colours(png: &Png) -> std::collections::HashSet<[u8; 3]> {
    png.pixels
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

#[test]
fn plot_is_a_png_of_the_expected_size_with_both_curves_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    // Spans more than a decade: the log-scale axis.
    let mut log = sample_log(40);
    log.rows[5].train_loss = f32::NAN;
    log.write_plot(&path, "autoencoder on MNIST").unwrap();
    let png = decode_png(&path);
    assert_eq!(
        (png.width, png.height),
        (PLOT_SIZE.0 as usize, PLOT_SIZE.1 as usize)
    );
    assert_eq!(png.color, png::ColorType::Rgb);
    let seen = colours(&png);
    assert!(seen.len() > 10, "looks blank: {} colours", seen.len());
    assert!(seen.contains(&[31, 119, 180]), "no train curve");
    assert!(seen.contains(&[214, 39, 40]), "no held-out curve");
    // The title is drawn with the embedded font: dark pixels in the top band.
    let dark_in_title = (0..30)
        .flat_map(|y| (0..png.width).map(move |x| (x, y)))
        .filter(|&(x, y)| png.at(x, y).iter().all(|&c| c < 100))
        .count();
    assert!(
        dark_in_title > 50,
        "no title text ({dark_in_title} dark pixels)"
    );
    assert_eq!(entries(dir.path()), ["loss.png"]);
}

#[test]
fn plot_handles_degenerate_logs() {
    let dir = tempfile::tempdir().unwrap();
    let row = |step, train_loss, test_loss| LossRow {
        step,
        epoch: 0,
        train_loss,
        test_loss,
        images_per_s: 0.0,
    };
    let cases: Vec<(&str, Vec<LossRow>)> = vec![
        ("one-row", vec![row(0, 0.3, Some(0.4))]),
        (
            "flat",
            vec![row(1, 0.2, None), row(2, 0.2, None), row(3, 0.2, None)],
        ),
        (
            "narrow",
            vec![row(10, 0.0110, None), row(20, 0.0112, Some(0.0111))],
        ),
        (
            "negative",
            vec![row(1, -1.0, None), row(2, 3.0, Some(-0.5))],
        ),
        ("zero", vec![row(1, 0.0, None), row(2, 1.0, None)]),
        (
            "all-nan",
            vec![
                row(1, f32::NAN, Some(f32::INFINITY)),
                row(2, f32::NAN, None),
            ],
        ),
        ("huge", vec![row(u64::MAX, 1e30, None), row(0, 1e-30, None)]),
    ];
    let out = std::env::var("WGRAD_IO_SAMPLES").ok();
    for (name, rows) in cases {
        let path = match &out {
            Some(d) => Path::new(d).join(format!("{name}.png")),
            None => dir.path().join(format!("{name}.png")),
        };
        LossLog { rows }
            .write_plot(&path, name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let png = decode_png(&path);
        assert_eq!(
            (png.width, png.height),
            (PLOT_SIZE.0 as usize, PLOT_SIZE.1 as usize),
            "{name}"
        );
        assert!(colours(&png).len() > 2, "{name} looks blank");
    }
}

#[test]
fn empty_log_is_an_error_not_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    let msg = LossLog::new()
        .write_plot(&path, "t")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("loss.png") && msg.contains("no rows"), "{msg}");
    assert!(!path.exists());
}

/// Writes sample plots and grids to $WGRAD_IO_SAMPLES for a person to look at.
#[test]
#[ignore = "writes sample files for inspection; run with WGRAD_IO_SAMPLES=dir --ignored"]
fn write_samples() {
    let Ok(dir) = std::env::var("WGRAD_IO_SAMPLES") else {
        return;
    };
    let dir = Path::new(&dir);
    sample_log(40)
        .write_plot(dir.join("log.png"), "autoencoder on MNIST")
        .unwrap();
    let mut narrow = sample_log(40);
    narrow.rows.drain(..20);
    narrow
        .write_plot(dir.join("linear.png"), "linear axis")
        .unwrap();
    let a = Tensor::uniform([8, 1, 28, 28], 0.0, 1.0, 1);
    let b = Tensor::uniform([8, 3, 28, 28], 0.0, 1.0, 2);
    write_grid(dir.join("grid.png"), &[&a, &b], 6, 2).unwrap();
}
