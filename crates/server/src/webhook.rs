//! Webhook deliveries over HTTP/1.1: a small blocking client (a connection
//! per delivery, `https://` through rustls with the system's roots, timeouts
//! on every step), enough for a JSON POST and its status line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use zhima_app::webhooks::Poster;

/// How long a receiver has to connect, read and answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs webhook deliveries.
pub struct HttpPoster {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for HttpPoster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPoster").finish_non_exhaustive()
    }
}

impl HttpPoster {
    /// A poster trusting the system's root certificates.
    pub fn new() -> Result<HttpPoster, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        // ring, as lettre's SMTP uses: aws-lc-rs would add a C build
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpPoster {
            tls: Arc::new(config),
        })
    }
}

/// The parts of a webhook URL.
struct Target {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("the URL {url:?}: {e}"))?;
    let tls = match parsed.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(format!("the scheme {other:?} is not http or https")),
    };
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("the URL {url:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let mut path = parsed.path().to_owned();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok(Target {
        tls,
        host,
        port,
        path,
    })
}

impl Poster for HttpPoster {
    fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> Result<u16, String> {
        let t = target(url)?;
        let address = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", t.host))?
            .next()
            .ok_or_else(|| format!("{}: no address", t.host))?;
        let tcp = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            t.path,
            t.host,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        if t.tls {
            let name = rustls::pki_types::ServerName::try_from(t.host.clone())
                .map_err(|e| format!("{}: {e}", t.host))?;
            let connection =
                rustls::ClientConnection::new(self.tls.clone(), name).map_err(|e| e.to_string())?;
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            exchange(&mut stream, request.as_bytes(), body)
        } else {
            let mut stream = tcp;
            exchange(&mut stream, request.as_bytes(), body)
        }
    }
}

/// Writes the request, reads the status line (and at most 64 KiB after it).
fn exchange<S: Read + Write>(stream: &mut S, head: &[u8], body: &[u8]) -> Result<u16, String> {
    stream.write_all(head).map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    stream.flush().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.take(64 * 1024));
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| e.to_string())?;
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| status.starts_with("HTTP/1."))
        .ok_or_else(|| format!("not an HTTP answer: {:?}", status.trim()))?;
    // drain what the receiver sends, up to the bound, so it sees a clean close
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    Ok(code)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_split_into_their_parts() {
        let t = target("https://hooks.example/space/zhima?x=1").unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("hooks.example", 443, "/space/zhima?x=1")
        );
        let t = target("http://127.0.0.1:9000/").unwrap();
        assert_eq!((t.tls, t.port), (false, 9000));
        assert!(target("ftp://x/").is_err());
    }
}
