use super::*;
use crate::io::netlink::consts::NLA_HDRLEN;

fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(NLA_HDRLEN + payload.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

fn message(kind: u16, flags: u16, seq: u32, res_id: u16, attrs: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = attrs.concat();
    let mut out = u32::try_from(20 + body.len())
        .unwrap()
        .to_ne_bytes()
        .to_vec();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn bind_and_configure_in_one_message() {
    let mut w = Writer::new();
    let options = QueueOptions {
        max_len: 8192,
        copy_range: 128,
        fail_open: true,
        rcvbuf: 0,
    };
    config_message(&mut w, 7, 42, Some(&options)).unwrap();
    let expected = message(
        0x0302,
        0x5,
        42,
        7,
        &[
            attr(1, &[1, 0, 0, 0]),
            attr(2, &[0, 0, 0, 128, 2]),
            attr(3, &8192u32.to_be_bytes()),
            attr(4, &5u32.to_be_bytes()),
            attr(5, &1u32.to_be_bytes()),
        ],
    );
    assert_eq!(w.as_bytes(), expected);
}

#[test]
fn unbind_needs_no_ack() {
    let mut w = Writer::new();
    config_message(&mut w, 7, 43, None).unwrap();
    assert_eq!(
        w.as_bytes(),
        message(0x0302, 0x1, 43, 7, &[attr(1, &[2, 0, 0, 0])])
    );
}

#[test]
fn verdicts_with_and_without_payload() {
    let mut w = Writer::new();
    let verdict = |kind, id, code| Verdict { kind, id, code };
    let drop = verdict(NFQNL_MSG_VERDICT, 0x0102_0304, NF_DROP);
    verdict_message(&mut w, 7, 9, drop, None).unwrap();
    let header = [0, 0, 0, 0, 1, 2, 3, 4];
    assert_eq!(
        w.as_bytes(),
        message(0x0301, 0x1, 9, 7, &[attr(2, &header)])
    );
    let accept = verdict(NFQNL_MSG_VERDICT, 5, NF_ACCEPT);
    verdict_message(&mut w, 7, 10, accept, Some(&[0x45; 21])).unwrap();
    let expected = message(
        0x0301,
        0x1,
        10,
        7,
        &[attr(2, &[0, 0, 0, 1, 0, 0, 0, 5]), attr(10, &[0x45; 21])],
    );
    assert_eq!(w.as_bytes(), expected);
    // A batch: every waiting packet up to id 12 (NFQNL_MSG_VERDICT_BATCH is 3).
    let batch = verdict(NFQNL_MSG_VERDICT_BATCH, 12, NF_ACCEPT);
    verdict_message(&mut w, 7, 11, batch, None).unwrap();
    let header = [0, 0, 0, 1, 0, 0, 0, 12];
    assert_eq!(
        w.as_bytes(),
        message(0x0303, 0x1, 11, 7, &[attr(2, &header)])
    );
}

#[test]
fn packets_parse_and_report_truncation() {
    let bytes = message(
        0x0300,
        0,
        0,
        7,
        &[
            attr(1, &[0, 0, 0, 9, 0x08, 0x00, 3]),
            attr(3, &0u32.to_be_bytes()),
            attr(10, &[0x45, 0, 0, 20, 0xaa]),
            attr(13, &1500u32.to_be_bytes()),
        ],
    );
    let mut pending = VecDeque::new();
    for m in netlink::messages(&bytes) {
        file(m.unwrap(), &mut pending);
    }
    let packet = pending.pop_front().unwrap();
    assert_eq!(packet.id, 9);
    assert_eq!(packet.hw_protocol, 0x0800);
    assert_eq!(packet.payload, [0x45, 0, 0, 20, 0xaa]);
    assert_eq!(packet.original_len, Some(1500));
    assert!(packet.truncated());
}

#[test]
fn several_packets_in_one_datagram_and_hostile_ones() {
    let one = |id: u8| message(0x0300, 0, 0, 7, &[attr(1, &[0, 0, 0, id, 0x86, 0xdd, 1])]);
    let missing_header = message(0x0300, 0, 0, 7, &[attr(10, &[1, 2])]);
    let short_header = message(0x0300, 0, 0, 7, &[attr(1, &[0, 0, 0])]);
    let bytes = [one(1), missing_header, short_header, one(2)].concat();
    let mut pending = VecDeque::new();
    for m in netlink::messages(&bytes) {
        file(m.unwrap(), &mut pending);
    }
    let ids: Vec<_> = pending.iter().map(|p| p.id).collect();
    assert_eq!(ids, [1, 2]);
    assert!(!pending[0].truncated());
    assert_eq!(pending[0].payload, b"");
}

#[test]
fn busy_and_permission_errors_say_what_to_do() {
    let busy = OpenError::refused(7, KernelError::new(libc::EBUSY));
    assert!(busy.to_string().contains("NFQUEUE 7 is busy"));
    let other = OpenError::Refused {
        queue: 7,
        error: KernelError::new(libc::EPERM),
    };
    assert!(other.to_string().contains("CAP_NET_ADMIN"));
    assert!(is_overrun(&io::Error::from_raw_os_error(libc::ENOBUFS)));
}

#[test]
fn kernel_counters_are_read_from_the_queue_line() {
    let text = "    0  31417     0 2 65535     0     0        7  1\n\
                \x20   3  31418    12 2 65535 13227 12322    48211  1\n";
    assert_eq!(
        parse_kernel_counters(text, 3),
        Some(KernelCounters {
            queue_full: 13227,
            socket_full: 12322
        })
    );
    assert_eq!(
        parse_kernel_counters(text, 0),
        Some(KernelCounters::default())
    );
    assert_eq!(parse_kernel_counters(text, 1), None);
    assert_eq!(parse_kernel_counters("garbage\n3 x\n", 3), None);
    assert_eq!(parse_kernel_counters("", 0), None);
}
