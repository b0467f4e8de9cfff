//! For every log kind of a mail work folder: is it being written (its folder, a file of
//! today or of the last days, the registry switch where there is one), and if not, what the
//! admin does about it ([`super::enable`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::discover::walk;
use crate::epost::enable::{self, Enablement, Switch};
use crate::kind::Kind;
use crate::platform::RegValue;
use crate::time::Date;

/// A newest file at most this many days old counts as "being written": a quiet long weekend
/// (no POP3 login from Saturday to Monday) must not read as "switched off".
pub const FRESH_DAYS: i64 = 3;

/// What a kind's folder holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    NoFolder,
    /// The folder exists, no log file in it (or its host folders).
    Empty,
    /// The newest file (by its `YYMMDD` name, else its modification day) and its age in days.
    Newest {
        name: String,
        age_days: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Written today or in the last [`FRESH_DAYS`] days.
    On,
    /// Files, but none recent: switched off, or E-Post stopped.
    Stale,
    /// An occasional log (faillog, viruslog, maildblog) with old files: nothing happened.
    Quiet,
    /// No folder, no file, or the registry switch is not 1.
    Off,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::On => "on",
            Status::Stale => "stale",
            Status::Quiet => "quiet",
            Status::Off => "off",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KindReport {
    pub kind: Kind,
    pub files: Files,
    /// The registry switch and what it holds; `None` where there is none (or no registry).
    pub registry: Option<(Switch, RegValue<u32>)>,
    pub status: Status,
}

#[derive(Debug)]
pub struct Survey {
    pub dir: PathBuf,
    pub kinds: Vec<KindReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error("mail work folder `{0}` does not exist")]
    Missing(PathBuf),
    #[error("mail work folder `{0}` cannot be listed: {1}")]
    Unreadable(PathBuf, std::io::Error),
    #[error("`{dir}` does not look like an E-Post mail work folder (メール作業フォルダ): it has none of the log folders {kinds} and no E-Post queue folder `incoming`. Expected <folder>\\<kind>\\<COMPUTERNAME>\\YYMMDD.log, e.g. C:\\mail\\inlog\\MAILSV01\\{example}; give the folder E-Post Mail Control shows as メール作業フォルダ (registry HKLM\\SOFTWARE\\EMWAC\\IMS\\MailSpoolDir)", dir = .0.display(), kinds = Kind::ALL.map(Kind::name).join(", "), example = "241130.log")]
    NotEPost(PathBuf),
    /// A kind's folder or a host folder under it (which the shipper may be given as its
    /// workdir): not a failure, but nothing to survey for the other kinds.
    #[error("`{dir}` is the {1} folder (or a host folder in it), not the whole mail work folder: the other logs are not surveyed", dir = .0.display())]
    OneKind(PathBuf, Kind),
}

/// Surveys `dir`. `today` is the machine's local date (E-Post names its files by it);
/// `registry` reads a switch (`platform::registry_dword` in the shipper, `None` without a
/// registry).
pub fn survey(
    dir: &Path,
    today: Date,
    registry: &dyn Fn(&Switch) -> Option<RegValue<u32>>,
) -> Result<Survey, SurveyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SurveyError::Missing(dir.to_path_buf()));
        }
        Err(e) => return Err(SurveyError::Unreadable(dir.to_path_buf(), e)),
    };
    // the folder names as they are on disk (Windows does not care about case; E-Post neither)
    let mut folders: Vec<(Kind, PathBuf)> = Vec::new();
    let mut queue = false;
    for e in entries.flatten() {
        if !e.path().is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(k) = name.parse::<Kind>() {
            folders.push((k, e.path()));
        } else if name.eq_ignore_ascii_case("incoming") {
            queue = true;
        }
    }
    if folders.is_empty() && !queue {
        let kind_of = |p: Option<&Path>| p?.file_name()?.to_str()?.parse::<Kind>().ok();
        if let Some(k) = kind_of(Some(dir)).or_else(|| kind_of(dir.parent())) {
            return Err(SurveyError::OneKind(dir.to_path_buf(), k));
        }
        return Err(SurveyError::NotEPost(dir.to_path_buf()));
    }
    let kinds = Kind::ALL
        .into_iter()
        .map(|kind| {
            let folder = folders.iter().find(|(k, _)| *k == kind).map(|(_, p)| p);
            let files = match folder {
                None => Files::NoFolder,
                Some(p) => newest(p, today),
            };
            let row = enable::of(kind);
            let registry = row.registry.and_then(|s| registry(&s).map(|v| (s, v)));
            let status = status(row, &files, registry.as_ref().map(|(_, v)| v));
            KindReport {
                kind,
                files,
                registry,
                status,
            }
        })
        .collect();
    Ok(Survey {
        dir: dir.to_path_buf(),
        kinds,
    })
}

fn status(row: &Enablement, files: &Files, registry: Option<&RegValue<u32>>) -> Status {
    // a switch that is there and not 1, or not there (its default is 0): off, whatever the
    // files say (they stop at the next restart of the service)
    if matches!(registry, Some(RegValue::Missing))
        || matches!(registry, Some(RegValue::Set(v)) if *v != 1)
    {
        return Status::Off;
    }
    match files {
        Files::NoFolder | Files::Empty => Status::Off,
        Files::Newest { age_days, .. } if *age_days <= FRESH_DAYS => Status::On,
        Files::Newest { .. } if row.occasional.is_some() => Status::Quiet,
        Files::Newest { .. } => Status::Stale,
    }
}

/// The newest log file under a kind's folder (its host folders included).
fn newest(folder: &Path, today: Date) -> Files {
    let Ok(files) = walk(folder) else {
        return Files::Empty;
    };
    let mut best: Option<(i64, String)> = None;
    for f in files {
        let day = f.date().map(Date::days).or_else(|| {
            let m = std::fs::metadata(&f.path).and_then(|m| m.modified()).ok()?;
            Some(local_date(m).days())
        });
        let Some(day) = day else { continue };
        let name = f.file_name().to_string();
        if best.as_ref().is_none_or(|(d, n)| (day, &name) > (*d, n)) {
            best = Some((day, name));
        }
    }
    match best {
        None => Files::Empty,
        Some((day, name)) => Files::Newest {
            name,
            // a file dated in the future (a wrong clock) counts as today
            age_days: today.days().saturating_sub(day).max(0),
        },
    }
}

/// The local calendar date of an instant.
pub fn local_date(t: SystemTime) -> Date {
    use chrono::Datelike;
    let d = chrono::DateTime::<chrono::Local>::from(t).date_naive();
    Date {
        year: d.year(),
        month: d.month(),
        day: d.day(),
    }
}

/// `today`, `yesterday`, `N days ago`.
pub fn age(days: i64) -> String {
    match days {
        0 => "today".into(),
        1 => "yesterday".into(),
        n => format!("{n} days ago"),
    }
}

impl KindReport {
    /// What was found: `newest 241130.log (today)`, `no folder receivelog`, the registry value.
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if let Some((s, v)) = &self.registry {
            parts.push(match v {
                RegValue::Set(n) => format!("registry {} = {n}", s.display()),
                RegValue::Missing => format!("registry {} not set (0)", s.display()),
                RegValue::Unreadable(e) => format!("registry {} unreadable: {e}", s.display()),
            });
        }
        parts.push(match &self.files {
            Files::NoFolder => format!("no folder {}", self.kind.name()),
            Files::Empty => "folder present, no log file".into(),
            Files::Newest { name, age_days } => format!("newest {name} ({})", age(*age_days)),
        });
        parts.join("; ")
    }
}

impl Survey {
    /// The report, line by line: one line per kind, and under each kind that is not being
    /// written how to switch it on (ja, then en). `dir` stands for the folder in the texts.
    pub fn lines(&self) -> Vec<String> {
        // `{dir}\receivelog` in the texts: the folder with this platform's separator
        let dir = format!("{}{}", self.dir.display(), std::path::MAIN_SEPARATOR);
        let mut out = Vec::new();
        for k in &self.kinds {
            let row = enable::of(k.kind);
            out.push(format!(
                "  {:<13} {:<6}{}",
                k.kind.name(),
                k.status.word(),
                k.detail()
            ));
            match k.status {
                Status::On => {}
                Status::Quiet => {
                    if let Some((ja, en)) = row.occasional {
                        out.push(format!("                ja: {ja}"));
                        out.push(format!("                en: {en}"));
                    }
                }
                Status::Stale | Status::Off => {
                    out.push(format!(
                        "                ja: {}",
                        row.ja.replace("{dir}\\", &dir)
                    ));
                    out.push(format!(
                        "                en: {}",
                        row.en.replace("{dir}\\", &dir)
                    ));
                }
            }
        }
        // always said: when they are on, for the disk; when they are not, before switching on
        let fast: Vec<&str> = enable::TABLE
            .iter()
            .filter(|e| e.grows_fast)
            .map(|e| e.kind.name())
            .collect();
        out.push(format!("  note ({}):", fast.join(", ")));
        out.push(format!("                ja: {}", enable::GROWS_FAST_JA));
        out.push(format!("                en: {}", enable::GROWS_FAST_EN));
        out
    }

    pub fn summary(&self) -> String {
        let count = |s: Status| self.kinds.iter().filter(|k| k.status == s).count();
        format!(
            "E-Post logs: {} on, {} stale, {} quiet, {} off",
            count(Status::On),
            count(Status::Stale),
            count(Status::Quiet),
            count(Status::Off)
        )
    }
}
