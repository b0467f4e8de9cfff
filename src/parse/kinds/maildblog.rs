//! maildblog: `[time] [IN=addr] / [maildb=addr] mach!!` (the product's spelling).

use std::borrow::Cow;

use super::{Parsed, Shape, bracketed_time};
use crate::record::Outcome;

pub fn parse(line: &str) -> Shape<'_> {
    let (time, rest) = bracketed_time(line).ok_or("maildblog line does not start with [time]")?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("[IN=").ok_or("missing [IN=...]")?;
    let (inv, rest) = rest.split_once(']').ok_or("unterminated [IN=...]")?;
    let rest = rest.trim_start().strip_prefix('/').ok_or("missing `/`")?;
    let rest = rest
        .trim_start()
        .strip_prefix("[maildb=")
        .ok_or("missing [maildb=...]")?;
    let (db, _) = rest.split_once(']').ok_or("unterminated [maildb=...]")?;
    let mut p = Parsed::new("duplicate-check", Some(time));
    p.outcome = Some(Outcome::Unknown);
    p.fields.maildb_in = (!inv.is_empty()).then_some(Cow::Borrowed(inv));
    p.fields.maildb_match = (!db.is_empty()).then_some(Cow::Borrowed(db));
    Ok(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample() {
        let p = super::parse(
            "[30/Nov/2017:10:00:00] [IN=alice@example.net] / [maildb=alice@example.net] mach!!",
        )
        .unwrap();
        assert_eq!(p.fields.maildb_in.as_deref(), Some("alice@example.net"));
        assert_eq!(p.fields.maildb_match.as_deref(), Some("alice@example.net"));
        assert!(super::parse("[30/Nov/2017:10:00:00] mach!!").is_err());
    }
}
