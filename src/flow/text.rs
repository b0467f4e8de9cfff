//! The report as plain text, laid out like pflogsumm's (for a daily mail from Task Scheduler
//! or cron).

use std::fmt::Write;

use super::report::{Ranked, Report};

pub fn render(r: &Report, top: usize) -> String {
    let mut o = String::new();
    let span = match (&r.first, &r.last) {
        (Some(a), Some(b)) => format!("{a} .. {b}"),
        _ => "no records".to_string(),
    };
    let _ = writeln!(o, "E-Post mail report: {span}\n");
    heading(&mut o, "Grand totals");
    for (n, what) in r.totals.rows() {
        let _ = writeln!(o, "{n:>9}  {what}");
    }
    let d = &r.delay_seconds;
    let show = |v: Option<i64>| v.map_or("-".to_string(), |s| format!("{s} s"));
    let _ = writeln!(
        o,
        "\nreceive -> deliver delay over {} messages: median {}, 95th percentile {}, max {}\n",
        d.messages,
        show(d.median),
        show(d.p95),
        show(d.max)
    );
    heading(&mut o, "Per-hour traffic");
    let _ = writeln!(
        o,
        "{:<30}{:>9}{:>10}{:>8}{:>10}{:>11}",
        "hour", "received", "delivered", "failed", "rejected", "auth fail"
    );
    for h in &r.per_hour {
        let _ = writeln!(
            o,
            "{:<30}{:>9}{:>10}{:>8}{:>10}{:>11}",
            h.hour, h.received, h.delivered, h.failed, h.rejected_sessions, h.auth_failures
        );
    }
    o.push('\n');
    for (title, list) in sections(r) {
        heading(&mut o, title);
        list_block(&mut o, list, top);
    }
    heading(&mut o, "Records by kind");
    for (k, n) in &r.records_by_kind {
        let _ = writeln!(o, "{n:>9}  {k}");
    }
    if !r.unreadable.is_empty() {
        o.push('\n');
        heading(&mut o, "Unreadable files (skipped)");
        for u in &r.unreadable {
            let _ = writeln!(o, "  {u}");
        }
    }
    o
}

/// The ranked lists in the order both the text and the HTML report show them.
pub fn sections(r: &Report) -> [(&'static str, &[Ranked]); 8] {
    [
        ("Top senders", &r.top_senders),
        ("Top recipients", &r.top_recipients),
        ("Failure reasons", &r.failure_reasons),
        ("Failures by destination", &r.failures_by_destination),
        ("Rejected sessions by client IP", &r.rejected_ips),
        ("Auth failures by IP", &r.auth_failures_by_ip),
        ("Auth failures by user", &r.auth_failures_by_user),
        ("POP3/IMAP logins by user", &r.logins_by_user),
    ]
}

fn heading(o: &mut String, title: &str) {
    let _ = writeln!(o, "{title}\n{}", "-".repeat(title.chars().count()));
}

fn list_block(o: &mut String, list: &[Ranked], top: usize) {
    if list.is_empty() {
        o.push_str("        none\n\n");
        return;
    }
    for e in list.iter().take(top) {
        let _ = writeln!(o, "{:>9}  {}", e.count, e.key);
    }
    if list.len() > top {
        let _ = writeln!(o, "          ({} more)", list.len() - top);
    }
    o.push('\n');
}
