//! Random tokens for names and probe values (`/dev/urandom`, no extra crate).
//!
//! ```
//! let t = platform_acceptance::random::token(12);
//! assert_eq!(t.len(), 12);
//! assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
//! ```

use std::io::Read;

/// Alphanumeric token of `len` characters (rejection sampling, no modulo bias).
pub fn token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        f.read_exact(&mut buf).expect("read /dev/urandom");
        for b in buf {
            if (b as usize) < 248 && out.len() < len {
                out.push(ALPHABET[(b as usize) % 62] as char);
            }
        }
    }
    out
}
