//! The order contract end to end: Frontdesk's signed connector against the
//! demo shop this server serves, and the demo shop's signature checks
//! against requests an attacker could send.

use frontdesk::orders::signature::{self, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use frontdesk::orders::{ConnectorError, LookupRequest, OrderStatus};
use tempfile::TempDir;

use crate::helpers::{AppOptions, TestApp, spawn_app_with};

const SECRET: &str = "a-test-secret";

async fn app() -> TestApp {
    spawn_app_with(
        AppOptions {
            configure: |c| c.connector_secret = Some(SECRET.into()),
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await
}

fn lookup(number: &str, verifier: &str) -> LookupRequest {
    LookupRequest {
        order_number: number.into(),
        verifier: verifier.into(),
    }
}

#[tokio::test]
async fn the_connector_looks_up_a_demo_order_for_whoever_placed_it_and_nobody_else() {
    let app = app().await;
    let orders = app
        .state
        .orders
        .clone()
        .expect("the demo shop is connected");
    let shipped = orders
        .lookup(&lookup("LO-10482002", "Ben.Jansen@example.com"))
        .await
        .unwrap();
    assert_eq!(shipped.status, OrderStatus::Shipped);
    assert_eq!(shipped.carrier.as_deref(), Some("PostNL"));
    assert!(shipped.tracking_url.unwrap().starts_with("https://"));
    assert!(shipped.delivery_window.is_some());
    // The postcode proves it too, in any case or spacing.
    let by_postcode = orders
        .lookup(&lookup("lo-10482002", "1012js"))
        .await
        .unwrap();
    assert_eq!(by_postcode.number, "LO-10482002");
    assert_eq!(
        orders
            .lookup(&lookup("LO-10482002", "someone@example.com"))
            .await,
        Err(ConnectorError::NotVerified)
    );
    assert_eq!(
        orders.lookup(&lookup("LO-99999999", "1012 JS")).await,
        Err(ConnectorError::NotFound)
    );
}

#[tokio::test]
async fn the_demo_shop_refuses_unsigned_tampered_stale_and_replayed_requests() {
    let app = app().await;
    let client = reqwest::Client::new();
    let url = app.url("/demo-shop/orders/lookup");
    let body = serde_json::to_vec(&lookup("LO-10482002", "1012 JS")).unwrap();
    let send = |timestamp: u64, nonce: &str, signature: String, body: Vec<u8>| {
        client
            .post(&url)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(NONCE_HEADER, nonce)
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
    };
    let now = signature::unix_now();
    let signed = signature::sign(SECRET.as_bytes(), now, "n1", &body);

    let unsigned = client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let error: serde_json::Value = unsigned.json().await.unwrap();
    assert_eq!(error["error"], "bad_signature");

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let status = |r: reqwest::Result<reqwest::Response>| r.unwrap().status();
    assert_eq!(status(send(now, "n1", signed.clone(), tampered).await), 401);
    // Another nonce under the same signature.
    assert_eq!(
        status(send(now, "n2", signed.clone(), body.clone()).await),
        401
    );

    let wrong_key = signature::sign(b"another secret", now, "n1", &body);
    assert_eq!(status(send(now, "n1", wrong_key, body.clone()).await), 401);

    let old = now - 3_600;
    let stale = signature::sign(SECRET.as_bytes(), old, "n3", &body);
    assert_eq!(status(send(old, "n3", stale, body.clone()).await), 401);

    assert_eq!(
        status(send(now, "n1", signed.clone(), body.clone()).await),
        200
    );
    // The very same request again is a replay.
    assert_eq!(status(send(now, "n1", signed, body.clone()).await), 401);
    // The same question with a new nonce, in the same second, is answered.
    let again = signature::sign(SECRET.as_bytes(), now, "n4", &body);
    assert_eq!(status(send(now, "n4", again, body.clone()).await), 200);
}
