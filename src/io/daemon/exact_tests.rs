//! The kernel set equals the engine's expectations after every verdict: real conversations
//! (bursts, pipelining, supersession, cancellation, close, reset, `221`, failed transfers,
//! keys moving between connections, a set that refuses installs) driven through the worker
//! against a model of the set.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;

use super::source::QueuedPacket;
use super::tests::FakeQueue;
use super::worker::Clock;
use super::worker::Worker;
use super::worker::WorkerSettings;
use crate::action::Verdict;
use crate::config::Config;
use crate::engine::Engine;
use crate::expect::DataKey;
use crate::io::backend::Backend;
use crate::io::backend::BackendError;
use crate::io::backend::Element;
use crate::testkit::conversation::Conversation;
use crate::testkit::conversation::Side::Client;
use crate::testkit::conversation::Side::Server;
use crate::testkit::conversation::logged_in;

/// The kernel set as a model: elements and their timeouts, an optional size (nft `size`; an
/// install batch that does not fit is refused whole, as an nf_tables transaction is).
#[derive(Debug, Default)]
struct ModelSet {
    elements: BTreeMap<DataKey, std::time::Duration>,
    size: Option<usize>,
    refused_batches: usize,
    /// The kernel "does not answer" the next install (it takes effect anyway, as a late
    /// netlink transaction can).
    silent_once: bool,
}

#[derive(Clone, Default)]
struct ModelBackend(Arc<Mutex<ModelSet>>);

impl Backend for ModelBackend {
    fn describe(&self) -> String {
        "model".into()
    }

    fn check(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    fn install(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        let mut set = self.0.lock().unwrap();
        let new = elements
            .iter()
            .filter(|e| !set.elements.contains_key(&e.key))
            .count();
        if set.size.is_some_and(|size| set.elements.len() + new > size) {
            set.refused_batches += 1;
            return Err(BackendError::SetFull {
                set: "model".into(),
            });
        }
        for e in elements {
            set.elements.insert(e.key, e.timeout);
        }
        if std::mem::take(&mut set.silent_once) {
            return Err(BackendError::Timeout {
                set: "model".into(),
                after: std::time::Duration::from_millis(250),
            });
        }
        Ok(())
    }

    fn remove(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        let mut set = self.0.lock().unwrap();
        for e in elements {
            set.elements.remove(&e.key);
        }
        Ok(())
    }
}

struct Rig {
    worker: Worker,
    queue: FakeQueue,
    set: ModelBackend,
    next_id: u32,
    most: usize,
}

impl Rig {
    fn new(config: Config, size: Option<usize>, on_install_error: Verdict) -> Self {
        let set = ModelBackend::default();
        set.0.lock().unwrap().size = size;
        let settings = WorkerSettings {
            on_install_error,
            unjudged: Verdict::Accept,
            cleanup: false,
            stats_interval: None,
            state: None,
        };
        let worker = Worker::new(
            "queue 0".into(),
            Engine::new(config),
            Box::new(set.clone()),
            settings,
            Clock::start(),
        );
        Self {
            worker,
            queue: FakeQueue::new(),
            set,
            next_id: 0,
            most: 0,
        }
    }

    /// Hand every packet to the worker; after each verdict the set must equal the engine's
    /// expectations.
    fn feed(&mut self, packets: &[Vec<u8>]) {
        for bytes in packets {
            self.one(bytes);
        }
    }

    fn one(&mut self, bytes: &[u8]) -> String {
        self.next_id += 1;
        let packet = QueuedPacket {
            id: self.next_id,
            payload: bytes.to_vec(),
            truncated: false,
        };
        self.worker.handle(&mut self.queue, &packet);
        let held = self.held();
        let expected: BTreeSet<DataKey> = self
            .worker
            .engine()
            .expectations()
            .iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(held, expected, "after packet {}", self.next_id);
        self.most = self.most.max(held.len());
        self.queue.last_verdict()
    }

    fn held(&self) -> BTreeSet<DataKey> {
        self.set
            .0
            .lock()
            .unwrap()
            .elements
            .keys()
            .copied()
            .collect()
    }
}

fn bytes(c: &mut Conversation) -> Vec<Vec<u8>> {
    c.take_packets().into_iter().map(|p| p.bytes).collect()
}

fn ports(count: u16, first: u16) -> String {
    (first..first + count)
        .map(|p| format!("PORT 198,51,100,2,{},{}\r\n", p >> 8, p & 255))
        .collect()
}

#[test]
fn eight_port_lines_in_one_segment_leave_at_most_the_bound_and_nothing_after_close() {
    let mut rig = Rig::new(Config::default(), None, Verdict::Accept);
    let mut c = logged_in("198.51.100.2:40000");
    c.send(Client, ports(8, 50000).as_bytes());
    rig.feed(&bytes(&mut c));
    assert_eq!(rig.held().len(), 4, "the bound is 4");
    assert_eq!(rig.most, 4, "never more than the bound");
    c.send(Server, "200 ok\r\n".repeat(8).as_bytes())
        .fin(Client)
        .fin(Server)
        .ack(Client);
    rig.feed(&bytes(&mut c));
    assert!(rig.held().is_empty(), "the control connection closed");
}

#[test]
fn a_pipelined_pasv_and_quit_answered_in_one_segment_leaves_nothing() {
    let mut rig = Rig::new(Config::default(), None, Verdict::Accept);
    let mut c = logged_in("198.51.100.2:40000");
    c.send(Client, b"PASV\r\nQUIT\r\n").send(
        Server,
        b"227 Entering Passive Mode (203,0,113,2,195,80).\r\n221 Goodbye.\r\n",
    );
    rig.feed(&bytes(&mut c));
    assert!(rig.held().is_empty());
    assert_eq!(
        rig.worker.apply_counters().installed,
        0,
        "the net effect is nothing"
    );
}

#[test]
fn supersession_cancellation_reset_rst_and_transfers() {
    let mut rig = Rig::new(Config::default(), None, Verdict::Accept);
    let mut c = logged_in("198.51.100.2:40000");
    for p in 0..6u8 {
        c.send(Client, b"PASV\r\n")
            .send(Server, format!("227 (203,0,113,2,195,{p})\r\n").as_bytes());
    }
    // A failed transfer spends nothing; a completed one spends what came before it.
    c.send(Client, b"RETR a\r\n").send(Server, b"550 no\r\n");
    c.send(Client, b"PORT 198,51,100,2,196,1\r\n")
        .send(Server, b"500 Illegal PORT command.\r\n");
    c.send(Client, b"PASV\r\nRETR b\r\n").send(
        Server,
        b"227 (203,0,113,2,195,99)\r\n150 go\r\n226 done\r\n",
    );
    c.send(Client, b"EPSV\r\n")
        .send(Server, b"229 (|||50100|)\r\n");
    c.send(Client, b"REIN\r\n").send(Server, b"220 again\r\n");
    c.send(Client, b"PORT 198,51,100,2,196,2\r\n")
        .send(Server, b"200 ok\r\n");
    c.rst(Client);
    rig.feed(&bytes(&mut c));
    assert!(rig.held().is_empty());
    assert!(rig.most <= 4);
}

#[test]
fn a_key_announced_by_another_connection_stays_when_the_first_closes() {
    let mut rig = Rig::new(Config::default(), None, Verdict::Accept);
    let mut a = logged_in("198.51.100.2:40000");
    let mut b = logged_in("198.51.100.2:40001");
    let pasv_227 = |c: &mut Conversation| {
        c.send(Client, b"PASV\r\n")
            .send(Server, b"227 (203,0,113,2,195,80)\r\n");
    };
    pasv_227(&mut a);
    rig.feed(&bytes(&mut a));
    pasv_227(&mut b);
    rig.feed(&bytes(&mut b));
    a.fin(Client).fin(Server);
    rig.feed(&bytes(&mut a));
    assert_eq!(rig.held().len(), 1, "b still owns it");
    b.send(Client, b"QUIT\r\n").send(Server, b"221 bye\r\n");
    rig.feed(&bytes(&mut b));
    assert!(rig.held().is_empty());
}

#[test]
fn a_full_set_refuses_and_the_engine_withdraws_what_failed() {
    let mut rig = Rig::new(Config::default(), Some(2), Verdict::Accept);
    let mut c = logged_in("198.51.100.2:40000");
    c.send(Client, ports(3, 50000).as_bytes());
    rig.feed(&bytes(&mut c));
    // One batch of three did not fit: none is held, none is believed held.
    assert!(rig.held().is_empty());
    assert_eq!(rig.set.0.lock().unwrap().refused_batches, 1);
    assert_eq!(rig.worker.engine().stats().install_errors, 3);
    c.send(Client, ports(2, 50010).as_bytes());
    rig.feed(&bytes(&mut c));
    assert_eq!(rig.held().len(), 2);
}

#[test]
fn a_dropped_packet_whose_install_failed_retries_on_its_retransmission() {
    let mut rig = Rig::new(Config::default(), Some(0), Verdict::Drop);
    let mut c = logged_in("198.51.100.2:40000");
    rig.feed(&bytes(&mut c));
    let announce = c.segment_at(Client, 0, b"PASV\r\n");
    c.advance(Client, 6);
    rig.one(&announce);
    let reply = c.segment_at(Server, 0, b"227 (203,0,113,2,195,80)\r\n");
    assert_eq!(
        rig.one(&reply),
        "Drop",
        "the install failed: the 227 is held back"
    );
    assert!(rig.held().is_empty());
    // The set has room again; the server retransmits the 227.
    rig.set.0.lock().unwrap().size = None;
    assert_eq!(rig.one(&reply), "Accept");
    assert_eq!(rig.held().len(), 1, "the retransmission installed it");
    assert_eq!(rig.worker.engine().stats().install_retries, 1);
    // A second retransmission only refreshes it.
    assert_eq!(rig.one(&reply), "Accept");
    assert_eq!(rig.worker.engine().stats().install_retries, 1);
}

#[test]
fn a_full_flow_table_evicts_and_the_set_follows() {
    let config = Config {
        max_flows: 2,
        ..Config::default()
    };
    let mut rig = Rig::new(config, None, Verdict::Accept);
    for port in 40000..40004u16 {
        let mut c = logged_in(&format!("198.51.100.2:{port}"));
        c.send(Client, b"PASV\r\n").send(
            Server,
            format!("227 (203,0,113,2,195,{})\r\n", port - 40000).as_bytes(),
        );
        rig.feed(&bytes(&mut c));
    }
    assert!(rig.held().len() <= 2);
}

#[test]
fn an_unanswered_install_gives_the_configured_verdict_and_the_set_still_follows() {
    let mut rig = Rig::new(Config::default(), None, Verdict::Drop);
    let mut c = logged_in("198.51.100.2:40000");
    rig.feed(&bytes(&mut c));
    rig.set.0.lock().unwrap().silent_once = true;
    let announce = c.segment_at(Client, 0, b"PORT 198,51,100,2,195,80\r\n");
    // The install "took effect" late: the engine withdraws it, and the removal makes the
    // set agree (checked inside `one`).
    assert_eq!(rig.one(&announce), "Drop");
    assert_eq!(rig.worker.apply_counters().netlink_timeouts, 1);
    assert!(rig.held().is_empty());
    // The client retransmits; now the kernel answers.
    assert_eq!(rig.one(&announce), "Accept");
    assert_eq!(rig.held().len(), 1);
}
