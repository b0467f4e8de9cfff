//! `init` writes a config that `check` accepts, for every sink (against the real servers of
//! tests/servers/up.sh for Elasticsearch, Loki and OTLP), with secrets as references, in under
//! ten lines of non-comment config, and never over an existing file without --force.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

fn bin(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A mail work folder with one fresh inlog file.
fn mail(root: &Path) -> String {
    let m = root.join("mail");
    let day = chrono::Local::now().format("%y%m%d.log").to_string();
    std::fs::create_dir_all(m.join("inlog/MAILSV01")).unwrap();
    std::fs::write(m.join("inlog/MAILSV01").join(day), b"").unwrap();
    m.to_str().unwrap().to_string()
}

/// The lines that are neither comments nor blank.
fn settings(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// init, then check: exit 0 and the sink probed OK. Returns the settings written.
fn init_then_check(sink: &str, url: Option<&str>, expect_server: &str) -> Vec<String> {
    let d = tempfile::tempdir().unwrap();
    let folder = mail(d.path());
    let cfg = d.path().join("conf/shipper.toml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    let mut args = vec!["init", "--sink", sink, "--folder", &folder, "--out"];
    args.push(cfg.to_str().unwrap());
    if let Some(u) = url {
        args.extend(["--url", u]);
    }
    let out = bin(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = settings(&cfg);
    assert!(s.len() < 10, "{sink}: {} settings:\n{s:#?}", s.len());
    let out = bin(&["check", "--config", cfg.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{sink}:\n{all}");
    let probe = all
        .lines()
        .find(|l| l.starts_with(&format!("sink {sink}")))
        .unwrap_or_else(|| panic!("no sink line:\n{all}"));
    assert!(
        probe.contains(": OK, ") && probe.contains(expect_server),
        "{probe}"
    );
    assert!(
        all.contains("E-Post logs: 1 on, 0 stale, 0 quiet, 12 off"),
        "{all}"
    );
    assert!(all.ends_with("all well\n"), "{all}");
    s
}

#[test]
fn file_sink() {
    let s = init_then_check("file", None, "");
    assert_eq!(s[0], "[source]");
    assert!(s[1].starts_with("workdir = '"), "{s:?}");
    assert_eq!(
        &s[2..],
        [
            "[[sink]]",
            "type = \"file\"",
            "path = 'records.ndjson'       # NDJSON, beside this file; for a first look"
        ]
    );
}

#[test]
fn elasticsearch_sink() {
    let Some(url) = common::real_server("EPOST_TEST_ELASTICSEARCH") else {
        return;
    };
    let s = init_then_check("elasticsearch", Some(&url), "Elasticsearch");
    assert!(s.contains(&format!("url = '{url}'")), "{s:?}");
}

#[test]
fn loki_sink_with_a_push_url() {
    let Some(base) = common::real_server("EPOST_TEST_LOKI") else {
        return;
    };
    // VictoriaLogs' push path: given as one push URL, split into url + push_path
    let push = std::env::var("EPOST_TEST_LOKI_PUSH_PATH").unwrap_or("/loki/api/v1/push".into());
    let s = init_then_check("loki", Some(&format!("{base}{push}")), "");
    assert!(s.contains(&format!("url = '{base}'")), "{s:?}");
    if push != "/loki/api/v1/push" {
        assert!(s.contains(&format!("push_path = '{push}'")), "{s:?}");
    }
}

#[test]
fn otlp_sinks_grpc_and_http() {
    let Some(grpc) = common::real_server("EPOST_TEST_OTLP_GRPC") else {
        return;
    };
    let s = init_then_check("otlp", Some(&grpc), "");
    assert!(!s.iter().any(|l| l.starts_with("protocol")), "{s:?}");
    let Some(http) = common::real_server("EPOST_TEST_OTLP_HTTP") else {
        return;
    };
    let s = init_then_check("otlp", Some(&http), "");
    assert!(
        s.contains(&"protocol = \"http/protobuf\"".to_string()),
        "{s:?}"
    );
}

#[test]
fn never_overwrites_without_force() {
    let d = tempfile::tempdir().unwrap();
    let folder = mail(d.path());
    let cfg = d.path().join("shipper.toml");
    std::fs::write(&cfg, "# mine\n").unwrap();
    let out = bin(&["init", "--folder", &folder, "--out", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "epost-shipper: error: `{}` exists: not overwritten (give --force to replace it)\n",
            cfg.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "# mine\n");
    let out = bin(&[
        "init",
        "--folder",
        &folder,
        "--out",
        cfg.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(settings(&cfg).contains(&"type = \"file\"".to_string()));
}

/// Secrets are references: a literal is refused; `env:` is written as it is and resolved by
/// `check`. Over plain http:// the credential gets the warning, in `check`'s report too.
#[test]
fn secrets_are_references() {
    let d = tempfile::tempdir().unwrap();
    let folder = mail(d.path());
    let cfg = d.path().join("shipper.toml");
    let c = cfg.to_str().unwrap();
    let base = ["init", "--folder", &folder, "--out", c, "--sink", "loki"];
    let out = bin(&[&base[..], &["--secret", "hunter2"]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--secret must be `env:NAME` or `file:PATH`"));
    assert!(!cfg.exists());

    let url = ["--url", "http://127.0.0.1:1"];
    let out = bin(&[
        &base[..],
        &url,
        &["--user", "epost", "--secret", "env:EPOST_INIT_PW"],
    ]
    .concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = settings(&cfg);
    assert!(s.contains(&"user = 'epost'".to_string()), "{s:?}");
    assert!(
        s.contains(&"password = 'env:EPOST_INIT_PW'".to_string()),
        "{s:?}"
    );
    // the reference must resolve: without the variable the config is refused (exit 2)
    let out = Command::new(BIN)
        .args(["check", "--config", c])
        .env_remove("EPOST_INIT_PW")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("environment variable `EPOST_INIT_PW` is not set"),
        "{}",
        text(&out)
    );
    let out = Command::new(BIN)
        .args(["check", "--config", c])
        .env("EPOST_INIT_PW", "pw-from-env")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with(&format!("config {c}: OK\n")), "{stdout}");
    // nothing listens on port 1: the probe fails (exit 1), after the warning
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let warning = "sink `loki-1`: credentials are sent unencrypted to http://127.0.0.1:1 (plain http://); use https://";
    assert!(
        stdout.contains(&format!("\nwarning: {warning}\n")),
        "{stdout}"
    );
    assert!(stderr.contains(warning), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("pw-from-env"));
}
