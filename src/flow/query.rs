//! What `trace` was asked: a local id, a Message-ID, an e-mail address or an IP address.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `B` + hex digits, without `<>`, `@host` or a `-…` suffix.
    LocalId(String),
    /// A Message-ID that is not E-Post's own `<B…@host>`, without its `<>`.
    MessageId(String),
    Address(String),
    Ip(String),
}

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot tell what `{0}` is: give a local id (B0000097586), a Message-ID (<B0000097586@host> or <...>), an e-mail address (user@example.jp) or an IP address"
)]
pub struct UnknownQuery(pub String);

/// `B` + 10 to 14 hex digits, optionally followed by a `-…` suffix (dropped).
fn local_id(s: &str) -> Option<String> {
    let s = s.strip_prefix('B').or_else(|| s.strip_prefix('b'))?;
    let digits = s.split('-').next().unwrap_or("");
    let ok = (10..=14).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| format!("B{digits}"))
}

fn is_address(s: &str) -> bool {
    let Some((user, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !user.is_empty()
        && domain.contains('.')
        && !s.contains(char::is_whitespace)
        && !s.contains(['<', '>', '[', ']', ','])
}

impl std::str::FromStr for Query {
    type Err = UnknownQuery;
    fn from_str(q: &str) -> Result<Query, UnknownQuery> {
        let t = q.trim();
        if let Some(inner) = t.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            if inner.is_empty() || inner.contains(char::is_whitespace) {
                return Err(UnknownQuery(q.to_string()));
            }
            let (left, _) = inner.split_once('@').unwrap_or((inner, ""));
            return Ok(match local_id(left) {
                Some(id) => Query::LocalId(id),
                None => Query::MessageId(inner.to_string()),
            });
        }
        if let Some(id) = local_id(t) {
            return Ok(Query::LocalId(id));
        }
        if let Ok(ip) = t
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(Query::Ip(ip.to_string()));
        }
        if is_address(t) {
            return Ok(Query::Address(t.to_string()));
        }
        Err(UnknownQuery(q.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let q = |s: &str| s.parse::<Query>().ok();
        assert_eq!(q("B0000097586"), Some(Query::LocalId("B0000097586".into())));
        assert_eq!(
            q("B0000097587-R0001"),
            Some(Query::LocalId("B0000097587".into()))
        );
        assert_eq!(
            q("<B0000097586@mx.example.jp>"),
            Some(Query::LocalId("B0000097586".into()))
        );
        assert_eq!(
            q("<20171130.x@client.example.net>"),
            Some(Query::MessageId("20171130.x@client.example.net".into()))
        );
        assert_eq!(
            q("alice@example.net"),
            Some(Query::Address("alice@example.net".into()))
        );
        assert_eq!(q("203.0.113.5"), Some(Query::Ip("203.0.113.5".into())));
        assert_eq!(q("2001:db8::25"), Some(Query::Ip("2001:db8::25".into())));
        for bad in ["hello", "B123", "", "<>", "a@b", "999.1.1.1", "B00000975ZZ"] {
            assert_eq!(q(bad), None, "{bad}");
        }
    }
}
