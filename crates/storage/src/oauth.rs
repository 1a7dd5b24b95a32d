//! OAuth2 clients, authorization codes and tokens. Client secrets are stored
//! as argon2id hashes, codes and tokens as SHA-256 (they are 256 random bits).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use zhima_domain::ids::MemberId;
use zhima_domain::partner::PartnerScope;

use crate::connection::on_backend;
use crate::rows::{instant, secs};
use crate::schema::{members, oauth_clients, oauth_codes, oauth_tokens};
use crate::{StorageError, Store};

/// A registered partner application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Database ID.
    pub id: i64,
    /// The public client identifier.
    pub client_id: String,
    /// The partner's name, shown on the consent page.
    pub name: String,
    /// argon2id hash of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Scopes the client may be granted.
    pub scopes: BTreeSet<PartnerScope>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it was removed, if it was.
    pub removed_at: Option<DateTime<Utc>>,
    /// Whether it must use PKCE (every client, unless staff opted an old
    /// confidential partner out; public clients always must).
    pub pkce_required: bool,
}

impl OAuthClient {
    /// Whether the client has no secret (a mobile or browser app).
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

/// A client to register.
#[derive(Debug, Clone)]
pub struct NewOAuthClient<'a> {
    /// The public client identifier.
    pub client_id: &'a str,
    /// The partner's name.
    pub name: &'a str,
    /// argon2id hash of the secret; `None` for a public client.
    pub secret_hash: Option<String>,
    /// Redirect URIs.
    pub redirect_uris: &'a [String],
    /// Allowed scopes.
    pub scopes: &'a BTreeSet<PartnerScope>,
    /// Whether it must use PKCE.
    pub pkce_required: bool,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = oauth_clients)]
struct ClientRow {
    id: i64,
    client_id: String,
    name: String,
    secret_hash: Option<String>,
    redirect_uris: String,
    scopes: String,
    created_at: i64,
    removed_at: Option<i64>,
    pkce_required: bool,
}

impl ClientRow {
    fn into_domain(self) -> Result<OAuthClient, StorageError> {
        let id = self.id;
        Ok(OAuthClient {
            id,
            scopes: PartnerScope::parse_set(&self.scopes).map_err(|e| StorageError::Corrupt {
                table: "oauth_clients",
                id,
                reason: e.to_string(),
            })?,
            client_id: self.client_id,
            name: self.name,
            secret_hash: self.secret_hash,
            redirect_uris: self.redirect_uris.lines().map(str::to_owned).collect(),
            created_at: instant("oauth_clients", id, self.created_at)?,
            removed_at: self
                .removed_at
                .map(|s| instant("oauth_clients", id, s))
                .transpose()?,
            pkce_required: self.pkce_required,
        })
    }
}

/// An authorization code to store.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    /// SHA-256 of the code.
    pub code_hash: &'a str,
    /// The client it was issued to.
    pub client_id: &'a str,
    /// The member who consented.
    pub member_id: MemberId,
    /// The redirect URI it was sent to.
    pub redirect_uri: &'a str,
    /// The granted scopes, space-separated.
    pub scope: &'a str,
    /// The PKCE challenge (S256).
    pub pkce: Option<&'a str>,
    /// Whether the authorization request named the redirect URI.
    pub redirect_uri_sent: bool,
    /// When it stops being redeemable.
    pub expires_at: DateTime<Utc>,
}

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// Database ID; also the family of the tokens it yields.
    pub id: i64,
    /// The client it was issued to.
    pub client_id: String,
    /// The member who consented.
    pub member_id: MemberId,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The PKCE challenge (S256).
    pub pkce: Option<String>,
    /// Whether the authorization request named the redirect URI.
    pub redirect_uri_sent: bool,
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// First use, within its lifetime: now spent.
    Fresh(StoredCode),
    /// Issued to another client, or the request's redirect URI or PKCE
    /// verifier does not match: refused, and the code is left as it was.
    Mismatch,
    /// Already used, presented again by its own client: every token it
    /// yielded is now revoked.
    Replayed,
    /// Too late.
    Expired,
    /// No such code.
    Unknown,
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// Database ID.
    pub id: i64,
    /// Access or refresh.
    pub kind: TokenKind,
    /// The code it descends from.
    pub family: i64,
    /// The client it was issued to.
    pub client_id: String,
    /// The member it acts for.
    pub member_id: MemberId,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// A refresh token: when it was exchanged.
    pub used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl StoredToken {
    /// Not revoked, not exchanged, not expired at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.used_at.is_none() && now < self.expires_at
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = oauth_tokens)]
pub(crate) struct TokenRow {
    id: i64,
    kind: String,
    family: i64,
    client_id: String,
    member_id: i64,
    scope: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TokenRow {
    fn into_domain(self) -> Result<StoredToken, StorageError> {
        let id = self.id;
        let at = |s: i64| instant("oauth_tokens", id, s);
        Ok(StoredToken {
            id,
            kind: match self.kind.as_str() {
                "access" => TokenKind::Access,
                "refresh" => TokenKind::Refresh,
                other => {
                    return Err(StorageError::Corrupt {
                        table: "oauth_tokens",
                        id,
                        reason: format!("unknown kind {other:?}"),
                    })
                }
            },
            family: self.family,
            client_id: self.client_id,
            member_id: MemberId(self.member_id),
            scope: self.scope,
            created_at: at(self.created_at)?,
            expires_at: at(self.expires_at)?,
            used_at: self.used_at.map(at).transpose()?,
            revoked_at: self.revoked_at.map(at).transpose()?,
        })
    }
}

/// A new access token and its refresh token.
#[derive(Debug, Clone)]
pub struct NewTokens<'a> {
    /// The family (the code's ID).
    pub family: i64,
    /// The client.
    pub client_id: &'a str,
    /// The member.
    pub member_id: MemberId,
    /// The access token's scopes, space-separated.
    pub scope: &'a str,
    /// The refresh token's scopes: the original grant's, even when a
    /// refresh asked for a narrower access token (RFC 6749 §6).
    pub refresh_scope: &'a str,
    /// SHA-256 of the access token.
    pub access_hash: &'a str,
    /// When the access token expires.
    pub access_expires: DateTime<Utc>,
    /// SHA-256 of the refresh token.
    pub refresh_hash: &'a str,
    /// When the refresh token expires.
    pub refresh_expires: DateTime<Utc>,
}

fn insert_tokens(
    conn: &mut crate::connection::AnyConnection,
    new: &NewTokens<'_>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for (kind, hash, expires, scope) in [
        (
            TokenKind::Access,
            new.access_hash,
            new.access_expires,
            new.scope,
        ),
        (
            TokenKind::Refresh,
            new.refresh_hash,
            new.refresh_expires,
            new.refresh_scope,
        ),
    ] {
        diesel::insert_into(oauth_tokens::table)
            .values((
                oauth_tokens::token_hash.eq(hash),
                oauth_tokens::kind.eq(kind.as_str()),
                oauth_tokens::family.eq(new.family),
                oauth_tokens::client_id.eq(new.client_id),
                oauth_tokens::member_id.eq(new.member_id.0),
                oauth_tokens::scope.eq(scope),
                oauth_tokens::created_at.eq(secs(now)),
                oauth_tokens::expires_at.eq(secs(expires)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Revokes every token a member's partners hold and spends their codes
/// (deactivation); returns how many tokens were active.
pub(crate) fn revoke_member_grants_in(
    conn: &mut crate::connection::AnyConnection,
    member: i64,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    diesel::update(
        oauth_codes::table
            .filter(oauth_codes::member_id.eq(member))
            .filter(oauth_codes::used_at.is_null()),
    )
    .set(oauth_codes::used_at.eq(secs(now)))
    .execute(conn)?;
    Ok(diesel::update(
        oauth_tokens::table
            .filter(oauth_tokens::member_id.eq(member))
            .filter(oauth_tokens::revoked_at.is_null()),
    )
    .set(oauth_tokens::revoked_at.eq(secs(now)))
    .execute(conn)?)
}

fn revoke_family_in(
    conn: &mut crate::connection::AnyConnection,
    family: i64,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    // PostgreSQL: the family's rows are locked in id order first, so two
    // revocations of one family never hold each other's rows.
    if let crate::connection::AnyConnection::Postgresql(pg) = conn {
        oauth_tokens::table
            .select(oauth_tokens::id)
            .filter(oauth_tokens::family.eq(family))
            .order(oauth_tokens::id.asc())
            .for_update()
            .load::<i64>(pg)?;
    }
    Ok(diesel::update(
        oauth_tokens::table
            .filter(oauth_tokens::family.eq(family))
            .filter(oauth_tokens::revoked_at.is_null()),
    )
    .set(oauth_tokens::revoked_at.eq(secs(now)))
    .execute(conn)?)
}

impl Store {
    /// Registers a client.
    pub fn create_oauth_client(
        &self,
        new: &NewOAuthClient<'_>,
        now: DateTime<Utc>,
    ) -> Result<OAuthClient, StorageError> {
        let mut conn = self.conn()?;
        diesel::insert_into(oauth_clients::table)
            .values((
                oauth_clients::client_id.eq(new.client_id),
                oauth_clients::name.eq(new.name),
                oauth_clients::secret_hash.eq(new.secret_hash.as_deref()),
                oauth_clients::redirect_uris.eq(new.redirect_uris.join("\n")),
                oauth_clients::scopes.eq(PartnerScope::join(new.scopes)),
                oauth_clients::created_at.eq(secs(now)),
                oauth_clients::pkce_required.eq(new.pkce_required || new.secret_hash.is_none()),
            ))
            .execute(&mut conn)?;
        oauth_clients::table
            .select(ClientRow::as_select())
            .filter(oauth_clients::client_id.eq(new.client_id))
            .get_result(&mut conn)?
            .into_domain()
    }

    /// A client that has not been removed.
    pub fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StorageError> {
        let mut conn = self.conn()?;
        oauth_clients::table
            .select(ClientRow::as_select())
            .filter(oauth_clients::client_id.eq(client_id))
            .filter(oauth_clients::removed_at.is_null())
            .get_result(&mut conn)
            .optional()?
            .map(ClientRow::into_domain)
            .transpose()
    }

    /// Every client, removed ones included, oldest first.
    pub fn oauth_clients(&self) -> Result<Vec<OAuthClient>, StorageError> {
        let mut conn = self.conn()?;
        oauth_clients::table
            .select(ClientRow::as_select())
            .order(oauth_clients::id.asc())
            .load(&mut conn)?
            .into_iter()
            .map(ClientRow::into_domain)
            .collect()
    }

    /// Removes a client and revokes every token it holds. Returns whether
    /// an active client was removed.
    pub fn remove_oauth_client(
        &self,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.write_noting(
            |conn| {
                let n = diesel::update(
                    oauth_clients::table
                        .filter(oauth_clients::client_id.eq(client_id))
                        .filter(oauth_clients::removed_at.is_null()),
                )
                .set(oauth_clients::removed_at.eq(secs(now)))
                .execute(conn)?;
                diesel::update(
                    oauth_tokens::table
                        .filter(oauth_tokens::client_id.eq(client_id))
                        .filter(oauth_tokens::revoked_at.is_null()),
                )
                .set(oauth_tokens::revoked_at.eq(secs(now)))
                .execute(conn)?;
                Ok(n > 0)
            },
            |removed| *removed,
        )
    }

    /// Stores an authorization code.
    pub fn insert_oauth_code(
        &self,
        new: &NewCode<'_>,
        now: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        let mut conn = self.conn()?;
        Ok(diesel::insert_into(oauth_codes::table)
            .values((
                oauth_codes::code_hash.eq(new.code_hash),
                oauth_codes::client_id.eq(new.client_id),
                oauth_codes::member_id.eq(new.member_id.0),
                oauth_codes::redirect_uri.eq(new.redirect_uri),
                oauth_codes::scope.eq(new.scope),
                oauth_codes::pkce.eq(new.pkce),
                oauth_codes::redirect_uri_sent.eq(new.redirect_uri_sent),
                oauth_codes::created_at.eq(secs(now)),
                oauth_codes::expires_at.eq(secs(new.expires_at)),
            ))
            .returning(oauth_codes::id)
            .get_result(&mut conn)?)
    }

    /// Spends a code for `client_id`: the first redemption within its
    /// lifetime that `matches` (the request's redirect URI and PKCE verifier)
    /// gets it. A code of another client, or one that does not match, is
    /// refused and left as it was; a code its own client presents again
    /// revokes every token the first redemption yielded.
    pub fn redeem_oauth_code(
        &self,
        code_hash: &str,
        client_id: &str,
        now: DateTime<Utc>,
        matches: impl FnOnce(&StoredCode) -> bool,
    ) -> Result<Redeemed, StorageError> {
        self.write(|conn| {
            type Row = (
                i64,
                String,
                i64,
                String,
                String,
                Option<String>,
                i64,
                Option<i64>,
                bool,
            );
            let row: Option<Row> = oauth_codes::table
                .select((
                    oauth_codes::id,
                    oauth_codes::client_id,
                    oauth_codes::member_id,
                    oauth_codes::redirect_uri,
                    oauth_codes::scope,
                    oauth_codes::pkce,
                    oauth_codes::expires_at,
                    oauth_codes::used_at,
                    oauth_codes::redirect_uri_sent,
                ))
                .filter(oauth_codes::code_hash.eq(code_hash))
                .filter(
                    oauth_codes::member_id.eq_any(
                        members::table
                            .select(members::id)
                            .filter(members::deactivated_at.is_null()),
                    ),
                )
                .get_result(conn)
                .optional()?;
            let Some((id, owner, member_id, redirect_uri, scope, pkce, expires_at, used_at, sent)) =
                row
            else {
                return Ok(Redeemed::Unknown);
            };
            if owner != client_id {
                return Ok(Redeemed::Mismatch);
            }
            if used_at.is_some() {
                revoke_family_in(conn, id, now)?;
                return Ok(Redeemed::Replayed);
            }
            let stored = StoredCode {
                id,
                client_id: owner,
                member_id: MemberId(member_id),
                redirect_uri,
                scope,
                pkce,
                redirect_uri_sent: sent,
            };
            if !matches(&stored) {
                return Ok(Redeemed::Mismatch);
            }
            // spent either way: an expired code cannot be tried again
            let n = diesel::update(
                oauth_codes::table
                    .filter(oauth_codes::id.eq(id))
                    .filter(oauth_codes::used_at.is_null()),
            )
            .set(oauth_codes::used_at.eq(secs(now)))
            .execute(conn)?;
            if n == 0 {
                // another server spent it between our read and our write
                revoke_family_in(conn, id, now)?;
                return Ok(Redeemed::Replayed);
            }
            if secs(now) >= expires_at {
                return Ok(Redeemed::Expired);
            }
            Ok(Redeemed::Fresh(stored))
        })
    }

    /// Marks a consent ticket used: `true` the first time, `false` if it was
    /// used before (on this server or another on the database). Forgets
    /// tickets past their expiry.
    pub fn spend_ticket(
        &self,
        ticket_hash: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        use crate::schema::oauth_spent_tickets as t;
        self.write(|conn| {
            diesel::delete(t::table.filter(t::expires_at.lt(secs(now)))).execute(conn)?;
            let taken: i64 = t::table
                .filter(t::ticket_hash.eq(ticket_hash))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Ok(false);
            }
            diesel::insert_into(t::table)
                .values((
                    t::ticket_hash.eq(ticket_hash),
                    t::expires_at.eq(secs(expires_at)),
                ))
                .execute(conn)?;
            Ok(true)
        })
    }

    /// Requires PKCE of a client, or lets an old confidential one go
    /// without; `false` if there is no such active client.
    pub fn set_oauth_client_pkce(
        &self,
        client_id: &str,
        required: bool,
    ) -> Result<bool, StorageError> {
        self.write_noting(
            |conn| {
                let n = diesel::update(
                    oauth_clients::table
                        .filter(oauth_clients::client_id.eq(client_id))
                        .filter(oauth_clients::removed_at.is_null()),
                )
                .set(oauth_clients::pkce_required.eq(required))
                .execute(conn)?;
                Ok(n > 0)
            },
            |changed| *changed,
        )
    }

    /// Stores a new access token and its refresh token.
    pub fn issue_oauth_tokens(
        &self,
        new: &NewTokens<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.write(|conn| insert_tokens(conn, new, now))
    }

    /// A token by its hash, whatever its state; `None` for a token of a
    /// deactivated member, so no check of a token ever passes for one.
    pub fn oauth_token(&self, token_hash: &str) -> Result<Option<StoredToken>, StorageError> {
        let mut conn = self.conn()?;
        let row: Option<TokenRow> = on_backend!(&mut *conn, |c| oauth_tokens::table
            .select(TokenRow::as_select())
            .filter(oauth_tokens::token_hash.eq(token_hash))
            .filter(
                oauth_tokens::member_id.eq_any(
                    members::table
                        .select(members::id)
                        .filter(members::deactivated_at.is_null()),
                ),
            )
            .get_result(c)
            .optional())?;
        row.map(TokenRow::into_domain).transpose()
    }

    /// [`Store::oauth_token`] and the member it acts for, in one statement
    /// (`oauth_tokens JOIN members`); the member's history comes from the
    /// cache when its version is unchanged (see [`Store::member`]). `None`
    /// when there is no such token or its member is deactivated.
    pub fn oauth_token_with_member(
        &self,
        token_hash: &str,
    ) -> Result<Option<(StoredToken, crate::MemberRecord)>, StorageError> {
        let mut conn = self.conn()?;
        let row: Option<(TokenRow, crate::rows::MemberRow, i64)> =
            on_backend!(&mut *conn, |c| oauth_tokens::table
                .inner_join(members::table)
                .select((
                    TokenRow::as_select(),
                    crate::rows::MemberRow::as_select(),
                    members::history_version,
                ))
                .filter(oauth_tokens::token_hash.eq(token_hash))
                .filter(members::deactivated_at.is_null())
                .get_result(c)
                .optional())?;
        let Some((token, member, version)) = row else {
            return Ok(None);
        };
        let record = crate::members::complete_record(
            &mut conn,
            member,
            version,
            self.entry_windows.as_ref(),
            Some(&self.history),
        )?;
        Ok(Some((token.into_domain()?, record)))
    }

    /// Exchanges refresh token `old` for `new`, once: marks it used and
    /// stores the new pair in one transaction. If `old` was already used or
    /// revoked (a reuse, or a lost race), revokes the whole family instead and
    /// returns `false`.
    pub fn rotate_refresh_token(
        &self,
        old: i64,
        new: &NewTokens<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.write(|conn| {
            // PostgreSQL: every rotation of this token queues on its row
            // first, so the winner and the losers run one after another;
            // waiting on it inside the update while a loser revoked the
            // family deadlocked (the waiter holds the row's tuple lock).
            if let crate::connection::AnyConnection::Postgresql(pg) = conn {
                oauth_tokens::table
                    .select(oauth_tokens::id)
                    .filter(oauth_tokens::id.eq(old))
                    .for_update()
                    .load::<i64>(pg)?;
            }
            let n = diesel::update(
                oauth_tokens::table
                    .filter(oauth_tokens::id.eq(old))
                    .filter(oauth_tokens::kind.eq(TokenKind::Refresh.as_str()))
                    .filter(oauth_tokens::used_at.is_null())
                    .filter(oauth_tokens::revoked_at.is_null()),
            )
            .set(oauth_tokens::used_at.eq(secs(now)))
            .execute(conn)?;
            if n == 0 {
                revoke_family_in(conn, new.family, now)?;
                return Ok(false);
            }
            // access tokens issued before stay valid until they expire
            insert_tokens(conn, new, now)?;
            Ok(true)
        })
    }

    /// Revokes every token of a family; returns how many were active.
    pub fn revoke_oauth_family(
        &self,
        family: i64,
        now: DateTime<Utc>,
    ) -> Result<usize, StorageError> {
        self.write(|conn| revoke_family_in(conn, family, now))
    }

    /// Revokes one token.
    pub fn revoke_oauth_token(&self, id: i64, now: DateTime<Utc>) -> Result<(), StorageError> {
        let mut conn = self.conn()?;
        diesel::update(
            oauth_tokens::table
                .filter(oauth_tokens::id.eq(id))
                .filter(oauth_tokens::revoked_at.is_null()),
        )
        .set(oauth_tokens::revoked_at.eq(secs(now)))
        .execute(&mut conn)?;
        Ok(())
    }
}
