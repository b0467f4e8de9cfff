//! Generates a mail work folder made of coherent message journeys, and writes beside it what
//! it generated: `expected.json` (the counts `report --json` must give, in its shape) and
//! `journeys.json` (per message: session, client, recipients, where each was delivered or why
//! it failed; per session: refused, auth failures, POP3/IMAP logins).
//!
//!   cargo run --example gen_flow -- --out target/flow/mail --messages 2000 --seed 7 --days 2 [--gzip]
//!
//! Every count comes from the generator's own choices, never from the shipper's parser, so the
//! tests that compare `report --json` with it compare two independent accounts. The lines are
//! shaped as E-Post writes them (../shared/spec/formats.md): CP932, CRLF, `\r\r\n` in the
//! protocol traces, acceptlog's second record written at session end (so out of time order,
//! and sometimes in the next day's file), senderlog time prefixes, outlog's trailing space.
//! `--gzip` compresses every day's file but the last one (`YYMMDD.log.gz`), as the retention
//! job does.
//!
//! Definitions of the counts: docs/trace-report.md.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

/// SplitMix64: small, deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

const HOST: &str = "MAILSV01";
const SERVER: &str = "mx.example.jp";
const LOCAL_DOMAINS: [&str; 2] = ["example.jp", "sales.example.jp"];
const ZONE: &str = "+09:00";
/// HELO names, some in CP932 as Japanese Windows clients send them.
const HELOS: [&str; 4] = ["client.example.net", "営業部-PC01", "窓口PC", "pc01"];

/// A logical record: the kind, when E-Post wrote it (seconds from day 0, 00:00; it picks the
/// file and the order in it), and its bytes as text, without the final CRLF the writer adds.
struct Line {
    kind: &'static str,
    written: i64,
    text: String,
}

#[derive(Default)]
struct Counts {
    received: u64,
    delivered: u64,
    failed: u64,
    rejected_sessions: u64,
    auth_failures: u64,
    top_senders: BTreeMap<String, u64>,
    top_recipients: BTreeMap<String, u64>,
    failure_reasons: BTreeMap<String, u64>,
    failures_by_destination: BTreeMap<String, u64>,
    rejected_ips: BTreeMap<String, u64>,
    auth_failures_by_ip: BTreeMap<String, u64>,
    auth_failures_by_user: BTreeMap<String, u64>,
    logins_by_user: BTreeMap<String, u64>,
    records_by_kind: BTreeMap<String, u64>,
    /// hour start (seconds from day 0) → counters
    per_hour: BTreeMap<i64, BTreeMap<String, u64>>,
    delays: Vec<i64>,
}

impl Counts {
    fn hour(&mut self, t: i64, what: &str) {
        *self
            .per_hour
            .entry(t.div_euclid(3600) * 3600)
            .or_default()
            .entry(what.to_string())
            .or_default() += 1;
    }
}

fn bump(m: &mut BTreeMap<String, u64>, k: &str) {
    *m.entry(k.to_string()).or_default() += 1;
}

struct Gen {
    rng: Rng,
    base: NaiveDate,
    lines: Vec<Line>,
    counts: Counts,
    journeys: Vec<Value>,
    sessions: Vec<Value>,
    next_id: u64,
    next_handle: u64,
    quarantine: Vec<(String, String, Vec<String>, i64)>,
}

fn main() {
    let mut out = PathBuf::from("target/flow/mail");
    let (mut messages, mut seed, mut days, mut gzip) = (1000u64, 1u64, 2u32, false);
    let mut args = std::env::args().skip(1);
    let usage = "usage: gen_flow --out DIR [--messages N] [--seed S] [--days D] [--gzip]";
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{usage}"));
        match a.as_str() {
            "--out" => out = PathBuf::from(val()),
            "--messages" => messages = val().parse().expect(usage),
            "--seed" => seed = val().parse().expect(usage),
            "--days" => days = val().parse().expect(usage),
            "--gzip" => gzip = true,
            _ => panic!("{usage}"),
        }
    }
    assert!(days >= 1, "{usage}");
    let mut g = Gen {
        rng: Rng(seed),
        base: NaiveDate::from_ymd_opt(2017, 11, 30).expect("date"),
        lines: Vec::new(),
        counts: Counts::default(),
        journeys: Vec::new(),
        sessions: Vec::new(),
        next_id: 100_000,
        next_handle: 0x0140_0000,
        quarantine: Vec::new(),
    };
    let span = i64::from(days) * 86_400;
    for i in 0..messages {
        // a few sessions start just before midnight: their end lands in the next day's file
        let t0 = if i % 97 == 5 {
            (g.rng.below(u64::from(days)) as i64) * 86_400 + 86_390
        } else {
            g.rng.below(span as u64) as i64
        };
        let t0 = t0.min(span - 1200);
        match g.rng.below(100) {
            0..=6 => g.refused_ordb(t0),
            7..=10 => g.smtp_auth_failed(t0),
            11..=14 => g.quarantined(t0),
            15..=16 => g.timed_out(t0),
            _ => g.message(t0),
        }
        if i % 2 == 0 {
            let t = g.rng.below(span as u64 - 60) as i64;
            if g.rng.below(2) == 0 {
                g.pop3(t);
            } else {
                g.imap(t);
            }
        }
    }
    std::fs::remove_dir_all(&out).ok();
    std::fs::create_dir_all(&out).expect("create --out");
    let last_day = i64::from(days) - 1;
    g.write_files(&out, gzip, last_day);
    g.write_quarantine(&out);
    let expected = g.expected();
    write_json(&out.join("expected.json"), &expected);
    write_json(
        &out.join("journeys.json"),
        &json!({"messages": g.journeys, "sessions": g.sessions}),
    );
    eprintln!(
        "wrote {} records under {} ({} messages received)",
        g.lines.len(),
        out.display(),
        g.counts.received
    );
}

fn write_json(path: &Path, v: &Value) {
    let mut s = serde_json::to_string_pretty(v).expect("json");
    s.push('\n');
    std::fs::write(path, s).expect("write json");
}

impl Gen {
    fn stamp(&self, t: i64) -> String {
        self.at(t).format("%d/%b/%Y:%H:%M:%S").to_string()
    }
    fn clock(&self, t: i64, ms: u64) -> String {
        format!("{}:{ms:03}", self.at(t).format("%H:%M:%S"))
    }
    fn at(&self, t: i64) -> NaiveDateTime {
        self.base.and_hms_opt(0, 0, 0).expect("midnight") + Duration::seconds(t)
    }
    fn iso(&self, t: i64) -> String {
        format!("{}.000{ZONE}", self.at(t).format("%Y-%m-%dT%H:%M:%S"))
    }

    /// Adds a record written when it happened.
    fn put(&mut self, kind: &'static str, time: i64, text: String) {
        self.put_at(kind, time, time, text);
    }
    fn put_at(&mut self, kind: &'static str, time: i64, written: i64, text: String) {
        bump(&mut self.counts.records_by_kind, kind);
        self.counts.hour(time, kind);
        self.lines.push(Line {
            kind,
            written,
            text,
        });
    }
    /// A receive-trace record (receivelog, receivepop3, receiveimap4): `\r\r\n` and a blank
    /// line after SMTP text, as the text-mode write of a CRLF-terminated buffer gives.
    fn trace(&mut self, kind: &'static str, t: i64, h: &str, text: &str) {
        // the text as sent ends in CRLF; text mode turns each `\n` into CRLF
        let body = if kind == "receivelog" {
            format!("{text}\r\n").replace('\n', "\r\n")
        } else {
            text.to_string()
        };
        self.put(kind, t, format!("[{}], {h}, {body}", self.stamp(t)));
    }
    fn handle(&mut self) -> String {
        self.next_handle += 0x28 + self.rng.below(4) * 8;
        format!("{:08x}", self.next_handle)
    }
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("B{:010}", self.next_id)
    }

    fn client(&mut self) -> (String, u16, bool) {
        let ip = match self.rng.below(10) {
            0 => format!("2001:db8::{:x}", 0x20 + self.rng.below(6)),
            1..=4 => format!("192.168.10.{}", 2 + self.rng.below(12)),
            _ => format!("203.0.113.{}", 1 + self.rng.below(40)),
        };
        let (port, tls) = match self.rng.below(4) {
            0 => (465, true),
            1 => (587, false),
            _ => (25, false),
        };
        (ip, port, tls)
    }
    fn accept(&mut self, t: i64, ip: &str, port: u16, tls: bool) {
        let ssl = if tls { " SSL" } else { "" };
        let s = self.stamp(t);
        self.put(
            "acceptlog",
            t,
            format!("[{s}], ({SERVER}), [{ip}]:{port}{ssl}, Client accept now."),
        );
    }
    /// acceptlog's second record: the time of MAIL FROM/AUTH, written at session end.
    fn session_end(&mut self, t: i64, closed: i64, ip: &str, detail: &str, id: &str, st: &str) {
        let s = self.stamp(t);
        let id = if id.is_empty() { "B0000000000" } else { id };
        self.put_at(
            "acceptlog",
            t,
            closed,
            format!("[{s}], ({SERVER}), {ip}[{ip}], {detail},<{id}>,{st}"),
        );
        if st == "abort" {
            self.counts.rejected_sessions += 1;
            bump(&mut self.counts.rejected_ips, ip);
            self.counts.hour(t, "rejected_sessions");
        }
    }
    fn banner(&mut self, t: i64, h: &str) {
        let date = self.at(t).format("%a, %d %b %Y %H:%M:%S +0900").to_string();
        let text = format!("220 {SERVER} E-POST ESMTP Receiver (4.A1) Ready; {date}");
        self.trace("receivelog", t, h, &text);
    }
    fn ehlo(&mut self, t: i64, h: &str, helo: &str, ip: &str) {
        self.trace("receivelog", t, h, &format!("EHLO {helo}"));
        let reply = format!(
            "250-{SERVER} Hello [{ip}], pleased to meet you\r\n250-AUTH LOGIN PLAIN CRAM-MD5\r\n250 SIZE 20971520"
        );
        self.trace("receivelog", t, h, &reply);
    }
    fn quit(&mut self, t: i64, h: &str) {
        self.trace("receivelog", t, h, "QUIT");
        self.trace(
            "receivelog",
            t,
            h,
            &format!("221 2.0.0 {SERVER} closing connection."),
        );
    }
    fn auth_failure(&mut self, t: i64, ip: &str, user: &str) {
        self.counts.auth_failures += 1;
        bump(&mut self.counts.auth_failures_by_ip, ip);
        bump(&mut self.counts.auth_failures_by_user, user);
        self.counts.hour(t, "auth_failures");
    }

    fn refused_ordb(&mut self, t0: i64) {
        let ip = format!("192.0.2.{}", 60 + self.rng.below(8));
        let h = self.handle();
        self.accept(t0, &ip, 25, false);
        self.trace(
            "receivelog",
            t0,
            &h,
            "550 5.7.0 Sorry. Your IP is in the open relay data base list.",
        );
        self.session_end(t0, t0 + 1, &ip, "It was in the ORDB IP.", "", "abort");
        self.sessions
            .push(json!({"type": "refused", "ip": ip, "handle": h,
            "time": self.iso(t0), "reason": "ordb"}));
    }

    fn smtp_auth_failed(&mut self, t0: i64) {
        let (ip, port, tls) = self.client();
        let user = format!("user{}@example.jp", self.rng.below(30));
        let h = self.handle();
        self.accept(t0, &ip, port, tls);
        self.banner(t0, &h);
        self.ehlo(t0 + 1, &h, "pc01", &ip);
        self.trace("receivelog", t0 + 2, &h, "AUTH LOGIN");
        self.trace("receivelog", t0 + 2, &h, "334 VXNlcm5hbWU6");
        self.trace("receivelog", t0 + 2, &h, "dXNlcg==");
        self.trace("receivelog", t0 + 2, &h, "334 UGFzc3dvcmQ6");
        self.trace("receivelog", t0 + 2, &h, "c2VjcmV0LXBhc3M=");
        self.trace("receivelog", t0 + 3, &h, "535 5.7.0 Authentication failed.");
        self.quit(t0 + 4, &h);
        let detail = format!("AUTH-LOGIN:{user} [failed]");
        self.session_end(t0 + 2, t0 + 4, &ip, &detail, "", "abort");
        self.auth_failure(t0 + 2, &ip, &user);
        self.sessions
            .push(json!({"type": "smtp-auth-failed", "ip": ip, "user": user,
            "handle": h, "time": self.iso(t0)}));
    }

    fn timed_out(&mut self, t0: i64) {
        let (ip, port, tls) = self.client();
        let h = self.handle();
        self.accept(t0, &ip, port, tls);
        self.banner(t0, &h);
        self.session_end(t0 + 300, t0 + 300, &ip, "", "", "connection timeout");
        self.sessions
            .push(json!({"type": "timeout", "ip": ip, "handle": h,
            "time": self.iso(t0)}));
    }

    fn addresses(&mut self) -> (String, Vec<String>) {
        let sender = match self.rng.below(30) {
            0 => String::new(),
            1..=9 => format!("staff{}@example.jp", self.rng.below(12)),
            _ => format!("user{}@example.net", self.rng.below(60)),
        };
        let n = 1 + self.rng.below(3) as usize;
        let mut to: Vec<String> = Vec::new();
        while to.len() < n {
            let r = match self.rng.below(3) {
                0 => format!("bob{}@example.jp", self.rng.below(25)),
                1 => format!("taro{}@sales.example.jp", self.rng.below(8)),
                _ => format!(
                    "jiro{}@{}",
                    self.rng.below(40),
                    self.rng
                        .pick(&["example.com", "example.org", "mail.example.co.jp"])
                ),
            };
            if !to.contains(&r) {
                to.push(r);
            }
        }
        (sender, to)
    }

    /// The SMTP dialogue up to the end of DATA; returns the time DATA began.
    #[allow(clippy::too_many_arguments)]
    fn smtp_dialogue(
        &mut self,
        t0: i64,
        h: &str,
        ip: &str,
        helo: &str,
        auth: Option<&str>,
        s: &str,
        to: &[String],
    ) -> i64 {
        self.banner(t0, h);
        self.ehlo(t0 + 1, h, helo, ip);
        if auth.is_some() {
            self.trace(
                "receivelog",
                t0 + 1,
                h,
                "AUTH PLAIN AHRhcm9AZXhhbXBsZS5qcABzZWNyZXQtcGFzcw==",
            );
            self.trace(
                "receivelog",
                t0 + 1,
                h,
                "235 2.0.0 Authentication successful.",
            );
        }
        self.trace("receivelog", t0 + 2, h, &format!("MAIL FROM:<{s}>"));
        self.trace(
            "receivelog",
            t0 + 2,
            h,
            &format!("250 2.0.0 <{s}>... Sender ok."),
        );
        for r in to {
            self.trace("receivelog", t0 + 2, h, &format!("RCPT TO:<{r}>"));
            self.trace(
                "receivelog",
                t0 + 2,
                h,
                &format!("250 2.0.0 <{r}>... Recipient ok."),
            );
        }
        self.trace("receivelog", t0 + 3, h, "DATA");
        t0 + 3
    }

    fn quarantined(&mut self, t0: i64) {
        let (ip, port, tls) = self.client();
        let (sender, to) = self.addresses();
        let h = self.handle();
        let id = self.id();
        self.accept(t0, &ip, port, tls);
        let td = self.smtp_dialogue(t0, &h, &ip, "pc01", None, &sender, &to);
        self.trace(
            "receivelog",
            td,
            &h,
            &format!("354 Start mail input;id <{id}> end with <CRLF>.<CRLF>"),
        );
        let tr = td + 1;
        self.trace(
            "receivelog",
            tr,
            &h,
            "552 5.7.1 Requested mail action aborted: caught by the filter setting.",
        );
        self.quit(tr + 1, &h);
        self.session_end(t0 + 2, tr + 1, &ip, &sender, &id, "abort");
        bump(&mut self.counts.records_by_kind, "viruslog");
        self.counts.hour(tr, "viruslog");
        self.quarantine
            .push((id.clone(), sender.clone(), to.clone(), tr));
        self.journeys
            .push(json!({"id": id, "handle": h, "client_ip": ip, "port": port,
            "tls": tls, "from": sender, "to": to, "received": null, "quarantined": self.iso(tr),
            "deliveries": [], "failures": [],
            "kinds": ["acceptlog", "receivelog", "viruslog"]}));
    }

    fn message(&mut self, t0: i64) {
        let (ip, port, tls) = self.client();
        let (sender, to) = self.addresses();
        let auth = (port != 25).then(|| format!("staff{}@example.jp", self.rng.below(12)));
        let h = self.handle();
        let id = self.id();
        self.accept(t0, &ip, port, tls);
        let helo = self.rng.pick(&HELOS).to_string();
        let td = self.smtp_dialogue(t0, &h, &ip, &helo, auth.as_deref(), &sender, &to);
        self.trace(
            "receivelog",
            td,
            &h,
            &format!("354 Start mail input;id <{id}> end with <CRLF>.<CRLF>"),
        );
        let tr = td + 1 + self.rng.below(3) as i64;
        self.trace("receivelog", tr, &h, "250 2.0.0 Message received ok.");
        self.quit(tr + 1, &h);
        let s = self.stamp(tr);
        self.put(
            "inlog",
            tr,
            format!(
                "<{id}@{SERVER}> [{s}] {ip} {helo} {sender} {}",
                to.join(" ")
            ),
        );
        self.counts.received += 1;
        self.counts.hour(tr, "received");
        if !sender.is_empty() {
            bump(&mut self.counts.top_senders, &sender);
        }
        for r in &to {
            bump(&mut self.counts.top_recipients, r);
        }
        let detail = match &auth {
            Some(u) => format!("AUTH-PLAIN:{u} [success]"),
            None => sender.clone(),
        };
        self.session_end(t0 + 2, tr + 1, &ip, &detail, &id, "ok");
        let (deliveries, failures, last) = self.deliver(&id, tr, &sender, &to);
        if let Some(last) = last {
            self.counts.delays.push(last - tr);
        }
        let mut kinds = vec!["acceptlog", "receivelog", "inlog"];
        if to.iter().any(|r| !is_local(r)) {
            kinds.push("senderlog");
        }
        self.journeys
            .push(json!({"id": id, "handle": h, "client_ip": ip, "port": port,
            "tls": tls, "from": sender, "to": to, "auth_user": auth, "received": self.iso(tr),
            "quarantined": null, "deliveries": deliveries, "failures": failures, "kinds": kinds}));
    }

    /// One delivery per recipient: local ones to outlocallog, remote ones through senderlog to
    /// outlog or faillog. Returns the deliveries, the failures and the last delivery's time.
    fn deliver(
        &mut self,
        id: &str,
        tr: i64,
        sender: &str,
        to: &[String],
    ) -> (Vec<Value>, Vec<Value>, Option<i64>) {
        let (mut ok, mut failed, mut last) = (Vec::new(), Vec::new(), None::<i64>);
        let from_out = if sender.is_empty() { "-" } else { sender };
        for (j, r) in to.iter().enumerate() {
            if is_local(r) {
                let t = tr + 1 + j as i64;
                let s = self.stamp(t);
                self.put(
                    "outlocallog",
                    t,
                    format!(
                        "{id}@{SERVER} sent on [{s}] to 127.0.0.1 {SERVER} from {from_out} to {r}"
                    ),
                );
                self.delivered(t, &mut last);
                ok.push(
                    json!({"to": r, "kind": "outlocallog", "relay": SERVER, "time": self.iso(t)}),
                );
                continue;
            }
            let domain = r.rsplit('@').next().unwrap_or("").to_string();
            let t = tr + 2 + self.rng.below(600) as i64 + j as i64;
            let suffix = if j == 0 {
                String::new()
            } else {
                format!("-{j:03}")
            };
            let qid = format!("{id}{suffix}");
            let relay_ip = format!("198.51.100.{}", 20 + domain.len());
            let relay = format!("mx.{domain}");
            // the attempt is logged in the second before its outcome
            self.senderlog(t - 1, &qid, &domain, &relay, sender, r);
            let fail = self.rng.below(100) < 15;
            let s = self.stamp(t);
            if fail {
                let reason = self
                    .rng
                    .pick(&[
                        format!("550 5.1.1 <{r}>... User unknown"),
                        "Unable to deliver to destination domain".to_string(),
                        "452 4.2.2 Mailbox full".to_string(),
                        "554 5.7.1 宛先が拒否しました".to_string(),
                    ])
                    .clone();
                self.put_senderlog(
                    t - 1,
                    format!("[{}] [{qid}] faillog() thread=1.", self.clock(t - 1, 900)),
                );
                self.put(
                    "faillog",
                    t,
                    format!("{qid}@{SERVER} send fail on [{s}] from {sender} to {r} [{reason}]"),
                );
                self.counts.failed += 1;
                self.counts.hour(t, "failed");
                bump(&mut self.counts.failure_reasons, &reason);
                bump(&mut self.counts.failures_by_destination, r);
                failed.push(json!({"to": r, "reason": reason, "time": self.iso(t)}));
            } else {
                self.put_senderlog(
                    t - 1,
                    format!("[{}] [{qid}] outlog() thread=1.", self.clock(t - 1, 900)),
                );
                self.put(
                    "outlog",
                    t,
                    format!(
                        "{qid}@{SERVER} sent on [{s}] to {relay_ip} {relay} from {from_out} to {r} "
                    ),
                );
                self.delivered(t, &mut last);
                ok.push(json!({"to": r, "kind": "outlog", "relay": relay, "time": self.iso(t)}));
            }
        }
        (ok, failed, last)
    }

    fn delivered(&mut self, t: i64, last: &mut Option<i64>) {
        self.counts.delivered += 1;
        self.counts.hour(t, "delivered");
        *last = Some(last.map_or(t, |l| l.max(t)));
    }

    fn put_senderlog(&mut self, t: i64, text: String) {
        self.put("senderlog", t, text);
    }

    fn senderlog(&mut self, t: i64, qid: &str, domain: &str, relay: &str, sender: &str, r: &str) {
        let c = |g: &Gen, ms| g.clock(t, ms);
        let lines = [
            format!("[{}] [{qid}] [{domain}] GetTryServer:()", c(self, 10)),
            format!("[{}] [{qid}] SendGlbalMail:domain={r}", c(self, 11)),
            format!("[{}] [{qid}] ConnectHost({relay})", c(self, 12)),
            format!(
                "[{}] [{qid}] SendMailMess:[{}] 220 {relay} ESMTP ready\r\n",
                c(self, 100),
                c(self, 120)
            ),
            format!("[{}] [{qid}] SendMailMess:EHLO {SERVER}\r\n", c(self, 130)),
            format!(
                "[{}] [{qid}] SendMailMess:MAIL FROM:<{sender}>\r\n",
                c(self, 200)
            ),
            format!(
                "[{}] [{qid}] SendMailMess:[{}] 250 2.1.0 Sender ok\r\n",
                c(self, 210),
                c(self, 220)
            ),
            format!("[{}] [{qid}] SendMailMess:RCPT TO:<{r}>\r\n", c(self, 300)),
            format!("[{}] [{qid}] SendMailMess:DATA\r\n", c(self, 400)),
        ];
        for l in lines {
            self.put_senderlog(t, l.replace('\n', "\r\n"));
        }
    }

    fn pop3(&mut self, t: i64) {
        let user = format!("bob{}@example.jp", self.rng.below(25));
        let ip = format!("192.168.0.{}", 2 + self.rng.below(20));
        let ok = self.rng.below(100) >= 20;
        let s = self.stamp(t);
        let h = self.handle();
        self.trace(
            "receivepop3",
            t,
            &h,
            &format!("+OK E-POST POP3 Server <{}.1512033554@{SERVER}>", t),
        );
        self.trace("receivepop3", t, &h, &format!("USER {user}"));
        self.trace("receivepop3", t, &h, "+OK");
        self.trace("receivepop3", t, &h, "PASS hunter2");
        self.put(
            "pop3log",
            t,
            format!("{user} from {ip} USER {user} [{s}] +OK"),
        );
        if ok {
            self.trace("receivepop3", t, &h, "+OK");
            self.put(
                "pop3log",
                t,
                format!("{user} from {ip} PASS hunter2 [{s}] +OK"),
            );
            self.put("pop3log", t, format!("{user} from {ip} STAT [{s}] +OK"));
            self.put("pop3log", t, format!("{user} from {ip} QUIT [{s}] +OK"));
            bump(&mut self.counts.logins_by_user, &user);
        } else {
            self.trace("receivepop3", t, &h, "-ERR");
            self.put(
                "pop3log",
                t,
                format!("{user} from {ip} PASS hunter2 [{s}] -ERR"),
            );
            self.auth_failure(t, &ip, &user);
        }
        self.sessions
            .push(json!({"type": "pop3", "ip": ip, "user": user, "ok": ok,
            "time": self.iso(t)}));
    }

    fn imap(&mut self, t: i64) {
        let user = format!("taro{}@sales.example.jp", self.rng.below(8));
        let ip = format!("192.168.0.{}", 2 + self.rng.below(20));
        let ok = self.rng.below(100) >= 20;
        let s = self.stamp(t);
        let h = self.handle();
        self.trace("receiveimap4", t, &h, "* OK E-POST IMAP4rev1 Server ready");
        self.trace(
            "receiveimap4",
            t,
            &h,
            &format!("0001 LOGIN \"{user}\" \"s3cret pass\""),
        );
        if ok {
            self.trace("receiveimap4", t, &h, "0001 OK LOGIN completed");
            self.put(
                "imap4log",
                t,
                format!("[{s}] {user} from {ip} LOGIN {user} **** Success"),
            );
            self.put(
                "imap4log",
                t,
                format!("[{s}] {user} from {ip} SELECT \"&MMkw6TDVMMg-\" Success"),
            );
            self.put(
                "imap4log",
                t,
                format!("[{s}] {user} from {ip} LOGOUT - Success"),
            );
            bump(&mut self.counts.logins_by_user, &user);
        } else {
            self.trace("receiveimap4", t, &h, "0001 NO LOGIN failed");
            self.put(
                "imap4log",
                t,
                format!("[{s}] - from {ip} LOGIN {user} **** Failed"),
            );
            self.auth_failure(t, &ip, &user);
        }
        self.sessions
            .push(json!({"type": "imap", "ip": ip, "user": user, "ok": ok,
            "time": self.iso(t)}));
    }

    fn write_files(&mut self, out: &Path, gzip: bool, last_day: i64) {
        let mut files: BTreeMap<(&'static str, i64), Vec<(i64, usize)>> = BTreeMap::new();
        for (n, l) in self.lines.iter().enumerate() {
            files
                .entry((l.kind, l.written.div_euclid(86_400)))
                .or_default()
                .push((l.written, n));
        }
        for ((kind, day), mut entries) in files {
            entries.sort();
            let mut bytes = Vec::new();
            for (_, n) in entries {
                let (enc, _, _) = encoding_rs::SHIFT_JIS.encode(&self.lines[n].text);
                bytes.extend_from_slice(&enc);
                bytes.extend_from_slice(b"\r\n");
            }
            let dir = out.join(kind).join(HOST);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let name = self.at(day * 86_400).format("%y%m%d.log").to_string();
            if gzip && day < last_day {
                let f = std::fs::File::create(dir.join(format!("{name}.gz"))).expect("create");
                let mut z = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
                z.write_all(&bytes).expect("write");
                z.finish().expect("gzip");
            } else {
                std::fs::write(dir.join(name), bytes).expect("write");
            }
        }
    }

    fn write_quarantine(&self, out: &Path) {
        if self.quarantine.is_empty() {
            return;
        }
        let dir = out.join("viruslog");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (id, sender, to, t) in &self.quarantine {
            let mut rcp = format!("Message-ID: <{id}@{SERVER}>\r\nReturn-path: {sender}\r\n");
            for r in to {
                rcp.push_str(&format!("Recipient: {r}\r\n"));
            }
            rcp.push_str(
                "\r\nWarning: 添付ファイル(.exe)を含むメールを隔離しました\r\n\r\n\r\n\r\n\r\n",
            );
            let (rcp, _, _) = encoding_rs::SHIFT_JIS.encode(&rcp);
            let msg = format!(
                "Message-ID: <{id}.quarantine@client.example.net>\r\nFrom: <{sender}>\r\nTo: <{}>\r\nSubject: invoice\r\n\r\nbody\r\n",
                to.join(">, <")
            );
            let msg_path = dir.join(format!("{id}.MSG"));
            std::fs::write(&msg_path, msg).expect("write .MSG");
            let rcp_path = dir.join(format!("{id}.RCP"));
            std::fs::write(&rcp_path, &rcp).expect("write .RCP");
            // the record's time is the .RCP file's mtime
            let unix = self.at(*t).and_utc().timestamp() - 9 * 3600;
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix as u64);
            let f = std::fs::File::options()
                .write(true)
                .open(&rcp_path)
                .expect("open .RCP");
            f.set_modified(when).expect("mtime");
        }
    }

    fn expected(&self) -> Value {
        let c = &self.counts;
        let per_hour: Vec<Value> = c
            .per_hour
            .iter()
            .map(|(h, m)| {
                let mut records = serde_json::Map::new();
                let mut o = serde_json::Map::new();
                o.insert("hour".into(), json!(self.iso(*h)));
                for k in [
                    "received",
                    "delivered",
                    "failed",
                    "rejected_sessions",
                    "auth_failures",
                ] {
                    o.insert(k.into(), json!(m.get(k).copied().unwrap_or(0)));
                }
                for (k, v) in m {
                    if ![
                        "received",
                        "delivered",
                        "failed",
                        "rejected_sessions",
                        "auth_failures",
                    ]
                    .contains(&k.as_str())
                    {
                        records.insert(k.clone(), json!(v));
                    }
                }
                o.insert("records".into(), Value::Object(records));
                Value::Object(o)
            })
            .collect();
        let mut d = c.delays.clone();
        d.sort_unstable();
        let rank = |p: usize| -> Value {
            if d.is_empty() {
                return Value::Null;
            }
            // nearest rank: the smallest value with at least p% of the values at or below it
            let r = (p * d.len()).div_ceil(100).max(1);
            json!(d[r - 1])
        };
        json!({
            "totals": {
                "received": c.received,
                "delivered": c.delivered,
                "failed": c.failed,
                "rejected_sessions": c.rejected_sessions,
                "auth_failures": c.auth_failures,
            },
            "top_senders": ranked(&c.top_senders),
            "top_recipients": ranked(&c.top_recipients),
            "failure_reasons": ranked(&c.failure_reasons),
            "failures_by_destination": ranked(&c.failures_by_destination),
            "rejected_ips": ranked(&c.rejected_ips),
            "auth_failures_by_ip": ranked(&c.auth_failures_by_ip),
            "auth_failures_by_user": ranked(&c.auth_failures_by_user),
            "logins_by_user": ranked(&c.logins_by_user),
            "records_by_kind": c.records_by_kind,
            "per_hour": per_hour,
            "delay_seconds": {
                "messages": d.len(),
                "median": rank(50),
                "p95": rank(95),
                "max": d.last().copied(),
            },
        })
    }
}

fn is_local(addr: &str) -> bool {
    let domain = addr.rsplit('@').next().unwrap_or("");
    LOCAL_DOMAINS.contains(&domain)
}

/// `{"key","count"}` sorted by count, largest first; ties by key, in byte order.
fn ranked(m: &BTreeMap<String, u64>) -> Vec<Value> {
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter()
        .map(|(k, c)| json!({"key": k, "count": c}))
        .collect()
}
