//! Checkpoint: per file, the offset below which every record was acknowledged by every sink,
//! written atomically.
