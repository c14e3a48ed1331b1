//! Test helper for the crash-safety test: commits transactions until killed, printing
//! `ack N` after transaction `N` is acknowledged.
//!
//! Usage: `cairn-crash-child DATA_DIR FIRST_N`. Transaction `N` writes `t/N/a`, `t/N/b` and
//! `t/N/c`, each with the value `N`; four writers commit concurrently so group commit is in play.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use cairn_embedded::{Embedded, Options};

const WRITERS: u64 = 4;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(first)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: cairn-crash-child DATA_DIR FIRST_N");
        std::process::exit(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    let result: cairn_types::Result<()> = runtime.block_on(async {
        let db = Arc::new(Embedded::open(Options::new(dir)).await?);
        println!("ready");
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut n = first + w;
                    loop {
                        let mut txn = db.database().begin();
                        for part in ["a", "b", "c"] {
                            txn.put(
                                format!("t/{n:08}/{part}").into(),
                                Bytes::from(n.to_string()),
                            );
                        }
                        txn.commit().await?;
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "ack {n}");
                        let _ = out.flush();
                        n += WRITERS;
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), cairn_types::Error>(())
                })
            })
            .collect();
        for writer in writers {
            writer
                .await
                .map_err(|e| cairn_types::Error::Internal(e.to_string()))??;
        }
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("crash child failed: {e}");
        std::process::exit(1);
    }
}
