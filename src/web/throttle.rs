//! Counting failed credential checks: per user name and per client address for passwords (the
//! login form and HTTP Basic), per client address for read-API tokens.
//!
//! A check is counted as a failure *before* it runs (a [`Reservation`]) and given back when it
//! succeeds, so guesses sent in parallel cannot all pass the limit before the first one is
//! counted. The table's memory is bounded however many names and addresses are tried: keys are
//! fixed-size (a keyed hash of the name; the address, IPv6 by its /64) and the table is capped.
//! When it is full and nothing has expired, new keys are refused rather than old counts
//! forgotten: otherwise anyone could wipe a victim's failures by trying enough other names.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Failures allowed per key within [`WINDOW`] (security.md: "throttle after 5 failures").
pub const MAX_FAILURES: u32 = 5;
/// How long failures are remembered, counted from the first; a throttled key waits out the rest.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys tracked at most: about 50 bytes each, so a few MB when full.
pub const MAX_TRACKED: usize = 100_000;
/// A full table is swept for expired keys at most this often (a sweep walks the whole table).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// What a refusal for a full table asks the client to wait.
pub const FULL_RETRY_AFTER_SECS: u64 = 60;

/// Why a check was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures from this user or address: 429.
    TooMany { retry_after_secs: u64 },
    /// The server cannot take the check now (table full, all password checkers busy): 503.
    Busy { retry_after_secs: u64 },
}

/// What is counted. Tokens and passwords are counted apart, so a client with a stale token does
/// not lock its address out of the login form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// A keyed hash of the user name: a guessed name of any length takes eight bytes.
    User(u64),
    PasswordFrom(IpAddr),
    TokenFrom(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    since: Instant,
}

impl Count {
    fn is_live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) < WINDOW
    }
}

struct Table {
    counts: HashMap<Key, Count>,
    next_sweep: Instant,
}

/// The failure counts of every user name and client address tried lately.
pub struct Throttle {
    /// Random per process, so nobody can pick names that collide with another's.
    hasher: RandomState,
    capacity: usize,
    table: Mutex<Table>,
}

/// The keys one check counts against.
#[derive(Debug, Clone, Copy)]
pub struct Keys([Option<Key>; 2]);

impl Default for Throttle {
    fn default() -> Self {
        Throttle::with_capacity(MAX_TRACKED)
    }
}

impl Throttle {
    pub fn with_capacity(capacity: usize) -> Throttle {
        let table = Table { counts: HashMap::new(), next_sweep: Instant::now() };
        Throttle { hasher: RandomState::new(), capacity, table: Mutex::new(table) }
    }

    /// A password check for `user` from `client`.
    pub fn password(&self, user: &str, client: IpAddr) -> Keys {
        Keys([Some(Key::User(self.hasher.hash_one(user))), Some(Key::PasswordFrom(address(client)))])
    }

    /// A read-API token check from `client`.
    pub fn token(&self, client: IpAddr) -> Keys {
        Keys([Some(Key::TokenFrom(address(client))), None])
    }

    /// Counts a failure for `keys` now, unless one of them is over its limit or the table is full.
    pub fn reserve(&self, keys: Keys) -> Result<Reservation<'_>, Refusal> {
        self.reserve_at(keys, Instant::now())
    }

    fn reserve_at(&self, keys: Keys, now: Instant) -> Result<Reservation<'_>, Refusal> {
        let mut table = self.lock();
        let wait = keys
            .iter()
            .filter_map(|key| table.counts.get(&key))
            .filter(|count| count.is_live(now) && count.failures >= MAX_FAILURES)
            .map(|count| (WINDOW.saturating_sub(now.saturating_duration_since(count.since))).as_secs().max(1))
            .max();
        if let Some(retry_after_secs) = wait {
            return Err(Refusal::TooMany { retry_after_secs });
        }
        let new_keys = keys.iter().filter(|key| !table.counts.contains_key(key)).count();
        if table.counts.len() + new_keys > self.capacity {
            if now >= table.next_sweep {
                table.counts.retain(|_, count| count.is_live(now));
                table.next_sweep = now + SWEEP_EVERY;
            }
            if table.counts.len() + new_keys > self.capacity {
                return Err(Refusal::Busy { retry_after_secs: FULL_RETRY_AFTER_SECS });
            }
        }
        for key in keys.iter() {
            let count = table.counts.entry(key).or_insert(Count { failures: 0, since: now });
            if !count.is_live(now) {
                *count = Count { failures: 0, since: now };
            }
            count.failures += 1;
        }
        Ok(Reservation { throttle: self, keys })
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.lock().counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counts stay consistent whatever panicked elsewhere: every change is one assignment.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Keys {
    fn iter(&self) -> impl Iterator<Item = Key> + '_ {
        self.0.iter().flatten().copied()
    }
}

/// A failure counted ahead of its check. Dropped as is, it stays counted.
#[must_use = "a reservation left alone counts as a failure"]
pub struct Reservation<'a> {
    throttle: &'a Throttle,
    keys: Keys,
}

impl Reservation<'_> {
    /// The credentials were right: the user's failures are cleared (security.md), the address's
    /// reservation is given back (its other failures stay: it may be guessing other names).
    pub fn succeed(self) {
        let mut table = self.throttle.lock();
        for key in self.keys.iter() {
            if let Some(count) = table.counts.get_mut(&key) {
                count.failures = match key {
                    Key::User(_) => 0,
                    Key::PasswordFrom(_) | Key::TokenFrom(_) => count.failures.saturating_sub(1),
                };
            }
        }
    }

    /// The check did not run: nothing is counted.
    pub fn cancel(self) {
        let mut table = self.throttle.lock();
        for key in self.keys.iter() {
            if let Some(count) = table.counts.get_mut(&key) {
                count.failures = count.failures.saturating_sub(1);
            }
        }
    }
}

/// The address as counted: IPv6 by its /64, the smallest network a host is usually given.
fn address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn five_failures_are_reserved_and_the_sixth_waits_out_the_window() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let keys = throttle.password("admin", ip("203.0.113.1"));
        for _ in 0..MAX_FAILURES {
            drop(throttle.reserve_at(keys, now).expect("under the limit"));
        }
        let later = now + Duration::from_secs(60);
        assert_eq!(
            throttle.reserve_at(keys, later).err(),
            Some(Refusal::TooMany { retry_after_secs: WINDOW.as_secs() - 60 })
        );
        // Other names from that address wait too; the name from elsewhere too.
        assert!(throttle.reserve_at(throttle.password("other", ip("203.0.113.1")), later).is_err());
        assert!(throttle.reserve_at(throttle.password("admin", ip("198.51.100.1")), later).is_err());
        assert!(throttle.reserve_at(keys, now + WINDOW).is_ok(), "the window ends");
    }

    #[test]
    fn a_success_clears_the_user_and_gives_the_address_its_reservation_back() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let keys = throttle.password("admin", ip("203.0.113.1"));
        for _ in 0..MAX_FAILURES - 1 {
            drop(throttle.reserve_at(keys, now).expect("under the limit"));
        }
        throttle.reserve_at(keys, now).expect("the fifth").succeed();
        throttle.reserve_at(keys, now).expect("cleared user, four on the address").cancel();
        drop(throttle.reserve_at(keys, now).expect("the cancelled check did not count"));
        assert!(throttle.reserve_at(keys, now).is_err(), "five on the address again");
    }

    #[test]
    fn tokens_and_passwords_are_counted_apart() {
        let throttle = Throttle::default();
        let now = Instant::now();
        let client = ip("203.0.113.1");
        for _ in 0..MAX_FAILURES {
            drop(throttle.reserve_at(throttle.token(client), now).expect("under the limit"));
        }
        assert!(throttle.reserve_at(throttle.token(client), now).is_err());
        assert!(throttle.reserve_at(throttle.password("admin", client), now).is_ok());
    }

    #[test]
    fn a_huge_name_takes_a_fixed_size_key() {
        let throttle = Throttle::default();
        let name = "x".repeat(1_500_000);
        drop(throttle.reserve(throttle.password(&name, ip("203.0.113.1"))).expect("reserved"));
        assert_eq!(throttle.len(), 2);
        assert!(std::mem::size_of::<Key>() <= 24, "{}", std::mem::size_of::<Key>());
    }

    #[test]
    fn a_full_table_refuses_new_keys_and_never_forgets_a_victims_failures() {
        let throttle = Throttle::with_capacity(10);
        let now = Instant::now();
        let victim = throttle.password("victim", ip("198.51.100.1"));
        for _ in 0..MAX_FAILURES {
            drop(throttle.reserve_at(victim, now).expect("under the limit"));
        }
        // An attacker tries new names from new addresses until the table is full.
        let mut refused = 0;
        for i in 0..1000u32 {
            let keys = throttle.password(&format!("name-{i}"), IpAddr::from(i.to_be_bytes()));
            match throttle.reserve_at(keys, now + Duration::from_secs(1)) {
                Ok(reservation) => drop(reservation),
                Err(refusal) => {
                    assert_eq!(refusal, Refusal::Busy { retry_after_secs: FULL_RETRY_AFTER_SECS });
                    refused += 1;
                }
            }
        }
        assert_eq!(refused, 1000 - 4, "two keys each, eight free places");
        assert_eq!(throttle.len(), 10, "the table stays at its cap");
        assert!(
            matches!(throttle.reserve_at(victim, now + Duration::from_secs(2)), Err(Refusal::TooMany { .. })),
            "the victim's failures are still counted"
        );
        // Once the window has passed, expired keys make room.
        let keys = throttle.password("newcomer", ip("192.0.2.1"));
        assert!(throttle.reserve_at(keys, now + WINDOW + Duration::from_secs(2)).is_ok());
        assert_eq!(throttle.len(), 2);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        assert_eq!(address(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(address(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
        assert_eq!(address(ip("203.0.113.9")), ip("203.0.113.9"));
    }
}
