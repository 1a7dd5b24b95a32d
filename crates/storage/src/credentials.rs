//! Secrets: API keys and member passwords. Only their hashes are stored.
//!
//! API keys are 256 random bits, so one SHA-256 is enough to make a stolen
//! database useless and keeps the per-request check cheap. Passwords are
//! chosen by people and are hashed with argon2id.
//!
//! argon2id needs 19 MiB of working memory per computation. The process
//! runs at most [`HASHING_SLOTS`] computations at once (callers beyond that
//! wait), each in memory of its own mapping that goes back to the system
//! when the computation ends. Requests from strangers (a login form, a client secret at the
//! token endpoint) do not wait: [`verify_password_admitted`] answers
//! [`Busy`] at once when [`ADMITTED`] checks are already running or queued,
//! before any hashing, so a flood costs neither memory nor a queue.
//! (Letting the allocator give each hashing thread its own 19 MiB was what
//! made a flood grow the process by a gigabyte: glibc keeps a freed chunk of
//! that size in each thread's arena.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest, Sha256};

use crate::StorageError;

/// The prefix of every API key, so that a leaked key is recognisable.
pub const API_KEY_PREFIX: &str = "zk_";

/// How many argon2id computations run at once (each holds 19 MiB).
pub const HASHING_SLOTS: usize = 2;

/// How many stranger-requested checks may be running or waiting at once;
/// beyond it [`verify_password_admitted`] answers [`Busy`].
pub const ADMITTED: usize = 8;

pub use zhima_domain::password::DEFAULT_PASSWORD;

/// Too many password checks are running or waiting: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

/// A fresh API key: the prefix and 64 hex digits (256 bits).
pub fn generate_api_key() -> Result<String, StorageError> {
    let bytes = random_bytes::<32>()?;
    Ok(format!("{API_KEY_PREFIX}{}", hex(&bytes)))
}

/// The stored form of an API key.
pub fn hash_api_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Hashes a password with argon2id (19 MiB, 2 passes) and a random salt, as
/// a PHC string. Waits for a hashing slot.
pub fn hash_password(password: &str) -> Result<String, StorageError> {
    hash_with(password, &Params::DEFAULT)
}

/// The hash stored for a new member's default password: argon2id with a
/// salt of the member's own but the smallest cost, since the password is
/// public anyway (the contract names it) and never opens a web login; the
/// salt only keeps such members from sharing one stored hash. A real
/// password replaces it with [`hash_password`]'s full cost.
pub fn hash_default_password() -> Result<String, StorageError> {
    let params = Params::new(Params::MIN_M_COST, 1, 1, Some(Params::DEFAULT_OUTPUT_LEN))
        .map_err(|_| StorageError::Hashing)?;
    hash_with(DEFAULT_PASSWORD, &params)
}

fn hash_with(password: &str, params: &Params) -> Result<String, StorageError> {
    let salt = random_bytes::<16>()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(password.as_bytes(), &salt, params, &mut out).map_err(|_| StorageError::Hashing)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| StorageError::Hashing)?;
    let out = Output::new(&out).map_err(|_| StorageError::Hashing)?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        out
    ))
}

/// Whether `password` matches a stored PHC hash. Waits for a hashing slot.
pub fn verify_password(password: &str, stored: &str) -> bool {
    verify(password, stored).unwrap_or(false)
}

/// [`verify_password`] for a request from someone not yet authenticated:
/// refused with [`Busy`] at once, before any hashing, when [`ADMITTED`]
/// checks are running or waiting. `stored` of `None` (an unknown account)
/// is checked against a dummy hash of the same cost and answers `false`, so
/// the answer takes as long whether or not the account exists.
pub fn verify_password_admitted(password: &str, stored: Option<&str>) -> Result<bool, Busy> {
    static GATE: Gate = Gate::new(ADMITTED);
    let _admitted = GATE.enter().ok_or(Busy)?;
    Ok(match stored {
        Some(stored) => verify_password(password, stored),
        None => {
            let _ = verify_password(password, dummy_hash());
            false
        }
    })
}

/// At most `limit` holders at once; entering never waits.
#[derive(Debug)]
struct Gate {
    in_flight: AtomicUsize,
    limit: usize,
}

/// A place inside a [`Gate`], left on drop.
#[derive(Debug)]
struct Entered<'a>(&'a Gate);

impl Gate {
    const fn new(limit: usize) -> Gate {
        Gate {
            in_flight: AtomicUsize::new(0),
            limit,
        }
    }

    fn enter(&self) -> Option<Entered<'_>> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()?;
        Some(Entered(self))
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A full-cost hash of a random password, for unknown accounts.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password = random_hex::<16>().unwrap_or_default();
        // a hash that fails to parse would make unknown names fast again
        hash_password(&password).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
             c29tZWhhc2hzb21laGFzaHNvbWVoYXNoc29tZWhhc2g"
                .to_owned()
        })
    })
}

fn verify(password: &str, stored: &str) -> Option<bool> {
    let phc = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(phc.algorithm).ok()?;
    let version = Version::try_from(phc.version.unwrap_or(0x13)).ok()?;
    let params = Params::try_from(&phc).ok()?;
    let expected = phc.hash?;
    let mut salt = [0u8; 64];
    let salt = phc.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    let params = Params::new(
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        Some(expected.len()),
    )
    .ok()?;
    if algorithm != Algorithm::Argon2id || version != Version::V0x13 {
        return None;
    }
    compute(password.as_bytes(), salt, &params, &mut out).ok()?;
    // Output's equality is constant-time
    Some(Output::new(&out).ok()? == expected)
}

/// Runs argon2id in one of the process's reusable working buffers.
fn compute(
    password: &[u8],
    salt: &[u8],
    params: &Params,
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let needed = params.block_count();
    if needed <= Params::MIN_M_COST as usize * 64 {
        // tiny (the default password): no slot, no shared buffer
        let mut blocks = vec![Block::default(); needed];
        return argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..]);
    }
    // a stored hash may ask for more memory than ours do; it is refused
    // rather than allocated, so no stored row can make a check costly
    if needed > Params::DEFAULT_M_COST as usize {
        return Err(argon2::Error::MemoryTooMuch);
    }
    let _slot = Slot::take();
    let mut blocks = working_memory(needed);
    argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..])
}

/// Working memory for `needed` blocks that goes back to the system when
/// dropped. Its capacity (34 MiB) is above glibc's largest mmap threshold
/// (32 MiB on 64-bit, 16 MiB on 32-bit), so the allocation is always its
/// own mapping, unmapped on free, and never parked in a thread's arena
/// (which is how 19 MiB per blocking thread once stayed resident for good).
/// Only the `needed` blocks are touched, so only they become resident.
fn working_memory(needed: usize) -> Vec<Block> {
    const UNMAPPED_ON_FREE: usize = 34 * 1024; // blocks of 1 KiB
    let mut blocks = Vec::with_capacity(UNMAPPED_ON_FREE.max(needed));
    blocks.resize(needed, Block::default());
    blocks
}

/// One of the [`HASHING_SLOTS`]: while held, its holder may hash.
struct Slot;

/// How many slots are taken, and a signal when one comes free.
fn slots() -> &'static (Mutex<usize>, Condvar) {
    static SLOTS: OnceLock<(Mutex<usize>, Condvar)> = OnceLock::new();
    SLOTS.get_or_init(|| (Mutex::new(0), Condvar::new()))
}

impl Slot {
    /// Waits for a free slot.
    fn take() -> Slot {
        let (taken, freed) = slots();
        let mut n = zhima_domain::sync::lock(taken);
        while *n >= HASHING_SLOTS {
            n = freed.wait(n).unwrap_or_else(PoisonError::into_inner);
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let (taken, freed) = slots();
        let mut n = zhima_domain::sync::lock(taken);
        *n -= 1;
        drop(n);
        freed.notify_one();
    }
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

/// Whether `a` and `b` are equal, in time that depends only on their
/// lengths (for comparing secrets and MACs).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Bytes as lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    // by table, not `write!("{b:02x}")`: every request with an API key or a
    // token hashes it, and the formatter cost more than the SHA-256
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_hash_is_the_lowercase_hex_sha256() {
        // FIPS 180-2's example digest of "abc"
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

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

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // ours verify with the argon2 crate's own verifier
        let ours = hash_password("correct horse").unwrap();
        let phc = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &phc)
            .is_ok());
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        // and the hashes stored by earlier versions verify with ours
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"older secret", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("older secret", &theirs));
        assert!(!verify_password("older secreT", &theirs));
    }

    #[test]
    fn each_default_password_hash_has_its_own_salt() {
        let a = hash_default_password().unwrap();
        let b = hash_default_password().unwrap();
        assert_ne!(a, b, "two members on the default password share no hash");
        assert!(verify_password(DEFAULT_PASSWORD, &a));
        assert!(verify_password(DEFAULT_PASSWORD, &b));
        assert!(!verify_password("password124", &a));
    }

    #[test]
    fn a_stored_hash_asking_for_more_memory_is_refused_not_allocated() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let params = Params::new(Params::DEFAULT_M_COST * 4, 1, 1, None).unwrap();
        let heavy =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(b"pw", &salt);
        // built with the crate's own hasher only to get a valid string
        let heavy = heavy.map(|h| h.to_string()).unwrap();
        assert!(!verify_password("pw", &heavy));
    }

    #[test]
    fn unknown_accounts_are_checked_against_a_dummy_and_refused() {
        // the dummy costs what a real password costs
        assert!(
            dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            dummy_hash()
        );
        assert_eq!(verify_password_admitted("anything", None), Ok(false));
        let h = hash_password("s3cret-enough").unwrap();
        assert_eq!(
            verify_password_admitted("s3cret-enough", Some(&h)),
            Ok(true)
        );
        assert_eq!(verify_password_admitted("wrong", Some(&h)), Ok(false));
    }

    #[test]
    fn the_gate_admits_its_limit_and_no_more() {
        let gate = Gate::new(2);
        let a = gate.enter();
        let b = gate.enter();
        assert!(a.is_some() && b.is_some());
        assert!(gate.enter().is_none(), "a third is refused at once");
        drop(a);
        assert!(gate.enter().is_some(), "a place left is free again");
    }

    #[test]
    fn no_more_than_the_slots_hash_at_once() {
        // many threads hashing at once: each finishes, and the slots taken
        // never pass the bound
        let handles: Vec<_> = (0..6)
            .map(|i| std::thread::spawn(move || hash_password(&format!("pw{i}")).unwrap()))
            .collect();
        let mut most = 0;
        while !handles.iter().all(std::thread::JoinHandle::is_finished) {
            most = most.max(*slots().0.lock().unwrap());
            std::thread::yield_now();
        }
        for h in handles {
            assert!(h.join().unwrap().starts_with("$argon2id$"));
        }
        // (other tests of this process hash at the same time: the bound
        // holds for all of them together)
        assert!(most <= HASHING_SLOTS, "{most} slots taken at once");
    }
}
