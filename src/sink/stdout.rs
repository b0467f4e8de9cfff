//! The `stdout` sink, for trying things out: NDJSON on standard output.

use std::io::Write;
use std::sync::Arc;

use super::SinkError;
use crate::batch::Segment;

pub struct StdoutSink;

impl StdoutSink {
    pub async fn deliver(&self, idx: usize, batch: &[Arc<Segment>]) -> Result<(), SinkError> {
        let batch: Vec<Arc<Segment>> = batch.to_vec();
        tokio::task::spawn_blocking(move || {
            let out = std::io::stdout();
            let mut out = out.lock();
            for s in &batch {
                out.write_all(&s.payloads[idx].data)?;
            }
            out.flush()
        })
        .await
        .map_err(|e| SinkError::Transient(e.to_string()))?
        .map_err(|e| SinkError::Transient(format!("writing to stdout: {e}")))?;
        Ok(())
    }
}
