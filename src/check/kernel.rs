//! Findings about the kernel and the process: CAP_NET_ADMIN, nfnetlink_queue and who holds
//! the daemon's queues, set element timeouts, ctnetlink.

use crate::check::Backend;
use crate::check::Finding;
use crate::check::Observations;
use crate::check::Report;
use crate::check::Setup;
use crate::check::Status;

/// Add the kernel's findings to `report`.
pub(super) fn judge(setup: &Setup, seen: &Observations, report: &mut Report) {
    report.push(privileges(seen.cap_net_admin));
    report.push(nfqueue(seen));
    if let Some(Ok(text)) = &seen.queue_proc {
        for &queue in &setup.queues {
            report.push(queue_owner(queue, text, &seen.queue_owners));
        }
    }
    if matches!(setup.backend, Backend::Nft { .. }) {
        if let Some(probe) = &seen.element_timeouts {
            report.push(element_timeouts(probe));
        }
    }
    if setup.conntrack {
        report.push(ctnetlink(seen.ctnetlink.as_ref()));
    }
}

fn privileges(cap: Option<bool>) -> Finding {
    const TOPIC: &str = "privileges";
    match cap {
        Some(true) => Finding::new(Status::Ok, TOPIC, "CAP_NET_ADMIN is effective"),
        Some(false) => Finding::new(
            Status::Missing,
            TOPIC,
            "CAP_NET_ADMIN is not effective: the daemon could bind no queue and write no set, \
             and most checks below cannot look",
        )
        .fix("run as root, or grant CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_NET_ADMIN)"),
        None => Finding::new(
            Status::Warn,
            TOPIC,
            "cannot read the capabilities (/proc/self/status)",
        ),
    }
}

fn nfqueue(seen: &Observations) -> Finding {
    const TOPIC: &str = "nfqueue";
    match (&seen.queue_proc, seen.queue_module) {
        (Some(Ok(_)), _) => Finding::new(Status::Ok, TOPIC, "nfnetlink_queue is loaded"),
        (None, Some(false)) => Finding::new(
            Status::Missing,
            TOPIC,
            "nfnetlink_queue is neither loaded nor available as a module: this kernel cannot \
             queue packets to a daemon (CONFIG_NETFILTER_NETLINK_QUEUE)",
        )
        .fix("use a kernel with CONFIG_NETFILTER_NETLINK_QUEUE"),
        (None, _) => Finding::new(
            Status::Warn,
            TOPIC,
            "nfnetlink_queue is not loaded yet; the daemon's first bind loads it",
        )
        .fix("modprobe nfnetlink_queue"),
        (Some(Err(why)), _) => Finding::new(
            Status::Warn,
            TOPIC,
            format!("cannot read /proc/net/netfilter/nfnetlink_queue: {why}"),
        ),
    }
}

/// Who holds queue `queue`, from the `/proc` table (queue number, peer port id, ...).
fn queue_owner(queue: u16, table: &str, owners: &[(u32, Option<(String, u32)>)]) -> Finding {
    let topic = format!("queue {queue}");
    let portid = table.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let number = fields.next()?.parse::<u16>().ok()?;
        let portid = fields.next()?.parse::<u32>().ok()?;
        (number == queue).then_some(portid)
    });
    let Some(portid) = portid else {
        return Finding::new(Status::Ok, &topic, "free: no process is bound to it");
    };
    let owner = owners
        .iter()
        .find(|(p, _)| *p == portid)
        .and_then(|(_, o)| o.as_ref());
    match owner {
        Some((name, pid)) if name == "ftp-alg" => Finding::new(
            Status::Warn,
            &topic,
            format!(
                "already served by ftp-alg (pid {pid}): fine for a running gateway; a second \
                 `ftp-alg run` on it would be refused"
            ),
        ),
        Some((name, pid)) => Finding::new(
            Status::Conflict,
            &topic,
            format!("bound by another program, {name} (pid {pid}): the daemon cannot bind it"),
        )
        .fix(format!(
            "stop {name} (pid {pid}), or give ftp-alg another --queue (and print the rules \
             with the same --queue)"
        )),
        None => Finding::new(
            Status::Conflict,
            &topic,
            format!(
                "bound by netlink port {portid} (process not found): the daemon cannot bind it"
            ),
        )
        .fix("stop the program holding it (ss -f netlink -p), or use another --queue"),
    }
}

fn element_timeouts(probe: &Result<(), String>) -> Finding {
    const TOPIC: &str = "set element timeouts";
    match probe {
        Ok(()) => Finding::new(
            Status::Ok,
            TOPIC,
            "the kernel takes concatenated sets with `flags timeout`",
        ),
        Err(why) if !KERNEL_REFUSALS.iter().any(|r| why.contains(r)) => {
            Finding::new(Status::Warn, TOPIC, format!("cannot tell: {why}"))
        }
        Err(why) => Finding::new(
            Status::Missing,
            TOPIC,
            format!("the kernel refuses a set with `flags timeout` and our key type: {why}"),
        )
        .fix("use a kernel with nf_tables set timeouts and concatenations (Linux 4.19 or later)"),
    }
}

fn ctnetlink(probe: Option<&Result<(), String>>) -> Finding {
    const TOPIC: &str = "ctnetlink";
    match probe {
        Some(Ok(())) => Finding::new(
            Status::Ok,
            TOPIC,
            "conntrack answers lookups (--nat learns translations from it)",
        ),
        Some(Err(why)) => Finding::new(
            Status::Missing,
            TOPIC,
            format!("a conntrack lookup failed ({why}): --nat cannot learn translations"),
        )
        .fix("load nf_conntrack_netlink (CONFIG_NF_CT_NETLINK), or use --nat-map pairs"),
        None => Finding::new(Status::Warn, TOPIC, "not probed"),
    }
}

/// nft's words when the kernel itself refuses a probe (rather than nft, or a permission).
const KERNEL_REFUSALS: [&str; 3] = [
    "Operation not supported",
    "Invalid argument",
    "No such file or directory",
];
