//! Member QR codes: a signed, dated, compact text payload.
//!
//! ```text
//! ZM1.<key id>.<member id>.<valid from>.<valid until>.<issued at>.<signature>
//! ```
//!
//! - `ZM1`: the format and its version.
//! - `<key id>`: one base-36 character (`0`–`9`, `a`–`z`) naming the signing key,
//!   so keys can be rotated: a door keeps the public keys of every id in use.
//! - `<member id>`, and the three times as minutes since the Unix epoch (UTC):
//!   lowercase base 36, no leading zeros. The code admits from `valid from`
//!   (inclusive) to `valid until` (exclusive).
//! - `<signature>`: Ed25519 over every byte before the last `.`, in unpadded
//!   base64url (86 characters), checked strictly (canonical encoding and
//!   signature), so a code has exactly one spelling.
//!
//! A typical code is about 115 characters: a version-7 QR code at error
//! correction M. Verifying needs only the public key, never the database.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::errno::Errno;
use crate::ids::MemberId;
use crate::membership::{MemberStatus, Validity};
use crate::Invalid;

/// The format tag and version.
pub const PREFIX: &str = "ZM1";

/// The longest code [`encode`] can produce (member ids below 36⁶, times
/// before the year 2084).
pub const MAX_LEN: usize = 3 + 1 + 1 + 1 + 6 + 1 + 5 + 1 + 5 + 1 + 5 + 1 + 86;

/// The longest text [`verify`] will look at.
const READ_LIMIT: usize = 256;

/// A signing key's id: one base-36 digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(u8);

impl KeyId {
    /// From its text (`0`–`9`, `a`–`z`).
    pub fn parse(text: &str) -> Result<KeyId, Invalid> {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => c
                .to_digit(36)
                .filter(|_| !c.is_ascii_uppercase())
                .map(|d| KeyId(d as u8))
                .ok_or_else(|| Invalid::new("a key id is one character, 0-9 or a-z")),
            _ => Err(Invalid::new("a key id is one character, 0-9 or a-z")),
        }
    }

    fn as_char(self) -> char {
        char::from_digit(u32::from(self.0), 36).unwrap_or('0')
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// What a code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrPayload {
    /// The key that signed it.
    pub key_id: KeyId,
    /// The member.
    pub member: MemberId,
    /// Admits from (inclusive, whole minutes).
    pub valid_from: DateTime<Utc>,
    /// Admits until (exclusive, whole minutes).
    pub valid_until: DateTime<Utc>,
    /// When it was made (whole minutes).
    pub issued_at: DateTime<Utc>,
}

/// Why a code does not open the door. Each has its errno and a code for the
/// access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Not a zhima code, or not spelled as one.
    BadFormat,
    /// The signature does not match: forged or altered.
    BadSignature,
    /// Signed with a key this server does not know.
    UnknownKey,
    /// Before its valid-from time.
    NotYetValid,
    /// At or after its valid-until time.
    Expired,
    /// The member has no valid membership, pass or entry now.
    MemberNotOk,
    /// Staff deactivated the member.
    MemberDeactivated,
    /// A `10 ENTRIES` visitor whose entry days are used up.
    EntryDaysUsedUp,
    /// No member holds this RFID card.
    UnknownCard,
    /// The member in a well-signed code does not exist.
    UnknownMember,
}

impl Refusal {
    /// The reason code in the access log.
    pub const fn reason(self) -> &'static str {
        match self {
            Refusal::BadFormat => "bad_format",
            Refusal::BadSignature => "bad_signature",
            Refusal::UnknownKey => "unknown_key",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::Expired => "expired",
            Refusal::MemberNotOk => "member_not_ok",
            Refusal::MemberDeactivated => "member_deactivated",
            Refusal::EntryDaysUsedUp => "entry_days_used_up",
            Refusal::UnknownCard => "unknown_card",
            Refusal::UnknownMember => "unknown_member",
        }
    }

    /// The errno the door API answers.
    pub const fn errno(self) -> Errno {
        match self {
            Refusal::BadFormat => Errno::CodeUnreadable,
            Refusal::BadSignature => Errno::CodeForged,
            Refusal::UnknownKey => Errno::CodeUnknownKey,
            Refusal::NotYetValid => Errno::CodeNotYetValid,
            Refusal::Expired => Errno::CodeExpired,
            Refusal::MemberNotOk | Refusal::UnknownMember => Errno::MemberNotOk,
            Refusal::MemberDeactivated => Errno::MemberDeactivated,
            Refusal::EntryDaysUsedUp => Errno::EntryDaysUsedUp,
            Refusal::UnknownCard => Errno::UnknownCard,
        }
    }

    /// Text for the person at the door.
    pub const fn message(self) -> &'static str {
        self.errno().meaning()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// The key a server signs codes with.
pub struct Signer {
    key_id: KeyId,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(key_id: KeyId, seed: &[u8; 32]) -> Signer {
        Signer {
            key_id,
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as 64 hex digits (what a door needs).
    pub fn public_key_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits into 32 bytes.
pub fn parse_hex32(text: &str) -> Result<[u8; 32], Invalid> {
    let text = text.trim();
    let bad = || Invalid::new("expected 64 hexadecimal digits");
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The public keys a door accepts, by key id.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<KeyId, VerifyingKey>,
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds (or replaces) the key of an id.
    pub fn insert(&mut self, id: KeyId, key: VerifyingKey) {
        self.keys.insert(id, key);
    }

    /// Adds a key given as 64 hex digits.
    pub fn insert_hex(&mut self, id: KeyId, hex: &str) -> Result<(), Invalid> {
        let bytes = parse_hex32(hex)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| Invalid::new("not an Ed25519 public key"))?;
        self.insert(id, key);
        Ok(())
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn minutes(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp().div_euclid(60)).unwrap_or(0)
}

fn base36(mut n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
        n /= 36;
    }
    digits.iter().rev().collect()
}

/// Canonical lowercase base 36, at most `max` digits, no leading zero.
fn parse_base36(text: &str, max: usize) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= max
        && (text == "0" || !text.starts_with('0'))
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    if !canonical {
        return None;
    }
    u64::from_str_radix(text, 36).ok()
}

fn minute_instant(m: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(m).ok()?.checked_mul(60)?, 0)
}

/// Floors an instant to its minute (what a code can carry).
pub fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    minute_instant(minutes(t)).unwrap_or(t)
}

/// Makes and signs a code. Times are floored to the minute.
pub fn encode(signer: &Signer, payload: &QrPayload) -> String {
    let body = format!(
        "{PREFIX}.{}.{}.{}.{}.{}",
        signer.key_id,
        base36(u64::try_from(payload.member.0).unwrap_or(0)),
        base36(minutes(payload.valid_from)),
        base36(minutes(payload.valid_until)),
        base36(minutes(payload.issued_at)),
    );
    let signature = signer.key.sign(body.as_bytes());
    format!("{body}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// A code made for `member` at `now`, valid until `until`, signed by `signer`.
pub fn issue(
    signer: &Signer,
    member: MemberId,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> String {
    encode(
        signer,
        &QrPayload {
            key_id: signer.key_id,
            member,
            valid_from: now,
            valid_until: until,
            issued_at: now,
        },
    )
}

/// Reads a code without checking its signature or dates: the format only.
/// Returns the payload and the signed part and signature.
fn parse(code: &[u8]) -> Result<(QrPayload, &[u8], Signature), Refusal> {
    if code.len() > READ_LIMIT {
        return Err(Refusal::BadFormat);
    }
    let text = std::str::from_utf8(code).map_err(|_| Refusal::BadFormat)?;
    let (signed, signature) = text.rsplit_once('.').ok_or(Refusal::BadFormat)?;
    let fields: Vec<&str> = signed.split('.').collect();
    let [prefix, key_id, member, from, until, issued] = fields[..] else {
        return Err(Refusal::BadFormat);
    };
    if prefix != PREFIX {
        return Err(Refusal::BadFormat);
    }
    let key_id = KeyId::parse(key_id).map_err(|_| Refusal::BadFormat)?;
    let member = parse_base36(member, 6)
        .filter(|m| *m > 0)
        .and_then(|m| i64::try_from(m).ok())
        .ok_or(Refusal::BadFormat)?;
    let time = |t: &str| {
        parse_base36(t, 5)
            .and_then(minute_instant)
            .ok_or(Refusal::BadFormat)
    };
    let payload = QrPayload {
        key_id,
        member: MemberId(member),
        valid_from: time(from)?,
        valid_until: time(until)?,
        issued_at: time(issued)?,
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Refusal::BadFormat)?;
    let bytes: [u8; 64] = bytes.try_into().map_err(|_| Refusal::BadFormat)?;
    Ok((payload, signed.as_bytes(), Signature::from_bytes(&bytes)))
}

/// Checks a scanned code at `now`: format, key, signature, then dates. The
/// member's standing is checked separately ([`admits`]), against the
/// database.
pub fn verify(code: &[u8], keys: &Keyring, now: DateTime<Utc>) -> Result<QrPayload, Refusal> {
    let (payload, signed, signature) = parse(code)?;
    let key = keys.keys.get(&payload.key_id).ok_or(Refusal::UnknownKey)?;
    key.verify_strict(signed, &signature)
        .map_err(|_| Refusal::BadSignature)?;
    if now < payload.valid_from {
        return Err(Refusal::NotYetValid);
    }
    if now >= payload.valid_until {
        return Err(Refusal::Expired);
    }
    Ok(payload)
}

/// Whether a member's validity at the moment of entry lets them in.
///
/// `validity` must be evaluated at that moment with the entry itself added
/// to the member's entries, so that a `10 ENTRIES` visitor's first entry of
/// a new day spends (and needs) a day, and later entries that day are free.
pub fn admits(validity: &Validity) -> Result<(), Refusal> {
    match validity.status {
        MemberStatus::Ok => Ok(()),
        MemberStatus::Invalid => Err(Refusal::MemberDeactivated),
        MemberStatus::NotOk if validity.entry_days_left == Some(0) => Err(Refusal::EntryDaysUsedUp),
        MemberStatus::NotOk => Err(Refusal::MemberNotOk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn signer(id: &str, seed: u8) -> Signer {
        Signer::from_seed(KeyId::parse(id).unwrap(), &[seed; 32])
    }

    fn keyring(signers: &[&Signer]) -> Keyring {
        let mut k = Keyring::new();
        for s in signers {
            k.insert(s.key_id(), s.verifying_key());
        }
        k
    }

    /// A small deterministic generator (xorshift64*), so property tests need
    /// no extra crate and fail the same way every time.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn sample() -> (Signer, String, DateTime<Utc>) {
        let s = signer("1", 7);
        let now = t("2024-03-01T12:00:30Z");
        let code = issue(&s, MemberId(123_574), now, t("2024-09-01T12:00:00Z"));
        (s, code, now)
    }

    #[test]
    fn a_code_is_small_and_reads_back() {
        let (s, code, now) = sample();
        assert!(code.len() <= 120, "{} characters: {code}", code.len());
        assert!(code.len() <= MAX_LEN);
        assert!(code.starts_with("ZM1.1."));
        let p = verify(code.as_bytes(), &keyring(&[&s]), now).unwrap();
        assert_eq!(p.member, MemberId(123_574));
        assert_eq!(
            p.valid_from,
            t("2024-03-01T12:00:00Z"),
            "floored to the minute"
        );
        assert_eq!(p.valid_until, t("2024-09-01T12:00:00Z"));
        assert_eq!(p.issued_at, t("2024-03-01T12:00:00Z"));
        assert_eq!(p.key_id, s.key_id());
    }

    #[test]
    fn payloads_round_trip() {
        let signers = [signer("0", 1), signer("z", 2), signer("9", 3)];
        let keys = keyring(&signers.iter().collect::<Vec<_>>());
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..500 {
            let s = &signers[rng.below(3) as usize];
            let minute = |r: &mut Rng| minute_instant(r.below(36u64.pow(5))).unwrap();
            let (a, b) = (minute(&mut rng), minute(&mut rng));
            let payload = QrPayload {
                key_id: s.key_id(),
                member: MemberId(1 + rng.below(36u64.pow(6) - 1) as i64),
                valid_from: a.min(b),
                valid_until: a.max(b) + chrono::Duration::minutes(1),
                issued_at: minute(&mut rng),
            };
            let code = encode(s, &payload);
            assert!(code.len() <= MAX_LEN, "{code}");
            assert_eq!(
                verify(code.as_bytes(), &keys, payload.valid_from),
                Ok(payload)
            );
        }
    }

    #[test]
    fn any_change_to_one_byte_is_refused() {
        let (s, code, now) = sample();
        let keys = keyring(&[&s]);
        let original = code.as_bytes();
        let mut checked = 0;
        for i in 0..original.len() {
            for b in 0..=255u8 {
                if b == original[i] {
                    continue;
                }
                let mut altered = original.to_vec();
                altered[i] = b;
                let result = verify(&altered, &keys, now);
                assert!(
                    matches!(
                        result,
                        Err(Refusal::BadFormat | Refusal::BadSignature | Refusal::UnknownKey)
                    ),
                    "byte {i} set to {b:#04x} gave {result:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, original.len() * 255);
        // and so is any byte removed or added
        for i in 0..original.len() {
            let mut shorter = original.to_vec();
            shorter.remove(i);
            assert!(verify(&shorter, &keys, now).is_err(), "without byte {i}");
            let mut longer = original.to_vec();
            longer.insert(i, b'a');
            assert!(verify(&longer, &keys, now).is_err(), "with a byte at {i}");
        }
    }

    #[test]
    fn keys_are_chosen_by_id_and_unknown_ids_refused() {
        let (old, code, now) = sample();
        let new = signer("2", 9);
        // rotation: the door knows both keys
        assert!(verify(code.as_bytes(), &keyring(&[&old, &new]), now).is_ok());
        assert_eq!(
            verify(code.as_bytes(), &keyring(&[&new]), now),
            Err(Refusal::UnknownKey)
        );
        // the same id with another key: a forgery
        let impostor = signer("1", 8);
        assert_eq!(
            verify(code.as_bytes(), &keyring(&[&impostor]), now),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn validity_window_is_exact_to_the_minute() {
        let s = signer("1", 7);
        let keys = keyring(&[&s]);
        // a month paid in Shanghai on 31 January ends on 29 February, 20:00 local
        let from = t("2024-01-31T12:00:00Z");
        let until = t("2024-02-29T12:00:00Z");
        let code = issue(&s, MemberId(5), from, until);
        let at = |s| verify(code.as_bytes(), &keys, t(s));
        assert_eq!(at("2024-01-31T11:59:59Z"), Err(Refusal::NotYetValid));
        assert!(at("2024-01-31T12:00:00Z").is_ok());
        assert!(at("2024-02-29T11:59:59Z").is_ok());
        assert_eq!(at("2024-02-29T12:00:00Z"), Err(Refusal::Expired));
        assert_eq!(at("2030-01-01T00:00:00Z"), Err(Refusal::Expired));
    }

    #[test]
    fn a_code_ends_with_the_membership_in_the_space_s_time_zone() {
        use crate::ids::PayIndex;
        use crate::member::Payment;
        use crate::membership::{evaluate, History};
        use crate::money::Fen;
        use crate::plan::Plans;
        use crate::time::{parse_local_timestamp, DEFAULT_TIMEZONE as TZ};

        let local = |s: &str| parse_local_timestamp(s, TZ).unwrap();
        // one month paid on 31 January at 20:00 in Shanghai
        let paid = Payment {
            id: 1,
            pay_index: PayIndex::parse("p1").unwrap(),
            amount: Fen::from_yuan(200),
            pay_type: "1M MEMBERSHIP".into(),
            paid_at: local("202401312000"),
            until_days: None,
            span: None,
            recorded_at: local("202401312000"),
        };
        let now = local("202402101200");
        let history = History {
            deactivated: false,
            payments: std::slice::from_ref(&paid),
            entries: &[],
            vip: &[],
        };
        let validity = evaluate(history, &Plans::standard(), TZ, now);
        let until = validity.valid_until.unwrap();
        assert_eq!(
            until,
            local("202402292000"),
            "the last day of February, local"
        );
        let s = signer("1", 7);
        let keys = keyring(&[&s]);
        let code = issue(&s, MemberId(9), now, until);
        let second = chrono::Duration::seconds(1);
        assert!(verify(code.as_bytes(), &keys, until - second).is_ok());
        assert_eq!(
            verify(code.as_bytes(), &keys, until),
            Err(Refusal::Expired),
            "20:00 on 29 February in Shanghai, 12:00 UTC"
        );
        assert_eq!(until, t("2024-02-29T12:00:00Z"));
    }

    #[test]
    fn malformed_codes_are_bad_format() {
        let (s, code, now) = sample();
        let keys = keyring(&[&s]);
        let long = "ZM1.".repeat(100);
        for bad in [
            "",
            "hello",
            "XCJ1#123#someone",
            "ZM1",
            "ZM2.1.2f.k3p.k5a.1abc2.AAAA",
            "ZM1.1.0.1.2.3.AAAA",
            long.as_str(),
        ] {
            assert_eq!(
                verify(bad.as_bytes(), &keys, now),
                Err(Refusal::BadFormat),
                "{bad}"
            );
        }
        // a leading zero is another spelling of the same number: refused
        let respelled = code.replacen("ZM1.1.", "ZM1.1.0", 1);
        assert_eq!(
            verify(respelled.as_bytes(), &keys, now),
            Err(Refusal::BadFormat)
        );
    }

    #[test]
    fn standing_decides_after_the_signature() {
        let ok = Validity {
            status: MemberStatus::Ok,
            valid_until: None,
            membership_until: None,
            tool_room_until: None,
            entry_days_left: Some(3),
        };
        assert_eq!(admits(&ok), Ok(()));
        let used_up = Validity {
            status: MemberStatus::NotOk,
            entry_days_left: Some(0),
            ..ok
        };
        assert_eq!(admits(&used_up), Err(Refusal::EntryDaysUsedUp));
        let expired = Validity {
            status: MemberStatus::NotOk,
            entry_days_left: None,
            ..ok
        };
        assert_eq!(admits(&expired), Err(Refusal::MemberNotOk));
        let gone = Validity {
            status: MemberStatus::Invalid,
            ..ok
        };
        assert_eq!(admits(&gone), Err(Refusal::MemberDeactivated));
    }

    #[test]
    fn hex_keys() {
        let s = signer("3", 4);
        let mut k = Keyring::new();
        k.insert_hex(s.key_id(), &s.public_key_hex()).unwrap();
        assert_eq!(k.len(), 1);
        assert!(k.insert_hex(s.key_id(), "00").is_err());
        assert!(parse_hex32(&"g".repeat(64)).is_err());
        assert!(KeyId::parse("A").is_err());
        assert!(KeyId::parse("10").is_err());
        assert_eq!(KeyId::parse("z").unwrap().to_string(), "z");
    }
}
