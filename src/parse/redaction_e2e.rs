//! End to end: real-shaped log files of every kind that carries credentials, parsed with
//! [`parse_bytes`] and written as the JSON the sinks receive. No password, in clear or in
//! base64, may appear anywhere in the output; user names given to `USER` and the command
//! words must remain.

use base64::Engine;

use super::{ParseOptions, parse_bytes};
use crate::kind::Kind;
use crate::record::Source;

const PASSWORD: &str = "Hunter2pw";
const USER: &str = "bob@example.jp";

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every record of `text` (CRLF line ends, as E-Post writes on Windows) as one JSON line each.
fn json_of(kind: Kind, file: &str, text: &str) -> String {
    let source = Source::new(
        "MAILSV01",
        kind,
        &format!("/mail/{}/MAILSV01/{file}", kind.name()),
    );
    let bytes = text.replace('\n', "\r\n");
    let mut out = String::new();
    parse_bytes(
        source,
        ParseOptions::default(),
        bytes.as_bytes(),
        &mut |r| {
            out.push_str(&r.to_json());
            out.push('\n');
        },
    );
    out
}

// Long on purpose: test data: one credential-carrying line per log kind.
fn inputs() -> Vec<(Kind, &'static str, String)> {
    let pw64 = b64(PASSWORD.as_bytes());
    let user64 = b64(USER.as_bytes());
    let plain = b64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    let ntlm3 = b64(format!("NTLMSSP\0\x03\0\0\0{USER}{PASSWORD}").as_bytes());
    let t = "[30/Nov/2017:08:20:48]";
    let receivelog = format!(
        "{t}, 0145a008, EHLO client.example.net\r\n\n\
         {t}, 0145a008, AUTH LOGIN\r\n\n\
         {t}, 0145a008, 334 VXNlcm5hbWU6\r\n\n\
         {t}, 0145a008, {user64}\r\n\n\
         {t}, 0145a008, 334 UGFzc3dvcmQ6\r\n\n\
         {t}, 0145a008, {pw64}\r\n\n\
         {t}, 0145a008, 235 2.0.0 Authentication successful.\r\n\n\
         {t}, 0145a008, MAIL FROM:<alice@example.net>\r\nRCPT TO:<bob@example.jp>\r\nDATA\r\n\n\
         {t}, 0145b000, AUTH NTLM {}\r\n\n\
         {t}, 0145b000, 334 TlRMTVNTUAACAAAADAAMADAAAAA=\r\n\n\
         {t}, 0145b000, {ntlm3}\r\n\n\
         {t}, 0145b000, 235 2.0.0 Authentication successful.\r\n\n\
         {t}, 0145c000, {pw64}\r\n\n\
         {t}, 0145c000, 500 5.5.2 command unrecognized: \"{pw64}\"\r\n\n\
         [30/Nov/2017:08:20:4], 0145d000, PASS {PASSWORD}\n\
         {t}, 0145e000, AUTH PLAIN {plain}\r\n\n\
         {t}, 0145e000, 235 2.0.0 Authentication successful.\r\n\n",
        b64(b"NTLMSSP\0\x01\0\0\0")
    );
    // a file that begins in the middle of an exchange (the previous day's file had AUTH LOGIN)
    let receivelog_cut = format!("{pw64}\n{t}, 0145a008, {pw64}\r\n\n");
    let receivepop3 = format!(
        "{t}, 0015d02c, USER {USER}\n\
         {t}, 0015d02c, PASS {PASSWORD}\n\
         {t}, 0015d02c, +OK\n\
         {t}, 0015d030, AUTH PLAIN\n\
         {t}, 0015d030, + \n\
         {t}, 0015d030, {plain}\n\
         {t}, 0015d030, +OK\n\
         {t}, 0015d034, APOP {USER} 2b5f0c9e6f1d8a7c3e4b5a69788f90e1\n\
         {t}, 0015d038, USER {USER}\nPASS {PASSWORD}\n\
         30/Nov/2017:18:19:14, 0015d03c, PASS {PASSWORD}\n"
    );
    let receiveimap4 = format!(
        "{t}, 00146288, a LOGIN {USER} {PASSWORD}\n\
         {t}, 00146288, a OK LOGIN completed\n\
         {t}, 0014628c, A LOGIN \"{USER}\" \"{PASSWORD}\"\n\
         {t}, 00146290, a1 LOGIN {{14}}\n\
         {t}, 00146290, + Ready for additional command text\n\
         {t}, 00146290, {USER} {{9}}\n\
         {t}, 00146290, + Ready for additional command text\n\
         {t}, 00146290, {PASSWORD}\n\
         {t}, 00146290, a1 OK LOGIN completed\n\
         {t}, 00146294, b1 LOGIN {{14+}}\n{USER} {{9+}}\n{PASSWORD}\n\
         {t}, 00146298, c AUTHENTICATE PLAIN\n\
         {t}, 00146298, + \n\
         {t}, 00146298, {plain}\n\
         {t}, 00146298, c OK\n"
    );
    let senderlog = format!(
        "[08:22:11:700] [B0000097587] SendMailMess:AUTH LOGIN\r\n\n\
         [08:22:11:705] [B0000097587] SendMailMess:[08:22:11:710] 334 VXNlcm5hbWU6\r\n\n\
         [08:22:11:720] [B0000097587] SendMailMess:{user64}\r\n\n\
         [08:22:11:725] [B0000097587] SendMailMess:[08:22:11:728] 334 UGFzc3dvcmQ6\r\n\n\
         [08:22:11:730] [B0000097587] SendMailMess:{pw64}\r\n\n\
         [08:22:11:790] [B0000097587] SendMailMess:[08:22:11:795] 235 2.7.0 ok\r\n\n\
         [08:22:12:001] [B0000097587] SendMailMess:AUTH PLAIN {plain}\r\n\n\
         PASS {PASSWORD}\n"
    );
    // the next hour's file: the exchange began in the previous one
    let senderlog_next_hour =
        format!("[09:00:00:001] [B0000097588] SendMailMess:{pw64}\r\n\nPASS {PASSWORD}\n");
    let pop3log = format!(
        "{USER} from 192.168.0.4 PASS {PASSWORD} [30/Nov/2017:18:19:14] +OK\n\
         {USER} from 192.168.0.4 PASS {PASSWORD}\n\
         {USER} from 192.168.0.4 APOP {USER} 2b5f0c9e6f1d8a7c3e4b5a69788f90e1\n"
    );
    let imap4log = format!(
        "[30/Nov/2017:07:58:10] - from 192.168.0.9 LOGIN {USER} {PASSWORD} Failed\n\
         [30/Nov/2017:07:58:1] - from 192.168.0.9 LOGIN {USER} {PASSWORD} Failed\n\
         a LOGIN {USER} {PASSWORD}\n"
    );
    vec![
        (Kind::Receivelog, "171130.log", receivelog),
        (Kind::Receivelog, "171201.log", receivelog_cut),
        (Kind::Receivepop3, "171130.log", receivepop3),
        (Kind::Receiveimap4, "171130.log", receiveimap4),
        (Kind::Senderlog, "171130_08.log", senderlog),
        (Kind::Senderlog, "171130_09.log", senderlog_next_hour),
        (Kind::Pop3log, "171130.log", pop3log),
        (Kind::Imap4log, "171130.log", imap4log),
    ]
}

#[test]
fn no_password_in_clear_or_base64_reaches_the_json() {
    let secrets = [
        PASSWORD.to_string(),
        b64(PASSWORD.as_bytes()),
        b64(format!("\0{USER}\0{PASSWORD}").as_bytes()),
        b64(format!("NTLMSSP\0\x03\0\0\0{USER}{PASSWORD}").as_bytes()),
        "2b5f0c9e6f1d8a7c3e4b5a69788f90e1".to_string(),
    ];
    let mut all = String::new();
    for (kind, file, text) in inputs() {
        let json = json_of(kind, file, &text);
        assert!(!json.is_empty(), "{kind:?} gave no records");
        for line in json.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
            assert!(v["message"].is_string());
            for s in &secrets {
                assert!(
                    !line.contains(s.as_str()),
                    "{kind:?} {file}: {s} leaked in {line}"
                );
            }
        }
        all.push_str(&json);
    }
    // what is not secret stays
    for keep in [
        format!("USER {USER}"),
        "PASS [REDACTED]".to_string(),
        "AUTH LOGIN".to_string(),
        "AUTH NTLM [REDACTED]".to_string(),
        "AUTH PLAIN [REDACTED]".to_string(),
        format!("APOP {USER} [REDACTED]"),
        format!("a LOGIN {USER} [REDACTED]"),
        format!("{USER} {{9}}"),
        "MAIL FROM:<alice@example.net>\\nRCPT TO:<bob@example.jp>\\nDATA".to_string(),
        "command unrecognized: \\\"[REDACTED]\\\"".to_string(),
        "\"user\":{\"name\":\"bob@example.jp\"}".to_string(),
    ] {
        assert!(
            all.contains(&keep),
            "`{keep}` is missing from the output:\n{all}"
        );
    }
}
