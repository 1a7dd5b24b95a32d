//! A map whose entries expire, with bounded memory. Time is a parameter:
//! any ordered instant (`std::time::Instant`, a `Duration` since an origin,
//! a `DateTime`). Used by every cache and limiter of zhima (API keys, QR
//! replays, client secrets, login attempts).

use std::collections::HashMap;
use std::hash::Hash;

/// At most `capacity` entries, each with the instant it expires. When full,
/// an insert drops the expired entries first, then the one expiring
/// soonest: never everything at once (a flood must not wipe out what the map
/// protects, such as replay answers).
#[derive(Debug, Clone)]
pub struct ExpiringMap<K, V, I> {
    entries: HashMap<K, (I, V)>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V, I: Ord + Copy> ExpiringMap<K, V, I> {
    /// An empty map holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> ExpiringMap<K, V, I> {
        ExpiringMap {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`, unless it expired at or before `now`.
    pub fn get(&self, key: &K, now: I) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|(expires, _)| now < *expires)
            .map(|(_, v)| v)
    }

    /// The value of `key` to change, unless it expired (an expired one is
    /// removed).
    pub fn get_mut(&mut self, key: &K, now: I) -> Option<&mut V> {
        if self.entries.get(key).is_some_and(|(e, _)| *e <= now) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key).map(|(_, v)| v)
    }

    /// Sets `key` to `value` until `expires`.
    pub fn insert(&mut self, key: K, value: V, expires: I, now: I) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, (e, _)| now < *e);
            if self.entries.len() >= self.capacity {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (e, _))| *e)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (expires, value));
    }

    /// Moves the expiry of `key`, if it is there.
    pub fn extend(&mut self, key: &K, expires: I) {
        if let Some((e, _)) = self.entries.get_mut(key) {
            *e = expires;
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|(_, v)| v)
    }

    /// How many entries are held, expired ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_until_their_expiry() {
        let mut m: ExpiringMap<&str, u32, u64> = ExpiringMap::new(10);
        m.insert("a", 1, 10, 0);
        assert_eq!(m.get(&"a", 9), Some(&1));
        assert_eq!(m.get(&"a", 10), None, "expired at its instant");
        assert_eq!(m.get_mut(&"a", 10), None);
        assert!(
            m.is_empty(),
            "an expired entry asked for mutably is dropped"
        );
        m.insert("b", 2, 5, 0);
        m.extend(&"b", 20);
        assert_eq!(m.get(&"b", 15), Some(&2));
        *m.get_mut(&"b", 15).unwrap() += 1;
        assert_eq!(m.remove(&"b"), Some(3));
    }

    #[test]
    fn a_full_map_drops_the_expired_then_the_soonest_never_all() {
        let mut m: ExpiringMap<u32, (), u64> = ExpiringMap::new(3);
        m.insert(1, (), 100, 0);
        m.insert(2, (), 5, 0);
        m.insert(3, (), 50, 0);
        m.insert(4, (), 60, 10); // 2 has expired: it goes
        assert_eq!(m.len(), 3);
        assert!(m.get(&1, 10).is_some() && m.get(&3, 10).is_some() && m.get(&4, 10).is_some());
        m.insert(5, (), 70, 10); // none expired: 3 (soonest) goes
        assert_eq!(m.len(), 3);
        assert!(m.get(&3, 10).is_none());
        assert!(m.get(&1, 10).is_some() && m.get(&4, 10).is_some() && m.get(&5, 10).is_some());
        // replacing a key never evicts another
        m.insert(5, (), 80, 10);
        assert_eq!(m.len(), 3);
        for i in 100..10_000 {
            m.insert(i, (), 1_000, 10);
        }
        assert_eq!(m.len(), 3, "bounded");
        assert!(m.get(&1, 10).is_none(), "the soonest went first");
    }
}
