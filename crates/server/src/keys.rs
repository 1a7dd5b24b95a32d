//! The QR signing key: given in the configuration, or kept in a file that is
//! created (mode 0600) on first start.

use std::io::Write as _;
use std::path::Path;

use zhima_domain::qr::{parse_hex32, Keyring, Signer};
use zhima_http::qr::QrState;

use crate::settings::{KeySource, QrSettings};

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("qr.key_file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not hold a key, or others may read it.
    #[error("qr.key_file {path}: {reason}")]
    Bad {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn random_seed() -> Result<[u8; 32], KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Io {
        path: "(random source)".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(seed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the seed from `path`, creating the file with a fresh random seed
/// (mode 0600, never overwriting) if it does not exist. Refuses a file that
/// others may read.
pub fn load_or_create(path: &Path) -> Result<[u8; 32], KeyError> {
    let shown = path.display().to_string();
    let io = |source| KeyError::Io {
        path: shown.clone(),
        source,
    };
    if !path.exists() {
        let seed = random_seed()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(format!("{}\n", hex(&seed)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        tracing::info!(file = %shown, "created a new QR signing key");
        return Ok(seed);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Bad {
                path: shown,
                reason: format!(
                    "other users may read it (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                ),
            });
        }
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse_hex32(&text).map_err(|e| KeyError::Bad {
        path: shown,
        reason: e.to_string(),
    })
}

/// The signing seed the settings name.
pub fn seed(settings: &QrSettings) -> Result<[u8; 32], KeyError> {
    match &settings.key {
        KeySource::Given(seed) => Ok(*seed),
        KeySource::File(path) => load_or_create(path),
    }
}

/// The QR state: the signer, and a keyring of its public key plus the older
/// ones configured.
pub fn qr_state(settings: &QrSettings) -> Result<QrState, KeyError> {
    Ok(qr_state_from_seed(settings, &seed(settings)?))
}

/// As [`qr_state`], from a seed already read.
pub fn qr_state_from_seed(settings: &QrSettings, seed: &[u8; 32]) -> QrState {
    let seed = *seed;
    let signer = Signer::from_seed(settings.key_id, &seed);
    let mut keyring: Keyring = settings.public_keys.clone();
    keyring.insert(signer.key_id(), signer.verifying_key());
    QrState::new(
        signer,
        &seed,
        keyring,
        settings.image_link_ttl,
        settings.entry,
        settings.replay_window,
    )
}

/// The key of the OAuth pages' tickets, derived from the signing seed under
/// its own label (so it is neither the signing key nor the image-link key).
pub fn ticket_key(seed: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(b"zhima oauth ticket v1\0")
        .chain_update(seed)
        .finalize()
        .into()
}

/// The key webhook secrets are derived from: a hash of the QR signing seed
/// under its own label (servers sharing a seed share webhooks' secrets).
pub fn webhook_key(settings: &QrSettings) -> Result<zhima_app::webhooks::WebhookKey, KeyError> {
    Ok(webhook_key_from_seed(&seed(settings)?))
}

/// As [`webhook_key`], from a seed already read.
pub fn webhook_key_from_seed(seed: &[u8; 32]) -> zhima_app::webhooks::WebhookKey {
    use sha2::{Digest, Sha256};
    let key: [u8; 32] = Sha256::new()
        .chain_update(b"zhima webhook key v1\0")
        .chain_update(seed)
        .finalize()
        .into();
    zhima_app::webhooks::WebhookKey::new(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("zhima-key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("qr.key");
        let _ = std::fs::remove_file(&path);
        let first = load_or_create(&path).unwrap();
        let again = load_or_create(&path).unwrap();
        assert_eq!(first, again, "the same key on the next start");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_or_create(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(load_or_create(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
