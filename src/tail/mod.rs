//! Tail: reading files from a checkpointed offset, line by line.

pub mod lines;
