//! Credentials seen in protocol traces are masked before a record leaves the parser.
//!
//! SASL exchanges span several lines (`AUTH LOGIN`, then the user and the password as two
//! base64 lines after `334` challenges), so redaction follows the exchange: the caller keeps one
//! [`Exchange`] per session handle (receive logs) or per message id (senderlog).

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Client lines still expected to carry secrets in a SASL exchange.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    pending: u8,
}

impl Exchange {
    pub fn is_pending(&self) -> bool {
        self.pending > 0
    }

    /// A server line of the same session: a challenge (`334`, `+`) keeps the exchange going,
    /// any other reply ends it.
    pub fn server_line(&mut self, text: &str) {
        let t = text.trim_start();
        let challenge = t.starts_with("334") || t == "+" || t.starts_with("+ ");
        if !challenge {
            self.pending = 0;
        }
    }

    /// A client line: returns the line with secrets masked, and advances the exchange.
    pub fn client_line<'a>(&mut self, text: &'a str) -> Cow<'a, str> {
        if self.pending > 0 {
            if text.trim() == "*" {
                // SASL cancel
                self.pending = 0;
                return Cow::Borrowed(text);
            }
            self.pending -= 1;
            return Cow::Borrowed(MASK);
        }
        let mut words = WordIter::new(text);
        let Some((first_at, first)) = words.next() else {
            return Cow::Borrowed(text);
        };
        // IMAP lines start with a tag; the command is the second word. Offsets are taken from
        // where each word really starts: the line may begin with spaces, and the first word
        // may be followed by a multi-byte character, so `first.len()` is not a position.
        let (verb, rest_start, tagged) = if is_imap_tag(first)
            && let Some((pos, second)) = words.next()
            && is_imap_secret_verb(second)
        {
            (second, pos + second.len(), true)
        } else {
            (first, first_at + first.len(), false)
        };
        let rest = &text[rest_start..];
        if verb.eq_ignore_ascii_case("AUTH") || verb.eq_ignore_ascii_case("AUTHENTICATE") {
            self.sasl(text, rest_start, rest)
        } else if verb.eq_ignore_ascii_case("PASS") {
            mask_after_words(text, rest_start, 0)
        } else if verb.eq_ignore_ascii_case("APOP") {
            mask_after_words(text, rest_start, 1)
        } else if verb.eq_ignore_ascii_case("LOGIN") && tagged {
            mask_imap_login(text, rest_start)
        } else {
            Cow::Borrowed(text)
        }
    }

    fn sasl<'a>(&mut self, text: &'a str, rest_start: usize, rest: &str) -> Cow<'a, str> {
        let mut it = WordIter::new(rest);
        let Some((_, mech)) = it.next() else {
            return Cow::Borrowed(text);
        };
        let initial = it.next().is_some();
        let lines = if mech.eq_ignore_ascii_case("LOGIN") {
            2
        } else {
            1
        };
        self.pending = if initial { lines - 1 } else { lines };
        if initial {
            mask_after_words(text, rest_start, 1)
        } else {
            Cow::Borrowed(text)
        }
    }
}

/// Keeps `keep` words after `start` and masks the rest of the line.
fn mask_after_words(text: &str, start: usize, keep: usize) -> Cow<'_, str> {
    let rest = &text[start..];
    let mut it = WordIter::new(rest);
    let mut cut = None;
    for i in 0..=keep {
        match it.next() {
            Some((pos, w)) if i == keep => {
                let _ = w;
                cut = Some(start + pos);
            }
            Some(_) => {}
            None => break,
        }
    }
    match cut {
        Some(c) => Cow::Owned(format!("{}{}", &text[..c], MASK)),
        None => Cow::Borrowed(text),
    }
}

/// `tag LOGIN user password`: the user may be quoted and hold spaces; everything after it is
/// the password.
fn mask_imap_login(text: &str, start: usize) -> Cow<'_, str> {
    let rest = &text[start..];
    let trimmed = rest.trim_start();
    let user_start = start + (rest.len() - trimmed.len());
    let user_len = if let Some(q) = trimmed.strip_prefix('"') {
        let mut esc = false;
        let mut end = None;
        for (i, c) in q.char_indices() {
            match c {
                '\\' if !esc => esc = true,
                '"' if !esc => {
                    end = Some(i + 2);
                    break;
                }
                _ => esc = false,
            }
        }
        match end {
            Some(e) => e,
            None => return Cow::Owned(format!("{}{}", &text[..user_start], MASK)),
        }
    } else {
        trimmed.find(' ').unwrap_or(trimmed.len())
    };
    let after_user = user_start + user_len;
    if text[after_user..].trim().is_empty() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("{} {}", &text[..after_user], MASK))
}

fn is_imap_tag(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 16
        && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        && w.bytes().any(|b| b.is_ascii_digit())
}

fn is_imap_secret_verb(w: &str) -> bool {
    w.eq_ignore_ascii_case("LOGIN") || w.eq_ignore_ascii_case("AUTHENTICATE")
}

/// Space-separated words with their byte positions.
struct WordIter<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> WordIter<'a> {
    fn new(s: &'a str) -> Self {
        WordIter { s, pos: 0 }
    }
}

impl<'a> Iterator for WordIter<'a> {
    type Item = (usize, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.s.as_bytes();
        while self.pos < b.len() && b[self.pos] == b' ' {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let start = self.pos;
        while self.pos < b.len() && b[self.pos] != b' ' {
            self.pos += 1;
        }
        Some((start, &self.s[start..self.pos]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(x: &mut Exchange, t: &str) -> String {
        x.client_line(t).into_owned()
    }

    #[test]
    fn auth_plain_inline() {
        let mut x = Exchange::default();
        assert_eq!(
            client(
                &mut x,
                "AUTH PLAIN AHRhcm9AZXhhbXBsZS5qcABzZWNyZXQtcGFzcw=="
            ),
            "AUTH PLAIN [REDACTED]"
        );
        assert!(!x.is_pending());
        assert_eq!(client(&mut x, "MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }

    #[test]
    fn auth_plain_next_line() {
        let mut x = Exchange::default();
        assert_eq!(client(&mut x, "AUTH PLAIN"), "AUTH PLAIN");
        x.server_line("334 ");
        assert_eq!(client(&mut x, "AHRhcm8AcGFzcw=="), MASK);
        x.server_line("235 2.0.0 Authentication successful.");
        assert_eq!(client(&mut x, "MAIL FROM:<a@b>"), "MAIL FROM:<a@b>");
    }

    #[test]
    fn auth_login_two_lines() {
        let mut x = Exchange::default();
        assert_eq!(client(&mut x, "AUTH LOGIN"), "AUTH LOGIN");
        x.server_line("334 VXNlcm5hbWU6");
        assert_eq!(client(&mut x, "dGFyb0BleGFtcGxlLmpw"), MASK);
        x.server_line("334 UGFzc3dvcmQ6");
        assert_eq!(client(&mut x, "c2VjcmV0LXBhc3M="), MASK);
        x.server_line("235 ok");
        assert_eq!(client(&mut x, "QUIT"), "QUIT");
    }

    #[test]
    fn auth_login_with_initial_user() {
        let mut x = Exchange::default();
        assert_eq!(
            client(&mut x, "AUTH LOGIN dGFyb0BleGFtcGxlLmpw"),
            "AUTH LOGIN [REDACTED]"
        );
        x.server_line("334 UGFzc3dvcmQ6");
        assert_eq!(client(&mut x, "c2VjcmV0LXBhc3M="), MASK);
    }

    #[test]
    fn rejected_exchange_ends() {
        let mut x = Exchange::default();
        client(&mut x, "AUTH LOGIN");
        x.server_line("334 VXNlcm5hbWU6");
        client(&mut x, "dXNlcg==");
        x.server_line("535 5.7.0 Authentication failed.");
        assert_eq!(client(&mut x, "QUIT"), "QUIT");
    }

    #[test]
    fn pop3() {
        let mut x = Exchange::default();
        assert_eq!(client(&mut x, "USER bob@example.jp"), "USER bob@example.jp");
        assert_eq!(client(&mut x, "PASS hunter2"), "PASS [REDACTED]");
        assert_eq!(
            client(
                &mut x,
                "APOP bob@example.jp 2b5f0c9e6f1d8a7c3e4b5a69788f90e1"
            ),
            "APOP bob@example.jp [REDACTED]"
        );
        assert_eq!(client(&mut x, "PASS"), "PASS");
    }

    #[test]
    fn imap_login() {
        let mut x = Exchange::default();
        assert_eq!(
            client(&mut x, r#"0001 LOGIN "taro@example.jp" "s3cret pass""#),
            r#"0001 LOGIN "taro@example.jp" [REDACTED]"#
        );
        assert_eq!(
            client(&mut x, "a2 login taro secret"),
            "a2 login taro [REDACTED]"
        );
        assert_eq!(
            client(&mut x, "0003 AUTHENTICATE PLAIN dGFybwB0YXJvAHB3"),
            "0003 AUTHENTICATE PLAIN [REDACTED]"
        );
        assert_eq!(client(&mut x, "0004 SELECT INBOX"), "0004 SELECT INBOX");
    }

    /// A space before the first word and a CP932 character after it: the old code sliced at
    /// `first.len()` counted from the start of the line, inside the multi-byte character.
    #[test]
    fn leading_space_before_multibyte_word_does_not_panic() {
        let mut x = Exchange::default();
        assert_eq!(client(&mut x, " a\u{7a93}"), " a\u{7a93}");
        assert_eq!(
            client(&mut x, "  PASS \u{7a93}\u{53e3}"),
            "  PASS [REDACTED]"
        );
        assert_eq!(client(&mut x, " \u{7a93}x"), " \u{7a93}x");
        assert_eq!(client(&mut x, " AUTH PLAIN dG9r"), " AUTH PLAIN [REDACTED]");
    }

    #[test]
    fn sasl_cancel() {
        let mut x = Exchange::default();
        client(&mut x, "AUTH LOGIN");
        x.server_line("334 VXNlcm5hbWU6");
        assert_eq!(client(&mut x, "*"), "*");
        assert!(!x.is_pending());
    }
}
