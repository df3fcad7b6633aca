//! `geometric_mean`, `kurtosis` and `skewness`, with Trino's formulas.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::{as_float64_array, as_int64_array};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;

use super::args;

/// `geometric_mean`: `exp` of the mean of the natural logarithms, as Trino computes it (a
/// negative value makes it NaN, a zero 0); REAL for a REAL argument, DOUBLE otherwise.
#[derive(Debug)]
pub(super) struct GeometricMeanAccumulator {
    real: bool,
    count: i64,
    sum_of_logs: f64,
}

impl GeometricMeanAccumulator {
    pub(super) fn new(real: bool) -> Self {
        Self {
            real,
            count: 0,
            sum_of_logs: 0.0,
        }
    }
}

impl Accumulator for GeometricMeanAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [values] = args::<1>(values)?;
        let values = cast(values, &DataType::Float64)?;
        for value in as_float64_array(&values)?.iter().flatten() {
            self.count += 1;
            self.sum_of_logs += value.ln();
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts, sums] = args::<2>(states)?;
        let (counts, sums) = (as_int64_array(counts)?, as_float64_array(sums)?);
        for row in 0..counts.len() {
            if counts.is_valid(row) && sums.is_valid(row) {
                self.count += counts.value(row);
                self.sum_of_logs += sums.value(row);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Float64(Some(self.sum_of_logs)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mean = (self.count > 0).then(|| (self.sum_of_logs / self.count as f64).exp());
        Ok(if self.real {
            ScalarValue::Float32(mean.map(|mean| mean as f32))
        } else {
            ScalarValue::Float64(mean)
        })
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// The statistic a [`MomentsAccumulator`] answers.
#[derive(Debug, Clone, Copy)]
pub(super) enum Statistic {
    Kurtosis,
    Skewness,
}

/// A count and the sums of the powers 2 to 4 of the deviations from the mean `m1`, updated
/// and merged with Trino's formulas (`CentralMomentsState`).
#[derive(Debug, Default, Clone, Copy)]
struct Moments {
    count: i64,
    m1: f64,
    m2: f64,
    m3: f64,
    m4: f64,
}

impl Moments {
    fn update(&mut self, value: f64) {
        let Moments {
            count: n1,
            m1,
            m2,
            m3,
            m4,
        } = *self;
        let n = (n1 + 1) as f64;
        let delta = value - m1;
        let delta_n = delta / n;
        let delta_n2 = delta_n * delta_n;
        let dm2 = delta * delta_n * n1 as f64;
        self.count = n1 + 1;
        self.m1 = m1 + delta_n;
        self.m2 = m2 + dm2;
        self.m3 = m3 + dm2 * delta_n * (n - 2.0) - 3.0 * delta_n * m2;
        self.m4 = m4 + dm2 * delta_n2 * (n * n - 3.0 * n + 3.0) + 6.0 * delta_n2 * m2
            - 4.0 * delta_n * m3;
    }

    fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let (a, b) = (*self, *other);
        let n = na + nb;
        let delta = b.m1 - a.m1;
        let delta2 = delta * delta;
        let delta3 = delta * delta2;
        let delta4 = delta2 * delta2;
        self.count = a.count + b.count;
        self.m1 = (na * a.m1 + nb * b.m1) / n;
        self.m2 = a.m2 + b.m2 + delta2 * na * nb / n;
        self.m3 = a.m3
            + b.m3
            + delta3 * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * b.m2 - nb * a.m2) / n;
        self.m4 = a.m4
            + b.m4
            + delta4 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * delta2 * (na * na * b.m2 + nb * nb * a.m2) / (n * n)
            + 4.0 * delta * (na * b.m3 - nb * a.m3) / n;
    }

    /// Trino's `skewness`: the population skewness, √n·m3/m2^1.5; NULL under 3 values.
    fn skewness(&self) -> Option<f64> {
        (self.count >= 3).then(|| (self.count as f64).sqrt() * self.m3 / self.m2.powf(1.5))
    }

    /// Trino's `kurtosis`: the sample excess kurtosis,
    /// (n-1)n(n+1)/((n-2)(n-3))·m4/m2² - 3(n-1)²/((n-2)(n-3)); NULL under 4 values.
    fn kurtosis(&self) -> Option<f64> {
        let n = self.count as f64;
        (self.count >= 4).then(|| {
            ((n - 1.0) * n * (n + 1.0)) / ((n - 2.0) * (n - 3.0)) * self.m4 / (self.m2 * self.m2)
                - 3.0 * ((n - 1.0) * (n - 1.0)) / ((n - 2.0) * (n - 3.0))
        })
    }
}

/// `kurtosis` and `skewness`.
#[derive(Debug)]
pub(super) struct MomentsAccumulator {
    statistic: Statistic,
    moments: Moments,
}

impl MomentsAccumulator {
    pub(super) fn new(statistic: Statistic) -> Self {
        Self {
            statistic,
            moments: Moments::default(),
        }
    }
}

impl Accumulator for MomentsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [values] = args::<1>(values)?;
        let values = cast(values, &DataType::Float64)?;
        for value in as_float64_array(&values)?.iter().flatten() {
            self.moments.update(value);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts, m1, m2, m3, m4] = args::<5>(states)?;
        let counts = as_int64_array(counts)?;
        let (m1, m2) = (as_float64_array(m1)?, as_float64_array(m2)?);
        let (m3, m4) = (as_float64_array(m3)?, as_float64_array(m4)?);
        for row in 0..counts.len() {
            if counts.is_valid(row) {
                self.moments.merge(&Moments {
                    count: counts.value(row),
                    m1: m1.value(row),
                    m2: m2.value(row),
                    m3: m3.value(row),
                    m4: m4.value(row),
                });
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let Moments {
            count,
            m1,
            m2,
            m3,
            m4,
        } = self.moments;
        Ok(vec![
            ScalarValue::Int64(Some(count)),
            ScalarValue::Float64(Some(m1)),
            ScalarValue::Float64(Some(m2)),
            ScalarValue::Float64(Some(m3)),
            ScalarValue::Float64(Some(m4)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(match self.statistic {
            Statistic::Kurtosis => self.moments.kurtosis(),
            Statistic::Skewness => self.moments.skewness(),
        }))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Float32Array;

    use crate::functions::aggregate::test_support::{aggregate, float, float64s};

    use super::*;

    #[test]
    fn geometric_mean_of_doubles_and_reals() -> Result<()> {
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(GeometricMeanAccumulator::new(false)))
        };
        let result = aggregate(
            &new,
            &[
                vec![float64s(&[Some(1.0), Some(2.0)])],
                vec![float64s(&[Some(4.0), None])],
            ],
        )?;
        assert!((float(&result) - 2.0).abs() < 1e-12, "{result:?}");
        assert_eq!(new()?.evaluate()?, ScalarValue::Float64(None));

        let mut real = GeometricMeanAccumulator::new(true);
        let reals: ArrayRef = Arc::new(Float32Array::from(vec![1.0, 2.0, 4.0]));
        real.update_batch(&[reals])?;
        let result = real.evaluate()?;
        assert!(
            matches!(result, ScalarValue::Float32(Some(_))),
            "{result:?}"
        );
        assert!((float(&result) - 2.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn kurtosis_and_skewness_follow_trino() -> Result<()> {
        let values = [1.0, 2.0, 3.0, 4.0, 10.0];
        // Two-pass central moments: mean 4, sums of powers of deviations 50, 180, 1394.
        for (statistic, expected) in [
            (Statistic::Skewness, 5f64.sqrt() * 180.0 / 50f64.powf(1.5)),
            (
                Statistic::Kurtosis,
                120.0 / 6.0 * 1394.0 / 2500.0 - 3.0 * 16.0 / 6.0,
            ),
        ] {
            let new = || -> Result<Box<dyn Accumulator>> {
                Ok(Box::new(MomentsAccumulator::new(statistic)))
            };
            let result = aggregate(
                &new,
                &[
                    vec![float64s(&[Some(values[0]), None, Some(values[1])])],
                    vec![float64s(&[
                        Some(values[2]),
                        Some(values[3]),
                        Some(values[4]),
                    ])],
                ],
            )?;
            assert!((float(&result) - expected).abs() < 1e-9, "{result:?}");
        }

        let mut kurtosis = MomentsAccumulator::new(Statistic::Kurtosis);
        kurtosis.update_batch(&[float64s(&[Some(1.0), Some(2.0), Some(3.0)])])?;
        assert_eq!(kurtosis.evaluate()?, ScalarValue::Float64(None));
        let mut skewness = MomentsAccumulator::new(Statistic::Skewness);
        skewness.update_batch(&[float64s(&[Some(1.0), Some(2.0)])])?;
        assert_eq!(skewness.evaluate()?, ScalarValue::Float64(None));
        skewness.update_batch(&[float64s(&[Some(3.0)])])?;
        assert_eq!(skewness.evaluate()?, ScalarValue::Float64(Some(0.0)));
        Ok(())
    }
}
