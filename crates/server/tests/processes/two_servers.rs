//! Two `zhima serve` processes on one database, hammered at once with the
//! same payIndex values and with VIP purchases for one member: exactly one
//! payment per payIndex, and exactly the affordable number of purchases.
//! Meant for PostgreSQL (`TEST_ZHIMA_POSTGRES_URL`); on SQLite the two
//! processes share one file, which must hold the same promises.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crate::support::process::{call, free_port, serve, wait_ready, Server};
use reqwest::Method;
use std::time::Duration;

use serde_json::{json, Value};
use zhima_domain::ids::OpenId;
use zhima_domain::partner::{PartnerScope, TokenKind, Tokens};
use zhima_storage::testing::TestDatabase;
use zhima_storage::{MemberKey, Store, StoreOptions};

const REDIRECT: &str = "https://partner.example/cb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_record_each_payment_once_and_never_overspend() {
    let db = TestDatabase::new().unwrap();
    let store = Store::open(db.url(), &StoreOptions::default()).unwrap();
    store.migrate().unwrap();
    let now = chrono::Utc::now();
    let (_, key) = store
        .create_api_key(
            "till",
            &zhima_domain::scope::Scopes::parse("member:read,member:write").unwrap(),
            now,
        )
        .unwrap();

    let ports = [free_port(), free_port()];
    let mut servers: Vec<Server> = ports.iter().map(|p| serve(db.url(), *p, &[])).collect();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for base in &bases {
        wait_ready(&client, base).await;
    }
    let url = format!("{}/api/v1.0/member/new", bases[0]);
    let body = json!({"openid": "two-openid-1", "basicInfo": {"nickName": "Two"}});
    let answer = call(&client, Method::POST, &url, &key, &body).await;
    assert_eq!(answer["errno"], "1000", "{answer}");

    // 40 payIndex values, each sent 4 times: twice to each server, at once
    let mut sends = Vec::new();
    for i in 0..40 {
        for copy in 0..4 {
            let (client, key) = (client.clone(), key.clone());
            let base = bases[copy % 2].clone();
            sends.push(tokio::spawn(async move {
                let body = json!({"op": "add", "data": {"paidTime": "201803121929",
                    "payIndex": format!("two-{i}"), "CNYAmount": "10", "payType": "DONATION"}});
                let url = format!("{base}/api/v1.0/member/openid/two-openid-1");
                let v = call(&client, Method::PATCH, &url, &key, &body).await;
                (i, v["errno"].as_str().unwrap().to_owned())
            }));
        }
    }
    let mut answered = BTreeSet::new();
    for s in sends {
        let (i, errno) = s.await.unwrap();
        assert!(
            errno == "1000" || errno == "1503",
            "payment {i}: errno {errno}"
        );
        if errno == "1000" {
            answered.insert(format!("two-{i}"));
        }
    }
    let unique = crate::support::stored_pay_indexes(&store, "two-openid-1");
    let openid = OpenId::parse("two-openid-1").unwrap();
    let member = store
        .member(MemberKey::OpenId(&openid))
        .unwrap()
        .unwrap()
        .member
        .id;
    assert!(
        answered.is_subset(&unique),
        "an answered payment is missing"
    );
    assert_eq!(unique.len(), 40, "every payIndex recorded once");

    // VIP: a balance for 3 standard periods, 10 purchases spread over both
    store
        .grant_tokens(&openid, TokenKind::Free, Tokens::whole(350), "gift", now)
        .unwrap();
    let provider = zhima_oauth::Provider::new(store.clone(), Default::default());
    let scopes: BTreeSet<PartnerScope> = PartnerScope::ALL.into_iter().collect();
    let partner = provider
        .register("Partner", &[REDIRECT.to_owned()], false, &scopes, now)
        .unwrap();
    let client_id = partner.client.client_id.clone();
    let secret = partner.secret.unwrap();
    let code = crate::support::oauth::approved_code(
        &provider,
        &client_id,
        REDIRECT,
        "profile vip",
        member,
        Some(crate::support::oauth::CHALLENGE),
        now,
    );
    let token_url = format!("{}/oauth/token", bases[1]);
    let token =
        crate::support::oauth::redeem(&client, &token_url, (&client_id, &secret), &code, REDIRECT)
            .await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let mut buys = Vec::new();
    for n in 0..10 {
        let (client, access) = (client.clone(), access.clone());
        let base = bases[n % 2].clone();
        buys.push(tokio::spawn(async move {
            let res = client
                .post(format!("{base}/partner/1/vip"))
                .bearer_auth(&access)
                .form(&[("level", "standard")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 200);
            res.json::<Value>().await.unwrap()["success"] == true
        }));
    }
    let mut bought = 0;
    for b in buys {
        if b.await.unwrap() {
            bought += 1;
        }
    }
    assert_eq!(bought, 3, "exactly the affordable number");
    let balance = store.balance(member).unwrap();
    assert_eq!(balance.free, Tokens::whole(50));
    assert_eq!(store.vip_periods(member).unwrap().len(), 3);

    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }
    eprintln!(
        "two servers: 160 sends of 40 payIndex values → {} payments; 10 VIP purchases → {bought}",
        unique.len()
    );
}
