//! The Kafka wire format for the group APIs a Connect worker speaks (fixed, non-flexible
//! versions: ApiVersions v0, FindCoordinator v1, JoinGroup v5, SyncGroup v3, Heartbeat v3,
//! LeaveGroup v3) and Kafka Connect's own member metadata and assignment (V0 eager, V1/V2
//! incremental cooperative), big-endian as Java's `Struct` writes them.

use std::fmt;

/// A malformed or truncated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

/// API keys.
pub mod api {
    /// FindCoordinator.
    pub const FIND_COORDINATOR: i16 = 10;
    /// JoinGroup.
    pub const JOIN_GROUP: i16 = 11;
    /// Heartbeat.
    pub const HEARTBEAT: i16 = 12;
    /// LeaveGroup.
    pub const LEAVE_GROUP: i16 = 13;
    /// SyncGroup.
    pub const SYNC_GROUP: i16 = 14;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
    /// SaslHandshake.
    pub const SASL_HANDSHAKE: i16 = 17;
    /// SaslAuthenticate.
    pub const SASL_AUTHENTICATE: i16 = 36;
}

/// The versions this client sends, by API key.
pub const VERSIONS: [(i16, i16); 8] = [
    (api::SASL_HANDSHAKE, 1),
    (api::SASL_AUTHENTICATE, 1),
    (api::FIND_COORDINATOR, 1),
    (api::JOIN_GROUP, 5),
    (api::HEARTBEAT, 3),
    (api::LEAVE_GROUP, 3),
    (api::SYNC_GROUP, 3),
    (api::API_VERSIONS, 0),
];

/// Builds a message field by field.
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// `i8`.
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.0.push(v as u8);
        self
    }
    /// `i16`.
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `i32`.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `i64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// `STRING`: i16 length + UTF-8.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.i16(s.len().min(i16::MAX as usize) as i16);
        self.0
            .extend_from_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
        self
    }
    /// `NULLABLE_STRING`: -1 for `None`.
    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.i16(-1),
        }
    }
    /// `BYTES`: i32 length + bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.i32(b.len() as i32);
        self.0.extend_from_slice(b);
        self
    }
    /// `NULLABLE_BYTES`: -1 for `None`.
    pub fn opt_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            Some(b) => self.bytes(b),
            None => self.i32(-1),
        }
    }
}

/// Reads a message field by field.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError(format!(
                "truncated message: {what} needs {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// `i8`.
    pub fn i8(&mut self) -> Result<i8, WireError> {
        Ok(self.take(1, "an int8")?[0] as i8)
    }
    /// `i16`.
    pub fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2, "an int16")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    /// `i32`.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4, "an int32")?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// `i64`.
    pub fn i64(&mut self) -> Result<i64, WireError> {
        let b = self.take(8, "an int64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    /// `NULLABLE_STRING`.
    pub fn opt_str(&mut self) -> Result<Option<String>, WireError> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let b = self.take(n as usize, "a string")?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| WireError("a string is not UTF-8".into()))
    }
    /// `STRING` (null read as empty).
    pub fn str(&mut self) -> Result<String, WireError> {
        Ok(self.opt_str()?.unwrap_or_default())
    }
    /// `NULLABLE_BYTES`.
    pub fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize, "bytes")?.to_vec()))
    }
    /// `BYTES` (null read as empty).
    pub fn bytes(&mut self) -> Result<Vec<u8>, WireError> {
        Ok(self.opt_bytes()?.unwrap_or_default())
    }
    /// An array's element count (`None` for a null array); refuses counts the rest of the
    /// message cannot hold.
    pub fn count(&mut self) -> Result<Option<usize>, WireError> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        if n as usize > self.buf.len() {
            return Err(WireError(format!(
                "an array claims {n} elements in {} bytes",
                self.buf.len()
            )));
        }
        Ok(Some(n as usize))
    }
}

/// A request frame: size, header v1 (`api_key`, `api_version`, `correlation_id`,
/// `client_id`), body.
pub fn request(api_key: i16, correlation_id: i32, client_id: &str, body: &[u8]) -> Vec<u8> {
    let version = VERSIONS
        .iter()
        .find(|(k, _)| *k == api_key)
        .map_or(0, |(_, v)| *v);
    let mut w = Writer::default();
    w.i32(0)
        .i16(api_key)
        .i16(version)
        .i32(correlation_id)
        .opt_str(Some(client_id));
    w.0.extend_from_slice(body);
    let size = (w.0.len() - 4) as i32;
    w.0[..4].copy_from_slice(&size.to_be_bytes());
    w.0
}

/// One API a broker supports: `(api_key, min_version, max_version)`.
pub type ApiRange = (i16, i16, i16);

/// ApiVersions v0 response: the error code and the supported APIs.
pub fn api_versions(r: &mut Reader<'_>) -> Result<(i16, Vec<ApiRange>), WireError> {
    let error = r.i16()?;
    let n = r.count()?.unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((r.i16()?, r.i16()?, r.i16()?));
    }
    Ok((error, out))
}

/// SaslHandshake v1 response: the error code and the mechanisms the broker offers.
pub fn sasl_handshake(r: &mut Reader<'_>) -> Result<(i16, Vec<String>), WireError> {
    let error = r.i16()?;
    let n = r.count()?.unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.str()?);
    }
    Ok((error, out))
}

/// SaslAuthenticate v1 response: the error code, its message and the server's bytes.
pub fn sasl_authenticate(r: &mut Reader<'_>) -> Result<(i16, Option<String>, Vec<u8>), WireError> {
    let error = r.i16()?;
    let message = r.opt_str()?;
    let bytes = r.bytes()?;
    let _session_lifetime_ms = r.i64()?;
    Ok((error, message, bytes))
}

/// FindCoordinator v1 request for group `group`.
pub fn find_coordinator(group: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(group).i8(0);
    w.0
}

/// FindCoordinator v1 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// Error code.
    pub error: i16,
    /// Its node id.
    pub node_id: i32,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: i32,
}

/// Reads a FindCoordinator v1 response.
pub fn coordinator(r: &mut Reader<'_>) -> Result<Coordinator, WireError> {
    let _throttle = r.i32()?;
    let error = r.i16()?;
    let _message = r.opt_str()?;
    Ok(Coordinator {
        error,
        node_id: r.i32()?,
        host: r.str()?,
        port: r.i32()?,
    })
}

/// A JoinGroup v5 request.
#[derive(Debug, Clone)]
pub struct JoinRequest<'a> {
    /// The group.
    pub group: &'a str,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// The member id (empty on the first join).
    pub member_id: &'a str,
    /// The protocol type (`connect`).
    pub protocol_type: &'a str,
    /// Protocols in preference order, with this member's metadata for each.
    pub protocols: &'a [(String, Vec<u8>)],
}

/// Encodes a JoinGroup v5 request.
pub fn join(j: &JoinRequest<'_>) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(j.group)
        .i32(j.session_timeout_ms)
        .i32(j.rebalance_timeout_ms)
        .str(j.member_id)
        .opt_str(None)
        .str(j.protocol_type)
        .i32(j.protocols.len() as i32);
    for (name, meta) in j.protocols {
        w.str(name).bytes(meta);
    }
    w.0
}

/// A JoinGroup v5 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// Error code.
    pub error: i16,
    /// The generation.
    pub generation: i32,
    /// The protocol the group chose.
    pub protocol: String,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member's id and metadata (the leader's response only).
    pub members: Vec<(String, Vec<u8>)>,
}

/// Reads a JoinGroup v5 response.
pub fn joined(r: &mut Reader<'_>) -> Result<JoinResponse, WireError> {
    let _throttle = r.i32()?;
    let error = r.i16()?;
    let generation = r.i32()?;
    let protocol = r.str()?;
    let leader = r.str()?;
    let member_id = r.str()?;
    let n = r.count()?.unwrap_or(0);
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.str()?;
        let _instance = r.opt_str()?;
        members.push((id, r.bytes()?));
    }
    Ok(JoinResponse {
        error,
        generation,
        protocol,
        leader,
        member_id,
        members,
    })
}

/// Encodes a SyncGroup v3 request (`assignments` empty unless this member leads).
pub fn sync(
    group: &str,
    generation: i32,
    member_id: &str,
    assignments: &[(String, Vec<u8>)],
) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(group)
        .i32(generation)
        .str(member_id)
        .opt_str(None)
        .i32(assignments.len() as i32);
    for (id, a) in assignments {
        w.str(id).bytes(a);
    }
    w.0
}

/// Reads a SyncGroup v3 response: error code and this member's assignment.
pub fn synced(r: &mut Reader<'_>) -> Result<(i16, Vec<u8>), WireError> {
    let _throttle = r.i32()?;
    let error = r.i16()?;
    Ok((error, r.bytes()?))
}

/// Encodes a Heartbeat v3 request.
pub fn heartbeat(group: &str, generation: i32, member_id: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(group).i32(generation).str(member_id).opt_str(None);
    w.0
}

/// Reads a Heartbeat v3 (or any `throttle, error` …) response's error code.
pub fn error_code(r: &mut Reader<'_>) -> Result<i16, WireError> {
    let _throttle = r.i32()?;
    r.i16()
}

/// Encodes a LeaveGroup v3 request for one member.
pub fn leave(group: &str, member_id: &str) -> Vec<u8> {
    let mut w = Writer::default();
    w.str(group).i32(1).str(member_id).opt_str(None);
    w.0
}

/// Kafka Connect's member metadata (`ConnectProtocol` V0, `IncrementalCooperativeConnectProtocol`
/// V1/V2), plus augur's rejoin counter after it (so a wanted rebalance always changes the
/// bytes; Java's reader ignores trailing bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerMetadata {
    /// 0 `default`, 1 `compatible`, 2 `sessioned`.
    pub version: i16,
    /// The worker's REST URL.
    pub url: String,
    /// The config topic offset this worker has read to.
    pub config_offset: i64,
    /// Its current assignment, encoded (V1+; `None` when it has none).
    pub allocation: Option<Vec<u8>>,
    /// augur's rejoin counter (absent in Java workers' metadata).
    pub rejoin: Option<i32>,
}

impl WorkerMetadata {
    /// Encodes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i16(self.version).str(&self.url).i64(self.config_offset);
        if self.version >= 1 {
            w.opt_bytes(self.allocation.as_deref());
        }
        if let Some(n) = self.rejoin {
            w.i32(n);
        }
        w.0
    }

    /// Decodes it.
    pub fn decode(b: &[u8]) -> Result<WorkerMetadata, WireError> {
        let mut r = Reader::new(b);
        let version = r.i16()?;
        if version < 0 {
            return Err(WireError(format!(
                "unknown Connect metadata version {version}"
            )));
        }
        let url = r.str()?;
        let config_offset = r.i64()?;
        let allocation = if version >= 1 { r.opt_bytes()? } else { None };
        let rejoin = if r.remaining() >= 4 {
            Some(r.i32()?)
        } else {
            None
        };
        Ok(WorkerMetadata {
            version,
            url,
            config_offset,
            allocation,
            rejoin,
        })
    }
}

/// Connectors (task id -1 = the connector itself) and their task ids.
pub type Units = Vec<(String, Vec<i32>)>;

/// Kafka Connect's assignment (`ConnectProtocol.Assignment` V0, `ExtendedAssignment` V1/V2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// 0 eager, 1/2 incremental.
    pub version: i16,
    /// 0 no error, 1 config mismatch.
    pub error: i16,
    /// The leader's member id.
    pub leader: String,
    /// The leader's REST URL.
    pub leader_url: String,
    /// The config offset the assignment was made at.
    pub config_offset: i64,
    /// What this member runs (incremental: what it newly runs).
    pub assigned: Units,
    /// What it must stop (V1+).
    pub revoked: Units,
    /// Milliseconds until the leader's follow-up rebalance (V1+; 0 = none).
    pub delay_ms: i32,
}

fn put_units(w: &mut Writer, units: &Units) {
    w.i32(units.len() as i32);
    for (c, tasks) in units {
        w.str(c).i32(tasks.len() as i32);
        for t in tasks {
            w.i32(*t);
        }
    }
}

fn get_units(r: &mut Reader<'_>) -> Result<Units, WireError> {
    let n = r.count()?.unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let c = r.str()?;
        let m = r.count()?.unwrap_or(0);
        let mut tasks = Vec::with_capacity(m);
        for _ in 0..m {
            tasks.push(r.i32()?);
        }
        out.push((c, tasks));
    }
    Ok(out)
}

impl Assignment {
    /// Encodes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.i16(self.version)
            .i16(self.error)
            .str(&self.leader)
            .str(&self.leader_url)
            .i64(self.config_offset);
        put_units(&mut w, &self.assigned);
        if self.version >= 1 {
            put_units(&mut w, &self.revoked);
            w.i32(self.delay_ms);
        }
        w.0
    }

    /// Decodes it.
    pub fn decode(b: &[u8]) -> Result<Assignment, WireError> {
        let mut r = Reader::new(b);
        let version = r.i16()?;
        if version < 0 {
            return Err(WireError(format!(
                "unknown Connect assignment version {version}"
            )));
        }
        let mut a = Assignment {
            version,
            error: r.i16()?,
            leader: r.str()?,
            leader_url: r.str()?,
            config_offset: r.i64()?,
            assigned: get_units(&mut r)?,
            ..Assignment::default()
        };
        if version >= 1 {
            a.revoked = get_units(&mut r)?;
            a.delay_ms = r.i32()?;
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_metadata_is_javas_layout() {
        let m = WorkerMetadata {
            version: 1,
            url: "http://w1:8083/".into(),
            config_offset: 7,
            allocation: None,
            rejoin: None,
        };
        let mut want = vec![0, 1, 0, 15];
        want.extend_from_slice(b"http://w1:8083/");
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(m.encode(), want);
        assert_eq!(WorkerMetadata::decode(&want).unwrap(), m);
        let with = WorkerMetadata {
            allocation: Some(vec![1, 2]),
            rejoin: Some(3),
            ..m
        };
        assert_eq!(WorkerMetadata::decode(&with.encode()).unwrap(), with);
    }

    #[test]
    fn assignments_round_trip_and_v0_has_no_revocations() {
        let a = Assignment {
            version: 1,
            error: 0,
            leader: "m-1".into(),
            leader_url: "http://a:1/".into(),
            config_offset: 42,
            assigned: vec![("src".into(), vec![-1, 0]), ("sink".into(), vec![2])],
            revoked: vec![("old".into(), vec![1])],
            delay_ms: 500,
        };
        assert_eq!(Assignment::decode(&a.encode()).unwrap(), a);
        let v0 = Assignment {
            version: 0,
            revoked: Vec::new(),
            delay_ms: 0,
            ..a.clone()
        };
        let bytes = v0.encode();
        assert_eq!(Assignment::decode(&bytes).unwrap(), v0);
        assert!(bytes.len() < a.encode().len());
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        for bytes in [
            &[][..],
            &[0, 1][..],
            &[0, 1, 0, 200, b'x'][..],
            &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff][..],
            &[0xff, 0xff][..],
        ] {
            assert!(WorkerMetadata::decode(bytes).is_err(), "{bytes:?}");
            assert!(Assignment::decode(bytes).is_err(), "{bytes:?}");
        }
        // An array claiming more elements than bytes left.
        let mut w = Writer::default();
        w.i16(1).i16(0).str("l").str("u").i64(0).i32(1_000_000);
        assert!(Assignment::decode(&w.0).is_err());
    }

    #[test]
    fn requests_carry_header_v1_and_their_size() {
        let f = request(api::HEARTBEAT, 9, "augur", &heartbeat("g", 3, "m"));
        let mut r = Reader::new(&f);
        assert_eq!(r.i32().unwrap() as usize, f.len() - 4);
        assert_eq!(
            (r.i16().unwrap(), r.i16().unwrap(), r.i32().unwrap()),
            (12, 3, 9)
        );
        assert_eq!(r.str().unwrap(), "augur");
        assert_eq!(r.str().unwrap(), "g");
        assert_eq!(r.i32().unwrap(), 3);
    }
}
