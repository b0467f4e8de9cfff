//! Bad configs are refused at load time by every command that loads one (`check`, `run`,
//! `backfill`; `service install` loads it the same way, on Windows only): exit code 2, and
//! stderr names the file, the line and the key. Credentials in sink URLs never reach the
//! output, and `check` lists the log files it cannot read.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

struct Dir {
    dir: tempfile::TempDir,
    mail: PathBuf,
    state: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        std::fs::create_dir_all(mail.join("inlog/MAILSV01")).unwrap();
        Dir {
            state: dir.path().join("state"),
            mail,
            dir,
        }
    }

    /// `[source]` with the work and state folders, then `rest`; the metrics endpoint off
    /// unless `rest` has a `[metrics]` table (should a bad config be taken, `run` must not
    /// fight other tests for the port).
    fn write(&self, name: &str, source: &str, rest: &str) -> (PathBuf, String) {
        let mut text = format!(
            "[source]\nworkdir = '{}'\nstate_dir = '{}'\nignore_older_than = \"100000d\"\n{source}\n{rest}\n",
            self.mail.display(),
            self.state.display()
        );
        if !rest.contains("[metrics]") {
            text.push_str("\n[metrics]\nlisten = \"\"\n");
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        (path, text)
    }
}

/// Runs the binary with a deadline: a config that is wrongly accepted would make `run`
/// run forever.
fn run_bin(args: &[&str], config: &Path) -> Output {
    use std::io::Read;
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            b
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{}` did not exit within 20 s: the config was taken",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The 1-based number of the one line of `text` that contains `marker`.
fn line_of(text: &str, marker: &str) -> usize {
    let hits: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(marker))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "marker {marker:?} must be on exactly one line of:\n{text}"
    );
    hits[0]
}

struct Case {
    what: &'static str,
    source: &'static str,
    rest: String,
    /// Text on the line the error must name.
    marker: &'static str,
    key: &'static str,
}

fn case(
    what: &'static str,
    source: &'static str,
    rest: &str,
    marker: &'static str,
    key: &'static str,
) -> Case {
    Case {
        what,
        source,
        rest: rest.to_string(),
        marker,
        key,
    }
}

const STDOUT: &str = "[[sink]]\ntype = \"stdout\"\n";

fn es(extra: &str) -> String {
    format!("[[sink]]\ntype = \"elasticsearch\"\nurl = \"http://127.0.0.1:9\"\n{extra}\n")
}

fn cases() -> Vec<Case> {
    let long = format!("{STDOUT}name = \"{}\"  # long\n", "a".repeat(65));
    let mut v = vec![
        // chrono panics when it displays an invalid item; refused at load now
        case(
            "bad strftime",
            "",
            &es("mode = \"index\"\nindex = \"epost-%Q-%Y\""),
            "index =",
            "sink[1].index",
        ),
        case(
            "strftime that cannot format a date",
            "",
            &es("mode = \"index\"\nindex = \"epost-%z\""),
            "index =",
            "sink[1].index",
        ),
        case(
            "strftime making a bad index name",
            "",
            &es("mode = \"index\"\nindex = \"epost %Y\""),
            "index =",
            "sink[1].index",
        ),
        case(
            "poll 0s spins",
            "poll_interval = \"0s\"",
            STDOUT,
            "poll_interval",
            "source.poll_interval",
        ),
        case(
            "poll far too long",
            "poll_interval = \"99999999999d\"",
            STDOUT,
            "poll_interval",
            "source.poll_interval",
        ),
        case(
            "duration overflow",
            "close_inactive = \"99999999999999999999d\"",
            STDOUT,
            "close_inactive",
            "source.close_inactive",
        ),
        case(
            "size overflow",
            "",
            &format!("{STDOUT}[pipeline]\nsegment_max_bytes = \"99999999999999GiB\""),
            "segment_max_bytes",
            "pipeline.segment_max_bytes",
        ),
        case(
            "checkpoint 0s",
            "",
            &format!("{STDOUT}[pipeline]\ncheckpoint_interval = \"0s\""),
            "checkpoint_interval",
            "pipeline.checkpoint_interval",
        ),
        case(
            "queue_segments 0",
            "",
            &format!("{STDOUT}[pipeline]\nqueue_segments = 0"),
            "queue_segments",
            "pipeline.queue_segments",
        ),
        case(
            "segment_max_records 0",
            "",
            &format!("{STDOUT}[pipeline]\nsegment_max_records = 0"),
            "segment_max_records",
            "pipeline.segment_max_records",
        ),
        case(
            "segment_max_bytes tiny",
            "",
            &format!("{STDOUT}[pipeline]\nsegment_max_bytes = \"1KiB\""),
            "segment_max_bytes",
            "pipeline.segment_max_bytes",
        ),
        case(
            "segment_max_bytes huge",
            "",
            &format!("{STDOUT}[pipeline]\nsegment_max_bytes = \"1GiB\""),
            "segment_max_bytes",
            "pipeline.segment_max_bytes",
        ),
        case(
            "max_record_bytes tiny",
            "",
            &format!("{STDOUT}[pipeline]\nmax_record_bytes = \"1KiB\""),
            "max_record_bytes",
            "pipeline.max_record_bytes",
        ),
        case(
            "max_record_bytes huge",
            "",
            &format!("{STDOUT}[pipeline]\nmax_record_bytes = \"65MiB\""),
            "max_record_bytes",
            "pipeline.max_record_bytes",
        ),
        case(
            "max_open_files 0",
            "max_open_files = 0",
            STDOUT,
            "max_open_files",
            "source.max_open_files",
        ),
        case(
            "max_open_files absurd",
            "max_open_files = 10000000",
            STDOUT,
            "max_open_files",
            "source.max_open_files",
        ),
        case(
            "negative size",
            "",
            &format!("{STDOUT}[pipeline]\nmax_record_bytes = -5"),
            "max_record_bytes",
            "pipeline.max_record_bytes",
        ),
        case(
            "retention schedule 0s",
            "",
            &format!("{STDOUT}[retention]\nschedule = \"0s\""),
            "schedule",
            "retention.schedule",
        ),
        case(
            "metrics listen",
            "",
            &format!("{STDOUT}[metrics]\nlisten = \"localhost:http\""),
            "listen",
            "metrics.listen",
        ),
        case(
            "batch_max_events 0",
            "",
            &es("batch_max_events = 0"),
            "batch_max_events",
            "sink[1].batch_max_events",
        ),
        case(
            "max_in_flight 0",
            "",
            &es("max_in_flight = 0"),
            "max_in_flight",
            "sink[1].max_in_flight",
        ),
        case(
            "request_timeout 0s",
            "",
            &es("request_timeout = \"0s\""),
            "request_timeout",
            "sink[1].request_timeout",
        ),
        case(
            "compression_level 0",
            "",
            &es("compression_level = 0"),
            "compression_level",
            "sink[1].compression_level",
        ),
        case(
            "ftp url",
            "",
            "[[sink]]\ntype = \"elasticsearch\"\nurl = \"ftp://127.0.0.1:21\"",
            "url =",
            "sink[1].url",
        ),
        case(
            "malformed url",
            "",
            "[[sink]]\ntype = \"loki\"\nurl = \"http//127.0.0.1:3100\"",
            "url =",
            "sink[1].url",
        ),
        case(
            "bad url in a list",
            "",
            "[[sink]]\ntype = \"elasticsearch\"\nurl = [\n  \"http://127.0.0.1:9200\",\n  \"gopher://127.0.0.1:70\",\n]",
            "gopher",
            "sink[1].url",
        ),
        case(
            "grpc endpoint with a path",
            "",
            "[[sink]]\ntype = \"otlp\"\nendpoint = \"http://127.0.0.1:4317/v1/logs\"",
            "endpoint",
            "sink[1].endpoint",
        ),
        case(
            "otlp http scheme",
            "",
            "[[sink]]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"ws://127.0.0.1:4318\"",
            "endpoint",
            "sink[1].endpoint",
        ),
        case(
            "second sink without type",
            "",
            &format!("{STDOUT}\n[[sink]]  # second\nname = \"second\"\n\n[metrics]\nlisten = \"\""),
            "# second",
            "sink[2].type",
        ),
        case(
            "unknown sink type",
            "",
            "[[sink]]\ntype = \"kafka\"",
            "kafka",
            "sink[1].type",
        ),
        case(
            "unknown key in the third sink",
            "",
            &format!("{STDOUT}{STDOUT}[[sink]]\ntype = \"file\"\npaht = \"x\""),
            "paht",
            "sink[3].paht",
        ),
        case(
            "duplicate names",
            "",
            &format!("{STDOUT}name = \"es\"\n[[sink]]\ntype = \"stdout\"\nname = \"ES\""),
            "\"ES\"",
            "sink[2].name",
        ),
        case(
            "two file sinks on one file",
            "",
            "[[sink]]\ntype = \"file\"\npath = 'out/a.ndjson'\n[[sink]]\ntype = \"file\"\npath = './out/../out/a.ndjson'",
            "./out/..",
            "sink[2].path",
        ),
        case(
            "file sink on a dead-letter file",
            "",
            "[[sink]]\ntype = \"stdout\"\nname = \"es\"\n[[sink]]\ntype = \"file\"\npath = 'state/dead-letter/es.ndjson'",
            "dead-letter",
            "sink[2].path",
        ),
        case(
            "file sink on the checkpoint",
            "",
            "[[sink]]\ntype = \"file\"\npath = 'state/checkpoints.json'",
            "checkpoints.json",
            "sink[1].path",
        ),
        case("name too long", "", &long, "# long", "sink[1].name"),
        case(
            "empty name",
            "",
            &format!("{STDOUT}name = \"\"  # empty"),
            "# empty",
            "sink[1].name",
        ),
        case(
            "control character",
            "",
            &format!("{STDOUT}name = \"a\\u0007b\""),
            "\\u0007",
            "sink[1].name",
        ),
    ];
    for name in [
        "../x",
        "a/b",
        "C:x",
        "CON",
        "con",
        "Aux.ndjson",
        "NUL",
        "com1",
        "LPT9.log",
        ".hidden",
        "a\\\\b",
    ] {
        v.push(Case {
            what: "bad sink name",
            source: "",
            rest: format!("{STDOUT}name = \"{name}\"  # the name"),
            marker: "# the name",
            key: "sink[1].name",
        });
    }
    v
}

#[test]
fn bad_configs_are_refused_by_check_run_and_backfill_with_file_line_and_key() {
    let d = Dir::new();
    let mut failures = Vec::new();
    for (i, c) in cases().into_iter().enumerate() {
        let (cfg, text) = d.write(&format!("case{i}.toml"), c.source, &c.rest);
        let line = line_of(&text, c.marker);
        let at = format!("{}:{line}:", cfg.display());
        let key = format!("(key `{}`)", c.key);
        for cmd in ["check", "run", "backfill"] {
            let out = run_bin(&[cmd], &cfg);
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.code() != Some(2) || !err.contains(&at) || !err.contains(&key) {
                failures.push(format!(
                    "{} ({cmd}): exit {:?}, expected {at} and {key}; stderr:\n{err}\nconfig:\n{text}",
                    c.what,
                    out.status.code()
                ));
            }
            if cmd == "check" && !err.contains("hint:") {
                failures.push(format!("{}: no hint in\n{err}", c.what));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n-----\n"));
}

#[test]
fn the_limits_themselves_are_accepted() {
    // the bounds are inclusive, and the values the test suite's own configs use pass
    let d = Dir::new();
    let (cfg, text) = d.write(
        "edge.toml",
        "poll_interval = \"10ms\"\nmax_open_files = 4\nclose_inactive = \"500ms\"",
        "[pipeline]\nqueue_segments = 1\nsegment_max_bytes = \"4KiB\"\nmax_record_bytes = \"64MiB\"\ncheckpoint_interval = \"100ms\"\n\n[[sink]]\ntype = \"stdout\"\nname = \"out.1_a-b\"\n[[sink]]\ntype = \"file\"\npath = 'out/a.ndjson'\n[[sink]]\ntype = \"file\"\npath = 'out/b.ndjson'\n",
    );
    let out = run_bin(&["check"], &cfg);
    assert!(
        out.status.success(),
        "{}\n{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const SECRET: &str = "s3cretpw";

fn assert_no_secret(what: &str, out: &str) {
    assert!(!out.contains(SECRET), "{what} shows the password:\n{out}");
}

#[test]
fn url_passwords_never_reach_check_output() {
    let d = Dir::new();
    let (cfg, _) = d.write(
        "creds.toml",
        "",
        &format!("[[sink]]\ntype = \"elasticsearch\"\nname = \"es\"\nurl = \"http://user:{SECRET}@127.0.0.1:1/\"\n"),
    );
    let out = run_bin(&["check"], &cfg);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // the sink was probed and failed (nothing listens on port 1): its error, which has the
    // URL in it, was printed
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("sink es (elasticsearch): FAILED") && stdout.contains("127.0.0.1:1"),
        "{stdout}"
    );
    assert_no_secret("check", &format!("{stdout}{stderr}"));
    // credentials over plain http: one warning line
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("unencrypted"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("sink `es`"), "{stderr}");

    // a refused URL with a password, and a misspelt password key: the error shows neither
    for (i, rest) in [
        format!("[[sink]]\ntype = \"elasticsearch\"\nurl = \"ftp://user:{SECRET}@127.0.0.1:1\"\n"),
        format!("[[sink]]\ntype = \"loki\"\nurl = \"http//user:{SECRET}@127.0.0.1:1\"\n"),
        format!(
            "[[sink]]\ntype = \"loki\"\nurl = \"http://127.0.0.1:1\"\npasword = \"{SECRET}\"\n"
        ),
    ]
    .iter()
    .enumerate()
    {
        let (cfg, _) = d.write(&format!("bad{i}.toml"), "", rest);
        let out = run_bin(&["check"], &cfg);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(all.contains("(key `sink[1]."), "{all}");
        assert_no_secret("a config error", &all);
    }

    // https with credentials: no warning
    let (cfg, _) = d.write(
        "tls.toml",
        "",
        &format!(
            "[[sink]]\ntype = \"elasticsearch\"\nurl = \"https://user:{SECRET}@127.0.0.1:1\"\n"
        ),
    );
    let out = run_bin(&["check"], &cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("unencrypted"), "{stderr}");
    assert_no_secret(
        "check (https)",
        &format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)),
    );
}

#[test]
fn url_passwords_never_reach_the_log_of_run() {
    let d = Dir::new();
    std::fs::write(
        d.mail.join("inlog/MAILSV01/171130.log"),
        "2017/11/30 10:00:00 test line\r\n",
    )
    .unwrap();
    let (cfg, _) = d.write(
        "run.toml",
        "",
        &format!("[[sink]]\ntype = \"elasticsearch\"\nname = \"es\"\nurl = \"http://user:{SECRET}@127.0.0.1:1/\"\n"),
    );
    let mut child = Command::new(BIN)
        .args(["--log-level", "debug", "run", "--config"])
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut log = String::new();
    let mut retried = false;
    while start.elapsed() < Duration::from_secs(20) {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                retried |= line.contains("will retry") && line.contains("127.0.0.1:1");
                log.push_str(&line);
                log.push('\n');
                // the retry warning quotes the transport error, URL included (repeats of it
                // are rate-limited to one a minute, so one is what there is to read)
                if retried {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    while let Ok(line) = rx.try_recv() {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(
        retried,
        "no retry warning naming the URL within 20 s:\n{log}"
    );
    assert!(
        log.contains("unencrypted"),
        "no plain-http warning at start:\n{log}"
    );
    assert_no_secret("run's log", &log);
    assert_no_secret("run's stdout", &String::from_utf8_lossy(&out.stdout));
}

#[cfg(unix)]
#[test]
fn check_lists_the_log_files_it_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let d = Dir::new();
    let host = d.mail.join("inlog/MAILSV01");
    let good = host.join("171130.log");
    let locked = host.join("171201.log");
    let dangling = host.join("171202.log");
    std::fs::write(&good, "2017/11/30 10:00:00 a\r\n").unwrap();
    std::fs::write(&locked, "2017/12/01 10:00:00 b\r\n").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::os::unix::fs::symlink(host.join("gone.log"), &dangling).unwrap();
    let (cfg, _) = d.write("read.toml", "", STDOUT);

    // root reads a mode-000 file anyway: run `check` as `nobody` then, as a service account
    // would be, with the folders opened up for it
    let root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    let mut cmd = Command::new(BIN);
    cmd.args(["check", "--config"])
        .arg(&cfg)
        .env_remove("RUST_LOG");
    if root.unwrap_or(false) {
        for dir in [d.dir.path(), &d.mail, &d.mail.join("inlog"), &host] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::create_dir_all(&d.state).unwrap();
        std::fs::set_permissions(&d.state, std::fs::Permissions::from_mode(0o777)).unwrap();
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("unreadable log files: 2"), "{stdout}");
    let listed = |p: &Path| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{}:", p.display())))
            .map(str::to_string)
    };
    let l = listed(&locked).unwrap_or_else(|| panic!("{} not listed:\n{stdout}", locked.display()));
    assert!(l.contains("ermission denied"), "{l}");
    assert!(listed(&dangling).is_some(), "{stdout}");
    assert!(listed(&good).is_none(), "{stdout}");
    assert!(!stdout.contains("all well"), "{stdout}");
}
