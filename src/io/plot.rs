//! Line plots as PNG (the `plot` feature): the loss log's loss curves, and any set of named
//! curves ([`write_curves`], e.g. `wgrad compare`'s accuracy against training time).
//!
//! The plot's text uses Noto Sans Regular (Apache-2.0), embedded through the `ttf-noto-sans`
//! crate and registered with plotters' `ab_glyph` backend, so plots render the same on a machine
//! with no fonts installed.

use super::LossLog;
use super::image_grid::write_png;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// Width and height in pixels of the PNG [`LossLog::write_plot`] draws.
pub const PLOT_SIZE: (u32, u32) = (900, 540);

impl LossLog {
    /// Draws training and held-out loss against step as a [`PLOT_SIZE`] PNG at `path`
    /// (atomically), with a legend and axis labels. The y axis is logarithmic when every loss is
    /// positive and they span at least a factor of 10, linear otherwise; non-finite losses are
    /// left out. An empty log is an error: there is nothing to scale the axes to.
    pub fn write_plot(&self, path: impl AsRef<Path>, title: &str) -> Result<()> {
        let path = path.as_ref();
        let op = format!("loss plot {}", path.display());
        if self.rows.is_empty() {
            return Err(Error::invalid(
                &op,
                "the loss log has no rows: nothing to plot",
            ));
        }
        register_font().map_err(|e| Error::invalid(&op, e))?;

        let finite = |v: f32| v.is_finite().then_some(v as f64);
        let train: Vec<(f64, f64)> = self
            .rows
            .iter()
            .filter_map(|r| Some((r.step as f64, finite(r.train_loss)?)))
            .collect();
        let test: Vec<(f64, f64)> = self
            .rows
            .iter()
            .filter_map(|r| Some((r.step as f64, finite(r.test_loss?)?)))
            .collect();

        let steps = self.rows.iter().map(|r| r.step as f64);
        let x = padded(
            steps.clone().fold(f64::INFINITY, f64::min),
            steps.fold(f64::NEG_INFINITY, f64::max),
        );
        // Steps are never negative: do not label the padding left of step 0 with "-5".
        let x = x.start.max(0.0)..x.end;
        let ys = train.iter().chain(&test).map(|p| p.1);
        let (lo, hi) = (
            ys.clone().fold(f64::INFINITY, f64::min),
            ys.fold(f64::NEG_INFINITY, f64::max),
        );

        let mut curves = vec![Curve {
            name: "train".into(),
            points: train,
            markers: false,
        }];
        if !test.is_empty() {
            // Held-out loss is measured rarely (once per epoch): mark each point.
            curves.push(Curve {
                name: "held-out".into(),
                points: test,
                markers: true,
            });
        }
        let series = Series {
            title,
            x_desc: "step",
            curves: &curves,
            legend: SeriesLabelPosition::UpperRight,
        };
        let log = lo > 0.0 && hi / lo >= 10.0;
        render(path, &op, |root| {
            if log {
                series.draw(
                    root,
                    x,
                    (lo / 1.25..hi * 1.25).log_scale(),
                    "loss (log scale)",
                )
            } else {
                series.draw(root, x, padded(lo, hi), "loss")
            }
        })
    }
}

/// One named line of a plot.
#[derive(Clone, Debug)]
pub struct Curve {
    pub name: String,
    /// `(x, y)` in drawing order; non-finite points are left out.
    pub points: Vec<(f64, f64)>,
    /// Whether each point gets a dot (for sparse measurements).
    pub markers: bool,
}

/// Draws `curves` against linear axes as a [`PLOT_SIZE`] PNG at `path` (atomically), with axis
/// labels and a legend at the lower right (for curves that rise). No finite point is an error.
pub fn write_curves(
    path: impl AsRef<Path>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    curves: &[Curve],
) -> Result<()> {
    let path = path.as_ref();
    let op = format!("plot {}", path.display());
    let curves: Vec<Curve> = curves
        .iter()
        .map(|c| Curve {
            points: c
                .points
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .collect(),
            ..c.clone()
        })
        .collect();
    let all = || curves.iter().flat_map(|c| c.points.iter());
    if all().next().is_none() {
        return Err(Error::invalid(&op, "no finite point: nothing to plot"));
    }
    register_font().map_err(|e| Error::invalid(&op, e))?;
    let range = |f: fn(&(f64, f64)) -> f64| {
        let v = all().map(f);
        padded(
            v.clone().fold(f64::INFINITY, f64::min),
            v.fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (x, y) = (range(|p| p.0), range(|p| p.1));
    let series = Series {
        title,
        x_desc,
        curves: &curves,
        legend: SeriesLabelPosition::LowerRight,
    };
    render(path, &op, |root| {
        series.draw(root, x.clone(), y.clone(), y_desc)
    })
}

/// Draws with `draw` into a [`PLOT_SIZE`] bitmap and writes it to `path` as a PNG.
fn render(
    path: &Path,
    op: &str,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    let (w, h) = PLOT_SIZE;
    let mut pixels = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw(&root).map_err(|e| Error::invalid(op, format!("drawing: {e}")))?;
    }
    write_png(path, w, h, false, &pixels)
}

/// `lo..hi` widened by 5% on each side (to a unit range around a single value, and to `0..1`
/// when there is no finite value), so no point sits on the frame and the range is never empty.
fn padded(lo: f64, hi: f64) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return 0.0..1.0;
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.5
    };
    lo - pad..hi + pad
}

/// A tick label: at most 4 significant digits, no trailing zeros, exponent form outside
/// `[0.001, 100000)` (plotters' own labels print f64 noise such as `0.30000000000000004`).
fn tick_label(v: f64) -> String {
    fn trim(s: &str) -> &str {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s
        }
    }
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor();
    if (-3.0..5.0).contains(&magnitude) {
        let decimals = (3.0 - magnitude).max(0.0) as usize;
        trim(&format!("{v:.decimals$}")).to_string()
    } else {
        let s = format!("{v:.3e}");
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim(m)),
            None => s,
        }
    }
}

/// Registers the embedded font as plotters' "sans-serif" family, once per process.
fn register_font() -> std::result::Result<(), &'static str> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, ttf_noto_sans::REGULAR)
            .is_ok()
    });
    ok.then_some(())
        .ok_or("the embedded Noto Sans font could not be parsed")
}

/// What one plot shows.
struct Series<'a> {
    title: &'a str,
    x_desc: &'a str,
    curves: &'a [Curve],
    /// Where the legend goes: away from where the curves end (losses fall, accuracies rise).
    legend: SeriesLabelPosition,
}

/// Line colours, in order (matplotlib's first four).
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
];

impl Series<'_> {
    /// Draws on `root` with x range `x` and y axis `y` (linear or log): generic because the two
    /// kinds of axis are different types in plotters.
    fn draw<Y>(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, Shift>,
        x: Range<f64>,
        y: Y,
        y_desc: &str,
    ) -> std::result::Result<(), String>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x, y)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            // Plotters' fine mesh crowds into grey bands on a log axis; the bold mesh suffices.
            .light_line_style(WHITE)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, curve) in self.curves.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(curve.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
                });
            if curve.markers {
                chart
                    .draw_series(
                        curve
                            .points
                            .iter()
                            .map(|&p| Circle::new(p, 4, colour.filled())),
                    )
                    .map_err(|e| err(&e))?;
            }
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::LossRow;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(0.01102), "0.01102");
        assert_eq!(tick_label(1250.0), "1250");
        assert_eq!(tick_label(-2.5), "-2.5");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(1e-30), "1e-30");
        assert_eq!(tick_label(123456.0), "1.235e5");
    }

    #[test]
    fn padded_ranges_are_never_empty() {
        assert_eq!(padded(1.0, 1.0), 0.5..1.5);
        assert_eq!(padded(f64::INFINITY, f64::NEG_INFINITY), 0.0..1.0);
        let r = padded(0.0, 10.0);
        assert!(r.start < 0.0 && r.end > 10.0);
    }

    #[test]
    fn retain_through_drops_later_rows() {
        let row = |step| LossRow {
            step,
            epoch: 0,
            train_loss: 1.0,
            test_loss: None,
            images_per_s: 1.0,
        };
        let mut log = LossLog {
            rows: vec![row(1), row(2), row(3)],
        };
        log.retain_through(2);
        assert_eq!(log.rows.iter().map(|r| r.step).collect::<Vec<_>>(), [1, 2]);
    }
}
