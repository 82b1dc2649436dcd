//! Programs kept per batch size. A program is compiled for one batch size; a trainer that meets
//! another (the last partial batch of an epoch, a data set smaller than the batch, an evaluation
//! of a few images) compiles one for it and keeps it here, up to a bound, dropping the least
//! recently used beyond it (its buffers go with it).

/// Values kept by batch size, at most `keep` of them, most recently used last.
pub struct BySize<T> {
    keep: usize,
    entries: Vec<(usize, T)>,
}

impl<T> BySize<T> {
    /// Keeps at most `keep` sizes (at least one).
    pub fn new(keep: usize) -> Self {
        BySize {
            keep: keep.max(1),
            entries: Vec::new(),
        }
    }

    /// Takes the value for `size` out (put it back with [`BySize::put`]).
    pub fn take(&mut self, size: usize) -> Option<T> {
        let i = self.entries.iter().position(|(s, _)| *s == size)?;
        Some(self.entries.remove(i).1)
    }

    /// The value for `size`, leaving the order as it is.
    pub fn get(&self, size: usize) -> Option<&T> {
        self.entries
            .iter()
            .find(|(s, _)| *s == size)
            .map(|(_, v)| v)
    }

    /// Keeps `value` for `size` as the most recently used, dropping the least recently used
    /// value beyond the bound; returns what was dropped.
    pub fn put(&mut self, size: usize, value: T) -> Vec<(usize, T)> {
        self.entries.retain(|(s, _)| *s != size);
        self.entries.push((size, value));
        let over = self.entries.len().saturating_sub(self.keep);
        self.entries.drain(..over).collect()
    }

    /// The sizes kept, least recently used first.
    pub fn sizes(&self) -> Vec<usize> {
        self.entries.iter().map(|(s, _)| *s).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every kept value.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::BySize;

    #[test]
    fn keeps_the_most_recent_sizes() {
        let mut c = BySize::new(2);
        assert!(c.put(8, "a").is_empty());
        assert!(c.put(5, "b").is_empty());
        assert_eq!(c.take(8), Some("a"));
        c.put(8, "a");
        let dropped = c.put(3, "c");
        assert_eq!(dropped, vec![(5, "b")]);
        assert_eq!(c.sizes(), vec![8, 3]);
        assert_eq!(c.take(5), None);
        assert_eq!(c.len(), 2);
    }
}
