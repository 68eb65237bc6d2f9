//! The SSRF guard: which destinations sluice may connect to.
//!
//! Two layers, both needed:
//! * [`check_url`] runs before a request: scheme, and IP-literal hosts
//!   (reqwest connects to literals directly, without asking a resolver).
//! * [`GuardedResolver`] is the reqwest DNS resolver of the guarded client. It
//!   resolves names, drops forbidden addresses and hands reqwest only the
//!   allowed ones, so the connection is pinned to the addresses that were
//!   checked (no second lookup an attacker could rebind).

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::DeliveryError;

/// Whether sluice must refuse to connect to `ip` (unless the subscription
/// allows local targets).
///
/// Everything that is not ordinary public unicast is refused. Addresses that
/// embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the
/// embedded address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // 0.0.0.0/8 "this network"
        || a == 10                           // 10/8 private
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 CGNAT
        || a == 127                          // loopback
        || (a == 169 && b == 254)            // link-local, incl. cloud metadata
        || (a == 172 && (16..32).contains(&b)) // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)    // 192.0.0/24 IETF assignments
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast
        || (a == 192 && b == 168)            // 192.168/16 private
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    if let Some(v4) = embedded_v4(ip) {
        return is_forbidden_v4(v4);
    }
    // Only 2000::/3 is global unicast; everything else (ULA fc00::/7 incl.
    // fd00:ec2::254, link-local fe80::/10, multicast ff00::/8, discard 100::/64,
    // local-use NAT64 64:ff9b:1::/48, reserved space) is refused.
    if seg[0] & 0xe000 != 0x2000 {
        return true;
    }
    (seg[0] == 0x2001 && seg[1] == 0x0db8)         // 2001:db8::/32 documentation
        || (seg[0] == 0x3fff && seg[1] & 0xf000 == 0) // 3fff::/20 documentation
        || (seg[0] == 0x2001 && seg[1] & 0xfe00 == 0) // 2001::/23 IETF assignments (Teredo, ORCHID, …)
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms
/// that reach an IPv4 host.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let o = ip.octets();
    let low32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match seg {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated)
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low32),
        // ::ffff:0:a.b.c.d (SIIT translated)
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low32),
        // 64:ff9b::/96 well-known NAT64 prefix
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        // 2002:AABB:CCDD::/48 6to4
        [0x2002, _, _, _, _, _, _, _] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Checks made before sending: the scheme, and hosts that are IP literals.
/// Names are checked after resolution, by [`GuardedResolver`].
pub fn check_url(url: &Url, allow_local: bool) -> Result<(), DeliveryError> {
    match url.scheme() {
        "https" => {}
        "http" if allow_local => {}
        "http" => return Err(DeliveryError::Refused("destination must use https".into())),
        other => {
            return Err(DeliveryError::Refused(format!(
                "unsupported scheme {other:?}"
            )));
        }
    }
    if allow_local {
        return Ok(());
    }
    let ip = match url.host() {
        None => return Err(DeliveryError::Refused("destination has no host".into())),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if is_forbidden(ip) {
        return Err(DeliveryError::Refused(format!(
            "destination address {ip} is not allowed"
        )));
    }
    Ok(())
}

/// The resolver error when every address of a name is forbidden. The
/// transport finds it in reqwest's error chain and reports `Refused`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenAddress {
    pub host: String,
}

impl fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves only to addresses that are not allowed",
            self.host
        )
    }
}

impl StdError for ForbiddenAddress {}

/// A reqwest resolver that only ever returns allowed addresses.
#[derive(Clone)]
pub struct GuardedResolver {
    forbidden: fn(IpAddr) -> bool,
}

impl Default for GuardedResolver {
    fn default() -> Self {
        Self {
            forbidden: is_forbidden,
        }
    }
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuardedResolver")
    }
}

impl GuardedResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// A resolver with another predicate (tests: pretend loopback is public).
    #[cfg(test)]
    pub(crate) fn with_predicate(forbidden: fn(IpAddr) -> bool) -> Self {
        Self { forbidden }
    }

    /// Resolve `host` and keep the allowed addresses.
    pub async fn lookup(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn StdError + Send + Sync>> {
        // Port 0: reqwest substitutes the URL's port.
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        let total = resolved.len();
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|a| !(self.forbidden)(a.ip()))
            .collect();
        if allowed.is_empty() {
            if total > 0 {
                return Err(Box::new(ForbiddenAddress {
                    host: host.to_owned(),
                }));
            }
            return Err(format!("{host} has no addresses").into());
        }
        if allowed.len() < total {
            tracing::warn!(
                host,
                dropped = total - allowed.len(),
                "dropped forbidden addresses from DNS answer"
            );
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Find a [`ForbiddenAddress`] anywhere in an error's source chain.
pub fn find_forbidden<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a ForbiddenAddress> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(f) = e.downcast_ref::<ForbiddenAddress>() {
            return Some(f);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forbidden_table() {
        let forbidden = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.0.1",
            "169.254.169.254",
            "192.0.0.170",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "3fff::1",
            "3fff:fff::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:2::1",
            "2001:1f::1",
            "fec0::1",
        ];
        for s in forbidden {
            assert!(is_forbidden(ip(s)), "{s} should be forbidden");
        }
        let allowed = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.1.1",
            "192.0.1.1",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "9.255.255.255",
            "11.0.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:200::1",
            "2001:4860::8888",
            "3ff0::1",
            "3fff:1000::1",
        ];
        for s in allowed {
            assert!(!is_forbidden(ip(s)), "{s} should be allowed");
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn check_url_scheme() {
        assert_eq!(
            check_url(&url("http://example.com/"), false),
            Err(DeliveryError::Refused("destination must use https".into()))
        );
        assert!(check_url(&url("http://example.com/"), true).is_ok());
        assert!(check_url(&url("https://example.com/"), false).is_ok());
        assert!(matches!(
            check_url(&url("ftp://example.com/"), true),
            Err(DeliveryError::Refused(_))
        ));
    }

    #[test]
    fn check_url_literals() {
        for s in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]:8443/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://[fd00:ec2::254]/",
            "https://0x7f000001/",
            "https://127.1/",
            "https://10.1.2.3/",
        ] {
            assert!(
                matches!(check_url(&url(s), false), Err(DeliveryError::Refused(_))),
                "{s} should be refused"
            );
            assert!(check_url(&url(s), true).is_ok(), "{s} allowed when local");
        }
        assert!(check_url(&url("https://1.1.1.1/"), false).is_ok());
        assert!(check_url(&url("https://[2606:4700:4700::1111]/"), false).is_ok());
    }

    #[tokio::test]
    async fn resolver_refuses_names_that_resolve_only_to_forbidden() {
        let err = GuardedResolver::new()
            .lookup("localhost")
            .await
            .unwrap_err();
        let forbidden = find_forbidden(&*err).expect("ForbiddenAddress");
        assert_eq!(forbidden.host, "localhost");
    }

    #[tokio::test]
    async fn resolver_returns_only_allowed_addresses() {
        // Pretend 127.0.0.1 is public and everything else is not.
        let r = GuardedResolver::with_predicate(|ip| ip != IpAddr::from([127, 0, 0, 1]));
        let addrs = r.lookup("127.0.0.1").await.unwrap();
        assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 1], 0))]);
        // "localhost" may also resolve to ::1; that one must be dropped.
        let addrs = r.lookup("localhost").await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip() == IpAddr::from([127, 0, 0, 1])));
    }

    #[tokio::test]
    async fn resolver_through_reqwest_trait() {
        let name: Name = "localhost".parse().unwrap();
        let Err(err) = Resolve::resolve(&GuardedResolver::new(), name).await else {
            panic!("localhost must not resolve through the guard");
        };
        assert!(find_forbidden(&*err).is_some());
    }
}
