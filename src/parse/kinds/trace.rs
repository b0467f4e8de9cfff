//! receivelog, receivepop3 and receiveimap4: `[time], xxxxxxxx, text`, where the 8 hex digits
//! are the session's context address. Protocol text keeps its CR/LF, so one record may span
//! several physical lines; the caller joins them with `\n` before calling [`parse`].

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Parsed, Shape, bracketed_time, outcome_of_code, reply_code, upper};
use crate::kind::Kind;
use crate::parse::redact::Exchange;
use crate::parse::time::LocalTime;
use crate::record::Outcome;

/// The registry dump written at service start.
pub const REGISTRY_START: &str = "---- regestry ----";

/// If `line` begins a record, its time, session handle and the byte offset of the text.
pub fn record_start(line: &str) -> Option<(LocalTime, &str, usize)> {
    let (t, rest) = bracketed_time(line)?;
    let rest = rest.strip_prefix(", ")?;
    let handle = rest.get(..8)?;
    if !handle.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let after = &rest[8..];
    let text_at = if after.starts_with(", ") {
        line.len() - after.len() + 2
    } else if after.is_empty() || after == "," {
        line.len()
    } else {
        return None;
    };
    Some((t, handle, text_at))
}

/// Sessions in the middle of a SASL exchange, by handle. Only pending exchanges are kept, and
/// the map is bounded so that abandoned sessions cannot grow it without limit.
#[derive(Debug, Default)]
pub struct Sessions {
    map: HashMap<String, Exchange>,
}

const MAX_SESSIONS: usize = 4096;

impl Sessions {
    pub fn take(&mut self, key: &str) -> Exchange {
        self.map.remove(key).unwrap_or_default()
    }

    pub fn put(&mut self, key: &str, x: Exchange) {
        if x.is_pending() {
            if self.map.len() >= MAX_SESSIONS {
                self.map.clear();
            }
            self.map.insert(key.to_string(), x);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Client,
    Server,
    Internal,
}

const SMTP_VERBS: &[&str] = &[
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "AUTH",
    "STARTTLS", "TURN", "ETRN", "BDAT", "SEND", "SOML", "SAML",
];
const POP3_VERBS: &[&str] = &[
    "USER", "PASS", "APOP", "STAT", "LIST", "RETR", "DELE", "UIDL", "TOP", "LAST", "NOOP", "RSET",
    "QUIT", "CAPA", "STLS", "AUTH", "UTF8",
];
const IMAP_VERBS: &[&str] = &[
    "CAPABILITY",
    "LOGIN",
    "AUTHENTICATE",
    "SELECT",
    "EXAMINE",
    "LIST",
    "LSUB",
    "STATUS",
    "FETCH",
    "STORE",
    "SEARCH",
    "UID",
    "COPY",
    "MOVE",
    "EXPUNGE",
    "CLOSE",
    "LOGOUT",
    "NOOP",
    "IDLE",
    "NAMESPACE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "APPEND",
    "CHECK",
    "STARTTLS",
    "ID",
    "ENABLE",
    "GETQUOTAROOT",
    "GETQUOTA",
    "GETACL",
    "SETACL",
    "MYRIGHTS",
    "UNSELECT",
    "XLIST",
    "SORT",
    "THREAD",
];

/// The client command of `text`, upper-cased, if it is one for this protocol.
pub(crate) fn client_verb(kind: Kind, text: &str) -> Option<&str> {
    let mut words = text.split(' ');
    let first = words.next()?;
    let (verbs, verb) = match kind {
        Kind::Receiveimap4 => (IMAP_VERBS, words.next()?),
        Kind::Receivepop3 => (POP3_VERBS, first),
        _ => (SMTP_VERBS, first.split(':').next()?),
    };
    let verb = verb.trim_end_matches('\r');
    verbs
        .iter()
        .any(|v| v.eq_ignore_ascii_case(verb))
        .then_some(verb)
}

/// A server line and its outcome.
fn server_reply(kind: Kind, text: &str) -> Option<(Option<u16>, Outcome)> {
    if let Some(code) = reply_code(text) {
        return Some((Some(code), outcome_of_code(code)));
    }
    if text.starts_with("+OK") {
        return Some((None, Outcome::Success));
    }
    if text.starts_with("-ERR") {
        return Some((None, Outcome::Failure));
    }
    if text == "+" || text.starts_with("+ ") || text.starts_with("* ") {
        return Some((None, Outcome::Unknown));
    }
    if kind == Kind::Receiveimap4 {
        let mut w = text.split(' ');
        let _tag = w.next()?;
        return match w.next()? {
            "OK" | "PREAUTH" => Some((None, Outcome::Success)),
            "NO" | "BAD" | "BYE" => Some((None, Outcome::Failure)),
            _ => None,
        };
    }
    None
}

/// Parses one (possibly multi-line) record. Returns the fields and, when a credential was
/// masked, the redacted message.
pub fn parse<'a>(
    kind: Kind,
    text: &'a str,
    sessions: &mut Sessions,
    redact: bool,
) -> (Shape<'a>, Option<String>) {
    if text.starts_with(REGISTRY_START) {
        let mut p = Parsed::new("protocol-trace", None);
        p.outcome = Some(Outcome::Unknown);
        p.fields.direction = Some("internal");
        return (Ok(p), None);
    }
    let first_end = text.find('\n').unwrap_or(text.len());
    let Some((time, handle, at)) = record_start(&text[..first_end]) else {
        return (
            Err("line without `[time], handle, ` prefix and no record before it to continue"),
            None,
        );
    };
    let body = &text[at..first_end];
    let mut p = Parsed::new("protocol-trace", Some(time));
    p.fields.session_id = Some(Cow::Borrowed(handle));
    let mut exchange = sessions.take(handle);
    let dir = if handle == "00000000" {
        Direction::Internal
    } else if let Some((code, outcome)) = server_reply(kind, body) {
        p.fields.reply_code = code;
        p.outcome = Some(outcome);
        Direction::Server
    } else if exchange.is_pending() {
        Direction::Client
    } else if let Some(verb) = client_verb(kind, body) {
        p.fields.command = Some(upper(verb));
        Direction::Client
    } else {
        Direction::Internal
    };
    p.fields.direction = Some(match dir {
        Direction::Client => "client",
        Direction::Server => "server",
        Direction::Internal => "internal",
    });
    p.outcome.get_or_insert(Outcome::Unknown);

    let mut redacted = None;
    match dir {
        Direction::Server => exchange.server_line(body),
        Direction::Client if redact => {
            let mut changed = false;
            let mut out = String::with_capacity(text.len());
            out.push_str(&text[..at]);
            for (i, line) in text[at..].split('\n').enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                let r = exchange.client_line(line);
                changed |= matches!(r, Cow::Owned(_)) || r.as_ref() != line;
                out.push_str(&r);
            }
            if changed {
                redacted = Some(out);
            }
        }
        _ => {}
    }
    sessions.put(handle, exchange);
    (Ok(p), redacted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: Kind, s: &mut Sessions, t: &str) -> (Parsed<'static>, Option<String>) {
        let leaked: &'static str = Box::leak(t.to_string().into_boxed_str());
        let (p, r) = parse(kind, leaked, s, true);
        (p.unwrap(), r)
    }

    #[test]
    fn directions_and_codes() {
        let mut s = Sessions::default();
        let (p, _) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:44], 0145a008, 220 mx E-POST ESMTP Receiver",
        );
        assert_eq!(p.fields.direction, Some("server"));
        assert_eq!(p.fields.reply_code, Some(220));
        assert_eq!(p.fields.session_id.as_deref(), Some("0145a008"));
        let (p, _) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:49], 0145a008, mail from: <a@b>",
        );
        assert_eq!(p.fields.direction, Some("client"));
        assert_eq!(p.fields.command.as_deref(), Some("MAIL"));
        let (p, _) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:49], 00000000, match!!",
        );
        assert_eq!(p.fields.direction, Some("internal"));
        let (p, _) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:49], 0145a008, CloseClient Started.:SOCKET.C",
        );
        assert_eq!(p.fields.direction, Some("internal"));
        let (p, _) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:46], 0145a008, 250-mx Hello\n250-AUTH LOGIN\n250 SIZE 1",
        );
        assert_eq!(p.fields.reply_code, Some(250));
        assert_eq!(p.outcome, Some(Outcome::Success));
        let (p, _) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:22:30], 01470220, 550 5.7.0 Sorry.",
        );
        assert_eq!(p.outcome, Some(Outcome::Failure));
    }

    #[test]
    fn auth_login_follows_the_session() {
        let mut s = Sessions::default();
        let (_, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000aaaa, AUTH LOGIN",
        );
        assert_eq!(r, None);
        one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000aaaa, 334 VXNlcm5hbWU6",
        );
        // another session's line in between must not consume the secret state
        let (_, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000bbbb, NOOP",
        );
        assert_eq!(r, None);
        let (p, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000aaaa, dGFybw==",
        );
        assert_eq!(p.fields.direction, Some("client"));
        assert_eq!(
            r.as_deref(),
            Some("[30/Nov/2017:08:20:50], 0000aaaa, [REDACTED]")
        );
        one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000aaaa, 334 UGFzc3dvcmQ6",
        );
        let (_, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000aaaa, cGFzcw==",
        );
        assert_eq!(
            r.as_deref(),
            Some("[30/Nov/2017:08:20:50], 0000aaaa, [REDACTED]")
        );
        one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000aaaa, 235 ok",
        );
        let (_, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:50], 0000aaaa, QUIT",
        );
        assert_eq!(r, None);
    }

    #[test]
    fn pop3_and_imap() {
        let mut s = Sessions::default();
        let (p, r) = one(
            Kind::Receivepop3,
            &mut s,
            "[30/Nov/2017:18:19:14], 0015d02c, PASS hunter2",
        );
        assert_eq!(p.fields.command.as_deref(), Some("PASS"));
        assert_eq!(
            r.as_deref(),
            Some("[30/Nov/2017:18:19:14], 0015d02c, PASS [REDACTED]")
        );
        let (p, _) = one(
            Kind::Receivepop3,
            &mut s,
            "[30/Nov/2017:18:19:14], 0015d02c, +OK",
        );
        assert_eq!(p.fields.direction, Some("server"));
        assert_eq!(p.outcome, Some(Outcome::Success));
        let (p, r) = one(
            Kind::Receiveimap4,
            &mut s,
            r#"[30/Nov/2017:07:51:53], 00146288, 0001 LOGIN "taro@example.jp" "s3cret pass""#,
        );
        assert_eq!(p.fields.command.as_deref(), Some("LOGIN"));
        assert_eq!(
            r.as_deref(),
            Some(r#"[30/Nov/2017:07:51:53], 00146288, 0001 LOGIN "taro@example.jp" [REDACTED]"#)
        );
        let (p, _) = one(
            Kind::Receiveimap4,
            &mut s,
            "[30/Nov/2017:07:51:53], 00146288, 0001 OK LOGIN completed",
        );
        assert_eq!(p.fields.direction, Some("server"));
        assert_eq!(p.outcome, Some(Outcome::Success));
        let (p, _) = one(
            Kind::Receiveimap4,
            &mut s,
            "[30/Nov/2017:07:51:53], 00146288, * CAPABILITY IMAP4",
        );
        assert_eq!(p.fields.direction, Some("server"));
    }

    #[test]
    fn starts() {
        assert!(record_start("[30/Nov/2017:08:20:44], 0145a008, 220 x").is_some());
        assert!(record_start("[30/Nov/2017:08:20:44], 0145a008, ").is_some());
        assert!(record_start("[30/Nov/2017:08:20:44], 0145a0, 220 x").is_none());
        assert!(record_start("250-AUTH LOGIN").is_none());
    }
}
