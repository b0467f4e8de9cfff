//! `trace`: a message's journey, or the messages and sessions of an address or IP.
//!
//! Lines are picked by their raw bytes first (Aho-Corasick over the undecoded file, so a
//! 1 GB day is read once at memory speed) and only the records around a match are parsed.
//! A second pass follows what the first found: the receivelog session handle that carried
//! the message, the acceptlog connection of its client, or the ids of an address's messages.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder};

use super::found::{Found, sort_dedup};
use super::query::Query;
use super::read::{Inputs, Select, Skipped, read_file};
use crate::kind::Kind;
use crate::privacy::Field;

/// What a trace found.
#[derive(Debug, Default)]
pub struct Traced {
    /// Every record, in time order (a journey, or all records of the listed messages and
    /// sessions).
    pub records: Vec<Found>,
    /// The local ids of the messages found, in order of first appearance in time.
    pub messages: Vec<String>,
    /// For an address or IP: records of sessions without a message (refused connections,
    /// POP3/IMAP logins, failed SMTP AUTH).
    pub sessions: Vec<Found>,
}

fn matcher(needles: &[String], ascii_ci: bool) -> Option<AhoCorasick> {
    if needles.is_empty() {
        return None;
    }
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(ascii_ci)
        .build(needles)
        .ok()
}

/// The records of the files of `kinds` that have a line matching one of `needles`.
fn scan(
    inputs: &Inputs,
    kinds: &[Kind],
    needles: &[String],
    ascii_ci: bool,
    skipped: &mut Skipped,
) -> Vec<Found> {
    let mut out = Vec::new();
    let Some(ac) = matcher(needles, ascii_ci) else {
        return out;
    };
    let select = Select::Matching(&ac);
    for f in inputs.files.iter().filter(|f| kinds.contains(&f.kind)) {
        read_file(inputs, f, &select, skipped, &mut |r| out.push(Found::of(r)));
    }
    out
}

/// Whether `text` holds `id` not followed by another id character (B0000097586 is not
/// B00000975860).
fn has_token(text: &str, id: &str) -> bool {
    text.match_indices(id).any(|(i, _)| {
        !text
            .as_bytes()
            .get(i + id.len())
            .is_some_and(|b| b.is_ascii_hexdigit())
    })
}

const MESSAGE_KINDS: [Kind; 6] = [
    Kind::Acceptlog,
    Kind::Inlog,
    Kind::Outlog,
    Kind::Outlocallog,
    Kind::Faillog,
    Kind::Viruslog,
];

pub fn trace(inputs: &Inputs, q: &Query, skipped: &mut Skipped) -> Traced {
    match q {
        Query::LocalId(id) => journey(inputs, id, skipped),
        Query::MessageId(mid) => {
            let hits = scan(
                inputs,
                &Kind::ALL,
                std::slice::from_ref(mid),
                false,
                skipped,
            );
            let ids = ids_of(&hits);
            match ids.as_slice() {
                [one] => journey(inputs, one, skipped),
                _ => listing(inputs, hits, skipped),
            }
        }
        Query::Address(a) => {
            // the raw bytes hold the value as written; the records may hold its tokens
            let forms = forms(
                inputs,
                a,
                &[Field::FromAddress, Field::ToAddress, Field::UserName],
            );
            let hits = scan(
                inputs,
                &listing_kinds(),
                std::slice::from_ref(a),
                true,
                skipped,
            )
            .into_iter()
            .filter(|f| forms.iter().any(|a| mentions_address(f, a)))
            .collect();
            listing(inputs, hits, skipped)
        }
        Query::Ip(ip) => {
            let forms = forms(inputs, ip, &[Field::ClientIp, Field::DestinationIp]);
            let hits = scan(
                inputs,
                &listing_kinds(),
                std::slice::from_ref(ip),
                false,
                skipped,
            )
            .into_iter()
            .filter(|f| {
                forms.iter().any(|ip| {
                    f.client_ip.as_deref() == Some(ip) || f.destination_ip.as_deref() == Some(ip)
                })
            })
            .collect();
            listing(inputs, hits, skipped)
        }
    }
}

/// What `value` looks like in the records: as written, and, under `[privacy]`, the token
/// (or truncation) each of `fields` makes of it with the configured key.
fn forms(inputs: &Inputs, value: &str, fields: &[Field]) -> Vec<String> {
    let mut out = vec![value.to_string()];
    if let Some(p) = &inputs.privacy {
        out.extend(fields.iter().filter_map(|f| p.query_token(*f, value)));
        out.sort();
        out.dedup();
    }
    out
}

/// The message-level kinds and the login logs: what an address or IP listing reads.
fn listing_kinds() -> Vec<Kind> {
    let mut k = MESSAGE_KINDS.to_vec();
    k.extend([Kind::Pop3log, Kind::Imap4log]);
    k
}

fn mentions_address(f: &Found, a: &str) -> bool {
    let eq = |s: &String| s.eq_ignore_ascii_case(a);
    f.from.iter().any(eq) || f.to.iter().any(eq) || f.user.as_ref().is_some_and(eq)
}

fn ids_of(v: &[Found]) -> Vec<String> {
    let mut sorted: Vec<&Found> = v.iter().collect();
    sorted.sort_by_key(|f| f.unix_ms);
    let mut seen = BTreeSet::new();
    sorted
        .into_iter()
        .filter_map(|f| f.local_id.clone())
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// An address's or IP's messages (their message-level records) and sessions.
fn listing(inputs: &Inputs, hits: Vec<Found>, skipped: &mut Skipped) -> Traced {
    let ids = ids_of(&hits);
    let wanted: BTreeSet<&String> = ids.iter().collect();
    let mut records: Vec<Found> = scan(inputs, &MESSAGE_KINDS, &ids, false, skipped)
        .into_iter()
        .filter(|f| f.local_id.as_ref().is_some_and(|i| wanted.contains(i)))
        .collect();
    let mut sessions: Vec<Found> = hits
        .iter()
        .filter(|f| f.local_id.is_none())
        .filter(|f| f.kind == Kind::Acceptlog || f.auth_result.is_some())
        .cloned()
        .collect();
    records.extend(hits);
    sort_dedup(&mut records);
    sort_dedup(&mut sessions);
    Traced {
        records,
        messages: ids,
        sessions,
    }
}

/// One message's journey.
fn journey(inputs: &Inputs, id: &str, skipped: &mut Skipped) -> Traced {
    let needle = [id.to_string()];
    let mut records: Vec<Found> = scan(inputs, &Kind::ALL, &needle, false, skipped)
        .into_iter()
        .filter(|f| match &f.local_id {
            Some(l) => l == id,
            None => has_token(&f.message, id),
        })
        .collect();
    let marker = format!("<{id}>");
    let carriers: Vec<Found> = records
        .iter()
        .filter(|f| f.kind == Kind::Receivelog && f.message.contains(&marker))
        .cloned()
        .collect();
    records.extend(sessions_of(inputs, &carriers, skipped));
    sort_dedup(&mut records);
    if let Some(c) = connection_of(inputs, &records, skipped) {
        records.push(c);
        sort_dedup(&mut records);
    }
    Traced {
        records,
        messages: vec![id.to_string()],
        sessions: Vec::new(),
    }
}

/// All records of the receivelog sessions that carried the message: the handle's records from
/// its `220` banner before the `354 … id <B…>` reply to its `221` (or the next banner: handles
/// are reused once a session is over).
fn sessions_of(inputs: &Inputs, carriers: &[Found], skipped: &mut Skipped) -> Vec<Found> {
    let handles: BTreeSet<String> = carriers
        .iter()
        .filter_map(|f| f.session_id.clone())
        .collect();
    if handles.is_empty() {
        return Vec::new();
    }
    let needles: Vec<String> = handles.iter().map(|h| format!(", {h}, ")).collect();
    let mut by_handle: BTreeMap<(String, String), Vec<Found>> = BTreeMap::new();
    for f in scan(inputs, &[Kind::Receivelog], &needles, false, skipped) {
        if let Some(h) = f.session_id.clone() {
            by_handle.entry((f.host.clone(), h)).or_default().push(f);
        }
    }
    let mut out = Vec::new();
    for c in carriers {
        let Some(h) = &c.session_id else { continue };
        let Some(all) = by_handle.get_mut(&(c.host.clone(), h.clone())) else {
            continue;
        };
        sort_dedup(all);
        let Some(at) = all
            .iter()
            .position(|f| f.path == c.path && f.offset == c.offset)
        else {
            continue;
        };
        let is_banner = |f: &Found| {
            f.message
                .split(", ")
                .nth(2)
                .is_some_and(|t| t.starts_with("220 "))
        };
        let start = all[..=at].iter().rposition(is_banner).unwrap_or(0);
        let mut end = at;
        while end + 1 < all.len() && !is_banner(&all[end + 1]) {
            end += 1;
            if all[end]
                .message
                .split(", ")
                .nth(2)
                .is_some_and(|t| t.starts_with("221 "))
            {
                break;
            }
        }
        out.extend(all[start..=end].iter().cloned());
    }
    out
}

/// acceptlog's first record for the message's client: the last `Client accept now.` from its
/// IP at or before the session began.
fn connection_of(inputs: &Inputs, records: &[Found], skipped: &mut Skipped) -> Option<Found> {
    let session = records
        .iter()
        .find(|f| f.kind == Kind::Acceptlog && f.action == "smtp-session")
        .or_else(|| records.iter().find(|f| f.kind == Kind::Inlog))?;
    let ip = session.client_ip.clone()?;
    let began = records
        .iter()
        .filter(|f| f.kind == Kind::Receivelog)
        .map(|f| f.unix_ms)
        .min()
        .unwrap_or(session.unix_ms)
        .min(session.unix_ms);
    // under [privacy] the IP is a token the raw bytes do not hold: every connection line
    let needle = match inputs.privacy {
        Some(_) => ", Client accept now.".to_string(),
        None => format!("[{ip}]:"),
    };
    scan(inputs, &[Kind::Acceptlog], &[needle], false, skipped)
        .into_iter()
        .filter(|f| f.action == "connection-accepted" && f.client_ip.as_deref() == Some(&ip))
        .filter(|f| f.host == session.host && f.unix_ms <= began)
        .max_by(|a, b| (a.unix_ms, &a.path, a.offset).cmp(&(b.unix_ms, &b.path, b.offset)))
}
