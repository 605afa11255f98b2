//! A decoder for the pgoutput logical replication protocol, version 1: Relation, Type, Origin,
//! Insert, Update, Delete and Truncate messages. (Begin, Commit and logical messages are
//! decoded by the replication transport.)
//!
//! Tuple values are borrowed from the message buffer; nothing is copied until a value is
//! converted to its Connect form.

/// A protocol violation: the message did not have the shape pgoutput v1 gives it. `at` is the
/// byte offset in the message where the decoder noticed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message ended before a field it must have.
    #[error("malformed pgoutput message: truncated message at byte {at}")]
    Truncated {
        /// Where the missing field starts.
        at: usize,
    },
    /// A string runs to the end of the message without its NUL terminator.
    #[error("malformed pgoutput message: unterminated string at byte {at}")]
    UnterminatedString {
        /// Where the string starts.
        at: usize,
    },
    /// A string (a name) is not valid UTF-8.
    #[error("malformed pgoutput message: string is not UTF-8 at byte {at}")]
    NotUtf8 {
        /// Where the string starts.
        at: usize,
    },
    /// A tuple claims fewer than zero columns.
    #[error("malformed pgoutput message: negative column count at byte {at}")]
    NegativeColumnCount {
        /// Just after the count.
        at: usize,
    },
    /// A tuple value claims fewer than zero bytes.
    #[error("malformed pgoutput message: negative value length at byte {at}")]
    NegativeValueLength {
        /// Just after the length.
        at: usize,
    },
    /// A tuple value's kind byte is not `n`, `u`, `t` or `b`.
    #[error(
        "malformed pgoutput message: unknown tuple datum kind {:?} at byte {at}",
        char::from(*.kind)
    )]
    UnknownDatumKind {
        /// The kind byte.
        kind: u8,
        /// Just after the kind byte.
        at: usize,
    },
    /// A Relation's replica identity byte is not `d`, `n`, `f` or `i`.
    #[error(
        "malformed pgoutput message: unknown replica identity {:?} at byte {at}",
        char::from(*.identity)
    )]
    UnknownReplicaIdentity {
        /// The replica identity byte.
        identity: u8,
        /// Just after the byte.
        at: usize,
    },
    /// An Insert's tuple marker is not `N`.
    #[error(
        "malformed pgoutput message: insert without new tuple ({:?}) at byte {at}",
        char::from(*.marker)
    )]
    InsertWithoutNew {
        /// The marker byte found instead.
        marker: u8,
        /// Just after the marker.
        at: usize,
    },
    /// An Update's (last) tuple marker is not `N`.
    #[error(
        "malformed pgoutput message: update without new tuple ({:?}) at byte {at}",
        char::from(*.marker)
    )]
    UpdateWithoutNew {
        /// The marker byte found instead.
        marker: u8,
        /// Just after the marker.
        at: usize,
    },
    /// A Delete's tuple marker is neither `K` nor `O`.
    #[error(
        "malformed pgoutput message: delete without old tuple ({:?}) at byte {at}",
        char::from(*.marker)
    )]
    DeleteWithoutOld {
        /// The marker byte found instead.
        marker: u8,
        /// Just after the marker.
        at: usize,
    },
}

/// The REPLICA IDENTITY setting of a table, as a Relation message reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// `d`: the primary key.
    Default,
    /// `n`: nothing.
    Nothing,
    /// `f`: all columns.
    Full,
    /// `i`: the columns of a chosen unique index.
    Index,
}

/// One column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Whether the column is part of the replica identity key.
    pub is_key: bool,
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), -1 when none.
    pub type_modifier: i32,
}

/// A Relation message: the shape of a table as the following changes use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The table's OID.
    pub id: u32,
    /// Schema name.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// REPLICA IDENTITY.
    pub replica_identity: ReplicaIdentity,
    /// Published columns, in order.
    pub columns: Vec<RelationColumn>,
}

/// One value in a tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datum<'a> {
    /// SQL NULL.
    Null,
    /// A TOASTed value that did not change and was not sent.
    UnchangedToast,
    /// The value in the type's text output format.
    Text(&'a [u8]),
    /// The value in the type's binary send format (only with `binary 'true'`).
    Binary(&'a [u8]),
}

/// A tuple: one datum per published column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple<'a>(pub Vec<Datum<'a>>);

/// Which old tuple an Update or Delete carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKind {
    /// `K`: only the replica identity key columns (others are null).
    Key,
    /// `O`: the whole old row (REPLICA IDENTITY FULL).
    Full,
}

/// A decoded pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A table's shape.
    Relation(Relation),
    /// A data type's name (sent before a Relation that uses a non-built-in type).
    Type {
        /// Type OID.
        id: u32,
        /// Schema name.
        namespace: String,
        /// Type name.
        name: String,
    },
    /// The transaction came from another replication origin.
    Origin {
        /// The commit LSN on the origin server.
        lsn: u64,
        /// The origin's name.
        name: String,
    },
    /// A row was inserted.
    Insert {
        /// Table OID.
        relation: u32,
        /// The new row.
        new: Tuple<'a>,
    },
    /// A row was updated.
    Update {
        /// Table OID.
        relation: u32,
        /// The old key or row, when the replica identity makes pgoutput send it.
        old: Option<(OldKind, Tuple<'a>)>,
        /// The new row.
        new: Tuple<'a>,
    },
    /// A row was deleted.
    Delete {
        /// Table OID.
        relation: u32,
        /// The old key or row.
        old: (OldKind, Tuple<'a>),
    },
    /// Tables were truncated.
    Truncate {
        /// Bit 1: CASCADE; bit 2: RESTART IDENTITY.
        options: u8,
        /// Table OIDs.
        relations: Vec<u32>,
    },
    /// Begin, Commit, logical message, or a message this decoder does not need.
    Other(u8),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Truncated { at: self.pos });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(self.i32()? as u32)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn cstr(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let rest = &self.buf[at..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::UnterminatedString { at })?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| DecodeError::NotUtf8 { at })?;
        self.pos += end + 1;
        Ok(s.to_string())
    }

    fn tuple(&mut self) -> Result<Tuple<'a>, DecodeError> {
        let n = self.i16()?;
        if n < 0 {
            return Err(DecodeError::NegativeColumnCount { at: self.pos });
        }
        let mut cols = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let kind = self.u8()?;
            cols.push(match kind {
                b'n' => Datum::Null,
                b'u' => Datum::UnchangedToast,
                b't' | b'b' => {
                    let len = self.i32()?;
                    if len < 0 {
                        return Err(DecodeError::NegativeValueLength { at: self.pos });
                    }
                    let data = self.take(len as usize)?;
                    if kind == b't' {
                        Datum::Text(data)
                    } else {
                        Datum::Binary(data)
                    }
                }
                kind => {
                    return Err(DecodeError::UnknownDatumKind { kind, at: self.pos });
                }
            });
        }
        Ok(Tuple(cols))
    }
}

/// Decodes one pgoutput message.
pub fn decode(buf: &[u8]) -> Result<Message<'_>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let tag = r.u8()?;
    match tag {
        b'R' => r.relation().map(Message::Relation),
        b'Y' => r.type_message(),
        b'O' => r.origin(),
        b'I' => r.insert(),
        b'U' => r.update(),
        b'D' => r.delete(),
        b'T' => r.truncate(),
        other => Ok(Message::Other(other)),
    }
}

/// The bodies of the message kinds, each read after its tag byte.
impl<'a> Reader<'a> {
    /// A Relation message: the table, its replica identity and its columns.
    fn relation(&mut self) -> Result<Relation, DecodeError> {
        let id = self.u32()?;
        let namespace = self.cstr()?;
        let name = self.cstr()?;
        let replica_identity = match self.u8()? {
            b'd' => ReplicaIdentity::Default,
            b'n' => ReplicaIdentity::Nothing,
            b'f' => ReplicaIdentity::Full,
            b'i' => ReplicaIdentity::Index,
            identity => {
                return Err(DecodeError::UnknownReplicaIdentity {
                    identity,
                    at: self.pos,
                });
            }
        };
        let n = self.i16()?;
        let mut columns = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            let flags = self.u8()?;
            let name = self.cstr()?;
            let type_oid = self.u32()?;
            let type_modifier = self.i32()?;
            columns.push(RelationColumn {
                is_key: flags & 1 == 1,
                name,
                type_oid,
                type_modifier,
            });
        }
        Ok(Relation {
            id,
            namespace,
            name,
            replica_identity,
            columns,
        })
    }

    /// A Type message: a data type's OID and qualified name.
    fn type_message(&mut self) -> Result<Message<'a>, DecodeError> {
        let id = self.u32()?;
        let namespace = self.cstr()?;
        let name = self.cstr()?;
        Ok(Message::Type {
            id,
            namespace,
            name,
        })
    }

    /// An Origin message: the origin's commit LSN and name.
    fn origin(&mut self) -> Result<Message<'a>, DecodeError> {
        let lsn = self.u64()?;
        let name = self.cstr()?;
        Ok(Message::Origin { lsn, name })
    }

    /// An Insert message: the table and its new tuple.
    fn insert(&mut self) -> Result<Message<'a>, DecodeError> {
        let relation = self.u32()?;
        match self.u8()? {
            b'N' => {}
            marker => {
                return Err(DecodeError::InsertWithoutNew {
                    marker,
                    at: self.pos,
                });
            }
        }
        Ok(Message::Insert {
            relation,
            new: self.tuple()?,
        })
    }

    /// An Update message: the table, the old key or row if sent, and the new tuple.
    fn update(&mut self) -> Result<Message<'a>, DecodeError> {
        let relation = self.u32()?;
        let mut old = None;
        let mut marker = self.u8()?;
        if marker == b'K' || marker == b'O' {
            let kind = if marker == b'K' {
                OldKind::Key
            } else {
                OldKind::Full
            };
            old = Some((kind, self.tuple()?));
            marker = self.u8()?;
        }
        if marker != b'N' {
            return Err(DecodeError::UpdateWithoutNew {
                marker,
                at: self.pos,
            });
        }
        Ok(Message::Update {
            relation,
            old,
            new: self.tuple()?,
        })
    }

    /// A Delete message: the table and its old key or row.
    fn delete(&mut self) -> Result<Message<'a>, DecodeError> {
        let relation = self.u32()?;
        let kind = match self.u8()? {
            b'K' => OldKind::Key,
            b'O' => OldKind::Full,
            marker => {
                return Err(DecodeError::DeleteWithoutOld {
                    marker,
                    at: self.pos,
                });
            }
        };
        Ok(Message::Delete {
            relation,
            old: (kind, self.tuple()?),
        })
    }

    /// A Truncate message: its options and the truncated tables.
    fn truncate(&mut self) -> Result<Message<'a>, DecodeError> {
        let n = self.i32()?;
        let options = self.u8()?;
        let mut relations = Vec::with_capacity(n.max(0) as usize);
        for _ in 0..n {
            relations.push(self.u32()?);
        }
        Ok(Message::Truncate { options, relations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn tuple(out: &mut Vec<u8>, vals: &[Option<&str>]) {
        out.extend_from_slice(&(vals.len() as i16).to_be_bytes());
        for v in vals {
            match v {
                None => out.push(b'n'),
                Some(s) => {
                    out.push(b't');
                    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    #[test]
    fn decodes_relation_and_changes() {
        let mut m = vec![b'R'];
        m.extend_from_slice(&16384u32.to_be_bytes());
        cstr(&mut m, "public");
        cstr(&mut m, "t");
        m.push(b'd');
        m.extend_from_slice(&2i16.to_be_bytes());
        m.push(1);
        cstr(&mut m, "id");
        m.extend_from_slice(&23u32.to_be_bytes());
        m.extend_from_slice(&(-1i32).to_be_bytes());
        m.push(0);
        cstr(&mut m, "name");
        m.extend_from_slice(&25u32.to_be_bytes());
        m.extend_from_slice(&(-1i32).to_be_bytes());
        let Message::Relation(rel) = decode(&m).unwrap() else {
            panic!()
        };
        assert_eq!(rel.columns.len(), 2);
        assert!(rel.columns[0].is_key && !rel.columns[1].is_key);

        let mut u = vec![b'U'];
        u.extend_from_slice(&16384u32.to_be_bytes());
        u.push(b'K');
        tuple(&mut u, &[Some("1"), None]);
        u.push(b'N');
        tuple(&mut u, &[Some("2"), Some("x")]);
        let Message::Update { old, new, .. } = decode(&u).unwrap() else {
            panic!()
        };
        let (kind, old) = old.unwrap();
        assert_eq!(kind, OldKind::Key);
        assert_eq!(old.0, vec![Datum::Text(b"1"), Datum::Null]);
        assert_eq!(new.0, vec![Datum::Text(b"2"), Datum::Text(b"x")]);
    }

    #[test]
    fn rejects_truncated_and_unknown_input_without_panicking() {
        assert!(decode(b"I\x00\x00").is_err());
        assert!(decode(b"I\x00\x00\x40\x00N\x00\x01x").is_err());
        assert!(decode(b"D\x00\x00\x40\x00Z").is_err());
        assert_eq!(decode(b"Z").unwrap(), Message::Other(b'Z'));
        assert!(decode(b"").is_err());
        // A length that runs past the end.
        assert!(decode(b"I\x00\x00\x40\x00N\x00\x01t\x7f\xff\xff\xffab").is_err());
    }

    #[test]
    fn errors_name_the_problem_and_the_byte() {
        let e = decode(b"I\x00\x00").unwrap_err();
        assert_eq!(e, DecodeError::Truncated { at: 1 });
        assert_eq!(
            e.to_string(),
            "malformed pgoutput message: truncated message at byte 1"
        );
        let e = decode(b"D\x00\x00\x40\x00Z").unwrap_err();
        assert_eq!(
            e,
            DecodeError::DeleteWithoutOld {
                marker: b'Z',
                at: 6
            }
        );
        assert_eq!(
            e.to_string(),
            "malformed pgoutput message: delete without old tuple ('Z') at byte 6"
        );
        let e = decode(b"I\x00\x00\x40\x00N\x00\x01x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed pgoutput message: unknown tuple datum kind 'x' at byte 9"
        );
        let e = decode(b"Y\x00\x00\x00\x17pg_catalog").unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed pgoutput message: unterminated string at byte 5"
        );
        let e = decode(b"R\x00\x00\x40\x00public\x00t\x00\xff").unwrap_err();
        assert_eq!(
            e.to_string(),
            "malformed pgoutput message: unknown replica identity 'ÿ' at byte 15"
        );
    }

    proptest::proptest! {
        /// Hostile input: any bytes after any message tag decode to a message or an error,
        /// never a panic.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(
            tag in proptest::sample::select(b"BCORYIUDTMK?".to_vec()),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut m = vec![tag];
            m.extend_from_slice(&body);
            let _ = decode(&m);
        }

        /// An Insert's tuple comes back value for value: nulls, unchanged TOAST and any bytes.
        #[test]
        fn insert_tuples_round_trip(
            relation in proptest::num::u32::ANY,
            values in proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..40)),
                0..20,
            ),
        ) {
            let mut m = vec![b'I'];
            m.extend_from_slice(&relation.to_be_bytes());
            m.push(b'N');
            m.extend_from_slice(&(values.len() as i16).to_be_bytes());
            for v in &values {
                match v {
                    None => m.push(b'n'),
                    Some(bytes) => {
                        m.push(b't');
                        m.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                        m.extend_from_slice(bytes);
                    }
                }
            }
            let Ok(Message::Insert { relation: r, new }) = decode(&m) else {
                return Err(proptest::test_runner::TestCaseError::fail("not an insert"));
            };
            proptest::prop_assert_eq!(r, relation);
            let want: Vec<Datum<'_>> = values
                .iter()
                .map(|v| v.as_deref().map_or(Datum::Null, Datum::Text))
                .collect();
            proptest::prop_assert_eq!(new.0, want);
            // Every strict prefix is an error, not a shorter message.
            for cut in 1..m.len() {
                proptest::prop_assert!(decode(&m[..cut]).is_err() || cut < 5);
            }
        }
    }
}
