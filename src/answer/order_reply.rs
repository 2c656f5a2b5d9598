//! The reply to an order lookup, cancellation or return: what the shop's
//! order system says, in the shop's words (`replies.yaml`, `orders:`), and
//! a clear reply for each way it can fail. Every fact in it comes from the
//! shop's answer, never from the model.

use super::plan::{OrderRequest, Plan};
use super::texts::{OrderTexts, Texts};
use crate::orders::{ConnectorError, Order, OrderItem, OrderStatus, ShopConnector, named_items};
use crate::storage::Offer;
use crate::storage::conversations::ConversationEvent;

/// What the shop answered, besides the reply written into the plan.
#[derive(Debug, Default)]
pub struct ShopAnswer {
    /// Why the shop said no, if it did.
    pub refused: Option<ConnectorError>,
    /// The order as the shop described it, to show beside the conversation.
    pub order: Option<Order>,
    /// What the shop did at the customer's request, for the transcript.
    pub done: Option<(ConversationEvent, String)>,
}

/// Asks the shop what `plan.order` asks and writes the reply into `plan`.
pub async fn look_up(
    plan: &mut Plan,
    connector: Option<&ShopConnector>,
    texts: &Texts,
) -> ShopAnswer {
    let mut answer = ShopAnswer::default();
    let Some(request) = plan.order.clone() else {
        return answer;
    };
    let t = &texts.orders;
    let number = request.order_number().to_string();
    let fill = |text: &str| text.replace("{order}", &number);
    let outcome = match connector {
        Some(c) => ask(c, &request).await,
        None => Err(ConnectorError::Unavailable(
            "no order system is connected".into(),
        )),
    };
    plan.tail = match outcome {
        Ok(Answered::Order(order)) => {
            let tail = match &request {
                OrderRequest::Cancel(_) => {
                    plan.why = format!("the shop cancelled order {}", order.number);
                    answer.done = Some((ConversationEvent::OrderCancelled, fill(&t.cancel_event)));
                    Some(fill(&t.cancelled_now))
                }
                OrderRequest::PrepareReturn { wanted, .. } => {
                    prepare_return(plan, &order, wanted, texts);
                    plan.tail.take()
                }
                _ => {
                    plan.why =
                        format!("the shop says order {} is {:?}", order.number, order.status);
                    // An order still on its way: its status, then what the
                    // knowledge base says to do if it is late.
                    if is_open(&order) && !plan.parts.is_empty() {
                        plan.lead = Some(describe(&order, t));
                        None
                    } else {
                        plan.parts.clear();
                        Some(describe(&order, t))
                    }
                }
            };
            answer.order = Some(order);
            tail
        }
        Ok(Answered::Return(receipt)) => {
            let r = &t.returns;
            let items = r.list_items(&receipt.items);
            let fill_return = |text: &str| {
                fill(text)
                    .replace("{return}", &receipt.return_id)
                    .replace("{items}", &items)
            };
            plan.why = format!("the shop registered return {}", receipt.return_id);
            let event = fill_return(&r.event)
                .replace("{label}", receipt.label_url.as_deref().unwrap_or_default());
            answer.done = Some((ConversationEvent::ReturnStarted, event.trim().to_string()));
            let label = match &receipt.label_url {
                Some(url) => r.label.replace("{label}", url),
                None => r.no_label.clone(),
            };
            Some(format!("{} {label}", fill_return(&r.started)))
        }
        Err(e) => {
            plan.parts.clear();
            let tail = match (&e, &request) {
                (ConnectorError::NotFound, _) => fill(&t.not_found),
                (ConnectorError::NotVerified, _) => fill(&t.not_verified),
                (ConnectorError::NotAllowed, OrderRequest::Return(_)) => {
                    plan.set_offer(Offer::Person, texts);
                    fill(&t.returns.not_allowed)
                }
                (ConnectorError::NotAllowed, _) => fill(&t.cancel_not_allowed),
                _ => {
                    tracing::warn!(error = %e, "order lookup failed");
                    plan.why = format!("the order system could not answer: {e}");
                    plan.set_offer(Offer::Person, texts);
                    t.unavailable.clone()
                }
            };
            answer.refused = Some(e);
            Some(tail)
        }
    };
    answer
}

enum Answered {
    Order(Order),
    Return(crate::orders::ReturnReceipt),
}

async fn ask(c: &ShopConnector, request: &OrderRequest) -> Result<Answered, ConnectorError> {
    Ok(match request {
        OrderRequest::Lookup(r) | OrderRequest::PrepareReturn { lookup: r, .. } => {
            Answered::Order(c.lookup(r).await?)
        }
        OrderRequest::Cancel(r) => Answered::Order(c.cancel(r).await?),
        OrderRequest::Return(r) => Answered::Return(c.start_return(r).await?),
    })
}

/// A delivered order's items the customer named go to confirmation; if
/// none was named (and there is more than one), the customer is asked
/// which.
fn prepare_return(plan: &mut Plan, order: &Order, wanted: &str, texts: &Texts) {
    let r = &texts.orders.returns;
    if order.status != OrderStatus::Delivered {
        plan.why = format!("order {} is not delivered yet", order.number);
        plan.tail = Some(r.not_delivered.replace("{order}", &order.number));
        return;
    }
    let mut named: Vec<OrderItem> = named_items(wanted, &order.items)
        .into_iter()
        .cloned()
        .collect();
    if named.is_empty() && order.items.len() == 1 {
        named = order.items.clone();
    }
    if named.is_empty() {
        plan.why = format!("asks which items of order {} go back", order.number);
        plan.tail = Some(r.which_items.replace("{order}", &order.number));
        plan.set_offer(
            Offer::ReturnItems {
                order_number: order.number.clone(),
                items: order.items.clone(),
            },
            texts,
        );
    } else {
        plan.why = format!("asks to confirm a return from order {}", order.number);
        plan.confirm_return(&order.number, named, texts);
    }
}

/// Still to be delivered.
fn is_open(order: &Order) -> bool {
    !matches!(
        order.status,
        OrderStatus::Delivered | OrderStatus::Cancelled
    )
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
    let open = is_open(order);
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
