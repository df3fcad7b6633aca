//! The access policy applied to statements (issue 34): what the lakehouse's
//! [`aichemy_access::Policy`] allows a session's user, asked at each entry point.
//!
//! Reads are checked where they happen: every table a statement resolves is wrapped in a
//! [`guard::GuardedTable`] whose scan checks the columns it reads, so joins, subqueries,
//! CTEs, views' bodies and the sources of INSERT, CTAS and MERGE are all covered; views
//! are checked by name when resolved; a user's row filter and column masks replace the
//! table by its restriction (`restrict.rs`). Writes and definitions are checked by
//! statement (`statements.rs`) before they run, which also keeps a DELETE within the row
//! filter and refuses what Trino refuses on restricted tables. Without a configured policy
//! nothing is checked.

pub(crate) mod grants;
pub(crate) mod guard;
pub(crate) mod restrict;
pub(crate) mod statements;

use std::sync::Arc;

use aichemy_access::{Denied, FileAccessControl, Identity, RoleSelection, RulesError, TableName};

use crate::catalog::lakehouse::{Lakehouse, QualifiedName};
use crate::error::{ErrorCode, Result, TrinoError};

/// A refusal as the client sees it.
pub(crate) fn denied(denied: Denied) -> TrinoError {
    TrinoError::new(ErrorCode::PERMISSION_DENIED, denied.to_string())
}

fn unusable(error: RulesError) -> TrinoError {
    TrinoError::new(
        ErrorCode::GENERIC_INTERNAL_ERROR,
        format!("The access control rules cannot be used: {error}"),
    )
}

/// The policy's rules as they stand and a user's identity under them.
#[derive(Debug, Clone)]
pub struct Access {
    pub rules: Arc<FileAccessControl>,
    pub identity: Identity,
}

impl Access {
    /// Runs one check; a refusal becomes the statement's error.
    pub fn check(
        &self,
        check: impl FnOnce(&FileAccessControl, &Identity) -> std::result::Result<(), Denied>,
    ) -> Result<()> {
        check(&self.rules, &self.identity).map_err(denied)
    }
}

impl Lakehouse {
    /// What the policy allows `user` with her roles' default selection; `None` when no
    /// policy is configured (everyone may do everything, as in Trino without access
    /// control).
    pub(crate) fn access(&self, user: &str) -> Result<Option<Access>> {
        self.access_as(user, &RoleSelection::All)
    }

    /// What the policy allows `user` with the roles `role` enables (SQL grants; a rules
    /// file matches roles the same way).
    pub fn access_as(&self, user: &str, role: &RoleSelection) -> Result<Option<Access>> {
        let Some(policy) = self.policy() else {
            return Ok(None);
        };
        let groups = policy.groups_of(user).map_err(unusable)?;
        match policy.rules() {
            Some(rules) => {
                let rules = rules.map_err(unusable)?;
                let identity = Identity {
                    user: user.to_string(),
                    groups,
                    roles: Default::default(),
                };
                Ok(Some(Access { rules, identity }))
            }
            None => self.grants_access(user, groups, role).map(Some),
        }
    }
}

impl Lakehouse {
    /// Whether `user` reads every user's records in the system tables and the server's
    /// metrics: `admin` under SQL grants, `system_information` read under a rules file,
    /// one of `server.admin_users` (everyone, when it names none) without a policy.
    pub fn reads_system_information(&self, user: &str) -> bool {
        if self.sql_grants() {
            return self.grant_admins().contains(user);
        }
        match self.access(user) {
            Ok(Some(access)) => access
                .rules
                .system_information(&access.identity, aichemy_access::SystemAccess::Read),
            Ok(None) => self.is_admin(user),
            Err(_) => false,
        }
    }
}

impl crate::session::Session {
    /// What the policy allows this session's user with the roles she has set.
    pub(crate) fn access(&self) -> Result<Option<Access>> {
        self.lakehouse().access_as(&self.user, &self.role)
    }

    /// Runs one check for this session's user under the policy, if there is one.
    pub(crate) fn check_access(
        &self,
        check: impl FnOnce(&FileAccessControl, &Identity) -> std::result::Result<(), Denied>,
    ) -> Result<()> {
        match self.access()? {
            Some(access) => access.check(check),
            None => Ok(()),
        }
    }
}

/// A relation's name as the policy names it.
pub(crate) fn table_name(name: &QualifiedName) -> TableName {
    TableName::new(&name.catalog, &name.schema, &name.name)
}
