//! Credentials seen in protocol traces are masked before a record leaves the parser.
//!
//! SASL exchanges span several lines (`AUTH LOGIN`, then the user and the password as two
//! base64 lines after `334` challenges), so redaction follows the exchange: the caller keeps one
//! [`Exchange`] per session handle (receive logs) or per message id (senderlog).
//!
//! That state lives only in memory and is lost on a restart, a new file (day or hour
//! rollover) or when the session map is cleared, so the rules are conservative where state is
//! missing (see docs/records.md, "Redaction"):
//! - during a SASL exchange every client line is secret until the server's final
//!   (non-challenge) reply, whatever the mechanism (LOGIN, NTLM's two messages, GSSAPI, ...);
//! - a lone client line that looks like a SASL token (base64) and is not a known command word
//!   is a secret even when no exchange is known ([`looks_like_secret_token`]);
//! - text whose shape is unknown (unparsed lines) goes through [`scrub_unparsed`], which masks
//!   after a credential verb found anywhere in the line.

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "[REDACTED]";

/// Where a SASL exchange stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Sasl {
    #[default]
    Off,
    /// A one-step mechanism sent its initial response: only a further challenge (`334`, `+`)
    /// makes the next client line secret.
    Armed,
    /// Every client line is secret until the server's final reply.
    On,
}

/// IMAP `LOGIN` whose arguments come as literals on the following client lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Login {
    #[default]
    None,
    /// The next client line starts with the user name, this many bytes long.
    UserLiteral(usize),
    /// The next client line is the password.
    Password,
}

/// What one session (or one message in senderlog) is in the middle of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    sasl: Sasl,
    login: Login,
    /// SMTP DATA phase (after `354`): client lines are message content, not commands.
    data: bool,
}

impl Exchange {
    /// Client lines are expected to carry secrets.
    pub fn is_pending(&self) -> bool {
        self.sasl == Sasl::On || self.login != Login::None
    }

    pub fn in_data(&self) -> bool {
        self.data
    }

    /// Nothing worth remembering: the session map need not keep it.
    pub fn is_idle(&self) -> bool {
        *self == Exchange::default()
    }

    /// A server line of the same session: a challenge (`334`, `+`) keeps the exchange going,
    /// `354` opens the DATA phase, an untagged IMAP `* ` line changes nothing, and any other
    /// reply ends whatever was going on.
    pub fn server_line(&mut self, text: &str) {
        let t = text.trim_start();
        if t.starts_with("354") {
            *self = Exchange {
                data: true,
                ..Exchange::default()
            };
            return;
        }
        let challenge = t.starts_with("334") || t == "+" || t.starts_with("+ ");
        if challenge {
            if self.sasl == Sasl::Armed {
                self.sasl = Sasl::On;
            }
            return;
        }
        if t.starts_with("* ") {
            return;
        }
        *self = Exchange::default();
    }

    /// A client line: returns the line with secrets masked, and advances the exchange.
    pub fn client_line<'a>(&mut self, text: &'a str) -> Cow<'a, str> {
        match self.login {
            Login::UserLiteral(n) => {
                self.login = Login::None;
                return match text.get(..n) {
                    Some(_) => self.after_login_user(text, n),
                    // A literal longer than the line, or cut inside a character: the line is
                    // all user name and maybe password; keep none of it.
                    None => {
                        self.login = Login::Password;
                        Cow::Borrowed(MASK)
                    }
                };
            }
            Login::Password => {
                self.login = Login::None;
                return Cow::Borrowed(MASK);
            }
            Login::None => {}
        }
        if self.sasl == Sasl::On {
            if text.trim() == "*" {
                // SASL cancel
                self.sasl = Sasl::Off;
                return Cow::Borrowed(text);
            }
            return Cow::Borrowed(MASK);
        }
        if self.data {
            if text.trim() == "." {
                self.data = false;
            }
            return Cow::Borrowed(text);
        }
        self.command(text)
    }

    fn command<'a>(&mut self, text: &'a str) -> Cow<'a, str> {
        let mut words = WordIter::new(text);
        let Some((first_at, first)) = words.next() else {
            return Cow::Borrowed(text);
        };
        // IMAP lines start with a tag; the command is the second word. Offsets are taken from
        // where each word really starts: the line may begin with spaces, and the first word
        // may be followed by a multi-byte character, so `first.len()` is not a position.
        let (verb, rest_start, tagged) = if is_secret_verb(first) {
            (first, first_at + first.len(), false)
        } else if is_imap_tag(first)
            && let Some((pos, second)) = words.next()
            && is_imap_secret_verb(second)
        {
            (second, pos + second.len(), true)
        } else {
            return Cow::Borrowed(text);
        };
        if verb.eq_ignore_ascii_case("AUTH") || verb.eq_ignore_ascii_case("AUTHENTICATE") {
            self.sasl(text, rest_start)
        } else if verb.eq_ignore_ascii_case("LOGIN") {
            self.imap_login(text, rest_start)
        } else if tagged {
            Cow::Borrowed(text)
        } else if verb.eq_ignore_ascii_case("PASS") {
            mask_after_words(text, rest_start, 0)
        } else {
            // APOP user digest
            mask_after_words(text, rest_start, 1)
        }
    }

    fn sasl<'a>(&mut self, text: &'a str, rest_start: usize) -> Cow<'a, str> {
        let Some(rest) = text.get(rest_start..) else {
            return Cow::Borrowed(MASK);
        };
        let mut it = WordIter::new(rest);
        let Some((mech_at, mech)) = it.next() else {
            return Cow::Borrowed(text);
        };
        if !is_mechanism_name(mech) {
            // `AUTH <something that is no mechanism>`: a client that sent its token in the
            // wrong place. Mask it and whatever follows.
            self.sasl = Sasl::On;
            return mask_from(text, rest_start + mech_at);
        }
        let initial = it.next().is_some();
        self.sasl = if initial && is_one_step(mech) {
            Sasl::Armed
        } else {
            Sasl::On
        };
        if initial {
            mask_after_words(text, rest_start, 1)
        } else {
            Cow::Borrowed(text)
        }
    }

    /// `tag LOGIN user password`: each may be an atom, a quoted string or a literal `{n}`
    /// whose bytes follow on the next line.
    fn imap_login<'a>(&mut self, text: &'a str, start: usize) -> Cow<'a, str> {
        let Some(rest) = text.get(start..) else {
            return Cow::Borrowed(MASK);
        };
        let trimmed = rest.trim_start_matches(' ');
        let user_start = start + (rest.len() - trimmed.len());
        if trimmed.is_empty() {
            return Cow::Borrowed(text);
        }
        let user_len = if let Some(q) = trimmed.strip_prefix('"') {
            match closing_quote(q) {
                Some(e) => e + 2,
                None => return mask_from(text, user_start),
            }
        } else if trimmed.starts_with('{') || trimmed.starts_with("~{") {
            return match literal_len(trimmed) {
                Some(n) => {
                    self.login = Login::UserLiteral(n);
                    Cow::Borrowed(text)
                }
                None => mask_from(text, user_start),
            };
        } else {
            trimmed.find(' ').unwrap_or(trimmed.len())
        };
        self.after_login_user(text, user_start + user_len)
    }

    /// The rest of a LOGIN line after the user name, which ends at `at`.
    fn after_login_user<'a>(&mut self, text: &'a str, at: usize) -> Cow<'a, str> {
        let Some(tail) = text.get(at..) else {
            return Cow::Borrowed(MASK);
        };
        let t = tail.trim();
        if t.is_empty() {
            // The password may follow on the next line (a literal user, then CRLF and the
            // rest of the command): be conservative and take the next line as secret.
            self.login = Login::Password;
            return Cow::Borrowed(text);
        }
        if literal_len(t).is_some() {
            self.login = Login::Password;
            return Cow::Borrowed(text);
        }
        match text.get(..at) {
            Some(head) => Cow::Owned(format!("{head} {MASK}")),
            None => Cow::Borrowed(MASK),
        }
    }
}

/// The byte index in `q` (the text after an opening `"`) of the closing quote.
fn closing_quote(q: &str) -> Option<usize> {
    let mut esc = false;
    for (i, c) in q.char_indices() {
        match c {
            '\\' if !esc => esc = true,
            '"' if !esc => return Some(i),
            _ => esc = false,
        }
    }
    None
}

/// `{n}`, `{n+}`, `~{n}` (IMAP literals): `n`, if that is all of `s`.
fn literal_len(s: &str) -> Option<usize> {
    let s = s.strip_prefix('~').unwrap_or(s);
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let digits = inner.strip_suffix('+').unwrap_or(inner);
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `text` up to `at`, then the mask.
fn mask_from(text: &str, at: usize) -> Cow<'_, str> {
    match text.get(..at) {
        Some(head) => Cow::Owned(format!("{head}{MASK}")),
        None => Cow::Borrowed(MASK),
    }
}

/// Keeps `keep` words after `start` and masks the rest of the line.
fn mask_after_words(text: &str, start: usize, keep: usize) -> Cow<'_, str> {
    let Some(rest) = text.get(start..) else {
        return Cow::Borrowed(MASK);
    };
    match WordIter::new(rest).nth(keep) {
        Some((pos, _)) => mask_from(text, start + pos),
        None => Cow::Borrowed(text),
    }
}

/// Verbs that carry a credential when they are the first word of a line.
fn is_secret_verb(w: &str) -> bool {
    ["AUTH", "AUTHENTICATE", "PASS", "APOP", "LOGIN"]
        .iter()
        .any(|v| v.eq_ignore_ascii_case(w))
}

/// An IMAP tag: any atom (RFC 3501 `tag`), letters-only ones included (`a`, `A`), but not a
/// command word of SMTP or POP3 (so that `HELO login` is not read as an IMAP LOGIN).
fn is_imap_tag(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 64
        && w.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']' | b'+'
                )
        })
        && !crate::parse::kinds::trace::is_smtp_or_pop3_verb(w)
}

fn is_imap_secret_verb(w: &str) -> bool {
    w.eq_ignore_ascii_case("LOGIN") || w.eq_ignore_ascii_case("AUTHENTICATE")
}

const MECHANISMS: &[&str] = &[
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "DIGEST-MD5",
    "NTLM",
    "GSSAPI",
    "GSS-SPNEGO",
    "XOAUTH2",
    "XOAUTH",
    "OAUTHBEARER",
    "EXTERNAL",
    "ANONYMOUS",
    "SCRAM-SHA-1",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS",
    "MSN",
    "KERBEROS_V4",
    "SRP",
    "OTP",
    "SKEY",
];

/// A SASL mechanism name: a known one (any case), or an upper-case name of the RFC 4422
/// alphabet. A base64 token almost always has lower-case letters, so it is not taken for one.
fn is_mechanism_name(w: &str) -> bool {
    MECHANISMS.iter().any(|m| m.eq_ignore_ascii_case(w))
        || (w.len() <= 20
            && w.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_'))
}

/// Mechanisms whose initial response is the whole exchange unless the server challenges.
fn is_one_step(mech: &str) -> bool {
    [
        "PLAIN",
        "XOAUTH2",
        "XOAUTH",
        "OAUTHBEARER",
        "EXTERNAL",
        "ANONYMOUS",
    ]
    .iter()
    .any(|m| m.eq_ignore_ascii_case(mech))
}

/// Whether a whole client line, seen without any known exchange, must be taken for a SASL
/// response: one word of the base64 alphabet (padding only at the end, a length base64 can
/// have), at least 4 characters, and not a command word of SMTP, POP3 or IMAP (`QUIT`, `DATA`,
/// `NOOP`, `DONE`, ...). `*` (cancel) and `=` (empty response) carry nothing.
pub fn looks_like_secret_token(line: &str) -> bool {
    let t = line.trim_matches([' ', '\t', '\r']);
    if t.len() < 4 {
        return false;
    }
    let body = t.trim_end_matches('=');
    let pad = t.len() - body.len();
    // the alphabet first: it rejects most text at its first space
    if pad > 2
        || body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return false;
    }
    let base64_length = if pad > 0 {
        t.len() % 4 == 0
    } else {
        body.len() % 4 != 1
    };
    base64_length && !crate::parse::kinds::trace::is_known_word(t)
}

/// Text whose shape is unknown (a line that did not parse, a continuation with nothing to
/// continue, a broken prefix): each line is masked if it is a lone SASL-looking token, after
/// the first credential verb found anywhere in it (`PASS x`, `APOP u x`, `AUTH m x`,
/// `LOGIN u x`), and inside quotes that hold one of those.
pub fn scrub_unparsed(text: &str) -> Cow<'_, str> {
    if !text.contains('\n') {
        return scrub_line(text);
    }
    match map_lines(text, 0, |_, line| scrub_line(line)) {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(text),
    }
}

/// `text` with each line from byte `start` on replaced by `f(index, line)`; `None` when no
/// line changed. Nothing is copied until a line does change: most records have no secret.
pub fn map_lines<'a>(
    text: &'a str,
    start: usize,
    mut f: impl FnMut(usize, &'a str) -> Cow<'a, str>,
) -> Option<String> {
    let body = text.get(start..)?;
    let mut out: Option<String> = None;
    let mut pos = start;
    for (i, line) in body.split('\n').enumerate() {
        let r = f(i, line);
        let same = match &r {
            Cow::Borrowed(b) => {
                (b.as_ptr() == line.as_ptr() && b.len() == line.len()) || *b == line
            }
            Cow::Owned(o) => o == line,
        };
        match &mut out {
            Some(o) => {
                o.push('\n');
                o.push_str(&r);
            }
            None if !same => {
                // everything before this line, the newline before it included
                let mut o = String::with_capacity(text.len() + 16);
                o.push_str(text.get(..pos)?);
                o.push_str(&r);
                out = Some(o);
            }
            None => {}
        }
        pos += line.len() + 1;
    }
    out
}

fn scrub_line(line: &str) -> Cow<'_, str> {
    if looks_like_secret_token(line) {
        return Cow::Borrowed(MASK);
    }
    let b = line.as_bytes();
    let sep = |c: u8| {
        matches!(
            c,
            b' ' | b'\t' | b',' | b':' | b';' | b'"' | b'[' | b']' | b'<' | b'>' | b'(' | b')'
        )
    };
    let mut i = 0;
    while i < b.len() {
        if sep(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !sep(b[i]) {
            i += 1;
        }
        // word boundaries are ASCII separators, so both ends are char boundaries
        let Some(w) = line.get(start..i) else { break };
        let keep = if w.eq_ignore_ascii_case("PASS") {
            0
        } else if ["APOP", "AUTH", "AUTHENTICATE", "LOGIN"]
            .iter()
            .any(|v| v.eq_ignore_ascii_case(w))
        {
            1
        } else {
            continue;
        };
        let masked = mask_after_words(line, i, keep);
        if matches!(masked, Cow::Owned(_)) {
            return masked;
        }
    }
    scrub_quoted(line)
}

/// An error reply that echoes what the client sent (E-Post's
/// `500 5.5.2 command unrecognized: "%s"`) may echo a password sent out of turn: inside such
/// a reply, quoted text that is a lone SASL-looking token or starts with a credential verb is
/// masked.
pub fn scrub_echo(line: &str) -> Cow<'_, str> {
    let t = line.trim_start();
    let code = crate::parse::kinds::reply_code(t);
    let mut w = t.split(' ');
    let _tag = w.next();
    let imap_fail = matches!(w.next(), Some("BAD" | "NO"));
    if code.is_some_and(|c| c >= 400) || t.starts_with("-ERR") || imap_fail {
        scrub_quoted(line)
    } else {
        Cow::Borrowed(line)
    }
}

fn scrub_quoted(line: &str) -> Cow<'_, str> {
    if !line.contains('"') {
        return Cow::Borrowed(line);
    }
    let mut out = String::new();
    let mut last = 0;
    let mut rest_at = 0;
    while let Some(open) = line.get(rest_at..).and_then(|r| r.find('"')) {
        let inner_at = rest_at + open + 1;
        let Some(close) = line.get(inner_at..).and_then(|r| r.find('"')) else {
            break;
        };
        let inner_end = inner_at + close;
        let inner = line.get(inner_at..inner_end).unwrap_or("");
        let masked = if looks_like_secret_token(inner) {
            Some(Cow::Borrowed(MASK))
        } else {
            let mut x = Exchange::default();
            match x.client_line(inner) {
                Cow::Owned(m) => Some(Cow::Owned(m)),
                Cow::Borrowed(m) if m != inner => Some(Cow::Borrowed(m)),
                Cow::Borrowed(_) => None,
            }
        };
        if let Some(m) = masked {
            out.push_str(line.get(last..inner_at).unwrap_or(""));
            out.push_str(&m);
            last = inner_end;
        }
        rest_at = inner_end + 1;
    }
    if last == 0 {
        return Cow::Borrowed(line);
    }
    out.push_str(line.get(last..).unwrap_or(""));
    Cow::Owned(out)
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
        // split at ASCII spaces only, so both ends are char boundaries
        self.s.get(start..self.pos).map(|w| (start, w))
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

    #[derive(Clone, Copy)]
    enum Step {
        /// a client line and what it must become
        C(&'static str, &'static str),
        /// a server line
        S(&'static str),
    }
    use Step::{C, S};

    /// Every credential-carrying exchange of SMTP, POP3 and IMAP, step by step: what each
    /// client line becomes, with the server lines in between.
    #[test]
    // Long on purpose: a table of every SASL mechanism's exchange, step by step; the table is the
    // test.
    fn every_mechanism_masks_its_secrets_and_nothing_else() {
        let table: &[(&str, &[Step])] = &[
            (
                "AUTH PLAIN initial response",
                &[
                    C("AUTH PLAIN AGJvYgBodW50ZXIy", "AUTH PLAIN [REDACTED]"),
                    S("235 2.0.0 Authentication successful."),
                    C("MAIL FROM:<a@b>", "MAIL FROM:<a@b>"),
                ],
            ),
            (
                "AUTH PLAIN on the next line",
                &[
                    C("AUTH PLAIN", "AUTH PLAIN"),
                    S("334 "),
                    C("AGJvYgBodW50ZXIy", MASK),
                    S("235 ok"),
                    C("QUIT", "QUIT"),
                ],
            ),
            (
                "AUTH LOGIN user then password",
                &[
                    C("AUTH LOGIN", "AUTH LOGIN"),
                    S("334 VXNlcm5hbWU6"),
                    C("Ym9i", MASK),
                    S("334 UGFzc3dvcmQ6"),
                    C("aHVudGVyMg==", MASK),
                    S("235 ok"),
                    C("RSET", "RSET"),
                ],
            ),
            (
                "AUTH LOGIN with the user as initial response",
                &[
                    C("AUTH LOGIN Ym9i", "AUTH LOGIN [REDACTED]"),
                    S("334 UGFzc3dvcmQ6"),
                    C("aHVudGVyMg==", MASK),
                    S("535 5.7.0 Authentication failed."),
                    C("QUIT", "QUIT"),
                ],
            ),
            (
                "AUTH NTLM: type 1, challenge, type 3",
                &[
                    C("AUTH NTLM", "AUTH NTLM"),
                    S("334 "),
                    C("TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=", MASK),
                    S("334 TlRMTVNTUAACAAAADAAMADAAAAA1goniAAAAAAAAAAA="),
                    C(
                        "TlRMTVNTUAADAAAAGAAYAEAAAAAYABgAWAAAAAAAAAAAAAAAaHVudGVy",
                        MASK,
                    ),
                    S("235 2.7.0 Authentication successful"),
                    C("MAIL FROM:<a@b>", "MAIL FROM:<a@b>"),
                ],
            ),
            (
                "AUTH NTLM with type 1 as initial response",
                &[
                    C("AUTH NTLM TlRMTVNTUAABAAAAB4IIAA==", "AUTH NTLM [REDACTED]"),
                    S("334 TlRMTVNTUAACAAAADAAMADAAAAA="),
                    C("TlRMTVNTUAADAAAAGAAYAEAAAAAYABgA", MASK),
                    S("235 ok"),
                ],
            ),
            (
                "GSSAPI, several rounds",
                &[
                    C("AUTH GSSAPI", "AUTH GSSAPI"),
                    S("334 "),
                    C("YIIB9wYJKoZIhvcSAQICAQBuggHmMIIB4qADAgEF", MASK),
                    S("334 YGwGCSqGSIb3EgECAgIAb10wW6ADAgEF"),
                    C("", MASK),
                    S("334 YDMGCSqGSIb3EgECAgIBAAD/////"),
                    C(
                        "YDMGCSqGSIb3EgECAgIBAAD/////3LQBHXTpFfZgrejpLlLImPwkhbfa2QteAQAg",
                        MASK,
                    ),
                    S("235 ok"),
                ],
            ),
            (
                "CRAM-MD5",
                &[
                    C("AUTH CRAM-MD5", "AUTH CRAM-MD5"),
                    S("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UuZXhhbXBsZS5uZXQ+"),
                    C("Ym9iIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", MASK),
                    S("235 ok"),
                ],
            ),
            (
                "XOAUTH2 bearer token, then the error challenge",
                &[
                    C(
                        "AUTH XOAUTH2 dXNlcj1ib2JAZXhhbXBsZS5qcAFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YgEB",
                        "AUTH XOAUTH2 [REDACTED]",
                    ),
                    S("334 eyJzdGF0dXMiOiI0MDEifQ=="),
                    C("AQ==", MASK),
                    S("535 5.7.8 Username and Password not accepted."),
                    C("QUIT", "QUIT"),
                ],
            ),
            (
                "POP3 USER and PASS",
                &[
                    C("USER bob@example.jp", "USER bob@example.jp"),
                    S("+OK"),
                    C("PASS hunter2", "PASS [REDACTED]"),
                    S("+OK"),
                    C("STAT", "STAT"),
                ],
            ),
            (
                "POP3 APOP",
                &[C(
                    "APOP bob@example.jp 2b5f0c9e6f1d8a7c3e4b5a69788f90e1",
                    "APOP bob@example.jp [REDACTED]",
                )],
            ),
            (
                "POP3 AUTH PLAIN with + challenge",
                &[
                    C("AUTH PLAIN", "AUTH PLAIN"),
                    S("+ "),
                    C("AGJvYgBodW50ZXIy", MASK),
                    S("+OK Logged in."),
                    C("LIST", "LIST"),
                ],
            ),
            (
                "IMAP LOGIN, tags without digits",
                &[
                    C("a LOGIN bob hunter2", "a LOGIN bob [REDACTED]"),
                    S("a OK LOGIN completed"),
                    C("A login bob hunter2", "A login bob [REDACTED]"),
                    C(
                        r#"tag LOGIN "bob" "hunter 2""#,
                        r#"tag LOGIN "bob" [REDACTED]"#,
                    ),
                    C("a2 SELECT INBOX", "a2 SELECT INBOX"),
                ],
            ),
            (
                "IMAP LOGIN with literals, synchronising",
                &[
                    C("a1 LOGIN {3}", "a1 LOGIN {3}"),
                    S("+ Ready for additional command text"),
                    C("bob {7}", "bob {7}"),
                    S("+ Ready for additional command text"),
                    C("hunter2", MASK),
                    S("a1 OK LOGIN completed"),
                    C("a2 SELECT INBOX", "a2 SELECT INBOX"),
                ],
            ),
            (
                "IMAP LOGIN with LITERAL+ in one go",
                &[
                    C("a1 LOGIN {3+}", "a1 LOGIN {3+}"),
                    C("bob {7+}", "bob {7+}"),
                    C("hunter2", MASK),
                    S("a1 OK"),
                ],
            ),
            (
                "IMAP LOGIN: literal user, quoted password",
                &[
                    C("a1 LOGIN {3}", "a1 LOGIN {3}"),
                    S("+ go ahead"),
                    C(r#"bob "hunter2""#, "bob [REDACTED]"),
                    S("a1 NO"),
                ],
            ),
            (
                "IMAP LOGIN: user atom, literal password",
                &[
                    C("a1 LOGIN bob {7}", "a1 LOGIN bob {7}"),
                    S("+ go ahead"),
                    C("hunter2", MASK),
                    S("a1 OK"),
                ],
            ),
            (
                "IMAP AUTHENTICATE PLAIN",
                &[
                    C("a AUTHENTICATE PLAIN", "a AUTHENTICATE PLAIN"),
                    S("+ "),
                    C("AGJvYgBodW50ZXIy", MASK),
                    S("a OK"),
                    C("b LOGOUT", "b LOGOUT"),
                ],
            ),
            (
                "IMAP AUTHENTICATE with initial response (SASL-IR)",
                &[C(
                    "a AUTHENTICATE PLAIN AGJvYgBodW50ZXIy",
                    "a AUTHENTICATE PLAIN [REDACTED]",
                )],
            ),
            (
                "SASL cancel",
                &[
                    C("AUTH LOGIN", "AUTH LOGIN"),
                    S("334 VXNlcm5hbWU6"),
                    C("*", "*"),
                    S("501 5.0.0 AUTH aborted"),
                    C("QUIT", "QUIT"),
                ],
            ),
            (
                "a token where the mechanism should be",
                &[C("AUTH AGJvYgBodW50ZXIy", "AUTH [REDACTED]")],
            ),
            (
                "DATA content is not masked",
                &[
                    C("DATA", "DATA"),
                    S("354 Start mail input; end with <CRLF>.<CRLF>"),
                    C(
                        "Subject: pass the login form",
                        "Subject: pass the login form",
                    ),
                    C("PASS hunter2 is prose here", "PASS hunter2 is prose here"),
                    C(
                        "dGhpcyBpcyBhbiBhdHRhY2htZW50",
                        "dGhpcyBpcyBhbiBhdHRhY2htZW50",
                    ),
                    C(".", "."),
                    S("250 2.0.0 Message received ok."),
                    C("AUTH PLAIN AGJvYgBodW50ZXIy", "AUTH PLAIN [REDACTED]"),
                ],
            ),
        ];
        for (name, steps) in table {
            let mut x = Exchange::default();
            for (i, step) in steps.iter().enumerate() {
                match *step {
                    C(line, want) => {
                        assert_eq!(client(&mut x, line), want, "{name}, step {i}");
                    }
                    S(line) => x.server_line(line),
                }
            }
        }
    }

    #[test]
    fn lone_tokens_are_secrets_but_command_words_are_not() {
        for t in [
            "aHVudGVyMg==",
            "Ym9i",
            "hunter2",
            "YWxpY2VAZXhhbXBsZS5uZXQ=",
            "dGFybw",
        ] {
            assert!(looks_like_secret_token(t), "{t}");
        }
        for t in [
            "QUIT",
            "DATA",
            "NOOP",
            "RSET",
            "STAT",
            "UIDL",
            "CAPA",
            "DONE",
            "STARTTLS",
            "*",
            "=",
            ".",
            "XYZZY",
            "abc",
            "two words",
            "a=b",
            "CloseClient Started.:SOCKET.C",
            "aGk===",
            "aGk=x",
        ] {
            assert!(!looks_like_secret_token(t), "{t}");
        }
    }

    #[test]
    fn unparsed_text_is_scrubbed_after_credential_verbs_anywhere() {
        for (raw, want) in [
            (
                "bob from 192.168.0.4 PASS hunter2 garbage",
                "bob from 192.168.0.4 PASS [REDACTED]",
            ),
            (
                "[30/Nov/2017:08:20:4], 0145a008, AUTH PLAIN AGJvYgBodW50ZXIy",
                "[30/Nov/2017:08:20:4], 0145a008, AUTH PLAIN [REDACTED]",
            ),
            ("x a LOGIN bob hunter2", "x a LOGIN bob [REDACTED]"),
            (
                "u from 1.2.3.4 APOP u 2b5f0c9e",
                "u from 1.2.3.4 APOP u [REDACTED]",
            ),
            ("aHVudGVyMg==", MASK),
            ("ok\nPASS hunter2\nok", "ok\nPASS [REDACTED]\nok"),
            ("nothing to see here", "nothing to see here"),
        ] {
            assert_eq!(scrub_unparsed(raw), want, "{raw}");
        }
    }

    #[test]
    fn error_replies_echoing_a_secret_are_masked() {
        assert_eq!(
            scrub_echo(r#"500 5.5.2 command unrecognized: "aHVudGVyMg==""#),
            r#"500 5.5.2 command unrecognized: "[REDACTED]""#
        );
        assert_eq!(
            scrub_echo(r#"500 5.5.2 command unrecognized: "PASS hunter2""#),
            r#"500 5.5.2 command unrecognized: "PASS [REDACTED]""#
        );
        assert_eq!(
            scrub_echo(r#"500 5.5.2 command unrecognized: "XYZZY""#),
            r#"500 5.5.2 command unrecognized: "XYZZY""#
        );
        // a success reply is left as it is
        assert_eq!(scrub_echo(r#"250 "aHVudGVyMg==""#), r#"250 "aHVudGVyMg==""#);
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
