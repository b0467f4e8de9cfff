//! Rewriting free text (`message`, `error.message`, ...) so that it does not show what the
//! fields hide: the record's own hidden values wherever they occur, then whatever looks like
//! a mail address, an IP, or the account name of a `USER`/`APOP`/`LOGIN` command.
//!
//! Matching is on ASCII: the logs write addresses and IPs in ASCII, and lower-casing ASCII
//! keeps every byte offset, so spans found in the lower-cased copy are spans of the text.

use std::borrow::Cow;

use super::field::Class;

/// A value to replace wherever it stands in a text, and what it becomes.
#[derive(Debug)]
pub(super) struct Needle {
    /// ASCII-lower-cased.
    pub lower: String,
    pub with: String,
}

/// What the patterns found in a text become, per class; `None` = left alone (the class is
/// kept).
pub(super) trait Replace {
    fn pattern(&self, class: Class, value: &str) -> Option<String>;
    fn hides(&self, class: Class) -> bool;
}

/// `text` with the needles and the hidden patterns replaced; borrowed when nothing was.
pub(super) fn rewrite<'t>(text: &'t str, needles: &[Needle], r: &impl Replace) -> Cow<'t, str> {
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    let bytes = text.as_bytes();
    if !needles.is_empty() {
        let lower = text.to_ascii_lowercase();
        for n in needles {
            find_needle(&lower, n, &mut spans);
        }
    }
    if r.hides(Class::User) {
        users(text, r, &mut spans);
    }
    if r.hides(Class::Address) {
        for at in memchr::memchr_iter(b'@', bytes) {
            if let Some((s, e)) = address_around(bytes, at)
                && let Some(with) = r.pattern(Class::Address, &text[s..e])
            {
                insert(&mut spans, s, e, with);
            }
        }
    }
    if r.hides(Class::Ip) {
        ips(text, r, &mut spans);
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_by_key(|s| s.0);
    let mut out = String::with_capacity(text.len() + 32 * spans.len());
    let mut at = 0;
    for (s, e, with) in spans {
        out.push_str(&text[at..s]);
        out.push_str(&with);
        at = e;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Adds the span unless it overlaps one already taken (the earlier, more specific match
/// wins).
fn insert(spans: &mut Vec<(usize, usize, String)>, s: usize, e: usize, with: String) {
    if s < e && !spans.iter().any(|&(a, b, _)| s < b && a < e) {
        spans.push((s, e, with));
    }
}

fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'@'
}

/// Whether a value ending before `i` would go on into the text at `i` (`bob` in
/// `bob.smith@x`, `10.0.0.1` in `10.0.0.12`): then that occurrence is a part of something
/// else, which the patterns deal with as a whole.
fn goes_on(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        Some(&c) if word(c) => true,
        Some(b'.' | b'-' | b'+') => b.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric()),
        _ => false,
    }
}

/// The same, looking left from a value starting at `i`.
fn came_from(b: &[u8], i: usize) -> bool {
    let Some(p) = i.checked_sub(1) else {
        return false;
    };
    match b[p] {
        c if word(c) => true,
        b'.' | b'-' | b'+' => p
            .checked_sub(1)
            .is_some_and(|q| b[q].is_ascii_alphanumeric()),
        _ => false,
    }
}

fn find_needle(lower: &str, n: &Needle, spans: &mut Vec<(usize, usize, String)>) {
    let (hay, pat) = (lower.as_bytes(), n.lower.as_bytes());
    let (Some(&first), Some(&last)) = (pat.first(), pat.last()) else {
        return;
    };
    for s in memchr::memmem::find_iter(hay, pat) {
        let e = s + pat.len();
        // a needle that starts or ends with a word character must stand as a whole word there
        if (word(first) && came_from(hay, s)) || (word(last) && goes_on(hay, e)) {
            continue;
        }
        insert(spans, s, e, n.with.clone());
    }
}

/// Characters of an address's local part as the logs write them (dot-atoms; `=`, `/` and
/// `:` are left out, so `domain=jiro@example.com` and `AUTH-LOGIN:taro@example.jp` give
/// the address after them).
fn local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'.' | b'_' | b'%' | b'+' | b'-' | b'!' | b'#' | b'$' | b'&' | b'*' | b'^' | b'~'
        )
}

fn domain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// The address whose `@` is at `at`: `(start, end)`, or `None` when there is none, or when
/// it is an E-Post message id (`B0000097586@mx.example.jp`, `B0000097587-001@...`), which
/// names a message, not a person.
fn address_around(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut s = at;
    while s > 0 && local_char(b[s - 1]) {
        s -= 1;
    }
    while s < at && b[s] == b'.' {
        s += 1;
    }
    let mut e = at + 1;
    while e < b.len() && domain_char(b[e]) {
        e += 1;
    }
    while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    if s == at || e == at + 1 || !b[at + 1..e].iter().any(u8::is_ascii_alphanumeric) {
        return None;
    }
    if is_message_id(&b[s..at]) {
        return None;
    }
    Some((s, e))
}

fn is_message_id(local: &[u8]) -> bool {
    let Some(rest) = local.strip_prefix(b"B") else {
        return false;
    };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let tail = &rest[digits..];
    digits >= 6
        && (tail.is_empty()
            || (tail[0] == b'-'
                && tail.len() > 1
                && tail[1..].iter().all(u8::is_ascii_alphanumeric)))
}

/// The account names of `USER x`, `APOP x digest` and `tag LOGIN x pw` (any case) where a
/// client command stands: first on a line, or after a trace prefix (words ending in `,` or
/// `:`), possibly after an IMAP tag. Elsewhere the words are prose or capabilities
/// (`250-AUTH LOGIN PLAIN`, `0001 OK LOGIN completed`).
fn users(text: &str, r: &impl Replace, spans: &mut Vec<(usize, usize, String)>) {
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let words: Vec<(usize, &str)> = words_at(line).collect();
        let start = words
            .iter()
            .take_while(|(_, w)| w.ends_with([',', ':']))
            .count();
        // handle 00000000 is E-Post's own trace text (`user check status(1) = ...`)
        if start > 0 && words[start - 1].1 == "00000000," {
            line_start += line.len();
            continue;
        }
        let tag = |w: &str| w.len() <= 12 && w.bytes().all(|c| c.is_ascii_alphanumeric());
        let verb_at = match words.get(start) {
            Some((_, w)) if is_verb(w) => Some(start),
            Some((_, w)) if tag(w) && words.get(start + 1).is_some_and(|(_, v)| is_verb(v)) => {
                Some(start + 1)
            }
            _ => None,
        };
        if let Some(&(at, name)) = verb_at.and_then(|i| words.get(i + 1)) {
            let quoted = name.len() >= 2 && name.starts_with('"') && name.ends_with('"');
            let (s, n) = if quoted {
                (at + 1, &name[1..name.len() - 1])
            } else {
                (at, name)
            };
            let skip = n.is_empty() || n == "-" || n.starts_with('{') || n == "[REDACTED]";
            if !skip && let Some(with) = r.pattern(Class::User, n) {
                let begin = line_start + s;
                insert(spans, begin, begin + n.len(), with);
            }
        }
        line_start += line.len();
    }
}

/// The commands whose first argument is an account name.
pub(super) fn is_verb(w: &str) -> bool {
    ["USER", "APOP", "LOGIN"]
        .into_iter()
        .any(|v| w.eq_ignore_ascii_case(v))
}

/// Words split on ASCII whitespace, with their byte offsets.
fn words_at(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split_ascii_whitespace()
        .map(move |w| (w.as_ptr() as usize - line.as_ptr() as usize, w))
}

fn ip_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Every IPv4 and IPv6 address in the text, found as runs of hex digits, `:` and `.`.
fn ips(text: &str, r: &impl Replace, spans: &mut Vec<(usize, usize, String)>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !ip_char(b[i]) || (i > 0 && ip_char(b[i - 1])) {
            i += 1;
            continue;
        }
        let mut e = i;
        while e < b.len() && ip_char(b[e]) {
            e += 1;
        }
        let run_end = e;
        while e > i && b[e - 1] == b'.' {
            e -= 1;
        }
        // a run glued to a word (`IPv6:2001:db8::1`, `ip:1.2.3.4`) starts after its first `:`
        let mut s = i;
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            s = match b[i..e].iter().position(|&c| c == b':') {
                Some(p) => i + p + 1,
                None => e,
            };
        }
        let glued_after = b.get(run_end).is_some_and(|c| c.is_ascii_alphanumeric());
        if s < e && !glued_after {
            ip_in_run(text, s, e, r, spans);
        }
        i = run_end;
    }
}

/// An IPv6 address making up the run, else the IPv4 addresses among its `:`-separated parts
/// (`203.0.113.5:25`).
fn ip_in_run(
    text: &str,
    s: usize,
    e: usize,
    r: &impl Replace,
    spans: &mut Vec<(usize, usize, String)>,
) {
    let run = &text[s..e];
    if run.bytes().filter(|&c| c == b':').count() >= 2 && run.parse::<std::net::Ipv6Addr>().is_ok()
    {
        if let Some(with) = r.pattern(Class::Ip, run) {
            insert(spans, s, e, with);
        }
        return;
    }
    let mut at = s;
    for part in run.split(':') {
        if is_ipv4(part)
            && let Some(with) = r.pattern(Class::Ip, part)
        {
            insert(spans, at, at + part.len(), with);
        }
        at += part.len() + 1;
    }
}

/// Four decimal numbers 0-255 of one to three digits, dot-separated.
fn is_ipv4(s: &str) -> bool {
    let mut n = 0;
    for p in s.split('.') {
        n += 1;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
        if p.parse::<u16>().map_or(true, |v| v > 255) {
            return false;
        }
    }
    n == 4
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks what it finds, so a test sees which class took which text.
    struct Mark;
    impl Replace for Mark {
        fn pattern(&self, class: Class, value: &str) -> Option<String> {
            Some(format!("<{class:?}:{value}>"))
        }
        fn hides(&self, _: Class) -> bool {
            true
        }
    }

    fn rw(text: &str, needles: &[(&str, &str)]) -> String {
        let n: Vec<Needle> = needles
            .iter()
            .map(|(a, b)| Needle {
                lower: a.to_ascii_lowercase(),
                with: b.to_string(),
            })
            .collect();
        rewrite(text, &n, &Mark).into_owned()
    }

    #[test]
    fn addresses() {
        assert_eq!(
            rw("MAIL FROM:<Alice@Example.net> SIZE=10", &[]),
            "MAIL FROM:<<Address:Alice@Example.net>> SIZE=10"
        );
        assert_eq!(
            rw("SendGlbalMail:domain=jiro@example.com.", &[]),
            "SendGlbalMail:domain=<Address:jiro@example.com>."
        );
        assert_eq!(
            rw(
                "[..], (mx), 1.2.3.4[1.2.3.4], AUTH-LOGIN:taro@example.jp [success]",
                &[]
            ),
            "[..], (mx), <Ip:1.2.3.4>[<Ip:1.2.3.4>], AUTH-LOGIN:<Address:taro@example.jp> [success]"
        );
        // message ids are not people
        assert_eq!(
            rw(
                "<B0000097586@mx.example.jp> x B0000097587-001@mx.example.jp",
                &[]
            ),
            "<B0000097586@mx.example.jp> x B0000097587-001@mx.example.jp"
        );
        assert_eq!(rw("a @ b, @x, y@", &[]), "a @ b, @x, y@");
    }

    #[test]
    fn ips_v4_and_v6() {
        assert_eq!(
            rw(
                "[203.0.113.5]:25, [2001:db8::25]:587 [IPv6:2001:db8::25] ip:10.0.0.1",
                &[]
            ),
            "[<Ip:203.0.113.5>]:25, [<Ip:2001:db8::25>]:587 [IPv6:<Ip:2001:db8::25>] ip:<Ip:10.0.0.1>"
        );
        // times, MACs, versions and words are not IPs
        for t in [
            "[30/Nov/2017:08:20:44]",
            "[08:22:11:020]",
            "00:11:22:33:44:55",
            "std::vector",
            "(4.A1)",
            "1.2.3.4.5",
            "256.1.1.1",
            "x1.2.3.4",
            "deadbeef",
        ] {
            assert_eq!(rw(t, &[]), t);
        }
        assert_eq!(rw("from 1.2.3.4.", &[]), "from <Ip:1.2.3.4>.");
    }

    #[test]
    fn users_after_verbs() {
        assert_eq!(
            rw("[30/Nov/2017:18:19:14], 0145a009, USER taro", &[]),
            "[30/Nov/2017:18:19:14], 0145a009, USER <User:taro>"
        );
        assert_eq!(rw("user taro", &[]), "user <User:taro>");
        assert_eq!(
            rw(
                "[..], 00146288, 0001 LOGIN \"taro@example.jp\" \"s3cret pass\"",
                &[]
            ),
            "[..], 00146288, 0001 LOGIN \"<User:taro@example.jp>\" \"s3cret pass\""
        );
        // capabilities, replies and E-Post's own text are not commands
        for t in [
            "[..], 00000000, user check status(1) = found local group (0)",
            "[..], 0145a008, 250-AUTH LOGIN PLAIN CRAM-MD5",
            "[..], 00146288, 0001 OK LOGIN completed",
        ] {
            assert_eq!(rw(t, &[]), t);
        }
        assert_eq!(
            rw("a1 login \"hanako\" [REDACTED]", &[]),
            "a1 login \"<User:hanako>\" [REDACTED]"
        );
        assert_eq!(rw("a1 LOGIN {6}", &[]), "a1 LOGIN {6}");
        // prose is not a command
        assert_eq!(
            rw("550 5.1.1 the user unknown", &[]),
            "550 5.1.1 the user unknown"
        );
    }

    #[test]
    fn needles_whole_words_longest_first() {
        assert_eq!(
            rw("bob bobby bob.smith BOB", &[("bob", "T")]),
            "T bobby bob.smith T"
        );
        assert_eq!(
            rw("10.0.0.1 10.0.0.12 110.0.0.1", &[("10.0.0.1", "N")]),
            "N <Ip:10.0.0.12> <Ip:110.0.0.1>"
        );
        // the needle wins over the pattern that covers the same text
        assert_eq!(rw("x a@b.c y", &[("a@b.c", "T")]), "x T y");
        assert_eq!(rw("窓口PC 窓口PC", &[("窓口pc", "H")]), "H H");
    }
}
