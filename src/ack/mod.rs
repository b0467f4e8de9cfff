//! Ack: which byte ranges of which files every sink has confirmed.
