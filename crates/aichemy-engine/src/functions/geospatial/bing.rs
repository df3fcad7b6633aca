//! Trino's Bing tile functions (on the tiles of [`super::tile`]) and `great_circle_distance`.

use std::f64::consts::PI;
use std::ops::RangeInclusive;

use datafusion::common::Result;
use geo::{BoundingRect, Coord, CoordsIter, Intersects, Rect};

use super::tile::{
    tile_at, tile_latitude, tile_longitude, Tile, MAX_LATITUDE, MAX_ZOOM, MIN_LATITUDE,
};
use super::udf::{Arg, GeoFunction, Out, Returns, Row};
use super::{envelope_polygon, Geometry};
use crate::functions::invalid_argument as invalid;

/// The Earth's radius Trino's spherical functions use, in kilometres.
pub(super) const EARTH_RADIUS_KM: f64 = 6371.01;
/// The most tiles a function answers.
const MAX_TILES: u64 = 1_000_000;
/// The most tiles times geometry points `geometry_to_bing_tiles` checks.
const MAX_COMPLEXITY: u64 = 25_000_000;

/// The Bing tile functions and `great_circle_distance`.
pub(super) fn functions() -> Vec<GeoFunction> {
    vec![
        GeoFunction::new(
            "bing_tile",
            &[&[Arg::Integer, Arg::Integer, Arg::Integer], &[Arg::Text]],
            Returns::Tile,
            bing_tile,
        ),
        GeoFunction::new(
            "bing_tile_at",
            &[&[Arg::Double, Arg::Double, Arg::Integer]],
            Returns::Tile,
            |row: &Row<'_>| {
                let (latitude, longitude) = (row.double(0)?, row.double(1)?);
                check_position(latitude, longitude)?;
                let tile = tile_at(latitude, longitude, checked_zoom(row.integer(2)?)?);
                Ok(Some(Out::Tile(tile)))
            },
        ),
        GeoFunction::new(
            "bing_tile_coordinates",
            &[&[Arg::Tile]],
            Returns::Coordinates,
            |row: &Row<'_>| {
                let tile = row.tile(0)?;
                Ok(Some(Out::Coordinates(tile.x as i32, tile.y as i32)))
            },
        ),
        GeoFunction::new(
            "bing_tile_polygon",
            &[&[Arg::Tile]],
            Returns::Geometry,
            |row: &Row<'_>| {
                let polygon = envelope_polygon(row.tile(0)?.bounds());
                Ok(Some(Out::Geometry(Geometry::Polygon(polygon))))
            },
        ),
        GeoFunction::new(
            "bing_tile_quadkey",
            &[&[Arg::Tile]],
            Returns::Varchar,
            |row: &Row<'_>| Ok(Some(Out::Varchar(row.tile(0)?.quadkey()))),
        ),
        GeoFunction::new(
            "bing_tile_zoom_level",
            &[&[Arg::Tile]],
            Returns::TinyInt,
            |row: &Row<'_>| Ok(Some(Out::TinyInt(row.tile(0)?.zoom as i8))),
        ),
        GeoFunction::new(
            "bing_tiles_around",
            &[
                &[Arg::Double, Arg::Double, Arg::Integer],
                &[Arg::Double, Arg::Double, Arg::Integer, Arg::Double],
            ],
            Returns::Tiles,
            tiles_around,
        ),
        GeoFunction::new(
            "geometry_to_bing_tiles",
            &[&[Arg::Geometry, Arg::Integer]],
            Returns::Tiles,
            |row: &Row<'_>| {
                let zoom = checked_zoom(row.integer(1)?)?;
                Ok(Some(Out::Tiles(covering_tiles(row.geometry(0)?, zoom)?)))
            },
        ),
        GeoFunction::new(
            "great_circle_distance",
            &[&[Arg::Double, Arg::Double, Arg::Double, Arg::Double]],
            Returns::Double,
            |row: &Row<'_>| {
                let (latitude1, longitude1) = (row.double(0)?, row.double(1)?);
                let (latitude2, longitude2) = (row.double(2)?, row.double(3)?);
                for (latitude, longitude) in [(latitude1, longitude1), (latitude2, longitude2)] {
                    if !(-90.0..=90.0).contains(&latitude) {
                        return Err(invalid("Latitude must be between -90 and 90"));
                    }
                    if !(-180.0..=180.0).contains(&longitude) {
                        return Err(invalid("Longitude must be between -180 and 180"));
                    }
                }
                let km = great_circle_km(latitude1, longitude1, latitude2, longitude2);
                Ok(Some(Out::Double(km)))
            },
        ),
    ]
}

/// `bing_tile(x, y, zoom)` and `bing_tile(quadkey)`.
fn bing_tile(row: &Row<'_>) -> Result<Option<Out>> {
    if row.len() == 1 {
        return Ok(Some(Out::Tile(Tile::from_quadkey(row.text(0)?)?)));
    }
    let (x, y) = (row.integer(0)?, row.integer(1)?);
    let zoom = checked_zoom(row.integer(2)?)?;
    let limit = 1_i64 << zoom;
    if !(0..limit).contains(&x) || !(0..limit).contains(&y) {
        return Err(invalid(format!(
            "XY coordinates for a Bing tile at zoom level {zoom} must be within [0, {limit}) range"
        )));
    }
    Ok(Some(Out::Tile(Tile {
        x: x as u32,
        y: y as u32,
        zoom,
    })))
}

/// A zoom level a function takes: 1 to 23.
fn checked_zoom(zoom: i64) -> Result<u8> {
    if zoom <= 0 {
        Err(invalid("Zoom level must be > 0"))
    } else if zoom > i64::from(MAX_ZOOM) {
        Err(invalid(format!("Zoom level must be <= {MAX_ZOOM}")))
    } else {
        Ok(zoom as u8)
    }
}

/// Trino's check of a position on the tile map.
fn check_position(latitude: f64, longitude: f64) -> Result<()> {
    if !(MIN_LATITUDE..=MAX_LATITUDE).contains(&latitude) {
        return Err(invalid(format!(
            "Latitude must be between {MIN_LATITUDE} and {MAX_LATITUDE}"
        )));
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(invalid("Longitude must be between -180.0 and 180.0"));
    }
    Ok(())
}

/// The great-circle distance of two positions on Trino's spherical Earth, in kilometres.
pub(super) fn great_circle_km(
    latitude1: f64,
    longitude1: f64,
    latitude2: f64,
    longitude2: f64,
) -> f64 {
    let (phi1, phi2) = (latitude1.to_radians(), latitude2.to_radians());
    let delta = longitude1.to_radians() - longitude2.to_radians();
    let t1 = phi2.cos() * delta.sin();
    let t2 = phi1.cos() * phi2.sin() - phi1.sin() * phi2.cos() * delta.cos();
    let t3 = phi1.sin() * phi2.sin() + phi1.cos() * phi2.cos() * delta.cos();
    t1.hypot(t2).atan2(t3) * EARTH_RADIUS_KM
}

/// `bing_tiles_around(latitude, longitude, zoom[, radius_km])`.
fn tiles_around(row: &Row<'_>) -> Result<Option<Out>> {
    let (latitude, longitude) = (row.double(0)?, row.double(1)?);
    check_position(latitude, longitude)?;
    let zoom = checked_zoom(row.integer(2)?)?;
    let tiles = if row.len() == 4 {
        tiles_within(latitude, longitude, zoom, row.double(3)?)?
    } else {
        neighbourhood(tile_at(latitude, longitude, zoom))
    };
    Ok(Some(Out::Tiles(tiles)))
}

/// A tile and those around it on the map, column by column.
fn neighbourhood(tile: Tile) -> Vec<Tile> {
    let limit = 1_i64 << tile.zoom;
    let mut tiles = Vec::with_capacity(9);
    for dx in -1..=1 {
        for dy in -1..=1 {
            let (x, y) = (i64::from(tile.x) + dx, i64::from(tile.y) + dy);
            if (0..limit).contains(&x) && (0..limit).contains(&y) {
                tiles.push(Tile {
                    x: x as u32,
                    y: y as u32,
                    zoom: tile.zoom,
                });
            }
        }
    }
    tiles
}

/// The tiles within `radius_km` of a position: the tile of the position first, then every
/// tile whose nearest point is that close, column by column.
fn tiles_within(latitude: f64, longitude: f64, zoom: u8, radius_km: f64) -> Result<Vec<Tile>> {
    if radius_km.is_nan() || radius_km < 0.0 {
        return Err(invalid("Radius must be >= 0"));
    }
    if radius_km > 1000.0 {
        return Err(invalid("Radius must be <= 1,000 km"));
    }
    let center = tile_at(latitude, longitude, zoom);
    let last = (1_u32 << zoom) - 1;
    let span = (radius_km / EARTH_RADIUS_KM).to_degrees();
    let top = tile_at((latitude + span).min(MAX_LATITUDE), longitude, zoom);
    let bottom = tile_at((latitude - span).max(MIN_LATITUDE), longitude, zoom);
    let columns: Vec<RangeInclusive<u32>> = if latitude + span >= 90.0 || latitude - span <= -90.0 {
        // The circle holds a pole: every longitude.
        vec![0..=last]
    } else {
        let left = tile_at(latitude, east_of(latitude, longitude, -span), zoom).x;
        let right = tile_at(latitude, east_of(latitude, longitude, span), zoom).x;
        if left <= right {
            vec![left..=right]
        } else {
            vec![left..=last, 0..=right]
        }
    };
    let column_count: u64 = columns
        .iter()
        .map(|range| u64::from(range.end() - range.start()) + 1)
        .sum();
    let count = column_count * (u64::from(bottom.y.saturating_sub(top.y)) + 1);
    if count > MAX_TILES {
        return Err(invalid(format!(
            "The number of tiles covering input rectangle exceeds the limit of 1M. Number of \
             tiles: {count}. Radius: {radius_km:.1} km. Zoom level: {zoom}."
        )));
    }
    let mut tiles = vec![center];
    for x in columns.into_iter().flatten() {
        for y in top.y..=bottom.y {
            let tile = Tile { x, y, zoom };
            if tile != center && nearest_km(tile, latitude, longitude) <= radius_km {
                tiles.push(tile);
            }
        }
    }
    Ok(tiles)
}

/// The longitude a great-circle distance of `degrees` (of arc) east of a position, at its
/// latitude (negative `degrees` go west).
fn east_of(latitude: f64, longitude: f64, degrees: f64) -> f64 {
    let (phi, arc) = (latitude.to_radians(), degrees.abs().to_radians());
    let bearing = if degrees < 0.0 { -PI / 2.0 } else { PI / 2.0 };
    let phi2 = (phi.sin() * arc.cos()).asin();
    let delta = (bearing.sin() * arc.sin() * phi.cos()).atan2(arc.cos() - phi.sin() * phi2.sin());
    let east = longitude + delta.to_degrees();
    // Back into [-180, 180].
    (east + 540.0).rem_euclid(360.0) - 180.0
}

/// The great-circle distance from a position to the nearest point of a tile, nearly: the
/// position is moved into the tile's latitude and longitude ranges.
fn nearest_km(tile: Tile, latitude: f64, longitude: f64) -> f64 {
    let bounds = tile.bounds();
    let (min, max) = (bounds.min(), bounds.max());
    let nearest_latitude = latitude.max(min.y).min(max.y);
    let nearest_longitude = if (min.x..=max.x).contains(&longitude) {
        longitude
    } else {
        // The nearer edge, going either way round the globe.
        let gap = |edge: f64| {
            let d = (edge - longitude).rem_euclid(360.0);
            d.min(360.0 - d)
        };
        if gap(min.x) <= gap(max.x) {
            min.x
        } else {
            max.x
        }
    };
    great_circle_km(latitude, longitude, nearest_latitude, nearest_longitude)
}

/// `geometry_to_bing_tiles`: the tiles of a zoom level covering a geometry, column by column.
fn covering_tiles(geometry: &Geometry, zoom: u8) -> Result<Vec<Tile>> {
    let Some(envelope) = geometry.bounding_rect() else {
        return Ok(vec![]);
    };
    let (min, max) = (envelope.min(), envelope.max());
    let latitudes = MIN_LATITUDE..=MAX_LATITUDE;
    if !latitudes.contains(&min.y) || !latitudes.contains(&max.y) {
        return Err(invalid(format!(
            "Latitude span for the geometry must be in [{MIN_LATITUDE:.2}, {MAX_LATITUDE:.2}] range"
        )));
    }
    if !(-180.0..=180.0).contains(&min.x) || !(-180.0..=180.0).contains(&max.x) {
        return Err(invalid(
            "Longitude span for the geometry must be in [-180.00, 180.00] range",
        ));
    }
    let upper_left = tile_at(max.y, min.x, zoom);
    let mut lower_right = tile_at(min.y, max.x, zoom);
    // A lower right corner on the west or north edge of its tile only touches that tile.
    if lower_right.x > upper_left.x && tile_longitude(lower_right.x, zoom) == max.x {
        lower_right.x -= 1;
    }
    if lower_right.y > upper_left.y && tile_latitude(lower_right.y, zoom) == min.y {
        lower_right.y -= 1;
    }
    let columns = u64::from(lower_right.x.saturating_sub(upper_left.x)) + 1;
    let rows = u64::from(lower_right.y.saturating_sub(upper_left.y)) + 1;
    let count = columns * rows;
    let rectangle = is_point_or_rectangle(geometry, envelope);
    if rectangle {
        if count > MAX_TILES {
            return Err(invalid(format!(
                "The number of tiles covering input rectangle exceeds the limit of 1M. Number \
                 of tiles: {count}. Rectangle: xMin={:.2}, yMin={:.2}, xMax={:.2}, yMax={:.2}. \
                 Zoom level: {zoom}.",
                min.x, min.y, max.x, max.y
            )));
        }
    } else {
        if count > i32::MAX as u64 {
            return Err(invalid(
                "The zoom level is too high to compute a set of covering Bing tiles.",
            ));
        }
        let complexity = count.checked_mul(geometry.coords_count() as u64);
        if complexity.is_none_or(|complexity| complexity > MAX_COMPLEXITY) {
            return Err(invalid(
                "The zoom level is too high or the geometry is too complex to compute a set of \
                 covering Bing tiles. Please use a lower zoom level or convert the geometry to \
                 its bounding box using the ST_Envelope function.",
            ));
        }
    }
    let mut tiles = Vec::new();
    for x in upper_left.x..=lower_right.x {
        for y in upper_left.y..=lower_right.y {
            let tile = Tile { x, y, zoom };
            if rectangle || Geometry::Polygon(envelope_polygon(tile.bounds())).intersects(geometry)
            {
                tiles.push(tile);
            }
        }
    }
    Ok(tiles)
}

/// Whether a geometry is a point, or a polygon that is its envelope.
fn is_point_or_rectangle(geometry: &Geometry, envelope: Rect<f64>) -> bool {
    match geometry {
        Geometry::Point(_) => true,
        Geometry::Polygon(polygon) if polygon.interiors().is_empty() => {
            let ring = &polygon.exterior().0;
            let (min, max) = (envelope.min(), envelope.max());
            let on_corner =
                |c: &Coord<f64>| (c.x == min.x || c.x == max.x) && (c.y == min.y || c.y == max.y);
            let mut corners: Vec<(u64, u64)> = ring
                .iter()
                .map(|c| (c.x.to_bits(), c.y.to_bits()))
                .collect();
            corners.sort_unstable();
            corners.dedup();
            ring.len() == 5 && ring.iter().all(on_corner) && corners.len() == 4
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbourhood_stays_on_the_map() {
        let around = neighbourhood(tile_at(30.12, 60.0, 1));
        let keys: Vec<String> = around.into_iter().map(Tile::quadkey).collect();
        assert_eq!(keys, ["0", "2", "1", "3"]);
    }

    #[test]
    fn great_circle() {
        let km = great_circle_km(36.12, -86.67, 33.94, -118.40);
        assert!((km - 2886.448973436703).abs() < 1e-6);
        assert_eq!(great_circle_km(10.0, 20.0, 10.0, 20.0), 0.0);
    }

    #[test]
    fn radius_includes_the_center_first() {
        let tiles = tiles_within(30.12, 60.0, 1, 1000.0).unwrap();
        assert_eq!(tiles.first().map(|t| t.quadkey()), Some("1".to_string()));
        assert!(tiles_within(0.0, 0.0, 23, 1000.0).is_err());
        assert!(tiles_within(0.0, 0.0, 5, -1.0).is_err());
    }

    #[test]
    fn covering_tiles_of_a_rectangle_and_a_point() {
        let point = Geometry::Point(geo::Point::new(60.0, 30.12));
        assert_eq!(
            covering_tiles(&point, 15).unwrap(),
            [tile_at(30.12, 60.0, 15)]
        );
        // A rectangle just inside one tile.
        let tile = Tile {
            x: 2,
            y: 3,
            zoom: 3,
        };
        let (min, max) = (tile.bounds().min(), tile.bounds().max());
        let inside = Rect::new(
            Coord {
                x: min.x + 1e-6,
                y: min.y + 1e-6,
            },
            Coord {
                x: max.x - 1e-6,
                y: max.y - 1e-6,
            },
        );
        let square = Geometry::Polygon(envelope_polygon(inside));
        assert_eq!(covering_tiles(&square, 3).unwrap(), [tile]);
        let line = Geometry::LineString(geo::LineString::new(vec![
            Coord {
                x: min.x + 1e-6,
                y: min.y + 1e-6,
            },
            Coord {
                x: max.x - 1e-6,
                y: max.y - 1e-6,
            },
        ]));
        assert_eq!(covering_tiles(&line, 3).unwrap(), [tile]);
    }
}
