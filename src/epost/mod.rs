//! What E-Post itself does about its logs: where its mail work folder is, and which of its logs
//! are switched on (the first-five-minutes help of `check` and `init`).

pub mod enable;
pub mod survey;

use std::path::PathBuf;

use crate::platform::RegValue;

/// Where the mail work folder was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `HKLM\SOFTWARE\EMWAC\IMS\MailSpoolDir`.
    Registry,
    /// `C:\mail`, the default of the FAQ, which exists.
    Default,
    /// Given on the command line.
    Given,
    /// The config's `workdir`.
    Config,
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Registry => {
                format!(r"registry HKLM\{}\{}", enable::IMS_KEY, enable::SPOOL_VALUE)
            }
            Origin::Default => "E-Post's default folder".into(),
            Origin::Given => "--folder".into(),
            Origin::Config => "the config's workdir".into(),
        }
    }
}

/// The mail work folder of this machine: on Windows E-Post's registry value `MailSpoolDir`,
/// else `C:\mail` when it exists; `None` elsewhere (there the folder comes from the config or
/// the command line).
pub fn detect_work_folder() -> Option<(PathBuf, Origin)> {
    if let Some(RegValue::Set(dir)) =
        crate::platform::registry_string(enable::IMS_KEY, enable::SPOOL_VALUE)
    {
        let dir = dir.trim().trim_end_matches(['\\', '/']).to_string();
        if !dir.is_empty() {
            return Some((PathBuf::from(dir), Origin::Registry));
        }
    }
    if cfg!(windows) {
        let d = PathBuf::from(r"C:\mail");
        if d.is_dir() {
            return Some((d, Origin::Default));
        }
    }
    None
}
