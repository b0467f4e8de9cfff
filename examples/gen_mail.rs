//! Generates an E-Post mail work folder of N lines for the end-to-end benchmark: every kind,
//! CP932 with Japanese HELOs and filter warnings, CRLF, continuation lines in receivelog,
//! time prefixes in senderlog, a realistic mix (traces dominate, as on a real server).
//!
//!   cargo run --release --example gen_mail -- --lines 1000000 --out target/bench/mail

use std::io::{BufWriter, Write};
use std::path::PathBuf;

fn main() {
    let mut lines: u64 = 1_000_000;
    let mut out = PathBuf::from("target/bench/mail");
    let mut days: u32 = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--lines" => lines = args.next().and_then(|v| v.parse().ok()).expect("--lines N"),
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            "--days" => days = args.next().and_then(|v| v.parse().ok()).expect("--days N"),
            _ => panic!("usage: gen_mail [--lines N] [--out DIR] [--days N]"),
        }
    }
    let written = generate(lines, &out, days);
    eprintln!("wrote {written} lines under {}", out.display());
}

/// Writes about `lines` physical lines under `out` (removed first); returns how many. Also
/// used by tests (tests/privacy.rs includes this file).
pub fn generate(lines: u64, out: &std::path::Path, days: u32) -> u64 {
    let _ = std::fs::remove_dir_all(out);
    // share of lines per kind (per mille), roughly a busy server with traces on
    let mix: [(&str, u64); 12] = [
        ("receivelog", 330),
        ("senderlog", 250),
        ("acceptlog", 90),
        ("inlog", 60),
        ("outlog", 50),
        ("outlocallog", 40),
        ("faillog", 10),
        ("pop3log", 40),
        ("receivepop3", 50),
        ("imap4log", 30),
        ("receiveimap4", 45),
        ("maildblog", 5),
    ];
    let helos = [
        "client.example.net",
        "窓口PC",
        "mx.example.org",
        "営業部-PC01",
        "pc01",
    ];
    let mut written = 0u64;
    for (kind, share) in mix {
        let n_kind = lines * share / 1000;
        let per_day = n_kind / u64::from(days) + 1;
        let mut n = 0u64;
        'days: for d in 0..days {
            let day = 1 + d;
            let dir = out.join(kind).join("MAILSV01");
            std::fs::create_dir_all(&dir).unwrap();
            let f = std::fs::File::create(dir.join(format!("1711{day:02}.log"))).unwrap();
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let mut i = 0u64;
            while i < per_day {
                if n >= n_kind {
                    break 'days;
                }
                let id = 97_000_000 + n;
                let s = i * 86_400 / per_day;
                let t = format!(
                    "{day:02}/Nov/2017:{:02}:{:02}:{:02}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                );
                let clock = format!(
                    "{:02}:{:02}:{:02}:{:03}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60,
                    n % 1000
                );
                let helo = helos[(n % 5) as usize];
                let ip = format!("203.0.{}.{}", n % 200, n % 250 + 1);
                let text: String = match kind {
                    "receivelog" => match n % 6 {
                        // a multi-line reply: 3 physical lines + the blank \r\r\n artefact
                        0 => format!(
                            "[{t}], {:08x}, 250-mx.example.jp Hello [{ip}], pleased to meet you\r\r\n250-AUTH LOGIN PLAIN CRAM-MD5\r\r\n250 SIZE 20971520\r\r\n\r\n",
                            n % 4096
                        ),
                        1 => format!(
                            "[{t}], {:08x}, MAIL FROM:<user{}@example.net>\r\r\n\r\n",
                            n % 4096,
                            n % 977
                        ),
                        2 => format!(
                            "[{t}], 00000000, Check MAIL FROM address = user{}@example.net\r\n",
                            n % 977
                        ),
                        3 => format!(
                            "[{t}], {:08x}, 250 2.0.0 <user{}@example.net>... Sender ok.\r\r\n\r\n",
                            n % 4096,
                            n % 977
                        ),
                        4 => format!("[{t}], {:08x}, HELO {helo}\r\r\n\r\n", n % 4096),
                        _ => format!(
                            "[{t}], {:08x}, RCPT TO:<bob{}@example.jp>\r\r\n\r\n",
                            n % 4096,
                            n % 313
                        ),
                    },
                    "senderlog" => match n % 4 {
                        0 => format!(
                            "[{clock}] [B{id:010}] [example.com] GetTryServer:(ltime(12709270733)-otime(12709270733))/240=(0)\r\n"
                        ),
                        1 => format!(
                            "[{clock}] [B{id:010}] SendMailMess:RCPT TO:<jiro{}@example.com>\r\r\n\r\n",
                            n % 313
                        ),
                        2 => format!(
                            "[{clock}] [B{id:010}] SendMailMess:[{clock}] 250 2.1.5 Recipient ok\r\r\n\r\n"
                        ),
                        _ => format!("[{clock}] [B{id:010}] outlog() thread=1.\r\n"),
                    },
                    "acceptlog" => {
                        if n % 2 == 0 {
                            format!("[{t}], (mx.example.jp), [{ip}]:25, Client accept now.\r\n")
                        } else {
                            format!(
                                "[{t}], (mx.example.jp), {ip}[{ip}], user{}@example.net,<B{id:010}>,ok\r\n",
                                n % 977
                            )
                        }
                    }
                    "inlog" => format!(
                        "<B{id:010}@mx.example.jp> [{t}] {ip} {helo} user{}@example.net bob{}@example.jp carol{}@example.jp\r\n",
                        n % 977,
                        n % 313,
                        n % 101
                    ),
                    "outlog" => format!(
                        "B{id:010}@mx.example.jp sent on [{t}] to 198.51.100.25 mx.example.com from taro@example.jp to jiro{}@example.com \r\n",
                        n % 313
                    ),
                    "outlocallog" => format!(
                        "B{id:010}@mx.example.jp sent on [{t}] to 127.0.0.1 mx.example.jp from alice@example.net to bob{}@example.jp\r\n",
                        n % 313
                    ),
                    "faillog" => format!(
                        "B{id:010}@mx.example.jp send fail on [{t}] from taro@example.jp to nobody{}@example.com [550 5.1.1 <nobody@example.com>... User unknown]\r\n",
                        n % 313
                    ),
                    "pop3log" => format!(
                        "bob{}@example.jp from 192.168.0.{} RETR {} [{t}] +OK\r\n",
                        n % 313,
                        n % 250,
                        n % 40
                    ),
                    "receivepop3" => {
                        if n % 5 == 0 {
                            format!(
                                "[{t}], {:08x}, UIDL\r\n1 B0001589561.MSG\r\n2 B0001589565.MSG\r\n.\r\n",
                                n % 4096
                            )
                        } else {
                            format!("[{t}], {:08x}, +OK\r\n", n % 4096)
                        }
                    }
                    "imap4log" => format!(
                        "[{t}] taro{}@example.jp from 192.168.0.{} SELECT \"&MMkw6TDVMMg-\" Success\r\n",
                        n % 313,
                        n % 250
                    ),
                    "receiveimap4" => format!("[{t}], {:08x}, * {} EXISTS\r\n", n % 4096, n % 90),
                    _ => format!(
                        "[{t}] [IN=user{}@example.net] / [maildb=user{}@example.net] mach!!\r\n",
                        n % 977,
                        n % 977
                    ),
                };
                let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
                w.write_all(&bytes).unwrap();
                // physical lines, blank ones included
                let physical = text.matches('\n').count() as u64;
                written += physical;
                i += physical;
                n += physical;
            }
            w.flush().unwrap();
        }
    }
    written
}
