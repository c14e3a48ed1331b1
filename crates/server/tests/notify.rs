//! LISTEN / NOTIFY between sessions of the real server: a notification reaches listeners
//! when the notifying transaction commits (once per channel and payload), never if it rolls
//! back, and a listener inside a transaction gets it when that transaction ends.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Notification};

/// A client whose notifications arrive on the returned channel.
async fn listener(
    server: &common::Server,
) -> (
    tokio_postgres::Client,
    mpsc::UnboundedReceiver<Notification>,
) {
    let (client, mut connection) = server
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(notification) = message {
                let _ = sender.send(notification);
            }
        }
    });
    (client, receiver)
}

/// The next notification within a second, if any.
async fn next(receiver: &mut mpsc::UnboundedReceiver<Notification>) -> Option<(String, String)> {
    let clock = common::clock();
    tokio::select! {
        n = receiver.recv() => n.map(|n| (n.channel().to_string(), n.payload().to_string())),
        () = cairn_types::clock::Clock::sleep(&clock, Duration::from_millis(1000)) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_follow_commits() {
    let server = common::Server::start().await;
    let (listening, mut received) = listener(&server).await;
    let notifier = server.connect().await;
    listening.batch_execute("LISTEN events").await.unwrap();

    notifier
        .batch_execute("NOTIFY events, 'first'")
        .await
        .unwrap();
    // The listener's connection reads the notification when the server sends it (idle).
    listening.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(
        next(&mut received).await,
        Some(("events".into(), "first".into()))
    );

    notifier
        .batch_execute("BEGIN; NOTIFY events, 'never'; SELECT 1 / 0")
        .await
        .unwrap_err();
    notifier.batch_execute("ROLLBACK").await.unwrap();
    notifier
        .batch_execute("BEGIN; NOTIFY events, 'twice'; NOTIFY events, 'twice'; COMMIT")
        .await
        .unwrap();
    listening.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(
        next(&mut received).await,
        Some(("events".into(), "twice".into()))
    );
    assert_eq!(
        next(&mut received).await,
        None,
        "once per channel and payload"
    );

    // A listener inside a transaction gets it when the transaction ends.
    listening.batch_execute("BEGIN").await.unwrap();
    notifier
        .batch_execute("NOTIFY events, 'held'")
        .await
        .unwrap();
    listening.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(next(&mut received).await, None);
    listening.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        next(&mut received).await,
        Some(("events".into(), "held".into()))
    );

    // A NOTIFY rolled back to a savepoint is not sent.
    notifier
        .batch_execute(
            "BEGIN; SAVEPOINT s; NOTIFY events, 'undone'; ROLLBACK TO s; NOTIFY events, 'kept'; COMMIT",
        )
        .await
        .unwrap();
    listening.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(
        next(&mut received).await,
        Some(("events".into(), "kept".into()))
    );
    assert_eq!(next(&mut received).await, None);

    // pg_notify, the function form, from a query.
    notifier
        .batch_execute("SELECT pg_notify('events', 'from ' || 'a function')")
        .await
        .unwrap();
    listening.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(
        next(&mut received).await,
        Some(("events".into(), "from a function".into()))
    );

    listening.batch_execute("UNLISTEN *").await.unwrap();
    notifier
        .batch_execute("NOTIFY events, 'gone'")
        .await
        .unwrap();
    listening.batch_execute("SELECT 1").await.unwrap();
    assert_eq!(next(&mut received).await, None);
}
