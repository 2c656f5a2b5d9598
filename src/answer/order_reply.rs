//! The reply to an order lookup or cancellation: what the shop's order
//! system says about the order, in the shop's words (`replies.yaml`, `orders:`), and a clear
//! reply for each way the lookup can fail. Every fact in it comes from the
//! shop's answer, never from the model.

use super::plan::{OrderRequest, Plan};
use super::texts::{OrderTexts, Texts};
use crate::orders::{ConnectorError, Order, OrderStatus, ShopConnector};
use crate::storage::Offer;

/// Asks the shop what `plan.order` asks and writes the reply into `plan`;
/// the shop's refusal, if it refused.
pub async fn look_up(
    plan: &mut Plan,
    connector: Option<&ShopConnector>,
    texts: &Texts,
) -> Option<ConnectorError> {
    let order_request = plan.order.clone()?;
    let (request, cancelling) = match &order_request {
        OrderRequest::Lookup(r) => (r, false),
        OrderRequest::Cancel(r) => (r, true),
    };
    let outcome = match (connector, cancelling) {
        (Some(c), false) => c.lookup(request).await,
        (Some(c), true) => c.cancel(request).await,
        (None, _) => Err(ConnectorError::Unavailable(
            "no order system is connected".into(),
        )),
    };
    let t = &texts.orders;
    let fill = |text: &str| text.replace("{order}", &request.order_number);
    let refused = outcome.as_ref().err().cloned();
    plan.tail = Some(match outcome {
        Ok(order) if cancelling => {
            plan.why = format!("the shop cancelled order {}", order.number);
            fill(&t.cancelled_now)
        }
        Ok(order) => {
            plan.why = format!("the shop says order {} is {:?}", order.number, order.status);
            describe(&order, t)
        }
        Err(ConnectorError::NotFound) => fill(&t.not_found),
        Err(ConnectorError::NotVerified) => fill(&t.not_verified),
        Err(ConnectorError::NotAllowed) => fill(&t.cancel_not_allowed),
        Err(e) => {
            tracing::warn!(error = %e, "order lookup failed");
            plan.why = format!("the order system could not answer: {e}");
            plan.set_offer(Offer::Person, texts);
            t.unavailable.clone()
        }
    });
    refused
}

/// The order's status, then its tracking link and delivery window when the
/// shop gave them.
pub fn describe(order: &Order, t: &OrderTexts) -> String {
    let status = match order.status {
        OrderStatus::Placed => &t.placed,
        OrderStatus::Shipped => &t.shipped,
        OrderStatus::OutForDelivery => &t.out_for_delivery,
        OrderStatus::Delivered => &t.delivered,
        OrderStatus::Cancelled => &t.cancelled,
        OrderStatus::Backorder => &t.backorder,
    };
    let carrier = order.carrier.as_deref().unwrap_or(&t.any_carrier);
    let mut text = status
        .replace("{order}", &order.number)
        .replace("{carrier}", carrier);
    let open = !matches!(
        order.status,
        OrderStatus::Delivered | OrderStatus::Cancelled
    );
    if let Some(url) = order.tracking_url.as_deref().filter(|_| open) {
        text.push(' ');
        text.push_str(&t.tracking.replace("{tracking}", url));
    }
    if let Some(w) = order.delivery_window.as_ref().filter(|_| open) {
        text.push(' ');
        text.push_str(&t.window.replace("{from}", &w.from).replace("{to}", &w.to));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::DeliveryWindow;

    #[test]
    fn an_order_is_told_with_only_what_the_shop_gave() {
        let t = Texts::shipped().orders;
        let mut order = Order {
            number: "LO-1".into(),
            status: OrderStatus::Shipped,
            carrier: Some("PostNL".into()),
            tracking_url: Some("https://track.example/1".into()),
            delivery_window: Some(DeliveryWindow {
                from: "2026-12-03".into(),
                to: "2026-12-04".into(),
            }),
            items: vec![],
        };
        let text = describe(&order, &t);
        assert!(text.contains("LO-1") && text.contains("PostNL"), "{text}");
        assert!(
            text.contains("https://track.example/1") && text.contains("2026-12-04"),
            "{text}"
        );
        order.status = OrderStatus::Delivered;
        order.carrier = None;
        let text = describe(&order, &t);
        assert!(
            text.contains("the carrier") && !text.contains("https://"),
            "{text}"
        );
        assert!(!text.contains('{'), "{text}");
    }
}
