//! The SQL sent to PostgreSQL: quoted names and literals, and the filters that can run
//! remotely with the meaning they have in the engine.
//!
//! Every name is a quoted identifier and every value an escaped literal, so no table name,
//! column name or value can change the statement. A filter is pushed only when each part
//! of it is understood here; the rest stays in the engine.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Cast, Expr, Like, Operator};

use crate::types::{Kind, RemoteColumn};

/// A quoted PostgreSQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL string literal that means the same whatever `standard_conforming_strings`
/// is: an escape string with backslashes and quotes doubled. `None` for text with a NUL
/// character, which PostgreSQL text cannot hold.
pub fn quote_literal(value: &str) -> Option<String> {
    if value.contains('\0') {
        return None;
    }
    Some(format!(
        "E'{}'",
        value.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// ` WHERE a AND b` for the given conditions; nothing when there are none.
pub fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// A translated expression and whether it is text the engine compares byte-wise.
struct Sql {
    text: String,
    textual: bool,
}

/// The columns a filter may use, and how the remote statement names them.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub columns: &'a [RemoteColumn],
    /// The table alias columns are prefixed with (`t0."id"`), if any.
    pub alias: Option<&'a str>,
}

impl Scope<'_> {
    fn find(&self, name: &str) -> Option<(String, &RemoteColumn)> {
        let column = self.columns.iter().find(|c| c.name == name)?;
        let quoted = quote_ident(&column.name);
        Some((
            match self.alias {
                Some(alias) => format!("{alias}.{quoted}"),
                None => quoted,
            },
            column,
        ))
    }
}

/// The remote form of a filter over a table's columns, when it has one.
pub fn filter(expr: &Expr, columns: &[RemoteColumn]) -> Option<String> {
    predicate(
        expr,
        Scope {
            columns,
            alias: None,
        },
    )
}

/// The remote form of a filter over an aliased table's columns.
pub fn filter_in(expr: &Expr, scope: Scope) -> Option<String> {
    predicate(expr, scope)
}

fn predicate(expr: &Expr, columns: Scope) -> Option<String> {
    Some(match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => format!(
                "({} {} {})",
                predicate(left, columns)?,
                if *op == Operator::And { "AND" } else { "OR" },
                predicate(right, columns)?
            ),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => {
                let left = value(left, columns)?;
                let right = value(right, columns)?;
                let range = matches!(
                    op,
                    Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
                );
                let collate = if range && (left.textual || right.textual) {
                    " COLLATE \"C\""
                } else {
                    ""
                };
                let op = match op {
                    Operator::IsDistinctFrom => "IS DISTINCT FROM",
                    Operator::IsNotDistinctFrom => "IS NOT DISTINCT FROM",
                    other => other_symbol(other)?,
                };
                format!("({}{collate} {op} {})", left.text, right.text)
            }
            _ => return None,
        },
        Expr::Not(inner) => format!("(NOT {})", predicate(inner, columns)?),
        Expr::IsNull(inner) => format!("({} IS NULL)", any_column(inner, columns)?),
        Expr::IsNotNull(inner) => format!("({} IS NOT NULL)", any_column(inner, columns)?),
        Expr::IsTrue(inner) => format!("({} IS TRUE)", predicate(inner, columns)?),
        Expr::IsFalse(inner) => format!("({} IS FALSE)", predicate(inner, columns)?),
        Expr::IsNotTrue(inner) => format!("({} IS NOT TRUE)", predicate(inner, columns)?),
        Expr::IsNotFalse(inner) => format!("({} IS NOT FALSE)", predicate(inner, columns)?),
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let subject = value(expr, columns)?;
            let low = value(low, columns)?;
            let high = value(high, columns)?;
            let collate = if subject.textual || low.textual || high.textual {
                " COLLATE \"C\""
            } else {
                ""
            };
            format!(
                "({}{collate} {}BETWEEN {} AND {})",
                subject.text,
                if *negated { "NOT " } else { "" },
                low.text,
                high.text
            )
        }
        Expr::InList(list) => {
            let subject = value(&list.expr, columns)?;
            let items = list
                .list
                .iter()
                .map(|item| value(item, columns).map(|sql| sql.text))
                .collect::<Option<Vec<_>>>()?;
            if items.is_empty() {
                return None;
            }
            format!(
                "({} {}IN ({}))",
                subject.text,
                if list.negated { "NOT " } else { "" },
                items.join(", ")
            )
        }
        Expr::Like(Like {
            negated,
            expr,
            pattern,
            escape_char,
            case_insensitive: false,
        }) => {
            let subject = value(expr, columns)?;
            let Expr::Literal(
                ScalarValue::Utf8(Some(p))
                | ScalarValue::LargeUtf8(Some(p))
                | ScalarValue::Utf8View(Some(p)),
                _,
            ) = pattern.as_ref()
            else {
                return None;
            };
            // Trino's LIKE has no escape character unless one is given; PostgreSQL's
            // default is the backslash.
            let escape = match escape_char {
                Some(c) => quote_literal(&c.to_string())?,
                None => "''".to_string(),
            };
            format!(
                "({} COLLATE \"C\" {}LIKE {} ESCAPE {escape})",
                subject.text,
                if *negated { "NOT " } else { "" },
                quote_literal(p)?
            )
        }
        Expr::Column(_) => {
            let column = value(expr, columns)?;
            column.text
        }
        _ => return None,
    })
}

fn other_symbol(op: &Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "=",
        Operator::NotEq => "<>",
        Operator::Lt => "<",
        Operator::LtEq => "<=",
        Operator::Gt => ">",
        Operator::GtEq => ">=",
        _ => return None,
    })
}

/// A column for a NULL test: any column, whatever its type.
fn any_column(expr: &Expr, columns: Scope) -> Option<String> {
    match expr {
        Expr::Column(c) => columns.find(&c.name).map(|(sql, _)| sql),
        _ => None,
    }
}

/// A comparable value: a column whose comparisons mean the same remotely, a literal, or
/// a widening numeric cast of either.
fn value(expr: &Expr, columns: Scope) -> Option<Sql> {
    match expr {
        Expr::Column(c) => {
            let (sql, column) = columns.find(&c.name)?;
            column.comparable.then_some(Sql {
                text: sql,
                textual: column.textual,
            })
        }
        Expr::Literal(scalar, _) => literal(scalar),
        Expr::Cast(Cast { expr, data_type }) => {
            let inner = value(expr, columns)?;
            let numeric_source = match expr.as_ref() {
                Expr::Column(c) => columns.columns.iter().any(|col| {
                    col.name == c.name
                        && matches!(
                            col.kind,
                            Kind::Int16 | Kind::Int32 | Kind::Int64 | Kind::Float32 | Kind::Float64
                        )
                }),
                Expr::Literal(s, _) => s.data_type().is_numeric(),
                _ => false,
            };
            if !numeric_source {
                return None;
            }
            let target = match data_type {
                DataType::Int16 => "smallint",
                DataType::Int32 => "integer",
                DataType::Int64 => "bigint",
                DataType::Float64 => "double precision",
                _ => return None,
            };
            Some(Sql {
                text: format!("CAST({} AS {target})", inner.text),
                textual: false,
            })
        }
        _ => None,
    }
}

fn literal(scalar: &ScalarValue) -> Option<Sql> {
    let plain = |text: String| {
        Some(Sql {
            text,
            textual: false,
        })
    };
    match scalar {
        ScalarValue::Boolean(Some(b)) => plain(if *b { "TRUE" } else { "FALSE" }.into()),
        ScalarValue::Int8(Some(v)) => plain(format!("({v})")),
        ScalarValue::Int16(Some(v)) => plain(format!("({v})")),
        ScalarValue::Int32(Some(v)) => plain(format!("({v})")),
        ScalarValue::Int64(Some(v)) => plain(format!("({v})")),
        ScalarValue::UInt8(Some(v)) => plain(v.to_string()),
        ScalarValue::UInt16(Some(v)) => plain(v.to_string()),
        ScalarValue::UInt32(Some(v)) => plain(v.to_string()),
        ScalarValue::UInt64(Some(v)) => plain(v.to_string()),
        ScalarValue::Float32(Some(v)) if v.is_finite() => plain(format!("CAST('{v:?}' AS real)")),
        ScalarValue::Float64(Some(v)) if v.is_finite() => {
            plain(format!("CAST('{v:?}' AS double precision)"))
        }
        ScalarValue::Decimal128(Some(_), _, _) => plain(format!("({scalar})")),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(Sql {
            text: quote_literal(s)?,
            textual: true,
        }),
        ScalarValue::Date32(Some(_)) => plain(format!("DATE '{scalar}'")),
        ScalarValue::TimestampSecond(Some(_), tz)
        | ScalarValue::TimestampMillisecond(Some(_), tz)
        | ScalarValue::TimestampMicrosecond(Some(_), tz)
        | ScalarValue::TimestampNanosecond(Some(_), tz) => {
            let micros = timestamp_micros(scalar)?;
            let (date, time) = micros_to_text(micros)?;
            match tz {
                None => plain(format!("TIMESTAMP '{date} {time}'")),
                Some(_) => plain(format!("TIMESTAMPTZ '{date} {time}+00'")),
            }
        }
        _ => None,
    }
}

/// A timestamp literal in microseconds since the epoch, when it has no finer digits.
fn timestamp_micros(scalar: &ScalarValue) -> Option<i64> {
    match scalar {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => (v % 1_000 == 0).then_some(v / 1_000),
        _ => None,
    }
}

/// UTC date and time text of microseconds since the epoch.
fn micros_to_text(micros: i64) -> Option<(String, String)> {
    let datetime = datafusion::arrow::temporal_conversions::as_datetime::<
        datafusion::arrow::datatypes::TimestampMicrosecondType,
    >(micros)?;
    Some((
        datetime.format("%Y-%m-%d").to_string(),
        datetime.format("%H:%M:%S%.6f").to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn columns() -> Vec<RemoteColumn> {
        vec![
            RemoteColumn::new("id".into(), "int4", -1, None, false, None),
            RemoteColumn::new("na\"me".into(), "text", -1, None, true, None),
            RemoteColumn::new("doc".into(), "jsonb", -1, None, true, None),
        ]
    }

    #[test]
    fn quoting_keeps_names_and_values_inside_their_quotes() {
        assert_eq!(
            quote_ident("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
        assert_eq!(
            quote_literal("it's */ \\'; --").unwrap(),
            "E'it''s */ \\\\''; --'"
        );
        assert_eq!(quote_literal("a\0b"), None);
    }

    #[test]
    fn comparisons_and_logic_are_pushed() {
        let expr = col("id").gt(lit(5)).and(col("na\"me").eq(lit("o'k")));
        assert_eq!(
            filter(&expr, &columns()).unwrap(),
            "((\"id\" > (5)) AND (\"na\"\"me\" = E'o''k'))"
        );
        let expr = col("na\"me").lt(lit("m"));
        assert_eq!(
            filter(&expr, &columns()).unwrap(),
            "(\"na\"\"me\" COLLATE \"C\" < E'm')"
        );
        let expr = col("na\"me").like(lit("a\\%"));
        assert_eq!(
            filter(&expr, &columns()).unwrap(),
            "(\"na\"\"me\" COLLATE \"C\" LIKE E'a\\\\%' ESCAPE '')"
        );
    }

    #[test]
    fn what_means_something_else_remotely_stays_local() {
        assert!(filter(&col("doc").eq(lit("{}")), &columns()).is_none());
        assert!(filter(&col("doc").is_null(), &columns()).is_some());
        assert!(filter(&(col("id") + lit(1)).gt(lit(5)), &columns()).is_none());
        assert!(filter(&col("missing").eq(lit(1)), &columns()).is_none());
    }
}
