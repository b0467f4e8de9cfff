//! `report`: pflogsumm for E-Post, as text, JSON or a self-contained HTML page.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;
use epost_shipper::decode::Encoding;
use epost_shipper::flow::{self, Inputs, Skipped, Window};
use epost_shipper::parse::ParseOptions;
use epost_shipper::time::{Date, Zone};

use super::Failure;
use super::run::load_config;

/// Where to read and which days: shared by `report` and `trace`.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Only records on or after this local day (YYYY-MM-DD)
    #[arg(long)]
    pub since: Option<Date>,
    /// Only records on or before this local day (YYYY-MM-DD)
    #[arg(long)]
    pub until: Option<Date>,
    /// Read the work folders, encoding, time zone and redaction of this configuration file
    #[arg(long, short, conflicts_with = "paths")]
    pub config: Option<PathBuf>,
    /// Encoding of the log files (without --config): cp932, utf-8 or auto
    #[arg(long, default_value = "cp932")]
    pub encoding: Encoding,
    /// IANA time zone of the times in the logs (without --config), or `local`
    #[arg(long, default_value = "Asia/Tokyo")]
    pub timezone: Zone,
    /// Mail work folders (or single log files)
    pub paths: Vec<PathBuf>,
}

impl InputArgs {
    pub fn inputs(&self) -> Result<Inputs, Failure> {
        if let (Some(s), Some(u)) = (self.since, self.until)
            && s > u
        {
            return Err(Failure::usage(anyhow!("--since {s} is after --until {u}")));
        }
        let window = Window {
            since: self.since,
            until: self.until,
        };
        let mut privacy = None;
        let (paths, host, options) = match &self.config {
            Some(c) => {
                let config = load_config(c)?;
                let s = &config.source;
                let options = ParseOptions {
                    encoding: s.encoding,
                    zone: s.zone,
                    redact: s.redact,
                    max_record_bytes: config.pipeline.max_record_bytes.0 as usize,
                };
                privacy = s.privacy.clone();
                (s.workdirs.clone(), s.host.clone(), options)
            }
            None if self.paths.is_empty() => {
                return Err(Failure::usage(anyhow!(
                    "give the mail work folder (PATH...) or --config FILE"
                )));
            }
            None => {
                let options = ParseOptions {
                    encoding: self.encoding,
                    zone: self.timezone,
                    ..ParseOptions::default()
                };
                (self.paths.clone(), None, options)
            }
        };
        let mut inputs = Inputs::collect(&paths, host, options, window).map_err(Failure::usage)?;
        inputs.privacy = privacy;
        Ok(inputs)
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Print the report as JSON (definitions: docs/trace-report.md)
    #[arg(long, conflicts_with = "html")]
    json: bool,
    /// Write the report as a self-contained HTML page to FILE
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Entries shown per list in the text and HTML reports (JSON lists are complete)
    #[arg(long, default_value_t = 10)]
    top: usize,
    #[command(flatten)]
    input: InputArgs,
}

/// Files that could not be read, on stderr (the report still runs over the rest).
pub fn warn_skipped(skipped: &Skipped) {
    for (p, e) in &skipped.0 {
        eprintln!(
            "epost-shipper: skipped unreadable file {}: {e}",
            p.display()
        );
    }
}

pub fn run(a: ReportArgs) -> Result<(), Failure> {
    let inputs = a.input.inputs()?;
    let mut skipped = Skipped::default();
    let report = flow::report(&inputs, &mut skipped);
    warn_skipped(&skipped);
    if let Some(path) = &a.html {
        let page = flow::html::render(&report, a.top);
        return std::fs::write(path, page)
            .with_context(|| format!("cannot write `{}`", path.display()))
            .map_err(Failure::runtime);
    }
    let text = if a.json {
        let mut s =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::runtime(anyhow!(e)))?;
        s.push('\n');
        s
    } else {
        flow::text::render(&report, a.top)
    };
    print(&text)
}

pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::runtime(anyhow!(e).context("writing to stdout"))),
    }
}
