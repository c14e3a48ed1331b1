//! Which connection is which, for CancelRequest.
//!
//! Every session gets a process id (unique among live connections) and a random secret, sent
//! to the client in BackendKeyData. A CancelRequest arrives on a new connection carrying the
//! pair; the registry finds the session and asks its running statement to stop. A cancel that
//! finds the session idle is dropped, as PostgreSQL ignores a cancel that arrives between
//! statements. A registration removes itself when the connection ends.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_sql::CancelToken;

/// The first process id handed out (small ids look like real PostgreSQL backends).
const FIRST_PID: i32 = 10_000;

struct Entry {
    secret: i32,
    token: CancelToken,
    busy: Arc<AtomicBool>,
}

/// Live sessions by process id.
pub(crate) struct Registry {
    sessions: Mutex<HashMap<i32, Entry>>,
    next_pid: Mutex<i32>,
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            next_pid: Mutex::new(FIRST_PID),
        })
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<i32, Entry>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a session; `busy` is true while it runs a statement.
    pub(crate) fn register(
        self: &Arc<Self>,
        token: CancelToken,
        busy: Arc<AtomicBool>,
    ) -> Registration {
        let secret = random_u64() as i32;
        let mut next = self
            .next_pid
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut sessions = self.sessions();
        let pid = loop {
            let pid = *next;
            *next = if pid == i32::MAX { FIRST_PID } else { pid + 1 };
            if !sessions.contains_key(&pid) {
                break pid;
            }
        };
        sessions.insert(
            pid,
            Entry {
                secret,
                token,
                busy,
            },
        );
        Registration {
            registry: self.clone(),
            pid,
            secret,
        }
    }

    /// Cancels the running statement of the session `(pid, secret)`, if there is one. Returns
    /// whether a statement was asked to stop.
    pub(crate) fn cancel(&self, pid: i32, secret: &[u8]) -> bool {
        let sessions = self.sessions();
        let Some(entry) = sessions.get(&pid) else {
            return false;
        };
        if secret != entry.secret.to_be_bytes() || !entry.busy.load(Ordering::Acquire) {
            return false;
        }
        entry.token.cancel();
        true
    }

    /// Cancels every running statement (shutdown, after the grace period).
    pub(crate) fn cancel_all(&self) {
        for entry in self.sessions().values() {
            if entry.busy.load(Ordering::Acquire) {
                entry.token.cancel();
            }
        }
    }
}

/// A session's place in the registry; dropping it unregisters.
pub(crate) struct Registration {
    registry: Arc<Registry>,
    /// The process id for BackendKeyData.
    pub(crate) pid: i32,
    /// The secret key for BackendKeyData.
    pub(crate) secret: i32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.sessions().remove(&self.pid);
    }
}

/// An unpredictable 64-bit number, for cancel secrets and SCRAM salts.
///
/// The workspace deliberately has no unseeded random number generator (simulation must
/// replay). These values never influence what the database computes, only whether a third
/// party can guess them, so they come from the standard library's SipHash keys, which the
/// operating system seeds randomly per process: SipHash under a secret key is a
/// pseudo-random function, so its output on a counter is unpredictable to anyone without
/// the key.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_needs_the_right_secret_and_a_running_statement() {
        let registry = Registry::new();
        let busy = Arc::new(AtomicBool::new(false));
        let registration = registry.register(CancelToken::default(), busy.clone());
        let secret = registration.secret.to_be_bytes();
        assert!(
            !registry.cancel(registration.pid, &secret),
            "idle sessions ignore cancels"
        );
        busy.store(true, Ordering::Release);
        assert!(!registry.cancel(registration.pid, &(registration.secret ^ 1).to_be_bytes()));
        assert!(!registry.cancel(registration.pid + 1, &secret));
        assert!(registry.cancel(registration.pid, &secret));
        let pid = registration.pid;
        drop(registration);
        assert!(!registry.cancel(pid, &secret), "dropping unregisters");
    }

    #[test]
    fn process_ids_are_unique_among_live_sessions() {
        let registry = Registry::new();
        let a = registry.register(CancelToken::default(), Arc::default());
        let b = registry.register(CancelToken::default(), Arc::default());
        assert_ne!(a.pid, b.pid);
        assert_ne!(random_u64(), random_u64());
    }
}
