//! Network addresses on the command line and in configuration files.

/// Checks that a listen address has the shape `HOST:PORT` (an IPv6 host in
/// brackets: `[::1]:8081`). The host is resolved only when it is bound.
pub(crate) fn parse_listen(value: &str) -> Result<String, String> {
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| format!("`{value}` is not HOST:PORT"))?;
    if host.is_empty() {
        return Err(format!("`{value}` has no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "`{value}`: write an IPv6 address in brackets, as [::1]:8081"
        ));
    }
    port.parse::<u16>()
        .map_err(|_| format!("`{port}` is not a port number (0 to 65535)"))?;
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        for good in [
            "127.0.0.1:8081",
            "localhost:0",
            "[::]:65535",
            "broker-0.tern:8081",
        ] {
            assert_eq!(parse_listen(good).as_deref(), Ok(good), "{good}");
        }
        for bad in ["8081", ":8081", "host:", "host:65536", "host:x", "::1:8081"] {
            assert!(parse_listen(bad).is_err(), "{bad} should be rejected");
        }
    }
}
