//! RC4 as the Xiaomi app API uses it ("RC4-drop"): the key is the raw
//! signed nonce and the first [`XIAOMI_DROP`] keystream bytes are discarded.
//!
//! RC4 is broken as a cipher; it is here only because the cloud API speaks
//! it. Nothing else in mijia should use it. The key stream is applied in
//! place, so encryption and decryption are the same operation.

use super::error::SignError;

/// Keystream bytes the Xiaomi API discards before use.
pub const XIAOMI_DROP: usize = 1024;

/// An RC4 keystream generator.
#[derive(Clone)]
pub struct Rc4 {
    state: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// A cipher keyed with `key` (1 to 256 bytes) whose first `drop`
    /// keystream bytes have already been discarded.
    pub fn new(key: &[u8], drop: usize) -> Result<Self, SignError> {
        if key.is_empty() || key.len() > 256 {
            return Err(SignError::Rc4KeyLength { len: key.len() });
        }
        let mut state = [0u8; 256];
        for (slot, value) in state.iter_mut().zip(0u8..=255) {
            *slot = value;
        }
        let mut j: u8 = 0;
        for (i, k) in (0..256usize).zip(key.iter().cycle()) {
            j = j.wrapping_add(state[i]).wrapping_add(*k);
            state.swap(i, usize::from(j));
        }
        let mut cipher = Rc4 { state, i: 0, j: 0 };
        for _ in 0..drop {
            cipher.next_byte();
        }
        Ok(cipher)
    }

    fn next_byte(&mut self) -> u8 {
        self.i = self.i.wrapping_add(1);
        let si = self.state[usize::from(self.i)];
        self.j = self.j.wrapping_add(si);
        self.state.swap(usize::from(self.i), usize::from(self.j));
        let t = self.state[usize::from(self.i)].wrapping_add(self.state[usize::from(self.j)]);
        self.state[usize::from(t)]
    }

    /// XORs the keystream into `data` (encrypts or decrypts).
    pub fn apply(&mut self, data: &mut [u8]) {
        for byte in data {
            *byte ^= self.next_byte();
        }
    }
}

impl std::fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rc4(<keyed>)")
    }
}

/// Encrypts or decrypts `data` with a fresh cipher keyed by `key`, dropping
/// `drop` keystream bytes first.
pub fn rc4_apply(key: &[u8], drop: usize, data: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut out = data.to_vec();
    Rc4::new(key, drop)?.apply(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Classic RC4 test vectors (no drop).
    #[test]
    fn known_answers_without_drop() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (b"Key", b"Plaintext", "bbf316e8d940af0ad3"),
            (b"Wiki", b"pedia", "1021bf0420"),
            (b"Secret", b"Attack at dawn", "45a01f645fc35b383552544b9bf5"),
        ];
        for (key, plain, cipher) in cases {
            let out = rc4_apply(key, 0, plain).unwrap();
            assert_eq!(hex::encode(&out), cipher);
            assert_eq!(rc4_apply(key, 0, &out).unwrap(), plain);
        }
    }

    #[test]
    fn drop_skips_keystream() {
        let key = b"Key";
        let long = rc4_apply(key, 0, &[0u8; 1030]).unwrap();
        let dropped = rc4_apply(key, XIAOMI_DROP, &[0u8; 6]).unwrap();
        assert_eq!(&long[1024..], dropped.as_slice());
        assert_ne!(&long[..6], dropped.as_slice());
    }

    #[test]
    fn rejects_bad_key_lengths() {
        assert_eq!(
            Rc4::new(&[], 0).unwrap_err(),
            SignError::Rc4KeyLength { len: 0 }
        );
        assert!(Rc4::new(&[1u8; 257], 0).is_err());
        assert!(Rc4::new(&[1u8; 256], 0).is_ok());
    }
}
