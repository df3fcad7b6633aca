//! `st_astext` as Trino writes empty geometries.
//!
//! Trino's geometry library (ESRI's) holds a line string and a multi-line string alike, as a
//! polyline, and a polygon and a multi-polygon alike, so it writes an empty line string as
//! `MULTILINESTRING EMPTY` and an empty polygon as `MULTIPOLYGON EMPTY`. geodatafusion's
//! `st_astext` writes the type the geometry has; [`AsText`] wraps it and rewrites just those
//! two texts, leaving every other answer as it is.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::FieldRef;
use datafusion::common::{internal_datafusion_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
};

/// geodatafusion's `st_astext`, with empty line strings and polygons written as Trino writes
/// them; registered in its place. The wrapped function plans every call and writes the text.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct AsText {
    inner: Arc<ScalarUDF>,
}

impl AsText {
    pub(super) fn new() -> Self {
        let inner = ScalarUDF::from(geodatafusion::udf::native::io::AsText::new());
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl ScalarUDFImpl for AsText {
    crate::functions::planned_as_inner!();

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(match self.inner.invoke_with_args(args)? {
            ColumnarValue::Array(array) => ColumnarValue::Array(trino_texts(&array)?),
            ColumnarValue::Scalar(value) => {
                let texts = trino_texts(&value.to_array()?)?;
                ColumnarValue::Scalar(ScalarValue::try_from_array(&texts, 0)?)
            }
        })
    }
}

/// The WKT texts of `st_astext`'s answer as Trino writes them (NULL stays NULL).
fn trino_texts(array: &ArrayRef) -> Result<ArrayRef> {
    let texts = array.as_string_opt::<i32>().ok_or_else(|| {
        internal_datafusion_err!("st_astext answered values of type {}", array.data_type())
    })?;
    let rewritten: StringArray = texts.iter().map(|text| text.map(trino_wkt)).collect();
    Ok(Arc::new(rewritten))
}

/// A WKT text as Trino writes it: an empty line string or polygon as the empty multi-geometry.
fn trino_wkt(text: &str) -> &str {
    match text {
        "LINESTRING EMPTY" => "MULTILINESTRING EMPTY",
        "POLYGON EMPTY" => "MULTIPOLYGON EMPTY",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Array;

    use super::*;

    #[test]
    fn empty_lines_and_polygons_are_multi() {
        assert_eq!(trino_wkt("LINESTRING EMPTY"), "MULTILINESTRING EMPTY");
        assert_eq!(trino_wkt("POLYGON EMPTY"), "MULTIPOLYGON EMPTY");
        assert_eq!(trino_wkt("MULTIPOINT EMPTY"), "MULTIPOINT EMPTY");
        assert_eq!(trino_wkt("LINESTRING (0 0, 1 1)"), "LINESTRING (0 0, 1 1)");
        let array: ArrayRef = Arc::new(StringArray::from(vec![
            Some("POLYGON EMPTY"),
            None,
            Some("POINT (1 2)"),
        ]));
        let texts = trino_texts(&array).unwrap();
        let texts = texts.as_string::<i32>();
        assert_eq!(texts.value(0), "MULTIPOLYGON EMPTY");
        assert!(texts.is_null(1));
        assert_eq!(texts.value(2), "POINT (1 2)");
    }
}
