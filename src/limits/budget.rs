//! Per-client budgets of store writes (`payments.claim_rate`, `gateway.start_rate`):
//! N events per fixed window per client, where a client is an IPv4 address or an
//! IPv6 /64 (one host gets a whole /64 and could otherwise rotate through it).
//!
//! The table is a fixed array of counters, not a map: a client's count lives in two
//! slots chosen by a per-process keyed hash (SipHash with random keys: a client
//! cannot aim at another's slots), each slot counting every client hashed to it in
//! the current window, and the client's count is the smaller of its two (a
//! count-min sketch). So the table never evicts — flooding it with fresh addresses
//! cannot flush anyone's spent budget — it never under-counts (nobody gets more
//! than the budget), and memory is fixed ([`SLOTS`] × 8 bytes). The price of that
//! is that a heavy flood may over-count for a client whose both slots it shares.
//! Lock-free: one compare-and-swap per slot.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Rate;

/// Counters in the table.
pub const SLOTS: usize = 1 << 16;

/// One budget: `rate.count` events per `rate.per_secs` window per client.
pub struct Budget {
    rate: Rate,
    slots: Box<[AtomicU64]>,
    keys: std::collections::hash_map::RandomState,
}

impl Budget {
    /// An empty budget table for `rate`.
    pub fn new(rate: Rate) -> Budget {
        Budget {
            rate,
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            keys: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Spends one event of `ip`'s budget at UNIX second `now`: `Err(seconds)` until
    /// the window ends when it is used up (for `Retry-After`).
    pub fn spend(&self, ip: IpAddr, now: u64) -> Result<(), u64> {
        let per = self.rate.per_secs.max(1);
        let window = now / per;
        // The window number's low 32 bits tag the count (wrapping is harmless: a
        // slot untouched for 2^32 windows is simply reset a window late).
        let tag = window as u32;
        let client = client_key(ip);
        let used = [0u8, 1]
            .map(|i| {
                let slot = self.keys.hash_one((client, i)) as usize % SLOTS;
                bump(&self.slots[slot], tag)
            })
            .into_iter()
            .min()
            .unwrap_or(u32::MAX);
        if used <= self.rate.count {
            Ok(())
        } else {
            Err((window + 1) * per - now)
        }
    }
}

/// Counts one event in `slot` for window `tag`; the slot's count after it.
fn bump(slot: &AtomicU64, tag: u32) -> u32 {
    let mut now = slot.load(Ordering::Relaxed);
    loop {
        let (t, n) = ((now >> 32) as u32, now as u32);
        let n = if t == tag { n.saturating_add(1) } else { 1 };
        let next = (u64::from(tag) << 32) | u64::from(n);
        match slot.compare_exchange_weak(now, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return n,
            Err(seen) => now = seen,
        }
    }
}

/// Who a budget counts: an IPv4 address (also when IPv4-mapped in IPv6), or the
/// /64 an IPv6 address is in.
pub fn client_key(ip: IpAddr) -> (u8, u64) {
    match ip {
        IpAddr::V4(v4) => (4, u64::from(u32::from(v4))),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (4, u64::from(u32::from(v4))),
            None => (6, (u128::from(v6) >> 64) as u64),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(count: u32, per_secs: u64) -> Rate {
        Rate { count, per_secs }
    }

    #[test]
    fn a_client_gets_its_count_per_window_and_is_told_when_it_ends() {
        let b = Budget::new(rate(3, 60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(b.spend(ip, 6_000), Ok(()));
        }
        assert_eq!(b.spend(ip, 6_010), Err(50));
        assert_eq!(b.spend(ip, 6_059), Err(1));
        // The next window starts afresh.
        assert_eq!(b.spend(ip, 6_060), Ok(()));
        // Other clients are not affected.
        assert_eq!(b.spend("192.0.2.8".parse().unwrap(), 6_010), Ok(()));
    }

    #[test]
    fn an_ipv6_host_cannot_rotate_through_its_64() {
        let b = Budget::new(rate(2, 60));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let c: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        assert_eq!(b.spend(a, 0), Ok(()));
        assert_eq!(b.spend(c, 0), Ok(()));
        assert!(b.spend("2001:db8:1:2:abcd::9".parse().unwrap(), 0).is_err());
        // The next /64 is another client.
        assert_eq!(b.spend("2001:db8:1:3::1".parse().unwrap(), 0), Ok(()));
        // IPv4-mapped addresses count as the IPv4 address.
        let v4: IpAddr = "198.51.100.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.1".parse().unwrap();
        assert_eq!(b.spend(v4, 0), Ok(()));
        assert_eq!(b.spend(mapped, 0), Ok(()));
        assert!(b.spend(v4, 0).is_err());
    }

    #[test]
    fn flooding_the_table_with_fresh_addresses_never_restores_a_spent_budget() {
        let b = Budget::new(rate(5, 3600));
        let victim: IpAddr = "203.0.113.9".parse().unwrap();
        for _ in 0..5 {
            b.spend(victim, 100).unwrap();
        }
        assert!(b.spend(victim, 100).is_err());
        // Four times as many distinct clients as there are slots.
        for i in 0..(4 * SLOTS as u32) {
            let _ = b.spend(IpAddr::V4(i.into()), 100);
        }
        assert!(b.spend(victim, 100).is_err());
    }

    #[test]
    fn concurrent_spending_never_exceeds_the_budget() {
        let b = std::sync::Arc::new(Budget::new(rate(100, 60)));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let ok = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (b, ok) = (b.clone(), ok.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if b.spend(ip, 0).is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ok.load(Ordering::Relaxed), 100);
    }
}
