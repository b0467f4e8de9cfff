//! acceptlog: `Client accept now.` on connect, then the result of the SMTP negotiation.

use std::borrow::Cow;

use super::{Parsed, Shape, bracketed_time, nonempty, real_local_id, split_local_id};
use crate::record::Outcome;

// Long on purpose: one pass over the line's shapes in the order the log writes them; each arm is a
// shape.
pub fn parse(line: &str) -> Shape<'_> {
    // The vendor FAQ prints lines with a leading space; the debug build's extra lines start
    // with one too (` <id>, [..], ..`).
    let text = line.trim_start_matches(' ');
    if text.starts_with('<') {
        let mut p = Parsed::new("debug-trace", None);
        p.outcome = Some(Outcome::Unknown);
        return Ok(p);
    }
    let (time, rest) = bracketed_time(text).ok_or("acceptlog line does not start with [time]")?;
    let rest = rest
        .strip_prefix(", (")
        .ok_or("missing `, (server)` after the time")?;
    let close = rest
        .find("), ")
        .ok_or("missing `), ` after the server name")?;
    let server = &rest[..close];
    let rest = &rest[close + 3..];

    if let Some(head) = rest.strip_suffix(", Client accept now.") {
        let mut p = Parsed::new("connection-accepted", Some(time));
        p.outcome = Some(Outcome::Success);
        let (head, ssl) = match head.strip_suffix(" SSL") {
            Some(h) => (h, true),
            None => (head, false),
        };
        let (ip, port) = head
            .strip_prefix('[')
            .and_then(|h| h.rsplit_once("]:"))
            .ok_or("connection record without `[ip]:port`")?;
        let port: u16 = port.parse().map_err(|_| "port is not a number")?;
        let f = &mut p.fields;
        f.server_domain = nonempty(server);
        f.client_ip = nonempty(ip);
        f.server_port = Some(port);
        f.tls_established = Some(ssl);
        return Ok(p);
    }

    // Record 2: `peer[ip], detail,<Bid>,status`. The detail may hold commas, so cut from the
    // right.
    let (head, status) = rest
        .rsplit_once(">,")
        .ok_or("neither `Client accept now.` nor `,<id>,status`")?;
    let (head, id) = head.rsplit_once(",<").ok_or("missing `,<id>`")?;
    if !matches!(status, "ok" | "abort" | "connection timeout") {
        return Err("unknown session status");
    }
    let (local_id, _) = split_local_id(id).ok_or("malformed message id")?;
    let open = head.find('[').ok_or("missing `[ip]`")?;
    let close = head[open..]
        .find("], ")
        .or_else(|| head[open..].ends_with(']').then(|| head.len() - open - 1))
        .ok_or("missing `], ` after the ip")?
        + open;
    let peer = head[..open].trim_end_matches(' ');
    let ip = &head[open + 1..close];
    let detail = head.get(close + 3..).unwrap_or("");

    let mut p = Parsed::new("smtp-session", Some(time));
    p.outcome = Some(if status == "ok" {
        Outcome::Success
    } else {
        Outcome::Failure
    });
    let f = &mut p.fields;
    f.server_domain = nonempty(server);
    f.client_ip = nonempty(ip);
    if !peer.is_empty() && peer != ip {
        f.client_domain = Some(Cow::Borrowed(peer));
    }
    f.local_id = real_local_id(local_id).map(Cow::Borrowed);
    f.session_status = Some(Cow::Borrowed(status));
    if let Some(auth) = detail.strip_prefix("AUTH-") {
        let (method, rest) = auth.split_once(':').ok_or("AUTH detail without `:`")?;
        let (user, result) = if let Some(u) = rest.strip_suffix(" [success]") {
            (u, "success")
        } else if let Some(u) = rest.strip_suffix(" [failed]") {
            (u, "failed")
        } else {
            return Err("AUTH detail without [success] or [failed]");
        };
        f.auth_method = nonempty(method);
        f.user_name = nonempty(user);
        f.auth_result = Some(Cow::Borrowed(result));
    } else if detail.starts_with("It was in the ORDB IP") {
        f.reject_reason = Some("dnsbl");
    } else if !detail.is_empty() {
        f.from = vec![Cow::Borrowed(super::unbracket(detail))];
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept() {
        let p = parse(
            "[30/Nov/2017:08:20:45], (mx.example.jp), [198.51.100.7]:465 SSL, Client accept now.",
        )
        .unwrap();
        assert_eq!(p.action, "connection-accepted");
        assert_eq!(p.fields.client_ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(p.fields.server_port, Some(465));
        assert_eq!(p.fields.tls_established, Some(true));
        assert_eq!(p.fields.server_domain.as_deref(), Some("mx.example.jp"));
        let p = parse(
            " [30/Nov/2017:08:21:02], (mx.example.jp), [2001:db8::25]:587, Client accept now.",
        )
        .unwrap();
        assert_eq!(p.fields.client_ip.as_deref(), Some("2001:db8::25"));
        assert_eq!(p.fields.tls_established, Some(false));
    }

    #[test]
    fn session_with_sender_and_peer_name() {
        let p = parse("[30/Nov/2017:08:22:06], (mx.example.jp), client.example.net [203.0.113.5], alice@example.net,<B0000097586>,ok").unwrap();
        assert_eq!(p.action, "smtp-session");
        assert_eq!(p.outcome, Some(Outcome::Success));
        let f = &p.fields;
        assert_eq!(f.client_domain.as_deref(), Some("client.example.net"));
        assert_eq!(f.client_ip.as_deref(), Some("203.0.113.5"));
        assert_eq!(f.local_id.as_deref(), Some("B0000097586"));
        assert_eq!(f.from, vec!["alice@example.net"]);
        assert_eq!(f.session_status.as_deref(), Some("ok"));
    }

    #[test]
    fn session_auth_ordb_timeout() {
        let p = parse("[30/Nov/2017:08:23:11], (mx.example.jp), 2001:db8::25[2001:db8::25], AUTH-PLAIN:hanako@example.jp [failed],<B0000097588>,abort").unwrap();
        let f = &p.fields;
        assert_eq!(f.client_domain, None);
        assert_eq!(f.auth_method.as_deref(), Some("PLAIN"));
        assert_eq!(f.user_name.as_deref(), Some("hanako@example.jp"));
        assert_eq!(f.auth_result.as_deref(), Some("failed"));
        assert!(f.from.is_empty());
        assert_eq!(p.outcome, Some(Outcome::Failure));

        let p = parse("[30/Nov/2017:08:22:30], (mx.example.jp), 192.0.2.66[192.0.2.66], It was in the ORDB IP.,<B0000000000>,abort").unwrap();
        assert_eq!(p.fields.reject_reason, Some("dnsbl"));
        assert_eq!(p.fields.local_id, None);

        let p = parse("[30/Nov/2017:08:24:00], (mx.example.jp), 203.0.113.9[203.0.113.9], ,<B0000097589>,connection timeout").unwrap();
        assert_eq!(
            p.fields.session_status.as_deref(),
            Some("connection timeout")
        );
        assert!(p.fields.from.is_empty());
        // OEM build: twelve zeros
        let p = parse("[30/Nov/2017:08:22:30], (mx), 192.0.2.66[192.0.2.66], It was in the ORDB IP.,<B000000000000>,abort").unwrap();
        assert_eq!(p.fields.local_id, None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("[30/Nov/2017:08:24:00], (mx), hello").is_err());
        assert!(parse("hello").is_err());
        assert!(
            parse("[30/Nov/2017:08:24:00], (mx), 1.2.3.4[1.2.3.4], x,<B0000097589>,maybe").is_err()
        );
    }
}
