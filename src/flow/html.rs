//! The report as one self-contained HTML page: inline CSS and SVG charts, no script, no font,
//! no external URL, so it opens from a mail attachment or a file share as it is.

use std::fmt::Write;

use super::report::{Hour, Ranked, Report};
use super::text::sections;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}\
td.k,th.k{text-align:left}.totals td{font-size:18px}.grid{display:flex;flex-wrap:wrap;gap:24px}\
.card{min-width:420px}";

pub fn render(r: &Report, top: usize) -> String {
    let mut o = String::new();
    let span = match (&r.first, &r.last) {
        (Some(a), Some(b)) => format!("{a} .. {b}"),
        _ => "no records".to_string(),
    };
    let _ = write!(
        o,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>E-Post mail report</title>\
         <style>{STYLE}</style></head><body><h1>E-Post mail report</h1><p>{}</p>",
        esc(&span)
    );
    o.push_str("<table class=\"totals\">");
    for (n, what) in r.totals.rows() {
        let _ = write!(o, "<tr><td>{n}</td><td class=\"k\">{what}</td></tr>");
    }
    let d = &r.delay_seconds;
    let show = |v: Option<i64>| v.map_or("-".to_string(), |s| format!("{s} s"));
    let _ = write!(
        o,
        "</table><p>Receive → deliver delay over {} messages: median {}, 95th percentile {}, max {}</p>",
        d.messages,
        show(d.median),
        show(d.p95),
        show(d.max)
    );
    o.push_str("<h2>Traffic per hour</h2>");
    o.push_str(&hour_chart(&r.per_hour));
    o.push_str("<div class=\"grid\">");
    for (title, list) in sections(r) {
        let _ = write!(o, "<div class=\"card\"><h2>{}</h2>", esc(title));
        o.push_str(&bar_list(list, top));
        o.push_str("</div>");
    }
    o.push_str("</div>");
    if !r.unreadable.is_empty() {
        o.push_str("<h2>Unreadable files (skipped)</h2><ul>");
        for u in &r.unreadable {
            let _ = write!(o, "<li>{}</li>", esc(u));
        }
        o.push_str("</ul>");
    }
    o.push_str("</body></html>\n");
    o
}

const SERIES: [(&str, &str); 3] = [
    ("received", "#3b7dd8"),
    ("delivered", "#2e9e5b"),
    ("failed", "#d8433b"),
];

fn series(h: &Hour, i: usize) -> u64 {
    match i {
        0 => h.received,
        1 => h.delivered,
        _ => h.failed + h.rejected_sessions,
    }
}

/// Grouped bars per hour: received, delivered, failed + rejected.
fn hour_chart(hours: &[Hour]) -> String {
    let mut o = String::new();
    if hours.is_empty() {
        return "<p>no records</p>".to_string();
    }
    let (w, h, left, bottom) = (960.0_f64, 260.0_f64, 48.0_f64, 40.0_f64);
    let max = hours
        .iter()
        .flat_map(|x| (0..3).map(move |i| series(x, i)))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (w - left - 10.0) / hours.len() as f64;
    let bar = (slot / 3.5).max(0.5);
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"traffic per hour\">",
        h + 24.0
    );
    let _ = write!(
        o,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{w}\" y2=\"{y}\" stroke=\"#888\"/>\
         <text x=\"{}\" y=\"14\" font-size=\"11\" text-anchor=\"end\">{max}</text>",
        left - 4.0,
        y = h - bottom
    );
    let plot = h - bottom - 10.0;
    for (n, x) in hours.iter().enumerate() {
        let x0 = left + n as f64 * slot;
        for (i, (name, color)) in SERIES.iter().enumerate() {
            let v = series(x, i) as f64;
            let bh = v / max * plot;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{} {name}: {v}</title></rect>",
                x0 + i as f64 * bar,
                h - bottom - bh,
                esc(&x.hour)
            );
        }
        // a label every few slots, enough to read the time axis
        let every = (hours.len() / 12).max(1);
        if n % every == 0 {
            let label = x.hour.get(5..13).unwrap_or(&x.hour).replace('T', " ");
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
                x0,
                h - bottom + 14.0,
                esc(&label)
            );
        }
    }
    for (i, (name, color)) in SERIES.iter().enumerate() {
        let label = if i == 2 { "failed + rejected" } else { name };
        let x = left + i as f64 * 150.0;
        let _ = write!(
            o,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\">{label}</text>",
            h + 4.0,
            x + 16.0,
            h + 15.0
        );
    }
    o.push_str("</svg>");
    o
}

/// Horizontal bars for the first `top` entries of a ranked list.
fn bar_list(list: &[Ranked], top: usize) -> String {
    if list.is_empty() {
        return "<p>none</p>".to_string();
    }
    let shown = &list[..list.len().min(top)];
    let max = shown.iter().map(|e| e.count).max().unwrap_or(1).max(1) as f64;
    let (row, label_w, bar_w) = (20.0_f64, 260.0_f64, 150.0_f64);
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">",
        label_w + bar_w + 60.0,
        row * shown.len() as f64 + 4.0
    );
    for (i, e) in shown.iter().enumerate() {
        let y = i as f64 * row;
        let bw = e.count as f64 / max * bar_w;
        let key: String = e.key.chars().take(34).collect();
        let _ = write!(
            o,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"14\" fill=\"#3b7dd8\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y + 14.0,
            esc(&key),
            y + 3.0,
            label_w + bw + 4.0,
            y + 14.0,
            e.count
        );
    }
    o.push_str("</svg>");
    if list.len() > top {
        let _ = write!(o, "<p>({} more)</p>", list.len() - top);
    }
    o
}
