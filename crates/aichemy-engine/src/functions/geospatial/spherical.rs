//! Trino's SphericalGeography, and the measures Trino takes of it on the sphere.
//!
//! A SphericalGeography value is a geometry of longitudes and latitudes kept as any geometry
//! is (WKB in a `geoarrow.wkb` field, so every geometry function still reads it), in a field
//! whose metadata also names Trino's type under [`TRINO_TYPE_KEY`] ([`geography_field`]).
//! `to_spherical_geography` answers such a field and `to_geometry` a plain one; DataFusion
//! carries field metadata through planning and constant folding, so a function sees whether
//! its argument is a SphericalGeography.
//!
//! `st_distance`, `st_area` and `st_length` ([`SphericalMeasure`]) wrap geodatafusion's
//! functions of those names: on SphericalGeography arguments they measure on Trino's sphere
//! (radius 6371.01 km) in metres and square metres, with Trino's errors for the types it does
//! not measure there; on anything else they answer what geodatafusion answers.

use std::f64::consts::PI;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{internal_datafusion_err, plan_err, DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
};
use geo::{Coord, HasDimensions, LineString, Point, Polygon};
use geoarrow_schema::Metadata;
use geodatafusion::udf::geo::measurement::{Area, Distance, Length};

use super::bing::{great_circle_km, EARTH_RADIUS_KM};
use super::{geometries, geometry_field, is_geometry, type_name, Geometry};
use crate::functions::{invalid_argument as invalid, scalar_result};
use crate::types::field_type_name;
use crate::TRINO_TYPE_KEY;

/// Trino's name of the type, as field metadata carries it.
const SPHERICAL_GEOGRAPHY: &str = "SphericalGeography";

/// The Earth's radius Trino's spherical functions use, in metres.
const EARTH_RADIUS_M: f64 = EARTH_RADIUS_KM * 1000.0;

/// A nullable field of WKB geometries (a [`geometry_field`] with `metadata`) that Trino types
/// as SphericalGeography.
pub(super) fn geography_field(name: &str, metadata: Arc<Metadata>) -> Field {
    let field = geometry_field(name, metadata);
    // Added to the extension type's entries, which geometry functions read.
    let mut entries = field.metadata().clone();
    entries.insert(TRINO_TYPE_KEY.to_string(), SPHERICAL_GEOGRAPHY.to_string());
    field.with_metadata(entries)
}

/// Whether values described by `field` are SphericalGeography values.
fn is_geography(field: &Field) -> bool {
    field
        .metadata()
        .get(TRINO_TYPE_KEY)
        .is_some_and(|name| name == SPHERICAL_GEOGRAPHY)
}

/// geodatafusion's `st_distance`, `st_area` and `st_length`, measuring on the sphere when
/// their arguments are SphericalGeography values; registered in their place.
pub(super) fn measures() -> Vec<SphericalMeasure> {
    vec![
        SphericalMeasure::new(ScalarUDF::from(Distance::new()), Measure::Distance),
        SphericalMeasure::new(ScalarUDF::from(Area::new()), Measure::Area),
        SphericalMeasure::new(ScalarUDF::from(Length::new()), Measure::Length),
    ]
}

/// What a [`SphericalMeasure`] measures on the sphere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Measure {
    Distance,
    Area,
    Length,
}

impl Measure {
    /// The measure of one row's geometries on the sphere; `None` (NULL) when one of them is
    /// empty, as Trino answers.
    fn on_sphere(self, geometries: &[&Geometry]) -> Result<Option<f64>> {
        if geometries.iter().any(|geometry| geometry.is_empty()) {
            return Ok(None);
        }
        let value = match (self, geometries) {
            (Measure::Distance, [left, right]) => spherical_distance(left, right)?,
            (Measure::Area, [geometry]) => spherical_area(geometry)?,
            (Measure::Length, [geometry]) => spherical_length(geometry)?,
            _ => {
                return Err(internal_datafusion_err!(
                    "{:?} on the sphere got {} geometries",
                    self,
                    geometries.len()
                ))
            }
        };
        Ok(Some(value))
    }
}

/// A geodatafusion measure that Trino also defines on SphericalGeography. The wrapped
/// function plans every call (signature, coercion, result field) and answers those on plain
/// geometries, which keep geodatafusion's behaviour; calls on SphericalGeography values are
/// answered here, as Float64.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct SphericalMeasure {
    inner: Arc<ScalarUDF>,
    measure: Measure,
}

impl SphericalMeasure {
    fn new(inner: ScalarUDF, measure: Measure) -> Self {
        Self {
            inner: Arc::new(inner),
            measure,
        }
    }

    /// Whether a call's arguments are SphericalGeography values (a NULL of type Null goes
    /// with either); Trino's error when they mix SphericalGeography and other values, which
    /// no signature of Trino's takes.
    fn on_sphere(&self, fields: &[FieldRef]) -> Result<bool> {
        let typed: Vec<&FieldRef> = fields
            .iter()
            .filter(|field| field.data_type() != &DataType::Null)
            .collect();
        let spherical = typed.iter().filter(|field| is_geography(field)).count();
        if spherical == 0 {
            return Ok(false);
        }
        if spherical == typed.len() {
            return Ok(true);
        }
        let name = self.inner.name();
        let given: Vec<String> = fields.iter().map(|field| trino_type(field)).collect();
        let plane = vec!["Geometry"; fields.len()].join(", ");
        let sphere = vec![SPHERICAL_GEOGRAPHY; fields.len()].join(", ");
        plan_err!(
            "Unexpected parameters ({}) for function {name}. Expected: {name}({plane}), \
             {name}({sphere})",
            given.join(", ")
        )
    }
}

/// The Trino name of an argument's type, for errors.
fn trino_type(field: &Field) -> String {
    if is_geography(field) {
        SPHERICAL_GEOGRAPHY.to_string()
    } else if is_geometry(field) {
        "Geometry".to_string()
    } else {
        field_type_name(field)
    }
}

impl ScalarUDFImpl for SphericalMeasure {
    crate::functions::planned_as_inner!();

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.on_sphere(args.arg_fields)?;
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !self.on_sphere(&args.arg_fields)? {
            return self.inner.invoke_with_args(args);
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let columns = arrays
            .iter()
            .zip(&args.arg_fields)
            .map(|(array, field)| geometries(array, field))
            .collect::<Result<Vec<_>>>()?;
        let rows = arrays.first().map_or(0, |array| array.len());
        let mut answers = Vec::with_capacity(rows);
        for row in 0..rows {
            let values: Option<Vec<&Geometry>> = columns
                .iter()
                .map(|column| column.get(row)?.as_ref())
                .collect();
            answers.push(match values {
                Some(values) => self.measure.on_sphere(&values)?,
                None => None,
            });
        }
        let array: ArrayRef = Arc::new(Float64Array::from(answers));
        scalar_result(&args.args, array)
    }
}

/// Trino's error for a geometry of a type a function does not measure on the sphere.
fn unsupported(function: &str, geometry: &Geometry, supported: &[&str]) -> DataFusionError {
    invalid(format!(
        "When applied to SphericalGeography inputs, {function} only supports {}. Input type \
         is: {}",
        supported.join(" or "),
        type_name(geometry)
    ))
}

/// `ST_Distance` on the sphere: the great-circle distance of two points, in metres. Trino
/// measures no other types there.
fn spherical_distance(left: &Geometry, right: &Geometry) -> Result<f64> {
    let point = |geometry: &Geometry| match geometry {
        Geometry::Point(point) => Ok(*point),
        other => Err(unsupported("ST_Distance", other, &["POINT"])),
    };
    let (left, right): (Point<f64>, Point<f64>) = (point(left)?, point(right)?);
    Ok(great_circle_km(left.y(), left.x(), right.y(), right.x()) * 1000.0)
}

/// `ST_Length` on the sphere: the sum of the great-circle lengths of the segments of a line
/// string or multi-line string, in metres.
fn spherical_length(geometry: &Geometry) -> Result<f64> {
    let lines: Vec<&LineString<f64>> = match geometry {
        Geometry::LineString(line) => vec![line],
        Geometry::MultiLineString(lines) => lines.iter().collect(),
        other => {
            return Err(unsupported(
                "ST_Length",
                other,
                &["LINE_STRING", "MULTI_LINE_STRING"],
            ))
        }
    };
    let km: f64 = lines
        .into_iter()
        .flat_map(|line| line.lines())
        .map(|segment| {
            let (start, end) = (segment.start, segment.end);
            great_circle_km(start.y, start.x, end.y, end.x)
        })
        .sum();
    Ok(km * 1000.0)
}

/// `ST_Area` on the sphere: the area of a polygon or multi-polygon whose edges are great-circle
/// arcs, in square metres: the spherical excess of each exterior ring, less that of its holes,
/// times the radius squared.
fn spherical_area(geometry: &Geometry) -> Result<f64> {
    let polygons: Vec<&Polygon<f64>> = match geometry {
        Geometry::Polygon(polygon) => vec![polygon],
        Geometry::MultiPolygon(polygons) => polygons.iter().collect(),
        other => return Err(unsupported("ST_Area", other, &["POLYGON", "MULTI_POLYGON"])),
    };
    let mut excess = 0.0;
    for polygon in polygons {
        excess += ring_excess(polygon.exterior())?.abs();
        for hole in polygon.interiors() {
            excess -= ring_excess(hole)?.abs();
        }
    }
    Ok((excess * EARTH_RADIUS_M * EARTH_RADIUS_M).abs())
}

/// A vertex of a ring in radians, with the trigonometry of its latitude the excess takes.
#[derive(Debug, Clone, Copy)]
struct Vertex {
    longitude: f64,
    latitude: f64,
    sin: f64,
    cos: f64,
    /// The tangent of half the latitude.
    tan_half: f64,
}

impl Vertex {
    fn new(coord: Coord<f64>) -> Self {
        let latitude = coord.y.to_radians();
        Self {
            longitude: coord.x.to_radians(),
            latitude,
            sin: latitude.sin(),
            cos: latitude.cos(),
            tan_half: (latitude / 2.0).tan(),
        }
    }
}

/// The signed spherical excess (in steradians) of the region a ring encloses, as Trino
/// computes it: the sum over its edges of the signed excess of the triangle each makes with
/// the pole (tan(E/2) = tan(Δλ/2)·(tan(φ1/2) + tan(φ2/2)) / (1 + tan(φ1/2)·tan(φ2/2))). The
/// course turned along the ring tells whether it encloses a pole: going round it turns the
/// course by ±2π, going round a pole by about 0, and then the sum counts the region on the
/// other side of the pole, which 2π corrects. Trino's errors for a ring of fewer than 3
/// distinct vertices or with a repeated one; an empty ring (of an empty member of a
/// multi-polygon) encloses nothing.
fn ring_excess(ring: &LineString<f64>) -> Result<f64> {
    if ring.0.is_empty() {
        return Ok(0.0);
    }
    // The closing vertex is the first one again.
    let vertices: &[Coord<f64>] = match ring.0.split_last() {
        Some((last, open)) if open.first() == Some(last) => open,
        _ => ring.0.as_slice(),
    };
    let &[_, _, .., last] = vertices else {
        return Err(invalid(
            "Polygon is not valid: a loop contains less then 3 vertices.",
        ));
    };
    let mut previous = Vertex::new(last);
    let mut excess = 0.0;
    let mut course = 0.0;
    let (mut first_initial_bearing, mut previous_final_bearing) = (0.0, 0.0);
    for (index, &coord) in vertices.iter().enumerate() {
        let vertex = Vertex::new(coord);
        if vertex.longitude == previous.longitude && vertex.latitude == previous.latitude {
            return Err(invalid(
                "Polygon is not valid: it has two identical consecutive vertices",
            ));
        }
        let delta = vertex.longitude - previous.longitude;
        let tangents = previous.tan_half + vertex.tan_half;
        excess +=
            2.0 * ((delta / 2.0).tan() * tangents).atan2(1.0 + previous.tan_half * vertex.tan_half);
        let (sin_delta, cos_delta) = (delta.sin(), delta.cos());
        // The bearing the edge leaves the previous vertex on, and the one it reaches this
        // vertex on (the reverse of the bearing from this vertex back), in [0, 2π).
        let initial_bearing = ((sin_delta * vertex.cos)
            .atan2(previous.cos * vertex.sin - previous.sin * vertex.cos * cos_delta)
            + 2.0 * PI)
            % (2.0 * PI);
        let final_bearing = ((-sin_delta * previous.cos)
            .atan2(previous.sin * vertex.cos - previous.cos * vertex.sin * cos_delta)
            + PI)
            % (2.0 * PI);
        if index == 0 {
            first_initial_bearing = initial_bearing;
        } else {
            course += turn(previous_final_bearing, initial_bearing);
        }
        course += turn(initial_bearing, final_bearing);
        previous_final_bearing = final_bearing;
        previous = vertex;
    }
    course += turn(previous_final_bearing, first_initial_bearing);
    if course.abs() < PI / 4.0 {
        excess = excess.abs() - 2.0 * PI;
    }
    Ok(excess)
}

/// The signed turn from one bearing to another, in (-π, π].
fn turn(from: f64, to: f64) -> f64 {
    (to - from + 3.0 * PI) % (2.0 * PI) - PI
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Float64Type;
    use datafusion::config::ConfigOptions;
    use geo::MultiLineString;

    use super::super::wkb_array;
    use super::*;

    fn point(x: f64, y: f64) -> Geometry {
        Geometry::Point(Point::new(x, y))
    }

    fn polygon(exterior: &[(f64, f64)], holes: &[&[(f64, f64)]]) -> Geometry {
        let ring = |coords: &[(f64, f64)]| LineString::from(coords.to_vec());
        Geometry::Polygon(Polygon::new(
            ring(exterior),
            holes.iter().map(|&hole| ring(hole)).collect(),
        ))
    }

    fn assert_close(actual: f64, expected: f64, relative: f64) {
        assert!(
            ((actual - expected) / expected).abs() < relative,
            "{actual} is not within {relative} of {expected}"
        );
    }

    /// Trino's documented example: Boston to Newark.
    #[test]
    fn distance_of_two_points() {
        let boston = point(-71.0882, 42.3607);
        let newark = point(-74.1197, 40.6976);
        let metres = spherical_distance(&boston, &newark).unwrap();
        assert_close(metres, 312_822.179, 1e-6);
        // Trino's own tests.
        let nashville = point(-86.67, 36.12);
        let los_angeles = point(-118.40, 33.94);
        let metres = spherical_distance(&nashville, &los_angeles).unwrap();
        assert_close(metres, 2_886_448.973_436_7, 1e-9);
        assert_eq!(spherical_distance(&nashville, &nashville).unwrap(), 0.0);
    }

    #[test]
    fn distance_only_of_points() {
        let line = Geometry::LineString(LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]));
        let err = spherical_distance(&point(0.0, 0.0), &line)
            .unwrap_err()
            .to_string();
        assert!(err.contains(
            "When applied to SphericalGeography inputs, ST_Distance only supports POINT. \
             Input type is: LINE_STRING"
        ));
        let empty = Geometry::MultiPoint(geo::MultiPoint::new(vec![]));
        assert_eq!(
            Measure::Distance
                .on_sphere(&[&empty, &point(1.0, 2.0)])
                .unwrap(),
            None
        );
    }

    #[test]
    fn length_is_the_distance_along_the_line() {
        let (a, b, c) = ((-71.0882, 42.3607), (-74.1197, 40.6976), (-75.0, 41.0));
        let two = Geometry::LineString(LineString::from(vec![a, b]));
        let distance = spherical_distance(&point(a.0, a.1), &point(b.0, b.1)).unwrap();
        assert_close(spherical_length(&two).unwrap(), distance, 1e-12);
        let second = spherical_distance(&point(b.0, b.1), &point(c.0, c.1)).unwrap();
        let lines = Geometry::MultiLineString(MultiLineString::new(vec![
            LineString::from(vec![a, b]),
            LineString::from(vec![b, c]),
        ]));
        assert_close(spherical_length(&lines).unwrap(), distance + second, 1e-12);
        let err = spherical_length(&point(0.0, 0.0)).unwrap_err().to_string();
        assert!(err.contains(
            "ST_Length only supports LINE_STRING or MULTI_LINE_STRING. Input type is: POINT"
        ));
    }

    #[test]
    fn area_of_a_small_square_is_nearly_planar() {
        // A square of 1 km a side at the equator (Trino's test).
        let side: f64 = 0.008_993_201_943_349;
        let square = polygon(&[(0.0, 0.0), (side, 0.0), (side, side), (0.0, side)], &[]);
        let planar = (side.to_radians() * EARTH_RADIUS_M).powi(2);
        assert_close(planar, 1e6, 1e-6);
        assert_close(spherical_area(&square).unwrap(), planar, 1e-6);
        // Clockwise, it encloses the same square.
        let clockwise = polygon(&[(0.0, 0.0), (0.0, side), (side, side), (side, 0.0)], &[]);
        assert_close(spherical_area(&clockwise).unwrap(), planar, 1e-6);
    }

    /// Trino's tests, to its tolerance.
    #[test]
    fn area_as_trino_measures_it() {
        let degree = polygon(&[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)], &[]);
        assert_close(spherical_area(&degree).unwrap(), 123.64e8, 1e-5);
        let octant = [(90.0, 0.0), (0.0, 0.0), (0.0, 90.0)];
        assert_close(
            spherical_area(&polygon(&octant, &[])).unwrap(),
            637.58e11,
            1e-5,
        );
        let hole: &[(f64, f64)] = &[(89.0, 1.0), (1.0, 1.0), (1.0, 89.0)];
        assert_close(
            spherical_area(&polygon(&octant, &[hole])).unwrap(),
            348.04e10,
            1e-5,
        );
        // Around the North Pole.
        let pole = [(-135.0, 85.0), (-45.0, 85.0), (45.0, 85.0), (135.0, 85.0)];
        assert_close(
            spherical_area(&polygon(&pole, &[])).unwrap(),
            619.00e9,
            1e-5,
        );
    }

    #[test]
    fn area_errors() {
        let err = spherical_area(&point(0.0, 1.0)).unwrap_err().to_string();
        assert!(err.contains(
            "When applied to SphericalGeography inputs, ST_Area only supports POLYGON or \
             MULTI_POLYGON. Input type is: POINT"
        ));
        let repeated = polygon(
            &[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 0.0)],
            &[],
        );
        let err = spherical_area(&repeated).unwrap_err().to_string();
        assert!(err.contains("Polygon is not valid: it has two identical consecutive vertices"));
        let flat = polygon(&[(90.0, 0.0), (0.0, 0.0)], &[]);
        let err = spherical_area(&flat).unwrap_err().to_string();
        assert!(err.contains("Polygon is not valid: a loop contains less then 3 vertices."));
    }

    #[test]
    fn geography_fields_stay_geometry_fields() {
        let field = geography_field("g", Default::default());
        assert!(is_geography(&field));
        assert_eq!(field.extension_type_name(), Some("geoarrow.wkb"));
        assert!(is_geometry(&field));
        assert!(!is_geography(&geometry_field("g", Default::default())));
    }

    /// `st_distance` measures on the sphere for SphericalGeography arguments and in the plane
    /// (geodatafusion's answer) for geometries.
    #[test]
    fn distance_function_by_argument_type() {
        let function = SphericalMeasure::new(ScalarUDF::from(Distance::new()), Measure::Distance);
        let run = |field: Field| {
            let boston = wkb_array([Some(&point(-71.0882, 42.3607))]).unwrap();
            let newark = wkb_array([Some(&point(-74.1197, 40.6976))]).unwrap();
            let field = Arc::new(field);
            let args = ScalarFunctionArgs {
                args: vec![ColumnarValue::Array(boston), ColumnarValue::Array(newark)],
                arg_fields: vec![Arc::clone(&field), field],
                number_rows: 1,
                return_field: Arc::new(Field::new("d", DataType::Float64, true)),
                config_options: Arc::new(ConfigOptions::default()),
            };
            let result = function.invoke_with_args(args).unwrap();
            let result = result.to_array(1).unwrap();
            assert_eq!(result.len(), 1);
            result.as_primitive::<Float64Type>().value(0)
        };
        assert_close(
            run(geography_field("g", Default::default())),
            312_822.179,
            1e-6,
        );
        let planar = (74.1197_f64 - 71.0882).hypot(42.3607 - 40.6976);
        assert_close(run(geometry_field("g", Default::default())), planar, 1e-9);
    }

    #[test]
    fn mixed_arguments_are_refused() {
        let function = SphericalMeasure::new(ScalarUDF::from(Distance::new()), Measure::Distance);
        let sphere: FieldRef = Arc::new(geography_field("a", Default::default()));
        let plane: FieldRef = Arc::new(geometry_field("b", Default::default()));
        let null: FieldRef = Arc::new(Field::new("c", DataType::Null, true));
        let err = function
            .on_sphere(&[Arc::clone(&sphere), plane])
            .unwrap_err()
            .to_string();
        assert!(err.contains("Unexpected parameters (SphericalGeography, Geometry)"));
        assert!(function.on_sphere(&[sphere, null]).unwrap());
    }
}
