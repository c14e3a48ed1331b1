//! Advisory locks (`pg_advisory_lock` and its variants): locks on application-chosen keys
//! that exclude each other across all sessions of the process, held until unlocked or until
//! the session ends (session level), or until the transaction ends (`_xact_`).
//!
//! A lock is exclusive or shared; a session's own locks never block it (they count, and
//! each lock call needs its unlock). Expressions are evaluated synchronously, so a lock that
//! is busy cannot be waited for where it is called: the call fails with an error that
//! [`is_would_block`] recognises, the
//! session undoes what the statement did (the locks it took in this attempt, its writes) and
//! runs it again once a lock has been released. Statements that lock therefore take all
//! their locks or none.
//!
//! Shortcut: the table lives in the process (one Cairn server); locks do not reach other
//! processes of a cluster, and waits are not checked for deadlocks (a cancel ends them).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::error::{SqlError, SqlState};

/// The SQLSTATE a busy lock call fails with inside the engine; sessions turn it into a wait
/// and never send it (it is in the class of `lock_not_available`).
const WOULD_BLOCK: SqlState = SqlState("55P0W");

/// A lock's key: `pg_advisory_lock(bigint)` and `pg_advisory_lock(int, int)` are separate
/// key spaces, as in PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockKey {
    /// One 64-bit key.
    Single(i64),
    /// Two 32-bit keys.
    Pair(i32, i32),
}

/// Who holds a lock how many times, by kind of hold.
#[derive(Default, Clone, Copy)]
struct Counts {
    session: u32,
    xact: u32,
}

impl Counts {
    fn total(self) -> u32 {
        self.session + self.xact
    }
}

#[derive(Default)]
struct Holders {
    exclusive: HashMap<u64, Counts>,
    shared: HashMap<u64, Counts>,
}

impl Holders {
    fn is_empty(&self) -> bool {
        self.exclusive.is_empty() && self.shared.is_empty()
    }

    fn grantable(&self, session: u64, shared: bool) -> bool {
        let others = |holders: &HashMap<u64, Counts>| holders.keys().any(|&s| s != session);
        if shared {
            !others(&self.exclusive)
        } else {
            !others(&self.exclusive) && !others(&self.shared)
        }
    }
}

#[derive(Default)]
struct Table {
    locks: HashMap<LockKey, Holders>,
    /// Per session: the locks taken by the statement attempt under way (to undo on retry).
    attempts: HashMap<u64, Vec<(LockKey, bool, bool)>>,
    /// Per session: what its unlock calls returned in the statement's earlier attempts (a
    /// retry replays them rather than unlocking again), and how many this attempt made.
    unlocks: HashMap<u64, (Vec<bool>, usize)>,
    /// Per session: its transaction-level locks in the order taken (savepoints mark it).
    xact_order: HashMap<u64, Vec<(LockKey, bool)>>,
    /// Sessions waiting, and for which lock in which mode (for deadlock detection).
    waiting: HashMap<u64, (LockKey, bool)>,
}

impl Table {
    /// The other sessions whose holds of `key` keep `waiter` from taking it.
    fn blockers(&self, key: LockKey, shared: bool, waiter: u64) -> Vec<u64> {
        let Some(holders) = self.locks.get(&key) else {
            return Vec::new();
        };
        let mut found: Vec<u64> = holders.exclusive.keys().copied().collect();
        if !shared {
            found.extend(holders.shared.keys().copied());
        }
        found.retain(|&s| s != waiter);
        found
    }

    /// Whether `session` waiting for `key` would close a cycle of sessions waiting for each
    /// other's locks.
    fn deadlocks(&self, session: u64, key: LockKey, shared: bool) -> bool {
        let mut stack = self.blockers(key, shared, session);
        let mut seen = std::collections::HashSet::new();
        while let Some(holder) = stack.pop() {
            if holder == session {
                return true;
            }
            if seen.insert(holder) {
                if let Some(&(wanted, mode)) = self.waiting.get(&holder) {
                    stack.extend(self.blockers(wanted, mode, holder));
                }
            }
        }
        false
    }

    fn drop_hold(&mut self, session: u64, key: LockKey, shared: bool, xact: bool) -> bool {
        let Some(holders) = self.locks.get_mut(&key) else {
            return false;
        };
        let map = if shared {
            &mut holders.shared
        } else {
            &mut holders.exclusive
        };
        let Some(counts) = map.get_mut(&session) else {
            return false;
        };
        let count = if xact {
            &mut counts.xact
        } else {
            &mut counts.session
        };
        if *count == 0 {
            return false;
        }
        *count -= 1;
        if counts.total() == 0 {
            map.remove(&session);
        }
        if holders.is_empty() {
            self.locks.remove(&key);
        }
        if xact {
            if let Some(order) = self.xact_order.get_mut(&session) {
                if let Some(i) = order.iter().rposition(|&(k, m)| k == key && m == shared) {
                    order.remove(i);
                }
            }
        }
        true
    }
}

/// The process's advisory lock table.
#[derive(Default)]
pub struct AdvisoryLocks {
    table: Mutex<Table>,
    released: Notify,
}

impl std::fmt::Debug for AdvisoryLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdvisoryLocks")
    }
}

/// A lock call found the lock busy: the statement waits for a release and runs again.
pub fn is_would_block(error: &SqlError) -> bool {
    error.state == WOULD_BLOCK
}

impl AdvisoryLocks {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `key` for `session` if no other session's lock conflicts. `xact` locks end
    /// with the transaction. `Ok(false)` when busy and `wait` is false (the `try` forms);
    /// when busy and `wait` is true, an error [`is_would_block`] recognises, or 40P01 if
    /// waiting would close a cycle of sessions waiting for each other.
    pub fn acquire(
        &self,
        session: u64,
        key: LockKey,
        shared: bool,
        xact: bool,
        wait: bool,
    ) -> Result<bool, SqlError> {
        let mut table = self.table();
        let grantable = table
            .locks
            .get(&key)
            .is_none_or(|holders| holders.grantable(session, shared));
        if !grantable {
            if !wait {
                return Ok(false);
            }
            if table.deadlocks(session, key, shared) {
                table.waiting.remove(&session);
                return Err(SqlError::new(SqlState("40P01"), "deadlock detected")
                    .with_detail("Sessions are waiting for each other's advisory locks."));
            }
            table.waiting.insert(session, (key, shared));
            return Err(SqlError::new(
                WOULD_BLOCK,
                "advisory lock is held by another session",
            ));
        }
        table.waiting.remove(&session);
        let holders = table.locks.entry(key).or_default();
        let map = if shared {
            &mut holders.shared
        } else {
            &mut holders.exclusive
        };
        let counts = map.entry(session).or_default();
        if xact {
            counts.xact += 1;
            table
                .xact_order
                .entry(session)
                .or_default()
                .push((key, shared));
        } else {
            counts.session += 1;
        }
        table
            .attempts
            .entry(session)
            .or_default()
            .push((key, shared, xact));
        Ok(true)
    }

    /// Releases one session-level hold of `key`; `false` if the session held none. A call
    /// an earlier attempt of the statement made is not made again: its result is replayed.
    pub fn release(&self, session: u64, key: LockKey, shared: bool) -> bool {
        let mut table = self.table();
        let (done, made) = table.unlocks.entry(session).or_default();
        if let Some(&result) = done.get(*made) {
            *made += 1;
            return result;
        }
        let released = table.drop_hold(session, key, shared, false);
        let (done, made) = table.unlocks.entry(session).or_default();
        done.push(released);
        *made += 1;
        drop(table);
        if released {
            self.released.notify_waiters();
        }
        released
    }

    /// Releases what `session` holds: its transaction-level holds, its session-level holds,
    /// or both.
    fn release_where(&self, session: u64, xact: bool, session_level: bool) {
        let mut table = self.table();
        if xact {
            table.xact_order.remove(&session);
        }
        let mut changed = false;
        table.locks.retain(|_, holders| {
            for map in [&mut holders.exclusive, &mut holders.shared] {
                if let Some(counts) = map.get_mut(&session) {
                    if xact && counts.xact > 0 {
                        counts.xact = 0;
                        changed = true;
                    }
                    if session_level && counts.session > 0 {
                        counts.session = 0;
                        changed = true;
                    }
                    if counts.total() == 0 {
                        map.remove(&session);
                    }
                }
            }
            !holders.is_empty()
        });
        drop(table);
        if changed {
            self.released.notify_waiters();
        }
    }

    /// At the end of a transaction (committed, rolled back or failed): its `_xact_` locks go.
    pub fn release_xact(&self, session: u64) {
        self.release_where(session, true, false);
    }

    /// `pg_advisory_unlock_all()`, DISCARD ALL: the session-level locks go.
    pub fn release_all(&self, session: u64) {
        self.release_where(session, false, true);
    }

    /// The session ends: everything it holds goes.
    pub fn release_session(&self, session: u64) {
        self.release_where(session, true, true);
        let mut table = self.table();
        table.attempts.remove(&session);
        table.unlocks.remove(&session);
        table.waiting.remove(&session);
    }

    /// Where the transaction's lock list stands (SAVEPOINT).
    pub fn xact_mark(&self, session: u64) -> usize {
        self.table().xact_order.get(&session).map_or(0, Vec::len)
    }

    /// ROLLBACK TO SAVEPOINT: the transaction-level locks taken since `mark` go.
    pub fn release_xact_after(&self, session: u64, mark: usize) {
        let mut table = self.table();
        let later: Vec<(LockKey, bool)> = match table.xact_order.get_mut(&session) {
            Some(order) if order.len() > mark => order.split_off(mark),
            _ => return,
        };
        for (key, shared) in later.into_iter().rev() {
            table.drop_hold(session, key, shared, true);
        }
        drop(table);
        self.released.notify_waiters();
    }

    /// The session no longer waits (its statement was cancelled or timed out).
    pub fn stop_waiting(&self, session: u64) {
        self.table().waiting.remove(&session);
    }

    /// A statement starts: none of its unlock calls made yet.
    pub fn begin_statement(&self, session: u64) {
        self.table().unlocks.remove(&session);
    }

    /// A statement attempt starts: the locks it takes are remembered until [`Self::keep`].
    pub fn begin_attempt(&self, session: u64) {
        let mut table = self.table();
        table.attempts.remove(&session);
        if let Some((_, made)) = table.unlocks.get_mut(&session) {
            *made = 0;
        }
    }

    /// The attempt stands: its locks stay; the session waits for nothing.
    pub fn keep(&self, session: u64) {
        let mut table = self.table();
        table.attempts.remove(&session);
        table.waiting.remove(&session);
    }

    /// The attempt is undone (it will run again): the locks it took go.
    pub fn undo_attempt(&self, session: u64) {
        let mut table = self.table();
        let taken = table.attempts.remove(&session).unwrap_or_default();
        for (key, shared, xact) in taken.into_iter().rev() {
            table.drop_hold(session, key, shared, xact);
        }
        drop(table);
        self.released.notify_waiters();
    }

    /// Resolves when some lock is released (or soon after: callers check again).
    pub async fn released(&self) {
        self.released.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(locks: &AdvisoryLocks, session: u64, key: LockKey, shared: bool, xact: bool) -> bool {
        locks
            .acquire(session, key, shared, xact, false)
            .expect("a try never fails")
    }

    #[test]
    fn exclusive_locks_exclude_other_sessions_and_count_per_session() {
        let locks = AdvisoryLocks::default();
        let key = LockKey::Single(7);
        assert!(take(&locks, 1, key, false, false));
        assert!(take(&locks, 1, key, false, false));
        assert!(!take(&locks, 2, key, false, false));
        assert!(!take(&locks, 2, key, true, false));
        let busy = locks.acquire(2, key, false, false, true).unwrap_err();
        assert!(is_would_block(&busy));
        assert!(locks.release(1, key, false));
        assert!(!take(&locks, 2, key, false, false));
        assert!(locks.release(1, key, false));
        assert!(!locks.release(1, key, false));
        assert!(take(&locks, 2, key, false, false));
    }

    #[test]
    fn shared_locks_share_and_key_spaces_are_separate() {
        let locks = AdvisoryLocks::default();
        assert!(take(&locks, 1, LockKey::Single(1), true, false));
        assert!(take(&locks, 2, LockKey::Single(1), true, false));
        assert!(!take(&locks, 3, LockKey::Single(1), false, false));
        assert!(take(&locks, 3, LockKey::Pair(0, 1), false, false));
    }

    #[test]
    fn a_wait_that_closes_a_cycle_is_a_deadlock() {
        let locks = AdvisoryLocks::default();
        let (a, b) = (LockKey::Single(21), LockKey::Single(22));
        assert!(take(&locks, 1, a, false, false));
        assert!(take(&locks, 2, b, false, false));
        let waits = locks.acquire(1, b, false, false, true).unwrap_err();
        assert!(is_would_block(&waits));
        let deadlock = locks.acquire(2, a, false, false, true).unwrap_err();
        assert_eq!(deadlock.state, SqlState("40P01"));
    }

    #[test]
    fn a_retried_statement_replays_its_unlocks() {
        let locks = AdvisoryLocks::default();
        let key = LockKey::Single(5);
        assert!(take(&locks, 1, key, false, false));
        locks.begin_statement(1);
        locks.begin_attempt(1);
        assert!(locks.release(1, key, false));
        locks.undo_attempt(1);
        locks.begin_attempt(1);
        assert!(
            locks.release(1, key, false),
            "the first attempt's result, replayed"
        );
        locks.begin_statement(1);
        assert!(!locks.release(1, key, false));
    }

    #[test]
    fn rolling_back_to_a_savepoint_drops_later_transaction_locks() {
        let locks = AdvisoryLocks::default();
        assert!(take(&locks, 1, LockKey::Single(1), false, true));
        let mark = locks.xact_mark(1);
        assert!(take(&locks, 1, LockKey::Single(2), false, true));
        locks.release_xact_after(1, mark);
        assert!(take(&locks, 2, LockKey::Single(2), false, false));
        assert!(!take(&locks, 2, LockKey::Single(1), false, false));
    }

    #[test]
    fn transaction_locks_and_undone_attempts_are_released() {
        let locks = AdvisoryLocks::default();
        let key = LockKey::Single(9);
        locks.begin_attempt(1);
        assert!(take(&locks, 1, key, false, true));
        locks.keep(1);
        locks.release_xact(1);
        assert!(take(&locks, 2, key, false, false));
        locks.release_session(2);
        locks.begin_attempt(1);
        assert!(take(&locks, 1, key, false, false));
        locks.undo_attempt(1);
        assert!(take(&locks, 2, key, false, false));
    }
}
