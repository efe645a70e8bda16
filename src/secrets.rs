//! Provider secrets at rest: sealed with XChaCha20-Poly1305 (RustCrypto) under a keyring.
//!
//! The keyring is configured as `id:base64key` entries (32-byte keys); the first one seals, any
//! of them opens, and each sealed value records the id of its key. Rotating is adding a new key
//! in front, running `neuronx secrets rotate` to reseal everything under it, then dropping the
//! old key. Keys come from configuration or `NEURONX_SECRET_KEYS`, never from the database.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use sha2::Digest as _;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no encryption key is configured: set NEURONX_SECRET_KEYS (id:base64 of 32 bytes)")]
    NoKey,
    #[error("invalid key entry {0:?}: expected id:base64 of 32 bytes")]
    BadKey(String),
    #[error("the secret was sealed with key {0:?}, which is not in the keyring")]
    UnknownKey(String),
    #[error("the sealed secret is damaged or the key is wrong")]
    Damaged,
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
    /// For signing links (HMAC-SHA256): derived from the key under its own label, so the
    /// sealing key itself is never used for anything else.
    mac: [u8; 32],
}

/// HMAC-SHA256.
type Mac = hmac::Hmac<sha2::Sha256>;

/// The keyring. Its Debug shows key ids only.
#[derive(Default)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

/// A sealed secret: the key's id and base64(nonce ‖ ciphertext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub data: String,
}

impl Keyring {
    /// Parses `id:base64` entries; the first seals.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, SecretError> {
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (id, b64) = entry
                .split_once(':')
                .ok_or_else(|| SecretError::BadKey(redacted(entry)))?;
            let bytes = B64
                .decode(b64)
                .map_err(|_| SecretError::BadKey(redacted(entry)))?;
            if id.is_empty() || bytes.len() != 32 {
                return Err(SecretError::BadKey(redacted(entry)));
            }
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| SecretError::BadKey(redacted(entry)))?;
            let mac = sha2::Sha256::new()
                .chain_update(b"neuronx link signing v1\0")
                .chain_update(&bytes)
                .finalize()
                .into();
            keys.push(Key {
                id: id.to_owned(),
                cipher,
                mac,
            });
        }
        Ok(Self { keys })
    }

    /// A fresh random key entry, for `neuronx secrets new-key` and the demo.
    pub fn generate_entry(id: &str) -> String {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        format!("{id}:{}", B64.encode(key))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn current_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    pub fn seal(&self, plaintext: &str) -> Result<Sealed, SecretError> {
        let key = self.keys.first().ok_or(SecretError::NoKey)?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = key
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .map_err(|_| SecretError::Damaged)?;
        let mut data = nonce.to_vec();
        data.extend_from_slice(&ct);
        Ok(Sealed {
            key_id: key.id.clone(),
            data: B64.encode(data),
        })
    }

    /// Signs `message` with the current key: the key's id and the HMAC-SHA256 tag.
    pub fn sign(&self, message: &[u8]) -> Result<(String, [u8; 32]), SecretError> {
        let key = self.keys.first().ok_or(SecretError::NoKey)?;
        let mut mac =
            <Mac as hmac::Mac>::new_from_slice(&key.mac).map_err(|_| SecretError::NoKey)?;
        hmac::Mac::update(&mut mac, message);
        Ok((key.id.clone(), hmac::Mac::finalize(mac).into_bytes().into()))
    }

    /// Whether `tag` is the tag of `message` under the key named `key_id` (compared in
    /// constant time). An unknown key verifies nothing.
    pub fn verify(&self, key_id: &str, message: &[u8], tag: &[u8]) -> bool {
        let Some(key) = self.keys.iter().find(|k| k.id == key_id) else {
            return false;
        };
        let Ok(mut mac) = <Mac as hmac::Mac>::new_from_slice(&key.mac) else {
            return false;
        };
        hmac::Mac::update(&mut mac, message);
        hmac::Mac::verify_slice(mac, tag).is_ok()
    }

    /// Whether `tag` is the first bytes (at least 10) of the tag of `message` under any key of
    /// the ring, compared in constant time: a tag short enough for an email address carries no
    /// key id, and a rotated ring still knows the old key.
    pub fn verify_truncated_any(&self, message: &[u8], tag: &[u8]) -> bool {
        if tag.len() < 10 {
            return false;
        }
        self.keys.iter().any(|key| {
            let Ok(mut mac) = <Mac as hmac::Mac>::new_from_slice(&key.mac) else {
                return false;
            };
            hmac::Mac::update(&mut mac, message);
            hmac::Mac::verify_truncated_left(mac, tag).is_ok()
        })
    }

    pub fn open(&self, sealed: &Sealed) -> Result<String, SecretError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| SecretError::UnknownKey(sealed.key_id.clone()))?;
        let raw = B64.decode(&sealed.data).map_err(|_| SecretError::Damaged)?;
        if raw.len() < 24 {
            return Err(SecretError::Damaged);
        }
        let (nonce, ct) = raw.split_at(24);
        let pt = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Damaged)?;
        String::from_utf8(pt).map_err(|_| SecretError::Damaged)
    }
}

/// An entry with its key material hidden, for error messages.
fn redacted(entry: &str) -> String {
    match entry.split_once(':') {
        Some((id, _)) => format!("{id}:***"),
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_not_another() {
        let a = Keyring::generate_entry("a");
        let b = Keyring::generate_entry("b");
        let ring = Keyring::parse([a.as_str()]).unwrap();
        let sealed = ring.seal("token-123").unwrap();
        assert_eq!(sealed.key_id, "a");
        assert!(!sealed.data.contains("token-123"));
        assert_eq!(ring.open(&sealed).unwrap(), "token-123");
        let other = Keyring::parse([b.as_str()]).unwrap();
        assert!(matches!(
            other.open(&sealed),
            Err(SecretError::UnknownKey(_))
        ));
        // A key with the right id but other material cannot open it.
        let impostor = Keyring::parse([b.replacen('b', "a", 1).as_str()]).unwrap();
        assert!(matches!(impostor.open(&sealed), Err(SecretError::Damaged)));
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_still_opens_old_secrets() {
        let old = Keyring::generate_entry("old");
        let new = Keyring::generate_entry("new");
        let before = Keyring::parse([old.as_str()]).unwrap();
        let sealed_old = before.seal("s").unwrap();
        let ring = Keyring::parse([new.as_str(), old.as_str()]).unwrap();
        assert_eq!(ring.open(&sealed_old).unwrap(), "s");
        assert_eq!(ring.seal("s").unwrap().key_id, "new");
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_the_key() {
        let err = Keyring::parse(["k1:c2hvcnQ="]).unwrap_err().to_string();
        assert!(err.contains("k1:***") && !err.contains("c2hvcnQ"), "{err}");
        assert!(Keyring::parse(["nocolon"]).is_err());
        assert!(matches!(
            Keyring::default().seal("x"),
            Err(SecretError::NoKey)
        ));
    }
}
