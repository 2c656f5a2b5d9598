//! Signing what Frontdesk sends a shop, so the shop can trust it: HMAC-SHA256
//! over the timestamp, a nonce and the body with a secret both sides hold,
//! and a window that turns away old requests; the shop refuses a nonce it
//! has seen within it (a replay). Two identical lookups in one second are
//! two requests: the nonce, not the signature, tells them apart.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header with the Unix time, in seconds, the request was signed at.
pub const TIMESTAMP_HEADER: &str = "x-frontdesk-timestamp";
/// Header with a value unique to each request (a UUID).
pub const NONCE_HEADER: &str = "x-frontdesk-nonce";
/// Header with `sha256=` and the hex HMAC of `"{timestamp}.{nonce}.{body}"`.
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

fn mac(secret: &[u8], timestamp: u64, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(nonce.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` signed at `timestamp` with `nonce`.
pub fn sign(secret: &[u8], timestamp: u64, nonce: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, nonce, body).finalize().into_bytes())
    )
}

/// The headers of one signed request: timestamp, nonce, signature.
pub fn headers(secret: &[u8], body: &[u8]) -> [(&'static str, String); 3] {
    let now = unix_now();
    let nonce = uuid::Uuid::new_v4().to_string();
    let signature = sign(secret, now, &nonce, body);
    [
        (TIMESTAMP_HEADER, now.to_string()),
        (NONCE_HEADER, nonce),
        (SIGNATURE_HEADER, signature),
    ]
}

/// A request's signing headers, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signed<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a request's headers against its body, at `now` (Unix seconds).
/// Replays are the caller's to refuse, by the nonce, once this passes.
pub fn verify(
    secret: &[u8],
    signed: Signed<'_>,
    body: &[u8],
    now: u64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(nonce), Some(signature)) =
        (signed.timestamp, signed.nonce, signed.signature)
    else {
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
    mac(secret, timestamp, nonce, body)
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

    fn signed<'a>(ts: &'a str, nonce: &'a str, sig: &'a str) -> Signed<'a> {
        Signed {
            timestamp: Some(ts),
            nonce: Some(nonce),
            signature: Some(sig),
        }
    }

    #[test]
    fn a_signed_request_verifies_and_a_changed_one_does_not() {
        let sig = sign(b"secret", 1_000, "n1", b"{\"a\":1}");
        let ok =
            |ts, nonce, body: &[u8], now| verify(b"secret", signed(ts, nonce, &sig), body, now);
        assert_eq!(ok("1000", "n1", b"{\"a\":1}", 1_010), Ok(()));
        assert_eq!(
            ok("1000", "n1", b"{\"a\":2}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok("1001", "n1", b"{\"a\":1}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok("1000", "n2", b"{\"a\":1}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok("1000", "n1", b"{\"a\":1}", 1_000 + MAX_SKEW_SECS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"other", signed("1000", "n1", &sig), b"{\"a\":1}", 1_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", Signed::default(), b"{}", 1_000),
            Err(SignatureError::Missing)
        );
    }

    proptest! {
        #[test]
        fn any_header_text_is_refused_without_a_panic(ts in ".{0,30}", nonce in ".{0,40}", sig in ".{0,80}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let verdict = verify(b"secret", signed(&ts, &nonce, &sig), &body, 1_000);
            prop_assert!(verdict.is_err());
        }
    }
}
