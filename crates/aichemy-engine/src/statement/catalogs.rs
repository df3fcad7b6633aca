//! `CREATE CATALOG` and `DROP CATALOG`: external catalogs added and removed at run time
//! and kept in the metastore, as Trino's dynamic catalogs. Their text is kept out of
//! query lists with passwords masked ([`redact`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{Expr, Value};
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
        /// The properties whose value is a `?` parameter, in the order written; `EXECUTE`
        /// binds them ([`CatalogStatement::bind`]).
        parameters: Vec<String>,
        if_not_exists: bool,
    },
    Drop {
        name: String,
        if_exists: bool,
    },
}

use crate::statement::is_word;
use crate::statement::session_state::statement_name as name;

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
        let mut parameters = Vec::new();
        if parser.parse_keyword(Keyword::WITH) {
            parser.expect_token(&Token::LParen).map_err(syntax_error)?;
            loop {
                let key = name(&mut parser)?;
                parser.expect_token(&Token::Eq).map_err(syntax_error)?;
                let value = match parser.next_token().token {
                    Token::Placeholder(p) if p == "?" => {
                        parameters.push(key.clone());
                        String::new()
                    }
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
            parameters,
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
    crate::statement::expect_end(&mut parser)?;
    Ok(Some(statement))
}

impl CatalogStatement {
    /// How many `?` parameters the statement has.
    pub fn parameter_count(&self) -> usize {
        match self {
            CatalogStatement::Create { parameters, .. } => parameters.len(),
            CatalogStatement::Drop { .. } => 0,
        }
    }

    /// Gives the `?` parameters their values (`EXECUTE … USING`), each a literal.
    pub fn bind(&mut self, values: &[Expr]) -> Result<()> {
        crate::dialect::check_parameter_count(self.parameter_count(), values.len())?;
        let CatalogStatement::Create {
            properties,
            parameters,
            ..
        } = self
        else {
            return Ok(());
        };
        for (key, value) in parameters.drain(..).zip(values) {
            let mut value = value;
            while let Expr::Nested(inner) = value {
                value = inner;
            }
            let text = match value {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => Some(s.clone()),
                    Value::Number(n, _) => Some(n.clone()),
                    Value::Boolean(b) => Some(b.to_string()),
                    _ => None,
                },
                _ => None,
            };
            let text = text.ok_or_else(|| {
                TrinoError::new(
                    ErrorCode::GENERIC_USER_ERROR,
                    format!("Catalog property '{key}' must be a string literal"),
                )
            })?;
            properties.insert(key, text);
        }
        Ok(())
    }
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
    session.check_access(|p, who| match verb {
        "create" => p.check_can_create_catalog(who, catalog),
        _ => p.check_can_drop_catalog(who, catalog),
    })?;
    match statement {
        CatalogStatement::Create {
            name,
            connector,
            mut properties,
            parameters,
            if_not_exists,
        } => {
            if !parameters.is_empty() {
                crate::dialect::check_parameter_count(parameters.len(), 0)?;
            }
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

/// What a query list shows of a statement that does not even tokenize but may hold a
/// secret.
const HIDDEN_STATEMENT: &str = "<statement hidden: it may hold a password>";

/// The statement text as query lists and logs may show it: the value of every property
/// whose name mentions a password or secret replaced by `'***'`, as is the password of a
/// URL in a string (`postgresql://user:***@host/db`, `?password=***`); the statement of
/// `EXECUTE IMMEDIATE '…'` redacted alike, and the values of `USING` shown as `?` (Trino
/// shows the statement text only), since any of them may be a password.
pub fn redact(sql: &str) -> Cow<'_, str> {
    let lower = sql.to_ascii_lowercase();
    if !["password", "secret", "execute", "://"]
        .iter()
        .any(|word| lower.contains(word))
    {
        return Cow::Borrowed(sql);
    }
    let dialect = dialect();
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        // Text that does not tokenize is not shown at all.
        return Cow::Owned(HIDDEN_STATEMENT.into());
    };
    Cow::Owned(redact_tokens(&tokens))
}

fn redact_tokens(tokens: &[Token]) -> String {
    let mut out = String::new();
    // The last word names a password or secret; then `=` followed it.
    let mut sensitive = false;
    let mut after_eq = false;
    // Inside EXECUTE: its USING values are hidden. Right after EXECUTE IMMEDIATE: the
    // statement text comes next.
    let mut executing = false;
    let mut immediate = false;
    for (at, token) in tokens.iter().enumerate() {
        let word = match token {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        };
        match token {
            Token::Whitespace(_) => out.push_str(&token.to_string()),
            _ if executing && word.as_deref() == Some("USING") => {
                out.push_str(&token.to_string());
                out.push_str(&hidden_parameters(&tokens[at + 1..]));
                return out;
            }
            _ if word.as_deref() == Some("EXECUTE") => {
                executing = true;
                (sensitive, after_eq) = (false, false);
                out.push_str(&token.to_string());
            }
            _ if executing && word.as_deref() == Some("IMMEDIATE") => {
                immediate = true;
                out.push_str(&token.to_string());
            }
            Token::SingleQuotedString(text) if immediate => {
                immediate = false;
                out.push_str(&Token::SingleQuotedString(redact(text).into_owned()).to_string());
            }
            Token::Word(w) => {
                let value = w.value.to_ascii_lowercase();
                sensitive = value.contains("password") || value.contains("secret");
                (after_eq, immediate) = (false, false);
                out.push_str(&token.to_string());
            }
            Token::Eq => {
                after_eq = sensitive;
                out.push_str(&token.to_string());
            }
            // `"connection-password" = ?` shows no value.
            Token::Placeholder(_) => {
                (sensitive, after_eq, immediate) = (false, false, false);
                out.push_str(&token.to_string());
            }
            // A sensitive value of any kind: string, number, a string of another quoting.
            _ if after_eq || immediate => {
                (sensitive, after_eq, immediate) = (false, false, false);
                out.push_str("'***'");
            }
            Token::SingleQuotedString(text) => {
                sensitive = false;
                out.push_str(
                    &Token::SingleQuotedString(hide_url_password(text).into_owned()).to_string(),
                );
            }
            other => {
                sensitive = false;
                out.push_str(&other.to_string());
            }
        }
    }
    out
}

/// The values after `USING` as `?, ?, …` (one per top-level comma-separated value), and
/// whatever follows a `;`.
fn hidden_parameters(tokens: &[Token]) -> String {
    let (mut depth, mut values, mut in_value) = (0usize, 0usize, false);
    let mut end = tokens.len();
    for (at, token) in tokens.iter().enumerate() {
        match token {
            Token::Whitespace(_) => {}
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                in_value = true;
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                values += usize::from(in_value);
                in_value = false;
            }
            Token::SemiColon if depth == 0 => {
                end = at;
                break;
            }
            _ => in_value = true,
        }
    }
    values += usize::from(in_value);
    let mut out = format!(" {}", vec!["?"; values].join(", "));
    if end < tokens.len() {
        out.push_str(&redact_tokens(&tokens[end..]));
    }
    out
}

/// A text with the password of a URL in it hidden: `scheme://user:***@host`, and the
/// value of a `password=` query parameter.
fn hide_url_password(text: &str) -> Cow<'_, str> {
    let Some(scheme_end) = text.find("://") else {
        return Cow::Borrowed(text);
    };
    let start = scheme_end + 3;
    let end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| start + at);
    let authority = &text[start..end];
    let mut out = text[..start].to_string();
    match authority.rfind('@') {
        Some(at) => {
            let user_info = &authority[..at];
            match user_info.find(':') {
                Some(colon) => {
                    out.push_str(&user_info[..=colon]);
                    out.push_str("***");
                }
                None => out.push_str(user_info),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let mut rest = &text[end..];
    while let Some(at) = rest.to_ascii_lowercase().find("password=") {
        let value_start = at + "password=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let value_end = rest[value_start..]
            .find(['&', '#', ' '])
            .map_or(rest.len(), |e| value_start + e);
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
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
            ..
        } = statement
        else {
            panic!("not a create");
        };
        assert_eq!(name, "sales");
        assert_eq!(connector, "postgresql");
        assert!(if_not_exists);
        assert_eq!(properties["connection-user"], "u");
        // As EXECUTE binds parameters: on the parsed statement.
        let mut statement =
            parse("CREATE CATALOG s USING postgresql WITH (\"connection-url\" = ?)")
                .unwrap()
                .unwrap();
        assert_eq!(statement.parameter_count(), 1);
        assert!(statement.bind(&[]).is_err());
        let url = Expr::Value(Value::SingleQuotedString("jdbc:postgresql://h/db".into()).into());
        statement.bind(&[url]).unwrap();
        let CatalogStatement::Create { properties, .. } = statement else {
            panic!("not a create");
        };
        assert_eq!(properties["connection-url"], "jdbc:postgresql://h/db");
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

    #[test]
    fn redaction_reaches_into_execute_immediate_and_hides_parameters() {
        let inner = "CREATE CATALOG c USING postgresql WITH (\"connection-url\" = \
                     ''postgresql://u:urlpw@h/db?password=querypw'', \"connection-password\" = ''innerpw'')";
        let statement = format!("EXECUTE IMMEDIATE '{inner}'");
        let shown = redact(&statement);
        for secret in ["urlpw", "querypw", "innerpw"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(
            shown.starts_with("EXECUTE IMMEDIATE 'CREATE CATALOG c"),
            "{shown}"
        );
        assert!(shown.contains("postgresql://u:***@h/db"), "{shown}");
        assert_eq!(
            redact("EXECUTE IMMEDIATE 'SELECT ?, ?' USING 'param-pw', f(1, 'x') ;"),
            "EXECUTE IMMEDIATE 'SELECT ?, ?' USING ?, ?;"
        );
        assert_eq!(redact("execute p using 'param-pw'"), "execute p using ?");
        // A prepared CREATE CATALOG: its literal masked, its placeholder kept.
        let shown = redact(
            "PREPARE p FROM CREATE CATALOG c USING postgresql WITH (\"connection-password\" = 'prepw', \"connection-user\" = ?)",
        );
        assert!(!shown.contains("prepw") && shown.contains("= ?"), "{shown}");
        // Any kind of value after a sensitive name: a number, an escaped string.
        let shown =
            redact("CREATE CATALOG c USING postgresql WITH (\"connection-password\" = 12345)");
        assert!(!shown.contains("12345"), "{shown}");
        // A JOIN … USING outside EXECUTE is left alone.
        let join = "SELECT * FROM a JOIN b USING (id) WHERE secret_count = 1";
        assert!(redact(join).contains("USING (id)"));
    }
}
