//! Picking free TCP ports on the loopback interface.
//!
//! A picked port is only bound later, by another process (`cargo lambda watch`, moto,
//! the gateway). Ports the kernel hands out itself (`bind(0)`) come from its ephemeral
//! range, the same range every outgoing connection takes its local port from: in the
//! seconds between the pick and the bind, a connection to moto could take the port, and
//! `cargo lambda watch` then stops at once with status 0. So ports are picked below that
//! range, where no outgoing connection lands.

use std::net::TcpListener;
use std::ops::Range;

/// The lowest port handed out: well above the registered services a developer machine
/// may run.
const LOWEST: u16 = 20_000;

/// The kernel's ephemeral range start when it cannot be read.
const DEFAULT_EPHEMERAL_START: u16 = 32_768;

/// A port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    free_ports(1)?
        .pop()
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrNotAvailable))
}

/// `n` distinct free ports. All are held open until every one is picked, so the same
/// port is never handed out twice.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let range = pick_range();
    let span = u32::from(range.end - range.start);
    // A random start, so that stacks started at once by parallel test runs walk
    // different parts of the range.
    let offset = getrandom::u32().unwrap_or(std::process::id()) % span;
    let mut listeners = Vec::with_capacity(n);
    for step in 0..span {
        if listeners.len() == n {
            break;
        }
        let Ok(port) = u16::try_from(u32::from(range.start) + (offset + step) % span) else {
            continue;
        };
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(listener);
        }
    }
    if listeners.len() < n {
        return Err(std::io::Error::from(std::io::ErrorKind::AddrNotAvailable));
    }
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// The ports below the kernel's ephemeral range, from [`LOWEST`].
fn pick_range() -> Range<u16> {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(DEFAULT_EPHEMERAL_START);
    if ephemeral_start > LOWEST + 1_000 {
        LOWEST..ephemeral_start
    } else {
        // The ephemeral range was moved down: stay above it instead.
        DEFAULT_EPHEMERAL_START.max(LOWEST)..u16::MAX
    }
}

/// Whether nothing listens on `port` on 127.0.0.1 right now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_free() {
        let ports = free_ports(5).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 5);
        assert!(ports.iter().all(|p| port_is_free(*p)));
        let held = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        assert!(!port_is_free(held.local_addr().unwrap().port()));
        assert_ne!(free_port().unwrap(), 0);
    }

    #[test]
    fn ports_come_from_outside_the_ephemeral_range() {
        let range = pick_range();
        for port in free_ports(20).unwrap() {
            assert!(range.contains(&port), "{port} not in {range:?}");
        }
    }

    #[test]
    fn a_taken_port_is_never_handed_out() {
        let range = pick_range();
        let held: Vec<TcpListener> = (range.start..range.start + 50)
            .filter_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        let taken: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        for port in free_ports(200).unwrap() {
            assert!(!taken.contains(&port));
        }
    }
}
