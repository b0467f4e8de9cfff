//! imap4log: `[time] user from ip CMD arg... status`; `-` marks a missing user or argument.

use std::borrow::Cow;

use super::{Parsed, Shape, bracketed_time, lower, nonempty, upper};

pub fn parse(line: &str) -> Shape<'_> {
    let (time, rest) = bracketed_time(line).ok_or("imap4log line does not start with [time]")?;
    let rest = rest.strip_prefix(' ').ok_or("missing user")?;
    let (user, rest) = rest.split_once(" from ").ok_or("no ` from `")?;
    let (ip, rest) = rest.split_once(' ').ok_or("missing command")?;
    let rest = rest.trim_end();
    let (cmd, rest) = rest.split_once(' ').ok_or("missing status")?;
    let (arg, status) = match rest.rsplit_once(' ') {
        Some((a, s)) => (a.trim(), s),
        None => ("", rest),
    };
    if cmd.is_empty() {
        return Err("missing command");
    }
    let mut p = Parsed::new("", Some(time));
    p.action = lower(cmd);
    p.outcome = Some(super::pop3log::status_outcome(status));
    let f = &mut p.fields;
    if !user.is_empty() && user != "-" {
        f.user_name = Some(Cow::Borrowed(user));
    }
    f.client_ip = nonempty(ip);
    f.command = Some(upper(cmd));
    if !arg.is_empty() && arg != "-" {
        let masked = args_redacted(cmd, arg);
        if let Cow::Owned(m) = &masked {
            p.redacted = Some(
                super::replace_within(line, arg, m)
                    .unwrap_or_else(|| crate::parse::redact::MASK.to_string()),
            );
        }
        p.fields.args = Some(masked);
    }
    let f = &mut p.fields;
    f.status = nonempty(status);
    auth_fields(&mut p, cmd, arg);
    Ok(p)
}

/// `LOGIN` and `AUTHENTICATE` with a known outcome are login attempts: `epost.auth.result`
/// and `epost.auth.method` as acceptlog's SMTP AUTH gives them. A failed `LOGIN` is written
/// with user `-`; the name it tried is the argument's first word, and becomes `user.name`.
fn auth_fields<'a>(p: &mut super::Parsed<'a>, cmd: &'a str, arg: &'a str) {
    let method = if cmd.eq_ignore_ascii_case("LOGIN") {
        Cow::Borrowed("LOGIN")
    } else if cmd.eq_ignore_ascii_case("AUTHENTICATE") {
        upper(arg.split(' ').next().unwrap_or(""))
    } else {
        return;
    };
    let result = match p.outcome {
        Some(crate::record::Outcome::Success) => "success",
        Some(crate::record::Outcome::Failure) => "failed",
        _ => return,
    };
    let f = &mut p.fields;
    f.auth_result = Some(Cow::Borrowed(result));
    f.auth_method = nonempty_cow(method);
    if f.user_name.is_none() && cmd.eq_ignore_ascii_case("LOGIN") {
        let tried = arg.split(' ').next().unwrap_or("").trim_matches('"');
        f.user_name = nonempty(tried);
    }
}

fn nonempty_cow(s: Cow<'_, str>) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(s)
}

/// E-Post writes `LOGIN user ****`; a build (or a line) that wrote the password itself, or an
/// `AUTHENTICATE` initial response, is masked like the client command would be.
fn args_redacted<'a>(cmd: &str, arg: &'a str) -> Cow<'a, str> {
    if !cmd.eq_ignore_ascii_case("LOGIN") && !cmd.eq_ignore_ascii_case("AUTHENTICATE") {
        return Cow::Borrowed(arg);
    }
    let prefix = format!("x {cmd} ");
    let line = format!("{prefix}{arg}");
    let mut x = crate::parse::redact::Exchange::default();
    let Cow::Owned(m) = x.client_line(&line) else {
        return Cow::Borrowed(arg);
    };
    let Some(new_arg) = m.get(prefix.len()..) else {
        return Cow::Borrowed(crate::parse::redact::MASK);
    };
    // what was replaced: E-Post's own `****` needs no mask
    let kept = new_arg
        .strip_suffix(crate::parse::redact::MASK)
        .unwrap_or(new_arg);
    let replaced = arg.get(kept.trim_end().len()..).unwrap_or("");
    if !replaced.trim().is_empty() && replaced.trim().bytes().all(|b| b == b'*') {
        Cow::Borrowed(arg)
    } else {
        Cow::Owned(new_arg.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;

    #[test]
    fn shapes() {
        let p = parse(
            "[30/Nov/2017:07:57:47] taro@example.jp from 192.168.0.4 AUTHENTICATE CRAM-MD5 Success",
        )
        .unwrap();
        assert_eq!(p.action, "authenticate");
        assert_eq!(p.fields.args.as_deref(), Some("CRAM-MD5"));
        assert_eq!(p.fields.auth_result.as_deref(), Some("success"));
        assert_eq!(p.fields.auth_method.as_deref(), Some("CRAM-MD5"));
        assert_eq!(p.outcome, Some(Outcome::Success));
        let p =
            parse("[30/Nov/2017:07:57:47] taro@example.jp from 192.168.0.4 NAMESPACE - Success")
                .unwrap();
        assert_eq!(p.fields.args, None);
        assert_eq!(p.fields.auth_result, None);
        let p = parse(
            r#"[30/Nov/2017:07:57:47] taro@example.jp from 192.168.0.4 LIST "" "INBOX" Success"#,
        )
        .unwrap();
        assert_eq!(p.fields.args.as_deref(), Some(r#""" "INBOX""#));
        let p =
            parse("[30/Nov/2017:07:58:10] - from 192.168.0.9 LOGIN hanako@example.jp **** Failed")
                .unwrap();
        // the name it tried
        assert_eq!(p.fields.user_name.as_deref(), Some("hanako@example.jp"));
        assert_eq!(p.fields.auth_result.as_deref(), Some("failed"));
        assert_eq!(p.fields.auth_method.as_deref(), Some("LOGIN"));
        assert_eq!(p.fields.args.as_deref(), Some("hanako@example.jp ****"));
        assert_eq!(p.outcome, Some(Outcome::Failure));
        assert_eq!(p.fields.command.as_deref(), Some("LOGIN"));
        assert_eq!(p.redacted, None);
    }

    #[test]
    fn login_password_written_in_clear_is_masked() {
        let line =
            "[30/Nov/2017:07:58:10] - from 192.168.0.9 LOGIN hanako@example.jp hunter2 Failed";
        let p = parse(line).unwrap();
        assert_eq!(
            p.fields.args.as_deref(),
            Some("hanako@example.jp [REDACTED]")
        );
        assert_eq!(
            p.redacted.as_deref(),
            Some(
                "[30/Nov/2017:07:58:10] - from 192.168.0.9 LOGIN hanako@example.jp [REDACTED] Failed"
            )
        );
        let p = parse(
            "[30/Nov/2017:07:58:10] - from 1.2.3.4 AUTHENTICATE PLAIN AGhhbmFrbwBodW50ZXIy Failed",
        )
        .unwrap();
        assert_eq!(p.fields.args.as_deref(), Some("PLAIN [REDACTED]"));
    }
}
