//! [`RemotingCommand`]: one request or response of the remoting protocol.

use bytes::Bytes;

use crate::code::{LanguageCode, RequestCode, ResponseCode, RpcFlags, SerializeType, version};
use crate::ext::ExtFields;
use crate::header::CommandHeader;

/// One decoded frame: a request or a response.
///
/// `code` is a request code in a request and a response code in a response
/// (the [`RpcFlags::RESPONSE`] bit of `flag` tells which); use
/// [`request_code`](Self::request_code) or [`response_code`](Self::response_code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotingCommand {
    /// Request code or response code.
    pub code: i32,
    /// The sender's language.
    pub language: LanguageCode,
    /// The sender's `MQVersion` ordinal.
    pub version: i32,
    /// Request id; a response copies its request's opaque.
    pub opaque: i32,
    /// Flag bits ([`RpcFlags`]).
    pub flag: RpcFlags,
    /// Free text; the error text of a failed response. `None` is "no remark".
    pub remark: Option<String>,
    /// Header fields.
    pub ext_fields: ExtFields,
    /// Body; `None` when the frame carries no body bytes.
    pub body: Option<Bytes>,
    /// The header serialization this command was decoded from, or is to be encoded with.
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    /// A request with the given code, language `RUST`, the current version, opaque 0,
    /// no fields and no body, to be encoded with the binary header.
    pub fn request(code: RequestCode) -> Self {
        Self {
            code: code.0,
            language: LanguageCode::RUST,
            version: version::CURRENT,
            opaque: 0,
            flag: RpcFlags(0),
            remark: None,
            ext_fields: ExtFields::new(),
            body: None,
            serialize_type: SerializeType::ROCKETMQ,
        }
    }

    /// A request whose fields come from a typed header.
    pub fn with_header<H: CommandHeader>(code: RequestCode, header: &H) -> Self {
        let mut cmd = Self::request(code);
        header.write_to(&mut cmd.ext_fields);
        cmd
    }

    /// A response to `request`: same opaque, the response bit set, the request's
    /// serialize type.
    pub fn response_to(request: &RemotingCommand, code: ResponseCode) -> Self {
        Self {
            code: code.0,
            language: LanguageCode::RUST,
            version: version::CURRENT,
            opaque: request.opaque,
            flag: RpcFlags(RpcFlags::RESPONSE),
            remark: None,
            ext_fields: ExtFields::new(),
            body: None,
            serialize_type: request.serialize_type,
        }
    }

    /// Sets the opaque.
    pub fn opaque(mut self, opaque: i32) -> Self {
        self.opaque = opaque;
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets the remark.
    pub fn remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    /// Sets the header serialization.
    pub fn serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize_type = t;
        self
    }

    /// Marks the request one-way: the receiver must not answer it.
    pub fn oneway(mut self) -> Self {
        self.flag.0 |= RpcFlags::ONEWAY;
        self
    }

    /// Whether this is a response.
    pub fn is_response(&self) -> bool {
        self.flag.is_response()
    }

    /// Whether this is a one-way request.
    pub fn is_oneway(&self) -> bool {
        self.flag.is_oneway()
    }

    /// `code` read as a request code.
    pub fn request_code(&self) -> RequestCode {
        RequestCode(self.code)
    }

    /// `code` read as a response code.
    pub fn response_code(&self) -> ResponseCode {
        ResponseCode(self.code)
    }

    /// Decodes the typed header `H` from the fields.
    pub fn decode_header<H: CommandHeader>(&self) -> Result<H, crate::header::HeaderError> {
        H::read_from(&self.ext_fields)
    }

    /// Body bytes, or an empty slice when there is no body.
    pub fn body_bytes(&self) -> &[u8] {
        self.body.as_deref().unwrap_or(&[])
    }
}
