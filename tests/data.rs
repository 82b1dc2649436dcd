//! The datasets: built-in shapes, IDX files, PNG folders, `--data` specs and batch order.
//! Every file these tests read is written by the tests themselves into a temporary folder.
#![cfg(not(target_arch = "wasm32"))] // native: blocking calls, files, processes

use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use wgrad::Error;
use wgrad::data::{
    BatchOrder, DataSpec, Dataset, SYNTHETIC_CLASSES, find_labels_for, load_idx, load_png_folder,
    synthetic,
};

// ---------------------------------------------------------------------------------------------
// Helpers

/// An IDX file: header of `type_code`, `dims`, then `body`.
fn idx_bytes(type_code: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, type_code, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(body);
    v
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// `n` images of `h × w` whose pixel `k` of image `i` is `(7i + k) mod 256`, and labels `i mod 10`.
fn mnist_like(n: usize, h: usize, w: usize) -> (Vec<u8>, Vec<u8>) {
    let pixels = (0..n)
        .flat_map(|i| (0..h * w).map(move |k| ((7 * i + k) % 256) as u8))
        .collect();
    let labels = (0..n).map(|i| (i % 10) as u8).collect();
    (pixels, labels)
}

fn write_mnist(dir: &Path, images: &str, labels: &str, n: usize, gz: bool) -> (PathBuf, PathBuf) {
    let (px, lb) = mnist_like(n, 4, 3);
    let mut im = idx_bytes(8, &[n as u32, 4, 3], &px);
    let mut la = idx_bytes(8, &[n as u32], &lb);
    if gz {
        im = gzip(&im);
        la = gzip(&la);
    }
    (write(&dir.join(images), &im), write(&dir.join(labels), &la))
}

/// Asserts that `r` is a data error whose message names `file` and contains each of `words`.
fn assert_data_error<T: std::fmt::Debug>(r: wgrad::Result<T>, file: &str, words: &[&str]) {
    let e = r.expect_err("expected an error");
    assert!(matches!(e, Error::Data { .. }), "not a data error: {e:?}");
    let msg = e.to_string();
    assert!(msg.contains(file), "message does not name {file}: {msg}");
    for w in words {
        assert!(msg.contains(w), "message lacks '{w}': {msg}");
    }
}

fn gray_png(path: &Path, w: u32, h: u32, value: impl Fn(u32, u32) -> u8) {
    image::GrayImage::from_fn(w, h, |x, y| image::Luma([value(x, y)]))
        .save(path)
        .unwrap();
}

fn rgb_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

fn bits(d: &Dataset) -> Vec<u32> {
    d.images.data.iter().map(|v| v.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------------
// Built-in synthetic shapes

#[test]
fn synthetic_is_deterministic_per_seed() {
    let a = synthetic(60, 30, 28, 42);
    let b = synthetic(60, 30, 28, 42);
    assert_eq!(bits(&a.train), bits(&b.train));
    assert_eq!(bits(&a.test), bits(&b.test));
    assert_eq!(a.train.labels, b.train.labels);
    let c = synthetic(60, 30, 28, 43);
    assert_ne!(bits(&a.train), bits(&c.train));
    assert_ne!(bits(&a.test), bits(&c.test));
    // Train and test come from different streams: no test image is a training image.
    let len = 28 * 28;
    for t in a.test.images.data.chunks(len) {
        assert!(a.train.images.data.chunks(len).all(|x| x != t));
    }
    // The first images do not depend on how many are asked for.
    let more = synthetic(120, 30, 28, 42);
    assert_eq!(bits(&a.train), bits(&more.train)[..60 * len].to_vec());
}

#[test]
fn synthetic_shapes_values_and_balance() {
    let s = synthetic(600, 120, 20, 5);
    assert_eq!(s.train.images.shape.dims(), &[600, 1, 20, 20]);
    assert_eq!(s.test.image_shape(), [1, 20, 20]);
    assert_eq!(s.train.num_classes(), 6);
    assert_eq!(s.train.classes, SYNTHETIC_CLASSES);
    assert!(
        s.train
            .images
            .data
            .iter()
            .chain(&s.test.images.data)
            .all(|v| (0.0..=1.0).contains(v))
    );
    let mut count = [0usize; 6];
    for &l in s.train.labels.as_ref().unwrap() {
        count[l as usize] += 1;
    }
    assert_eq!(count, [100; 6]);
    // Every image has a shape in it (bright pixels) and a dark background.
    for img in s.train.images.data.chunks(400) {
        let bright = img.iter().filter(|&&v| v > 0.6).count();
        let dark = img.iter().filter(|&&v| v < 0.2).count();
        assert!(bright >= 10 && dark >= 100, "bright {bright}, dark {dark}");
    }
}

/// Rotation- and position-free features of one image: the hole at the centroid (the ring),
/// the spread of the ink around its centroid relative to its area (bar and cross are spread
/// out, disc compact), and the farthest ink from the centroid relative to the area (the
/// square's corners reach further than the disc's edge).
fn features(img: &[f32], size: usize) -> [f32; 3] {
    let ink: Vec<(f32, f32)> = (0..size * size)
        .filter(|&k| img[k] > 0.5)
        .map(|k| ((k % size) as f32, (k / size) as f32))
        .collect();
    let m = ink.len() as f32;
    let cx = ink.iter().map(|p| p.0).sum::<f32>() / m;
    let cy = ink.iter().map(|p| p.1).sum::<f32>() / m;
    let d2: Vec<f32> = ink
        .iter()
        .map(|p| (p.0 - cx).powi(2) + (p.1 - cy).powi(2))
        .collect();
    let spread = d2.iter().sum::<f32>() / (m * m);
    let reach = d2.iter().cloned().fold(0.0, f32::max).sqrt() / m.sqrt();
    let centre =
        img[(cy.round() as usize).min(size - 1) * size + (cx.round() as usize).min(size - 1)];
    [centre, spread * 5.0, reach]
}

#[test]
fn synthetic_classes_look_different() {
    let size = 28;
    let s = synthetic(1200, 600, size, 9);
    let feats = |d: &Dataset| -> Vec<([f32; 3], u32)> {
        d.images
            .data
            .chunks(size * size)
            .map(|img| features(img, size))
            .zip(d.labels.clone().unwrap())
            .collect()
    };
    let train = feats(&s.train);
    let mut mean = [[0.0f32; 3]; 6];
    let mut count = [0.0f32; 6];
    for (f, l) in &train {
        for (m, v) in mean[*l as usize].iter_mut().zip(f) {
            *m += v;
        }
        count[*l as usize] += 1.0;
    }
    for (m, n) in mean.iter_mut().zip(count) {
        m.iter_mut().for_each(|v| *v /= n);
    }
    // The ring's centre is dark, every other shape's lit.
    for (c, m) in mean.iter().enumerate() {
        if SYNTHETIC_CLASSES[c] == "ring" {
            assert!(m[0] < 0.3, "ring centre {}", m[0]);
        } else {
            assert!(m[0] > 0.6, "{} centre {}", SYNTHETIC_CLASSES[c], m[0]);
        }
    }
    // A nearest-class-mean rule on three crude features is far above chance (1/6).
    let test = feats(&s.test);
    let correct = test
        .iter()
        .filter(|(f, l)| {
            let dist = |m: &[f32; 3]| (0..3).map(|i| (f[i] - m[i]).powi(2)).sum::<f32>();
            let best = (0..6)
                .min_by(|&a, &b| dist(&mean[a]).total_cmp(&dist(&mean[b])))
                .unwrap();
            best == *l as usize
        })
        .count();
    let accuracy = correct as f32 / test.len() as f32;
    assert!(
        accuracy > 0.6,
        "nearest-mean accuracy {accuracy}, means {mean:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// IDX

#[test]
fn idx_round_trip_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    for gz in [false, true] {
        let sub = dir.path().join(if gz { "gz" } else { "raw" });
        std::fs::create_dir(&sub).unwrap();
        let (im, la) = write_mnist(
            &sub,
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            5,
            gz,
        );
        let d = load_idx(&im, Some(&la)).unwrap();
        assert_eq!(d.images.shape.dims(), &[5, 1, 4, 3]);
        let (px, lb) = mnist_like(5, 4, 3);
        let want: Vec<f32> = px.iter().map(|&b| b as f32 / 255.0).collect();
        assert_eq!(d.images.data, want);
        assert_eq!(d.labels, Some(lb.iter().map(|&l| l as u32).collect()));
        assert_eq!(d.num_classes(), 5); // labels 0..=4
        assert_eq!(d.classes[4], "4");
        // Unlabelled.
        let u = load_idx(&im, None).unwrap();
        assert_eq!(u.labels, None);
        assert_eq!(u.num_classes(), 0);
    }
}

#[test]
fn idx_gzip_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let (px, _) = mnist_like(2, 2, 2);
    let raw = idx_bytes(8, &[2, 2, 2], &px);
    let a = write(&dir.path().join("images.gz"), &raw); // raw despite its name
    let b = write(&dir.path().join("images.bin"), &gzip(&raw)); // gzip despite its name
    assert_eq!(load_idx(&a, None).unwrap(), {
        let mut d = load_idx(&b, None).unwrap();
        d.source = a.display().to_string();
        d
    });
}

#[test]
fn finds_the_labels_beside_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (im, la) = write_mnist(
        d,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        2,
        false,
    );
    assert_eq!(find_labels_for(&im), Some(la));
    // gzip images, raw labels (and the other dotted naming).
    let (im, _) = write_mnist(d, "x-images.idx3-ubyte.gz", "unused", 2, true);
    let la = write(&d.join("x-labels.idx1-ubyte"), b"");
    assert_eq!(find_labels_for(&im), Some(la));
    let (im, la) = write_mnist(
        d,
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        2,
        true,
    );
    assert_eq!(find_labels_for(&im), Some(la));
    // No labels file, or no "images" in the name.
    let (im, _) = write_mnist(d, "lone-images-idx3-ubyte", "other", 2, false);
    assert_eq!(find_labels_for(&im), None);
    assert_eq!(find_labels_for(&d.join("other")), None);
}

#[test]
fn idx_wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir.path().join("train-images.idx3-ubyte"), &[0u8; 40]);
    assert_data_error(
        load_idx(&p, None),
        "train-images.idx3-ubyte",
        &["wrong magic number 0x00000000, expected 0x00000803 (IDX images)"],
    );
    // A labels file given as images.
    let p = write(&dir.path().join("swapped"), &idx_bytes(8, &[3], &[1, 2, 3]));
    assert_data_error(
        load_idx(&p, None),
        "swapped",
        &["0x00000801", "expected 0x00000803"],
    );
    // Not IDX at all (a PNG, say).
    let p = write(&dir.path().join("picture"), b"\x89PNG\r\n\x1a\n........");
    assert_data_error(load_idx(&p, None), "picture", &["wrong magic number"]);
}

#[test]
fn idx_unsupported_element_type() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir.path().join("floats-idx3"),
        &idx_bytes(0x0d, &[1, 1, 1], &[0, 0, 0, 0]),
    );
    assert_data_error(
        load_idx(&p, None),
        "floats-idx3",
        &["unsupported element type 0x0d (f32)"],
    );
}

#[test]
fn idx_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (px, _) = mnist_like(3, 4, 4);
    let full = idx_bytes(8, &[3, 4, 4], &px);
    let p = write(&dir.path().join("cut-images"), &full[..full.len() - 1]);
    assert_data_error(
        load_idx(&p, None),
        "cut-images",
        &["truncated", "promises 48 bytes", "holds 47"],
    );
    let p = write(&dir.path().join("cut-header"), &full[..10]);
    assert_data_error(load_idx(&p, None), "cut-header", &["truncated", "header"]);
    let p = write(&dir.path().join("empty-file"), b"");
    assert_data_error(load_idx(&p, None), "empty-file", &["truncated"]);
    // Truncated inside a gzip member: the gzip stream is incomplete.
    let gz = gzip(&full);
    let p = write(&dir.path().join("cut.gz"), &gz[..gz.len() / 2]);
    assert_data_error(load_idx(&p, None), "cut.gz", &["gzip"]);
}

#[test]
fn idx_trailing_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (px, _) = mnist_like(2, 2, 2);
    let mut bytes = idx_bytes(8, &[2, 2, 2], &px);
    bytes.push(0);
    let p = write(&dir.path().join("long-images"), &bytes);
    assert_data_error(load_idx(&p, None), "long-images", &["trailing bytes"]);
    let p = write(&dir.path().join("long-images.gz"), &gzip(&bytes));
    assert_data_error(load_idx(&p, None), "long-images.gz", &["trailing bytes"]);
}

#[test]
fn idx_corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let (px, _) = mnist_like(2, 2, 2);
    let mut gz = gzip(&idx_bytes(8, &[2, 2, 2], &px));
    let mid = gz.len() / 2;
    for b in &mut gz[12..mid] {
        *b ^= 0x5a;
    }
    let p = write(&dir.path().join("bad.gz"), &gz);
    assert_data_error(load_idx(&p, None), "bad.gz", &["gzip"]);
    // Just the magic bytes.
    let p = write(&dir.path().join("stub.gz"), &[0x1f, 0x8b]);
    assert_data_error(load_idx(&p, None), "stub.gz", &["gzip"]);
}

#[test]
fn idx_label_count_differs() {
    let dir = tempfile::tempdir().unwrap();
    let (px, lb) = mnist_like(6, 2, 2);
    let im = write(
        &dir.path().join("train-images-idx3-ubyte"),
        &idx_bytes(8, &[6, 2, 2], &px),
    );
    let la = write(
        &dir.path().join("labels.idx1-ubyte"),
        &idx_bytes(8, &[5], &lb[..5]),
    );
    assert_data_error(
        load_idx(&im, Some(&la)),
        "labels.idx1-ubyte",
        &["5 labels but 6 images in", "train-images-idx3-ubyte"],
    );
    // Labels file with the images magic.
    let la = write(
        &dir.path().join("wrong-labels"),
        &idx_bytes(8, &[6, 2, 2], &px),
    );
    assert_data_error(
        load_idx(&im, Some(&la)),
        "wrong-labels",
        &["expected 0x00000801 (IDX labels)"],
    );
}

#[test]
fn idx_zero_images() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir.path().join("none-images"),
        &idx_bytes(8, &[0, 28, 28], &[]),
    );
    assert_data_error(
        load_idx(&p, None),
        "none-images",
        &["no image data", "0 images"],
    );
    let p = write(
        &dir.path().join("flat-images"),
        &idx_bytes(8, &[4, 0, 28], &[]),
    );
    assert_data_error(load_idx(&p, None), "flat-images", &["no image data"]);
}

#[test]
fn idx_missing_file_is_an_io_error() {
    let e = load_idx(Path::new("/nonexistent/wgrad/train-images"), None).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(
        e.to_string().contains("/nonexistent/wgrad/train-images"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// PNG folders

#[test]
fn png_class_folders_gray_and_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for class in ["zebra", "apple"] {
        std::fs::create_dir(d.join(class)).unwrap();
    }
    gray_png(&d.join("apple/b.png"), 4, 3, |_, _| 255);
    gray_png(&d.join("apple/a.png"), 4, 3, |x, _| (x * 60) as u8);
    rgb_png(&d.join("zebra/c.PNG"), 4, 3, [255, 0, 0]);
    std::fs::write(d.join("zebra/notes.txt"), "not an image").unwrap();
    std::fs::write(d.join("zebra/.hidden.png"), "skipped").unwrap();

    // Gray model input: sorted classes, sorted files, RGB → luma.
    let g = load_png_folder(d, 1, (3, 4)).unwrap();
    assert_eq!(g.classes, ["apple", "zebra"]);
    assert_eq!(g.labels, Some(vec![0, 0, 1]));
    assert_eq!(g.images.shape.dims(), &[3, 1, 3, 4]);
    assert_eq!(
        &g.images.data[..4],
        &[0.0, 60.0 / 255.0, 120.0 / 255.0, 180.0 / 255.0]
    );
    assert!(g.images.data[12..24].iter().all(|&v| v == 1.0));
    assert!(
        g.images.data[24..]
            .iter()
            .all(|&v| (v - 0.299).abs() < 1e-6)
    );

    // RGB model input: gray repeated, RGB kept.
    let c = load_png_folder(d, 3, (3, 4)).unwrap();
    assert_eq!(c.images.shape.dims(), &[3, 3, 3, 4]);
    let first = &c.images.data[..36];
    assert_eq!(&first[..12], &first[12..24]);
    assert_eq!(&first[..12], &first[24..36]);
    let red = &c.images.data[72..];
    assert!(red[..12].iter().all(|&v| v == 1.0) && red[12..].iter().all(|&v| v == 0.0));
}

#[test]
fn png_rgba_and_16_bit_gray_convert() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Alpha is dropped, not blended: a half-transparent white pixel reads as white.
    image::RgbaImage::from_pixel(2, 2, image::Rgba([255, 255, 255, 128]))
        .save(d.join("a.png"))
        .unwrap();
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_pixel(2, 2, image::Luma([32768]))
        .save(d.join("b.png"))
        .unwrap();
    let g = load_png_folder(d, 1, (2, 2)).unwrap();
    assert!(
        g.images.data[..4].iter().all(|&v| (v - 1.0).abs() < 1e-6),
        "{:?}",
        g.images.data
    );
    assert!(
        g.images.data[4..]
            .iter()
            .all(|&v| (v - 32768.0 / 65535.0).abs() < 1e-6)
    );
}

#[test]
fn png_loose_files_unlabelled_and_resized() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (i, name) in ["b.png", "a.png", "c.png"].iter().enumerate() {
        gray_png(&d.join(name), 10, 8, move |x, _| {
            if x < 5 { 0 } else { 50 * i as u8 + 100 }
        });
    }
    let s = load_png_folder(d, 1, (4, 5)).unwrap();
    assert_eq!(s.labels, None);
    assert!(s.classes.is_empty());
    assert_eq!(s.images.shape.dims(), &[3, 1, 4, 5]);
    assert!(s.images.data.iter().all(|v| (0.0..=1.0).contains(v)));
    // a.png (value 150 on the right) first: left columns dark, right columns bright.
    let a = &s.images.data[..20];
    assert!(a[0] < 0.05 && (a[4] - 150.0 / 255.0).abs() < 0.05, "{a:?}");
    // Upsampling works too.
    let big = load_png_folder(d, 3, (16, 20)).unwrap();
    assert_eq!(big.image_shape(), [3, 16, 20]);
    // The split keeps everything.
    let split = DataSpec::PngFolder(d.to_path_buf())
        .load(1, (8, 10), 3)
        .unwrap();
    assert_eq!((split.train.len(), split.test.len()), (2, 1));
}

#[test]
fn png_mixed_sizes_error_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    gray_png(&dir.path().join("a.png"), 8, 8, |_, _| 0);
    gray_png(&dir.path().join("b.png"), 8, 9, |_, _| 0);
    assert_data_error(
        load_png_folder(dir.path(), 1, (8, 8)),
        "b.png",
        &["a.png", "8×9", "8×8", "one size"],
    );
}

#[test]
fn png_empty_folder_and_empty_class() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("readme.txt"), "no images").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    let name = d.file_name().unwrap().to_str().unwrap().to_string();
    assert_data_error(load_png_folder(d, 1, (4, 4)), &name, &["no PNG files"]);
    // With one class filled, the empty one is an error.
    std::fs::create_dir(d.join("cats")).unwrap();
    gray_png(&d.join("cats/x.png"), 2, 2, |_, _| 9);
    assert_data_error(
        load_png_folder(d, 1, (4, 4)),
        "sub",
        &["class sub-folder has no PNG"],
    );
    // Loose PNGs beside class folders.
    std::fs::remove_dir(d.join("sub")).unwrap();
    gray_png(&d.join("loose.png"), 2, 2, |_, _| 9);
    assert_data_error(
        load_png_folder(d, 1, (4, 4)),
        "loose.png",
        &["class sub-folders"],
    );
}

#[test]
fn png_corrupt_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    gray_png(&dir.path().join("good.png"), 3, 3, |_, _| 1);
    std::fs::write(
        dir.path().join("broken.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    assert_data_error(
        load_png_folder(dir.path(), 1, (3, 3)),
        "broken.png",
        &["not a readable PNG"],
    );
    // A PNG cut short.
    std::fs::remove_file(dir.path().join("broken.png")).unwrap();
    let mut bytes = Vec::new();
    image::GrayImage::from_pixel(16, 16, image::Luma([7]))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    std::fs::write(dir.path().join("cut.png"), &bytes[..bytes.len() / 2]).unwrap();
    assert_data_error(
        load_png_folder(dir.path(), 1, (3, 3)),
        "cut.png",
        &["not a readable PNG"],
    );
}

#[test]
fn png_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("file.png");
    gray_png(&f, 2, 2, |_, _| 0);
    assert_data_error(
        load_png_folder(&f, 1, (2, 2)),
        "file.png",
        &["not a directory"],
    );
    let e = load_png_folder(&dir.path().join("missing"), 1, (2, 2)).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("missing"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// --data specs

#[test]
fn data_spec_parse() {
    assert_eq!(DataSpec::parse("builtin").unwrap(), DataSpec::Builtin);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        DataSpec::parse(dir.path().to_str().unwrap()).unwrap(),
        DataSpec::PngFolder(dir.path().to_path_buf())
    );
    let (im, la) = write_mnist(
        dir.path(),
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        2,
        false,
    );
    assert_eq!(
        DataSpec::parse(im.to_str().unwrap()).unwrap(),
        DataSpec::Idx {
            images: im.clone(),
            labels: Some(la)
        }
    );
    let missing = dir.path().join("nope");
    let e = DataSpec::parse(missing.to_str().unwrap()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn data_spec_builtin() {
    let s = DataSpec::Builtin.load(1, (16, 16), 4).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (6000, 1000));
    assert_eq!(s.train.image_shape(), [1, 16, 16]);
    assert!(DataSpec::Builtin.load(3, (16, 16), 4).is_err());
    assert!(DataSpec::Builtin.load(1, (16, 12), 4).is_err());
}

#[test]
fn data_spec_idx_uses_t10k_as_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (im, _) = write_mnist(
        d,
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        20,
        true,
    );
    write_mnist(
        d,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        7,
        false,
    );
    let spec = DataSpec::parse(im.to_str().unwrap()).unwrap();
    let s = spec.load(1, (4, 3), 0).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (20, 7));
    assert!(s.test.source.contains("t10k"));
    assert_eq!(s.train.classes, s.test.classes); // unified: 0..=9
    assert_eq!(s.train.num_classes(), 10);
    // Resized to the model's input (and made RGB) rather than refused.
    let big = spec.load(3, (8, 6), 0).unwrap();
    assert_eq!(big.train.images.shape.dims(), &[20, 3, 8, 6]);
    assert_eq!(big.test.image_shape(), [3, 8, 6]);
}

#[test]
fn data_spec_idx_without_test_file_holds_out_a_tenth() {
    let dir = tempfile::tempdir().unwrap();
    let (im, _) = write_mnist(
        dir.path(),
        "fashion-images-idx3-ubyte",
        "fashion-labels-idx1-ubyte",
        50,
        false,
    );
    let spec = DataSpec::parse(im.to_str().unwrap()).unwrap();
    let a = spec.load(1, (4, 3), 1).unwrap();
    assert_eq!((a.train.len(), a.test.len()), (45, 5));
    assert_eq!(a, spec.load(1, (4, 3), 1).unwrap());
    // A bad test file is reported by name.
    let (im, _) = write_mnist(
        dir.path(),
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        5,
        false,
    );
    write(&dir.path().join("t10k-images-idx3-ubyte"), b"junk");
    let spec = DataSpec::parse(im.to_str().unwrap()).unwrap();
    assert_data_error(
        spec.load(1, (4, 3), 1),
        "t10k-images-idx3-ubyte",
        &["wrong magic"],
    );
}

// ---------------------------------------------------------------------------------------------
// Batch order

#[test]
fn batch_order_is_deterministic_and_covers_each_epoch() {
    let o = BatchOrder::new(103, 10, true, 77)
        .unwrap()
        .dropping_last(true);
    assert_eq!(o.batches_per_epoch(), 10); // the last 3 are dropped
    let e0 = o.epoch(0);
    assert_eq!(e0, o.epoch(0));
    let same = BatchOrder::new(103, 10, true, 77).unwrap();
    assert_eq!(e0, same.dropping_last(true).epoch(0));
    assert_ne!(e0, o.epoch(1));
    let other = BatchOrder::new(103, 10, true, 78).unwrap();
    assert_ne!(e0, other.dropping_last(true).epoch(0));
    for e in 0..5 {
        let batches = o.epoch(e);
        assert_eq!(batches.len(), 10);
        assert!(batches.iter().all(|b| b.len() == 10));
        let mut seen: Vec<usize> = batches.concat();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 100, "each index at most once per epoch");
        assert!(seen.iter().all(|&i| i < 103));
    }
    // Over a few epochs, the dropped remainder changes, so every item gets seen.
    let mut all: Vec<usize> = (0..5).flat_map(|e| o.epoch(e).concat()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 103);
    // Without drop_last (the default) every item is seen every epoch, the remainder last.
    let keep = BatchOrder::new(103, 10, true, 77).unwrap();
    assert_eq!(keep.batches_per_epoch(), 11);
    for e in 0..3 {
        let batches = keep.epoch(e);
        assert_eq!(batches.last().unwrap().len(), 3);
        let mut seen = batches.concat();
        seen.sort();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
    }
}

#[test]
fn batch_order_without_shuffle_is_file_order() {
    let o = BatchOrder::new(10, 4, false, 5).unwrap();
    assert_eq!(
        o.epoch(0),
        vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
    );
    assert_eq!(o.epoch(3), o.epoch(0));
    let exact = BatchOrder::new(8, 4, false, 5).unwrap();
    assert_eq!(exact.epoch(1).concat(), (0..8).collect::<Vec<_>>());
}

#[test]
fn batch_order_position_resumes_exactly() {
    let o = BatchOrder::new(57, 8, true, 3).unwrap();
    let per = o.batches_per_epoch() as u64;
    assert_eq!(per, 8);
    assert_eq!(o.position(0), (0, 0));
    assert_eq!(o.position(7), (0, 7));
    assert_eq!(o.position(8), (1, 0));
    assert_eq!(o.position(26), (3, 2));
    // An uninterrupted run's batches, step by step…
    let run: Vec<Vec<usize>> = (0..4).flat_map(|e| o.epoch(e)).collect();
    // …are what a run resumed at any step computes from the step alone.
    for (step, batch) in run.iter().enumerate() {
        let (e, i) = o.position(step as u64);
        assert_eq!(&o.epoch(e)[i], batch);
        assert_eq!(&o.batch_at(step as u64), batch);
    }
}
