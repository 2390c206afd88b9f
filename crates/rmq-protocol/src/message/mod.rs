//! The message model: [`Message`], [`MessageQueue`], properties, batches, sysFlag,
//! stored messages and send results.

pub mod batch;
pub mod properties;
pub mod send_result;
pub mod stored;
pub mod sys_flag;
