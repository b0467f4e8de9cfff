//! senderlog: the delivery agent's trace. `[HH:MM:SS(:mmm)] ` (absent in older builds),
//! then `[msgid] `, optionally `[domain] `, then the text. `SendMailMess:` lines carry the SMTP
//! dialogue; the server's answer may carry a second time prefix.

use std::borrow::Cow;

use super::trace::{Sessions, client_verb};
use super::{Parsed, Shape, outcome_of_code, reply_code, split_local_id, upper};
use crate::kind::Kind;
use crate::parse::redact;
use crate::record::Outcome;
use crate::time::parse_clock;

/// `[HH:MM:SS]` or `[HH:MM:SS:mmm]` at the start: (h, m, s, ms) and the length including the
/// following space.
pub fn clock_prefix(s: &str) -> Option<((u32, u32, u32, u32), usize)> {
    let inner = s.strip_prefix('[')?;
    // Look for `]` among the first 13 bytes only; searching bytes (not a `&str` cut at 13)
    // keeps a multi-byte character there from hiding the prefix.
    let close = inner.bytes().take(13).position(|b| b == b']')?;
    let t = parse_clock(inner.get(..close)?)?;
    let mut len = close + 2;
    if s.as_bytes().get(len) == Some(&b' ') {
        len += 1;
    }
    Some((t, len))
}

/// Whether the line starts with a message-id bracket (`[B0000097013]`, `[B…-R0001]`) or the
/// blank one of global lines (`[           ]`): such lines begin a record even without a time.
pub fn id_prefix(s: &str) -> bool {
    bracket(s).is_some_and(|(id, _)| {
        let t = id.trim();
        t.is_empty() && !id.is_empty() || split_local_id(t).is_some()
    })
}

fn bracket(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('[')?;
    let close = inner.find(']')?;
    Some((&inner[..close], &inner[close + 1..]))
}

/// Parses one record; `clock` is the prefix time if the line had one (the caller turns it into
/// a timestamp with the file's date).
// Long on purpose: one pass over the line's fields in the order the log writes them; each arm is a
// field.
pub fn parse<'a>(
    text: &'a str,
    sessions: &mut Sessions,
    redact: bool,
) -> (Shape<'a>, Option<String>) {
    let mut p = Parsed::new("delivery-trace", None);
    p.outcome = Some(Outcome::Unknown);
    let mut rest = text;
    let mut known_shape = false;
    if let Some((_, len)) = clock_prefix(rest) {
        rest = rest.get(len..).unwrap_or("");
        known_shape = true;
    }
    let mut key = None;
    if let Some((id, after)) = bracket(rest) {
        let id_trim = id.trim();
        if id_trim.is_empty() {
            known_shape = true;
            rest = after.strip_prefix(' ').unwrap_or(after);
        } else if let Some((local, suffix)) = split_local_id(id_trim) {
            p.fields.local_id = Some(Cow::Borrowed(local));
            p.fields.queue_suffix = suffix.map(Cow::Borrowed);
            key = Some(id_trim);
            rest = after.strip_prefix(' ').unwrap_or(after);
            known_shape = true;
        }
    }
    if let Some((dom, after)) = bracket(rest)
        && !dom.is_empty()
        && !dom.contains(' ')
        && parse_clock(dom).is_none()
        && after.starts_with(' ')
    {
        p.fields.destination_domain = Some(Cow::Borrowed(dom));
        rest = after.get(1..).unwrap_or("");
    }
    let mut redacted = None;
    // what the first line was, for the continuation lines
    let mut role = Role::Other;
    if let Some(payload) = rest.strip_prefix("SendMailMess:") {
        let mut payload_at = text.len() - payload.len();
        let mut payload = payload;
        if let Some((_, len)) = clock_prefix(payload) {
            payload = &payload[len.min(payload.len())..];
            payload_at += len;
        }
        let first = payload.split('\n').next().unwrap_or("");
        let key = key.unwrap_or("");
        let mut exchange = sessions.take(key);
        let end = payload_at + first.len();
        let mut replace = |r: Cow<'_, str>| {
            if r.as_ref() != first
                && let (Some(head), Some(tail)) = (text.get(..payload_at), text.get(end..))
            {
                redacted = Some(format!("{head}{r}{tail}"));
            }
        };
        if let Some(code) = reply_code(first) {
            p.fields.reply_code = Some(code);
            p.outcome = Some(outcome_of_code(code));
            exchange.server_line(first);
            role = Role::Reply;
            if redact {
                replace(redact::scrub_echo(first));
            }
        } else if first.starts_with("return=") || first.is_empty() {
            // the delivery function's own status, not protocol text
        } else {
            role = Role::Command;
            let was_pending = exchange.is_pending();
            let verb = client_verb(Kind::Senderlog, first);
            if !was_pending && let Some(verb) = verb {
                p.fields.command = Some(upper(verb));
            }
            // No exchange known for this message id (a new hourly or daily file, a
            // restart): a lone base64-looking payload is taken for a secret.
            let lone_token =
                !was_pending && verb.is_none() && redact::looks_like_secret_token(first);
            let r = exchange.client_line(first);
            if redact {
                replace(if lone_token {
                    Cow::Borrowed(redact::MASK)
                } else {
                    r
                });
            }
        }
        sessions.put(key, exchange);
    } else if redact && !known_shape {
        // Neither a time prefix nor a message-id bracket: text of unknown shape.
        if let Cow::Owned(s) = redact::scrub_unparsed(text) {
            redacted = Some(s);
        }
    } else if !redact {
        return (Ok(p), None);
    }
    if redact && text.contains('\n') {
        redacted = continuation_lines(redacted.as_deref().unwrap_or(text), role).or(redacted);
    }
    (Ok(p), redacted)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `SendMailMess:<command>`
    Command,
    /// `SendMailMess:<reply>`
    Reply,
    Other,
}

/// The continuation lines of a record: after a command they are more client text (checked for
/// credential verbs anywhere); after a reply, more of the reply (an error may echo a secret);
/// any line that starts like a record (`[`) but was not taken for one is of unknown shape.
fn continuation_lines(text: &str, role: Role) -> Option<String> {
    redact::map_lines(text, 0, |i, line| {
        if i == 0 {
            Cow::Borrowed(line)
        } else if role == Role::Command || line.starts_with('[') {
            redact::scrub_unparsed(line)
        } else if role == Role::Reply {
            redact::scrub_echo(line)
        } else {
            Cow::Borrowed(line)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &mut Sessions, t: &'static str) -> (Parsed<'static>, Option<String>) {
        let (p, r) = parse(t, s, true);
        (p.unwrap(), r)
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            clock_prefix("[08:22:11:020] x"),
            Some(((8, 22, 11, 20), 15))
        );
        assert_eq!(clock_prefix("[08:22:11] x"), Some(((8, 22, 11, 0), 11)));
        assert_eq!(clock_prefix("[B0000097013] x"), None);
        // a multi-byte character straddling byte 13 used to hide the prefix
        assert_eq!(
            clock_prefix("[08:22:11]\u{7a93}\u{53e3}"),
            Some(((8, 22, 11, 0), 10))
        );
    }

    #[test]
    fn shapes() {
        let mut s = Sessions::default();
        let (p, _) = one(
            &mut s,
            "[08:22:11:020] [B0000097587] [example.com] GetTryServer:(ltime(1)-otime(1))/240=(0)",
        );
        assert_eq!(p.fields.local_id.as_deref(), Some("B0000097587"));
        assert_eq!(p.fields.destination_domain.as_deref(), Some("example.com"));
        let (p, _) = one(
            &mut s,
            "[B0000097013-R0001] SendMailMess:250 ... Recipient ok.",
        );
        assert_eq!(p.fields.queue_suffix.as_deref(), Some("-R0001"));
        assert_eq!(p.fields.reply_code, Some(250));
        let (p, _) = one(
            &mut s,
            "[08:22:11:405] [B0000097587] SendMailMess:[08:22:11:650] 220 mx.example.com ESMTP ready",
        );
        assert_eq!(p.fields.reply_code, Some(220));
        assert_eq!(p.outcome, Some(Outcome::Success));
        let (p, _) = one(
            &mut s,
            "[08:22:12:001] [B0000097587] SendMailMess:MAIL FROM:<taro@example.jp>",
        );
        assert_eq!(p.fields.command.as_deref(), Some("MAIL"));
        let (p, _) = one(&mut s, "[           ] ScrambleBegin(x)");
        assert_eq!(p.fields.local_id, None);
        let (p, _) = one(&mut s, "[B0000097587-001]:ReturnMail x");
        assert_eq!(p.fields.queue_suffix.as_deref(), Some("-001"));
    }

    #[test]
    fn auth_login_secrets() {
        let mut s = Sessions::default();
        one(
            &mut s,
            "[08:22:11:700] [B0000097587] SendMailMess:AUTH LOGIN",
        );
        one(
            &mut s,
            "[08:22:11:705] [B0000097587] SendMailMess:[08:22:11:710] 334 VXNlcm5hbWU6",
        );
        let (p, r) = one(
            &mut s,
            "[08:22:11:720] [B0000097587] SendMailMess:dGFyb0BleGFtcGxlLmpw",
        );
        assert_eq!(p.fields.command, None);
        assert_eq!(
            r.as_deref(),
            Some("[08:22:11:720] [B0000097587] SendMailMess:[REDACTED]")
        );
        one(
            &mut s,
            "[08:22:11:725] [B0000097587] SendMailMess:[08:22:11:728] 334 UGFzc3dvcmQ6",
        );
        let (_, r) = one(
            &mut s,
            "[08:22:11:730] [B0000097587] SendMailMess:c2VjcmV0LXBhc3M=",
        );
        assert_eq!(
            r.as_deref(),
            Some("[08:22:11:730] [B0000097587] SendMailMess:[REDACTED]")
        );
        one(
            &mut s,
            "[08:22:11:790] [B0000097587] SendMailMess:[08:22:11:795] 235 2.7.0 ok",
        );
        let (_, r) = one(
            &mut s,
            "[08:22:12:001] [B0000097587] SendMailMess:MAIL FROM:<t@e>",
        );
        assert_eq!(r, None);
        let (_, r) = one(
            &mut s,
            "[B0000097588] SendMailMess:AUTH PLAIN AHRhcm8AcGFzcw==",
        );
        assert_eq!(
            r.as_deref(),
            Some("[B0000097588] SendMailMess:AUTH PLAIN [REDACTED]")
        );
    }
}
