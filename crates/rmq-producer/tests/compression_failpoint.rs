//! B4: a compression failure (forced through the `__failpoints` feature, which
//! `cargo xtask test` enables with `--all-features`) falls back to an uncompressed
//! send without the compression flag, as Java does.
#![cfg(feature = "__failpoints")]

mod common;

use common::{TOPIC, builder, cluster};
use rmq_producer::Message;

#[tokio::test(start_paused = true)]
async fn b4_compression_failure_sends_uncompressed_without_the_flag() {
    let cluster = cluster().await;
    let p = builder(&cluster)
        .__fail_compression()
        .build()
        .await
        .unwrap();
    let body = "compressible ".repeat(1000);
    let r = p.send(Message::new(TOPIC, body.clone())).await.unwrap();
    let stored = &cluster.find_by_uniq_key(&r.msg_id)[0];
    assert_eq!(
        stored.sys_flag & 0x701,
        0,
        "no compression flag or type bits"
    );
    assert_eq!(
        stored.body.as_ref(),
        body.as_bytes(),
        "the body went as it was"
    );
    // Positive control: without the failpoint the same body is compressed.
    let normal = builder(&cluster).build().await.unwrap();
    let r = normal.send(Message::new(TOPIC, body)).await.unwrap();
    assert_eq!(cluster.find_by_uniq_key(&r.msg_id)[0].sys_flag, 0x301);
}
