//! API keys for the Member API clients (the mini-program backend, the door station…).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::scope::{parse_api_key_name, Scopes};

use crate::credentials::{generate_api_key, hash_api_key};
use crate::rows::{instant, secs};
use crate::schema::api_keys;
use crate::{map_unique, StorageError, Store, UniqueField};

/// An API key as stored (its hash is never returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Database ID.
    pub id: i64,
    /// Unique name, e.g. `mini-program`.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    id: i64,
    name: String,
    scopes: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl ApiKeyRow {
    fn into_domain(self) -> Result<ApiKey, StorageError> {
        let id = self.id;
        Ok(ApiKey {
            id,
            scopes: Scopes::parse(&self.scopes).map_err(|e| StorageError::Corrupt {
                table: "api_keys",
                id,
                reason: e.to_string(),
            })?,
            name: self.name,
            created_at: instant("api_keys", id, self.created_at)?,
            revoked_at: self
                .revoked_at
                .map(|s| instant("api_keys", id, s))
                .transpose()?,
        })
    }
}

impl Store {
    /// Creates an API key; returns it with its plaintext, which is shown once
    /// and never stored.
    pub fn create_api_key(
        &self,
        name: &str,
        scopes: &Scopes,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, String), StorageError> {
        let name = parse_api_key_name(name).map_err(|e| e.field("name"))?;
        let key = generate_api_key()?;
        let row = self.write(|conn| {
            let taken: Option<i64> = api_keys::table
                .select(api_keys::id)
                .filter(api_keys::name.eq(&name))
                .get_result(conn)
                .optional()?;
            if taken.is_some() {
                return Err(StorageError::Duplicate(UniqueField::ApiKeyName));
            }
            diesel::insert_into(api_keys::table)
                .values((
                    api_keys::name.eq(&name),
                    api_keys::key_hash.eq(hash_api_key(&key)),
                    api_keys::scopes.eq(scopes.to_string()),
                    api_keys::created_at.eq(secs(now)),
                ))
                .execute(conn)
                .map_err(|e| map_unique(e.into()))?;
            Ok(api_keys::table
                .select(ApiKeyRow::as_select())
                .filter(api_keys::name.eq(&name))
                .get_result(conn)?)
        })?;
        Ok((row.into_domain()?, key))
    }

    /// The live (not revoked) key whose plaintext is `presented`, if any.
    pub fn authenticate_api_key(&self, presented: &str) -> Result<Option<ApiKey>, StorageError> {
        self.api_key_by_hash(&hash_api_key(presented))
    }

    /// The live key whose SHA-256 ([`crate::credentials::hash_api_key`]) is `hash`.
    pub fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StorageError> {
        let mut conn = self.conn()?;
        let row = api_keys::table
            .select(ApiKeyRow::as_select())
            .filter(api_keys::key_hash.eq(hash))
            .filter(api_keys::revoked_at.is_null())
            .get_result(&mut conn)
            .optional()?;
        row.map(ApiKeyRow::into_domain).transpose()
    }

    /// Every key, revoked ones included, by name.
    pub fn list_api_keys(&self) -> Result<Vec<ApiKey>, StorageError> {
        let mut conn = self.conn()?;
        api_keys::table
            .select(ApiKeyRow::as_select())
            .order(api_keys::name.asc())
            .load(&mut conn)?
            .into_iter()
            .map(ApiKeyRow::into_domain)
            .collect()
    }

    /// Revokes the key named `name`; `false` if there is no live key of that name.
    pub fn revoke_api_key(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StorageError> {
        self.write_noting(
            |conn| {
                let n = diesel::update(
                    api_keys::table
                        .filter(api_keys::name.eq(name))
                        .filter(api_keys::revoked_at.is_null()),
                )
                .set(api_keys::revoked_at.eq(secs(now)))
                .execute(conn)?;
                Ok(n > 0)
            },
            |revoked| *revoked,
        )
    }
}
