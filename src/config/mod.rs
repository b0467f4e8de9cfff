//! The TOML configuration. Every key has a default, so a minimal file names only the mail
//! work folder and one sink. Errors name the file, line, column and key, with a hint.

mod error;
mod privacy;
mod redact;
mod sinks;
mod units;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use error::{ConfigError, Located};
pub use redact::{display_url, redact_text};
pub use sinks::*;
pub use units::{ByteSize, HumanDuration};
pub use validate::valid_sink_name;

use crate::decode::Encoding;
use crate::kind::Kind;
use crate::time::Zone;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    source: Spanned<RawSource>,
    #[serde(default)]
    pipeline: Pipeline,
    // `[[sink]]` tables are taken out of the document before and read one by one (see
    // `SinkConfig::from_table`); the field is here for the "known keys" of an unknown one.
    #[serde(default, rename = "sink")]
    _sinks: Option<toml::Value>,
    #[serde(default)]
    retention: Retention,
    #[serde(default)]
    metrics: Metrics,
    /// `[privacy]`: read by `privacy::policy` (field names are dotted keys).
    #[serde(default)]
    privacy: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    workdir: Option<Spanned<String>>,
    workdirs: Option<Spanned<Vec<String>>>,
    #[serde(default = "default_kinds")]
    kinds: Spanned<Vec<String>>,
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "empty")]
    encoding: Spanned<String>,
    #[serde(default = "empty")]
    timezone: Spanned<String>,
    #[serde(default)]
    start_at: StartAt,
    #[serde(default = "default_ignore_older")]
    ignore_older_than: Option<HumanDuration>,
    state_dir: Option<Spanned<String>>,
    #[serde(default = "yes")]
    redact: bool,
    #[serde(default = "default_poll")]
    poll_interval: HumanDuration,
    #[serde(default = "default_partial")]
    partial_line_timeout: HumanDuration,
    #[serde(default = "default_multiline")]
    multiline_timeout: HumanDuration,
    #[serde(default = "default_close_inactive")]
    close_inactive: HumanDuration,
    #[serde(default = "default_max_open")]
    max_open_files: usize,
    #[serde(default = "default_settle")]
    viruslog_settle: HumanDuration,
}

fn default_kinds() -> Spanned<Vec<String>> {
    Spanned::new(0..0, vec!["all".to_string()])
}
fn empty() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}
fn default_host() -> String {
    "auto".into()
}
fn default_ignore_older() -> Option<HumanDuration> {
    Some(HumanDuration(Duration::from_secs(7 * 86_400)))
}
fn yes() -> bool {
    true
}
fn default_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_partial() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_multiline() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn default_close_inactive() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_max_open() -> usize {
    64
}
fn default_settle() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

/// Where and how logs are read.
#[derive(Debug, Clone)]
pub struct Source {
    pub workdirs: Vec<PathBuf>,
    pub kinds: Vec<Kind>,
    /// `None` = "auto": the `<COMPUTERNAME>` folder, else this machine's name.
    pub host: Option<String>,
    pub encoding: Encoding,
    pub zone: Zone,
    pub start_at: StartAt,
    pub ignore_older_than: Option<Duration>,
    pub state_dir: PathBuf,
    pub redact: bool,
    pub poll_interval: Duration,
    pub partial_line_timeout: Duration,
    pub multiline_timeout: Duration,
    pub close_inactive: Duration,
    pub max_open_files: usize,
    pub viruslog_settle: Duration,
    /// `[privacy]`, when the section is there: applied to every record before any sink
    /// encodes it. Here rather than beside the sinks because the tailer, which encodes the
    /// records, gets this section.
    pub privacy: Option<std::sync::Arc<crate::privacy::Policy>>,
}

/// Bounds between stages: memory stays below roughly
/// `queue_segments × segment_max_bytes × (1 + number of sinks)` whatever the sinks do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pipeline {
    /// Segments read but not yet acknowledged by every sink; reading pauses beyond this.
    pub queue_segments: usize,
    /// Log bytes per segment (the unit of reading, encoding and acknowledgement).
    pub segment_max_bytes: ByteSize,
    pub segment_max_records: usize,
    pub checkpoint_interval: HumanDuration,
    pub shutdown_timeout: HumanDuration,
    /// The largest single record (a multi-line record that grows past it is shipped with
    /// `epost.truncated: true` and a new one begins).
    pub max_record_bytes: ByteSize,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline {
            queue_segments: 8,
            segment_max_bytes: ByteSize(128 * 1024),
            segment_max_records: 2000,
            checkpoint_interval: HumanDuration(Duration::from_secs(1)),
            shutdown_timeout: HumanDuration(Duration::from_secs(30)),
            max_record_bytes: ByteSize(1 << 20),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionAction {
    Gzip,
    Delete,
    #[default]
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    pub keep_days: u32,
    pub action: RetentionAction,
    /// Run the retention job inside `run` this often; absent = only by `cleanup`.
    pub schedule: Option<HumanDuration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_days: 30,
            action: RetentionAction::None,
            schedule: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// `host:port` for Prometheus `/metrics` and `/health`; empty = off.
    pub listen: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: "127.0.0.1:9898".into(),
        }
    }
}

/// A named sink: `name` is unique, from config or `type` + position.
#[derive(Debug, Clone)]
pub struct NamedSink {
    pub name: String,
    pub config: SinkConfig,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub source: Source,
    pub pipeline: Pipeline,
    pub sinks: Vec<NamedSink>,
    pub retention: Retention,
    pub metrics: Metrics,
    /// Things that work but should not be so (credentials over plain `http://`), one line
    /// each. `load` logs them; `check` and `run` show them the same way.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates `path`. Relative paths inside are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_limited(path, MAX_CONFIG_BYTES)
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                })
            })
            .map_err(|e| ConfigError::Io {
                file: path.to_path_buf(),
                error: e,
            })?;
        let config = Config::from_str(path, &text)?;
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        Ok(config)
    }

    // Long on purpose: the config's checks in the order its sections are read; each step is a call
    // or a short check.
    pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut doc = toml::de::DeTable::parse(text)
            .map_err(|e| ConfigError::from_toml(path, text, &e, None))?;
        // Where every key and value stands (`source.poll_interval`, `sink[2].url`), for the
        // checks made after deserializing.
        let spans = validate::Spans::collect(doc.get_ref());
        let sink_tables = doc.get_mut().remove("sink");
        let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
            .map_err(|e| ConfigError::from_toml(path, text, &e, None))?;
        let raw_sinks = read_sinks(path, text, sink_tables)?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let at =
            |span: std::ops::Range<usize>, key: &str, message: String, hint: Option<String>| {
                ConfigError::at(path, text, span, key, message, hint)
            };
        let v = validate::Validator {
            file: path,
            text,
            spans: &spans,
        };
        let src_span = raw.source.span();
        let s = raw.source.into_inner();
        v.source(&s)?;

        let dirs = work_folders(path, text, &base, &s, src_span.clone())?;

        let kinds = source_kinds(path, text, &s)?;

        let (encoding, zone) = encoding_and_zone(path, text, &s)?;
        let (state_dir, sd_span) = match &s.state_dir {
            Some(d) => (resolve(&base, d.get_ref()), d.span()),
            None => (crate::platform::default_state_dir(&base), src_span.clone()),
        };
        if let Err(e) = check_writable(&state_dir) {
            return Err(at(
                sd_span,
                "source.state_dir",
                format!(
                    "state folder `{}` is not writable: {e}",
                    state_dir.display()
                ),
                Some("give a folder the shipper's account can write, or leave `state_dir` out for the default".into()),
            ));
        }
        let host = (!s.host.eq_ignore_ascii_case("auto") && !s.host.is_empty()).then_some(s.host);

        if raw_sinks.is_empty() {
            return Err(ConfigError::at(
                path,
                text,
                0..0,
                "sink",
                "no [[sink]] configured".into(),
                Some("add for example:\n  [[sink]]\n  type = \"stdout\"".into()),
            ));
        }
        let sinks = named_sinks(&v, &base, raw_sinks)?;
        v.file_paths(&sinks, &state_dir)?;
        v.pipeline(&raw.pipeline)?;
        v.retention(&raw.retention)?;
        v.metrics(&raw.metrics)?;
        let privacy = privacy::policy(&v, raw.privacy)?;
        let warnings = validate::warnings(&sinks);

        Ok(Config {
            path: path.to_path_buf(),
            source: Source {
                workdirs: dirs,
                kinds,
                host,
                encoding,
                zone,
                start_at: s.start_at,
                ignore_older_than: s.ignore_older_than.map(|d| d.0),
                state_dir,
                redact: s.redact,
                poll_interval: s.poll_interval.0,
                partial_line_timeout: s.partial_line_timeout.0,
                multiline_timeout: s.multiline_timeout.0,
                close_inactive: s.close_inactive.0,
                max_open_files: s.max_open_files,
                viruslog_settle: s.viruslog_settle.0,
                privacy,
            },
            pipeline: raw.pipeline,
            sinks,
            retention: raw.retention,
            metrics: raw.metrics,
            warnings,
        })
    }
}

/// The `workdir`/`workdirs` of `[source]`, resolved against the config's folder: each must
/// be a folder, and none listed twice.
fn work_folders(
    path: &Path,
    text: &str,
    base: &Path,
    s: &RawSource,
    src_span: std::ops::Range<usize>,
) -> Result<Vec<PathBuf>, ConfigError> {
    let at = |span: std::ops::Range<usize>, key: &str, message: String, hint: Option<String>| {
        ConfigError::at(path, text, span, key, message, hint)
    };
    let mut workdirs = Vec::new();
    let mut wd_span = src_span.clone();
    if let Some(w) = &s.workdir {
        wd_span = w.span();
        workdirs.push(w.get_ref().clone());
    }
    if let Some(ws) = &s.workdirs {
        wd_span = ws.span();
        workdirs.extend(ws.get_ref().iter().cloned());
    }
    if workdirs.is_empty() {
        return Err(at(
            src_span,
            "source.workdir",
            "no mail work folder given".into(),
            Some("add `workdir = 'C:\\mail'` (or `workdirs = [...]`) to [source]".into()),
        ));
    }
    let mut dirs = Vec::new();
    for w in &workdirs {
        let p = resolve(base, w);
        if !p.is_dir() {
            return Err(at(
                wd_span.clone(),
                "source.workdir",
                format!(
                    "mail work folder `{}` does not exist or is not a folder",
                    p.display()
                ),
                Some("give the folder E-Post writes its logs to (a share must be reachable by the shipper's account)".into()),
            ));
        }
        // the same folder twice would ship every record twice (under two paths)
        if dirs.iter().any(|d: &PathBuf| {
            validate::same_path(&validate::normalise(d), &validate::normalise(&p))
        }) {
            return Err(at(
                wd_span.clone(),
                "source.workdirs",
                format!("mail work folder `{}` is listed twice", p.display()),
                Some("list each folder once".into()),
            ));
        }
        dirs.push(p);
    }
    Ok(dirs)
}

/// The `kinds` of `[source]` (`all` for every kind), sorted, each once.
fn source_kinds(path: &Path, text: &str, s: &RawSource) -> Result<Vec<Kind>, ConfigError> {
    let at = |span: std::ops::Range<usize>, key: &str, message: String, hint: Option<String>| {
        ConfigError::at(path, text, span, key, message, hint)
    };
    let mut kinds = Vec::new();
    for k in s.kinds.get_ref() {
        if k.eq_ignore_ascii_case("all") {
            kinds.extend(Kind::ALL);
        } else {
            match k.parse::<Kind>() {
                Ok(kind) => kinds.push(kind),
                Err(e) => {
                    return Err(at(
                        s.kinds.span(),
                        "source.kinds",
                        e.to_string(),
                        error::closest(k, Kind::ALL.iter().map(|k| k.name()))
                            .map(|c| format!("did you mean `{c}`?")),
                    ));
                }
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// The `encoding` and `timezone` of `[source]` (cp932 and the local zone when left empty).
fn encoding_and_zone(
    path: &Path,
    text: &str,
    s: &RawSource,
) -> Result<(Encoding, Zone), ConfigError> {
    let at = |span: std::ops::Range<usize>, key: &str, message: String, hint: Option<String>| {
        ConfigError::at(path, text, span, key, message, hint)
    };
    let encoding = if s.encoding.get_ref().is_empty() {
        Encoding::Cp932
    } else {
        s.encoding
            .get_ref()
            .parse()
            .map_err(|e: crate::decode::UnknownEncoding| {
                at(
                    s.encoding.span(),
                    "source.encoding",
                    e.to_string(),
                    Some("one of: cp932, utf-8, auto".into()),
                )
            })?
    };
    let zone = if s.timezone.get_ref().is_empty() {
        Zone::default()
    } else {
        s.timezone
            .get_ref()
            .parse()
            .map_err(|e: crate::time::UnknownZone| {
                at(
                    s.timezone.span(),
                    "source.timezone",
                    e.to_string(),
                    Some("an IANA zone such as \"Asia/Tokyo\", or \"local\"".into()),
                )
            })?
    };
    Ok((encoding, zone))
}

/// The `[[sink]]` tables, named (`<type>-<N>` by default) and checked one by one.
fn named_sinks(
    v: &validate::Validator<'_>,
    base: &Path,
    raw_sinks: Vec<SinkConfig>,
) -> Result<Vec<NamedSink>, ConfigError> {
    let mut sinks: Vec<NamedSink> = Vec::new();
    for (i, mut cfg) in raw_sinks.into_iter().enumerate() {
        let n = i + 1;
        // the default name is `<type>-<N>`, N counting `[[sink]]` tables from 1 as the
        // `sink[N]` of error messages does
        let name = cfg
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-{n}", cfg.type_name()));
        v.sink_name(n, &name, &sinks)?;
        if let SinkConfig::File(f) = &mut cfg {
            f.path = resolve(base, &f.path.to_string_lossy());
        }
        v.sink(n, &mut cfg)?;
        sinks.push(NamedSink { name, config: cfg });
    }
    Ok(sinks)
}

/// The `[[sink]]` tables, each read on its own so that an error in one names its line and
/// `sink[N].key`.
fn read_sinks(
    path: &Path,
    text: &str,
    tables: Option<Spanned<toml::de::DeValue<'_>>>,
) -> Result<Vec<SinkConfig>, ConfigError> {
    use toml::de::DeValue;
    let Some(tables) = tables else {
        return Ok(Vec::new());
    };
    let span = tables.span();
    let DeValue::Array(mut list) = tables.into_inner() else {
        return Err(ConfigError::at(
            path,
            text,
            span,
            "sink",
            "`sink` must be a list of tables".into(),
            Some("write each sink as a `[[sink]]` table (two brackets)".into()),
        ));
    };
    let mut out = Vec::new();
    for (i, slot) in list.iter_mut().enumerate() {
        let n = i + 1;
        let mut table = std::mem::replace(slot, Spanned::new(0..0, DeValue::Boolean(false)));
        let span = table.span();
        let DeValue::Table(t) = table.get_mut() else {
            return Err(ConfigError::at(
                path,
                text,
                span,
                &format!("sink[{n}]"),
                "a sink must be a table".into(),
                Some("write each sink as a `[[sink]]` table".into()),
            ));
        };
        let Some(ty) = t.remove("type") else {
            return Err(ConfigError::at(
                path,
                text,
                span,
                &format!("sink[{n}].type"),
                "missing field `type`".into(),
                Some(format!(
                    "add `type = \"...\"`, one of: {}",
                    SinkConfig::TYPES.join(", ")
                )),
            ));
        };
        let ty_span = ty.span();
        let Some(ty_name) = ty.get_ref().as_str().map(str::to_string) else {
            return Err(ConfigError::at(
                path,
                text,
                ty_span,
                &format!("sink[{n}].type"),
                "`type` must be a string".into(),
                Some(format!("one of: {}", SinkConfig::TYPES.join(", "))),
            ));
        };
        match SinkConfig::from_table(&ty_name, table) {
            Some(Ok(cfg)) => out.push(cfg),
            Some(Err(e)) => return Err(ConfigError::from_toml(path, text, &e, Some(n))),
            None => {
                return Err(ConfigError::at(
                    path,
                    text,
                    ty_span,
                    &format!("sink[{n}].type"),
                    format!("unknown sink type `{ty_name}`"),
                    error::closest(&ty_name, SinkConfig::TYPES.iter().copied())
                        .map(|c| format!("did you mean `{c}`?"))
                        .or_else(|| {
                            Some(format!("expected one of: {}", SinkConfig::TYPES.join(", ")))
                        }),
                ));
            }
        }
    }
    Ok(out)
}

pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() || crate::platform::is_absolute_windows(p) {
        path.to_path_buf()
    } else {
        clean(&base.join(path))
    }
}

/// Removes `.` and `a/..` lexically, so that `log.file.path` reads `examples/mail/...` rather
/// than `config/../examples/mail/...` (no symlink resolution, no `\\?\` prefixes on Windows).
fn clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// A config file is a few KiB; `--config /dev/zero` must not eat the memory.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Reads a regular file of at most `max` bytes. Files named by a config (the config itself,
/// `file:` secrets, certificates) are untrusted: a FIFO would block the read and a device
/// such as `/dev/zero` would never end.
pub fn read_limited(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {}", ByteSize(max)),
        ));
    }
    Ok(out)
}

fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests;
