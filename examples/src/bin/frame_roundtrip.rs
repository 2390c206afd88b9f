//! Encodes a route request with both header types and decodes it back.
//! This is the protocol-level example; producer examples arrive with `rmq-producer`.

use bytes::BytesMut;
use rmq_protocol::header::get_route_info::GetRouteInfoRequestHeader;
use rmq_protocol::{RemotingCommand, RequestCode, SerializeType, frame};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for st in [SerializeType::ROCKETMQ, SerializeType::JSON] {
        let header = GetRouteInfoRequestHeader::new("TopicTest");
        let request = RemotingCommand::with_header(RequestCode::GET_ROUTEINFO_BY_TOPIC, &header)
            .opaque(1)
            .serialize_type(st);
        let mut buf = BytesMut::new();
        frame::encode(&request, &mut buf)?;
        println!("{st:?}: {} bytes on the wire", buf.len());
        let decoded = frame::decode(&mut buf)?.ok_or("incomplete frame")?;
        if decoded != request {
            return Err("round trip changed the command".into());
        }
    }
    println!("ok");
    Ok(())
}
