//! Orders, which live in the shop's own system: the contract Frontdesk
//! speaks to reach them (`docs/connectors.md`), the signed client that
//! speaks it, and the demo shop that serves it for the bundled demo.

pub mod connector;
pub mod demo_shop;
pub mod signature;

use serde::{Deserialize, Serialize};

pub use connector::{ConnectorConfig, ConnectorError, ShopConnector};

/// Where an order is, in the contract's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    Shipped,
    OutForDelivery,
    Delivered,
    Cancelled,
    Backorder,
}

/// The days an order is expected, as ISO dates (`2026-12-03`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryWindow {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
}

/// What the shop tells about one order: no more than a reply needs (no
/// address, no payment details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub number: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_window: Option<DeliveryWindow>,
    #[serde(default)]
    pub items: Vec<OrderItem>,
}

/// A lookup: the order number and what proves the asker placed it (the
/// e-mail address or the postcode used for the order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupRequest {
    pub order_number: String,
    pub verifier: String,
}

/// The error body of the contract: `{"error": "order_not_found"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopError {
    pub error: ShopErrorCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShopErrorCode {
    /// 404: no order with that number.
    OrderNotFound,
    /// 403: the order exists, but the e-mail address or postcode is not its.
    NotVerified,
    /// 409: the order can no longer be changed that way (a cancellation
    /// of a shipped order).
    NotAllowed,
    /// 401: the request's signature is missing, wrong, old or replayed.
    BadSignature,
    /// 400: the request is not what the contract says.
    BadRequest,
}
