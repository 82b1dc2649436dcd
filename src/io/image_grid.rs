//! A grid of images as one PNG, for looking at a batch: the CLI passes originals then
//! reconstructions, so each original sits above its reconstruction.

use super::{io_error, write_atomic};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// Pixels of border around and between cells.
pub const GAP: usize = 2;
/// Grey level (0–255) of the border, so black and white images both stand out from it.
pub const GAP_LEVEL: u8 = 128;

/// Writes a PNG grid of images to `path` (atomically). Grid row `r` holds the first `columns`
/// images of `rows[r]`, each `[N, C, H, W]` with `C` = 1 or 3 and the same `H × W` in every
/// row; a row with fewer than `columns` images leaves the rest of its cells grey. Each image is
/// upscaled `scale` times by pixel repetition (nearest neighbour), values are clamped to
/// `[0, 1]` (NaN counts as 0) and stored as `round(255·v)`; cells are separated by a
/// [`GAP`]-pixel border. The PNG is greyscale when every row has one channel, RGB otherwise
/// (greyscale rows then repeat their channel).
pub fn write_grid(
    path: impl AsRef<Path>,
    rows: &[&Tensor],
    columns: usize,
    scale: usize,
) -> Result<()> {
    let path = path.as_ref();
    let op = format!("image grid {}", path.display());
    if rows.is_empty() || columns == 0 || scale == 0 {
        return Err(Error::invalid(
            &op,
            format!(
                "needs at least one row, one column and scale ≥ 1; got {} rows, {columns} columns, scale {scale}",
                rows.len()
            ),
        ));
    }
    // (h, w) and the row that set them, for the mismatch message.
    let mut hw: Option<(usize, usize, usize)> = None;
    for (r, t) in rows.iter().enumerate() {
        let s = &t.shape;
        let (h, w) = match *s.dims() {
            [_, c, h, w] if (c == 1 || c == 3) && h > 0 && w > 0 => (h, w),
            _ => {
                return Err(Error::invalid(
                    &op,
                    format!(
                        "row {r} has shape {s}; expected [N, C, H, W] with C = 1 or 3 and H, W > 0"
                    ),
                ));
            }
        };
        if t.data.len() != s.numel() {
            return Err(Error::invalid(
                &op,
                format!("row {r} has shape {s} but holds {} values", t.data.len()),
            ));
        }
        match hw {
            Some((h0, w0, r0)) if (h0, w0) != (h, w) => {
                return Err(Error::invalid(
                    &op,
                    format!(
                        "row {r} has shape {s} but row {r0} has {}: images must all be {h0}×{w0}",
                        rows[r0].shape
                    ),
                ));
            }
            Some(_) => {}
            None => hw = Some((h, w, r)),
        }
    }
    // `rows` is not empty, so `hw` is set; the fallback is never taken.
    let (h, w, _) = hw.unwrap_or((1, 1, 0));
    let channels = if rows.iter().all(|t| t.shape.dim(1) == 1) {
        1
    } else {
        3
    };

    let size = |cells: usize, side: usize| -> Option<u32> {
        let cell = side.checked_mul(scale)?.checked_add(GAP)?;
        u32::try_from(cell.checked_mul(cells)?.checked_add(GAP)?).ok()
    };
    let (Some(width), Some(height)) = (size(columns, w), size(rows.len(), h)) else {
        return Err(Error::invalid(&op, "the grid is too large for a PNG"));
    };
    let (width, height) = (width as usize, height as usize);
    let len = width
        .checked_mul(height)
        .and_then(|p| p.checked_mul(channels))
        .filter(|&l| l <= isize::MAX as usize)
        .ok_or_else(|| Error::invalid(&op, "the grid is too large to hold in memory"))?;

    let mut pixels = vec![GAP_LEVEL; len];
    for (r, t) in rows.iter().enumerate() {
        let (n, c) = (t.shape.dim(0), t.shape.dim(1));
        for col in 0..columns.min(n) {
            let x0 = GAP + col * (w * scale + GAP);
            let y0 = GAP + r * (h * scale + GAP);
            for y in 0..h * scale {
                for x in 0..w * scale {
                    let at = ((y0 + y) * width + x0 + x) * channels;
                    for ch in 0..channels {
                        let src = ch.min(c - 1);
                        let v = t.data[((col * c + src) * h + y / scale) * w + x / scale];
                        pixels[at + ch] = to_level(v);
                    }
                }
            }
        }
    }

    write_png(path, width as u32, height as u32, channels == 1, &pixels)
}

/// Writes 8-bit greyscale (`gray`) or RGB `pixels`, row-major, as a PNG at `path`, atomically.
pub(crate) fn write_png(
    path: &Path,
    width: u32,
    height: u32,
    gray: bool,
    pixels: &[u8],
) -> Result<()> {
    write_atomic(path, |out| {
        let mut enc = png::Encoder::new(out, width, height);
        enc.set_color(if gray {
            png::ColorType::Grayscale
        } else {
            png::ColorType::Rgb
        });
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc
            .write_header()
            .map_err(|e| io_error(path, "encoding PNG", e))?;
        writer
            .write_image_data(pixels)
            .map_err(|e| io_error(path, "encoding PNG", e))?;
        writer
            .finish()
            .map_err(|e| io_error(path, "encoding PNG", e))
    })
}

/// `round(255·v)` of `v` clamped to `[0, 1]`; NaN maps to 0.
pub fn to_level(v: f32) -> u8 {
    if v.is_nan() {
        return 0;
    }
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(to_level(0.0), 0);
        assert_eq!(to_level(1.0), 255);
        assert_eq!(to_level(0.5), 128);
        assert_eq!(to_level(-3.0), 0);
        assert_eq!(to_level(7.0), 255);
        assert_eq!(to_level(f32::NAN), 0);
        assert_eq!(to_level(f32::INFINITY), 255);
    }
}
