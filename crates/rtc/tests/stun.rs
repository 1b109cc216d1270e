//! The STUN responder over real UDP.

use std::time::Duration;

use dreamgate_rtc::stun::{binding_request, mapped_address, MAGIC_COOKIE};
use dreamgate_rtc::StunServer;
use tokio::net::UdpSocket;
use tokio::time::timeout;

/// Sends `msg`, returns the next datagram the server sends back (the 5 s bound only
/// keeps a broken server from hanging the test).
async fn ask(client: &UdpSocket, server: std::net::SocketAddr, msg: &[u8]) -> Vec<u8> {
    client.send_to(msg, server).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.expect("an answer").unwrap();
    assert_eq!(from, server);
    buf[..n].to_vec()
}

#[tokio::test]
async fn answers_binding_requests_with_the_xor_mapped_address() {
    let server = StunServer::bind("127.0.0.1".parse().unwrap()).await.unwrap();
    assert!(server.addr.ip().is_loopback() && server.addr.port() != 0);
    assert_eq!(server.url(), format!("stun:127.0.0.1:{}", server.addr.port()));
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    // A hand-made RFC 5389 Binding request: type 0x0001, length 0, cookie, transaction id.
    let id = *b"dreamgate-01";
    let mut req = vec![0x00, 0x01, 0x00, 0x00];
    req.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    req.extend_from_slice(&id);
    assert_eq!(req, binding_request(&id));

    let resp = ask(&client, server.addr, &req).await;
    assert_eq!(&resp[0..2], &[0x01, 0x01], "Binding success response");
    assert_eq!(&resp[8..20], &id);
    assert_eq!(mapped_address(&resp, &id), Some(client.local_addr().unwrap()));
    // The attribute really is XOR-MAPPED-ADDRESS (0x0020), family IPv4, port xored.
    assert_eq!(&resp[20..22], &[0x00, 0x20]);
    let port = u16::from_be_bytes([resp[26], resp[27]]) ^ 0x2112;
    assert_eq!(port, client.local_addr().unwrap().port());
}

#[tokio::test]
async fn ignores_garbage_and_keeps_serving() {
    let server = StunServer::bind("127.0.0.1".parse().unwrap()).await.unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let id = [9u8; 12];
    let good = binding_request(&id);
    let mut wrong_cookie = good.clone();
    wrong_cookie[5] ^= 0xff;
    let mut indication = good.clone();
    indication[1] = 0x11; // Binding indication: no answer expected
                          // The server answers datagrams in order, one at a time: when the first answer after
                          // junk + a good request is the good request's, the junk got none (no waiting window).
    for (n, junk) in [
        vec![],
        vec![0u8; 1],
        vec![0xffu8; 1400],
        b"not stun at all, really".to_vec(),
        wrong_cookie,
        indication,
        good[..19].to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        client.send_to(&junk, server.addr).await.unwrap();
        let id = [n as u8; 12];
        let resp = ask(&client, server.addr, &binding_request(&id)).await;
        assert_eq!(&resp[8..20], &id, "answered {junk:?}");
        assert_eq!(mapped_address(&resp, &id), Some(client.local_addr().unwrap()));
    }

    // Dropping the server stops it and frees the port.
    let addr = server.addr;
    drop(server);
    let freed = timeout(Duration::from_secs(5), async {
        while std::net::UdpSocket::bind(addr).is_err() {
            tokio::task::yield_now().await;
        }
    });
    assert!(freed.await.is_ok(), "port still bound after drop");
}
