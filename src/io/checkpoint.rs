//! Checkpoints as [safetensors](https://github.com/huggingface/safetensors) files: named f32
//! tensors plus a string-to-string metadata map, readable by PyTorch
//! (`safetensors.torch.load_file`) and by wgrad from PyTorch's `save_file`.
//!
//! Layout conventions:
//! - every tensor is saved as little-endian `F32` with its shape as given, so PyTorch
//!   `state_dict` layouts (`[out, in, kh, kw]` for a conv weight, `[out, in]` for a linear one)
//!   round-trip unchanged — except batch normalisation's `*.num_batches_tracked`, a count that
//!   PyTorch keeps as an `I64` scalar and that is saved so (wgrad holds it as an f32, exact to
//!   2²⁴ batches);
//! - loading also accepts `F16`, `BF16`, `F64` and `I64` tensors (half-precision PyTorch exports,
//!   batch counts) and converts them to f32; any other dtype is an error naming the tensor;
//! - integers and text live in the metadata, not in tensors: [`META_STEP`] holds the optimizer
//!   step count in decimal, [`META_CONFIG`] the model config (a TOML or JSON string),
//!   [`META_OPTIMIZER`] the optimizer's name and hyperparameters. Keys of wgrad start with
//!   `wgrad.`; others (PyTorch writes `format: pt`) are kept as they are.

use super::write_atomic;
use crate::error::{Error, Result};
use crate::shape::Shape;
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// Metadata key of the optimizer step count, a decimal integer (see [`Checkpoint::step`]).
pub const META_STEP: &str = "wgrad.step";
/// Metadata key of the model config, a TOML or JSON document.
pub const META_CONFIG: &str = "wgrad.config";
/// Metadata key of the optimizer description (name and hyperparameters).
pub const META_OPTIMIZER: &str = "wgrad.optimizer";

/// The key safetensors reserves in the header for the metadata map; no tensor may be named so.
const METADATA_KEY: &str = "__metadata__";

/// A set of named tensors and string metadata, saved as one safetensors file.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// Tensors with unique names. [`Checkpoint::load`] returns them sorted by name; the order
    /// in which they are saved does not matter (safetensors sorts them itself).
    pub tensors: Vec<(String, Tensor)>,
    /// Free-form metadata; see the module doc for wgrad's keys.
    pub metadata: BTreeMap<String, String>,
    /// The file this checkpoint was loaded from, for error messages; `None` when built in memory.
    pub source: Option<PathBuf>,
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `tensor` under `name`, replacing (and returning) a tensor of that name in place.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) -> Option<Tensor> {
        let name = name.into();
        match self.tensors.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => Some(std::mem::replace(t, tensor)),
            None => {
                self.tensors.push((name, tensor));
                None
            }
        }
    }

    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Removes and returns the tensor called `name`. A model loader can take its tensors one by
    /// one and report whatever is left as unexpected keys.
    pub fn take(&mut self, name: &str) -> Option<Tensor> {
        let i = self.tensors.iter().position(|(n, _)| n == name)?;
        Some(self.tensors.remove(i).1)
    }

    /// The tensor called `name`, which must have shape `shape`; the error names the file, the
    /// tensor and both shapes (or, when it is missing, the tensors that are there).
    pub fn require(&self, name: &str, shape: &Shape) -> Result<&Tensor> {
        let t = self.get(name).ok_or_else(|| self.missing(name, shape))?;
        self.check_shape(name, t, shape)?;
        Ok(t)
    }

    /// [`Checkpoint::take`] with the checks of [`Checkpoint::require`]; on error nothing is
    /// removed.
    pub fn take_required(&mut self, name: &str, shape: &Shape) -> Result<Tensor> {
        self.require(name, shape)?;
        self.take(name).ok_or_else(|| self.missing(name, shape))
    }

    /// The tensor names, in the checkpoint's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _)| n.as_str())
    }

    /// The step count stored under [`META_STEP`]: `Ok(None)` when absent, an error naming the
    /// file when it is not a decimal integer.
    pub fn step(&self) -> Result<Option<u64>> {
        match self.metadata.get(META_STEP) {
            None => Ok(None),
            Some(s) => s.trim().parse().map(Some).map_err(|_| {
                Error::data(
                    self.source_name(),
                    format!("metadata '{META_STEP}' = {s:?} is not a step count"),
                )
            }),
        }
    }

    /// Stores `step` under [`META_STEP`].
    pub fn set_step(&mut self, step: u64) {
        self.metadata
            .insert(META_STEP.to_string(), step.to_string());
    }

    /// Writes the checkpoint to `path` atomically (see [`write_atomic`]): a crash mid-save
    /// leaves the previous checkpoint intact.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let op = format!("saving checkpoint {}", path.display());
        let mut seen = std::collections::HashSet::new();
        for (name, t) in &self.tensors {
            if name == METADATA_KEY {
                return Err(Error::invalid(
                    &op,
                    format!("no tensor may be named '{name}'"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(Error::invalid(
                    &op,
                    format!("tensor name '{name}' appears twice"),
                ));
            }
            if t.data.len() != t.shape.numel() {
                return Err(Error::invalid(
                    &op,
                    format!(
                        "tensor '{name}' has shape {} ({} values) but holds {}",
                        t.shape,
                        t.shape.numel(),
                        t.data.len()
                    ),
                ));
            }
        }
        let views = self.tensors.iter().map(|(n, t)| {
            let dtype = if n.ends_with(".num_batches_tracked") {
                Dtype::I64
            } else {
                Dtype::F32
            };
            (n.as_str(), TensorView(t, dtype))
        });
        let metadata = (!self.metadata.is_empty()).then(|| {
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        });
        let bytes = safetensors::serialize(views, metadata).map_err(|e| Error::invalid(&op, e))?;
        write_atomic(path, |w| {
            w.write_all(&bytes)
                .map_err(|e| super::io_error(path, "writing", e))
        })
    }

    /// Reads a safetensors file. Tensors come back sorted by name, as f32 (F16, BF16, F64 and I64 are
    /// converted; F64 values beyond f32's range become infinities). Errors name the file and,
    /// where one is at fault, the tensor.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| super::io_error(path, "reading", e))?;
        let file = path.display();
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| Error::data(&file, describe(&bytes, e)))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::data(&file, describe(&bytes, e)))?;

        let mut tensors = Vec::with_capacity(st.len());
        for (name, view) in st.iter() {
            let data = to_f32(view.dtype(), view.data()).ok_or_else(|| {
                Error::data(
                    &file,
                    format!(
                        "tensor '{name}' has dtype {}, expected F32 (F16, BF16, F64 and I64 are converted)",
                        view.dtype()
                    ),
                )
            })?;
            let t = Tensor::new(view.shape(), data)
                .map_err(|e| Error::data(&file, format!("tensor '{name}': {e}")))?;
            tensors.push((name.to_string(), t));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let metadata = header
            .metadata()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Checkpoint {
            tensors,
            metadata,
            source: Some(path.to_path_buf()),
        })
    }

    fn source_name(&self) -> String {
        match &self.source {
            Some(p) => p.display().to_string(),
            None => "checkpoint (in memory)".to_string(),
        }
    }

    fn missing(&self, name: &str, shape: &Shape) -> Error {
        const SHOWN: usize = 8;
        let mut names: Vec<&str> = self.names().take(SHOWN).collect();
        if self.tensors.len() > SHOWN {
            names.push("…");
        }
        Error::data(
            self.source_name(),
            format!(
                "no tensor '{name}' (expected shape {shape}); it holds {} tensors: {}",
                self.tensors.len(),
                names.join(", ")
            ),
        )
    }

    fn check_shape(&self, name: &str, t: &Tensor, shape: &Shape) -> Result<()> {
        if t.shape != *shape {
            return Err(Error::data(
                self.source_name(),
                format!("tensor '{name}' has shape {}, expected {shape}", t.shape),
            ));
        }
        Ok(())
    }
}

/// A [`Tensor`] as safetensors sees it: little-endian `F32`, or `I64` (values rounded) for a
/// count PyTorch keeps as an integer.
struct TensorView<'a>(&'a Tensor, Dtype);

impl View for TensorView<'_> {
    fn dtype(&self) -> Dtype {
        self.1
    }
    fn shape(&self) -> &[usize] {
        self.0.shape.dims()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let data = &self.0.data;
        match self.1 {
            Dtype::I64 => Cow::Owned(
                data.iter()
                    .flat_map(|v| (v.round() as i64).to_le_bytes())
                    .collect(),
            ),
            _ if cfg!(target_endian = "little") => Cow::Borrowed(bytemuck::cast_slice(data)),
            _ => Cow::Owned(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        }
    }
    fn data_len(&self) -> usize {
        self.0.data.len() * self.1.bitsize() / 8
    }
}

/// Little-endian bytes of `dtype` as f32 values; `None` for a dtype wgrad does not convert.
/// (safetensors has already checked that the byte count matches the shape.)
fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    Some(match dtype {
        Dtype::F32 => each(bytes, f32::from_le_bytes),
        Dtype::F16 => each(bytes, |b| half::f16::from_le_bytes(b).to_f32()),
        Dtype::BF16 => each(bytes, |b| half::bf16::from_le_bytes(b).to_f32()),
        Dtype::F64 => each(bytes, |b| f64::from_le_bytes(b) as f32),
        Dtype::I64 => each(bytes, |b| i64::from_le_bytes(b) as f32),
        _ => return None,
    })
}

/// A message for a file safetensors refused, as specific as the bytes allow: the safetensors
/// crate's own errors do not say which tensor is at fault, so the header is re-read here to find
/// it.
fn describe(bytes: &[u8], err: SafeTensorError) -> String {
    let len = bytes.len();
    let declared = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes);
    let not_st = "not a safetensors file, or a corrupt or truncated one";
    match err {
        SafeTensorError::HeaderTooSmall => format!(
            "{len} bytes is too short for a safetensors file (it starts with an 8-byte header length)"
        ),
        SafeTensorError::HeaderTooLarge => format!(
            "header length {} is over safetensors' 100 MB limit: {not_st}",
            declared.unwrap_or(0)
        ),
        SafeTensorError::InvalidHeaderLength => format!(
            "header length {} runs past the end of the {len}-byte file: {not_st}",
            declared.unwrap_or(0)
        ),
        SafeTensorError::InvalidHeader(e) => format!("header is not UTF-8 text ({e}): {not_st}"),
        SafeTensorError::MetadataIncompleteBuffer => {
            let data_start = declared.map_or(0, |n| n.saturating_add(8));
            let have = (len as u64).saturating_sub(data_start);
            match header_json(bytes).and_then(|h| data_end(&h)) {
                Some(want) => format!(
                    "the header describes {want} bytes of tensor data but {have} follow it: {}",
                    if have < want {
                        "the file is truncated"
                    } else {
                        "trailing bytes after the data"
                    }
                ),
                None => format!("tensor data does not fill the file exactly: {not_st}"),
            }
        }
        SafeTensorError::InvalidOffset(name) => format!(
            "tensor '{name}' has data_offsets that do not start where the previous tensor ends"
        ),
        other => match header_json(bytes).and_then(|h| find_bad_tensor(&h)) {
            Some(msg) => msg,
            None => format!("invalid safetensors header ({other}): {not_st}"),
        },
    }
}

/// The header as a JSON object, if it is one.
fn header_json(bytes: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header = bytes.get(8..8usize.checked_add(n)?)?;
    serde_json::from_slice(header).ok()
}

/// The largest data offset any tensor in the header claims.
fn data_end(h: &serde_json::Map<String, serde_json::Value>) -> Option<u64> {
    h.iter()
        .filter(|(k, _)| *k != METADATA_KEY)
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
}

/// The first header entry that is not a well-formed tensor record, described.
fn find_bad_tensor(h: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    if let Some(m) = h.get(METADATA_KEY) {
        let ok = m
            .as_object()
            .is_some_and(|o| o.values().all(|v| v.is_string()));
        if !ok {
            return Some(format!(
                "header's '{METADATA_KEY}' must map strings to strings"
            ));
        }
    }
    for (name, v) in h.iter().filter(|(k, _)| *k != METADATA_KEY) {
        let dtype_v = v.get("dtype");
        let dtype: Option<Dtype> = dtype_v.and_then(|d| serde_json::from_value(d.clone()).ok());
        let Some(dtype) = dtype else {
            return Some(match dtype_v {
                Some(d) => format!("tensor '{name}' has unknown dtype {d}"),
                None => format!("tensor '{name}' has no dtype"),
            });
        };
        let shape: Option<Vec<usize>> = v
            .get("shape")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let Some(shape) = shape else {
            return Some(format!(
                "tensor '{name}' has no valid shape (a list of sizes)"
            ));
        };
        let offsets: Option<(u64, u64)> = v
            .get("data_offsets")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let Some((start, end)) = offsets else {
            return Some(format!(
                "tensor '{name}' has no valid data_offsets (two byte offsets)"
            ));
        };
        let shape_s = Shape::new(shape.clone());
        let bits = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
            .and_then(|n| n.checked_mul(dtype.bitsize() as u64));
        let Some(bits) = bits.filter(|b| b % 8 == 0) else {
            return Some(format!(
                "tensor '{name}' of dtype {dtype} and shape {shape_s} has an impossible byte size"
            ));
        };
        if end < start || end - start != bits / 8 {
            return Some(format!(
                "tensor '{name}' of dtype {dtype} and shape {shape_s} needs {} bytes but its data_offsets [{start}, {end}] hold {}",
                bits / 8,
                end as i128 - start as i128
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        let f16 = half::f16::from_f32(1.5).to_le_bytes();
        assert_eq!(to_f32(Dtype::F16, &f16), Some(vec![1.5]));
        let bf = half::bf16::from_f32(-2.0).to_le_bytes();
        assert_eq!(to_f32(Dtype::BF16, &bf), Some(vec![-2.0]));
        assert_eq!(to_f32(Dtype::F64, &0.25f64.to_le_bytes()), Some(vec![0.25]));
        assert_eq!(to_f32(Dtype::I32, &[0; 4]), None);
    }

    #[test]
    fn insert_replaces_in_place_and_take_removes() {
        let mut c = Checkpoint::new();
        c.insert("a", Tensor::zeros([1]));
        c.insert("b", Tensor::zeros([2]));
        let old = c.insert("a", Tensor::full([3], 1.0)).unwrap();
        assert_eq!(old.shape, Shape::new([1]));
        assert_eq!(c.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(c.take("a").unwrap().data, vec![1.0; 3]);
        assert!(c.take("a").is_none());
        assert_eq!(c.names().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn require_names_tensor_and_both_shapes() {
        let mut c = Checkpoint::new();
        c.source = Some(PathBuf::from("ckpt.safetensors"));
        c.insert("encoder.0.weight", Tensor::zeros([8, 1, 3, 3]));
        assert!(
            c.require("encoder.0.weight", &Shape::new([8, 1, 3, 3]))
                .is_ok()
        );
        let e = c
            .require("encoder.0.weight", &Shape::new([8, 3, 3, 3]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ckpt.safetensors: tensor 'encoder.0.weight' has shape [8, 1, 3, 3], expected [8, 3, 3, 3]"
        );
        let e = c
            .require("decoder.bias", &Shape::new([4]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("ckpt.safetensors: no tensor 'decoder.bias' (expected shape [4])"),
            "{e}"
        );
        assert!(e.contains("encoder.0.weight"), "{e}");
        // A failed take_required leaves the tensor in place.
        assert!(
            c.take_required("encoder.0.weight", &Shape::new([1]))
                .is_err()
        );
        assert!(
            c.take_required("encoder.0.weight", &Shape::new([8, 1, 3, 3]))
                .is_ok()
        );
        assert!(c.tensors.is_empty());
    }

    #[test]
    fn step_metadata() {
        let mut c = Checkpoint::new();
        assert_eq!(c.step().unwrap(), None);
        c.set_step(12345);
        assert_eq!(c.step().unwrap(), Some(12345));
        c.metadata.insert(META_STEP.into(), "twelve".into());
        let e = c.step().unwrap_err().to_string();
        assert!(e.contains("wgrad.step") && e.contains("twelve"), "{e}");
    }

    #[test]
    fn save_rejects_duplicates_reserved_names_and_bad_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut c = Checkpoint::new();
        c.tensors.push(("w".into(), Tensor::zeros([2])));
        c.tensors.push(("w".into(), Tensor::zeros([2])));
        assert!(
            c.save(&path)
                .unwrap_err()
                .to_string()
                .contains("'w' appears twice")
        );
        let mut c = Checkpoint::new();
        c.insert(METADATA_KEY, Tensor::zeros([1]));
        assert!(c.save(&path).is_err());
        let mut c = Checkpoint::new();
        c.insert(
            "w",
            Tensor {
                shape: Shape::new([3]),
                data: vec![0.0; 2],
            },
        );
        assert!(
            c.save(&path)
                .unwrap_err()
                .to_string()
                .contains("'w' has shape [3]")
        );
        assert!(!path.exists());
    }
}
