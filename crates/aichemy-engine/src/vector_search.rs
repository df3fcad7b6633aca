//! `TABLE(vector_search(…))`: the nearest rows of a table to a vector, the best matches of
//! a text, or both fused by reciprocal rank, with the search's knobs.
//!
//! ```sql
//! SELECT * FROM TABLE(vector_search(
//!     table => 'lance.docs.chunks', column => 'embedding',
//!     query => embed('how do I rotate keys?'), k => 5, metric => 'cosine',
//!     filter => 'lang = ''en''', nprobes => 20, refine_factor => 5,
//!     text => 'rotate keys', text_column => 'body', key => 'id'))
//! ```
//!
//! The call is written as a query over the table before planning, so the table is read as
//! any query reads it (the reader's rights, row filter and column masks; the audit names
//! it), and the search rule asks the table for the search where it can:
//! - a vector only: the table's columns and `_distance` (`euclidean_distance`,
//!   `cosine_distance`, or `1 - dot_product`), nearest first, `k` rows of those `filter`
//!   keeps; `nprobes`, `refine_factor`, `ef` tune an index search, `exact => true` reads
//!   every vector;
//! - a text only: the columns and `_score`, the best `k` matches of `text` in `text_column`
//!   (BM25 through a Lance text index; elsewhere the words found);
//! - both: each side's best `k × 2` fused by reciprocal rank (`1/(60 + rank)` summed, in
//!   `_score`), rows named by `key`, with `_distance` where the vector side found the row.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArgOperator, FunctionArguments, Ident, Query,
    SetExpr, Statement, TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;

use crate::error::{ErrorCode, Result, TrinoError};

/// The constant of reciprocal rank fusion (the paper's, and lancedb's).
const RRF_K: u32 = 60;

/// Rewrites every `TABLE(vector_search(…))` of `statement` as the query it stands for.
pub(crate) fn rewrite(statement: &mut Statement) -> Result<()> {
    let mut visitor = Rewriter { error: None };
    let _ = statement.visit(&mut visitor);
    match visitor.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct Rewriter {
    error: Option<TrinoError>,
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::TableFunction { expr, alias } = factor else {
            return ControlFlow::Continue(());
        };
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let name = function.name.to_string().to_ascii_lowercase();
        if !matches!(name.as_str(), "vector_search" | "system.vector_search") {
            return ControlFlow::Continue(());
        }
        let query = arguments(&function.args).and_then(|args| query_for(&args));
        match query {
            Ok(query) => {
                *factor = TableFactor::Derived {
                    lateral: false,
                    subquery: Box::new(query),
                    alias: Some(alias.clone().unwrap_or_else(|| TableAlias {
                        name: Ident::new("vector_search"),
                        columns: vec![],
                        explicit: true,
                    })),
                    sample: None,
                };
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

fn argument_error(message: impl Into<String>) -> TrinoError {
    TrinoError::new(ErrorCode::INVALID_FUNCTION_ARGUMENT, message)
}

/// The order positional arguments take.
const NAMES: &[&str] = &[
    "table",
    "column",
    "query",
    "k",
    "metric",
    "filter",
    "nprobes",
    "refine_factor",
    "ef",
    "exact",
    "text",
    "text_column",
    "key",
];

fn arguments(args: &FunctionArguments) -> Result<Vec<(&'static str, Expr)>> {
    let FunctionArguments::List(list) = args else {
        return Err(argument_error("vector_search needs arguments"));
    };
    let mut named: Vec<(&'static str, Expr)> = Vec::new();
    for (i, arg) in list.args.iter().enumerate() {
        let (name, value) = match arg {
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(value),
                operator: FunctionArgOperator::RightArrow,
            } => (Some(name.value.to_ascii_lowercase()), value),
            FunctionArg::Unnamed(FunctionArgExpr::Expr(value)) => (None, value),
            other => return Err(argument_error(format!("Invalid argument: {other}"))),
        };
        let name = match name {
            Some(name) => NAMES.iter().find(|n| **n == name).copied().ok_or_else(|| {
                argument_error(format!(
                    "vector_search has no argument {name}; it takes {}",
                    NAMES.join(", ")
                ))
            })?,
            None => *NAMES
                .get(i)
                .ok_or_else(|| argument_error("Too many arguments for vector_search"))?,
        };
        if named.iter().any(|(n, _)| *n == name) {
            return Err(argument_error(format!("Duplicate argument: {name}")));
        }
        named.push((name, value.clone()));
    }
    Ok(named)
}

fn get<'a>(args: &'a [(&'static str, Expr)], name: &str) -> Option<&'a Expr> {
    args.iter().find(|(n, _)| *n == name).map(|(_, e)| e)
}

fn text(args: &[(&'static str, Expr)], name: &str) -> Result<Option<String>> {
    match get(args, name) {
        None => Ok(None),
        Some(Expr::Value(value)) => match &value.value {
            Value::SingleQuotedString(s) => Ok(Some(s.clone())),
            Value::Null => Ok(None),
            _ => Err(argument_error(format!("{name} must be a varchar literal"))),
        },
        Some(_) => Err(argument_error(format!("{name} must be a varchar literal"))),
    }
}

fn count(args: &[(&'static str, Expr)], name: &str) -> Result<Option<u64>> {
    match get(args, name) {
        None => Ok(None),
        Some(Expr::Value(value)) => match &value.value {
            Value::Number(n, _) => match n.parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(argument_error(format!(
                    "{name} must be a positive integer: {n}"
                ))),
            },
            Value::Null => Ok(None),
            _ => Err(argument_error(format!("{name} must be a positive integer"))),
        },
        Some(other) => Err(argument_error(format!(
            "{name} must be a positive integer: {other}"
        ))),
    }
}

/// A name the user gave as text, checked to be one name and printed quoted as needed.
fn name_text(value: &str, what: &str, parts: std::ops::RangeInclusive<usize>) -> Result<String> {
    let dialect = crate::dialect::dialect();
    let parsed = Parser::new(&dialect)
        .try_with_sql(value)
        .and_then(|mut parser| {
            let name = parser.parse_object_name(false)?;
            parser.expect_token(&datafusion::sql::sqlparser::tokenizer::Token::EOF)?;
            Ok(name)
        })
        .map_err(|_| argument_error(format!("{what} is not a name: {value}")))?;
    if !parts.contains(&parsed.0.len()) {
        return Err(argument_error(format!("{what} is not a name: {value}")));
    }
    Ok(parsed.to_string())
}

/// A condition the user gave as text, checked to be one expression.
fn condition_text(value: &str) -> Result<String> {
    let dialect = crate::dialect::dialect();
    Parser::new(&dialect)
        .try_with_sql(value)
        .and_then(|mut parser| {
            let expr = parser.parse_expr()?;
            parser.expect_token(&datafusion::sql::sqlparser::tokenizer::Token::EOF)?;
            Ok(expr)
        })
        .map(|expr| expr.to_string())
        .map_err(|e| argument_error(format!("filter is not a condition: {e}")))
}

fn quote_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The query a call stands for.
fn query_for(args: &[(&'static str, Expr)]) -> Result<Query> {
    let table = text(args, "table")?
        .ok_or_else(|| argument_error("vector_search needs table => 'catalog.schema.table'"))?;
    let table = name_text(&table, "table", 1..=3)?;
    let k = count(args, "k")?.unwrap_or(10);
    if k > 10_000 {
        return Err(argument_error(format!("k must be at most 10000: {k}")));
    }
    let filter = match text(args, "filter")? {
        Some(filter) => format!("({})", condition_text(&filter)?),
        None => "TRUE".to_string(),
    };
    let vector = get(args, "query").cloned();
    let words = text(args, "text")?;
    let vector_side = match &vector {
        None => None,
        Some(query) => {
            let column = text(args, "column")?
                .ok_or_else(|| argument_error("A vector query needs column => 'name'"))?;
            let column = name_text(&column, "column", 1..=1)?;
            let metric = text(args, "metric")?.unwrap_or_else(|| "l2".to_string());
            let (function, descending) = match metric.to_ascii_lowercase().as_str() {
                "l2" | "euclidean" => ("euclidean_distance", false),
                "cosine" => ("cosine_distance", false),
                "dot" => ("dot_product", true),
                other => {
                    return Err(argument_error(format!(
                        "Unknown metric '{other}': expected l2, cosine or dot"
                    )))
                }
            };
            let measure = format!("{function}(\"$searched\".{column}, {query})");
            let distance = match descending {
                true => format!("1e0 - {measure}"),
                false => measure.clone(),
            };
            let option = |name: &str| -> Result<String> {
                Ok(count(args, name)?.map_or("NULL".to_string(), |n| n.to_string()))
            };
            let exact = match get(args, "exact") {
                None => false,
                Some(Expr::Value(value)) => match value.value {
                    Value::Boolean(b) => b,
                    _ => return Err(argument_error("exact must be true or false")),
                },
                Some(_) => return Err(argument_error("exact must be true or false")),
            };
            let ranked = format!(
                "\"$search_options\"({measure}, {}, {}, {}, {exact})",
                option("nprobes")?,
                option("refine_factor")?,
                option("ef")?,
            );
            // The order nearest first, and a value that ascends nearest first.
            let (order, ascending) = match descending {
                true => (format!("{ranked} DESC"), format!("-({ranked})")),
                false => (format!("{ranked} ASC"), ranked),
            };
            Some((distance, order, ascending))
        }
    };
    let text_side = match &words {
        None => None,
        Some(words) => {
            let column = text(args, "text_column")?
                .ok_or_else(|| argument_error("A text query needs text_column => 'name'"))?;
            let column = name_text(&column, "text_column", 1..=1)?;
            Some(format!(
                "\"$text_score\"(\"$searched\".{column}, {})",
                quote_text(words)
            ))
        }
    };
    let sql = match (vector_side, text_side) {
        (None, None) => {
            return Err(argument_error(
                "vector_search needs query => vector, text => 'words', or both",
            ))
        }
        (Some((distance, order, _)), None) => format!(
            "SELECT \"$searched\".*, {distance} AS \"_distance\" FROM {table} AS \"$searched\" \
             WHERE {filter} ORDER BY {order} LIMIT {k}"
        ),
        (None, Some(score)) => format!(
            "SELECT \"$searched\".*, {score} AS \"_score\" FROM {table} AS \"$searched\" \
             WHERE {filter} AND {score} > 0 ORDER BY {score} DESC LIMIT {k}"
        ),
        (Some((distance, order, ascending)), Some(score)) => {
            let key = text(args, "key")?.ok_or_else(|| {
                argument_error("A search by vector and text needs key => 'column' naming rows")
            })?;
            let key = name_text(&key, "key", 1..=1)?;
            let wide = k * 2;
            format!(
                "SELECT \"$searched\".*, \"$fused\".\"_distance\", \"$fused\".\"_score\" \
                 FROM {table} AS \"$searched\" JOIN ( \
                   SELECT coalesce(v.\"$key\", t.\"$key\") AS \"$key\", \
                     coalesce(1e0 / ({RRF_K} + v.\"$rank\"), 0e0) \
                       + coalesce(1e0 / ({RRF_K} + t.\"$rank\"), 0e0) AS \"_score\", \
                     v.\"_distance\" \
                   FROM ( \
                     SELECT \"$key\", \"_distance\", \
                       row_number() OVER (ORDER BY \"$order\") AS \"$rank\" FROM ( \
                       SELECT \"$searched\".{key} AS \"$key\", {distance} AS \"_distance\", \
                         {order_value} AS \"$order\" \
                       FROM {table} AS \"$searched\" WHERE {filter} \
                       ORDER BY {order} LIMIT {wide})) v \
                   FULL JOIN ( \
                     SELECT \"$key\", row_number() OVER (ORDER BY \"$s\" DESC) AS \"$rank\" \
                     FROM ( \
                       SELECT \"$searched\".{key} AS \"$key\", {score} AS \"$s\" \
                       FROM {table} AS \"$searched\" WHERE {filter} AND {score} > 0 \
                       ORDER BY {score} DESC LIMIT {wide})) t \
                   ON v.\"$key\" = t.\"$key\") AS \"$fused\" \
                 ON \"$searched\".{key} = \"$fused\".\"$key\" \
                 ORDER BY \"$fused\".\"_score\" DESC LIMIT {k}",
                order_value = ascending,
            )
        }
    };
    let mut statements = crate::dialect::parse_statements(&sql)?;
    match statements.pop() {
        Some(Statement::Query(query)) if matches!(*query.body, SetExpr::Select(_)) => Ok(*query),
        _ => Err(argument_error("vector_search could not be planned")),
    }
}
