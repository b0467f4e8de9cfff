//! pop3log: `user from ip CMD[ args] [time] status`. Inferred from the 2008 guide; the time
//! sits near the end, so it is found from the right.

use std::borrow::Cow;

use super::{Parsed, Shape, lower, nonempty, upper};
use crate::parse::redact::Exchange;
use crate::record::Outcome;
use crate::time::parse_epost_time;

pub fn parse(line: &str) -> Shape<'_> {
    let (user, rest) = line
        .split_once(" from ")
        .ok_or("no ` from ` in pop3log line")?;
    let (ip, rest) = rest.split_once(' ').ok_or("missing command")?;
    // the last ` [dd/Mon/yyyy:HH:MM:SS]`
    let mut search = rest.len();
    let (time, cmdline, status) = loop {
        let i = rest[..search].rfind('[').ok_or("missing [time]")?;
        if let Some(t) = rest.get(i + 1..i + 21).and_then(parse_epost_time)
            && rest[i + 21..].starts_with(']')
        {
            break (t, rest[..i].trim_end(), rest[i + 22..].trim());
        }
        search = i;
    };
    let (cmd, args) = match cmdline.split_once(' ') {
        Some((c, a)) => (c, a.trim()),
        None => (cmdline, ""),
    };
    if cmd.is_empty() {
        return Err("missing command");
    }
    let mut p = Parsed::new("", Some(time));
    p.action = lower(cmd);
    p.outcome = Some(status_outcome(status));
    let f = &mut p.fields;
    if !user.is_empty() && user != "-" {
        f.user_name = Some(Cow::Borrowed(user));
    }
    f.client_ip = nonempty(ip);
    f.command = Some(upper(cmd));
    if !args.is_empty() && args != "-" {
        let masked = args_redacted(cmd, args);
        if let Cow::Owned(m) = &masked {
            // `args` is a slice of `line`; if that ever failed, mask the whole line rather
            // than ship it as it is.
            p.redacted = Some(
                super::replace_within(line, args, m)
                    .unwrap_or_else(|| crate::parse::redact::MASK.to_string()),
            );
        }
        p.fields.args = Some(masked);
    }
    let f = &mut p.fields;
    f.status = nonempty(status);
    auth_fields(&mut p, cmd, args);
    Ok(p)
}

/// `PASS`, `APOP` and `AUTH` with a known outcome are login attempts: `epost.auth.result` and
/// `epost.auth.method` (the command, or AUTH's mechanism) as acceptlog's SMTP AUTH gives them.
/// `USER` alone proves nothing and is left out.
fn auth_fields<'a>(p: &mut Parsed<'a>, cmd: &'a str, args: &'a str) {
    let method = if cmd.eq_ignore_ascii_case("PASS") || cmd.eq_ignore_ascii_case("APOP") {
        upper(cmd)
    } else if cmd.eq_ignore_ascii_case("AUTH") {
        upper(args.split(' ').next().unwrap_or(""))
    } else {
        return;
    };
    let result = match p.outcome {
        Some(Outcome::Success) => "success",
        Some(Outcome::Failure) => "failed",
        _ => return,
    };
    p.fields.auth_result = Some(Cow::Borrowed(result));
    p.fields.auth_method = (!method.is_empty()).then_some(method);
}

/// `PASS secret` and `APOP user digest` carry credentials.
fn args_redacted<'a>(cmd: &str, args: &'a str) -> Cow<'a, str> {
    let mut x = Exchange::default();
    let line = format!("{cmd} {args}");
    match x.client_line(&line) {
        Cow::Borrowed(_) => Cow::Borrowed(args),
        Cow::Owned(s) => Cow::Owned(
            s.get(cmd.len() + 1..)
                .unwrap_or(crate::parse::redact::MASK)
                .to_string(),
        ),
    }
}

pub(crate) fn status_outcome(status: &str) -> Outcome {
    let s = status.trim();
    let lower = s.to_ascii_lowercase();
    if s.is_empty() {
        Outcome::Unknown
    } else if s.starts_with("+OK")
        || matches!(
            lower.as_str(),
            "ok" | "success" | "succeeded" | "successful"
        )
    {
        Outcome::Success
    } else if s.starts_with("-ERR")
        || lower.starts_with("fail")
        || matches!(
            lower.as_str(),
            "no" | "bad" | "ng" | "error" | "err" | "denied"
        )
    {
        Outcome::Failure
    } else {
        Outcome::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apop_is_redacted() {
        let p = parse("bob@example.jp from 192.168.0.4 APOP bob@example.jp 2b5f0c9e6f1d8a7c3e4b5a69788f90e1 [30/Nov/2017:18:19:14] ").unwrap();
        assert_eq!(p.action, "apop");
        assert_eq!(p.fields.command.as_deref(), Some("APOP"));
        assert_eq!(p.fields.args.as_deref(), Some("bob@example.jp [REDACTED]"));
        assert_eq!(p.fields.status, None);
        assert_eq!(p.outcome, Some(Outcome::Unknown));
        // no status: not known to be a login
        assert_eq!(p.fields.auth_result, None);
        assert_eq!(p.fields.user_name.as_deref(), Some("bob@example.jp"));
        assert_eq!(p.fields.client_ip.as_deref(), Some("192.168.0.4"));
    }

    #[test]
    fn retr_with_status() {
        let p = parse("bob@example.jp from 192.168.0.4 RETR 1 [30/Nov/2017:18:19:15] +OK").unwrap();
        assert_eq!(p.action, "retr");
        assert_eq!(p.fields.args.as_deref(), Some("1"));
        assert_eq!(p.fields.status.as_deref(), Some("+OK"));
        assert_eq!(p.outcome, Some(Outcome::Success));
        let p = parse("bob@example.jp from 192.168.0.4 PASS hunter2 [30/Nov/2017:18:19:15] Failed")
            .unwrap();
        assert_eq!(p.fields.args.as_deref(), Some("[REDACTED]"));
        assert_eq!(
            p.redacted.as_deref(),
            Some("bob@example.jp from 192.168.0.4 PASS [REDACTED] [30/Nov/2017:18:19:15] Failed")
        );
        assert_eq!(p.outcome, Some(Outcome::Failure));
        assert_eq!(p.fields.auth_result.as_deref(), Some("failed"));
        assert_eq!(p.fields.auth_method.as_deref(), Some("PASS"));
        let p =
            parse("bob@example.jp from 192.168.0.4 USER bob@example.jp [30/Nov/2017:18:19:15] +OK")
                .unwrap();
        assert_eq!(p.fields.auth_result, None);
    }

    #[test]
    fn brackets_inside_args() {
        let p = parse("u from 1.2.3.4 LIST [x] [30/Nov/2017:18:19:15] ").unwrap();
        assert_eq!(p.fields.args.as_deref(), Some("[x]"));
        assert!(parse("u from 1.2.3.4 STAT").is_err());
    }
}
