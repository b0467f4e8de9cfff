use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mail")).unwrap();
    let path = dir.path().join("shipper.toml");
    std::fs::write(&path, text).unwrap();
    let r = Config::load(&path);
    // keep the folder alive for the assertions on paths
    std::mem::forget(dir);
    r
}

fn err(text: &str) -> Located {
    match load(text) {
        Err(ConfigError::At(l)) => *l,
        other => panic!("expected a located error, got {other:?}"),
    }
}

#[test]
fn minimal_config_has_defaults() {
    let c = load("[source]\nworkdir = 'mail'\n\n[[sink]]\ntype = \"stdout\"\n").unwrap();
    assert_eq!(c.source.kinds.len(), Kind::ALL.len());
    assert_eq!(c.source.encoding, Encoding::Cp932);
    assert_eq!(c.source.zone.to_string(), "Asia/Tokyo");
    assert!(c.source.redact);
    assert_eq!(c.sinks[0].name, "stdout-1");
    assert!(c.source.workdirs[0].ends_with("mail"));
}

#[test]
fn unknown_key_names_line_key_and_closest() {
    let e = err("[source]\nworkdir = 'mail'\nstart_att = \"end\"\n\n[[sink]]\ntype = \"stdout\"\n");
    assert_eq!(e.line, 3);
    assert_eq!(e.key, "source.start_att");
    assert_eq!(e.hint.as_deref(), Some("did you mean `start_at`?"));
    assert!(e.to_string().contains("shipper.toml:3:1"), "{e}");
}

#[test]
fn unknown_sink_key() {
    let e = err("[source]\nworkdir = 'mail'\n\n[[sink]]\ntype = \"file\"\npaht = \"out.ndjson\"\n");
    assert_eq!(e.line, 6, "{e}");
    assert_eq!(e.hint.as_deref(), Some("did you mean `path`?"), "{e}");
}

#[test]
fn wrong_type_and_bad_values() {
    let e =
        err("[source]\nworkdir = 'mail'\nmax_open_files = \"many\"\n[[sink]]\ntype = \"stdout\"\n");
    assert_eq!(e.line, 3, "{e}");
    assert_eq!(e.key, "source.max_open_files");
    let e = err("[source]\nworkdir = 'nope'\n[[sink]]\ntype = \"stdout\"\n");
    assert_eq!(e.line, 2);
    assert_eq!(e.key, "source.workdir");
    assert!(e.message.contains("does not exist"));
    let e = err(
        "[source]\nworkdir = 'mail'\ntimezone = \"Mars/Olympus\"\n[[sink]]\ntype = \"stdout\"\n",
    );
    assert_eq!((e.line, e.key.as_str()), (3, "source.timezone"));
    let e = err("[source]\nworkdir = 'mail'\nkinds = [\"inlgo\"]\n[[sink]]\ntype = \"stdout\"\n");
    assert_eq!(e.hint.as_deref(), Some("did you mean `inlog`?"));
    let e = err("[source]\nworkdir = 'mail'\n[[sink]]\ntype = \"kafka\"\n");
    assert_eq!(e.line, 4, "{e}");
    let e = err("[source]\nworkdir = 'mail'\n");
    assert_eq!(e.key, "sink");
}

#[cfg(unix)]
#[test]
fn unwritable_state_dir() {
    let e =
        err("[source]\nworkdir = 'mail'\nstate_dir = '/proc/nope'\n[[sink]]\ntype = \"stdout\"\n");
    assert_eq!((e.line, e.key.as_str()), (3, "source.state_dir"));
}
