//! `logboard healthcheck`: one `GET /healthz` to the service on this machine, so a container's
//! health check needs no curl in the image. Plain std networking: one request, one status line.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Connect, send and read together must finish within this; ECS's and Docker's health-check
/// timeouts (5 s and 3 s in deploy/ and the Dockerfile) are longer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest answer head read: the status line is all that is looked at.
const MAX_HEAD_BYTES: usize = 1024;

/// Where to probe the service that listens on `listen`: an unspecified address (`0.0.0.0`,
/// `[::]`) is reached over loopback of the same family, a specific one as it is.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `GET /healthz` at `address`: the answer's status code, or why there was none.
pub fn probe(address: SocketAddr, timeout: Duration) -> Result<u16, String> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream.set_write_timeout(Some(left())).map_err(|e| e.to_string())?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("cannot send to {address}: {e}"))?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 256];
    // Read until the status line is complete (or the answer ends); the rest does not matter.
    while !head.contains(&b'\n') && head.len() < MAX_HEAD_BYTES {
        stream.set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(e) => return Err(format!("no answer from {address}: {e}")),
        }
    }
    status_code(&head).ok_or_else(|| format!("{address} did not answer HTTP"))
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_probed_over_loopback_and_specific_ones_as_they_are() {
        let at = |text: &str| probe_address(text.parse().expect("an address")).to_string();
        assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(at("[::]:9000"), "[::1]:9000");
        assert_eq!(at("10.0.3.7:8080"), "10.0.3.7:8080");
    }

    #[test]
    fn the_status_code_comes_from_an_http_1_status_line_only() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH_9.6\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 abc\r\n"), None);
        assert_eq!(status_code(b""), None);
    }
}
