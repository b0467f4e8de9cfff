//! `trace`'s text: the journey line by line, then one paragraph saying what happened.

use std::collections::HashMap;
use std::fmt::Write;

use super::found::Found;
use super::trace::Traced;
use crate::kind::Kind;

/// One record as a journey line; continuation lines are indented under it.
fn line(o: &mut String, f: &Found) {
    let mut lines = f.message.lines();
    let first = lines.next().unwrap_or("");
    let _ = writeln!(o, "{}  {:<12} {}", f.time, f.kind.name(), first);
    for l in lines {
        let _ = writeln!(o, "{:31}{:<12} {}", "", "", l);
    }
}

pub fn journey(t: &Traced, id: &str) -> String {
    let mut o = String::new();
    if t.records.is_empty() {
        let _ = writeln!(o, "{id}: no record in the window");
        return o;
    }
    for f in &t.records {
        line(&mut o, f);
    }
    o.push('\n');
    o.push_str(&paragraph(&t.records, id));
    o.push('\n');
    o
}

fn hhmm(f: &Found) -> &str {
    f.time.get(..19).unwrap_or(&f.time)
}

/// "received when, from whom, via which IP, TLS or not, delivered where and when, or why not".
pub fn paragraph(records: &[Found], id: &str) -> String {
    let of = |k: Kind| records.iter().filter(move |f| f.kind == k);
    let inlog = of(Kind::Inlog).next();
    let conn = records.iter().find(|f| f.action == "connection-accepted");
    let session = records.iter().find(|f| f.action == "smtp-session");
    let starttls = records
        .iter()
        .any(|f| f.kind == Kind::Receivelog && f.command.as_deref() == Some("STARTTLS"));
    let mut s = String::new();
    match inlog {
        Some(i) => {
            let from = i
                .from
                .first()
                .map_or("the null sender (<>)", String::as_str);
            let _ = write!(s, "{id} was received on {} from {from}", hhmm(i));
            let ip = i.client_ip.as_deref().unwrap_or("?");
            let _ = write!(s, " via {ip}");
            if let Some(h) = &i.helo {
                let _ = write!(s, " (HELO {h})");
            }
            if !i.to.is_empty() {
                let _ = write!(s, " for {}", i.to.join(", "));
            }
        }
        None => {
            let _ = write!(
                s,
                "{id} has no inlog record in the window (not accepted, or received outside it)"
            );
        }
    }
    if let Some(c) = conn {
        let port = c.port.map_or(String::new(), |p| format!(" on port {p}"));
        let tls = if c.tls == Some(true) {
            "over TLS (implicit SSL)"
        } else if starttls {
            "over TLS (STARTTLS)"
        } else {
            "without TLS"
        };
        let _ = write!(s, "; connected{port} {tls}");
    }
    if let Some(sess) = session {
        if sess.auth_result.as_deref() == Some("success")
            && let Some(u) = &sess.user
        {
            let _ = write!(s, ", SMTP AUTH as {u}");
        }
        if sess.session_status.as_deref() == Some("abort") {
            let _ = write!(s, "; the session was aborted at {}", hhmm(sess));
        }
    }
    s.push('.');
    outcomes(records, inlog.is_some(), &mut s);
    s
}

/// Where it went: each delivery, failure and quarantine, or that none is recorded yet.
fn outcomes(records: &[Found], received: bool, s: &mut String) {
    let of = |k: Kind| records.iter().filter(move |f| f.kind == k);
    for d in of(Kind::Outlocallog) {
        let _ = write!(
            s,
            " Delivered locally to {} at {} (outlocallog).",
            d.to.join(", "),
            hhmm(d)
        );
    }
    for d in of(Kind::Outlog) {
        let hop = d
            .destination_domain
            .as_deref()
            .or(d.destination_ip.as_deref())
            .unwrap_or("?");
        let ip = d.destination_ip.as_deref().unwrap_or("");
        let _ = write!(
            s,
            " Delivered to {} via {hop} [{ip}] at {} (outlog).",
            d.to.join(", "),
            hhmm(d)
        );
    }
    for d in of(Kind::Faillog) {
        let why = d.error.as_deref().unwrap_or("no reason given");
        let _ = write!(*s, " Failed for {} at {}: {why}.", d.to.join(", "), hhmm(d));
    }
    for q in of(Kind::Viruslog) {
        let _ = write!(*s, " Quarantined by a filter at {} (viruslog)", hhmm(q));
        if !q.warnings.is_empty() {
            let _ = write!(*s, ": {}", q.warnings.join(" / "));
        }
        s.push('.');
    }
    let attempts = of(Kind::Senderlog).count();
    let done = of(Kind::Outlog).count() + of(Kind::Outlocallog).count() + of(Kind::Faillog).count();
    if received && done == 0 && of(Kind::Viruslog).next().is_none() {
        let _ = write!(
            s,
            " No delivery or failure is recorded yet ({attempts} senderlog lines)."
        );
    }
}

/// An address's or IP's messages, one line each, and its sessions.
pub fn listing(t: &Traced, what: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{what}: {} message(s), {} session(s)\n",
        t.messages.len(),
        t.sessions.len()
    );
    if !t.messages.is_empty() {
        o.push_str("Messages\n--------\n");
    }
    // the records of each message, grouped once: an address with thousands of messages must
    // not make this a walk over every record per message
    let mut by_id: HashMap<&str, Vec<&Found>> = HashMap::new();
    for f in &t.records {
        if let Some(id) = f.local_id.as_deref() {
            by_id.entry(id).or_default().push(f);
        }
    }
    for id in &t.messages {
        let mine = by_id.get(id.as_str()).map_or(&[][..], Vec::as_slice);
        let of = |k: Kind| mine.iter().copied().filter(move |f| f.kind == k);
        let when = mine.first().map_or("?", |f| hhmm(f));
        let inlog = of(Kind::Inlog).next();
        let from = inlog
            .and_then(|i| i.from.first().cloned())
            .unwrap_or_else(|| "<>".into());
        let to = inlog.map(|i| i.to.join(" ")).unwrap_or_default();
        let ip = inlog.and_then(|i| i.client_ip.clone()).unwrap_or_default();
        let delivered = of(Kind::Outlog).count() + of(Kind::Outlocallog).count();
        let failed = of(Kind::Faillog).count();
        let state = if of(Kind::Viruslog).next().is_some() {
            "quarantined".to_string()
        } else if inlog.is_none() {
            "not received".to_string()
        } else {
            format!("delivered {delivered}, failed {failed}")
        };
        let _ = writeln!(o, "{when}  {id}  from {from} to {to}  via {ip}  {state}");
    }
    if !t.sessions.is_empty() {
        o.push_str("\nSessions\n--------\n");
    }
    for f in &t.sessions {
        line(&mut o, f);
    }
    o
}
