//! Wire DTOs: reading the Member JSON structure and PATCH bodies into domain
//! types (naming the faulty field), and writing members back out.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use zhima_domain::access::{last_active, AccessEvent};
use zhima_domain::ids::{Gender, NickName, OpenId, Rfid};
use zhima_domain::member::{
    MemberChange, NewMember, NewPayment, PaymentInput, Profile, UpdatableField,
};
use zhima_domain::membership::Validity;
use zhima_domain::plan::Plans;
use zhima_domain::tags::{TagInput, Tags};
use zhima_domain::time::format_local_timestamp;
use zhima_domain::DomainError;
use zhima_storage::MemberRecord;

use crate::error::ApiError;

/// A JSON object.
pub type Object = Map<String, Value>;

/// An optional string field: absent or `null` is `None`; a number is refused.
fn opt_str<'a>(obj: &'a Object, key: &str, path: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_field(path, "must be a string")),
    }
}

/// An optional object field.
fn opt_obj<'a>(obj: &'a Object, key: &str, path: &str) -> Result<Option<&'a Object>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ApiError::bad_field(path, "must be an object")),
    }
}

/// An integer given as a JSON integer or as a string of digits.
fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn gender(value: &Value, path: &str) -> Result<Gender, ApiError> {
    let code = as_integer(value)
        .ok_or_else(|| ApiError::bad_field(path, "must be 0 (unknown), 1 (male) or 2 (female)"))?;
    Gender::from_code(code).map_err(|e| ApiError::bad_field(path, e))
}

/// Tags as a list of names or numbers, one name, a comma-separated string, or a role number.
fn tags(value: &Value, path: &str) -> Result<Tags, ApiError> {
    let wrong = || {
        ApiError::bad_field(
            path,
            "must be a list of tag names, a tag name or a role number",
        )
    };
    let inputs: Vec<TagInput<'_>> = match value {
        Value::String(s) => vec![TagInput::Text(s)],
        Value::Number(n) => vec![TagInput::Number(n.as_i64().ok_or_else(wrong)?)],
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(TagInput::Text(s)),
                Value::Number(n) => n.as_i64().map(TagInput::Number).ok_or_else(wrong),
                _ => Err(wrong()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(wrong()),
    };
    Tags::parse(&inputs).map_err(|e| ApiError::bad_field(path, e))
}

fn text_change(field: UpdatableField, value: &Value, path: &str) -> Result<MemberChange, ApiError> {
    let text = match value {
        Value::Null => "",
        Value::String(s) => s,
        _ => return Err(ApiError::bad_field(path, "must be a string")),
    };
    MemberChange::text(field, text)
        .map_err(|DomainError::InvalidField { reason, .. }| ApiError::bad_field(path, reason))
}

/// The text of an amount given as a JSON number or a numeric string.
fn amount_text(value: &Value, path: &str) -> Result<String, ApiError> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(ApiError::bad_field(
            path,
            "must be a number or a numeric string",
        )),
    }
}

/// `payType`: a string, or (as the seed's structure lists it) a one-element list.
fn pay_type<'a>(obj: &'a Object, path: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get("payType") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(s)] => Ok(Some(s)),
            _ => Err(ApiError::bad_field(path, "must be one payment type")),
        },
        Some(_) => Err(ApiError::bad_field(path, "must be a string")),
    }
}

/// Parses a payment object (`paymentInfo` of a new member, `data` of `op:add`).
/// `prefix` is put before field names in messages (`paymentInfo.`).
pub fn payment(obj: &Object, prefix: &str, plans: &Plans, tz: Tz) -> Result<NewPayment, ApiError> {
    let path = |f: &str| format!("{prefix}{f}");
    let paid_time = opt_str(obj, "paidTime", &path("paidTime"))?;
    let pay_index = opt_str(obj, "payIndex", &path("payIndex"))?;
    let amount = match obj.get("CNYAmount") {
        None | Some(Value::Null) => None,
        Some(v) => Some(amount_text(v, &path("CNYAmount"))?),
    };
    let until_days = match obj.get("until_days") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            as_integer(v)
                .ok_or_else(|| ApiError::bad_field(&path("until_days"), "must be an integer"))?,
        ),
    };
    let input = PaymentInput {
        paid_time,
        pay_index,
        amount: amount.as_deref(),
        pay_type: pay_type(obj, &path("payType"))?,
        until_days,
    };
    input
        .parse(plans, tz)
        .map_err(|DomainError::InvalidField { field, reason }| {
            ApiError::bad_field(&path(field), reason)
        })
}

/// Whether a `paymentInfo` object carries no payment (absent, `{}`, or only
/// empty values, as a client without a payment may send).
fn is_empty_payment(obj: &Object) -> bool {
    ["paidTime", "payIndex", "CNYAmount"]
        .iter()
        .all(|k| match obj.get(*k) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        })
}

/// Parses the body of `POST member/new`: the Member JSON structure.
/// `openid` and `basicInfo.nickName` are required; server-owned fields
/// (`memberInfo.createTime`, `expireTime`…) are ignored.
pub fn new_member(
    body: &Object,
    plans: &Plans,
    tz: Tz,
) -> Result<(NewMember, Option<NewPayment>), ApiError> {
    let openid = opt_str(body, "openid", "openid")?
        .ok_or_else(|| ApiError::bad_field("openid", "is required"))?;
    let openid = OpenId::parse(openid).map_err(|e| ApiError::bad_field("openid", e))?;
    let empty = Object::new();
    let basic = opt_obj(body, "basicInfo", "basicInfo")?.unwrap_or(&empty);
    let info = opt_obj(body, "memberInfo", "memberInfo")?.unwrap_or(&empty);

    let nickname = opt_str(basic, "nickName", "basicInfo.nickName")?
        .ok_or_else(|| ApiError::bad_field("basicInfo.nickName", "is required"))?;
    let nickname =
        NickName::parse(nickname).map_err(|e| ApiError::bad_field("basicInfo.nickName", e))?;

    let mut profile = Profile::default();
    set_text(
        &mut profile.avatar_url,
        UpdatableField::AvatarUrl,
        body.get("avatarUrl"),
        "avatarUrl",
    )?;
    let email = basic.get("email").or_else(|| body.get("email"));
    set_text(
        &mut profile.email,
        UpdatableField::Email,
        email,
        "basicInfo.email",
    )?;
    set_text(
        &mut profile.city,
        UpdatableField::City,
        basic.get("city"),
        "basicInfo.city",
    )?;
    set_text(
        &mut profile.country,
        UpdatableField::Country,
        basic.get("country"),
        "basicInfo.country",
    )?;
    set_text(
        &mut profile.province,
        UpdatableField::Province,
        basic.get("province"),
        "basicInfo.province",
    )?;
    set_text(
        &mut profile.language,
        UpdatableField::Language,
        basic.get("language"),
        "basicInfo.language",
    )?;
    set_text(
        &mut profile.memo,
        UpdatableField::Memo,
        info.get("memo"),
        "memberInfo.memo",
    )?;
    if let Some(g) = basic.get("gender").filter(|v| !v.is_null()) {
        profile.gender = gender(g, "basicInfo.gender")?;
    }
    let tags = match info.get("tags") {
        None | Some(Value::Null) => Tags::default_new_member(),
        Some(v) => tags(v, "memberInfo.tags")?,
    };
    let rfid = match body.get("rfid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(Rfid::parse(s).map_err(|e| ApiError::bad_field("rfid", e))?),
        Some(_) => return Err(ApiError::bad_field("rfid", "must be a string")),
    };
    let payment = match opt_obj(body, "paymentInfo", "paymentInfo")? {
        Some(p) if !is_empty_payment(p) => Some(payment(p, "paymentInfo.", plans, tz)?),
        _ => None,
    };
    Ok((
        NewMember {
            openid,
            nickname,
            rfid,
            tags,
            profile,
        },
        payment,
    ))
}

/// Checks an optional text field and stores it in `slot`.
fn set_text(
    slot: &mut String,
    field: UpdatableField,
    value: Option<&Value>,
    path: &str,
) -> Result<(), ApiError> {
    if let Some(value) = value {
        if let MemberChange::Text(_, text) = text_change(field, value, path)? {
            *slot = text;
        }
    }
    Ok(())
}

/// The parsed `data` of `PATCH op:update`: accepted changes and the names
/// of updated and ignored keys.
#[derive(Debug)]
pub struct UpdateRequest {
    /// Changes to apply.
    pub changes: Vec<MemberChange>,
    /// Wire names of the updated fields.
    pub updated: Vec<String>,
    /// Keys that are not updatable, ignored.
    pub ignored: Vec<String>,
}

/// Parses the `data` object of `PATCH op:update`. Any faulty value refuses
/// the whole request (1002, naming the field); unknown keys are ignored.
pub fn update_request(data: &Object) -> Result<UpdateRequest, ApiError> {
    let mut request = UpdateRequest {
        changes: Vec::new(),
        updated: Vec::new(),
        ignored: Vec::new(),
    };
    for (key, value) in data {
        let Some(field) = UpdatableField::from_wire_name(key) else {
            request.ignored.push(key.clone());
            continue;
        };
        let path = format!("data.{key}");
        let change = match field {
            UpdatableField::OpenId => {
                let s = value
                    .as_str()
                    .ok_or_else(|| ApiError::bad_field(&path, "must be a string"))?;
                MemberChange::OpenId(OpenId::parse(s).map_err(|e| ApiError::bad_field(&path, e))?)
            }
            UpdatableField::NickName => {
                let s = value
                    .as_str()
                    .ok_or_else(|| ApiError::bad_field(&path, "must be a string"))?;
                MemberChange::NickName(
                    NickName::parse(s).map_err(|e| ApiError::bad_field(&path, e))?,
                )
            }
            UpdatableField::Rfid => match value {
                Value::Null => MemberChange::Rfid(None),
                Value::String(s) if s.trim().is_empty() => MemberChange::Rfid(None),
                Value::String(s) => MemberChange::Rfid(Some(
                    Rfid::parse(s).map_err(|e| ApiError::bad_field(&path, e))?,
                )),
                _ => return Err(ApiError::bad_field(&path, "must be a string or null")),
            },
            UpdatableField::Tags => MemberChange::Tags(tags(value, &path)?),
            UpdatableField::Gender => MemberChange::Gender(gender(value, &path)?),
            UpdatableField::Reminders => MemberChange::Reminders(
                value
                    .as_bool()
                    .ok_or_else(|| ApiError::bad_field(&path, "must be true or false"))?,
            ),
            text => text_change(text, value, &path)?,
        };
        request.changes.push(change);
        request.updated.push(key.clone());
    }
    Ok(request)
}

/// The Member JSON structure of the seed (section 2) with zhima's additions
/// (`id`, `rfid`, `basicInfo.email`, `basicInfo.status`), with `errno` and
/// `errmsg` beside it at the top level: the answer to a member read.
/// Serialised straight from the record (no intermediate JSON tree); the
/// fields are declared in byte order of their names, so the text is the
/// same as a sorted JSON object's.
#[derive(Debug, serde::Serialize)]
pub struct MemberAnswer<'a> {
    #[serde(rename = "avatarUrl")]
    avatar_url: &'a str,
    #[serde(rename = "basicInfo")]
    basic_info: BasicInfo<'a>,
    errmsg: &'static str,
    errno: String,
    id: i64,
    #[serde(rename = "memberInfo")]
    member_info: MemberInfo<'a>,
    openid: &'a str,
    #[serde(rename = "paymentInfo")]
    payment_info: PaymentInfo<'a>,
    rfid: &'a str,
}

#[derive(Debug, serde::Serialize)]
struct BasicInfo<'a> {
    city: &'a str,
    country: &'a str,
    email: &'a str,
    gender: i32,
    language: &'a str,
    #[serde(rename = "nickName")]
    nick_name: &'a str,
    province: &'a str,
    status: &'static str,
}

#[derive(Debug, serde::Serialize)]
struct MemberInfo<'a> {
    #[serde(rename = "createTime")]
    create_time: String,
    #[serde(rename = "expireTime")]
    expire_time: String,
    #[serde(rename = "lastActiveTime")]
    last_active_time: String,
    #[serde(rename = "lastActiveType")]
    last_active_type: String,
    #[serde(rename = "lastUpdate")]
    last_update: String,
    memo: &'a str,
    tags: Vec<&'static str>,
}

#[derive(Debug, serde::Serialize)]
struct PaymentInfo<'a> {
    #[serde(rename = "CNYAmount")]
    cny_amount: String,
    #[serde(rename = "paidTime")]
    paid_time: String,
    #[serde(rename = "payIndex")]
    pay_index: &'a str,
    #[serde(rename = "payType")]
    pay_type: &'a str,
}

/// The answer to a member read: [`MemberAnswer`] with errno 1000.
pub fn member_answer<'a>(
    record: &'a MemberRecord,
    validity: &Validity,
    tz: Tz,
) -> MemberAnswer<'a> {
    let m = &record.member;
    let ts = |t: DateTime<Utc>| format_local_timestamp(t, tz);
    let active = last_active(&record.payments, record.last_entry.as_slice());
    let payment_info = match record.latest_payment() {
        Some(p) => PaymentInfo {
            cny_amount: p.amount.to_string(),
            paid_time: ts(p.paid_at),
            pay_index: p.pay_index.as_str(),
            pay_type: &p.pay_type,
        },
        None => PaymentInfo {
            cny_amount: String::new(),
            paid_time: String::new(),
            pay_index: "",
            pay_type: "",
        },
    };
    MemberAnswer {
        avatar_url: &m.profile.avatar_url,
        basic_info: BasicInfo {
            city: &m.profile.city,
            country: &m.profile.country,
            email: &m.profile.email,
            gender: m.profile.gender.code(),
            language: &m.profile.language,
            nick_name: m.nickname.as_str(),
            province: &m.profile.province,
            status: validity.status.wire_name(),
        },
        errmsg: "Success",
        errno: zhima_domain::Errno::Success.to_string(),
        id: m.id.0,
        member_info: MemberInfo {
            create_time: ts(m.created_at),
            expire_time: validity.valid_until.map_or(String::new(), ts),
            last_active_time: active.as_ref().map_or(String::new(), |(at, _)| ts(*at)),
            last_active_type: active.map_or(String::new(), |(_, what)| what),
            last_update: ts(m.updated_at),
            memo: &m.profile.memo,
            tags: m.tags.names(),
        },
        openid: m.openid.as_str(),
        payment_info,
        rfid: m.rfid.as_ref().map_or("", Rfid::as_str),
    }
}

/// An instant as RFC 3339 in the space's time zone, to the millisecond
/// (`2018-03-12T20:00:03.000+08:00`).
pub fn precise_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// A person let in at the door, as `data` of the welcome answer.
pub fn admitted(a: &zhima_app::entrance::Admitted, tz: Tz) -> Value {
    json!({
        "memberId": a.member.0,
        "nickName": a.nickname,
        "status": a.status.wire_name(),
        "expireTime": a.valid_until.map_or(String::new(), |t| format_local_timestamp(t, tz)),
        "entryDaysLeft": a.entry_days_left,
        "seconds": a.seconds,
        "replay": a.replay,
    })
}

/// One access-log event on the wire.
pub fn access_event(e: &AccessEvent, tz: Tz) -> Value {
    let ev = &e.event;
    json!({
        "id": e.id,
        "time": format_local_timestamp(ev.at, tz),
        "at": ev.at.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "door": ev.door,
        "method": ev.method.as_str(),
        "outcome": ev.outcome.as_str(),
        "reason": ev.reason,
        "memberId": ev.member.map(|m| m.0),
        "apiKeyId": ev.api_key,
        "detail": ev.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zhima_domain::time::DEFAULT_TIMEZONE;

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn field_of(err: ApiError) -> String {
        err.data["field"].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn new_member_requires_openid_and_nickname() {
        let plans = Plans::standard();
        let cases = [
            (json!({}), "openid"),
            (json!({"openid": 5}), "openid"),
            (json!({"openid": "a b"}), "openid"),
            (json!({"openid": "x"}), "basicInfo.nickName"),
            (json!({"openid": "x", "basicInfo": "no"}), "basicInfo"),
            (
                json!({"openid": "x", "basicInfo": {"nickName": 3}}),
                "basicInfo.nickName",
            ),
            (
                json!({"openid": "x", "basicInfo": {"nickName": "J", "gender": 7}}),
                "basicInfo.gender",
            ),
            (
                json!({"openid": "x", "basicInfo": {"nickName": "J", "city": 7}}),
                "basicInfo.city",
            ),
            (
                json!({"openid": "x", "basicInfo": {"nickName": "J"}, "memberInfo": {"tags": ["WIZARD"]}}),
                "memberInfo.tags",
            ),
            (
                json!({"openid": "x", "basicInfo": {"nickName": "J"}, "memberInfo": {"tags": [true]}}),
                "memberInfo.tags",
            ),
            (
                json!({"openid": "x", "basicInfo": {"nickName": "J"}, "paymentInfo": {"payIndex": "p"}}),
                "paymentInfo.paidTime",
            ),
            (
                json!({"openid": "x", "basicInfo": {"nickName": "J"}, "paymentInfo": {"paidTime": "201803121929", "payIndex": "p", "CNYAmount": true}}),
                "paymentInfo.CNYAmount",
            ),
        ];
        for (body, field) in cases {
            let err = new_member(&obj(body.clone()), &plans, DEFAULT_TIMEZONE).unwrap_err();
            assert_eq!(field_of(err), field, "{body}");
        }
    }

    #[test]
    fn new_member_reads_the_seed_structure() {
        let body = obj(json!({
            "openid": "ozckH0TkSadGgyeAb5Bn390qQMa8",
            "avatarUrl": "https://wx.qlogo.cn/x/0",
            "basicInfo": {"city": "", "country": "South Korea", "gender": 1, "language": "zh_CN", "nickName": "JOHN:", "province": ""},
            "memberInfo": {"createTime": "201505011522", "expireTime": "201903111928", "tags": ["VISITOR", "MEMBER"], "memo": ""},
            "paymentInfo": {"paidTime": "201803121929", "payIndex": "9cu293820xxjfiuewfdsfdse32", "CNYAmount": "3200", "payType": ["6M MEMBERSHIP"]}
        }));
        let (m, p) = new_member(&body, &Plans::standard(), DEFAULT_TIMEZONE).unwrap();
        assert_eq!(m.nickname.as_str(), "JOHN:");
        assert_eq!(m.profile.country, "South Korea");
        assert_eq!(m.profile.gender, Gender::Male);
        assert_eq!(m.tags.names(), ["VISITOR", "MEMBER"]);
        let p = p.unwrap();
        assert_eq!(p.amount.as_fen(), 320000);
        assert_eq!(p.pay_type, "6M MEMBERSHIP");
        // an empty paymentInfo is no payment
        let body = obj(
            json!({"openid": "x", "basicInfo": {"nickName": "J"}, "paymentInfo": {"paidTime": "", "payIndex": "", "CNYAmount": ""}}),
        );
        assert!(new_member(&body, &Plans::standard(), DEFAULT_TIMEZONE)
            .unwrap()
            .1
            .is_none());
        let body =
            obj(json!({"openid": "x", "basicInfo": {"nickName": "J"}, "memberInfo": {"tags": 10}}));
        assert_eq!(
            new_member(&body, &Plans::standard(), DEFAULT_TIMEZONE)
                .unwrap()
                .0
                .tags
                .names(),
            ["ADMIN"]
        );
    }

    #[test]
    fn update_lists_updated_and_ignored() {
        let data = obj(
            json!({"avatarUrl": "https://new", "nickName": "new_nick", "tags": 5, "expireTime": "x", "status": "OK"}),
        );
        let r = update_request(&data).unwrap();
        assert_eq!(r.changes.len(), 3);
        assert_eq!(r.updated, ["avatarUrl", "nickName", "tags"]);
        assert_eq!(r.ignored, ["expireTime", "status"]);
        let err = update_request(&obj(json!({"nickName": "ok", "gender": "x"}))).unwrap_err();
        assert_eq!(field_of(err), "data.gender");
        let err = update_request(&obj(json!({"rfid": 12}))).unwrap_err();
        assert_eq!(field_of(err), "data.rfid");
        let r = update_request(&obj(json!({"rfid": null}))).unwrap();
        assert_eq!(r.changes, [MemberChange::Rfid(None)]);
    }

    #[test]
    fn amounts_keep_their_decimal_text() {
        let plans = Plans::standard();
        for (amount, fen) in [
            (json!(123.45), 12345),
            (json!("123.45"), 12345),
            (json!(3200), 320000),
            (json!(0.1), 10),
        ] {
            let data = obj(
                json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": amount, "payType": "DONATION"}),
            );
            assert_eq!(
                payment(&data, "", &plans, DEFAULT_TIMEZONE)
                    .unwrap()
                    .amount
                    .as_fen(),
                fen
            );
        }
        for amount in [
            json!(1.234),
            json!(-1),
            json!("abc"),
            json!(1e300),
            json!([1]),
        ] {
            let data =
                obj(json!({"paidTime": "201803121929", "payIndex": "p", "CNYAmount": amount}));
            assert_eq!(
                field_of(payment(&data, "", &plans, DEFAULT_TIMEZONE).unwrap_err()),
                "CNYAmount"
            );
        }
    }
}
