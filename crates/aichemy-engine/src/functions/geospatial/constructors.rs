//! Trino's geometry constructors and encodings: `st_linefromtext`, `st_polygon`,
//! `st_geomfrombinary`, `st_linestring`, `st_multipoint`, `to_geometry`,
//! `to_spherical_geography`, GeoJSON (`from_geojson_geometry`, `to_geojson_geometry`) and
//! Google's encoded polylines (`from_encoded_polyline`, `to_encoded_polyline`).

use datafusion::common::Result;
use geo::{Coord, CoordsIter, GeometryCollection, LineString, MultiLineString, MultiPoint};
use geo::{MultiPolygon, Point, Polygon};
use serde_json::{json, Value};

use super::udf::{Arg, GeoFunction, Out, Returns, Row};
use super::{expect_type, type_name, Geometry};
use crate::functions::invalid_argument as invalid;

/// The constructor and encoding functions.
pub(super) fn functions() -> Vec<GeoFunction> {
    vec![
        GeoFunction::new(
            "st_linefromtext",
            &[&[Arg::Wkt]],
            Returns::Geometry,
            |row: &Row<'_>| of_type("ST_LineFromText", row.geometry(0)?, "LINE_STRING"),
        ),
        GeoFunction::new(
            "st_polygon",
            &[&[Arg::Wkt]],
            Returns::Geometry,
            |row: &Row<'_>| of_type("ST_Polygon", row.geometry(0)?, "POLYGON"),
        ),
        GeoFunction::new(
            "st_geomfrombinary",
            &[&[Arg::Wkb]],
            Returns::Geometry,
            |row: &Row<'_>| Ok(Some(Out::Geometry(row.geometry(0)?.clone()))),
        ),
        GeoFunction::new(
            "st_linestring",
            &[&[Arg::Geometries]],
            Returns::Geometry,
            |row: &Row<'_>| {
                let points = points_of("ST_LineString", row.geometries(0)?, true)?;
                let coords = if points.len() < 2 { vec![] } else { points };
                Ok(Some(Out::Geometry(Geometry::LineString(LineString::new(
                    coords,
                )))))
            },
        ),
        GeoFunction::new(
            "st_multipoint",
            &[&[Arg::Geometries]],
            Returns::Geometry,
            |row: &Row<'_>| {
                let points = points_of("ST_MultiPoint", row.geometries(0)?, false)?;
                if points.is_empty() {
                    return Ok(None);
                }
                let points = points.into_iter().map(Point::from).collect();
                Ok(Some(Out::Geometry(Geometry::MultiPoint(MultiPoint::new(
                    points,
                )))))
            },
        ),
        // A plain geometry again: its field no longer names SphericalGeography.
        GeoFunction::unary("to_geometry", Returns::Geometry, |geometry: &Geometry| {
            Ok(Some(Out::Geometry(geometry.clone())))
        }),
        // The geometry, in a field naming SphericalGeography (see `spherical`).
        GeoFunction::unary(
            "to_spherical_geography",
            Returns::Geography,
            |geometry: &Geometry| {
                check_geographic(geometry)?;
                Ok(Some(Out::Geometry(geometry.clone())))
            },
        ),
        GeoFunction::new(
            "from_geojson_geometry",
            &[&[Arg::Text]],
            Returns::Geometry,
            |row: &Row<'_>| Ok(Some(Out::Geometry(from_geojson(row.text(0)?)?))),
        ),
        GeoFunction::unary(
            "to_geojson_geometry",
            Returns::Varchar,
            |geometry: &Geometry| Ok(Some(Out::Varchar(to_geojson(geometry)))),
        ),
        GeoFunction::new(
            "from_encoded_polyline",
            &[&[Arg::Text]],
            Returns::Geometry,
            |row: &Row<'_>| {
                let coords = decode_polyline(row.text(0)?)?;
                Ok(Some(Out::Geometry(Geometry::LineString(LineString::new(
                    coords,
                )))))
            },
        ),
        GeoFunction::unary(
            "to_encoded_polyline",
            Returns::Varchar,
            |geometry: &Geometry| {
                expect_type("encode_polyline", geometry, &["LINE_STRING", "MULTI_POINT"])?;
                Ok(Some(Out::Varchar(encode_polyline(geometry.coords_iter()))))
            },
        ),
    ]
}

/// The geometry when it is of type `expected`, else Trino's error of `function`.
fn of_type(function: &str, geometry: &Geometry, expected: &str) -> Result<Option<Out>> {
    expect_type(function, geometry, &[expected])?;
    Ok(Some(Out::Geometry(geometry.clone())))
}

/// The coordinates of an array of points, with Trino's errors of `function` for a NULL
/// element, another geometry, an empty point or (for a line) a repeated point.
fn points_of(function: &str, elements: &[Option<Geometry>], line: bool) -> Result<Vec<Coord<f64>>> {
    let mut coords: Vec<Coord<f64>> = Vec::with_capacity(elements.len());
    for (i, element) in elements.iter().enumerate() {
        let index = i + 1;
        let coord = match element {
            None => {
                return Err(invalid(format!(
                    "Invalid input to {function}: null at index {index}"
                )))
            }
            Some(Geometry::Point(point)) => point.0,
            Some(Geometry::MultiPoint(points)) if points.0.is_empty() => {
                return Err(invalid(format!(
                    "Invalid input to {function}: empty point at index {index}"
                )))
            }
            Some(other) if line => {
                return Err(invalid(format!(
                    "{function} takes only an array of valid points, {} was passed",
                    type_name(other)
                )))
            }
            Some(other) => {
                return Err(invalid(format!(
                    "Invalid input to {function}: geometry is not a point: {} at index {index}",
                    type_name(other)
                )))
            }
        };
        if line && coords.last() == Some(&coord) {
            return Err(invalid(format!(
                "Invalid input to {function}: consecutive duplicate points at index {index}"
            )));
        }
        coords.push(coord);
    }
    Ok(coords)
}

/// Trino's check that a geometry's coordinates are longitudes and latitudes.
fn check_geographic(geometry: &Geometry) -> Result<()> {
    for coord in geometry.coords_iter() {
        if !(-90.0..=90.0).contains(&coord.y) {
            return Err(invalid("Latitude must be between -90 and 90"));
        }
        if !(-180.0..=180.0).contains(&coord.x) {
            return Err(invalid("Longitude must be between -180 and 180"));
        }
    }
    Ok(())
}

/// A GeoJSON geometry object as a geometry.
pub(super) fn from_geojson(text: &str) -> Result<Geometry> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("Invalid GeoJSON: {e}")))?;
    geojson_geometry(&value)
}

fn geojson_error(detail: &str) -> datafusion::error::DataFusionError {
    invalid(format!("Invalid GeoJSON: {detail}"))
}

fn geojson_geometry(value: &Value) -> Result<Geometry> {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| geojson_error("missing type"))?;
    if kind == "GeometryCollection" {
        let members = value
            .get("geometries")
            .and_then(Value::as_array)
            .ok_or_else(|| geojson_error("missing geometries"))?;
        let members = members
            .iter()
            .map(geojson_geometry)
            .collect::<Result<Vec<_>>>()?;
        return Ok(Geometry::GeometryCollection(GeometryCollection::new_from(
            members,
        )));
    }
    let coordinates = value
        .get("coordinates")
        .ok_or_else(|| geojson_error("missing coordinates"))?;
    Ok(match kind {
        "Point" => match coordinates.as_array().map(Vec::is_empty) {
            Some(true) => Geometry::MultiPoint(MultiPoint::new(vec![])),
            _ => Geometry::Point(Point::from(position(coordinates)?)),
        },
        "MultiPoint" => {
            let points = positions(coordinates)?
                .into_iter()
                .map(Point::from)
                .collect();
            Geometry::MultiPoint(MultiPoint::new(points))
        }
        "LineString" => Geometry::LineString(LineString::new(positions(coordinates)?)),
        "MultiLineString" => {
            let lines = nested(coordinates, |line| Ok(LineString::new(positions(line)?)))?;
            Geometry::MultiLineString(MultiLineString::new(lines))
        }
        "Polygon" => Geometry::Polygon(polygon(coordinates)?),
        "MultiPolygon" => Geometry::MultiPolygon(MultiPolygon::new(nested(coordinates, polygon)?)),
        other => return Err(geojson_error(&format!("unknown geometry type {other}"))),
    })
}

/// The members of a JSON array, each read by `read`.
fn nested<T>(value: &Value, read: impl Fn(&Value) -> Result<T>) -> Result<Vec<T>> {
    value
        .as_array()
        .ok_or_else(|| geojson_error("coordinates must be an array"))?
        .iter()
        .map(read)
        .collect()
}

/// A GeoJSON position: `[x, y, ...]`.
fn position(value: &Value) -> Result<Coord<f64>> {
    let numbers = value.as_array().map(|a| a.as_slice()).unwrap_or(&[]);
    match numbers {
        [x, y, ..] => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => Ok(Coord { x, y }),
            _ => Err(geojson_error("a position must hold numbers")),
        },
        _ => Err(geojson_error("a position must have at least 2 numbers")),
    }
}

fn positions(value: &Value) -> Result<Vec<Coord<f64>>> {
    nested(value, position)
}

/// A GeoJSON polygon: its exterior ring, then its holes.
fn polygon(value: &Value) -> Result<Polygon<f64>> {
    let mut rings = nested(value, |ring| Ok(LineString::new(positions(ring)?)))?.into_iter();
    let exterior = rings.next().unwrap_or_else(|| LineString::new(vec![]));
    Ok(Polygon::new(exterior, rings.collect()))
}

/// A geometry as a GeoJSON geometry object, `type` first as Trino writes it (serde_json's
/// maps would sort the keys, so the object is written here).
pub(super) fn to_geojson(geometry: &Geometry) -> String {
    fn xy(coord: &Coord<f64>) -> Value {
        json!([coord.x, coord.y])
    }
    fn line(line: &LineString<f64>) -> Value {
        Value::Array(line.0.iter().map(xy).collect())
    }
    fn rings(polygon: &Polygon<f64>) -> Value {
        if polygon.exterior().0.is_empty() {
            return json!([]);
        }
        let rings = std::iter::once(polygon.exterior()).chain(polygon.interiors());
        Value::Array(rings.map(line).collect())
    }
    let (kind, coordinates) = match geometry {
        Geometry::Point(point) => ("Point", xy(&point.0)),
        Geometry::MultiPoint(points) => (
            "MultiPoint",
            Value::Array(points.iter().map(|p| xy(&p.0)).collect()),
        ),
        Geometry::LineString(linestring) => ("LineString", line(linestring)),
        Geometry::Line(segment) => ("LineString", json!([xy(&segment.start), xy(&segment.end)])),
        Geometry::MultiLineString(lines) => (
            "MultiLineString",
            Value::Array(lines.iter().map(line).collect()),
        ),
        Geometry::Polygon(polygon) => ("Polygon", rings(polygon)),
        Geometry::Rect(rect) => ("Polygon", rings(&rect.to_polygon())),
        Geometry::Triangle(triangle) => ("Polygon", rings(&triangle.to_polygon())),
        Geometry::MultiPolygon(polygons) => (
            "MultiPolygon",
            Value::Array(polygons.iter().map(rings).collect()),
        ),
        Geometry::GeometryCollection(collection) => {
            let members: Vec<String> = collection.iter().map(to_geojson).collect();
            return format!(
                "{{\"type\":\"GeometryCollection\",\"geometries\":[{}]}}",
                members.join(",")
            );
        }
    };
    format!("{{\"type\":\"{kind}\",\"coordinates\":{coordinates}}}")
}

/// Google's encoded polyline of coordinates (x longitude, y latitude), 5 decimal places.
pub(super) fn encode_polyline(coords: impl Iterator<Item = Coord<f64>>) -> String {
    let mut encoded = String::new();
    let (mut previous_latitude, mut previous_longitude) = (0_i64, 0_i64);
    for coord in coords {
        // Java's Math.round, as Trino: halves go up.
        let latitude = (coord.y * 1e5 + 0.5).floor() as i64;
        let longitude = (coord.x * 1e5 + 0.5).floor() as i64;
        encode_delta(latitude.wrapping_sub(previous_latitude), &mut encoded);
        encode_delta(longitude.wrapping_sub(previous_longitude), &mut encoded);
        (previous_latitude, previous_longitude) = (latitude, longitude);
    }
    encoded
}

/// One signed delta of a polyline: zig-zag encoded, then 5 bits a character from the lowest,
/// each but the last with the continuation bit 0x20, offset by 63.
fn encode_delta(delta: i64, encoded: &mut String) {
    let zigzag = if delta < 0 { !(delta << 1) } else { delta << 1 };
    let mut value = zigzag as u64;
    while value >= 0x20 {
        encoded.push(char::from((0x20 | (value & 0x1f)) as u8 + 63));
        value >>= 5;
    }
    encoded.push(char::from(value as u8 + 63));
}

/// The coordinates (x longitude, y latitude) of Google's encoded polyline.
pub(super) fn decode_polyline(encoded: &str) -> Result<Vec<Coord<f64>>> {
    let error = || invalid(format!("Invalid encoded polyline: {encoded}"));
    let bytes = encoded.as_bytes();
    let mut position = 0;
    let mut coords = Vec::new();
    let (mut latitude, mut longitude) = (0_i64, 0_i64);
    while position < bytes.len() {
        let delta = decode_delta(bytes, &mut position).ok_or_else(error)?;
        latitude = latitude.checked_add(delta).ok_or_else(error)?;
        let delta = decode_delta(bytes, &mut position).ok_or_else(error)?;
        longitude = longitude.checked_add(delta).ok_or_else(error)?;
        coords.push(Coord {
            x: longitude as f64 / 1e5,
            y: latitude as f64 / 1e5,
        });
    }
    Ok(coords)
}

/// One delta of a polyline read at `position`, which it moves past; `None` when malformed.
fn decode_delta(bytes: &[u8], position: &mut usize) -> Option<i64> {
    let (mut value, mut shift) = (0_u64, 0_u32);
    loop {
        let chunk = bytes.get(*position)?.checked_sub(63).filter(|c| *c < 64)?;
        *position += 1;
        if shift > 60 {
            return None;
        }
        value |= u64::from(chunk & 0x1f) << shift;
        shift += 5;
        if chunk < 0x20 {
            break;
        }
    }
    let half = (value >> 1) as i64;
    Some(if value & 1 == 1 { !half } else { half })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Google's documented example.
    const ENCODED: &str = "_p~iF~ps|U_ulLnnqC_mqNvxq`@";

    fn example() -> Vec<Coord<f64>> {
        [(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)]
            .into_iter()
            .map(|(latitude, longitude)| Coord {
                x: longitude,
                y: latitude,
            })
            .collect()
    }

    #[test]
    fn polyline_round_trip() {
        assert_eq!(encode_polyline(example().into_iter()), ENCODED);
        assert_eq!(decode_polyline(ENCODED).unwrap(), example());
        assert_eq!(decode_polyline("").unwrap(), vec![]);
        assert!(decode_polyline("_p~iF").is_err());
        assert!(decode_polyline("_p~iF~ps|").is_err());
        assert!(decode_polyline(" ").is_err());
    }

    #[test]
    fn geojson_round_trip() {
        let text =
            r#"{"type":"Polygon","coordinates":[[[0.0,0.0],[1.0,0.0],[1.0,1.0],[0.0,0.0]]]}"#;
        let polygon = from_geojson(text).unwrap();
        assert_eq!(to_geojson(&polygon), text);
        let collection = r#"{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1.0,2.0]}]}"#;
        assert_eq!(to_geojson(&from_geojson(collection).unwrap()), collection);
        assert!(from_geojson(r#"{"type":"Feature"}"#).is_err());
        assert!(from_geojson(r#"{"type":"Point","coordinates":[1]}"#).is_err());
        assert!(from_geojson("not json").is_err());
    }

    #[test]
    fn points_of_an_array() {
        let p = |x: f64| Some(Geometry::Point(Point::new(x, 0.0)));
        assert_eq!(
            points_of("ST_LineString", &[p(1.0), p(2.0)], true)
                .unwrap()
                .len(),
            2
        );
        assert!(points_of("ST_LineString", &[p(1.0), p(1.0)], true).is_err());
        assert!(points_of("ST_MultiPoint", &[p(1.0), None], false).is_err());
        assert_eq!(
            points_of("ST_MultiPoint", &[p(1.0), p(1.0)], false)
                .unwrap()
                .len(),
            2
        );
    }
}
