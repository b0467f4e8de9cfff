//! The Grafana Loki sink (push API). Placeholder until the Loki sink lands.

use std::sync::Arc;

use super::dead_letter::DeadLetter;
use super::{Delivered, Probe, SinkError};
use crate::batch::{Encoding, Segment};
use crate::config::LokiSink as Config;
use crate::record::Record;

/// Encodes records for Loki on the tailer's thread.
#[derive(Debug)]
pub struct LokiEncoder;

impl LokiEncoder {
    pub fn encode(&self, _rec: &Record<'_>, _out: &mut Vec<u8>) {}
}

pub struct LokiSink;

impl LokiSink {
    pub fn new(_name: &str, _c: &Config, _dead: Arc<DeadLetter>) -> Result<Self, SinkError> {
        Err(SinkError::Config("the loki sink is not built yet".into()))
    }
    pub fn encoding(&self) -> Encoding {
        Encoding::Loki(Arc::new(LokiEncoder))
    }
    pub async fn start(&self) -> Result<(), SinkError> {
        Ok(())
    }
    pub async fn probe(&self) -> Result<Probe, SinkError> {
        Err(SinkError::Config("the loki sink is not built yet".into()))
    }
    pub async fn deliver(
        &self,
        _idx: usize,
        _batch: &[Arc<Segment>],
    ) -> Result<Delivered, SinkError> {
        Err(SinkError::Config("the loki sink is not built yet".into()))
    }
}
