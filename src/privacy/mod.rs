//! Privacy: what of a record's personal data leaves the machine (`[privacy]`,
//! `docs/privacy.md`).
//!
//! A [`Policy`] says, per field, `keep`, `drop`, `hash` (keyed HMAC-SHA256), `hash-local`
//! (the local part of an address hashed, the domain kept) or `truncate` (an IP to its
//! network); free-text fields are `rewrite` (the values other fields hide are replaced inside
//! them too) or `drop`. It is applied once to every record, after parsing and before any
//! sink encodes it, so every sink and the dead-letter file (which keeps the record as it was
//! sent) see the same rewritten record.

mod apply;
pub mod field;
mod text;
pub mod token;

pub use field::{Class, Field, Mode};
pub use token::Key;

/// The `[privacy]` section, checked: one mode per field (those not named keep their
/// default) and the key when some field hashes.
#[derive(Debug, Clone)]
pub struct Policy {
    modes: [Mode; Field::ALL.len()],
    /// Named in the config (the others took their default).
    named: [bool; Field::ALL.len()],
    key: Option<Key>,
}

impl Policy {
    /// `rules` as named in the config; a field named twice takes the last. `key` is needed
    /// when any effective mode hashes ([`Policy::needs_key`]): without it hashing modes fall
    /// back to `drop` (the config refuses that case before it gets here).
    pub fn new(rules: &[(Field, Mode)], key: Option<&[u8]>) -> Policy {
        let mut modes = [Mode::Keep; Field::ALL.len()];
        let mut named = [false; Field::ALL.len()];
        for f in Field::ALL {
            if f.class() == field::Class::Text {
                modes[f.index()] = Mode::Rewrite;
            }
        }
        for &(f, m) in rules {
            modes[f.index()] = m;
            named[f.index()] = true;
        }
        // The maildb fields hold addresses: unless named, they hide as much as the address
        // fields do (else an address hashed in `email.from.address` would be in clear there).
        let addr = modes[Field::FromAddress.index()].max(modes[Field::ToAddress.index()]);
        for f in [Field::MaildbIn, Field::MaildbMatch] {
            if !named[f.index()] {
                modes[f.index()] = addr;
            }
        }
        Policy {
            modes,
            named,
            key: key.map(Key::new),
        }
    }

    pub fn mode(&self, f: Field) -> Mode {
        self.modes[f.index()]
    }

    /// Whether the config named the field (else its mode is the default).
    pub fn named(&self, f: Field) -> bool {
        self.named[f.index()]
    }

    /// Some field hashes: a key is required.
    pub fn needs_key(&self) -> bool {
        self.modes.iter().any(|m| m.hashes())
    }

    /// The mode of text found inside free text that belongs to no field of the record: the
    /// strictest of the fields of its class.
    pub fn text_mode(&self, class: Class) -> Mode {
        Field::ALL
            .into_iter()
            .filter(|f| f.class() == class && !matches!(f, Field::MaildbIn | Field::MaildbMatch))
            .map(|f| self.mode(f))
            .max()
            .unwrap_or(Mode::Keep)
    }

    /// What `value` of `class` becomes under `mode`; `None` = dropped.
    pub fn replace(&self, class: Class, mode: Mode, value: &str) -> Option<String> {
        match (mode, &self.key) {
            (Mode::Keep | Mode::Rewrite, _) => Some(value.to_string()),
            (Mode::Drop, _) => None,
            (Mode::Truncate, _) => token::truncate(value),
            (Mode::Hash, Some(k)) if class == Class::Ip => Some(k.ip_token(value)),
            (Mode::Hash, Some(k)) if class == Class::Text => Some(k.token(value)),
            (Mode::Hash, Some(k)) => Some(token::hash(k, value)),
            (Mode::HashLocal, Some(k)) => Some(token::hash_local(k, value)),
            // refused by the config; never the value in clear
            (Mode::Hash | Mode::HashLocal, None) => None,
        }
    }

    /// What a value to find in records (a `trace` query) becomes under the field's mode:
    /// the token the shipper wrote for it. `None` if the field drops it.
    pub fn query_token(&self, f: Field, value: &str) -> Option<String> {
        self.replace(f.class(), self.mode(f), value)
    }
}

#[cfg(test)]
mod tests;
