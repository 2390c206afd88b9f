//! A hand-encoded `GET_BROKER_CLUSTER_INFO` (106) request to the name server, used to wait
//! until the brokers are registered. Deliberately independent of `rmq-protocol` so that the
//! harness works even while the crate under test does not.
//!
//! Frame: `[total length: u32 BE][header word: u32 BE][header][body]`, where the header
//! word is `serialize type (0 = JSON, 1 = ROCKETMQ) << 24 | header length` and the total
//! length counts everything after itself.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

const GET_BROKER_CLUSTER_INFO: i32 = 106;
/// Responses larger than this are rejected (the servers' own inbound limit is 16 MiB + 4).
const MAX_FRAME: usize = 16 * 1024 * 1024 + 4;

static OPAQUE: AtomicI32 = AtomicI32::new(1);

/// Broker name -> (broker id -> address), from the response's `brokerAddrTable`.
pub(crate) type BrokerAddrTable = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Deserialize)]
struct ClusterInfoBody {
    #[serde(rename = "brokerAddrTable", default)]
    broker_addr_table: BTreeMap<String, BrokerData>,
}

#[derive(Deserialize)]
struct BrokerData {
    #[serde(rename = "brokerAddrs", default)]
    broker_addrs: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct JsonHeader {
    code: i32,
    #[serde(default)]
    remark: Option<String>,
}

/// The request frame for `opaque`.
fn request_frame(opaque: i32) -> Vec<u8> {
    // Every one of these keys is required by the rocketmq-rust servers; a missing one makes
    // them close the connection without a reply.
    let header = format!(
        r#"{{"code":{GET_BROKER_CLUSTER_INFO},"flag":0,"language":"RUST","opaque":{opaque},"serializeTypeCurrentRPC":"JSON","version":479}}"#
    );
    let header = header.as_bytes();
    let mut frame = Vec::with_capacity(8 + header.len());
    // header length < 2^24 and < u32::MAX: the header is a short constant-shaped string
    let hlen = u32::try_from(header.len()).unwrap_or(u32::MAX) & 0x00FF_FFFF;
    frame.extend_from_slice(&(4 + hlen).to_be_bytes());
    frame.extend_from_slice(&hlen.to_be_bytes()); // serialize type 0 = JSON
    frame.extend_from_slice(header);
    frame
}

/// Asks the name server at `addr` for its broker address table.
pub(crate) fn broker_addr_table(addr: &str, timeout: Duration) -> Result<BrokerAddrTable> {
    let sock: SocketAddr = addr
        .parse()
        .with_context(|| format!("bad name server address {addr}"))?;
    let mut stream = TcpStream::connect_timeout(&sock, timeout)
        .with_context(|| format!("connecting to the name server at {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let opaque = OPAQUE.fetch_add(1, Ordering::Relaxed);
    stream
        .write_all(&request_frame(opaque))
        .with_context(|| format!("sending GET_BROKER_CLUSTER_INFO to {addr}"))?;

    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .with_context(|| format!("reading the GET_BROKER_CLUSTER_INFO response from {addr}"))?;
    let len = usize::try_from(u32::from_be_bytes(len)).context("frame length overflows usize")?;
    if !(4..=MAX_FRAME).contains(&len) {
        bail!("name server {addr} sent a frame of invalid length {len}");
    }
    let mut frame = vec![0u8; len];
    stream
        .read_exact(&mut frame)
        .with_context(|| format!("reading the GET_BROKER_CLUSTER_INFO response from {addr}"))?;
    parse_response(&frame).with_context(|| format!("GET_BROKER_CLUSTER_INFO response from {addr}"))
}

/// Parses a response frame (everything after the total length).
fn parse_response(frame: &[u8]) -> Result<BrokerAddrTable> {
    let word: [u8; 4] = frame
        .get(..4)
        .and_then(|w| w.try_into().ok())
        .context("frame shorter than its header word")?;
    let word = u32::from_be_bytes(word);
    let serialize_type = word >> 24;
    let hlen = usize::try_from(word & 0x00FF_FFFF).context("header length overflows usize")?;
    let header = frame.get(4..4 + hlen).with_context(|| {
        format!(
            "header length {hlen} exceeds the frame ({} bytes)",
            frame.len()
        )
    })?;
    let body = &frame[4 + hlen..];
    let (code, remark) = match serialize_type {
        0 => {
            let h: JsonHeader =
                serde_json::from_slice(header).context("decoding the JSON header")?;
            (h.code, h.remark)
        }
        1 => {
            // ROCKETMQ binary header: code is the first big-endian i16
            let code: [u8; 2] = header
                .get(..2)
                .and_then(|c| c.try_into().ok())
                .context("binary header shorter than its code")?;
            (i32::from(i16::from_be_bytes(code)), None)
        }
        other => bail!("unknown serialize type {other} in the header word"),
    };
    if code != 0 {
        bail!(
            "response code {code}{}",
            remark.map(|r| format!(" ({r})")).unwrap_or_default()
        );
    }
    if body.is_empty() {
        return Ok(BrokerAddrTable::new());
    }
    let body: ClusterInfoBody =
        serde_json::from_slice(body).context("decoding the cluster info body")?;
    Ok(body
        .broker_addr_table
        .into_iter()
        .map(|(name, data)| (name, data.broker_addrs))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_frame_has_json_header() {
        let f = request_frame(7);
        let total = u32::from_be_bytes(f[0..4].try_into().unwrap()) as usize;
        assert_eq!(total, f.len() - 4);
        let word = u32::from_be_bytes(f[4..8].try_into().unwrap());
        assert_eq!(word >> 24, 0);
        let h: serde_json::Value = serde_json::from_slice(&f[8..]).unwrap();
        assert_eq!(h["code"], 106);
        assert_eq!(h["opaque"], 7);
        assert_eq!(h["serializeTypeCurrentRPC"], "JSON");
        assert_eq!(h["language"], "RUST");
    }

    #[test]
    fn response_is_parsed() {
        let header = br#"{"code":0,"language":"RUST","version":474,"opaque":1,"flag":1,"remark":null,"extFields":null,"serializeTypeCurrentRPC":"JSON"}"#;
        let body = br#"{"brokerAddrTable":{"broker-a":{"cluster":"C","brokerName":"broker-a","brokerAddrs":{"0":"127.0.0.1:10911"},"zoneName":null,"enableActingMaster":false}},"clusterAddrTable":{"C":["broker-a"]}}"#;
        let mut frame = (header.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(header);
        frame.extend_from_slice(body);
        let table = parse_response(&frame).unwrap();
        assert_eq!(table["broker-a"]["0"], "127.0.0.1:10911");

        let mut bad = (header.len() as u32 + 100).to_be_bytes().to_vec();
        bad.extend_from_slice(header);
        assert!(parse_response(&bad).is_err());
    }
}
