//! `cairn`: the database server, every component in one process (DESIGN §6, "embedded").
//!
//! ```text
//!  cairn start --data-dir ./cairn-data --listen 127.0.0.1:5433 [--password-env VAR | --password-file PATH]
//!              [--connection-threads N]
//!
//!   clients ──TCP──▶ cairn_pgwire::serve ──▶ cairn_sql::Engine ──▶ cairn_embedded::Embedded
//!                    (connection threads)       (sessions)          journal, storage, adjudicator,
//!                                                                   crossbar in <data-dir>
//! ```
//!
//! `start` opens (or creates, or recovers) the data directory, binds the listener, logs
//! `listening on ...`, and serves until SIGINT or SIGTERM. Then it stops accepting, lets
//! running statements finish, tells idle clients FATAL 57P01, and closes the embedded core
//! (dropping it stops its background tasks; everything acknowledged is already in the
//! journal, so there is nothing to flush).
//!
//! Safety rule: without a password the server admits only loopback clients, so it refuses
//! to start (exit code 2) when asked to listen on a non-loopback address without one. The
//! password comes from an environment variable or a file, never from the command line
//! (where `ps` would show it).
//!
//! Exit codes: 0 after a clean shutdown, 1 when the server fails (data directory, bind), 2
//! for a usage or configuration error.
//!
//! Logs go to stderr through `tracing-subscriber`; `RUST_LOG` filters them (default `info`).
//! mimalloc is the global allocator (measured faster than the system allocator for the
//! core's many small allocations; see docs/benchmarks.md), built without transparent huge
//! pages: zeroing a 2 MiB page at its first touch stalled commits for up to half a
//! millisecond. On a system whose THP setting is `always` rather than `madvise`, setting
//! `MIMALLOC_ALLOW_THP=0` makes mimalloc turn THP off for the process.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Cairn: a PostgreSQL-compatible distributed SQL database.
#[derive(Parser)]
#[command(name = "cairn", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: every component in this process, over one data directory.
    Start(StartArgs),
}

#[derive(Args)]
struct StartArgs {
    /// Where the journal and storage live (created if missing).
    #[arg(long, default_value = "./cairn-data")]
    data_dir: PathBuf,
    /// The address to accept PostgreSQL clients on.
    #[arg(long, default_value = "127.0.0.1:5433")]
    listen: SocketAddr,
    /// Read the password of the `postgres` role from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "password_file")]
    password_env: Option<String>,
    /// Read the password of the `postgres` role from this file (trailing newline ignored).
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
    /// Threads serving connections, each running its connections on a single-threaded
    /// runtime [default: twice the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    connection_threads: Option<u16>,
}

/// Why `cairn` stopped, as an exit code.
enum Failure {
    /// A usage or configuration error (exit code 2).
    Config(String),
    /// The server could not run (exit code 1).
    Runtime(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Start(args) => start(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(message)) => {
            tracing::error!("{message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            tracing::error!("{message}");
            ExitCode::from(1)
        }
    }
}

fn start(args: StartArgs) -> Result<(), Failure> {
    let password = password(&args)?;
    if password.is_none() && !args.listen.ip().is_loopback() {
        return Err(Failure::Config(format!(
            "refusing to listen on {} without a password: without one only loopback clients are \
             admitted; set --password-env VAR or --password-file PATH, or listen on 127.0.0.1",
            args.listen
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cairn")
        // Statements recurse (expressions, JSON, subqueries) below a deep chain of async
        // calls; tokio's 2 MiB leaves too little room in debug builds. The limits on depth
        // (54001) are checked before this stack runs out.
        .thread_stack_size(8 << 20)
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(args, password))
}

async fn run(args: StartArgs, password: Option<String>) -> Result<(), Failure> {
    let embedded = cairn_embedded::Embedded::open(cairn_embedded::Options::new(&args.data_dir))
        .await
        .map_err(|e| {
            Failure::Runtime(format!(
                "cannot open the data directory {}: {e}",
                args.data_dir.display()
            ))
        })?;
    tracing::info!(data_dir = %args.data_dir.display(), "data directory open");
    let engine = cairn_sql::Engine::new(embedded.database().clone());
    engine
        .resume_jobs()
        .await
        .map_err(|e| Failure::Runtime(format!("cannot resume background jobs: {}", e.message)))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", args.listen)))?;
    let listen = listener.local_addr().unwrap_or(args.listen);
    tracing::info!("listening on {listen}");
    // Twice the CPUs measured best on 2 cores (docs/benchmarks.md, "Connection threads"):
    // when one thread is preempted, another still serves its connections.
    let connection_threads = args.connection_threads.map_or_else(
        || std::thread::available_parallelism().map_or(2, |cpus| 2 * cpus.get()),
        usize::from,
    );
    let config = cairn_pgwire::ServerConfig {
        listen,
        password,
        connection_threads,
    };
    cairn_pgwire::serve(listener, engine, config, termination()).await;
    drop(embedded);
    tracing::info!("shut down");
    Ok(())
}

/// The configured password, if any. An empty password is refused: it would look configured
/// and admit anyone.
fn password(args: &StartArgs) -> Result<Option<String>, Failure> {
    let password = match (&args.password_env, &args.password_file) {
        (Some(var), _) => Some(std::env::var(var).map_err(|_| {
            Failure::Config(format!(
                "--password-env {var}: the environment variable is not set (or not UTF-8)"
            ))
        })?),
        (None, Some(path)) => {
            let contents = std::fs::read_to_string(path)
                .map_err(|e| Failure::Config(format!("--password-file {}: {e}", path.display())))?;
            Some(contents.trim_end_matches(['\n', '\r']).to_owned())
        }
        (None, None) => None,
    };
    match password {
        Some(p) if p.is_empty() => Err(Failure::Config("the configured password is empty".into())),
        other => Ok(other),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn termination() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
