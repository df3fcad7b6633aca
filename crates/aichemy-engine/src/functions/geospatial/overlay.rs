//! The point-set operations `st_intersection`, `st_difference`, `st_symdifference` and
//! `st_union`, and the union of many geometries.
//!
//! A geometry is taken apart into its points, lines and polygons. Polygons combine with
//! `geo`'s boolean operations; lines are cut by polygons (`BooleanOps::clip`) and meet other
//! lines at their crossings; points are kept or dropped by whether the other geometry
//! intersects them. The result drops the lines and points covered by its polygons and lines,
//! and is one geometry of the simplest type (a collection when of several dimensions; an
//! empty MULTIPOINT, MULTILINESTRING or MULTIPOLYGON when empty). Lines that overlap along a
//! stretch are only supported by the intersection (the other operations would need to
//! split them): for them the operations fail with INVALID_FUNCTION_ARGUMENT. Lines are not
//! split at their crossings (the point set is the same).

use datafusion::common::Result;
use geo::algorithm::line_intersection::LineIntersection;
use geo::{
    BooleanOps, Coord, CoordsIter, GeometryCollection, Intersects, LineString, MultiLineString,
    MultiPoint, MultiPolygon, Point, Polygon,
};

use super::{crossings, dimension, empty_of, segments, Geometry};
use crate::functions::invalid_argument as invalid;

/// A point-set operation of two geometries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SetOp {
    Intersection,
    Difference,
    SymDifference,
    Union,
}

impl SetOp {
    fn name(self) -> &'static str {
        match self {
            SetOp::Intersection => "ST_Intersection",
            SetOp::Difference => "ST_Difference",
            SetOp::SymDifference => "ST_SymDifference",
            SetOp::Union => "ST_Union",
        }
    }
}

/// A geometry's non-empty points, lines and polygons.
#[derive(Debug, Default)]
struct Pieces {
    points: Vec<Coord<f64>>,
    lines: Vec<LineString<f64>>,
    polygons: Vec<Polygon<f64>>,
}

impl Pieces {
    fn of(geometry: &Geometry) -> Pieces {
        let mut pieces = Pieces::default();
        pieces.add(geometry);
        pieces
    }

    fn add(&mut self, geometry: &Geometry) {
        match geometry {
            Geometry::Point(point) => self.points.push(point.0),
            Geometry::MultiPoint(points) => self.points.extend(points.iter().map(|p| p.0)),
            Geometry::Line(line) => self.lines.push(LineString::new(vec![line.start, line.end])),
            Geometry::LineString(line) => self.add_line(line),
            Geometry::MultiLineString(lines) => lines.iter().for_each(|line| self.add_line(line)),
            Geometry::Polygon(polygon) => self.add_polygon(polygon),
            Geometry::MultiPolygon(polygons) => polygons
                .iter()
                .for_each(|polygon| self.add_polygon(polygon)),
            Geometry::Rect(rect) => self.add_polygon(&rect.to_polygon()),
            Geometry::Triangle(triangle) => self.add_polygon(&triangle.to_polygon()),
            Geometry::GeometryCollection(collection) => {
                collection.iter().for_each(|member| self.add(member))
            }
        }
    }

    fn add_line(&mut self, line: &LineString<f64>) {
        if !line.0.is_empty() {
            self.lines.push(line.clone());
        }
    }

    fn add_polygon(&mut self, polygon: &Polygon<f64>) {
        if !polygon.exterior().0.is_empty() {
            self.polygons.push(polygon.clone());
        }
    }
}

/// The point-set operation `op` of two geometries.
pub(super) fn overlay(op: SetOp, a: &Geometry, b: &Geometry) -> Result<Geometry> {
    for geometry in [a, b] {
        if geometry
            .coords_iter()
            .any(|c| !c.x.is_finite() || !c.y.is_finite())
        {
            return Err(invalid(format!(
                "{}: the geometry has a coordinate that is not finite",
                op.name()
            )));
        }
    }
    let (pa, pb) = (Pieces::of(a), Pieces::of(b));
    let polygons_a = MultiPolygon::new(pa.polygons.clone());
    let polygons_b = MultiPolygon::new(pb.polygons.clone());
    let (meeting_points, shared_lines) = line_meetings(&pa.lines, &pb.lines);
    if op != SetOp::Intersection && !shared_lines.is_empty() {
        return Err(invalid(format!(
            "{} of lines that overlap each other is not supported",
            op.name()
        )));
    }
    let outside = |points: &[Coord<f64>], other: &Geometry| -> Vec<Coord<f64>> {
        let outside = points
            .iter()
            .filter(|c| !other.intersects(&Point::from(**c)));
        outside.copied().collect()
    };
    let mut result = Pieces::default();
    match op {
        SetOp::Intersection => {
            result.polygons = polygon_op(&polygons_a, &polygons_b, op);
            result.lines = clip(&polygons_b, &pa.lines, false);
            result.lines.extend(clip(&polygons_a, &pb.lines, false));
            result.lines.extend(shared_lines);
            result.points = meeting_points;
            let inside = |points: &[Coord<f64>], other: &Geometry| {
                let all = points.iter().copied();
                all.filter(|c| other.intersects(&Point::from(*c)))
                    .collect::<Vec<_>>()
            };
            result.points.extend(inside(&pa.points, b));
            result.points.extend(inside(&pb.points, a));
        }
        SetOp::Difference => {
            result.polygons = polygon_op(&polygons_a, &polygons_b, op);
            result.lines = clip(&polygons_b, &pa.lines, true);
            result.points = outside(&pa.points, b);
        }
        SetOp::SymDifference => {
            result.polygons = polygon_op(&polygons_a, &polygons_b, op);
            result.lines = clip(&polygons_b, &pa.lines, true);
            result.lines.extend(clip(&polygons_a, &pb.lines, true));
            result.points = outside(&pa.points, b);
            result.points.extend(outside(&pb.points, a));
        }
        SetOp::Union => {
            result.polygons = polygon_op(&polygons_a, &polygons_b, op);
            result.lines = [pa.lines, pb.lines].concat();
            result.points = [pa.points, pb.points].concat();
        }
    }
    let empty = match op {
        SetOp::Intersection => dimension(a).min(dimension(b)),
        _ => dimension(a).max(dimension(b)),
    };
    Ok(assemble(result, empty))
}

/// The union of geometries; `None` when there are none.
pub(super) fn union_all<'a>(
    geometries: impl IntoIterator<Item = &'a Geometry>,
) -> Result<Option<Geometry>> {
    let mut union: Option<Geometry> = None;
    for geometry in geometries {
        // The first is unioned with nothing, which dissolves its own overlaps.
        let so_far = union
            .take()
            .unwrap_or_else(|| Geometry::GeometryCollection(GeometryCollection::new_from(vec![])));
        union = Some(overlay(SetOp::Union, &so_far, geometry)?);
    }
    Ok(union)
}

/// A boolean operation of two sets of polygons.
fn polygon_op(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>, op: SetOp) -> Vec<Polygon<f64>> {
    if a.0.is_empty() && b.0.is_empty() {
        return vec![];
    }
    let result = match op {
        SetOp::Intersection => a.intersection(b),
        SetOp::Difference => a.difference(b),
        SetOp::SymDifference => a.xor(b),
        SetOp::Union => a.union(b),
    };
    result.0
}

/// The parts of lines inside polygons, or outside them when `outside`.
fn clip(
    polygons: &MultiPolygon<f64>,
    lines: &[LineString<f64>],
    outside: bool,
) -> Vec<LineString<f64>> {
    if lines.is_empty() {
        return vec![];
    }
    if polygons.0.is_empty() {
        return if outside { lines.to_vec() } else { vec![] };
    }
    let clipped = polygons.clip(&MultiLineString::new(lines.to_vec()), outside);
    clipped
        .0
        .into_iter()
        .filter(|line| line.0.len() > 1)
        .collect()
}

/// Where lines of one set meet lines of another: the points where they cross or touch, and
/// the stretches along which they overlap.
fn line_meetings(
    a: &[LineString<f64>],
    b: &[LineString<f64>],
) -> (Vec<Coord<f64>>, Vec<LineString<f64>>) {
    let (mut points, mut lines) = (Vec::new(), Vec::new());
    if a.is_empty() || b.is_empty() {
        return (points, lines);
    }
    let paths: Vec<&LineString<f64>> = a.iter().chain(b).collect();
    for (s, t, meeting) in crossings(segments(&paths)) {
        if (s.path < a.len()) == (t.path < a.len()) {
            continue;
        }
        match meeting {
            LineIntersection::SinglePoint { intersection, .. } => points.push(intersection),
            LineIntersection::Collinear { intersection } => {
                lines.push(LineString::new(vec![intersection.start, intersection.end]))
            }
        }
    }
    (points, lines)
}

/// The geometry of a result's pieces: lines inside its polygons and points on its lines or
/// polygons dropped, of the simplest type; `empty_dimension` says which empty geometry
/// answers when there is nothing.
fn assemble(pieces: Pieces, empty_dimension: i8) -> Geometry {
    let polygons = MultiPolygon::new(pieces.polygons);
    let lines = clip(&polygons, &pieces.lines, true);
    let covered = |c: &Coord<f64>| {
        let point = Point::from(*c);
        polygons.intersects(&point) || lines.iter().any(|line| line.intersects(&point))
    };
    let mut points: Vec<Coord<f64>> = pieces.points.into_iter().filter(|c| !covered(c)).collect();
    points.sort_by(|p, q| p.x.total_cmp(&q.x).then(p.y.total_cmp(&q.y)));
    points.dedup();
    match (points.len(), lines.len(), polygons.0.len()) {
        (0, 0, 0) => empty_of(empty_dimension),
        (1, 0, 0) => Geometry::Point(Point::from(points[0])),
        (_, 0, 0) => {
            let points = points.into_iter().map(Point::from).collect();
            Geometry::MultiPoint(MultiPoint::new(points))
        }
        (0, 1, 0) => {
            let line = lines.into_iter().next();
            Geometry::LineString(line.unwrap_or_else(|| LineString::new(vec![])))
        }
        (0, _, 0) => Geometry::MultiLineString(MultiLineString::new(lines)),
        (0, 0, 1) => match polygons.0.into_iter().next() {
            Some(polygon) => Geometry::Polygon(polygon),
            None => empty_of(2),
        },
        (0, 0, _) => Geometry::MultiPolygon(polygons),
        _ => {
            let members = points
                .into_iter()
                .map(|c| Geometry::Point(Point::from(c)))
                .chain(lines.into_iter().map(Geometry::LineString))
                .chain(polygons.0.into_iter().map(Geometry::Polygon))
                .collect();
            Geometry::GeometryCollection(GeometryCollection::new_from(members))
        }
    }
}

#[cfg(test)]
mod tests {
    use geo::{Area, Rect};

    use super::*;
    use crate::functions::geospatial::{envelope_polygon, type_name};

    fn square(x: f64, y: f64, size: f64) -> Geometry {
        let rect = Rect::new(
            Coord { x, y },
            Coord {
                x: x + size,
                y: y + size,
            },
        );
        Geometry::Polygon(envelope_polygon(rect))
    }

    fn line(points: &[(f64, f64)]) -> Geometry {
        let coords = points.iter().map(|&(x, y)| Coord { x, y }).collect();
        Geometry::LineString(LineString::new(coords))
    }

    #[test]
    fn polygons() {
        let (a, b) = (square(0.0, 0.0, 2.0), square(1.0, 1.0, 2.0));
        let area = |g: Geometry| g.unsigned_area();
        assert!((area(overlay(SetOp::Intersection, &a, &b).unwrap()) - 1.0).abs() < 1e-9);
        assert!((area(overlay(SetOp::Union, &a, &b).unwrap()) - 7.0).abs() < 1e-9);
        assert!((area(overlay(SetOp::Difference, &a, &b).unwrap()) - 3.0).abs() < 1e-9);
        assert!((area(overlay(SetOp::SymDifference, &a, &b).unwrap()) - 6.0).abs() < 1e-9);
        let apart = overlay(SetOp::Intersection, &a, &square(5.0, 5.0, 1.0)).unwrap();
        assert_eq!(apart, Geometry::MultiPolygon(MultiPolygon::new(vec![])));
    }

    #[test]
    fn lines_and_points() {
        let (up, down) = (
            line(&[(0.0, 0.0), (2.0, 2.0)]),
            line(&[(0.0, 2.0), (2.0, 0.0)]),
        );
        let crossing = overlay(SetOp::Intersection, &up, &down).unwrap();
        assert_eq!(crossing, Geometry::Point(Point::new(1.0, 1.0)));
        let across = line(&[(-1.0, 1.0), (3.0, 1.0)]);
        let inside = overlay(SetOp::Intersection, &across, &square(0.0, 0.0, 2.0)).unwrap();
        assert_eq!(type_name(&inside), "LINE_STRING");
        let point = Geometry::Point(Point::new(1.0, 1.0));
        let union = overlay(SetOp::Union, &point, &square(0.0, 0.0, 2.0)).unwrap();
        assert_eq!(type_name(&union), "POLYGON");
        let (left, right) = (
            line(&[(0.0, 0.0), (2.0, 0.0)]),
            line(&[(1.0, 0.0), (3.0, 0.0)]),
        );
        assert!(overlay(SetOp::Union, &left, &right).is_err());
        assert!(overlay(SetOp::Intersection, &left, &right).is_ok());
    }

    #[test]
    fn union_of_many() {
        let squares = [
            square(0.0, 0.0, 1.0),
            square(1.0, 0.0, 1.0),
            square(5.0, 5.0, 1.0),
        ];
        let union = union_all(squares.iter()).unwrap().unwrap();
        assert!((union.unsigned_area() - 3.0).abs() < 1e-9);
        assert_eq!(type_name(&union), "MULTI_POLYGON");
        assert!(union_all(std::iter::empty()).unwrap().is_none());
    }
}
