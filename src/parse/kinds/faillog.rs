//! faillog: `Bid@host send fail on [time] from <sender> to <rcpt> [reason]`. The sender is
//! left empty (double space) for a null sender; builds before 2007 have no reason.

use std::borrow::Cow;

use super::{Parsed, Shape, bracketed_time, reply_code, split_message_id};
use crate::record::Outcome;

pub fn parse(line: &str) -> Shape<'_> {
    let (id, rest) = line
        .split_once(" send fail on ")
        .or_else(|| line.split_once(" sent on "))
        .ok_or("no ` send fail on ` in faillog line")?;
    let (local_id, suffix, host) = split_message_id(id).ok_or("malformed message id")?;
    let (time, rest) = bracketed_time(rest).ok_or("missing [time]")?;
    let rest = rest.trim_start_matches(' ');
    let rest = rest.strip_prefix("from ").ok_or("missing `from`")?;
    let (sender, rest) = rest.split_once(" to ").ok_or("missing ` to `")?;
    let rest = rest.trim_start_matches(' ').trim_end_matches([' ', '\r']);
    let (rcpts, reason) = match rest.find(" [") {
        Some(i) if rest.ends_with(']') => (&rest[..i], Some(&rest[i + 2..rest.len() - 1])),
        _ if rest.starts_with('[') && rest.ends_with(']') => ("", Some(&rest[1..rest.len() - 1])),
        _ => (rest, None),
    };

    let mut p = Parsed::new("delivery-failed", Some(time));
    p.outcome = Some(Outcome::Failure);
    let f = &mut p.fields;
    f.local_id = Some(Cow::Borrowed(local_id));
    f.queue_suffix = suffix.map(Cow::Borrowed);
    f.server_domain = host.map(Cow::Borrowed);
    let sender = sender.trim();
    if !sender.is_empty() {
        f.from = vec![Cow::Borrowed(sender)];
    }
    f.to = rcpts
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(Cow::Borrowed)
        .collect();
    if let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        f.error_message = Some(Cow::Borrowed(reason));
        f.reply_code = reply_code(reason);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_reason() {
        let p = parse("B0000097588@mx.example.jp send fail on [30/Nov/2017:09:10:51] from taro@example.jp to nobody@example.com [550 5.1.1 <nobody@example.com>... User unknown]").unwrap();
        let f = &p.fields;
        assert_eq!(f.from, vec!["taro@example.jp"]);
        assert_eq!(f.to, vec!["nobody@example.com"]);
        assert_eq!(
            f.error_message.as_deref(),
            Some("550 5.1.1 <nobody@example.com>... User unknown")
        );
        assert_eq!(f.reply_code, Some(550));
        assert_eq!(p.outcome, Some(Outcome::Failure));
    }

    #[test]
    fn empty_sender_suffix_and_empty_reason() {
        let p = parse("B0000097592-R0001@mx.example.jp send fail on [30/Nov/2017:09:30:00] from  to lost@example.net [Unable to deliver to destination domain]").unwrap();
        assert!(p.fields.from.is_empty());
        assert_eq!(p.fields.queue_suffix.as_deref(), Some("-R0001"));
        assert_eq!(p.fields.to, vec!["lost@example.net"]);
        assert_eq!(p.fields.reply_code, None);
        let p = parse("B0000097593@mx.example.jp send fail on [30/Nov/2017:09:40:00] from a@example.jp to c@example.jp []").unwrap();
        assert_eq!(p.fields.error_message, None);
        assert_eq!(p.fields.to, vec!["c@example.jp"]);
    }

    #[test]
    fn old_shapes() {
        // before 2007: no reason; the 2008 guide: `sent on` and double spaces
        let p = parse("B0000055688@h send fail on [01/Nov/2007:10:29:51] from a@b to c@d").unwrap();
        assert_eq!(p.fields.error_message, None);
        assert_eq!(p.fields.to, vec!["c@d"]);
        let p = parse("B0000055688@h sent on [01/Mar/2008:10:29:51]  from a@b  to c@d [550 x]")
            .unwrap();
        assert_eq!(p.fields.to, vec!["c@d"]);
        assert_eq!(p.fields.reply_code, Some(550));
    }
}
