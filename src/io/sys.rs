//! The only `unsafe` code in the crate: a few libc calls behind a safe API on
//! [`OwnedFd`]/[`BorrowedFd`].
//!
//! Owns: opening and binding netlink sockets (netlink(7), socket(2), bind(2),
//! getsockname(2)), geteuid(2), the monotonic clock (clock_gettime(2)), socket options (socket(7) `SO_RCVBUF`/`SO_RCVBUFFORCE`; netlink(7)
//! `NETLINK_CAP_ACK`, `NETLINK_EXT_ACK`, `NETLINK_NO_ENOBUFS`), sending to the kernel
//! (sendto(2)), non-blocking receive (recv(2) with `MSG_DONTWAIT | MSG_TRUNC`) and waiting
//! (poll(2)). It does not know any netlink message format; that is [`super::netlink`].
//!
//! Every socket is opened `SOCK_NONBLOCK | SOCK_CLOEXEC`: callers wait with
//! [`wait_readable`], so a signal or a timer can always interrupt them.
#![expect(
    unsafe_code,
    reason = "FFI to socket, bind, getsockname, setsockopt, sendto, recv, poll and clock_gettime"
)]

use std::io;
use std::mem;
use std::os::fd::AsRawFd;
use std::os::fd::BorrowedFd;
use std::os::fd::FromRawFd;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// A socket option this crate sets (all take a C `int`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketOption {
    /// `SOL_NETLINK`/`NETLINK_CAP_ACK`: ACKs carry only the request's header, not its
    /// payload (netlink(7), Linux 4.3).
    NetlinkCapAck,
    /// `SOL_NETLINK`/`NETLINK_EXT_ACK`: errors carry the kernel's message and attribute
    /// offset (netlink(7), Linux 4.12).
    NetlinkExtAck,
    /// `SOL_NETLINK`/`NETLINK_NO_ENOBUFS`: hide receive-buffer overruns. We never set it
    /// on a queue (overruns must be seen), it is listed for completeness.
    NetlinkNoEnobufs,
    /// `SOL_SOCKET`/`SO_RCVBUF`: receive buffer, capped by `net.core.rmem_max` (socket(7)).
    ReceiveBuffer,
    /// `SOL_SOCKET`/`SO_RCVBUFFORCE`: receive buffer past `rmem_max`; needs
    /// `CAP_NET_ADMIN` (socket(7)).
    ReceiveBufferForce,
}

/// Open a raw netlink socket of `protocol` (e.g. `libc::NETLINK_NETFILTER`), non-blocking
/// and close-on-exec (netlink(7)).
pub fn netlink_socket(protocol: i32) -> io::Result<OwnedFd> {
    let kind = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) takes plain integers and returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, kind, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is valid, and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Bind `fd` with port id 0 (the kernel picks one) and no multicast groups; returns the
/// port id the kernel assigned (netlink(7) "Address formats").
pub fn bind_netlink(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut address = kernel_address();
    let length = socklen::<libc::sockaddr_nl>();
    // SAFETY: `address` is a valid, initialised sockaddr_nl and `length` is its size.
    let bound = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const address).cast::<libc::sockaddr>(),
            length,
        )
    };
    if bound < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut written = length;
    // SAFETY: `address` is writable for `written` bytes; the kernel writes at most that.
    let named = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&raw mut address).cast::<libc::sockaddr>(),
            &raw mut written,
        )
    };
    if named < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(address.nl_pid)
}

/// Set an integer socket option.
pub fn set_option(fd: BorrowedFd<'_>, option: SocketOption, value: i32) -> io::Result<()> {
    let (level, name) = match option {
        SocketOption::NetlinkCapAck => (libc::SOL_NETLINK, libc::NETLINK_CAP_ACK),
        SocketOption::NetlinkExtAck => (libc::SOL_NETLINK, libc::NETLINK_EXT_ACK),
        SocketOption::NetlinkNoEnobufs => (libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS),
        SocketOption::ReceiveBuffer => (libc::SOL_SOCKET, libc::SO_RCVBUF),
        SocketOption::ReceiveBufferForce => (libc::SOL_SOCKET, libc::SO_RCVBUFFORCE),
    };
    // SAFETY: `value` is a live c_int and the length passed is exactly its size.
    let set = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast::<libc::c_void>(),
            socklen::<i32>(),
        )
    };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Send `bytes` to the kernel (netlink port id 0) in one datagram. A short send is an
/// error (netlink datagrams are never split).
pub fn send_to_kernel(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    let address = kernel_address();
    // SAFETY: `bytes` is readable for its length; `address` is a valid sockaddr_nl.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            bytes.as_ptr().cast::<libc::c_void>(),
            bytes.len(),
            0,
            (&raw const address).cast::<libc::sockaddr>(),
            socklen::<libc::sockaddr_nl>(),
        )
    };
    match usize::try_from(sent) {
        Err(_) => Err(io::Error::last_os_error()),
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(n) => Err(io::Error::other(format!(
            "short netlink send: {n} of {} bytes",
            bytes.len()
        ))),
    }
}

/// Receive one datagram without blocking. Returns `Ok(None)` when nothing is waiting, or
/// the datagram's **full** length (`MSG_TRUNC`, netlink(7)): a length above `buf.len()`
/// means the datagram was cut to fit. `ENOBUFS` (the socket overran; netlink(7)) is
/// returned as an error like any other.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
    // SAFETY: `buf` is writable for its length; the kernel writes at most that many bytes.
    let received = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
            flags,
        )
    };
    match usize::try_from(received) {
        Ok(n) => Ok(Some(n)),
        Err(_) => {
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(error),
            }
        }
    }
}

/// Wait until one of `fds` is readable or `timeout` passes (`None`: forever), with
/// poll(2). Returns one flag per fd. An error condition (`POLLERR`, e.g. a netlink
/// overrun) counts as readable, so the caller's next receive reports it. `EINTR` (a
/// signal arrived) returns all `false`.
pub fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let count = libc::nfds_t::try_from(polled.len()).map_err(io::Error::other)?;
    // SAFETY: `polled` is a valid, writable array of `count` pollfd entries.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), count, poll_timeout(timeout)) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(error);
    }
    let readable = libc::POLLIN | libc::POLLERR | libc::POLLHUP;
    Ok(polled.iter().map(|p| p.revents & readable != 0).collect())
}

/// Microseconds on the system's monotonic clock (clock_gettime(2) `CLOCK_MONOTONIC`): counted
/// from boot, the same for every process, so times a daemon saved can be compared by the
/// next one on the same boot.
pub fn monotonic_micros() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    debug_assert_eq!(result, 0, "CLOCK_MONOTONIC is always available");
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec / 1000).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

/// The effective user id (geteuid(2)).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// poll(2)'s timeout: milliseconds rounded up, -1 for none, capped at `i32::MAX`.
fn poll_timeout(timeout: Option<Duration>) -> i32 {
    let Some(timeout) = timeout else {
        return -1;
    };
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(millis).unwrap_or(i32::MAX)
}

/// The kernel's netlink address (port id 0, no groups).
fn kernel_address() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut address: libc::sockaddr_nl = unsafe { mem::zeroed() };
    address.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    address
}

/// `size_of::<T>()` as a `socklen_t` (socket structures are far below 4 GiB).
fn socklen<T>() -> libc::socklen_t {
    // NOTE(unwrap): sockaddr_nl and c_int are a few bytes long.
    libc::socklen_t::try_from(size_of::<T>()).expect("socket structure size fits socklen_t")
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn poll_timeout_rounds_up_and_caps() {
        assert_eq!(poll_timeout(None), -1);
        assert_eq!(poll_timeout(Some(Duration::ZERO)), 0);
        assert_eq!(poll_timeout(Some(Duration::from_micros(1))), 1);
        assert_eq!(poll_timeout(Some(Duration::from_millis(1500))), 1500);
        assert_eq!(poll_timeout(Some(Duration::from_secs(u64::MAX))), i32::MAX);
    }

    #[test]
    fn wait_readable_times_out_on_a_silent_socket() {
        let Ok(fd) = netlink_socket(libc::NETLINK_NETFILTER) else {
            eprintln!("skipped: cannot open a netlink socket here");
            return;
        };
        let ready = wait_readable(&[fd.as_fd()], Some(Duration::from_millis(1)));
        assert_eq!(ready.unwrap(), vec![false]);
        assert_eq!(recv(fd.as_fd(), &mut [0; 16]).unwrap(), None);
    }
}
