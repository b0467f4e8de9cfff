//! The `[privacy]` section: field names (quoted dotted keys, or nested tables) to modes, and
//! the HMAC key. Every mistake is a config error naming the file, line and key: a privacy
//! setting that silently does less than it says would ship personal data in clear.

use std::sync::Arc;

use super::error::{ConfigError, closest};
use super::sinks::Secret;
use super::validate::Validator;
use crate::privacy::{Field, Mode, Policy};

/// A key shorter than this is refused: the tokens of guessable values (addresses) are only as
/// safe as the key is hard to guess.
pub const MIN_KEY_BYTES: usize = 16;

pub(super) fn policy(
    v: &Validator<'_>,
    table: Option<toml::Table>,
) -> Result<Option<Arc<Policy>>, ConfigError> {
    let Some(table) = table else {
        return Ok(None);
    };
    let mut rules = Vec::new();
    let mut key_raw = None;
    for (k, value) in table {
        if k == "key" {
            let Some(s) = value.as_str() else {
                return Err(v.err(
                    "privacy.key",
                    "`key` must be a string".into(),
                    Some(key_hint()),
                ));
            };
            key_raw = Some(s.to_string());
            continue;
        }
        rules_of(v, &k, &value, &mut rules)?;
    }
    let unkeyed = Policy::new(&rules, None);
    let key = match key_raw {
        Some(raw) => Some(key(v, &raw)?),
        None if unkeyed.needs_key() => {
            let f = rules
                .iter()
                .find(|(_, m)| m.hashes())
                .map_or("a field", |(f, _)| f.name());
            return Err(v.err(
                "privacy.key",
                format!("`{f}` is hashed but [privacy] has no `key`"),
                Some(key_hint()),
            ));
        }
        None => None,
    };
    Ok(Some(Arc::new(Policy::new(&rules, key.as_deref()))))
}

fn key_hint() -> String {
    format!(
        "key = \"file:C:\\\\ProgramData\\\\epost-shipper\\\\privacy.key\" or \"env:NAME\": at least {MIN_KEY_BYTES} bytes, the same on every shipper whose tokens must match (e.g. `openssl rand -hex 32`)"
    )
}

/// The key's bytes (the file's text or the variable's value, trimmed).
fn key(v: &Validator<'_>, raw: &str) -> Result<Vec<u8>, ConfigError> {
    let err = |message: String| v.err("privacy.key", message, Some(key_hint()));
    if !(raw.starts_with("file:") || raw.starts_with("env:")) {
        return Err(err(
            "the privacy key must come from a file (`file:PATH`) or the environment (`env:NAME`), not the config itself".into(),
        ));
    }
    let secret = Secret::resolve(raw).map_err(err)?;
    let bytes = secret.expose().as_bytes();
    if bytes.is_empty() {
        return Err(err(format!(
            "the privacy key from `{raw}` is empty: hashing with it would hide nothing"
        )));
    }
    if bytes.len() < MIN_KEY_BYTES {
        return Err(err(format!(
            "the privacy key from `{raw}` has {} bytes: at least {MIN_KEY_BYTES} are needed",
            bytes.len()
        )));
    }
    Ok(bytes.to_vec())
}

/// One entry: `"email.from.address" = "hash"`, or a table of them (`[privacy.email.from]`).
fn rules_of(
    v: &Validator<'_>,
    name: &str,
    value: &toml::Value,
    rules: &mut Vec<(Field, Mode)>,
) -> Result<(), ConfigError> {
    let key = format!("privacy.{name}");
    if let Some(t) = value.as_table() {
        for (k, inner) in t {
            rules_of(v, &format!("{name}.{k}"), inner, rules)?;
        }
        return Ok(());
    }
    let Some(field) = Field::from_name(name) else {
        let names = Field::ALL.map(Field::name);
        return Err(v.err(
            &key,
            format!("unknown field `{name}` in [privacy]"),
            Some(match closest(name, names.iter().copied()) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("fields: key, {}", names.join(", ")),
            }),
        ));
    };
    let Some(text) = value.as_str() else {
        return Err(v.err(
            &key,
            format!("the mode of `{name}` must be a string"),
            Some(format!("one of: {}", field.modes().join(", "))),
        ));
    };
    let allowed = field.modes();
    let Some(mode) = Mode::from_name(text).filter(|m| field.allows(*m)) else {
        let why = match Mode::from_name(text) {
            Some(_) => format!("`{name}` cannot be `{text}`"),
            None => format!("unknown mode `{text}` for `{name}`"),
        };
        return Err(v.err(
            &key,
            why,
            Some(match closest(text, allowed.iter().copied()) {
                Some(c) if c != text => format!("did you mean `{c}`? ({})", allowed.join(", ")),
                _ => format!("`{name}` takes: {}", allowed.join(", ")),
            }),
        ));
    };
    rules.push((field, mode));
    Ok(())
}
