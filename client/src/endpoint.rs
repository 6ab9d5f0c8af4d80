//! Access points: parsing `host:port[;host:port...]` and connecting to the
//! first one that answers.

use std::fmt;
use std::time::Duration;

use tern_tls::{ClientTls, ClientTlsConfig};
use tonic::transport::{Channel, Endpoint};

use crate::ClientError;

/// How long to wait for a TCP (and HTTP/2) connection to one address.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call may take, unless the call says otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One or more addresses of the same Tern service, tried in order.
///
/// Written as `host:port`, optionally prefixed with `http://`; several are
/// separated by `;` (the form the official RocketMQ clients accept). IPv6
/// hosts go in brackets: `[::1]:8081`. `https://` (on any address) means
/// TLS checked against the system's CA bundle; [`Endpoints::with_tls`]
/// sets how TLS is checked instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// `(host, port)` pairs, host without brackets.
    addresses: Vec<(String, u16)>,
    /// Plaintext when `None`.
    tls: Option<ClientTls>,
}

impl Endpoints {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, ClientError> {
        let invalid = |reason: String| ClientError::InvalidEndpoint {
            endpoint: text.to_owned(),
            reason,
        };
        let mut addresses = Vec::new();
        let mut https = false;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let bare = match part.strip_prefix("https://") {
                Some(rest) => {
                    https = true;
                    rest
                }
                None => part.strip_prefix("http://").unwrap_or(part),
            };
            let bare = bare.strip_suffix('/').unwrap_or(bare);
            let (host, port) = bare
                .rsplit_once(':')
                .ok_or_else(|| invalid(format!("`{part}` is not HOST:PORT")))?;
            let port: u16 = port
                .parse()
                .map_err(|_| invalid(format!("`{port}` is not a port number")))?;
            if port == 0 {
                return Err(invalid("port 0 cannot be dialled".into()));
            }
            let host = match host.strip_prefix('[') {
                Some(inner) => inner
                    .strip_suffix(']')
                    .ok_or_else(|| invalid(format!("unclosed bracket in `{part}`")))?,
                None if host.contains(':') => {
                    return Err(invalid(format!(
                        "write an IPv6 address in brackets, as [::1]:8081, not `{part}`"
                    )));
                }
                None => host,
            };
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return Err(invalid(format!("`{part}` has no valid host")));
            }
            addresses.push((host.to_owned(), port));
        }
        if addresses.is_empty() {
            return Err(invalid("no address given".into()));
        }
        let tls = if https {
            Some(ClientTls::new(ClientTlsConfig::default()).map_err(|e| invalid(e.to_string()))?)
        } else {
            None
        };
        Ok(Self { addresses, tls })
    }

    /// The same addresses, dialled with TLS checked as `tls` says (or in
    /// plaintext with `None`).
    #[must_use]
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self
    }

    /// How these addresses are dialled: TLS, or plaintext when `None`.
    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref()
    }

    /// Each address as `(host, port)`, the host without brackets.
    pub(crate) fn hosts(&self) -> impl Iterator<Item = (&str, u16)> + '_ {
        self.addresses.iter().map(|(h, p)| (h.as_str(), *p))
    }

    /// Each address as `host:port` (IPv6 hosts in brackets).
    fn addresses(&self) -> impl Iterator<Item = String> + '_ {
        self.addresses.iter().map(|(host, port)| {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        })
    }

    /// Connects to the first address that accepts, each within
    /// `connect_timeout`; returns the channel and that address as
    /// `host:port`.
    pub(crate) async fn connect(
        &self,
        connect_timeout: Duration,
    ) -> Result<(Channel, String), ClientError> {
        let mut last = String::from("no address tried");
        for address in self.addresses() {
            let uri = format!("http://{address}");
            let endpoint = Endpoint::from_shared(uri.clone())
                .map_err(|e| ClientError::InvalidEndpoint {
                    endpoint: uri.clone(),
                    reason: e.to_string(),
                })?
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true);
            let connecting = async {
                match &self.tls {
                    Some(tls) => endpoint.connect_with_connector(tls.connector()).await,
                    None => endpoint.connect().await,
                }
            };
            match tokio::time::timeout(connect_timeout, connecting).await {
                Ok(Ok(channel)) => {
                    tracing::debug!(%uri, "connected");
                    return Ok((channel, address));
                }
                Ok(Err(e)) => {
                    last = error_chain(&e);
                    tracing::debug!(%uri, error = %last, "connection failed");
                }
                Err(_) => {
                    last = format!("no answer from {uri} within {connect_timeout:?}");
                    tracing::debug!(%uri, "connection timed out");
                }
            }
        }
        Err(ClientError::Unreachable {
            endpoints: self.to_string(),
            reason: last,
        })
    }
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, address) in self.addresses().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(&address)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Endpoints {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, ClientError> {
        Self::parse(s)
    }
}

/// An error and its sources on one line ("transport error: Connection
/// refused (os error 111)").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_clients_accept() {
        let e = Endpoints::parse("127.0.0.1:8081").unwrap();
        assert_eq!(e.to_string(), "127.0.0.1:8081");

        let e = Endpoints::parse("http://a.tern:8081; [::1]:9000;").unwrap();
        assert_eq!(e.to_string(), "a.tern:8081;[::1]:9000");
        assert_eq!(
            e.addresses().collect::<Vec<_>>(),
            ["a.tern:8081", "[::1]:9000"]
        );
    }

    #[test]
    fn refuses_malformed_endpoints() {
        for bad in [
            "",
            ";",
            "8081",
            "host:",
            "host:x",
            "host:70000",
            "host:0",
            ":8081",
            "::1:8081",
            "[::1:8081",
            "http://user@host:8081",
        ] {
            let err = Endpoints::parse(bad).unwrap_err();
            assert!(
                matches!(err, ClientError::InvalidEndpoint { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_endpoints_fail_after_trying_each() {
        // Bind then drop: nothing listens on these ports now.
        let ports: Vec<u16> = (0..2)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            })
            .collect();
        let text = format!("127.0.0.1:{};127.0.0.1:{}", ports[0], ports[1]);
        let err = Endpoints::parse(&text)
            .unwrap()
            .connect(Duration::from_secs(2))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{msg}");
        assert!(msg.contains(&text), "{msg}");
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
    }

    #[tokio::test]
    async fn connects_to_the_first_address_that_answers() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = live.local_addr().unwrap().port();
        // Accept (and hold) the connection; HTTP/2 set-up is lazy in tonic.
        let accept = tokio::spawn(async move { live.accept().await.map(|(s, _)| s) });
        let text = format!("127.0.0.1:{dead};127.0.0.1:{port}");
        let (_, connected) = Endpoints::parse(&text)
            .unwrap()
            .connect(Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(connected, format!("127.0.0.1:{port}"));
        accept.await.unwrap().unwrap();
    }
}
