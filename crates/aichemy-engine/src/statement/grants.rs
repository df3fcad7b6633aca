//! SQL grants, in Trino's syntax: `CREATE ROLE`, `DROP ROLE`, `GRANT`/`REVOKE` roles,
//! `SET ROLE`, `SHOW ROLES`, `SHOW CURRENT ROLES`, `SHOW ROLE GRANTS`, `GRANT`, `DENY` and
//! `REVOKE` privileges on tables and schemas, `SHOW GRANTS`, and `ALTER SCHEMA|TABLE|VIEW
//! … SET AUTHORIZATION`; and AIchemy's own statements for row filters and column masks:
//!
//! ```sql
//! CREATE [OR REPLACE] ROW FILTER ON [TABLE] t FOR (USER u | ROLE r | GROUP g) AS condition
//! DROP ROW FILTER ON [TABLE] t FOR (USER u | ROLE r | GROUP g)
//! CREATE [OR REPLACE] COLUMN MASK ON [TABLE] t COLUMN c FOR (…) AS expression
//! DROP COLUMN MASK ON [TABLE] t COLUMN c FOR (…)
//! SHOW ROW FILTERS [ON [TABLE] t]
//! SHOW COLUMN MASKS [ON [TABLE] t]
//! ```
//!
//! They need `access-control.name=sql-standard`; the grants live in the metastore, so
//! every node enforces the same ones.

use std::collections::BTreeSet;

use aichemy_access::{
    principals, Grantee, Grants, Object, PrivilegeGrant, Restriction, RoleGrant, RoleSelection,
    TablePrivilege, ADMIN_ROLE, PRIVILEGES, PUBLIC_ROLE,
};
use datafusion::sql::sqlparser::ast::ObjectName;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::catalog::metadata::{batch_of, Cell};
use crate::dialect::{dialect, syntax_error};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::{Output, Session};
use crate::statement::session_state::rest_of;
use crate::statement::show::text_schema;
use crate::statement::{expect_end, is_word, take_word};

/// What `GRANT`, `DENY` and `REVOKE` name privileges on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Table(ObjectName),
    Schema(ObjectName),
}

/// The kind of object `ALTER … SET AUTHORIZATION` changes the owner of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum OwnedKind {
    Schema,
    Table,
    View,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GrantStatement {
    CreateRole {
        role: String,
        admin: Option<Grantee>,
    },
    DropRole {
        role: String,
        if_exists: bool,
    },
    GrantRoles {
        roles: Vec<String>,
        grantees: Vec<Grantee>,
        admin_option: bool,
    },
    RevokeRoles {
        roles: Vec<String>,
        grantees: Vec<Grantee>,
        admin_option_only: bool,
    },
    SetRole(RoleSelection),
    ShowRoles {
        current: bool,
    },
    ShowRoleGrants,
    Privileges {
        /// `GRANT`, `DENY` or `REVOKE`.
        verb: &'static str,
        privileges: Vec<TablePrivilege>,
        target: Target,
        grantee: Grantee,
        /// `WITH GRANT OPTION` of a GRANT, `GRANT OPTION FOR` of a REVOKE.
        grant_option: bool,
    },
    ShowGrants(Option<ObjectName>),
    SetAuthorization {
        kind: OwnedKind,
        name: ObjectName,
        owner: Grantee,
    },
    CreateRestriction {
        table: ObjectName,
        column: Option<String>,
        grantee: Grantee,
        expression: String,
        or_replace: bool,
    },
    DropRestriction {
        table: ObjectName,
        column: Option<String>,
        grantee: Grantee,
    },
    ShowRestrictions {
        masks: bool,
        table: Option<ObjectName>,
    },
}

fn expected(what: &str, found: &Token) -> TrinoError {
    TrinoError::new(
        ErrorCode::SYNTAX_ERROR,
        format!("mismatched input '{found}'. Expecting: {what}"),
    )
}

/// A name as Trino keeps it: unquoted names lower-cased.
fn identifier(parser: &mut Parser) -> Result<String> {
    let ident = parser.parse_identifier().map_err(syntax_error)?;
    Ok(match ident.quote_style {
        Some(_) => ident.value,
        None => ident.value.to_lowercase(),
    })
}

/// A user's name, kept as written.
fn user_name(parser: &mut Parser) -> Result<String> {
    Ok(parser.parse_identifier().map_err(syntax_error)?.value)
}

/// `USER u | ROLE r | GROUP g | u`.
fn grantee(parser: &mut Parser) -> Result<Grantee> {
    if take_word(parser, "USER") {
        Ok(Grantee::User(user_name(parser)?))
    } else if take_word(parser, "ROLE") {
        Ok(Grantee::Role(identifier(parser)?))
    } else if take_word(parser, "GROUP") {
        Ok(Grantee::Group(user_name(parser)?))
    } else {
        Ok(Grantee::User(user_name(parser)?))
    }
}

fn grantees(parser: &mut Parser) -> Result<Vec<Grantee>> {
    let mut all = vec![grantee(parser)?];
    while parser.consume_token(&Token::Comma) {
        all.push(grantee(parser)?);
    }
    Ok(all)
}

/// `[IN catalog]` after a role statement: roles are the system's, as Trino's are without
/// a catalog.
fn no_catalog(parser: &mut Parser) -> Result<()> {
    if parser.parse_keyword(Keyword::IN) || parser.parse_keyword(Keyword::FROM) {
        let catalog = identifier(parser)?;
        if catalog != "system" {
            return Err(TrinoError::not_supported(format!(
                "Catalog '{catalog}' has no roles of its own: roles are the system's"
            )));
        }
    }
    Ok(())
}

/// `privilege [, …] | ALL PRIVILEGES`.
fn privileges(words: &[String]) -> Result<Vec<TablePrivilege>> {
    if words.len() == 2 && words[0] == "all" && words[1] == "privileges" {
        return Ok(PRIVILEGES.to_vec());
    }
    words
        .iter()
        .map(|word| {
            PRIVILEGES
                .into_iter()
                .find(|p| p.name().eq_ignore_ascii_case(word))
                .ok_or_else(|| match word.as_str() {
                    "create" => TrinoError::not_supported(
                        "Privilege CREATE is not supported: the owner of a schema creates in \
                         it (ALTER SCHEMA … SET AUTHORIZATION)",
                    ),
                    _ => TrinoError::new(
                        ErrorCode::INVALID_PRIVILEGE,
                        format!("Unknown privilege: '{word}'"),
                    ),
                })
        })
        .collect()
}

/// `ON [TABLE] name | ON SCHEMA name`.
fn target(parser: &mut Parser) -> Result<Target> {
    parser.expect_keyword(Keyword::ON).map_err(syntax_error)?;
    if parser.parse_keyword(Keyword::SCHEMA) {
        return Ok(Target::Schema(
            parser.parse_object_name(false).map_err(syntax_error)?,
        ));
    }
    let _ = parser.parse_keyword(Keyword::TABLE);
    Ok(Target::Table(
        parser.parse_object_name(false).map_err(syntax_error)?,
    ))
}

/// `ON [TABLE] t [COLUMN c] FOR grantee` of the restriction statements.
fn restricted(parser: &mut Parser, mask: bool) -> Result<(ObjectName, Option<String>, Grantee)> {
    parser.expect_keyword(Keyword::ON).map_err(syntax_error)?;
    let _ = parser.parse_keyword(Keyword::TABLE);
    let table = parser.parse_object_name(false).map_err(syntax_error)?;
    let column = match mask {
        true => {
            parser
                .expect_keyword(Keyword::COLUMN)
                .map_err(syntax_error)?;
            Some(identifier(parser)?)
        }
        false => None,
    };
    parser.expect_keyword(Keyword::FOR).map_err(syntax_error)?;
    Ok((table, column, grantee(parser)?))
}

/// Recognises the statements of this module; `None` for every other statement.
pub(crate) fn parse(sql: &str) -> Result<Option<GrantStatement>> {
    let dialect = dialect();
    let Ok(mut parser) = Parser::new(&dialect).try_with_sql(sql) else {
        return Ok(None);
    };
    let p = &mut parser;
    let statement = if take_word(p, "CREATE") {
        let or_replace = p.parse_keywords(&[Keyword::OR, Keyword::REPLACE]);
        if !or_replace && take_word(p, "ROLE") {
            let role = identifier(p)?;
            let admin = match p.parse_keywords(&[Keyword::WITH, Keyword::ADMIN]) {
                true => Some(grantee(p)?),
                false => None,
            };
            no_catalog(p)?;
            GrantStatement::CreateRole { role, admin }
        } else if take_word(p, "ROW") || take_word(p, "COLUMN") {
            let mask = match p.next_token().token {
                t if is_word(&t, "FILTER") => false,
                t if is_word(&t, "MASK") => true,
                t => return Err(expected("'FILTER', 'MASK'", &t)),
            };
            let (table, column, grantee) = restricted(p, mask)?;
            p.expect_keyword(Keyword::AS).map_err(syntax_error)?;
            let expression = rest_of(p, sql, "Expected an expression after AS")?;
            return Ok(Some(GrantStatement::CreateRestriction {
                table,
                column,
                grantee,
                expression,
                or_replace,
            }));
        } else {
            return Ok(None);
        }
    } else if take_word(p, "DROP") {
        if take_word(p, "ROLE") {
            let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let role = identifier(p)?;
            no_catalog(p)?;
            GrantStatement::DropRole { role, if_exists }
        } else if take_word(p, "ROW") || take_word(p, "COLUMN") {
            let mask = match p.next_token().token {
                t if is_word(&t, "FILTER") => false,
                t if is_word(&t, "MASK") => true,
                t => return Err(expected("'FILTER', 'MASK'", &t)),
            };
            let (table, column, grantee) = restricted(p, mask)?;
            GrantStatement::DropRestriction {
                table,
                column,
                grantee,
            }
        } else {
            return Ok(None);
        }
    } else if let Some(verb) = ["GRANT", "DENY", "REVOKE"]
        .into_iter()
        .find(|verb| take_word(p, verb))
    {
        // REVOKE [GRANT OPTION FOR | ADMIN OPTION FOR] …
        let mut option_for = false;
        if verb == "REVOKE" {
            let start = p.index();
            if (take_word(p, "GRANT") || take_word(p, "ADMIN"))
                && take_word(p, "OPTION")
                && p.parse_keyword(Keyword::FOR)
            {
                option_for = true;
            } else {
                while p.index() > start {
                    p.prev_token();
                }
            }
        }
        let mut words = Vec::new();
        loop {
            match p.next_token().token {
                Token::Word(w) => words.push(w.value.to_lowercase()),
                t => return Err(expected("a privilege or role", &t)),
            }
            if is_word(&p.peek_token().token, "PRIVILEGES") {
                p.next_token();
                words.push("privileges".into());
            }
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        if p.peek_keyword(Keyword::ON) {
            let privileges = privileges(&words)?;
            let target = target(p)?;
            match verb {
                "REVOKE" => p.expect_keyword(Keyword::FROM),
                _ => p.expect_keyword(Keyword::TO),
            }
            .map_err(syntax_error)?;
            let grantee = grantee(p)?;
            let grant_option = match verb {
                "GRANT" => p.parse_keywords(&[Keyword::WITH, Keyword::GRANT, Keyword::OPTION]),
                _ => option_for,
            };
            GrantStatement::Privileges {
                verb,
                privileges,
                target,
                grantee,
                grant_option,
            }
        } else if verb == "DENY" {
            return Err(expected("'ON'", &p.peek_token().token));
        } else {
            let roles = words;
            let grantees = match verb {
                "GRANT" => p.expect_keyword(Keyword::TO),
                _ => p.expect_keyword(Keyword::FROM),
            }
            .map_err(syntax_error)
            .and_then(|_| grantees(p))?;
            let admin_option = verb == "GRANT"
                && p.parse_keywords(&[Keyword::WITH, Keyword::ADMIN, Keyword::OPTION]);
            if p.parse_keywords(&[Keyword::GRANTED, Keyword::BY]) {
                grantee(p)?;
                return Err(TrinoError::not_supported(
                    "GRANTED BY is not supported: the grantor is the session's user",
                ));
            }
            no_catalog(p)?;
            match verb {
                "GRANT" => GrantStatement::GrantRoles {
                    roles,
                    grantees,
                    admin_option,
                },
                _ => GrantStatement::RevokeRoles {
                    roles,
                    grantees,
                    admin_option_only: option_for,
                },
            }
        }
    } else if take_word(p, "SET") {
        if !take_word(p, "ROLE") {
            return Ok(None);
        }
        let selection = match p.peek_token().token {
            t if is_word(&t, "ALL") => {
                p.next_token();
                RoleSelection::All
            }
            t if is_word(&t, "NONE") => {
                p.next_token();
                RoleSelection::None
            }
            _ => RoleSelection::Role(identifier(p)?),
        };
        no_catalog(p)?;
        GrantStatement::SetRole(selection)
    } else if take_word(p, "SHOW") {
        if take_word(p, "ROLES") {
            no_catalog(p)?;
            GrantStatement::ShowRoles { current: false }
        } else if take_word(p, "CURRENT") && take_word(p, "ROLES") {
            no_catalog(p)?;
            GrantStatement::ShowRoles { current: true }
        } else if take_word(p, "ROLE") && take_word(p, "GRANTS") {
            no_catalog(p)?;
            GrantStatement::ShowRoleGrants
        } else if take_word(p, "GRANTS") {
            let table = match p.parse_keyword(Keyword::ON) {
                true => {
                    let _ = p.parse_keyword(Keyword::TABLE);
                    Some(p.parse_object_name(false).map_err(syntax_error)?)
                }
                false => None,
            };
            GrantStatement::ShowGrants(table)
        } else if take_word(p, "ROW") || take_word(p, "COLUMN") {
            let masks = match p.next_token().token {
                t if is_word(&t, "FILTERS") => false,
                t if is_word(&t, "MASKS") => true,
                t => return Err(expected("'FILTERS', 'MASKS'", &t)),
            };
            let table = match p.parse_keyword(Keyword::ON) {
                true => {
                    let _ = p.parse_keyword(Keyword::TABLE);
                    Some(p.parse_object_name(false).map_err(syntax_error)?)
                }
                false => None,
            };
            GrantStatement::ShowRestrictions { masks, table }
        } else {
            return Ok(None);
        }
    } else if take_word(p, "ALTER") {
        let kind = if p.parse_keyword(Keyword::SCHEMA) {
            OwnedKind::Schema
        } else if p.parse_keyword(Keyword::TABLE) {
            OwnedKind::Table
        } else if p.parse_keyword(Keyword::VIEW) {
            OwnedKind::View
        } else {
            return Ok(None);
        };
        let Ok(name) = p.parse_object_name(false) else {
            return Ok(None);
        };
        if !p.parse_keywords(&[Keyword::SET, Keyword::AUTHORIZATION]) {
            return Ok(None);
        }
        let owner = grantee(p)?;
        GrantStatement::SetAuthorization { kind, name, owner }
    } else {
        return Ok(None);
    };
    expect_end(p)?;
    Ok(Some(statement))
}

/// The error for a grant statement where no SQL grants are configured.
fn no_sql_grants() -> TrinoError {
    TrinoError::not_supported(
        "SQL grants are not enabled: start the server with an access control configuration \
         of access-control.name=sql-standard",
    )
}

fn denied(message: String) -> TrinoError {
    crate::access::denied(aichemy_access::Denied(message))
}

fn role_not_found(role: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::ROLE_NOT_FOUND,
        format!("Role '{role}' does not exist"),
    )
}

fn stored(error: aichemy_metastore::MetastoreError) -> TrinoError {
    TrinoError::new(
        ErrorCode::GENERIC_INTERNAL_ERROR,
        format!("The grant could not be stored: {error}"),
    )
}

/// A list as Trino's messages write sets: `[a, b]`.
fn listed<T: std::fmt::Display>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// The session's user's grantees under the grants as they stand.
fn session_principals(session: &Session) -> Result<BTreeSet<Grantee>> {
    match session.access()? {
        Some(access) => Ok(principals(&access.identity)),
        None => Err(no_sql_grants()),
    }
}

fn is_admin(principals: &BTreeSet<Grantee>) -> bool {
    principals.contains(&Grantee::Role(ADMIN_ROLE.into()))
}

/// A table, view or materialized view by its qualified name, or TABLE_NOT_FOUND.
async fn existing_table(session: &Session, name: &ObjectName) -> Result<Object> {
    let q = session.qualify(name)?;
    let object = Object::table(&q.catalog, &q.schema, &q.name);
    if relation_exists(session, &object).await? {
        Ok(object)
    } else {
        Err(TrinoError::new(
            ErrorCode::TABLE_NOT_FOUND,
            format!("Table '{q}' does not exist"),
        ))
    }
}

/// Whether a table, view or materialized view is there.
async fn relation_exists(session: &Session, object: &Object) -> Result<bool> {
    let lakehouse = session.lakehouse();
    let name = crate::catalog::lakehouse::QualifiedName {
        catalog: object.catalog.clone(),
        schema: object.schema.clone(),
        name: object.table.clone(),
    };
    let metastore = lakehouse.metastore();
    let unreadable = |e: aichemy_metastore::MetastoreError| {
        TrinoError::new(ErrorCode::GENERIC_INTERNAL_ERROR, e.to_string())
    };
    Ok(lakehouse.load_table(&name).await?.is_some()
        || metastore
            .get_view(&name.catalog, &name.schema, &name.name)
            .await
            .map_err(unreadable)?
            .is_some()
        || metastore
            .get_materialized_view(&name.catalog, &name.schema, &name.name)
            .await
            .map_err(unreadable)?
            .is_some())
}

async fn existing_schema(session: &Session, name: &ObjectName) -> Result<Object> {
    let (catalog, schema) = crate::statement::ddl::schema_name(session, name)?;
    session
        .lakehouse()
        .require_schema(&catalog, &schema)
        .await?;
    Ok(Object::schema(&catalog, &schema))
}

/// One text column of rows.
fn column_of(title: &str, rows: impl IntoIterator<Item = String>) -> Result<Output> {
    let rows: Vec<Vec<Cell>> = rows
        .into_iter()
        .map(|r| vec![Cell::Text(Some(r))])
        .collect();
    Ok(Output::batch(batch_of(text_schema(&[title]), &rows)?))
}

pub(crate) async fn execute(session: &mut Session, statement: GrantStatement) -> Result<Output> {
    let lakehouse = session.lakehouse().clone();
    if !lakehouse.sql_grants() {
        return Err(no_sql_grants());
    }
    // Decided on the grants as they stand now, not as they stood a second ago.
    lakehouse.refresh_grants(true).await?;
    let grants = lakehouse.grants();
    let metastore = lakehouse.metastore();
    let me = session_principals(session)?;
    let admin = is_admin(&me);
    let user = session.user.clone();
    let output = match statement {
        GrantStatement::CreateRole {
            role,
            admin: holder,
        } => {
            if !admin {
                return Err(denied(format!("Cannot create role {role}")));
            }
            if grants.role_exists(&role)
                || !metastore.create_role(&role, &user).await.map_err(stored)?
            {
                return Err(TrinoError::new(
                    ErrorCode::ROLE_ALREADY_EXISTS,
                    format!("Role '{role}' already exists"),
                ));
            }
            let holder = holder.unwrap_or(Grantee::User(user.clone()));
            check_grantee(&grants, &holder)?;
            let grant = RoleGrant {
                role,
                grantee: holder,
                admin_option: true,
                grantor: user,
            };
            metastore.grant_role(&grant).await.map_err(stored)?;
            Output::update("CREATE ROLE")
        }
        GrantStatement::DropRole { role, if_exists } => {
            if !admin {
                return Err(denied(format!("Cannot drop role {role}")));
            }
            if role == ADMIN_ROLE || role == PUBLIC_ROLE {
                return Err(TrinoError::not_supported(format!(
                    "Role '{role}' is built in and cannot be dropped"
                )));
            }
            if !metastore.drop_role(&role).await.map_err(stored)? && !if_exists {
                return Err(role_not_found(&role));
            }
            Output::update("DROP ROLE")
        }
        GrantStatement::GrantRoles {
            roles,
            grantees,
            admin_option,
        } => {
            for role in &roles {
                if !grants.role_exists(role) || role == PUBLIC_ROLE {
                    return Err(role_not_found(role));
                }
                if !grants.can_administer_role(&me, role) {
                    return Err(denied(format!(
                        "Cannot grant roles {} to {}",
                        listed(&roles),
                        listed(&grantees)
                    )));
                }
            }
            for grantee in &grantees {
                check_grantee(&grants, grantee)?;
                for role in &roles {
                    if let Grantee::Role(holder) = grantee {
                        if holder == role || grants_role(&grants, role, holder) {
                            return Err(TrinoError::new(
                                ErrorCode::INVALID_ARGUMENTS,
                                format!(
                                    "Role '{role}' cannot be granted to role '{holder}': \
                                     '{holder}' is granted to '{role}' already"
                                ),
                            ));
                        }
                    }
                    let grant = RoleGrant {
                        role: role.clone(),
                        grantee: grantee.clone(),
                        admin_option,
                        grantor: user.clone(),
                    };
                    metastore.grant_role(&grant).await.map_err(stored)?;
                }
            }
            Output::update("GRANT ROLE")
        }
        GrantStatement::RevokeRoles {
            roles,
            grantees,
            admin_option_only,
        } => {
            for role in &roles {
                if !grants.role_exists(role) {
                    return Err(role_not_found(role));
                }
                if !grants.can_administer_role(&me, role) {
                    return Err(denied(format!(
                        "Cannot revoke roles {} from {}",
                        listed(&roles),
                        listed(&grantees)
                    )));
                }
            }
            for grantee in &grantees {
                for role in &roles {
                    metastore
                        .revoke_role(role, grantee, admin_option_only)
                        .await
                        .map_err(stored)?;
                }
            }
            Output::update("REVOKE ROLE")
        }
        GrantStatement::SetRole(selection) => {
            if let RoleSelection::Role(role) = &selection {
                if !grants.role_exists(role) {
                    return Err(role_not_found(role));
                }
            }
            // Refused here, with Trino's message, when she does not hold it.
            lakehouse.access_as(&user, &selection)?;
            session.role = selection;
            return Ok(Output::update("SET ROLE"));
        }
        GrantStatement::ShowRoles { current: true } => {
            let access = session.access()?.ok_or_else(no_sql_grants)?;
            return column_of("Role", access.identity.roles.iter().cloned());
        }
        GrantStatement::ShowRoles { current: false } => {
            if !admin {
                return Err(denied("Cannot show roles".into()));
            }
            let mut roles: BTreeSet<String> = grants.roles.clone();
            roles.extend([ADMIN_ROLE.to_string(), PUBLIC_ROLE.to_string()]);
            return column_of("Role", roles);
        }
        GrantStatement::ShowRoleGrants => {
            let groups = lakehouse
                .policy()
                .map(|p| p.groups_of(&user))
                .transpose()
                .map_err(|e| TrinoError::new(ErrorCode::GENERIC_INTERNAL_ERROR, e.to_string()))?
                .unwrap_or_default();
            let mut roles = grants.direct_roles(&user, &groups);
            if lakehouse.grant_admins().contains(&user) {
                roles.insert(ADMIN_ROLE.into());
            }
            roles.insert(PUBLIC_ROLE.into());
            return column_of("Role", roles);
        }
        GrantStatement::Privileges {
            verb,
            privileges,
            target,
            grantee,
            grant_option,
        } => {
            let (object, kind) = match &target {
                Target::Table(name) => (existing_table(session, name).await?, "table"),
                Target::Schema(name) => (existing_schema(session, name).await?, "schema"),
            };
            check_grantee(&grants, &grantee)?;
            for privilege in &privileges {
                if !grants.can_grant(&me, &object, *privilege) {
                    let verb = verb.to_lowercase();
                    return Err(denied(format!(
                        "Cannot {verb} privilege {} on {kind} {object}",
                        privilege.name()
                    )));
                }
            }
            for privilege in privileges {
                match verb {
                    "REVOKE" => {
                        metastore
                            .revoke_privilege(&object, privilege, &grantee, grant_option)
                            .await
                            .map_err(stored)?;
                    }
                    _ => {
                        let grant = PrivilegeGrant {
                            object: object.clone(),
                            privilege,
                            grantee: grantee.clone(),
                            grant_option: verb == "GRANT" && grant_option,
                            deny: verb == "DENY",
                            grantor: user.clone(),
                        };
                        metastore.grant_privilege(&grant).await.map_err(stored)?;
                    }
                }
            }
            Output::update(verb)
        }
        GrantStatement::ShowGrants(table) => {
            let on = match &table {
                Some(name) => Some(existing_table(session, name).await?),
                None => None,
            };
            let catalog = match &on {
                Some(object) => object.catalog.clone(),
                None => session.catalog.clone().ok_or_else(|| {
                    TrinoError::new(
                        ErrorCode::MISSING_CATALOG_NAME,
                        "Catalog must be specified when session catalog is not set",
                    )
                })?,
            };
            return show_grants(&grants, &me, &catalog, on.as_ref());
        }
        GrantStatement::SetAuthorization { kind, name, owner } => {
            let object = match kind {
                OwnedKind::Schema => existing_schema(session, &name).await?,
                OwnedKind::Table | OwnedKind::View => existing_table(session, &name).await?,
            };
            check_grantee(&grants, &owner)?;
            let word = match kind {
                OwnedKind::Schema => "schema",
                OwnedKind::Table => "table",
                OwnedKind::View => "view",
            };
            if !(admin || grants.owns(&me, &object)) {
                return Err(denied(format!(
                    "Cannot set authorization for {word} {object} to {owner}"
                )));
            }
            if matches!(owner, Grantee::Group(_)) {
                return Err(TrinoError::not_supported(
                    "An owner is a user or a role, not a group",
                ));
            }
            if kind == OwnedKind::View {
                set_view_owner(session, &object, &owner).await?;
            }
            metastore
                .set_owner(&object, &owner, true)
                .await
                .map_err(stored)?;
            Output::update(match kind {
                OwnedKind::Schema => "SET SCHEMA AUTHORIZATION",
                OwnedKind::Table => "SET TABLE AUTHORIZATION",
                OwnedKind::View => "SET VIEW AUTHORIZATION",
            })
        }
        GrantStatement::CreateRestriction {
            table,
            column,
            grantee,
            expression,
            or_replace,
        } => {
            let object = existing_table(session, &table).await?;
            check_grantee(&grants, &grantee)?;
            if !(admin || grants.owns(&me, &object)) {
                return Err(denied(format!(
                    "Cannot {} on table {object}",
                    restriction_verb("create", column.is_some())
                )));
            }
            validate(session, &table, column.as_deref(), &expression).await?;
            let restriction = Restriction {
                object: object.clone(),
                column: column.clone(),
                grantee: grantee.clone(),
                expression,
            };
            if !metastore
                .set_restriction(&restriction, or_replace)
                .await
                .map_err(stored)?
            {
                return Err(TrinoError::new(
                    ErrorCode::ALREADY_EXISTS,
                    format!(
                        "{} on table {object} for {grantee} already exists",
                        restriction_name(column.as_deref())
                    ),
                ));
            }
            Output::update(match column {
                Some(_) => "CREATE COLUMN MASK",
                None => "CREATE ROW FILTER",
            })
        }
        GrantStatement::DropRestriction {
            table,
            column,
            grantee,
        } => {
            let q = session.qualify(&table)?;
            let object = Object::table(&q.catalog, &q.schema, &q.name);
            if !(admin || grants.owns(&me, &object)) {
                return Err(denied(format!(
                    "Cannot {} on table {object}",
                    restriction_verb("drop", column.is_some())
                )));
            }
            if !metastore
                .drop_restriction(&object, column.as_deref(), &grantee)
                .await
                .map_err(stored)?
            {
                return Err(TrinoError::new(
                    ErrorCode::NOT_FOUND,
                    format!(
                        "{} on table {object} for {grantee} does not exist",
                        restriction_name(column.as_deref())
                    ),
                ));
            }
            Output::update(match column {
                Some(_) => "DROP COLUMN MASK",
                None => "DROP ROW FILTER",
            })
        }
        GrantStatement::ShowRestrictions { masks, table } => {
            let on = match &table {
                Some(name) => Some(existing_table(session, name).await?),
                None => None,
            };
            return show_restrictions(&grants, &me, masks, on.as_ref());
        }
    };
    // This node sees its own change at once; the others within a second.
    lakehouse.refresh_grants(true).await?;
    Ok(output)
}

/// Whether `role` holds `holder`, directly or through other roles: granting `role` to
/// `holder` would then make a cycle.
fn grants_role(grants: &Grants, role: &str, holder: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut next = vec![role.to_string()];
    while let Some(current) = next.pop() {
        if current == holder {
            return true;
        }
        if seen.insert(current.clone()) {
            let grantee = Grantee::Role(current);
            next.extend(
                grants
                    .role_grants
                    .iter()
                    .filter(|g| g.grantee == grantee)
                    .map(|g| g.role.clone()),
            );
        }
    }
    false
}

/// A role grantee must exist; users and groups are the authenticator's and the group
/// file's, named freely.
fn check_grantee(grants: &Grants, grantee: &Grantee) -> Result<()> {
    match grantee {
        Grantee::Role(role) if !grants.role_exists(role) => Err(role_not_found(role)),
        _ => Ok(()),
    }
}

fn restriction_name(column: Option<&str>) -> String {
    match column {
        Some(column) => format!("Column mask of {column}"),
        None => "Row filter".into(),
    }
}

fn restriction_verb(verb: &str, mask: bool) -> String {
    match mask {
        true => format!("{verb} column mask"),
        false => format!("{verb} row filter"),
    }
}

/// Plans the restriction over its table so that a wrong column, a wrong type or a syntax
/// error is reported now rather than when someone queries the table.
async fn validate(
    session: &Session,
    table: &ObjectName,
    column: Option<&str>,
    expression: &str,
) -> Result<()> {
    let (probe, code, what) = match column {
        None => (
            format!("EXPLAIN SELECT 1 FROM {table} WHERE ({expression})"),
            ErrorCode::INVALID_ROW_FILTER,
            "row filter".to_string(),
        ),
        Some(column) => (
            format!(
                "EXPLAIN SELECT \"{}\", ({expression}) FROM {table}",
                column.replace('"', "\"\"")
            ),
            ErrorCode::INVALID_COLUMN_MASK,
            format!("column mask of {column}"),
        ),
    };
    let mut probing = session.clone();
    probing.role = RoleSelection::All;
    match Box::pin(probing.execute(&probe)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(TrinoError::new(
            code,
            format!("Invalid {what}: {}", e.message),
        )),
    }
}

/// A DEFINER view's queries run as its owner: moving it moves whose rights they use.
async fn set_view_owner(session: &Session, view: &Object, owner: &Grantee) -> Result<()> {
    let metastore = session.lakehouse().metastore();
    let unreadable = |e: aichemy_metastore::MetastoreError| {
        TrinoError::new(ErrorCode::GENERIC_INTERNAL_ERROR, e.to_string())
    };
    let Some(mut record) = metastore
        .get_view(&view.catalog, &view.schema, &view.table)
        .await
        .map_err(unreadable)?
    else {
        return Ok(());
    };
    if record.owner.is_none() {
        // SECURITY INVOKER: whoever owns it, readers read with their own rights.
        return Ok(());
    }
    match owner {
        Grantee::User(name) => record.owner = Some(name.clone()),
        _ => {
            return Err(TrinoError::not_supported(
                "A SECURITY DEFINER view's owner is a user: its queries run with her rights",
            ))
        }
    }
    metastore
        .create_view(&record, true)
        .await
        .map_err(unreadable)
}

fn yes_no(flag: bool) -> Cell {
    Cell::Text(Some(if flag { "YES" } else { "NO" }.into()))
}

fn text(value: &str) -> Cell {
    Cell::Text(Some(value.to_string()))
}

/// `SHOW GRANTS`: the privileges granted on tables (and schemas) of `catalog`, or on one
/// table; an administrator or an owner sees all of them, others the grants to them.
fn show_grants(
    grants: &Grants,
    me: &BTreeSet<Grantee>,
    catalog: &str,
    on: Option<&Object>,
) -> Result<Output> {
    let admin = is_admin(me);
    let rows: Vec<Vec<Cell>> = grants
        .privileges
        .iter()
        .filter(|g| !g.deny && g.object.catalog == catalog)
        .filter(|g| on.is_none_or(|o| g.object == *o))
        .filter(|g| admin || me.contains(&g.grantee) || grants.owns(me, &g.object))
        .map(|g| {
            vec![
                text(&g.grantor),
                text("USER"),
                text(g.grantee.name()),
                text(g.grantee.kind()),
                text(&g.object.catalog),
                text(&g.object.schema),
                match g.object.is_schema() {
                    true => Cell::Text(None),
                    false => text(&g.object.table),
                },
                text(g.privilege.name()),
                yes_no(g.grant_option),
                yes_no(false),
            ]
        })
        .collect();
    let schema = text_schema(&[
        "Grantor",
        "Grantor Type",
        "Grantee",
        "Grantee Type",
        "Catalog",
        "Schema",
        "Table",
        "Privilege",
        "Grantable",
        "With Hierarchy",
    ]);
    Ok(Output::batch(batch_of(schema, &rows)?))
}

/// `SHOW ROW FILTERS` and `SHOW COLUMN MASKS`: what an administrator or the table's owner
/// declared, or what applies to the user.
fn show_restrictions(
    grants: &Grants,
    me: &BTreeSet<Grantee>,
    masks: bool,
    on: Option<&Object>,
) -> Result<Output> {
    let admin = is_admin(me);
    let rows: Vec<Vec<Cell>> = grants
        .restrictions
        .iter()
        .filter(|r| r.column.is_some() == masks)
        .filter(|r| on.is_none_or(|o| r.object == *o))
        .filter(|r| admin || me.contains(&r.grantee) || grants.owns(me, &r.object))
        .map(|r| {
            let mut row = vec![
                text(&r.object.catalog),
                text(&r.object.schema),
                text(&r.object.table),
            ];
            if let Some(column) = &r.column {
                row.push(text(column));
            }
            row.extend([
                text(r.grantee.name()),
                text(r.grantee.kind()),
                text(&r.expression),
            ]);
            row
        })
        .collect();
    let schema = match masks {
        true => text_schema(&[
            "Catalog",
            "Schema",
            "Table",
            "Column",
            "Grantee",
            "Grantee Type",
            "Expression",
        ]),
        false => text_schema(&[
            "Catalog",
            "Schema",
            "Table",
            "Grantee",
            "Grantee Type",
            "Expression",
        ]),
    };
    Ok(Output::batch(batch_of(schema, &rows)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(sql: &str) -> GrantStatement {
        parse(sql)
            .unwrap()
            .unwrap_or_else(|| panic!("not a grant statement: {sql}"))
    }

    #[test]
    fn trinos_grant_syntax_reads() {
        assert_eq!(
            parsed("GRANT SELECT, INSERT ON TABLE s.t TO ROLE Analyst WITH GRANT OPTION"),
            GrantStatement::Privileges {
                verb: "GRANT",
                privileges: vec![TablePrivilege::Select, TablePrivilege::Insert],
                target: Target::Table(ObjectName::from(vec![
                    datafusion::sql::sqlparser::ast::Ident::new("s"),
                    datafusion::sql::sqlparser::ast::Ident::new("t"),
                ])),
                grantee: Grantee::Role("analyst".into()),
                grant_option: true,
            }
        );
        assert!(matches!(
            parsed("REVOKE GRANT OPTION FOR ALL PRIVILEGES ON SCHEMA s FROM Ann"),
            GrantStatement::Privileges { verb: "REVOKE", ref privileges, grant_option: true,
                grantee: Grantee::User(ref u), .. } if privileges.len() == 4 && u == "Ann"
        ));
        assert_eq!(
            parsed("GRANT a, b TO USER x, ROLE y WITH ADMIN OPTION"),
            GrantStatement::GrantRoles {
                roles: vec!["a".into(), "b".into()],
                grantees: vec![Grantee::User("x".into()), Grantee::Role("y".into())],
                admin_option: true,
            }
        );
        assert_eq!(
            parsed("REVOKE ADMIN OPTION FOR a FROM GROUP g"),
            GrantStatement::RevokeRoles {
                roles: vec!["a".into()],
                grantees: vec![Grantee::Group("g".into())],
                admin_option_only: true,
            }
        );
        assert_eq!(
            parsed("SET ROLE NONE"),
            GrantStatement::SetRole(RoleSelection::None)
        );
        assert_eq!(
            parsed("SHOW CURRENT ROLES FROM system"),
            GrantStatement::ShowRoles { current: true }
        );
        assert!(matches!(
            parsed("CREATE OR REPLACE COLUMN MASK ON t COLUMN Email FOR ROLE r AS '***' ;"),
            GrantStatement::CreateRestriction { ref column, or_replace: true, ref expression, .. }
                if column.as_deref() == Some("email") && expression == "'***'"
        ));
        assert!(matches!(
            parsed("ALTER VIEW v SET AUTHORIZATION ROLE r"),
            GrantStatement::SetAuthorization {
                kind: OwnedKind::View,
                ..
            }
        ));
        assert_eq!(parse("ALTER TABLE t ADD COLUMN x int").unwrap(), None);
        assert_eq!(parse("SET SESSION a = 1").unwrap(), None);
        let unknown = parse("GRANT FLY ON t TO u").unwrap_err();
        assert_eq!(unknown.code, ErrorCode::INVALID_PRIVILEGE);
        assert_eq!(
            parse("CREATE ROLE r IN hive").unwrap_err().code,
            ErrorCode::NOT_SUPPORTED
        );
        assert_eq!(
            parse("DENY a TO u").unwrap_err().code,
            ErrorCode::SYNTAX_ERROR
        );
    }
}
