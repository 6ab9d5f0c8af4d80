//! RocketMQ [`Endpoints`] from the `host:port` addresses Tern passes
//! around (advertised broker addresses, registered endpoints), shared by
//! the broker, the name server and the client.

use std::net::IpAddr;

use crate::v2::{Address, AddressScheme, Endpoints};

/// The scheme of `host`: IPv4 or IPv6 for an IP literal (without
/// brackets), else a domain name.
pub fn address_scheme(host: &str) -> AddressScheme {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => AddressScheme::IPv4,
        Ok(IpAddr::V6(_)) => AddressScheme::IPv6,
        Err(_) => AddressScheme::DomainName,
    }
}

/// The endpoints of one `host:port` address, an IPv6 host in brackets
/// (`[::1]:8081`). `None` unless the port is a number in 0..=65535 and
/// the host is not empty.
pub fn endpoints(address: &str) -> Option<Endpoints> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some(Endpoints {
        scheme: address_scheme(host) as i32,
        addresses: vec![Address {
            host: host.to_owned(),
            port: i32::from(port),
        }],
    })
}

/// `host:port` of the first address of `e`, an IPv6 host in brackets:
/// the inverse of [`endpoints`]. `None` without an address, with an
/// empty host or a port outside 1..=65535.
pub fn first_address(e: &Endpoints) -> Option<String> {
    let a = e.addresses.first()?;
    let port = u16::try_from(a.port).ok().filter(|p| *p != 0)?;
    if a.host.is_empty() {
        return None;
    }
    Some(if a.host.contains(':') {
        format!("[{}]:{port}", a.host)
    } else {
        format!("{}:{port}", a.host)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn one(address: &str) -> (AddressScheme, String, i32) {
        let e = endpoints(address).unwrap();
        assert_eq!(e.addresses.len(), 1, "{address}");
        let a = &e.addresses[0];
        (
            AddressScheme::try_from(e.scheme).unwrap(),
            a.host.clone(),
            a.port,
        )
    }

    #[test]
    fn ip_literals_and_hostnames() {
        assert_eq!(
            one("10.0.0.1:8081"),
            (AddressScheme::IPv4, "10.0.0.1".to_owned(), 8081)
        );
        assert_eq!(one("[::1]:9"), (AddressScheme::IPv6, "::1".to_owned(), 9));
        assert_eq!(
            one("[fe80::1:2]:65535"),
            (AddressScheme::IPv6, "fe80::1:2".to_owned(), 65535)
        );
        assert_eq!(
            one("broker-0.tern.svc:8081"),
            (
                AddressScheme::DomainName,
                "broker-0.tern.svc".to_owned(),
                8081
            )
        );
        assert_eq!(
            one("localhost:0"),
            (AddressScheme::DomainName, "localhost".to_owned(), 0)
        );
    }

    #[test]
    fn bad_input_is_refused() {
        for bad in [
            "", "nope", ":1", "[]:1", "h:", "h:x", "h:-1", "h:65536", "h:1:", "[::1]",
        ] {
            assert!(endpoints(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn schemes() {
        assert_eq!(address_scheme("127.0.0.1"), AddressScheme::IPv4);
        assert_eq!(address_scheme("::"), AddressScheme::IPv6);
        assert_eq!(address_scheme("[::1]"), AddressScheme::DomainName);
        assert_eq!(address_scheme("example.com"), AddressScheme::DomainName);
    }

    #[test]
    fn first_address_is_the_inverse_of_endpoints() {
        for a in ["10.0.0.1:8081", "[::1]:9", "broker-0.tern.svc:8081"] {
            assert_eq!(first_address(&endpoints(a).unwrap()).as_deref(), Some(a));
        }
        assert_eq!(first_address(&endpoints("localhost:0").unwrap()), None);
        assert_eq!(first_address(&Endpoints::default()), None);
    }
}
