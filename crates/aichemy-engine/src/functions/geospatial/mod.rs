//! Trino's geospatial functions that geodatafusion lacks, as DataFusion scalar functions and
//! two aggregates, on GeoArrow geometries.
//!
//! A geometry argument may be any GeoArrow array geodatafusion reads (native layouts, WKB or
//! WKT, with or without the extension metadata where the layout says what it is; a GeoArrow
//! geometry union without metadata is read as one too). Each row becomes a `geo::Geometry`,
//! read through [`geometries`]. A geometry result is WKB in a field carrying the
//! `geoarrow.wkb` extension type ([`geometry_field`], [`wkb_array`]), so geodatafusion's
//! functions (`st_astext`, `st_area`, ...) take it; it keeps the CRS of the argument when the
//! function has one geometry argument. An array of geometries is a List of such WKB values.
//!
//! `geo` has no empty point: `POINT EMPTY` is read as an empty MULTIPOINT.
//!
//! Trino's `BingTile` is modelled as `Struct{x: Int32, y: Int32, zoom: Int8}`
//! (see [`bing`]).
//!
//! Trino's SphericalGeography is modelled as a geometry whose field's metadata names the type
//! (see [`spherical`]): `to_spherical_geography` answers one, `to_geometry` a plain geometry
//! again, and `st_distance` (of two points), `st_area` and `st_length` measure one on Trino's
//! sphere, in metres and square metres. Not modelled: Trino's refusal of the functions it
//! defines on Geometry only; every other function reads a SphericalGeography as the geometry
//! it holds and answers a plain geometry (`from_geojson_geometry` answers a geometry).
//!
//! `st_astext` writes an empty line string or polygon as Trino's ESRI-based library does, as
//! `MULTILINESTRING EMPTY` or `MULTIPOLYGON EMPTY` (see [`astext`]).
//!
//! The functions:
//! - constructors ([`constructors`]): `st_linefromtext`, `st_polygon`, `st_geomfrombinary`,
//!   `st_linestring`, `st_multipoint`, `to_geometry`, `to_spherical_geography`,
//!   `from_geojson_geometry`, `to_geojson_geometry`, `from_encoded_polyline`,
//!   `to_encoded_polyline`;
//! - accessors and predicates ([`accessors`]): `st_boundary`, `st_dimension`, `st_envelope`,
//!   `st_envelopeaspts`, `st_exteriorring`, `st_geometries`, `st_geometryn`,
//!   `st_interiorringn`, `st_interiorrings`, `st_isclosed`, `st_isempty`, `st_isring`,
//!   `st_issimple`, `st_numgeometries`, `st_pointn`, `st_points`, `st_relate`,
//!   `geometry_invalid_reason`;
//! - operations ([`operations`], [`overlay`]): `st_buffer`, `st_difference`,
//!   `st_intersection`, `st_symdifference`, `st_union`, `geometry_union`,
//!   `simplify_geometry`, `line_interpolate_point`, `line_interpolate_points`,
//!   `line_locate_point`, `geometry_nearest_points`;
//! - Bing tiles and distances ([`bing`]): `bing_tile`, `bing_tile_at`,
//!   `bing_tile_coordinates`, `bing_tile_polygon`, `bing_tile_quadkey`,
//!   `bing_tile_zoom_level`, `bing_tiles_around`, `geometry_to_bing_tiles`,
//!   `great_circle_distance`;
//! - measures on SphericalGeography ([`spherical`]): `st_distance`, `st_area`, `st_length`;
//! - WKT ([`astext`]): `st_astext`;
//! - aggregates ([`aggregate`]): `convex_hull_agg`, `geometry_union_agg`.
//!
//! `st_envelope` and `st_pointn` replace geodatafusion's functions of the same name (which
//! answer a box and follow PostGIS), and `st_distance`, `st_area`, `st_length` and
//! `st_astext` wrap geodatafusion's (see [`spherical`], [`astext`]), so [`register`] must run
//! after `geodatafusion::register`.

mod accessors;
mod aggregate;
mod astext;
mod bing;
mod constructors;
mod operations;
mod overlay;
mod spherical;
mod tile;
mod udf;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_datafusion_err, Result};
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
use geo::algorithm::line_intersection::LineIntersection;
use geo::algorithm::sweep::{Cross, Intersections};
use geo::{
    Coord, GeometryCollection, Line, LineString, MultiLineString, MultiPoint, MultiPolygon, Point,
    Polygon, Rect,
};
use geo_traits::{GeometryTrait, PointTrait};
use geoarrow_array::array::from_arrow_array;
use geoarrow_array::builder::WkbBuilder;
use geoarrow_array::{downcast_geoarrow_array, GeoArrowArray, GeoArrowArrayAccessor};
use geoarrow_expr_geo::util::to_geo::geometry_to_geo;
use geoarrow_schema::{CoordType, GeoArrowType, GeometryType, Metadata, WkbType};

use crate::functions::invalid_argument as invalid;

/// The geometry every function works on.
pub(super) type Geometry = geo::Geometry<f64>;

/// Registers every geospatial function of this module; after `geodatafusion::register`, whose
/// `st_envelope` and `st_pointn` it replaces and whose `st_distance`, `st_area`, `st_length`
/// and `st_astext` it wraps.
pub fn register(ctx: &SessionContext) {
    let functions = constructors::functions()
        .into_iter()
        .chain(accessors::functions())
        .chain(operations::functions())
        .chain(bing::functions());
    for function in functions {
        ctx.register_udf(ScalarUDF::new_from_impl(function));
    }
    for measure in spherical::measures() {
        ctx.register_udf(ScalarUDF::new_from_impl(measure));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(astext::AsText::new()));
    aggregate::register(ctx);
}

/// The geometries of a GeoArrow array, one per row (`None` for NULL). `field` describes the
/// array; an array of type Null is all NULLs.
pub(super) fn geometries(array: &ArrayRef, field: &Field) -> Result<Vec<Option<Geometry>>> {
    if array.data_type() == &DataType::Null {
        return Ok(vec![None; array.len()]);
    }
    let field = readable_field(field).ok_or_else(|| {
        exec_datafusion_err!(
            "Expected a geometry, got a value of type {}",
            field.data_type()
        )
    })?;
    let geo_array = from_arrow_array(array.as_ref(), &field)
        .map_err(|e| exec_datafusion_err!("Cannot read the geometries: {e}"))?;
    let geo_array: &dyn GeoArrowArray = geo_array.as_ref();
    downcast_geoarrow_array!(geo_array, collect_geometries)
}

/// Whether values described by `field` can be read as geometries (NULL can).
pub(super) fn is_geometry(field: &Field) -> bool {
    field.data_type() == &DataType::Null || readable_field(field).is_some()
}

/// A field GeoArrow reads `field`'s values with: `field` itself when its extension type or
/// its layout says which geometry it holds, else the GeoArrow geometry union of its layout.
fn readable_field(field: &Field) -> Option<Field> {
    if GeoArrowType::from_arrow_field(field).is_ok() {
        return Some(field.clone());
    }
    [CoordType::Separated, CoordType::Interleaved]
        .into_iter()
        .map(|coord_type| GeometryType::new(Default::default()).with_coord_type(coord_type))
        .find(|union| &union.data_type() == field.data_type())
        .map(|union| union.to_field(field.name(), true))
}

/// The geometries of one typed GeoArrow array.
fn collect_geometries<'a>(
    array: &'a impl GeoArrowArrayAccessor<'a>,
) -> Result<Vec<Option<Geometry>>> {
    array
        .iter()
        .map(|item| {
            item.map(|value| {
                let value = value.map_err(|e| invalid(format!("Invalid geometry: {e}")))?;
                to_geo(&value)
            })
            .transpose()
        })
        .collect()
}

/// One GeoArrow value as a `geo` geometry, with 2 dimensions; an empty point becomes an
/// empty MULTIPOINT, and a rectangle, triangle or line a polygon or line string.
fn to_geo(value: &impl GeometryTrait<T = f64>) -> Result<Geometry> {
    if let geo_traits::GeometryType::Point(point) = value.as_type() {
        if point.coord().is_none() {
            return Ok(Geometry::MultiPoint(MultiPoint::new(vec![])));
        }
    }
    let geometry = geometry_to_geo(value).map_err(|e| invalid(format!("Invalid geometry: {e}")))?;
    Ok(normalize(geometry))
}

/// The geometry with rectangles and triangles as polygons and lines as line strings, so that
/// the functions only meet the 7 OGC types.
fn normalize(geometry: Geometry) -> Geometry {
    match geometry {
        Geometry::Rect(rect) => Geometry::Polygon(rect.to_polygon()),
        Geometry::Triangle(triangle) => Geometry::Polygon(triangle.to_polygon()),
        Geometry::Line(line) => Geometry::LineString(LineString::new(vec![line.start, line.end])),
        Geometry::GeometryCollection(collection) => Geometry::GeometryCollection(
            GeometryCollection::new_from(collection.0.into_iter().map(normalize).collect()),
        ),
        other => other,
    }
}

/// WKB values of geometries (NULL for `None`), as the Binary array of a [`geometry_field`].
pub(super) fn wkb_array<'a>(
    geometries: impl IntoIterator<Item = Option<&'a Geometry>>,
) -> Result<ArrayRef> {
    let mut builder = WkbBuilder::<i32>::new(WkbType::new(Default::default()));
    for geometry in geometries {
        builder
            .push_geometry(geometry)
            .map_err(|e| exec_datafusion_err!("Cannot write a geometry as WKB: {e}"))?;
    }
    Ok(builder.finish().into_array_ref())
}

/// A nullable field of WKB geometries with GeoArrow's `geoarrow.wkb` extension type.
pub(super) fn geometry_field(name: &str, metadata: Arc<Metadata>) -> Field {
    Field::new(name, DataType::Binary, true).with_extension_type(WkbType::new(metadata))
}

/// The GeoArrow metadata (CRS, edges) of a geometry field; the default when it has none.
pub(super) fn metadata_of(field: &Field) -> Arc<Metadata> {
    Arc::new(Metadata::try_from(field).unwrap_or_default())
}

/// Trino's name of a geometry's type, as its errors show it.
pub(super) fn type_name(geometry: &Geometry) -> &'static str {
    match geometry {
        Geometry::Point(_) => "POINT",
        Geometry::MultiPoint(_) => "MULTI_POINT",
        Geometry::LineString(_) | Geometry::Line(_) => "LINE_STRING",
        Geometry::MultiLineString(_) => "MULTI_LINE_STRING",
        Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => "POLYGON",
        Geometry::MultiPolygon(_) => "MULTI_POLYGON",
        Geometry::GeometryCollection(_) => "GEOMETRY_COLLECTION",
    }
}

/// Trino's check that a function's geometry is of one of the `allowed` types.
pub(super) fn expect_type(function: &str, geometry: &Geometry, allowed: &[&str]) -> Result<()> {
    let name = type_name(geometry);
    if allowed.contains(&name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{function} only applies to {}. Input type is: {name}",
            allowed.join(" or ")
        )))
    }
}

/// The dimension of a geometry's type: 0 for points, 1 for lines, 2 for polygons, the largest
/// of its members for a collection (0 when it has none).
pub(super) fn dimension(geometry: &Geometry) -> i8 {
    match geometry {
        Geometry::Point(_) | Geometry::MultiPoint(_) => 0,
        Geometry::Line(_) | Geometry::LineString(_) | Geometry::MultiLineString(_) => 1,
        Geometry::Polygon(_)
        | Geometry::MultiPolygon(_)
        | Geometry::Rect(_)
        | Geometry::Triangle(_) => 2,
        Geometry::GeometryCollection(collection) => {
            collection.iter().map(dimension).max().unwrap_or(0)
        }
    }
}

/// An empty geometry of a dimension: MULTIPOINT, MULTILINESTRING or MULTIPOLYGON EMPTY.
pub(super) fn empty_of(dimension: i8) -> Geometry {
    match dimension {
        0 => Geometry::MultiPoint(MultiPoint::new(vec![])),
        1 => Geometry::MultiLineString(MultiLineString::new(vec![])),
        _ => Geometry::MultiPolygon(MultiPolygon::new(vec![])),
    }
}

/// The members of a multi-geometry or collection; a single geometry is its own only member.
pub(super) fn members(geometry: &Geometry) -> Vec<Geometry> {
    match geometry {
        Geometry::MultiPoint(points) => points.iter().map(|p| Geometry::Point(*p)).collect(),
        Geometry::MultiLineString(lines) => {
            lines.iter().cloned().map(Geometry::LineString).collect()
        }
        Geometry::MultiPolygon(polygons) => {
            polygons.iter().cloned().map(Geometry::Polygon).collect()
        }
        Geometry::GeometryCollection(collection) => collection.0.clone(),
        single => vec![single.clone()],
    }
}

/// The linear paths of a geometry: its line strings and the rings of its polygons.
pub(super) fn paths(geometry: &Geometry) -> Vec<LineString> {
    fn rings(polygon: &Polygon) -> impl Iterator<Item = LineString> + '_ {
        std::iter::once(polygon.exterior().clone()).chain(polygon.interiors().iter().cloned())
    }
    match geometry {
        Geometry::Point(_) | Geometry::MultiPoint(_) => vec![],
        Geometry::Line(line) => vec![LineString::new(vec![line.start, line.end])],
        Geometry::LineString(line) => vec![line.clone()],
        Geometry::MultiLineString(lines) => lines.0.clone(),
        Geometry::Polygon(polygon) => rings(polygon).collect(),
        Geometry::MultiPolygon(polygons) => polygons.iter().flat_map(rings).collect(),
        Geometry::Rect(rect) => rings(&rect.to_polygon()).collect(),
        Geometry::Triangle(triangle) => rings(&triangle.to_polygon()).collect(),
        Geometry::GeometryCollection(collection) => collection.iter().flat_map(paths).collect(),
    }
}

/// One segment of a path, with the index of its path and its place on it.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub(super) line: Line<f64>,
    pub(super) path: usize,
    pub(super) index: usize,
}

impl Cross for Segment {
    type Scalar = f64;

    fn line(&self) -> Line<f64> {
        self.line
    }
}

/// The segments of paths, numbered along each path; repeated consecutive points make none.
pub(super) fn segments(paths: &[&LineString]) -> Vec<Segment> {
    let mut segments = Vec::new();
    for (path, line) in paths.iter().enumerate() {
        let mut index = 0;
        for pair in line.0.windows(2) {
            if pair[0] != pair[1] {
                let line = Line::new(pair[0], pair[1]);
                segments.push(Segment { line, path, index });
                index += 1;
            }
        }
    }
    segments
}

/// Every pair of segments that meet, and where.
pub(super) fn crossings(segments: Vec<Segment>) -> Vec<(Segment, Segment, LineIntersection<f64>)> {
    Intersections::from_iter(segments).collect()
}

/// A rectangle as Trino draws an envelope: the polygon of its corners, counter-clockwise
/// from the lower left.
pub(super) fn envelope_polygon(rect: Rect<f64>) -> Polygon<f64> {
    let (min, max) = (rect.min(), rect.max());
    let corners = vec![
        Coord { x: min.x, y: min.y },
        Coord { x: max.x, y: min.y },
        Coord { x: max.x, y: max.y },
        Coord { x: min.x, y: max.y },
        Coord { x: min.x, y: min.y },
    ];
    Polygon::new(LineString::new(corners), vec![])
}

/// A point geometry at a coordinate.
pub(super) fn point(coord: Coord<f64>) -> Geometry {
    Geometry::Point(Point::from(coord))
}

/// The Euclidean distance of two coordinates.
pub(super) fn distance(a: Coord<f64>, b: Coord<f64>) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::StringArray;

    use super::*;

    #[test]
    fn reads_wkt_and_writes_wkb() {
        let array: ArrayRef = Arc::new(StringArray::from(vec![
            Some("LINESTRING (0 0, 1 1)"),
            None,
            Some("POINT EMPTY"),
        ]));
        let field = Field::new("g", DataType::Utf8, true);
        let read = geometries(&array, &field).unwrap();
        assert_eq!(type_name(read[0].as_ref().unwrap()), "LINE_STRING");
        assert!(read[1].is_none());
        assert_eq!(type_name(read[2].as_ref().unwrap()), "MULTI_POINT");
        let wkb = wkb_array(read.iter().map(Option::as_ref)).unwrap();
        let again = geometries(&wkb, &geometry_field("g", Default::default())).unwrap();
        assert_eq!(again, read);
    }

    #[test]
    fn type_checks_use_trino_wording() {
        let point = point(Coord { x: 1.0, y: 2.0 });
        let err = expect_type("ST_IsClosed", &point, &["LINE_STRING", "MULTI_LINE_STRING"])
            .unwrap_err()
            .to_string();
        assert!(err.contains(
            "ST_IsClosed only applies to LINE_STRING or MULTI_LINE_STRING. Input type is: POINT"
        ));
    }
}
