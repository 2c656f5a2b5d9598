//! Orders, which live in the shop's own system: the contract Frontdesk
//! speaks to reach them (`docs/connectors.md`), the signed client that
//! speaks it, and the demo shop that serves it for the bundled demo.

pub mod connector;
pub mod signature;

use serde::{Deserialize, Serialize};

use crate::understanding::words::singular;

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

/// Items to send back, by the order's SKUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub sku: String,
    pub quantity: u32,
}

/// A return of some items of a verified order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRequest {
    pub order_number: String,
    pub verifier: String,
    pub items: Vec<ReturnLine>,
}

/// The shop's record of a return it registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnReceipt {
    pub return_id: String,
    pub order_number: String,
    pub items: Vec<OrderItem>,
    /// Where the customer prints the return label, when the shop gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_url: Option<String>,
}

/// The items of `order` that `text` names ("the pillowcases", "the tea
/// set"): most of the words of an item's name (less sizes and numbers),
/// or a word of it no other item of the order has; singular or plural.
pub fn named_items<'a>(text: &str, order: &'a [OrderItem]) -> Vec<&'a OrderItem> {
    let said: Vec<String> = words(text).map(|w| singular(&w)).collect();
    let names: Vec<Vec<String>> = order
        .iter()
        .map(|item| {
            words(&item.name)
                .filter(|w| w.len() >= 3 && w.chars().all(char::is_alphabetic))
                .map(|w| singular(&w))
                .collect()
        })
        .collect();
    order
        .iter()
        .zip(&names)
        .filter(|(_, name)| {
            let found = name.iter().filter(|w| said.contains(w)).count();
            let distinctive = name.iter().any(|w| {
                said.contains(w) && names.iter().filter(|other| other.contains(w)).count() == 1
            });
            !name.is_empty()
                && ((found * 3 >= name.len() * 2 && found >= name.len().min(2)) || distinctive)
        })
        .map(|(item, _)| item)
        .collect()
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && c != '-')
        .flat_map(|w| w.split('-'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
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
    /// of a shipped order, a return of an order not yet delivered or of
    /// items it does not hold).
    NotAllowed,
    /// 401: the request's signature is missing, wrong, old or replayed.
    BadSignature,
    /// 400: the request is not what the contract says.
    BadRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, name: &str) -> OrderItem {
        OrderItem {
            sku: sku.into(),
            name: name.into(),
            quantity: 1,
        }
    }

    #[test]
    fn items_are_found_by_most_of_their_name() {
        let order = [
            item("A", "Linen duvet cover 200x220"),
            item("B", "Linen pillowcase 60x70"),
            item("C", "Stoneware mug"),
            item("D", "Linen tea towel"),
        ];
        let skus = |text: &str| -> Vec<&str> {
            named_items(text, &order)
                .iter()
                .map(|i| i.sku.as_str())
                .collect()
        };
        assert_eq!(skus("I'd like to send back the linen pillowcases"), ["B"]);
        assert_eq!(
            skus("return the duvet cover and the stoneware mugs"),
            ["A", "C"]
        );
        assert_eq!(skus("the tea towels please"), ["D"]);
        assert_eq!(skus("just the mugs"), ["C"]);
        // One shared word is not a name.
        assert!(skus("something linen").is_empty());
        assert!(skus("I want to return my order").is_empty());
    }
}
