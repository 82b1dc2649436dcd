//! Fuzzing of every parser of user input, as property tests: each starts from valid files of its
//! format, mutates them (bit flips, interesting integers written over header fields, insertions,
//! deletions, truncation; for formats with checksums or a JSON header, mutations of the content
//! with the framing repaired, so they reach past the first check) and asserts that the parser
//! answers with `Ok` or an error, never a panic, and that what it accepts is consistent.
//!
//! The number of cases scales with `WGRAD_FUZZ_SCALE` (default 1: about half a minute in all on two
//! cores; CI runs the default). A failure prints the shrunk input's mutations.

use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::io::Write;
use std::path::Path;
use wgrad::data::{DataSpec, load_idx, load_png_folder};
use wgrad::exec::Device;
use wgrad::graph::MemoryPlan;
use wgrad::io::{Checkpoint, LossLog, load_model, save_model};
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::{Trainer, training_graph};
use wgrad::{AdamConfig, Tensor};

/// `cases` scaled by `WGRAD_FUZZ_SCALE`.
fn config(cases: u32) -> Config {
    let scale: f64 = std::env::var("WGRAD_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    Config {
        cases: ((cases as f64 * scale).round() as u32).max(1),
        failure_persistence: None,
        // Each case is cheap; shrinking a failure is what takes long.
        max_shrink_iters: 2000,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// Integers that break size arithmetic: zero, one, sign and byte boundaries, 2³² and the top
/// of every width.
const INTERESTING: [u64; 16] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    4_000_000_000,
    1 << 53,
    i64::MAX as u64,
    1 << 63,
    u64::MAX,
];

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    /// An interesting integer of `width` bytes, big-endian when `big`.
    Word(usize, usize, u8, bool),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
}

/// A position: mostly in the first 64 bytes, where the headers are.
fn position() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..64, 1 => any::<usize>()]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (position(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        2 => (position(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        3 => (position(), 0..INTERESTING.len(), prop::sample::select(vec![1u8, 2, 4, 8]), any::<bool>())
            .prop_map(|(i, v, w, big)| Mutation::Word(i, v, w, big)),
        1 => (position(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (position(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..6)
}

/// Fewer mutations, none at times: for inputs whose content is varied another way too.
fn few_mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 0..3)
}

fn mutate(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in muts {
        let len = b.len();
        match m {
            Mutation::Flip(i, bit) if len > 0 => b[i % len] ^= 1 << bit,
            Mutation::Set(i, v) if len > 0 => b[i % len] = *v,
            Mutation::Word(i, v, w, big) if len > 0 => {
                let v = INTERESTING[*v];
                let bytes = if *big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                let w = *w as usize;
                let word = if *big { &bytes[8 - w..] } else { &bytes[..w] };
                let at = i % len;
                for (k, &x) in word.iter().enumerate() {
                    if at + k < len {
                        b[at + k] = x;
                    }
                }
            }
            Mutation::Insert(i, bytes) => {
                let at = i % (len + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) if len > 0 => {
                let at = i % len;
                b.drain(at..(at + n).min(len));
            }
            Mutation::Truncate(n) => b.truncate(n % (len + 1)),
            _ => {}
        }
    }
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------------------------------------
// IDX

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(data);
    b
}

fn idx_images() -> Vec<u8> {
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 37 % 256) as u8).collect();
    idx(0x803, &[3, 4, 5], &pixels)
}

fn idx_labels() -> Vec<u8> {
    idx(0x801, &[3], &[0, 7, 2])
}

/// Loads `images` (and `labels` beside it) through both entry points the CLI uses.
fn load_idx_pair(images: &[u8], labels: Option<&[u8]>) {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&ip, images).unwrap();
    let lp = dir.path().join("train-labels-idx1-ubyte");
    if let Some(l) = labels {
        std::fs::write(&lp, l).unwrap();
    }
    if let Ok(d) = load_idx(&ip, labels.map(|_| lp.as_path())) {
        assert_eq!(d.images.data.len(), d.images.shape.numel());
        if let Some(l) = &d.labels {
            assert_eq!(l.len(), d.len());
            assert!(l.iter().all(|&c| (c as usize) < d.num_classes()));
        }
    }
    let spec = DataSpec::parse(ip.to_str().unwrap()).unwrap();
    if let Ok(split) = spec.load(1, (6, 6), 0) {
        assert_eq!(split.train.image_shape(), [1, 6, 6]);
    }
}

proptest! {
    #![proptest_config(config(6000))]

    #[test]
    fn idx_files_never_panic(
        muts in mutations(),
        target in 0u8..2,
        form in 0u8..3,
    ) {
        // form 0: raw; 1: mutated, then gzipped (reaches the parser past gzip's checksum);
        // 2: gzipped, then mutated (corrupt compression).
        let (images, labels) = (idx_images(), idx_labels());
        let (mut i, mut l) = (images.clone(), labels.clone());
        let hit = if target == 0 { &mut i } else { &mut l };
        *hit = match form {
            0 => mutate(hit, &muts),
            1 => gzip(&mutate(hit, &muts)),
            _ => mutate(&gzip(hit), &muts),
        };
        load_idx_pair(&i, Some(&l));
        load_idx_pair(&i, None);
    }
}

// ---------------------------------------------------------------------------------------------
// PNG folders

fn png(w: u32, h: u32, color: png::ColorType, depth: png::BitDepth) -> Vec<u8> {
    let channels = match color {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        _ => 4,
    };
    let bytes_per = if depth == png::BitDepth::Sixteen {
        2
    } else {
        1
    };
    let data: Vec<u8> = (0..w * h * channels * bytes_per)
        .map(|i| (i * 53 % 251) as u8)
        .collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

/// Recomputes every chunk's CRC, so that a mutated chunk reaches the decoder's checks of its
/// content instead of failing the checksum.
fn fix_png_crcs(b: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let Some(end) = (at + 8).checked_add(len).filter(|&e| e + 4 <= b.len()) else {
            return;
        };
        let mut crc = flate2::Crc::new();
        crc.update(&b[at + 4..end]);
        b[end..end + 4].copy_from_slice(&crc.sum().to_be_bytes());
        at = end + 4;
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn png_folders_never_panic(
        muts in mutations(),
        which in 0usize..4,
        fix_crc in any::<bool>(),
        channels in prop::sample::select(vec![1usize, 3]),
    ) {
        let files = [
            ("a/0.png", png(6, 5, png::ColorType::Grayscale, png::BitDepth::Eight)),
            ("a/1.png", png(6, 5, png::ColorType::Rgb, png::BitDepth::Eight)),
            ("b/0.png", png(6, 5, png::ColorType::Rgba, png::BitDepth::Sixteen)),
            ("b/1.png", png(6, 5, png::ColorType::GrayscaleAlpha, png::BitDepth::Eight)),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (i, (name, bytes)) in files.iter().enumerate() {
            let mut bytes = bytes.clone();
            if i == which {
                bytes = mutate(&bytes, &muts);
                if fix_crc {
                    fix_png_crcs(&mut bytes);
                }
            }
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        if let Ok(d) = load_png_folder(dir.path(), channels, (7, 4)) {
            assert_eq!(d.image_shape(), [channels, 7, 4]);
            assert_eq!(d.images.data.len(), d.images.shape.numel());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints and optimizer sidecars

/// A small autoencoder, so that each case builds its trainer in milliseconds.
const SMALL: &str = r#"image = [1, 8, 8]

[[encoder]]
type = "Conv2d"
in_channels = 1
out_channels = 2
kernel_size = 3
stride = 2
padding = 1

[[encoder]]
type = "ReLU"

[[encoder]]
type = "Flatten"

[[encoder]]
type = "Linear"
in_features = 32
out_features = 4

[[decoder]]
type = "Linear"
in_features = 4
out_features = 32

[[decoder]]
type = "ReLU"

[[decoder]]
type = "Unflatten"
dims = [2, 4, 4]

[[decoder]]
type = "ConvTranspose2d"
in_channels = 2
out_channels = 1
kernel_size = 3
stride = 2
padding = 1
output_padding = 1

[[decoder]]
type = "Sigmoid"
"#;

fn adam() -> Optimizer {
    Optimizer::Adam(AdamConfig::adam())
}

/// A checkpoint and its sidecar after two Adam steps of [`SMALL`]: `(checkpoint, sidecar
/// name, sidecar)`.
fn saved_small() -> (Vec<u8>, String, Vec<u8>) {
    let config = AutoencoderConfig::from_toml(SMALL, "small.toml").unwrap();
    let mut t = Trainer::new(Device::Cpu, config.clone(), 2, adam(), 3).unwrap();
    let x = Tensor::uniform([2, 1, 8, 8], 0.0, 1.0, 4);
    for _ in 0..2 {
        t.step(&x).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    save_model(&path, &config, &t.state().unwrap(), Some("adam"), &[]).unwrap();
    let ckpt = std::fs::read(&path).unwrap();
    let side_name = Checkpoint::load(&path).unwrap().metadata["wgrad.optimizer_state"].clone();
    let side = std::fs::read(dir.path().join(&side_name)).unwrap();
    (ckpt, side_name, side)
}

/// A safetensors file split into its JSON header and its data.
fn split_safetensors(b: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&b[8..8 + n]).unwrap();
    (header, b[8 + n..].to_vec())
}

fn join_safetensors(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend(h);
    b.extend(data);
    b
}

/// A change to a safetensors header that keeps it valid JSON: a tensor's dtype, a dimension,
/// an offset, a metadata value (the step, the config text, the sidecar's name), or a removed
/// entry.
#[derive(Clone, Debug)]
enum HeaderEdit {
    Dtype(usize, &'static str),
    Dim(usize, usize, usize),
    AddDim(usize, usize),
    Offset(usize, bool, usize),
    Meta(usize, String),
    MetaNumber(usize, usize, usize),
    Remove(usize),
}

fn header_edit() -> impl Strategy<Value = HeaderEdit> {
    let dtype = prop::sample::select(vec!["F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "X"]);
    let meta_text = prop_oneof![
        Just(String::new()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("../x.safetensors".to_string()),
        Just("image = [1, 4294967296, 4294967296]".to_string()),
        "[ -~]{0,12}",
    ];
    prop_oneof![
        (any::<usize>(), dtype).prop_map(|(t, d)| HeaderEdit::Dtype(t, d)),
        (any::<usize>(), any::<usize>(), 0..INTERESTING.len())
            .prop_map(|(t, i, v)| HeaderEdit::Dim(t, i, v)),
        (any::<usize>(), 0..INTERESTING.len()).prop_map(|(t, v)| HeaderEdit::AddDim(t, v)),
        (any::<usize>(), any::<bool>(), 0..INTERESTING.len())
            .prop_map(|(t, end, v)| HeaderEdit::Offset(t, end, v)),
        (any::<usize>(), meta_text).prop_map(|(k, v)| HeaderEdit::Meta(k, v)),
        (any::<usize>(), any::<usize>(), 0..INTERESTING.len())
            .prop_map(|(k, at, v)| HeaderEdit::MetaNumber(k, at, v)),
        any::<usize>().prop_map(HeaderEdit::Remove),
    ]
}

fn edit_header(h: &mut serde_json::Value, e: &HeaderEdit) {
    let obj = h.as_object_mut().unwrap();
    let tensors: Vec<String> = obj
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    let meta_keys: Vec<String> = obj
        .get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let tensor = |i: usize| tensors[i % tensors.len()].clone();
    let interesting = |v: usize| serde_json::Value::from(INTERESTING[v]);
    match e {
        HeaderEdit::Dtype(t, d) => obj[&tensor(*t)]["dtype"] = (*d).into(),
        HeaderEdit::Dim(t, i, v) => {
            if let Some(shape) = obj[&tensor(*t)]["shape"].as_array_mut()
                && !shape.is_empty()
            {
                let n = shape.len();
                shape[i % n] = interesting(*v);
            }
        }
        HeaderEdit::AddDim(t, v) => {
            if let Some(shape) = obj[&tensor(*t)]["shape"].as_array_mut() {
                shape.push(interesting(*v));
            }
        }
        HeaderEdit::Offset(t, end, v) => {
            obj[&tensor(*t)]["data_offsets"][*end as usize] = interesting(*v);
        }
        HeaderEdit::Meta(k, v) if !meta_keys.is_empty() => {
            obj["__metadata__"][&meta_keys[k % meta_keys.len()]] = v.clone().into();
        }
        HeaderEdit::MetaNumber(k, at, v) if !meta_keys.is_empty() => {
            // An interesting number written over one of the digits runs of a metadata value
            // (the step; a dimension of the config's TOML).
            let key = &meta_keys[k % meta_keys.len()];
            let text = obj["__metadata__"][key].as_str().unwrap_or("").to_string();
            let runs: Vec<(usize, usize)> = digit_runs(&text);
            if !runs.is_empty() {
                let (a, b) = runs[at % runs.len()];
                let new = format!("{}{}{}", &text[..a], INTERESTING[*v], &text[b..]);
                obj["__metadata__"][key] = new.into();
            }
        }
        HeaderEdit::Remove(i) => {
            let keys: Vec<String> = obj.keys().cloned().collect();
            obj.remove(&keys[i % keys.len()]);
        }
        _ => {}
    }
}

fn digit_runs(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// What `wgrad train --resume` does with a checkpoint, up to the first step: load it and its
/// sidecar, then build a trainer of its config with its parameters and optimizer state. A
/// model too big to build here (an edited config may ask for gigabytes) is not trained: that
/// is an allocation, not parsing, and `Error::OutOfMemory` covers it on GPUs.
fn resume(path: &Path) {
    let Ok(saved) = load_model(path) else { return };
    let config = saved.config.clone().unwrap_or_default();
    if let Some(mut t) = small_trainer(&config, saved.state.params.clone())
        && t.load_state(&saved.state).is_ok()
    {
        one_step(&mut t, &config);
    }
}

/// A CPU trainer of `config` with `params`, unless its training graph needs more than 16 MiB
/// (an edited config may ask for gigabytes: that is an allocation, not parsing, and
/// `Error::OutOfMemory` covers it on GPUs) or building it is an error.
fn small_trainer(config: &AutoencoderConfig, params: Vec<(String, Tensor)>) -> Option<Trainer> {
    let wgrad::train::TrainingGraph {
        graph: g,
        loss,
        grads,
        ..
    } = training_graph(config, 2, &|_| false).ok()?;
    let grad_nodes: Vec<_> = grads.params.iter().map(|p| p.2).collect();
    if MemoryPlan::new(&g, &[loss], &grad_nodes).naive_bytes > 16 << 20 {
        return None;
    }
    Trainer::with_params(Device::Cpu, config.clone(), 2, adam(), params).ok()
}

/// One training step on random images: a diverged step is an error like any other; only a
/// panic fails.
fn one_step(t: &mut Trainer, config: &AutoencoderConfig) {
    let [c, h, w] = config.image;
    let x = Tensor::uniform([2, c, h, w], 0.0, 1.0, 1);
    let _ = t.step(&x);
}

fn fuzz_saved(ckpt: &[u8], side_name: &str, side: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, ckpt).unwrap();
    std::fs::write(dir.path().join(side_name), side).unwrap();
    if let Ok(c) = Checkpoint::load(&path) {
        for (name, t) in &c.tensors {
            assert_eq!(t.data.len(), t.shape.numel(), "{name}");
        }
        let _ = c.step();
    }
    resume(&path);
}

proptest! {
    #![proptest_config(config(2500))]

    #[test]
    fn checkpoints_and_sidecars_never_panic(
        muts in mutations(),
        edits in prop::collection::vec(header_edit(), 1..3),
        sidecar in any::<bool>(),
        structured in any::<bool>(),
    ) {
        let (mut ckpt, side_name, mut side) = saved_small();
        let target = if sidecar { &mut side } else { &mut ckpt };
        *target = if structured {
            let (mut h, data) = split_safetensors(target);
            for e in &edits {
                edit_header(&mut h, e);
            }
            join_safetensors(&h, &data)
        } else {
            mutate(target, &muts)
        };
        fuzz_saved(&ckpt, &side_name, &side);
    }
}

// ---------------------------------------------------------------------------------------------
// Model configs

/// A dimension for a generated config: small ones that make valid models, and ones whose
/// products overflow.
fn dim() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..9,
        1 => prop::sample::select(INTERESTING.to_vec()),
        1 => Just(4_000_000_000u64),
    ]
}

/// A TOML config from generated layers (any order, any sizes).
fn generated_config() -> impl Strategy<Value = String> {
    let layer = prop_oneof![
        (dim(), dim(), dim(), dim(), dim()).prop_map(|(i, o, k, s, p)| format!(
            "type = \"Conv2d\"\nin_channels = {i}\nout_channels = {o}\nkernel_size = {k}\nstride = {s}\npadding = {p}\n"
        )),
        (dim(), dim(), dim(), dim(), dim(), dim()).prop_map(|(i, o, k, s, p, op)| format!(
            "type = \"ConvTranspose2d\"\nin_channels = {i}\nout_channels = {o}\nkernel_size = {k}\nstride = {s}\npadding = {p}\noutput_padding = {op}\n"
        )),
        (dim(), dim()).prop_map(|(i, o)| format!(
            "type = \"Linear\"\nin_features = {i}\nout_features = {o}\n"
        )),
        Just("type = \"ReLU\"\n".to_string()),
        Just("type = \"Sigmoid\"\n".to_string()),
        Just("type = \"Flatten\"\n".to_string()),
        prop::collection::vec(dim(), 0..4).prop_map(|d| format!(
            "type = \"Unflatten\"\ndims = {d:?}\n"
        )),
    ];
    (
        (dim(), dim(), dim()),
        prop::collection::vec(layer.clone(), 0..5),
        prop::collection::vec(layer, 0..5),
    )
        .prop_map(|((c, h, w), enc, dec)| {
            let mut s = format!("image = [{c}, {h}, {w}]\n");
            for l in enc {
                s += &format!("\n[[encoder]]\n{l}");
            }
            for l in dec {
                s += &format!("\n[[decoder]]\n{l}");
            }
            s
        })
}

/// Parses a config; one that passes must also build its training graph at other batch sizes,
/// and, when small, train a step on the CPU reference.
fn parse_config(text: &str) {
    if let Ok(config) = AutoencoderConfig::from_toml(text, "fuzz.toml") {
        for batch in [1, 3, 1 << 20] {
            let _ = training_graph(&config, batch, &|_| false);
        }
        let _ = config.code_shape();
        let params = wgrad::nn::init_params(&config.params(), 0);
        if let Some(mut t) = small_trainer(&config, params) {
            one_step(&mut t, &config);
        }
    }
}

proptest! {
    #![proptest_config(config(6000))]

    #[test]
    fn generated_configs_never_panic(text in generated_config()) {
        parse_config(&text);
    }

    #[test]
    fn mutated_configs_never_panic(
        muts in few_mutations(),
        small in any::<bool>(),
        numbers in prop::collection::vec((any::<usize>(), dim()), 0..4),
    ) {
        // Sizes of the default or the small model changed (mostly to other small values, so
        // that many still make a model), then bytes.
        let mut text = if small { SMALL.to_string() } else { AutoencoderConfig::default().to_toml() };
        for (at, v) in numbers {
            let runs = digit_runs(&text);
            let (a, b) = runs[at % runs.len()];
            text = format!("{}{}{}", &text[..a], v, &text[b..]);
        }
        parse_config(&String::from_utf8_lossy(&mutate(text.as_bytes(), &muts)));
    }
}

// ---------------------------------------------------------------------------------------------
// --data specs and loss logs

proptest! {
    #![proptest_config(config(2500))]

    #[test]
    fn data_specs_never_panic(
        s in prop_oneof![
            Just("builtin".to_string()),
            Just(String::new()),
            Just("/".to_string()),
            Just("/dev/null".to_string()),
            Just("/proc/self/status".to_string()),
            "[ -~]{0,24}",
            ".{0,12}",
        ],
        size in (0usize..40, 0usize..40),
        channels in 0usize..5,
    ) {
        if let Ok(spec) = DataSpec::parse(&s) {
            // The built-in set at 40×40 is 7,000 images: cheap enough.
            let _ = spec.load(channels, size, 0);
        }
    }

    #[test]
    fn loss_logs_never_panic(muts in mutations()) {
        let good = "step,epoch,train_loss,test_loss,images_per_s\n1,0,0.5,,100\n2,0,0.4,0.45,120.5\n3,1,nan,inf,0\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.loss.csv");
        std::fs::write(&path, mutate(good.as_bytes(), &muts)).unwrap();
        let _ = LossLog::read_csv(&path);
    }
}

/// The inputs the issue names, which panicked before the checked arithmetic: dimensions whose
/// product overflows or wraps to zero, and a checkpoint shape that overflows.
#[test]
fn overflowing_dimensions_are_errors() {
    let default = AutoencoderConfig::default().to_toml();
    for image in ["[1, 4000000000, 4000000000]", "[1, 4294967296, 4294967296]"] {
        let text = default.replace("image = [1, 28, 28]", &format!("image = {image}"));
        let e = AutoencoderConfig::from_toml(&text, "big.toml").unwrap_err();
        assert!(
            e.to_string().contains("more than 4294967295 elements"),
            "{e}"
        );
    }
    let (ckpt, side_name, side) = saved_small();
    let (mut h, data) = split_safetensors(&ckpt);
    let name = h
        .as_object()
        .unwrap()
        .keys()
        .find(|k| *k != "__metadata__")
        .unwrap()
        .clone();
    h[&name]["shape"] = serde_json::json!([4294967296u64, 4294967296u64, 0]);
    fuzz_saved(&join_safetensors(&h, &data), &side_name, &side);
}
