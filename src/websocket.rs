//! Accepting a websocket so that a client cannot make the server buffer
//! more than one frame's worth of its bytes.
//!
//! actix-ws reads everything the connection has ready into one buffer
//! before it decodes, and actix-http's codec refuses an oversized frame
//! only once the whole frame has arrived, so a client announcing a 1 GiB
//! frame made the server buffer it (4 sockets: 1.7 GB in 2 s). The payload
//! handed to actix-ws here is read through a [`FrameScan`] that refuses a
//! frame by the length its header announces, and pauses after a small
//! budget so buffered bytes are decoded before more are read.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev, web};
use actix_ws::{AggregatedMessageStream, ProtocolError};
use futures_util::Stream;

/// Bytes read from the connection between two chances to decode.
const READ_BUDGET: usize = 64 * 1024;

/// Completes the handshake. A frame whose header announces more than
/// `max_frame` bytes, or a fragmented message over it in total, ends the
/// stream with an error for which [`is_too_long`] holds.
pub async fn accept(
    req: &HttpRequest,
    body: web::Payload,
    max_frame: usize,
) -> Result<(HttpResponse, actix_ws::Session, AggregatedMessageStream), actix_web::Error> {
    let guarded: dev::Payload = dev::Payload::Stream {
        payload: Box::pin(Guarded::new(body, max_frame as u64)),
    };
    let body = web::Payload::from_request(req, &mut { guarded }).await?;
    let (response, session, stream) = actix_ws::handle(req, body)?;
    let stream = stream
        .max_frame_size(max_frame)
        .aggregate_continuations()
        .max_continuation_size(max_frame);
    Ok((response, session, stream))
}

/// Whether the stream ended because a frame or message was over the limit.
pub fn is_too_long(error: &ProtocolError) -> bool {
    match error {
        ProtocolError::Overflow => true,
        ProtocolError::Io(e) => {
            matches!(
                e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<PayloadError>()),
                Some(PayloadError::Overflow)
            ) || e.to_string().contains("maximum continuation size")
        }
        _ => false,
    }
}

/// Follows frame boundaries in a client's byte stream and reads each
/// frame's announced payload length from its header.
#[derive(Debug, Default)]
pub struct FrameScan {
    /// The current frame header's bytes so far (at most 14).
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
}

impl FrameScan {
    /// Takes the next bytes of the stream; `Err` with the announced length
    /// of the first frame over `max`.
    pub fn feed(&mut self, mut bytes: &[u8], max: u64) -> Result<(), u64> {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = self.payload_left.min(bytes.len() as u64);
                self.payload_left -= skip;
                bytes = &bytes[skip as usize..];
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            if let Some(length) = announced_length(&self.header) {
                if length > max {
                    return Err(length);
                }
                self.payload_left = length;
                self.header.clear();
            }
        }
        Ok(())
    }
}

/// The payload length a complete frame header announces (RFC 6455 §5.2),
/// or `None` while the header is incomplete.
fn announced_length(header: &[u8]) -> Option<u64> {
    let second = *header.get(1)?;
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    if header.len() < 2 + extended + mask {
        return None;
    }
    Some(match extended {
        0 => u64::from(second & 0x7f),
        2 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        _ => u64::from_be_bytes(header[2..10].try_into().expect("8 bytes")),
    })
}

/// The client's bytes, checked frame by frame and read at most `budget`
/// at a time before saying "pending" (and asking to be polled again).
struct Guarded<S> {
    inner: S,
    scan: FrameScan,
    max_frame: u64,
    budget: usize,
    since_pause: usize,
    refused: bool,
}

impl<S> Guarded<S> {
    fn new(inner: S, max_frame: u64) -> Self {
        Guarded {
            inner,
            scan: FrameScan::default(),
            max_frame,
            budget: READ_BUDGET,
            since_pause: 0,
            refused: false,
        }
    }
}

impl<S> Stream for Guarded<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(None);
        }
        if this.since_pause >= this.budget {
            this.since_pause = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(bytes))) => {
                this.since_pause += bytes.len();
                if let Err(length) = this.scan.feed(bytes, this.max_frame) {
                    tracing::info!(
                        length,
                        limit = this.max_frame,
                        "frame refused by its header"
                    );
                    this.refused = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
            }
            Poll::Pending => this.since_pause = 0,
            _ => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker_ref;

    /// A connection that always has another chunk ready.
    struct Endless;

    impl Stream for Endless {
        type Item = Result<Bytes, PayloadError>;
        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(Some(Ok(Bytes::from_static(&[0u8; 1000]))))
        }
    }

    #[test]
    fn an_endless_sender_is_paused_after_the_budget() {
        let mut paced = Guarded::new(Endless, u64::MAX);
        paced.budget = 4096;
        let mut cx = Context::from_waker(noop_waker_ref());
        for _round in 0..3 {
            let mut read = 0;
            while let Poll::Ready(Some(Ok(b))) = Pin::new(&mut paced).poll_next(&mut cx) {
                read += b.len();
            }
            assert_eq!(read, 5000, "reads stop at the first chunk past the budget");
        }
    }

    /// A masked client frame's bytes with a payload of `len` bytes.
    fn frame(len: usize) -> Vec<u8> {
        let mut f = vec![0x81];
        match len {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    proptest::proptest! {
        /// However the bytes are split, frames within the limit pass and
        /// the first frame over it is refused with its announced length.
        #[test]
        fn frames_are_judged_by_their_header_however_split(
            lengths in proptest::collection::vec(0usize..70_000, 1..6),
            cuts in proptest::collection::vec(1usize..5_000, 1..40),
            max in 0u64..80_000,
        ) {
            let bytes: Vec<u8> = lengths.iter().flat_map(|&n| frame(n)).collect();
            let expected = lengths.iter().map(|&n| n as u64).find(|&n| n > max);
            let mut scan = FrameScan::default();
            let mut rest = bytes.as_slice();
            let mut got = None;
            for cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
                rest = tail;
                if let Err(n) = scan.feed(chunk, max) {
                    got = Some(n);
                    break;
                }
            }
            proptest::prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn a_header_announcing_a_gigabyte_is_refused_before_its_payload() {
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(FrameScan::default().feed(&header, 17_408), Err(1 << 30));
    }
}
