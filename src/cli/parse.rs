//! `parse`: one-shot, files (or stdin, or folders) to NDJSON on stdout.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;
use epost_shipper::decode::Encoding;
use epost_shipper::discover::{self, LogFile};
use epost_shipper::kind::Kind;
use epost_shipper::lines::Lines;
use epost_shipper::parse::{FileParser, ParseOptions, quarantine};
use epost_shipper::record::{Record, Source};
use epost_shipper::time::Zone;

use super::Failure;

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Log kind (inferred from the path `<kind>/<HOST>/YYMMDD.log` when not given)
    #[arg(long)]
    kind: Option<Kind>,
    /// Host name (inferred from the `<COMPUTERNAME>` folder, else this machine's name)
    #[arg(long)]
    host: Option<String>,
    /// Encoding of the log files: cp932, utf-8 or auto
    #[arg(long, default_value = "cp932")]
    encoding: Encoding,
    /// IANA time zone of the times in the logs, or `local`
    #[arg(long, default_value = "Asia/Tokyo")]
    timezone: Zone,
    /// Keep credentials seen in the logs instead of masking them
    #[arg(long)]
    no_redact: bool,
    /// Apply the [privacy] section of this configuration to every record (the file is
    /// checked as `run` checks it; encoding and zone still come from the flags here)
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Files, folders (a whole mail work folder is walked) or `-` for stdin
    #[arg(required = true)]
    paths: Vec<String>,
}

/// A thing to read, with the kind and host it is read as.
struct Input {
    source: Source,
    path: Option<PathBuf>,
}

pub fn run(a: ParseArgs) -> Result<(), Failure> {
    let options = ParseOptions {
        encoding: a.encoding,
        zone: a.timezone,
        redact: !a.no_redact,
        ..ParseOptions::default()
    };
    let privacy = match &a.config {
        Some(path) => super::run::load_config(path)?.source.privacy,
        None => None,
    };
    let privacy = privacy.as_deref().filter(|p| p.hides_anything());
    let inputs = plan(&a).map_err(Failure::usage)?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut buf = Vec::with_capacity(1024);
    let mut write_err: Option<io::Error> = None;
    let mut emit = |r: &Record<'_>| {
        if write_err.is_some() {
            return;
        }
        buf.clear();
        match privacy {
            Some(p) => p.apply(r).write_json(&mut buf),
            None => r.write_json(&mut buf),
        }
        buf.push(b'\n');
        if let Err(e) = out.write_all(&buf) {
            write_err = Some(e);
        }
    };
    for input in inputs {
        let res = match input.source.kind {
            Kind::Viruslog => parse_pair(&input, &options, &mut emit),
            _ => parse_stream(&input, &options, &mut emit),
        };
        res.map_err(Failure::runtime)?;
    }
    let flushed = match write_err {
        Some(e) => Err(e),
        None => out.flush(),
    };
    match flushed {
        Ok(()) => Ok(()),
        // `parse ... | head` is normal use.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::runtime(anyhow!(e).context("writing to stdout"))),
    }
}

fn plan(a: &ParseArgs) -> anyhow::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for p in &a.paths {
        if p == "-" {
            let kind = a.kind.ok_or_else(|| {
                anyhow!("reading stdin needs --kind (the kind cannot be inferred from a path)")
            })?;
            let host = a.host.clone().unwrap_or_else(discover::local_host_name);
            inputs.push(Input {
                source: Source::new(&host, kind, "-"),
                path: None,
            });
            continue;
        }
        let path = Path::new(p);
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read `{p}`"))?;
        let files: Vec<LogFile> = if meta.is_dir() {
            let found = discover::walk(path).with_context(|| format!("cannot walk `{p}`"))?;
            let found: Vec<LogFile> = match a.kind {
                Some(k) => found.into_iter().filter(|f| f.kind == k).collect(),
                None => found,
            };
            if found.is_empty() {
                return Err(anyhow!(
                    "no E-Post log files under `{p}` (expected <kind>/<HOST>/YYMMDD.log)"
                ));
            }
            found
        } else {
            let classified = discover::classify(path);
            let kind = match (a.kind, &classified) {
                (Some(k), _) => k,
                (None, Some(f)) => f.kind,
                (None, None) => {
                    return Err(anyhow!(
                        "cannot infer the log kind of `{p}` from its path (expected .../<kind>/<HOST>/YYMMDD.log); give --kind"
                    ));
                }
            };
            vec![LogFile {
                kind,
                host: classified.and_then(|f| f.host),
                path: path.to_path_buf(),
            }]
        };
        for f in files {
            let host = a
                .host
                .clone()
                .or(f.host)
                .unwrap_or_else(discover::local_host_name);
            let shown = f.path.to_string_lossy().into_owned();
            inputs.push(Input {
                source: Source::new(&host, f.kind, &shown),
                path: Some(f.path),
            });
        }
    }
    Ok(inputs)
}

fn open(input: &Input) -> anyhow::Result<Box<dyn Read>> {
    let Some(path) = &input.path else {
        return Ok(Box::new(io::stdin().lock()));
    };
    epost_shipper::flow::read::open(path)
        .with_context(|| format!("cannot open `{}`", path.display()))
}

/// Reads in large chunks and splits lines in place; a line cut by a chunk boundary is carried
/// over to the next read.
fn parse_stream(
    input: &Input,
    options: &ParseOptions,
    emit: &mut dyn FnMut(&Record<'_>),
) -> anyhow::Result<()> {
    let mut reader = open(input)?;
    let mut parser = FileParser::new(input.source.clone(), *options);
    let mut buf = vec![0u8; 1 << 18];
    let mut filled = 0usize;
    let mut base = 0u64;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = reader
            .read(&mut buf[filled..])
            .with_context(|| format!("reading `{}`", input.source.path))?;
        filled += n;
        let eof = n == 0;
        let mut consumed = 0usize;
        for line in Lines::with_base(&buf[..filled], base) {
            if !line.complete && !eof {
                break;
            }
            let start = line.end - base - line.bytes.len() as u64 - u64::from(line.complete);
            parser.push_line(base + start, line.bytes, emit);
            consumed = (line.end - base) as usize;
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        base += consumed as u64;
        if eof {
            break;
        }
    }
    parser.flush(emit);
    Ok(())
}

fn parse_pair(
    input: &Input,
    options: &ParseOptions,
    emit: &mut dyn FnMut(&Record<'_>),
) -> anyhow::Result<()> {
    let path = input
        .path
        .as_ref()
        .ok_or_else(|| anyhow!("viruslog pairs cannot be read from stdin"))?;
    // as the tailer does: the envelope read up to max_record_bytes, the .MSG streamed
    let (rcp, truncated) = quarantine::read_rcp_file(path, options.max_record_bytes)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let msg_path = discover::message_of(path);
    let summary = match &msg_path {
        Some(p) => Some(
            quarantine::summarize_file(p, options.encoding)
                .with_context(|| format!("cannot read `{}`", p.display()))?,
        ),
        None => None,
    };
    let msg_shown = msg_path.as_ref().map(|p| p.to_string_lossy().into_owned());
    let msg = match (&msg_shown, summary) {
        (Some(p), Some(s)) => Some((p.as_str(), s)),
        _ => None,
    };
    quarantine::record_summarized(&input.source, options, &rcp, truncated, mtime, msg, emit);
    Ok(())
}
