//! [`RemotingCodec`]: the zero-logic tokio-util adapter over
//! [`rmq_protocol::frame::FrameCodec`].

use bytes::BytesMut;
use rmq_protocol::RemotingCommand;
use rmq_protocol::frame::{DecodeError, EncodeError, FrameCodec, FrameLimits};

/// A codec error: an I/O error from the stream or a frame error.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The peer sent an invalid frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A command could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Frames remoting commands for `tokio_util::codec::Framed`, delegating to the
/// sans-IO codec. Framing limits are set once, in [`RemotingCodec::new`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RemotingCodec(FrameCodec);

impl RemotingCodec {
    /// A codec with the given limits.
    pub fn new(limits: FrameLimits) -> Self {
        Self(FrameCodec::new(limits))
    }

    /// The sans-IO codec.
    pub fn frame_codec(&self) -> &FrameCodec {
        &self.0
    }
}

impl tokio_util::codec::Decoder for RemotingCodec {
    type Item = RemotingCommand;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, CodecError> {
        Ok(self.0.decode(src)?)
    }
}

impl tokio_util::codec::Encoder<&RemotingCommand> for RemotingCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &RemotingCommand, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.0.encode(item, dst)?)
    }
}

impl tokio_util::codec::Encoder<RemotingCommand> for RemotingCodec {
    type Error = CodecError;

    fn encode(&mut self, item: RemotingCommand, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.0.encode(&item, dst)?)
    }
}
