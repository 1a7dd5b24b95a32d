//! The OAuth2 provider and the Partner API, driven over HTTP by a real OAuth2
//! client library (the `oauth2` crate) and a cookie-keeping "browser" that
//! fills in the login and consent pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crate::support::{spawn_app, spawn_app_with, TestApp};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, IntrospectionUrl, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenIntrospectionResponse, TokenResponse,
    TokenUrl,
};
use serde_json::{json, Value};
use zhima_domain::ids::OpenId;
use zhima_domain::partner::{PartnerScope, TokenKind, Tokens};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "correct horse battery";
/// RFC 7636 appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointSet, EndpointNotSet, EndpointSet>;

/// A registered partner and an `oauth2` client configured for it.
struct Partner {
    client_id: String,
    secret: Option<String>,
    client: Client,
}

fn http() -> reqwest::Client {
    // an OAuth2 client must not follow redirects from the token endpoint;
    // the pages are read as an English-speaking browser asks for them
    // (without Accept-Language they are in Chinese, the space's language)
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "Accept-Language",
        reqwest::header::HeaderValue::from_static("en-US,en;q=0.9"),
    );
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn register(app: &TestApp, public: bool, scopes: &str) -> Partner {
    let provider = zhima_oauth::Provider::new(app.store.clone(), Default::default());
    let scopes: BTreeSet<PartnerScope> = PartnerScope::parse_set(scopes).unwrap();
    let registered = provider
        .register(
            "GoPlay",
            &[REDIRECT.to_owned()],
            public,
            &scopes,
            crate::support::default_now(),
        )
        .unwrap();
    let client_id = registered.client.client_id.clone();
    let mut client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth/authorize", app.address)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/oauth/token", app.address)).unwrap())
        .set_introspection_url(
            IntrospectionUrl::new(format!("{}/oauth/introspect", app.address)).unwrap(),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
    if let Some(secret) = &registered.secret {
        client = client.set_client_secret(ClientSecret::new(secret.clone()));
    }
    Partner {
        client_id,
        secret: registered.secret,
        client,
    }
}

/// Creates a member through the Member API and gives them a password.
async fn member(app: &TestApp, openid: &str, nick: &str, email: &str, gender: u8) -> OpenId {
    let body = json!({"openid": openid, "basicInfo": {"nickName": nick, "email": email, "gender": gender}});
    let answer = app.post("/api/v1.0/member/new", &body).await;
    crate::support::expect_errno(&answer, "1000");
    let openid = OpenId::parse(openid).unwrap();
    app.store
        .set_password(&openid, PASSWORD, false, crate::support::default_now())
        .unwrap();
    openid
}

fn gift(app: &TestApp, openid: &OpenId, free: u32) {
    app.store
        .grant_tokens(
            openid,
            TokenKind::Free,
            Tokens::whole(free),
            "test gift",
            crate::support::default_now(),
        )
        .unwrap();
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> Option<url::Url> {
        self.headers
            .get("location")
            .map(|l| url::Url::parse(l.to_str().unwrap()).unwrap())
    }

    /// The page's form fields (name, value), entities decoded.
    fn fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find("type=\"hidden\" name=\"") {
            rest = &rest[i + 20..];
            let end = rest.find('"').unwrap();
            let name = unescape(&rest[..end]);
            rest = &rest[end..];
            let v = rest.find("value=\"").unwrap() + 7;
            rest = &rest[v..];
            let end = rest.find('"').unwrap();
            out.push((name, unescape(&rest[..end])));
            rest = &rest[end..];
        }
        out
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A browser: no redirects followed, the CSRF cookie kept.
struct Browser {
    http: reqwest::Client,
    address: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: http(),
            address: app.address.clone(),
            cookie: None,
        }
    }

    async fn take(&mut self, res: reqwest::Response) -> Page {
        for value in res.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            if let Some(pair) = value.split(';').next() {
                if pair.starts_with("zhima_csrf=") {
                    self.cookie = Some(pair.to_owned());
                }
            }
        }
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let mut req = self.http.get(url);
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        let res = req.send().await.unwrap();
        self.take(res).await
    }

    async fn post(&mut self, fields: &[(String, String)]) -> Page {
        self.post_with(fields, &[]).await
    }

    async fn post_with(&mut self, fields: &[(String, String)], headers: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = self
            .http
            .post(format!("{}/oauth/authorize", self.address))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.take(res).await
    }

    /// Submits `page`'s form with these extra fields.
    async fn submit(&mut self, page: &Page, extra: &[(&str, &str)]) -> Page {
        self.submit_with(page, extra, &[]).await
    }

    /// Submits `page`'s form with these extra fields and request headers.
    async fn submit_with(
        &mut self,
        page: &Page,
        extra: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut fields = page.fields();
        fields.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.post_with(&fields, headers).await
    }
}

/// What an authorization ended with: the redirect's query.
struct Redirect {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn redirect_of(page: &Page) -> Redirect {
    assert_eq!(page.status, 303, "{}", page.body);
    let url = page.location().unwrap();
    assert!(url.as_str().starts_with(REDIRECT), "{url}");
    let get = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    Redirect {
        code: get("code"),
        state: get("state"),
        error: get("error"),
    }
}

/// Logs `nick` in on the partner's authorization URL and allows; returns the
/// redirect.
async fn consent(app: &TestApp, auth_url: &url::Url, nick: &str, password: &str) -> Redirect {
    let mut browser = Browser::new(app);
    let login = browser.get(auth_url.as_str()).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let consent = browser
        .submit(
            &login,
            &[
                ("zhima_nickname", nick),
                ("zhima_password", password),
                ("zhima_action", "login"),
            ],
        )
        .await;
    assert!(consent.body.contains("Allow access?"), "{}", consent.body);
    let done = browser.submit(&consent, &[("zhima_action", "allow")]).await;
    redirect_of(&done)
}

/// The whole authorization step with PKCE: returns the code and verifier.
async fn authorize(
    app: &TestApp,
    partner: &Partner,
    scopes: &[&str],
    nick: &str,
) -> (String, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = partner
        .client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge)
        .url();
    let redirect = consent(app, &url, nick, PASSWORD).await;
    assert_eq!(redirect.state.as_deref(), Some(state.secret().as_str()));
    (redirect.code.expect("a code"), verifier)
}

async fn tokens(
    app: &TestApp,
    partner: &Partner,
    scopes: &[&str],
    nick: &str,
) -> oauth2::basic::BasicTokenResponse {
    let (code, verifier) = authorize(app, partner, scopes, nick).await;
    partner
        .client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn answer(res: reqwest::Response) -> Answer {
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.json().await.unwrap(),
    }
}

async fn profile(app: &TestApp, token: &str) -> Answer {
    let res = http()
        .get(format!("{}/partner/1/profile", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    answer(res).await
}

async fn buy(app: &TestApp, token: &str, level: &str, key: Option<&str>) -> Answer {
    let mut req = http()
        .post(format!("{}/partner/1/vip", app.address))
        .bearer_auth(token)
        .form(&[("level", level)]);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    answer(req.send().await.unwrap()).await
}

/// What the `oauth2` crate returns for a refused grant.
type GrantError = RequestTokenError<
    oauth2::HttpClientError<reqwest::Error>,
    oauth2::StandardErrorResponse<BasicErrorResponseType>,
>;

/// A refresh grant by the partner's own client.
async fn refresh_grant(
    partner: &Partner,
    token: &RefreshToken,
) -> Result<oauth2::basic::BasicTokenResponse, GrantError> {
    partner
        .client
        .exchange_refresh_token(token)
        .request_async(&http())
        .await
}

fn server_error<T: std::fmt::Debug>(result: Result<T, GrantError>) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(e)) => e.error().clone(),
        other => panic!("expected an OAuth2 error response, got {other:?}"),
    }
}

/// RFC 7009 revocation with the client's Basic credentials. (The `oauth2`
/// crate insists on an https revocation URL, which a loopback test server
/// does not have.)
async fn revoke(app: &TestApp, partner: &Partner, token: &str, hint: &str) {
    let res = http()
        .post(format!("{}/oauth/revoke", app.address))
        .basic_auth(&partner.client_id, partner.secret.as_deref())
        .form(&[("token", token), ("token_type_hint", hint)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
}

fn assert_invalid_token(a: &Answer) {
    assert_eq!(a.status, 401, "{:?}", a.body);
    let challenge = a.headers.get("www-authenticate").unwrap().to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert_eq!(a.body["success"], false);
    assert!(a.body["message"].as_str().unwrap().len() > 5);
}

#[actix_web::test]
async fn code_pkce_token_profile_vip_refresh_reuse_revoke() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile,vip");
    let mei = member(&app, "mei-openid-0001", "Mei", "mei@example.cn", 2).await;
    gift(&app, &mei, 30);
    // 150 CNY of TOKENS through the Member API: 150 paid tokens
    let pay = json!({"paidTime": "201803121930", "payIndex": "T-1", "CNYAmount": "150", "payType": "TOKENS"});
    let answer_pay = app
        .patch(
            "/api/v1.0/member/openid/mei-openid-0001",
            &json!({"op": "add", "data": pay}),
        )
        .await;
    crate::support::expect_errno(&answer_pay, "1000");

    let token = tokens(&app, &partner, &["profile", "vip"], "MEI").await;
    assert!(token.expires_in().unwrap().as_secs() > 3500);
    let access = token.access_token().secret().clone();
    assert!(access.len() >= 22, "at least 128 bits");

    let p = profile(&app, &access).await;
    assert_eq!(p.status, 200);
    assert_eq!(
        p.body,
        json!({"success": true, "message": "", "nickname": "Mei", "email": "mei@example.cn",
               "gender": "female", "vip": null, "goplay_token": 150.0, "free_goplay_token": 30.0})
    );

    // the member is NOT_OK (tokens are no membership) until VIP is bought
    let before = app.get("/api/v1.0/member/openid/mei-openid-0001").await;
    assert_eq!(before.body["basicInfo"]["status"], "NOT_OK");
    let bought = buy(&app, &access, "standard", None).await;
    assert_eq!(bought.status, 200, "{:?}", bought.body);
    assert_eq!(bought.body["success"], true);
    assert_eq!(bought.body["free_goplay_token_spent"], 30.0);
    assert_eq!(bought.body["goplay_token_spent"], 70.0);
    let p = profile(&app, &access).await;
    assert_eq!(p.body["vip"], "standard");
    assert_eq!(p.body["goplay_token"], 80.0);
    assert_eq!(p.body["free_goplay_token"], 0.0);
    let after = app.get("/api/v1.0/member/openid/mei-openid-0001").await;
    assert_eq!(
        after.body["basicInfo"]["status"], "OK",
        "VIP counts as membership"
    );
    assert_eq!(after.body["paymentInfo"]["payType"], "VIP STANDARD");

    // refresh rotates: a new refresh token each time
    let old_refresh = token.refresh_token().unwrap().clone();
    let refreshed = refresh_grant(&partner, &old_refresh).await.unwrap();
    let new_refresh = refreshed.refresh_token().unwrap().clone();
    assert_ne!(new_refresh.secret(), old_refresh.secret());
    let new_access = refreshed.access_token().secret().clone();
    assert_eq!(profile(&app, &new_access).await.status, 200);

    // reusing the rotated refresh token revokes the whole family
    let reused = refresh_grant(&partner, &old_refresh).await;
    assert_eq!(server_error(reused), BasicErrorResponseType::InvalidGrant);
    assert_invalid_token(&profile(&app, &new_access).await);
    assert_invalid_token(&profile(&app, &access).await);
    let after_reuse = refresh_grant(&partner, &new_refresh).await;
    assert_eq!(
        server_error(after_reuse),
        BasicErrorResponseType::InvalidGrant
    );

    // a fresh grant, then RFC 7009 revocation through the library
    let token = tokens(&app, &partner, &["profile"], "mei").await;
    let access = token.access_token().clone();
    assert_eq!(profile(&app, access.secret()).await.status, 200);
    let introspected = partner
        .client
        .introspect(&access)
        .request_async(&http())
        .await
        .unwrap();
    assert!(introspected.active());
    assert_eq!(
        introspected
            .scopes()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        ["profile"]
    );
    revoke(&app, &partner, access.secret(), "access_token").await;
    assert_invalid_token(&profile(&app, access.secret()).await);
    let introspected = partner
        .client
        .introspect(&access)
        .request_async(&http())
        .await
        .unwrap();
    assert!(!introspected.active());
    // revoking the refresh token ends its family
    let refresh = token.refresh_token().unwrap().clone();
    revoke(&app, &partner, refresh.secret(), "refresh_token").await;
    let gone = refresh_grant(&partner, &refresh).await;
    assert_eq!(server_error(gone), BasicErrorResponseType::InvalidGrant);
}

#[actix_web::test]
async fn token_responses_are_not_stored_and_errors_follow_rfc_6749() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    member(&app, "kai-openid-0001", "Kai", "", 1).await;
    let (code, verifier) = authorize(&app, &partner, &["profile"], "Kai").await;
    let secret = partner.secret.clone().unwrap();
    let form = |extra: &[(&str, &str)]| {
        let mut v: Vec<(String, String)> = vec![
            ("grant_type".into(), "authorization_code".into()),
            ("code".into(), code.clone()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_verifier".into(), verifier.secret().clone()),
        ];
        v.extend(
            extra
                .iter()
                .map(|(k, x)| ((*k).to_owned(), (*x).to_owned())),
        );
        v
    };
    let url = format!("{}/oauth/token", app.address);

    // wrong secret by Basic: 401 invalid_client with a Basic challenge
    let res = http()
        .post(&url)
        .basic_auth(&partner.client_id, Some("wrong"))
        .form(&form(&[]))
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.body["error"], "invalid_client");
    assert!(a.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(a.headers["cache-control"], "no-store");
    // wrong secret in the body: 401 invalid_client, no Basic challenge
    let res = http()
        .post(&url)
        .form(&form(&[
            ("client_id", &partner.client_id),
            ("client_secret", "wrong"),
        ]))
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(a.headers.get("www-authenticate").is_none());
    // a repeated parameter: invalid_request
    let res = http()
        .post(&url)
        .basic_auth(&partner.client_id, Some(&secret))
        .form(&form(&[("code", "again")]))
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // an unknown grant type
    let res = http()
        .post(&url)
        .basic_auth(&partner.client_id, Some(&secret))
        .form(&[("grant_type", "password"), ("username", "Kai")])
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // a wrong PKCE verifier: invalid_grant (and the code is spent)
    let mut bad_verifier = form(&[]);
    bad_verifier[3].1 = "x".repeat(50);
    let res = http()
        .post(&url)
        .basic_auth(&partner.client_id, Some(&secret))
        .form(&bad_verifier)
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(
        (a.status, a.body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(a.body["error_description"].as_str().unwrap().len() < 80);

    // the secret in the body works, on the code grant and on refresh
    let (code, verifier) = authorize(&app, &partner, &["profile"], "Kai").await;
    let res = http()
        .post(&url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.secret().as_str()),
            ("client_id", partner.client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.headers["cache-control"], "no-store");
    assert_eq!(
        a.body["token_type"].as_str().unwrap().to_lowercase(),
        "bearer"
    );
    let refresh = a.body["refresh_token"].as_str().unwrap().to_owned();
    let body_client = partner.client.clone().set_auth_type(AuthType::RequestBody);
    let refreshed = body_client
        .exchange_refresh_token(&RefreshToken::new(refresh))
        .request_async(&http())
        .await
        .unwrap();
    // and refresh without any client authentication is refused
    let res = http()
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                refreshed.refresh_token().unwrap().secret().as_str(),
            ),
        ])
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert!(a.status == 400 || a.status == 401, "{:?}", a.body);
    // the refresh token still works for its own client afterwards
    refresh_grant(&partner, refreshed.refresh_token().unwrap())
        .await
        .unwrap();
}

#[actix_web::test]
async fn codes_are_single_use_short_lived_and_bound_to_their_client() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    let other = register(&app, false, "profile");
    member(&app, "lin-openid-0001", "Lin", "", 0).await;

    // replay: the second redemption fails and revokes what the first issued
    let (code, verifier) = authorize(&app, &partner, &["profile"], "Lin").await;
    let first = partner
        .client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(
        profile(&app, first.access_token().secret()).await.status,
        200
    );
    let replay = partner
        .client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await;
    assert_eq!(server_error(replay), BasicErrorResponseType::InvalidGrant);
    assert_invalid_token(&profile(&app, first.access_token().secret()).await);
    let refresh = refresh_grant(&partner, first.refresh_token().unwrap()).await;
    assert_eq!(server_error(refresh), BasicErrorResponseType::InvalidGrant);

    // expiry: a code older than 5 minutes is refused
    let (code, verifier) = authorize(&app, &partner, &["profile"], "Lin").await;
    app.clock.advance(chrono::Duration::seconds(301));
    let late = partner
        .client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await;
    assert_eq!(server_error(late), BasicErrorResponseType::InvalidGrant);

    // another client cannot redeem this client's code
    let (code, verifier) = authorize(&app, &partner, &["profile"], "Lin").await;
    let stolen = other
        .client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
        .request_async(&http())
        .await;
    assert!(stolen.is_err());

    // access tokens expire after an hour; the refresh token still works
    let (code, verifier) = authorize(&app, &partner, &["profile"], "Lin").await;
    let token = partner
        .client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::seconds(3601));
    assert_invalid_token(&profile(&app, token.access_token().secret()).await);
    let renewed = refresh_grant(&partner, token.refresh_token().unwrap())
        .await
        .unwrap();
    assert_eq!(
        profile(&app, renewed.access_token().secret()).await.status,
        200
    );
    // and a refresh token is dead after 30 days
    app.clock.advance(chrono::Duration::days(31));
    let stale = refresh_grant(&partner, renewed.refresh_token().unwrap()).await;
    assert_eq!(server_error(stale), BasicErrorResponseType::InvalidGrant);
}

#[actix_web::test]
async fn bad_client_or_redirect_uri_shows_an_error_page_and_never_redirects() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    let mut browser = Browser::new(&app);
    let base = format!("{}/oauth/authorize", app.address);
    let cases = [
        format!("{base}?response_type=code&client_id=nobody&redirect_uri={REDIRECT}&state=s"),
        format!(
            "{base}?response_type=code&client_id={}&redirect_uri=http://127.0.0.1:9/other&state=s",
            partner.client_id
        ),
        format!(
            "{base}?response_type=code&client_id={}&redirect_uri=https://evil.example/callback&state=s",
            partner.client_id
        ),
        format!("{base}?response_type=code&state=s"),
        format!("{base}?client_id=%FF%FE&redirect_uri=%00"),
    ];
    for url in &cases {
        let page = browser.get(url).await;
        assert_eq!(page.status, 400, "{url}: {}", page.body);
        assert!(page.location().is_none(), "{url}");
        assert!(page.body.contains("Cannot continue"), "{}", page.body);
        assert_eq!(page.headers["x-frame-options"], "DENY");
    }
    // a good client and URI with an unknown scope: redirected with the error
    let page = browser
        .get(&format!(
            "{base}?response_type=code&client_id={}&redirect_uri={REDIRECT}&state=xyz&scope=admin\
             &code_challenge={CHALLENGE}&code_challenge_method=S256",
            partner.client_id
        ))
        .await;
    let r = redirect_of(&page);
    assert_eq!(r.error.as_deref(), Some("invalid_scope"));
    assert_eq!(r.state.as_deref(), Some("xyz"));
    assert!(r.code.is_none());
}

/// The login and error pages of `/oauth/authorize` speak the browser's
/// language: Chinese for a Chinese browser (and for one that names none),
/// English for an English one; no English word is left on a Chinese page.
#[actix_web::test]
async fn the_login_and_error_pages_speak_chinese_and_english() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile vip");
    let base = format!("{}/oauth/authorize", app.address);
    let login_url = format!(
        "{base}?response_type=code&client_id={}&redirect_uri={REDIRECT}&state=s&scope=profile%20vip\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        partner.client_id
    );
    let bad_url = format!("{base}?response_type=code&client_id=nobody&redirect_uri={REDIRECT}");
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let fetch = |url: String, lang: Option<&'static str>| {
        let plain = plain.clone();
        async move {
            let mut req = plain.get(url);
            if let Some(l) = lang {
                req = req.header("Accept-Language", l);
            }
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    for lang in [Some("zh-CN,zh;q=0.9,en;q=0.5"), None] {
        let (status, body) = fetch(login_url.clone(), lang).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<html lang=\"zh-CN\">"), "{body}");
        assert!(
            body.contains("请求代表你操作") && body.contains("昵称") && body.contains("密码"),
            "{body}"
        );
        for english in ["Log in", "Password", "asks to act"] {
            assert!(
                !body.contains(english),
                "{english:?} on the Chinese page: {body}"
            );
        }
        let (status, body) = fetch(bad_url.clone(), lang).await;
        assert_eq!(status, 400);
        assert!(
            body.contains("无法继续") && body.contains("合作方"),
            "{body}"
        );
        assert!(!body.contains("Cannot continue"), "{body}");
    }
    let (_, body) = fetch(login_url.clone(), Some("en-GB")).await;
    assert!(
        body.contains("<html lang=\"en\">") && body.contains("asks to act for you"),
        "{body}"
    );
    let (_, body) = fetch(bad_url.clone(), Some("en")).await;
    assert!(
        body.contains("Cannot continue") && !body.contains("无法继续"),
        "{body}"
    );
}

#[actix_web::test]
async fn public_clients_need_pkce_s256_and_have_no_secret() {
    let app = spawn_app().await;
    let partner = register(&app, true, "profile");
    assert!(partner.secret.is_none());
    member(&app, "ann-openid-0001", "Ann", "", 0).await;
    let mut browser = Browser::new(&app);
    let base = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}&state=st",
        app.address, partner.client_id
    );
    // no PKCE: refused (back to the partner with an error, no code)
    let r = redirect_of(&browser.get(&base).await);
    assert_eq!(r.error.as_deref(), Some("invalid_request"));
    assert!(r.code.is_none());
    // plain: refused even for a confidential client
    let plain = format!("{base}&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij&code_challenge_method=plain");
    let r = redirect_of(&browser.get(&plain).await);
    assert!(r.error.is_some() && r.code.is_none());
    let confidential = register(&app, false, "profile");
    let plain = format!(
        "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}&state=st\
         &code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij&code_challenge_method=plain",
        app.address, confidential.client_id
    );
    let r = redirect_of(&browser.get(&plain).await);
    assert!(r.error.is_some() && r.code.is_none());

    // with S256 the public client gets tokens, sending only its client_id
    let token = tokens(&app, &partner, &["profile"], "ann").await;
    assert_eq!(
        profile(&app, token.access_token().secret()).await.body["nickname"],
        "Ann"
    );
    // a confidential client without PKCE is refused too (RFC 9700) ...
    let (url, _) = confidential
        .client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("profile".into()))
        .url();
    let r = redirect_of(&browser.get(url.as_str()).await);
    assert_eq!(r.error.as_deref(), Some("invalid_request"));
    // ... unless staff opted that partner out (zhima partner pkce ID optional)
    assert!(app
        .store
        .set_oauth_client_pkce(&confidential.client_id, false)
        .unwrap());
    let r = consent(&app, &url, "Ann", PASSWORD).await;
    let token = confidential
        .client
        .exchange_code(AuthorizationCode::new(r.code.unwrap()))
        .request_async(&http())
        .await
        .unwrap();
    assert_eq!(
        profile(&app, token.access_token().secret()).await.status,
        200
    );
}

#[actix_web::test]
async fn the_token_is_read_from_one_place_only() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    member(&app, "bo-openid-0001", "Bo", "bo@example.cn", 1).await;
    let token = tokens(&app, &partner, &["profile"], "Bo").await;
    let t = token.access_token().secret().clone();
    let url = format!("{}/partner/1/profile", app.address);
    let client = http();
    let ways = [
        client.get(&url).bearer_auth(&t),
        client.get(format!("{url}?access_token={t}")),
        client.post(&url).form(&[("access_token", &t)]),
        client.post(&url).json(&json!({ "access_token": t })),
    ];
    for req in ways {
        let a = answer(req.send().await.unwrap()).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(a.body["nickname"], "Bo");
        assert_eq!(a.body["gender"], "male");
    }
    let twice = [
        client
            .get(format!("{url}?access_token={t}"))
            .bearer_auth(&t),
        client
            .post(format!("{url}?access_token={t}"))
            .form(&[("access_token", &t)]),
        client
            .post(&url)
            .bearer_auth(&t)
            .json(&json!({ "access_token": t })),
        client.get(format!("{url}?access_token={t}&access_token={t}")),
    ];
    for req in twice {
        let a = answer(req.send().await.unwrap()).await;
        assert_eq!(a.status, 400, "{:?}", a.body);
        assert_eq!(a.body["success"], false);
    }
    // unknown, malformed (missing: below)
    assert_invalid_token(&profile(&app, "not-a-token").await);
    let a = answer(
        client
            .get(&url)
            .header("Authorization", "Basic Ym86Ym8=")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_invalid_token(&a);
    // a profile-only token cannot buy VIP
    let a = buy(&app, &t, "standard", None).await;
    assert_eq!(a.status, 403, "{:?}", a.body);
    assert!(a.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    assert_eq!(a.body["success"], false);

    // no token at all: 401 whose challenge names no error (RFC 6750 §3.1)
    let a = answer(client.get(&url).send().await.unwrap()).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.headers["www-authenticate"], "Bearer realm=\"zhima\"");
    // a JSON body naming a key twice is refused, never read as its last value
    let full = register(&app, false, "profile vip");
    let bo = OpenId::parse("bo-openid-0001").unwrap();
    gift(&app, &bo, 500);
    let vip_token = tokens(&app, &full, &["profile", "vip"], "Bo").await;
    let res = client
        .post(format!("{}/partner/1/vip", app.address))
        .bearer_auth(vip_token.access_token().secret())
        .header("Content-Type", "application/json")
        .body(r#"{"level":"gold","level":"standard"}"#)
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    assert!(
        a.body["message"].as_str().unwrap().contains("twice"),
        "{:?}",
        a.body
    );
    let record = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&bo))
        .unwrap()
        .unwrap();
    assert!(
        record.vip.is_empty(),
        "nothing was bought: {:?}",
        record.vip
    );
}

#[actix_web::test]
async fn one_members_token_never_reads_another_member() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile,vip");
    let a_id = member(&app, "a-openid-0001", "Alpha", "a@example.cn", 1).await;
    let b_id = member(&app, "b-openid-0001", "Beta", "b@example.cn", 2).await;
    gift(&app, &a_id, 500);
    gift(&app, &b_id, 7);
    let a = tokens(&app, &partner, &["profile", "vip"], "alpha").await;
    let b = tokens(&app, &partner, &["profile", "vip"], "beta").await;
    let pa = profile(&app, a.access_token().secret()).await;
    let pb = profile(&app, b.access_token().secret()).await;
    assert_eq!(
        (
            pa.body["nickname"].as_str(),
            pa.body["free_goplay_token"].as_f64()
        ),
        (Some("Alpha"), Some(500.0))
    );
    assert_eq!(
        (
            pb.body["nickname"].as_str(),
            pb.body["free_goplay_token"].as_f64()
        ),
        (Some("Beta"), Some(7.0))
    );
    // B's purchase is refused for B's balance and never touches A's
    let refused = buy(&app, b.access_token().secret(), "standard", None).await;
    assert_eq!(refused.status, 200);
    assert_eq!(refused.body["success"], false);
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("Not enough"));
    assert_eq!(
        profile(&app, pa_token(&a)).await.body["free_goplay_token"],
        500.0
    );
    assert_eq!(
        profile(&app, b.access_token().secret()).await.body["vip"],
        Value::Null
    );
    // a token introspected by another client is inactive
    let other = register(&app, false, "profile");
    let seen = other
        .client
        .introspect(&AccessToken::new(pa_token(&a).to_owned()))
        .request_async(&http())
        .await
        .unwrap();
    assert!(!seen.active());
}

fn pa_token(t: &oauth2::basic::BasicTokenResponse) -> &str {
    t.access_token().secret()
}

#[actix_web::test]
async fn vip_purchases_never_overspend_and_retries_never_debit_twice() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile,vip");
    let cy = member(&app, "cy-openid-0001", "Cy", "", 0).await;
    gift(&app, &cy, 250);
    let token = tokens(&app, &partner, &["profile", "vip"], "Cy").await;
    let t = token.access_token().secret().clone();

    // five purchases at once, 250 tokens, 100 each: exactly two succeed
    let buys = (0..5).map(|_| buy(&app, &t, "standard", None));
    let answers = futures_util::future::join_all(buys).await;
    let ok = answers.iter().filter(|a| a.body["success"] == true).count();
    let refused = answers
        .iter()
        .filter(|a| a.body["success"] == false)
        .count();
    assert_eq!(
        (ok, refused),
        (2, 3),
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    let p = profile(&app, &t).await;
    assert_eq!(p.body["free_goplay_token"], 50.0);
    assert_eq!(p.body["vip"], "standard");
    let record = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&cy))
        .unwrap()
        .unwrap();
    assert_eq!(record.vip.len(), 2);
    assert_eq!(
        record.vip[0].end, record.vip[1].start,
        "the second period follows the first"
    );

    // an idempotent retry answers the first answer and debits once
    gift(&app, &cy, 250);
    let first = buy(&app, &t, "gold", Some("order-77")).await;
    assert_eq!(first.body["success"], true, "{:?}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again =
        futures_util::future::join_all((0..3).map(|_| buy(&app, &t, "gold", Some("order-77"))))
            .await;
    for a in &again {
        assert_eq!(a.body, first.body);
        assert_eq!(a.headers["idempotent-replayed"], "true");
    }
    assert_eq!(profile(&app, &t).await.body["free_goplay_token"], 0.0);
    // the same key for another purchase: 422, nothing changes
    let reused = buy(&app, &t, "standard", Some("order-77")).await;
    assert_eq!(reused.status, 422);
    assert_eq!(reused.body["success"], false);
    // an unknown level: 400, nothing changes
    gift(&app, &cy, 100);
    let bad = buy(&app, &t, "platinum", None).await;
    assert_eq!(
        (bad.status, bad.body["success"].clone()),
        (400, json!(false))
    );
    let missing = answer(
        http()
            .post(format!("{}/partner/1/vip", app.address))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, 400);
    let p = profile(&app, &t).await;
    assert_eq!(p.body["free_goplay_token"], 100.0);
    // gold starts when the standard periods end
    assert_eq!(p.body["vip"], "standard");
    let record = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&cy))
        .unwrap()
        .unwrap();
    assert_eq!(record.vip.len(), 3);
    assert_eq!(record.vip[2].level, zhima_domain::partner::VipLevel::Gold);
    assert_eq!(record.vip[2].start, record.vip[1].end);
    assert_eq!(
        zhima_domain::partner::vip_at(&record.vip, record.vip[2].start),
        Some(zhima_domain::partner::VipLevel::Gold)
    );
    let vip_payments = record
        .payments
        .iter()
        .filter(|p| p.pay_type.starts_with("VIP "))
        .count();
    assert_eq!(vip_payments, 3);
}

#[actix_web::test]
async fn login_pages_refuse_forgery_framing_guessing_and_the_default_password() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    // a member on the default password (no set_password)
    let body = json!({"openid": "dee-openid-0001", "basicInfo": {"nickName": "Dee"}});
    crate::support::expect_errno(&app.post("/api/v1.0/member/new", &body).await, "1000");
    let (url, _) = partner
        .client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();

    let mut browser = Browser::new(&app);
    let login = browser.get(url.as_str()).await;
    assert_eq!(login.headers["x-frame-options"], "DENY");
    assert!(login.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(login.headers["cache-control"], "no-store");
    // the default password opens nothing, not even a set-password page, and
    // the answer is the same words as for a nickName nobody has
    let refused = |page: &Page| {
        assert_eq!(page.status, 200);
        assert!(page.location().is_none());
        assert!(!page.body.contains("Allow access?"), "{}", page.body);
        assert!(!page.body.contains("zhima_ticket"), "{}", page.body);
        let start = page.body.find("<strong>").expect("a refusal note");
        let end = page.body[start..].find("</strong>").unwrap() + start;
        page.body[start..end].to_owned()
    };
    let step = browser
        .submit(
            &login,
            &[
                ("zhima_nickname", "dee"),
                ("zhima_password", "password123"),
                ("zhima_action", "login"),
            ],
        )
        .await;
    let on_default = refused(&step);
    assert!(on_default.contains("ask the space"), "{on_default}");
    let nobody = browser
        .submit(
            &login,
            &[
                ("zhima_nickname", "nobody-here"),
                ("zhima_password", "password123"),
                ("zhima_action", "login"),
            ],
        )
        .await;
    assert_eq!(refused(&nobody), on_default, "the same words either way");
    // a set-password step posted anyway does nothing
    let forged_step = browser
        .submit(
            &login,
            &[
                ("zhima_new_password", "a new secret!"),
                ("zhima_new_password2", "a new secret!"),
                ("zhima_action", "set_password"),
            ],
        )
        .await;
    assert_eq!(forged_step.status, 400, "{}", forged_step.body);
    let openid = OpenId::parse("dee-openid-0001").unwrap();
    assert!(app.store.check_password(&openid, "password123").unwrap());
    // staff set a password (zhima member set-password); now it logs in
    app.store
        .set_password(
            &openid,
            "a new secret!",
            false,
            crate::support::default_now(),
        )
        .unwrap();
    let consent = browser
        .submit(
            &login,
            &[
                ("zhima_nickname", "dee"),
                ("zhima_password", "a new secret!"),
                ("zhima_action", "login"),
            ],
        )
        .await;
    assert!(consent.body.contains("Allow access?"), "{}", consent.body);
    // the form from another site (no cookie) is refused
    let mut forger = Browser::new(&app);
    let forged = forger.submit(&consent, &[("zhima_action", "allow")]).await;
    assert_eq!(forged.status, 403);
    assert!(forged.location().is_none());
    // a ticket from this browser with another cookie is refused too
    forger.cookie = Some("zhima_csrf=AAAAAAAAAAAAAAAAAAAAAA".into());
    let mut fields = consent.fields();
    for f in &mut fields {
        if f.0 == "zhima_csrf" {
            f.1 = "AAAAAAAAAAAAAAAAAAAAAA".into();
        }
    }
    fields.push(("zhima_action".into(), "allow".into()));
    let moved = forger.post(&fields).await;
    assert!(moved.location().is_none());
    // deny: back to the partner with access_denied
    let denied = browser.submit(&consent, &[("zhima_action", "deny")]).await;
    assert_eq!(redirect_of(&denied).error.as_deref(), Some("access_denied"));

    // five wrong passwords lock the account for a while (429, Retry-After)
    let mut guesser = Browser::new(&app);
    let login = guesser.get(url.as_str()).await;
    for _ in 0..5 {
        let wrong = guesser
            .submit(
                &login,
                &[
                    ("zhima_nickname", "Dee"),
                    ("zhima_password", "guess guess"),
                    ("zhima_action", "login"),
                ],
            )
            .await;
        assert!(wrong.body.contains("Wrong nickName or password."));
    }
    let locked = guesser
        .submit(
            &login,
            &[
                ("zhima_nickname", "Dee"),
                ("zhima_password", "a new secret!"),
                ("zhima_action", "login"),
            ],
        )
        .await;
    assert_eq!(locked.status, 429);
    assert!(locked.headers.get("retry-after").is_some());
}

#[actix_web::test]
async fn introspection_and_metadata() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    let eve = member(&app, "eve-openid-0001", "Eve", "", 0).await;
    let token = tokens(&app, &partner, &["profile"], "Eve").await;
    let url = format!("{}/oauth/introspect", app.address);
    let res = http()
        .post(&url)
        .basic_auth(&partner.client_id, partner.secret.as_deref())
        .form(&[("token", token.access_token().secret().as_str())])
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(a.body["active"], true);
    assert_eq!(a.body["token_type"], "Bearer", "{:?}", a.body);
    assert_eq!(a.body["sub"], eve.to_string());
    assert_eq!(a.body["client_id"], partner.client_id);
    // unknown token: active false and nothing else
    let res = http()
        .post(&url)
        .basic_auth(&partner.client_id, partner.secret.as_deref())
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer(res).await.body, json!({"active": false}));
    // without client authentication: 401
    let res = http()
        .post(&url)
        .basic_auth(&partner.client_id, Some("wrong"))
        .form(&[("token", token.access_token().secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer(res).await.status, 401);
    // revoking an unknown token answers 200
    let res = http()
        .post(format!("{}/oauth/revoke", app.address))
        .basic_auth(&partner.client_id, partner.secret.as_deref())
        .form(&[("token", "never-issued")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // another client cannot revoke this client's token
    let other = register(&app, false, "profile");
    revoke(&app, &other, token.access_token().secret(), "access_token").await;
    assert_eq!(
        profile(&app, token.access_token().secret()).await.status,
        200
    );

    let meta = answer(
        http()
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                app.address
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["issuer"], app.address);
    assert_eq!(
        meta.body["token_endpoint"],
        format!("{}/oauth/token", app.address)
    );
    assert_eq!(
        meta.body["code_challenge_methods_supported"],
        json!(["S256"])
    );
}

async fn introspect(app: &TestApp, partner: &Partner, token: &str) -> Answer {
    let res = http()
        .post(format!("{}/oauth/introspect", app.address))
        .basic_auth(&partner.client_id, partner.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    answer(res).await
}

#[actix_web::test]
async fn deactivating_a_member_ends_every_partner_grant() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile vip");
    let fay = member(&app, "fay-openid-0001", "Fay", "", 0).await;
    gift(&app, &fay, 500);
    let token = tokens(&app, &partner, &["profile", "vip"], "Fay").await;
    let access = token.access_token().secret().clone();
    let refresh = token.refresh_token().unwrap().clone();
    // a code approved but not yet redeemed
    let (code, verifier) = authorize(&app, &partner, &["profile"], "Fay").await;
    assert_eq!(profile(&app, &access).await.status, 200);

    app.store
        .set_deactivated(&fay, true, crate::support::default_now())
        .unwrap();
    assert_invalid_token(&profile(&app, &access).await);
    assert_invalid_token(&buy(&app, &access, "standard", None).await);
    assert_eq!(
        introspect(&app, &partner, &access).await.body,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&app, &partner, refresh.secret()).await.body,
        json!({"active": false})
    );
    assert_eq!(
        server_error(refresh_grant(&partner, &refresh).await),
        BasicErrorResponseType::InvalidGrant
    );
    let redeemed = partner
        .client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await;
    assert_eq!(server_error(redeemed), BasicErrorResponseType::InvalidGrant);
    // nothing was spent
    let record = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&fay))
        .unwrap()
        .unwrap();
    assert!(record.vip.is_empty(), "{:?}", record.vip);

    // reactivation does not bring the old grants back
    app.store
        .set_deactivated(&fay, false, crate::support::default_now())
        .unwrap();
    assert_invalid_token(&profile(&app, &access).await);
    assert_eq!(
        server_error(refresh_grant(&partner, &refresh).await),
        BasicErrorResponseType::InvalidGrant
    );
}

/// A code approved by `nick` for an authorization request with `query`
/// (after `response_type=code&client_id=…`).
async fn code_for(app: &TestApp, partner: &Partner, query: &str, nick: &str) -> String {
    let url = url::Url::parse(&format!(
        "{}/oauth/authorize?response_type=code&client_id={}&{query}",
        app.address, partner.client_id
    ))
    .unwrap();
    consent(app, &url, nick, PASSWORD)
        .await
        .code
        .expect("a code")
}

/// `POST /oauth/token` as `partner` (Basic for a confidential one, the
/// client_id in the body for a public one, nothing when `as_client` is None).
async fn token_post(app: &TestApp, as_client: Option<&Partner>, form: &[(&str, &str)]) -> Answer {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = http().post(format!("{}/oauth/token", app.address));
    match as_client {
        Some(p) if p.secret.is_some() => req = req.basic_auth(&p.client_id, p.secret.as_deref()),
        Some(p) => form.push(("client_id", &p.client_id)),
        None => {}
    }
    answer(req.form(&form).send().await.unwrap()).await
}

#[actix_web::test]
async fn the_token_endpoint_checks_client_redirect_and_pkce_before_spending_a_code() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile vip");
    let other = register(&app, false, "profile");
    member(&app, "lin-openid-0002", "Lin", "", 0).await;
    let with_pkce = format!(
        "redirect_uri={REDIRECT}&scope=profile&code_challenge={CHALLENGE}&code_challenge_method=S256"
    );
    let redeem = |verifier: &'static str, redirect: &'static str| {
        vec![
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ]
    };

    // a challenge of the wrong length is refused at the authorization request
    for bad in ["short", &"a".repeat(129)] {
        let url = format!(
            "{}/oauth/authorize?response_type=code&client_id={}&redirect_uri={REDIRECT}\
             &code_challenge={bad}&code_challenge_method=S256",
            app.address, partner.client_id
        );
        let r = redirect_of(&Browser::new(&app).get(&url).await);
        assert_eq!(r.error.as_deref(), Some("invalid_request"), "{bad}");
    }

    let code = code_for(&app, &partner, &with_pkce, "Lin").await;
    let with_code = |mut form: Vec<(&'static str, &'static str)>, code: &str| {
        let code: &'static str = Box::leak(code.to_owned().into_boxed_str());
        form.push(("code", code));
        form
    };
    // another client, a wrong redirect URI, a wrong or short verifier: each
    // refused, and none of them spends the code
    let stolen = token_post(
        &app,
        Some(&other),
        &with_code(redeem(VERIFIER, REDIRECT), &code),
    )
    .await;
    assert_eq!(stolen.body["error"], "invalid_grant", "{:?}", stolen.body);
    let wrong_uri = with_code(redeem(VERIFIER, "http://127.0.0.1:9/other"), &code);
    assert_eq!(
        token_post(&app, Some(&partner), &wrong_uri).await.body["error"],
        "invalid_grant"
    );
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX";
    for verifier in [wrong, "short-verifier"] {
        let a = token_post(
            &app,
            Some(&partner),
            &with_code(redeem(verifier, REDIRECT), &code),
        )
        .await;
        assert_eq!(a.body["error"], "invalid_grant", "{verifier}: {:?}", a.body);
    }
    let good = token_post(
        &app,
        Some(&partner),
        &with_code(redeem(VERIFIER, REDIRECT), &code),
    )
    .await;
    assert_eq!(good.status, 200, "{:?}", good.body);
    let access = good.body["access_token"].as_str().unwrap().to_owned();
    // a replay by another client revokes nothing
    let replay = token_post(
        &app,
        Some(&other),
        &with_code(redeem(VERIFIER, REDIRECT), &code),
    )
    .await;
    assert_eq!(replay.body["error"], "invalid_grant");
    assert_eq!(profile(&app, &access).await.status, 200, "still active");
    // by its own client it does (RFC 6749 §4.1.2)
    let replay = token_post(
        &app,
        Some(&partner),
        &with_code(redeem(VERIFIER, REDIRECT), &code),
    )
    .await;
    assert_eq!(replay.body["error"], "invalid_grant");
    assert_invalid_token(&profile(&app, &access).await);

    // a partner opted out of PKCE: a verifier for a code issued without a
    // challenge is a downgrade, refused without spending the code
    assert!(app
        .store
        .set_oauth_client_pkce(&partner.client_id, false)
        .unwrap());
    let code = code_for(&app, &partner, &format!("redirect_uri={REDIRECT}"), "Lin").await;
    let downgrade = token_post(
        &app,
        Some(&partner),
        &with_code(redeem(VERIFIER, REDIRECT), &code),
    )
    .await;
    assert_eq!(downgrade.body["error"], "invalid_grant");
    let plain = with_code(
        vec![
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ],
        &code,
    );
    assert_eq!(token_post(&app, Some(&partner), &plain).await.status, 200);

    // redirect_uri left out of the authorization request: not required at
    // the token endpoint; named there: required
    assert!(app
        .store
        .set_oauth_client_pkce(&partner.client_id, true)
        .unwrap());
    let code = code_for(
        &app,
        &partner,
        &format!("scope=profile%20vip&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "Lin",
    )
    .await;
    let no_uri = with_code(
        vec![
            ("grant_type", "authorization_code"),
            ("code_verifier", VERIFIER),
        ],
        &code,
    );
    let granted = token_post(&app, Some(&partner), &no_uri).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    let scope_set = |v: &Value| -> BTreeSet<String> {
        v.as_str().unwrap().split(' ').map(str::to_owned).collect()
    };
    let both: BTreeSet<String> = ["profile".into(), "vip".into()].into();
    assert_eq!(scope_set(&granted.body["scope"]), both);
    let code = code_for(&app, &partner, &with_pkce, "Lin").await;
    let missing = token_post(
        &app,
        Some(&partner),
        &with_code(no_uri[..2].to_vec(), &code),
    )
    .await;
    assert_eq!(missing.body["error"], "invalid_grant", "{:?}", missing.body);

    // refresh with a narrower scope: the access token is narrower, the new
    // refresh token keeps the grant's scope (RFC 6749 §6)
    let refresh = granted.body["refresh_token"].as_str().unwrap().to_owned();
    let narrow = token_post(
        &app,
        Some(&partner),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("scope", "profile"),
        ],
    )
    .await;
    assert_eq!(narrow.body["scope"], "profile", "{:?}", narrow.body);
    let refresh2 = narrow.body["refresh_token"].as_str().unwrap().to_owned();
    let wide = token_post(
        &app,
        Some(&partner),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
        ],
    )
    .await;
    assert_eq!(scope_set(&wide.body["scope"]), both, "{:?}", wide.body);
    let refresh3 = wide.body["refresh_token"].as_str().unwrap().to_owned();

    // a spent refresh token sent without client authentication, or by
    // another client, is refused and revokes nothing
    let spent = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh2.as_str()),
    ];
    let anonymous = token_post(&app, None, &spent).await;
    assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
    assert_eq!(anonymous.body["error"], "invalid_client");
    assert_eq!(
        token_post(&app, Some(&other), &spent).await.body["error"],
        "invalid_grant"
    );
    let still = wide.body["access_token"].as_str().unwrap();
    assert_eq!(
        profile(&app, still).await.status,
        200,
        "the family is intact"
    );
    // its own client reusing it revokes the family
    assert_eq!(
        token_post(&app, Some(&partner), &spent).await.body["error"],
        "invalid_grant"
    );
    assert_invalid_token(&profile(&app, still).await);
    let after = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh3.as_str()),
    ];
    assert_eq!(
        token_post(&app, Some(&partner), &after).await.body["error"],
        "invalid_grant"
    );
}

#[actix_web::test]
async fn csrf_cookies_are_minted_by_the_server_and_a_consent_answers_once() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile vip");
    member(&app, "kit-openid-0001", "Kit", "", 0).await;
    let (url, _) = partner
        .client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();
    // a value planted in the browser is never adopted
    let mut browser = Browser::new(&app);
    browser.cookie = Some("zhima_csrf=AAAAAAAAAAAAAAAAAAAAAA".into());
    let login = browser.get(url.as_str()).await;
    let minted = browser.cookie.clone().unwrap();
    assert_ne!(minted, "zhima_csrf=AAAAAAAAAAAAAAAAAAAAAA");
    let set = login.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http issuer: {set}");
    let field = login
        .fields()
        .into_iter()
        .find(|(k, _)| k == "zhima_csrf")
        .unwrap()
        .1;
    assert_eq!(format!("zhima_csrf={field}"), minted);

    let consent = browser
        .submit(
            &login,
            &[
                ("zhima_nickname", "Kit"),
                ("zhima_password", PASSWORD),
                ("zhima_action", "login"),
            ],
        )
        .await;
    assert!(consent.body.contains("Allow access?"), "{}", consent.body);
    // the ticket does not fit a request widened after the page was shown
    let mut widened = consent.fields();
    for f in &mut widened {
        if f.0 == "scope" {
            f.1 = "profile vip".into();
        }
    }
    widened.push(("zhima_action".into(), "allow".into()));
    let page = browser.post(&widened).await;
    assert!(page.location().is_none(), "a widened scope was allowed");
    assert!(page.body.contains("log in again"), "{}", page.body);
    // allowed once; the same ticket again is refused
    let first = browser.submit(&consent, &[("zhima_action", "allow")]).await;
    assert!(redirect_of(&first).code.is_some());
    let again = browser.submit(&consent, &[("zhima_action", "allow")]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.location().is_none());

    // behind an https issuer the cookie is Secure and __Host- named
    let secure = spawn_app_with(&[("ZHIMA_OAUTH__ISSUER", "https://door.example")]).await;
    let partner = register(&secure, false, "profile");
    let (url, _) = partner
        .client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();
    let page = Browser::new(&secure).get(url.as_str()).await;
    let set = page.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("__Host-zhima_csrf="), "{set}");
    assert!(set.contains("; Secure") && set.contains("Path=/;"), "{set}");
}

#[actix_web::test]
async fn cors_answers_configured_origins_on_partner_routes_only() {
    let app = spawn_app_with(&[(
        "ZHIMA_OAUTH__CORS_ORIGINS",
        "https://app.example, https://m.example",
    )])
    .await;
    let client = http();
    let preflight = |path: &str, origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            )
            .send()
    };
    for path in [
        "/oauth/token",
        "/oauth/revoke",
        "/.well-known/oauth-authorization-server",
        "/partner/1/profile",
        "/partner/1/vip",
    ] {
        let res = preflight(path, "https://m.example").await.unwrap();
        assert_eq!(res.status().as_u16(), 204, "{path}");
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            "https://m.example"
        );
        assert!(res.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization"));
        let res = preflight(path, "https://evil.example").await.unwrap();
        assert_eq!(res.status().as_u16(), 403, "{path}");
        assert!(res.headers().get("access-control-allow-origin").is_none());
    }
    // an answer (here an error) to an allowed origin carries the header
    let res = client
        .post(format!("{}/oauth/token", app.address))
        .header("Origin", "https://app.example")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let res = client
        .get(format!("{}/partner/1/profile", app.address))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // nothing on the Member API, the door or the login pages
    for path in [
        "/api/v1.0/member/openid/someone-0001",
        "/api/v1.0/door/scan",
        "/oauth/authorize",
        "/oauth/introspect",
    ] {
        let res = preflight(path, "https://app.example").await.unwrap();
        assert!(
            res.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
        let res = client
            .get(format!("{}{path}", app.address))
            .header("Origin", "https://app.example")
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap();
        assert!(
            res.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
}

#[actix_web::test]
async fn a_tokens_payment_past_the_cap_is_refused_not_clamped() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    let rich = member(&app, "rich-openid-0001", "Rich", "", 0).await;
    let pay = |index: &str, cny: &str| json!({"op": "add", "data": {"paidTime": "201803121930", "payIndex": index, "CNYAmount": cny, "payType": "TOKENS"}});
    let path = "/api/v1.0/member/openid/rich-openid-0001";
    // one payment above the cap on its own
    let over = app.patch(path, &pay("T-over", "100000000.01")).await;
    let data = crate::support::expect_errno(&over, "1005");
    assert_eq!(data["data"]["reason"], "token_cap", "{data}");
    // up to the cap exactly, then one fen more
    crate::support::expect_errno(&app.patch(path, &pay("T-1", "99999999")).await, "1000");
    crate::support::expect_errno(&app.patch(path, &pay("T-2", "1")).await, "1000");
    let more = app.patch(path, &pay("T-3", "0.01")).await;
    assert_eq!(
        crate::support::expect_errno(&more, "1005")["data"]["reason"],
        "token_cap"
    );
    // nothing of the refused payments was recorded, and the wallet still reads
    let paid = crate::support::stored_pay_indexes(&app.store, "rich-openid-0001");
    assert_eq!(paid, ["T-1".to_owned(), "T-2".to_owned()].into());
    let token = tokens(&app, &partner, &["profile"], "Rich").await;
    let p = profile(&app, token.access_token().secret()).await;
    assert_eq!(p.status, 200, "{:?}", p.body);
    assert_eq!(p.body["goplay_token"], 100_000_000.0);
    // a staff gift past the cap is refused too
    let id = app
        .store
        .member(zhima_storage::MemberKey::OpenId(&rich))
        .unwrap()
        .unwrap()
        .member
        .id;
    assert!(app.store.balance(id).is_ok());
    let gift = app.store.grant_tokens(
        &rich,
        TokenKind::Free,
        Tokens::MAX,
        "gift",
        crate::support::default_now(),
    );
    assert!(gift.is_ok(), "the free balance has its own cap: {gift:?}");
    let again = app.store.grant_tokens(
        &rich,
        TokenKind::Free,
        Tokens::parse("0.01").unwrap(),
        "gift",
        crate::support::default_now(),
    );
    assert!(
        matches!(again, Err(zhima_storage::StorageError::TokenCap)),
        "{again:?}"
    );
}

async fn metadata_of(app: &TestApp, headers: &[(&str, &str)]) -> Answer {
    let mut req = http().get(format!(
        "{}/.well-known/oauth-authorization-server",
        app.address
    ));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(req.send().await.unwrap()).await
}

#[actix_web::test]
async fn forwarded_headers_count_only_from_a_trusted_proxy() {
    let forged = [
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "host=evil.example;proto=https"),
    ];
    // no trusted proxy: the issuer is the Host the client used, never cached
    let app = spawn_app().await;
    let meta = metadata_of(&app, &forged).await;
    assert_eq!(meta.body["issuer"], app.address, "{}", meta.body);
    assert_eq!(meta.headers["cache-control"], "no-store");
    // behind a trusted proxy its forwarded host and scheme are believed
    let proxied = spawn_app_with(&[("ZHIMA_HTTP__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let meta = metadata_of(&proxied, &forged[..2]).await;
    assert_eq!(meta.body["issuer"], "https://evil.example");
    // a configured issuer wins over everything and may be cached
    let fixed = spawn_app_with(&[("ZHIMA_OAUTH__ISSUER", "https://door.example")]).await;
    let meta = metadata_of(&fixed, &forged).await;
    assert_eq!(meta.body["issuer"], "https://door.example");
    assert_eq!(
        meta.body["token_endpoint"],
        "https://door.example/oauth/token"
    );
    assert_eq!(meta.headers["cache-control"], "public, max-age=3600");

    // the login limiter counts the forwarded client behind a trusted proxy,
    // and the peer otherwise (a forged header buys no fresh addresses)
    async fn failures_until_limited(app: &TestApp) -> usize {
        let partner = register(app, false, "profile");
        let (url, _) = partner
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
            .url();
        let mut browser = Browser::new(app);
        let login = browser.get(url.as_str()).await;
        for i in 0..40 {
            // a new nickName each time: only the address limit can stop it
            let nick = format!("nobody{i}");
            let fields = [
                ("zhima_nickname", nick.as_str()),
                ("zhima_password", "guess guess"),
                ("zhima_action", "login"),
            ];
            let client = format!("198.51.100.{i}");
            let page = browser
                .submit_with(&login, &fields, &[("X-Forwarded-For", &client)])
                .await;
            if page.status == 429 {
                return i;
            }
        }
        40
    }
    assert_eq!(
        failures_until_limited(&app).await,
        20,
        "the peer is counted"
    );
    assert_eq!(
        failures_until_limited(&proxied).await,
        40,
        "each forwarded client is counted on its own"
    );
}

#[actix_web::test]
async fn partner_and_tokens_commands() {
    let app = spawn_app().await;
    let db = &app.db;
    let zhima = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_zhima"))
            .args(args)
            .env("ZHIMA_DATABASE__URL", db.url())
            .env("ZHIMA_QR__SIGNING_KEY", crate::support::TEST_SEED_HEX)
            .env("ZHIMA_LOG__LEVEL", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            // every assertion on a command shows what it said and how it ended
            format!(
                "`zhima {}` ended with {}; stderr:\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out, err) = zhima(&[
        "partner",
        "add",
        "--name",
        "GoPlay",
        "--redirect-uri",
        "https://goplay.example/cb",
        "--redirect-uri",
        "http://localhost:3000/cb",
    ]);
    assert!(ok, "{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let id = field("client_id:");
    let secret = field("client_secret:");
    let unreserved = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    assert!(unreserved(&id) && unreserved(&secret) && secret.len() >= 32);
    let (ok, out, err) = zhima(&["partner", "list"]);
    assert!(
        ok && out.contains(&id) && out.contains("confidential"),
        "{out}{err}"
    );
    assert!(!out.contains(&secret));
    let store = zhima_storage::Store::open(db.url(), &Default::default()).unwrap();
    let stored = store.oauth_client(&id).unwrap().unwrap();
    assert!(stored.secret_hash.unwrap().starts_with("$argon2id$"));

    let (ok, out, err) = zhima(&[
        "partner",
        "add",
        "--name",
        "App",
        "--redirect-uri",
        "http://127.0.0.1:4000/cb",
        "--public",
        "--scopes",
        "profile",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("client_id:") && !out.contains("client_secret:"));
    // plain http to a public host, and an unknown scope, are refused
    let (ok, _, err) = zhima(&[
        "partner",
        "add",
        "--name",
        "X",
        "--redirect-uri",
        "http://goplay.example/cb",
    ]);
    assert!(!ok && err.contains("redirect URI"), "{err}");
    let (ok, _, err) = zhima(&[
        "partner",
        "add",
        "--name",
        "X",
        "--redirect-uri",
        "https://x.example/cb",
        "--scopes",
        "admin",
    ]);
    assert!(!ok && err.contains("--scopes"), "{err}");

    let (ok, out, err) = zhima(&["partner", "pkce", &id, "optional"]);
    assert!(ok && out.contains("optional"), "{out}{err}");
    assert!(!store.oauth_client(&id).unwrap().unwrap().pkce_required);
    let (ok, _, err) = zhima(&["partner", "pkce", &id, "sometimes"]);
    assert!(!ok, "{err}");
    let (ok, _, err) = zhima(&["partner", "remove", &id]);
    assert!(ok, "{err}");
    let (ok, out, err) = zhima(&["partner", "list"]);
    assert!(ok && out.contains("removed"), "{out}{err}");
    let (ok, _, err) = zhima(&["partner", "remove", &id]);
    assert!(!ok, "removing twice fails: {err}");
    // an id that starts with '-' (older versions made such ids) is an id,
    // not an option
    let (ok, _, err) = zhima(&["partner", "remove", "-6Ek7vtk4yH1WpgHKWG_LA"]);
    assert!(!ok && err.contains("no active partner"), "{err}");

    // tokens grant: an unknown member is an error; a known one is credited
    let (ok, _, err) = zhima(&["tokens", "grant", "--openid", "nobody-0001", "--free", "5"]);
    assert!(!ok, "{err}");
    member(&app, "gift-openid-0001", "Gift", "", 0).await;
    // set-password follows the password rules (zhima_domain::password)
    for bad in ["password123", "short", &"x".repeat(201)] {
        let (ok, _, err) = zhima(&[
            "member",
            "set-password",
            "--openid",
            "gift-openid-0001",
            "--password",
            bad,
        ]);
        assert!(!ok && err.contains("--password"), "{err}");
    }
    let (ok, _, err) = zhima(&[
        "member",
        "set-password",
        "--openid",
        "gift-openid-0001",
        "--password",
        "a fine secret",
    ]);
    assert!(ok, "{err}");
    let gift_id = OpenId::parse("gift-openid-0001").unwrap();
    assert!(store.check_password(&gift_id, "a fine secret").unwrap());
    let (ok, out, err) = zhima(&[
        "tokens",
        "grant",
        "--openid",
        "gift-openid-0001",
        "--free",
        "12.5",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("free 12.50"), "{out}");
    let (ok, _, err) = zhima(&[
        "tokens",
        "grant",
        "--openid",
        "gift-openid-0001",
        "--free",
        "-3",
    ]);
    assert!(!ok, "{err}");
    let (ok, out, err) = zhima(&["tokens", "balance", "--openid", "gift-openid-0001"]);
    assert!(ok && out.contains("paid 0.00 free 12.50"), "{out}{err}");
}

#[actix_web::test]
async fn repeated_failed_client_authentication_is_slowed_down() {
    let app = spawn_app().await;
    let partner = register(&app, false, "profile");
    let url = format!("{}/oauth/token", app.address);
    let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    for _ in 0..20 {
        let res = http()
            .post(&url)
            .basic_auth(&partner.client_id, Some("guess"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    }
    // the right secret from the same address waits too; argon2 is not run
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let res = http()
            .post(format!("{}{path}", app.address))
            .basic_auth(&partner.client_id, partner.secret.as_deref())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 429, "{path}");
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&wait));
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
}
