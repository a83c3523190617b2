//! Every bug the fuzz targets found, replayed through the harness that found it
//! (`ftp_alg::testkit::fuzz`), on the stable toolchain: the crashing inputs as the fuzzer wrote
//! them (`fuzz/regressions/`), and the cases they reduce to. Each test names the bug and the
//! fix; docs/security.md lists them.

use std::net::IpAddr;
use std::num::NonZeroU16;

use ftp_alg::ftp::Trigger;
use ftp_alg::testkit::fuzz;

fn public() -> IpAddr {
    IpAddr::from([203, 0, 113, 100])
}

fn port() -> NonZeroU16 {
    NonZeroU16::new(50000).expect("non-zero")
}

/// `nat::text` rewrote the first run of six numbers after the code, but the client (and our
/// parser, RFC 1123 §4.1.2.6 made safe) reads the first list of exactly six: with a longer
/// list before it, the client was still told the private address. Fixed: the rewriter finds
/// the list with `ftp::numbers::find`, the parser's own scan.
#[test]
fn nat_227_rewrites_the_list_the_client_reads() {
    for raw in [
        &b"227 (1,2,3,4,5,6,7) (192,0,2,5,195,80)\r\n"[..],
        b"227 x 1,2,3,4,5,6,7,8 (192,0,2,5,195,80)\r\n",
        b"227 Mode 1 (192,0,2,5,195,80)\r\n",
    ] {
        fuzz::rewrite_line(raw, Trigger::Reply227, public(), port());
    }
}

/// Keeping a `227`'s length dropped the last characters of the free text, digits and commas
/// included, which could turn a longer list into the first list of six. Fixed: the shortened
/// text is used only if the client still reads the new numbers from it.
#[test]
fn nat_227_keeps_its_length_only_when_it_reads_the_same() {
    // The new numbers are two bytes longer: ",7" would go, leaving 1,2,3,4,5,6 first.
    let raw = b"227 Entering 1,2,3,4,5,6,7 (192,0,2,5,195,80)\r\n";
    let public = IpAddr::from([10, 10, 0, 100]);
    fuzz::rewrite_line(raw, Trigger::Reply227, public, port());
}

/// A `PORT` with leading blanks (which the parser accepts) was rewritten with its verb cut
/// off, and `PORT<TAB>args` was not rewritten at all. Fixed: `nat::text` finds the argument
/// the way `ftp::command` does.
#[test]
fn nat_port_keeps_its_verb_after_leading_blanks() {
    for raw in [
        &b" PORT 192,0,2,2,19,136\r\n"[..],
        b"\tPORT 192,0,2,2,19,136\r\n",
        b"PORT\t192,0,2,2,19,136\r\n",
    ] {
        fuzz::rewrite_line(raw, Trigger::Port, public(), port());
    }
}

/// `stream::Stream::handle_ack` clamped an acknowledgement to the FIN before checking it lies
/// within the window, so an ACK 2^31 ahead (nothing a receiver would send) declared every byte
/// up to a FIN that was announced beyond the data lost ("delivered past what was sent").
/// Fixed: the window is checked first (RFC 9293 §3.10.7.4: an ACK of what was not sent is
/// ignored). Unit test: `stream::tests::absurd_ack_is_ignored_after_a_fin`.
#[test]
fn reassembly_absurd_ack_after_fin() {
    fuzz::reassembly(include_bytes!(
        "../fuzz/regressions/reassembly-absurd-ack-after-fin"
    ));
}

/// `ControlFlow::handle_rst` judged a RST by `offset_from(expected).abs()`: for a RST exactly
/// 2^31 away that overflowed (a panic with overflow checks; in a release build it wrapped
/// negative and such a RST was believed, closing the session and revoking its pinholes).
/// Fixed with `unsigned_abs`. Unit test:
/// `engine::tests::out_of_window_rst_is_ignored`.
#[test]
fn engine_rst_half_the_sequence_space_away() {
    fuzz::engine(include_bytes!(
        "../fuzz/regressions/engine-rst-half-space-away"
    ));
}
