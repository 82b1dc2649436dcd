//! The IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! A file is a big-endian header — two zero bytes, an element-type byte, a dimension count,
//! then one u32 per dimension — followed by the elements. Images are unsigned bytes in three
//! dimensions `N, H, W` (magic `0x00000803`); labels unsigned bytes in one dimension `N`
//! (magic `0x00000801`). Compression is recognised by gzip's magic bytes `1f 8b`, not by the
//! file name, since downloaded files are often renamed or decompressed in place.

use super::{Dataset, io_error};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Loads an IDX images file, and its labels file when given, as a `[N, 1, H, W]` dataset
/// with values `byte / 255`. Labelled data get the classes `"0"` … `"max label"`.
///
/// Fails, naming the file, on: an unreadable file, corrupt gzip, a wrong magic number, an
/// element type other than unsigned byte, fewer bytes than the header promises, bytes after
/// the data, zero images (or a zero height or width), and image and label counts that differ.
pub fn load_idx(images: &Path, labels: Option<&Path>) -> Result<Dataset> {
    let (dims, pixels) = read_idx(images, IMAGES_MAGIC, "IDX images")?;
    let [n, h, w] = dims[..] else {
        return Err(Error::data(images.display(), "expected 3 dimensions"));
    };
    if n == 0 || h == 0 || w == 0 {
        return Err(Error::data(
            images.display(),
            format!("holds no image data: {n} images of {h}×{w}"),
        ));
    }
    let data = pixels.iter().map(|&b| f32::from(b) / 255.0).collect();
    let images_tensor = Tensor {
        shape: [n, 1, h, w].into(),
        data,
    };
    let (labels, classes) = match labels {
        None => (None, Vec::new()),
        Some(path) => {
            let (dims, bytes) = read_idx(path, LABELS_MAGIC, "IDX labels")?;
            if dims.first() != Some(&n) {
                return Err(Error::data(
                    path.display(),
                    format!(
                        "{} labels but {n} images in {}",
                        bytes.len(),
                        images.display()
                    ),
                ));
            }
            let max = bytes.iter().copied().max().unwrap_or(0);
            let classes = (0..=u32::from(max)).map(|c| c.to_string()).collect();
            (Some(bytes.into_iter().map(u32::from).collect()), classes)
        }
    };
    Ok(Dataset {
        images: images_tensor,
        labels,
        classes,
        source: images.display().to_string(),
    })
}

/// The labels file beside an images file, if one exists: `train-images-idx3-ubyte[.gz]` →
/// `train-labels-idx1-ubyte[.gz]`, `…-images.idx3-ubyte` → `…-labels.idx1-ubyte`. Either file
/// may be the gzipped one. `None` when the name has no `images` in it or no such file exists.
pub fn find_labels_for(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let at = name.rfind("images")?;
    let labels_name =
        format!("{}labels{}", &name[..at], &name[at + "images".len()..]).replace("idx3", "idx1");
    gz_variants(&labels_name)
        .into_iter()
        .map(|n| images.with_file_name(n))
        .find(|p| p.is_file() && p != images)
}

/// `name` as given, then with `.gz` added or removed: the names a file may have on disk.
pub(crate) fn gz_variants(name: &str) -> [String; 2] {
    let other = match name.strip_suffix(".gz") {
        Some(raw) => raw.to_string(),
        None => format!("{name}.gz"),
    };
    [name.to_string(), other]
}

/// Reads an IDX file whose magic must be `magic`; returns its dimensions and its elements.
fn read_idx(path: &Path, magic: u32, kind: &str) -> Result<(Vec<usize>, Vec<u8>)> {
    let file = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if file.starts_with(&[0x1f, 0x8b]) {
        read_body(path, MultiGzDecoder::new(&file[..]), magic, kind, true)
    } else {
        read_body(path, &file[..], magic, kind, false)
    }
}

fn read_body(
    path: &Path,
    mut r: impl Read,
    magic: u32,
    kind: &str,
    gzip: bool,
) -> Result<(Vec<usize>, Vec<u8>)> {
    let name = path.display();
    let read_error = |e: std::io::Error| {
        if gzip {
            Error::data(&name, format!("corrupt gzip data: {e}"))
        } else {
            io_error(path, e)
        }
    };
    let mut head = [0u8; 4];
    let got = read_up_to(&mut r, &mut head).map_err(read_error)?;
    if got < 4 {
        return Err(Error::data(
            &name,
            format!("truncated: {got} bytes, too short for an IDX header"),
        ));
    }
    let found = u32::from_be_bytes(head);
    let want_dims = (magic & 0xff) as usize;
    if head[0] != 0 || head[1] != 0 || !is_idx_type(head[2]) || head[3] as usize != want_dims {
        return Err(Error::data(
            &name,
            format!("wrong magic number {found:#010x}, expected {magic:#010x} ({kind})"),
        ));
    }
    if head[2] != 0x08 {
        return Err(Error::data(
            &name,
            format!(
                "unsupported element type {:#04x} ({}) in magic {found:#010x}; only unsigned bytes (0x08) are supported",
                head[2],
                type_name(head[2])
            ),
        ));
    }
    let mut dim_bytes = vec![0u8; 4 * want_dims];
    let got = read_up_to(&mut r, &mut dim_bytes).map_err(read_error)?;
    if got < dim_bytes.len() {
        return Err(Error::data(
            &name,
            format!("truncated: the header ends after {} bytes", 4 + got),
        ));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::data(&name, format!("dimensions {dims:?} overflow")))?;
    // Read at most one byte past the promised data: a lying header cannot make us allocate
    // more than the file really holds, and a gzip bomb stops at the header's size.
    let mut data = Vec::new();
    r.take((expected as u64).saturating_add(1))
        .read_to_end(&mut data)
        .map_err(read_error)?;
    if data.len() < expected {
        return Err(Error::data(
            &name,
            format!(
                "truncated: the header promises {expected} bytes of data for dimensions {dims:?}, the file holds {}",
                data.len()
            ),
        ));
    }
    if data.len() > expected {
        return Err(Error::data(
            &name,
            format!(
                "trailing bytes after the {expected} bytes of data for dimensions {dims:?} (wrong dimensions, or two files joined?)"
            ),
        ));
    }
    Ok((dims, data))
}

/// Fills as much of `buf` as the reader has; returns how much.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn is_idx_type(code: u8) -> bool {
    matches!(code, 0x08 | 0x09 | 0x0b..=0x0e)
}

fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0b => "i16",
        0x0c => "i32",
        0x0d => "f32",
        0x0e => "f64",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gz_variants_add_or_remove_the_suffix() {
        assert_eq!(
            gz_variants("a-labels-idx1-ubyte"),
            ["a-labels-idx1-ubyte", "a-labels-idx1-ubyte.gz"]
        );
        assert_eq!(gz_variants("x.gz"), ["x.gz", "x"]);
    }

    #[test]
    fn header_checks_without_files() {
        let p = Path::new("mem.idx");
        let ok = [0, 0, 8, 1, 0, 0, 0, 2, 7, 9];
        assert_eq!(
            read_body(p, &ok[..], LABELS_MAGIC, "IDX labels", false).unwrap(),
            (vec![2], vec![7, 9])
        );
        let short = read_body(p, &ok[..3], LABELS_MAGIC, "IDX labels", false).unwrap_err();
        assert!(short.to_string().contains("truncated"), "{short}");
        // A header that promises 4 GB in a tiny input fails without allocating it.
        let huge = [0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1];
        let e = read_body(p, &huge[..], LABELS_MAGIC, "IDX labels", false).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
