//! Black-box tests of the Member API: the real server on port 0, spoken to
//! over HTTP. Every example of the seed, every errno path, auth failures,
//! idempotent payments.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use crate::support::{expect_errno, spawn_app, TestApp};
use serde_json::{json, Value};

fn seed_member(openid: &str, nick: &str) -> Value {
    json!({
        "openid": openid,
        "avatarUrl": "https://wx.qlogo.cn/mmopen/vi_32/GPm0HkJtcIsWkZmVNaxJP19ibl1g2YJTEibglP0UibOZstaRN1lbuMavu1a1Y795p6J1vHz0bM27icibCiat9ERricyng/0",
        "basicInfo": {"city": "", "country": "South Korea", "gender": 1, "language": "zh_CN", "nickName": nick, "province": ""},
        "memberInfo": {
            "createTime": "201505011522", "lastUpdate": "201801011420", "lastActiveTime": "201803021530",
            "lastActiveType": "Open the door/ paid for membership", "expireTime": "201903111928",
            "tags": ["VISITOR", "MEMBER", "MASTER", "GROUP", "STAFF", "ADMIN"], "memo": ""
        }
    })
}

async fn create(app: &TestApp, body: &Value) -> i64 {
    let answer = app.post("/api/v1.0/member/new", body).await;
    assert_eq!(answer.status, 200);
    let body = expect_errno(&answer, "1000");
    body["data"]["new_id"]
        .as_i64()
        .expect("new_id is an integer")
}

async fn payment_count(app: &TestApp, openid: &str) -> usize {
    let openid = zhima_domain::ids::OpenId::parse(openid).unwrap();
    app.store
        .member(zhima_storage::MemberKey::OpenId(&openid))
        .unwrap()
        .unwrap()
        .payments
        .len()
}

#[actix_web::test]
async fn health_needs_no_key() {
    let app = spawn_app().await;
    let answer = app.send("GET", "/healthz", None, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"], "ok");
}

#[actix_web::test]
async fn new_member_without_payment_is_not_ok() {
    let app = spawn_app().await;
    let answer = app
        .post(
            "/api/v1.0/member/new",
            &seed_member("ozckH0TkSadGgyeAb5Bn390qQMa8", "JOHN:"),
        )
        .await;
    let body = expect_errno(&answer, "1000");
    assert_eq!(body["errmsg"], "Success");
    let id = body["data"]["new_id"].as_i64().unwrap();
    let url = body["data"]["qrcode_url"].as_str().unwrap();
    let prefix = format!("/images/XCJ_{id}.png?");
    assert!(url.starts_with(&prefix), "{url}");
    // the seed's time with a fraction, then the link's expiry and signature
    let (time, signed) = url[prefix.len()..].split_once('&').unwrap();
    assert!(time.parse::<f64>().is_ok(), "{url}");
    assert!(
        signed.starts_with("exp=") && signed.contains("&sig="),
        "{url}"
    );
    assert_eq!(body["data"]["status"], "NOT_OK");

    let answer = app
        .get("/api/v1.0/member/openid/ozckH0TkSadGgyeAb5Bn390qQMa8")
        .await;
    let m = expect_errno(&answer, "1000");
    assert_eq!(m["errmsg"], "Success");
    assert_eq!(m["id"], id);
    assert_eq!(m["openid"], "ozckH0TkSadGgyeAb5Bn390qQMa8");
    assert_eq!(m["rfid"], "");
    assert_eq!(m["basicInfo"]["nickName"], "JOHN:");
    assert_eq!(m["basicInfo"]["country"], "South Korea");
    assert_eq!(m["basicInfo"]["gender"], 1);
    assert_eq!(m["basicInfo"]["language"], "zh_CN");
    assert_eq!(m["basicInfo"]["email"], "");
    assert_eq!(m["basicInfo"]["status"], "NOT_OK");
    // server-owned fields are the server's, not the client's
    assert_eq!(m["memberInfo"]["createTime"], "201803122000");
    assert_eq!(m["memberInfo"]["lastUpdate"], "201803122000");
    assert_eq!(m["memberInfo"]["expireTime"], "");
    assert_eq!(m["memberInfo"]["lastActiveTime"], "");
    assert_eq!(
        m["memberInfo"]["tags"],
        json!(["VISITOR", "MEMBER", "MASTER", "GROUP", "STAFF", "ADMIN"])
    );
    assert_eq!(
        m["paymentInfo"],
        json!({"paidTime": "", "payIndex": "", "CNYAmount": "", "payType": ""})
    );
    assert!(m.get("data").is_none(), "the member is at the top level");
    // the default password is set and must be changed
    let openid = zhima_domain::ids::OpenId::parse("ozckH0TkSadGgyeAb5Bn390qQMa8").unwrap();
    assert!(app.store.check_password(&openid, "password123").unwrap());
}

#[actix_web::test]
async fn new_member_with_payment_is_ok_until_the_plan_ends() {
    let app = spawn_app().await;
    let mut body = seed_member("oid-pay", "Payer");
    body["paymentInfo"] = json!({"paidTime": "201803121929", "payIndex": "9cu293820xxjfiuewfdsfdse32", "CNYAmount": "3200", "payType": "6M MEMBERSHIP"});
    let answer = app.post("/api/v1.0/member/new", &body).await;
    let data = expect_errno(&answer, "1000")["data"].clone();
    assert_eq!(data["status"], "OK");
    assert_eq!(data["expireTime"], "201809121929");
    let m = app.get("/api/v1.0/member/openid/oid-pay").await.body;
    assert_eq!(m["basicInfo"]["status"], "OK");
    assert_eq!(m["memberInfo"]["expireTime"], "201809121929");
    assert_eq!(m["memberInfo"]["lastActiveTime"], "201803121929");
    assert_eq!(
        m["paymentInfo"],
        json!({"paidTime": "201803121929", "payIndex": "9cu293820xxjfiuewfdsfdse32", "CNYAmount": "3200.00", "payType": "6M MEMBERSHIP"})
    );
    // six months later to the minute it has expired
    app.clock.set(
        zhima_domain::time::parse_local_timestamp("201809121929", chrono_tz::Asia::Shanghai)
            .unwrap(),
    );
    let m = app.get("/api/v1.0/member/openid/oid-pay").await.body;
    assert_eq!(m["basicInfo"]["status"], "NOT_OK");
}

#[actix_web::test]
async fn members_are_found_by_id_openid_and_rfid() {
    let app = spawn_app().await;
    let mut body = seed_member("oid-r", "Carded");
    body["rfid"] = json!("04a1b2c3");
    let id = create(&app, &body).await;
    for path in [
        format!("/api/v1.0/member/{id}"),
        "/api/v1.0/member/openid/oid-r".into(),
        "/api/v1.0/member/rfid/04A1B2C3".into(),
        "/api/v1.0/member/rfid/04a1b2c3".into(),
    ] {
        let m = expect_errno(&app.get(&path).await, "1000");
        assert_eq!(m["id"], id, "{path}");
        assert_eq!(m["rfid"], "04A1B2C3");
    }
}

#[actix_web::test]
async fn unknown_members_answer_1999_with_the_key() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v1.0/member/openid/nobody", json!("nobody")),
        ("/api/v1.0/member/rfid/FFFF", json!("FFFF")),
        ("/api/v1.0/member/424242", json!(424242)),
        ("/api/v1.0/member/not-a-number", json!("not-a-number")),
        ("/api/v1.0/member/openid/bad%20openid", json!("bad openid")),
    ];
    for (path, key) in cases {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 200, "{path}");
        let body = expect_errno(&answer, "1999");
        assert_eq!(body["data"]["id"], key, "{path}");
    }
    let answer = app
        .patch(
            "/api/v1.0/member/openid/nobody",
            &json!({"op": "update", "data": {"memo": "x"}}),
        )
        .await;
    assert_eq!(expect_errno(&answer, "1999")["data"]["id"], "nobody");
    let add = json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "p1", "CNYAmount": 1}});
    let answer = app.patch("/api/v1.0/member/openid/nobody", &add).await;
    assert_eq!(expect_errno(&answer, "1999")["data"]["id"], "nobody");
}

#[actix_web::test]
async fn bad_new_member_bodies_answer_1002_naming_the_field_and_create_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), ""),
        (b"".to_vec(), ""),
        (b"[1,2]".to_vec(), ""),
        (b"\"text\"".to_vec(), ""),
        (br#"{"basicInfo": {"nickName": "x"}}"#.to_vec(), "openid"),
        (br#"{"openid": "o1"}"#.to_vec(), "basicInfo.nickName"),
        (br#"{"openid": "o1", "basicInfo": {"nickName": ""}}"#.to_vec(), "basicInfo.nickName"),
        (br#"{"openid": 12, "basicInfo": {"nickName": "x"}}"#.to_vec(), "openid"),
        (br#"{"openid": "o1", "basicInfo": {"nickName": "x", "gender": "m"}}"#.to_vec(), "basicInfo.gender"),
        (br#"{"openid": "o1", "basicInfo": {"nickName": "x"}, "memberInfo": {"tags": ["WIZARD"]}}"#.to_vec(), "memberInfo.tags"),
        (br#"{"openid": "o1", "basicInfo": {"nickName": "x"}, "memberInfo": {"tags": 3}}"#.to_vec(), "memberInfo.tags"),
        (br#"{"openid": "o1", "basicInfo": {"nickName": "x"}, "paymentInfo": {"paidTime": "2018", "payIndex": "p", "CNYAmount": 1}}"#.to_vec(), "paymentInfo.paidTime"),
        (br#"{"openid": "o1", "basicInfo": {"nickName": "x"}, "paymentInfo": {"paidTime": "201803121929", "payIndex": "p", "CNYAmount": 1.234}}"#.to_vec(), "paymentInfo.CNYAmount"),
        (br#"{"openid": "o1", "basicInfo": {"nickName": "x"}, "paymentInfo": {"paidTime": "201803121929", "payIndex": "p", "CNYAmount": 1, "payType": "LIFETIME"}}"#.to_vec(), "paymentInfo.payType"),
    ];
    for (body, field) in cases {
        let answer = app
            .send(
                "POST",
                "/api/v1.0/member/new",
                Some(&app.key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&body));
        let out = expect_errno(&answer, "1002");
        if !field.is_empty() {
            assert_eq!(
                out["data"]["field"],
                field,
                "{}",
                String::from_utf8_lossy(&body)
            );
            assert!(
                out["errmsg"].as_str().unwrap().starts_with(field),
                "{}",
                out["errmsg"]
            );
        }
    }
    assert_eq!(app.store.member_count().unwrap(), 0);
}

#[actix_web::test]
async fn tags_accept_names_any_case_and_role_numbers() {
    let app = spawn_app().await;
    for (i, (tags, expected)) in [
        (json!("staff"), json!(["STAFF"])),
        (json!(10), json!(["ADMIN"])),
        (json!(["visitor", "Group"]), json!(["VISITOR", "GROUP"])),
        (Value::Null, json!(["MEMBER"])),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"openid": format!("t{i}"), "basicInfo": {"nickName": format!("t{i}")}, "memberInfo": {"tags": tags}});
        create(&app, &body).await;
        let m = app.get(&format!("/api/v1.0/member/openid/t{i}")).await.body;
        assert_eq!(m["memberInfo"]["tags"], expected);
    }
}

#[actix_web::test]
async fn duplicates_answer_1003() {
    let app = spawn_app().await;
    create(&app, &seed_member("oid-1", "John")).await;
    for body in [
        seed_member("oid-1", "Other"),
        seed_member("oid-2", "JOHN"),
        seed_member("oid-3", " john "),
    ] {
        let answer = app.post("/api/v1.0/member/new", &body).await;
        expect_errno(&answer, "1003");
    }
    assert_eq!(app.store.member_count().unwrap(), 1);
}

#[actix_web::test]
async fn update_follows_the_seed_example() {
    let app = spawn_app().await;
    let id = create(&app, &seed_member("oid-u", "Before")).await;
    app.clock.advance(chrono::Duration::hours(1));
    let patch = json!({
        "op": "update",
        "data": {"avatarUrl": "https://new/link/to_avatar.html", "nickName": "new_nickName", "tags": 5, "expireTime": "209912312359", "colour": "blue"}
    });
    let answer = app.patch("/api/v1.0/member/openid/oid-u", &patch).await;
    let data = expect_errno(&answer, "1000")["data"].clone();
    assert_eq!(data["new_id"], id);
    assert!(data["qrcode_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/images/XCJ_{id}.png?")));
    assert_eq!(data["updated"], json!(["avatarUrl", "nickName", "tags"]));
    assert_eq!(data["ignored"], json!(["colour", "expireTime"]));
    let m = app.get("/api/v1.0/member/openid/oid-u").await.body;
    assert_eq!(m["avatarUrl"], "https://new/link/to_avatar.html");
    assert_eq!(m["basicInfo"]["nickName"], "new_nickName");
    assert_eq!(m["memberInfo"]["tags"], json!(["STAFF"]));
    assert_eq!(m["memberInfo"]["expireTime"], "");
    assert_eq!(m["memberInfo"]["lastUpdate"], "201803122100");
    assert_eq!(m["memberInfo"]["createTime"], "201803122000");

    // every updatable field
    let patch = json!({"op": "update", "data": {
        "openid": "oid-u2", "rfid": "abc1", "email": "a@b.cn", "city": "Shanghai", "country": "China",
        "gender": 2, "language": "en", "province": "SH", "memo": "asked for refund"
    }});
    expect_errno(
        &app.patch("/api/v1.0/member/openid/oid-u", &patch).await,
        "1000",
    );
    let m = expect_errno(&app.get("/api/v1.0/member/openid/oid-u2").await, "1000");
    assert_eq!(m["rfid"], "ABC1");
    assert_eq!(m["basicInfo"]["email"], "a@b.cn");
    assert_eq!(m["basicInfo"]["city"], "Shanghai");
    assert_eq!(m["basicInfo"]["country"], "China");
    assert_eq!(m["basicInfo"]["gender"], 2);
    assert_eq!(m["basicInfo"]["language"], "en");
    assert_eq!(m["basicInfo"]["province"], "SH");
    assert_eq!(m["memberInfo"]["memo"], "asked for refund");
    expect_errno(&app.get("/api/v1.0/member/openid/oid-u").await, "1999");
}

#[actix_web::test]
async fn bad_updates_change_nothing() {
    let app = spawn_app().await;
    create(&app, &seed_member("oid-a", "Alice")).await;
    create(&app, &seed_member("oid-b", "Bob")).await;
    let cases = [
        (json!({"data": {"memo": "x"}}), "1002"),
        (json!({"op": "delete", "data": {"memo": "x"}}), "1002"),
        (json!({"op": "UPDATE", "data": {"memo": "x"}}), "1002"),
        (json!({"op": 1, "data": {"memo": "x"}}), "1002"),
        (json!({"op": "update"}), "1002"),
        (json!({"op": "update", "data": ["memo"]}), "1002"),
        (
            json!({"op": "update", "data": {"memo": "x", "gender": 9}}),
            "1002",
        ),
        (
            json!({"op": "update", "data": {"memo": "x", "nickName": ""}}),
            "1002",
        ),
        (
            json!({"op": "update", "data": {"memo": "x", "tags": ["NOPE"]}}),
            "1002",
        ),
        (
            json!({"op": "update", "data": {"memo": "x", "email": "not-mail"}}),
            "1002",
        ),
        (
            json!({"op": "update", "data": {"memo": "x", "nickName": "BOB"}}),
            "1004",
        ),
        (
            json!({"op": "update", "data": {"memo": "x", "openid": "oid-b"}}),
            "1004",
        ),
    ];
    for (patch, errno) in cases {
        let answer = app.patch("/api/v1.0/member/openid/oid-a", &patch).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["errno"], errno, "{patch} → {}", answer.body);
    }
    let m = app.get("/api/v1.0/member/openid/oid-a").await.body;
    assert_eq!(m["memberInfo"]["memo"], "");
    assert_eq!(m["basicInfo"]["nickName"], "Alice");
    assert_eq!(m["memberInfo"]["lastUpdate"], "201803122000");
}

#[actix_web::test]
async fn add_payment_follows_the_seed_example_and_is_idempotent() {
    let app = spawn_app().await;
    let id = create(&app, &seed_member("oid-p", "Payer")).await;
    let patch = json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "this is craaaazy!", "CNYAmount": 123.45, "payType": "DONATION"}});
    let answer = app.patch("/api/v1.0/member/openid/oid-p", &patch).await;
    let data = expect_errno(&answer, "1000")["data"].clone();
    assert_eq!(data["new_id"], id);
    assert_eq!(data["duplicate"], false);
    let tx = data["transaction_id"].as_i64().unwrap();
    assert_eq!(data["status"], "NOT_OK", "a donation grants no access");

    // the provider retries: same answer, nothing counted twice
    for _ in 0..3 {
        let data = expect_errno(
            &app.patch("/api/v1.0/member/openid/oid-p", &patch).await,
            "1000",
        )["data"]
            .clone();
        assert_eq!(data["duplicate"], true);
        assert_eq!(data["transaction_id"], tx);
    }
    // amount as a string is the same payment
    let same = json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "this is craaaazy!", "CNYAmount": "123.45", "payType": "donation"}});
    assert_eq!(
        expect_errno(
            &app.patch("/api/v1.0/member/openid/oid-p", &same).await,
            "1000"
        )["data"]["duplicate"],
        true
    );
    // same payIndex, other content
    for other in [
        json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "this is craaaazy!", "CNYAmount": 123.46, "payType": "DONATION"}}),
        json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "this is craaaazy!", "CNYAmount": 123.45, "payType": "EVENT"}}),
    ] {
        expect_errno(
            &app.patch("/api/v1.0/member/openid/oid-p", &other).await,
            "1005",
        );
    }
    // another member reusing it
    create(&app, &seed_member("oid-q", "Other")).await;
    expect_errno(
        &app.patch("/api/v1.0/member/openid/oid-q", &patch).await,
        "1005",
    );
    assert_eq!(payment_count(&app, "oid-p").await, 1);
    assert_eq!(payment_count(&app, "oid-q").await, 0);
    let m = app.get("/api/v1.0/member/openid/oid-p").await.body;
    assert_eq!(m["paymentInfo"]["CNYAmount"], "123.45");
    assert_eq!(m["paymentInfo"]["payType"], "DONATION");
}

#[actix_web::test]
async fn memberships_stack_and_default_to_one_month() {
    let app = spawn_app().await;
    create(&app, &seed_member("oid-m", "Member")).await;
    let pay = |index: &str, time: &str| json!({"op": "add", "data": {"paidTime": time, "payIndex": index, "CNYAmount": "200"}});
    let d = expect_errno(
        &app.patch(
            "/api/v1.0/member/openid/oid-m",
            &pay("wx-1", "201803101000"),
        )
        .await,
        "1000",
    )["data"]
        .clone();
    assert_eq!(d["status"], "OK");
    assert_eq!(d["expireTime"], "201804101000");
    // paid again before it ran out: the new month starts at the current end
    let d = expect_errno(
        &app.patch(
            "/api/v1.0/member/openid/oid-m",
            &pay("wx-2", "201803121930"),
        )
        .await,
        "1000",
    )["data"]
        .clone();
    assert_eq!(d["expireTime"], "201805101000");
    // until_days overrides the plan's length
    let mut p = pay("wx-3", "201803121945");
    p["data"]["until_days"] = json!(10);
    let d = expect_errno(
        &app.patch("/api/v1.0/member/openid/oid-m", &p).await,
        "1000",
    )["data"]
        .clone();
    assert_eq!(d["expireTime"], "201805201000");
    let m = app.get("/api/v1.0/member/openid/oid-m").await.body;
    assert_eq!(m["paymentInfo"]["payType"], "1M MEMBERSHIP");
    assert_eq!(m["paymentInfo"]["payIndex"], "wx-3");
    assert_eq!(m["memberInfo"]["lastActiveType"], "Paid 1M MEMBERSHIP");
    // an expired membership: a lapsed 2017 payment
    create(&app, &seed_member("oid-old", "Old")).await;
    let d = expect_errno(
        &app.patch(
            "/api/v1.0/member/openid/oid-old",
            &pay("wx-old", "201701311000"),
        )
        .await,
        "1000",
    )["data"]
        .clone();
    assert_eq!(d["status"], "NOT_OK");
    assert_eq!(d["expireTime"], "201702281000");
}

#[actix_web::test]
async fn bad_payments_answer_1002_and_record_nothing() {
    let app = spawn_app().await;
    create(&app, &seed_member("oid-b", "Bad")).await;
    let cases = [
        (
            json!({"paidTime": "2018-03-12", "payIndex": "p", "CNYAmount": 1}),
            "data.paidTime",
        ),
        (
            json!({"paidTime": "201802301200", "payIndex": "p", "CNYAmount": 1}),
            "data.paidTime",
        ),
        (
            json!({"paidTime": 201803121929u64, "payIndex": "p", "CNYAmount": 1}),
            "data.paidTime",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "", "CNYAmount": 1}),
            "data.payIndex",
        ),
        (
            json!({"paidTime": "201803121929", "CNYAmount": 1}),
            "data.payIndex",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": -5}),
            "data.CNYAmount",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": "12.345"}),
            "data.CNYAmount",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": "1e400"}),
            "data.CNYAmount",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p"}),
            "data.CNYAmount",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": 1, "payType": "GOLD BARS"}),
            "data.payType",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": 1, "until_days": 0}),
            "data.until_days",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": 1, "until_days": 1.5}),
            "data.until_days",
        ),
        (
            json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": 1, "payType": "DONATION", "until_days": 3}),
            "data.until_days",
        ),
    ];
    for (data, field) in cases {
        let answer = app
            .patch(
                "/api/v1.0/member/openid/oid-b",
                &json!({"op": "add", "data": data}),
            )
            .await;
        let body = expect_errno(&answer, "1002");
        assert_eq!(body["data"]["field"], field, "{data}");
    }
    assert_eq!(payment_count(&app, "oid-b").await, 0);
}

#[actix_web::test]
async fn concurrent_replays_of_one_pay_index_record_one_transaction() {
    let app = spawn_app().await;
    create(&app, &seed_member("oid-c", "Racer")).await;
    let patch = json!({"op": "add", "data": {"paidTime": "201803121929", "payIndex": "wx-race", "CNYAmount": 200, "payType": "1M MEMBERSHIP"}});
    let requests = (0..12).map(|_| app.patch("/api/v1.0/member/openid/oid-c", &patch));
    let answers = futures_util::future::join_all(requests).await;
    let mut first = 0;
    let mut ids = std::collections::HashSet::new();
    for a in &answers {
        let data = expect_errno(a, "1000")["data"].clone();
        if data["duplicate"] == false {
            first += 1;
        }
        ids.insert(data["transaction_id"].as_i64().unwrap());
    }
    assert_eq!(first, 1, "exactly one request recorded the payment");
    assert_eq!(ids.len(), 1, "every answer names the same transaction");
    assert_eq!(payment_count(&app, "oid-c").await, 1);
    let m = app.get("/api/v1.0/member/openid/oid-c").await.body;
    assert_eq!(
        m["memberInfo"]["expireTime"], "201804121929",
        "one month, not twelve"
    );
}

#[actix_web::test]
async fn authentication_and_scopes_are_enforced_before_anything_happens() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&seed_member("oid-x", "Intruder")).unwrap();
    let revoked = app
        .store
        .create_api_key(
            "gone",
            &zhima_domain::scope::Scopes::parse("member:read,member:write").unwrap(),
            crate::support::default_now(),
        )
        .unwrap()
        .1;
    app.store
        .revoke_api_key("gone", crate::support::default_now())
        .unwrap();
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        ("POST", "/api/v1.0/member/new", None, 401, "1401"),
        (
            "POST",
            "/api/v1.0/member/new",
            Some("zk_not-a-key"),
            401,
            "1401",
        ),
        ("POST", "/api/v1.0/member/new", Some(&revoked), 401, "1401"),
        (
            "POST",
            "/api/v1.0/member/new",
            Some(&app.read_key),
            403,
            "1403",
        ),
        (
            "POST",
            "/api/v1.0/member/new",
            Some(&app.door_key),
            403,
            "1403",
        ),
        ("GET", "/api/v1.0/member/openid/oid-x", None, 401, "1401"),
        (
            "GET",
            "/api/v1.0/member/openid/oid-x",
            Some(&app.write_key),
            403,
            "1403",
        ),
        (
            "GET",
            "/api/v1.0/member/1",
            Some(&app.door_key),
            403,
            "1403",
        ),
        (
            "GET",
            "/api/v1.0/member/rfid/AA",
            Some(&revoked),
            401,
            "1401",
        ),
        (
            "PATCH",
            "/api/v1.0/member/openid/oid-x",
            Some(&app.read_key),
            403,
            "1403",
        ),
        ("PATCH", "/api/v1.0/member/openid/oid-x", None, 401, "1401"),
    ];
    for (method, path, key, status, errno) in cases {
        let answer = app.send(method, path, key, Some(body.clone())).await;
        assert_eq!(answer.status, status, "{method} {path} {key:?}");
        assert_eq!(answer.body["errno"], errno);
        if status == 401 {
            assert_eq!(answer.headers.get("WWW-Authenticate").unwrap(), "Bearer");
        }
    }
    // other schemes and malformed headers are refused too
    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        &format!("bearer{}", app.key),
        "Token abc",
    ] {
        let res = app
            .client
            .get(format!("{}/api/v1.0/member/1", app.address))
            .header("Authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{header}");
    }
    // the scheme is case-insensitive
    let res = app
        .client
        .get(format!("{}/api/v1.0/member/1", app.address))
        .header("Authorization", format!("bearer {}", app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(app.store.member_count().unwrap(), 0);
    // the write-only key can create; the read-only key can read
    let answer = app
        .send(
            "POST",
            "/api/v1.0/member/new",
            Some(&app.write_key),
            Some(body),
        )
        .await;
    expect_errno(&answer, "1000");
    expect_errno(
        &app.send(
            "GET",
            "/api/v1.0/member/openid/oid-x",
            Some(&app.read_key),
            None,
        )
        .await,
        "1000",
    );
}

#[actix_web::test]
async fn bodies_over_64_kib_answer_413_and_change_nothing() {
    let app = spawn_app().await;
    let mut body = seed_member("oid-big", "Big");
    body["memberInfo"]["memo"] = json!("x".repeat(70 * 1024));
    let answer = app.post("/api/v1.0/member/new", &body).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.body["errno"], "1413");
    // a chunked body without Content-Length is cut off too
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 8 * 1024])).collect();
    let res = app
        .client
        .post(format!("{}/api/v1.0/member/new", app.address))
        .bearer_auth(&app.key)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert_eq!(app.store.member_count().unwrap(), 0);
    // just under the limit is fine
    let mut body = seed_member("oid-ok", "Ok");
    body["memberInfo"]["memo"] = json!("x".repeat(3000));
    expect_errno(&app.post("/api/v1.0/member/new", &body).await, "1000");
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_with_the_envelope() {
    let app = spawn_app().await;
    let answer = app.get("/api/v1.0/nothing-here").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["errno"], "1404");
    let answer = app
        .send("DELETE", "/api/v1.0/member/openid/x", Some(&app.key), None)
        .await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.body["errno"], "1405");
    // member/new exists only for POST
    let answer = app
        .send("GET", "/api/v1.0/member/new", Some(&app.key), None)
        .await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.body["errno"], "1405");
}

#[actix_web::test]
async fn deactivated_members_are_invalid() {
    let app = spawn_app().await;
    let mut body = seed_member("oid-d", "Gone");
    body["paymentInfo"] = json!({"paidTime": "201803121929", "payIndex": "wx-d", "CNYAmount": "900", "payType": "6M MEMBERSHIP"});
    create(&app, &body).await;
    let openid = zhima_domain::ids::OpenId::parse("oid-d").unwrap();
    app.store
        .set_deactivated(&openid, true, crate::support::default_now())
        .unwrap();
    let m = app.get("/api/v1.0/member/openid/oid-d").await.body;
    assert_eq!(m["basicInfo"]["status"], "INVALID");
    assert_eq!(
        m["memberInfo"]["expireTime"], "201809121929",
        "history is kept"
    );
}

#[actix_web::test]
async fn a_revoked_key_stops_working_within_the_cache_ttl() {
    let app = spawn_app().await;
    let scopes = zhima_domain::scope::Scopes::parse("member:read").unwrap();
    let key = app
        .store
        .create_api_key("short-lived", &scopes, crate::support::default_now())
        .unwrap()
        .1;
    let answer = app
        .send("GET", "/api/v1.0/member/openid/x", Some(&key), None)
        .await;
    expect_errno(&answer, "1999"); // the key works (and is now cached)
    app.store
        .revoke_api_key("short-lived", crate::support::default_now())
        .unwrap();
    tokio::time::sleep(zhima_app::keys::KEY_CACHE_TTL + std::time::Duration::from_millis(100))
        .await;
    let answer = app
        .send("GET", "/api/v1.0/member/openid/x", Some(&key), None)
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["errno"], "1401");
}

#[actix_web::test]
async fn implausible_paid_times_are_refused_and_expiry_stays_12_digits() {
    let app = spawn_app().await;
    let body = json!({"openid": "oid-year", "basicInfo": {"nickName": "Year"}});
    expect_errno(&app.post("/api/v1.0/member/new", &body).await, "1000");
    for paid in [
        "000001010000",
        "999912312359",
        "199912312359",
        "210001010000",
    ] {
        let add = json!({"op": "add", "data": {"paidTime": paid, "payIndex": format!("y-{paid}"), "CNYAmount": 200, "payType": "6M MEMBERSHIP"}});
        let answer = app.patch("/api/v1.0/member/openid/oid-year", &add).await;
        let e = expect_errno(&answer, "1002");
        assert!(
            e["errmsg"].as_str().unwrap().contains("paidTime"),
            "{paid}: {e}"
        );
    }
    assert!(crate::support::stored_pay_indexes(&app.store, "oid-year").is_empty());
    // the latest accepted year, stacked: expireTime is still YYYYMMDDHHMM
    for i in 0..4 {
        let add = json!({"op": "add", "data": {"paidTime": "209912312359", "payIndex": format!("late-{i}"), "CNYAmount": 900, "payType": "6M MEMBERSHIP"}});
        expect_errno(
            &app.patch("/api/v1.0/member/openid/oid-year", &add).await,
            "1000",
        );
    }
    let member = expect_errno(&app.get("/api/v1.0/member/openid/oid-year").await, "1000");
    let text = member.to_string();
    assert!(text.contains("\"expireTime\":\"2101"), "{text}");
    for field in ["expireTime", "paidTime"] {
        for (i, _) in text.match_indices(&format!("\"{field}\":\"")) {
            let value = &text[i + field.len() + 4..][..13];
            assert!(
                value[..12].bytes().all(|b| b.is_ascii_digit()) && value.ends_with('"'),
                "{field} {value} in {text}"
            );
        }
    }
}
