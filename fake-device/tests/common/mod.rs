//! A tiny miIO test client on loopback, built on the shared codec.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mijia_proto::miio::packet::{self, HelloReply};
use mijia_proto::miio::{Request, Response, Token};
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::time::timeout;

pub struct Client {
    pub sock: UdpSocket,
    pub token: Token,
}

impl Client {
    /// A client socket on `ip` (loopback), ephemeral port.
    pub async fn new(ip: &str, token: Token) -> Client {
        let sock = UdpSocket::bind(format!("{ip}:0")).await.unwrap();
        Client { sock, token }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// One datagram, or `None` after `wait`.
    pub async fn recv(&self, wait: Duration) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        match timeout(wait, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
            _ => None,
        }
    }

    /// Every datagram that arrives within `wait`.
    pub async fn recv_all(&self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(Ok((n, _))) =
            tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf)).await
        {
            out.push(buf[..n].to_vec());
        }
        out
    }

    pub async fn hello(&self, to: SocketAddr, wait: Duration) -> Option<HelloReply> {
        self.sock.send_to(&packet::hello(), to).await.unwrap();
        let b = self.recv(wait).await?;
        packet::parse_hello_reply(&b).ok()
    }

    pub async fn send(
        &self,
        to: SocketAddr,
        did: u64,
        stamp: u32,
        id: u32,
        method: &str,
        params: Value,
    ) {
        let body = Request::new(id, method, params).to_bytes();
        let p = packet::encode(&self.token, did, stamp, &body).unwrap();
        self.sock.send_to(&p, to).await.unwrap();
    }

    pub fn decode(&self, bytes: &[u8]) -> Response {
        let d = packet::decode(&self.token, bytes).unwrap();
        Response::parse(&d.payload).unwrap()
    }

    /// Hello, then one request; the decoded reply.
    pub async fn call(
        &self,
        to: SocketAddr,
        id: u32,
        method: &str,
        params: Value,
    ) -> Option<Response> {
        let h = self.hello(to, Duration::from_secs(2)).await?;
        self.send(to, h.did, h.stamp, id, method, params).await;
        let b = self.recv(Duration::from_secs(2)).await?;
        Some(self.decode(&b))
    }
}
