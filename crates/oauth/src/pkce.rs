//! PKCE (RFC 7636), S256 only, as RFC 9700 asks of every client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// 43 to 128 unreserved characters (RFC 7636 §4.1, §4.2).
fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The challenge an authorization request carries, to store with its code:
/// `Ok(None)` when there is none and the client may go without. Refused: a
/// missing challenge when the client must use PKCE, a method other than
/// `S256` (an absent method means `plain`), a method without a challenge,
/// and a challenge that is not 43 to 128 unreserved characters.
pub(crate) fn challenge(
    required: bool,
    method: Option<&str>,
    challenge: Option<&str>,
) -> Result<Option<String>, ()> {
    match (method, challenge) {
        (None, None) if !required => Ok(None),
        (Some("S256"), Some(c)) if well_formed(c) => Ok(Some(c.to_owned())),
        _ => Err(()),
    }
}

/// Whether a token request's `code_verifier` fits the challenge stored
/// with the code: none on either side (a client exempt from PKCE), or a
/// well-formed verifier whose S256 is the challenge. A verifier for a code
/// issued without a challenge is refused: that is a downgrade.
pub(crate) fn verify(stored: Option<&str>, verifier: Option<&str>) -> bool {
    match (stored, verifier) {
        (None, None) => true,
        (Some(challenge), Some(verifier)) if well_formed(verifier) => {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 appendix B
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn only_well_formed_s256_challenges_are_taken() {
        assert_eq!(
            challenge(true, Some("S256"), Some(CHALLENGE)),
            Ok(Some(CHALLENGE.to_owned()))
        );
        assert_eq!(challenge(false, None, None), Ok(None), "an exempt client");
        assert!(challenge(true, None, None).is_err(), "required");
        assert!(challenge(true, Some("plain"), Some(CHALLENGE)).is_err());
        assert!(
            challenge(true, None, Some(CHALLENGE)).is_err(),
            "plain by default"
        );
        assert!(challenge(false, Some("S256"), None).is_err());
        assert!(challenge(true, Some("S256"), Some("short")).is_err());
        assert!(challenge(true, Some("S256"), Some(&"a".repeat(129))).is_err());
        assert!(challenge(true, Some("S256"), Some(&format!("{}+", &CHALLENGE[1..]))).is_err());
    }

    #[test]
    fn verifiers_match_their_challenge_and_never_downgrade() {
        assert!(verify(Some(CHALLENGE), Some(VERIFIER)));
        assert!(!verify(Some(CHALLENGE), Some(&VERIFIER.replace('d', "e"))));
        assert!(
            !verify(Some(CHALLENGE), None),
            "a challenge needs its verifier"
        );
        assert!(
            !verify(None, Some(VERIFIER)),
            "a verifier without a challenge"
        );
        assert!(verify(None, None));
        // too short or too long, even if it were to hash right
        assert!(!verify(Some(CHALLENGE), Some("abc")));
        assert!(!verify(Some(CHALLENGE), Some(&"a".repeat(129))));
    }
}
