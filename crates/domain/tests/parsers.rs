//! Property tests of every parser that reads client input: on any input they
//! answer (never panic), and what they accept round-trips through its
//! canonical text. `PROPTEST_CASES=200000 cargo test -p zhima-domain --test
//! parsers --release` runs them longer (see docs/reliability.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::DateTime;
use proptest::prelude::*;
use zhima_domain::ids::{NickName, OpenId, PayIndex, Rfid};
use zhima_domain::money::Fen;
use zhima_domain::partner::{PartnerScope, Tokens, VipLevel};
use zhima_domain::qr::{self, KeyId, Keyring, Signer};
use zhima_domain::scope::Scopes;
use zhima_domain::tags::{TagInput, Tags};
use zhima_domain::time::{format_local_timestamp, parse_local_timestamp, DEFAULT_TIMEZONE};

/// Arbitrary text, with a bias towards the characters the parsers care about.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop::sample::select(vec![
                '0', '1', '9', '.', '-', '+', 'e', 'E', ',', ' ', '#', 'Z', 'M', 'a', 'f', '_',
                '\u{0}', '\u{FEFF}', '一', '%'
            ]),
            0..40
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn money_parses_or_refuses_and_round_trips(s in text()) {
        if let Ok(fen) = Fen::parse_yuan(&s) {
            prop_assert_eq!(Fen::parse_yuan(&fen.to_string()).unwrap(), fen);
        }
    }

    #[test]
    fn tokens_parse_or_refuse_and_round_trip(s in text()) {
        if let Ok(t) = Tokens::parse(&s) {
            prop_assert!(t >= Tokens::ZERO && t <= Tokens::MAX);
            prop_assert_eq!(Tokens::parse(&t.to_string()).unwrap(), t);
        }
    }

    #[test]
    fn timestamps_parse_or_refuse_and_round_trip(s in text(), digits in "[0-9]{12}") {
        for input in [&s, &digits] {
            if let Ok(t) = parse_local_timestamp(input, DEFAULT_TIMEZONE) {
                let again = format_local_timestamp(t, DEFAULT_TIMEZONE);
                prop_assert_eq!(parse_local_timestamp(&again, DEFAULT_TIMEZONE).unwrap(), t);
            }
        }
    }

    #[test]
    fn identifiers_and_names_answer_on_any_text(s in text()) {
        let _ = OpenId::parse(&s);
        let _ = PayIndex::parse(&s);
        let _ = Scopes::parse(&s);
        let _ = PartnerScope::parse_set(&s);
        let _ = VipLevel::parse(&s);
        let _ = KeyId::parse(&s);
        if let Ok(n) = NickName::parse(&s) {
            prop_assert_eq!(NickName::parse(n.as_str()).unwrap().key(), n.key());
        }
        if let Ok(r) = Rfid::parse(&s) {
            prop_assert_eq!(Rfid::parse(r.as_ref()).unwrap(), r);
        }
    }

    #[test]
    fn tags_answer_on_any_input(s in text(), n in any::<i64>()) {
        let _ = Tags::parse(&[TagInput::Text(&s)]);
        let _ = Tags::parse(&[TagInput::Number(n), TagInput::Text(&s)]);
    }

    #[test]
    fn qr_verification_refuses_any_bytes_it_did_not_sign(bytes in proptest::collection::vec(any::<u8>(), 0..200), s in text()) {
        let signer = Signer::from_seed(KeyId::parse("1").unwrap(), &[7; 32]);
        let mut keyring = Keyring::new();
        keyring.insert(signer.key_id(), signer.verifying_key());
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        prop_assert!(qr::verify(&bytes, &keyring, now).is_err());
        let framed = format!("ZM1.1.{s}");
        prop_assert!(qr::verify(framed.as_bytes(), &keyring, now).is_err());
    }
}
