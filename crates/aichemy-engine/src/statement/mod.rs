//! Every statement kind, one file per family: queries, `EXPLAIN` and `INSERT` (planned by
//! DataFusion), catalog definitions, DDL, SHOW/DESCRIBE/USE, prepared statements and
//! session properties.

pub mod catalogs;
pub(crate) mod change;
pub(crate) mod ddl;
mod explain_analyze;
pub(crate) mod grants;
pub(crate) mod indexes;
pub(crate) mod ingestions;
pub(crate) mod materialized;
pub(crate) mod merge;
pub(crate) mod partitions;
pub(crate) mod pipelines;
pub(crate) mod procedures;
pub(crate) mod query;
pub mod session_state;
pub(crate) mod show;

use datafusion::sql::sqlparser::ast::{ObjectName, SetExpr, Statement, TableFactor};
use datafusion::sql::sqlparser::tokenizer::Token;

/// The family of statements a text belongs to, from its first two words: the one parser
/// that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `CREATE CATALOG`, `DROP CATALOG`: [`catalogs`].
    Catalog,
    /// `CREATE|ALTER|DROP INGESTION`, `SHOW INGESTIONS`: [`ingestions`].
    Ingestion,
    /// `CREATE|ALTER|DROP|RUN|BACKFILL PIPELINE`, `SHOW PIPELINES`, `SHOW CREATE
    /// PIPELINE`: [`pipelines`].
    Pipeline,
    /// `CREATE [OR REPLACE]|DROP|REFRESH MATERIALIZED VIEW`, `SHOW MATERIALIZED VIEWS`,
    /// `SHOW CREATE MATERIALIZED VIEW`: [`materialized`].
    Materialized,
    /// Roles, grants, owners, row filters and column masks: [`grants`].
    Grants,
    /// `PREPARE`, `DEALLOCATE PREPARE`, `DESCRIBE INPUT|OUTPUT`, `SET|RESET|SHOW SESSION`:
    /// [`session_state`].
    SessionState,
    /// `USE`, `SHOW`, `DESCRIBE`: [`show`].
    Show,
    /// Everything else: the dialect's parser, then [`query`] (queries, `EXPLAIN`, `INSERT`),
    /// [`ddl`] or `EXECUTE`.
    Sql,
}

/// The family of `sql`, read from its first words (unquoted, any case, after whitespace
/// and comments).
pub(crate) fn family(sql: &str) -> Family {
    let mut rest = sql;
    let mut words: [String; 4] = Default::default();
    for word in &mut words {
        rest = skip_blanks(rest);
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        *word = rest[..end].to_ascii_uppercase();
        rest = &rest[end..];
        if end == 0 {
            break;
        }
    }
    let materialized = |at: usize| words[at] == "MATERIALIZED";
    match (words[0].as_str(), words[1].as_str()) {
        ("CREATE" | "DROP" | "REFRESH" | "SHOW", _) if materialized(1) => Family::Materialized,
        ("CREATE", "OR") if words[2] == "REPLACE" && materialized(3) => Family::Materialized,
        ("SHOW", "CREATE") if materialized(2) => Family::Materialized,
        ("CREATE" | "DROP", "CATALOG") => Family::Catalog,
        ("CREATE" | "ALTER" | "DROP", "INGESTION") | ("SHOW", "INGESTIONS") => Family::Ingestion,
        ("CREATE" | "ALTER" | "DROP" | "RUN" | "BACKFILL", "PIPELINE") | ("SHOW", "PIPELINES") => {
            Family::Pipeline
        }
        ("CREATE", "OR") if words[2] == "REPLACE" && words[3] == "PIPELINE" => Family::Pipeline,
        ("SHOW", "CREATE") if words[2] == "PIPELINE" => Family::Pipeline,
        ("CREATE" | "DROP", "ROLE" | "ROW" | "COLUMN")
        | ("GRANT" | "REVOKE" | "DENY", _)
        | ("SET", "ROLE")
        | ("SHOW", "ROLES" | "GRANTS" | "ROW" | "COLUMN") => Family::Grants,
        ("CREATE", "OR")
            if words[2] == "REPLACE" && matches!(words[3].as_str(), "ROW" | "COLUMN") =>
        {
            Family::Grants
        }
        ("SHOW", "CURRENT") if words[2] == "ROLES" => Family::Grants,
        ("SHOW", "ROLE") if words[2] == "GRANTS" => Family::Grants,
        ("PREPARE", _)
        | ("DEALLOCATE", "PREPARE")
        | ("DESCRIBE" | "DESC", "INPUT" | "OUTPUT")
        | ("SET" | "RESET" | "SHOW", "SESSION") => Family::SessionState,
        ("USE" | "SHOW" | "DESCRIBE" | "DESC", _) => Family::Show,
        _ => Family::Sql,
    }
}

/// The tokens of `sql` that are not whitespace, for the statements read on the tokens.
pub(crate) fn significant_tokens(sql: &str) -> crate::error::Result<Vec<Token>> {
    let tokens = crate::dialect::tokens(sql).map_err(|e| {
        crate::error::TrinoError::new(crate::error::ErrorCode::SYNTAX_ERROR, e.to_string())
    })?;
    Ok(tokens
        .into_iter()
        .map(|t| t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect())
}

/// Reads a relation's name written in SQL (`cat."s".t`).
pub(crate) fn parse_object_name(text: &str) -> crate::error::Result<ObjectName> {
    use crate::error::{ErrorCode, TrinoError};
    let expected = || TrinoError::new(ErrorCode::SYNTAX_ERROR, format!("Expected a name: {text}"));
    let mut parsed = crate::dialect::parse_statements(&format!("SELECT 1 FROM {text}"))?;
    let Some(Statement::Query(query)) = parsed.pop() else {
        return Err(expected());
    };
    let SetExpr::Select(select) = *query.body else {
        return Err(expected());
    };
    match select.from.into_iter().next().map(|t| t.relation) {
        Some(TableFactor::Table { name, .. }) => Ok(name),
        _ => Err(expected()),
    }
}

/// The end of a statement read with `parser`: trailing `;` and nothing else.
pub(crate) fn expect_end(
    parser: &mut datafusion::sql::sqlparser::parser::Parser,
) -> crate::error::Result<()> {
    while parser.consume_token(&Token::SemiColon) {}
    if parser.peek_token().token != Token::EOF {
        return Err(crate::dialect::syntax_error(
            parser
                .expected::<()>("end of statement", parser.peek_token())
                .unwrap_err(),
        ));
    }
    Ok(())
}

/// Whether `token` is the unquoted keyword `word` (any case).
pub(crate) fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Consumes the parser's next token when it is the unquoted word `word`; answers whether
/// it did.
pub(crate) fn take_word(
    parser: &mut datafusion::sql::sqlparser::parser::Parser,
    word: &str,
) -> bool {
    let found = is_word(&parser.peek_token().token, word);
    if found {
        parser.next_token();
    }
    found
}

/// `text` after its leading whitespace and comments (`-- …` to the line's end, `/* … */`).
fn skip_blanks(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(comment) = text.strip_prefix("--") {
            text = comment.find('\n').map_or("", |end| &comment[end..]);
        } else if let Some(comment) = text.strip_prefix("/*") {
            text = comment.find("*/").map_or("", |end| &comment[end + 2..]);
        } else {
            return text;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{family, Family};

    #[test]
    fn the_first_two_words_choose_the_family() {
        for (sql, expected) in [
            ("create catalog pg using postgresql", Family::Catalog),
            ("DROP CATALOG IF EXISTS pg", Family::Catalog),
            ("PREPARE q FROM SELECT 1", Family::SessionState),
            ("deallocate prepare q", Family::SessionState),
            ("DESCRIBE OUTPUT q", Family::SessionState),
            (
                "-- a comment\n  SET SESSION query_max_run_time = '1s'",
                Family::SessionState,
            ),
            ("/* x */ SHOW SESSION", Family::SessionState),
            ("SHOW TABLES FROM iceberg.s", Family::Show),
            ("USE iceberg.s", Family::Show),
            ("DESC iceberg.s.t", Family::Show),
            ("SELECT 1", Family::Sql),
            ("show ingestions", Family::Ingestion),
            (
                "create or replace materialized view v as select 1",
                Family::Materialized,
            ),
            ("REFRESH MATERIALIZED VIEW v", Family::Materialized),
            ("SHOW CREATE MATERIALIZED VIEW v", Family::Materialized),
            ("SHOW CREATE VIEW v", Family::Show),
            ("CREATE OR REPLACE VIEW v AS SELECT 1", Family::Sql),
            ("ALTER INGESTION j PAUSE", Family::Ingestion),
            ("create or replace pipeline p", Family::Pipeline),
            ("RUN PIPELINE p", Family::Pipeline),
            ("SHOW CREATE PIPELINE p", Family::Pipeline),
            ("SHOW PIPELINES", Family::Pipeline),
            ("grant select on t to role r", Family::Grants),
            ("DENY DELETE ON t TO u", Family::Grants),
            ("SET ROLE admin", Family::Grants),
            ("SET SESSION x = 1", Family::SessionState),
            ("SHOW CURRENT ROLES", Family::Grants),
            ("SHOW ROLE GRANTS", Family::Grants),
            (
                "CREATE OR REPLACE ROW FILTER ON t FOR USER u AS x",
                Family::Grants,
            ),
            ("ALTER TABLE t SET AUTHORIZATION u", Family::Sql),
            ("CREATE TABLE catalog (x int)", Family::Sql),
            ("CREATE \"CATALOG\" x", Family::Sql),
            ("EXECUTE q USING 1", Family::Sql),
            ("", Family::Sql),
            ("(SELECT 1)", Family::Sql),
        ] {
            assert_eq!(family(sql), expected, "{sql}");
        }
    }
}
