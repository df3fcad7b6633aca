//! `column = 'text'` over string views, compared a view at a time.
//!
//! Arrow's comparison of string views looks at one row at a time through a chain of
//! branches (lengths, prefixes, inlined bytes, then the bytes in their buffer), and a
//! filter on a string column runs it for every row: in TPC-H q19 the equalities on
//! `l_shipinstruct` and `l_shipmode` were 22 % of the query's samples. A Parquet column
//! is mostly dictionary-encoded, and the reader gives every row of one dictionary value
//! the same view — same length, prefix, buffer and offset.
//!
//! [`ViewEquals`] compares each row's 16-byte view with the one of the text: equal views
//! are equal strings when the text is inlined (12 bytes or less, zero-padded), and
//! otherwise a row whose length and prefix match is checked against the last view found
//! equal before its bytes are compared. [`views_compared`] puts it in place of
//! DataFusion's `=` and `<>` of a string-view column and a text literal.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, StringViewArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::PhysicalExpr;

/// Inlined strings of a view are at most this long.
const INLINED: usize = 12;

/// `column = text` (or `<>`) where `column` is a string-view column.
#[derive(Debug, Clone, Eq)]
pub(crate) struct ViewEquals {
    column: Arc<dyn PhysicalExpr>,
    /// The literal as the query wrote it, for display.
    literal: Arc<dyn PhysicalExpr>,
    text: String,
    negated: bool,
}

// By hand: deriving them for `Arc<dyn PhysicalExpr>` fields moves out of a reference
// (rust-lang/rust#78808).
impl PartialEq for ViewEquals {
    fn eq(&self, other: &Self) -> bool {
        self.column.eq(&other.column) && self.text == other.text && self.negated == other.negated
    }
}

impl Hash for ViewEquals {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.column.hash(state);
        self.text.hash(state);
        self.negated.hash(state);
    }
}

/// `expr` with each `=` and `<>` of a string-view column of `schema` and a text literal
/// made a [`ViewEquals`].
pub(crate) fn views_compared(
    expr: Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    expr.transform_up(|node| {
        let Some(binary) = node.as_any().downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(node));
        };
        let negated = match binary.op() {
            Operator::Eq => false,
            Operator::NotEq => true,
            _ => return Ok(Transformed::no(node)),
        };
        let (left, right) = (binary.left(), binary.right());
        let (column, literal) = if left.as_any().is::<Column>() {
            (left, right)
        } else {
            (right, left)
        };
        let (true, Some(text)) = (
            column.as_any().is::<Column>() && column.data_type(schema)? == DataType::Utf8View,
            text_of(literal),
        ) else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(Arc::new(ViewEquals {
            column: Arc::clone(column),
            literal: Arc::clone(literal),
            text,
            negated,
        }) as Arc<dyn PhysicalExpr>))
    })
}

/// The text of a literal string, or of one cast to another string type.
fn text_of(expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
    if let Some(cast) = expr.as_any().downcast_ref::<CastExpr>() {
        return text_of(cast.expr());
    }
    match expr.as_any().downcast_ref::<Literal>()?.value() {
        ScalarValue::Utf8(Some(text))
        | ScalarValue::Utf8View(Some(text))
        | ScalarValue::LargeUtf8(Some(text)) => Some(text.clone()),
        _ => None,
    }
}

/// Where the strings of `array` are `text`.
fn equal(array: &StringViewArray, text: &str) -> BooleanBuffer {
    let views = array.views();
    let bytes = text.as_bytes();
    let wanted = datafusion::arrow::array::builder::make_view(bytes, 0, 0);
    if bytes.len() <= INLINED {
        return BooleanBuffer::collect_bool(views.len(), |row| views[row] == wanted);
    }
    // Length and prefix: the view's low 8 bytes.
    let head = wanted as u64;
    let buffers = array.data_buffers();
    let mut found: Option<u128> = None;
    BooleanBuffer::collect_bool(views.len(), |row| {
        let view = views[row];
        if view as u64 != head {
            return false;
        }
        if found == Some(view) {
            return true;
        }
        let buffer = (view >> 64) as u32 as usize;
        let offset = (view >> 96) as u32 as usize;
        let same = buffers
            .get(buffer)
            .and_then(|data| data.get(offset..offset + bytes.len()))
            == Some(bytes);
        if same {
            found = Some(view);
        }
        same
    })
}

impl fmt::Display for ViewEquals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.negated { "!=" } else { "=" };
        write!(f, "{} {op} {}", self.column, self.literal)
    }
}

impl PhysicalExpr for ViewEquals {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.column.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let array = self.column.evaluate(batch)?.into_array(batch.num_rows())?;
        let Some(views) = array.as_string_view_opt() else {
            return internal_err!("{} is {}, not string views", self.column, array.data_type());
        };
        let mut values = equal(views, &self.text);
        if self.negated {
            values = !&values;
        }
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            values,
            views.nulls().cloned(),
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.column]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let Ok([column]) = <[_; 1]>::try_from(children) else {
            return internal_err!("a string comparison takes one column");
        };
        Ok(Arc::new(Self {
            column,
            ..(*self).clone()
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.negated { "!=" } else { "=" };
        self.column.fmt_sql(f)?;
        write!(f, " {op} ")?;
        self.literal.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewBuilder;
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{binary, lit};

    /// Rows of a dictionary-decoded column: one buffer, every row of a value the same
    /// view. Plus short strings, a string of the text's length and prefix, and NULLs.
    fn column() -> StringViewArray {
        let mut builder = StringViewBuilder::new().with_deduplicate_strings();
        for value in [
            Some("DELIVER IN PERSON"),
            Some("AIR"),
            Some("DELIVER IN PERSOX"),
            None,
            Some("DELIVER IN PERSON"),
            Some(""),
            Some("AIR REG"),
            Some("COLLECT COD"),
        ] {
            builder.append_option(value);
        }
        let array = builder.finish();
        assert_eq!(array.views()[0], array.views()[4]);
        array
    }

    fn evaluate(op: Operator, text: &str) -> Vec<Option<bool>> {
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8View, true)]);
        let batch =
            RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(column())]).unwrap();
        let cast = Arc::new(CastExpr::new(lit(text), DataType::Utf8View, None));
        let column = Arc::new(Column::new("s", 0));
        let expr = binary(column, op, cast, &schema).unwrap();
        let expected = expr.evaluate(&batch).unwrap().into_array(8).unwrap();
        let ours = views_compared(expr, &schema).unwrap().data;
        assert!(ours.as_any().is::<ViewEquals>(), "{ours}");
        let got = ours.evaluate(&batch).unwrap().into_array(8).unwrap();
        assert_eq!(got.as_boolean(), expected.as_boolean(), "{op} {text}");
        got.as_boolean().iter().collect()
    }

    #[test]
    fn views_equal_to_a_text_are_found_as_arrow_finds_them() {
        let n = None;
        let (t, f) = (Some(true), Some(false));
        assert_eq!(
            evaluate(Operator::Eq, "DELIVER IN PERSON"),
            [t, f, f, n, t, f, f, f]
        );
        assert_eq!(evaluate(Operator::Eq, "AIR"), [f, t, f, n, f, f, f, f]);
        assert_eq!(evaluate(Operator::NotEq, "AIR"), [t, f, t, n, t, t, t, t]);
        assert_eq!(evaluate(Operator::Eq, ""), [f, f, f, n, f, t, f, f]);
        assert_eq!(
            evaluate(Operator::Eq, "COLLECT COD"),
            [f, f, f, n, f, f, f, t]
        );
        assert_eq!(
            evaluate(Operator::Eq, "nowhere at all!"),
            [f, f, f, n, f, f, f, f]
        );
    }
}
