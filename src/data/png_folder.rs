//! Folders of PNG images, unlabelled or sorted into one sub-folder per class.
//!
//! Layouts:
//! - `dir/*.png`: unlabelled images (for an autoencoder);
//! - `dir/<class>/*.png`: labelled images; the sorted sub-folder names are the classes, so
//!   label `i` is the `i`-th name. In this layout a PNG directly in `dir`, or a sub-folder
//!   with no PNG, is an error rather than skipped: either would silently drop images or shift
//!   every label after it.
//!
//! Names starting with `.` are skipped, sub-sub-folders are not searched, and the extension
//! `.png` is matched in any case. Files are read in sorted path order, so a folder loads the
//! same way on every machine.

use super::{Dataset, convert_channels, io_error, resize_plane};
use crate::error::{Error, Result};
use crate::shape::checked_numel;
use crate::tensor::Tensor;
use image::DynamicImage;
use std::path::{Path, PathBuf};

/// Loads every PNG of `dir` (see the module doc for the layouts) as `[N, channels, h, w]`
/// with `size = (h, w)`, values in `[0, 1]`.
///
/// Gray and RGB(A) files may be mixed: each is converted to `channels` (1 or 3) — RGB to gray
/// by luma 0.299 R + 0.587 G + 0.114 B, gray to RGB by repeating; alpha is dropped, not
/// blended. All files must have one size (images of mixed sizes are an error naming two of
/// them, since stretching them alike would distort some); that size is then resized to `size`,
/// the model's input, with a triangle filter.
///
/// Fails on a path that is not a folder, a folder with no PNG, an unreadable or corrupt PNG
/// (naming it), mixed sizes, and the layout errors of the module doc.
pub fn load_png_folder(dir: &Path, channels: usize, size: (usize, usize)) -> Result<Dataset> {
    if channels != 1 && channels != 3 {
        return Err(Error::invalid(
            "load PNG folder",
            format!("the model takes {channels} channels; PNG images give 1 (gray) or 3 (RGB)"),
        ));
    }
    if size.0 == 0 || size.1 == 0 {
        return Err(Error::invalid(
            "load PNG folder",
            format!("model input size {}×{} has a zero", size.0, size.1),
        ));
    }
    let (files, labels, classes) = find_files(dir)?;
    let total = checked_numel(
        "load PNG folder",
        &format!("the images of {}", dir.display()),
        &[files.len(), channels, size.0, size.1],
    )?;
    let mut data = Vec::new();
    data.try_reserve_exact(total).map_err(|_| {
        Error::data(
            dir.display(),
            format!(
                "{} images of {channels}×{}×{} need {} bytes, more than can be allocated",
                files.len(),
                size.0,
                size.1,
                total as u64 * 4
            ),
        )
    })?;
    let mut first: Option<(&Path, u32, u32)> = None;
    for path in &files {
        let img = decode(path)?;
        let (w, h) = (img.width(), img.height());
        match first {
            None => first = Some((path, w, h)),
            Some((p0, w0, h0)) if (w0, h0) != (w, h) => {
                return Err(Error::data(
                    path.display(),
                    format!(
                        "is {w}×{h} (width×height) but {} is {w0}×{h0}; all images of a folder must have one size",
                        p0.display()
                    ),
                ));
            }
            Some(_) => {}
        }
        let (h, w) = (h as usize, w as usize);
        let planes = to_planes(&img, channels, h * w);
        for plane in planes.chunks_exact((h * w).max(1)) {
            data.extend(resize_plane(plane, (h, w), size));
        }
    }
    let n = files.len();
    Ok(Dataset {
        images: Tensor::new([n, channels, size.0, size.1], data)
            .map_err(|e| Error::data(dir.display(), e))?,
        labels,
        classes,
        source: dir.display().to_string(),
    })
}

type Found = (Vec<PathBuf>, Option<Vec<u32>>, Vec<String>);

/// The PNG files of `dir` in load order, with labels and class names in the class layout.
fn find_files(dir: &Path) -> Result<Found> {
    let meta = std::fs::metadata(dir).map_err(|e| io_error(dir, e))?;
    if !meta.is_dir() {
        return Err(Error::data(
            dir.display(),
            "not a directory: a PNG dataset is a folder of .png files or of class sub-folders",
        ));
    }
    let (loose, subdirs) = list(dir)?;
    let mut classes = Vec::new();
    for sub in &subdirs {
        let (pngs, _) = list(sub)?;
        classes.push((sub, pngs));
    }
    if classes.iter().all(|(_, pngs)| pngs.is_empty()) {
        if loose.is_empty() {
            return Err(Error::data(
                dir.display(),
                "no PNG files in the folder or its sub-folders",
            ));
        }
        return Ok((loose, None, Vec::new()));
    }
    if let Some(file) = loose.first() {
        return Err(Error::data(
            file.display(),
            format!(
                "a PNG directly in {}, which has class sub-folders; move it into one, since a dataset is either all loose files or all in classes",
                dir.display()
            ),
        ));
    }
    let mut files = Vec::new();
    let mut labels = Vec::new();
    let mut names = Vec::new();
    for (label, (sub, pngs)) in classes.into_iter().enumerate() {
        if pngs.is_empty() {
            return Err(Error::data(
                sub.display(),
                "class sub-folder has no PNG files (every sub-folder is a class; remove it or fill it)",
            ));
        }
        labels.extend(std::iter::repeat_n(label as u32, pngs.len()));
        files.extend(pngs);
        names.push(
            sub.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    Ok((files, Some(labels), names))
}

/// The `.png` files and the sub-folders of `dir`, each sorted, hidden entries skipped.
fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut pngs = Vec::new();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Follows symbolic links, so a linked folder or file counts as what it points to.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            dirs.push(path);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            pngs.push(path);
        }
    }
    pngs.sort();
    dirs.sort();
    Ok((pngs, dirs))
}

fn decode(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| Error::data(path.display(), format!("not a readable PNG: {e}")))
}

/// The image as `channels` planes of `plane` values in `[0, 1]`.
fn to_planes(img: &DynamicImage, channels: usize, plane: usize) -> Vec<f32> {
    if img.color().has_color() {
        let rgb = img.to_rgb32f().into_raw();
        let mut planes = vec![0.0f32; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).enumerate().take(plane) {
            for c in 0..3 {
                planes[c * plane + i] = px[c];
            }
        }
        convert_channels(&planes, 3, channels, plane)
    } else {
        let gray = img.to_luma32f().into_raw();
        convert_channels(&gray, 1, channels, plane)
    }
}
