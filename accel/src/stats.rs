//! Counting exits and traps by kind, for the run summary and `compare`.

use std::collections::BTreeMap;

/// Exit (or trap) counts by kind, e.g. "io" → 1200, "hlt" → 30.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitStats {
    counts: BTreeMap<&'static str, u64>,
}

impl ExitStats {
    /// Count one exit of `kind`.
    #[inline]
    pub fn bump(&mut self, kind: &'static str) {
        *self.counts.entry(kind).or_insert(0) += 1;
    }
    /// Add `n` exits of `kind`.
    pub fn add(&mut self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.counts.entry(kind).or_insert(0) += n;
        }
    }
    /// The count for `kind` (0 if never seen).
    pub fn get(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }
    /// Total over all kinds.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
    /// Kinds and counts in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(k, v)| (*k, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let mut s = ExitStats::default();
        s.bump("io");
        s.bump("io");
        s.add("hlt", 3);
        s.add("mmio", 0);
        assert_eq!(s.get("io"), 2);
        assert_eq!(s.get("mmio"), 0);
        assert_eq!(s.total(), 5);
        assert_eq!(s.iter().count(), 2);
    }
}
