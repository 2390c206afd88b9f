//! The producer's header arena: each attempt's request header fields and each
//! message's encoded properties are written into one shared buffer and split off
//! it, so a send allocates no vector for its header and no string for its
//! properties (issue #9: no allocation per send beyond the body and the result).
//!
//! What is split off is a [`bytes::Bytes`] (a reference count on the arena's
//! buffer). The arena takes a new 16 KiB buffer only when the current one is full;
//! a buffer is freed when the last value written into it is dropped. Header fields
//! and properties live apart: a request's header is dropped once it is written,
//! while the properties are kept for the send's retries, so sharing buffers would
//! keep every header buffer alive as long as some send in it is in flight. The
//! locks are held for one value's writing, never across an `.await`.

use std::sync::{Mutex, MutexGuard};

use bytes::BytesMut;
use rmq_protocol::ExtFields;
use rmq_protocol::FieldValue;
use rmq_protocol::ext::WireWriter;
use rmq_protocol::message::PropertyError;
use rmq_protocol::message::properties::{Properties, encode_properties_in};

/// Size of each of the arena's buffers.
const CHUNK: usize = 16 * 1024;

#[derive(Debug)]
pub(crate) struct HeaderArena {
    fields: Mutex<BytesMut>,
    properties: Mutex<BytesMut>,
}

fn lock(buf: &Mutex<BytesMut>) -> MutexGuard<'_, BytesMut> {
    // The buffer holds no invariant a panicking writer could break (every user
    // starts by clearing it).
    buf.lock().unwrap_or_else(|e| e.into_inner())
}

impl HeaderArena {
    pub(crate) fn new() -> Self {
        Self {
            fields: Mutex::new(BytesMut::with_capacity(CHUNK)),
            properties: Mutex::new(BytesMut::with_capacity(CHUNK)),
        }
    }

    /// Header fields in wire form, as `write` puts them.
    pub(crate) fn fields(&self, write: impl FnOnce(&mut WireWriter<'_>)) -> ExtFields {
        let mut buf = lock(&self.fields);
        let mut writer = WireWriter::new(&mut buf);
        write(&mut writer);
        writer.finish()
    }

    /// `props` encoded for the wire (inline when short).
    pub(crate) fn properties(&self, props: &Properties) -> Result<FieldValue, PropertyError> {
        encode_properties_in(props, &mut lock(&self.properties))
    }
}
