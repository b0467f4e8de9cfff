//! Credentials in URLs. A sink URL may carry `user:password@`; the password must never reach
//! stdout, stderr or the shipper's log. `display_url` is for a URL we format ourselves,
//! `redact_text` for text that may embed one (error messages of libraries, config lines).

/// `https://user:pass@host:9200/x` → `https://user:***@host:9200/x`. Anything that does not
/// parse as a URL goes through `redact_text`, so a malformed URL is masked too.
pub fn display_url(url: &str) -> String {
    redact_text(url)
}

/// Masks the password of every `user:password@host` in `text`, with or without a scheme,
/// also in a malformed URL (`http//u:p@h`): whatever stands between a `:` and an `@` in one
/// word is replaced. Over-masking an odd `a:b@c` in a message is the price of never missing
/// one.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in text.match_indices('@') {
        if at < last {
            continue;
        }
        let word = text[last..at]
            .rfind(|c: char| {
                c.is_whitespace()
                    || matches!(
                        c,
                        '/' | '"' | '\'' | '`' | '(' | '<' | '[' | ',' | ';' | '='
                    )
            })
            .map_or(last, |j| last + j + 1);
        match text[word..at].find(':') {
            Some(colon) => {
                out.push_str(&text[last..word + colon + 1]);
                out.push_str("***");
            }
            None => out.push_str(&text[last..at]),
        }
        out.push('@');
        last = at + 1;
    }
    out.push_str(&text[last..]);
    out
}

/// Percent-decoding of URL userinfo (`p%40ss` → `p@ss`), as reqwest does before it turns
/// userinfo into basic auth. `None` if the result is not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A config line shown under an error: when anything on it looks like a credential
/// (`password`, `api_key`, `bearer_token`, a misspelling of them, an `Authorization` header in
/// an inline table) everything after the first `=` is replaced; URL passwords are masked in
/// any case. Masking a harmless line (`tls.key_file`) costs nothing.
pub(super) fn redact_line(line: &str) -> String {
    if let Some((k, _)) = line.split_once('=') {
        let lower = line.to_ascii_lowercase();
        if ["pas", "secret", "token", "key", "auth", "pw"]
            .iter()
            .any(|w| lower.contains(w))
        {
            return format!("{k}= \"***\"");
        }
    }
    redact_text(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            display_url("https://user:pass@host:9200/"),
            "https://user:***@host:9200/"
        );
        assert_eq!(display_url("http://h:9200"), "http://h:9200");
        assert_eq!(display_url("http://tok@h:9200"), "http://tok@h:9200");
        assert_eq!(display_url("user:pw@h:1"), "user:***@h:1");
        // a password with `@` and `:` in it
        assert_eq!(display_url("http://u:p@:s@h/x"), "http://u:***@:***@h/x");
        // malformed: no `://`
        assert_eq!(display_url("http//u:s3cret@h"), "http//u:***@h");
        assert_eq!(
            redact_text("error sending request for url (http://u:s3cret@127.0.0.1:1/_bulk): x"),
            "error sending request for url (http://u:***@127.0.0.1:1/_bulk): x"
        );
        assert_eq!(
            redact_text("a `ftp://u:p@h` and `https://v:q@g:1`"),
            "a `ftp://u:***@h` and `https://v:***@g:1`"
        );
        assert_eq!(redact_text("no password: a@c d"), "no password: a@c d");
    }

    #[test]
    fn config_lines_hide_credentials() {
        assert_eq!(redact_line("pasword = \"s3cret\""), "pasword = \"***\"");
        assert_eq!(redact_line("api_key = 'k'"), "api_key = \"***\"");
        assert_eq!(
            redact_line("url = \"http://u:s3cret@h:1\""),
            "url = \"http://u:***@h:1\""
        );
        assert_eq!(redact_line("type = \"file\""), "type = \"file\"");
        assert_eq!(
            redact_line("headers = { \"X-A\" = \"1\", Authorization = \"Bearer t0k\" }"),
            "headers = \"***\""
        );
    }

    #[test]
    fn userinfo_is_percent_decoded() {
        assert_eq!(percent_decode("p%40ss%3A").as_deref(), Some("p@ss:"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
    }
}
