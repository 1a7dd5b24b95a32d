//! Secrets: API keys and member passwords. Only their hashes are stored.
//!
//! API keys are 256 random bits, so one SHA-256 is enough to make a stolen
//! database useless and keeps the per-request check cheap. Passwords are
//! chosen by people and are hashed with argon2id.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::StorageError;

/// The prefix of every API key, so that a leaked key is recognisable.
pub const API_KEY_PREFIX: &str = "zk_";

/// A fresh API key: the prefix and 64 hex digits (256 bits).
pub fn generate_api_key() -> Result<String, StorageError> {
    let bytes = random_bytes::<32>()?;
    Ok(format!("{API_KEY_PREFIX}{}", hex(&bytes)))
}

/// The stored form of an API key.
pub fn hash_api_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, StorageError> {
    let salt_bytes = random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| StorageError::Hashing)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| StorageError::Hashing)
}

/// Whether `password` matches a stored PHC hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// `N` random bytes as hex digits.
pub fn random_hex<const N: usize>() -> Result<String, StorageError> {
    Ok(hex(&random_bytes::<N>()?))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], StorageError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| StorageError::Hashing)?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_random_and_hash_stably() {
        let a = generate_api_key().unwrap();
        let b = generate_api_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 64);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
        assert!(!hash_api_key(&a).contains(&a[3..]));
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("password123").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("password123"));
        assert!(verify_password("password123", &h));
        assert!(!verify_password("password124", &h));
        assert!(!verify_password("password123", "not a hash"));
        assert_ne!(h, hash_password("password123").unwrap(), "salted");
    }
}
