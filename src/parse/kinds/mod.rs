//! One module per line shape. Each takes the decoded text of one line (without CR/LF) and
//! returns its fields, or why it did not fit.

pub mod acceptlog;
pub mod delivery;
pub mod faillog;
pub mod imap4log;
pub mod inlog;
pub mod maildblog;
pub mod pop3log;
pub mod senderlog;
pub mod trace;
pub mod viruslog;

use std::borrow::Cow;
use std::net::IpAddr;

use crate::record::{Fields, Outcome};
use crate::time::{LocalTime, parse_epost_time};

/// What a line shape yields besides the common fields.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    /// `None` when the line carries no time of its own.
    pub time: Option<LocalTime>,
    pub action: Cow<'a, str>,
    pub outcome: Option<Outcome>,
    pub fields: Fields<'a>,
    /// The line with credentials masked, when it held any.
    pub redacted: Option<String>,
}

impl<'a> Parsed<'a> {
    fn new(action: &'static str, time: Option<LocalTime>) -> Self {
        Parsed {
            time,
            action: Cow::Borrowed(action),
            outcome: None,
            fields: Fields::default(),
            redacted: None,
        }
    }
}

/// `whole` with its sub-slice `part` replaced by `with`; `None` if `part` does not lie inside
/// `whole` (the offsets are checked, never trusted).
pub(crate) fn replace_within(whole: &str, part: &str, with: &str) -> Option<String> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    Some(format!(
        "{}{}{}",
        whole.get(..start)?,
        with,
        whole.get(end..)?
    ))
}

pub type Shape<'a> = Result<Parsed<'a>, &'static str>;

/// `[dd/Mon/yyyy:HH:MM:SS]` at the start of `s`; returns the time and the rest after `]`.
pub(crate) fn bracketed_time(s: &str) -> Option<(LocalTime, &str)> {
    let inner = s.strip_prefix('[')?;
    let t = parse_epost_time(inner.get(..20)?)?;
    let rest = inner[20..].strip_prefix(']')?;
    Some((t, rest))
}

/// `B0000097587-R0001@mx.example.jp` → (`B0000097587`, `-R0001`, `mx.example.jp`).
pub(crate) fn split_message_id(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (id, host) = match s.find('@') {
        Some(i) => (&s[..i], Some(&s[i + 1..]).filter(|h| !h.is_empty())),
        None => (s, None),
    };
    let (bare, suffix) = split_local_id(id)?;
    Some((bare, suffix, host))
}

/// `B0000097587-R0001` → (`B0000097587`, `-R0001`). The id is `B` and 10 to 14 hex digits.
pub(crate) fn split_local_id(id: &str) -> Option<(&str, Option<&str>)> {
    let b = id.as_bytes();
    if b.first() != Some(&b'B') {
        return None;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if !(10..=14).contains(&digits) {
        return None;
    }
    let end = 1 + digits;
    let suffix = &id[end..];
    if suffix.is_empty() {
        return Some((id, None));
    }
    let ok = suffix.len() > 1
        && suffix.starts_with('-')
        && suffix[1..].bytes().all(|c| c.is_ascii_alphanumeric());
    ok.then_some((&id[..end], Some(suffix)))
}

/// An id of all zeros means "no message" (ORDB rejects).
pub(crate) fn real_local_id(id: &str) -> Option<&str> {
    let digits = id.get(1..).unwrap_or("");
    (!digits.bytes().all(|c| c == b'0')).then_some(id)
}

pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// Leading three-digit reply code (`250 ...`, `250-...`, `250`).
pub(crate) fn reply_code(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 3 && !matches!(b[3], b' ' | b'-' | b'\r') {
        return None;
    }
    let code =
        (u16::from(b[0] - b'0')) * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
    (100..600).contains(&code).then_some(code)
}

pub(crate) fn outcome_of_code(code: u16) -> Outcome {
    if code >= 400 {
        Outcome::Failure
    } else {
        Outcome::Success
    }
}

pub(crate) fn nonempty(s: &str) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(Cow::Borrowed(s))
}

/// Strips one pair of angle brackets.
pub(crate) fn unbracket(s: &str) -> &str {
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
}

pub(crate) fn upper(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(s.to_ascii_uppercase())
    } else {
        Cow::Borrowed(s)
    }
}

pub(crate) fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        assert_eq!(
            split_message_id("B0000097587-R0001@mx.example.jp"),
            Some(("B0000097587", Some("-R0001"), Some("mx.example.jp")))
        );
        assert_eq!(
            split_message_id("B0000097590-E001@h"),
            Some(("B0000097590", Some("-E001"), Some("h")))
        );
        assert_eq!(
            split_message_id("B0000097590-M0000abcd"),
            Some(("B0000097590", Some("-M0000abcd"), None))
        );
        assert_eq!(
            split_message_id("B1A0000097590@h"),
            Some(("B1A0000097590", None, Some("h")))
        );
        assert_eq!(split_message_id("X0000097590@h"), None);
        assert_eq!(split_message_id("B123@h"), None);
        assert_eq!(split_message_id("B0000097590-@h"), None);
        assert_eq!(real_local_id(""), None);
        assert_eq!(real_local_id("B000"), None);
    }

    #[test]
    fn reply_codes() {
        assert_eq!(reply_code("250 ok"), Some(250));
        assert_eq!(reply_code("250-SIZE"), Some(250));
        assert_eq!(reply_code("354"), Some(354));
        assert_eq!(reply_code("2500 x"), None);
        assert_eq!(reply_code("25 x"), None);
        assert_eq!(reply_code("999 x"), None);
    }
}
