//! Malformed input closes only the connection that sent it: the client gets FATAL 08P01
//! where the protocol allows, and a good connection beside it keeps working.

mod common;

use common::{assert_closed_with_protocol_violation, cstr, message, patiently, sync, Raw, Server};
use rand::{Rng, SeedableRng};

/// A good connection, opened before the bad one and checked after it.
async fn good(server: &Server) -> Raw {
    Raw::connect_ready(server.addr).await.0
}

#[tokio::test]
async fn garbage_before_startup_closes_only_that_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let mut bad = Raw::connect(server.addr).await;
    bad.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_closed_with_protocol_violation(&mut bad).await;
    good.ping().await;
}

#[tokio::test]
async fn truncated_message_closes_only_that_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let (mut bad, _) = Raw::connect_ready(server.addr).await;
    let whole = common::query("SELECT 1");
    bad.send(&whole[..whole.len() - 3]).await;
    bad.shutdown_write().await;
    assert_closed_with_protocol_violation(&mut bad).await;
    good.ping().await;
}

#[tokio::test]
async fn truncated_startup_packet_closes_only_that_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let mut bad = Raw::connect(server.addr).await;
    bad.send(&[0, 0, 0, 40, 0, 3, 0, 0, b'u']).await;
    bad.shutdown_write().await;
    assert_closed_with_protocol_violation(&mut bad).await;
    good.ping().await;
}

#[tokio::test]
async fn impossible_length_closes_only_that_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let (mut bad, _) = Raw::connect_ready(server.addr).await;
    bad.send(&[b'S', 0, 0, 0, 2]).await; // a length smaller than the length field
    assert_closed_with_protocol_violation(&mut bad).await;
    good.ping().await;
}

#[tokio::test]
async fn length_that_swallows_the_next_message_closes_only_that_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let (mut bad, _) = Raw::connect_ready(server.addr).await;
    // A Parse whose declared length also covers the Sync after it: its body then has bytes
    // left over, which cannot be a valid Parse.
    let body = [cstr(""), cstr("SELECT 1"), vec![0, 0]].concat();
    let mut parse = vec![b'P'];
    parse.extend_from_slice(&(body.len() as i32 + 4 + 5).to_be_bytes());
    parse.extend(body);
    parse.extend(sync());
    bad.send(&parse).await;
    assert_closed_with_protocol_violation(&mut bad).await;
    good.ping().await;
}

#[tokio::test]
async fn length_shorter_than_the_fields_closes_only_that_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let (mut bad, _) = Raw::connect_ready(server.addr).await;
    // Execute is a portal name and a 4-byte row limit; this one stops after two bytes.
    bad.send(&message(b'E', &[0, 0, 0])).await;
    assert_closed_with_protocol_violation(&mut bad).await;
    good.ping().await;
}

#[tokio::test]
async fn unknown_message_type_closes_only_that_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let (mut bad, _) = Raw::connect_ready(server.addr).await;
    bad.send(&message(b'z', b"")).await;
    assert_closed_with_protocol_violation(&mut bad).await;
    good.ping().await;
}

#[tokio::test]
async fn huge_declared_length_is_refused_without_waiting_for_it() {
    let server = Server::start().await;
    let (mut bad, _) = Raw::connect_ready(server.addr).await;
    bad.send(&[b'Q', 0x7f, 0xff, 0xff, 0xff]).await;
    assert_closed_with_protocol_violation(&mut bad).await;
}

#[tokio::test]
async fn cancel_request_with_a_wrong_key_is_harmless() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let mut cancel = Raw::connect(server.addr).await;
    cancel
        .send(&[
            0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x27, 0x10, 1, 2, 3, 4,
        ])
        .await;
    assert!(
        cancel.until_closed().await.is_empty(),
        "a cancel request gets no reply"
    );
    good.ping().await;
}

#[tokio::test]
async fn random_bytes_from_many_clients_do_not_hurt_a_good_connection() {
    let server = Server::start().await;
    let mut good = good(&server).await;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let mut bytes: Vec<u8> = (0..rng.gen_range(1..200)).map(|_| rng.gen()).collect();
        let after_startup = i % 2 == 0;
        if after_startup && rng.gen_bool(0.5) {
            // Start with a plausible message type so that the body is what gets checked.
            bytes[0] = *b"QPBDECSH".get(rng.gen_range(0..8)).unwrap();
        }
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut raw = if after_startup {
                Raw::connect_ready(addr).await.0
            } else {
                Raw::connect(addr).await
            };
            raw.send(&bytes).await;
            raw.shutdown_write().await;
            raw.until_closed().await
        }));
    }
    for task in tasks {
        patiently("a garbage connection to close", task)
            .await
            .expect("client task");
    }
    good.ping().await;
    let client = server.connect().await;
    assert!(!client.is_closed());
}
