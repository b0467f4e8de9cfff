//! epost-shipper: ships E-Post Mail Server logs as structured records.
//!
//! The pipeline reads in module order: [`discover`] → [`tail`] → [`decode`] → [`parse`] →
//! [`batch`] → [`sink`] → [`ack`] → [`checkpoint`].
//!
//! Imports point one way (tests/module_graph.rs fails on a cycle); each layer uses only the
//! ones before it:
//! 1. leaves: [`kind`], [`time`], [`lines`], [`progress`], [`decode`], [`fault`],
//!    [`platform`], [`warn_limit`]
//! 2. [`record`], [`checkpoint`], [`discover`]; [`privacy`] (over records), then [`config`]
//! 3. [`parse`], [`batch`] (owns the [`batch::Encode`] trait the sinks implement)
//! 4. [`ack`], then [`metrics`], then [`sink`], then [`tail`], then [`retention`]
//! 5. [`pipeline`], which wires them together.

pub mod ack;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod discover;
pub mod epost;
pub mod fault;
pub mod flow;
pub mod kind;
pub mod lines;
pub mod metrics;
pub mod parse;
pub mod pipeline;
pub mod platform;
pub mod privacy;
pub mod progress;
pub mod record;
pub mod retention;
pub mod sink;
pub mod tail;
pub mod time;
pub mod warn_limit;
