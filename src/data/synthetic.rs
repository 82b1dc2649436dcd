//! The built-in dataset: small gray images of six simple shapes, generated from a seed.
//!
//! It lets the CLI train an autoencoder or a classifier with no file at all, and lets tests
//! train on something with real structure. Generation uses only [`Rng`] and IEEE-exact f32
//! arithmetic (+, −, ×, ÷, sqrt, floor, ceil; the rotation is a random unit vector, not an
//! angle through sin/cos), so a seed gives the same bits on every platform.

use super::{Dataset, Split, mix};
use crate::tensor::{Rng, Tensor};

/// Class names of [`synthetic()`], indexed by label.
pub const SYNTHETIC_CLASSES: [&str; 6] = ["disc", "square", "triangle", "cross", "bar", "ring"];

const TRAIN_TAG: u64 = 0x7379_6e74_6872_6e01;
const TEST_TAG: u64 = 0x7379_6e74_6573_7402;
/// Standard deviation of the pixel noise.
const NOISE: f32 = 0.05;

/// `n_train` and `n_test` single-channel `size × size` images (28 is the usual size) of the
/// six [`SYNTHETIC_CLASSES`], labelled.
///
/// Each image holds one shape at a random position, scale (its bounding circle has a radius
/// of 25–42 % of the side, and stays inside the image) and rotation, drawn with antialiased
/// edges at a brightness of 0.8–1 on a 0 background, plus Gaussian-like noise (σ = 0.05),
/// clamped to `[0, 1]`. Labels cycle through the classes, so each has `n / 6` images (±1).
/// Train and test come from separate streams of the seed, so they never share an image.
pub fn synthetic(n_train: usize, n_test: usize, size: usize, seed: u64) -> Split {
    Split {
        train: generate(n_train, size, mix(seed, TRAIN_TAG), "builtin (train)"),
        test: generate(n_test, size, mix(seed, TEST_TAG), "builtin (test)"),
    }
}

fn generate(n: usize, size: usize, stream: u64, source: &str) -> Dataset {
    let mut rng = Rng::new(stream);
    let pixels = size * size;
    let mut data = vec![0.0f32; n * pixels];
    let labels: Vec<u32> = (0..n)
        .map(|i| (i % SYNTHETIC_CLASSES.len()) as u32)
        .collect();
    if pixels > 0 {
        for (image, &label) in data.chunks_exact_mut(pixels).zip(&labels) {
            render(image, size, label, &mut rng);
            add_noise(image, &mut rng);
        }
    }
    Dataset {
        images: Tensor {
            shape: [n, 1, size, size].into(),
            data,
        },
        labels: Some(labels),
        classes: SYNTHETIC_CLASSES.iter().map(|s| s.to_string()).collect(),
        source: source.to_string(),
    }
}

/// Draws shape `class` into the zeroed `size × size` image.
fn render(image: &mut [f32], size: usize, class: u32, rng: &mut Rng) {
    let side = size as f32;
    let r = side * rng.uniform(0.25, 0.42);
    let cx = rng.uniform(r, side - r);
    let cy = rng.uniform(r, side - r);
    let (cos, sin) = unit_vector(rng);
    let brightness = rng.uniform(0.8, 1.0);
    let inv_r = 1.0 / r;
    // Only the pixels near the bounding circle can be lit.
    let lo = |c: f32| (c - r - 1.0).floor().max(0.0) as usize;
    let hi = |c: f32| ((c + r + 1.0).ceil().max(0.0) as usize).min(size);
    for y in lo(cy)..hi(cy) {
        let dy = y as f32 + 0.5 - cy;
        for x in lo(cx)..hi(cx) {
            let dx = x as f32 + 0.5 - cx;
            // Shape coordinates: rotated, and scaled so the shape fits the unit circle.
            let u = (cos * dx + sin * dy) * inv_r;
            let v = (cos * dy - sin * dx) * inv_r;
            // Signed distance in pixels → coverage with a one-pixel ramp at the edge.
            let coverage = (0.5 - distance(class, u, v) * r).clamp(0.0, 1.0);
            image[y * size + x] = brightness * coverage;
        }
    }
}

/// A random direction `(cos θ, sin θ)`, by rejection from the square (no sin/cos).
fn unit_vector(rng: &mut Rng) -> (f32, f32) {
    loop {
        let a = rng.uniform(-1.0, 1.0);
        let b = rng.uniform(-1.0, 1.0);
        let len2 = a * a + b * b;
        if (0.01..=1.0).contains(&len2) {
            let len = len2.sqrt();
            return (a / len, b / len);
        }
    }
}

/// Signed distance (negative inside; exact or a close bound) from `(u, v)` to the unit-scale
/// shape of `class`. Every shape fits inside the unit circle.
fn distance(class: u32, u: f32, v: f32) -> f32 {
    let (au, av) = (u.abs(), v.abs());
    let rect = |a: f32, b: f32| (au - a).max(av - b);
    match class {
        0 => (u * u + v * v).sqrt() - 0.9,
        1 => rect(0.68, 0.68),
        2 => {
            // Equilateral triangle with circumradius 1, inradius 0.5; outward edge normals
            // at −90°, 30° and 150°.
            const C30: f32 = 0.866_025_4;
            (-v).max(C30 * u + 0.5 * v).max(-C30 * u + 0.5 * v) - 0.5
        }
        3 => rect(0.92, 0.25).min(rect(0.25, 0.92)),
        4 => rect(0.95, 0.25),
        _ => ((u * u + v * v).sqrt() - 0.75).abs() - 0.2,
    }
}

/// Adds noise of deviation [`NOISE`] — the sum of four uniforms, near enough to Gaussian —
/// taking all four from one draw, and clamps to `[0, 1]`.
fn add_noise(image: &mut [f32], rng: &mut Rng) {
    // Four U(0,1) sum to mean 2, variance 1/3.
    const SCALE: f32 = NOISE * 1.732_050_8;
    for p in image {
        let z = rng.next_u64();
        let sum = (z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) + (z >> 48);
        let noise = (sum as f32 / 65536.0 - 2.0) * SCALE;
        *p = (*p + noise).clamp(0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_fits_the_unit_circle_and_contains_its_centre_region() {
        for class in 0..6 {
            // Outside the unit circle nothing is lit.
            for k in 0..64 {
                let (c, s) = (
                    (k as f32 * 0.098).cos() * 1.02,
                    (k as f32 * 0.098).sin() * 1.02,
                );
                assert!(distance(class, c, s) > 0.0, "class {class} at {c},{s}");
            }
        }
        // The ring has a hole; every other shape covers its centre.
        for class in 0..5 {
            assert!(distance(class, 0.0, 0.0) < 0.0);
        }
        assert!(distance(5, 0.0, 0.0) > 0.0);
    }

    #[test]
    fn tiny_and_empty_sizes_do_not_panic() {
        for size in 0..4 {
            let s = synthetic(7, 2, size, 1);
            assert_eq!(s.train.len(), 7);
            assert_eq!(s.train.images.data.len(), 7 * size * size);
        }
    }
}
