//! Signing what Frontdesk sends a shop, so the shop can trust it: HMAC-SHA256
//! over the timestamp and the body with a secret both sides hold, and a
//! window that turns away old or replayed requests.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header with the Unix time, in seconds, the request was signed at.
pub const TIMESTAMP_HEADER: &str = "x-frontdesk-timestamp";
/// Header with `sha256=` and the hex HMAC of `"{timestamp}.{body}"`.
pub const SIGNATURE_HEADER: &str = "x-frontdesk-signature";
/// How far a request's timestamp may be from the receiver's clock.
pub const MAX_SKEW_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed")]
    Missing,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the request is too old or from the future (clock skew over {MAX_SKEW_SECS} s)")]
    Stale,
    #[error("the request was already received")]
    Replayed,
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a request's timestamp and signature headers against its body, at
/// `now` (Unix seconds). Replays are the caller's to refuse: a valid
/// signature is unique to its timestamp and body.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let timestamp: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Mismatch)?;
    let given = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Mismatch)?;
    // Constant-time comparison, before the clock is looked at.
    mac(secret, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)?;
    if now.abs_diff(timestamp) > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_signed_request_verifies_and_a_changed_one_does_not() {
        let sig = sign(b"secret", 1_000, b"{\"a\":1}");
        assert_eq!(
            verify(b"secret", Some("1000"), Some(&sig), b"{\"a\":1}", 1_010),
            Ok(())
        );
        assert_eq!(
            verify(b"secret", Some("1000"), Some(&sig), b"{\"a\":2}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some("1000"), Some(&sig), b"{\"a\":1}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", Some("1001"), Some(&sig), b"{\"a\":1}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"secret",
                Some("1000"),
                Some(&sig),
                b"{\"a\":1}",
                1_000 + MAX_SKEW_SECS + 1
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"secret", None, Some(&sig), b"{}", 1_000),
            Err(SignatureError::Missing)
        );
    }

    proptest! {
        #[test]
        fn any_header_text_is_refused_without_a_panic(ts in ".{0,30}", sig in ".{0,80}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let verdict = verify(b"secret", Some(&ts), Some(&sig), &body, 1_000);
            prop_assert!(verdict.is_err());
        }
    }
}
