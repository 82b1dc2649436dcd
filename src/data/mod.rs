//! Datasets to train on: a built-in synthetic set of shapes, MNIST-style IDX files (raw or
//! gzip), and folders of PNG images; plus the seeded batch order that walks them.
//!
//! Every dataset ends up as a [`Dataset`]: one `[N, C, H, W]` tensor of values in `[0, 1]` and
//! optional class labels. [`DataSpec`] turns the CLI's `--data` argument into a loaded
//! [`Split`] adapted to the model's input (channels and size).
//!
//! Errors name the file and what is wrong with it; nothing here panics on a bad file.

pub mod batches;
pub mod idx;
#[cfg(feature = "images")]
pub mod png_folder;
pub mod synthetic;

pub use batches::BatchOrder;
pub use idx::{find_labels_for, load_idx};
#[cfg(feature = "images")]
pub use png_folder::load_png_folder;
pub use synthetic::{SYNTHETIC_CLASSES, synthetic};

use crate::error::{Error, Result};
use crate::shape::checked_numel;
use crate::tensor::{Rng, Tensor};
use std::path::{Path, PathBuf};

/// Images (and, for a classifier, labels) held in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// `[N, C, H, W]`, values in `[0, 1]`.
    pub images: Tensor,
    /// One label per image, each below `classes.len()`; `None` for unlabelled data.
    pub labels: Option<Vec<u32>>,
    /// Class names, indexed by label; empty when unlabelled.
    pub classes: Vec<String>,
    /// Where the data came from (a path, or "builtin"), for messages.
    pub source: String,
}

/// A training set and a test set drawn from the same source without overlap.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub test: Dataset,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.shape.dims().first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[C, H, W]` of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        match *self.images.shape.dims() {
            [_, c, h, w] => [c, h, w],
            _ => [0, 0, 0],
        }
    }

    /// Number of classes (0 when unlabelled).
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn image_len(&self) -> usize {
        self.image_shape().iter().product()
    }

    /// Copies the images at `indices` (in that order, repeats allowed) into a `[b, C, H, W]`
    /// tensor, with their labels.
    ///
    /// # Panics
    /// When an index is `>= len()`: indices come from [`BatchOrder`] or [`Dataset::holdout`],
    /// never from a file, so an index out of range is a bug in the caller.
    pub fn batch(&self, indices: &[usize]) -> (Tensor, Option<Vec<u32>>) {
        let [c, h, w] = self.image_shape();
        let len = self.image_len();
        let mut data = Vec::with_capacity(indices.len() * len);
        for &i in indices {
            data.extend_from_slice(&self.images.data[i * len..(i + 1) * len]);
        }
        let images = Tensor {
            shape: [indices.len(), c, h, w].into(),
            data,
        };
        let labels = self
            .labels
            .as_ref()
            .map(|l| indices.iter().map(|&i| l[i]).collect());
        (images, labels)
    }

    /// A new dataset holding the images at `indices` (a range such as `0..100`, or
    /// `list.iter().copied()`), with the same classes and source.
    ///
    /// # Panics
    /// When an index is `>= len()`, as [`Dataset::batch`].
    pub fn subset(&self, indices: impl IntoIterator<Item = usize>) -> Dataset {
        let indices: Vec<usize> = indices.into_iter().collect();
        let (images, labels) = self.batch(&indices);
        Dataset {
            images,
            labels,
            classes: self.classes.clone(),
            source: self.source.clone(),
        }
    }

    /// Splits off a test set: a seeded permutation of the images, whose last
    /// `round(fraction · len)` become the test split and the rest the training split.
    ///
    /// `fraction` is clamped to `[0, 1]`. When it is above 0 and there are at least two
    /// images, each side gets at least one, so a small folder still yields a test set and
    /// something to train on. Within each side the images keep their original order (the
    /// permutation only chooses who goes where), so an unshuffled run still reads file order.
    /// A single image always stays in training (the test split is then empty).
    pub fn holdout(&self, fraction: f64, seed: u64) -> Split {
        let n = self.len();
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let mut n_test = ((n as f64) * fraction).round() as usize;
        if fraction > 0.0 && n >= 2 {
            n_test = n_test.clamp(1, n - 1);
        }
        let n_test = n_test.min(n);
        let mut order = permutation(n, &mut Rng::new(mix(seed, HOLDOUT_TAG)));
        let mut test = order.split_off(n - n_test);
        order.sort_unstable();
        test.sort_unstable();
        Split {
            train: self.subset(order),
            test: self.subset(test),
        }
    }

    /// Converts to `channels` (1 or 3) and resizes to `size` = (height, width) — the model's
    /// input. Gray becomes RGB by repeating the plane; RGB becomes gray by luma
    /// (0.299 R + 0.587 G + 0.114 B). Resizing uses a triangle (bilinear) filter, which keeps
    /// values in `[0, 1]`. Returns the dataset unchanged when it already fits.
    pub fn adapt(self, channels: usize, size: (usize, usize)) -> Result<Dataset> {
        let [c, h, w] = self.image_shape();
        if channels != 1 && channels != 3 {
            return Err(Error::invalid(
                "load data",
                format!(
                    "the model takes {channels} channels; images can be given as 1 (gray) or 3 (RGB)"
                ),
            ));
        }
        if size.0 == 0 || size.1 == 0 {
            return Err(Error::invalid(
                "load data",
                format!("model input size {}×{} has a zero", size.0, size.1),
            ));
        }
        if c == channels && (h, w) == size {
            return Ok(self);
        }
        if c != 1 && c != 3 || h == 0 || w == 0 {
            return Err(Error::data(
                &self.source,
                format!(
                    "images are {c}×{h}×{w} [C, H, W]; only non-empty 1-channel (gray) or 3-channel (RGB) images can be converted"
                ),
            ));
        }
        if cfg!(not(feature = "images")) && (h, w) != size {
            return Err(Error::data(
                &self.source,
                format!(
                    "images are {h}×{w} and the model takes {}×{}: resizing needs wgrad's `images` feature",
                    size.0, size.1
                ),
            ));
        }
        let n = self.len();
        let total = checked_numel(
            "load data",
            &format!("{} adapted to the model's input", self.source),
            &[n, channels, size.0, size.1],
        )?;
        let mut data = Vec::new();
        data.try_reserve_exact(total).map_err(|_| {
            Error::data(
                &self.source,
                format!(
                    "{n} images of {channels}×{}×{} need {} bytes, more than can be allocated",
                    size.0,
                    size.1,
                    total as u64 * 4
                ),
            )
        })?;
        for image in self.images.data.chunks_exact(self.image_len()).take(n) {
            let planes = convert_channels(image, c, channels, h * w);
            for plane in planes.chunks_exact(h * w) {
                data.extend(resize_plane(plane, (h, w), size));
            }
        }
        Ok(Dataset {
            images: Tensor {
                shape: [n, channels, size.0, size.1].into(),
                data,
            },
            ..self
        })
    }
}

/// What the CLI's `--data` argument names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSpec {
    /// `builtin`: the synthetic shapes of [`synthetic()`].
    Builtin,
    /// An IDX images file, and the labels file found beside it by [`find_labels_for`].
    Idx {
        images: PathBuf,
        labels: Option<PathBuf>,
    },
    /// A folder of PNG files, or of class sub-folders of PNG files ([`load_png_folder`]).
    PngFolder(PathBuf),
}

/// Fraction of a source held out for testing when it has no test file of its own.
pub const HOLDOUT_FRACTION: f64 = 0.1;
/// Sizes of the built-in dataset used by [`DataSpec::load`].
pub const BUILTIN_TRAIN: usize = 6000;
pub const BUILTIN_TEST: usize = 1000;

impl DataSpec {
    /// `"builtin"`, else a path: a folder is a PNG folder and a file an IDX images file. A
    /// path that does not exist is an [`Error::Io`] naming it.
    pub fn parse(s: &str) -> Result<DataSpec> {
        if s == "builtin" {
            return Ok(DataSpec::Builtin);
        }
        let path = PathBuf::from(s);
        let meta = std::fs::metadata(&path).map_err(|e| io_error(&path, e))?;
        if meta.is_dir() {
            Ok(DataSpec::PngFolder(path))
        } else {
            let labels = find_labels_for(&path);
            Ok(DataSpec::Idx {
                images: path,
                labels,
            })
        }
    }

    /// Loads the data as the model takes it: `channels` (1 or 3) and `size` = (height, width).
    ///
    /// - builtin: `synthetic(6000, 1000, size, seed)`; needs `channels == 1` and a square size.
    /// - IDX: when the images file's name starts with `train` and MNIST's test file
    ///   (`t10k…`, same naming, raw or gzip) lies beside it, that is the test split; otherwise
    ///   10 % of the file is held out ([`Dataset::holdout`]). The gray images are then adapted
    ///   to the model's channels and size ([`Dataset::adapt`]) rather than refused, as PNG
    ///   folders are.
    /// - PNG folder: converted and resized while loading, 10 % held out.
    pub fn load(&self, channels: usize, size: (usize, usize), seed: u64) -> Result<Split> {
        match self {
            DataSpec::Builtin => {
                if channels != 1 || size.0 != size.1 {
                    return Err(Error::invalid(
                        "--data builtin",
                        format!(
                            "the built-in shapes are square single-channel images, but the model takes {channels} channel(s) of {}×{}",
                            size.0, size.1
                        ),
                    ));
                }
                checked_numel(
                    "--data builtin",
                    "the built-in images",
                    &[BUILTIN_TRAIN + BUILTIN_TEST, 1, size.0, size.1],
                )?;
                Ok(synthetic(BUILTIN_TRAIN, BUILTIN_TEST, size.0, seed))
            }
            DataSpec::Idx { images, labels } => {
                let train = load_idx(images, labels.as_deref())?;
                let split = match find_test_file(images) {
                    Some(test_images) => {
                        let test_labels = find_labels_for(&test_images);
                        let test = load_idx(&test_images, test_labels.as_deref())?;
                        pair_train_test(train, test)?
                    }
                    None => train.holdout(HOLDOUT_FRACTION, seed),
                };
                Ok(Split {
                    train: split.train.adapt(channels, size)?,
                    test: split.test.adapt(channels, size)?,
                })
            }
            #[cfg(feature = "images")]
            DataSpec::PngFolder(dir) => {
                Ok(load_png_folder(dir, channels, size)?.holdout(HOLDOUT_FRACTION, seed))
            }
            #[cfg(not(feature = "images"))]
            DataSpec::PngFolder(dir) => Err(Error::data(
                dir.display(),
                "reading PNG folders needs wgrad's `images` feature",
            )),
        }
    }
}

/// MNIST's test file beside a `train…` images file: the same name with `t10k` for `train`,
/// raw or gzip.
fn find_test_file(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let rest = name.strip_prefix("train")?;
    let test_name = format!("t10k{rest}");
    idx::gz_variants(&test_name)
        .into_iter()
        .map(|n| images.with_file_name(n))
        .find(|p| p.is_file())
}

/// Checks that a train file and its separate test file agree, and gives them one class list.
fn pair_train_test(mut train: Dataset, mut test: Dataset) -> Result<Split> {
    if train.image_shape() != test.image_shape() {
        return Err(Error::data(
            &test.source,
            format!(
                "test images are {:?} [C, H, W] but the training images in {} are {:?}",
                test.image_shape(),
                train.source,
                train.image_shape()
            ),
        ));
    }
    if train.labels.is_some() != test.labels.is_some() {
        let (with, without) = if train.labels.is_some() {
            (&train.source, &test.source)
        } else {
            (&test.source, &train.source)
        };
        return Err(Error::data(
            without,
            format!("no labels file found beside it, but {with} has one"),
        ));
    }
    if train.classes.len() < test.classes.len() {
        train.classes = test.classes.clone();
    } else {
        test.classes = train.classes.clone();
    }
    Ok(Split { train, test })
}

/// The planes of one `[c, h, w]` image as `to` channels: gray repeated into RGB, RGB to gray
/// by luma.
pub(crate) fn convert_channels(image: &[f32], from: usize, to: usize, plane: usize) -> Vec<f32> {
    match (from, to) {
        (1, 3) => image.repeat(3),
        (3, 1) => {
            let (r, rest) = image.split_at(plane);
            let (g, b) = rest.split_at(plane);
            r.iter()
                .zip(g)
                .zip(b)
                .map(|((r, g), b)| luma(*r, *g, *b))
                .collect()
        }
        _ => image.to_vec(),
    }
}

/// ITU-R BT.601 luma, the usual RGB → gray weights.
pub(crate) fn luma(r: f32, g: f32, b: f32) -> f32 {
    (0.299 * r + 0.587 * g + 0.114 * b).clamp(0.0, 1.0)
}

/// Without the `images` feature nothing is resized ([`Dataset::adapt`] refuses first).
#[cfg(not(feature = "images"))]
pub(crate) fn resize_plane(plane: &[f32], _: (usize, usize), _: (usize, usize)) -> Vec<f32> {
    plane.to_vec()
}

/// Resizes one `h × w` plane to `size` with the triangle filter (values stay in their range).
#[cfg(feature = "images")]
pub(crate) fn resize_plane(plane: &[f32], from: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    if from == to {
        return plane.to_vec();
    }
    let (Ok(w), Ok(h), Ok(tw), Ok(th)) = (
        u32::try_from(from.1),
        u32::try_from(from.0),
        u32::try_from(to.1),
        u32::try_from(to.0),
    ) else {
        return vec![0.0; to.0 * to.1];
    };
    match image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(w, h, plane.to_vec()) {
        Some(buf) => {
            let out = image::imageops::resize(&buf, tw, th, image::imageops::FilterType::Triangle);
            out.into_raw()
                .into_iter()
                .map(|v| v.clamp(0.0, 1.0))
                .collect()
        }
        None => vec![0.0; to.0 * to.1],
    }
}

/// A uniform random permutation of `0..n` (Fisher–Yates).
pub(crate) fn permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// Tags that keep the streams drawn from one user seed apart.
pub(crate) const HOLDOUT_TAG: u64 = 0x686f_6c64_6f75_7401;

/// A seed for the stream `(seed, tag)`: hashed, so nearby seeds give unrelated streams.
pub(crate) fn mix(seed: u64, tag: u64) -> u64 {
    let mut r = Rng::new(seed ^ tag);
    let a = r.next_u64();
    Rng::new(a ^ tag.rotate_left(17)).next_u64()
}

/// An [`Error::Io`] naming `path`.
pub(crate) fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Dataset {
        let data = (0..n * 4).map(|v| v as f32).collect();
        Dataset {
            images: Tensor::new([n, 1, 2, 2], data).unwrap(),
            labels: Some((0..n as u32).collect()),
            classes: (0..n).map(|i| i.to_string()).collect(),
            source: "numbers".into(),
        }
    }

    #[test]
    fn batch_copies_images_and_labels_in_order() {
        let d = numbered(5);
        let (x, y) = d.batch(&[3, 0, 3]);
        assert_eq!(x.shape.dims(), &[3, 1, 2, 2]);
        assert_eq!(&x.data[..4], &[12.0, 13.0, 14.0, 15.0]);
        assert_eq!(&x.data[4..8], &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(y, Some(vec![3, 0, 3]));
        let s = d.subset(1..3);
        assert_eq!(s.len(), 2);
        assert_eq!(s.labels, Some(vec![1, 2]));
        assert_eq!(s.image_shape(), [1, 2, 2]);
    }

    #[test]
    fn holdout_partitions_and_is_seeded() {
        let d = numbered(50);
        let a = d.holdout(0.1, 7);
        assert_eq!((a.train.len(), a.test.len()), (45, 5));
        let mut all: Vec<u32> = a.train.labels.clone().unwrap();
        all.extend(a.test.labels.clone().unwrap());
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>());
        assert_eq!(a, d.holdout(0.1, 7));
        assert_ne!(a.test.labels, d.holdout(0.1, 8).test.labels);
        // Tiny sets still get one image on each side.
        let t = numbered(3).holdout(0.1, 1);
        assert_eq!((t.train.len(), t.test.len()), (2, 1));
        let none = numbered(3).holdout(0.0, 1);
        assert_eq!((none.train.len(), none.test.len()), (3, 0));
    }

    #[test]
    fn adapt_converts_channels_and_resizes() {
        let gray = Dataset {
            images: Tensor::full([2, 1, 4, 4], 0.5),
            labels: None,
            classes: vec![],
            source: "gray".into(),
        };
        let rgb = gray.clone().adapt(3, (8, 6)).unwrap();
        assert_eq!(rgb.images.shape.dims(), &[2, 3, 8, 6]);
        assert!(rgb.images.data.iter().all(|v| (v - 0.5).abs() < 1e-6));
        let back = rgb.adapt(1, (4, 4)).unwrap();
        assert_eq!(back.images.shape.dims(), &[2, 1, 4, 4]);
        assert!(back.images.data.iter().all(|v| (v - 0.5).abs() < 1e-5));
        assert!(gray.clone().adapt(2, (4, 4)).is_err());
        assert!(gray.adapt(1, (0, 4)).is_err());
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(100, &mut Rng::new(3));
        assert_ne!(p, (0..100).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
        assert!(permutation(0, &mut Rng::new(3)).is_empty());
    }
}
