//! [`RecordOut`]: where the encoder hands each record it made, borrowed ([`RecordRef`]), so a
//! destination that only copies the bytes (stdout) allocates nothing per record.

use augur_core::record::Record;

/// One record, borrowed from the encoder for the length of a [`RecordOut::record`] call.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Destination topic.
    pub topic: &'a str,
    /// Key bytes (JSON), `None` for keyless tables.
    pub key: Option<&'a [u8]>,
    /// Value bytes (JSON), `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Record headers.
    pub headers: Headers<'a>,
}

impl<'a> RecordRef<'a> {
    /// A borrowed view of an owned record.
    pub fn of(r: &'a Record) -> RecordRef<'a> {
        RecordRef {
            topic: &r.topic,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: Headers {
                first: None,
                fixed: &r.headers,
                added: &[],
            },
        }
    }

    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            topic: self.topic.to_string(),
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        }
    }
}

/// A record's headers in order: the key-change header of this event (if any), the headers
/// every record carries, then the ones a transform added.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    /// `__debezium.newkey` / `__debezium.oldkey`.
    pub first: Option<(&'a str, &'a [u8])>,
    /// The same for every record of the encoder (`__debezium.context.*`).
    pub fixed: &'a [(String, Vec<u8>)],
    /// Added by the `ExtractNewRecordState` transform (`add.headers`).
    pub added: &'a [(String, Vec<u8>)],
}

impl<'a> Headers<'a> {
    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let pair = |(k, v): &'a (String, Vec<u8>)| (k.as_str(), v.as_slice());
        self.first
            .into_iter()
            .chain(self.fixed.iter().map(pair))
            .chain(self.added.iter().map(pair))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.first.is_none() && self.fixed.is_empty() && self.added.is_empty()
    }
}

/// Takes the records an encoder makes, one at a time.
pub trait RecordOut {
    /// One record; its bytes are only valid during the call.
    fn record(&mut self, r: RecordRef<'_>);
}

/// Collects owned records.
impl RecordOut for Vec<Record> {
    fn record(&mut self, r: RecordRef<'_>) {
        self.push(r.to_record());
    }
}
