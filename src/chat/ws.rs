//! One websocket connection: reads client frames, writes server frames, and
//! keeps the connection alive with pings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use tokio::sync::{broadcast, mpsc};
use tracing::Instrument;
use uuid::Uuid;

use super::responder;
use crate::api::ApiError;
use crate::conversation::protocol::{
    ClientFrame, ErrorCode, FrameError, HistoryEntry, ServerFrame, parse_client_frame,
};
use crate::conversation::{ConnectionGuard, LiveSession, Opened};
use crate::state::AppState;
use crate::storage::conversations::{Handler, Status};
use crate::storage::shop_records::Customer;

/// Errors in a row (without a good frame between) after which a client is
/// treated as abusive and disconnected.
const MAX_CONSECUTIVE_ERRORS: u32 = 20;

pub async fn route(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !state.config.widget_origins.is_empty()
        && !crate::origin::allowed(&req, &state.config.widget_origins)
    {
        return Err(ApiError::ForbiddenOrigin.into());
    }
    let ip = state.limits.client_ip(&req);
    let slot = match ip.map(|ip| state.limits.open_socket(ip)) {
        Some(None) => {
            state.metrics.refused("sockets");
            // A socket's place comes back when one closes; a minute is a guess.
            let refused = crate::limits::Refused {
                retry_after: Duration::from_secs(60),
            };
            return Err(ApiError::RateLimited(refused).into());
        }
        Some(slot) => slot,
        None => None,
    };
    // Frames up to 4x the message limit still get a typed error; beyond that
    // the protocol layer refuses them by their header and the connection is
    // closed.
    let frame_limit = state.config.max_message_bytes * 4 + 1024;
    let (response, ws, stream) = crate::websocket::accept(&req, body, frame_limit).await?;
    // Every line of the conversation carries `session` (a hash of its id:
    // `telemetry::session_ref`), recorded when the client says which.
    let span = tracing::info_span!(
        "ws",
        session = tracing::field::Empty,
        peer = tracing::field::display(ip.map_or_else(|| "unknown".into(), |ip| ip.to_string()))
    );
    // Boxed: a channel allocates its slots in blocks, and an idle socket
    // should not hold a block of whole frames.
    let (out_tx, out_rx) = mpsc::channel::<Box<ServerFrame>>(256);
    let write_timeout = Duration::from_secs(state.config.client_timeout_secs);
    let counted = crate::metrics::ConnectionCount::new(&state.metrics.chat_connections);
    let connection = Connection {
        state: state.into_inner(),
        ws,
        joined: None,
        fresh: None,
        ip,
        errors_in_a_row: 0,
        customer: None,
        visitor: None,
        out_tx,
        write_timeout,
        gone: false,
        _counted: counted,
        _slot: slot,
    };
    actix_web::rt::spawn(connection.run(stream, out_rx).instrument(span));
    Ok(response)
}

struct Joined {
    session: Arc<LiveSession>,
    _guard: ConnectionGuard,
    forwarder: tokio::task::JoinHandle<()>,
}

struct Connection {
    state: Arc<AppState>,
    ws: actix_ws::Session,
    joined: Option<Joined>,
    /// The id a new session was given in `welcome`: the session is stored
    /// and kept in memory once its first message arrives.
    fresh: Option<Uuid>,
    /// The client's address, for its rate limit.
    ip: Option<std::net::IpAddr>,
    errors_in_a_row: u32,
    /// Who the shop's site vouched for in `hello` (boxed: most visitors
    /// are anonymous and an idle socket should stay small).
    customer: Option<Box<Customer>>,
    /// The widget's random id for the browser, from `hello`.
    visitor: Option<Uuid>,
    /// Frames from the session's broadcast, to be written by this connection.
    out_tx: mpsc::Sender<Box<ServerFrame>>,
    /// How long one write may wait for the client to read.
    write_timeout: Duration,
    /// A write failed or timed out: the connection ends.
    gone: bool,
    /// Counted in the `chat_connections` gauge while it lives.
    _counted: crate::metrics::ConnectionCount,
    /// This address's count of open sockets, while it lives.
    _slot: Option<crate::limits::SocketSlot>,
}

/// The client is gone or stopped reading.
struct Gone;

enum Flow {
    Continue,
    Close(Option<CloseReason>),
}

impl Connection {
    async fn run(
        mut self,
        mut stream: actix_ws::AggregatedMessageStream,
        mut out_rx: mpsc::Receiver<Box<ServerFrame>>,
    ) {
        let heartbeat = Duration::from_secs(self.state.config.heartbeat_secs);
        let timeout = Duration::from_secs(self.state.config.client_timeout_secs);
        let mut ticker = tokio::time::interval(heartbeat);
        ticker.tick().await;
        let mut last_heard = Instant::now();
        let close = loop {
            tokio::select! {
                incoming = stream.recv() => {
                    last_heard = Instant::now();
                    // Boxed: handling a frame is a large future, and an idle
                    // connection should not carry its space while it waits.
                    let flow = match incoming {
                        Some(Ok(message)) => Box::pin(self.on_message(message)).await,
                        Some(Err(e)) => Box::pin(self.on_protocol_error(e)).await,
                        None => Flow::Close(None),
                    };
                    if let Flow::Close(reason) = flow {
                        break reason;
                    }
                    if self.gone {
                        break None;
                    }
                }
                Some(frame) = out_rx.recv() => {
                    if self.send(&frame).await.is_err() {
                        break None;
                    }
                }
                _ = ticker.tick() => {
                    if last_heard.elapsed() > timeout {
                        tracing::info!("client stopped answering pings; closing");
                        break Some(CloseCode::Away.into());
                    }
                    if self.write(|mut ws| async move { ws.ping(b"").await }).await.is_err() {
                        break None;
                    }
                }
            }
        };
        if let Some(joined) = self.joined.take() {
            joined.forwarder.abort();
            let session = joined.session.id;
            drop(joined);
            self.state.events.changed(session, None);
        }
        if !self.gone {
            let _ = tokio::time::timeout(self.write_timeout, self.ws.close(close)).await;
        }
        tracing::debug!("connection closed");
    }

    /// A frame the websocket layer could not read. The stream cannot be
    /// trusted after it, so the connection closes; the client is told why
    /// when there is something to tell.
    async fn on_protocol_error(&mut self, error: ProtocolError) -> Flow {
        let (code, close) = match &error {
            e if crate::websocket::is_too_long(e) => (ErrorCode::MessageTooLong, CloseCode::Size),
            // actix-ws reports invalid UTF-8 and reserved bits as I/O
            // errors; only the rest is the peer going away mid-frame, with
            // nobody left to tell.
            ProtocolError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                (ErrorCode::InvalidFrame, CloseCode::Protocol)
            }
            ProtocolError::Io(_) => {
                tracing::debug!(error = %error, "connection broke mid-frame");
                return Flow::Close(None);
            }
            _ => (ErrorCode::InvalidFrame, CloseCode::Protocol),
        };
        tracing::info!(error = %error, "websocket protocol error; closing");
        let frame = ServerFrame::Error {
            code,
            message: format!("frame refused: {error}"),
            id: None,
        };
        let _ = self.send(&frame).await;
        Flow::Close(Some(close.into()))
    }

    async fn send(&mut self, frame: &ServerFrame) -> Result<(), Gone> {
        let json = frame.to_json();
        self.write(|mut ws| async move { ws.text(json).await })
            .await
    }

    /// One write to the client. A client that has not taken it within the
    /// timeout has stopped reading: the connection ends, instead of waiting
    /// forever with its buffers full (and its heartbeat never checked).
    async fn write<F, W>(&mut self, write: W) -> Result<(), Gone>
    where
        W: FnOnce(actix_ws::Session) -> F,
        F: Future<Output = Result<(), actix_ws::Closed>>,
    {
        match tokio::time::timeout(self.write_timeout, write(self.ws.clone())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                self.gone = true;
                Err(Gone)
            }
            Err(_) => {
                tracing::info!("client stopped reading; closing");
                self.gone = true;
                Err(Gone)
            }
        }
    }

    async fn on_message(&mut self, message: AggregatedMessage) -> Flow {
        match message {
            AggregatedMessage::Text(text) => {
                match parse_client_frame(&text, self.state.config.max_message_bytes) {
                    Ok(frame) => {
                        self.errors_in_a_row = 0;
                        self.on_frame(frame).await
                    }
                    Err(e) => self.refuse(e).await,
                }
            }
            AggregatedMessage::Binary(_) => {
                self.refuse(FrameError {
                    code: ErrorCode::UnsupportedFrame,
                    message: "binary frames are not supported; send JSON text frames".into(),
                    id: None,
                })
                .await
            }
            AggregatedMessage::Ping(bytes) => {
                let _ = self
                    .write(|mut ws| async move { ws.pong(&bytes).await })
                    .await;
                Flow::Continue
            }
            AggregatedMessage::Pong(_) => Flow::Continue,
            AggregatedMessage::Close(_) => Flow::Close(None),
        }
    }

    async fn refuse(&mut self, error: FrameError) -> Flow {
        // Neither the frame nor its text is logged (it may hold anything a
        // customer typed), and only at debug level: a client can send
        // thousands a second.
        tracing::debug!(code = ?error.code, "refused frame");
        self.errors_in_a_row += 1;
        if self.send(&ServerFrame::error(error)).await.is_err() {
            return Flow::Close(None);
        }
        if self.errors_in_a_row >= MAX_CONSECUTIVE_ERRORS {
            tracing::warn!("too many bad frames in a row; closing");
            return Flow::Close(Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("too many invalid frames".into()),
            }));
        }
        Flow::Continue
    }

    async fn on_frame(&mut self, frame: ClientFrame) -> Flow {
        match frame {
            ClientFrame::Ping => {
                let _ = self.send(&ServerFrame::Pong).await;
                Flow::Continue
            }
            ClientFrame::Hello {
                session_id,
                last_seq,
                identity,
                visitor_id,
            } => {
                if self.joined.is_some() || self.fresh.is_some() {
                    return self
                        .refuse(FrameError {
                            code: ErrorCode::SessionAlreadyStarted,
                            message: "this connection already has a session; open a new connection to switch".into(),
                            id: None,
                        })
                        .await;
                }
                self.visitor = visitor_id;
                if let Some(identity) = identity {
                    let secret = self
                        .state
                        .config
                        .identity_secret
                        .as_deref()
                        .map(str::as_bytes);
                    match crate::conversation::identity::verify(secret, &identity) {
                        Ok(customer) => self.customer = Some(Box::new(customer)),
                        Err(e) => {
                            // The chat goes on, as an anonymous visitor's.
                            tracing::warn!(error = %e, "customer identity refused");
                            let refused = ServerFrame::error(FrameError {
                                code: ErrorCode::IdentityRefused,
                                message: e.to_string(),
                                id: None,
                            });
                            if self.send(&refused).await.is_err() {
                                return Flow::Close(None);
                            }
                        }
                    }
                }
                self.hello(session_id, last_seq).await
            }
            ClientFrame::Rating { score, comment } => self.on_rating(score, comment).await,
            ClientFrame::Message { id, text } => {
                if let Some(ip) = self.ip
                    && let Err(refused) = self.state.limits.message(ip)
                {
                    return self
                        .rate_limited("messages", "too many messages", refused, id)
                        .await;
                }
                if self.joined.is_none() && self.fresh.is_none() {
                    let flow = self.hello(None, 0).await;
                    if !matches!(flow, Flow::Continue) {
                        return flow;
                    }
                }
                // The session is stored with its first message: that is when a
                // new conversation counts against the address.
                if self.fresh.is_some()
                    && let Some(ip) = self.ip
                    && let Err(refused) = self.state.limits.new_session(ip)
                {
                    return self
                        .rate_limited("sessions", "too many new conversations", refused, id)
                        .await;
                }
                if let Some(fresh) = self.fresh.take() {
                    let session = match self.state.hub.create(&self.state.store, fresh).await {
                        Ok(s) => s,
                        Err(e) => {
                            self.fresh = Some(fresh);
                            return self.internal(e.to_string(), Some(id)).await;
                        }
                    };
                    let events = session.subscribe();
                    self.claim(&session).await;
                    self.attach(session, events, 0);
                }
                self.on_customer_message(id, text).await
            }
        }
    }

    /// Stores the customer's rating of their conversation as an event the
    /// widget and the console see.
    async fn on_rating(&mut self, score: u8, comment: Option<String>) -> Flow {
        let Some(session) = self.joined.as_ref().map(|j| j.session.clone()) else {
            return self
                .refuse(FrameError {
                    code: ErrorCode::NoConversation,
                    message: "there is no conversation to rate yet".into(),
                    id: None,
                })
                .await;
        };
        let t = &self.state.texts.rating;
        let mut text = t.event.replace("{score}", &score.to_string());
        if let Some(c) = &comment {
            text.push(' ');
            text.push_str(&t.comment.replace("{comment}", c));
        }
        match self
            .state
            .store
            .rate(session.id, score, comment, text)
            .await
        {
            Ok(stored) => {
                self.errors_in_a_row = 0;
                if let Some(frame) = ServerFrame::from_person(&stored) {
                    session.publish(frame);
                }
                self.state.events.changed(session.id, Some(stored.seq));
                Flow::Continue
            }
            Err(e) => self.internal(e.to_string(), None).await,
        }
    }

    /// Refuses a message over one of the address's allowances, counted
    /// under `limit`.
    async fn rate_limited(
        &mut self,
        limit: &str,
        what: &str,
        refused: crate::limits::Refused,
        id: String,
    ) -> Flow {
        self.state.metrics.refused(limit);
        self.refuse(FrameError {
            code: ErrorCode::RateLimited,
            message: format!(
                "{what} from your address; send it again in {} s",
                refused.retry_after_secs()
            ),
            id: Some(id),
        })
        .await
    }

    /// Resumes a stored session, or gives a new one its id (it is created
    /// with its first message). A conversation of a signed-in customer is
    /// resumed only by that customer: after a sign-out or a switch of
    /// account in the same browser, a new one starts.
    async fn hello(&mut self, session_id: Option<Uuid>, last_seq: i64) -> Flow {
        let session_id = match session_id {
            Some(id) => match self.state.store.customer(id).await {
                Ok(Some(owner)) if self.customer.as_deref() != Some(&owner) => None,
                Ok(_) => Some(id),
                Err(e) => return self.internal(e.to_string(), None).await,
            },
            None => None,
        };
        let resumed = match session_id {
            Some(id) => match self.state.hub.resume(&self.state.store, id).await {
                Ok(r) => r,
                Err(e) => return self.internal(e.to_string(), None).await,
            },
            None => None,
        };
        if let Some(opened) = resumed {
            return self.join(opened, last_seq).await;
        }
        let id = Uuid::new_v4();
        let welcome = self.welcome(id, false, 0, Handler::bot());
        if self.send(&welcome).await.is_err() {
            return Flow::Close(None);
        }
        self.fresh = Some(id);
        Flow::Continue
    }

    /// Joins a stored session and replays what the client has not seen.
    async fn join(&mut self, opened: Opened, last_seq: i64) -> Flow {
        let session = opened.session;
        name_span(session.id);
        // Subscribe before reading the store so nothing falls between the two.
        let events = session.subscribe();
        // The store's numbering wins: a client ahead of it (the database was
        // reset or restored) would otherwise never see a reply again. The
        // welcome's `last_seq` tells it where the store stands.
        let store_last = match self.state.store.last_seq(session.id).await {
            Ok(n) => n,
            Err(e) => return self.internal(e.to_string(), None).await,
        };
        let after = last_seq.clamp(0, store_last);
        let history = match self.state.store.messages_after(session.id, after).await {
            Ok(h) => h,
            Err(e) => return self.internal(e.to_string(), None).await,
        };
        let stored_last = history.last().map(|m| m.seq).unwrap_or(after);
        let welcome = self.welcome(session.id, opened.resumed, stored_last, session.handler());
        if self.send(&welcome).await.is_err() {
            return Flow::Close(None);
        }
        for message in &history {
            if self
                .send(&ServerFrame::History(HistoryEntry::from(message)))
                .await
                .is_err()
            {
                return Flow::Close(None);
            }
        }
        tracing::info!(
            resumed = opened.resumed,
            replayed = history.len(),
            "session joined"
        );
        self.claim(&session).await;
        self.attach(session.clone(), events, stored_last);
        if opened.loaded {
            self.answer_unanswered(session).await;
        }
        Flow::Continue
    }

    /// Records the signed-in customer on their conversation (the console
    /// shows who they are) and gives the bot their e-mail address, so it
    /// is not asked for again.
    async fn claim(&mut self, session: &LiveSession) {
        if let Some(visitor) = self.visitor
            && let Err(e) = self.state.store.set_visitor(session.id, visitor).await
        {
            tracing::error!(error = %e, "cannot record the visitor id");
        }
        let Some(customer) = self.customer.as_deref() else {
            return;
        };
        if let Err(e) = self
            .state
            .store
            .set_customer(session.id, customer.clone())
            .await
        {
            tracing::error!(error = %e, "cannot record the signed-in customer");
        }
        let email = customer.email.clone();
        session.update_dialogue(|d| d.slots.email = Some(email));
        self.state.events.changed(session.id, None);
    }

    /// The first frame a client gets: its session, where the store stands,
    /// who answers, and the shop's greeting.
    fn welcome(
        &self,
        session_id: Uuid,
        resumed: bool,
        last_seq: i64,
        handler: Handler,
    ) -> ServerFrame {
        ServerFrame::Welcome {
            session_id,
            resumed,
            last_seq,
            handled_by: handler.status,
            agent: handler.agent.filter(|_| handler.status == Status::Agent),
            greeting: self.state.texts.greeting.clone(),
            suggestions: self.state.texts.suggestions.clone(),
        }
    }

    /// Makes `session` this connection's: its events reach the client from
    /// after `replayed_up_to`, and the console sees it connected.
    fn attach(
        &mut self,
        session: Arc<LiveSession>,
        events: broadcast::Receiver<ServerFrame>,
        replayed_up_to: i64,
    ) {
        name_span(session.id);
        let forwarder =
            tokio::spawn(forward(events, self.out_tx.clone(), replayed_up_to).in_current_span());
        let id = session.id;
        self.joined = Some(Joined {
            _guard: session.connect(),
            session,
            forwarder,
        });
        self.state.events.changed(id, None);
    }

    /// After a restart, answers customer messages that were stored but never replied to.
    async fn answer_unanswered(&self, session: Arc<LiveSession>) {
        match self.state.store.unanswered(session.id).await {
            Ok(pending) => {
                for m in pending {
                    if let Some(id) = m.client_id {
                        tokio::spawn(
                            responder::answer(
                                self.state.clone(),
                                session.clone(),
                                responder::Question {
                                    id,
                                    seq: m.seq,
                                    text: m.text,
                                    ip: self.ip,
                                },
                            )
                            .in_current_span(),
                        );
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot look up unanswered messages"),
        }
    }

    async fn on_customer_message(&mut self, id: String, text: String) -> Flow {
        let Some(joined) = &self.joined else {
            return Flow::Continue;
        };
        let session = joined.session.clone();
        session.touch();
        let Some(place) = session.queue_answer() else {
            self.state.metrics.refused("queued_answers");
            return self
                .refuse(FrameError {
                    code: ErrorCode::RateLimited,
                    message: "wait for the answers to your earlier messages, then send it again"
                        .into(),
                    id: Some(id),
                })
                .await;
        };
        let appended = match self
            .state
            .store
            .append_customer(session.id, id.clone(), text.clone())
            .await
        {
            Ok(a) => a,
            Err(e) => return self.internal(e.to_string(), Some(id)).await,
        };
        let ack = ServerFrame::Ack {
            id: id.clone(),
            seq: appended.seq,
            duplicate: appended.duplicate,
        };
        if self.send(&ack).await.is_err() {
            return Flow::Close(None);
        }
        if !appended.duplicate {
            self.state.metrics.messages.inc();
            // Writing into a closed conversation reopens it (the store did too).
            if session.handler().status == Status::Closed {
                session.set_handler(Handler::bot());
            }
            self.state.events.changed(session.id, Some(appended.seq));
            let answer = responder::answer(
                self.state.clone(),
                session,
                responder::Question {
                    id,
                    seq: appended.seq,
                    text,
                    ip: self.ip,
                },
            );
            tokio::spawn(
                async move {
                    let _place = place;
                    answer.await
                }
                .in_current_span(),
            );
        }
        Flow::Continue
    }

    async fn internal(&mut self, detail: String, id: Option<String>) -> Flow {
        tracing::error!(error = %detail, "internal error");
        let frame = ServerFrame::Error {
            code: ErrorCode::Internal,
            message: "something went wrong on our side; please try again".into(),
            id,
        };
        if self.send(&frame).await.is_err() {
            return Flow::Close(None);
        }
        Flow::Continue
    }
}

/// Names the connection's session on its span, so every line logged for
/// the conversation from here on carries it.
fn name_span(session: Uuid) {
    tracing::Span::current().record(
        "session",
        tracing::field::display(crate::telemetry::session_ref(session)),
    );
}

/// Copies the session's broadcast into this connection's queue, skipping
/// replies the client already got in the history replay.
async fn forward(
    mut events: broadcast::Receiver<ServerFrame>,
    out: mpsc::Sender<Box<ServerFrame>>,
    replayed_up_to: i64,
) {
    loop {
        match events.recv().await {
            Ok(frame) if frame.seq().is_some_and(|seq| seq <= replayed_up_to) => {}
            Ok(frame) => {
                if out.send(Box::new(frame)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "connection fell behind the session's events");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
