//! The viruslog record: one per quarantined `.RCP`/`.MSG` pair.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::ParseOptions;
use super::kinds::viruslog::{parse_rcp, subject};
use super::time::Clock;
use crate::decode::decode;
use crate::record::{Fields, Outcome, Record, Source};

/// The `.MSG` half of a pair, if it exists.
pub struct Message<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
}

/// Builds the record of one pair. `source` describes the `.RCP` file; `rcp_mtime_ms` is its
/// modification time, the only time a quarantined message has.
pub fn record(
    source: &Source,
    options: &ParseOptions,
    rcp: &[u8],
    rcp_mtime_ms: i64,
    msg: Option<Message<'_>>,
    emit: &mut dyn FnMut(&Record<'_>),
) {
    let decoded = decode(rcp, options.encoding);
    let text = decoded.text.replace("\r\n", "\n");
    let message = text.trim_end().to_string();
    let clock = Clock::new(options.zone);
    let mut fields = Fields::default();
    let mut parse_error = None;
    let mut subject_text = None;
    let mut sha = None;
    match parse_rcp(&text) {
        Ok(env) => {
            fields.local_id = env.local_id.map(Cow::Owned);
            fields.server_domain = env.server_domain.map(Cow::Owned);
            fields.from = env.from.into_iter().map(Cow::Owned).collect();
            fields.to = env.to.into_iter().map(Cow::Owned).collect();
            fields.filter_warning = env.warnings.into_iter().map(Cow::Owned).collect();
            fields.unknown_virus = Some(env.unknown_virus);
        }
        Err(e) => parse_error = Some(Cow::Borrowed(e)),
    }
    match &msg {
        Some(m) => {
            subject_text = subject(m.bytes, options.encoding);
            sha = Some(hex(&Sha256::digest(m.bytes)));
            fields.file_path = Some(Cow::Borrowed(m.path));
            fields.file_size = Some(m.bytes.len() as u64);
        }
        None if parse_error.is_none() => {
            parse_error = Some(Cow::Borrowed("the .MSG file of this pair is missing"));
        }
        None => {}
    }
    fields.subject = subject_text.map(Cow::Owned);
    // An envelope that did not parse is text of unknown shape, like any unparsed line.
    let message = match parse_error {
        Some(_) if options.redact => super::redact::scrub_unparsed(&message).into_owned(),
        _ => message,
    };
    fields.file_sha256 = sha.map(Cow::Owned);
    let rec = Record {
        source,
        timestamp: clock.at_unix_ms(rcp_mtime_ms),
        time_inferred: false,
        message: Cow::Owned(message),
        offset: 0,
        action: Cow::Borrowed("message-quarantined"),
        outcome: Outcome::Failure,
        parse_error,
        decode_error: decoded.replaced,
        truncated: false,
        fields,
    };
    emit(&rec);
}

fn hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(HEX[usize::from(x >> 4)] as char);
        s.push(HEX[usize::from(x & 15)] as char);
    }
    s
}
