//! What a checkpoint write costs (issue 15, item 8): with thousands of files and a trickle
//! into one of them, every write is one journal line holding only that file, the base is not
//! rewritten, and nothing at all is written while nothing moves.
//!
//! No timed assertions: each step waits for a condition (the checkpoint as the shipper loads
//! it shows the new line acknowledged), and "nothing else was written" is read from the
//! journal afterwards.
//!
//! Deliberate break (made once, then reverted): `Tracker::delta` listing every file instead
//! of the dirty ones failed "the base is not rewritten by a trickle" (every line then held
//! 2,000 entries, and the journal soon outgrew the base).

mod common;

use std::time::{Duration, Instant};

use common::{Harness, append, inlog_line};
use epost_shipper::checkpoint::journal;

const HOSTS: u32 = 100;
const DAYS: u32 = 20;
const TRICKLE: u32 = 10;

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file of the checkpoint at its full size, and `n` files in it.
fn settled(h: &Harness, n: usize) -> bool {
    let cp = h.checkpoint();
    let files = cp["files"].as_array().cloned().unwrap_or_default();
    files.len() == n && files.iter().all(|f| f["offset"] == f["size"])
}

#[test]
fn a_trickle_into_many_files_appends_only_what_moved() {
    let h = Harness::new();
    let mut n = 0;
    for host in 0..HOSTS {
        for day in 1..=DAYS {
            let p = h.log(
                "inlog",
                &format!("H{host:03}"),
                &format!("1711{day:02}.log"),
            );
            append(&p, &inlog_line(n, day));
            n += 1;
        }
    }
    let files = (HOSTS * DAYS) as usize;
    let run = h.start(h.config(""));
    h.wait_until(120, "every file's line", |r| r.len() == files);
    wait_for("the checkpoint to hold every file at its end", || {
        settled(&h, files)
    });
    let base_path = h.state.join("checkpoints.json");
    let journal_path = h.state.join("checkpoints.journal");
    let base_before = std::fs::read(&base_path).unwrap();
    let journal_before = std::fs::read(&journal_path).unwrap();
    let lines_before = journal::decode(&journal_before).deltas.len();

    let hot = h.log("inlog", "H007", "171120.log");
    let hot_path = hot.display().to_string();
    for i in 0..TRICKLE {
        append(&hot, &inlog_line(10_000 + i, 20));
        let want = files + 1 + i as usize;
        h.wait_until(60, "the trickled line", |r| r.len() == want);
        wait_for("the trickled line in the checkpoint", || settled(&h, files));
    }
    let journal_after = std::fs::read(&journal_path).unwrap();
    let base_after = std::fs::read(&base_path).unwrap();
    run.stop();

    assert_eq!(
        base_after, base_before,
        "the base is not rewritten by a trickle"
    );
    let contents = journal::decode(&journal_after);
    assert!(
        journal_after.starts_with(&journal_before),
        "the journal was appended to, not rewritten"
    );
    let new = &contents.deltas[lines_before..];
    // one line for the read (the file's new size) and one for the acknowledgement, or both
    // in one line when they fall within the same interval
    assert!(
        (TRICKLE as usize..=2 * TRICKLE as usize).contains(&new.len()),
        "{} journal lines for {TRICKLE} trickled lines",
        new.len()
    );
    for d in new {
        let paths: Vec<&str> = d.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![hot_path.as_str()],
            "journal lines after the catch-up hold only the trickled file"
        );
        assert!(d.removed.is_empty());
    }
    // what rewriting the whole checkpoint once would have cost
    let whole = serde_json::to_vec(&h.checkpoint()).unwrap().len();
    let appended = journal_after.len() - journal_before.len();
    assert!(
        appended * 50 < whole,
        "{appended} bytes appended for {TRICKLE} lines, against {whole} bytes for one whole checkpoint"
    );
    // after the stop, the base alone is the whole checkpoint again
    let (snap, _) = epost_shipper::checkpoint::Store::new(&h.state).load();
    assert_eq!(snap.files.len(), files);
    let hot_entry = snap.file(&hot_path).unwrap();
    assert_eq!(hot_entry.offset, std::fs::metadata(&hot).unwrap().len());
    assert_eq!(
        journal::decode(&std::fs::read(&journal_path).unwrap())
            .deltas
            .len(),
        0
    );
}
