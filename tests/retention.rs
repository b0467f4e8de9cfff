//! Retention (`cleanup`): what it compresses or deletes, and above all what it never touches.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::{Harness, append, inlog_line};
use epost_shipper::checkpoint::{FileState, Snapshot, Store};
use epost_shipper::config::{Config, RetentionAction};
use epost_shipper::parse::time::Date;
use epost_shipper::retention::{self, Action, DatedBy, Decision, Keep, Outcome, Report};
use epost_shipper::tail::fingerprint::Fingerprint;

const BIN: &str = env!("CARGO_BIN_EXE_epost-shipper");

fn today() -> Date {
    Date::new(2017, 12, 31).unwrap()
}

fn lines(n: u32, day: u32) -> String {
    (1..=n).map(|i| inlog_line(i + day * 1000, day)).collect()
}

/// Moves a file's modification time `secs` into the past, past the quiet period.
fn age(path: &Path, secs: u64) {
    set_mtime(path, SystemTime::now() - Duration::from_secs(secs));
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

const TWO_HOURS: u64 = 2 * 3600;

/// The checkpoint entry the tailer writes for a file read to `offset`: fingerprint of the
/// first min(256, size) bytes.
fn entry(path: &Path, offset: u64) -> FileState {
    let mut f = std::fs::File::open(path).unwrap();
    let fp = Fingerprint::of(&mut f).unwrap();
    entry_with(path, offset, fp)
}

fn entry_with(path: &Path, offset: u64, fp: Fingerprint) -> FileState {
    FileState {
        path: path.to_string_lossy().into_owned(),
        kind: "inlog".into(),
        host: "H1".into(),
        fingerprint: fp.hex(),
        fp_len: fp.len,
        offset,
        size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        updated_ms: 1,
    }
}

fn shipped(path: &Path) -> FileState {
    entry(path, std::fs::metadata(path).unwrap().len())
}

fn save(h: &Harness, files: Vec<FileState>) -> Snapshot {
    let snap = Snapshot {
        version: 1,
        written_ms: 1,
        generation: 1,
        files,
        sinks: BTreeMap::new(),
    };
    Store::new(&h.state).save(&snap).unwrap();
    Store::new(&h.state).load().0
}

fn config(h: &Harness, extra: &str, keep_days: u32, action: RetentionAction) -> Config {
    let mut c = h.config(extra);
    c.retention.keep_days = keep_days;
    c.retention.action = action;
    c
}

/// Every file under `root` with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

fn decision<'a>(actions: &'a [Action], path: &Path) -> &'a Decision {
    &actions
        .iter()
        .find(|a| a.path == path)
        .unwrap_or_else(|| panic!("{} not planned: {actions:#?}", path.display()))
        .decision
}

fn outcome<'a>(report: &'a Report, path: &Path) -> &'a Outcome {
    &report
        .entries
        .iter()
        .find(|e| e.action.path == path)
        .unwrap_or_else(|| panic!("{} not in report", path.display()))
        .outcome
}

fn kept(o: &Outcome) -> Option<Keep> {
    match o {
        Outcome::Kept(k) => Some(k.clone()),
        _ => None,
    }
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gz(path: &Path) -> PathBuf {
    retention::gz_path(path)
}

#[test]
fn gzip_round_trip_replaces_the_original_with_a_verified_copy() {
    let h = Harness::new();
    let old = h.log("inlog", "H1", "171101.log");
    append(&old, &lines(3000, 1));
    let newest = h.log("inlog", "H1", "171231.log");
    append(&newest, &lines(2, 31));
    let original = std::fs::read(&old).unwrap();
    age(&old, TWO_HOURS);
    age(&newest, TWO_HOURS);
    let mtime = std::fs::metadata(&old).unwrap().modified().unwrap();
    let snap = save(&h, vec![shipped(&old), shipped(&newest)]);
    let cfg = config(&h, "", 30, RetentionAction::Gzip);

    let plan = retention::plan(&cfg, &snap, today());
    assert_eq!(decision(&plan, &old), &Decision::Gzip);
    assert_eq!(decision(&plan, &newest), &Decision::Keep(Keep::TooRecent));
    let a = plan.iter().find(|a| a.path == old).unwrap();
    assert_eq!((a.age_days, a.dated_by), (60, DatedBy::Name));

    let report = retention::apply(plan, false);
    let Outcome::Compressed { gz: got, gz_size } = outcome(&report, &old) else {
        panic!("{report:#?}");
    };
    assert_eq!(got, &gz(&old));
    assert!(!old.exists(), "the original is removed");
    assert_eq!(gunzip(got), original, "the copy is exactly the original");
    assert_eq!(std::fs::metadata(got).unwrap().len(), *gz_size);
    assert!(*gz_size < original.len() as u64 / 5, "{gz_size}");
    assert_eq!(
        std::fs::metadata(got).unwrap().modified().unwrap(),
        mtime,
        "the copy keeps the original's time"
    );
    assert_eq!(report.compressed(), 1);
    assert_eq!(report.failed(), 0);
    assert_eq!(report.bytes_freed(), original.len() as u64 - gz_size);
    // nothing else in the folder: no temp file left behind, the newest untouched
    let names: Vec<String> = std::fs::read_dir(old.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, ["171101.log.gz", "171231.log"]);
    // a second pass finds nothing more to do: the .gz is not a log to tail or clean
    let again = retention::apply(retention::plan(&cfg, &snap, today()), false);
    assert_eq!(
        (again.compressed(), again.deleted(), again.failed()),
        (0, 0, 0)
    );
}

#[test]
fn delete_removes_a_shipped_file() {
    let h = Harness::new();
    let old = h.log("inlog", "H1", "171101.log");
    append(&old, &lines(10, 1));
    let newest = h.log("inlog", "H1", "171231.log");
    append(&newest, &lines(2, 31));
    age(&old, TWO_HOURS);
    let size = std::fs::metadata(&old).unwrap().len();
    let snap = save(&h, vec![shipped(&old)]);
    let report = retention::apply(
        retention::plan(&config(&h, "", 30, RetentionAction::Delete), &snap, today()),
        false,
    );
    assert!(matches!(outcome(&report, &old), Outcome::Deleted));
    assert!(!old.exists());
    assert!(!gz(&old).exists());
    assert!(newest.exists());
    assert_eq!(report.bytes_freed(), size);
}

#[test]
fn dry_run_and_action_none_change_nothing() {
    let h = Harness::new();
    let old = h.log("inlog", "H1", "171101.log");
    append(&old, &lines(10, 1));
    append(&h.log("inlog", "H1", "171231.log"), &lines(2, 31));
    age(&old, TWO_HOURS);
    let snap = save(&h, vec![shipped(&old)]);
    let before = tree(&h.mail);
    for action in [RetentionAction::Gzip, RetentionAction::Delete] {
        let cfg = config(&h, "", 30, action);
        let report = retention::apply(retention::plan(&cfg, &snap, today()), true);
        assert!(report.dry_run);
        match (action, outcome(&report, &old)) {
            (RetentionAction::Gzip, Outcome::WouldCompress) => {
                assert_eq!(report.compressed(), 1)
            }
            (RetentionAction::Delete, Outcome::WouldDelete) => assert_eq!(report.deleted(), 1),
            (_, o) => panic!("{o:?}"),
        }
        assert_eq!(tree(&h.mail), before);
    }
    // action = "none" reports the file as eligible and leaves it
    let cfg = config(&h, "", 30, RetentionAction::None);
    let report = retention::apply(retention::plan(&cfg, &snap, today()), false);
    assert!(matches!(
        outcome(&report, &old),
        Outcome::Kept(Keep::RetentionOff)
    ));
    assert_eq!(tree(&h.mail), before);
}

#[test]
fn keep_days_counts_from_the_date_in_the_name_else_the_modification_time() {
    let h = Harness::new();
    let mk = |kind: &str, name: &str| {
        let p = h.log(kind, "H1", name);
        append(&p, &lines(3, 1));
        age(&p, TWO_HOURS);
        p
    };
    let d1130 = mk("inlog", "171130.log"); // 31 days before 12-31
    let d1201 = mk("inlog", "171201.log"); // 30 days
    let d1230 = mk("inlog", "171230.log"); // 1 day
    let d1231 = mk("inlog", "171231.log"); // today, newest
    let s1130 = mk("senderlog", "171130_23.log");
    let s1201 = mk("senderlog", "171201_00.log");
    mk("senderlog", "171231_09.log");
    // no date in the name: the modification date, in the configured zone
    let undated_old = mk("maildblog", "a.log");
    let undated_new = mk("maildblog", "b.log");
    mk("maildblog", "z.log");
    let tokyo = |y, m, d| {
        // noon in Tokyo
        let days = Date::new(y, m, d).unwrap().days();
        SystemTime::UNIX_EPOCH + Duration::from_secs((days * 86_400 + 3 * 3600) as u64)
    };
    set_mtime(&undated_old, tokyo(2017, 11, 30));
    set_mtime(&undated_new, tokyo(2017, 12, 1));
    let all = [
        &d1130,
        &d1201,
        &d1230,
        &d1231,
        &s1130,
        &s1201,
        &undated_old,
        &undated_new,
    ];
    let snap = save(&h, all.iter().map(|p| shipped(p)).collect());

    let plan = retention::plan(&config(&h, "", 30, RetentionAction::Gzip), &snap, today());
    for (p, eligible) in [
        (&d1130, true),
        (&d1201, false),
        (&d1230, false),
        (&s1130, true),
        (&s1201, false),
        (&undated_old, true),
        (&undated_new, false),
    ] {
        let d = decision(&plan, p);
        if eligible {
            assert_eq!(d, &Decision::Gzip, "{}", p.display());
        } else {
            assert_eq!(d, &Decision::Keep(Keep::TooRecent), "{}", p.display());
        }
    }
    let u = plan.iter().find(|a| a.path == undated_old).unwrap();
    assert_eq!((u.dated_by, u.age_days), (DatedBy::Modified, 31));

    // keep_days = 0: everything before today goes, today's file never
    let plan = retention::plan(&config(&h, "", 0, RetentionAction::Gzip), &snap, today());
    assert_eq!(decision(&plan, &d1230), &Decision::Gzip);
    assert_eq!(decision(&plan, &d1201), &Decision::Gzip);
    assert_eq!(decision(&plan, &d1231), &Decision::Keep(Keep::TooRecent));
}

/// Builds a work folder full of files that must survive, next to one that may go, and runs
/// cleanup over it with every action and keep_days = 0.
#[test]
fn cleanup_never_touches_an_unshipped_file() {
    for action in [RetentionAction::Gzip, RetentionAction::Delete] {
        let h = Harness::new();
        let mut cps = Vec::new();
        let mut expect: Vec<(PathBuf, Keep)> = Vec::new();
        let file = |name: &str, text: &str| {
            let p = h.log("inlog", "H1", name);
            append(&p, text);
            age(&p, TWO_HOURS);
            p
        };

        // partly shipped: the last line not yet acknowledged
        let p = file("171101.log", &lines(20, 1));
        let last = inlog_line(1020, 1).len() as u64;
        let size = std::fs::metadata(&p).unwrap().len();
        cps.push(entry(&p, size - last));
        expect.push((
            p,
            Keep::NotShipped {
                offset: size - last,
            },
        ));

        // shipped, then grown: E-Post wrote a late line after the checkpoint
        let p = file("171102.log", &lines(20, 2));
        let size = std::fs::metadata(&p).unwrap().len();
        cps.push(shipped(&p));
        append(&p, &inlog_line(9999, 2));
        age(&p, TWO_HOURS);
        expect.push((p, Keep::NotShipped { offset: size }));

        // replaced under the same name by a file of the same size: the checkpoint is of
        // another file
        let p = file("171103.log", &lines(20, 3));
        cps.push(shipped(&p));
        let other = lines(20, 3).replace("alice", "carol");
        std::fs::write(&p, other).unwrap();
        age(&p, TWO_HOURS);
        expect.push((p, Keep::Replaced));

        // no checkpoint entry at all
        let p = file("171104.log", &lines(20, 4));
        expect.push((p, Keep::NoCheckpoint));

        // a partial last line (no line end yet): the checkpoint stays before it
        let complete = lines(5, 5);
        let p = file(
            "171105.log",
            &format!("{complete}<B0000000001@mx> [05/Nov/2017:08:00:00] 1.2.3.4 h a@b"),
        );
        cps.push(entry(&p, complete.len() as u64));
        expect.push((
            p,
            Keep::NotShipped {
                offset: complete.len() as u64,
            },
        ));

        // shorter than the checkpoint (truncated and rewritten): read again from the start
        let p = file("171106.log", &lines(20, 6));
        let mut cp = shipped(&p);
        std::fs::write(&p, &lines(20, 6).as_bytes()[..cp.offset as usize - 100]).unwrap();
        age(&p, TWO_HOURS);
        cp.offset = cp.size;
        let offset = cp.offset;
        cps.push(cp);
        expect.push((p, Keep::Truncated { offset }));

        // registered at its end without being read (start_at = "end"): no fingerprint
        let p = file("171107.log", &lines(20, 7));
        let size = std::fs::metadata(&p).unwrap().len();
        cps.push(entry_with(&p, size, Fingerprint { hash: 0, len: 0 }));
        expect.push((p, Keep::Unverifiable { fp_len: 0 }));

        // a fingerprint of only the first bytes proves little about a longer file
        let p = file("171108.log", &lines(20, 8));
        let size = std::fs::metadata(&p).unwrap().len();
        let fp = Fingerprint::of_len(&mut std::fs::File::open(&p).unwrap(), 10).unwrap();
        cps.push(entry_with(&p, size, fp));
        expect.push((p, Keep::Unverifiable { fp_len: 10 }));

        // fully shipped but written to a moment ago: E-Post may still hold it open
        let p = h.log("inlog", "H1", "171109.log");
        append(&p, &lines(20, 9));
        cps.push(shipped(&p));
        expect.push((p, Keep::Active));

        // the newest file of its folder, old and shipped: the one E-Post appends to
        let p = h.log("inlog", "H2", "171101.log");
        append(&p, &lines(20, 1));
        age(&p, TWO_HOURS);
        cps.push(shipped(&p));
        expect.push((p, Keep::Newest));

        // the control: old, quiet, fully shipped, not the newest. The only file that may go.
        let control = file("171110.log", &lines(20, 10));
        cps.push(shipped(&control));
        let newest = file("171231.log", &lines(3, 31));
        cps.push(shipped(&newest));

        // a quarantine pair, checkpointed as the tailer does: never touched
        let vdir = h.mail.join("viruslog");
        std::fs::create_dir_all(&vdir).unwrap();
        let rcp = vdir.join("B0000000001.RCP");
        let msg = vdir.join("B0000000001.MSG");
        std::fs::write(
            &rcp,
            "Message-ID: <B0000000001@mx>\r\nReturn-path: <a@b>\r\nRecipient: <c@d>\r\n",
        )
        .unwrap();
        std::fs::write(&msg, "Subject: x\r\n\r\nbody\r\n").unwrap();
        age(&rcp, 400 * 86_400);
        age(&msg, 400 * 86_400);
        cps.push(shipped(&rcp));

        // a kind that is not shipped at all (not in `kinds`), old and with an entry
        let fail = h.log("faillog", "H1", "171101.log");
        append(
            &fail,
            "B0000000009@mx send fail on [01/Nov/2017:00:00:01] from a@b to c@d [550 x]\r\n",
        );
        age(&fail, TWO_HOURS);
        append(&h.log("faillog", "H1", "171231.log"), "x\r\n");
        cps.push(shipped(&fail));

        let snap = save(&h, cps);
        let before = tree(&h.mail);
        let cfg = config(&h, "kinds = [\"inlog\", \"viruslog\"]", 0, action);
        let plan = retention::plan(&cfg, &snap, today());
        for (p, why) in &expect {
            assert_eq!(
                decision(&plan, p),
                &Decision::Keep(why.clone()),
                "{}",
                p.display()
            );
        }
        assert!(
            plan.iter()
                .all(|a| a.kind != epost_shipper::kind::Kind::Viruslog && a.path != fail),
            "quarantine and unshipped kinds are not even considered"
        );
        let acting: Vec<&Path> = plan
            .iter()
            .filter(|a| !matches!(a.decision, Decision::Keep(_)))
            .map(|a| a.path.as_path())
            .collect();
        assert_eq!(acting, [control.as_path()]);

        let report = retention::apply(plan, false);
        assert_eq!(report.failed(), 0, "{report:#?}");
        assert_eq!(report.compressed() + report.deleted(), 1);
        let mut after = tree(&h.mail);
        let mut wanted = before.clone();
        let control_bytes = wanted.remove(&control).unwrap();
        if action == RetentionAction::Gzip {
            assert_eq!(
                gunzip(&gz(&control)),
                control_bytes,
                "the control file was compressed"
            );
            after.remove(&gz(&control));
        }
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            wanted.keys().collect::<Vec<_>>(),
            "no other file appeared or went"
        );
        assert!(
            after == wanted,
            "every other file is byte for byte as it was"
        );
    }
}

#[test]
fn a_file_that_changes_between_plan_and_apply_is_left_alone() {
    for action in [RetentionAction::Gzip, RetentionAction::Delete] {
        let h = Harness::new();
        let names = ["171101", "171102", "171103", "171104", "171105", "171106"];
        let files: Vec<PathBuf> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let p = h.log("inlog", "H1", &format!("{n}.log"));
                append(&p, &lines(50, i as u32 + 1));
                age(&p, TWO_HOURS);
                p
            })
            .collect();
        let [
            grown,
            touched,
            gone,
            rewritten,
            grown_same_time,
            rewritten_same_time,
        ] = &files[..]
        else {
            unreachable!()
        };
        append(&h.log("inlog", "H1", "171231.log"), &lines(2, 31));
        let snap = save(&h, files.iter().map(|p| shipped(p)).collect());
        let plan = retention::plan(&config(&h, "", 30, action), &snap, today());
        assert_eq!(
            plan.iter()
                .filter(|a| !matches!(a.decision, Decision::Keep(_)))
                .count(),
            files.len()
        );
        // E-Post writes a late line; something touches a file; one goes; one is rewritten
        // in place with the same size
        append(grown, &inlog_line(7777, 1));
        set_mtime(touched, SystemTime::now());
        std::fs::remove_file(gone).unwrap();
        let rewrite = |p: &Path| {
            let mut bytes = std::fs::read(p).unwrap();
            bytes[1] = b'X';
            std::fs::write(p, &bytes).unwrap();
        };
        rewrite(rewritten);
        // the same, where the modification time does not show it (FAT and some network
        // shares keep it to 2 s or coarser)
        let keep_time = |p: &Path, change: &dyn Fn(&Path)| {
            let t = std::fs::metadata(p).unwrap().modified().unwrap();
            change(p);
            set_mtime(p, t);
        };
        keep_time(grown_same_time, &|p| append(p, &inlog_line(8888, 5)));
        keep_time(rewritten_same_time, &rewrite);
        let before = tree(&h.mail);

        let report = retention::apply(plan, false);
        for p in &files {
            assert!(
                matches!(outcome(&report, p), Outcome::Kept(Keep::Changed(_))),
                "{}: {:?}",
                p.display(),
                outcome(&report, p)
            );
        }
        assert_eq!(report.failed(), 0);
        assert_eq!(
            tree(&h.mail),
            before,
            "nothing changed, no .gz, no temp file"
        );
    }
}

#[test]
fn an_existing_gz_is_reused_only_if_it_is_the_same_file_and_errors_stay_per_file() {
    let h = Harness::new();
    let done = h.log("inlog", "H1", "171101.log");
    let clash = h.log("inlog", "H1", "171102.log");
    let fine = h.log("inlog", "H1", "171103.log");
    for (i, p) in [&done, &clash, &fine].into_iter().enumerate() {
        append(p, &lines(30, i as u32 + 1));
        age(p, TWO_HOURS);
    }
    append(&h.log("inlog", "H1", "171231.log"), &lines(2, 31));
    // a previous run stopped after renaming the copy into place
    let copy = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &std::fs::read(&done).unwrap()).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(gz(&done), &copy).unwrap();
    // someone else's .gz of other content under the name we would use
    std::fs::write(gz(&clash), b"not ours").unwrap();
    // and a temp file left by a crash mid-compression
    let stale = fine.with_file_name(".171103.log.gz.tmp");
    std::fs::write(&stale, b"half a gzip").unwrap();
    let clash_bytes = std::fs::read(&clash).unwrap();
    let fine_bytes = std::fs::read(&fine).unwrap();

    let snap = save(&h, vec![shipped(&done), shipped(&clash), shipped(&fine)]);
    let report = retention::apply(
        retention::plan(&config(&h, "", 30, RetentionAction::Gzip), &snap, today()),
        false,
    );
    assert!(matches!(
        outcome(&report, &done),
        Outcome::Compressed { .. }
    ));
    assert!(!done.exists());
    assert_eq!(
        std::fs::read(gz(&done)).unwrap(),
        copy,
        "the verified copy is kept as is"
    );

    let Outcome::Failed(e) = outcome(&report, &clash) else {
        panic!("{:?}", outcome(&report, &clash));
    };
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(std::fs::read(&clash).unwrap(), clash_bytes);
    assert_eq!(std::fs::read(gz(&clash)).unwrap(), b"not ours");

    assert!(matches!(
        outcome(&report, &fine),
        Outcome::Compressed { .. }
    ));
    assert_eq!(gunzip(&gz(&fine)), fine_bytes);
    assert!(!stale.exists());
    assert_eq!((report.compressed(), report.failed()), (2, 1));
}

fn read_checkpoint(h: &Harness) -> Option<Snapshot> {
    let (s, loaded) = Store::new(&h.state).load();
    (loaded != epost_shipper::checkpoint::Loaded::Fresh).then_some(s)
}

/// Waits (bounded) until the pipeline's checkpoint on disk satisfies `pred`.
fn wait_checkpoint(h: &Harness, what: &str, pred: impl Fn(&Snapshot) -> bool) {
    let start = Instant::now();
    loop {
        if read_checkpoint(h).is_some_and(|s| pred(&s)) {
            return;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("timed out waiting for {what}: {:#?}", read_checkpoint(h));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fully_shipped(s: &Snapshot, p: &Path) -> bool {
    let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX);
    s.file(&p.to_string_lossy())
        .is_some_and(|f| f.offset == size)
}

#[test]
fn a_file_being_written_while_the_pipeline_ships_and_cleanup_runs_is_never_touched() {
    let h = Harness::new();
    let busy = h.log("inlog", "H1", "171130.log");
    append(&busy, &lines(5, 30));
    append(&h.log("inlog", "H1", "171201.log"), &lines(1, 1));
    let cfg = config(&h, "", 0, RetentionAction::Delete);
    let run = h.start(cfg.clone());
    let cleanup = |cfg: &Config| {
        let (snap, _) = Store::new(&h.state).load();
        retention::apply(
            retention::plan(cfg, &snap, retention::today(cfg.source.zone)),
            false,
        )
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    // A failing assertion below must also end the background loop, or the scope never joins.
    struct Done<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|scope| {
        let stop_background = Done(&done);
        // cleanup over and over while E-Post writes, whatever the moment
        let background = scope.spawn(|| {
            let mut rounds = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let report = cleanup(&cfg);
                assert_eq!(report.deleted() + report.compressed(), 0, "{report:#?}");
                rounds += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            rounds
        });
        // E-Post appends late lines to yesterday's file in bursts; after each, cleanup runs
        // at the worst moment: the file is old by name, not the newest, and every byte of it
        // acknowledged. Only the fact that it was just written keeps it.
        for burst in 0..8 {
            for i in 0..5 {
                append(&busy, &inlog_line(50_000 + burst * 10 + i, 30));
            }
            wait_checkpoint(&h, "the burst acknowledged", |s| fully_shipped(s, &busy));
            let report = cleanup(&cfg);
            assert_eq!(
                kept(outcome(&report, &busy)),
                Some(Keep::Active),
                "{report:#?}"
            );
        }
        drop(stop_background);
        assert!(background.join().unwrap() > 0);
    });
    h.wait_until(20, "every line", |r| r.len() == 5 + 1 + 40);

    // once quiet it goes, and the running tailer drops its checkpoint entry by itself
    let written = std::fs::read(&busy).unwrap();
    age(&busy, TWO_HOURS);
    let report = cleanup(&cfg);
    assert!(
        matches!(outcome(&report, &busy), Outcome::Deleted),
        "{report:#?}"
    );
    wait_checkpoint(&h, "the entry of the deleted file dropped", |s| {
        s.file(&busy.to_string_lossy()).is_none()
    });
    run.stop();
    let shipped_bytes: usize = h
        .records()
        .iter()
        .filter(|r| r["log"]["file"]["path"].as_str() == Some(&*busy.to_string_lossy()))
        .map(|r| r["message"].as_str().unwrap().len() + 2)
        .sum();
    assert_eq!(
        shipped_bytes,
        written.len(),
        "every byte written was shipped"
    );
}

fn cleanup_bin(config: &Path, dry_run: bool) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("cleanup").arg("--config").arg(config);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), stdout)
}

/// The real thing: `run` ships, stops; `cleanup` compresses what was shipped and nothing
/// else; `run` again sends nothing twice and forgets the compressed files; `parse` reads the
/// history back with the same event ids.
#[test]
fn end_to_end_run_cleanup_run_and_parse_the_history() {
    let h = Harness::new();
    let d01 = h.log("inlog", "H1", "171101.log");
    let d02 = h.log("inlog", "H1", "171102.log");
    let d03 = h.log("inlog", "H1", "171103.log");
    let d31 = h.log("inlog", "H1", "171231.log");
    let fail = h.log("faillog", "H1", "171101.log");
    append(&d01, &lines(10, 1));
    append(&d02, &lines(10, 2));
    // a last line still being written: never acknowledged while partial_line_timeout waits
    append(
        &d03,
        &format!(
            "{}<B0000000001@mx> [03/Nov/2017:08:00:00] 1.2.3.4 h a@b",
            lines(5, 3)
        ),
    );
    append(&d31, &lines(3, 31));
    append(
        &fail,
        "B0000000009@mx send fail on [01/Nov/2017:00:00:01] from a@b to c@d [550 x]\r\n",
    );
    let sink = format!(
        "[[sink]]\ntype = \"file\"\npath = '{}'\n\n[retention]\nkeep_days = 30\naction = \"gzip\"\n",
        h.out.display()
    );
    let cfg = h.config_sinks("partial_line_timeout = \"1h\"", "", &sink);
    let cfg_path = h.dir.path().join("shipper.toml");

    let run = h.start(cfg.clone());
    h.wait_until(20, "every complete line", |r| {
        r.len() == 10 + 10 + 5 + 3 + 1
    });
    wait_checkpoint(&h, "all acknowledged", |s| {
        [&d01, &d02, &d31, &fail]
            .iter()
            .all(|p| fully_shipped(s, p))
            && s.file(&d03.to_string_lossy())
                .is_some_and(|f| f.offset == lines(5, 3).len() as u64)
    });
    run.stop();
    let first = h.records();
    for p in [&d01, &d02, &d03, &d31, &fail] {
        age(p, TWO_HOURS);
    }

    let before = tree(&h.mail);
    let (code, out) = cleanup_bin(&cfg_path, true);
    assert_eq!(code, 0);
    assert!(out.contains("would compress"), "{out}");
    assert!(out.contains("would compress 2 file(s)"), "{out}");
    assert_eq!(tree(&h.mail), before, "--dry-run changes nothing");

    let (code, out) = cleanup_bin(&cfg_path, false);
    assert_eq!(code, 0);
    assert!(out.contains("compressed 2 file(s)"), "{out}");
    assert!(out.contains("not fully shipped"), "{out}");
    assert!(out.contains("newest file of its folder"), "{out}");
    for p in [&d01, &d02] {
        assert!(!p.exists());
        assert_eq!(&gunzip(&gz(p)), &before[p]);
    }
    for p in [&d03, &d31, &fail] {
        assert_eq!(&std::fs::read(p).unwrap(), &before[p], "{}", p.display());
    }

    // run again: nothing is sent twice, the compressed files' entries are forgotten, and
    // new lines still flow
    let run = h.start(cfg.clone());
    wait_checkpoint(&h, "entries of the compressed files dropped", |s| {
        s.file(&d01.to_string_lossy()).is_none() && s.file(&d02.to_string_lossy()).is_none()
    });
    append(&d31, &inlog_line(31_999, 31));
    h.wait_until(20, "the new line", |r| r.len() == first.len() + 1);
    run.stop();
    assert_eq!(h.records().len(), first.len() + 1);

    // the history reads back through `parse`, with the ids the sinks already have
    let ids = |recs: &[serde_json::Value], name: &str| -> Vec<String> {
        recs.iter()
            .filter(|r| r["log"]["file"]["path"].as_str().unwrap().contains(name))
            .map(|r| r["event"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let parsed = Command::new(BIN)
        .arg("parse")
        .arg(gz(&d01))
        .output()
        .unwrap();
    assert!(parsed.status.success());
    let parsed: Vec<serde_json::Value> = String::from_utf8(parsed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 10);
    assert_eq!(
        ids(&parsed, "171101.log"),
        ids(&first, "inlog/H1/171101.log")
    );

    // cleanup again: nothing more to do
    let after = tree(&h.mail);
    let (code, out) = cleanup_bin(&cfg_path, false);
    assert_eq!(code, 0);
    assert!(out.contains("compressed 0 file(s)"), "{out}");
    assert_eq!(tree(&h.mail), after);
}

#[test]
fn the_binary_exits_1_when_a_file_fails_and_still_does_the_others() {
    let h = Harness::new();
    let clash = h.log("inlog", "H1", "171101.log");
    let fine = h.log("inlog", "H1", "171102.log");
    for p in [&clash, &fine] {
        append(p, &lines(5, 1));
        age(p, TWO_HOURS);
    }
    append(&h.log("inlog", "H1", "171231.log"), &lines(1, 31));
    std::fs::write(gz(&clash), b"someone else's").unwrap();
    save(&h, vec![shipped(&clash), shipped(&fine)]);
    let sink = "[[sink]]\ntype = \"stdout\"\n\n[retention]\nkeep_days = 30\naction = \"gzip\"\n";
    h.config_sinks("", "", sink);
    let (code, out) = cleanup_bin(&h.dir.path().join("shipper.toml"), false);
    assert_eq!(code, 1);
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("compressed 1 file(s)"), "{out}");
    assert!(clash.exists() && !fine.exists() && gz(&fine).exists());
}
