//! A netlink connection of one user (a set backend, the conntrack lookup): the socket, opened
//! on first use with the user's answer timeout, and thrown away after a failed exchange.
//!
//! Owns: when the socket is opened and when it is dropped. A failed exchange (a timeout, an
//! I/O error, an answer we could not read) leaves the socket in an unknown state: answers may
//! still be on their way or half read. The next request opens a fresh socket, with a new port
//! id, so nothing left over can reach it. (Sequence numbers already keep a late answer from
//! being taken for a later request's, see [`Socket`]; this also frees its buffer space.)
//!
//! It does not own what is sent or what the answers mean: that is its users'.

use std::time::Duration;

use crate::io::netlink;
use crate::io::netlink::Exchange;
use crate::io::netlink::Expect;
use crate::io::netlink::SMALL_RECEIVE;
use crate::io::netlink::Socket;

/// The socket of one user, if open, and the bound on each exchange.
#[derive(Debug)]
pub(crate) struct Link {
    socket: Option<Socket>,
    timeout: Duration,
}

impl Link {
    /// Nothing is opened until the first call.
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            socket: None,
            timeout,
        }
    }

    /// Bound later exchanges to `timeout` (including on a socket already open).
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        if let Some(socket) = &mut self.socket {
            socket.set_answer_timeout(timeout);
        }
    }

    /// The socket, opened now if needed (for sequence numbers before a request is built).
    pub(crate) fn socket(&mut self) -> Result<&mut Socket, netlink::Error> {
        self.open()
    }

    /// Send `request` and wait for the answers `expect` names, at most the timeout. After
    /// any failure the socket is dropped, and the next call opens a new one.
    pub(crate) fn exchange(
        &mut self,
        request: &[u8],
        expect: Expect<'_>,
    ) -> Result<Exchange, netlink::Error> {
        self.on_socket(|socket| socket.exchange(request, expect, &mut |_| {}))
    }

    /// Send a batch that asks for no ACKs and collect its refusals
    /// ([`Socket::send_batch`]). After any failure the socket is dropped, as in
    /// [`Link::exchange`].
    pub(crate) fn send_batch(
        &mut self,
        request: &[u8],
        sent: &[u32],
    ) -> Result<Exchange, netlink::Error> {
        self.on_socket(|socket| socket.send_batch(request, sent))
    }

    /// Run `exchange` on the socket (opened if needed); drop the socket if it fails.
    fn on_socket(
        &mut self,
        exchange: impl FnOnce(&mut Socket) -> Result<Exchange, netlink::Error>,
    ) -> Result<Exchange, netlink::Error> {
        let result = exchange(self.open()?);
        if let Err(error) = &result {
            log::debug!("netlink exchange failed ({error}); the next request uses a new socket");
            self.socket = None;
        }
        result
    }

    /// Whether a socket is open (tests).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.socket.is_some()
    }

    fn open(&mut self) -> Result<&mut Socket, netlink::Error> {
        if self.socket.is_none() {
            let mut opened = Socket::open(SMALL_RECEIVE)?;
            opened.set_answer_timeout(self.timeout);
            self.socket = Some(opened);
        }
        // NOTE(unwrap): filled just above.
        Ok(self.socket.as_mut().expect("socket opened above"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A message whose length field claims more than was sent: nfnetlink_rcv drops it
    /// without a word, before any permission check (net/netfilter/nfnetlink.c), so this runs
    /// without root. Its sequence number is `seq`.
    fn cut_short(seq: u32) -> Vec<u8> {
        let mut header = Vec::new();
        header.extend_from_slice(&64u32.to_ne_bytes()); // nlmsg_len: 64, but 16 are sent
        header.extend_from_slice(&1u16.to_ne_bytes()); // NLMSG_NOOP
        header.extend_from_slice(&5u16.to_ne_bytes()); // NLM_F_REQUEST | NLM_F_ACK
        header.extend_from_slice(&seq.to_ne_bytes());
        header.extend_from_slice(&0u32.to_ne_bytes());
        header
    }

    #[test]
    fn a_timeout_drops_the_socket_and_the_next_call_opens_one_with_the_same_bound() {
        let bound = Duration::from_millis(40);
        let mut link = Link::new(bound);
        let Ok(socket) = link.socket() else {
            eprintln!("skipped: cannot open a netfilter netlink socket here");
            return;
        };
        assert_eq!(socket.answer_timeout(), bound);
        let seq = socket.next_seq();
        let expect = Expect {
            acked: &[seq],
            fatal: &[],
        };
        let started = Instant::now();
        let result = link.exchange(&cut_short(seq), expect);
        assert!(
            matches!(result, Err(netlink::Error::Timeout(after)) if after == bound),
            "{result:?}"
        );
        assert!(started.elapsed() >= bound);
        assert!(!link.is_open(), "the socket was kept after a timeout");

        assert_eq!(link.socket().unwrap().answer_timeout(), bound);
        assert!(link.is_open());
    }

    #[test]
    fn a_new_timeout_applies_to_an_open_socket() {
        let mut link = Link::new(Duration::from_millis(250));
        if link.socket().is_err() {
            eprintln!("skipped: cannot open a netfilter netlink socket here");
            return;
        }
        link.set_timeout(Duration::from_millis(20));
        assert_eq!(
            link.socket().unwrap().answer_timeout(),
            Duration::from_millis(20)
        );
    }
}
