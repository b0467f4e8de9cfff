//! epost-shipper: ships E-Post Mail Server logs as structured records.
//!
//! The pipeline reads in module order: [`discover`] → [`tail`] → [`decode`] → [`parse`] →
//! [`batch`] → [`sink`] → [`ack`] → [`checkpoint`].

pub mod ack;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod discover;
pub mod fault;
pub mod kind;
pub mod metrics;
pub mod parse;
pub mod pipeline;
pub mod platform;
pub mod record;
pub mod retention;
pub mod sink;
pub mod tail;
pub mod warn_limit;
