//! The accept loop and shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cairn_clock::SystemClock;
use cairn_sql::Engine;
use cairn_types::clock::{timeout, Clock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use crate::connection::{self, Shared};
use crate::registry::Registry;
use crate::spin::Connections;
use crate::startup::Credential;
use crate::threads::ConnectionThreads;
use crate::ServerConfig;

/// How long shutdown waits for running statements before cancelling them, and again before
/// abandoning their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::default());
    let registry = Registry::new();
    let threads = match ConnectionThreads::start(config.connection_threads, clock.clone()) {
        Ok(threads) => threads,
        Err(error) => {
            tracing::error!(%error, "cannot start the connection threads");
            return;
        }
    };
    let activity = Connections::new(clock.clone());
    let shared = Arc::new(Shared {
        engine,
        credential: config.password.as_deref().map(Credential::new),
        registry: registry.clone(),
        clock: clock.clone(),
        connections: activity.clone(),
    });
    let idle_cpus = tokio::spawn(activity.watch_idle_cpus());
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
                    }
                    spawn_connection(&mut connections, &threads, stream, peer, &shared, &stopped);
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    clock.sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => reap(joined),
        }
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "shutting down: no longer accepting connections"
    );
    let _ = stop.send(true);
    if timeout(clock.as_ref(), SHUTDOWN_GRACE, drain(&mut connections))
        .await
        .is_none()
    {
        tracing::warn!(
            connections = connections.len(),
            "cancelling statements still running"
        );
        registry.cancel_all();
        if timeout(clock.as_ref(), SHUTDOWN_GRACE, drain(&mut connections))
            .await
            .is_none()
        {
            tracing::warn!(connections = connections.len(), "abandoning connections");
            connections.abort_all();
            drain(&mut connections).await;
        }
    }
    idle_cpus.abort();
}

/// Runs the connection on the thread serving the fewest, its socket registered with that
/// thread's epoll.
fn spawn_connection(
    connections: &mut JoinSet<()>,
    threads: &ConnectionThreads,
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    stopped: &watch::Receiver<bool>,
) {
    let stream = match stream.into_std() {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(%peer, %error, "could not hand the connection to its thread");
            return;
        }
    };
    let (shared, stopped) = (shared.clone(), stopped.clone());
    threads.spawn(connections, move || async move {
        match TcpStream::from_std(stream) {
            Ok(stream) => connection::run(stream, peer, shared, stopped).await,
            Err(error) => tracing::warn!(%peer, %error, "could not register the connection"),
        }
    });
}

async fn drain(connections: &mut JoinSet<()>) {
    while let Some(joined) = connections.join_next().await {
        reap(joined);
    }
}

fn reap(joined: Result<(), JoinError>) {
    if let Err(error) = joined {
        if error.is_panic() {
            tracing::error!(%error, "a connection task panicked");
        }
    }
}
