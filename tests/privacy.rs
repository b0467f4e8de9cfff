//! `[privacy]` end to end: the pipeline over the example folder (plus bare account names) and
//! over a generated one, to a file sink, to the real Elasticsearch (with a mapping conflict,
//! so that the dead-letter file is written too), and `parse --config`.
//!
//! What must not leave is found independently of the shipper: the raw log files are scanned
//! here for addresses, IPs and account names by this file's own simple scanners (not the
//! shipper's parser nor its rewriter); tokens are checked against HMAC-SHA256 computed here
//! from its definition over the `sha2` digest.

mod common;

#[allow(dead_code)]
#[path = "../examples/gen_mail.rs"]
mod gen_mail;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Harness;
use serde_json::{Value, json};

const KEY: &str = "0123456789abcdef-privacy-test-key";

/// Every personal field hidden, each class in a mode of its own.
fn rules() -> String {
    r#"
"email.from.address" = "hash-local"
"email.to.address" = "hash-local"
"user.name" = "hash"
"client.ip" = "truncate"
"destination.ip" = "hash"
"client.domain" = "hash"
"epost.smtp.helo" = "hash"
"email.subject" = "drop"
"#
    .to_string()
}

// ---------------------------------------------------------------------------------------
// what the raw logs hold, found without the shipper
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Raw {
    addresses: BTreeSet<String>,
    ips: BTreeSet<String>,
    users: BTreeSet<String>,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn local_ch(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._+-".contains(c)
}

/// `x@y` with the usual characters around an `@`, lower-cased; E-Post message ids
/// (`B0000097586@host`) are not people.
fn scan_addresses(text: &str, out: &mut BTreeSet<String>) {
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c != '@' {
            continue;
        }
        let mut s = i;
        while s > 0 && local_ch(chars[s - 1]) {
            s -= 1;
        }
        let mut e = i + 1;
        while e < chars.len() && (chars[e].is_ascii_alphanumeric() || ".-".contains(chars[e])) {
            e += 1;
        }
        let local: String = chars[s..i].iter().collect::<String>();
        let local = local.trim_start_matches('.');
        let domain: String = chars[i + 1..e].iter().collect::<String>();
        let domain = domain.trim_end_matches(['.', '-']);
        let id = local.starts_with('B') && local[1..].starts_with(|c: char| c.is_ascii_digit());
        if !local.is_empty() && !domain.is_empty() && !id {
            out.insert(format!("{local}@{domain}").to_lowercase());
        }
    }
}

fn scan_ips(text: &str, out: &mut BTreeSet<String>) {
    for tok in text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.')) {
        let tok = tok.trim_end_matches('.');
        let mut cands = vec![tok];
        cands.extend(tok.match_indices(':').map(|(i, _)| &tok[i + 1..]));
        cands.extend(tok.split(':'));
        for c in cands {
            if c.split('.').count() == 4 && c.parse::<std::net::Ipv4Addr>().is_ok() {
                out.insert(c.to_string());
            } else if c.matches(':').count() >= 2 && c.parse::<std::net::Ipv6Addr>().is_ok() {
                out.insert(c.to_lowercase());
                break;
            }
        }
    }
}

/// Account names: pop3log's first word, imap4log's second, acceptlog's `AUTH-x:name`, and
/// the argument of a client's `USER`/`APOP`/`tag LOGIN` in the protocol traces.
fn scan_users(kind: &str, text: &str, out: &mut BTreeSet<String>) {
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut add = |w: &str| {
            let w = w.trim_matches('"');
            if !w.is_empty() && w != "-" && !w.starts_with('{') && w != "[REDACTED]" {
                out.insert(w.to_lowercase());
            }
        };
        match kind {
            "pop3log" if words.len() > 2 && words[1] == "from" => add(words[0]),
            "imap4log" if words.len() > 3 && words[2] == "from" => add(words[1]),
            "acceptlog" => {
                if let Some(p) = line.find(", AUTH-") {
                    let rest = &line[p + 7..];
                    if let (Some(c), Some(b)) = (rest.find(':'), rest.find(" [")) {
                        if c < b {
                            add(&rest[c + 1..b]);
                        }
                    }
                }
            }
            // handle 00000000 is E-Post's own trace text, not a client's command
            k if k.starts_with("receive") && !line.contains(", 00000000, ") => {
                // `[time], handle, text`
                let cmd: Vec<&str> = line
                    .splitn(3, ", ")
                    .nth(2)
                    .unwrap_or("")
                    .split(' ')
                    .collect();
                let verb = |w: &str| ["user", "apop", "login"].contains(&w.to_lowercase().as_str());
                if cmd.len() > 1 && verb(cmd[0]) {
                    add(cmd[1]);
                } else if cmd.len() > 2 && verb(cmd[1]) {
                    add(cmd[2]);
                }
            }
            _ => {}
        }
    }
}

fn scan_raw(dir: &Path) -> Raw {
    let mut list = Vec::new();
    files(dir, &mut list);
    let mut raw = Raw::default();
    for p in list {
        let name = p.to_string_lossy().to_string();
        if name.ends_with(".MSG") {
            continue; // the message itself is never shipped (only its subject)
        }
        let bytes = std::fs::read(&p).unwrap();
        let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
        let kind = p
            .strip_prefix(dir)
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .to_string();
        scan_addresses(&text, &mut raw.addresses);
        scan_ips(&text, &mut raw.ips);
        scan_users(&kind, &text, &mut raw.users);
    }
    raw
}

/// Where `needle` (lower-case) stands as a whole in `hay` (lower-cased here): not glued to a
/// letter, digit, `_`, `.`-word or `@` on either side.
fn whole_hits(hay: &str, needle: &str) -> Vec<usize> {
    let h = hay.to_lowercase();
    let b = h.as_bytes();
    let glued = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'@';
    h.match_indices(needle)
        .map(|(i, _)| i)
        .filter(|&i| {
            let e = i + needle.len();
            let before = i > 0 && glued(b[i - 1]);
            let after = e < b.len()
                && (glued(b[e])
                    || (b[e] == b'.' && b.get(e + 1).is_some_and(|c| c.is_ascii_alphanumeric())));
            !before && !after
        })
        .collect()
}

/// Panics naming every raw value found in `out` (one text: all sink and dead-letter output).
fn assert_nothing_leaks(raw: &Raw, out: &str, what: &str) {
    assert!(
        raw.addresses.len() > 5 && raw.ips.len() > 3 && raw.users.len() > 2,
        "the scan found too little to prove anything: {raw:?}"
    );
    // an IP that is its own /24 (or /48) network reads the same after `truncate`
    let own_network = |v: &str| match v.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => a.octets()[3] == 0,
        Ok(std::net::IpAddr::V6(a)) => a.segments()[3..].iter().all(|&s| s == 0),
        Err(_) => false,
    };
    let mut leaks = Vec::new();
    let ips = raw.ips.iter().filter(|v| !own_network(v));
    for v in raw.addresses.iter().chain(ips).chain(&raw.users) {
        if let Some(&i) = whole_hits(out, v).first() {
            let mut s = i.saturating_sub(60);
            while !out.is_char_boundary(s) {
                s -= 1;
            }
            let mut e = (i + v.len() + 60).min(out.len());
            while !out.is_char_boundary(e) {
                e += 1;
            }
            leaks.push(format!("{v:?} in …{}…", &out[s..e]));
        }
    }
    assert!(
        leaks.is_empty(),
        "{what}: raw values left the machine:\n{}",
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// tokens, computed here
// ---------------------------------------------------------------------------------------

/// HMAC-SHA256 by RFC 2104, first 16 bytes in hex.
fn hmac_hex(key: &[u8], msg: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg.as_bytes())
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_local(key: &str, addr: &str) -> String {
    let (l, d) = addr.rsplit_once('@').unwrap();
    format!("h_{}@{d}", hmac_hex(key.as_bytes(), &l.to_lowercase()))
}

// ---------------------------------------------------------------------------------------
// running the shipper
// ---------------------------------------------------------------------------------------

/// The example folder plus lines with bare account names (the examples only log addresses).
fn examples(h: &Harness) {
    h.copy_examples();
    common::append(
        &h.log("receivepop3", "MAILSV01", "171130.log"),
        "[30/Nov/2017:18:30:00], 0015d0aa, USER saburo\r\n[30/Nov/2017:18:30:00], 0015d0aa, +OK\r\n",
    );
    common::append(
        &h.log("pop3log", "MAILSV01", "171130.log"),
        "shiro from 192.168.7.70 STAT [30/Nov/2017:18:30:01] \r\n",
    );
}

fn write_key(h: &Harness, key: &str) -> PathBuf {
    let p = h.dir.path().join("privacy.key");
    std::fs::write(&p, format!("{key}\n")).unwrap();
    p
}

fn privacy_section(h: &Harness, key: &str) -> String {
    let k = write_key(h, key);
    format!("[privacy]\nkey = 'file:{}'\n{}", k.display(), rules())
}

/// Ships the folder to the file sink until every record the plain `parse` makes of it is
/// there (the last line of a file without its line end included, once the partial-line
/// timeout has passed: that goes through the tailer's flush), and returns the records
/// sorted by event.id.
fn ship_to_file(h: &Harness, key: &str) -> Vec<Value> {
    let want = parse_plain(&h.mail).len();
    let sink = format!(
        "[[sink]]\ntype = \"file\"\npath = '{}'\n\n{}",
        h.out.display(),
        privacy_section(h, key)
    );
    let config = h.config_sinks("", "", &sink);
    let run = h.start(config);
    h.wait_until(120, "every record", |r| r.len() >= want);
    run.stop();
    let mut r = h.records();
    // nothing lost, nothing twice
    assert_eq!(r.len(), want);
    r.sort_by(|a, b| a["event"]["id"].as_str().cmp(&b["event"]["id"].as_str()));
    r
}

/// Everything the shipper wrote: the sink file and every dead-letter file.
fn all_output(h: &Harness) -> String {
    let mut out = std::fs::read_to_string(&h.out).unwrap_or_default();
    let dead = h.state.join("dead-letter");
    if dead.is_dir() {
        let mut list = Vec::new();
        files(&dead, &mut list);
        for p in list {
            out.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    out
}

fn parse_plain(dir: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .arg("parse")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------

#[test]
fn nothing_raw_leaves_over_the_example_folder() {
    let h = Harness::new();
    examples(&h);
    let raw = scan_raw(&h.mail);
    assert!(raw.users.contains("saburo") && raw.users.contains("shiro"));
    ship_to_file(&h, KEY);
    assert_nothing_leaks(&raw, &all_output(&h), "file sink, examples");
}

#[test]
fn nothing_raw_leaves_over_a_generated_folder() {
    let h = Harness::new();
    let lines = gen_mail::generate(6000, &h.mail, 2);
    assert!(lines >= 6000);
    let raw = scan_raw(&h.mail);
    ship_to_file(&h, KEY);
    assert_nothing_leaks(&raw, &all_output(&h), "file sink, generated");
}

/// Two runs, on two "machines" (other folders, other state), give the same records apart
/// from the path they were read from; another key gives other tokens.
#[test]
fn tokens_are_stable_across_runs_and_machines_and_change_with_the_key() {
    // what depends on the machine: the path read from, and a viruslog pair's time (the
    // .RCP file's mtime, which the copy set) and `.MSG` path
    let strip = |mut v: Vec<Value>| {
        for r in &mut v {
            r["log"]["file"].as_object_mut().unwrap().remove("path");
            if r["epost"]["log"] == "viruslog" {
                r.as_object_mut().unwrap().remove("@timestamp");
                r["file"].as_object_mut().unwrap().remove("path");
            }
        }
        v
    };
    let (a, b, c) = (Harness::new(), Harness::new(), Harness::new());
    for h in [&a, &b, &c] {
        examples(h);
    }
    let ra = strip(ship_to_file(&a, KEY));
    let rb = strip(ship_to_file(&b, KEY));
    assert!(ra.len() > 100);
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x, y, "same key, another machine: the same records");
    }
    let rc = strip(ship_to_file(&c, "another key, also long enough"));
    assert_eq!(ra.len(), rc.len());
    let tokens = |v: &[Value]| -> BTreeSet<String> {
        let text = serde_json::to_string(v).unwrap();
        text.match_indices("h_")
            .map(|(i, _)| text[i..i + 34].to_string())
            .collect()
    };
    let (ta, tc) = (tokens(&ra), tokens(&rc));
    assert!(ta.len() > 20, "{ta:?}");
    assert!(ta.is_disjoint(&tc), "another key must give other tokens");
}

/// The same address in inlog and outlog gets one token, the one HMAC-SHA256 gives; IPs are
/// cut to their networks.
#[test]
fn joins_and_truncation() {
    let h = Harness::new();
    examples(&h);
    let recs = ship_to_file(&h, KEY);
    let by = |log: &str, id: &str| -> Vec<&Value> {
        recs.iter()
            .filter(|r| r["epost"]["log"] == log && r["email"]["local_id"] == id)
            .collect()
    };
    let taro = hash_local(KEY, "taro@example.jp");
    let inlog = by("inlog", "B0000097587");
    let outlog = by("outlog", "B0000097587");
    assert_eq!(inlog.len(), 1);
    assert!(!outlog.is_empty());
    assert_eq!(inlog[0]["email"]["from"]["address"], json!([taro]));
    for o in &outlog {
        assert_eq!(o["email"]["from"]["address"], json!([taro]));
    }
    // the recipient jiro@example.com of the inlog line is the outlog's recipient too
    let jiro = hash_local(KEY, "jiro@example.com");
    assert!(
        inlog[0]["email"]["to"]["address"]
            .as_array()
            .unwrap()
            .contains(&json!(jiro))
    );
    assert!(
        outlog
            .iter()
            .any(|o| o["email"]["to"]["address"] == json!([jiro]))
    );
    // user.name (hash) of a bare name and of an address
    let users: BTreeSet<&str> = recs
        .iter()
        .filter_map(|r| r["user"]["name"].as_str())
        .collect();
    assert!(
        users.contains(format!("h_{}", hmac_hex(KEY.as_bytes(), "shiro")).as_str()),
        "{users:?}"
    );
    assert!(users.contains(format!("h_{}", hmac_hex(KEY.as_bytes(), "bob@example.jp")).as_str()));
    // truncation: acceptlog has 203.0.113.5, 198.51.100.7 and 2001:db8::25 as client.ip
    let ips: BTreeSet<&str> = recs
        .iter()
        .filter(|r| r["epost"]["log"] == "acceptlog")
        .filter_map(|r| r["client"]["ip"].as_str())
        .collect();
    for want in ["203.0.113.0", "198.51.100.0", "2001:db8::"] {
        assert!(ips.contains(want), "{want} not in {ips:?}");
    }
    assert!(
        ips.iter()
            .all(|ip| ip.ends_with(".0") || ip.ends_with("::")),
        "{ips:?}"
    );
    // destination.ip (hash) is still an IP, of fd00::/8
    let dest: Vec<&str> = recs
        .iter()
        .filter_map(|r| r["destination"]["ip"].as_str())
        .collect();
    assert!(!dest.is_empty());
    for d in dest {
        let ip: std::net::Ipv6Addr = d.parse().unwrap_or_else(|_| panic!("{d}"));
        assert_eq!(ip.octets()[0], 0xfd, "{d}");
    }
    // the subject (drop) is gone from the viruslog records
    assert!(recs.iter().all(|r| r["email"].get("subject").is_none()));
}

#[test]
fn parse_with_config_applies_privacy() {
    let h = Harness::new();
    examples(&h);
    let raw = scan_raw(&h.mail);
    let sink = format!(
        "[[sink]]\ntype = \"file\"\npath = '{}'\n\n{}",
        h.out.display(),
        privacy_section(&h, KEY)
    );
    h.config_sinks("", "", &sink);
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .arg("parse")
        .arg("--config")
        .arg(h.dir.path().join("shipper.toml"))
        .arg(&h.mail)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), parse_plain(&h.mail).len());
    assert!(text.contains(&hash_local(KEY, "alice@example.net")));
    assert_nothing_leaks(&raw, &text, "parse --config");
}

/// `check` lists, per sink, what each personal field becomes.
#[test]
fn check_lists_personal_fields_per_sink() {
    let h = Harness::new();
    examples(&h);
    let sink = format!(
        "[[sink]]\ntype = \"file\"\npath = '{}'\n\n[[sink]]\ntype = \"loki\"\nname = \"lk\"\nurl = \"http://127.0.0.1:9\"\n\n{}",
        h.out.display(),
        privacy_section(&h, KEY)
    );
    h.config_sinks("", "", &sink);
    let out = Command::new(env!("CARGO_BIN_EXE_epost-shipper"))
        .args(["check", "--config"])
        .arg(h.dir.path().join("shipper.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let section = text
        .split("personal fields leaving the machine")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    let line_of = |sink: &str, field: &str| -> String {
        let part = section
            .split("  sink ")
            .find(|p| p.starts_with(sink))
            .unwrap();
        part.lines()
            .find(|l| l.trim_start().starts_with(field))
            .unwrap_or_else(|| panic!("{field} under {sink}: {part}"))
            .to_string()
    };
    assert!(line_of("file-1", "email.from.address").contains("hashed local part"));
    assert!(line_of("file-1", "client.ip").contains("truncated"));
    assert!(line_of("file-1", "email.subject").contains("dropped"));
    assert!(line_of("file-1", "destination.domain").contains("kept as written"));
    assert!(line_of("lk", "user.name").contains("hashed"));
    assert!(line_of("lk", "message").contains("rewritten"));
    let lk = section
        .split("  sink ")
        .find(|p| p.starts_with("lk"))
        .unwrap();
    assert!(
        !lk.contains("email.from.address"),
        "loki sends only the line and metadata: {lk}"
    );
}

// ---------------------------------------------------------------------------------------
// config errors: exit 2, naming the file, the line and the key
// ---------------------------------------------------------------------------------------

/// Runs `check` on a config with `privacy` as its last section and returns (code, stderr).
fn check_with(h: &Harness, privacy: &str, env: &[(&str, &str)]) -> (i32, String, PathBuf, usize) {
    let text = format!(
        "[source]\nworkdir = '{}'\nstate_dir = '{}'\n\n[[sink]]\ntype = \"stdout\"\n\n{privacy}\n",
        h.mail.display(),
        h.state.display()
    );
    let path = h.dir.path().join("bad.toml");
    std::fs::write(&path, &text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_epost-shipper"));
    cmd.args(["check", "--config"])
        .arg(&path)
        .env_remove("EPOST_PRIVACY_KEY_UNSET");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    // the line the error must name: the last line of the privacy section that is not blank
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("#here"))
        .map(|(i, _)| i + 1)
        .next()
        .unwrap_or(0);
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).to_string(),
        path,
        line,
    )
}

#[test]
fn config_errors() {
    let h = Harness::new();
    // an E-Post work folder (`check` fails on a folder that is not one)
    std::fs::create_dir_all(h.mail.join("inlog/MAILSV01")).unwrap();
    let empty = h.dir.path().join("empty.key");
    std::fs::write(&empty, "\n").unwrap();
    let short = h.dir.path().join("short.key");
    std::fs::write(&short, "abc").unwrap();
    let good = write_key(&h, KEY);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!(
                "[privacy]\nkey = 'file:{}/missing.key' #here\n\"user.name\" = \"hash\"",
                h.dir.path().display()
            ),
            "privacy.key",
            "cannot read secret file",
        ),
        (
            format!(
                "[privacy]\nkey = 'file:{}' #here\n\"user.name\" = \"hash\"",
                empty.display()
            ),
            "privacy.key",
            "is empty",
        ),
        (
            format!(
                "[privacy]\nkey = 'file:{}' #here\n\"user.name\" = \"hash\"",
                short.display()
            ),
            "privacy.key",
            "at least 16",
        ),
        (
            "[privacy]\nkey = 'env:EPOST_PRIVACY_KEY_UNSET' #here\n\"user.name\" = \"hash\"".into(),
            "privacy.key",
            "is not set",
        ),
        (
            "[privacy]\nkey = 'a literal key in the config' #here\n\"user.name\" = \"hash\"".into(),
            "privacy.key",
            "must come from a file",
        ),
        (
            "[privacy] #here\n\"user.name\" = \"hash-local\"".into(),
            "privacy.key",
            "has no `key`",
        ),
        (
            format!(
                "[privacy]\nkey = 'file:{}'\n\"email.from.adress\" = \"hash\" #here",
                good.display()
            ),
            "privacy.email.from.adress",
            "did you mean `email.from.address`",
        ),
        (
            format!(
                "[privacy]\nkey = 'file:{}'\n\"client.ip\" = \"hashh\" #here",
                good.display()
            ),
            "privacy.client.ip",
            "unknown mode `hashh`",
        ),
        (
            format!(
                "[privacy]\nkey = 'file:{}'\n\"user.name\" = \"truncate\" #here",
                good.display()
            ),
            "privacy.user.name",
            "cannot be `truncate`",
        ),
        (
            format!(
                "[privacy]\nkey = 'file:{}'\n\"message\" = \"keep\" #here",
                good.display()
            ),
            "privacy.message",
            "cannot be `keep`",
        ),
    ];
    for (section, key, words) in cases {
        let (code, err, path, line) = check_with(&h, &section, &[]);
        assert_eq!(code, 2, "{section}\n{err}");
        let at = format!("{}:{line}:", path.display());
        assert!(
            err.contains(&at) && err.contains(&format!("(key `{key}`)")) && err.contains(words),
            "want {at} (key `{key}`) {words:?}:\n{err}"
        );
        assert!(!err.contains(KEY), "the key itself is never printed: {err}");
    }
    // the env form works when the variable is there
    let (code, err, _, _) = check_with(
        &h,
        "[privacy]\nkey = 'env:EPOST_PRIVACY_TEST_KEY'\n\"user.name\" = \"hash\"",
        &[("EPOST_PRIVACY_TEST_KEY", KEY)],
    );
    assert_eq!(code, 0, "{err}");
}

// ---------------------------------------------------------------------------------------
// the real Elasticsearch, and its dead-letter file
// ---------------------------------------------------------------------------------------

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// The example folder to the real Elasticsearch. The inlog index of 2017-11-30 is created
/// beforehand with `email.from.address` as a number, so its documents are refused and go to
/// the dead-letter file with Elasticsearch's reason (which quotes the value it could not
/// take): neither the stored documents nor the dead letters may hold a raw value.
#[test]
fn real_elasticsearch_and_dead_letters_get_no_raw_values() {
    let Some(base) = common::real_server("EPOST_TEST_ELASTICSEARCH") else {
        return;
    };
    let prefix = common::unique();
    let conflict = format!("{prefix}-inlog-2017.11.30");
    let r = http()
        .put(format!("{base}/{conflict}"))
        .json(&json!({"mappings": {"properties": {"email": {"properties": {"from": {"properties": {"address": {"type": "long"}}}}}}}}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    let h = Harness::new();
    examples(&h);
    let raw = scan_raw(&h.mail);
    let want = parse_plain(&h.mail).len();
    let sink = format!(
        "[[sink]]\ntype = \"elasticsearch\"\nurl = \"{base}\"\nbatch_timeout = \"200ms\"\nmode = \"index\"\nindex = \"{prefix}-{{kind}}-%Y.%m.%d\"\n\n{}",
        privacy_section(&h, KEY)
    );
    let config = h.config_sinks("", "", &sink);
    let run = h.start(config);
    let dead_path = h.state.join("dead-letter/elasticsearch-1.ndjson");
    let start = Instant::now();
    let (docs, dead) = loop {
        let _ = http().post(format!("{base}/{prefix}-*/_refresh")).send();
        let r: Value = http()
            .post(format!("{base}/{prefix}-*/_search"))
            .json(&json!({"query": {"match_all": {}}, "size": 10000}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let docs: Vec<Value> = r["hits"]["hits"]
            .as_array()
            .map(|a| a.iter().map(|h| h["_source"].clone()).collect())
            .unwrap_or_default();
        // whole lines only: the sink may be appending
        let dead: String = std::fs::read_to_string(&dead_path)
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .collect();
        if docs.len() + dead.lines().count() >= want || start.elapsed() > Duration::from_secs(90) {
            break (docs, dead);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    run.stop();
    let dead_n = dead.lines().count();
    assert!(dead_n >= 5, "{dead}");
    assert!(
        dead.contains("h_"),
        "the reasons and records carry tokens: {dead}"
    );
    assert_eq!(
        docs.len() + dead_n,
        want,
        "every record stored or dead-lettered"
    );
    let stored = serde_json::to_string(&docs).unwrap();
    assert!(stored.contains(&hash_local(KEY, "taro@example.jp")));
    assert_nothing_leaks(
        &raw,
        &format!("{stored}\n{dead}"),
        "Elasticsearch and dead letters",
    );
}

// ---------------------------------------------------------------------------------------
// trace and report on hashed data
// ---------------------------------------------------------------------------------------

fn run_json(args: &[&str], config: Option<&Path>, dir: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_epost-shipper"));
    cmd.args(args);
    match config {
        Some(c) => cmd.arg("--config").arg(c),
        None => cmd.arg(dir),
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ids(ndjson: &str) -> BTreeSet<String> {
    ndjson
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// With `--config` naming a `[privacy]` key, `trace` takes the raw value (hashed with the key
/// to match the records) and finds the same records as without privacy, showing only
/// tokens; `report` counts the same, keyed by tokens.
#[test]
fn trace_and_report_work_on_hashed_data() {
    let h = Harness::new();
    examples(&h);
    let raw = scan_raw(&h.mail);
    let sink = format!(
        "[[sink]]\ntype = \"file\"\npath = '{}'\n\n{}",
        h.out.display(),
        privacy_section(&h, KEY)
    );
    h.config_sinks("", "", &sink);
    let c = h.dir.path().join("shipper.toml");
    for q in ["taro@example.jp", "B0000097587", "alice@example.net"] {
        let plain = run_json(&["trace", "--json", q], None, &h.mail);
        let private = run_json(&["trace", "--json", q], Some(&c), &h.mail);
        assert!(ids(&plain).len() > 1, "{q}: {plain}");
        assert_eq!(ids(&plain), ids(&private), "{q}: the same records");
        assert_nothing_leaks(&raw, &private, &format!("trace {q}"));
    }
    let plain: Value =
        serde_json::from_str(&run_json(&["report", "--json"], None, &h.mail)).unwrap();
    let text = run_json(&["report", "--json"], Some(&c), &h.mail);
    assert_nothing_leaks(&raw, &text, "report");
    let private: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(plain["totals"], private["totals"]);
    let count_of = |r: &Value, list: &str, key: &str| -> Option<u64> {
        r[list].as_array()?.iter().find(|e| e["key"] == key)?["count"].as_u64()
    };
    let n = count_of(&plain, "top_senders", "taro@example.jp").unwrap();
    assert_eq!(
        count_of(&private, "top_senders", &hash_local(KEY, "taro@example.jp")),
        Some(n)
    );
    let n = count_of(&plain, "top_recipients", "bob@example.jp").unwrap();
    assert_eq!(
        count_of(
            &private,
            "top_recipients",
            &hash_local(KEY, "bob@example.jp")
        ),
        Some(n)
    );
}
