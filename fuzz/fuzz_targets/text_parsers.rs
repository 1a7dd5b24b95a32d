//! Every text parser of client input: never a panic, and what is accepted
//! round-trips through its canonical text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zhima_domain::ids::{NickName, OpenId, PayIndex, Rfid};
use zhima_domain::money::Fen;
use zhima_domain::partner::Tokens;
use zhima_domain::scope::Scopes;
use zhima_domain::tags::{TagInput, Tags};
use zhima_domain::time::{format_local_timestamp, parse_local_timestamp, DEFAULT_TIMEZONE};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fen) = Fen::parse_yuan(s) {
        assert_eq!(Fen::parse_yuan(&fen.to_string()).unwrap(), fen);
    }
    if let Ok(t) = Tokens::parse(s) {
        assert_eq!(Tokens::parse(&t.to_string()).unwrap(), t);
    }
    if let Ok(at) = parse_local_timestamp(s, DEFAULT_TIMEZONE) {
        let text = format_local_timestamp(at, DEFAULT_TIMEZONE);
        assert_eq!(parse_local_timestamp(&text, DEFAULT_TIMEZONE).unwrap(), at);
    }
    let _ = OpenId::parse(s);
    let _ = NickName::parse(s);
    let _ = PayIndex::parse(s);
    let _ = Rfid::parse(s);
    let _ = Scopes::parse(s);
    let _ = Tags::parse(&[TagInput::Text(s)]);
    if let Ok(tags) = Tags::from_stored(s) {
        assert_eq!(Tags::from_stored(&tags.to_stored()).unwrap(), tags);
    }
});
