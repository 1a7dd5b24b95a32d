//! Requests as oxide-auth's flows read them, built from already-decoded
//! parameters. Knows nothing of any web framework.

use std::borrow::Cow;
use std::collections::HashMap;

use oxide_auth::code_grant::{accesstoken, authorization, refresh};

/// The parameters of one request (query string or form body).
///
/// A parameter given twice makes the request invalid (RFC 6749 §3.1, §3.2).
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: HashMap<String, String>,
    duplicated: bool,
}

impl Params {
    /// From decoded name/value pairs.
    pub fn from_pairs<I, K, V>(pairs: I) -> Params
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = Params::default();
        for (k, v) in pairs {
            if params.map.insert(k.into(), v.into()).is_some() {
                params.duplicated = true;
            }
        }
        params
    }

    /// One parameter; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The same parameters with `name` set to `value`.
    pub(crate) fn with(mut self, name: &str, value: &str) -> Params {
        self.map.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Whether some parameter was given twice.
    pub fn has_duplicates(&self) -> bool {
        self.duplicated
    }

    /// Every parameter, for carrying an authorization request through the
    /// login and consent forms.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn cow(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).map(Cow::Borrowed)
    }
}

/// A request to the token, revocation or introspection endpoint: its form
/// body and the client credentials of its `Authorization: Basic` header.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// The form body.
    pub params: Params,
    /// `Authorization: Basic` credentials, decoded.
    pub basic: Option<(String, String)>,
    /// The Authorization header was present but was not valid Basic.
    pub bad_authorization: bool,
}

/// The client credentials a token request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// None at all.
    None,
    /// A client_id without a secret (a public client).
    Id(&'a str),
    /// A client_id and its secret, from Basic or from the body.
    Secret(&'a str, &'a str),
}

impl TokenRequest {
    /// Whether the request used HTTP Basic (so a 401 names it).
    pub fn used_basic(&self) -> bool {
        self.basic.is_some() || self.bad_authorization
    }

    /// The credentials, or `None` if they were offered twice over (Basic and
    /// a body secret), which RFC 6749 §2.3 forbids.
    pub(crate) fn credentials(&self) -> Option<Credentials<'_>> {
        let body_id = self.params.get("client_id");
        let body_secret = self.params.get("client_secret");
        match (&self.basic, body_id, body_secret) {
            (Some(_), _, Some(_)) => None,
            // a client_id in the body next to Basic must name the same client
            (Some((id, _)), Some(other), None) if id != other => None,
            (Some((id, secret)), _, None) => Some(Credentials::Secret(id, secret)),
            (None, Some(id), Some(secret)) => Some(Credentials::Secret(id, secret)),
            (None, Some(id), None) => Some(Credentials::Id(id)),
            (None, None, Some(_)) => None,
            (None, None, None) => Some(Credentials::None),
        }
    }

    fn valid(&self) -> bool {
        !self.params.has_duplicates() && !self.bad_authorization && self.credentials().is_some()
    }
}

impl authorization::Request for Params {
    fn valid(&self) -> bool {
        !self.has_duplicates()
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        self.cow("client_id")
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.cow("scope")
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.cow("redirect_uri")
    }
    fn state(&self) -> Option<Cow<'_, str>> {
        self.cow("state")
    }
    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.cow("response_type")
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.cow(key)
    }
}

impl accesstoken::Request for TokenRequest {
    fn valid(&self) -> bool {
        TokenRequest::valid(self)
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        self.params.cow("code")
    }
    fn authorization(&self) -> accesstoken::Authorization<'_> {
        // Credentials from the body are handed over as if they came from
        // Basic: oxide-auth then authenticates both the same way.
        match self.credentials() {
            Some(Credentials::Secret(id, secret)) => accesstoken::Authorization::UsernamePassword(
                Cow::Borrowed(id),
                Cow::Borrowed(secret.as_bytes()),
            ),
            _ => accesstoken::Authorization::None,
        }
    }
    fn client_id(&self) -> Option<Cow<'_, str>> {
        match self.credentials() {
            Some(Credentials::Id(id)) => Some(Cow::Borrowed(id)),
            _ => None,
        }
    }
    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.params.cow("redirect_uri")
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.params.cow("grant_type")
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        // the secret is handled above, never as an extension
        (key != "client_secret")
            .then(|| self.params.cow(key))
            .flatten()
    }
}

impl refresh::Request for TokenRequest {
    fn valid(&self) -> bool {
        TokenRequest::valid(self)
    }
    fn refresh_token(&self) -> Option<Cow<'_, str>> {
        self.params.cow("refresh_token")
    }
    fn scope(&self) -> Option<Cow<'_, str>> {
        self.params.cow("scope")
    }
    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.params.cow("grant_type")
    }
    fn authorization(&self) -> Option<(Cow<'_, str>, Cow<'_, [u8]>)> {
        // oxide-auth reads only Basic here; the body's credentials count too,
        // and a public client names itself with an empty secret.
        match self.credentials() {
            Some(Credentials::Secret(id, secret)) => {
                Some((Cow::Borrowed(id), Cow::Borrowed(secret.as_bytes())))
            }
            Some(Credentials::Id(id)) => Some((Cow::Borrowed(id), Cow::Borrowed(&[][..]))),
            _ => None,
        }
    }
    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        (key != "client_secret")
            .then(|| self.params.cow(key))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(basic: Option<(&str, &str)>, body: &[(&str, &str)]) -> TokenRequest {
        TokenRequest {
            params: Params::from_pairs(body.iter().copied()),
            basic: basic.map(|(a, b)| (a.to_owned(), b.to_owned())),
            bad_authorization: false,
        }
    }

    #[test]
    fn credentials_come_from_one_place() {
        assert_eq!(
            req(Some(("c", "s")), &[]).credentials(),
            Some(Credentials::Secret("c", "s"))
        );
        assert_eq!(
            req(None, &[("client_id", "c"), ("client_secret", "s")]).credentials(),
            Some(Credentials::Secret("c", "s"))
        );
        assert_eq!(
            req(Some(("c", "s")), &[("client_id", "c")]).credentials(),
            Some(Credentials::Secret("c", "s")),
            "a client_id naming the Basic client is redundant, not a second credential"
        );
        assert_eq!(
            req(None, &[("client_id", "c")]).credentials(),
            Some(Credentials::Id("c"))
        );
        assert_eq!(
            req(Some(("c", "s")), &[("client_secret", "s")]).credentials(),
            None
        );
        assert_eq!(
            req(Some(("c", "s")), &[("client_id", "d")]).credentials(),
            None
        );
        assert_eq!(req(None, &[("client_secret", "s")]).credentials(), None);
        assert_eq!(req(None, &[]).credentials(), Some(Credentials::None));
    }

    #[test]
    fn repeated_parameters_make_a_request_invalid() {
        let p = Params::from_pairs([("code", "a"), ("code", "b")]);
        assert!(p.has_duplicates());
        assert!(!authorization::Request::valid(&p));
        let p = Params::from_pairs([("code", "a"), ("state", "")]);
        assert!(!p.has_duplicates());
        assert_eq!(p.get("state"), None, "empty means absent");
    }
}
