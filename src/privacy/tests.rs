//! A policy over records parsed from the example lines.

use super::*;
use crate::kind::Kind;
use crate::parse::{FileParser, ParseOptions};
use crate::record::{Record, Source};

const KEY: &[u8] = b"test key, 32 bytes long, really";

fn policy(rules: &[(&str, &str)]) -> Policy {
    let rules: Vec<(Field, Mode)> = rules
        .iter()
        .map(|(f, m)| (Field::from_name(f).unwrap(), Mode::from_name(m).unwrap()))
        .collect();
    Policy::new(&rules, Some(KEY))
}

/// Parses `lines` as `kind` and returns each record's JSON after the policy.
fn run(p: &Policy, kind: Kind, lines: &str) -> Vec<serde_json::Value> {
    let mut p2 = FileParser::new(
        Source::new("MAILSV01", kind, "171130.log"),
        ParseOptions {
            encoding: crate::decode::Encoding::Utf8,
            ..ParseOptions::default()
        },
    );
    let mut out = Vec::new();
    let mut emit = |r: &Record<'_>| {
        out.push(serde_json::from_str(&p.apply(r).to_json()).unwrap());
    };
    let mut offset = 0;
    for l in lines.lines() {
        p2.push_line(offset, l.as_bytes(), &mut emit);
        offset += l.len() as u64 + 1;
    }
    p2.flush(&mut emit);
    out
}

/// HMAC-SHA256 by its definition (RFC 2104) over the `sha2` digest: the expectation is not
/// computed by the code under test.
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

#[test]
fn inlog_fields_and_message() {
    let p = policy(&[
        ("email.from.address", "hash-local"),
        ("email.to.address", "hash"),
        ("client.ip", "truncate"),
        ("epost.smtp.helo", "drop"),
    ]);
    let recs = run(
        &p,
        Kind::Inlog,
        "<B0000097586@mx.example.jp> [30/Nov/2017:08:22:06] 203.0.113.5 client.example.net Alice@Example.net bob@example.jp\n",
    );
    let r = &recs[0];
    let from = format!("h_{}@example.net", hmac_hex(KEY, "alice"));
    let to = format!("h_{}", hmac_hex(KEY, "bob@example.jp"));
    assert_eq!(r["email"]["from"]["address"][0], from.as_str());
    assert_eq!(r["email"]["to"]["address"][0], to.as_str());
    assert_eq!(r["client"]["ip"], "203.0.113.0");
    assert!(r["epost"]["smtp"].get("helo").is_none(), "{r}");
    assert_eq!(
        r["message"],
        format!(
            "<B0000097586@mx.example.jp> [30/Nov/2017:08:22:06] 203.0.113.0 [DROPPED] {from} {to}"
        )
        .as_str()
    );
    // what is not personal stays
    assert_eq!(r["email"]["local_id"], "B0000097586");
    assert_eq!(r["server"]["domain"], "mx.example.jp");
}

#[test]
fn trace_lines_lose_addresses_users_and_ips() {
    let p = policy(&[
        ("email.from.address", "hash"),
        ("email.to.address", "hash"),
        ("user.name", "hash"),
        ("client.ip", "hash"),
    ]);
    let recs = run(
        &p,
        Kind::Receivepop3,
        "[30/Nov/2017:18:19:14], 0145a009, USER Taro\n[30/Nov/2017:18:19:14], 0145a009, +OK from [2001:db8::25]\n",
    );
    let m0 = recs[0]["message"].as_str().unwrap();
    assert_eq!(
        m0,
        format!(
            "[30/Nov/2017:18:19:14], 0145a009, USER h_{}",
            hmac_hex(KEY, "taro")
        )
    );
    let m1 = recs[1]["message"].as_str().unwrap();
    assert!(!m1.contains("2001:db8::25") && m1.contains("[fd"), "{m1}");
    let recs = run(
        &p,
        Kind::Receivelog,
        "[30/Nov/2017:08:20:49], 0145a008, MAIL FROM:<Alice@example.net>\n",
    );
    assert_eq!(
        recs[0]["message"],
        format!(
            "[30/Nov/2017:08:20:49], 0145a008, MAIL FROM:<h_{}>",
            hmac_hex(KEY, "alice@example.net")
        )
        .as_str()
    );
}

#[test]
fn faillog_reason_and_message_agree() {
    let p = policy(&[("email.to.address", "hash-local")]);
    let recs = run(
        &p,
        Kind::Faillog,
        "B0000097588@mx.example.jp send fail on [30/Nov/2017:09:10:51] from taro@example.jp to nobody@example.com [550 5.1.1 <nobody@example.com>... User unknown]\n",
    );
    let r = &recs[0];
    let to = format!("h_{}@example.com", hmac_hex(KEY, "nobody"));
    assert_eq!(r["email"]["to"]["address"][0], to.as_str());
    assert_eq!(
        r["error"]["message"],
        format!("550 5.1.1 <{to}>... User unknown").as_str()
    );
    // from is kept, and the strictest address mode (hash-local) covers the rest of the text
    assert_eq!(r["email"]["from"]["address"][0], "taro@example.jp");
    let m = r["message"].as_str().unwrap();
    assert!(!m.contains("nobody@") && m.contains(&to), "{m}");
}

#[test]
fn message_drop_and_maildb_follow_addresses() {
    let p = policy(&[("email.from.address", "drop"), ("message", "drop")]);
    let recs = run(
        &p,
        Kind::Maildblog,
        "[30/Nov/2017:10:00:00] [IN=alice@example.net] / [maildb=alice@example.net] mach!!\n",
    );
    let r = &recs[0];
    assert_eq!(r["message"], "[DROPPED]");
    assert!(r["epost"].get("maildb").is_none(), "{r}");
}

#[test]
fn off_by_default_and_keep_changes_nothing() {
    let p = Policy::new(&[], None);
    assert!(!p.hides_anything() && !p.needs_key());
    let line =
        "bob@example.jp from 192.168.0.4 APOP bob@example.jp [REDACTED] [30/Nov/2017:18:19:14] \n";
    let kept = run(&p, Kind::Pop3log, line);
    let plain = run(&policy(&[("user.name", "keep")]), Kind::Pop3log, line);
    assert_eq!(kept, plain);
    assert_eq!(kept[0]["user"]["name"], "bob@example.jp");
}

#[test]
fn different_keys_different_tokens() {
    let a = Policy::new(
        &[(Field::UserName, Mode::Hash)],
        Some(b"key one, long enough!"),
    );
    let b = Policy::new(
        &[(Field::UserName, Mode::Hash)],
        Some(b"key two, long enough!"),
    );
    let ta = a.query_token(Field::UserName, "taro").unwrap();
    assert_ne!(ta, b.query_token(Field::UserName, "taro").unwrap());
    assert_eq!(ta, a.query_token(Field::UserName, "TARO").unwrap());
    assert_eq!(
        ta,
        format!("h_{}", hmac_hex(b"key one, long enough!", "taro"))
    );
}
