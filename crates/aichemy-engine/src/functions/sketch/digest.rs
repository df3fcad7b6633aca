//! The quantile digest behind Trino's `qdigest(T)` and `tdigest`: a merging t-digest (Dunning
//! and Ertl, "Computing extremely accurate quantiles using t-digests").
//!
//! The digest keeps centroids, (mean, weight) pairs sorted by mean, and a buffer of values not
//! yet merged into them. When the buffer fills (or the digest is read or written), buffer and
//! centroids are sorted together and equal values joined. While that leaves at most
//! `compression` centroids, the digest is exact: each centroid is one value with its weight.
//! Beyond, neighbouring centroids are merged while the merged one spans at most one unit of
//! the scale k(q) = δ/(2π)·asin(2q − 1), which keeps centroids small at the tails and leaves
//! about δ/2 of them. Quantiles are then read by linear interpolation between the middles of
//! the centroids, and the least and greatest values seen.
//!
//! Body of its serialized form: compression (f64), exact (u8), min and max (f64), a count and
//! that many (mean, weight) f64 pairs in nondecreasing mean order.

use std::f64::consts::{FRAC_PI_2, PI};

use datafusion::common::Result;

use super::{invalid_argument, write_count, Reader, SketchType};

/// δ, the compression of a digest unless `qdigest_agg`'s accuracy asks for more.
pub(super) const DEFAULT_COMPRESSION: f64 = 100.0;
/// The most compression an accuracy can ask for, which bounds a digest's memory.
const MAX_COMPRESSION: f64 = 1000.0;
/// Values buffered before they are merged into the centroids, per unit of compression.
const BUFFER_PER_COMPRESSION: f64 = 5.0;

/// A mean of values and their total weight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Centroid {
    mean: f64,
    weight: f64,
}

/// A t-digest, of one of the digest [`SketchType`]s.
#[derive(Debug, Clone)]
pub(super) struct Digest {
    sketch_type: SketchType,
    compression: f64,
    /// Sorted by mean.
    centroids: Vec<Centroid>,
    /// Not yet merged into `centroids`.
    buffer: Vec<Centroid>,
    /// Whether each centroid is one value.
    exact: bool,
    min: f64,
    max: f64,
    /// The weight of centroids and buffer.
    total: f64,
}

impl Digest {
    /// An empty digest.
    pub(super) fn new(sketch_type: SketchType, compression: f64) -> Self {
        Self {
            sketch_type,
            compression,
            centroids: Vec::new(),
            buffer: Vec::new(),
            exact: true,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            total: 0.0,
        }
    }

    /// The compression for `qdigest_agg`'s accuracy, a maximum rank error in (0, 1).
    pub(super) fn compression_for(accuracy: f64) -> Result<f64> {
        if !(accuracy > 0.0 && accuracy < 1.0) {
            return Err(invalid_argument(format!(
                "Percentile accuracy must be exclusively between 0 and 1, was {accuracy}"
            )));
        }
        Ok((1.0 / accuracy).clamp(DEFAULT_COMPRESSION, MAX_COMPRESSION))
    }

    pub(super) fn sketch_type(&self) -> SketchType {
        self.sketch_type
    }

    /// Adds a value of a weight (at least 1).
    pub(super) fn add(&mut self, value: f64, weight: f64) -> Result<()> {
        if !value.is_finite() {
            return Err(invalid_argument(format!(
                "value must be finite; was {value}"
            )));
        }
        if !(weight >= 1.0 && weight.is_finite()) {
            return Err(invalid_argument(format!(
                "weight must be finite and at least 1; was {weight}"
            )));
        }
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.push(Centroid {
            mean: value,
            weight,
        });
        Ok(())
    }

    /// Merges another digest (of the same type) into this one.
    pub(super) fn merge(&mut self, other: &Digest) {
        self.compression = self.compression.max(other.compression);
        self.exact &= other.exact;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for centroid in other.centroids.iter().chain(&other.buffer) {
            self.push(*centroid);
        }
    }

    fn push(&mut self, centroid: Centroid) {
        self.total += centroid.weight;
        self.buffer.push(centroid);
        if self.buffer.len() as f64 >= BUFFER_PER_COMPRESSION * self.compression {
            self.flush();
        }
    }

    /// Merges the buffer into the centroids.
    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut all = std::mem::take(&mut self.centroids);
        all.append(&mut self.buffer);
        all.sort_by(|a, b| a.mean.total_cmp(&b.mean));
        // Equal values are one centroid, which loses nothing.
        let mut joined: Vec<Centroid> = Vec::with_capacity(all.len());
        for centroid in all {
            match joined.last_mut() {
                Some(last) if last.mean == centroid.mean => last.weight += centroid.weight,
                _ => joined.push(centroid),
            }
        }
        if self.exact && joined.len() as f64 <= self.compression {
            self.centroids = joined;
        } else {
            self.exact = false;
            self.centroids = self.compress(joined);
        }
    }

    /// Merges neighbours of sorted centroids while each merged one spans at most one unit of
    /// the scale function.
    fn compress(&self, sorted: Vec<Centroid>) -> Vec<Centroid> {
        let total: f64 = sorted.iter().map(|c| c.weight).sum();
        let mut merged = Vec::new();
        let mut sorted = sorted.into_iter();
        let Some(mut current) = sorted.next() else {
            return merged;
        };
        // The weight before `current`, and the quantile it may reach.
        let mut before = 0.0;
        let mut limit = self.quantile_limit(0.0);
        for next in sorted {
            if (before + current.weight + next.weight) / total <= limit {
                current.weight += next.weight;
                current.mean += (next.mean - current.mean) * next.weight / current.weight;
            } else {
                before += current.weight;
                merged.push(current);
                limit = self.quantile_limit(before / total);
                current = next;
            }
        }
        merged.push(current);
        merged
    }

    /// The quantile one unit of the scale k(q) = δ/(2π)·asin(2q − 1) beyond `q`.
    fn quantile_limit(&self, q: f64) -> f64 {
        let scale = self.compression / (2.0 * PI);
        let k = scale * (2.0 * q - 1.0).clamp(-1.0, 1.0).asin() + 1.0;
        if k >= scale * FRAC_PI_2 {
            1.0
        } else {
            ((k / scale).sin() + 1.0) / 2.0
        }
    }

    /// The value at quantile `q` (in [0, 1]); `None` for an empty digest. Exact, it is the
    /// value at rank ⌊q·n⌋ (of n weighted values, counting from 0); else interpolated.
    pub(super) fn value_at(&mut self, q: f64) -> Option<f64> {
        self.flush();
        let last = self.centroids.last()?.mean;
        let rank = q * self.total;
        if self.exact {
            let mut seen = 0.0;
            for centroid in &self.centroids {
                seen += centroid.weight;
                if seen > rank {
                    return Some(centroid.mean);
                }
            }
            return Some(last);
        }
        interpolate(&self.points(), rank)
    }

    /// The quantile of `value`: the share of the weight below it; `None` for an empty digest
    /// or a value outside the least and greatest values seen.
    pub(super) fn quantile_at(&mut self, value: f64) -> Option<f64> {
        self.flush();
        if self.centroids.is_empty() || value.is_nan() || value < self.min || value > self.max {
            return None;
        }
        if self.exact {
            let below: f64 = self
                .centroids
                .iter()
                .take_while(|c| c.mean < value)
                .map(|c| c.weight)
                .sum();
            return Some(below / self.total);
        }
        let inverse: Vec<(f64, f64)> = self
            .points()
            .into_iter()
            .map(|(rank, value)| (value, rank))
            .collect();
        interpolate(&inverse, value).map(|rank| rank / self.total)
    }

    /// The cumulative distribution the digest approximates, as (rank, value) points: the least
    /// value at rank 0, each centroid's mean at its middle, the greatest value at the total.
    fn points(&self) -> Vec<(f64, f64)> {
        let mut points = Vec::with_capacity(self.centroids.len() + 2);
        points.push((0.0, self.min));
        let mut before = 0.0;
        for centroid in &self.centroids {
            points.push((before + centroid.weight / 2.0, centroid.mean));
            before += centroid.weight;
        }
        points.push((self.total, self.max));
        points
    }

    /// Writes the body of the serialized digest.
    pub(super) fn write(&mut self, out: &mut Vec<u8>) {
        self.flush();
        out.extend_from_slice(&self.compression.to_le_bytes());
        out.push(u8::from(self.exact));
        out.extend_from_slice(&self.min.to_le_bytes());
        out.extend_from_slice(&self.max.to_le_bytes());
        write_count(out, self.centroids.len());
        for centroid in &self.centroids {
            out.extend_from_slice(&centroid.mean.to_le_bytes());
            out.extend_from_slice(&centroid.weight.to_le_bytes());
        }
    }

    /// Reads the body [`Self::write`] writes, of a digest of `sketch_type`.
    pub(super) fn read(reader: &mut Reader, sketch_type: SketchType) -> Result<Self> {
        let compression = reader.f64()?;
        reader.check((1.0..=MAX_COMPRESSION).contains(&compression))?;
        let exact = match reader.u8()? {
            0 => false,
            1 => true,
            _ => return Err(reader.invalid()),
        };
        let (min, max) = (reader.f64()?, reader.f64()?);
        let count = reader.count(16)?;
        reader.check(count > 0 && min.is_finite() && max.is_finite() && min <= max)?;
        let mut digest = Digest::new(sketch_type, compression);
        digest.exact = exact;
        digest.min = min;
        digest.max = max;
        digest.centroids.reserve_exact(count);
        let mut previous = min;
        for _ in 0..count {
            let centroid = Centroid {
                mean: reader.f64()?,
                weight: reader.f64()?,
            };
            reader.check(
                centroid.mean >= previous
                    && centroid.mean <= max
                    && centroid.weight > 0.0
                    && centroid.weight.is_finite(),
            )?;
            previous = centroid.mean;
            digest.total += centroid.weight;
            digest.centroids.push(centroid);
        }
        reader.check(digest.total.is_finite())?;
        Ok(digest)
    }

    pub(super) fn size(&self) -> usize {
        size_of::<Self>()
            + (self.centroids.capacity() + self.buffer.capacity()) * size_of::<Centroid>()
    }
}

/// The y at `x` of the piecewise-linear function through `points` (x nondecreasing), the y of
/// its first or last point beyond its ends; `None` without points.
fn interpolate(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let mut previous = *points.first()?;
    if x <= previous.0 {
        return Some(previous.1);
    }
    for &point in points.iter().skip(1) {
        if x == point.0 {
            return Some(point.1);
        }
        if x < point.0 {
            // previous.0 < x < point.0
            let fraction = (x - previous.0) / (point.0 - previous.0);
            return Some(previous.1 + (point.1 - previous.1) * fraction);
        }
        previous = point;
    }
    Some(previous.1)
}

#[cfg(test)]
mod tests {
    use super::super::{Sketch, ValueType};
    use super::*;

    const TDIGEST: SketchType = SketchType::TDigest;

    fn digest_of(values: impl Iterator<Item = f64>) -> Digest {
        let mut digest = Digest::new(TDIGEST, DEFAULT_COMPRESSION);
        for value in values {
            digest.add(value, 1.0).unwrap();
        }
        digest
    }

    #[test]
    fn small_digests_are_exact() {
        let mut digest = digest_of((1..=10).map(f64::from));
        assert_eq!(digest.value_at(0.5), Some(6.0));
        assert_eq!(digest.value_at(0.0), Some(1.0));
        assert_eq!(digest.value_at(1.0), Some(10.0));
        assert_eq!(digest.quantile_at(6.0), Some(0.5));
        assert_eq!(digest.quantile_at(1.0), Some(0.0));
        assert_eq!(digest.quantile_at(11.0), None);
        let mut weighted = Digest::new(SketchType::QDigest(ValueType::Bigint), 100.0);
        weighted.add(1.0, 3.0).unwrap();
        weighted.add(2.0, 1.0).unwrap();
        assert_eq!(weighted.value_at(0.5), Some(1.0));
        assert_eq!(weighted.value_at(0.8), Some(2.0));
        assert_eq!(Digest::new(TDIGEST, 100.0).value_at(0.5), None);
    }

    #[test]
    fn large_digests_interpolate() {
        let mut sorted = digest_of((1..=1001).map(f64::from));
        let median = sorted.value_at(0.5).unwrap();
        assert!((median - 501.0).abs() <= 1.0, "{median}");
        assert_eq!(sorted.value_at(0.0), Some(1.0));
        assert_eq!(sorted.value_at(1.0), Some(1001.0));
        assert!(!sorted.exact && sorted.centroids.len() < 100);
        let quantile = sorted.quantile_at(501.0).unwrap();
        assert!((quantile - 0.5).abs() <= 0.01, "{quantile}");
        // The same values in another order.
        let mut shuffled = digest_of((0..1001).map(|i| f64::from((i * 7919) % 1001 + 1)));
        let median = shuffled.value_at(0.5).unwrap();
        assert!((median - 501.0).abs() <= 2.0, "{median}");
    }

    #[test]
    fn merged_parts_and_serialization() -> Result<()> {
        let mut merged = digest_of((1..=1001).filter(|v| v % 2 == 0).map(f64::from));
        merged.merge(&digest_of((1..=1001).filter(|v| v % 2 == 1).map(f64::from)));
        let median = merged.value_at(0.5).unwrap();
        assert!((median - 501.0).abs() <= 2.0, "{median}");
        assert_eq!(merged.value_at(1.0), Some(1001.0));
        let mut sketch = Sketch::Digest(merged);
        let bytes = sketch.encode();
        let Sketch::Digest(mut read) = Sketch::decode(&bytes, Some(TDIGEST))? else {
            panic!("not a digest");
        };
        assert_eq!(read.value_at(0.5), Some(median));
        assert!(Sketch::decode(&bytes, Some(SketchType::QDigest(ValueType::Double))).is_err());
        assert!(Sketch::decode(&bytes[..bytes.len() - 8], None).is_err());
        // A weight of NaN.
        let mut bad = bytes.clone();
        let at = bad.len() - 8;
        bad[at..].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(Sketch::decode(&bad, None).is_err());
        Ok(())
    }

    #[test]
    fn rejects_what_it_cannot_hold() {
        let mut digest = Digest::new(TDIGEST, DEFAULT_COMPRESSION);
        assert!(digest.add(f64::NAN, 1.0).is_err());
        assert!(digest.add(1.0, 0.5).is_err());
        assert!(Digest::compression_for(0.0).is_err());
        assert!(Digest::compression_for(1.0).is_err());
        assert_eq!(Digest::compression_for(0.01).unwrap(), 100.0);
        assert_eq!(Digest::compression_for(0.0001).unwrap(), MAX_COMPRESSION);
    }
}
