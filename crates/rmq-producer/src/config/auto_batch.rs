//! [`AutoBatchSettings`]: the opt-in accumulator's settings (the `[auto_batch]` table).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Longest linger allowed: 30 s (Java's `batchMaxDelayMs` range).
const MAX_LINGER: Duration = Duration::from_secs(30);

/// Largest batch allowed: 2 MiB (Java's `batchMaxBytes` range).
const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Auto-batching: plain sends are gathered per (topic, queue) and sent as
/// SEND_BATCH_MESSAGE requests, each message still getting its own result. Off by
/// default, as in Java (`autoBatch`). In TOML the `[auto_batch]` table; in the
/// environment `RMQ_PRODUCER_AUTO_BATCH_ENABLED=true` and so on.
///
/// ```toml
/// [auto_batch]
/// enabled = true
/// linger = "5ms"
/// ```
///
/// Which messages are batched, and how batches are retried and closed, is described
/// in the README's "Auto-batching" section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AutoBatchSettings {
    /// Gather plain sends into batches. Default `false` (Java `autoBatch`, false).
    pub enabled: bool,
    /// How long a batch waits for more messages after its first one. Default 10 ms
    /// (Java `batchMaxDelayMs`). Range: > 0 and ≤ 30 s.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// A batch is sent as soon as its encoded size reaches this many bytes, and never
    /// grows past it; a message that alone would reach it is sent on its own. Default
    /// 32 KiB (Java `batchMaxBytes`). Range: 1 B..=2 MiB, and ≤ `max_message_size`.
    pub max_batch_bytes: usize,
    /// The most encoded bytes held by queued and unanswered batched messages. When
    /// full, `send` waits (within its deadline) and `try_send` fails with
    /// `BufferFull`, handing the message back; Java silently sends around the
    /// accumulator instead. Default 32 MiB (Java `totalBatchMaxBytes`). Range: ≥
    /// `max_batch_bytes`.
    pub max_total_bytes: usize,
}

impl Default for AutoBatchSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            linger: Duration::from_millis(10),
            max_batch_bytes: 32 * 1024,
            max_total_bytes: 32 * 1024 * 1024,
        }
    }
}

impl AutoBatchSettings {
    /// Checks the ranges when enabled (`max_message_size` bounds the batch size).
    pub(super) fn validate(&self, max_message_size: usize) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.linger.is_zero() || self.linger > MAX_LINGER {
            return Err(ConfigError::invalid(
                "auto_batch.linger",
                humantime::format_duration(self.linger),
                "must be > 0 and ≤ 30s",
            ));
        }
        let batch_cap = MAX_BATCH_BYTES.min(max_message_size);
        if self.max_batch_bytes == 0 || self.max_batch_bytes > batch_cap {
            return Err(ConfigError::invalid(
                "auto_batch.max_batch_bytes",
                self.max_batch_bytes,
                format!("must be ≥ 1 and ≤ {batch_cap} (2 MiB and max_message_size)"),
            ));
        }
        // The buffer is a semaphore of bytes: bounded by its permit limit.
        let total_cap = tokio::sync::Semaphore::MAX_PERMITS;
        if self.max_total_bytes < self.max_batch_bytes || self.max_total_bytes > total_cap {
            return Err(ConfigError::invalid(
                "auto_batch.max_total_bytes",
                self.max_total_bytes,
                format!(
                    "must be ≥ max_batch_bytes ({}) and ≤ {total_cap}",
                    self.max_batch_bytes
                ),
            ));
        }
        Ok(())
    }
}
