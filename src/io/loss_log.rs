//! The loss log of a training run: one row per logged step, kept as CSV so that a resumed run
//! can read it back and append (`plot.rs` draws it, with the `plot` feature).

use super::{io_error, write_atomic};
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// The CSV header line, in column order.
pub const CSV_HEADER: &str = "step,epoch,train_loss,test_loss,images_per_s";

/// One logged point of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossRow {
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Epoch the step belongs to.
    pub epoch: u64,
    /// Training loss (typically averaged since the previous row).
    pub train_loss: f32,
    /// Held-out loss, on the rows where it was measured (typically once per epoch).
    pub test_loss: Option<f32>,
    /// Training throughput since the previous row.
    pub images_per_s: f32,
}

/// All rows of a run, in the order they were logged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LossLog {
    pub rows: Vec<LossRow>,
}

impl LossLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, row: LossRow) {
        self.rows.push(row);
    }

    /// Drops the rows logged after `step`. A run resumed from a checkpoint taken at `step`
    /// calls this on the log it read back, so steps it is about to redo are not logged twice.
    pub fn retain_through(&mut self, step: u64) {
        self.rows.retain(|r| r.step <= step);
    }

    /// Writes the log as CSV (header [`CSV_HEADER`], an empty `test_loss` where it was not
    /// measured), atomically. Floats use Rust's shortest round-trip form, so
    /// [`LossLog::read_csv`] gives back the same bits.
    pub fn write_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut text = String::with_capacity(48 * (self.rows.len() + 1));
        text.push_str(CSV_HEADER);
        text.push('\n');
        for r in &self.rows {
            let test = r.test_loss.map(|v| v.to_string()).unwrap_or_default();
            // Writing to a String cannot fail.
            let _ = writeln!(
                text,
                "{},{},{},{},{}",
                r.step, r.epoch, r.train_loss, test, r.images_per_s
            );
        }
        write_atomic(path, |w| {
            w.write_all(text.as_bytes())
                .map_err(|e| io_error(path, "writing", e))
        })
    }

    /// Reads a log written by [`LossLog::write_csv`]. Errors name the file, the line and the
    /// column.
    pub fn read_csv(path: impl AsRef<Path>) -> Result<LossLog> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|e| io_error(path, "reading", e))?;
        let file = path.display();
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim_end() == CSV_HEADER => {}
            Some((_, h)) => {
                return Err(Error::data(
                    &file,
                    format!("line 1: expected the header '{CSV_HEADER}', found '{h}'"),
                ));
            }
            None => return Err(Error::data(&file, "empty file: no CSV header")),
        }
        let mut log = LossLog::new();
        for (i, line) in lines {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            let at = |col: &str, why: &str| {
                Error::data(&file, format!("line {}: column '{col}' {why}", i + 1))
            };
            let cells: Vec<&str> = line.split(',').collect();
            let [step, epoch, train, test, ips] = cells[..] else {
                return Err(Error::data(
                    &file,
                    format!("line {}: expected 5 columns, found {}", i + 1, cells.len()),
                ));
            };
            let int = |col: &str, s: &str| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| at(col, &format!("= {s:?} is not a whole number")))
            };
            let float = |col: &str, s: &str| {
                s.trim()
                    .parse::<f32>()
                    .map_err(|_| at(col, &format!("= {s:?} is not a number")))
            };
            log.push(LossRow {
                step: int("step", step)?,
                epoch: int("epoch", epoch)?,
                train_loss: float("train_loss", train)?,
                test_loss: match test.trim() {
                    "" => None,
                    s => Some(float("test_loss", s)?),
                },
                images_per_s: float("images_per_s", ips)?,
            });
        }
        Ok(log)
    }
}
