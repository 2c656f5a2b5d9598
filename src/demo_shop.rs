//! The demo shop's side of the contract, served by this binary at
//! `/demo-shop` when no real shop is connected: the same signature check a
//! shop must do, and orders from `knowledge/demo-shop/orders.yaml` kept in
//! the database. `cargo run --release` shows the whole flow with it.

use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use dashmap::DashMap;
use serde::Deserialize;

use crate::orders::signature::{
    self, MAX_SKEW_SECS, NONCE_HEADER, SIGNATURE_HEADER, SignatureError, Signed, TIMESTAMP_HEADER,
};
use crate::orders::{
    DeliveryWindow, LookupRequest, Order, OrderItem, OrderStatus, ReturnReceipt, ReturnRequest,
    ShopError, ShopErrorCode,
};
use crate::storage::Store;
use crate::storage::demo_orders::DemoOrderRow;

/// Where the demo shop's contract is served.
pub const PATH: &str = "/demo-shop";
/// Largest request body the demo shop reads.
const MAX_BODY: usize = 4096;

pub struct DemoShop {
    secret: Vec<u8>,
    store: Store,
    /// Nonces seen within the clock window, to refuse a replay.
    seen: DashMap<String, u64>,
}

impl DemoShop {
    pub fn new(secret: Vec<u8>, store: Store) -> Self {
        DemoShop {
            secret,
            store,
            seen: DashMap::new(),
        }
    }
}

/// One order as written in the demo file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoOrder {
    number: String,
    email: String,
    postcode: String,
    status: OrderStatus,
    #[serde(default)]
    carrier: Option<String>,
    #[serde(default)]
    tracking_url: Option<String>,
    #[serde(default)]
    window_days: Option<[u32; 2]>,
    #[serde(default)]
    items: Vec<OrderItem>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoOrdersError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}

/// Stores the demo file's orders that are not stored yet (their delivery
/// windows counted from today). A missing file is no demo orders.
pub fn seed(store: &Store, file: &Path) -> Result<usize, DemoOrdersError> {
    let read_err = |message: String| DemoOrdersError::Read {
        path: file.display().to_string(),
        message,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(read_err(e.to_string())),
    };
    let orders: Vec<DemoOrder> =
        serde_yaml_ng::from_str(&text).map_err(|e| read_err(e.to_string()))?;
    let today = signature::unix_now() / 86_400;
    let rows: Vec<DemoOrderRow> = orders
        .into_iter()
        .map(|o| {
            let order = Order {
                number: o.number.clone(),
                status: o.status,
                carrier: o.carrier,
                tracking_url: o.tracking_url,
                delivery_window: o.window_days.map(|[from, to]| DeliveryWindow {
                    from: iso_date(today + u64::from(from)),
                    to: iso_date(today + u64::from(to)),
                }),
                items: o.items,
            };
            DemoOrderRow {
                number: o.number,
                email: o.email,
                postcode: o.postcode,
                body: serde_json::to_string(&order).expect("an order serializes"),
            }
        })
        .collect();
    Ok(store.seed_demo_orders_blocking(&rows)?)
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (civil-from-days).
fn iso_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(PATH)
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .route("/orders/lookup", web::post().to(lookup))
            .route("/orders/cancel", web::post().to(cancel))
            .route("/orders/return", web::post().to(start_return)),
    );
}

fn refuse(status: StatusCode, error: ShopErrorCode) -> HttpResponse {
    HttpResponse::build(status).json(ShopError { error })
}

async fn lookup(shop: web::Data<DemoShop>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    match verified_order(&shop, &request, &body).await {
        Ok(row) => HttpResponse::Ok()
            .content_type("application/json")
            .body(row.body),
        Err(refused) => refused,
    }
}

/// Cancels an order that has not left the warehouse (placed, or waiting on
/// a backorder); anything further along is not allowed.
async fn cancel(shop: web::Data<DemoShop>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let row = match verified_order(&shop, &request, &body).await {
        Ok(row) => row,
        Err(refused) => return refused,
    };
    let Ok(mut order) = serde_json::from_str::<Order>(&row.body) else {
        return HttpResponse::InternalServerError().finish();
    };
    if !matches!(order.status, OrderStatus::Placed | OrderStatus::Backorder) {
        return refuse(StatusCode::CONFLICT, ShopErrorCode::NotAllowed);
    }
    order.status = OrderStatus::Cancelled;
    order.delivery_window = None;
    let body = serde_json::to_string(&order).expect("an order serializes");
    match shop.store.update_demo_order(row.number, body.clone()).await {
        Ok(_) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "demo shop: store failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Where the demo's return labels are (no real label is made).
const LABEL_URL: &str = "https://returns.example/label/";

/// Registers a return of delivered items the order holds and that were not
/// returned already; anything else is not allowed.
async fn start_return(
    shop: web::Data<DemoShop>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let row = match verified_order(&shop, &request, &body).await {
        Ok(row) => row,
        Err(refused) => return refused,
    };
    let (Ok(order), Ok(asked)) = (
        serde_json::from_str::<Order>(&row.body),
        serde_json::from_slice::<ReturnRequest>(&body),
    ) else {
        return refuse(StatusCode::BAD_REQUEST, ShopErrorCode::BadRequest);
    };
    let internal = |e: crate::storage::StoreError| {
        tracing::error!(error = %e, "demo shop: store failed");
        HttpResponse::InternalServerError().finish()
    };
    let returned = match shop.store.demo_returned(row.number.clone()).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut items = Vec::new();
    for line in &asked.items {
        let already: u32 = returned
            .iter()
            .filter(|(sku, _)| *sku == line.sku)
            .map(|(_, q)| q)
            .sum();
        match order.items.iter().find(|i| i.sku == line.sku) {
            Some(item) if line.quantity > 0 && already + line.quantity <= item.quantity => items
                .push(OrderItem {
                    quantity: line.quantity,
                    ..item.clone()
                }),
            _ => return refuse(StatusCode::CONFLICT, ShopErrorCode::NotAllowed),
        }
    }
    if order.status != OrderStatus::Delivered || items.is_empty() {
        return refuse(StatusCode::CONFLICT, ShopErrorCode::NotAllowed);
    }
    let lines = items.iter().map(|i| (i.sku.clone(), i.quantity)).collect();
    match shop.store.add_demo_return(row.number.clone(), lines).await {
        Ok(return_id) => HttpResponse::Ok().json(ReturnReceipt {
            label_url: Some(format!("{LABEL_URL}{return_id}")),
            return_id,
            order_number: row.number,
            items,
        }),
        Err(e) => internal(e),
    }
}

/// The order a signed, fresh request names, if its verifier matches; else
/// the response that refuses it. What every shop endpoint checks first.
async fn verified_order(
    shop: &DemoShop,
    request: &HttpRequest,
    body: &[u8],
) -> Result<DemoOrderRow, HttpResponse> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (timestamp, nonce, sig) = (
        header(TIMESTAMP_HEADER),
        header(NONCE_HEADER),
        header(SIGNATURE_HEADER),
    );
    let signed = Signed {
        timestamp: timestamp.as_deref(),
        nonce: nonce.as_deref(),
        signature: sig.as_deref(),
    };
    let now = signature::unix_now();
    let checked = signature::verify(&shop.secret, signed, body, now).and_then(|()| {
        // A nonce is used once within the window.
        shop.seen
            .retain(|_, at| now.saturating_sub(*at) <= 2 * MAX_SKEW_SECS);
        match shop.seen.insert(nonce.clone().unwrap_or_default(), now) {
            Some(_) => Err(SignatureError::Replayed),
            None => Ok(()),
        }
    });
    if let Err(e) = checked {
        tracing::warn!(error = %e, "demo shop: request refused");
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            ShopErrorCode::BadSignature,
        ));
    }
    let Ok(asked) = serde_json::from_slice::<LookupRequest>(body) else {
        return Err(refuse(StatusCode::BAD_REQUEST, ShopErrorCode::BadRequest));
    };
    let row = match shop
        .store
        .demo_order(asked.order_number.trim().to_uppercase())
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return Err(refuse(StatusCode::NOT_FOUND, ShopErrorCode::OrderNotFound)),
        Err(e) => {
            tracing::error!(error = %e, "demo shop: store failed");
            return Err(HttpResponse::InternalServerError().finish());
        }
    };
    if !verifies(&asked.verifier, &row) {
        return Err(refuse(StatusCode::FORBIDDEN, ShopErrorCode::NotVerified));
    }
    Ok(row)
}

/// The e-mail address (any case) or the postcode (any case or spacing).
fn verifies(verifier: &str, row: &DemoOrderRow) -> bool {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase()
    };
    let v = squash(verifier);
    !v.is_empty() && (v == squash(&row.email) || v == squash(&row.postcode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_iso_dates() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(20_454), "2026-01-01");
        assert_eq!(iso_date(20_789), "2026-12-02");
    }

    #[test]
    fn the_shipped_demo_orders_parse() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge/demo-shop/orders.yaml"),
        )
        .unwrap();
        let orders: Vec<DemoOrder> = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(orders.len(), 7);
    }
}
