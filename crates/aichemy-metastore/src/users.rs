//! Users (their password hashes) and shared secrets (the REST token key).

use sqlx::Row;

use crate::{Metastore, MetastoreError};

impl Metastore {
    /// Adds a user with a password hash; `UserAlreadyExists` when the name is taken.
    pub async fn add_user(&self, name: &str, password_hash: &str) -> Result<(), MetastoreError> {
        self.add_users(&[(name.to_string(), password_hash.to_string())])
            .await
    }

    /// Adds users with their password hashes, all or none: `UserAlreadyExists` names the
    /// first one taken.
    pub async fn add_users(&self, users: &[(String, String)]) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for (name, password_hash) in users {
            let result =
                sqlx::query("INSERT INTO aichemy_users (user_name, password_hash) VALUES ($1, $2)")
                    .bind(name)
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await;
            match result {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(MetastoreError::UserAlreadyExists { user: name.clone() })
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a user's password hash; answers whether the user exists.
    pub async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query("UPDATE aichemy_users SET password_hash = $1 WHERE user_name = $2")
            .bind(password_hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a user; answers whether the user existed.
    pub async fn remove_user(&self, name: &str) -> Result<bool, MetastoreError> {
        let done = sqlx::query("DELETE FROM aichemy_users WHERE user_name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A user's password hash, or `None` when there is no such user.
    pub async fn user_password_hash(&self, name: &str) -> Result<Option<String>, MetastoreError> {
        let row = sqlx::query("SELECT password_hash FROM aichemy_users WHERE user_name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// The users' names, sorted.
    pub async fn list_users(&self) -> Result<Vec<String>, MetastoreError> {
        let rows = sqlx::query("SELECT user_name FROM aichemy_users ORDER BY user_name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    /// The shared secret `name`. The first caller stores the value `make` gives; callers
    /// racing it, on this server or another, all get the one value stored.
    pub async fn shared_secret(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, MetastoreError> {
        sqlx::query(
            "INSERT INTO aichemy_secrets (secret_name, secret_value) VALUES ($1, $2)
             ON CONFLICT (secret_name) DO NOTHING",
        )
        .bind(name)
        .bind(make())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT secret_value FROM aichemy_secrets WHERE secret_name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }
}
