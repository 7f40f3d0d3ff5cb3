//! Key derivation and payload encryption.
//!
//! key = MD5(token), iv = MD5(key ‖ token), AES-128-CBC with PKCS#7 padding.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use md5::{Digest, Md5};

use super::token::Token;

type Enc = cbc::Encryptor<aes::Aes128>;
type Dec = cbc::Decryptor<aes::Aes128>;

/// MD5 of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// MD5 over several slices, as if concatenated.
pub fn md5_parts(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The AES key and IV derived from a token.
#[derive(Clone)]
pub struct Keys {
    /// MD5(token).
    pub key: [u8; 16],
    /// MD5(key ‖ token).
    pub iv: [u8; 16],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    /// Derive key and IV from a token.
    pub fn derive(token: &Token) -> Self {
        let key = md5(token.as_bytes());
        let mut h = Md5::new();
        h.update(key);
        h.update(token.as_bytes());
        Keys {
            key,
            iv: h.finalize().into(),
        }
    }

    /// Encrypt with PKCS#7 padding.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        Enc::new(&self.key.into(), &self.iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
    }

    /// Encrypt `buf[..len]` in place; `buf` must be exactly the padded
    /// length (`(len / 16 + 1) * 16`).
    pub fn encrypt_in_place(&self, buf: &mut [u8], len: usize) {
        // The buffer is sized by the caller for PKCS#7; a mismatch would be
        // a programming error, and leaves the buffer unencrypted-zero.
        let _ = Enc::new(&self.key.into(), &self.iv.into()).encrypt_padded_mut::<Pkcs7>(buf, len);
    }

    /// Decrypt and remove PKCS#7 padding. Fails on a length that is not a
    /// whole number of blocks or on bad padding.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
            return Err(CryptoError::Length(ciphertext.len()));
        }
        Dec::new(&self.key.into(), &self.iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| CryptoError::Padding)
    }
}

/// Decryption failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Ciphertext is not a positive multiple of 16 bytes.
    #[error("ciphertext length {0} is not a positive multiple of 16")]
    Length(usize),
    /// PKCS#7 padding is invalid (usually a wrong token).
    #[error("invalid padding after decryption (wrong token?)")]
    Padding,
}
