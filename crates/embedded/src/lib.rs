//! Embedded Cairn: every component in one process over one data directory (DESIGN §6).
//!
//! ```text
//!  data_dir/journal/   FileJournal      ◄── append ── LocalAdjudicator ◄── commit ── Database (qp)
//!  data_dir/storage/   FjallStorage     ◄── apply ─── crossbar ◄── read ── journal      │
//!                           ▲                                                           │
//!                           └───────────────────── get / scan at read_ts ───────────────┘
//! ```
//!
//! The components talk only through their seam traits, exactly as they would across
//! processes; with [`Options::loopback`] every message is also serialised both ways.
//! Background work: the crossbar (journal → storage, on a thread of its own), heartbeats (periodic, and on demand
//! when a read waits for storage to become complete: then, if storage already holds every
//! published record, the reader's task delivers the heartbeat itself with
//! [`cairn_crossbar::catch_up`], having published it quietly so the crossbar's thread does
//! not wake for it), and maintenance (checkpoint storage,
//! truncate the journal prefix it covers, garbage-collect old versions; each pass on a
//! blocking thread, since it syncs files and a GC pass with work walks every stored version).
//!
//! Opening on an existing directory is recovery: the journal truncates a torn tail (and refuses
//! to open on corruption), the adjudicator fences the journal and continues above its highest
//! timestamp, and the crossbar replays the journal into storage from storage's applied position.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cairn_adjudicator::{AdjudicatorOptions, LocalAdjudicator};
use cairn_clock::SystemClock;
use cairn_crossbar::Shard;
use cairn_journal::{FileJournal, JournalOptions};
use cairn_qp::Database;
use cairn_storage::{FjallStorage, StorageOptions};
use cairn_types::adjudicator::{self, Adjudicator, HeartbeatRequest};
use cairn_types::clock::Clock;
use cairn_types::journal::{self as journal_seam, Journal, TruncateRequest};
use cairn_types::storage::{self, CheckpointRequest, GcRequest, Storage};
use cairn_types::{JournalId, KeyRange, Result};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How to open an embedded Cairn.
#[derive(Clone)]
pub struct Options {
    /// Where the journal and storage live.
    pub data_dir: PathBuf,
    /// The clock every component reads.
    pub clock: Arc<dyn Clock>,
    /// Send every message between components through the wire encoding (slower; catches
    /// encoding bugs).
    pub loopback: bool,
    /// Heartbeats are published at least this often (and at once when a read waits).
    pub heartbeat_interval: Duration,
    /// How often storage is checkpointed, the journal truncated and old versions collected.
    pub maintenance_interval: Duration,
    /// The maximum transaction age: the adjudicator's memory and the GC horizon's lag.
    pub max_transaction_age: Duration,
    /// How long a read waits for storage to become complete before failing.
    pub read_wait_timeout: Duration,
    /// Journal tuning.
    pub journal: JournalOptions,
    /// Bytes of storage's block cache.
    pub storage_cache_bytes: u64,
    /// Bytes of storage's newest-version cache (point reads of recently read keys).
    pub storage_latest_cache_bytes: u64,
    /// Bounds on each transaction's rows and bytes written; exceeding one is SQLSTATE 54000.
    /// Its age bound is `max_transaction_age`.
    pub limits: cairn_qp::Limits,
}

impl Options {
    /// Defaults over `data_dir`, with the system clock (error bound zero: one machine).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Options {
            data_dir: data_dir.into(),
            clock: Arc::new(SystemClock::default()),
            loopback: false,
            heartbeat_interval: Duration::from_millis(50),
            maintenance_interval: Duration::from_secs(30),
            max_transaction_age: Duration::from_secs(300),
            read_wait_timeout: Duration::from_secs(5),
            journal: JournalOptions::default(),
            storage_cache_bytes: cairn_storage::DEFAULT_CACHE_BYTES,
            storage_latest_cache_bytes: cairn_storage::DEFAULT_LATEST_CACHE_BYTES,
            limits: cairn_qp::Limits::default(),
        }
    }
}

/// What a read about to wait for completeness uses to have it sooner (see [`Embedded::open`]).
struct WaitShortcut {
    adjudicator: Arc<dyn Adjudicator>,
    /// Woken when a quiet heartbeat could not be delivered by the reader.
    journal: Arc<FileJournal>,
    journals: Vec<(JournalId, Arc<dyn Journal>)>,
    shards: Vec<Shard>,
}

/// A running embedded Cairn. Dropping it stops the background tasks.
pub struct Embedded {
    database: Database,
    journal: Arc<FileJournal>,
    storage: Arc<dyn Storage>,
    adjudicator: Arc<dyn Adjudicator>,
    tasks: Vec<JoinHandle<()>>,
    crossbar: Option<CrossbarThread>,
    /// Kept alive here only (storage's read hook holds it weakly).
    _shortcut: Arc<WaitShortcut>,
}

impl Embedded {
    /// Opens (or creates, or recovers) the database in `options.data_dir`. Must be called on a
    /// tokio runtime; the background tasks run on it.
    pub async fn open(options: Options) -> Result<Embedded> {
        let clock = options.clock.clone();
        let journal_dir = options.data_dir.join("journal");
        let storage_dir = options.data_dir.join("storage");
        for dir in [&journal_dir, &storage_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| cairn_types::Error::io(format!("creating {}", dir.display()), e))?;
        }

        let file_journal = Arc::new(FileJournal::open(&journal_dir, options.journal.clone())?);
        let journal: Arc<dyn Journal> = if options.loopback {
            Arc::new(journal_seam::Loopback(file_journal.clone()))
        } else {
            file_journal.clone()
        };

        // A read that must wait for storage to become complete asks for a heartbeat at once,
        // in its own task (no hop to the heartbeat task) when the adjudicator can answer
        // without waiting, and then has the crossbar's promise made at once when storage
        // already holds every published record (no hop to the crossbar's thread and back).
        // Such a heartbeat is quiet: it does not wake the crossbar's thread, which would only
        // apply it again. When the reader cannot deliver it, it wakes that thread, and if the
        // heartbeat could not be published at once it also nudges the heartbeat task.
        let nudge = Arc::new(Notify::new());
        // Weak: storage holds this hook, and the shortcut holds storage.
        let components: Arc<OnceLock<Weak<WaitShortcut>>> = Arc::new(OnceLock::new());
        let on_wait = {
            let (nudge, cell) = (nudge.clone(), components.clone());
            Arc::new(move |_ts| {
                let Some(shortcut) = cell.get().and_then(Weak::upgrade) else {
                    nudge.notify_one();
                    return;
                };
                let mut context = Context::from_waker(Waker::noop());
                let mut heartbeat = shortcut
                    .adjudicator
                    .heartbeat(HeartbeatRequest { quiet: true });
                let answered = heartbeat.as_mut().poll(&mut context).is_ready();
                if answered {
                    let caught_up = cairn_crossbar::catch_up(&shortcut.journals, &shortcut.shards);
                    let delivered = std::pin::pin!(caught_up).poll(&mut context);
                    if matches!(delivered, Poll::Ready(Ok(true))) {
                        return;
                    }
                }
                shortcut.journal.wake_readers();
                if !answered {
                    nudge.notify_one();
                }
            })
        };
        let storage_options = StorageOptions {
            read_wait_timeout: options.read_wait_timeout,
            on_wait: Some(on_wait),
            cache_bytes: options.storage_cache_bytes,
            latest_cache_bytes: options.storage_latest_cache_bytes,
        };
        let fjall = FjallStorage::open(&storage_dir, clock.clone(), storage_options)?;
        let storage: Arc<dyn Storage> = if options.loopback {
            Arc::new(storage::Loopback(fjall))
        } else {
            Arc::new(fjall)
        };

        let adjudicator_options = AdjudicatorOptions {
            memory: options.max_transaction_age,
            ..Default::default()
        };
        let local =
            LocalAdjudicator::open(journal.clone(), clock.clone(), adjudicator_options).await?;
        let adjudicator: Arc<dyn Adjudicator> = if options.loopback {
            Arc::new(adjudicator::Loopback(local))
        } else {
            Arc::new(local)
        };

        let shards = vec![Shard {
            range: KeyRange::all(),
            storage: storage.clone(),
        }];
        let crossbar_journals = vec![(JournalId(0), journal.clone())];
        let shortcut = Arc::new(WaitShortcut {
            adjudicator: adjudicator.clone(),
            journal: file_journal.clone(),
            journals: crossbar_journals.clone(),
            shards: shards.clone(),
        });
        let _ = components.set(Arc::downgrade(&shortcut));
        let crossbar = CrossbarThread::start(crossbar_journals, shards)?;
        let tasks = vec![
            tokio::spawn(cairn_adjudicator::run_heartbeats(
                adjudicator.clone(),
                clock.clone(),
                options.heartbeat_interval,
                nudge,
            )),
            tokio::spawn(maintain(
                journal.clone(),
                storage.clone(),
                clock.clone(),
                options.maintenance_interval,
                options.max_transaction_age,
            )),
        ];

        let database = Database::new(storage.clone(), adjudicator.clone(), clock).with_limits(
            cairn_qp::Limits {
                max_age: options.max_transaction_age,
                ..options.limits
            },
        );
        Ok(Embedded {
            database,
            journal: file_journal,
            storage,
            adjudicator,
            tasks,
            crossbar: Some(crossbar),
            _shortcut: shortcut,
        })
    }

    /// The query processor's entry point: begin transactions here.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The journal, for statistics.
    pub fn journal(&self) -> &Arc<FileJournal> {
        &self.journal
    }

    /// The storage seam.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The adjudicator seam.
    pub fn adjudicator(&self) -> &Arc<dyn Adjudicator> {
        &self.adjudicator
    }

    /// Checkpoints storage and truncates the journal prefix it covers, now.
    pub async fn checkpoint(&self) -> Result<()> {
        checkpoint(self.journal.as_ref(), self.storage.as_ref()).await
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(crossbar) = self.crossbar.take() {
            crossbar.stop();
        }
    }
}

/// The crossbar runs on a thread of its own: storage's engine calls block, and they must not
/// stall the runtime that runs transactions (measured: with the crossbar on the shared runtime,
/// 64 committers used 1.4 of 2 cores and throughput stalled behind storage apply).
struct CrossbarThread {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl CrossbarThread {
    fn start(journals: Vec<(JournalId, Arc<dyn Journal>)>, shards: Vec<Shard>) -> Result<Self> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| cairn_types::Error::io("starting the crossbar's runtime", e))?;
        let thread = std::thread::Builder::new()
            .name("cairn-crossbar".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        result = cairn_crossbar::run(journals, shards) => {
                            if let Err(e) = result {
                                tracing::error!(error = %e, "crossbar stopped: storage no longer advances");
                            }
                        }
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| cairn_types::Error::io("starting the crossbar thread", e))?;
        Ok(CrossbarThread { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("the crossbar thread panicked");
        }
    }
}

async fn checkpoint(journal: &dyn Journal, storage: &dyn Storage) -> Result<()> {
    let checkpointed = storage.checkpoint(CheckpointRequest {}).await?.checkpointed;
    if let Some((_, before)) = checkpointed.iter().find(|(id, _)| *id == JournalId(0)) {
        journal
            .truncate(TruncateRequest { before: *before })
            .await?;
    }
    Ok(())
}

/// Periodic upkeep: checkpoint and truncate, then collect versions older than the horizon.
async fn maintain(
    journal: Arc<dyn Journal>,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    max_transaction_age: Duration,
) {
    let age_nanos = u64::try_from(max_transaction_age.as_nanos()).unwrap_or(u64::MAX);
    loop {
        clock.sleep(interval).await;
        let horizon = clock.now().earliest.saturating_sub_nanos(age_nanos);
        let (journal, storage) = (journal.clone(), storage.clone());
        let runtime = tokio::runtime::Handle::current();
        // On a blocking thread: the checkpoint syncs storage's files and a GC pass with work
        // walks every stored version (pgbench's million rows: 0.6 s of CPU, 1.1 s in all),
        // and on a runtime worker either would stall the connections queued behind it.
        let pass = tokio::task::spawn_blocking(move || {
            runtime.block_on(async {
                if let Err(e) = checkpoint(journal.as_ref(), storage.as_ref()).await {
                    tracing::warn!(error = %e, "checkpoint failed");
                }
                match storage.gc(GcRequest { horizon }).await {
                    Ok(done) => {
                        tracing::debug!(removed = done.versions_removed, "garbage collected")
                    }
                    Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
                }
            })
        });
        if let Err(e) = pass.await {
            tracing::error!(error = %e, "a maintenance pass panicked");
        }
    }
}
