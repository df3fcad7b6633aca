//! `CREATE CATALOG` and `DROP CATALOG`: external catalogs added and removed at run time
//! and kept in the metastore, as Trino's dynamic catalogs. Their text is kept out of
//! query lists with passwords masked ([`redact`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::dialect::{dialect, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::{Output, Session};

/// A catalog statement.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogStatement {
    Create {
        name: String,
        connector: String,
        properties: BTreeMap<String, String>,
        if_not_exists: bool,
    },
    Drop {
        name: String,
        if_exists: bool,
    },
}

use crate::statements::{is_word, statement_name as name};

/// Recognises CREATE CATALOG and DROP CATALOG; `None` for every other statement.
pub fn parse(sql: &str) -> Result<Option<CatalogStatement>> {
    let dialect = dialect();
    let Ok(mut parser) = Parser::new(&dialect).try_with_sql(sql) else {
        return Ok(None);
    };
    let first = parser.peek_token().token;
    let second = parser.peek_nth_token(1).token;
    if !is_word(&second, "CATALOG") {
        return Ok(None);
    }
    let statement = if is_word(&first, "CREATE") {
        parser.next_token();
        parser.next_token();
        let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let catalog = name(&mut parser)?;
        parser
            .expect_keyword(Keyword::USING)
            .map_err(syntax_error)?;
        let connector = name(&mut parser)?;
        if parser.parse_keyword(Keyword::COMMENT) {
            parser.parse_literal_string().map_err(syntax_error)?;
        }
        if parser.parse_keyword(Keyword::AUTHORIZATION) {
            return Err(TrinoError::not_supported(
                "CREATE CATALOG … AUTHORIZATION is not supported",
            ));
        }
        let mut properties = BTreeMap::new();
        if parser.parse_keyword(Keyword::WITH) {
            parser.expect_token(&Token::LParen).map_err(syntax_error)?;
            loop {
                let key = name(&mut parser)?;
                parser.expect_token(&Token::Eq).map_err(syntax_error)?;
                let value = match parser.next_token().token {
                    Token::SingleQuotedString(s) => s,
                    Token::Number(n, _) => n,
                    Token::Word(w) if w.keyword == Keyword::TRUE || w.keyword == Keyword::FALSE => {
                        w.value.to_lowercase()
                    }
                    _ => {
                        return Err(TrinoError::new(
                            ErrorCode::GENERIC_USER_ERROR,
                            format!("Catalog property '{key}' must be a string literal"),
                        ))
                    }
                };
                if properties.insert(key.clone(), value).is_some() {
                    return Err(TrinoError::new(
                        ErrorCode::GENERIC_USER_ERROR,
                        format!("Duplicate catalog property '{key}'"),
                    ));
                }
                if !parser.consume_token(&Token::Comma) {
                    break;
                }
            }
            parser.expect_token(&Token::RParen).map_err(syntax_error)?;
        }
        CatalogStatement::Create {
            name: catalog,
            connector,
            properties,
            if_not_exists,
        }
    } else if is_word(&first, "DROP") {
        parser.next_token();
        parser.next_token();
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let catalog = name(&mut parser)?;
        // CASCADE and RESTRICT only concern what the catalog holds, which stays in its
        // database.
        let _ = parser.parse_one_of_keywords(&[Keyword::CASCADE, Keyword::RESTRICT]);
        CatalogStatement::Drop {
            name: catalog,
            if_exists,
        }
    } else {
        return Ok(None);
    };
    while parser.consume_token(&Token::SemiColon) {}
    if parser.peek_token().token != Token::EOF {
        return Err(syntax_error(
            parser
                .expected::<()>("end of statement", parser.peek_token())
                .unwrap_err(),
        ));
    }
    Ok(Some(statement))
}

/// Runs a catalog statement for an administrator.
pub async fn execute(session: &Session, statement: CatalogStatement) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let (verb, catalog) = match &statement {
        CatalogStatement::Create { name, .. } => ("create", name),
        CatalogStatement::Drop { name, .. } => ("drop", name),
    };
    if !lakehouse.is_admin(&session.user) {
        return Err(TrinoError::new(
            ErrorCode::PERMISSION_DENIED,
            format!("Access Denied: Cannot {verb} catalog {catalog}"),
        ));
    }
    match statement {
        CatalogStatement::Create {
            name,
            connector,
            mut properties,
            if_not_exists,
        } => {
            properties.remove("connector.name");
            lakehouse
                .create_catalog(
                    aichemy_metastore::CatalogRecord {
                        name,
                        connector,
                        properties,
                    },
                    if_not_exists,
                )
                .await?;
            Ok(Output::Update {
                update_type: "CREATE CATALOG".into(),
                count: None,
            })
        }
        CatalogStatement::Drop { name, if_exists } => {
            if !lakehouse.drop_catalog(&name).await? && !if_exists {
                return Err(TrinoError::catalog_not_found(&name));
            }
            Ok(Output::Update {
                update_type: "DROP CATALOG".into(),
                count: None,
            })
        }
    }
}

/// The statement text with the value of every property whose name mentions a password
/// or secret replaced by `'***'`, for query lists and logs.
pub fn redact(sql: &str) -> Cow<'_, str> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("password") && !lower.contains("secret") {
        return Cow::Borrowed(sql);
    }
    let dialect = dialect();
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        // Text that does not tokenize is not shown at all.
        return Cow::Owned("<statement hidden: it may hold a password>".into());
    };
    let mut out = String::with_capacity(sql.len());
    let mut sensitive = false;
    let mut after_eq = false;
    for token in &tokens {
        match token {
            Token::Word(w) => {
                let value = w.value.to_ascii_lowercase();
                sensitive = value.contains("password") || value.contains("secret");
                after_eq = false;
                out.push_str(&token.to_string());
            }
            Token::Eq => {
                after_eq = sensitive;
                out.push_str(&token.to_string());
            }
            Token::Whitespace(_) => out.push_str(&token.to_string()),
            Token::SingleQuotedString(_) if after_eq => {
                out.push_str("'***'");
                sensitive = false;
                after_eq = false;
            }
            other => {
                sensitive = false;
                after_eq = false;
                out.push_str(&other.to_string());
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_catalog_reads_trino_syntax() {
        let statement = parse(
            "CREATE CATALOG IF NOT EXISTS Sales USING postgresql WITH (\"connection-url\" = 'jdbc:postgresql://h/db', \"connection-user\" = 'u')",
        )
        .unwrap()
        .unwrap();
        let CatalogStatement::Create {
            name,
            connector,
            properties,
            if_not_exists,
        } = statement
        else {
            panic!("not a create");
        };
        assert_eq!(name, "sales");
        assert_eq!(connector, "postgresql");
        assert!(if_not_exists);
        assert_eq!(properties["connection-user"], "u");
        assert_eq!(
            parse("DROP CATALOG IF EXISTS sales").unwrap(),
            Some(CatalogStatement::Drop {
                name: "sales".into(),
                if_exists: true
            })
        );
        assert_eq!(parse("DROP TABLE sales").unwrap(), None);
    }

    #[test]
    fn redaction_hides_password_values_only() {
        let sql = "CREATE CATALOG s USING postgresql WITH (\"connection-password\" = 'hunter''2', \"connection-user\" = 'app')";
        let shown = redact(sql);
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(shown.contains("'***'"), "{shown}");
        assert!(shown.contains("'app'"), "{shown}");
        assert_eq!(redact("SELECT 1"), "SELECT 1");
    }
}
