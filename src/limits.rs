//! Rate limits per client address, so one client cannot slow the others
//! down: customer messages (over all of an address's connections), new
//! conversations, console sign-ins and admin writes, each a GCRA allowance
//! from `governor`, and open chat sockets, a count. Password
//! hashing, the costly part of a sign-in, also runs one at a time, so even
//! many addresses at once keep it to one core.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::Config;

/// Messages an address may send at once before its per-minute pace
/// applies: at least this many, or ten seconds' worth.
const MESSAGE_BURST: u32 = 10;
/// Sign-in attempts an address may make at once.
const SIGN_IN_BURST: u32 = 5;
/// Admin writes an address may make at once (an editor's burst of saves).
const ADMIN_WRITE_BURST: u32 = 10;
/// Order checks one address may make at once.
const ORDER_CHECK_BURST: u32 = 5;
/// New conversations an address may start at once (a family's tabs).
const SESSION_BURST: u32 = 5;

pub struct Limits {
    messages: DefaultKeyedRateLimiter<IpAddr>,
    sign_ins: DefaultKeyedRateLimiter<IpAddr>,
    sessions: DefaultKeyedRateLimiter<IpAddr>,
    admin_writes: DefaultKeyedRateLimiter<IpAddr>,
    order_checks: DefaultKeyedRateLimiter<IpAddr>,
    /// Open chat sockets per address; an address leaves the map at zero.
    sockets: Arc<DashMap<IpAddr, u32>>,
    max_sockets: u32,
    /// Password hashes computed at the same time.
    pub hashing: tokio::sync::Semaphore,
    behind_proxy: bool,
}

/// Over a limit: when the client may try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    pub retry_after: Duration,
}

impl Refused {
    /// Whole seconds to wait, at least one (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        let quota = |per_minute: u32, burst: u32| {
            let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst.min(per_minute.get())).unwrap_or(NonZeroU32::MIN);
            Quota::per_minute(per_minute).allow_burst(burst)
        };
        Limits {
            messages: DefaultKeyedRateLimiter::keyed(quota(
                config.messages_per_minute,
                MESSAGE_BURST.max(config.messages_per_minute / 6),
            )),
            sign_ins: DefaultKeyedRateLimiter::keyed(quota(
                config.sign_ins_per_minute,
                SIGN_IN_BURST,
            )),
            sessions: DefaultKeyedRateLimiter::keyed(quota(
                config.sessions_per_minute,
                SESSION_BURST.max(config.sessions_per_minute / 6),
            )),
            admin_writes: DefaultKeyedRateLimiter::keyed(quota(
                config.admin_writes_per_minute,
                ADMIN_WRITE_BURST.max(config.admin_writes_per_minute / 2),
            )),
            order_checks: DefaultKeyedRateLimiter::keyed(quota(
                config.order_checks_per_minute,
                ORDER_CHECK_BURST.max(config.order_checks_per_minute / 2),
            )),
            sockets: Arc::default(),
            max_sockets: config.sockets_per_ip,
            hashing: tokio::sync::Semaphore::new(1),
            behind_proxy: config.behind_proxy,
        }
    }

    /// Takes one customer message from `ip`'s allowance.
    pub fn message(&self, ip: IpAddr) -> Result<(), Refused> {
        check(&self.messages, ip)
    }

    /// Takes one sign-in attempt from `ip`'s allowance.
    pub fn sign_in(&self, ip: IpAddr) -> Result<(), Refused> {
        check(&self.sign_ins, ip)
    }

    /// Takes one new conversation from `ip`'s allowance.
    pub fn new_session(&self, ip: IpAddr) -> Result<(), Refused> {
        check(&self.sessions, ip)
    }

    /// Takes one admin write from `ip`'s allowance.
    pub fn admin_write(&self, ip: IpAddr) -> Result<(), Refused> {
        check(&self.admin_writes, ip)
    }

    /// Takes one order lookup or cancellation from `ip`'s allowance.
    pub fn order_check(&self, ip: IpAddr) -> Result<(), Refused> {
        check(&self.order_checks, ip)
    }

    /// Counts a chat socket of `ip` while the slot lives, or `None` when
    /// the address holds `sockets_per_ip` already.
    pub fn open_socket(&self, ip: IpAddr) -> Option<SocketSlot> {
        let mut open = self.sockets.entry(ip).or_insert(0);
        if *open >= self.max_sockets {
            return None;
        }
        *open += 1;
        Some(SocketSlot {
            sockets: self.sockets.clone(),
            ip,
        })
    }

    /// Forgets addresses whose allowance is whole again, so the limiters'
    /// memory follows the clients of the last minute, not of all time.
    pub fn forget_idle(&self) {
        for limiter in [
            &self.messages,
            &self.sign_ins,
            &self.sessions,
            &self.admin_writes,
            &self.order_checks,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The client's address: the connection's peer, or behind a reverse
    /// proxy (a setting: the header can be forged otherwise) the address
    /// the proxy forwarded.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.behind_proxy
            && let Some(ip) = req
                .connection_info()
                .realip_remote_addr()
                .and_then(|a| a.parse::<IpAddr>().ok())
        {
            return Some(ip);
        }
        req.peer_addr().map(|a| a.ip())
    }
}

/// One open chat socket of an address, counted until dropped.
pub struct SocketSlot {
    sockets: Arc<DashMap<IpAddr, u32>>,
    ip: IpAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.sockets.remove_if_mut(&self.ip, |_, open| {
            *open -= 1;
            *open == 0
        });
    }
}

fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr) -> Result<(), Refused> {
    limiter.check_key(&ip).map_err(|not_until| Refused {
        retry_after: not_until.wait_time_from(DefaultClock::default().now()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_allowance_is_refused_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_dirs(dir.path(), dir.path(), dir.path()).unwrap();
        config.messages_per_minute = 6;
        let limits = Limits::new(&config);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..6 {
            assert!(limits.message(a).is_ok());
        }
        let refused = limits.message(a).unwrap_err();
        assert!(
            refused.retry_after <= Duration::from_secs(10),
            "{refused:?}"
        );
        assert!(refused.retry_after_secs() >= 1);
        assert!(limits.message(b).is_ok());
    }

    #[test]
    fn an_address_holds_at_most_its_sockets_and_gets_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_dirs(dir.path(), dir.path(), dir.path()).unwrap();
        config.sockets_per_ip = 2;
        let limits = Limits::new(&config);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let first = limits.open_socket(a).unwrap();
        let _second = limits.open_socket(a).unwrap();
        assert!(limits.open_socket(a).is_none());
        assert!(limits.open_socket("10.0.0.2".parse().unwrap()).is_some());
        drop(first);
        assert!(limits.open_socket(a).is_some());
        // The map forgets an address with no socket open.
        drop(_second);
        assert_eq!(limits.sockets.len(), 0);
    }
}
