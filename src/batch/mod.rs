//! Batch: records encoded for each sink, grouped by events, bytes and time, carrying the file
//! offsets they cover so that an acknowledgement can move the checkpoint. (Built with the
//! tailer; see issue "Checkpointing tailer".)
