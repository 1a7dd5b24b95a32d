//! Who is asking: the client's address and the public origin, trusting
//! forwarded headers only from configured proxies (`http.trusted_proxies`).

use std::net::IpAddr;

use actix_web::HttpRequest;

/// The reverse proxies whose forwarded headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses addresses (`127.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                let (addr, bits) = match entry.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (entry, None),
                };
                let addr: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("`{entry}` is not an IP address or network"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits = match bits {
                    Some(b) => b
                        .parse::<u8>()
                        .ok()
                        .filter(|b| *b <= max)
                        .ok_or_else(|| format!("`{entry}` has a bad prefix length"))?,
                    None => max,
                };
                Ok((addr, bits))
            })
            .collect::<Result<_, String>>()?;
        Ok(TrustedProxies { nets })
    }

    /// Whether `ip` is one of the proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets
            .iter()
            .any(|(net, bits)| in_net(ip, canonical(*net), *bits))
    }

    /// Whether the request came straight from a trusted proxy.
    pub fn from_proxy(&self, req: &HttpRequest) -> bool {
        req.peer_addr().is_some_and(|a| self.contains(a.ip()))
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.contains(peer) {
            return Some(peer);
        }
        let mut chain: Vec<IpAddr> = Vec::new();
        for value in req.headers().get_all("x-forwarded-for") {
            let Ok(value) = value.to_str() else {
                return Some(peer);
            };
            for hop in value.split(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => chain.push(ip),
                    // a malformed chain is not believed
                    Err(_) => return Some(peer),
                }
            }
        }
        Some(
            chain
                .into_iter()
                .rev()
                .find(|ip| !self.contains(*ip))
                .unwrap_or(peer),
        )
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        if let Some(x) = xff {
            r = r.insert_header(("X-Forwarded-For", x));
        }
        r.to_http_request()
    }

    #[test]
    fn networks_parse_and_match() {
        let p = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1", "::1"]).unwrap();
        assert!(p.contains("10.1.2.3".parse().unwrap()));
        assert!(p.contains("127.0.0.1".parse().unwrap()));
        assert!(p.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(p.contains("::1".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(!p.contains("127.0.0.2".parse().unwrap()));
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example"]).is_err());
        assert!(TrustedProxies::parse(&["0.0.0.0/0"])
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(
            none.client_ip(&req("203.0.113.9", Some("1.2.3.4"))),
            ip("203.0.113.9")
        );
        let p = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
        assert_eq!(
            p.client_ip(&req("127.0.0.1", Some("1.2.3.4"))),
            ip("1.2.3.4")
        );
        // the client's own forged entries are to the left of the proxy's
        assert_eq!(
            p.client_ip(&req("127.0.0.1", Some("9.9.9.9, 1.2.3.4"))),
            ip("1.2.3.4")
        );
        assert_eq!(
            p.client_ip(&req("127.0.0.1", Some("garbage"))),
            ip("127.0.0.1")
        );
        assert_eq!(p.client_ip(&req("127.0.0.1", None)), ip("127.0.0.1"));
        assert_eq!(
            p.client_ip(&req("198.51.100.1", Some("1.2.3.4"))),
            ip("198.51.100.1")
        );
    }
}
