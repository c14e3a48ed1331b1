//! Queries over the wire, simple and extended protocol, against the real binary. These need
//! the SQL engine.

mod common;

use common::{cstr, message, patiently, query, sync, Raw, Server};
use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

fn command_counts(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

fn text_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_query_runs_each_statement_and_reports_each() {
    let server = Server::start().await;
    let client = server.connect().await;
    let messages = client
        .simple_query("SELECT 1 AS one; SELECT 'two' AS two, NULL AS nothing")
        .await
        .unwrap();
    assert_eq!(
        text_rows(&messages),
        vec![
            vec![Some("1".to_owned())],
            vec![Some("two".to_owned()), None]
        ]
    );
    assert_eq!(command_counts(&messages), vec![1, 1]);

    let messages = client
        .simple_query(
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        )
        .await
        .unwrap();
    assert_eq!(command_counts(&messages), vec![0, 2]);
}

#[tokio::test]
async fn simple_query_stops_at_the_first_error_with_its_sqlstate() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    raw.send(&query("SELECT 1; SELECT * FROM missing; SELECT 3"))
        .await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![b'T', b'D', b'C', b'E', b'Z'], "{messages:?}");
    assert_eq!(messages[3].sqlstate().as_deref(), Some("42P01"));
    assert_eq!(messages[3].field(b'S').as_deref(), Some("ERROR"));
    raw.ping().await;
}

#[tokio::test]
async fn ready_for_query_reports_the_transaction_status() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    let status = |messages: Vec<common::Msg>| messages.last().map(|m| m.body.clone()).unwrap();
    raw.send(&query("BEGIN")).await;
    assert_eq!(status(raw.until_ready().await), b"T");
    raw.send(&query("SELECT * FROM missing")).await;
    assert_eq!(status(raw.until_ready().await), b"E");
    raw.send(&query("ROLLBACK")).await;
    assert_eq!(status(raw.until_ready().await), b"I");
}

#[tokio::test]
async fn extended_protocol_binds_binary_parameters_and_returns_binary_results() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE kinds (id int8 PRIMARY KEY, b bool, s int2, i int4, r real, d double precision, t text, v varchar(10), x bytea)")
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .await
        .unwrap();
    let inserted = client
        .execute(
            &insert,
            &[
                &7i64,
                &true,
                &-3i16,
                &40_000i32,
                &1.5f32,
                &-2.25f64,
                &"text",
                &"varchar",
                &vec![0u8, 255, 10],
            ],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let row = client
        .query_one(
            "SELECT id, b, s, i, r, d, t, v, x FROM kinds WHERE id = $1",
            &[&7i64],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 7);
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, i16>(2), -3);
    assert_eq!(row.get::<_, i32>(3), 40_000);
    assert_eq!(row.get::<_, f32>(4), 1.5);
    assert_eq!(row.get::<_, f64>(5), -2.25);
    assert_eq!(row.get::<_, String>(6), "text");
    assert_eq!(row.get::<_, String>(7), "varchar");
    assert_eq!(row.get::<_, Vec<u8>>(8), vec![0u8, 255, 10]);

    let nulls = client
        .query_one("SELECT $1::int4 IS NULL", &[&None::<i32>])
        .await
        .unwrap();
    assert!(nulls.get::<_, bool>(0));
}

#[tokio::test]
async fn extended_protocol_binds_text_parameters() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    let mut batch = Vec::new();
    // Parse "s1" with $1 declared int4 (OID 23), $2 left to inference.
    batch.extend(message(
        b'P',
        &[
            cstr("s1"),
            cstr("SELECT $1 + 1 AS next, $2::text AS label"),
            vec![0, 2, 0, 0, 0, 23, 0, 0, 0, 0],
        ]
        .concat(),
    ));
    batch.extend(message(b'D', &[b"S".to_vec(), cstr("s1")].concat()));
    // Bind with both parameters in text format, results in text.
    let mut bind = [cstr(""), cstr("s1"), vec![0, 1, 0, 0], vec![0, 2]].concat();
    for value in ["41", "hello"] {
        bind.extend_from_slice(&(value.len() as i32).to_be_bytes());
        bind.extend_from_slice(value.as_bytes());
    }
    bind.extend_from_slice(&[0, 0]);
    batch.extend(message(b'B', &bind));
    batch.extend(message(b'E', &[cstr(""), vec![0, 0, 0, 0]].concat()));
    batch.extend(sync());
    raw.send(&batch).await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        vec![b'1', b't', b'T', b'2', b'D', b'C', b'Z'],
        "{messages:?}"
    );
    let params = &messages[1].body;
    assert_eq!(&params[..2], &[0, 2]);
    assert_eq!(&params[2..6], &23u32.to_be_bytes(), "$1 as declared");
    assert_eq!(&params[6..10], &25u32.to_be_bytes(), "$2 inferred as text");
    let columns = messages[2].row_description();
    assert_eq!(columns[0].0, "next");
    assert_eq!(columns[1], ("label".to_owned(), 25, 0));
    assert_eq!(
        messages[4].data_row(),
        vec![Some(b"42".to_vec()), Some(b"hello".to_vec())]
    );
    assert_eq!(messages[5].body, cstr("SELECT 1"));
}

#[tokio::test]
async fn bad_text_parameter_is_an_error_and_the_batch_is_skipped() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    let mut batch = Vec::new();
    batch.extend(message(
        b'P',
        &[cstr(""), cstr("SELECT $1::int4"), vec![0, 1, 0, 0, 0, 23]].concat(),
    ));
    let bind = [
        cstr(""),
        cstr(""),
        vec![0, 0, 0, 1, 0, 0, 0, 3],
        b"abc".to_vec(),
        vec![0, 0],
    ]
    .concat();
    batch.extend(message(b'B', &bind));
    batch.extend(message(b'E', &[cstr(""), vec![0, 0, 0, 0]].concat()));
    batch.extend(sync());
    raw.send(&batch).await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![b'1', b'E', b'Z'], "{messages:?}");
    assert_eq!(messages[1].sqlstate().as_deref(), Some("22P02"));
}

#[tokio::test]
async fn portal_with_a_row_limit_is_paged() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client
        .batch_execute("CREATE TABLE five (n int PRIMARY KEY); INSERT INTO five VALUES (1), (2), (3), (4), (5)")
        .await
        .unwrap();
    let transaction = client.transaction().await.unwrap();
    let statement = transaction
        .prepare("SELECT n FROM five ORDER BY n")
        .await
        .unwrap();
    let portal = transaction.bind(&statement, &[]).await.unwrap();
    let mut pages = Vec::new();
    for _ in 0..4 {
        let rows = transaction.query_portal(&portal, 2).await.unwrap();
        pages.push(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>());
    }
    assert_eq!(pages, vec![vec![1, 2], vec![3, 4], vec![5], vec![]]);
    transaction.commit().await.unwrap();
}

#[tokio::test]
async fn portal_suspension_over_the_wire() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    raw.send(&query(
        "CREATE TABLE three (n int PRIMARY KEY); INSERT INTO three VALUES (1), (2), (3); BEGIN",
    ))
    .await;
    raw.until_ready().await;
    let mut batch = Vec::new();
    batch.extend(message(
        b'P',
        &[cstr(""), cstr("SELECT n FROM three ORDER BY n"), vec![0, 0]].concat(),
    ));
    batch.extend(message(
        b'B',
        &[cstr("p"), cstr(""), vec![0, 0, 0, 0, 0, 0]].concat(),
    ));
    batch.extend(message(
        b'E',
        &[cstr("p"), 2i32.to_be_bytes().to_vec()].concat(),
    ));
    batch.extend(sync());
    raw.send(&batch).await;
    let kinds: Vec<u8> = raw.until_ready().await.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![b'1', b'2', b'D', b'D', b's', b'Z']);
    raw.send(
        &[
            message(b'E', &[cstr("p"), 2i32.to_be_bytes().to_vec()].concat()),
            sync(),
        ]
        .concat(),
    )
    .await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![b'D', b'C', b'Z']);
    assert_eq!(messages[1].body, cstr("SELECT 1"));
}

/// Cairn has no `pg_sleep` yet, so the long statement is a scan of a table big enough that it
/// does not finish between two cancel attempts (the engine checks for cancellation between
/// pages of a scan). The table doubles until a scan is caught running, so the test holds at
/// any build speed.
#[tokio::test]
async fn cancel_stops_a_running_statement() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE big (id int8 PRIMARY KEY, pad text)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO big VALUES (0, 'padding padding padding padding')")
        .await
        .unwrap();
    let mut rows = 1i64;
    let double = |rows: i64| format!("INSERT INTO big SELECT id + {rows}, pad FROM big");
    while rows < 1 << 14 {
        client.batch_execute(&double(rows)).await.unwrap();
        rows *= 2;
    }
    let client = std::sync::Arc::new(client);
    loop {
        let cancel = client.cancel_token();
        let scanning = client.clone();
        let running = tokio::spawn(async move {
            scanning
                .simple_query("SELECT count(*) FROM big WHERE pad <> 'x'")
                .await
        });
        // Keep cancelling until the statement ends: a cancel that arrives before the statement
        // starts (or after it ends) is ignored, as in PostgreSQL.
        let result = patiently("the scan to end", async {
            loop {
                cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
                if running.is_finished() {
                    break running.await.unwrap();
                }
                common::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        match result {
            Err(error) => {
                assert_eq!(error.code(), Some(&SqlState::QUERY_CANCELED), "{error}");
                break;
            }
            Ok(_) => {
                assert!(
                    rows < 1 << 20,
                    "a scan of {rows} rows was never caught running"
                );
                // A cancel sent while the scan was ending may still land on this statement
                // (it checked the session busy just before the scan ended; PostgreSQL has the
                // same window): then it is cancelled, and is run again.
                loop {
                    match client.batch_execute(&double(rows)).await {
                        Ok(()) => break,
                        Err(e) if e.code() == Some(&SqlState::QUERY_CANCELED) => {}
                        Err(e) => panic!("doubling the table: {e}"),
                    }
                }
                rows *= 2;
            }
        }
    }
    // The session survives the cancel.
    let messages = client.simple_query("SELECT 1").await.unwrap();
    assert_eq!(text_rows(&messages), vec![vec![Some("1".to_owned())]]);
}

#[tokio::test]
async fn client_vanishing_mid_transaction_does_not_hurt_others() {
    let server = Server::start().await;
    let other = server.connect().await;
    other
        .batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
        .await
        .unwrap();

    let (mut vanishing, _) = Raw::connect_ready(server.addr).await;
    vanishing
        .send(&query("BEGIN; INSERT INTO accounts VALUES (1, 100)"))
        .await;
    vanishing.until_ready().await;
    drop(vanishing); // no Terminate: the socket just closes

    // The vanished transaction left nothing behind and holds nothing.
    other
        .batch_execute("INSERT INTO accounts VALUES (1, 5)")
        .await
        .unwrap();
    let row = other
        .query_one("SELECT balance FROM accounts WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 5);
    let again = server.connect().await;
    let count = again.simple_query("SELECT id FROM accounts").await.unwrap();
    assert_eq!(text_rows(&count).len(), 1);
}

#[tokio::test]
async fn notices_come_before_the_result_and_errors_carry_their_sqlstate() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    raw.send(&query("COMMIT")).await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![b'N', b'C', b'Z'], "{messages:?}");
    assert_eq!(messages[0].field(b'S').as_deref(), Some("WARNING"));
    assert_eq!(messages[0].sqlstate().as_deref(), Some("25P01"));
    assert_eq!(
        messages[0].field(b'M').as_deref(),
        Some("there is no transaction in progress")
    );

    let client = server.connect().await;
    let error = common::expect_err(client.simple_query("SELECT 1/0").await, "division by zero");
    assert_eq!(error.code(), Some(&SqlState::DIVISION_BY_ZERO), "{error}");
}

/// Per-column result formats: each column in the format the client asked for, binary in
/// PostgreSQL's send format, text in its output format.
#[tokio::test]
async fn result_columns_come_in_the_requested_formats() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    let sql = "SELECT '2000-01-02'::date AS d, '2000-01-01 00:00:01'::timestamp AS ts, \
               '2000-01-01 00:00:01+00'::timestamptz AS tz, \
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, 1.5::numeric AS n, \
               'ab'::char(3) AS c";
    let uuid = [
        0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a,
        0x11,
    ];
    let run = |formats: Vec<i16>| {
        let mut bind = [cstr(""), cstr(""), vec![0, 0, 0, 0]].concat();
        bind.extend_from_slice(&(formats.len() as i16).to_be_bytes());
        for format in &formats {
            bind.extend_from_slice(&format.to_be_bytes());
        }
        [
            message(b'P', &[cstr(""), cstr(sql), vec![0, 0]].concat()),
            message(b'B', &bind),
            message(b'D', &[b"P".to_vec(), cstr("")].concat()),
            message(b'E', &[cstr(""), vec![0, 0, 0, 0]].concat()),
            sync(),
        ]
        .concat()
    };

    raw.send(&run(vec![1, 1, 1, 1, 1, 0])).await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        vec![b'1', b'2', b'T', b'D', b'C', b'Z'],
        "{messages:?}"
    );
    let columns = messages[2].row_description();
    let oids: Vec<u32> = columns.iter().map(|c| c.1).collect();
    assert_eq!(oids, vec![1082, 1114, 1184, 2950, 1700, 1042]);
    let formats: Vec<i16> = columns.iter().map(|c| c.2).collect();
    assert_eq!(formats, vec![1, 1, 1, 1, 1, 0]);
    let row = messages[3].data_row();
    assert_eq!(
        row[0].as_deref(),
        Some(&1i32.to_be_bytes()[..]),
        "date: days since 2000-01-01"
    );
    assert_eq!(
        row[1].as_deref(),
        Some(&1_000_000i64.to_be_bytes()[..]),
        "timestamp: µs since 2000"
    );
    assert_eq!(
        row[2].as_deref(),
        Some(&1_000_000i64.to_be_bytes()[..]),
        "timestamptz"
    );
    assert_eq!(row[3].as_deref(), Some(&uuid[..]));
    // numeric 1.5: 2 digits, weight 0, positive, dscale 1, base-10000 digits 1 and 5000.
    assert_eq!(
        row[4].as_deref(),
        Some(&[0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88][..])
    );
    assert_eq!(
        row[5].as_deref(),
        Some(&b"ab "[..]),
        "char(3) is blank-padded"
    );

    raw.send(&run(vec![0])).await;
    let messages = raw.until_ready().await;
    let row: Vec<String> = messages[3]
        .data_row()
        .into_iter()
        .map(|v| String::from_utf8(v.unwrap()).unwrap())
        .collect();
    assert_eq!(
        row,
        vec![
            "2000-01-02",
            "2000-01-01 00:00:01",
            "2000-01-01 00:00:01+00",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "1.5",
            "ab "
        ]
    );
}

#[tokio::test]
async fn correlated_subqueries_run_where_supported_and_are_refused_clearly_elsewhere() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE corr (id int PRIMARY KEY, n int);
             INSERT INTO corr VALUES (1, 10), (2, 20), (3, 5)",
        )
        .await
        .unwrap();
    let rows = client
        .query(
            "SELECT id FROM corr WHERE EXISTS (SELECT 1 FROM corr AS c WHERE c.id = corr.id + 1) ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 2]);
    // Where Cairn does not run them yet, the error says so (not "unknown column").
    for sql in
        [
            "SELECT n FROM corr AS o GROUP BY n HAVING (SELECT count(*) FROM corr AS c WHERE c.n < o.n) > 0",
            "SELECT * FROM corr AS o JOIN corr AS p ON p.id = (SELECT max(id) FROM corr AS c WHERE c.n < o.n)",
        ]
    {
        let error = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::FEATURE_NOT_SUPPORTED),
            "{sql}: {error}"
        );
        let message = error.as_db_error().map(|e| e.message().to_owned());
        assert!(
            message.is_some_and(|m| m.contains("correlated")),
            "{sql}: {error:?}"
        );
    }
    // A name nobody has is still unknown.
    let error = client
        .simple_query(
            "SELECT id FROM corr WHERE EXISTS (SELECT 1 FROM corr AS c WHERE c.id = nowhere.id)",
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(&SqlState::UNDEFINED_TABLE), "{error}");
}

#[tokio::test]
async fn rows_print_in_the_time_zone_their_statement_ran_in() {
    let server = Server::start().await;
    let client = server.connect().await;
    // One simple query: the SET after the SELECT does not reach back to its rows.
    let messages = client
        .simple_query(
            "SELECT timestamptz '2024-07-01 12:00+00'; SET TIME ZONE 'America/New_York'; \
             SELECT timestamptz '2024-07-01 12:00+00'",
        )
        .await
        .unwrap();
    let rows = text_rows(&messages);
    assert_eq!(
        rows,
        [
            [Some("2024-07-01 12:00:00+00".to_string())],
            [Some("2024-07-01 08:00:00-04".to_string())]
        ]
    );
}

#[tokio::test]
async fn select_list_set_functions_cairn_does_not_run_say_so() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE srf (id int PRIMARY KEY, tags text[])")
        .await
        .unwrap();
    // PostgreSQL runs these (grouping by the function's rows, zipping generate_series with
    // another function, `*` beside one); Cairn refuses them rather than answer differently.
    for sql in [
        "SELECT count(*), unnest(tags) FROM srf GROUP BY 2",
        "SELECT generate_series(1, 2), generate_series(1, 3)",
        "SELECT *, unnest(tags) FROM srf",
    ] {
        let error = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::FEATURE_NOT_SUPPORTED),
            "{sql}: {error:?}"
        );
    }
}

/// Two set-returning calls in one expression run in step, as in PostgreSQL.
#[tokio::test]
async fn set_functions_in_one_expression_are_zipped() {
    let server = Server::start().await;
    let client = server.connect().await;
    let rows = client
        .query("SELECT unnest(ARRAY[1, 10]) + unnest(ARRAY[2, 20])", &[])
        .await
        .unwrap();
    let sums: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(sums, [3, 30]);
}

#[tokio::test]
async fn order_by_using_is_refused_wherever_order_by_appears() {
    let server = Server::start().await;
    let client = server.connect().await;
    for sql in [
        "SELECT x FROM (SELECT 1 AS x) AS s ORDER BY x USING >",
        "SELECT string_agg(x, ',' ORDER BY x USING >) FROM (SELECT 'a' AS x) AS s",
        "SELECT row_number() OVER (ORDER BY x USING >) FROM (SELECT 1 AS x) AS s",
        "SELECT 1 AS x UNION SELECT 2 ORDER BY x USING >",
    ] {
        let error = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::FEATURE_NOT_SUPPORTED),
            "{sql}: {error:?}"
        );
    }
}

#[tokio::test]
async fn arrays_travel_in_binary_as_parameters_and_results() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE arr (id int PRIMARY KEY, tags text[]);
             INSERT INTO arr VALUES (1, '{a,b}'), (2, '{c}'), (3, NULL)",
        )
        .await
        .unwrap();
    // tokio-postgres sends the Vec as int4[] in binary and reads text[] back in binary.
    let ids: Vec<i32> = vec![1, 3, 9];
    let rows = client
        .query(
            "SELECT id, tags FROM arr WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )
        .await
        .unwrap();
    let got: Vec<(i32, Option<Vec<Option<String>>>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            (1, Some(vec![Some("a".to_string()), Some("b".to_string())])),
            (3, None)
        ]
    );
    let row = client
        .query_one("SELECT array_agg(id ORDER BY id) FROM arr", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<i32>>(0), [1, 2, 3]);
    let echoed = client
        .query_one("SELECT $1::text[]", &[&vec![Some("x y"), None]])
        .await
        .unwrap();
    assert_eq!(
        echoed.get::<_, Vec<Option<String>>>(0),
        [Some("x y".to_string()), None]
    );
}

#[tokio::test]
async fn a_statement_reading_what_its_data_modifying_with_changes_is_refused() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE dmw (id int PRIMARY KEY);
             INSERT INTO dmw VALUES (1), (2)",
        )
        .await
        .unwrap();
    // PostgreSQL would count the rows as they were before the DELETE (every part of the
    // statement reads the same snapshot); Cairn would see its own delete, so it refuses.
    let error = client
        .simple_query("WITH d AS (DELETE FROM dmw RETURNING *) SELECT count(*) FROM dmw")
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::FEATURE_NOT_SUPPORTED),
        "{error}"
    );
    let row = client
        .query_one("SELECT count(*) FROM dmw", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2, "nothing was deleted");
}

#[tokio::test]
async fn deeply_nested_json_is_an_error_not_a_crash() {
    let server = Server::start().await;
    let client = server.connect().await;
    // Parsing recurses per level; past the limit it is 54001, as PostgreSQL's stack check.
    for sql in [
        "SELECT (repeat('[', 5000) || repeat(']', 5000))::jsonb",
        "SELECT repeat('{\"a\":', 3000)::json",
    ] {
        let error = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::STATEMENT_TOO_COMPLEX),
            "{sql}: {error}"
        );
    }
    let row = client
        .query_one(
            "SELECT jsonb_typeof((repeat('[', 150) || repeat(']', 150))::jsonb)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "array");
}

/// Sessions draw from one sequence at once: every value is handed out exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_get_distinct_sequence_values() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE seq_rows (id serial PRIMARY KEY, session int)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for session in 0..8 {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..40 {
                let row = client
                    .query_one(
                        "INSERT INTO seq_rows (session) VALUES ($1) RETURNING id",
                        &[&session],
                    )
                    .await
                    .unwrap();
                ids.push(row.get::<_, i32>(0));
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 320, "some id was handed out twice");
    let count: i64 = setup
        .query_one("SELECT count(DISTINCT id) FROM seq_rows", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 320);
}

/// Writing through a view is refused with 0A000 (PostgreSQL's automatically updatable views
/// are not there yet), not reported as a missing table.
#[tokio::test]
async fn writes_through_views_are_refused_as_unsupported() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE base (id int PRIMARY KEY, v int);
             CREATE VIEW base_view AS SELECT id, v FROM base",
        )
        .await
        .unwrap();
    for sql in [
        "INSERT INTO base_view VALUES (1, 2)",
        "UPDATE base_view SET v = 3",
        "DELETE FROM base_view",
    ] {
        let error = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::FEATURE_NOT_SUPPORTED),
            "{sql}: {error:?}"
        );
    }
}

/// A view keeps its SQL text, so renaming what it reads would break it: refused with 0A000
/// (PostgreSQL's views follow the rename), and the view still answers; renames nothing reads
/// go through.
#[tokio::test]
async fn renaming_what_a_view_reads_is_refused_and_the_view_keeps_working() {
    let server = Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE named (id int PRIMARY KEY, v int, w int);
             INSERT INTO named VALUES (1, 2, 3);
             CREATE VIEW named_view AS SELECT id, v FROM named",
        )
        .await
        .unwrap();
    for sql in [
        "ALTER TABLE named RENAME TO renamed",
        "ALTER TABLE named RENAME COLUMN v TO v2",
    ] {
        let error = client.simple_query(sql).await.unwrap_err();
        assert_eq!(
            error.code(),
            Some(&SqlState::FEATURE_NOT_SUPPORTED),
            "{sql}: {error:?}"
        );
    }
    client
        .batch_execute("ALTER TABLE named RENAME COLUMN w TO w2")
        .await
        .unwrap();
    let row = client
        .query_one("SELECT id, v FROM named_view", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1)), (1, 2));
}

/// Two transactions insert the same value of a UNIQUE column at once: exactly one commits.
/// Both write the same index entry key, so the commit's conflict check refuses the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_of_one_unique_value_let_exactly_one_commit() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, email text UNIQUE)")
        .await
        .unwrap();
    let (first, second) = (server.connect().await, server.connect().await);
    first.batch_execute("BEGIN").await.unwrap();
    second.batch_execute("BEGIN").await.unwrap();
    first
        .batch_execute("INSERT INTO accounts VALUES (1, 'same@example.com')")
        .await
        .unwrap();
    second
        .batch_execute("INSERT INTO accounts VALUES (2, 'same@example.com')")
        .await
        .unwrap();
    let outcomes = [
        first.batch_execute("COMMIT").await,
        second.batch_execute("COMMIT").await,
    ];
    let committed = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(committed, 1, "{outcomes:?}");
    let refused = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(
        matches!(
            refused.code(),
            Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::UNIQUE_VIOLATION)
        ),
        "{refused:?}"
    );
    let count: i64 = setup
        .query_one(
            "SELECT count(*) FROM accounts WHERE email = 'same@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
}

/// A child inserted while its parent is deleted concurrently must not survive: the child's
/// check puts the parent's key in its conflict set, so the two cannot both commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_deleted_concurrently_with_a_child_insert_keeps_the_foreign_key() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE parents (id int PRIMARY KEY);
             CREATE TABLE children (id int PRIMARY KEY, parent int REFERENCES parents);
             INSERT INTO parents VALUES (1)",
        )
        .await
        .unwrap();
    let (adder, deleter) = (server.connect().await, server.connect().await);
    adder.batch_execute("BEGIN").await.unwrap();
    deleter.batch_execute("BEGIN").await.unwrap();
    adder
        .batch_execute("INSERT INTO children VALUES (10, 1)")
        .await
        .unwrap();
    deleter
        .batch_execute("DELETE FROM parents WHERE id = 1")
        .await
        .unwrap();
    let outcomes = [
        adder.batch_execute("COMMIT").await,
        deleter.batch_execute("COMMIT").await,
    ];
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let orphans: i64 = setup
        .query_one(
            "SELECT count(*) FROM children WHERE parent NOT IN (SELECT id FROM parents)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "a child outlived its parent");
}

/// Counts of each key through the index and through a full scan agree.
#[allow(clippy::unwrap_used)] // test helper: a failed unwrap is a failed check
async fn index_matches_rows(client: &tokio_postgres::Client) {
    for k in 0..5i32 {
        let by_index: i64 = client
            .query_one("SELECT count(*) FROM racing WHERE k = $1", &[&k])
            .await
            .unwrap()
            .get(0);
        let by_scan: i64 = client
            .query_one("SELECT count(*) FROM racing WHERE k + 0 = $1", &[&k])
            .await
            .unwrap()
            .get(0);
        assert_eq!(by_index, by_scan, "index and rows disagree for k = {k}");
    }
}

/// CREATE INDEX racing with writes: whichever commits second fails, so the finished index
/// always equals one built afresh from the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_builds_racing_with_writes_never_miss_a_row() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE racing (id int PRIMARY KEY, k int);
             INSERT INTO racing SELECT g, g % 5 FROM generate_series(1, 50) AS g",
        )
        .await
        .unwrap();
    let (builder, writer) = (server.connect().await, server.connect().await);
    // The write commits while the build is open: the build must not commit.
    builder
        .batch_execute("BEGIN; CREATE INDEX racing_k ON racing (k)")
        .await
        .unwrap();
    writer
        .batch_execute("INSERT INTO racing VALUES (100, 1)")
        .await
        .unwrap();
    let error = builder.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    // The build commits while a write is open: the write must not commit.
    writer
        .batch_execute("BEGIN; INSERT INTO racing VALUES (101, 2)")
        .await
        .unwrap();
    builder
        .batch_execute("CREATE INDEX racing_k ON racing (k)")
        .await
        .unwrap();
    let error = writer.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    writer
        .batch_execute("INSERT INTO racing VALUES (101, 2)")
        .await
        .unwrap();
    index_matches_rows(&setup).await;
}

/// ALTER TABLE racing with DML: a transaction that wrote under the old definition fails
/// with a schema conflict (40001) instead of leaving rows of both shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_table_racing_with_dml_lets_one_shape_win() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE shapes (id int PRIMARY KEY, v int); INSERT INTO shapes VALUES (1, 1)",
        )
        .await
        .unwrap();
    let (alterer, writer) = (server.connect().await, server.connect().await);
    writer
        .batch_execute("BEGIN; INSERT INTO shapes VALUES (2, 2)")
        .await
        .unwrap();
    alterer
        .batch_execute("ALTER TABLE shapes ADD COLUMN w int NOT NULL DEFAULT 7")
        .await
        .unwrap();
    let error = writer.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    let rows = setup
        .query("SELECT id, v, w FROM shapes ORDER BY id", &[])
        .await
        .unwrap();
    let seen: Vec<(i32, i32, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(seen, [(1, 1, 7)]);
}

/// ALTER TABLE ADD FOREIGN KEY racing with a delete of a parent row its check found: each
/// parent row the check names joins its conflict set, so whichever commits second fails and
/// no child is left without its parent under the new constraint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_added_while_its_parent_goes_never_holds_an_orphan() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE owners (id int PRIMARY KEY);
             CREATE TABLE pets (id int PRIMARY KEY, owner int);
             INSERT INTO owners VALUES (1), (2);
             INSERT INTO pets VALUES (10, 1), (20, 2)",
        )
        .await
        .unwrap();
    let (alterer, deleter) = (server.connect().await, server.connect().await);
    let add = "ALTER TABLE pets ADD CONSTRAINT pets_owner FOREIGN KEY (owner) REFERENCES owners";
    // The delete commits while the constraint is being added: the ALTER must not commit.
    alterer
        .batch_execute(&format!("BEGIN; {add}"))
        .await
        .unwrap();
    deleter
        .batch_execute("DELETE FROM owners WHERE id = 1")
        .await
        .unwrap();
    let error = alterer.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    // The constraint commits while a delete is open: the delete must not commit.
    setup
        .batch_execute("DELETE FROM pets WHERE id = 10")
        .await
        .unwrap();
    deleter
        .batch_execute("BEGIN; DELETE FROM owners WHERE id = 2")
        .await
        .unwrap();
    alterer.batch_execute(add).await.unwrap();
    let error = deleter.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    let orphans: i64 = setup
        .query_one(
            "SELECT count(*) FROM pets WHERE owner NOT IN (SELECT id FROM owners)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "a pet outlived its owner");
    let error = setup
        .batch_execute("DELETE FROM owners WHERE id = 2")
        .await
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::FOREIGN_KEY_VIOLATION),
        "{error:?}"
    );
}

/// DROP INDEX racing with a writer that adds an entry: the drop fails (40001) rather than
/// leave the entry behind, where a later index given the same id would read it as a value
/// some row holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_dropped_while_a_writer_adds_entries_leaves_none_behind() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE stale (id int PRIMARY KEY, a int, u int);
             INSERT INTO stale SELECT g, g, g FROM generate_series(1, 10) AS g;
             CREATE UNIQUE INDEX stale_a ON stale (a)",
        )
        .await
        .unwrap();
    let (dropper, writer) = (server.connect().await, server.connect().await);
    dropper
        .batch_execute("BEGIN; DROP INDEX stale_a")
        .await
        .unwrap();
    writer
        .batch_execute("INSERT INTO stale VALUES (77, 77, 2000)")
        .await
        .unwrap();
    let error = dropper.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
    setup
        .batch_execute("DROP INDEX stale_a; CREATE UNIQUE INDEX stale_u ON stale (u)")
        .await
        .unwrap();
    setup
        .batch_execute("INSERT INTO stale VALUES (100, 0, 77)")
        .await
        .expect("no row has u = 77");
}

/// CREATE VIEW racing with DDL that removes what the view reads: the view's commit fails
/// (40001) instead of leaving a view that cannot be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_created_while_its_column_is_dropped_does_not_commit() {
    let server = Server::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE viewed (a int, b int)")
        .await
        .unwrap();
    let (creator, alterer) = (server.connect().await, server.connect().await);
    creator
        .batch_execute("BEGIN; CREATE VIEW viewed_b AS SELECT b FROM viewed")
        .await
        .unwrap();
    alterer
        .batch_execute("ALTER TABLE viewed DROP COLUMN b")
        .await
        .unwrap();
    let error = creator.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{error:?}"
    );
}

/// A prepared statement keeps its plan while the catalog is unchanged, and plans again once
/// another session's DDL committed: here the table is dropped and made again with the same
/// columns (a new table id, its old rows unreachable), which an old plan would still read.
#[tokio::test]
async fn a_prepared_plan_follows_another_sessions_ddl() {
    let server = Server::start().await;
    let (reader, writer) = (server.connect().await, server.connect().await);
    writer
        .batch_execute(
            "CREATE TABLE pp (id int PRIMARY KEY, v text); INSERT INTO pp VALUES (1, 'old')",
        )
        .await
        .unwrap();
    let statement = reader
        .prepare("SELECT v FROM pp WHERE id = $1")
        .await
        .unwrap();
    let read = |statement| {
        let reader = &reader;
        async move {
            reader
                .query(&statement, &[&1_i32])
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(statement.clone()).await, ["old"]);
    assert_eq!(read(statement.clone()).await, ["old"]);
    writer
        .batch_execute("DROP TABLE pp; CREATE TABLE pp (id int PRIMARY KEY, v text); INSERT INTO pp VALUES (1, 'new')")
        .await
        .unwrap();
    assert_eq!(read(statement.clone()).await, ["new"]);
}
