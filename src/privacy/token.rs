//! Tokens: what a hidden value becomes. Everything here is a pure function of the key and
//! the value, so the same value gives the same token on every run and every machine that has
//! the same key (`docs/privacy.md` has the format, byte for byte).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What a dropped value becomes where it cannot simply be left out (inside a text).
pub const DROPPED: &str = "[DROPPED]";

/// Tokens start with this, so that a reader (and `trace`) can tell a token from a value.
pub const PREFIX: &str = "h_";

/// Bytes of the HMAC kept in a token: 128 bits, so that two values practically never share
/// a token (a join that merged two people would be wrong without anyone noticing).
const TOKEN_BYTES: usize = 16;

/// The HMAC key, keyed once; each token clones the keyed state (two SHA-256 blocks saved per
/// token).
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(***)")
    }
}

impl Key {
    pub fn new(bytes: &[u8]) -> Key {
        // HMAC takes keys of any length
        Key(Hmac::<Sha256>::new_from_slice(bytes).expect("HMAC accepts any key length"))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.0.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// `h_` + the first 16 bytes of HMAC-SHA256(key, value) in lowercase hex.
    pub fn token(&self, value: &str) -> String {
        let mac = self.mac(&[value.as_bytes()]);
        let mut out = String::with_capacity(PREFIX.len() + 2 * TOKEN_BYTES);
        out.push_str(PREFIX);
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for b in &mac[..TOKEN_BYTES] {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        out
    }

    /// A hashed IP is still an IP (Elasticsearch maps `client.ip` as `ip`): `fd` followed by
    /// the first 15 bytes of HMAC-SHA256(key, "ip:" + canonical address), an address of the
    /// unique-local range `fd00::/8`, which no public client has.
    pub fn ip_token(&self, value: &str) -> String {
        let canonical = match parse_ip(value) {
            Some(ip) => ip.to_string(),
            None => value.to_string(),
        };
        let mac = self.mac(&[b"ip:", canonical.as_bytes()]);
        let mut b = [0u8; 16];
        b[0] = 0xfd;
        b[1..].copy_from_slice(&mac[..15]);
        Ipv6Addr::from(b).to_string()
    }
}

/// An address or account name as compared for hashing: trimmed and lower-cased, so that
/// `Taro@Example.JP` in one log and `taro@example.jp` in another give one token.
pub fn normalise(value: &str) -> String {
    value.trim().to_lowercase()
}

/// `hash` of an address, user or host name: the token of its normalised form.
pub fn hash(key: &Key, value: &str) -> String {
    key.token(&normalise(value))
}

/// `hash-local`: `h_<token of the local part>@<domain, lower-cased>`. A value without `@` is
/// all local part (a bare account name), so it gets the same token as `hash` gives it; this
/// keeps `taro` (a POP3 user) and `taro@example.jp` joinable on the token.
pub fn hash_local(key: &Key, value: &str) -> String {
    let v = normalise(value);
    match v.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => {
            let mut t = key.token(local);
            t.push('@');
            t.push_str(domain);
            t
        }
        _ => key.token(&v),
    }
}

/// IPv4 to its /24, IPv6 to its /48, written as the network's address (`203.0.113.0`,
/// `2001:db8:1::`): still an IP for Elasticsearch, and a CIDR query finds it. `None` if the
/// value is not an IP.
pub fn truncate(value: &str) -> Option<String> {
    Some(match parse_ip(value)? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Ipv4Addr::new(a, b, c, 0).to_string()
        }
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[6..].fill(0);
            Ipv6Addr::from(o).to_string()
        }
    })
}

/// An IP as the logs write it; an IPv4-mapped IPv6 address counts as the IPv4 one.
pub fn parse_ip(value: &str) -> Option<IpAddr> {
    let v = value.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    v.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hmac_sha256_truncated() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
        let k = Key::new(b"Jefe");
        assert_eq!(
            k.token("what do ya want for nothing?"),
            "h_5bdcc146bf60754e6a042426089575c7"
        );
    }

    #[test]
    fn hash_local_keeps_the_domain_and_joins_bare_names() {
        let k = Key::new(b"0123456789abcdef");
        let a = hash_local(&k, "Taro@Example.JP");
        assert!(a.ends_with("@example.jp"), "{a}");
        assert_eq!(a, hash_local(&k, "taro@example.jp"));
        assert_eq!(a.split('@').next().unwrap(), hash(&k, "taro"));
        assert_eq!(hash_local(&k, "taro"), hash(&k, "TARO"));
        assert_ne!(hash(&k, "taro@example.jp"), hash(&k, "jiro@example.jp"));
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("203.0.113.5").as_deref(), Some("203.0.113.0"));
        assert_eq!(truncate("10.1.2.255").as_deref(), Some("10.1.2.0"));
        assert_eq!(
            truncate("2001:db8:1234:5678::25").as_deref(),
            Some("2001:db8:1234::")
        );
        assert_eq!(truncate("[2001:DB8::1]").as_deref(), Some("2001:db8::"));
        assert_eq!(truncate("::ffff:192.0.2.9").as_deref(), Some("192.0.2.0"));
        assert_eq!(truncate("pc01"), None);
    }

    #[test]
    fn ip_tokens_are_ips_and_canonical() {
        let k = Key::new(b"0123456789abcdef");
        let t = k.ip_token("2001:db8::25");
        assert!(t.parse::<Ipv6Addr>().is_ok() && t.starts_with("fd"), "{t}");
        assert_eq!(t, k.ip_token("2001:DB8:0::25"));
        assert_ne!(t, k.ip_token("2001:db8::26"));
        assert_eq!(k.ip_token("::ffff:1.2.3.4"), k.ip_token("1.2.3.4"));
    }
}
