//! outlog and outlocallog (same format):
//! `Bid[-sfx]@host sent on [time] to <ip> <host> from <sender|-> to <rcpt> <rcpt> ... `
//! The 2008 guide shows a single next-hop token; both shapes parse.

use std::borrow::Cow;

use super::{Parsed, Shape, bracketed_time, is_ip, split_message_id};
use crate::record::Outcome;

pub fn parse(line: &str) -> Shape<'_> {
    let (id, rest) = line
        .split_once(" sent on ")
        .ok_or("no ` sent on ` in delivery line")?;
    let (local_id, suffix, host) = split_message_id(id).ok_or("malformed message id")?;
    let (time, rest) = bracketed_time(rest).ok_or("missing [time] after `sent on`")?;
    let rest = rest
        .strip_prefix(" to ")
        .ok_or("missing ` to ` after the time")?;
    let (hop, rest) = rest.split_once(" from ").ok_or("missing ` from `")?;
    let (sender, rcpts) = match rest.split_once(" to ") {
        Some(x) => x,
        None => (
            rest.strip_suffix(" to")
                .ok_or("missing ` to ` before recipients")?,
            "",
        ),
    };

    let mut p = Parsed::new("message-delivered", Some(time));
    p.outcome = Some(Outcome::Success);
    let f = &mut p.fields;
    f.local_id = Some(Cow::Borrowed(local_id));
    f.queue_suffix = suffix.map(Cow::Borrowed);
    f.server_domain = host.map(Cow::Borrowed);
    let mut hop_tokens = hop.split(' ').filter(|t| !t.is_empty());
    match (hop_tokens.next(), hop_tokens.next()) {
        (Some(a), Some(b)) => {
            f.destination_ip = Some(Cow::Borrowed(a));
            f.destination_domain = Some(Cow::Borrowed(b));
        }
        (Some(a), None) if is_ip(a) => f.destination_ip = Some(Cow::Borrowed(a)),
        (Some(a), None) => f.destination_domain = Some(Cow::Borrowed(a)),
        _ => {}
    }
    if !sender.is_empty() && sender != "-" {
        f.from = vec![Cow::Borrowed(sender)];
    }
    f.to = rcpts
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(Cow::Borrowed)
        .collect();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes() {
        let p = parse("B0000097587-001@mx.example.jp sent on [30/Nov/2017:08:22:16] to 203.0.113.40 mail.example.org from taro@example.jp to saburo@example.org ").unwrap();
        let f = &p.fields;
        assert_eq!(f.local_id.as_deref(), Some("B0000097587"));
        assert_eq!(f.queue_suffix.as_deref(), Some("-001"));
        assert_eq!(f.destination_ip.as_deref(), Some("203.0.113.40"));
        assert_eq!(f.destination_domain.as_deref(), Some("mail.example.org"));
        assert_eq!(f.from, vec!["taro@example.jp"]);
        assert_eq!(f.to, vec!["saburo@example.org"]);

        let p = parse("B0000055688@mx.example.jp sent on [01/Mar/2008:10:29:51] to mx.dest.example from a@example.jp to b@dest.example").unwrap();
        assert_eq!(p.fields.destination_ip, None);
        assert_eq!(
            p.fields.destination_domain.as_deref(),
            Some("mx.dest.example")
        );
        assert_eq!(p.fields.to, vec!["b@dest.example"]);
    }

    #[test]
    fn dash_sender_and_several_recipients() {
        let p = parse("B0000097590-E001@mx.example.jp sent on [30/Nov/2017:08:25:50] to 203.0.113.77 mx.example.net from - to a@x.jp b@x.jp ").unwrap();
        assert!(p.fields.from.is_empty());
        assert_eq!(p.fields.queue_suffix.as_deref(), Some("-E001"));
        assert_eq!(p.fields.to, vec!["a@x.jp", "b@x.jp"]);
    }

    #[test]
    fn empty_hop() {
        let p = parse("B0000097590@h sent on [30/Nov/2017:08:25:50] to   from a@b to c@d").unwrap();
        assert_eq!(p.fields.destination_ip, None);
        assert_eq!(p.fields.destination_domain, None);
    }
}
