//! The log kinds E-Post writes, one folder each under the mail work folder.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Acceptlog,
    Inlog,
    Receivelog,
    Outlog,
    Outlocallog,
    Faillog,
    Senderlog,
    Pop3log,
    Receivepop3,
    Imap4log,
    Receiveimap4,
    Maildblog,
    Viruslog,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::Acceptlog,
        Kind::Inlog,
        Kind::Receivelog,
        Kind::Outlog,
        Kind::Outlocallog,
        Kind::Faillog,
        Kind::Senderlog,
        Kind::Pop3log,
        Kind::Receivepop3,
        Kind::Imap4log,
        Kind::Receiveimap4,
        Kind::Maildblog,
        Kind::Viruslog,
    ];

    /// The folder name, which is also the `epost.log` value and the Loki `log` label.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Acceptlog => "acceptlog",
            Kind::Inlog => "inlog",
            Kind::Receivelog => "receivelog",
            Kind::Outlog => "outlog",
            Kind::Outlocallog => "outlocallog",
            Kind::Faillog => "faillog",
            Kind::Senderlog => "senderlog",
            Kind::Pop3log => "pop3log",
            Kind::Receivepop3 => "receivepop3",
            Kind::Imap4log => "imap4log",
            Kind::Receiveimap4 => "receiveimap4",
            Kind::Maildblog => "maildblog",
            Kind::Viruslog => "viruslog",
        }
    }

    /// `event.dataset`.
    pub fn dataset(self) -> &'static str {
        match self {
            Kind::Acceptlog => "epost.acceptlog",
            Kind::Inlog => "epost.inlog",
            Kind::Receivelog => "epost.receivelog",
            Kind::Outlog => "epost.outlog",
            Kind::Outlocallog => "epost.outlocallog",
            Kind::Faillog => "epost.faillog",
            Kind::Senderlog => "epost.senderlog",
            Kind::Pop3log => "epost.pop3log",
            Kind::Receivepop3 => "epost.receivepop3",
            Kind::Imap4log => "epost.imap4log",
            Kind::Receiveimap4 => "epost.receiveimap4",
            Kind::Maildblog => "epost.maildblog",
            Kind::Viruslog => "epost.viruslog",
        }
    }

    /// Protocol traces whose records may span several physical lines.
    pub fn is_trace(self) -> bool {
        matches!(
            self,
            Kind::Receivelog | Kind::Receivepop3 | Kind::Receiveimap4
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown log kind `{0}` (expected one of: {list})", list = Kind::ALL.map(Kind::name).join(", "))]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}
