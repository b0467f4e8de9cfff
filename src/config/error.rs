use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A configuration problem, located in the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file `{}`: {error}", file.display())]
    Io {
        file: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    At(Box<Located>),
}

/// `file:line:column: message (key `k`)`, the offending line, and a hint.
#[derive(Debug)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
    pub snippet: Option<String>,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} (key `{}`)",
            self.file.display(),
            self.line,
            self.column,
            self.message,
            self.key
        )?;
        if let Some(s) = &self.snippet {
            write!(f, "\n   |\n{:>3} | {}", self.line, s)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub fn located(&self) -> Option<&Located> {
        match self {
            ConfigError::At(l) => Some(l.as_ref()),
            ConfigError::Io { .. } => None,
        }
    }

    pub(super) fn at(
        file: &Path,
        text: &str,
        span: Range<usize>,
        key: &str,
        message: String,
        hint: Option<String>,
    ) -> ConfigError {
        let (line, column) = line_col(text, span.start);
        // The line is shown under the error: a credential on it (a misspelt `pasword`, a URL
        // with `user:pass@`) must not be printed with it.
        let snippet = (!span.is_empty() || span.start > 0)
            .then(|| text.lines().nth(line - 1).map(super::redact::redact_line))
            .flatten();
        ConfigError::At(Box::new(Located {
            file: file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: super::redact::redact_text(&message),
            hint,
            snippet,
        }))
    }

    /// Turns a TOML/serde error into a located one. Unknown keys get the closest known key as
    /// a hint; the span is narrowed to the key's own line when the error points at a table.
    /// `sink` is the 1-based number of the `[[sink]]` table the error is in (keys are then
    /// `sink[N].key`).
    pub(super) fn from_toml(
        file: &Path,
        text: &str,
        e: &toml::de::Error,
        sink: Option<usize>,
    ) -> ConfigError {
        let msg = e.message().trim().to_string();
        let mut span = e.span().unwrap_or(0..0);
        let quoted = backticked(&msg);
        let mut hint = None;
        let mut key = String::new();
        if msg.starts_with("unknown field") {
            if let Some(k) = quoted.first() {
                key = k.clone();
                let expected: Vec<&str> = quoted[1..].iter().map(String::as_str).collect();
                hint = closest(k, expected.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| {
                        (!expected.is_empty())
                            .then(|| format!("known keys: {}", expected.join(", ")))
                    });
                if let Some(s) = find_key(text, &span, k) {
                    span = s;
                }
            }
        } else if msg.starts_with("unknown variant") {
            if let Some(k) = quoted.first() {
                let expected: Vec<&str> = quoted[1..].iter().map(String::as_str).collect();
                hint = closest(k, expected.iter().copied())
                    .map(|c| format!("did you mean `{c}`?"))
                    .or_else(|| Some(format!("expected one of: {}", expected.join(", "))));
                if let Some(s) = find_value(text, &span, k) {
                    span = s;
                }
            }
        } else if msg.starts_with("missing field") {
            key = quoted.first().cloned().unwrap_or_default();
        }
        if hint.is_none() {
            hint = value_hint(&msg);
        }
        if key.is_empty() {
            key = key_on_line(text, span.start)
                .or_else(|| header_on_line(text, span.start))
                .unwrap_or_else(|| "(document)".into());
        }
        key = match sink {
            Some(n) => qualify_sink(text, span.start, &key, n),
            None => qualify(text, span.start, &key),
        };
        ConfigError::at(file, text, span, &key, msg, hint)
    }
}

/// A hint for the value errors of `units` (and serde's own type errors).
fn value_hint(msg: &str) -> Option<String> {
    if msg.contains("duration") || msg.contains("(use ms, s, m, h or d)") {
        Some(
            "a duration is a number and a unit: ms, s, m, h or d (e.g. \"500ms\", \"30s\", \"7d\")"
                .into(),
        )
    } else if msg.contains("not a size")
        || msg.contains("too large a size")
        || msg.contains("(use B, KiB")
    {
        Some("a size is a number and a unit: B, KiB, MiB or GiB (e.g. \"512KiB\", \"5MiB\")".into())
    } else if msg.contains("is negative") || msg.contains("integer `-") {
        Some("give a whole number of 0 or more".into())
    } else if msg.contains("duplicate key") {
        Some("a key, or a [table], may appear only once; merge the two".into())
    } else if msg.starts_with("invalid type") {
        msg.rsplit_once("expected ")
            .map(|(_, want)| format!("give {want}"))
    } else {
        None
    }
}

fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(pos, |i| pos - i - 1) + 1;
    (line, col)
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, p)| p.to_string())
        .collect()
}

/// Where `key = ` stands inside `span` (or anywhere, if the span is empty).
fn find_key(text: &str, span: &Range<usize>, key: &str) -> Option<Range<usize>> {
    // The span may cover only a table's header: search on to the next header.
    let start = if span.is_empty() {
        0
    } else {
        span.start.min(text.len())
    };
    let after_header = text[start..]
        .find('\n')
        .map_or(text.len(), |i| start + i + 1);
    let end = text[after_header..]
        .find("\n[")
        .map_or(text.len(), |i| after_header + i + 1)
        .max(span.end.min(text.len()));
    let mut pos = start;
    for line in text[start..end].split_inclusive('\n') {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            let at = pos + (line.len() - t.len());
            return Some(at..at + key.len());
        }
        pos += line.len();
    }
    None
}

fn find_value(text: &str, span: &Range<usize>, value: &str) -> Option<Range<usize>> {
    let end = span.end.min(text.len());
    let needle = format!("\"{value}\"");
    text[span.start.min(end)..end]
        .find(&needle)
        .map(|i| span.start + i..span.start + i + needle.len())
}

/// The key written on the line at `pos` (`key = value`).
fn key_on_line(text: &str, pos: usize) -> Option<String> {
    let pos = pos.min(text.len());
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
}

/// The table named on the line at `pos` (`[source]` → `source`), for errors about a table.
fn header_on_line(text: &str, pos: usize) -> Option<String> {
    let pos = pos.min(text.len());
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?.trim();
    line.starts_with('[')
        .then(|| {
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string()
        })
        .filter(|t| !t.is_empty())
}

/// The text up to the end of the line at `pos`: a header on that line (an error about a
/// table points at its header) is the table the key is in.
fn through_line(text: &str, pos: usize) -> &str {
    let pos = pos.min(text.len());
    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    &text[..end]
}

/// Prefixes the key with its table: `source.workdri`, `pipeline.queue_segments`.
fn qualify(text: &str, pos: usize, key: &str) -> String {
    if key.contains('.') || key.starts_with('(') {
        return key.to_string();
    }
    let table = through_line(text, pos)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    if table.as_deref() == Some("sink") || table.as_deref().is_some_and(|t| t.starts_with("sink."))
    {
        // inside the N-th `[[sink]]` table (a syntax error there is found before the sinks
        // are read one by one)
        let n = through_line(text, pos)
            .lines()
            .filter(|l| l.trim().replace(' ', "") == "[[sink]]")
            .count()
            .max(1);
        return qualify_sink(text, pos, key, n);
    }
    match table {
        Some(t) if !t.is_empty() && t != key => format!("{t}.{key}"),
        _ => key.to_string(),
    }
}

/// `sink[N].key`, or `sink[N].tls.key` under a `[sink.tls]` header.
fn qualify_sink(text: &str, pos: usize, key: &str, n: usize) -> String {
    if key.starts_with('(') || key.is_empty() {
        return format!("sink[{n}]");
    }
    let header = through_line(text, pos)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    match header.as_deref().and_then(|h| h.strip_prefix("sink.")) {
        // `[sink.tls]` in a sink without TLS: the unknown key is `tls` itself
        Some(sub) if sub == key || sub.starts_with(&format!("{key}.")) => {
            format!("sink[{n}].{key}")
        }
        Some(sub) if !key.contains('.') => format!("sink[{n}].{sub}.{key}"),
        _ => format!("sink[{n}].{key}"),
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}
