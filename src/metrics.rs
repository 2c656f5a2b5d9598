//! Prometheus metrics (`prometheus-client`), served at `GET /metrics` in
//! the OpenMetrics text format: connections, messages, replies by kind,
//! latency histograms, model tokens and time, flags, takeovers and
//! rate-limit refusals. Counters are bumped where the event happens; the
//! gauges of live state are read when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: String,
}

pub struct Metrics {
    registry: Registry,
    /// Open chat websockets.
    pub chat_connections: Gauge,
    /// Customer messages stored (a resent duplicate is not counted).
    pub messages: Counter,
    /// Replies stored, by kind (`extractive`, `no_answer`, `busy`, …).
    pub replies: Family<KindLabel, Counter>,
    /// From the start of answering to the stored reply.
    pub reply_seconds: Histogram,
    /// From the start of answering to the first words on screen.
    pub first_visible_seconds: Histogram,
    /// From the start of answering to the model's first token.
    pub first_token_seconds: Histogram,
    /// Tokens the model wrote, and the seconds it ran: their ratio is tokens/s.
    pub model_tokens: Counter,
    pub model_seconds: Counter<f64, AtomicU64>,
    /// Conversations flagged for a person, by reason.
    pub flags: Family<ReasonLabel, Counter>,
    pub takeovers: Counter,
    /// Requests refused by a rate limit (`messages`, `sign_ins`, `queued_answers`).
    pub rate_limited: Family<LimitLabel, Counter>,
    live_sessions: Gauge,
    generations_in_flight: Gauge,
}

/// A new metric, registered under `name`; the registry and the struct
/// share it (metrics are handles).
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// A latency histogram from 5 ms to ~41 s, registered under `name`.
fn registered_latency(registry: &mut Registry, name: &str, help: &str) -> Histogram {
    let histogram = Histogram::new(exponential_buckets(0.005, 2.0, 14));
    registry.register(name, help, histogram.clone());
    histogram
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("frontdesk");
        let r = &mut registry;
        Metrics {
            chat_connections: registered(r, "chat_connections", "Open chat websockets"),
            messages: registered(r, "customer_messages", "Customer messages stored"),
            replies: registered(r, "replies", "Bot replies stored, by kind"),
            reply_seconds: registered_latency(
                r,
                "reply_seconds",
                "Time from the start of answering to the stored reply",
            ),
            first_visible_seconds: registered_latency(
                r,
                "first_visible_seconds",
                "Time from the start of answering to the first words on screen",
            ),
            first_token_seconds: registered_latency(
                r,
                "first_token_seconds",
                "Time from the start of answering to the model's first token",
            ),
            model_tokens: registered(r, "model_tokens", "Tokens the model wrote"),
            model_seconds: registered(r, "model_seconds", "Seconds the model ran"),
            flags: registered(r, "flags", "Conversations flagged for a person, by reason"),
            takeovers: registered(r, "takeovers", "Conversations taken over by an agent"),
            rate_limited: registered(
                r,
                "rate_limited",
                "Requests refused by a rate limit, by limit",
            ),
            live_sessions: registered(r, "live_sessions", "Conversations held in memory"),
            generations_in_flight: registered(
                r,
                "generations_in_flight",
                "Replies running on or waiting for the model",
            ),
            registry,
        }
    }

    pub fn reply(&self, kind: &str) {
        self.replies
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    pub fn flagged(&self, reason: &str) {
        self.flags
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn refused(&self, limit: &str) {
        self.rate_limited
            .get_or_create(&LimitLabel {
                limit: limit.into(),
            })
            .inc();
    }

    /// The OpenMetrics text, with the live gauges as they are now.
    pub fn render(&self, live_sessions: usize, generations_in_flight: usize) -> String {
        self.live_sessions.set(live_sessions as i64);
        self.generations_in_flight.set(generations_in_flight as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// Counts an open chat websocket while it lives.
pub struct ConnectionCount(Gauge);

impl ConnectionCount {
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        ConnectionCount(gauge.clone())
    }
}

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_as_openmetrics_with_their_labels() {
        let m = Metrics::new();
        m.messages.inc();
        m.reply("extractive");
        m.reply("busy");
        m.refused("messages");
        m.reply_seconds.observe(0.05);
        {
            let _open = ConnectionCount::new(&m.chat_connections);
            assert!(m.render(3, 1).contains("frontdesk_chat_connections 1"));
        }
        let text = m.render(3, 1);
        for line in [
            "frontdesk_customer_messages_total 1",
            "frontdesk_replies_total{kind=\"busy\"} 1",
            "frontdesk_rate_limited_total{limit=\"messages\"} 1",
            "frontdesk_reply_seconds_count 1",
            "frontdesk_live_sessions 3",
            "frontdesk_generations_in_flight 1",
            "frontdesk_chat_connections 0",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
