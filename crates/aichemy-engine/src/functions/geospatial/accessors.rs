//! Trino's geometry accessors and predicates: `st_boundary`, `st_dimension`, `st_envelope`,
//! `st_envelopeaspts`, `st_exteriorring`, `st_geometries`, `st_geometryn`,
//! `st_interiorringn`, `st_interiorrings`, `st_isclosed`, `st_isempty`, `st_isring`,
//! `st_issimple`, `st_numgeometries`, `st_pointn`, `st_points`, `st_relate` and
//! `geometry_invalid_reason`.

use datafusion::common::Result;
use geo::algorithm::line_intersection::LineIntersection;
use geo::{
    BoundingRect, Coord, CoordsIter, GeometryCollection, HasDimensions, LineString,
    MultiLineString, MultiPoint, Point, Polygon, Relate, Validation,
};

use super::udf::{Arg, GeoFunction, Out, Returns, Row};
use super::{
    crossings, dimension, envelope_polygon, expect_type, members, point, segments, Geometry,
};
use crate::functions::invalid_argument as invalid;

/// The accessor and predicate functions.
pub(super) fn functions() -> Vec<GeoFunction> {
    const WITH_INDEX: &[&[Arg]] = &[&[Arg::Geometry, Arg::Integer]];
    vec![
        GeoFunction::unary("st_boundary", Returns::Geometry, boundary),
        GeoFunction::unary("st_dimension", Returns::TinyInt, |geometry: &Geometry| {
            Ok(Some(Out::TinyInt(dimension(geometry))))
        }),
        GeoFunction::unary("st_envelope", Returns::Geometry, |geometry: &Geometry| {
            let envelope = match geometry.bounding_rect() {
                Some(rect) => envelope_polygon(rect),
                None => Polygon::new(LineString::new(vec![]), vec![]),
            };
            Ok(Some(Out::Geometry(Geometry::Polygon(envelope))))
        }),
        GeoFunction::unary(
            "st_envelopeaspts",
            Returns::Geometries,
            |geometry: &Geometry| {
                Ok(geometry
                    .bounding_rect()
                    .map(|rect| Out::Geometries(vec![point(rect.min()), point(rect.max())])))
            },
        ),
        GeoFunction::unary(
            "st_exteriorring",
            Returns::Geometry,
            |geometry: &Geometry| {
                let polygon = polygon_of("ST_ExteriorRing", geometry)?;
                Ok(polygon.map(|p| Out::Geometry(Geometry::LineString(p.exterior().clone()))))
            },
        ),
        GeoFunction::unary(
            "st_geometries",
            Returns::Geometries,
            |geometry: &Geometry| {
                if geometry.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Out::Geometries(members(geometry))))
            },
        ),
        GeoFunction::new(
            "st_geometryn",
            WITH_INDEX,
            Returns::Geometry,
            |row: &Row<'_>| {
                let (geometry, index) = (row.geometry(0)?, row.integer(1)?);
                if geometry.is_empty() {
                    return Ok(None);
                }
                Ok(nth(members(geometry), index).map(Out::Geometry))
            },
        ),
        GeoFunction::new(
            "st_interiorringn",
            WITH_INDEX,
            Returns::Geometry,
            |row: &Row<'_>| {
                let Some(polygon) = polygon_of("ST_InteriorRingN", row.geometry(0)?)? else {
                    return Ok(None);
                };
                let ring = nth(polygon.interiors().to_vec(), row.integer(1)?);
                Ok(ring.map(|ring| Out::Geometry(Geometry::LineString(ring))))
            },
        ),
        GeoFunction::unary(
            "st_interiorrings",
            Returns::Geometries,
            |geometry: &Geometry| {
                let polygon = polygon_of("ST_InteriorRings", geometry)?;
                Ok(polygon.map(|polygon| {
                    let rings = polygon.interiors().iter().cloned();
                    Out::Geometries(rings.map(Geometry::LineString).collect())
                }))
            },
        ),
        GeoFunction::unary("st_isclosed", Returns::Boolean, |geometry: &Geometry| {
            expect_type(
                "ST_IsClosed",
                geometry,
                &["LINE_STRING", "MULTI_LINE_STRING"],
            )?;
            let closed = match geometry {
                Geometry::LineString(line) => is_closed(line),
                Geometry::MultiLineString(lines) => {
                    !lines.0.is_empty() && lines.iter().all(is_closed)
                }
                _ => false,
            };
            Ok(Some(Out::Boolean(closed)))
        }),
        GeoFunction::unary("st_isempty", Returns::Boolean, |geometry: &Geometry| {
            Ok(Some(Out::Boolean(geometry.is_empty())))
        }),
        GeoFunction::unary("st_isring", Returns::Boolean, |geometry: &Geometry| {
            expect_type("ST_IsRing", geometry, &["LINE_STRING"])?;
            let ring = match geometry {
                Geometry::LineString(line) => is_closed(line) && simple_paths(&[line]),
                _ => false,
            };
            Ok(Some(Out::Boolean(ring)))
        }),
        GeoFunction::unary("st_issimple", Returns::Boolean, |geometry: &Geometry| {
            Ok(Some(Out::Boolean(is_simple(geometry))))
        }),
        GeoFunction::unary(
            "st_numgeometries",
            Returns::Integer,
            |geometry: &Geometry| {
                let count = if geometry.is_empty() {
                    0
                } else {
                    members(geometry).len()
                };
                Ok(Some(Out::Integer(i32::try_from(count).unwrap_or(i32::MAX))))
            },
        ),
        GeoFunction::new(
            "st_pointn",
            WITH_INDEX,
            Returns::Geometry,
            |row: &Row<'_>| {
                let geometry = row.geometry(0)?;
                expect_type("ST_PointN", geometry, &["LINE_STRING"])?;
                let Geometry::LineString(line) = geometry else {
                    return Ok(None);
                };
                Ok(nth(line.0.clone(), row.integer(1)?).map(|c| Out::Geometry(point(c))))
            },
        ),
        GeoFunction::unary("st_points", Returns::Geometries, |geometry: &Geometry| {
            if geometry.is_empty() {
                return Ok(None);
            }
            Ok(Some(Out::Geometries(
                geometry.coords_iter().map(point).collect(),
            )))
        }),
        GeoFunction::new(
            "st_relate",
            &[&[Arg::Geometry, Arg::Geometry, Arg::Text]],
            Returns::Boolean,
            |row: &Row<'_>| {
                let (a, b, pattern) = (row.geometry(0)?, row.geometry(1)?, row.text(2)?);
                let matches = a
                    .relate(b)
                    .matches(pattern)
                    .map_err(|e| invalid(e.to_string()))?;
                Ok(Some(Out::Boolean(matches)))
            },
        ),
        GeoFunction::unary(
            "geometry_invalid_reason",
            Returns::Varchar,
            |geometry: &Geometry| {
                let problem = geometry.check_validation().err();
                Ok(problem.map(|problem| Out::Varchar(problem.to_string())))
            },
        ),
    ]
}

/// The element at a 1-based index; `None` when there is none.
fn nth<T>(elements: Vec<T>, index: i64) -> Option<T> {
    let index = usize::try_from(index).ok()?.checked_sub(1)?;
    elements.into_iter().nth(index)
}

/// The polygon a function of `name` takes (Trino's error for another type); `None` when it is
/// empty.
fn polygon_of<'a>(name: &str, geometry: &'a Geometry) -> Result<Option<&'a Polygon<f64>>> {
    expect_type(name, geometry, &["POLYGON"])?;
    Ok(match geometry {
        Geometry::Polygon(polygon) if !polygon.exterior().0.is_empty() => Some(polygon),
        _ => None,
    })
}

/// Whether a line string is closed: not empty and ending where it starts.
fn is_closed(line: &LineString<f64>) -> bool {
    !line.0.is_empty() && line.0.first() == line.0.last()
}

/// `st_boundary`: the end points of lines (those an odd number of lines end at, in x then y
/// order), the rings of polygons, nothing for points.
fn boundary(geometry: &Geometry) -> Result<Option<Out>> {
    let answer = match geometry {
        Geometry::Point(_) | Geometry::MultiPoint(_) => {
            Geometry::GeometryCollection(GeometryCollection::new_from(vec![]))
        }
        Geometry::LineString(line) => line_ends(std::slice::from_ref(line)),
        Geometry::MultiLineString(lines) => line_ends(&lines.0),
        Geometry::Polygon(polygon) if polygon.interiors().is_empty() => {
            if polygon.exterior().0.is_empty() {
                Geometry::MultiLineString(MultiLineString::new(vec![]))
            } else {
                Geometry::LineString(polygon.exterior().clone())
            }
        }
        Geometry::Polygon(_) | Geometry::MultiPolygon(_) => {
            Geometry::MultiLineString(MultiLineString::new(super::paths(geometry)))
        }
        _ => {
            return Err(invalid(
                "ST_Boundary does not support GEOMETRY_COLLECTION arguments",
            ))
        }
    };
    Ok(Some(Out::Geometry(answer)))
}

/// The boundary of lines: the end points an odd number of open lines end at.
fn line_ends(lines: &[LineString<f64>]) -> Geometry {
    let mut ends: Vec<Coord<f64>> = lines
        .iter()
        .filter(|line| !line.0.is_empty())
        .flat_map(|line| [line.0[0], line.0[line.0.len() - 1]])
        .collect();
    ends.sort_by(|p, q| p.x.total_cmp(&q.x).then(p.y.total_cmp(&q.y)));
    let mut odd = Vec::new();
    for group in ends.chunk_by(|p, q| p == q) {
        if group.len() % 2 == 1 {
            odd.push(Point::from(group[0]));
        }
    }
    Geometry::MultiPoint(MultiPoint::new(odd))
}

/// `st_issimple`: no point repeated in a multipoint; no line crossing or touching itself
/// (but at its closing point), nor lines meeting but at end points of both; polygons with
/// simple rings; collections of simple members.
fn is_simple(geometry: &Geometry) -> bool {
    match geometry {
        Geometry::MultiPoint(points) => {
            let mut coords: Vec<Coord<f64>> = points.iter().map(|p| p.0).collect();
            coords.sort_by(|p, q| p.x.total_cmp(&q.x).then(p.y.total_cmp(&q.y)));
            coords.windows(2).all(|pair| pair[0] != pair[1])
        }
        Geometry::LineString(line) => simple_paths(&[line]),
        Geometry::MultiLineString(lines) => {
            let lines: Vec<&LineString<f64>> = lines.iter().collect();
            simple_paths(&lines)
        }
        Geometry::Polygon(_) | Geometry::MultiPolygon(_) => super::paths(geometry)
            .iter()
            .all(|ring| simple_paths(&[ring])),
        Geometry::GeometryCollection(collection) => collection.iter().all(is_simple),
        _ => true,
    }
}

/// Whether paths are simple: each only meets itself between consecutive segments (and where
/// it closes), and two paths only meet at end points of both that are not closing points.
fn simple_paths(paths: &[&LineString<f64>]) -> bool {
    let segments = segments(paths);
    let mut counts = vec![0_usize; paths.len()];
    for segment in &segments {
        if let Some(count) = counts.get_mut(segment.path) {
            *count += 1;
        }
    }
    let closed: Vec<bool> = paths.iter().map(|path| is_closed(path)).collect();
    let open_end = |path: usize, at: Coord<f64>| {
        let line = &paths[path].0;
        !closed[path] && (line.first() == Some(&at) || line.last() == Some(&at))
    };
    crossings(segments).into_iter().all(|(s, t, meeting)| {
        let (s, t) = if (s.path, s.index) <= (t.path, t.index) {
            (s, t)
        } else {
            (t, s)
        };
        let LineIntersection::SinglePoint { intersection, .. } = meeting else {
            return false;
        };
        if s.path != t.path {
            return open_end(s.path, intersection) && open_end(t.path, intersection);
        }
        let last = counts[s.path].saturating_sub(1);
        t.index == s.index + 1 || (closed[s.path] && s.index == 0 && t.index == last)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: &[(f64, f64)]) -> LineString<f64> {
        LineString::new(points.iter().map(|&(x, y)| Coord { x, y }).collect())
    }

    #[test]
    fn simplicity() {
        assert!(is_simple(&Geometry::LineString(line(&[
            (0.0, 0.0),
            (1.0, 1.0),
            (2.0, 0.0)
        ]))));
        let bow_tie = line(&[(0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0)]);
        assert!(!is_simple(&Geometry::LineString(bow_tie)));
        let ring = line(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]);
        assert!(is_simple(&Geometry::LineString(ring.clone())));
        let back = line(&[(0.0, 0.0), (2.0, 0.0), (1.0, 0.0)]);
        assert!(!is_simple(&Geometry::LineString(back)));
        let touching = MultiLineString::new(vec![
            line(&[(0.0, 0.0), (1.0, 1.0)]),
            line(&[(1.0, 1.0), (2.0, 0.0)]),
        ]);
        assert!(is_simple(&Geometry::MultiLineString(touching)));
        let crossing = MultiLineString::new(vec![
            line(&[(0.0, 0.0), (2.0, 2.0)]),
            line(&[(0.0, 2.0), (2.0, 0.0)]),
        ]);
        assert!(!is_simple(&Geometry::MultiLineString(crossing)));
        let points = MultiPoint::new(vec![Point::new(1.0, 1.0), Point::new(1.0, 1.0)]);
        assert!(!is_simple(&Geometry::MultiPoint(points)));
    }

    #[test]
    fn boundaries() {
        let lines = MultiLineString::new(vec![
            line(&[(1.0, 1.0), (5.0, 1.0)]),
            line(&[(2.0, 4.0), (4.0, 4.0)]),
        ]);
        let ends = boundary(&Geometry::MultiLineString(lines)).unwrap();
        let expected = MultiPoint::new(vec![
            Point::new(1.0, 1.0),
            Point::new(2.0, 4.0),
            Point::new(4.0, 4.0),
            Point::new(5.0, 1.0),
        ]);
        assert!(matches!(ends, Some(Out::Geometry(Geometry::MultiPoint(p))) if p == expected));
        let ring = line(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]);
        let closed = boundary(&Geometry::LineString(ring)).unwrap();
        assert!(matches!(closed, Some(Out::Geometry(Geometry::MultiPoint(p))) if p.0.is_empty()));
    }

    #[test]
    fn indices_are_one_based() {
        assert_eq!(nth(vec![10, 20], 1), Some(10));
        assert_eq!(nth(vec![10, 20], 2), Some(20));
        assert_eq!(nth(vec![10, 20], 0), None);
        assert_eq!(nth(vec![10, 20], 3), None);
        assert_eq!(nth(vec![10, 20], -1), None);
    }
}
