//! Helpers for tests that run the pipeline over a temporary mail work folder.
#![allow(dead_code)]

pub mod fake_es;
pub mod http_fake;
pub mod pki;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use epost_shipper::config::Config;
use epost_shipper::pipeline::{self, Summary};
use epost_shipper::tail::{Counters, Plan};
use serde_json::Value;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub mail: PathBuf,
    pub out: PathBuf,
    pub state: PathBuf,
}

pub struct Running {
    pub stop: Arc<AtomicBool>,
    pub counters: Arc<Counters>,
    handle: Option<std::thread::JoinHandle<Summary>>,
}

impl Running {
    pub fn stop(mut self) -> Summary {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("pipeline thread")
    }

    pub fn join(mut self) -> Summary {
        self.handle.take().unwrap().join().expect("pipeline thread")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        Harness {
            out: dir.path().join("out/records.ndjson"),
            state: dir.path().join("state"),
            mail,
            dir,
        }
    }

    /// A config with short timings; `extra` is added to `[source]`.
    pub fn config(&self, extra: &str) -> Config {
        self.config_with(extra, "")
    }

    /// Like `config_with`, with `sinks` (one or more `[[sink]]` tables) instead of the file
    /// sink.
    pub fn config_sinks(&self, extra: &str, pipeline: &str, sinks: &str) -> Config {
        self.write_config(extra, pipeline, sinks)
    }

    pub fn config_with(&self, extra: &str, pipeline: &str) -> Config {
        let sink = format!(
            "[[sink]]\ntype = \"file\"\npath = '{}'\n",
            self.out.display()
        );
        self.write_config(extra, pipeline, &sink)
    }

    fn write_config(&self, extra: &str, pipeline: &str, sinks: &str) -> Config {
        self.write_config_metrics(extra, pipeline, sinks, "")
    }

    /// With the metrics endpoint on `listen` (empty: off, which the other helpers use so
    /// that parallel tests do not fight over the default port).
    pub fn write_config_metrics(
        &self,
        extra: &str,
        pipeline: &str,
        sinks: &str,
        listen: &str,
    ) -> Config {
        self.try_config_metrics(extra, pipeline, sinks, listen)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `config_sinks`, returning the load error of a config meant to be refused.
    pub fn try_config_sinks(
        &self,
        extra: &str,
        pipeline: &str,
        sinks: &str,
    ) -> Result<Config, epost_shipper::config::ConfigError> {
        self.try_config_metrics(extra, pipeline, sinks, "")
    }

    fn try_config_metrics(
        &self,
        extra: &str,
        pipeline: &str,
        sinks: &str,
        listen: &str,
    ) -> Result<Config, epost_shipper::config::ConfigError> {
        let defaults = [
            ("ignore_older_than", "\"3650d\""),
            ("poll_interval", "\"100ms\""),
            ("partial_line_timeout", "\"1s\""),
            ("multiline_timeout", "\"300ms\""),
            ("close_inactive", "\"500ms\""),
            ("viruslog_settle", "\"100ms\""),
        ];
        let mut source = String::new();
        for (k, v) in defaults {
            if !extra.contains(k) {
                source.push_str(&format!("{k} = {v}\n"));
            }
        }
        let text = format!(
            r#"
[source]
workdir = '{mail}'
state_dir = '{state}'
{source}
{extra}

[pipeline]
checkpoint_interval = "100ms"
shutdown_timeout = "10s"
{pipeline}

[metrics]
listen = "{listen}"

{sinks}
"#,
            mail = self.mail.display(),
            state = self.state.display(),
        );
        let path = self.dir.path().join("shipper.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    pub fn start(&self, config: Config) -> Running {
        self.start_plan(config, Plan::follow())
    }

    pub fn start_plan(&self, config: Config, plan: Plan) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (s, c) = (stop.clone(), counters.clone());
        let handle =
            std::thread::spawn(move || pipeline::run(&config, plan, s, c).expect("pipeline"));
        Running {
            stop,
            counters,
            handle: Some(handle),
        }
    }

    pub fn log(&self, kind: &str, host: &str, name: &str) -> PathBuf {
        let p = self.mail.join(kind).join(host).join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    pub fn records(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.out) {
            // Only whole lines: the sink may be half-way through an append while we read (a
            // torn line left behind for good would still fail the final counts).
            Ok(t) => t
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| serde_json::from_str(l.trim_end()).expect("sink lines are JSON"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn messages(&self) -> Vec<String> {
        self.records()
            .iter()
            .map(|r| r["message"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until `pred(records)` holds; panics with the records after `secs`.
    pub fn wait_until(&self, secs: u64, what: &str, pred: impl Fn(&[Value]) -> bool) {
        let start = Instant::now();
        loop {
            let r = self.records();
            if pred(&r) {
                return;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!(
                    "timed out waiting for {what}; have {} records: {:#?}",
                    r.len(),
                    r.iter().map(|v| v["message"].clone()).collect::<Vec<_>>()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The checkpoint as the shipper would load it now (base and journal).
    pub fn checkpoint(&self) -> Value {
        checkpoint_in(&self.state)
    }
}

/// The checkpoint in state folder `dir`, as the shipper would load it now: the base (or its
/// previous generation while a compaction renames it) and the journal lines after it. Before
/// the first write there is none: read again (for 10 s at most).
pub fn checkpoint_in(dir: &std::path::Path) -> Value {
    use epost_shipper::checkpoint::{Loaded, Store};
    let start = Instant::now();
    loop {
        let (snap, loaded) = Store::new(dir).load();
        if loaded != Loaded::Fresh || start.elapsed() > Duration::from_secs(10) {
            return serde_json::to_value(snap).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The base URL of a real server from `var` (set by tests/run.sh), or `None` to skip the
/// test, except under CI, where the servers must be there.
pub fn real_server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v.trim_end_matches('/').to_string()),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{var} must be set in CI (tests/run.sh starts the servers)"
            );
            eprintln!("skipping: {var} not set (tests/run.sh starts the real servers)");
            None
        }
    }
}

/// A name no earlier run used (servers keep data between runs).
pub fn unique() -> String {
    format!(
        "t{}x{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000_000,
        std::process::id()
    )
}

impl Harness {
    /// Copies the bundled example mail folder into this harness's work folder.
    pub fn copy_examples(&self) {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                let dst = to.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    copy(&e.path(), &dst);
                } else {
                    std::fs::copy(e.path(), &dst).unwrap();
                }
            }
        }
        copy(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail"),
            &self.mail,
        );
    }
}

pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
}

/// An inlog line for message `n` at `day`/Nov/2017.
pub fn inlog_line(n: u32, day: u32) -> String {
    format!(
        "<B{n:010}@mx.example.jp> [{day:02}/Nov/2017:08:00:00] 203.0.113.5 client.example.net alice@example.net bob@example.jp\r\n"
    )
}
