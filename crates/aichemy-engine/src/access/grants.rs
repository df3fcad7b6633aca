//! SQL grants as the lakehouse enforces them: the metastore's grants read at most once a
//! second (every node sees another node's GRANT within that), immediately after this
//! node changes them, and compiled once per user, groups and enabled roles.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aichemy_access::{principals, FileAccessControl, Grants, Identity, Policy, RoleSelection};

use super::Access;
use crate::catalog::lakehouse::Lakehouse;
use crate::error::{ErrorCode, Result, TrinoError};

/// How long grants read from the metastore are used before they are read again.
const GRANTS_FRESH_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct State {
    grants: Arc<Grants>,
    read_at: Option<Instant>,
    compiled: HashMap<Identity, Arc<FileAccessControl>>,
}

/// The grants last read and the rules compiled from them.
#[derive(Debug, Default)]
pub(crate) struct GrantsCache {
    state: Mutex<State>,
}

impl GrantsCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stale(&self) -> bool {
        self.lock()
            .read_at
            .is_none_or(|at| at.elapsed() >= GRANTS_FRESH_FOR)
    }

    fn replace(&self, grants: Grants) {
        *self.lock() = State {
            grants: Arc::new(grants),
            read_at: Some(Instant::now()),
            compiled: HashMap::new(),
        };
    }

    pub(crate) fn current(&self) -> Arc<Grants> {
        self.lock().grants.clone()
    }

    fn compiled(&self, identity: &Identity) -> Arc<FileAccessControl> {
        let mut state = self.lock();
        if let Some(rules) = state.compiled.get(identity) {
            return rules.clone();
        }
        let rules = Arc::new(state.grants.compile(&principals(identity)));
        // A bound on what one busy server keeps: many users, each with a few selections.
        if state.compiled.len() >= 10_000 {
            state.compiled.clear();
        }
        state.compiled.insert(identity.clone(), rules.clone());
        rules
    }
}

fn unreadable(error: aichemy_metastore::MetastoreError) -> TrinoError {
    TrinoError::new(
        ErrorCode::GENERIC_INTERNAL_ERROR,
        format!("The SQL grants cannot be read from the metastore: {error}"),
    )
}

impl Lakehouse {
    /// Whether SQL grants decide (`access-control.name=sql-standard`).
    pub(crate) fn sql_grants(&self) -> bool {
        self.policy().is_some_and(Policy::is_sql_standard)
    }

    /// Reads the grants again when they are older than a second, or when `now`.
    pub async fn refresh_grants(&self, now: bool) -> Result<()> {
        if !self.sql_grants() || !(now || self.grants_cache().stale()) {
            return Ok(());
        }
        let grants = self.metastore().grants().await.map_err(unreadable)?;
        self.grants_cache().replace(grants);
        Ok(())
    }

    /// The grants as last read.
    pub(crate) fn grants(&self) -> Arc<Grants> {
        self.grants_cache().current()
    }

    /// The users who hold `admin`: the access control's and the server's administrators.
    pub(crate) fn grant_admins(&self) -> BTreeSet<String> {
        let mut admins = self
            .policy()
            .map(|p| p.admin_users().clone())
            .unwrap_or_default();
        admins.extend(self.configured_admins().iter().cloned());
        admins
    }

    /// What SQL grants allow `user` with the roles `role` enables.
    pub(super) fn grants_access(
        &self,
        user: &str,
        groups: BTreeSet<String>,
        role: &RoleSelection,
    ) -> Result<Access> {
        let grants = self.grants();
        let roles = grants
            .enabled_roles(user, &groups, &self.grant_admins(), role)
            .map_err(|role| {
                super::denied(aichemy_access::Denied(format!("Cannot set role {role}")))
            })?;
        let identity = Identity {
            user: user.to_string(),
            groups,
            roles,
        };
        Ok(Access {
            rules: self.grants_cache().compiled(&identity),
            identity,
        })
    }
}

/// What a statement changes about owners under SQL grants: who creates a schema, table
/// or view owns it; a dropped object's grants go with it; a renamed one's follow it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ownership {
    Nothing,
    Create(aichemy_access::Object),
    Drop(Vec<aichemy_access::Object>),
    Rename(aichemy_access::Object, aichemy_access::Object),
}

impl Ownership {
    /// What `statement` will change, read before it runs (its names as it resolves them).
    pub(crate) fn of(
        session: &crate::session::Session,
        statement: &datafusion::sql::sqlparser::ast::Statement,
    ) -> Result<Self> {
        use aichemy_access::Object;
        use datafusion::sql::sqlparser::ast::{
            AlterTableOperation, ObjectName, ObjectType, RenameTableNameKind, SchemaName, Statement,
        };
        if !session.lakehouse().sql_grants() {
            return Ok(Ownership::Nothing);
        }
        let table = |name: &ObjectName| -> Result<Object> {
            let q = session.qualify(name)?;
            Ok(Object::table(&q.catalog, &q.schema, &q.name))
        };
        let schema = |name: &ObjectName| -> Result<Object> {
            let (catalog, schema) = crate::statement::ddl::schema_name(session, name)?;
            Ok(Object::schema(&catalog, &schema))
        };
        Ok(match statement {
            Statement::CreateTable(create) => Ownership::Create(table(&create.name)?),
            Statement::CreateView(create) => Ownership::Create(table(&create.name)?),
            Statement::CreateSchema {
                schema_name: SchemaName::Simple(name),
                ..
            } => Ownership::Create(schema(name)?),
            Statement::Drop {
                object_type: ObjectType::Table | ObjectType::View,
                names,
                ..
            } => Ownership::Drop(names.iter().map(table).collect::<Result<_>>()?),
            Statement::Drop {
                object_type: ObjectType::Schema | ObjectType::Database,
                names,
                ..
            } => Ownership::Drop(names.iter().map(schema).collect::<Result<_>>()?),
            Statement::AlterTable(alter) => {
                let renamed = alter.operations.iter().find_map(|o| match o {
                    AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::To(to) | RenameTableNameKind::As(to),
                    } => Some(to),
                    _ => None,
                });
                match renamed {
                    Some(to) => Ownership::Rename(table(&alter.name)?, table(to)?),
                    None => Ownership::Nothing,
                }
            }
            _ => Ownership::Nothing,
        })
    }

    /// Records the change once the statement has succeeded.
    pub(crate) async fn record(self, session: &crate::session::Session) -> Result<()> {
        self.apply(session.lakehouse(), &session.user).await
    }

    /// Records the change `user` made.
    async fn apply(self, lakehouse: &Lakehouse, user: &str) -> Result<()> {
        if self == Ownership::Nothing || !lakehouse.sql_grants() {
            return Ok(());
        }
        let metastore = lakehouse.metastore();
        let owner = aichemy_access::Grantee::User(user.to_string());
        match self {
            Ownership::Nothing => Ok(()),
            Ownership::Create(object) => metastore.set_owner(&object, &owner, false).await,
            Ownership::Drop(objects) => {
                for object in &objects {
                    metastore.forget_object(object).await?;
                }
                Ok(())
            }
            Ownership::Rename(from, to) => metastore.rename_object(&from, &to).await,
        }
        .map_err(unreadable)?;
        lakehouse.refresh_grants(true).await
    }
}

fn object(table: &aichemy_access::TableName) -> aichemy_access::Object {
    aichemy_access::Object::table(&table.catalog, &table.schema, &table.table)
}

/// Owners of what is created, dropped and renamed outside SQL (the Iceberg REST catalog),
/// under SQL grants; nothing otherwise.
impl Lakehouse {
    /// `user` owns the table she created, unless it has an owner.
    pub async fn record_owner(&self, table: &aichemy_access::TableName, user: &str) -> Result<()> {
        Ownership::Create(object(table)).apply(self, user).await
    }

    /// A dropped table's owner and grants go with it.
    pub async fn forget_owner(&self, table: &aichemy_access::TableName) -> Result<()> {
        Ownership::Drop(vec![object(table)]).apply(self, "").await
    }

    /// `user` owns the schema she created, unless it has an owner.
    pub async fn record_schema_owner(&self, catalog: &str, schema: &str, user: &str) -> Result<()> {
        let object = aichemy_access::Object::schema(catalog, schema);
        Ownership::Create(object).apply(self, user).await
    }

    /// A dropped schema's owner and grants go with it.
    pub async fn forget_schema_owner(&self, catalog: &str, schema: &str) -> Result<()> {
        let object = aichemy_access::Object::schema(catalog, schema);
        Ownership::Drop(vec![object]).apply(self, "").await
    }

    /// A renamed table keeps its owner and grants.
    pub async fn move_owner(
        &self,
        from: &aichemy_access::TableName,
        to: &aichemy_access::TableName,
    ) -> Result<()> {
        Ownership::Rename(object(from), object(to))
            .apply(self, "")
            .await
    }
}
