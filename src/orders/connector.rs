//! The client side of the shop contract: signed requests, a timeout on
//! each, a few retries for lookups (they change nothing), and a circuit
//! breaker so a shop that is down costs a customer one quick "I can't
//! reach our order system" instead of a stalled chat.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::signature;
use super::{LookupRequest, Order, ReturnReceipt, ReturnRequest, ShopError, ShopErrorCode};

#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// The shop's base URL; the contract's paths are under it.
    pub base_url: String,
    pub secret: Vec<u8>,
    /// Per request, connecting included.
    pub timeout: Duration,
    /// Extra tries of a lookup after a timeout or a 5xx.
    pub retries: u32,
    /// Failed calls in a row that open the breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before trying one again.
    pub breaker_cooldown: Duration,
}

impl ConnectorConfig {
    pub fn new(base_url: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        ConnectorConfig {
            base_url: base_url.into(),
            secret: secret.into(),
            timeout: Duration::from_secs(3),
            retries: 2,
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// Why an order could not be looked up; each has its own reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("the shop has no order with that number")]
    NotFound,
    #[error("the e-mail address or postcode does not match the order")]
    NotVerified,
    #[error("the shop does not allow that for this order")]
    NotAllowed,
    /// The shop turned the request away (a wrong secret or URL): a
    /// configuration problem, logged for the operator.
    #[error("the shop refused the request: {0}")]
    Refused(String),
    #[error("the shop could not be reached: {0}")]
    Unavailable(String),
    #[error("the shop could not be reached recently; not trying again yet")]
    CircuitOpen,
}

impl ConnectorError {
    /// Worth another try: nothing reached the shop, or it failed inside.
    fn is_transient(&self) -> bool {
        matches!(self, ConnectorError::Unavailable(_))
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct ShopConnector {
    config: ConnectorConfig,
    client: reqwest::Client,
    breaker: Mutex<Breaker>,
}

impl ShopConnector {
    pub fn new(config: ConnectorConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .expect("a client with timeouts only");
        ShopConnector {
            config,
            client,
            breaker: Mutex::default(),
        }
    }

    /// The shop's order `request.order_number`, if `request.verifier` is the
    /// e-mail address or postcode it was placed with.
    pub async fn lookup(&self, request: &LookupRequest) -> Result<Order, ConnectorError> {
        self.call("orders/lookup", request, self.config.retries)
            .await
    }

    /// Asks the shop to cancel the order; the order as it is afterwards.
    /// Tried once: a request that changes something is not repeated on a
    /// timeout, since the shop may have done it.
    pub async fn cancel(&self, request: &LookupRequest) -> Result<Order, ConnectorError> {
        self.call("orders/cancel", request, 0).await
    }

    /// Asks the shop to register a return of some of the order's items.
    /// Tried once, like a cancellation.
    pub async fn start_return(
        &self,
        request: &ReturnRequest,
    ) -> Result<ReturnReceipt, ConnectorError> {
        self.call("orders/return", request, 0).await
    }

    /// One contract call behind the breaker, tried again up to `retries`
    /// times while the shop is unreachable; the order it answers with.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        request: &impl serde::Serialize,
        retries: u32,
    ) -> Result<T, ConnectorError> {
        self.admit()?;
        let body = serde_json::to_vec(request).expect("a request serializes");
        let mut attempt = 0;
        let outcome = loop {
            let outcome = self.post(path, &body).await;
            match &outcome {
                Err(e) if e.is_transient() && attempt < retries => {
                    attempt += 1;
                    tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                }
                _ => break outcome,
            }
        };
        self.record(outcome.as_ref().err());
        outcome?.json::<T>().await.map_err(|e| {
            ConnectorError::Refused(format!("an answer the contract does not allow: {e}"))
        })
    }

    /// One signed POST; the shop's answer sorted into success or an error.
    async fn post(&self, path: &str, body: &[u8]) -> Result<reqwest::Response, ConnectorError> {
        let url = format!("{}/{path}", self.config.base_url.trim_end_matches('/'));
        let mut builder = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in signature::headers(&self.config.secret, body) {
            builder = builder.header(name, value);
        }
        let response = builder
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| ConnectorError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status.is_server_error() {
            return Err(ConnectorError::Unavailable(format!("{url}: {status}")));
        }
        let code = response.json::<ShopError>().await.ok().map(|e| e.error);
        Err(match code {
            Some(ShopErrorCode::OrderNotFound) => ConnectorError::NotFound,
            Some(ShopErrorCode::NotVerified) => ConnectorError::NotVerified,
            Some(ShopErrorCode::NotAllowed) => ConnectorError::NotAllowed,
            _ => ConnectorError::Refused(format!("{url}: {status}")),
        })
    }

    /// Refuses at once while the breaker is open; after the cool-down one
    /// call goes through to see whether the shop is back.
    fn admit(&self) -> Result<(), ConnectorError> {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match breaker.open_until {
            Some(until) if Instant::now() < until => Err(ConnectorError::CircuitOpen),
            Some(_) => {
                // Half open: this call decides; another failure reopens it.
                breaker.open_until = None;
                breaker.failures = self.config.breaker_failures.saturating_sub(1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record(&self, error: Option<&ConnectorError>) {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(ConnectorError::Unavailable(reason)) => {
                breaker.failures += 1;
                if breaker.failures >= self.config.breaker_failures {
                    tracing::warn!(%reason, cooldown_s = self.config.breaker_cooldown.as_secs(), "shop unreachable: order lookups paused");
                    breaker.open_until = Some(Instant::now() + self.config.breaker_cooldown);
                }
            }
            // The shop answered, even if it said no.
            _ => *breaker = Breaker::default(),
        }
    }
}

/// Wait before the n-th retry, times n.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup() -> LookupRequest {
        LookupRequest {
            order_number: "LO-1".into(),
            verifier: "a@example.com".into(),
        }
    }

    /// A shop that answers every request with `response` after `delay`.
    async fn shop_answering(response: &'static str, delay: Duration) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = vec![0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    tokio::time::sleep(delay).await;
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        url
    }

    fn quick(url: String) -> ShopConnector {
        let mut config = ConnectorConfig::new(url, b"s".to_vec());
        config.timeout = Duration::from_millis(300);
        config.retries = 1;
        ShopConnector::new(config)
    }

    #[tokio::test]
    async fn a_failing_shop_gets_a_clear_error_quickly() {
        let failing = quick(
            shop_answering(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                Duration::ZERO,
            )
            .await,
        );
        assert!(matches!(
            failing.lookup(&lookup()).await,
            Err(ConnectorError::Unavailable(_))
        ));
        let malformed = quick(
            shop_answering(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\nconnection: close\r\n\r\n{\"nope\":1",
                Duration::ZERO,
            )
            .await,
        );
        assert!(matches!(
            malformed.lookup(&lookup()).await,
            Err(ConnectorError::Refused(_))
        ));
        let slow = quick(
            shop_answering(
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                Duration::from_secs(5),
            )
            .await,
        );
        // The shop's late answer (an empty 200) would be refused as no
        // order: unreachable means the timeout cut the wait short.
        assert!(matches!(
            slow.lookup(&lookup()).await,
            Err(ConnectorError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_shop_opens_the_breaker_and_it_closes_after_the_cooldown() {
        // Nothing listens on a port just freed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = ConnectorConfig::new(format!("http://127.0.0.1:{port}"), b"s".to_vec());
        config.retries = 0;
        config.breaker_failures = 3;
        config.breaker_cooldown = Duration::from_millis(200);
        let shop = ShopConnector::new(config);
        for _ in 0..3 {
            assert!(matches!(
                shop.lookup(&lookup()).await,
                Err(ConnectorError::Unavailable(_))
            ));
        }
        assert_eq!(
            shop.lookup(&lookup()).await,
            Err(ConnectorError::CircuitOpen)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        // Half open: one real try, which fails and opens it again.
        assert!(matches!(
            shop.lookup(&lookup()).await,
            Err(ConnectorError::Unavailable(_))
        ));
        assert_eq!(
            shop.lookup(&lookup()).await,
            Err(ConnectorError::CircuitOpen)
        );
    }
}
