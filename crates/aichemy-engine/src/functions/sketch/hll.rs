//! HyperLogLog (Flajolet, Fusy, Gandouet and Meunier, 2007): 2^p registers, each the largest
//! rank (leading zeros + 1) among the hashes whose first p bits pick it. The harmonic mean of
//! 2^-register estimates how many distinct hashes were added; linear counting over the empty
//! registers corrects small counts.
//!
//! Body of its serialized form: the precision p, then either `DENSE` and the 2^p registers, or
//! `SPARSE`, a count and that many (u16 index, u8 register) pairs of the non-empty registers
//! in increasing index order.

use datafusion::common::Result;

use super::{invalid_argument, write_count, Reader};

/// The precision of `approx_set(x)` and of a SetDigest's HyperLogLog: 2^11 registers, a
/// standard error of 2.3 %.
pub(super) const DEFAULT_PRECISION: u8 = 11;
const MIN_PRECISION: u8 = 4;
const MAX_PRECISION: u8 = 16;
/// The bounds of a maximum standard error, those of 2^16 and 2^4 registers.
const LOWEST_MAX_ERROR: f64 = 0.0040625;
const HIGHEST_MAX_ERROR: f64 = 0.26;

const DENSE: u8 = 0;
const SPARSE: u8 = 1;

/// A HyperLogLog sketch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HyperLogLog {
    precision: u8,
    registers: Vec<u8>,
}

impl HyperLogLog {
    /// An empty sketch of 2^`precision` registers (`precision` in 4..=16).
    pub(super) fn new(precision: u8) -> Self {
        let precision = precision.clamp(MIN_PRECISION, MAX_PRECISION);
        Self {
            precision,
            registers: vec![0; 1 << precision],
        }
    }

    /// The precision of the fewest registers m whose standard error 1.04/√m is at most
    /// `max_error`, as `approx_distinct(x, e)` takes it.
    pub(super) fn precision_for(max_error: f64) -> Result<u8> {
        if !(LOWEST_MAX_ERROR..=HIGHEST_MAX_ERROR).contains(&max_error) {
            return Err(invalid_argument(format!(
                "Max standard error must be in [{LOWEST_MAX_ERROR}, {HIGHEST_MAX_ERROR}]: \
                 {max_error}"
            )));
        }
        let fits = |p: &u8| 1.04 / f64::from(1u32 << p).sqrt() <= max_error;
        Ok((MIN_PRECISION..=MAX_PRECISION)
            .find(fits)
            .unwrap_or(MAX_PRECISION))
    }

    /// The largest rank a register of this precision can hold.
    fn max_rank(precision: u8) -> u8 {
        64 - precision + 1
    }

    /// Adds a 64-bit hash.
    pub(super) fn add(&mut self, hash: u64) {
        let p = u32::from(self.precision);
        let index = (hash >> (64 - p)) as usize;
        let rank = ((hash << p).leading_zeros() + 1).min(64 - p + 1) as u8;
        if let Some(register) = self.registers.get_mut(index) {
            *register = (*register).max(rank);
        }
    }

    /// Merges another sketch into this one; of two precisions, the result has the coarser.
    pub(super) fn merge(&mut self, other: &HyperLogLog) {
        if other.precision < self.precision {
            *self = self.folded(other.precision);
        }
        let folded;
        let other = if other.precision > self.precision {
            folded = other.folded(self.precision);
            &folded
        } else {
            other
        };
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// This sketch at a coarser precision, as if its hashes had been added to that one: the
    /// index bits the coarser sketch leaves over become the first bits of the rank.
    fn folded(&self, precision: u8) -> HyperLogLog {
        let mut coarse = HyperLogLog::new(precision);
        let shift = u32::from(self.precision - coarse.precision);
        for (index, &rank) in self.registers.iter().enumerate() {
            if rank == 0 {
                continue;
            }
            let left_over = index & ((1 << shift) - 1);
            let rank = if left_over == 0 {
                rank + shift as u8
            } else {
                (shift - (usize::BITS - left_over.leading_zeros())) as u8 + 1
            };
            if let Some(register) = coarse.registers.get_mut(index >> shift) {
                *register = (*register).max(rank);
            }
        }
        coarse
    }

    /// The estimated number of distinct hashes added.
    pub(super) fn cardinality(&self) -> u64 {
        let m = self.registers.len() as f64;
        let alpha = match self.registers.len() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let sum: f64 = self
            .registers
            .iter()
            .map(|&rank| 0.5f64.powi(i32::from(rank)))
            .sum();
        let empty = self.registers.iter().filter(|&&rank| rank == 0).count();
        let raw = alpha * m * m / sum;
        let estimate = if raw <= 2.5 * m && empty > 0 {
            m * (m / empty as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// Writes the body of the serialized sketch.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.push(self.precision);
        let filled: Vec<(usize, u8)> = self
            .registers
            .iter()
            .enumerate()
            .filter_map(|(index, &rank)| (rank > 0).then_some((index, rank)))
            .collect();
        if 4 + 3 * filled.len() < self.registers.len() {
            out.push(SPARSE);
            write_count(out, filled.len());
            for (index, rank) in filled {
                out.extend_from_slice(&(index as u16).to_le_bytes());
                out.push(rank);
            }
        } else {
            out.push(DENSE);
            out.extend_from_slice(&self.registers);
        }
    }

    /// Reads the body [`Self::write`] writes.
    pub(super) fn read(reader: &mut Reader) -> Result<Self> {
        let precision = reader.u8()?;
        reader.check((MIN_PRECISION..=MAX_PRECISION).contains(&precision))?;
        let mut hll = HyperLogLog::new(precision);
        match reader.u8()? {
            DENSE => {
                let registers = reader.take(hll.registers.len())?;
                hll.registers.copy_from_slice(registers);
            }
            SPARSE => {
                let count = reader.count(3)?;
                let mut previous: Option<usize> = None;
                for _ in 0..count {
                    let index = usize::from(reader.u16()?);
                    let rank = reader.u8()?;
                    reader.check(previous.is_none_or(|previous| index > previous) && rank > 0)?;
                    let register = hll.registers.get_mut(index);
                    let Some(register) = register else {
                        return Err(reader.invalid());
                    };
                    *register = rank;
                    previous = Some(index);
                }
            }
            _ => return Err(reader.invalid()),
        }
        let max_rank = Self::max_rank(precision);
        reader.check(hll.registers.iter().all(|&rank| rank <= max_rank))?;
        Ok(hll)
    }

    pub(super) fn size(&self) -> usize {
        size_of::<Self>() + self.registers.capacity()
    }
}

#[cfg(test)]
mod tests {
    use xxhash_rust::xxh64::xxh64;

    use super::super::{Sketch, SketchType};
    use super::*;

    fn hash(value: i64) -> u64 {
        xxh64(&value.to_le_bytes(), 0)
    }

    fn sketch_of(values: impl Iterator<Item = i64>, precision: u8) -> HyperLogLog {
        let mut hll = HyperLogLog::new(precision);
        values.for_each(|v| hll.add(hash(v)));
        hll
    }

    #[test]
    fn estimates_within_its_error() {
        let hll = sketch_of(0..100_000, DEFAULT_PRECISION);
        let estimate = hll.cardinality() as f64;
        assert!((estimate - 100_000.0).abs() < 3_000.0, "{estimate}");
        assert_eq!(HyperLogLog::new(DEFAULT_PRECISION).cardinality(), 0);
        assert_eq!(sketch_of(0..10, DEFAULT_PRECISION).cardinality(), 10);
    }

    #[test]
    fn merged_halves_are_the_whole() {
        let whole = sketch_of(0..100_000, DEFAULT_PRECISION);
        let mut half = sketch_of(0..50_000, DEFAULT_PRECISION);
        half.merge(&sketch_of(50_000..100_000, DEFAULT_PRECISION));
        assert_eq!(half, whole);
        // A finer sketch folds into the coarser one as if built at that precision.
        let mut coarse = sketch_of(0..50_000, 10);
        coarse.merge(&sketch_of(50_000..100_000, 14));
        assert_eq!(coarse, sketch_of(0..100_000, 10));
    }

    #[test]
    fn precision_follows_the_standard_error() -> Result<()> {
        assert_eq!(HyperLogLog::precision_for(0.023)?, 11);
        assert_eq!(HyperLogLog::precision_for(0.26)?, 4);
        assert_eq!(HyperLogLog::precision_for(0.0040625)?, 16);
        assert!(HyperLogLog::precision_for(0.3).is_err());
        assert!(HyperLogLog::precision_for(0.001).is_err());
        Ok(())
    }

    #[test]
    fn serializes_dense_and_sparse() -> Result<()> {
        for hll in [
            sketch_of(0..5, DEFAULT_PRECISION),
            sketch_of(0..100_000, DEFAULT_PRECISION),
        ] {
            let mut sketch = Sketch::Hll(hll.clone());
            let bytes = sketch.encode();
            match Sketch::decode(&bytes, Some(SketchType::HyperLogLog))? {
                Sketch::Hll(read) => assert_eq!(read, hll),
                other => panic!("{other:?}"),
            }
        }
        // A rank above what the precision allows.
        let mut bytes = vec![SketchType::HyperLogLog.tag(), 4, DENSE];
        bytes.extend([70u8; 16]);
        assert!(Sketch::decode(&bytes, None).is_err());
        // Sparse indices out of order.
        let bytes = [0x11, 4, SPARSE, 2, 0, 0, 0, 3, 0, 1, 2, 0, 1];
        assert!(Sketch::decode(&bytes, None).is_err());
        Ok(())
    }
}
