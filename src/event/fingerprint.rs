//! Fingerprints: repeats of one error share one.

use sha2::{Digest, Sha256};

/// Groups repeats of one error: same type, same message up to numbers, same place.
pub(super) fn fingerprint(kind: Option<&str>, message: &str, location: Option<&str>, stack: Option<&str>) -> String {
    let message: String = message.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
    let place = location.or_else(|| stack.and_then(|s| s.lines().map(str::trim).find(|l| !l.is_empty()))).unwrap_or("");
    let mut hash = Sha256::new();
    for part in [kind.unwrap_or(""), &message, place] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}
