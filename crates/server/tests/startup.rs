//! Startup, authentication and shutdown of the real `cairn` binary, over the wire.

mod common;

use common::{cstr, message, patiently, startup_packet, sync, Raw, Server};
use tokio_postgres::error::SqlState;

#[tokio::test]
async fn tokio_postgres_connects_as_postgres() {
    let server = Server::start().await;
    let client = patiently("connect", server.connect()).await;
    assert!(!client.is_closed());
}

#[tokio::test]
async fn startup_reports_server_parameters_and_a_backend_key() {
    let server = Server::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&startup_packet(
        3,
        0,
        &[
            ("user", "postgres"),
            ("database", "postgres"),
            ("application_name", "wire-test"),
        ],
    ))
    .await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds.first(),
        Some(&b'R'),
        "AuthenticationOk first: {kinds:?}"
    );
    assert_eq!(messages[0].body, 0i32.to_be_bytes(), "AuthenticationOk");
    let parameters: std::collections::HashMap<String, String> = messages
        .iter()
        .filter(|m| m.kind == b'S')
        .map(|m| m.parameter())
        .collect();
    for (name, value) in [
        ("server_version", "16.4"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("TimeZone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("is_superuser", "on"),
        ("session_authorization", "postgres"),
        ("application_name", "wire-test"),
    ] {
        assert_eq!(
            parameters.get(name).map(String::as_str),
            Some(value),
            "{name} in {parameters:?}"
        );
    }
    let key = messages
        .iter()
        .find(|m| m.kind == b'K')
        .expect("BackendKeyData");
    assert_eq!(key.body.len(), 8, "process id and a 4-byte secret");
    let ready = messages.last().unwrap();
    assert_eq!((ready.kind, ready.body.as_slice()), (b'Z', &b"I"[..]));
}

#[tokio::test]
async fn every_connection_gets_its_own_backend_key() {
    let server = Server::start().await;
    let (_a, first) = Raw::connect_ready(server.addr).await;
    let (_b, second) = Raw::connect_ready(server.addr).await;
    let key = |messages: &[common::Msg]| {
        messages
            .iter()
            .find(|m| m.kind == b'K')
            .unwrap()
            .body
            .clone()
    };
    assert_ne!(key(&first)[..4], key(&second)[..4], "process ids differ");
}

#[tokio::test]
async fn unknown_role_is_refused_with_28000() {
    let server = Server::start().await;
    let mut config = server.config();
    config.user("alice");
    let error = common::expect_err(config.connect(tokio_postgres::NoTls).await, "refused");
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert_eq!(db.message(), "role \"alice\" does not exist");
    assert_eq!(db.severity(), "FATAL");
}

#[tokio::test]
async fn unknown_database_is_refused_with_3d000() {
    let server = Server::start().await;
    let mut config = server.config();
    config.dbname("shop");
    let error = common::expect_err(config.connect(tokio_postgres::NoTls).await, "refused");
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::INVALID_CATALOG_NAME);
    assert_eq!(db.message(), "database \"shop\" does not exist");
}

#[tokio::test]
async fn missing_user_is_refused_with_28000() {
    let server = Server::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&startup_packet(3, 0, &[("database", "postgres")]))
        .await;
    let messages = raw.until_closed().await;
    assert_eq!(
        messages.last().and_then(|m| m.sqlstate()).as_deref(),
        Some("28000")
    );
}

#[tokio::test]
async fn ssl_and_gss_requests_are_refused_and_startup_continues() {
    let server = Server::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await; // SSLRequest
    assert_eq!(raw.byte().await, Some(b'N'));
    raw.send(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]).await; // GSSENCRequest
    assert_eq!(raw.byte().await, Some(b'N'));
    raw.send(&startup_packet(3, 0, &[("user", "postgres")]))
        .await;
    let messages = raw.until_ready().await;
    assert_eq!(messages.last().map(|m| m.kind), Some(b'Z'));
}

#[tokio::test]
async fn newer_protocol_minor_is_negotiated_down_to_3_0() {
    let server = Server::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&startup_packet(
        3,
        2,
        &[("user", "postgres"), ("_pq_.test_option", "on")],
    ))
    .await;
    let messages = raw.until_ready().await;
    let negotiate = messages
        .iter()
        .find(|m| m.kind == b'v')
        .expect("NegotiateProtocolVersion");
    assert_eq!(&negotiate.body[..4], &(3i32 << 16).to_be_bytes());
    assert_eq!(&negotiate.body[4..8], &1i32.to_be_bytes());
    assert_eq!(&negotiate.body[8..], &cstr("_pq_.test_option")[..]);
    assert_eq!(messages.last().map(|m| m.kind), Some(b'Z'));
    raw.ping().await;
}

#[tokio::test]
async fn unsupported_protocol_major_is_refused() {
    let server = Server::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&startup_packet(2, 0, &[("user", "postgres")]))
        .await;
    let messages = raw.until_closed().await;
    assert_eq!(
        messages.last().and_then(|m| m.sqlstate()).as_deref(),
        Some("0A000")
    );
}

#[tokio::test]
async fn password_is_required_when_configured() {
    let server = Server::start_with(
        &["--password-env", "CAIRN_TEST_PASSWORD"],
        &[("CAIRN_TEST_PASSWORD", "s3cret pass")],
    )
    .await;

    let mut config = server.config();
    config.password("s3cret pass");
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("SCRAM succeeds");
    tokio::spawn(connection);
    assert!(!client.is_closed());

    config.password("wrong");
    let error = common::expect_err(
        config.connect(tokio_postgres::NoTls).await,
        "wrong password",
    );
    assert_eq!(error.code(), Some(&SqlState::INVALID_PASSWORD), "{error}");

    let error = common::expect_err(
        server.config().connect(tokio_postgres::NoTls).await,
        "no password",
    );
    assert!(
        format!("{error:?}").contains("password missing"),
        "{error:?}"
    );
}

#[tokio::test]
async fn password_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let server = Server::start_with(&["--password-file", file.to_str().unwrap()], &[]).await;
    let mut config = server.config();
    config.password("from-a-file");
    let _connected = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the trailing newline is not part of it");
}

#[test]
fn non_loopback_listen_without_password_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["start", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .expect("run cairn");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a password"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "refused before touching the data directory"
    );
}

#[test]
fn empty_password_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args([
            "start",
            "--listen",
            "127.0.0.1:0",
            "--password-env",
            "CAIRN_EMPTY",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("CAIRN_EMPTY", "")
        .output()
        .expect("run cairn");
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn sigterm_tells_idle_clients_57p01_and_exits_cleanly() {
    let mut server = Server::start().await;
    let (mut idle, _) = Raw::connect_ready(server.addr).await;
    server.terminate();
    let messages = idle.until_closed().await;
    let last = messages.last().expect("an ErrorResponse");
    assert_eq!(last.kind, b'E');
    assert_eq!(last.sqlstate().as_deref(), Some("57P01"));
    assert_eq!(
        last.field(b'M').as_deref(),
        Some("terminating connection due to administrator command")
    );
    assert_eq!(last.field(b'S').as_deref(), Some("FATAL"));
    let status = server.wait_exit().await;
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(server.log().contains("listening on"), "{}", server.log());
}

#[tokio::test]
async fn errors_in_an_extended_batch_skip_to_sync() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    let mut batch = Vec::new();
    // Bind to a statement that does not exist, then messages that must be skipped.
    batch.extend(message(
        b'B',
        &[cstr(""), cstr("nope"), vec![0, 0, 0, 0, 0, 0]].concat(),
    ));
    batch.extend(message(b'D', &[b"P".to_vec(), cstr("")].concat()));
    batch.extend(message(b'E', &[cstr(""), vec![0, 0, 0, 0]].concat()));
    batch.extend(sync());
    raw.send(&batch).await;
    let messages = raw.until_ready().await;
    let kinds: Vec<u8> = messages.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![b'E', b'Z'], "{messages:?}");
    assert_eq!(messages[0].sqlstate().as_deref(), Some("26000"));
    raw.ping().await;
}

#[tokio::test]
async fn empty_query_gets_empty_query_response() {
    let server = Server::start().await;
    let (mut raw, _) = Raw::connect_ready(server.addr).await;
    raw.send(&common::query("  ;  ")).await;
    let kinds: Vec<u8> = raw.until_ready().await.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, vec![b'I', b'Z']);
}

#[tokio::test]
async fn options_parameter_sets_session_parameters() {
    let server = Server::start().await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(&startup_packet(
        3,
        0,
        &[
            ("user", "postgres"),
            ("options", "-c application_name=via\\ options"),
        ],
    ))
    .await;
    let messages = raw.until_ready().await;
    let application_name = messages
        .iter()
        .filter(|m| m.kind == b'S')
        .map(|m| m.parameter())
        .find(|(name, _)| name == "application_name");
    assert_eq!(
        application_name,
        Some(("application_name".to_owned(), "via options".to_owned()))
    );

    let mut raw = Raw::connect(server.addr).await;
    raw.send(&startup_packet(
        3,
        0,
        &[("user", "postgres"), ("options", "--no-such-switch")],
    ))
    .await;
    let messages = raw.until_closed().await;
    assert_eq!(
        messages.last().and_then(|m| m.sqlstate()).as_deref(),
        Some("08P01")
    );
}
