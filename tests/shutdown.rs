//! Shutdown is bounded: a client that holds its connection open and never
//! answers cannot keep the server from stopping.

mod common;

use std::time::Duration;

use common::*;
use mora::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_silent_client_cannot_hold_the_server_open() {
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        shutdown_grace_secs: 1,
        ..common::config(&shipped_models(), data.path())
    };
    let server = mora::server::start(config).await.unwrap();
    server.recovered().await;

    // An HTTP/2 client preface and an empty SETTINGS frame, then silence.
    let mut silent = tokio::net::TcpStream::connect(server.grpc_addr)
        .await
        .unwrap();
    silent
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    silent
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    // The server's own SETTINGS frame proves the connection is being served.
    let mut frame_header = [0u8; 9];
    silent.read_exact(&mut frame_header).await.unwrap();
    assert_eq!(
        frame_header[3], 4,
        "first frame from the server is SETTINGS"
    );

    // Far longer than the grace period: only a hang would reach it.
    let stopped = tokio::time::timeout(Duration::from_secs(60), server.shutdown()).await;
    assert!(
        stopped.is_ok(),
        "shutdown waited on a silent client past its grace period"
    );
    stopped.unwrap().unwrap();
    drop(silent);
}
