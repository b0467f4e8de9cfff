//! `check`'s report of what personal data leaves the machine: per sink, each personal field
//! it sends and what `[privacy]` makes of it.

use epost_shipper::config::{Config, LokiLine, SinkConfig};
use epost_shipper::privacy::{Field, Mode, Policy};

/// The fields a sink sends, of those `[privacy]` can name. Loki sends the line (`message`,
/// or the whole record as JSON) and two personal fields as structured metadata; the others
/// send every field.
fn sent_by(sink: &SinkConfig) -> (Vec<Field>, &'static str) {
    match sink {
        SinkConfig::Loki(l) if l.line_format == LokiLine::Message => {
            let mut f = vec![Field::Message];
            if l.structured_metadata {
                f.extend([Field::ClientIp, Field::UserName]);
                (
                    f,
                    "the line, and client.ip and user.name as structured metadata",
                )
            } else {
                (f, "the line only")
            }
        }
        _ => (Field::ALL.to_vec(), "every field"),
    }
}

pub fn print(config: &Config) {
    let policy = config.source.privacy.as_deref();
    match policy {
        Some(p) if p.hides_anything() => {
            println!("personal fields leaving the machine ([privacy] on, see docs/privacy.md):")
        }
        Some(_) => println!(
            "personal fields leaving the machine ([privacy] present but hides nothing: every field as written):"
        ),
        None => println!(
            "personal fields leaving the machine ([privacy] off: every field as written, see docs/privacy.md):"
        ),
    }
    let off = Policy::new(&[], None);
    let p = policy.unwrap_or(&off);
    for s in &config.sinks {
        let (fields, what) = sent_by(&s.config);
        println!("  sink {} ({}): {what}", s.name, s.config.type_name());
        for f in fields {
            let mode = p.mode(f);
            // without [privacy] text is not rewritten: say so rather than "rewritten"
            let shown = if policy.is_none() || !p.hides_anything() {
                Mode::Keep.shown()
            } else {
                mode.shown()
            };
            let default = if p.named(f) { "" } else { " (default)" };
            println!("    {:<22} {shown}{default}", f.name());
        }
    }
}
