//! A policy applied to one record.
//!
//! Order matters: the fields that hold one value (addresses, users, IPs, host names) are
//! replaced first, and each raw value becomes a needle; then the text fields that are
//! dropped or hashed (their raw text becomes a needle too); last the text fields that are
//! rewritten, `message` among them, with every needle and the patterns of `text`.

use std::borrow::Cow;

use super::Policy;
use super::field::{Class, Field, Mode};
use super::text::{self, Needle};
use super::token::DROPPED;
use crate::record::Record;

impl text::Replace for Policy {
    fn pattern(&self, class: Class, value: &str) -> Option<String> {
        match self.text_mode(class) {
            Mode::Keep | Mode::Rewrite => None,
            m => Some(
                self.replace(class, m, value)
                    .unwrap_or_else(|| DROPPED.to_string()),
            ),
        }
    }

    fn hides(&self, class: Class) -> bool {
        !matches!(self.text_mode(class), Mode::Keep | Mode::Rewrite)
    }
}

impl Policy {
    /// Whether the policy changes anything at all (a `[privacy]` that keeps every field
    /// costs nothing per record).
    pub fn hides_anything(&self) -> bool {
        Field::ALL
            .into_iter()
            .any(|f| !matches!(self.mode(f), Mode::Keep | Mode::Rewrite))
    }

    /// The record as it may leave the machine.
    pub fn apply<'a>(&self, rec: &Record<'a>) -> Record<'a> {
        let mut out = rec.clone();
        let mut needles: Vec<Needle> = Vec::new();
        let x = &mut out.fields;
        // pop3log and imap4log: `USER x`, `APOP x digest`, `LOGIN x ****` name the account in
        // their arguments, also where the record has no `user.name` (a failed login)
        if x.command.as_deref().is_some_and(text::is_verb) {
            let mut user = x
                .args
                .as_deref()
                .and_then(|a| a.split_whitespace().next())
                .map(|u| u.trim_matches('"'))
                .filter(|u| !(u.is_empty() || *u == "-" || u.starts_with('{')))
                .map(|u| Cow::Owned(u.to_string()));
            self.one(Field::UserName, &mut user, &mut needles);
        }
        for (f, v) in [
            (Field::UserName, &mut x.user_name),
            (Field::ClientIp, &mut x.client_ip),
            (Field::DestinationIp, &mut x.destination_ip),
            (Field::ClientDomain, &mut x.client_domain),
            (Field::DestinationDomain, &mut x.destination_domain),
            (Field::ServerDomain, &mut x.server_domain),
            (Field::SmtpHelo, &mut x.smtp_helo),
            (Field::MaildbIn, &mut x.maildb_in),
            (Field::MaildbMatch, &mut x.maildb_match),
            // text fields that do not keep their text: what they hid is hidden in the others
            (Field::Subject, &mut x.subject),
            (Field::ErrorMessage, &mut x.error_message),
            (Field::ProtocolArgs, &mut x.args),
        ] {
            self.one(f, v, &mut needles);
        }
        self.list(Field::FromAddress, &mut x.from, &mut needles);
        self.list(Field::ToAddress, &mut x.to, &mut needles);
        self.list(Field::FilterWarning, &mut x.filter_warning, &mut needles);
        // longest first: an address goes as a whole before a user name inside it
        needles.sort_by_key(|n| std::cmp::Reverse(n.lower.len()));
        let x = &mut out.fields;
        for (f, v) in [
            (Field::Subject, &mut x.subject),
            (Field::ErrorMessage, &mut x.error_message),
            (Field::ProtocolArgs, &mut x.args),
        ] {
            if self.mode(f) == Mode::Rewrite
                && let Some(t) = v
            {
                *v = Some(rewritten(t, &needles, self));
            }
        }
        if self.mode(Field::FilterWarning) == Mode::Rewrite {
            for t in &mut x.filter_warning {
                *t = rewritten(t, &needles, self);
            }
        }
        out.message = match self.mode(Field::Message) {
            Mode::Drop => Cow::Borrowed(DROPPED),
            _ => rewritten(&out.message, &needles, self),
        };
        out
    }

    /// One value of `f`: replaced per its mode, its raw text kept as a needle.
    fn one<'a>(&self, f: Field, v: &mut Option<Cow<'a, str>>, needles: &mut Vec<Needle>) {
        let mode = self.mode(f);
        if matches!(mode, Mode::Keep | Mode::Rewrite) {
            return;
        }
        let Some(raw) = v.as_deref().filter(|s| !s.is_empty()) else {
            return;
        };
        let new = self.replace(f.class(), mode, raw);
        needles.push(Needle {
            lower: raw.to_ascii_lowercase(),
            with: new.clone().unwrap_or_else(|| DROPPED.to_string()),
        });
        *v = new.map(Cow::Owned);
    }

    fn list<'a>(&self, f: Field, list: &mut Vec<Cow<'a, str>>, needles: &mut Vec<Needle>) {
        let mode = self.mode(f);
        if matches!(mode, Mode::Keep | Mode::Rewrite) {
            return;
        }
        let mut kept = Vec::with_capacity(list.len());
        for raw in list.drain(..) {
            let new = self.replace(f.class(), mode, &raw);
            needles.push(Needle {
                lower: raw.to_ascii_lowercase(),
                with: new.clone().unwrap_or_else(|| DROPPED.to_string()),
            });
            kept.extend(new.map(Cow::Owned));
        }
        *list = kept;
    }
}

/// The text rewritten, borrowed as before when nothing in it changed.
fn rewritten<'a>(t: &Cow<'a, str>, needles: &[Needle], p: &Policy) -> Cow<'a, str> {
    match t {
        Cow::Borrowed(s) => text::rewrite(s, needles, p),
        Cow::Owned(s) => Cow::Owned(text::rewrite(s, needles, p).into_owned()),
    }
}
