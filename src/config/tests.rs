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

#[test]
fn sink_names_are_safe_file_names() {
    for ok in [
        "es",
        "es-1",
        "a.b_c",
        "COM10",
        "console",
        "x".repeat(64).as_str(),
    ] {
        assert!(valid_sink_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "../x",
        "a/b",
        "a\\b",
        "C:x",
        "CON",
        "con",
        "Nul.txt",
        "aux.x.y",
        "COM1",
        "lpt9.log",
        ".x",
        "a b",
        "a\u{7}",
        "é",
        &"x".repeat(65),
    ] {
        assert!(valid_sink_name(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn errors_in_later_sinks_name_their_own_table() {
    let text = "[source]\nworkdir = 'mail'\n[[sink]]\ntype = \"stdout\"\n[[sink]]\ntype = \"stdout\"\n[[sink]]\ntype = \"file\"\npath = 'x'\nbatch_max_events = 1\n";
    let e = err(text);
    assert_eq!(
        (e.line, e.key.as_str()),
        (10, "sink[3].batch_max_events"),
        "{e}"
    );
    let e = err(
        "[source]\nworkdir = 'mail'\n[[sink]]\ntype = \"stdout\"\n[[sink]]\nname = \"b\"\n[metrics]\nlisten = \"\"\n",
    );
    assert_eq!((e.line, e.key.as_str()), (5, "sink[2].type"), "{e}");
}

#[test]
fn url_credentials_become_basic_auth() {
    let c = load("[source]\nworkdir = 'mail'\n[[sink]]\ntype = \"elasticsearch\"\nurl = \"https://u:p%40ss@h:9200\"\n").unwrap();
    let SinkConfig::Elasticsearch(es) = &c.sinks[0].config else {
        panic!()
    };
    assert_eq!(es.url.list(), vec!["https://h:9200/".to_string()]);
    assert_eq!(es.user.as_deref(), Some("u"));
    assert_eq!(es.password.as_ref().map(Secret::expose), Some("p@ss"));
    assert!(c.warnings.is_empty());
    let c = load("[source]\nworkdir = 'mail'\n[[sink]]\ntype = \"loki\"\nurl = \"http://h:3100\"\nbearer_token = \"t\"\n").unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

#[cfg(unix)]
#[test]
fn files_named_by_the_config_are_read_with_a_limit() {
    assert!(read_limited(Path::new("/dev/zero"), 1024).is_err());
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big");
    std::fs::write(&p, vec![b'x'; 2000]).unwrap();
    assert!(read_limited(&p, 1999).is_err());
    assert_eq!(read_limited(&p, 2000).unwrap().len(), 2000);
}

#[test]
fn index_patterns_are_checked_and_never_panic_at_run_time() {
    use crate::config::format_index;
    use crate::sink::elasticsearch::BulkEncoder;
    let es = |index: &str| {
        format!(
            "[source]\nworkdir = 'mail'\n[[sink]]\ntype = \"elasticsearch\"\nurl = \"http://h:9200\"\nmode = \"index\"\nindex = \"{index}\"\n"
        )
    };
    for bad in [
        "epost-%Q",
        "epost-%",
        "epost-%z",
        "epost-%Y/%m",
        "-epost-%Y",
    ] {
        let e = err(&es(bad));
        assert_eq!((e.line, e.key.as_str()), (7, "sink[1].index"), "{bad}: {e}");
    }
    assert!(load(&es("epost-{kind}-%Y.%m.%d")).is_ok());
    // chrono's `to_string` panics on these; the encoder falls back to the default pattern
    assert_eq!(format_index("x-%Q", 0), None);
    assert_eq!(format_index("x-%z", 0), None);
    assert_eq!(format_index("X-%Y", 0).as_deref(), Some("x-1970"));
    let enc = BulkEncoder::new(EsMode::Index, "default", "epost-{kind}-%Q");
    assert_eq!(enc.index_for(Kind::Inlog, 0), "epost-inlog-1970.01.01");
}
