//! SQL grants (`access-control.name=sql-standard`): roles and who holds them, privileges
//! granted and denied, owners, row filters and column masks, read whole as one
//! [`Grants`] snapshot that the engine compiles per user.

use aichemy_access::{
    Grantee, Grants, Object, PrivilegeGrant, Restriction, RoleGrant, TablePrivilege,
};
use sqlx::Row;

use crate::{Metastore, MetastoreError};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn grantee(kind: String, name: String) -> Result<Grantee, MetastoreError> {
    Grantee::from_parts(&kind, &name).ok_or_else(|| MetastoreError::InvalidGrant {
        message: format!("unknown grantee type {kind:?} for {name:?}"),
    })
}

fn privilege(name: &str) -> Result<TablePrivilege, MetastoreError> {
    aichemy_access::PRIVILEGES
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| MetastoreError::InvalidGrant {
            message: format!("unknown privilege {name:?}"),
        })
}

impl Metastore {
    /// Every grant, read in one transaction.
    pub async fn grants(&self) -> Result<Grants, MetastoreError> {
        let mut tx = self.pool.begin().await?;
        let mut grants = Grants::default();
        for row in sqlx::query("SELECT role_name FROM aichemy_roles")
            .fetch_all(&mut *tx)
            .await?
        {
            grants.roles.insert(row.get(0));
        }
        for row in sqlx::query(
            "SELECT role_name, grantee_type, grantee, admin_option, grantor \
             FROM aichemy_role_grants ORDER BY role_name, grantee_type, grantee",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            grants.role_grants.push(RoleGrant {
                role: row.get(0),
                grantee: grantee(row.get(1), row.get(2))?,
                admin_option: row.get::<i64, _>(3) != 0,
                grantor: row.get(4),
            });
        }
        for row in sqlx::query(
            "SELECT catalog_name, schema_name, table_name, privilege, grantee_type, grantee, \
             is_deny, grant_option, grantor FROM aichemy_privileges \
             ORDER BY catalog_name, schema_name, table_name, grantee_type, grantee, privilege",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            grants.privileges.push(PrivilegeGrant {
                object: Object::table(row.get(0), row.get(1), row.get(2)),
                privilege: privilege(row.get(3))?,
                grantee: grantee(row.get(4), row.get(5))?,
                deny: row.get::<i64, _>(6) != 0,
                grant_option: row.get::<i64, _>(7) != 0,
                grantor: row.get(8),
            });
        }
        for row in sqlx::query(
            "SELECT catalog_name, schema_name, table_name, owner_type, owner FROM aichemy_owners",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            grants.owners.insert(
                Object::table(row.get(0), row.get(1), row.get(2)),
                grantee(row.get(3), row.get(4))?,
            );
        }
        for row in sqlx::query(
            "SELECT catalog_name, schema_name, table_name, column_name, grantee_type, grantee, \
             expression FROM aichemy_restrictions \
             ORDER BY catalog_name, schema_name, table_name, column_name, grantee_type, grantee",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let column: String = row.get(3);
            grants.restrictions.push(Restriction {
                object: Object::table(row.get(0), row.get(1), row.get(2)),
                column: (!column.is_empty()).then_some(column),
                grantee: grantee(row.get(4), row.get(5))?,
                expression: row.get(6),
            });
        }
        tx.commit().await?;
        Ok(grants)
    }

    /// Creates a role; answers whether it was new.
    pub async fn create_role(&self, role: &str, by: &str) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "INSERT INTO aichemy_roles (role_name, created_by, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (role_name) DO NOTHING",
        )
        .bind(role)
        .bind(by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Drops a role and every grant of it, to it and for it; answers whether it existed.
    pub async fn drop_role(&self, role: &str) -> Result<bool, MetastoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM aichemy_roles WHERE role_name = $1")
            .bind(role)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM aichemy_role_grants WHERE role_name = $1 \
             OR (grantee_type = 'ROLE' AND grantee = $1)",
        )
        .bind(role)
        .execute(&mut *tx)
        .await?;
        for table in ["aichemy_privileges", "aichemy_restrictions"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE grantee_type = 'ROLE' AND grantee = $1"
            ))
            .bind(role)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Grants `role` to `grantee`; granting it again can add the admin option, never take
    /// it away.
    pub async fn grant_role(&self, grant: &RoleGrant) -> Result<(), MetastoreError> {
        sqlx::query(
            "INSERT INTO aichemy_role_grants \
             (role_name, grantee_type, grantee, admin_option, grantor) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (role_name, grantee_type, grantee) DO UPDATE SET \
             admin_option = CASE WHEN excluded.admin_option > aichemy_role_grants.admin_option \
             THEN excluded.admin_option ELSE aichemy_role_grants.admin_option END",
        )
        .bind(&grant.role)
        .bind(grant.grantee.kind())
        .bind(grant.grantee.name())
        .bind(grant.admin_option as i64)
        .bind(&grant.grantor)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes `role` from `grantee` (only its admin option when `admin_option_only`);
    /// answers whether there was such a grant.
    pub async fn revoke_role(
        &self,
        role: &str,
        grantee: &Grantee,
        admin_option_only: bool,
    ) -> Result<bool, MetastoreError> {
        let sql = match admin_option_only {
            true => {
                "UPDATE aichemy_role_grants SET admin_option = 0 \
                 WHERE role_name = $1 AND grantee_type = $2 AND grantee = $3"
            }
            false => {
                "DELETE FROM aichemy_role_grants \
                 WHERE role_name = $1 AND grantee_type = $2 AND grantee = $3"
            }
        };
        let done = sqlx::query(sql)
            .bind(role)
            .bind(grantee.kind())
            .bind(grantee.name())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Grants or denies a privilege; it replaces the opposite decision for the same
    /// grantee, and a grant again can add the grant option, never take it away.
    pub async fn grant_privilege(&self, grant: &PrivilegeGrant) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        let o = &grant.object;
        sqlx::query(
            "DELETE FROM aichemy_privileges WHERE catalog_name = $1 AND schema_name = $2 \
             AND table_name = $3 AND privilege = $4 AND grantee_type = $5 AND grantee = $6 \
             AND is_deny = $7",
        )
        .bind(&o.catalog)
        .bind(&o.schema)
        .bind(&o.table)
        .bind(grant.privilege.name())
        .bind(grant.grantee.kind())
        .bind(grant.grantee.name())
        .bind(!grant.deny as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO aichemy_privileges (catalog_name, schema_name, table_name, privilege, \
             grantee_type, grantee, is_deny, grant_option, grantor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (catalog_name, schema_name, table_name, privilege, grantee_type, \
             grantee, is_deny) DO UPDATE SET grant_option = CASE \
             WHEN excluded.grant_option > aichemy_privileges.grant_option \
             THEN excluded.grant_option ELSE aichemy_privileges.grant_option END",
        )
        .bind(&o.catalog)
        .bind(&o.schema)
        .bind(&o.table)
        .bind(grant.privilege.name())
        .bind(grant.grantee.kind())
        .bind(grant.grantee.name())
        .bind(grant.deny as i64)
        .bind(grant.grant_option as i64)
        .bind(&grant.grantor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a privilege granted or denied to `grantee` (only its grant option when
    /// `grant_option_only`); answers whether there was one.
    pub async fn revoke_privilege(
        &self,
        object: &Object,
        privilege: TablePrivilege,
        grantee: &Grantee,
        grant_option_only: bool,
    ) -> Result<bool, MetastoreError> {
        let sql = match grant_option_only {
            true => {
                "UPDATE aichemy_privileges SET grant_option = 0 WHERE catalog_name = $1 \
                 AND schema_name = $2 AND table_name = $3 AND privilege = $4 \
                 AND grantee_type = $5 AND grantee = $6 AND is_deny = 0"
            }
            false => {
                "DELETE FROM aichemy_privileges WHERE catalog_name = $1 AND schema_name = $2 \
                 AND table_name = $3 AND privilege = $4 AND grantee_type = $5 AND grantee = $6"
            }
        };
        let done = sqlx::query(sql)
            .bind(&object.catalog)
            .bind(&object.schema)
            .bind(&object.table)
            .bind(privilege.name())
            .bind(grantee.kind())
            .bind(grantee.name())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Makes `owner` the owner of `object`; when not `replace`, only if it has none (a
    /// `CREATE … IF NOT EXISTS` that found it there, a `CREATE OR REPLACE` keep theirs).
    pub async fn set_owner(
        &self,
        object: &Object,
        owner: &Grantee,
        replace: bool,
    ) -> Result<(), MetastoreError> {
        let conflict = match replace {
            true => "DO UPDATE SET owner_type = excluded.owner_type, owner = excluded.owner",
            false => "DO NOTHING",
        };
        sqlx::query(&format!(
            "INSERT INTO aichemy_owners (catalog_name, schema_name, table_name, owner_type, \
             owner) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (catalog_name, schema_name, \
             table_name) {conflict}"
        ))
        .bind(&object.catalog)
        .bind(&object.schema)
        .bind(&object.table)
        .bind(owner.kind())
        .bind(owner.name())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the owner, grants and restrictions of a dropped object (of a schema: its
    /// own, not its tables').
    pub async fn forget_object(&self, object: &Object) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "aichemy_owners",
            "aichemy_privileges",
            "aichemy_restrictions",
        ] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE catalog_name = $1 AND schema_name = $2 \
                 AND table_name = $3"
            ))
            .bind(&object.catalog)
            .bind(&object.schema)
            .bind(&object.table)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves the owner, grants and restrictions of a renamed table to its new name.
    pub async fn rename_object(&self, from: &Object, to: &Object) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "aichemy_owners",
            "aichemy_privileges",
            "aichemy_restrictions",
        ] {
            sqlx::query(&format!(
                "UPDATE {table} SET catalog_name = $1, schema_name = $2, table_name = $3 \
                 WHERE catalog_name = $4 AND schema_name = $5 AND table_name = $6"
            ))
            .bind(&to.catalog)
            .bind(&to.schema)
            .bind(&to.table)
            .bind(&from.catalog)
            .bind(&from.schema)
            .bind(&from.table)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Puts a row filter or column mask on a table for a grantee; answers `false`, and
    /// changes nothing, when one is there and `replace` is not set.
    pub async fn set_restriction(
        &self,
        restriction: &Restriction,
        replace: bool,
    ) -> Result<bool, MetastoreError> {
        let conflict = match replace {
            true => "DO UPDATE SET expression = excluded.expression",
            false => "DO NOTHING",
        };
        let o = &restriction.object;
        let done = sqlx::query(&format!(
            "INSERT INTO aichemy_restrictions (catalog_name, schema_name, table_name, \
             column_name, grantee_type, grantee, expression) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (catalog_name, schema_name, table_name, column_name, grantee_type, \
             grantee) {conflict}"
        ))
        .bind(&o.catalog)
        .bind(&o.schema)
        .bind(&o.table)
        .bind(restriction.column.as_deref().unwrap_or(""))
        .bind(restriction.grantee.kind())
        .bind(restriction.grantee.name())
        .bind(&restriction.expression)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Drops a row filter (`column` `None`) or column mask; answers whether it existed.
    pub async fn drop_restriction(
        &self,
        object: &Object,
        column: Option<&str>,
        grantee: &Grantee,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "DELETE FROM aichemy_restrictions WHERE catalog_name = $1 AND schema_name = $2 \
             AND table_name = $3 AND column_name = $4 AND grantee_type = $5 AND grantee = $6",
        )
        .bind(&object.catalog)
        .bind(&object.schema)
        .bind(&object.table)
        .bind(column.unwrap_or(""))
        .bind(grantee.kind())
        .bind(grantee.name())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
