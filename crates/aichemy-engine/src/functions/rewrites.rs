//! Trino functions that are other expressions, rewritten on the syntax tree before
//! planning:
//! - `if(c, a[, b])`: `CASE WHEN c THEN a [ELSE b] END`, so that only the chosen branch is
//!   evaluated, as in Trino;
//! - `try(CAST(x AS t))`: `TRY_CAST(x AS t)`, NULL where the cast fails; `try(x)` of any
//!   other expression: the internal lambda `"$lambda_try"`, NULL for the rows whose
//!   evaluation fails;
//! - `count_if(x)`: `count(CASE WHEN x THEN 1 END)`;
//! - `arbitrary(x)`, `any_value(x)`: `first_value(x) IGNORE NULLS`, a value of the group
//!   that is not NULL;
//! - `max_by(x, y)`, `min_by(x, y)`: `first_value(x ORDER BY y DESC|ASC)` over the rows
//!   whose `y` is not NULL;
//! - `replace(s, search)`: `replace(s, search, '')`;
//! - `date(x)`: `CAST(x AS DATE)`;
//! - `variant_is_null(v)`: `json_format(CAST(v AS JSON)) = 'null'`;
//! - `features(x, …)`: `map(ARRAY[0, …], ARRAY[CAST(x AS DOUBLE), …])`;
//! - `listagg(x, separator) WITHIN GROUP (ORDER BY …)`: `string_agg(x, separator ORDER BY …)`.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    CaseWhen, CastKind, Expr, Function, FunctionArgumentClause, Ident, NullTreatment, OrderByExpr,
    OrderByOptions, Statement, Value,
};

use crate::dialect::plain_args;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::functions::lambda::LambdaKind;

/// The functions of this module and their kind, as `SHOW FUNCTIONS` lists them.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("if", "scalar"),
    ("try", "scalar"),
    ("count_if", "aggregate"),
    ("arbitrary", "aggregate"),
    ("any_value", "aggregate"),
    ("max_by", "aggregate"),
    ("min_by", "aggregate"),
    ("listagg", "aggregate"),
    ("date", "scalar"),
    ("variant_is_null", "scalar"),
    ("features", "scalar"),
];

/// Rewrites every call of this module's functions in `statement`.
pub fn rewrite(statement: &mut Statement) -> Result<()> {
    crate::dialect::rewrite_expressions(statement, rewrite_call)
}

/// The name of an unqualified, unquoted function call, lower-cased.
fn call_name(function: &Function) -> Option<String> {
    let [part] = function.name.0.as_slice() else {
        return None;
    };
    let ident = part.as_ident()?;
    ident
        .quote_style
        .is_none()
        .then(|| ident.value.to_ascii_lowercase())
}

fn wrong_arguments(name: &str, count: usize, expected: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::FUNCTION_NOT_FOUND,
        format!(
            "Unexpected parameters ({count} arguments) for function {name}. Expected: {expected}"
        ),
    )
}

fn case_when(condition: Expr, result: Expr, otherwise: Option<Expr>) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen { condition, result }],
        else_result: otherwise.map(Box::new),
    }
}

fn call(name: &str, args: Vec<Expr>, clauses: Vec<FunctionArgumentClause>) -> Function {
    crate::dialect::function(Ident::new(name), args, clauses)
}

fn rewrite_call(expr: &mut Expr) -> Result<()> {
    let Expr::Function(function) = expr else {
        return Ok(());
    };
    let Some(name) = call_name(function) else {
        return Ok(());
    };
    // `replace(s, search)` removes `search`: DataFusion's replace takes three arguments.
    if name == "replace" {
        if let Some([text, search]) = plain_args(function).as_deref() {
            let empty = Expr::Value(Value::SingleQuotedString(String::new()).with_empty_span());
            *function = call(
                "replace",
                vec![text.clone(), search.clone(), empty],
                Vec::new(),
            );
        }
        return Ok(());
    }
    if !FUNCTIONS.iter().any(|(known, _)| *known == name) {
        return Ok(());
    }
    let Some(args) = plain_args(function) else {
        return Ok(());
    };
    let (filter, over) = (function.filter.take(), function.over.take());
    let mut aggregate = match (name.as_str(), args.as_slice()) {
        (
            "try",
            [Expr::Cast {
                kind: CastKind::Cast | CastKind::DoubleColon,
                expr: value,
                data_type,
                array,
                format,
            }],
        ) => {
            *expr = Expr::Cast {
                kind: CastKind::TryCast,
                expr: value.clone(),
                data_type: data_type.clone(),
                array: *array,
                format: format.clone(),
            };
            return Ok(());
        }
        ("try", [value]) => {
            // Evaluated as a lambda without parameters: NULL for the rows it fails on.
            let mut captures = Vec::new();
            let mut args = vec![crate::dialect::lambda_body(value, &[], &mut captures)];
            args.extend(captures.into_iter().map(|(_, e)| e));
            let name = Ident::with_quote('"', LambdaKind::Try.udf_name());
            *expr = Expr::Function(crate::dialect::function(name, args, Vec::new()));
            return Ok(());
        }
        ("date", [x]) => {
            *expr = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(x.clone()),
                data_type: datafusion::sql::sqlparser::ast::DataType::Date,
                array: false,
                format: None,
            };
            return Ok(());
        }
        ("features", _) if !args.is_empty() => {
            // Trino's machine-learning feature vector: the values by their position.
            let keys = (0..args.len())
                .map(|i| Expr::Value(Value::Number(i.to_string(), false).with_empty_span()))
                .collect();
            let values = args
                .iter()
                .map(|x| Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(x.clone()),
                    data_type: datafusion::sql::sqlparser::ast::DataType::Double(
                        datafusion::sql::sqlparser::ast::ExactNumberInfo::None,
                    ),
                    array: false,
                    format: None,
                })
                .collect();
            let array =
                |elem| Expr::Array(datafusion::sql::sqlparser::ast::Array { elem, named: true });
            *expr = Expr::Function(call("map", vec![array(keys), array(values)], Vec::new()));
            return Ok(());
        }
        ("variant_is_null", [x]) => {
            // A variant holding JSON's null; NULL for a SQL NULL.
            let json = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(x.clone()),
                data_type: datafusion::sql::sqlparser::ast::DataType::JSON,
                array: false,
                format: None,
            };
            *expr = Expr::BinaryOp {
                left: Box::new(Expr::Function(call("json_format", vec![json], Vec::new()))),
                op: datafusion::sql::sqlparser::ast::BinaryOperator::Eq,
                right: Box::new(Expr::Value(
                    Value::SingleQuotedString("null".into()).with_empty_span(),
                )),
            };
            return Ok(());
        }
        ("if", [c, a]) => {
            *expr = case_when(c.clone(), a.clone(), None);
            return Ok(());
        }
        ("if", [c, a, b]) => {
            *expr = case_when(c.clone(), a.clone(), Some(b.clone()));
            return Ok(());
        }
        ("if", _) => {
            return Err(wrong_arguments(
                "if",
                args.len(),
                "if(boolean, T), if(boolean, T, T)",
            ))
        }
        ("listagg", [x] | [x, _]) => {
            let separator = args.get(1).cloned().unwrap_or_else(|| {
                Expr::Value(Value::SingleQuotedString(String::new()).with_empty_span())
            });
            let order = std::mem::take(&mut function.within_group);
            let clauses = if order.is_empty() {
                Vec::new()
            } else {
                vec![FunctionArgumentClause::OrderBy(order)]
            };
            call("string_agg", vec![x.clone(), separator], clauses)
        }
        ("count_if", [x]) => {
            let one = Expr::Value(Value::Number("1".into(), false).with_empty_span());
            call("count", vec![case_when(x.clone(), one, None)], Vec::new())
        }
        ("arbitrary" | "any_value", [x]) => {
            let mut first = call("first_value", vec![x.clone()], Vec::new());
            first.null_treatment = Some(NullTreatment::IgnoreNulls);
            first
        }
        ("max_by" | "min_by", [x, y]) => {
            let order = FunctionArgumentClause::OrderBy(vec![OrderByExpr {
                expr: y.clone(),
                options: OrderByOptions {
                    asc: Some(name == "min_by"),
                    nulls_first: Some(false),
                },
                with_fill: None,
            }]);
            let mut first = call("first_value", vec![x.clone()], vec![order]);
            let known = Expr::IsNotNull(Box::new(y.clone()));
            first.filter = Some(Box::new(match &filter {
                Some(f) => Expr::BinaryOp {
                    left: Box::new(Expr::Nested(f.clone())),
                    op: datafusion::sql::sqlparser::ast::BinaryOperator::And,
                    right: Box::new(known),
                },
                None => known,
            }));
            first.over = over;
            *expr = Expr::Function(first);
            return Ok(());
        }
        (other, _) => {
            let expected = match other {
                "max_by" | "min_by" => format!("{other}(V, K)"),
                "listagg" => "listagg(varchar, varchar)".to_string(),
                _ => format!("{other}(T)"),
            };
            return Err(wrong_arguments(other, args.len(), &expected));
        }
    };
    aggregate.filter = filter;
    aggregate.over = over;
    *expr = Expr::Function(aggregate);
    Ok(())
}
