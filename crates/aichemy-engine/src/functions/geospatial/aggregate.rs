//! Trino's geometry aggregates: `convex_hull_agg` (the convex hull of every geometry) and
//! `geometry_union_agg` (their point-set union).
//!
//! The accumulator keeps one geometry, the hull or union of what it has seen, and folds each
//! batch into it; its state is a List of WKB values (that geometry, or none).

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::as_list_array;
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{internal_datafusion_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use geo::{Coord, CoordsIter, HasDimensions, LineString, Point, Polygon};

use super::overlay::union_all;
use super::{geometries, geometry_field, is_geometry, metadata_of, wkb_array, Geometry};
use crate::functions::unexpected_parameters;

/// Registers `convex_hull_agg` and `geometry_union_agg`.
pub(super) fn register(ctx: &SessionContext) {
    for fold in [Fold::ConvexHull, Fold::Union] {
        ctx.register_udaf(AggregateUDF::new_from_impl(GeoAggregate {
            fold,
            signature: Signature::any(1, Volatility::Immutable),
        }));
    }
}

/// How an aggregate folds geometries into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fold {
    ConvexHull,
    Union,
}

impl Fold {
    /// The geometry of `so_far` and more geometries.
    fn fold(self, so_far: Option<Geometry>, more: Vec<Geometry>) -> Result<Option<Geometry>> {
        let all = so_far.into_iter().chain(more);
        match self {
            Fold::ConvexHull => Ok(convex_hull(
                all.flat_map(|g| g.coords_iter().collect::<Vec<_>>()),
            )),
            Fold::Union => union_all(all.collect::<Vec<_>>().iter()),
        }
    }
}

/// A geometry aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
struct GeoAggregate {
    fold: Fold,
    signature: Signature,
}

impl AggregateUDFImpl for GeoAggregate {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        match self.fold {
            Fold::ConvexHull => "convex_hull_agg",
            Fold::Union => "geometry_union_agg",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        match arg_fields {
            [field] if is_geometry(field) => {
                Ok(Arc::new(geometry_field(self.name(), metadata_of(field))))
            }
            _ => {
                let types: Vec<DataType> =
                    arg_fields.iter().map(|f| f.data_type().clone()).collect();
                unexpected_parameters(self.name(), &types, &format!("{}(Geometry)", self.name()))
            }
        }
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let field = acc_args
            .expr_fields
            .first()
            .cloned()
            .ok_or_else(|| internal_datafusion_err!("{} takes one argument", self.name()))?;
        Ok(Box::new(GeoAccumulator {
            fold: self.fold,
            field,
            geometry: None,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(DataType::Binary, true);
        let name = format_state_name(args.name, "geometries");
        Ok(vec![Arc::new(Field::new_list(name, item, true))])
    }
}

/// The geometry an aggregate has folded so far.
#[derive(Debug)]
struct GeoAccumulator {
    fold: Fold,
    /// The argument's field, which says how to read its geometries.
    field: FieldRef,
    geometry: Option<Geometry>,
}

impl GeoAccumulator {
    fn absorb(&mut self, more: Vec<Geometry>) -> Result<()> {
        let more: Vec<Geometry> = more.into_iter().filter(|g| !g.is_empty()).collect();
        if !more.is_empty() {
            self.geometry = self.fold.fold(self.geometry.take(), more)?;
        }
        Ok(())
    }
}

impl Accumulator for GeoAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = values
            .first()
            .ok_or_else(|| internal_datafusion_err!("A geometry aggregate takes one argument"))?;
        let read = geometries(values, &self.field)?;
        self.absorb(read.into_iter().flatten().collect())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let states = states
            .first()
            .ok_or_else(|| internal_datafusion_err!("A geometry aggregate has one state"))?;
        let lists = as_list_array(states)?;
        let wkb = Field::new("", DataType::Binary, true);
        let mut more = Vec::new();
        for row in 0..lists.len() {
            if lists.is_valid(row) {
                more.extend(geometries(&lists.value(row), &wkb)?.into_iter().flatten());
            }
        }
        self.absorb(more)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = wkb_array(self.geometry.iter().map(Some))?;
        Ok(vec![
            SingleRowListArrayBuilder::new(values).build_list_scalar()
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let values = wkb_array(std::iter::once(self.geometry.as_ref()))?;
        ScalarValue::try_from_array(&values, 0)
    }

    fn size(&self) -> usize {
        let coords = self.geometry.as_ref().map_or(0, |g| g.coords_count());
        size_of::<Self>() + coords * size_of::<Coord<f64>>()
    }
}

/// The convex hull of points: a point, a line between the two extreme points of collinear
/// points, else the counter-clockwise polygon of the hull (Andrew's monotone chain); `None`
/// for no points.
fn convex_hull(points: impl IntoIterator<Item = Coord<f64>>) -> Option<Geometry> {
    let mut points: Vec<Coord<f64>> = points.into_iter().collect();
    points.sort_by(|p, q| p.x.total_cmp(&q.x).then(p.y.total_cmp(&q.y)));
    points.dedup();
    let cross = |o: Coord<f64>, a: Coord<f64>, b: Coord<f64>| {
        (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
    };
    // One chain: each point turns left of the last two, or they go.
    let chain = |points: &mut dyn Iterator<Item = Coord<f64>>| {
        let mut chain: Vec<Coord<f64>> = Vec::new();
        for p in points {
            while chain.len() >= 2
                && cross(chain[chain.len() - 2], chain[chain.len() - 1], p) <= 0.0
            {
                chain.pop();
            }
            chain.push(p);
        }
        chain
    };
    match points.as_slice() {
        [] => None,
        [only] => Some(Geometry::Point(Point::from(*only))),
        [first, .., last] => {
            let (first, last) = (*first, *last);
            let mut lower = chain(&mut points.iter().copied());
            let mut upper = chain(&mut points.iter().rev().copied());
            lower.pop();
            upper.pop();
            let hull: Vec<Coord<f64>> = lower.into_iter().chain(upper).collect();
            if hull.len() < 3 {
                return Some(Geometry::LineString(LineString::new(vec![first, last])));
            }
            Some(Geometry::Polygon(Polygon::new(
                LineString::new(hull),
                vec![],
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coords(points: &[(f64, f64)]) -> Vec<Coord<f64>> {
        points.iter().map(|&(x, y)| Coord { x, y }).collect()
    }

    #[test]
    fn hulls() {
        assert_eq!(convex_hull(vec![]), None);
        let one = convex_hull(coords(&[(1.0, 1.0), (1.0, 1.0)]));
        assert_eq!(one, Some(Geometry::Point(Point::new(1.0, 1.0))));
        let line = convex_hull(coords(&[(0.0, 0.0), (2.0, 2.0), (1.0, 1.0)]));
        let expected = LineString::new(coords(&[(0.0, 0.0), (2.0, 2.0)]));
        assert_eq!(line, Some(Geometry::LineString(expected)));
        let square = convex_hull(coords(&[
            (0.0, 0.0),
            (2.0, 0.0),
            (2.0, 2.0),
            (0.0, 2.0),
            (1.0, 1.0),
        ]));
        let ring = coords(&[(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0), (0.0, 0.0)]);
        assert_eq!(
            square,
            Some(Geometry::Polygon(Polygon::new(
                LineString::new(ring),
                vec![]
            )))
        );
    }
}
