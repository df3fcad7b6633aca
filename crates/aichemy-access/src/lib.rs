//! Who may do what: the access policy every entry point of AIchemy asks before it reads,
//! writes, lists or changes anything.
//!
//! `rules.rs` reads a Trino rules file as Trino's file-based access control takes it,
//! `file.rs` answers its questions the way Trino does (first matching rule decides, no
//! match denies, no rules allow), `checks.rs` turns them into the checks each statement
//! makes, with Trino's wording when denied, `groups.rs` reads a Trino group file and
//! `config.rs` an `access-control.properties` file, reloading both when they change;
//! `grants.rs` compiles SQL grants kept in a metastore into the same rules, one user at a
//! time.
//! Nothing here knows SQL engines or servers: callers name the user, the object and the
//! operation.

mod checks;
mod config;
mod file;
mod grants;
mod groups;
pub mod rules;

use std::collections::BTreeSet;
use std::fmt;

pub use config::{AccessControlConfig, Policy};
pub use file::FileAccessControl;
pub use grants::{
    principals, Grantee, Grants, Object, PrivilegeGrant, Restriction, RoleGrant, RoleSelection,
    ADMIN_ROLE, PRIVILEGES, PUBLIC_ROLE,
};
pub use groups::GroupFile;
pub use rules::{
    CatalogAccess, QueryAccess, RoutinePrivilege, Rules, SystemAccess, TablePrivilege,
};

/// A user as a policy sees it: the name, the groups a group provider gives it and the
/// roles it has enabled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Identity {
    pub user: String,
    pub groups: BTreeSet<String>,
    pub roles: BTreeSet<String>,
}

impl Identity {
    pub fn user(name: &str) -> Self {
        Self {
            user: name.to_string(),
            ..Self::default()
        }
    }
}

/// A table, view or materialized view by its three names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub catalog: String,
    pub schema: String,
    pub table: String,
}

impl TableName {
    pub fn new(catalog: &str, schema: &str, table: &str) -> Self {
        Self {
            catalog: catalog.to_string(),
            schema: schema.to_string(),
            table: table.to_string(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.catalog, self.schema, self.table)
    }
}

/// Whom an object is handed to or a privilege granted to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    User(String),
    Role(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(name) => write!(f, "USER {name}"),
            Principal::Role(name) => write!(f, "ROLE {name}"),
        }
    }
}

/// A row filter or column mask: SQL over the table's columns, checked as `user` when one
/// is given (the querying user otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    pub sql: String,
    pub user: Option<String>,
}

/// A rules, group or properties file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RulesError(pub String);

/// A refused operation, worded as Trino words it (without the `Access Denied: ` prefix,
/// which [`fmt::Display`] adds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Access Denied: {0}")]
pub struct Denied(pub String);

#[cfg(test)]
mod docs_examples;
#[cfg(test)]
mod tests;
