//! The few parts of DNS (RFC 1035) that an mDNS browse needs: a PTR query,
//! and a bounds-checked parser for responses with name compression.
//!
//! Pure functions over bytes, no IO. Every length and pointer from the
//! wire is checked; compression loops are cut off after a fixed number of
//! jumps. Record types other than PTR, SRV, TXT and A are kept as
//! [`RData::Other`].

use std::net::Ipv4Addr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type PTR.
pub const TYPE_PTR: u16 = 12;
/// Record type TXT.
pub const TYPE_TXT: u16 = 16;
/// Record type SRV.
pub const TYPE_SRV: u16 = 33;
/// Class IN.
pub const CLASS_IN: u16 = 1;

const HEADER: usize = 12;
const MAX_JUMPS: usize = 32;
const MAX_NAME: usize = 255;

/// Why a datagram is not a DNS message we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The message ends in the middle of something.
    #[error("DNS message truncated")]
    Truncated,
    /// A name is malformed (bad label, pointer loop, too long).
    #[error("malformed DNS name")]
    BadName,
}

/// A question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name, dotted, without the final dot, e.g. `_miio._udp.local`.
    pub name: String,
    /// Query type.
    pub qtype: u16,
}

/// A resource record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// A pointer to another name.
    Ptr(String),
    /// A service location.
    Srv {
        /// The port.
        port: u16,
        /// The host name.
        target: String,
    },
    /// An IPv4 address.
    A(Ipv4Addr),
    /// Anything else (TXT included; not used).
    Other(u16),
}

/// A resource record from any section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name, dotted, without the final dot.
    pub name: String,
    /// The data.
    pub data: RData,
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message id.
    pub id: u16,
    /// Whether it is a response (QR bit).
    pub response: bool,
    /// The questions.
    pub questions: Vec<Question>,
    /// Answer, authority and additional records, in that order.
    pub records: Vec<Record>,
}

/// Append `name` (dotted; a trailing dot is allowed) as uncompressed labels.
/// Labels longer than 63 bytes are cut to 63.
pub fn put_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let b = label.as_bytes();
        let n = b.len().min(63);
        out.push(n as u8);
        out.extend_from_slice(&b[..n]);
    }
    out.push(0);
}

/// A one-question query. `unicast_response` sets the QU bit.
pub fn query(id: u16, name: &str, qtype: u16, unicast_response: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    put_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    let class = if unicast_response {
        CLASS_IN | 0x8000
    } else {
        CLASS_IN
    };
    out.extend_from_slice(&class.to_be_bytes());
    out
}

fn u16_at(buf: &[u8], at: usize) -> Result<u16, DnsError> {
    match buf.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DnsError::Truncated),
    }
}

/// Read a possibly compressed name at `at`; returns it and the offset
/// just after it in the original position.
fn read_name(buf: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *buf.get(at).ok_or(DnsError::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let next = end.unwrap_or(at + 1);
                    return Ok((name, next));
                }
                let label = buf
                    .get(at + 1..at + 1 + usize::from(len))
                    .ok_or(DnsError::Truncated)?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label));
                if name.len() > MAX_NAME {
                    return Err(DnsError::BadName);
                }
                at += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *buf.get(at + 1).ok_or(DnsError::Truncated)?;
                let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                jumps += 1;
                if jumps > MAX_JUMPS || target >= buf.len() {
                    return Err(DnsError::BadName);
                }
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return Err(DnsError::BadName),
        }
    }
}

/// Parse a message. Records whose data cannot be read make the whole
/// message fail: a half-read message is not trusted.
pub fn parse(buf: &[u8]) -> Result<Message, DnsError> {
    if buf.len() < HEADER {
        return Err(DnsError::Truncated);
    }
    let id = u16_at(buf, 0)?;
    let flags = u16_at(buf, 2)?;
    let qd = u16_at(buf, 4)?;
    let rr =
        usize::from(u16_at(buf, 6)?) + usize::from(u16_at(buf, 8)?) + usize::from(u16_at(buf, 10)?);
    let mut at = HEADER;
    let mut questions = Vec::new();
    for _ in 0..qd {
        let (name, next) = read_name(buf, at)?;
        let qtype = u16_at(buf, next)?;
        u16_at(buf, next + 2)?;
        questions.push(Question { name, qtype });
        at = next + 4;
    }
    let mut records = Vec::new();
    for _ in 0..rr {
        let (name, next) = read_name(buf, at)?;
        let rtype = u16_at(buf, next)?;
        let rdlen = usize::from(u16_at(buf, next + 8)?);
        let start = next + 10;
        let rdata = buf.get(start..start + rdlen).ok_or(DnsError::Truncated)?;
        let data = match rtype {
            TYPE_PTR => RData::Ptr(read_name(buf, start)?.0),
            TYPE_SRV if rdlen >= 7 => RData::Srv {
                port: u16_at(rdata, 4)?,
                target: read_name(buf, start + 6)?.0,
            },
            TYPE_A if rdlen == 4 => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
            other => RData::Other(other),
        };
        records.push(Record { name, data });
        at = start + rdlen;
    }
    Ok(Message {
        id,
        response: flags & 0x8000 != 0,
        questions,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips() {
        let q = query(7, "_miio._udp.local.", TYPE_PTR, false);
        let m = parse(&q).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.id, 7);
        assert!(!m.response);
        assert_eq!(
            m.questions,
            vec![Question {
                name: "_miio._udp.local".into(),
                qtype: TYPE_PTR
            }]
        );
        assert!(m.records.is_empty());
    }

    /// A response as real responders write it: compression pointers into
    /// the question and into earlier records.
    #[test]
    fn compressed_response() {
        let mut b = vec![0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 2];
        let service_at = b.len();
        put_name(&mut b, "_miio._udp.local");
        b.extend_from_slice(&[0, 12, 0, 1]);
        // PTR: owner = pointer to the service, rdata = instance label + pointer.
        b.extend_from_slice(&[0xc0, service_at as u8, 0, 12, 0, 1, 0, 0, 0x11, 0x94]);
        let label = b"yeelink-light-color1_miio123456789";
        b.extend_from_slice(&((label.len() + 3) as u16).to_be_bytes());
        let instance_at = b.len();
        b.push(label.len() as u8);
        b.extend_from_slice(label);
        b.extend_from_slice(&[0xc0, service_at as u8]);
        // SRV: owner = pointer to the instance; target = host label + "local" pointer.
        b.extend_from_slice(&[0xc0, instance_at as u8, 0, 33, 0x80, 1, 0, 0, 0, 120]);
        let host = b"host1";
        b.extend_from_slice(&((6 + 1 + host.len() + 2) as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0xd4, 0x31]);
        b.push(host.len() as u8);
        b.extend_from_slice(host);
        b.extend_from_slice(&[0xc0, (service_at + 11) as u8]);
        // A for host1.local (uncompressed owner).
        put_name(&mut b, "host1.local");
        b.extend_from_slice(&[0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4, 127, 62, 9, 4]);
        let m = parse(&b).unwrap_or_else(|e| panic!("{e}"));
        assert!(m.response);
        assert_eq!(
            m.records,
            vec![
                Record {
                    name: "_miio._udp.local".into(),
                    data: RData::Ptr("yeelink-light-color1_miio123456789._miio._udp.local".into())
                },
                Record {
                    name: "yeelink-light-color1_miio123456789._miio._udp.local".into(),
                    data: RData::Srv {
                        port: 54321,
                        target: "host1.local".into()
                    }
                },
                Record {
                    name: "host1.local".into(),
                    data: RData::A(Ipv4Addr::new(127, 62, 9, 4))
                },
            ]
        );
        // Every truncation fails cleanly.
        for n in 0..b.len() {
            assert!(parse(&b[..n]).is_err(), "prefix of {n} bytes parsed");
        }
    }

    #[test]
    fn pointer_loops_and_junk_are_rejected() {
        let mut b = vec![0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1]);
        assert_eq!(parse(&b), Err(DnsError::BadName));
        let mut b = vec![0, 0, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0x80, 1, 0, 12, 0, 1]);
        assert_eq!(parse(&b), Err(DnsError::BadName));
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let len = (x % 80) as usize;
            let junk: Vec<u8> = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> (i % 8)) as u8
                })
                .collect();
            let _ = parse(&junk);
        }
    }
}
