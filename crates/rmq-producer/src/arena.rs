//! The producer's header arena: each attempt's request header fields and each
//! message's encoded properties are written into one shared buffer and split off
//! it, so a send allocates no vector for its header and no string for its
//! properties (issue #9: no allocation per send beyond the body and the result).
//!
//! What is split off is a [`bytes::Bytes`] (a reference count on the arena's
//! buffer). The arena takes a new 16 KiB buffer only when the current one is full,
//! about every 70 sends; a buffer is freed when the last request written into it
//! has been answered. The lock is held for one header's writing, never across an
//! `.await`.

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
    buf: Mutex<BytesMut>,
}

impl HeaderArena {
    pub(crate) fn new() -> Self {
        Self {
            buf: Mutex::new(BytesMut::with_capacity(CHUNK)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BytesMut> {
        // The buffer holds no invariant a panicking writer could break (every user
        // starts by clearing it).
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Header fields in wire form, as `write` puts them.
    pub(crate) fn fields(&self, write: impl FnOnce(&mut WireWriter<'_>)) -> ExtFields {
        let mut buf = self.lock();
        let mut writer = WireWriter::new(&mut buf);
        write(&mut writer);
        writer.finish()
    }

    /// `props` encoded for the wire (inline when short).
    pub(crate) fn properties(&self, props: &Properties) -> Result<FieldValue, PropertyError> {
        encode_properties_in(props, &mut self.lock())
    }
}
