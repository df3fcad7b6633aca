//! Trino's geometry operations: the point-set operations (see [`super::overlay`]),
//! `st_buffer`, `simplify_geometry`, `line_interpolate_point(s)`, `line_locate_point` and
//! `geometry_nearest_points`.

use datafusion::common::Result;
use geo::algorithm::line_intersection::{line_intersection, LineIntersection};
use geo::{
    Buffer, Closest, ClosestPoint, Coord, CoordsIter, HasDimensions, LineString, MultiPolygon,
    Point, Polygon, Simplify, Validation,
};

use super::overlay::{overlay, union_all, SetOp};
use super::udf::{Arg, GeoFunction, Out, Returns, Row};
use super::{distance, expect_type, paths, point, segments, type_name, Geometry};
use crate::functions::invalid_argument as invalid;

/// The geometry operations.
pub(super) fn functions() -> Vec<GeoFunction> {
    const TWO: &[&[Arg]] = &[&[Arg::Geometry, Arg::Geometry]];
    const WITH_NUMBER: &[&[Arg]] = &[&[Arg::Geometry, Arg::Double]];
    vec![
        GeoFunction::new(
            "st_intersection",
            TWO,
            Returns::Geometry,
            |row: &Row<'_>| set_op(row, SetOp::Intersection),
        ),
        GeoFunction::new("st_difference", TWO, Returns::Geometry, |row: &Row<'_>| {
            set_op(row, SetOp::Difference)
        }),
        GeoFunction::new(
            "st_symdifference",
            TWO,
            Returns::Geometry,
            |row: &Row<'_>| set_op(row, SetOp::SymDifference),
        ),
        GeoFunction::new("st_union", TWO, Returns::Geometry, |row: &Row<'_>| {
            set_op(row, SetOp::Union)
        }),
        GeoFunction::new(
            "geometry_union",
            &[&[Arg::Geometries]],
            Returns::Geometry,
            |row: &Row<'_>| Ok(union_all(row.geometries(0)?.iter().flatten())?.map(Out::Geometry)),
        ),
        GeoFunction::new("st_buffer", WITH_NUMBER, Returns::Geometry, buffer),
        GeoFunction::new(
            "simplify_geometry",
            WITH_NUMBER,
            Returns::Geometry,
            simplify,
        ),
        GeoFunction::new(
            "line_interpolate_point",
            WITH_NUMBER,
            Returns::Geometry,
            |row: &Row<'_>| {
                let first = interpolate(row, false)?.and_then(|points| points.into_iter().next());
                Ok(first.map(|coord| Out::Geometry(point(coord))))
            },
        ),
        GeoFunction::new(
            "line_interpolate_points",
            WITH_NUMBER,
            Returns::Geometries,
            |row: &Row<'_>| {
                let points = interpolate(row, true)?;
                Ok(points.map(|points| Out::Geometries(points.into_iter().map(point).collect())))
            },
        ),
        GeoFunction::new("line_locate_point", TWO, Returns::Double, locate),
        GeoFunction::new(
            "geometry_nearest_points",
            TWO,
            Returns::Geometries,
            |row: &Row<'_>| {
                let nearest = nearest_points(row.geometry(0)?, row.geometry(1)?);
                Ok(nearest.map(|(a, b)| Out::Geometries(vec![point(a), point(b)])))
            },
        ),
    ]
}

fn set_op(row: &Row<'_>, op: SetOp) -> Result<Option<Out>> {
    let result = overlay(op, row.geometry(0)?, row.geometry(1)?)?;
    Ok(Some(Out::Geometry(result)))
}

/// `st_buffer(geometry, distance)`: the polygon of the points within `distance`; the geometry
/// itself for 0, NULL for an empty geometry.
fn buffer(row: &Row<'_>) -> Result<Option<Out>> {
    let (geometry, distance) = (row.geometry(0)?, row.double(1)?);
    if distance.is_nan() {
        return Err(invalid("distance is NaN"));
    }
    if distance < 0.0 {
        return Err(invalid("distance is negative"));
    }
    if distance == 0.0 {
        return Ok(Some(Out::Geometry(geometry.clone())));
    }
    if geometry.is_empty() {
        return Ok(None);
    }
    let finite = geometry
        .coords_iter()
        .all(|c| c.x.is_finite() && c.y.is_finite());
    if !distance.is_finite() || !finite {
        return Err(invalid(
            "ST_Buffer only takes finite distances and coordinates",
        ));
    }
    Ok(Some(Out::Geometry(polygonal(geometry.buffer(distance)))))
}

/// Polygons as one geometry: a POLYGON when there is one.
fn polygonal(polygons: MultiPolygon<f64>) -> Geometry {
    if polygons.0.len() == 1 {
        if let Some(polygon) = polygons.0.into_iter().next() {
            return Geometry::Polygon(polygon);
        }
        return Geometry::MultiPolygon(MultiPolygon::new(vec![]));
    }
    Geometry::MultiPolygon(polygons)
}

/// `simplify_geometry(geometry, tolerance)`: Douglas-Peucker simplification that keeps
/// polygons valid (a polygon whose simplification is invalid is simplified with half the
/// tolerance, up to 10 times, else kept).
fn simplify(row: &Row<'_>) -> Result<Option<Out>> {
    let (geometry, tolerance) = (row.geometry(0)?, row.double(1)?);
    if tolerance.is_nan() {
        return Err(invalid("distanceTolerance is NaN"));
    }
    if tolerance < 0.0 {
        return Err(invalid("distanceTolerance is negative"));
    }
    Ok(Some(Out::Geometry(simplified(geometry, tolerance))))
}

fn simplified(geometry: &Geometry, tolerance: f64) -> Geometry {
    if tolerance == 0.0 {
        return geometry.clone();
    }
    match geometry {
        Geometry::LineString(line) => Geometry::LineString(line.simplify(tolerance)),
        Geometry::MultiLineString(lines) => Geometry::MultiLineString(lines.simplify(tolerance)),
        Geometry::Polygon(polygon) => Geometry::Polygon(valid_simplification(
            polygon,
            tolerance,
            |p: &Polygon<f64>, t: f64| p.simplify(t),
        )),
        Geometry::MultiPolygon(polygons) => Geometry::MultiPolygon(valid_simplification(
            polygons,
            tolerance,
            |p: &MultiPolygon<f64>, t: f64| p.simplify(t),
        )),
        Geometry::GeometryCollection(collection) => {
            let members = collection
                .iter()
                .map(|m| simplified(m, tolerance))
                .collect();
            Geometry::GeometryCollection(geo::GeometryCollection::new_from(members))
        }
        other => other.clone(),
    }
}

/// The simplification of a polygonal geometry with the largest of `tolerance`, its halves
/// (10 of them) and 0 that leaves it valid.
fn valid_simplification<G: Validation + Clone>(
    geometry: &G,
    tolerance: f64,
    simplify: fn(&G, f64) -> G,
) -> G {
    let mut tolerance = tolerance;
    for _ in 0..10 {
        let candidate = simplify(geometry, tolerance);
        if candidate.is_valid() {
            return candidate;
        }
        tolerance /= 2.0;
    }
    geometry.clone()
}

/// The most points `line_interpolate_points` answers.
const MAX_POINTS: usize = 10_000_000;

/// The points of `line_interpolate_point(s)`: at the fraction of the line's length, and for
/// `repeated` at each multiple of it up to the whole line (the last point when rounding
/// leaves one short). `None` for an empty line.
fn interpolate(row: &Row<'_>, repeated: bool) -> Result<Option<Vec<Coord<f64>>>> {
    let (geometry, fraction) = (row.geometry(0)?, row.double(1)?);
    expect_type("line_interpolate_point", geometry, &["LINE_STRING"])?;
    if !(0.0..=1.0).contains(&fraction) {
        return Err(invalid("fraction must be between 0 and 1"));
    }
    let Geometry::LineString(line) = geometry else {
        return Ok(None);
    };
    let coords = &line.0;
    let (Some(&first), Some(&last)) = (coords.first(), coords.last()) else {
        return Ok(None);
    };
    if fraction == 0.0 {
        return Ok(Some(vec![first]));
    }
    if fraction == 1.0 {
        return Ok(Some(vec![last]));
    }
    let wanted = if repeated {
        (1.0 / fraction).floor()
    } else {
        1.0
    };
    if wanted > MAX_POINTS as f64 {
        return Err(invalid(format!(
            "line_interpolate_points answers at most {MAX_POINTS} points; the fraction is too small"
        )));
    }
    let wanted = wanted as usize;
    let length: f64 = coords.windows(2).map(|w| distance(w[0], w[1])).sum();
    let mut points = Vec::new();
    let (mut next, mut consumed) = (fraction, 0.0);
    for pair in coords.windows(2) {
        if points.len() >= wanted {
            break;
        }
        let share = distance(pair[0], pair[1]) / length;
        while next < consumed + share && points.len() < wanted {
            let t = (next - consumed) / share;
            points.push(Coord {
                x: pair[0].x + (pair[1].x - pair[0].x) * t,
                y: pair[0].y + (pair[1].y - pair[0].y) * t,
            });
            next += fraction;
        }
        consumed += share;
    }
    if points.len() < wanted {
        points.push(last);
    }
    Ok(Some(points))
}

/// `line_locate_point(line, point)`: where the point of the line nearest the point is, as a
/// fraction of the line's length; NULL when either is empty.
fn locate(row: &Row<'_>) -> Result<Option<Out>> {
    let (line, target) = (row.geometry(0)?, row.geometry(1)?);
    if line.is_empty() || target.is_empty() {
        return Ok(None);
    }
    if !matches!(line, Geometry::LineString(_) | Geometry::MultiLineString(_)) {
        return Err(invalid(format!(
            "First argument to line_locate_point must be a LineString or a MultiLineString. \
             Got: {}",
            type_name(line)
        )));
    }
    let Geometry::Point(target) = target else {
        return Err(invalid(format!(
            "Second argument to line_locate_point must be a Point. Got: {}",
            type_name(target)
        )));
    };
    let paths = paths(line);
    let path_refs: Vec<&LineString<f64>> = paths.iter().collect();
    let (mut along, mut best, mut best_distance, mut total) = (0.0, 0.0, f64::INFINITY, 0.0);
    // Segments in order along the line, with the length before each.
    for segment in segments(&path_refs) {
        let (start, end) = (segment.line.start, segment.line.end);
        let length = distance(start, end);
        let (dx, dy) = (end.x - start.x, end.y - start.y);
        let t = (((target.x() - start.x) * dx + (target.y() - start.y) * dy) / (length * length))
            .clamp(0.0, 1.0);
        let nearest = Coord {
            x: start.x + dx * t,
            y: start.y + dy * t,
        };
        let gap = distance(nearest, target.0);
        if gap < best_distance {
            (best, best_distance) = (along + t * length, gap);
        }
        along += length;
        total += length;
    }
    Ok(Some(Out::Double(best / total)))
}

/// The nearest points of two geometries: one on each; `None` when either is empty.
fn nearest_points(a: &Geometry, b: &Geometry) -> Option<(Coord<f64>, Coord<f64>)> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let closest =
        |geometry: &Geometry, to: Coord<f64>| match geometry.closest_point(&Point::from(to)) {
            Closest::Intersection(p) | Closest::SinglePoint(p) => Some(p.0),
            Closest::Indeterminate => None,
        };
    let mut best: Option<(f64, Coord<f64>, Coord<f64>)> = None;
    // Two geometries apart are nearest at a vertex of one of them.
    for vertex in a.coords_iter() {
        if let Some(on_b) = closest(b, vertex) {
            keep_nearer(&mut best, vertex, on_b);
        }
    }
    for vertex in b.coords_iter() {
        if let Some(on_a) = closest(a, vertex) {
            keep_nearer(&mut best, on_a, vertex);
        }
    }
    // Crossing edges meet away from the vertices.
    if best.is_none_or(|(least, _, _)| least > 0.0) {
        let (paths_a, paths_b) = (paths(a), paths(b));
        let edges = |paths: &[LineString<f64>]| -> Vec<geo::Line<f64>> {
            paths.iter().flat_map(|path| path.lines()).collect()
        };
        let (edges_a, edges_b) = (edges(&paths_a), edges(&paths_b));
        'search: for edge_a in &edges_a {
            for edge_b in &edges_b {
                let meeting = match line_intersection(*edge_a, *edge_b) {
                    Some(LineIntersection::SinglePoint { intersection, .. }) => intersection,
                    Some(LineIntersection::Collinear { intersection }) => intersection.start,
                    None => continue,
                };
                keep_nearer(&mut best, meeting, meeting);
                break 'search;
            }
        }
    }
    best.map(|(_, on_a, on_b)| (on_a, on_b))
}

/// Keeps the pair of points `(on_a, on_b)` in `best` when they are nearer than its pair.
fn keep_nearer(
    best: &mut Option<(f64, Coord<f64>, Coord<f64>)>,
    on_a: Coord<f64>,
    on_b: Coord<f64>,
) {
    let gap = distance(on_a, on_b);
    if best.is_none_or(|(least, _, _)| gap < least) {
        *best = Some((gap, on_a, on_b));
    }
}

#[cfg(test)]
mod tests {
    use geo::MultiLineString;

    use super::*;

    fn line(points: &[(f64, f64)]) -> Geometry {
        let coords = points.iter().map(|&(x, y)| Coord { x, y }).collect();
        Geometry::LineString(LineString::new(coords))
    }

    #[test]
    fn nearest_points_of_crossing_and_apart_lines() {
        let (a, b) = (
            line(&[(0.0, 0.0), (2.0, 2.0)]),
            line(&[(0.0, 2.0), (2.0, 0.0)]),
        );
        let (on_a, on_b) = nearest_points(&a, &b).unwrap();
        assert_eq!(
            (on_a, on_b),
            (Coord { x: 1.0, y: 1.0 }, Coord { x: 1.0, y: 1.0 })
        );
        let c = line(&[(0.0, 5.0), (2.0, 5.0)]);
        let (on_a, on_c) = nearest_points(&a, &c).unwrap();
        assert_eq!(
            (on_a, on_c),
            (Coord { x: 2.0, y: 2.0 }, Coord { x: 2.0, y: 5.0 })
        );
        let empty = Geometry::MultiLineString(MultiLineString::new(vec![]));
        assert!(nearest_points(&a, &empty).is_none());
    }

    #[test]
    fn polygonal_collapses_one_polygon() {
        let square = Polygon::new(
            LineString::new(vec![
                Coord { x: 0.0, y: 0.0 },
                Coord { x: 1.0, y: 0.0 },
                Coord { x: 1.0, y: 1.0 },
                Coord { x: 0.0, y: 0.0 },
            ]),
            vec![],
        );
        assert_eq!(
            type_name(&polygonal(MultiPolygon::new(vec![square]))),
            "POLYGON"
        );
        assert_eq!(
            type_name(&polygonal(MultiPolygon::new(vec![]))),
            "MULTI_POLYGON"
        );
    }
}
