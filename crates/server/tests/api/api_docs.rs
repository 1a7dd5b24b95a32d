//! Replays every example of `docs/api.md` against the real server, in order,
//! and checks each documented answer exactly (status and JSON body).
//!
//! An example is a fenced ```http block (request line, headers, blank line,
//! body) followed by a line `Answer: <status>` and a fenced ```json block.
//! `Authorization: Bearer <key: SCOPES>` is replaced by a key with those
//! scopes. In an expected answer the string "…" matches any value. The clock
//! stands at 2018-03-12 20:00 Shanghai time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is a test failure

use std::collections::HashMap;

use crate::support::spawn_app;
use serde_json::Value;
use zhima_domain::scope::Scopes;

struct Example {
    line: usize,
    method: String,
    path: String,
    scopes: Option<String>,
    raw_auth: Option<String>,
    body: Option<String>,
    status: u16,
    answer: Value,
}

fn parse(doc: &str) -> Vec<Example> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut examples = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```http" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while lines[end].trim() != "```" {
            end += 1;
        }
        let block = &lines[start..end];
        let (method, path) = block[0].split_once(' ').expect("request line");
        let mut scopes = None;
        let mut raw_auth = None;
        let mut j = 1;
        while j < block.len() && !block[j].trim().is_empty() {
            let (name, value) = block[j].split_once(':').expect("header");
            if name.eq_ignore_ascii_case("Authorization") {
                let value = value.trim();
                match value
                    .strip_prefix("Bearer <key: ")
                    .and_then(|v| v.strip_suffix('>'))
                {
                    Some(s) => scopes = Some(s.to_owned()),
                    None => raw_auth = Some(value.to_owned()),
                }
            }
            j += 1;
        }
        let body = (j + 1 < block.len()).then(|| block[j + 1..].join("\n"));
        // the answer: "Answer: NNN", then a ```json block
        let mut k = end + 1;
        while !lines[k].starts_with("Answer: ") {
            k += 1;
        }
        let status: u16 = lines[k]["Answer: ".len()..]
            .trim()
            .trim_matches('`')
            .parse()
            .expect("status");
        while lines[k].trim() != "```json" {
            k += 1;
        }
        let json_start = k + 1;
        let mut json_end = json_start;
        while lines[json_end].trim() != "```" {
            json_end += 1;
        }
        let answer =
            serde_json::from_str(&lines[json_start..json_end].join("\n")).unwrap_or_else(|e| {
                panic!(
                    "docs/api.md line {}: answer is not JSON: {e}",
                    json_start + 1
                )
            });
        examples.push(Example {
            line: start,
            method: method.to_owned(),
            path: path.to_owned(),
            scopes,
            raw_auth,
            body,
            status,
            answer,
        });
        i = json_end + 1;
    }
    examples
}

/// Whether `actual` matches `expected`, where "…" matches anything.
fn matches(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::String(e), _) if e == "…" => Ok(()),
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys().chain(a.keys()) {
                match (e.get(key), a.get(key)) {
                    (Some(ev), Some(av)) => matches(ev, av, &format!("{at}.{key}"))?,
                    (Some(_), None) => return Err(format!("{at}.{key} is documented but missing")),
                    (None, Some(v)) => return Err(format!("{at}.{key} = {v} is not documented")),
                    (None, None) => {}
                }
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .try_for_each(|(i, (ev, av))| matches(ev, av, &format!("{at}[{i}]"))),
        _ if expected == actual => Ok(()),
        _ => Err(format!("{at}: documented {expected}, got {actual}")),
    }
}

#[actix_web::test]
async fn every_documented_example_is_what_the_server_answers() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let examples = parse(&doc);
    assert!(
        examples.len() >= 15,
        "docs/api.md should hold the examples; found {}",
        examples.len()
    );
    let app = spawn_app().await;
    let mut keys: HashMap<String, String> = HashMap::new();
    for ex in examples {
        let key = match (&ex.scopes, &ex.raw_auth) {
            (Some(scopes), _) => {
                let n = keys.len();
                Some(
                    keys.entry(scopes.clone())
                        .or_insert_with(|| {
                            app.store
                                .create_api_key(
                                    &format!("docs-{n}"),
                                    &Scopes::parse(scopes).unwrap(),
                                    crate::support::default_now(),
                                )
                                .unwrap()
                                .1
                        })
                        .clone(),
                )
            }
            (None, Some(raw)) => Some(raw.trim_start_matches("Bearer ").to_owned()),
            (None, None) => None,
        };
        let answer = app
            .send(
                &ex.method,
                &ex.path,
                key.as_deref(),
                ex.body.clone().map(String::into_bytes),
            )
            .await;
        assert_eq!(
            answer.status, ex.status,
            "docs/api.md line {}: {} {}: {}",
            ex.line, ex.method, ex.path, answer.body
        );
        if let Err(diff) = matches(&ex.answer, &answer.body, "answer") {
            panic!(
                "docs/api.md line {}: {} {}: {diff}\nfull answer: {}",
                ex.line, ex.method, ex.path, answer.body
            );
        }
    }
}

#[test]
fn the_matcher_is_strict() {
    let e = serde_json::json!({"a": 1, "b": "…", "c": [1, 2]});
    assert!(matches(
        &e,
        &serde_json::json!({"a": 1, "b": "anything", "c": [1, 2]}),
        "x"
    )
    .is_ok());
    assert!(matches(&e, &serde_json::json!({"a": 2, "b": 0, "c": [1, 2]}), "x").is_err());
    assert!(matches(
        &e,
        &serde_json::json!({"a": 1, "b": 0, "c": [1, 2], "d": 0}),
        "x"
    )
    .is_err());
    assert!(matches(&e, &serde_json::json!({"a": 1, "c": [1, 2]}), "x").is_err());
    assert!(matches(&e, &serde_json::json!({"a": 1, "b": 0, "c": [1]}), "x").is_err());
}
