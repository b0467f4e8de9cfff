//! The fields `[privacy]` can name, what kind of value each holds, and which modes fit it.

/// What a field does with its value (`docs/privacy.md`).
///
/// The order is strictness, within one class of values: `keep` shows the most, `drop` the
/// least. Text found inside `message` that belongs to no field of the record (an address in a
/// protocol trace) takes the strictest mode among the fields of its class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Keep,
    /// Text fields: kept, with every value another field hides replaced inside it.
    Rewrite,
    /// IP fields: the network (IPv4 /24, IPv6 /48).
    Truncate,
    /// Addresses: the local part hashed, the domain kept.
    HashLocal,
    Hash,
    Drop,
}

impl Mode {
    pub const ALL: [Mode; 6] = [
        Mode::Keep,
        Mode::Rewrite,
        Mode::Truncate,
        Mode::HashLocal,
        Mode::Hash,
        Mode::Drop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Keep => "keep",
            Mode::Rewrite => "rewrite",
            Mode::Truncate => "truncate",
            Mode::HashLocal => "hash-local",
            Mode::Hash => "hash",
            Mode::Drop => "drop",
        }
    }

    pub fn from_name(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether this mode needs the key.
    pub fn hashes(self) -> bool {
        matches!(self, Mode::Hash | Mode::HashLocal)
    }

    /// What `check` says of a field in this mode.
    pub fn shown(self) -> &'static str {
        match self {
            Mode::Keep => "kept as written",
            Mode::Rewrite => "kept, hidden values rewritten inside",
            Mode::Truncate => "truncated (IPv4 /24, IPv6 /48)",
            Mode::HashLocal => "hashed local part, domain kept",
            Mode::Hash => "hashed",
            Mode::Drop => "dropped",
        }
    }
}

/// The kind of value a field holds: it decides the modes it takes and how it is normalised
/// before hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Mail addresses (`local@domain`), compared case-insensitively.
    Address,
    /// Account names: often an address, sometimes a bare name.
    User,
    /// IPv4 or IPv6 addresses.
    Ip,
    /// Host and domain names, compared case-insensitively.
    Host,
    /// Free text, which may quote any of the above.
    Text,
}

impl Class {
    pub fn allows(self, m: Mode) -> bool {
        match self {
            Class::Address | Class::User => {
                matches!(m, Mode::Keep | Mode::Drop | Mode::Hash | Mode::HashLocal)
            }
            Class::Ip => matches!(m, Mode::Keep | Mode::Drop | Mode::Hash | Mode::Truncate),
            Class::Host => matches!(m, Mode::Keep | Mode::Drop | Mode::Hash),
            Class::Text => matches!(m, Mode::Rewrite | Mode::Drop | Mode::Hash),
        }
    }
}

/// A field `[privacy]` can name: every field of `records.md` that can hold an address, an
/// account name, an IP, a host name of a client, or free text. The others (`event.*`,
/// `host.name`, `log.*`, `email.local_id`, ...) describe the mail server, not a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    FromAddress,
    ToAddress,
    UserName,
    ClientIp,
    DestinationIp,
    ClientDomain,
    DestinationDomain,
    ServerDomain,
    SmtpHelo,
    MaildbIn,
    MaildbMatch,
    Message,
    Subject,
    ErrorMessage,
    ProtocolArgs,
    FilterWarning,
}

impl Field {
    pub const ALL: [Field; 16] = [
        Field::FromAddress,
        Field::ToAddress,
        Field::UserName,
        Field::ClientIp,
        Field::DestinationIp,
        Field::ClientDomain,
        Field::DestinationDomain,
        Field::ServerDomain,
        Field::SmtpHelo,
        Field::MaildbIn,
        Field::MaildbMatch,
        Field::Message,
        Field::Subject,
        Field::ErrorMessage,
        Field::ProtocolArgs,
        Field::FilterWarning,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::FromAddress => "email.from.address",
            Field::ToAddress => "email.to.address",
            Field::UserName => "user.name",
            Field::ClientIp => "client.ip",
            Field::DestinationIp => "destination.ip",
            Field::ClientDomain => "client.domain",
            Field::DestinationDomain => "destination.domain",
            Field::ServerDomain => "server.domain",
            Field::SmtpHelo => "epost.smtp.helo",
            Field::MaildbIn => "epost.maildb.in",
            Field::MaildbMatch => "epost.maildb.match",
            Field::Message => "message",
            Field::Subject => "email.subject",
            Field::ErrorMessage => "error.message",
            Field::ProtocolArgs => "epost.protocol.args",
            Field::FilterWarning => "epost.filter.warning",
        }
    }

    pub fn from_name(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }

    pub fn class(self) -> Class {
        match self {
            Field::FromAddress | Field::ToAddress | Field::MaildbIn | Field::MaildbMatch => {
                Class::Address
            }
            Field::UserName => Class::User,
            Field::ClientIp | Field::DestinationIp => Class::Ip,
            Field::ClientDomain
            | Field::DestinationDomain
            | Field::ServerDomain
            | Field::SmtpHelo => Class::Host,
            Field::Message
            | Field::Subject
            | Field::ErrorMessage
            | Field::ProtocolArgs
            | Field::FilterWarning => Class::Text,
        }
    }

    /// Whether `mode` fits this field (`message` is always sent: it is rewritten or dropped,
    /// never replaced by a token nobody can read).
    pub fn allows(self, mode: Mode) -> bool {
        self.class().allows(mode) && !(self == Field::Message && mode == Mode::Hash)
    }

    /// The modes this field takes, for error hints.
    pub fn modes(self) -> Vec<&'static str> {
        Mode::ALL
            .into_iter()
            .filter(|m| self.allows(*m))
            .map(Mode::name)
            .collect()
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}
