//! viruslog: a quarantined message is a pair `Bxxxx.MSG` (the raw message) + `Bxxxx.RCP` (its
//! envelope, with the filter's warning lines appended). One record per pair.

use base64::Engine;

use crate::decode::{Encoding, decode, decode_charset};

/// What the `.RCP` envelope says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub local_id: Option<String>,
    pub server_domain: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub warnings: Vec<String>,
    pub unknown_virus: bool,
}

pub fn parse_rcp(text: &str) -> Result<Envelope, &'static str> {
    let mut env = Envelope::default();
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut saw_header = false;
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let bare = super::unbracket(value);
        match name.to_ascii_lowercase().as_str() {
            "message-id" => {
                saw_header = true;
                let (id, host) = bare.split_once('@').unwrap_or((bare, ""));
                if let Some((local, _)) = super::split_local_id(id) {
                    env.local_id = Some(local.to_string());
                }
                if !host.is_empty() {
                    env.server_domain = Some(host.to_string());
                }
            }
            "return-path" => {
                saw_header = true;
                if !bare.is_empty() {
                    env.from = Some(bare.to_string());
                }
            }
            "recipient" => {
                saw_header = true;
                if !bare.is_empty() {
                    env.to.push(bare.to_string());
                }
            }
            _ => {}
        }
    }
    if !saw_header {
        return Err("no Message-ID, Return-path or Recipient line in the .RCP file");
    }
    let mut in_block = false;
    for line in lines {
        let t = line.trim();
        if t.starts_with("------------ warning") {
            in_block = true;
            continue;
        }
        if in_block {
            if t.contains("unknown virus") {
                env.unknown_virus = true;
            }
            if t.starts_with("-----") {
                in_block = false;
            }
            continue;
        }
        if t.contains("The doubt of the \"unknown virus\"") {
            env.unknown_virus = true;
            continue;
        }
        if !t.is_empty() && env.warnings.len() < 5 {
            env.warnings.push(t.to_string());
        }
    }
    Ok(env)
}

/// The decoded `Subject:` of a raw message (headers end at the first empty line).
pub fn subject(msg: &[u8], fallback: Encoding) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in msg.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        match (&mut value, line[0]) {
            (Some(v), b' ' | b'\t') => {
                // folded continuation
                v.extend_from_slice(line);
            }
            (Some(_), _) => break,
            (None, _) => {
                if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:") {
                    value = Some(line[8..].to_vec());
                }
            }
        }
    }
    let v = value?;
    let s = decode_encoded_words(trim_bytes(&v), fallback);
    (!s.is_empty()).then_some(s)
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// One `=?charset?enc?text?=` word: (charset, decoded bytes, length in the input).
fn encoded_word(b: &[u8]) -> Option<(String, Vec<u8>, usize)> {
    let rest = b.strip_prefix(b"=?")?;
    let q1 = rest.iter().position(|&c| c == b'?')?;
    let charset = std::str::from_utf8(&rest[..q1]).ok()?;
    // RFC 2231 language suffix: charset*lang
    let charset = charset.split('*').next()?.to_string();
    let enc = *rest.get(q1 + 1)?;
    if rest.get(q1 + 2) != Some(&b'?') {
        return None;
    }
    let text_start = q1 + 3;
    let text_len = rest[text_start..].windows(2).position(|w| w == b"?=")?;
    let text = &rest[text_start..text_start + text_len];
    let bytes = match enc {
        b'B' | b'b' => {
            let cleaned: Vec<u8> = text
                .iter()
                .copied()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&cleaned)
                .or_else(|_| {
                    base64::engine::general_purpose::STANDARD_NO_PAD
                        .decode(cleaned.strip_suffix(b"=").unwrap_or(&cleaned))
                })
                .ok()?
        }
        b'Q' | b'q' => {
            let mut out = Vec::with_capacity(text.len());
            let mut i = 0;
            while i < text.len() {
                match text[i] {
                    b'_' => out.push(b' '),
                    b'=' if i + 2 < text.len() => {
                        let h = std::str::from_utf8(text.get(i + 1..i + 3)?).ok()?;
                        out.push(u8::from_str_radix(h, 16).ok()?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    Some((charset, bytes, 2 + text_start + text_len + 2))
}

/// RFC 2047 decoding. Adjacent encoded words of one charset are joined before decoding,
/// because Japanese mailers split ISO-2022-JP byte sequences across words.
pub fn decode_encoded_words(raw: &[u8], fallback: Encoding) -> String {
    let mut out = String::new();
    let mut run: Option<(String, Vec<u8>)> = None;
    let mut gap: &[u8] = &[];
    let flush = |run: &mut Option<(String, Vec<u8>)>, out: &mut String| {
        if let Some((cs, bytes)) = run.take() {
            out.push_str(&decode_charset(&bytes, &cs, fallback).text);
        }
    };
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(b"=?")
            && let Some((cs, bytes, len)) = encoded_word(&raw[i..])
        {
            match &mut run {
                Some((rcs, rb)) if rcs.eq_ignore_ascii_case(&cs) => rb.extend_from_slice(&bytes),
                _ => {
                    flush(&mut run, &mut out);
                    run = Some((cs, bytes));
                }
            }
            gap = &[];
            i += len;
            continue;
        }
        // plain text up to the next encoded word
        let next = raw[i + 1..]
            .windows(2)
            .position(|w| w == b"=?")
            .map_or(raw.len(), |p| i + 1 + p);
        let chunk = &raw[i..next];
        if run.is_some() && chunk.iter().all(|c| c.is_ascii_whitespace()) {
            // whitespace between two encoded words is dropped (RFC 2047 §6.2)
            gap = chunk;
        } else {
            flush(&mut run, &mut out);
            out.push_str(&decode(gap, fallback).text);
            gap = &[];
            out.push_str(&decode(chunk, fallback).text);
        }
        i = next;
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcp_with_warning_and_unknown_virus() {
        let rcp = "Message-ID: <B0000097594@mx.example.jp>\r\nReturn-path: spam@example.biz\r\nRecipient: bob@example.jp\r\nRecipient: taro@example.jp\r\n\r\nWarning: 添付\r\n\r\n\r\n\r\n\r\n\r\n  ------------ warning ------------\r\n  The doubt of the \"unknown virus\".\r\n  ---------------------------------\r\n";
        let e = parse_rcp(rcp).unwrap();
        assert_eq!(e.local_id.as_deref(), Some("B0000097594"));
        assert_eq!(e.server_domain.as_deref(), Some("mx.example.jp"));
        assert_eq!(e.from.as_deref(), Some("spam@example.biz"));
        assert_eq!(e.to, vec!["bob@example.jp", "taro@example.jp"]);
        assert_eq!(e.warnings, vec!["Warning: 添付"]);
        assert!(e.unknown_virus);
    }

    #[test]
    fn rcp_null_sender() {
        let e = parse_rcp("Message-ID: <B0000000001@h>\nReturn-path: \nRecipient: a@b\n").unwrap();
        assert_eq!(e.from, None);
        assert!(!e.unknown_virus);
        assert!(parse_rcp("hello\nworld").is_err());
    }

    #[test]
    fn subjects() {
        let msg = b"From: x\r\nSubject: =?iso-2022-jp?b?GyRCRTpJVSVVJSElJCVrJE4kNDBGRmIbKEI=?=\r\n\r\nbody";
        assert_eq!(
            subject(msg, Encoding::Cp932).as_deref(),
            Some("添付ファイルのご案内")
        );
        let msg = b"Subject: =?UTF-8?Q?caf=C3=A9_menu?= =?UTF-8?B?44GC?=\r\n folded\r\n\r\n";
        assert_eq!(
            subject(msg, Encoding::Cp932).as_deref(),
            Some("café menuあ folded")
        );
        let msg = b"Subject: plain \x91\x8b\x8c\xfb\r\n\r\n";
        assert_eq!(subject(msg, Encoding::Cp932).as_deref(), Some("plain 窓口"));
        assert_eq!(
            subject(b"From: a\r\n\r\nSubject: no", Encoding::Cp932),
            None
        );
        // broken encoded word stays as text
        assert_eq!(
            decode_encoded_words(b"=?x?Z?abc?=", Encoding::Cp932),
            "=?x?Z?abc?="
        );
    }
}
