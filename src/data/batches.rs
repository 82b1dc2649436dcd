//! Which images make up each training step's batch.
//!
//! The order is a pure function of `(n, batch, shuffle, seed)` and the epoch, so a run resumed
//! from a checkpoint at global step `s` can recompute exactly the batch an uninterrupted run
//! would have taken at `s` ([`BatchOrder::position`]), with no state saved beyond the step.

use super::{mix, permutation};
use crate::error::{Error, Result};
use crate::tensor::Rng;

const SHUFFLE_TAG: u64 = 0x6261_7463_6865_7303;

/// The batches of `n` items of `batch` each, epoch after epoch.
///
/// An epoch is one pass: with `shuffle`, a fresh seeded permutation per `(seed, epoch)`;
/// without, file order. As PyTorch's `DataLoader` does by default, the last batch of an epoch
/// holds the remainder (`n % batch` items) when `n` is not a multiple of `batch`, so every item
/// is seen every epoch and a data set smaller than `batch` is one batch of all `n` items. With
/// `drop_last` ([`BatchOrder::dropping_last`]) that remainder is dropped instead (a different
/// one each epoch when shuffling), as long as one full batch remains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOrder {
    pub n: usize,
    pub batch: usize,
    pub shuffle: bool,
    pub seed: u64,
    pub drop_last: bool,
}

impl BatchOrder {
    /// Checks that there is something to batch: `n` and `batch` must be non-zero. (The methods
    /// do not panic on a hand-built order with zeros either: it simply has no batches.)
    pub fn new(n: usize, batch: usize, shuffle: bool, seed: u64) -> Result<BatchOrder> {
        if n == 0 || batch == 0 {
            return Err(Error::invalid(
                "BatchOrder",
                format!("{n} items in batches of {batch}: both must be non-zero"),
            ));
        }
        Ok(BatchOrder {
            n,
            batch,
            shuffle,
            seed,
            drop_last: false,
        })
    }

    /// The same order with the last partial batch of each epoch dropped when `drop` is set
    /// (unless it is the only batch).
    pub fn dropping_last(self, drop: bool) -> BatchOrder {
        BatchOrder {
            drop_last: drop,
            ..self
        }
    }

    /// Steps per epoch: `⌈n / batch⌉`, or with `drop_last` `n / batch` (at least 1); 0 when `n`
    /// or `batch` is 0.
    pub fn batches_per_epoch(&self) -> usize {
        if self.n == 0 || self.batch == 0 {
            0
        } else if self.drop_last {
            (self.n / self.batch).max(1)
        } else {
            self.n.div_ceil(self.batch)
        }
    }

    /// The index lists of epoch `e`'s batches, in step order. Costs O(n): a training loop
    /// calls it once per epoch rather than once per step.
    pub fn epoch(&self, e: u64) -> Vec<Vec<usize>> {
        let order = if self.shuffle {
            permutation(self.n, &mut Rng::new(mix(mix(self.seed, SHUFFLE_TAG), e)))
        } else {
            (0..self.n).collect()
        };
        let size = self.batch.min(self.n).max(1);
        order
            .chunks(size)
            .take(self.batches_per_epoch())
            .map(<[usize]>::to_vec)
            .collect()
    }

    /// `(epoch, index of the batch within it)` of global step `step` (counted from 0).
    pub fn position(&self, step: u64) -> (u64, usize) {
        let per = self.batches_per_epoch() as u64;
        if per == 0 {
            return (0, 0);
        }
        (step / per, (step % per) as usize)
    }

    /// The indices of global step `step`'s batch (empty when there are no batches).
    pub fn batch_at(&self, step: u64) -> Vec<usize> {
        let (e, i) = self.position(step);
        self.epoch(e).into_iter().nth(i).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_orders_have_no_batches() {
        let o = BatchOrder {
            n: 0,
            batch: 4,
            shuffle: true,
            seed: 1,
            drop_last: false,
        };
        assert_eq!(o.batches_per_epoch(), 0);
        assert!(o.epoch(3).is_empty());
        assert_eq!(o.position(10), (0, 0));
        assert!(o.batch_at(10).is_empty());
        let z = BatchOrder {
            batch: 0,
            n: 5,
            ..o
        };
        assert!(z.epoch(0).is_empty());
        assert!(BatchOrder::new(0, 1, false, 0).is_err());
        assert!(BatchOrder::new(1, 0, false, 0).is_err());
    }

    #[test]
    fn small_sets_form_one_batch() {
        for drop in [false, true] {
            let o = BatchOrder::new(3, 8, false, 0).unwrap().dropping_last(drop);
            assert_eq!(o.epoch(0), vec![vec![0, 1, 2]]);
            assert_eq!(o.position(5), (5, 0));
        }
    }

    #[test]
    fn the_remainder_is_the_last_batch_unless_dropped() {
        let o = BatchOrder::new(10, 4, false, 0).unwrap();
        assert_eq!(o.batches_per_epoch(), 3);
        assert_eq!(
            o.epoch(0),
            vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]
        );
        assert_eq!(o.batch_at(5), vec![8, 9]);
        let d = o.dropping_last(true);
        assert_eq!(d.batches_per_epoch(), 2);
        assert_eq!(d.epoch(0), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
    }
}
