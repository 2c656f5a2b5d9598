//! Websocket frames the protocol layer refuses, spoken byte by byte: what
//! the client is told, and that a refused frame is not read whole.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tempfile::TempDir;

use crate::helpers::{AppOptions, spawn_app, spawn_app_with};

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const FIN: u8 = 0x80;

/// A websocket client that writes frames as raw bytes.
struct RawWs {
    tcp: TcpStream,
    read: Vec<u8>,
}

impl RawWs {
    async fn connect(port: u16) -> RawWs {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
              Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
        let mut raw = RawWs {
            tcp,
            read: Vec::new(),
        };
        let end = loop {
            if let Some(i) = raw.read.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(raw.fill().await, "handshake answered");
        };
        let head = String::from_utf8_lossy(&raw.read[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw.read.drain(..end);
        raw
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(10), self.tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.read.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// Writes one masked frame; `first` is FIN, RSV and opcode bits.
    async fn send(&mut self, first: u8, payload: &[u8]) {
        let mut frame = vec![first];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [7u8, 1, 9, 3];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&frame).await.unwrap();
    }

    /// The server's next frame (opcode, payload), or `None` once the
    /// connection ended.
    async fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.read.len() >= 2 {
                let opcode = self.read[0] & 0x0f;
                let (len, start) = match self.read[1] & 0x7f {
                    126 if self.read.len() >= 4 => {
                        (u16::from_be_bytes([self.read[2], self.read[3]]) as usize, 4)
                    }
                    127 if self.read.len() >= 10 => (
                        u64::from_be_bytes(self.read[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    n if n < 126 => (n as usize, 2),
                    _ => (usize::MAX, 0),
                };
                if len != usize::MAX && self.read.len() >= start + len {
                    let payload = self.read[start..start + len].to_vec();
                    self.read.drain(..start + len);
                    return Some((opcode, payload));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The error frame's code, then the close frame's status code.
    async fn error_then_close(&mut self) -> (String, u16) {
        let (opcode, payload) = self.next().await.expect("an error frame");
        assert_eq!(opcode, TEXT);
        let error: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(error["type"], "error", "{error}");
        let (opcode, payload) = self.next().await.expect("a close frame");
        assert_eq!(opcode, CLOSE);
        let status = u16::from_be_bytes([payload[0], payload[1]]);
        (error["code"].as_str().unwrap().to_string(), status)
    }
}

#[tokio::test]
async fn invalid_utf8_is_an_invalid_frame() {
    let app = spawn_app().await;
    let mut ws = RawWs::connect(app.port).await;
    ws.send(FIN | TEXT, &[b'{', 0xff, 0xfe, b'}']).await;
    assert_eq!(ws.error_then_close().await, ("invalid_frame".into(), 1002));
}

#[tokio::test]
async fn reserved_bits_are_an_invalid_frame() {
    let app = spawn_app().await;
    let mut ws = RawWs::connect(app.port).await;
    ws.send(FIN | 0x40 | TEXT, br#"{"type":"ping"}"#).await;
    assert_eq!(ws.error_then_close().await, ("invalid_frame".into(), 1002));
}

#[tokio::test]
async fn a_fragmented_message_over_the_limit_is_too_long() {
    let app = spawn_app().await;
    let mut ws = RawWs::connect(app.port).await;
    let piece = vec![b'a'; 8 * 1024];
    ws.send(TEXT, &piece).await;
    for _ in 0..3 {
        ws.send(CONTINUATION, &piece).await;
    }
    ws.send(FIN | CONTINUATION, &piece).await;
    assert_eq!(
        ws.error_then_close().await,
        ("message_too_long".into(), 1009)
    );
}

#[tokio::test]
async fn a_huge_frame_is_refused_by_its_header_not_buffered() {
    let app = spawn_app().await;
    let mut ws = RawWs::connect(app.port).await;
    let before = rss_bytes();
    // A text frame that announces 1 GiB.
    let mut header = vec![FIN | TEXT, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    ws.tcp.write_all(&header).await.unwrap();
    ws.tcp.write_all(&vec![0u8; 1 << 20]).await.unwrap();
    assert_eq!(
        ws.error_then_close().await,
        ("message_too_long".into(), 1009)
    );
    // The rest, as fast as it goes: the server drops it unread, then the
    // connection.
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..512 {
        let write = ws.tcp.write_all(&chunk);
        match tokio::time::timeout(Duration::from_secs(10), write).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 128 << 20, "server memory grew {} MB", grown >> 20);
    // A customer beside it is served as usual.
    let mut customer = app.connect().await;
    customer.hello(None, None).await;
}

/// This process's resident memory; the server under test runs in it.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let app = spawn_app_with(
        AppOptions {
            configure: |c| {
                c.heartbeat_secs = 1;
                c.client_timeout_secs = 2;
            },
            ..AppOptions::default()
        },
        TempDir::new().unwrap(),
    )
    .await;
    let mut ws = RawWs::connect(app.port).await;
    ws.send(FIN | TEXT, br#"{"type":"message","id":"m1","text":"hi"}"#)
        .await;
    let connected = Instant::now();
    while app.state.hub.connected() == 0 {
        assert!(
            connected.elapsed() < Duration::from_secs(10),
            "never joined"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Pings, each answered with a pong that is never read, until the
    // server's buffers are full and it stops reading too.
    let ping = br#"{"type":"ping"}"#;
    for _ in 0..2_000_000 {
        let write = ws.send(FIN | TEXT, ping);
        if tokio::time::timeout(Duration::from_secs(1), write)
            .await
            .is_err()
        {
            break;
        }
    }
    let stalled = Instant::now();
    while app.state.hub.connected() > 0 {
        assert!(
            stalled.elapsed() < Duration::from_secs(15),
            "a client that stopped reading is still connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
