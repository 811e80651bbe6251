//! `vifguard metrics --listen`: a minimal HTTP/1.0 server for one path,
//! `GET /metrics`, answering one request at a time.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// How long a client may take to send its request or read the answer:
/// one slow client holds up every other.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Request heads longer than this are answered as they are (a scraper's is
/// a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;

/// Serves what `metrics` returns (called per request: the maps are re-read
/// each time) until accepting fails for good, which a bound listener never
/// does. Failures of a single connection go to `log`.
pub fn serve<E: std::error::Error>(
    listener: &TcpListener,
    mut metrics: impl FnMut() -> Result<String, E>,
    mut log: impl FnMut(String),
) {
    for conn in listener.incoming() {
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log(format!("metrics: accept: {e}"));
                continue;
            }
        };
        let answered = stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
            .and_then(|()| answer(&mut stream, &mut metrics));
        if let Err(e) = answered {
            log(format!("metrics request: {e}"));
        }
    }
}

/// Reads one HTTP request head and answers it (HTTP/1.0, connection
/// closed).
pub fn answer<E: std::error::Error>(
    stream: &mut (impl Read + Write),
    metrics: impl FnOnce() -> Result<String, E>,
) -> io::Result<()> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n")
        && !head.windows(2).any(|w| w == b"\n\n")
        && head.len() < MAX_HEAD
    {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("").split('?').next().unwrap_or("");
    let text = "text/plain; charset=utf-8";
    let (status, ctype, body) = if method != "GET" {
        ("405 Method Not Allowed", text, "only GET\n".to_string())
    } else if path != "/metrics" {
        (
            "404 Not Found",
            text,
            "not found; try /metrics\n".to_string(),
        )
    } else {
        match metrics() {
            Ok(t) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", t),
            Err(e) => (
                "500 Internal Server Error",
                text,
                format!("{}\n", super::chain(&e)),
            ),
        }
    };
    write!(
        stream,
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that sent `request` and reads the answer.
    struct Client {
        request: io::Cursor<Vec<u8>>,
        answer: Vec<u8>,
    }

    impl Read for Client {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.request.read(buf)
        }
    }

    impl Write for Client {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.answer.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("maps unreadable")]
    struct Outer(#[source] io::Error);

    fn ask(request: &str, metrics: Result<String, Outer>) -> String {
        let mut c = Client {
            request: io::Cursor::new(request.as_bytes().to_vec()),
            answer: Vec::new(),
        };
        answer(&mut c, || metrics).expect("answer");
        String::from_utf8(c.answer).expect("UTF-8 answer")
    }

    #[test]
    fn get_metrics_is_answered_with_the_text() {
        let a = ask(
            "GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
            Ok("m 1\n".into()),
        );
        assert_eq!(
            a,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\nm 1\n"
        );
    }

    #[test]
    fn other_paths_methods_and_failures() {
        assert!(ask("GET / HTTP/1.0\n\n", Ok(String::new())).starts_with("HTTP/1.0 404 "));
        assert!(ask("POST /metrics HTTP/1.0\n\n", Ok(String::new())).starts_with("HTTP/1.0 405 "));
        let a = ask(
            "GET /metrics HTTP/1.0\r\n\r\n",
            Err(Outer(io::Error::other("gone"))),
        );
        assert!(a.starts_with("HTTP/1.0 500 "), "{a}");
        assert!(a.ends_with("\r\n\r\nmaps unreadable: gone\n"), "{a}");
    }
}
