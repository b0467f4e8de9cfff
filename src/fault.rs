//! Fault injection for the test suite, in debug builds only: `EPOST_FAULT` names points that
//! panic on purpose, so that tests can prove a panic is contained (a parser's) or makes the
//! process fail loudly (any other component's). Release builds compile every point to `false`.
//!
//! `EPOST_FAULT=parse-panic=MARKER` panics in the parser on a line holding MARKER;
//! `sink-panic=MARKER` in a sink's delivery of a batch holding MARKER; `tail-panic=MARKER` in the
//! tailer (outside the parser) on a file whose path holds MARKER; `checkpoint-panic` in the
//! checkpoint writer. Several are separated by commas.

/// Whether the fault `point` is armed for `data`.
#[cfg(debug_assertions)]
pub fn hit(point: &str, data: &[u8]) -> bool {
    static ARMED: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var("EPOST_FAULT")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| match s.split_once('=') {
                Some((p, m)) => (p.to_string(), m.as_bytes().to_vec()),
                None => (s.to_string(), Vec::new()),
            })
            .collect()
    });
    armed.iter().any(|(p, marker)| {
        p == point && (marker.is_empty() || memchr::memmem::find(data, marker).is_some())
    })
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_point: &str, _data: &[u8]) -> bool {
    false
}
