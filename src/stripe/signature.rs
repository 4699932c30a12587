//! Stripe's webhook signatures: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//! where each `v1` is HMAC-SHA256 of `"{t}.{raw body}"` under an endpoint secret. Several
//! secrets may be live at once (rotation); a signature under any of them is accepted, within
//! a tolerance around the current time (replay protection).

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed Stripe-Signature header")]
    Malformed,
    #[error("signature timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches a configured secret")]
    Mismatch,
}

/// Checks `header` for `body` at `now` (unix seconds).
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[String],
    tolerance_seconds: i64,
    now: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.extend(hex::decode(sig).ok()),
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    if (now - t).abs() > tolerance_seconds {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        for sig in &signatures {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                continue;
            };
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            // Constant-time comparison.
            if mac.verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// Signs `body` the way Stripe does; for tests and local tools.
pub fn sign(body: &[u8], secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn accepts_any_live_secret_within_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, "whsec_new", NOW - 10);
        let secrets = ["whsec_old".to_owned(), "whsec_new".to_owned()];
        assert_eq!(verify(&header, body, &secrets, 300, NOW), Ok(()));
    }

    #[test]
    fn refuses_tampered_stale_or_malformed() {
        let body = br#"{"id":"evt_1"}"#;
        let secrets = ["whsec_a".to_owned()];
        let header = sign(body, "whsec_a", NOW);
        assert_eq!(
            verify(&header, br#"{"id":"evt_2"}"#, &secrets, 300, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&header, body, &secrets, 300, NOW + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("t=1", body, &secrets, 300, NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(&sign(body, "whsec_other", NOW), body, &secrets, 300, NOW),
            Err(SignatureError::Mismatch)
        );
    }
}
