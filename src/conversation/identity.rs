//! Who a shop's site says the customer is. A site that has signed its
//! customer in passes the customer's id and e-mail address to the widget
//! with an HMAC-SHA256 of them under a secret only the site and Frontdesk
//! hold (Intercom's identity verification works the same way), so a
//! visitor cannot claim to be someone else by editing the page.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::storage::shop_records::Customer;

/// An identity as the widget sends it in `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub customer_id: String,
    pub email: String,
    /// Hex HMAC-SHA256 of `"{customer_id}\n{email}"`.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("this server does not accept customer identities (no identity_secret)")]
    NotAccepted,
    #[error("the identity's signature does not match")]
    BadSignature,
    #[error("the identity's customer_id or email is empty, too long or has a line break")]
    Malformed,
}

/// Longest customer id or e-mail address taken.
const MAX_FIELD: usize = 320;

/// What the site signs: the id and the address, a line apart.
fn mac(secret: &[u8], customer_id: &str, email: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{customer_id}\n{email}").as_bytes());
    mac
}

/// The signature a shop's site computes (also for tests and docs).
pub fn sign(secret: &[u8], customer_id: &str, email: &str) -> String {
    hex::encode(mac(secret, customer_id, email).finalize().into_bytes())
}

/// The customer `identity` names, if `secret` signed it.
pub fn verify(secret: Option<&[u8]>, identity: &Identity) -> Result<Customer, IdentityError> {
    let secret = secret.ok_or(IdentityError::NotAccepted)?;
    let field_ok =
        |f: &str| !f.trim().is_empty() && f.len() <= MAX_FIELD && !f.contains(['\n', '\r']);
    if !field_ok(&identity.customer_id) || !field_ok(&identity.email) {
        return Err(IdentityError::Malformed);
    }
    let given = hex::decode(identity.signature.trim()).map_err(|_| IdentityError::BadSignature)?;
    // Constant-time comparison.
    mac(secret, &identity.customer_id, &identity.email)
        .verify_slice(&given)
        .map_err(|_| IdentityError::BadSignature)?;
    Ok(Customer {
        id: identity.customer_id.clone(),
        email: identity.email.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(signature: String) -> Identity {
        Identity {
            customer_id: "c-42".into(),
            email: "gwen.visser@example.com".into(),
            signature,
        }
    }

    #[test]
    fn a_signed_identity_is_accepted_and_a_forged_one_refused() {
        let secret = b"site secret".as_slice();
        let good = identity(sign(secret, "c-42", "gwen.visser@example.com"));
        assert_eq!(verify(Some(secret), &good).unwrap().id, "c-42");
        let mut other_email = good.clone();
        other_email.email = "eve@example.com".into();
        assert_eq!(
            verify(Some(secret), &other_email),
            Err(IdentityError::BadSignature)
        );
        let forged = identity(sign(b"a guess", "c-42", "gwen.visser@example.com"));
        assert_eq!(
            verify(Some(secret), &forged),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            verify(Some(secret), &identity("zz".into())),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(verify(None, &good), Err(IdentityError::NotAccepted));
        // A line break would let "a\nb" + "c" sign as "a" + "b\nc".
        let mut split = good.clone();
        split.customer_id = "c-42\ngwen".into();
        assert_eq!(verify(Some(secret), &split), Err(IdentityError::Malformed));
    }
}
