//! Trino's SetDigest: a HyperLogLog for the cardinality of large sets, and a MinHash part, the
//! [`MAX_HASHES`] smallest distinct hashes with how often each was added. While the set has
//! fewer distinct values than that, the MinHash part holds all of them and answers exactly;
//! beyond, the smallest hashes are a uniform sample of the set, from which the Jaccard index
//! of two sets is estimated (Broder's bottom-k MinHash).
//!
//! Body of its serialized form: the HyperLogLog's body, then a count and that many
//! (i64 hash, i16 count) pairs in increasing hash order.

use std::collections::BTreeMap;

use datafusion::common::Result;

use super::hll::{HyperLogLog, DEFAULT_PRECISION};
use super::{write_count, Reader};

/// K: how many of the smallest hashes a digest keeps.
pub(super) const MAX_HASHES: usize = 4096;

/// A SetDigest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SetDigest {
    hll: HyperLogLog,
    /// The smallest hashes (as signed integers, as Trino shows them) and how often each was
    /// added, up to `i16::MAX`.
    hashes: BTreeMap<i64, i16>,
}

impl SetDigest {
    pub(super) fn new() -> Self {
        Self {
            hll: HyperLogLog::new(DEFAULT_PRECISION),
            hashes: BTreeMap::new(),
        }
    }

    /// Adds the hash of a value.
    pub(super) fn add(&mut self, hash: u64) {
        self.hll.add(hash);
        self.count(hash as i64, 1);
    }

    /// Counts `count` more of a hash, if it is among the smallest.
    fn count(&mut self, hash: i64, count: i16) {
        if let Some(seen) = self.hashes.get_mut(&hash) {
            *seen = seen.saturating_add(count);
            return;
        }
        if self.hashes.len() >= MAX_HASHES {
            let largest = self.hashes.last_key_value().map(|(&largest, _)| largest);
            match largest {
                Some(largest) if hash < largest => {
                    self.hashes.pop_last();
                }
                _ => return,
            }
        }
        self.hashes.insert(hash, count);
    }

    /// Merges another digest into this one: the digest of the union of their sets.
    pub(super) fn merge(&mut self, other: &SetDigest) {
        self.hll.merge(&other.hll);
        for (&hash, &count) in &other.hashes {
            self.count(hash, count);
        }
    }

    /// Whether the MinHash part holds every distinct hash added.
    fn is_exact(&self) -> bool {
        self.hashes.len() < MAX_HASHES
    }

    /// The number of distinct values: exact while the digest is, else the HyperLogLog's
    /// estimate.
    pub(super) fn cardinality(&self) -> u64 {
        if self.is_exact() {
            self.hashes.len() as u64
        } else {
            self.hll.cardinality()
        }
    }

    /// How many hashes both digests hold.
    fn common(&self, other: &SetDigest) -> usize {
        let (small, large) = if self.hashes.len() <= other.hashes.len() {
            (self, other)
        } else {
            (other, self)
        };
        small
            .hashes
            .keys()
            .filter(|hash| large.hashes.contains_key(hash))
            .count()
    }

    /// The Jaccard index |A ∩ B| / |A ∪ B| of the two sets: exact when both digests are,
    /// else the share of the k smallest hashes of the union that both hold, for k the size of
    /// the smaller MinHash part.
    pub(super) fn jaccard_index(&self, other: &SetDigest) -> f64 {
        if self.is_exact() && other.is_exact() {
            let common = self.common(other);
            let union = self.hashes.len() + other.hashes.len() - common;
            return if union == 0 {
                1.0
            } else {
                common as f64 / union as f64
            };
        }
        let k = self.hashes.len().min(other.hashes.len());
        if k == 0 {
            return 0.0;
        }
        let (mut mine, mut theirs) = (
            self.hashes.keys().peekable(),
            other.hashes.keys().peekable(),
        );
        let mut both = 0usize;
        for _ in 0..k {
            match (mine.peek().copied(), theirs.peek().copied()) {
                (Some(a), Some(b)) if a == b => {
                    both += 1;
                    mine.next();
                    theirs.next();
                }
                (Some(a), Some(b)) if a < b => {
                    mine.next();
                }
                (_, Some(_)) => {
                    theirs.next();
                }
                (Some(_), None) => {
                    mine.next();
                }
                (None, None) => break,
            }
        }
        both as f64 / k as f64
    }

    /// The number of values in both sets: exact when both digests are, else the Jaccard
    /// index times the cardinality of the union, at most the smaller cardinality.
    pub(super) fn intersection_cardinality(&self, other: &SetDigest) -> u64 {
        if self.is_exact() && other.is_exact() {
            return self.common(other) as u64;
        }
        let mut union = self.hll.clone();
        union.merge(&other.hll);
        let estimate = (self.jaccard_index(other) * union.cardinality() as f64).round() as u64;
        estimate.min(self.cardinality()).min(other.cardinality())
    }

    /// The MinHash part: each hash kept and how often it was added.
    pub(super) fn hash_counts(&self) -> impl Iterator<Item = (i64, i16)> + '_ {
        self.hashes.iter().map(|(&hash, &count)| (hash, count))
    }

    /// Writes the body of the serialized digest.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        self.hll.write(out);
        write_count(out, self.hashes.len());
        for (hash, count) in self.hash_counts() {
            out.extend_from_slice(&hash.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
    }

    /// Reads the body [`Self::write`] writes.
    pub(super) fn read(reader: &mut Reader) -> Result<Self> {
        let hll = HyperLogLog::read(reader)?;
        let count = reader.count(10)?;
        reader.check(count <= MAX_HASHES)?;
        let mut hashes = BTreeMap::new();
        let mut previous: Option<i64> = None;
        for _ in 0..count {
            let hash = reader.i64()?;
            let seen = reader.i16()?;
            reader.check(previous.is_none_or(|previous| hash > previous) && seen > 0)?;
            hashes.insert(hash, seen);
            previous = Some(hash);
        }
        Ok(Self { hll, hashes })
    }

    pub(super) fn size(&self) -> usize {
        // A B-tree entry takes about its key and value, and as much again in node overhead.
        size_of::<Self>()
            + self.hll.size()
            + self.hashes.len() * 2 * (size_of::<i64>() + size_of::<i16>())
    }
}

#[cfg(test)]
mod tests {
    use xxhash_rust::xxh64::xxh64;

    use super::super::{Sketch, SketchType};
    use super::*;

    fn digest_of(values: impl Iterator<Item = i64>) -> SetDigest {
        let mut digest = SetDigest::new();
        values.for_each(|v| digest.add(xxh64(&v.to_le_bytes(), 0)));
        digest
    }

    #[test]
    fn small_sets_are_exact() {
        let a = digest_of([1, 2, 3, 3].into_iter());
        let b = digest_of([1, 2, 3, 4].into_iter());
        assert_eq!(a.cardinality(), 3);
        assert_eq!(a.intersection_cardinality(&b), 3);
        assert_eq!(a.jaccard_index(&b), 0.75);
        let c = digest_of([1, 2].into_iter());
        assert_eq!(c.jaccard_index(&b), 0.5);
        let counts: Vec<i16> = a.hash_counts().map(|(_, count)| count).collect();
        assert_eq!(counts.iter().map(|&c| i32::from(c)).sum::<i32>(), 4);
        assert!(counts.contains(&2));
    }

    #[test]
    fn jaccard_of_overlapping_ranges() {
        let a = digest_of(1..=1000);
        let b = digest_of(501..=1500);
        let jaccard = a.jaccard_index(&b);
        assert!((jaccard - 1.0 / 3.0).abs() <= 0.05, "{jaccard}");
        assert_eq!(a.intersection_cardinality(&b), 500);
        // Large sets: estimated from the smallest hashes.
        let a = digest_of(0..20_000);
        let b = digest_of(10_000..30_000);
        let jaccard = a.jaccard_index(&b);
        assert!((jaccard - 1.0 / 3.0).abs() <= 0.05, "{jaccard}");
        let both = a.intersection_cardinality(&b) as f64;
        assert!((both - 10_000.0).abs() <= 1_500.0, "{both}");
    }

    #[test]
    fn merged_parts_are_the_whole_and_serialize() -> Result<()> {
        let mut merged = digest_of(0..5_000);
        merged.merge(&digest_of(2_500..10_000));
        let whole = digest_of((0..5_000).chain(2_500..10_000));
        assert_eq!(merged, whole);
        assert_eq!(merged.hashes.len(), MAX_HASHES);
        let mut sketch = Sketch::Set(whole.clone());
        let bytes = sketch.encode();
        match Sketch::decode(&bytes, Some(SketchType::SetDigest))? {
            Sketch::Set(read) => assert_eq!(read, whole),
            other => panic!("{other:?}"),
        }
        assert!(Sketch::decode(&bytes[..bytes.len() - 3], None).is_err());
        Ok(())
    }
}
