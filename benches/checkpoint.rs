//! What one checkpoint write costs with 10,800 files (30 hosts × 12 kinds × 30 days) and a
//! trickle that moves 12 of them a second: the journal line of what moved (the design) against
//! a rewrite of the whole checkpoint (the design before it), and how long each holds the
//! tracker's lock, which the sinks' acknowledgements also take.
//!
//! `cargo bench --bench checkpoint` (figures in docs/benchmarks.md).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use epost_shipper::ack::{FileMeta, Tracker};
use epost_shipper::checkpoint::{Snapshot, Store, Writer};

const FILES: u64 = 10_800;
const MOVED: u64 = 12;

fn tracker() -> Tracker {
    let t = Tracker::new(&["es".to_string()], 1 << 20, &Snapshot::default());
    for id in 0..FILES {
        let (host, kind, day) = (id % 30, (id / 30) % 12, id / 360);
        t.register(
            id,
            FileMeta {
                path: format!("C:\\mail\\kind{kind:02}\\MAILSV{host:02}\\1711{day:02}.log"),
                kind: format!("kind{kind:02}"),
                host: format!("MAILSV{host:02}"),
                fingerprint: "0123456789abcdef".into(),
                fp_len: 256,
                size: 1_000_000,
            },
            0,
        );
    }
    let _ = t.delta();
    t
}

/// One second of trickle: `MOVED` files each get a segment, acknowledged.
fn trickle(t: &Tracker, seq: &mut u64) {
    for i in 0..MOVED {
        *seq += 1;
        let file = (*seq * 7919 + i) % FILES;
        t.add_segment(*seq, file, *seq * 100, 1);
        t.ack("es", *seq, 0);
    }
}

fn bench(c: &mut Criterion) {
    let t = tracker();
    let mut seq = 0;
    let mut g = c.benchmark_group("checkpoint_lock");
    g.bench_function("acks_of_12", |b| b.iter(|| trickle(&t, &mut seq)));
    let _ = t.delta();
    g.bench_function("delta_of_12_moved", |b| {
        b.iter(|| {
            trickle(&t, &mut seq);
            black_box(t.delta())
        })
    });
    g.bench_function("whole_snapshot", |b| {
        b.iter(|| {
            trickle(&t, &mut seq);
            black_box(t.current())
        })
    });
    g.finish();

    let dir = tempfile::tempdir().expect("temp dir");
    let mut w = Writer::new(Store::new(dir.path()), &t.current());
    w.compact().expect("first base");
    let mut g = c.benchmark_group("checkpoint_write");
    g.sample_size(30);
    let before = w.written_bytes();
    let mut writes = 0u64;
    g.bench_function("journal_line", |b| {
        b.iter(|| {
            trickle(&t, &mut seq);
            let d = t.delta().expect("moved");
            writes += 1;
            w.write(d).expect("write")
        })
    });
    eprintln!(
        "journal: {} bytes a write on average over {writes} writes (compactions included)",
        (w.written_bytes() - before) / writes.max(1)
    );
    let store = Store::new(dir.path());
    let mut whole = 0;
    g.bench_function("whole_rewrite", |b| {
        b.iter(|| {
            trickle(&t, &mut seq);
            whole = store.save(&t.current()).expect("save");
        })
    });
    eprintln!("whole rewrite: {whole} bytes a write");
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench
}
criterion_main!(benches);
