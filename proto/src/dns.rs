//! The few parts of DNS (RFC 1035) that mDNS (RFC 6762) on `_miio._udp`
//! needs, for both sides: the browser's query and response parser, and the
//! announcer's question parser and record builder.
//!
//! **What it does.** Builds headers, questions (with the mDNS
//! unicast-response bit) and resource records (with the mDNS cache-flush
//! bit), always with uncompressed names. Parses whole messages
//! ([`parse`]) or only their header and questions ([`parse_query`]),
//! following name compression pointers. Every length and pointer from the
//! wire is checked: a truncated buffer is [`DnsError::Truncated`], and a
//! pointer loop, a pointer past the end, a reserved label type or a name
//! longer than 255 bytes is [`DnsError::BadName`]. Nothing panics on
//! input from the wire.
//!
//! **What it does not do.** No IO and no clock; no name compression when
//! building; no EDNS, no IPv6 (AAAA) records and no TXT parsing: record
//! types other than PTR, SRV and A are kept as [`RData::Other`] with their
//! type only. Names are compared by the callers (mDNS names are
//! case-insensitive); labels that are not UTF-8 are decoded lossily.

use std::net::Ipv4Addr;

/// Record type A.
pub const TYPE_A: u16 = 1;
/// Record type PTR.
pub const TYPE_PTR: u16 = 12;
/// Record type TXT.
pub const TYPE_TXT: u16 = 16;
/// Record type SRV.
pub const TYPE_SRV: u16 = 33;
/// Query type ANY (`*`).
pub const TYPE_ANY: u16 = 255;
/// Class IN.
pub const CLASS_IN: u16 = 1;
/// The top bit of a question's class in mDNS: the asker wants a unicast reply (QU).
pub const UNICAST_RESPONSE: u16 = 0x8000;
/// The top bit of a record's class in mDNS: the record replaces cached ones.
pub const CACHE_FLUSH: u16 = 0x8000;
/// Header flag QR: the message is a response.
pub const FLAG_RESPONSE: u16 = 0x8000;
/// Header flag AA: the answer is authoritative (always set in mDNS responses).
pub const FLAG_AUTHORITATIVE: u16 = 0x0400;

/// The size of the fixed header.
pub const HEADER_LEN: usize = 12;
/// Compression pointers followed in one name before it is called a loop.
const MAX_JUMPS: usize = 32;
/// The longest name accepted, in bytes of its dotted form.
const MAX_NAME: usize = 255;
/// The longest label written; longer ones are cut.
const MAX_LABEL: usize = 63;

/// Why a datagram is not a DNS message we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The message ends in the middle of something.
    #[error("DNS message truncated")]
    Truncated,
    /// A name is malformed (bad label, pointer loop or out of range, too long).
    #[error("malformed DNS name")]
    BadName,
}

/// The fixed header, as written by [`Header::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// The message id (0 in multicast mDNS; a legacy unicast reply echoes the query's).
    pub id: u16,
    /// The flags word, e.g. [`FLAG_RESPONSE`] | [`FLAG_AUTHORITATIVE`].
    pub flags: u16,
    /// Number of questions that follow.
    pub questions: u16,
    /// Number of answer records.
    pub answers: u16,
    /// Number of authority records.
    pub authority: u16,
    /// Number of additional records.
    pub additional: u16,
}

impl Header {
    /// Append the 12 header bytes.
    pub fn put(&self, out: &mut Vec<u8>) {
        for word in [
            self.id,
            self.flags,
            self.questions,
            self.answers,
            self.authority,
            self.additional,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }
}

/// A question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name, dotted, without the final dot, e.g. `_miio._udp.local`.
    pub name: String,
    /// Query type.
    pub qtype: u16,
    /// Whether the class had the mDNS [`UNICAST_RESPONSE`] bit (QU).
    pub unicast_response: bool,
}

/// A resource record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// A pointer to another name.
    Ptr(String),
    /// A service location (priority and weight are written as 0 and not kept).
    Srv {
        /// The port.
        port: u16,
        /// The host name.
        target: String,
    },
    /// An IPv4 address.
    A(Ipv4Addr),
    /// Anything else, by type (TXT included; its data is not kept). Also
    /// an A record whose data is not 4 bytes, or an SRV record shorter
    /// than 7.
    Other(u16),
}

impl RData {
    /// The record type this data goes with.
    pub fn rtype(&self) -> u16 {
        match self {
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv { .. } => TYPE_SRV,
            RData::A(_) => TYPE_A,
            RData::Other(t) => *t,
        }
    }

    /// The wire form of the data (no length prefix); empty for
    /// [`RData::Other`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            RData::Ptr(name) => put_name(&mut out, name),
            RData::Srv { port, target } => {
                // Priority 0, weight 0.
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(&port.to_be_bytes());
                put_name(&mut out, target);
            }
            RData::A(ip) => out.extend_from_slice(&ip.octets()),
            RData::Other(_) => {}
        }
        out
    }
}

/// A resource record from any section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The owner name, dotted, without the final dot.
    pub name: String,
    /// Whether the class had the mDNS [`CACHE_FLUSH`] bit.
    pub cache_flush: bool,
    /// Time to live, in seconds.
    pub ttl: u32,
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

/// The header and questions of a message, from [`parse_query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The message id.
    pub id: u16,
    /// Whether it is a response (QR bit).
    pub response: bool,
    /// The questions.
    pub questions: Vec<Question>,
}

/// Append `name` (dotted; a trailing dot is allowed) as uncompressed labels.
/// Empty labels are skipped and labels longer than 63 bytes are cut to 63.
pub fn put_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let b = label.as_bytes();
        let n = b.len().min(MAX_LABEL);
        out.push(n as u8);
        out.extend_from_slice(&b[..n]);
    }
    out.push(0);
}

/// Append a question for `name`, class IN; `unicast_response` sets the QU bit.
pub fn put_question(out: &mut Vec<u8>, name: &str, qtype: u16, unicast_response: bool) {
    put_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    let class = if unicast_response {
        CLASS_IN | UNICAST_RESPONSE
    } else {
        CLASS_IN
    };
    out.extend_from_slice(&class.to_be_bytes());
}

/// Append a resource record, class IN; `cache_flush` sets the mDNS
/// cache-flush bit. `rdata` is written as given (see [`RData::to_bytes`]);
/// data longer than 65,535 bytes is cut to that.
pub fn put_record(
    out: &mut Vec<u8>,
    name: &str,
    rtype: u16,
    cache_flush: bool,
    ttl: u32,
    rdata: &[u8],
) {
    put_name(out, name);
    out.extend_from_slice(&rtype.to_be_bytes());
    let class = if cache_flush {
        CLASS_IN | CACHE_FLUSH
    } else {
        CLASS_IN
    };
    out.extend_from_slice(&class.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let len = u16::try_from(rdata.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&rdata[..usize::from(len)]);
}

/// A one-question query. `unicast_response` sets the QU bit.
pub fn query(id: u16, name: &str, qtype: u16, unicast_response: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    Header {
        id,
        questions: 1,
        ..Header::default()
    }
    .put(&mut out);
    put_question(&mut out, name, qtype, unicast_response);
    out
}

fn u16_at(buf: &[u8], at: usize) -> Result<u16, DnsError> {
    match buf.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(DnsError::Truncated),
    }
}

fn u32_at(buf: &[u8], at: usize) -> Result<u32, DnsError> {
    match buf.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(DnsError::Truncated),
    }
}

/// Read a possibly compressed name at `at`; returns it (dotted, without
/// the final dot, the root as `""`) and the offset just after it where it
/// started (after the first pointer, if any).
///
/// At most 32 pointers are followed, each must point inside `buf`, and the
/// name may be at most 255 bytes long.
pub fn read_name(buf: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
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

/// The header fields read: id, flags, question count, record count (all
/// sections).
fn read_header(buf: &[u8]) -> Result<(u16, u16, u16, usize), DnsError> {
    if buf.len() < HEADER_LEN {
        return Err(DnsError::Truncated);
    }
    let records =
        usize::from(u16_at(buf, 6)?) + usize::from(u16_at(buf, 8)?) + usize::from(u16_at(buf, 10)?);
    Ok((u16_at(buf, 0)?, u16_at(buf, 2)?, u16_at(buf, 4)?, records))
}

/// Read `count` questions from `at`; returns them and the offset after.
fn read_questions(
    buf: &[u8],
    mut at: usize,
    count: u16,
) -> Result<(Vec<Question>, usize), DnsError> {
    let mut questions = Vec::new();
    for _ in 0..count {
        let (name, next) = read_name(buf, at)?;
        let qtype = u16_at(buf, next)?;
        let class = u16_at(buf, next + 2)?;
        questions.push(Question {
            name,
            qtype,
            unicast_response: class & UNICAST_RESPONSE != 0,
        });
        at = next + 4;
    }
    Ok((questions, at))
}

/// Parse the header and the questions only; the records that follow (the
/// known answers of an mDNS query) are not read, so they cannot make it
/// fail. What a responder needs.
pub fn parse_query(buf: &[u8]) -> Result<Query, DnsError> {
    let (id, flags, qd, _) = read_header(buf)?;
    let (questions, _) = read_questions(buf, HEADER_LEN, qd)?;
    Ok(Query {
        id,
        response: flags & FLAG_RESPONSE != 0,
        questions,
    })
}

/// Parse a whole message. Records whose data cannot be read make the whole
/// message fail: a half-read message is not trusted.
pub fn parse(buf: &[u8]) -> Result<Message, DnsError> {
    let (id, flags, qd, rr) = read_header(buf)?;
    let (questions, mut at) = read_questions(buf, HEADER_LEN, qd)?;
    let mut records = Vec::new();
    for _ in 0..rr {
        let (name, next) = read_name(buf, at)?;
        let rtype = u16_at(buf, next)?;
        let class = u16_at(buf, next + 2)?;
        let ttl = u32_at(buf, next + 4)?;
        let rdlen = usize::from(u16_at(buf, next + 8)?);
        let start = next + 10;
        let rdata = buf.get(start..start + rdlen).ok_or(DnsError::Truncated)?;
        let data = match (rtype, rdata) {
            (TYPE_PTR, _) => RData::Ptr(read_name(buf, start)?.0),
            (TYPE_SRV, _) if rdlen >= 7 => RData::Srv {
                port: u16_at(rdata, 4)?,
                target: read_name(buf, start + 6)?.0,
            },
            (TYPE_A, &[a, b, c, d]) => RData::A(Ipv4Addr::new(a, b, c, d)),
            (other, _) => RData::Other(other),
        };
        records.push(Record {
            name,
            cache_flush: class & CACHE_FLUSH != 0,
            ttl,
            data,
        });
        at = start + rdlen;
    }
    Ok(Message {
        id,
        response: flags & FLAG_RESPONSE != 0,
        questions,
        records,
    })
}

/// Whether a parsed name survives [`put_name`] and [`read_name`] unchanged:
/// ASCII, with no empty label (the root, `""`, is fine).
fn is_plain_name(name: &str) -> bool {
    name.is_empty() || (name.is_ascii() && name.split('.').all(|l| !l.is_empty()))
}

/// Round-trip properties of the parser and builders, for the `dns` fuzz
/// target (`fuzz/`) and the test that replays its seed corpus.
///
/// Any datagram: neither parser panics; whatever [`parse`] accepts,
/// [`parse_query`] accepts with the same header and questions; and a
/// message whose names are plain ASCII, rebuilt with [`Header`],
/// [`put_question`] and [`put_record`] (all records as answers), parses
/// back to the same message. Returns `Err` with a description when a
/// property is violated.
pub fn roundtrip(data: &[u8]) -> Result<(), String> {
    let query = parse_query(data);
    let Ok(m) = parse(data) else {
        return Ok(());
    };
    let q = query.map_err(|e| format!("parse accepts a message parse_query rejects: {e}"))?;
    if (q.id, q.response, &q.questions) != (m.id, m.response, &m.questions) {
        return Err(format!("parse_query and parse disagree: {q:?} vs {m:?}"));
    }
    let mut names = m
        .questions
        .iter()
        .map(|q| q.name.as_str())
        .chain(m.records.iter().flat_map(|r| {
            let target = match &r.data {
                RData::Ptr(t) | RData::Srv { target: t, .. } => Some(t.as_str()),
                _ => None,
            };
            std::iter::once(r.name.as_str()).chain(target)
        }));
    if !names.all(is_plain_name) {
        return Ok(());
    }
    let (Ok(questions), Ok(answers)) = (
        u16::try_from(m.questions.len()),
        u16::try_from(m.records.len()),
    ) else {
        return Ok(());
    };
    let mut out = Vec::new();
    Header {
        id: m.id,
        flags: if m.response { FLAG_RESPONSE } else { 0 },
        questions,
        answers,
        ..Header::default()
    }
    .put(&mut out);
    for q in &m.questions {
        put_question(&mut out, &q.name, q.qtype, q.unicast_response);
    }
    for r in &m.records {
        put_record(
            &mut out,
            &r.name,
            r.data.rtype(),
            r.cache_flush,
            r.ttl,
            &r.data.to_bytes(),
        );
    }
    let back = parse(&out).map_err(|e| format!("rebuilt message does not parse: {e}"))?;
    if back != m {
        return Err(format!("rebuilt message changed: {m:?} -> {back:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(r: Result<T, DnsError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn query_round_trips() {
        let q = query(7, "_miio._udp.local.", TYPE_PTR, false);
        let m = ok(parse(&q));
        assert_eq!(m.id, 7);
        assert!(!m.response);
        assert_eq!(
            m.questions,
            vec![Question {
                name: "_miio._udp.local".into(),
                qtype: TYPE_PTR,
                unicast_response: false,
            }]
        );
        assert!(m.records.is_empty());
        assert_eq!(
            ok(parse_query(&q)),
            Query {
                id: 7,
                response: false,
                questions: m.questions,
            }
        );
    }

    #[test]
    fn unicast_response_bit() {
        let q = query(0, "_miio._udp.local", TYPE_PTR, true);
        // The class word is the last two bytes: IN with the top bit set.
        assert_eq!(q[q.len() - 2..], [0x80, 0x01]);
        let parsed = ok(parse_query(&q));
        assert!(parsed.questions[0].unicast_response);
        // Two questions, QM then QU, as a responder sees them.
        let mut b = Vec::new();
        Header {
            questions: 2,
            ..Header::default()
        }
        .put(&mut b);
        put_question(&mut b, "_services._dns-sd._udp.local", TYPE_ANY, false);
        put_question(&mut b, "_miio._udp.local", TYPE_PTR, true);
        let parsed = ok(parse_query(&b));
        assert_eq!(
            parsed
                .questions
                .iter()
                .map(|q| (q.name.as_str(), q.qtype, q.unicast_response))
                .collect::<Vec<_>>(),
            [
                ("_services._dns-sd._udp.local", TYPE_ANY, false),
                ("_miio._udp.local", TYPE_PTR, true)
            ]
        );
    }

    #[test]
    fn names_are_cut_and_trimmed() {
        let mut b = Vec::new();
        put_name(&mut b, "a..b.");
        assert_eq!(b, [1, b'a', 1, b'b', 0]);
        let mut b = Vec::new();
        put_name(&mut b, "");
        assert_eq!(b, [0]);
        assert_eq!(ok(read_name(&b, 0)), (String::new(), 1));
        let long = "x".repeat(70);
        let mut b = Vec::new();
        put_name(&mut b, &long);
        assert_eq!(b[0], 63);
        assert_eq!(ok(read_name(&b, 0)).0, "x".repeat(63));
    }

    #[test]
    fn records_with_cache_flush() {
        let mut b = Vec::new();
        Header {
            id: 0,
            flags: FLAG_RESPONSE | FLAG_AUTHORITATIVE,
            answers: 1,
            additional: 3,
            ..Header::default()
        }
        .put(&mut b);
        assert_eq!(b, [0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 3]);
        let ptr = RData::Ptr("dev_miio1._miio._udp.local".into());
        put_record(
            &mut b,
            "_miio._udp.local",
            ptr.rtype(),
            false,
            120,
            &ptr.to_bytes(),
        );
        let srv = RData::Srv {
            port: 54321,
            target: "dev_miio1.local".into(),
        };
        let srv_at = b.len();
        put_record(
            &mut b,
            "dev_miio1._miio._udp.local",
            TYPE_SRV,
            true,
            120,
            &srv.to_bytes(),
        );
        put_record(
            &mut b,
            "dev_miio1._miio._udp.local",
            TYPE_TXT,
            true,
            120,
            &[0],
        );
        let a = RData::A(Ipv4Addr::new(127, 0, 0, 5));
        put_record(&mut b, "dev_miio1.local", TYPE_A, true, 120, &a.to_bytes());
        // The SRV record's fixed part: type 33, class IN | flush, TTL 120, 6 + name bytes.
        let fixed = srv_at + "dev_miio1._miio._udp.local".len() + 2;
        assert_eq!(
            b[fixed..fixed + 10],
            [0, 33, 0x80, 1, 0, 0, 0, 120, 0, 6 + 17]
        );
        let m = ok(parse(&b));
        assert!(m.response);
        let rec = |name: &str, cache_flush, data| Record {
            name: name.into(),
            cache_flush,
            ttl: 120,
            data,
        };
        assert_eq!(
            m.records,
            [
                rec("_miio._udp.local", false, ptr),
                rec("dev_miio1._miio._udp.local", true, srv),
                rec("dev_miio1._miio._udp.local", true, RData::Other(TYPE_TXT)),
                rec("dev_miio1.local", true, a),
            ]
        );
        // parse_query stops after the (absent) questions.
        assert!(ok(parse_query(&b)).questions.is_empty());
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
        let m = ok(parse(&b));
        assert!(m.response);
        assert_eq!(
            m.records,
            vec![
                Record {
                    name: "_miio._udp.local".into(),
                    cache_flush: false,
                    ttl: 4500,
                    data: RData::Ptr("yeelink-light-color1_miio123456789._miio._udp.local".into())
                },
                Record {
                    name: "yeelink-light-color1_miio123456789._miio._udp.local".into(),
                    cache_flush: true,
                    ttl: 120,
                    data: RData::Srv {
                        port: 54321,
                        target: "host1.local".into()
                    }
                },
                Record {
                    name: "host1.local".into(),
                    cache_flush: true,
                    ttl: 120,
                    data: RData::A(Ipv4Addr::new(127, 62, 9, 4))
                },
            ]
        );
        assert_eq!(roundtrip(&b), Ok(()));
        // Every truncation fails cleanly.
        for n in 0..b.len() {
            assert_eq!(
                parse(&b[..n]),
                Err(DnsError::Truncated),
                "prefix of {n} bytes"
            );
        }
        // The question alone still reads when the records are cut off.
        let q = ok(parse_query(&b[..service_at + 22]));
        assert_eq!(q.questions[0].name, "_miio._udp.local");
        for n in 0..service_at + 22 {
            assert_eq!(parse_query(&b[..n]), Err(DnsError::Truncated));
        }
    }

    #[test]
    fn pointer_loops_and_junk_are_rejected() {
        let head = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let with = |tail: &[u8]| [&head[..], tail].concat();
        // A pointer to itself.
        let b = with(&[0xc0, 12, 0, 12, 0, 1]);
        assert_eq!(parse(&b), Err(DnsError::BadName));
        assert_eq!(parse_query(&b), Err(DnsError::BadName));
        // Two pointers to each other, after a label.
        let b = with(&[1, b'a', 0xc0, 16, 0xc0, 14, 0, 12, 0, 1]);
        assert_eq!(parse_query(&b), Err(DnsError::BadName));
        // Pointers past the end: far, and just past the last byte.
        let b = with(&[0xc3, 0xff, 0, 12, 0, 1]);
        assert_eq!(parse_query(&b), Err(DnsError::BadName));
        let b = with(&[0xc0, 14]);
        assert_eq!(read_name(&b, 12), Err(DnsError::BadName));
        // A pointer missing its second byte.
        assert_eq!(read_name(&with(&[0xc0]), 12), Err(DnsError::Truncated));
        // Reserved label types 0x40 and 0x80.
        assert_eq!(
            parse(&with(&[0x80, 1, 0, 12, 0, 1])),
            Err(DnsError::BadName)
        );
        assert_eq!(
            parse(&with(&[0x41, 1, 0, 12, 0, 1])),
            Err(DnsError::BadName)
        );
        // A name longer than 255 bytes, built from pointers to one label.
        let mut b = head.to_vec();
        b.push(63);
        b.extend_from_slice(&[b'x'; 63]);
        b.extend_from_slice(&[0xc0, 12]);
        assert_eq!(read_name(&b, 12), Err(DnsError::BadName));
        // Random junk: errors, never a panic, and the round trip holds.
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
            assert_eq!(roundtrip(&junk), Ok(()));
            let _ = read_name(&junk, len / 2);
        }
    }

    #[test]
    fn header_and_lengths_are_checked() {
        assert_eq!(parse(&[0; 11]), Err(DnsError::Truncated));
        assert_eq!(parse_query(&[0; 11]), Err(DnsError::Truncated));
        assert!(ok(parse(&[0; 12])).questions.is_empty());
        // One record announced, its data length past the end.
        let mut b = Vec::new();
        Header {
            answers: 1,
            ..Header::default()
        }
        .put(&mut b);
        put_record(&mut b, "h.local", TYPE_A, false, 1, &[127, 0, 0, 1]);
        let n = b.len();
        b[n - 5] = 5;
        assert_eq!(parse(&b), Err(DnsError::Truncated));
        // An A record whose data is not 4 bytes is kept as Other.
        b[n - 5] = 3;
        assert_eq!(ok(parse(&b[..n - 1])).records[0].data, RData::Other(TYPE_A));
        // Oversized data is cut to what the length field can say.
        let mut b = Vec::new();
        put_record(&mut b, "", TYPE_TXT, false, 0, &vec![1; 70_000]);
        assert_eq!(b.len(), 1 + 10 + usize::from(u16::MAX));
    }
}
