//! The dialect statements are parsed with: sqlparser's generic dialect, with a bound on
//! the work one statement may cost the parser.
//!
//! sqlparser backtracks: where a keyword's own syntax fails (`CAST(` with an error inside),
//! it parses the same text again as a plain function call, and so at every level of a
//! nesting — `CAST(CAST(…` with one mistake at the bottom costs 2^depth attempts (18
//! levels took 3 s, 30 would take hours), and no time limit can stop a parser that never
//! yields. [`TrinoDialect`] counts the expressions the parser starts and, past
//! [`PARSE_STEPS`], fails every further one at once, which ends the backtracking in
//! linear time.

use std::any::TypeId;
use std::cell::Cell;

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

/// Expressions one parse may start. A statement parsed without backtracking starts a few
/// per literal, name or operator it holds, so even a statement of the 1 MiB the server
/// accepts stays well below; only the exponential retries reach it.
pub const PARSE_STEPS: usize = 1_000_000;

/// The generic dialect, counting the expressions a parse starts.
#[derive(Debug, Default)]
pub struct TrinoDialect {
    steps: Cell<usize>,
}

impl TrinoDialect {
    /// The bounds after `BETWEEN [A]SYMMETRIC`: a symmetric range holds `x` when either
    /// order of the bounds does.
    fn between(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        negated: bool,
        symmetric: bool,
    ) -> Result<Expr, ParserError> {
        let precedence = self.prec_value(Precedence::Between);
        let low = parser.parse_subexpr(precedence)?;
        parser.expect_keyword_is(Keyword::AND)?;
        let high = parser.parse_subexpr(precedence)?;
        let between = |low: &Expr, high: &Expr, negated: bool| Expr::Between {
            expr: Box::new(expr.clone()),
            negated,
            low: Box::new(low.clone()),
            high: Box::new(high.clone()),
        };
        if !symmetric {
            return Ok(between(&low, &high, negated));
        }
        let either = Expr::Nested(Box::new(Expr::BinaryOp {
            left: Box::new(between(&low, &high, false)),
            op: BinaryOperator::Or,
            right: Box::new(between(&high, &low, false)),
        }));
        Ok(if negated {
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr: Box::new(either),
            }
        } else {
            either
        })
    }
    /// Whether a parse with this dialect ran out of [`PARSE_STEPS`].
    pub fn exhausted(&self) -> bool {
        self.steps.get() > PARSE_STEPS
    }
}

/// Methods answered as the generic dialect answers them.
macro_rules! as_generic {
    ($($name:ident),* $(,)?) => {
        $(
            fn $name(&self) -> bool {
                GenericDialect.$name()
            }
        )*
    };
}

impl Dialect for TrinoDialect {
    /// The parser's checks for the generic dialect hold for this one.
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn parse_prefix(&self, _parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        // The one error the parser never swallows while backtracking.
        (steps > PARSE_STEPS).then_some(Err(ParserError::RecursionLimitExceeded))
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GenericDialect.is_identifier_part(ch)
    }

    /// `x [NOT] BETWEEN SYMMETRIC a AND b` (either order of the bounds) and
    /// `BETWEEN ASYMMETRIC` (the plain BETWEEN), which sqlparser does not read.
    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let word = |n: usize, parser: &Parser| match &parser.peek_nth_token_ref(n).token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        };
        // `a IS [NOT] DISTINCT FROM b AND c`: sqlparser reads the right side as a whole
        // expression (`b AND c`); Trino's comparison binds tighter than AND.
        if word(0, parser).as_deref() == Some("IS") {
            let negated = word(1, parser).as_deref() == Some("NOT");
            let at = 1 + usize::from(negated);
            if word(at, parser).as_deref() != Some("DISTINCT")
                || word(at + 1, parser).as_deref() != Some("FROM")
            {
                return None;
            }
            for _ in 0..at + 2 {
                parser.next_token();
            }
            let right = match parser.parse_subexpr(self.prec_value(Precedence::Is)) {
                Ok(right) => Box::new(right),
                Err(e) => return Some(Err(e)),
            };
            let left = Box::new(expr.clone());
            return Some(Ok(if negated {
                Expr::IsNotDistinctFrom(left, right)
            } else {
                Expr::IsDistinctFrom(left, right)
            }));
        }
        let negated = word(0, parser).as_deref() == Some("NOT");
        let at = usize::from(negated);
        if word(at, parser).as_deref() != Some("BETWEEN") {
            return None;
        }
        let symmetric = match word(at + 1, parser).as_deref() {
            Some("SYMMETRIC") => true,
            Some("ASYMMETRIC") => false,
            _ => return None,
        };
        for _ in 0..at + 2 {
            parser.next_token();
        }
        Some(self.between(parser, expr, negated, symmetric))
    }

    /// Trino reads `10_000_000` as ten million.
    fn supports_numeric_literal_underscores(&self) -> bool {
        true
    }

    /// `FROM t FOR VERSION AS OF 42` and `FOR TIMESTAMP AS OF …` (the dialect's tokens drop
    /// the `FOR` the parser does not expect).
    fn supports_table_versioning(&self) -> bool {
        true
    }

    as_generic!(
        supports_unicode_string_literal,
        supports_group_by_expr,
        supports_group_by_with_modifier,
        supports_left_associative_joins_without_parens,
        supports_connect_by,
        supports_match_recognize,
        supports_pipe_operator,
        supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg,
        supports_dictionary_syntax,
        supports_window_clause_named_window_reference,
        supports_parenthesized_set_variables,
        supports_select_wildcard_except,
        support_map_literal_syntax,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_extract_comma_syntax,
        supports_create_view_comment_syntax,
        supports_parens_around_table_factor,
        supports_values_as_table_factor,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_limit_comma,
        supports_from_first_select,
        supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition,
        supports_try_convert,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_assignment_operator,
        supports_struct_literal,
        supports_empty_projections,
        supports_nested_comments,
        supports_multiline_comment_hints,
        supports_user_host_grantee,
        supports_string_escape_constant,
        supports_array_typedef_with_brackets,
        supports_match_against,
        supports_set_names,
        supports_comma_separated_set_assignments,
        supports_filter_during_aggregation,
        supports_select_wildcard_exclude,
        supports_data_type_signed_suffix,
        supports_interval_options,
        supports_quote_delimited_string,
        supports_lambda_functions,
        supports_select_wildcard_replace,
        supports_select_wildcard_ilike,
        supports_select_wildcard_rename,
        supports_optimize_table,
        supports_install,
        supports_detach,
        supports_prewhere,
        supports_with_fill,
        supports_limit_by,
        supports_interpolate,
        supports_settings,
        supports_select_format,
        supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Statements of every kind parse to the same trees as with the generic dialect.
    #[test]
    fn parses_as_the_generic_dialect() {
        for sql in [
            "SELECT a, count(*) FROM t WHERE b LIKE 'x%' GROUP BY a HAVING count(*) > 1",
            "SELECT CAST(x AS DECIMAL(10, 2)), TRY_CAST('1' AS BIGINT), x::int FROM t",
            "SELECT ARRAY[1, 2][1], STRUCT<a INT>(1), MAP {'a': 1}, x -> x + 1",
            "SELECT * FROM a JOIN b USING (k) LEFT JOIN c ON a.k = c.k ORDER BY 1 LIMIT 5",
            "WITH c AS (SELECT 1) SELECT * FROM c UNION ALL SELECT 2 EXCEPT SELECT 3",
            "SELECT row_number() OVER (PARTITION BY a ORDER BY b ROWS UNBOUNDED PRECEDING)",
            "SELECT INTERVAL '1' DAY, DATE '2025-01-01', TIMESTAMP '2025-01-01 00:00:00'",
            "SELECT `quoted`, \"double\", @var, #temp, x$1 FROM t",
            "CREATE TABLE t (a BIGINT NOT NULL, b VARCHAR) WITH (format = 'PARQUET')",
            "INSERT INTO t (a) SELECT x FROM UNNEST(ARRAY[1, 2]) AS u(x)",
            "SELECT CASE WHEN a THEN 1 ELSE 2 END, EXTRACT(YEAR FROM d), position('a' IN s)",
        ] {
            let generic = Parser::parse_sql(&GenericDialect, sql).map(|s| format!("{s:?}"));
            let ours = Parser::parse_sql(&TrinoDialect::default(), sql).map(|s| format!("{s:?}"));
            assert_eq!(generic, ours, "{sql}");
        }
    }

    /// `BETWEEN SYMMETRIC` is either order of the bounds; `ASYMMETRIC` the plain form.
    #[test]
    fn symmetric_between_reads_both_orders() {
        let parse = |sql: &str| {
            Parser::parse_sql(&TrinoDialect::default(), sql)
                .unwrap()
                .remove(0)
                .to_string()
        };
        assert_eq!(
            parse("SELECT x BETWEEN SYMMETRIC 6 AND 2"),
            "SELECT (x BETWEEN 6 AND 2 OR x BETWEEN 2 AND 6)"
        );
        assert_eq!(
            parse("SELECT x NOT BETWEEN ASYMMETRIC 2 AND 6 AND y"),
            "SELECT x NOT BETWEEN 2 AND 6 AND y"
        );
    }

    /// A nesting with one mistake at the bottom ends at once, as an exhausted parse.
    #[test]
    fn backtracking_is_bounded() {
        // Unoptimised, the parser takes tens of kilobytes of stack per level.
        std::thread::Builder::new()
            .stack_size(crate::execution::QUERY_THREAD_STACK_BYTES)
            .spawn(bounded_backtracking)
            .unwrap()
            .join()
            .unwrap();
    }

    fn bounded_backtracking() {
        let sql = format!(
            "SELECT {}1 +{}",
            "CAST(".repeat(40),
            " AS BIGINT)".repeat(40)
        );
        let dialect = TrinoDialect::default();
        let started = std::time::Instant::now();
        assert!(Parser::parse_sql(&dialect, &sql).is_err());
        assert!(dialect.exhausted());
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        // Without the mistake the same nesting parses, far inside the bound.
        let sql = format!("SELECT {}1{}", "CAST(".repeat(40), " AS BIGINT)".repeat(40));
        let dialect = TrinoDialect::default();
        assert!(Parser::parse_sql(&dialect, &sql).is_ok());
        assert!(!dialect.exhausted());
    }
}
