//! Ingestion jobs: `CREATE INGESTION [IF NOT EXISTS] name INTO table WITH (…)`,
//! `ALTER INGESTION name PAUSE|RESUME`, `DROP INGESTION [IF EXISTS] name` and
//! `SHOW INGESTIONS`. The statements only change the metastore's record of a job; the
//! servers' ingestion runners see the change within a second and start, pause or stop the
//! job. Property names are RisingWave's (`crate::ingestion`); keys may be dotted words
//! (`properties.bootstrap.server`) or quoted.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::dialect::{dialect, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::ingestion::{IngestionDefinition, TargetTable};
use crate::session::{Output, Session};
use crate::statement::is_word;
use crate::statement::session_state::statement_name as name;

/// An ingestion statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IngestionStatement {
    Create {
        name: String,
        target: ObjectName,
        properties: BTreeMap<String, String>,
        if_not_exists: bool,
    },
    Alter {
        name: String,
        pause: bool,
    },
    Drop {
        name: String,
        if_exists: bool,
    },
    Show,
}

/// The query `SHOW INGESTIONS` answers with.
pub(crate) const SHOW_QUERY: &str = "SELECT ingestion_name AS \"Ingestion\", state AS \"State\", \
     source AS \"Source\", target AS \"Target\", node AS \"Node\", position AS \"Position\", \
     rows_ingested AS \"Rows\", lag AS \"Lag\", dead_letters AS \"Dead letters\", \
     last_error AS \"Last error\" FROM system.runtime.ingestions ORDER BY 1";

/// Recognises the statements of this module; `None` for every other statement.
pub(crate) fn parse(sql: &str) -> Result<Option<IngestionStatement>> {
    let dialect = dialect();
    let Ok(mut parser) = Parser::new(&dialect).try_with_sql(sql) else {
        return Ok(None);
    };
    let first = parser.peek_token().token;
    let second = parser.peek_nth_token(1).token;
    let statement = if is_word(&first, "SHOW") && is_word(&second, "INGESTIONS") {
        parser.next_token();
        parser.next_token();
        IngestionStatement::Show
    } else if !is_word(&second, "INGESTION") {
        return Ok(None);
    } else if is_word(&first, "CREATE") {
        parser.next_token();
        parser.next_token();
        let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let job = name(&mut parser)?;
        parser.expect_keyword(Keyword::INTO).map_err(syntax_error)?;
        let target = parser.parse_object_name(false).map_err(syntax_error)?;
        parser.expect_keyword(Keyword::WITH).map_err(syntax_error)?;
        let properties = parse_properties(&mut parser, "Ingestion")?;
        IngestionStatement::Create {
            name: job,
            target,
            properties,
            if_not_exists,
        }
    } else if is_word(&first, "ALTER") {
        parser.next_token();
        parser.next_token();
        let job = name(&mut parser)?;
        let pause = match parser.next_token().token {
            token if is_word(&token, "PAUSE") => true,
            token if is_word(&token, "RESUME") => false,
            _ => {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "Expected PAUSE or RESUME after ALTER INGESTION name",
                ))
            }
        };
        IngestionStatement::Alter { name: job, pause }
    } else if is_word(&first, "DROP") {
        parser.next_token();
        parser.next_token();
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        IngestionStatement::Drop {
            name: name(&mut parser)?,
            if_exists,
        }
    } else {
        return Ok(None);
    };
    crate::statement::expect_end(&mut parser)?;
    Ok(Some(statement))
}

/// `( key = 'value', … )`: keys dotted words or quoted, values strings, numbers or
/// booleans, kept as text. `kind` names what they are properties of in errors
/// (`Ingestion`, `Pipeline`).
pub(crate) fn parse_properties(
    parser: &mut Parser,
    kind: &str,
) -> Result<BTreeMap<String, String>> {
    parser.expect_token(&Token::LParen).map_err(syntax_error)?;
    let mut properties = BTreeMap::new();
    loop {
        let key = match parser.next_token().token {
            Token::SingleQuotedString(s) => s,
            Token::Word(w) => {
                let mut key = match w.quote_style {
                    Some(_) => w.value,
                    None => w.value.to_ascii_lowercase(),
                };
                while parser.consume_token(&Token::Period) {
                    let part = name(parser)?;
                    key.push('.');
                    key.push_str(&part);
                }
                key
            }
            _ => {
                return Err(TrinoError::new(
                    ErrorCode::SYNTAX_ERROR,
                    "Expected a property name in WITH (…)",
                ))
            }
        };
        parser.expect_token(&Token::Eq).map_err(syntax_error)?;
        let value = match parser.next_token().token {
            Token::SingleQuotedString(s) => s,
            Token::Number(n, _) => n,
            Token::Word(w) if w.keyword == Keyword::TRUE || w.keyword == Keyword::FALSE => {
                w.value.to_lowercase()
            }
            _ => {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_ARGUMENTS,
                    format!("{kind} property '{key}' must be a string literal"),
                ))
            }
        };
        if properties.insert(key.clone(), value).is_some() {
            return Err(TrinoError::new(
                ErrorCode::INVALID_ARGUMENTS,
                format!("Duplicate {} property '{key}'", kind.to_lowercase()),
            ));
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen).map_err(syntax_error)?;
    Ok(properties)
}

fn not_found(name: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::NOT_FOUND,
        format!("Ingestion '{name}' does not exist"),
    )
}

/// Runs an ingestion statement (other than SHOW) for an administrator.
/// The definition `CREATE INGESTION name INTO target WITH (properties)` declares, checked
/// (target catalog, properties, and, unless `trusted`, the secrets it may read).
fn definition(
    session: &Session,
    name: &str,
    target: &ObjectName,
    properties: BTreeMap<String, String>,
    trusted: bool,
) -> Result<IngestionDefinition> {
    let lakehouse = session.lakehouse();
    let connector = properties
        .get("connector")
        .cloned()
        .ok_or_else(|| {
            TrinoError::new(
                ErrorCode::INVALID_ARGUMENTS,
                "Property 'connector' is required (connector = 'kafka' or \
                         'postgres-cdc')",
            )
        })?
        .to_ascii_lowercase();
    // A change-data-capture job may name a schema: one table per source table.
    let into_schema = connector == "postgres-cdc" && target.0.len() <= 2;
    let target = if into_schema {
        let mut parts = target.0.clone();
        parts.push(datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(
            datafusion::sql::sqlparser::ast::Ident::new("_"),
        ));
        let mut qualified = session.qualify(&ObjectName(parts))?;
        qualified.name.clear();
        qualified
    } else {
        session.qualify(target)?
    };
    let format = lakehouse.format(&target.catalog)?;
    if !matches!(format.format_name(), "Iceberg" | "Delta Lake" | "Lance") {
        return Err(TrinoError::not_supported(format!(
            "Ingestion into {} tables is not supported: use an iceberg, delta or lance catalog",
            format.format_name()
        )));
    }
    let definition = IngestionDefinition {
        name: name.to_string(),
        connector,
        target: TargetTable {
            catalog: target.catalog,
            schema: target.schema,
            table: target.name,
        },
        properties,
        owner: session.user.clone(),
        trusted,
    };
    definition.validate()?;
    // Every secret reference must be one a statement may read.
    if !trusted {
        for (key, value) in &definition.properties {
            aichemy_config::resolve_secrets(value, lakehouse.sql_secret_scope()).map_err(|e| {
                TrinoError::new(
                    ErrorCode::INVALID_ARGUMENTS,
                    format!("Ingestion property '{key}': {e}"),
                )
            })?;
        }
    }
    Ok(definition)
}

/// Declares a job of the configuration file (`[ingestions.<name>]`): created in the
/// metastore, or its definition replaced when the file changed it. Answers what was done.
pub async fn declare(
    lakehouse: std::sync::Arc<crate::Lakehouse>,
    name: &str,
    into: &str,
    properties: BTreeMap<String, String>,
) -> Result<&'static str> {
    let dialect = dialect();
    let target = Parser::new(&dialect)
        .try_with_sql(into)
        .and_then(|mut p| p.parse_object_name(false))
        .map_err(syntax_error)?;
    let session = Session::new(lakehouse.clone(), "config".to_string());
    let definition = definition(&session, name, &target, properties, true)?;
    let json =
        serde_json::to_string(&definition).map_err(|e| TrinoError::internal(e.to_string()))?;
    let metastore = lakehouse.metastore();
    let existing = metastore
        .list_ingestions()
        .await?
        .into_iter()
        .find(|r| r.name == name);
    match existing {
        None => {
            metastore.create_ingestion(name, &json, "running").await?;
            Ok("created")
        }
        Some(record) if record.definition_json == json => Ok("unchanged"),
        Some(_) => {
            metastore.replace_ingestion_definition(name, &json).await?;
            Ok("replaced")
        }
    }
}

pub(crate) async fn execute(session: &Session, statement: IngestionStatement) -> Result<Output> {
    let lakehouse = session.lakehouse();
    let (verb, job) = match &statement {
        IngestionStatement::Create { name, .. } => ("create", name.as_str()),
        IngestionStatement::Alter { name, .. } => ("alter", name.as_str()),
        IngestionStatement::Drop { name, .. } => ("drop", name.as_str()),
        IngestionStatement::Show => ("show", ""),
    };
    if !lakehouse.is_admin(&session.user) {
        return Err(TrinoError::new(
            ErrorCode::PERMISSION_DENIED,
            format!("Access Denied: Cannot {verb} ingestion {job}"),
        ));
    }
    let metastore = lakehouse.metastore();
    match statement {
        IngestionStatement::Create {
            name,
            target,
            properties,
            if_not_exists,
        } => {
            let definition = definition(session, &name, &target, properties, false)?;
            // The job writes as its owner: the owner must be allowed to.
            let table = &definition.target;
            if !table.table.is_empty() {
                let table =
                    aichemy_access::TableName::new(&table.catalog, &table.schema, &table.table);
                session.check_access(|p, who| p.check_can_insert(who, &table))?;
            }
            let json = serde_json::to_string(&definition)
                .map_err(|e| TrinoError::internal(e.to_string()))?;
            match metastore.create_ingestion(&name, &json, "running").await {
                Ok(()) => {}
                Err(aichemy_metastore::MetastoreError::IngestionAlreadyExists { .. })
                    if if_not_exists => {}
                Err(aichemy_metastore::MetastoreError::IngestionAlreadyExists { .. }) => {
                    return Err(TrinoError::new(
                        ErrorCode::ALREADY_EXISTS,
                        format!("Ingestion '{name}' already exists"),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            Ok(Output::update("CREATE INGESTION"))
        }
        IngestionStatement::Alter { name, pause } => {
            let state = if pause { "paused" } else { "running" };
            if !metastore.set_ingestion_state(&name, state).await? {
                return Err(not_found(&name));
            }
            Ok(Output::update("ALTER INGESTION"))
        }
        IngestionStatement::Drop { name, if_exists } => {
            if !metastore.drop_ingestion(&name).await? && !if_exists {
                return Err(not_found(&name));
            }
            Ok(Output::update("DROP INGESTION"))
        }
        IngestionStatement::Show => unreachable!("SHOW INGESTIONS runs as a query"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_parse() {
        let parsed = parse(
            "CREATE INGESTION IF NOT EXISTS Orders INTO iceberg.shop_bronze.orders WITH (\
             connector = 'kafka', properties.bootstrap.server = 'h:9092', \"topic\" = 'o', \
             'commit.interval.ms' = 500)",
        )
        .unwrap()
        .unwrap();
        let IngestionStatement::Create {
            name,
            properties,
            if_not_exists,
            ..
        } = parsed
        else {
            panic!("{parsed:?}")
        };
        assert_eq!(name, "orders");
        assert!(if_not_exists);
        assert_eq!(properties["properties.bootstrap.server"], "h:9092");
        assert_eq!(properties["topic"], "o");
        assert_eq!(properties["commit.interval.ms"], "500");
        assert_eq!(
            parse("alter ingestion o pause").unwrap(),
            Some(IngestionStatement::Alter {
                name: "o".into(),
                pause: true
            })
        );
        assert_eq!(
            parse("SHOW INGESTIONS").unwrap(),
            Some(IngestionStatement::Show)
        );
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert!(parse("ALTER INGESTION o STOP").is_err());
        assert!(parse("DROP INGESTION o extra").is_err());
    }
}
