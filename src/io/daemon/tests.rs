//! The worker's order of work, driven by an in-memory queue and a recording backend; and the
//! daemon's supervision of its workers, driven by queues that fail.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use std::time::Instant;

use signal_hook::iterator::Signals;

use super::BackendChoice;
use super::DaemonError;
use super::Settings;
use super::WorkerFailure;
use super::serve;
use super::source::PacketSource;
use super::source::QueuedPacket;
use super::spawn;
use super::worker::Clock;
use super::worker::Worker;
use super::worker::WorkerSettings;
use crate::action::Verdict;
use crate::config::Config;
use crate::engine::Engine;
use crate::io::backend::Backend;
use crate::io::backend::BackendError;
use crate::io::backend::Element;
use crate::io::backend::NoBackend;
use crate::io::nfqueue::KernelCounters;
use crate::io::nfqueue::QueueOptions;
use crate::testkit::conversation::Conversation;
use crate::testkit::conversation::Side;

/// What happened, in order, across the queue and the backend.
type Journal = Arc<Mutex<Vec<String>>>;

pub(super) struct FakeQueue {
    journal: Journal,
    fd: UnixStream,
    /// What the kernel's loss counters say (None: no such counters).
    pub(super) kernel: Option<KernelCounters>,
    /// What `try_recv` hands out, oldest first.
    inbox: std::collections::VecDeque<QueuedPacket>,
    /// Journal each read that finds the queue empty.
    journal_empty_reads: bool,
}

impl FakeQueue {
    /// A queue with its own journal.
    pub(super) fn new() -> Self {
        Self {
            journal: Journal::default(),
            fd: UnixStream::pair().unwrap().0,
            kernel: None,
            inbox: std::collections::VecDeque::new(),
            journal_empty_reads: false,
        }
    }

    /// A queue writing to `journal`.
    fn new_with(journal: Journal) -> Self {
        Self {
            journal,
            ..Self::new()
        }
    }

    /// The last verdict given: "Accept" or "Drop".
    pub(super) fn last_verdict(&self) -> String {
        let journal = self.journal.lock().unwrap();
        let last = journal.iter().rev().find(|e| e.starts_with("verdict"));
        last.and_then(|e| e.rsplit(' ').next())
            .unwrap_or("none")
            .to_owned()
    }
}

impl PacketSource for FakeQueue {
    fn try_recv(&mut self) -> std::io::Result<Option<QueuedPacket>> {
        let packet = self.inbox.pop_front();
        if packet.is_none() && self.journal_empty_reads {
            self.journal.lock().unwrap().push("read: empty".to_owned());
        }
        Ok(packet)
    }

    fn verdict(&mut self, id: u32, verdict: Verdict) -> std::io::Result<()> {
        self.journal
            .lock()
            .unwrap()
            .push(format!("verdict {id} {verdict:?}"));
        Ok(())
    }

    fn accept_through(&mut self, id: u32) -> std::io::Result<()> {
        self.journal
            .lock()
            .unwrap()
            .push(format!("verdicts through {id} Accept"));
        Ok(())
    }

    fn release_rewritten(&mut self, id: u32, datagram: &[u8]) -> std::io::Result<()> {
        self.journal
            .lock()
            .unwrap()
            .push(format!("verdict {id} Rewritten({} bytes)", datagram.len()));
        Ok(())
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn kernel_counters(&self) -> Option<KernelCounters> {
        self.kernel
    }
}

struct FakeBackend {
    journal: Journal,
    fail: bool,
}

impl Backend for FakeBackend {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn check(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    fn install(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        for e in elements {
            self.journal.lock().unwrap().push(format!(
                "install {} {}s",
                e.key,
                e.timeout.as_secs()
            ));
        }
        if self.fail {
            return Err(BackendError::Refused {
                set: "fake".into(),
                action: "add",
                reason: "set is full".into(),
            });
        }
        Ok(())
    }

    fn remove(&mut self, elements: &[Element]) -> Result<(), BackendError> {
        for e in elements {
            self.journal
                .lock()
                .unwrap()
                .push(format!("remove {}", e.key));
        }
        Ok(())
    }
}

fn settings() -> WorkerSettings {
    WorkerSettings {
        on_install_error: Verdict::Drop,
        unjudged: Verdict::Accept,
        cleanup: true,
        stats_interval: None,
        state: None,
    }
}

pub(super) fn rig(fail: bool) -> (Worker, FakeQueue, Journal) {
    let journal = Journal::default();
    let backend = FakeBackend {
        journal: journal.clone(),
        fail,
    };
    let worker = Worker::new(
        "queue 0".into(),
        Engine::new(Config::default()),
        Box::new(backend),
        settings(),
        Clock::start(),
    );
    let queue = FakeQueue::new_with(journal.clone());
    (worker, queue, journal)
}

/// A passive session: the 227 (packet 5) announces 203.0.113.2:50000 (195*256+80).
pub(super) fn passive_session() -> Vec<Vec<u8>> {
    let mut c = Conversation::new(
        "198.51.100.2:40000".parse().unwrap(),
        "203.0.113.2:21".parse().unwrap(),
    );
    c.handshake()
        .send(Side::Server, b"220 ready\r\n")
        .send(Side::Client, b"PASV\r\n")
        .send(
            Side::Server,
            b"227 Entering Passive Mode (203,0,113,2,195,80)\r\n",
        )
        .send(Side::Client, b"RETR f\r\n")
        .send(Side::Server, b"150 ok\r\n226 done\r\n")
        .send(Side::Client, b"PASV\r\n");
    c.take_packets().into_iter().map(|p| p.bytes).collect()
}

pub(super) fn feed(worker: &mut Worker, queue: &mut FakeQueue, packets: &[Vec<u8>]) {
    for (id, bytes) in packets.iter().enumerate() {
        let packet = QueuedPacket {
            id: u32::try_from(id).unwrap(),
            payload: bytes.clone(),
            truncated: false,
        };
        worker.handle(queue, &packet);
    }
}

#[test]
fn the_pinhole_is_acknowledged_before_the_announcing_packet_is_released() {
    let (mut worker, mut queue, journal) = rig(false);
    feed(&mut worker, &mut queue, &passive_session());
    let journal = journal.lock().unwrap().clone();
    let install = journal
        .iter()
        .position(|e| e == "install tcp 198.51.100.2 -> 203.0.113.2:50000 30s")
        .unwrap_or_else(|| panic!("no install in {journal:?}"));
    // The 227 is packet 5 (SYN, SYN-ACK, ACK, 220, PASV, 227): its verdict follows the install.
    assert_eq!(journal[install + 1], "verdict 5 Accept", "{journal:?}");
    assert!(journal[..install].iter().all(|e| e.starts_with("verdict")));
    assert_eq!(worker.apply_counters().installed, 1);
    assert_eq!(worker.counters().accepted, 9);
}

#[test]
fn a_failed_install_gives_the_configured_verdict_and_is_counted() {
    let (mut worker, mut queue, journal) = rig(true);
    feed(&mut worker, &mut queue, &passive_session());
    let journal = journal.lock().unwrap().clone();
    assert!(
        journal.contains(&"verdict 5 Drop".to_owned()),
        "{journal:?}"
    );
    assert_eq!(worker.apply_counters().install_errors, 1);
    assert_eq!(worker.counters().dropped, 1);
    assert_eq!(worker.apply_counters().installed, 0);
}

#[test]
fn packets_the_kernel_dropped_before_the_queue_are_counted() {
    // Regression (hostile suite, faults/queue-overflow-drop): a full queue dropped 13,227
    // packets and the daemon neither counted nor logged it.
    let (mut worker, mut queue, _) = rig(false);
    queue.kernel = Some(KernelCounters {
        queue_full: 5,
        socket_full: 2,
    });
    worker.tick(&mut queue);
    queue.kernel = Some(KernelCounters {
        queue_full: 18,
        socket_full: 9,
    });
    worker.tick(&mut queue);
    assert_eq!(
        worker.counters().queue_full_drops,
        0,
        "looked at once a second"
    );
    thread::sleep(Duration::from_millis(1050));
    worker.tick(&mut queue);
    assert_eq!(worker.counters().queue_full_drops, 13);
    assert_eq!(worker.counters().socket_full_drops, 7);
    // The queue was bound again: its counters start from zero, a new baseline.
    queue.kernel = Some(KernelCounters {
        queue_full: 1,
        socket_full: 0,
    });
    thread::sleep(Duration::from_millis(1050));
    worker.tick(&mut queue);
    assert_eq!(worker.counters().queue_full_drops, 13);
}

/// A backend that refuses installs while `failing` (a full or missing set).
struct Flaky {
    failing: Arc<AtomicBool>,
}

impl Backend for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }

    fn check(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    fn install(&mut self, _: &[Element]) -> Result<(), BackendError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BackendError::Refused {
                set: "fake".into(),
                action: "add",
                reason: "set is full".into(),
            });
        }
        Ok(())
    }

    fn remove(&mut self, _: &[Element]) -> Result<(), BackendError> {
        Ok(())
    }
}

#[test]
fn a_failing_set_is_one_fault_until_an_install_works_again() {
    // Regression (hostile suite, faults/nft-table-deleted): every failed update logged two
    // error lines (the install, then the removal that withdraws it) and recovery none.
    let failing = Arc::new(AtomicBool::new(true));
    let mut worker = Worker::new(
        "queue 0".into(),
        Engine::new(Config::default()),
        Box::new(Flaky {
            failing: failing.clone(),
        }),
        settings(),
        Clock::start(),
    );
    let mut queue = FakeQueue::new();
    let mut c = Conversation::new(
        "198.51.100.2:40000".parse().unwrap(),
        "203.0.113.2:21".parse().unwrap(),
    );
    c.handshake().send(Side::Server, b"220 ready\r\n");
    for port in 0..3u8 {
        c.send(Side::Client, b"PASV\r\n").send(
            Side::Server,
            format!("227 Entering Passive Mode (203,0,113,2,195,{port})\r\n").as_bytes(),
        );
    }
    feed(
        &mut worker,
        &mut queue,
        &c.take_packets()
            .into_iter()
            .map(|p| p.bytes)
            .collect::<Vec<_>>(),
    );
    assert_eq!(worker.apply_counters().install_errors, 3);
    assert!(worker.backend_fault_ongoing());
    failing.store(false, Ordering::SeqCst);
    c.send(Side::Client, b"PASV\r\n").send(
        Side::Server,
        b"227 Entering Passive Mode (203,0,113,2,195,9)\r\n",
    );
    let packets: Vec<Vec<u8>> = c.take_packets().into_iter().map(|p| p.bytes).collect();
    for (id, bytes) in packets.iter().enumerate() {
        worker.handle(
            &mut queue,
            &QueuedPacket {
                id: 100 + u32::try_from(id).unwrap(),
                payload: bytes.clone(),
                truncated: false,
            },
        );
    }
    assert_eq!(worker.apply_counters().installed, 1);
    assert!(!worker.backend_fault_ongoing(), "the fault ended");
}

#[test]
fn a_truncated_packet_is_not_judged() {
    let (mut worker, mut queue, journal) = rig(false);
    let packets = passive_session();
    let mut cut = packets[5].clone();
    cut.truncate(40);
    feed(&mut worker, &mut queue, &packets[..5]);
    worker.handle(
        &mut queue,
        &QueuedPacket {
            id: 99,
            payload: cut,
            truncated: true,
        },
    );
    let journal = journal.lock().unwrap().clone();
    assert_eq!(journal.last().unwrap(), "verdict 99 Accept");
    assert!(
        !journal.iter().any(|e| e.starts_with("install")),
        "{journal:?}"
    );
    assert_eq!(worker.counters().truncated, 1);
}

#[test]
fn a_completed_transfer_revokes_and_shutdown_cleans_up_the_rest() {
    let (mut worker, mut queue, journal) = rig(false);
    feed(&mut worker, &mut queue, &passive_session());
    // The second PASV is not answered; its pinhole does not exist. The first was revoked by
    // the 226 (transfer done), so cleanup has nothing left to remove.
    assert!(
        journal
            .lock()
            .unwrap()
            .contains(&"remove tcp 198.51.100.2 -> 203.0.113.2:50000".to_owned())
    );
    assert_eq!(worker.apply_counters().removed, 1);
    let before = journal.lock().unwrap().len();
    worker.shutdown(&mut queue);
    assert_eq!(journal.lock().unwrap().len(), before);
}

#[test]
fn shutdown_removes_live_pinholes_when_asked() {
    let (mut worker, mut queue, journal) = rig(false);
    let packets = passive_session();
    feed(&mut worker, &mut queue, &packets[..6]);
    worker.shutdown(&mut queue);
    assert_eq!(
        journal.lock().unwrap().last().unwrap(),
        "remove tcp 198.51.100.2 -> 203.0.113.2:50000"
    );
}

/// A worker translating with conntrack (faked: the client appears as 203.0.113.77).
fn nat_rig() -> (Worker, FakeQueue, Journal) {
    nat_rig_counting(Arc::new(Mutex::new(0)))
}

/// [`nat_rig`], its conntrack lookups counted in `lookups`.
fn nat_rig_counting(lookups: Arc<Mutex<u32>>) -> (Worker, FakeQueue, Journal) {
    let journal = Journal::default();
    let backend = FakeBackend {
        journal: journal.clone(),
        fail: false,
    };
    let config = Config {
        nat: crate::config::Nat {
            mode: crate::config::NatMode::Conntrack(crate::nat::NatMap::default()),
            ..crate::config::Nat::default()
        },
        ..Config::default()
    };
    let worker = Worker::new(
        "queue 0".into(),
        Engine::new(config),
        Box::new(backend),
        settings(),
        Clock::start(),
    )
    .with_translations(Box::new(FakeConntrack {
        public: "203.0.113.77".parse().unwrap(),
        lookups,
    }));
    let queue = FakeQueue::new_with(journal.clone());
    (worker, queue, journal)
}

// ---- batched verdicts: one receive round -------------------------------------------------

/// Queue `packets` (ids from `first`) and let the worker take them in one receive round.
fn burst(worker: &mut Worker, queue: &mut FakeQueue, packets: &[Vec<u8>], first: u32) {
    for (n, bytes) in packets.iter().enumerate() {
        queue.inbox.push_back(QueuedPacket {
            id: first + u32::try_from(n).unwrap(),
            payload: bytes.clone(),
            truncated: false,
        });
    }
    worker.receive_all(queue).unwrap();
}

#[test]
fn a_burst_of_plain_accepts_gets_one_batch_verdict_split_around_each_backend_call() {
    let (mut worker, mut queue, journal) = rig(false);
    burst(&mut worker, &mut queue, &passive_session(), 0);
    let journal = journal.lock().unwrap().clone();
    // The first packet of the round goes at once; SYN-ACK, ACK, 220, PASV, found waiting
    // behind it, wait together; they go before the 227's install (a backend call), the 227
    // only after its pinhole is acknowledged; the 226's removal splits the rest; the round's
    // end gives the last ones.
    assert_eq!(
        journal,
        [
            "verdict 0 Accept",
            "verdicts through 4 Accept",
            "install tcp 198.51.100.2 -> 203.0.113.2:50000 30s",
            "verdicts through 6 Accept",
            "remove tcp 198.51.100.2 -> 203.0.113.2:50000",
            "verdicts through 8 Accept",
        ],
        "{journal:?}"
    );
    assert_eq!(worker.counters().accepted, 9);
    assert_eq!(worker.counters().verdict_errors, 0);
    assert_eq!(
        (worker.counters().batches, worker.counters().batched),
        (3, 8)
    );
}

#[test]
fn an_idle_gateways_packet_is_released_before_the_queue_is_read_again() {
    // One syscall per packet less than waiting for the round's end: the read that finds the
    // queue empty comes after the verdict, and only once.
    let (mut worker, mut queue, journal) = rig(false);
    queue.journal_empty_reads = true;
    let packets = passive_session();
    burst(&mut worker, &mut queue, &packets[..1], 7);
    assert_eq!(
        *journal.lock().unwrap(),
        ["verdict 7 Accept", "read: empty"]
    );
}

#[test]
fn a_single_waiting_accept_gets_a_plain_verdict() {
    let (mut worker, mut queue, journal) = rig(false);
    let packets = passive_session();
    burst(&mut worker, &mut queue, &packets[..1], 7);
    assert_eq!(*journal.lock().unwrap(), ["verdict 7 Accept"]);
}

#[test]
fn a_drop_in_a_burst_is_given_after_the_accepts_before_it() {
    let (mut worker, mut queue, journal) = rig(true);
    burst(&mut worker, &mut queue, &passive_session(), 0);
    let journal = journal.lock().unwrap().clone();
    // The install fails: the 227 is dropped (on_install_error), in order, never batched.
    assert_eq!(
        journal[..2],
        ["verdict 0 Accept", "verdicts through 4 Accept"],
        "{journal:?}"
    );
    assert_eq!(
        journal[2], "install tcp 198.51.100.2 -> 203.0.113.2:50000 30s",
        "{journal:?}"
    );
    let drop = journal.iter().position(|e| e == "verdict 5 Drop");
    let drop = drop.unwrap_or_else(|| panic!("no drop in {journal:?}"));
    assert!(
        journal[drop + 1..]
            .iter()
            .filter(|e| e.starts_with("verdict"))
            .all(|e| !e.contains(" 5 ")),
        "{journal:?}"
    );
    assert_eq!(journal.last().unwrap(), "verdicts through 8 Accept");
    assert_eq!(worker.counters().dropped, 1);
    assert_eq!(worker.counters().accepted, 8);
}

#[test]
fn no_batch_verdict_while_a_packet_is_held() {
    let (mut worker, mut queue, journal) = nat_rig();
    let mut c = Conversation::new(
        "192.0.2.2:40000".parse().unwrap(),
        "198.51.100.2:21".parse().unwrap(),
    );
    c.login()
        .send_split(Side::Client, b"PORT 192,0,2,2,19,136\r\n", &[10]);
    let ftp: Vec<Vec<u8>> = c.take_packets().into_iter().map(|p| p.bytes).collect();
    // Another connection's packets (not FTP: plain accepts) while the first part is held.
    let mut web = Conversation::new(
        "192.0.2.3:40001".parse().unwrap(),
        "198.51.100.2:80".parse().unwrap(),
    );
    web.handshake()
        .send(Side::Client, b"GET /\r\n")
        .send(Side::Server, b"ok\r\n");
    let web: Vec<Vec<u8>> = web.take_packets().into_iter().map(|p| p.bytes).collect();
    let n = ftp.len();
    let held = u32::try_from(n - 2).unwrap();
    let mut packets = ftp[..n - 1].to_vec();
    packets.extend_from_slice(&web[..3]);
    packets.push(ftp[n - 1].clone());
    packets.extend_from_slice(&web[3..]);
    burst(&mut worker, &mut queue, &packets, 0);
    let journal = journal.lock().unwrap().clone();
    // The first packet at once, the rest of the login's batched up to the held one; while it waits in the kernel, each
    // other packet gets its own verdict (a batch would release the held one); the held part
    // and its completion rewritten after the pinhole; then batching again.
    let expected = [
        "verdict 0 Accept".to_owned(),
        format!("verdicts through {} Accept", held - 1),
        format!("verdict {} Accept", held + 1),
        format!("verdict {} Accept", held + 2),
        format!("verdict {} Accept", held + 3),
        "install tcp 198.51.100.2 -> 192.0.2.2:5000 30s".to_owned(),
        format!("verdict {held} Rewritten(50 bytes)"),
        format!("verdict {} Rewritten(56 bytes)", held + 4),
        format!("verdicts through {} Accept", held + 6),
    ];
    assert_eq!(journal, expected, "{journal:#?}");
    assert_eq!(worker.counters().held, 1);
}

// ---- supervision: a failing worker stops the daemon ----------------------------------------

/// A queue that is always readable and fails in `try_recv`: by panicking, or with an error.
struct FailingQueue {
    panic: bool,
    fd: UnixStream,
    _writer: UnixStream,
}

impl FailingQueue {
    fn new(panic: bool) -> Self {
        let (fd, mut writer) = UnixStream::pair().unwrap();
        writer.write_all(&[1]).unwrap();
        Self {
            panic,
            fd,
            _writer: writer,
        }
    }
}

impl PacketSource for FailingQueue {
    fn try_recv(&mut self) -> std::io::Result<Option<QueuedPacket>> {
        if self.panic {
            panic!("injected fault in try_recv");
        }
        Err(std::io::Error::other("injected queue error"))
    }

    fn verdict(&mut self, _id: u32, _verdict: Verdict) -> std::io::Result<()> {
        Ok(())
    }

    fn accept_through(&mut self, _id: u32) -> std::io::Result<()> {
        Ok(())
    }

    fn release_rewritten(&mut self, _id: u32, _datagram: &[u8]) -> std::io::Result<()> {
        Ok(())
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A queue that never has a packet and says when its worker let go of it.
struct IdleQueue {
    fd: UnixStream,
    released: Arc<AtomicBool>,
}

impl PacketSource for IdleQueue {
    fn try_recv(&mut self) -> std::io::Result<Option<QueuedPacket>> {
        Ok(None)
    }

    fn verdict(&mut self, _id: u32, _verdict: Verdict) -> std::io::Result<()> {
        Ok(())
    }

    fn accept_through(&mut self, _id: u32) -> std::io::Result<()> {
        Ok(())
    }

    fn release_rewritten(&mut self, _id: u32, _datagram: &[u8]) -> std::io::Result<()> {
        Ok(())
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for IdleQueue {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

/// A fresh engine, no backend, no state file.
fn parts() -> super::WorkerParts {
    (
        Engine::new(Config::default()),
        Box::new(NoBackend),
        None,
        None,
    )
}

fn daemon_settings() -> Settings {
    Settings {
        engine: Config::default(),
        queues: vec![1, 2, 3],
        queue: QueueOptions::default(),
        backend: BackendChoice::None,
        on_install_error: Verdict::Accept,
        cleanup: false,
        stats_interval: None,
        netlink_timeout: Duration::from_millis(250),
        state: None,
        metrics: None,
    }
}

/// Queues 1 and 3 idle, queue 2 failing; serve them as `run` does, with no signals
/// registered (the failing worker must close the iterator). Returns what `serve` returned,
/// how long it took, and whether each idle worker let go of its queue. Fails the test if
/// `serve` has not returned after 5 s (no signal will ever come).
fn serve_with_a_failing_queue(panic: bool) -> (Result<(), DaemonError>, Duration, Vec<bool>) {
    let settings = daemon_settings();
    let mut signals = Signals::new(Vec::<i32>::new()).unwrap();
    let clock = Clock::start();
    let released: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::default()).collect();
    let idle = |index: usize| IdleQueue {
        fd: UnixStream::pair().unwrap().0,
        released: released[index].clone(),
    };
    let started = Instant::now();
    let failing = FailingQueue::new(panic);
    let handles = vec![
        spawn(1, idle(0), parts(), &settings, (clock, None), &signals).unwrap(),
        spawn(2, failing, parts(), &settings, (clock, None), &signals).unwrap(),
        spawn(3, idle(1), parts(), &settings, (clock, None), &signals).unwrap(),
    ];
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(serve(&mut signals, handles, None)));
    let result = result
        .recv_timeout(Duration::from_secs(5))
        .expect("serve did not return within 5 s: the failing worker did not stop the daemon");
    let released = released.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    (result, started.elapsed(), released)
}

#[test]
fn a_panicking_worker_stops_the_other_workers_and_fails_the_daemon() {
    let (result, took, released) = serve_with_a_failing_queue(true);
    match &result {
        Err(DaemonError::Worker {
            queue: 2,
            error: WorkerFailure::Panicked(message),
        }) => assert_eq!(message, "injected fault in try_recv"),
        other => panic!("expected queue 2's panic, got {other:?}"),
    }
    assert_eq!(
        result.unwrap_err().to_string(),
        "queue 2 failed: worker panicked: injected fault in try_recv"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(released, [true, true], "the other workers stopped");
}

#[test]
fn a_failing_queue_stops_the_other_workers_and_fails_the_daemon() {
    let (result, took, released) = serve_with_a_failing_queue(false);
    assert!(
        matches!(
            result,
            Err(DaemonError::Worker {
                queue: 2,
                error: WorkerFailure::Queue(_)
            })
        ),
        "{result:?}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(released, [true, true], "the other workers stopped");
}

/// A conntrack that says every connection's client is masqueraded as `public`.
struct FakeConntrack {
    public: std::net::IpAddr,
    lookups: Arc<Mutex<u32>>,
}

impl super::worker::Translations for FakeConntrack {
    fn translation(
        &mut self,
        _control: &crate::flow::Control,
    ) -> Result<crate::nat::Translation, String> {
        *self.lookups.lock().unwrap() += 1;
        Ok(crate::nat::Translation {
            client_public: Some(self.public),
            server_public: None,
        })
    }
}

#[test]
fn nat_through_the_worker_holds_rewrites_and_releases_in_order() {
    let lookups = Arc::new(Mutex::new(0));
    let (mut worker, mut queue, journal) = nat_rig_counting(lookups.clone());
    let mut c = Conversation::new(
        "192.0.2.2:40000".parse().unwrap(),
        "198.51.100.2:21".parse().unwrap(),
    );
    c.login()
        .send_split(Side::Client, b"PORT 192,0,2,2,19,136\r\n", &[10]);
    let packets: Vec<Vec<u8>> = c.take_packets().into_iter().map(|p| p.bytes).collect();
    let n = packets.len();
    feed(&mut worker, &mut queue, &packets);
    assert_eq!(
        *lookups.lock().unwrap(),
        1,
        "one conntrack lookup per connection"
    );
    let journal = journal.lock().unwrap();
    let tail: Vec<&str> = journal
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    // The pinhole first, then the held first part, then the completing part, both rewritten.
    assert_eq!(tail[0], "install tcp 198.51.100.2 -> 192.0.2.2:5000 30s");
    assert_eq!(tail[1], format!("verdict {} Rewritten(50 bytes)", n - 2));
    assert_eq!(tail[2], format!("verdict {} Rewritten(56 bytes)", n - 1));
    assert_eq!(worker.counters().held, 1);
    assert_eq!(worker.counters().rewritten, 2);
}
