//! Trino's `BingTile` type: a tile of the Bing Maps tile system, its quadkey, its extent, the
//! tile of a position, and its Arrow form.
//!
//! A Bing tile is the Arrow value `Struct{x: Int32, y: Int32, zoom: Int8}`: the tile in
//! column `x` and row `y` (counted from the north) of the 2^zoom × 2^zoom grid of 256-pixel
//! tiles of the Web Mercator map, whose latitudes are clipped to ±85.05112878. Zoom levels go
//! up to 23; a quadkey of n digits is a tile of zoom n (the empty quadkey is the one tile of
//! zoom 0).

use std::f64::consts::PI;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int8Array, StructArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int64Type};
use datafusion::common::{internal_datafusion_err, Result};
use geo::{Coord, Rect};

use crate::functions::invalid_argument as invalid;

/// The finest zoom level.
pub(super) const MAX_ZOOM: u8 = 23;
/// The latitudes of the map's south and north edges.
pub(super) const MIN_LATITUDE: f64 = -85.05112878;
pub(super) const MAX_LATITUDE: f64 = 85.05112878;
/// The width of a tile in pixels.
const TILE_PIXELS: u64 = 256;

/// A Bing tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tile {
    pub(super) x: u32,
    pub(super) y: u32,
    pub(super) zoom: u8,
}

impl Tile {
    /// The tile of coordinates read from a BingTile value; an error unless it is one.
    fn checked(x: i64, y: i64, zoom: i64) -> Result<Tile> {
        let fits = (0..=i64::from(MAX_ZOOM)).contains(&zoom)
            && (0..1_i64 << zoom).contains(&x)
            && (0..1_i64 << zoom).contains(&y);
        if !fits {
            return Err(invalid(format!(
                "Invalid Bing tile: x={x}, y={y}, zoom={zoom}"
            )));
        }
        Ok(Tile {
            x: x as u32,
            y: y as u32,
            zoom: zoom as u8,
        })
    }

    /// The tile's quadkey: one digit per zoom level, from the coarsest.
    pub(super) fn quadkey(self) -> String {
        (1..=self.zoom)
            .rev()
            .map(|level| {
                let mask = 1_u32 << (level - 1);
                let digit = u8::from(self.x & mask != 0) + 2 * u8::from(self.y & mask != 0);
                char::from(b'0' + digit)
            })
            .collect()
    }

    /// The tile of a quadkey.
    pub(super) fn from_quadkey(quadkey: &str) -> Result<Tile> {
        if quadkey.len() > usize::from(MAX_ZOOM) {
            return Err(invalid(format!(
                "QuadKey must be {MAX_ZOOM} characters or less"
            )));
        }
        let zoom = quadkey.len() as u8;
        let (mut x, mut y) = (0_u32, 0_u32);
        for (i, digit) in quadkey.bytes().enumerate() {
            let mask = 1_u32 << (usize::from(zoom) - i - 1);
            match digit {
                b'0' => {}
                b'1' => x |= mask,
                b'2' => y |= mask,
                b'3' => {
                    x |= mask;
                    y |= mask;
                }
                _ => {
                    return Err(invalid(format!(
                        "Invalid QuadKey digit sequence: {quadkey}"
                    )))
                }
            }
        }
        Ok(Tile { x, y, zoom })
    }

    /// The tile's extent in longitude (x) and latitude (y).
    pub(super) fn bounds(self) -> Rect<f64> {
        let west_north = Coord {
            x: tile_longitude(self.x, self.zoom),
            y: tile_latitude(self.y, self.zoom),
        };
        let east_south = Coord {
            x: tile_longitude(self.x + 1, self.zoom),
            y: tile_latitude(self.y + 1, self.zoom),
        };
        Rect::new(west_north, east_south)
    }
}

/// The width of the map at a zoom level, in pixels.
fn map_size(zoom: u8) -> f64 {
    (TILE_PIXELS << zoom) as f64
}

/// The tile column or row of a map position given as a fraction of the map's width.
fn axis_tile(fraction: f64, map_size: f64) -> u32 {
    let pixel = (fraction * map_size).max(0.0).min(map_size - 1.0);
    (pixel as u64 / TILE_PIXELS) as u32
}

/// The tile holding a position (latitudes beyond the map's are clipped to its edge).
pub(super) fn tile_at(latitude: f64, longitude: f64, zoom: u8) -> Tile {
    let size = map_size(zoom);
    let x = (longitude + 180.0) / 360.0;
    let sin = (latitude * PI / 180.0).sin();
    let y = 0.5 - ((1.0 + sin) / (1.0 - sin)).ln() / (4.0 * PI);
    Tile {
        x: axis_tile(x, size),
        y: axis_tile(y, size),
        zoom,
    }
}

/// The longitude of the west edge of tile column `x`.
pub(super) fn tile_longitude(x: u32, zoom: u8) -> f64 {
    let size = map_size(zoom);
    let fraction = (f64::from(x) * TILE_PIXELS as f64).max(0.0).min(size) / size;
    360.0 * (fraction - 0.5)
}

/// The latitude of the north edge of tile row `y`.
pub(super) fn tile_latitude(y: u32, zoom: u8) -> f64 {
    let size = map_size(zoom);
    let fraction = 0.5 - (f64::from(y) * TILE_PIXELS as f64).max(0.0).min(size) / size;
    90.0 - 360.0 * (-fraction * 2.0 * PI).exp().atan() / PI
}

/// Whether values of a type are Bing tiles (NULL is).
pub(super) fn is_tile_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Null => true,
        DataType::Struct(fields) => ["x", "y", "zoom"]
            .iter()
            .all(|name| fields.iter().any(|field| field.name() == name)),
        _ => false,
    }
}

fn tile_fields() -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("y", DataType::Int32, true),
        Field::new("zoom", DataType::Int8, true),
    ])
}

fn coordinates_fields() -> Fields {
    Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("y", DataType::Int32, true),
    ])
}

/// The Arrow type of a Bing tile.
pub(super) fn tile_type() -> DataType {
    DataType::Struct(tile_fields())
}

/// The Arrow type of `bing_tile_coordinates`: Trino's `row(x integer, y integer)`.
pub(super) fn coordinates_type() -> DataType {
    DataType::Struct(coordinates_fields())
}

/// The tiles of a BingTile array.
pub(super) fn read_tiles(array: &ArrayRef) -> Result<Vec<Option<Tile>>> {
    if array.data_type() == &DataType::Null {
        return Ok(vec![None; array.len()]);
    }
    let tiles = array.as_struct_opt().ok_or_else(|| {
        internal_datafusion_err!("Expected a Bing tile, got {}", array.data_type())
    })?;
    let field = |name: &str| -> Result<Vec<Option<i64>>> {
        let column = tiles
            .column_by_name(name)
            .ok_or_else(|| internal_datafusion_err!("A Bing tile has no field {name}"))?;
        let column = cast(column, &DataType::Int64)?;
        Ok(column.as_primitive::<Int64Type>().iter().collect())
    };
    let (xs, ys, zooms) = (field("x")?, field("y")?, field("zoom")?);
    (0..tiles.len())
        .map(|row| match (xs.get(row), ys.get(row), zooms.get(row)) {
            (Some(Some(x)), Some(Some(y)), Some(Some(zoom))) if tiles.is_valid(row) => {
                Tile::checked(*x, *y, *zoom).map(Some)
            }
            _ => Ok(None),
        })
        .collect()
}

/// A BingTile array of tiles (NULL for `None`).
pub(super) fn tiles_array(tiles: &[Option<Tile>]) -> Result<ArrayRef> {
    let part = |get: fn(Tile) -> i32| -> Vec<i32> {
        tiles.iter().map(|tile| tile.map_or(0, get)).collect()
    };
    let zooms: Vec<i8> = tiles
        .iter()
        .map(|tile| tile.map_or(0, |t| t.zoom as i8))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(part(|t| t.x as i32))),
        Arc::new(Int32Array::from(part(|t| t.y as i32))),
        Arc::new(Int8Array::from(zooms)),
    ];
    let nulls = NullBuffer::from(tiles.iter().map(Option::is_some).collect::<Vec<bool>>());
    Ok(Arc::new(StructArray::try_new(
        tile_fields(),
        columns,
        Some(nulls),
    )?))
}

/// The array of `bing_tile_coordinates` answers (NULL for `None`).
pub(super) fn coordinates_array(coordinates: &[Option<(i32, i32)>]) -> Result<ArrayRef> {
    let xs: Vec<i32> = coordinates.iter().map(|c| c.map_or(0, |c| c.0)).collect();
    let ys: Vec<i32> = coordinates.iter().map(|c| c.map_or(0, |c| c.1)).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(xs)),
        Arc::new(Int32Array::from(ys)),
    ];
    let nulls = NullBuffer::from(
        coordinates
            .iter()
            .map(Option::is_some)
            .collect::<Vec<bool>>(),
    );
    Ok(Arc::new(StructArray::try_new(
        coordinates_fields(),
        columns,
        Some(nulls),
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadkeys() {
        let tile = Tile {
            x: 3,
            y: 5,
            zoom: 3,
        };
        assert_eq!(tile.quadkey(), "213");
        assert_eq!(Tile::from_quadkey("213").unwrap(), tile);
        assert_eq!(
            Tile::from_quadkey("").unwrap(),
            Tile {
                x: 0,
                y: 0,
                zoom: 0
            }
        );
        assert!(Tile::from_quadkey("214").is_err());
        assert!(Tile::from_quadkey(&"0".repeat(24)).is_err());
    }

    #[test]
    fn tile_polygon_and_position() {
        // Trino's TestBingTileFunctions.
        let tile = Tile::from_quadkey("123030123010121").unwrap();
        let bounds = tile.bounds();
        assert_eq!(bounds.min().x, 59.996337890625);
        assert_eq!(bounds.max().x, 60.00732421875);
        assert!((bounds.min().y - 30.11662158281937).abs() < 1e-12);
        assert!((bounds.max().y - 30.12612436422458).abs() < 1e-12);
        assert_eq!(tile_at(30.12, 60.0, 15), tile);
    }
}
