//! receivelog, receivepop3 and receiveimap4: `[time], xxxxxxxx, text`, where the 8 hex digits
//! are the session's context address. Protocol text keeps its CR/LF, so one record may span
//! several physical lines; the caller joins them with `\n` before calling [`parse`].

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Parsed, Shape, bracketed_time, outcome_of_code, reply_code, upper};
use crate::kind::Kind;
use crate::parse::redact::{self, Exchange};
use crate::record::Outcome;
use crate::time::LocalTime;

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

/// A line that starts like a record (`[...`, or `..., xxxxxxxx, ` near the start) but was not
/// taken for one.
fn looks_like_broken_start(line: &str) -> bool {
    if line.starts_with('[') {
        return true;
    }
    let head = &line.as_bytes()[..line.len().min(48)];
    head.windows(12).any(|w| {
        w[..2] == *b", " && w[2..10].iter().all(u8::is_ascii_hexdigit) && w[10..] == *b", "
    })
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
        if !x.is_idle() {
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

/// A command word of SMTP or POP3 (any case).
pub(crate) fn is_smtp_or_pop3_verb(w: &str) -> bool {
    SMTP_VERBS
        .iter()
        .chain(POP3_VERBS)
        .any(|v| v.eq_ignore_ascii_case(w))
}

/// A word that a client sends alone on a line as a command: never taken for a secret.
pub(crate) fn is_known_word(w: &str) -> bool {
    is_smtp_or_pop3_verb(w)
        || IMAP_VERBS.iter().any(|v| v.eq_ignore_ascii_case(w))
        // ends IMAP IDLE
        || w.eq_ignore_ascii_case("DONE")
}

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
// Long on purpose: one pass over a trace record's shapes (registry, session lines), each arm a
// shape.
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
    let Some((time, handle, at)) = record_start(text.get(..first_end).unwrap_or("")) else {
        return (
            Err("line without `[time], handle, ` prefix and no record before it to continue"),
            None,
        );
    };
    let body = text.get(at..first_end).unwrap_or("");
    let mut p = Parsed::new("protocol-trace", Some(time));
    p.fields.session_id = Some(Cow::Borrowed(handle));
    let mut exchange = sessions.take(handle);
    let single_line = first_end == text.len();
    // A lone base64-looking line on a session with no known exchange: the SASL state may have
    // been lost (restart, new file, session map cleared), so it is taken for a secret.
    let lone_token = single_line
        && !exchange.is_pending()
        && !exchange.in_data()
        && redact::looks_like_secret_token(body);
    let dir = if handle == "00000000" {
        Direction::Internal
    } else if let Some((code, outcome)) = server_reply(kind, body) {
        p.fields.reply_code = code;
        p.outcome = Some(outcome);
        Direction::Server
    } else if exchange.is_pending() || exchange.in_data() {
        Direction::Client
    } else if let Some(verb) = client_verb(kind, body) {
        p.fields.command = Some(upper(verb));
        Direction::Client
    } else if lone_token || !single_line {
        // E-Post's own trace text is one line; raw client input is what spans several.
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
    if dir == Direction::Server {
        exchange.server_line(body);
    }
    if redact {
        redacted = redact::map_lines(text, at, |i, line| {
            let in_data = exchange.in_data();
            let r = match dir {
                Direction::Client if i == 0 && lone_token => Cow::Borrowed(redact::MASK),
                Direction::Client => exchange.client_line(line),
                Direction::Server => redact::scrub_echo(line),
                Direction::Internal => Cow::Borrowed(line),
            };
            // Continuation lines: pipelined client input is checked for credential verbs
            // anywhere (not in DATA content, which is prose), and a line that looks like a
            // record start that did not parse (a broken time or handle) holds text of
            // unknown shape whatever record it was joined to.
            let unknown = match dir {
                Direction::Client => !in_data,
                _ => looks_like_broken_start(line),
            };
            if i > 0 && unknown && r.as_ref() == line {
                redact::scrub_unparsed(line)
            } else {
                r
            }
        });
    } else if dir == Direction::Client {
        for line in text.get(at..).unwrap_or("").split('\n') {
            let _ = exchange.client_line(line);
        }
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

    /// The AUTH LOGIN state is lost (the shipper restarted, a new day's file, or the session
    /// map was cleared): the base64 lines that follow are still taken for secrets.
    #[test]
    fn lone_base64_after_lost_state_is_masked() {
        let mut s = Sessions::default();
        let (p, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:48], 0145a008, cGFzc3dvcmQxMjM=",
        );
        assert_eq!(p.fields.direction, Some("client"));
        assert_eq!(
            r.as_deref(),
            Some("[30/Nov/2017:08:20:48], 0145a008, [REDACTED]")
        );
        // the map is cleared at MAX_SESSIONS; the exchange under way goes with it
        one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:47], 0000aaaa, AUTH LOGIN",
        );
        for i in 0..=MAX_SESSIONS {
            let line = format!("[30/Nov/2017:08:20:47], {i:08x}, AUTH LOGIN");
            one(Kind::Receivelog, &mut s, &line);
        }
        let (_, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:48], 0000aaaa, aHVudGVyMg==",
        );
        assert_eq!(
            r.as_deref(),
            Some("[30/Nov/2017:08:20:48], 0000aaaa, [REDACTED]")
        );
        // an ordinary command word on its own is not masked
        let (p, r) = one(
            Kind::Receivelog,
            &mut s,
            "[30/Nov/2017:08:20:49], 0145a008, QUIT",
        );
        assert_eq!(r, None);
        assert_eq!(p.fields.command.as_deref(), Some("QUIT"));
        let (_, r) = one(
            Kind::Receiveimap4,
            &mut s,
            "[30/Nov/2017:08:20:49], 0145a008, DONE",
        );
        assert_eq!(r, None);
    }

    #[test]
    fn ntlm_second_client_message_is_masked() {
        let mut s = Sessions::default();
        let lines = [
            (
                "AUTH NTLM TlRMTVNTUAABAAAAB4IIAA==",
                Some("AUTH NTLM [REDACTED]"),
            ),
            ("334 TlRMTVNTUAACAAAADAAMADAAAAA=", None),
            (
                "TlRMTVNTUAADAAAAGAAYAEAAAAAYABgAWAAAAAAAAAAAaHVudGVy",
                Some("[REDACTED]"),
            ),
            ("235 2.0.0 Authentication successful.", None),
            ("MAIL FROM:<a@b>", None),
        ];
        for (body, want) in lines {
            let line = format!("[30/Nov/2017:08:20:50], 0000aaaa, {body}");
            let (_, r) = one(Kind::Receivelog, &mut s, &line);
            assert_eq!(
                r,
                want.map(|w| format!("[30/Nov/2017:08:20:50], 0000aaaa, {w}")),
                "{body}"
            );
        }
    }

    #[test]
    fn data_phase_is_not_masked_and_echoed_secrets_are() {
        let mut s = Sessions::default();
        let t = "[30/Nov/2017:08:20:52], 0145a008, ";
        one(
            Kind::Receivelog,
            &mut s,
            &format!("{t}354 Start mail input"),
        );
        let body = format!("{t}Subject: pass login\nZm9vYmFyYmF6\nPASS word\n.");
        let (p, r) = one(Kind::Receivelog, &mut s, &body);
        assert_eq!(p.fields.direction, Some("client"));
        assert_eq!(r, None);
        one(Kind::Receivelog, &mut s, &format!("{t}250 ok"));
        let (_, r) = one(
            Kind::Receivelog,
            &mut s,
            &format!("{t}500 5.5.2 command unrecognized: \"aHVudGVyMg==\""),
        );
        assert_eq!(
            r,
            Some(format!("{t}500 5.5.2 command unrecognized: \"[REDACTED]\""))
        );
        // raw client input of several lines that starts with no verb is client input
        let (p, r) = one(
            Kind::Receivelog,
            &mut s,
            &format!("{t}xyz\nAUTH PLAIN AGJvYgBodW50ZXIy"),
        );
        assert_eq!(p.fields.direction, Some("client"));
        assert_eq!(r, Some(format!("{t}xyz\nAUTH PLAIN [REDACTED]")));
        // a broken prefix joined to a server record
        let (_, r) = one(
            Kind::Receivelog,
            &mut s,
            &format!("{t}250 ok\n[30/Nov/2017:08:2], 0145a008, PASS hunter2"),
        );
        assert_eq!(
            r,
            Some(format!(
                "{t}250 ok\n[30/Nov/2017:08:2], 0145a008, PASS [REDACTED]"
            ))
        );
    }

    #[test]
    fn starts() {
        assert!(record_start("[30/Nov/2017:08:20:44], 0145a008, 220 x").is_some());
        assert!(record_start("[30/Nov/2017:08:20:44], 0145a008, ").is_some());
        assert!(record_start("[30/Nov/2017:08:20:44], 0145a0, 220 x").is_none());
        assert!(record_start("250-AUTH LOGIN").is_none());
    }
}
