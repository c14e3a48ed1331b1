//! COPY through a driver: tokio-postgres speaks COPY over the extended protocol, in binary
//! as well as text, and abandons a COPY with CopyFail. Bad data and abandoned copies leave
//! the table as it was and the connection usable.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::Type;

const ROWS: i32 = 20_000;

async fn count(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_copy_round_trips_every_row() {
    let server = common::Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, big bigint, price float8, \
             ok boolean, data bytea)",
        )
        .await
        .unwrap();
    let types = [
        Type::INT4,
        Type::TEXT,
        Type::INT8,
        Type::FLOAT8,
        Type::BOOL,
        Type::BYTEA,
    ];
    let sink = client
        .copy_in("COPY items FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &types);
    let mut writer = std::pin::pin!(writer);
    for i in 0..ROWS {
        let name = (i % 7 != 0).then(|| format!("item\t{i}\n\"quoted\""));
        let data = vec![(i % 256) as u8; (i % 5) as usize];
        writer
            .as_mut()
            .write(&[
                &i,
                &name,
                &(i64::from(i) << 33),
                &(f64::from(i) / 4.0),
                &(i % 2 == 0),
                &data,
            ])
            .await
            .unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), ROWS as u64);
    assert_eq!(count(&client).await, i64::from(ROWS));

    // Binary out gives back exactly what went in.
    let stream = client
        .copy_out("COPY (SELECT * FROM items ORDER BY id) TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let rows = BinaryCopyOutStream::new(stream, &types);
    let mut rows = std::pin::pin!(rows);
    let mut seen = 0;
    while let Some(row) = rows.next().await {
        let row = row.unwrap();
        let i = seen;
        assert_eq!(row.get::<i32>(0), i);
        let name = (i % 7 != 0).then(|| format!("item\t{i}\n\"quoted\""));
        assert_eq!(row.get::<Option<String>>(1), name);
        assert_eq!(row.get::<i64>(2), i64::from(i) << 33);
        assert_eq!(row.get::<f64>(3), f64::from(i) / 4.0);
        assert_eq!(row.get::<bool>(4), i % 2 == 0);
        assert_eq!(
            row.get::<Vec<u8>>(5),
            vec![(i % 256) as u8; (i % 5) as usize]
        );
        seen += 1;
    }
    assert_eq!(seen, ROWS);

    // Text out, read back in by a second table: the same rows.
    let text: Vec<u8> = client
        .copy_out("COPY items TO STDOUT")
        .await
        .unwrap()
        .map(|chunk| chunk.unwrap())
        .collect::<Vec<Bytes>>()
        .await
        .concat();
    assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), ROWS as usize);
    client
        .batch_execute(
            "CREATE TABLE again (id int PRIMARY KEY, name text, \
             big bigint, price float8, ok boolean, data bytea)",
        )
        .await
        .unwrap();
    let mut sink = std::pin::pin!(client.copy_in("COPY again FROM STDIN").await.unwrap());
    for chunk in text.chunks(1000) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), ROWS as u64);
    let differing: i64 = client
        .query_one(
            "SELECT count(*) FROM items i FULL JOIN again a ON a.id = i.id \
             WHERE a.id IS NULL OR i.id IS NULL OR a.name IS DISTINCT FROM i.name \
             OR a.big <> i.big OR a.price <> i.price OR a.ok <> i.ok \
             OR a.data IS DISTINCT FROM i.data",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(differing, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_abandoned_copies_change_nothing() {
    let server = common::Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();

    // Bad data on line 3: an error with the line, and no row kept.
    let mut sink = std::pin::pin!(client.copy_in("COPY items FROM STDIN").await.unwrap());
    sink.send(Bytes::from_static(b"1\tone\n2\ttwo\nthree\t3\n4\tfour\n"))
        .await
        .unwrap();
    let error = sink.finish().await.unwrap_err();
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "22P02", "{db:?}");
    assert_eq!(
        db.where_(),
        Some("COPY items, line 3, column id: \"three\"")
    );
    assert_eq!(count(&client).await, 0);

    // A duplicate key: 23505, nothing kept.
    let mut sink = std::pin::pin!(client.copy_in("COPY items FROM STDIN").await.unwrap());
    sink.send(Bytes::from_static(b"1\tone\n1\tagain\n"))
        .await
        .unwrap();
    let error = sink.finish().await.unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("23505"));
    assert_eq!(count(&client).await, 0);

    // The client gives up (the sink is dropped: CopyFail).
    {
        let sink = client
            .copy_in::<_, Bytes>("COPY items FROM STDIN")
            .await
            .unwrap();
        let mut sink = Box::pin(sink);
        sink.send(Bytes::from_static(b"5\tfive\n")).await.unwrap();
    }
    assert_eq!(count(&client).await, 0);

    // In a transaction block a failed COPY fails the block, like any statement.
    client.batch_execute("BEGIN").await.unwrap();
    let mut sink = std::pin::pin!(client.copy_in("COPY items FROM STDIN").await.unwrap());
    sink.send(Bytes::from_static(b"7\n")).await.unwrap();
    let error = sink.finish().await.unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("22P04"));
    let refused = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(refused.code().map(|c| c.code()), Some("25P02"));
    client.batch_execute("ROLLBACK").await.unwrap();

    // And the connection still works for a good COPY.
    let mut sink = std::pin::pin!(client
        .copy_in("COPY items (name, id) FROM STDIN (FORMAT csv)")
        .await
        .unwrap());
    sink.send(Bytes::from_static(b"\"a, b\",10\nc,11\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let name: String = client
        .query_one("SELECT name FROM items WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "a, b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_data_is_checked_as_postgresql_checks_it() {
    let server = common::Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .await
        .unwrap();
    let tuple = |id: i32, name: &[u8]| {
        let mut t = Vec::new();
        t.extend_from_slice(&2i16.to_be_bytes());
        t.extend_from_slice(&4i32.to_be_bytes());
        t.extend_from_slice(&id.to_be_bytes());
        t.extend_from_slice(&(name.len() as i32).to_be_bytes());
        t.extend_from_slice(name);
        t
    };
    let header: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    let send = |data: Vec<u8>| {
        let client = &client;
        async move {
            let sink = client
                .copy_in::<_, Bytes>("COPY items FROM STDIN (FORMAT binary)")
                .await
                .unwrap();
            let mut sink = std::pin::pin!(sink);
            sink.send(Bytes::from(data)).await.unwrap();
            sink.finish().await
        }
    };
    // Without the trailer the data ends where a tuple would start, as PostgreSQL reads it.
    let no_trailer = [header, &tuple(1, b"one")].concat();
    assert_eq!(send(no_trailer).await.unwrap(), 1);
    // Text holding NUL is not UTF8 text for PostgreSQL: 22021.
    let nul = [header, &tuple(2, b"a\0b"), &(-1i16).to_be_bytes()].concat();
    let error = send(nul).await.unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("22021"), "{error}");
    // A tuple cut short: 22P04.
    let cut = [header, &tuple(3, b"three")[..8]].concat();
    let error = send(cut).await.unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("22P04"), "{error}");
    assert_eq!(count(&client).await, 1);
}
