//! A record kept by `trace`: the fields it needs, owned, and the record's JSON as the sinks
//! receive it.

use crate::kind::Kind;
use crate::record::Record;

#[derive(Debug, Clone)]
pub struct Found {
    pub unix_ms: i64,
    pub time: String,
    pub kind: Kind,
    pub host: String,
    pub path: String,
    pub offset: u64,
    pub json: String,
    pub message: String,
    pub action: String,
    pub local_id: Option<String>,
    pub session_id: Option<String>,
    pub client_ip: Option<String>,
    pub destination_ip: Option<String>,
    pub destination_domain: Option<String>,
    pub user: Option<String>,
    pub error: Option<String>,
    pub session_status: Option<String>,
    pub auth_result: Option<String>,
    pub auth_method: Option<String>,
    pub tls: Option<bool>,
    pub port: Option<u16>,
    pub helo: Option<String>,
    pub command: Option<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub warnings: Vec<String>,
}

fn own(v: &Option<std::borrow::Cow<'_, str>>) -> Option<String> {
    v.as_deref().filter(|s| !s.is_empty()).map(str::to_string)
}

fn owns(v: &[std::borrow::Cow<'_, str>]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Found {
    pub fn of(r: &Record<'_>) -> Found {
        let f = &r.fields;
        Found {
            unix_ms: r.timestamp.unix_ms,
            time: r.timestamp.to_rfc3339(),
            kind: r.source.kind,
            host: r.source.host.to_string(),
            path: r.source.path.to_string(),
            offset: r.offset,
            json: r.to_json(),
            message: r.message.to_string(),
            action: r.action.to_string(),
            local_id: own(&f.local_id),
            session_id: own(&f.session_id),
            client_ip: own(&f.client_ip),
            destination_ip: own(&f.destination_ip),
            destination_domain: own(&f.destination_domain),
            user: own(&f.user_name),
            error: own(&f.error_message),
            session_status: own(&f.session_status),
            auth_result: own(&f.auth_result),
            auth_method: own(&f.auth_method),
            tls: f.tls_established,
            port: f.server_port,
            helo: own(&f.smtp_helo),
            command: own(&f.command),
            from: owns(&f.from),
            to: owns(&f.to),
            warnings: owns(&f.filter_warning),
        }
    }

    /// Where a record stands in a journey when times are equal (acceptlog's second record
    /// carries the time of MAIL FROM, the trace's lines come before the inlog line they lead to).
    pub fn rank(&self) -> u8 {
        match self.kind {
            Kind::Acceptlog if self.action == "connection-accepted" => 0,
            Kind::Receivelog | Kind::Receivepop3 | Kind::Receiveimap4 => 1,
            Kind::Acceptlog => 2,
            Kind::Inlog => 3,
            Kind::Pop3log | Kind::Imap4log | Kind::Maildblog => 4,
            Kind::Senderlog => 5,
            Kind::Outlog | Kind::Outlocallog | Kind::Faillog => 6,
            Kind::Viruslog => 7,
        }
    }
}

/// Time order, then journey rank, then file and offset; duplicates (the same record found
/// twice) removed.
pub fn sort_dedup(v: &mut Vec<Found>) {
    v.sort_by(|a, b| {
        (a.unix_ms, a.rank(), &a.path, a.offset).cmp(&(b.unix_ms, b.rank(), &b.path, b.offset))
    });
    v.dedup_by(|a, b| a.path == b.path && a.offset == b.offset);
}
