//! Authorization codes issued straight through the provider, as the consent
//! page issues them once a member approves (for tests and benches that need
//! tokens but are not about the pages).

use chrono::{DateTime, Utc};

/// RFC 7636 appendix B: a PKCE verifier and its S256 challenge, for codes
/// whose tests are not about PKCE (every client must use it).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The S256 challenge of [`VERIFIER`].
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
use zhima_domain::ids::MemberId;
use zhima_oauth::{Params, Provider};

/// The code `provider` redirects with when `member` approves `client_id`'s
/// request for `scope` at `redirect` (with a PKCE S256 `challenge` if given).
pub fn approved_code(
    provider: &Provider,
    client_id: &str,
    redirect: &str,
    scope: &str,
    member: MemberId,
    challenge: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("scope", scope),
    ];
    if let Some(challenge) = challenge {
        pairs.push(("code_challenge", challenge));
        pairs.push(("code_challenge_method", "S256"));
    }
    let url = provider
        .decide(&Params::from_pairs(pairs), member, true, now)
        .unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

/// Redeems `code` (approved with [`CHALLENGE`]) at `token_url` as the
/// confidential client `client_id`: the token endpoint's JSON answer.
pub async fn redeem(
    http: &reqwest::Client,
    token_url: &str,
    (client_id, secret): (&str, &str),
    code: &str,
    redirect: &str,
) -> serde_json::Value {
    http.post(token_url)
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{token_url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{token_url}: the answer is not JSON: {e}"))
}
