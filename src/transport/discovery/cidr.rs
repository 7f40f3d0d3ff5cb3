//! IPv4 CIDR blocks for the unicast sweep: parsing with clear errors, a
//! size cap, and the list of host addresses to probe.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The widest block swept without [`Cidr::allow_large`]: a /16 (65,534
/// hosts). Wider blocks take minutes and flood the neighbour table.
pub const MAX_SWEEP_PREFIX: u8 = 16;

/// An IPv4 block such as `192.168.1.0/24`. Host bits in the address are
/// cleared (`192.168.1.7/24` is `192.168.1.0/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

/// Why a string is not a usable block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/`.
    #[error("{0:?} has no prefix length; write a block such as 192.168.1.0/24")]
    NoPrefix(String),
    /// The address part is not IPv4.
    #[error("{0:?} is not an IPv4 address; write a block such as 192.168.1.0/24")]
    BadAddress(String),
    /// The prefix is not a number from 0 to 32.
    #[error(
        "prefix length {0:?} is not a number from 0 to 32; write a block such as 192.168.1.0/24"
    )]
    BadPrefix(String),
    /// More hosts than a sweep should try.
    #[error(
        "/{prefix} holds {hosts} addresses, more than a sweep should probe (at most a /{max}); \
         sweep a smaller block such as your LAN's /24"
    )]
    TooLarge {
        /// The prefix given.
        prefix: u8,
        /// How many host addresses it holds.
        hosts: u64,
        /// The widest prefix allowed.
        max: u8,
    },
}

impl Cidr {
    /// A block from an address and a prefix length (0 to 32). Host bits
    /// are cleared. Blocks wider than [`MAX_SWEEP_PREFIX`] are refused.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Cidr, CidrError> {
        let c = Cidr::allow_large(addr, prefix)?;
        if prefix < MAX_SWEEP_PREFIX {
            return Err(CidrError::TooLarge {
                prefix,
                hosts: c.host_count(),
                max: MAX_SWEEP_PREFIX,
            });
        }
        Ok(c)
    }

    /// Like [`new`](Self::new) without the size cap.
    pub fn allow_large(addr: Ipv4Addr, prefix: u8) -> Result<Cidr, CidrError> {
        if prefix > 32 {
            return Err(CidrError::BadPrefix(prefix.to_string()));
        }
        let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        Ok(Cidr { network, prefix })
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside the block.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.network)
    }

    /// The first and last host addresses: the network and broadcast
    /// addresses are left out, except in /31 and /32 blocks.
    fn host_range(&self) -> (u32, u32) {
        let first = u32::from(self.network);
        let last = first | !mask(self.prefix);
        if self.prefix >= 31 {
            (first, last)
        } else {
            (first + 1, last - 1)
        }
    }

    /// How many host addresses [`hosts`](Self::hosts) yields.
    pub fn host_count(&self) -> u64 {
        let (a, b) = self.host_range();
        u64::from(b - a) + 1
    }

    /// The host addresses, in order.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let (a, b) = self.host_range();
        (a..=b).map(Ipv4Addr::from)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `A.B.C.D/N`, capped at [`MAX_SWEEP_PREFIX`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::NoPrefix(s.to_owned()))?;
        let addr: Ipv4Addr = addr
            .trim()
            .parse()
            .map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        let prefix: u8 = prefix
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| CidrError::BadPrefix(prefix.to_owned()))?;
        Cidr::new(addr, prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Cidr, CidrError> {
        s.parse()
    }

    #[test]
    fn parses_and_lists_hosts() {
        let c = parse("127.62.1.77/24").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.to_string(), "127.62.1.0/24");
        assert_eq!(c.host_count(), 254);
        let hosts: Vec<_> = c.hosts().collect();
        assert_eq!(hosts.first(), Some(&Ipv4Addr::new(127, 62, 1, 1)));
        assert_eq!(hosts.last(), Some(&Ipv4Addr::new(127, 62, 1, 254)));
        assert!(c.contains(Ipv4Addr::new(127, 62, 1, 255)));
        assert!(!c.contains(Ipv4Addr::new(127, 62, 2, 1)));
        let one = parse("10.0.0.5/32").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            one.hosts().collect::<Vec<_>>(),
            vec![Ipv4Addr::new(10, 0, 0, 5)]
        );
        let two = parse(" 10.0.0.4/31 ").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(two.host_count(), 2);
        let p30 = parse("10.0.0.4/30").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p30.host_count(), 2);
        let p16 = parse("10.1.2.3/16").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p16.host_count(), 65_534);
    }

    #[test]
    fn errors_say_what_to_write() {
        assert!(matches!(parse("10.0.0.0"), Err(CidrError::NoPrefix(_))));
        assert!(matches!(parse("10.0.0/24"), Err(CidrError::BadAddress(_))));
        assert!(matches!(parse("::1/64"), Err(CidrError::BadAddress(_))));
        assert!(matches!(parse("10.0.0.0/33"), Err(CidrError::BadPrefix(_))));
        assert!(matches!(parse("10.0.0.0/x"), Err(CidrError::BadPrefix(_))));
        let e = parse("10.0.0.0/8").map(|_| ()).unwrap_err_or_default();
        assert!(e.contains("more than a sweep should probe"), "{e}");
        let wide = Cidr::allow_large(Ipv4Addr::new(10, 0, 0, 0), 8);
        assert_eq!(wide.map(|c| c.host_count()), Ok(16_777_214));
        assert_eq!(
            Cidr::allow_large(Ipv4Addr::UNSPECIFIED, 0).map(|c| c.host_count()),
            Ok(u64::from(u32::MAX) - 1)
        );
    }

    trait ErrText {
        fn unwrap_err_or_default(self) -> String;
    }
    impl ErrText for Result<(), CidrError> {
        fn unwrap_err_or_default(self) -> String {
            self.err().map(|e| e.to_string()).unwrap_or_default()
        }
    }
}
