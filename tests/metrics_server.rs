//! The `/metrics` server under hostile clients (issue 15, item 4): connections over its cap are
//! closed at once, a client that never sends its request is dropped after the head deadline,
//! and a scrape works again afterwards. The hand-written server this replaced kept every
//! silent connection and starved the process of descriptors.
//!
//! Deliberate break made to see it fail: `MAX_CONNECTIONS` raised to 1000 (the connections
//! over the cap were then not closed: the test failed at "closed at once").

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the server closed `s` within `within` (a read returns 0 or an error).
fn closed_within(mut s: &TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn silent_clients_are_capped_and_dropped_and_scrapes_go_on() {
    let root = tempfile::tempdir().unwrap();
    let mail = root.path().join("mail/inlog/MX1");
    std::fs::create_dir_all(&mail).unwrap();
    std::fs::write(
        mail.join("171130.log"),
        "<B0000000001@mx.example.jp> [30/Nov/2017:08:00:00] 203.0.113.5 c a@b c@d\r\n",
    )
    .unwrap();
    let port = free_port();
    let config = root.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nworkdir = '{}'\nignore_older_than = \"100000d\"\nstate_dir = '{}'\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n[[sink]]\ntype = \"file\"\npath = '{}'\n",
            root.path().join("mail").display(),
            root.path().join("state").display(),
            root.path().join("out.ndjson").display()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Some(s) = scrape(port).filter(|s| s.contains("epost_lines_read_total")) {
            break s;
        }
        assert!(Instant::now() < deadline, "metrics never answered");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    // 40 clients that connect and say nothing
    let silent: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let closed_at_once = silent
        .iter()
        .filter_map(|s| closed_within(s, Duration::from_millis(200)).then_some(()))
        .count();
    // the cap is 8: everyone past it is closed at once
    assert!(
        closed_at_once >= 32,
        "closed at once: {closed_at_once} of 40"
    );
    // the ones that got a slot are dropped after the head deadline (5 s)
    let still_open: usize = silent
        .iter()
        .filter(|s| !closed_within(s, Duration::from_secs(10)))
        .count();
    assert_eq!(still_open, 0, "silent clients kept past the head deadline");
    let again = scrape(port).expect("a scrape after the flood");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert!(again.contains("epost_lines_read_total 1"), "{again}");
}

/// Ends the shipper however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
