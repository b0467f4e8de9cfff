//! Properties that hold for any input: random bytes never panic the parser, and every
//! non-blank physical line either starts exactly one record or joins the record before it.

use epost_shipper::decode::Encoding;
use epost_shipper::kind::Kind;
use epost_shipper::parse::{ParseOptions, parse_bytes};
use epost_shipper::record::Source;
use proptest::prelude::*;

/// Every kind read as lines (viruslog is read as file pairs).
fn line_kinds() -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|k| *k != Kind::Viruslog)
        .collect()
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r')
}

/// Line starts (offsets) of the non-blank lines of `bytes`.
fn content_lines(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for (i, chunk) in bytes.split(|&b| b == b'\n').enumerate() {
        let _ = i;
        if !is_blank(chunk) {
            out.push(start as u64);
        }
        start += chunk.len() + 1;
    }
    out
}

fn check(kind: Kind, bytes: &[u8], encoding: Encoding) -> Result<(), TestCaseError> {
    let source = Source::new("H", kind, "/m/x/H/171130.log");
    let options = ParseOptions {
        encoding,
        ..ParseOptions::default()
    };
    let mut records: Vec<(u64, usize, String)> = Vec::new();
    parse_bytes(source, options, bytes, &mut |r| {
        records.push((r.offset, r.message.split('\n').count(), r.to_json()));
    });
    let lines = content_lines(bytes);
    let joined: usize = records.iter().map(|r| r.1).sum();
    prop_assert_eq!(joined, lines.len(), "lines accounted for in {:?}", kind);
    let mut prev = None;
    for (offset, _, json) in &records {
        prop_assert!(
            lines.contains(offset),
            "record offset {} is not a line start",
            offset
        );
        prop_assert!(prev.is_none_or(|p| p < *offset), "offsets increase");
        prev = Some(*offset);
        let v: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        prop_assert!(v["event"]["id"].as_str().is_some());
        prop_assert!(v["@timestamp"].as_str().is_some());
    }
    Ok(())
}

/// Bytes that look a little like E-Post lines, so that the parsers get past their first checks.
fn loggy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"[30/Nov/2017:08:20:44], ".to_vec()),
        Just(b"0145a008, ".to_vec()),
        Just(b"[08:22:11:020] ".to_vec()),
        Just(b"[B0000097587] ".to_vec()),
        Just(b"SendMailMess:".to_vec()),
        Just(b"AUTH LOGIN".to_vec()),
        Just(b"AUTH PLAIN x".to_vec()),
        Just(b"334 VXNlcm5hbWU6".to_vec()),
        Just(b"<B0000097403@mx> ".to_vec()),
        Just(b" sent on ".to_vec()),
        Just(b" send fail on ".to_vec()),
        Just(b" from ".to_vec()),
        Just(b" to ".to_vec()),
        Just(b"(mx), ".to_vec()),
        Just(b"[1.2.3.4]:25".to_vec()),
        Just(b",<B0000000000>,ok".to_vec()),
        Just(b"---- regestry ----".to_vec()),
        Just(b"-------------------".to_vec()),
        Just(b"\r\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\x91\x8b\x8c\xfb".to_vec()),
        Just(b"\x81".to_vec()),
        Just(b"\xff".to_vec()),
        Just(b"=?iso-2022-jp?b?GyRC?=".to_vec()),
        Just(b"PASS ".to_vec()),
        Just(b"0001 LOGIN \"a".to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_and_every_line_is_accounted_for(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        k in 0..12usize,
    ) {
        check(line_kinds()[k], &bytes, Encoding::Cp932)?;
    }

    #[test]
    fn log_shaped_bytes_never_panic_and_every_line_is_accounted_for(
        bytes in loggy(),
        k in 0..12usize,
        e in 0..3usize,
    ) {
        let enc = [Encoding::Cp932, Encoding::Utf8, Encoding::Auto][e];
        check(line_kinds()[k], &bytes, enc)?;
    }

    #[test]
    fn quarantine_files_never_panic(rcp in loggy(), msg in loggy()) {
        let source = Source::new("H", Kind::Viruslog, "/m/viruslog/B0000000001.RCP");
        let mut n = 0;
        epost_shipper::parse::quarantine::record(
            &source,
            &ParseOptions::default(),
            &rcp,
            0,
            Some(epost_shipper::parse::quarantine::Message { path: "/m/viruslog/B0000000001.MSG", bytes: &msg }),
            &mut |_| n += 1,
        );
        prop_assert_eq!(n, 1);
    }
}
