//! The QR payload parser and verifier on any bytes: never a panic, and never
//! an acceptance of anything but a code signed with the key (an arbitrary
//! input cannot carry a valid Ed25519 signature).
#![no_main]

use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use zhima_domain::qr::{self, KeyId, Keyring, Signer};

fuzz_target!(|data: &[u8]| {
    let signer = Signer::from_seed(KeyId::parse("1").unwrap(), &[7; 32]);
    let mut keyring = Keyring::new();
    keyring.insert(signer.key_id(), signer.verifying_key());
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    assert!(qr::verify(data, &keyring, now).is_err());
    // the same bytes behind a well-formed prefix reach the field parsers
    let mut framed = b"ZM1.1.".to_vec();
    framed.extend_from_slice(data);
    assert!(qr::verify(&framed, &keyring, now).is_err());
});
