//! `init`: writes a commented config for this machine's mail work folder and one sink, so that
//! `check` and `run` work at once. Secrets are `env:` / `file:` references, never literals.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use epost_shipper::epost::{Origin, detect_work_folder};

use super::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkType {
    Elasticsearch,
    Loki,
    Otlp,
    File,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where the records go
    #[arg(long, value_enum, default_value = "file")]
    pub sink: SinkType,
    /// The server: Elasticsearch/OpenSearch base URL, Loki base (or push) URL, OTLP endpoint
    /// (port 4318 or a /v1/logs path means OTLP over HTTP); default: the usual local port
    #[arg(long)]
    pub url: Option<String>,
    /// The mail work folder (default: E-Post's registry value MailSpoolDir, then C:\mail)
    #[arg(long)]
    pub folder: Option<PathBuf>,
    /// The config file to write (`-`: standard output)
    #[arg(long, default_value = "shipper.toml")]
    pub out: PathBuf,
    /// Replace the file if it exists
    #[arg(long)]
    pub force: bool,
    /// Basic-auth user; the password is then --secret
    #[arg(long)]
    pub user: Option<String>,
    /// The credential, as `env:NAME` or `file:PATH` (Elasticsearch: the API key; Loki and
    /// OTLP: a bearer token; with --user: the password)
    #[arg(long)]
    pub secret: Option<String>,
}

pub fn run(a: InitArgs) -> Result<(), Failure> {
    let (folder, origin) = match &a.folder {
        // absolute: the config's relative paths are relative to its own folder, not to here
        Some(f) => (std::path::absolute(f).unwrap_or_else(|_| f.clone()), Origin::Given),
        None => detect_work_folder().ok_or_else(|| {
            Failure::usage(anyhow!(
                "no E-Post mail work folder found (registry MailSpoolDir, C:\\mail): give --folder DIR"
            ))
        })?,
    };
    if let Some(s) = &a.secret
        && !(s.starts_with("env:") || s.starts_with("file:"))
    {
        return Err(Failure::usage(anyhow!(
            "--secret must be `env:NAME` or `file:PATH`: a literal would stay in the shell history and in the config file"
        )));
    }
    if a.user.is_some() && a.secret.is_none() {
        return Err(Failure::usage(anyhow!(
            "--user needs --secret (the password, as env:NAME or file:PATH)"
        )));
    }
    if a.sink == SinkType::File && (a.url.is_some() || a.secret.is_some() || a.user.is_some()) {
        return Err(Failure::usage(anyhow!(
            "--sink file writes NDJSON next to the config: --url, --user and --secret are for the network sinks"
        )));
    }
    let sink = sink_section(&a)?;
    let text = config_text(&folder, &origin, &sink, &a.out);
    if a.out == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    write_new(&a.out, &text, a.force)?;
    println!(
        "wrote {} ({} sink, mail work folder {}). Next:\n  epost-shipper check --config {}",
        a.out.display(),
        format!("{:?}", a.sink).to_lowercase(),
        folder.display(),
        a.out.display()
    );
    Ok(())
}

/// Creates `path` with `text`; an existing file is replaced only with `force`.
fn write_new(path: &Path, text: &str, force: bool) -> Result<(), Failure> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if force {
        o.create(true).truncate(true);
    } else {
        // create_new: no window between "does it exist" and the write
        o.create_new(true);
    }
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::usage(anyhow!(
                "`{}` exists: not overwritten (give --force to replace it)",
                path.display()
            ))
        } else {
            Failure::runtime(anyhow!("cannot write `{}`: {e}", path.display()))
        }
    })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Failure::runtime(anyhow!("cannot write `{}`: {e}", path.display())))
}

/// A TOML string: a literal `'...'` (Windows paths stay readable) unless it holds a quote or
/// a control character.
fn toml_str(s: &str) -> String {
    if s.contains('\'') || s.chars().any(char::is_control) {
        toml::Value::String(s.to_string()).to_string()
    } else {
        format!("'{s}'")
    }
}

fn checked_url(u: &str) -> Result<String, Failure> {
    let lower = u.trim().to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(Failure::usage(anyhow!(
            "--url `{}` must start with http:// or https://",
            epost_shipper::config::display_url(u)
        )));
    }
    Ok(u.trim().trim_end_matches('/').to_string())
}

/// The credential lines of a network sink: the given reference, or the keys commented out.
fn credentials(a: &InitArgs, key: &str, example_env: &str) -> String {
    match (&a.user, &a.secret) {
        (Some(u), Some(s)) => format!("user = {}\npassword = {}\n", toml_str(u), toml_str(s)),
        (None, Some(s)) => format!("{key} = {}\n", toml_str(s)),
        _ => format!(
            "# {key} = \"env:{example_env}\"   # or user = \"...\" + password = \"file:C:\\\\ProgramData\\\\epost-shipper\\\\password.txt\"\n"
        ),
    }
}

const TLS_HINT: &str = "# TLS: use https://. The OS certificate store (a company CA installed there) and the public\n# roots are trusted; a CA that is in neither: tls.ca_file = 'C:\\ProgramData\\epost-shipper\\ca.pem'\n";

fn sink_section(a: &InitArgs) -> Result<String, Failure> {
    let url = a.url.as_deref().map(checked_url).transpose()?;
    Ok(match a.sink {
        SinkType::File => "[[sink]]\ntype = \"file\"\npath = 'records.ndjson'       # NDJSON, beside this file; for a first look\n".to_string(),
        SinkType::Elasticsearch => {
            let url = url.unwrap_or_else(|| "http://127.0.0.1:9200".into());
            format!(
                "[[sink]]\ntype = \"elasticsearch\"         # or OpenSearch: the same API\nurl = {}\n# data streams logs-epost.<kind>-default (Kibana data view \"logs-epost.*\")\n{}{TLS_HINT}",
                toml_str(&url),
                credentials(a, "api_key", "EPOST_ES_API_KEY")
            )
        }
        SinkType::Loki => {
            let url = url.unwrap_or_else(|| "http://127.0.0.1:3100".into());
            // a push URL as Loki's docs print it: base URL + push_path
            let (base, push) = match url.find("/api/v1/push") {
                Some(i) if url.ends_with("/api/v1/push") => {
                    let start = url.find("://").map_or(0, |s| s + 3);
                    let path_at = url[start..].find('/').map_or(url.len(), |p| p + start);
                    (url[..path_at].to_string(), Some(url[path_at..i + 12].to_string()))
                }
                _ => (url.clone(), None),
            };
            let push = match push {
                Some(p) if p != "/loki/api/v1/push" => format!("push_path = {}\n", toml_str(&p)),
                _ => "# push_path = \"/insert/loki/api/v1/push\"   # VictoriaLogs' Loki endpoint\n".into(),
            };
            format!(
                "[[sink]]\ntype = \"loki\"\nurl = {}\n{push}{}{TLS_HINT}",
                toml_str(&base),
                credentials(a, "bearer_token", "LOKI_TOKEN")
            )
        }
        SinkType::Otlp => {
            let url = url.unwrap_or_else(|| "http://127.0.0.1:4317".into());
            let http = url.ends_with("/v1/logs") || url.ends_with(":4318");
            let proto = if http {
                "protocol = \"http/protobuf\"\n"
            } else {
                "# protocol = \"http/protobuf\"     # port 4318; gRPC (4317) is the default\n"
            };
            format!(
                "[[sink]]\ntype = \"otlp\"\nendpoint = {}\n{proto}{}{TLS_HINT}",
                toml_str(&url),
                credentials(a, "bearer_token", "OTLP_TOKEN")
            )
        }
    })
}

fn config_text(folder: &Path, origin: &Origin, sink: &str, out: &Path) -> String {
    let name = if out == Path::new("-") {
        "shipper.toml".to_string()
    } else {
        out.display().to_string()
    };
    format!(
        "# epost-shipper configuration, written by `epost-shipper init`.\n\
         #   epost-shipper check --config {name}      # config, sinks, and which E-Post logs are on\n\
         #   epost-shipper run --config {name}        # or, on Windows: epost-shipper service install --config {name}\n\
         # Every key is in README.md (Configuration). Relative paths are relative to this file's folder.\n\
         \n\
         [source]\n\
         workdir = {}   # E-Post's mail work folder (メール作業フォルダ; {})\n\
         # timezone = \"Asia/Tokyo\"        # the zone E-Post writes its times in\n\
         # ignore_older_than = \"7d\"       # history read at first start; older: epost-shipper backfill --since 2025-01-01\n\
         # state_dir = ...                 # checkpoints; default %ProgramData%\\epost-shipper (Windows), state/ here elsewhere\n\
         \n\
         {sink}\
         \n\
         # [retention]                     # replaces logclean.vbs: old files every sink has acknowledged\n\
         # keep_days = 30\n\
         # action = \"gzip\"                 # or \"delete\"\n\
         # schedule = \"6h\"\n",
        toml_str(&folder.display().to_string()),
        origin.describe()
    )
}
