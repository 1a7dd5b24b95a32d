//! The members' histories (payments, granted entries, VIP periods, token
//! balances) as last
//! read, each with the history version it was read at.
//!
//! The database raises `members.history_version` in the same transaction as
//! any change to a member's payments, granted entries, VIP periods or token
//! ledger (triggers, migration 000006), whoever writes. A member read fetches
//! the member's row and its version in one statement and takes the history
//! from here only when the version is the one it was read at; otherwise it
//! reads the history again. The version is read *before* the history, so a
//! history stored here is never older than its version: a write that commits
//! in between leaves a newer history under an older version, which the next
//! read replaces. Only reads outside a write transaction fill the cache, so
//! no history that may be rolled back is ever kept.
//!
//! Bounded: at most `capacity` members; when full, an arbitrary one is
//! forgotten. Capacity 0 turns the cache off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use zhima_domain::member::Payment;
use zhima_domain::partner::{Balance, VipPeriod};

/// One member's history as read at `version`.
#[derive(Debug)]
pub(crate) struct History {
    /// The member's creation instant (with the id, names the member).
    pub created_at: i64,
    /// `members.history_version` when this was read.
    pub version: i64,
    pub payments: Vec<Payment>,
    pub entries: Vec<DateTime<Utc>>,
    pub last_entry: Option<DateTime<Utc>>,
    pub vip: Vec<VipPeriod>,
    pub balance: Balance,
}

/// Histories by member id.
#[derive(Debug)]
pub(crate) struct HistoryCache {
    capacity: usize,
    map: Mutex<HashMap<i64, Arc<History>>>,
}

impl HistoryCache {
    pub fn new(capacity: usize) -> HistoryCache {
        HistoryCache {
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The history of member `id` read at `version`, if it is here.
    pub fn get(&self, id: i64, created_at: i64, version: i64) -> Option<Arc<History>> {
        if self.capacity == 0 {
            return None;
        }
        let map = zhima_domain::sync::lock(&self.map);
        map.get(&id)
            .filter(|h| h.version == version && h.created_at == created_at)
            .cloned()
    }

    /// Keeps `history` for member `id`, unless a history of a later version
    /// is already here.
    pub fn put(&self, id: i64, history: Arc<History>) {
        if self.capacity == 0 {
            return;
        }
        let mut map = zhima_domain::sync::lock(&self.map);
        if let Some(held) = map.get(&id) {
            if held.created_at == history.created_at && held.version > history.version {
                return;
            }
        } else if map.len() >= self.capacity {
            if let Some(&victim) = map.keys().next() {
                map.remove(&victim);
            }
        }
        map.insert(id, history);
    }

    /// How many histories are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        zhima_domain::sync::lock(&self.map).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(version: i64) -> Arc<History> {
        Arc::new(History {
            created_at: 1,
            version,
            payments: Vec::new(),
            entries: Vec::new(),
            last_entry: None,
            vip: Vec::new(),
            balance: Balance::default(),
        })
    }

    #[test]
    fn a_history_is_answered_only_at_its_version() {
        let cache = HistoryCache::new(4);
        cache.put(7, history(3));
        assert!(cache.get(7, 1, 3).is_some());
        assert!(cache.get(7, 1, 4).is_none(), "a later version must miss");
        assert!(
            cache.get(7, 2, 3).is_none(),
            "another member's creation must miss"
        );
        assert!(cache.get(8, 1, 3).is_none());
    }

    #[test]
    fn an_older_read_does_not_replace_a_newer_one() {
        let cache = HistoryCache::new(4);
        cache.put(7, history(5));
        cache.put(7, history(4));
        assert!(cache.get(7, 1, 5).is_some(), "version 5 was replaced by 4");
    }

    #[test]
    fn the_cache_holds_no_more_than_its_capacity() {
        let cache = HistoryCache::new(3);
        for id in 0..100 {
            cache.put(id, history(0));
        }
        assert_eq!(cache.len(), 3);
        let off = HistoryCache::new(0);
        off.put(1, history(0));
        assert!(off.get(1, 1, 0).is_none(), "capacity 0 must keep nothing");
    }
}
