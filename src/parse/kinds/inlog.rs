//! inlog: one line per accepted message.
//! `<Bid@host> [time] ip helo sender rcpt...`, single spaces, empty fields leave double spaces.

use std::borrow::Cow;

use super::{Parsed, Shape, bracketed_time, nonempty, split_message_id};
use crate::record::Outcome;

pub fn parse(line: &str) -> Shape<'_> {
    let rest = line
        .strip_prefix('<')
        .ok_or("inlog line does not start with `<id@host>`")?;
    let close = rest.find("> ").ok_or("missing `> ` after the message id")?;
    let (local_id, _suffix, host) =
        split_message_id(&rest[..close]).ok_or("malformed message id")?;
    let (time, rest) = bracketed_time(&rest[close + 2..]).ok_or("missing [time]")?;
    let rest = rest.strip_prefix(' ').ok_or("missing client ip")?;
    let rest = rest.trim_end_matches([' ', '\r']);
    let mut tokens = rest.split(' ');
    let ip = tokens.next().unwrap_or("");
    if ip.is_empty() {
        return Err("missing client ip");
    }
    let helo = tokens.next().unwrap_or("");
    let sender = tokens.next().unwrap_or("");
    let mut p = Parsed::new("message-received", Some(time));
    p.outcome = Some(Outcome::Success);
    let f = &mut p.fields;
    f.local_id = Some(Cow::Borrowed(local_id));
    f.server_domain = host.map(Cow::Borrowed);
    f.client_ip = nonempty(ip);
    f.smtp_helo = nonempty(helo);
    if !sender.is_empty() {
        f.from = vec![Cow::Borrowed(sender)];
    }
    f.to = tokens
        .filter(|t| !t.is_empty())
        .map(Cow::Borrowed)
        .collect();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_recipients() {
        let p = parse("<B0000097587@mx.example.jp> [30/Nov/2017:08:22:09] 198.51.100.7 pc01 taro@example.jp jiro@example.com saburo@example.org shiro@example.jp").unwrap();
        let f = &p.fields;
        assert_eq!(f.local_id.as_deref(), Some("B0000097587"));
        assert_eq!(f.server_domain.as_deref(), Some("mx.example.jp"));
        assert_eq!(f.client_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(f.smtp_helo.as_deref(), Some("pc01"));
        assert_eq!(f.from, vec!["taro@example.jp"]);
        assert_eq!(
            f.to,
            vec!["jiro@example.com", "saburo@example.org", "shiro@example.jp"]
        );
    }

    #[test]
    fn empty_sender_and_empty_helo() {
        let p = parse("<B0000097590@mx.example.jp> [30/Nov/2017:08:25:40] 203.0.113.77 mx.example.net  postmaster@example.jp").unwrap();
        assert_eq!(p.fields.smtp_helo.as_deref(), Some("mx.example.net"));
        assert!(p.fields.from.is_empty());
        assert_eq!(p.fields.to, vec!["postmaster@example.jp"]);
        let p = parse("<B0000097403@mx.example.jp> [11/Nov/2008:17:58:25] 192.168.1.20  alice@example.jp bob@example.jp").unwrap();
        assert_eq!(p.fields.smtp_helo, None);
        assert_eq!(p.fields.from, vec!["alice@example.jp"]);
        assert_eq!(p.fields.to, vec!["bob@example.jp"]);
    }

    #[test]
    fn malformed() {
        assert!(parse("B0000097590@mx [30/Nov/2017:08:25:40] 1.2.3.4").is_err());
        assert!(parse("<B0000097590@mx> [30/Nov/2017:08:25:40]").is_err());
    }
}
