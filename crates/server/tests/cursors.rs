//! A cursor read through the extended protocol, as drivers' named cursors read one: FETCH
//! is prepared, described with the cursor's columns, and returns typed rows page by page.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed check

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_pages_through_a_cursor_over_the_extended_protocol() {
    let server = common::Server::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE pages (id int PRIMARY KEY, name text); \
             INSERT INTO pages SELECT g, 'p' || g FROM generate_series(1, 250) g",
        )
        .await
        .unwrap();
    client
        .batch_execute("BEGIN; DECLARE named CURSOR FOR SELECT id, name FROM pages ORDER BY id")
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let page = client
            .query("FETCH FORWARD 100 FROM named", &[])
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 100);
        for row in page {
            let id: i32 = row.get(0);
            let name: String = row.get(1);
            assert_eq!(name, format!("p{id}"));
            seen.push(id);
        }
    }
    assert_eq!(seen, (1..=250).collect::<Vec<_>>());
    client.batch_execute("CLOSE named; COMMIT").await.unwrap();
    let error = client.query("FETCH named", &[]).await.unwrap_err();
    assert_eq!(error.code().map(|c| c.code()), Some("34000"));
}
