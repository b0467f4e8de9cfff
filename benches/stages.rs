//! Per-stage micro-benchmarks: line splitting, decoding, parsing each kind, JSON encoding,
//! and Elasticsearch `_bulk` bodies with and without gzip.
//! Input: the bundled example files of each kind, repeated to about 1 MiB (CP932, CRLF).
//!
//! `cargo bench --bench stages` (figures in docs/benchmarks.md).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use epost_shipper::decode::{Encoding, decode};
use epost_shipper::kind::Kind;
use epost_shipper::parse::{ParseOptions, parse_bytes};
use epost_shipper::record::Source;
use epost_shipper::tail::lines::Lines;

fn example(kind: Kind) -> Vec<u8> {
    let path = format!(
        "{}/examples/mail/{}/MAILSV01/171130.log",
        env!("CARGO_MANIFEST_DIR"),
        kind.name()
    );
    let one = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut v = Vec::with_capacity(1 << 20);
    while v.len() < 1 << 20 {
        v.extend_from_slice(&one);
    }
    v
}

fn count_records(kind: Kind, data: &[u8]) -> u64 {
    let mut n = 0;
    parse_bytes(
        Source::new("MAILSV01", kind, "x/171130.log"),
        ParseOptions::default(),
        data,
        &mut |_| n += 1,
    );
    n
}

fn lines_and_decode(c: &mut Criterion) {
    let data = example(Kind::Receivelog);
    let mut g = c.benchmark_group("split");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("memchr_lines", |b| {
        b.iter(|| Lines::new(black_box(&data)).count())
    });
    g.finish();

    let ascii = example(Kind::Inlog);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(ascii.len() as u64));
    g.bench_function("cp932_lines", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in Lines::new(black_box(&ascii)) {
                n += decode(l.bytes, Encoding::Cp932).text.len();
            }
            n
        })
    });
    g.finish();
}

fn parse_kinds(c: &mut Criterion) {
    for kind in Kind::ALL {
        if kind == Kind::Viruslog {
            continue;
        }
        let data = example(kind);
        let records = count_records(kind, &data);
        let source = Source::new("MAILSV01", kind, "x/171130.log");
        let mut g = c.benchmark_group(format!("parse/{kind}"));
        g.throughput(Throughput::Elements(records));
        g.bench_function("records", |b| {
            b.iter(|| {
                let mut n = 0u64;
                parse_bytes(
                    source.clone(),
                    ParseOptions::default(),
                    black_box(&data),
                    &mut |r| {
                        n += r.offset & 1;
                    },
                );
                n
            })
        });
        // the same work measured per record and per byte of log
        for (name, unit) in [
            ("records+json", Throughput::Elements(records)),
            ("bytes+json", Throughput::Bytes(data.len() as u64)),
        ] {
            g.throughput(unit);
            g.bench_function(name, |b| {
                let mut buf = Vec::with_capacity(1 << 20);
                b.iter(|| {
                    buf.clear();
                    parse_bytes(
                        source.clone(),
                        ParseOptions::default(),
                        black_box(&data),
                        &mut |r| {
                            r.write_json(&mut buf);
                            buf.push(b'\n');
                        },
                    );
                    buf.len()
                })
            });
        }
        g.finish();
    }
}

/// `_bulk` bodies (action line + document per record) as the Elasticsearch sink builds them,
/// then gzip level 1 of such a body, alone and together.
fn bulk_bodies(c: &mut Criterion) {
    use epost_shipper::config::EsMode;
    use epost_shipper::sink::elasticsearch::BulkEncoder;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let gzip = |body: &[u8]| {
        let mut gz = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::new(1));
        gz.write_all(body).expect("in memory");
        gz.finish().expect("in memory")
    };
    for kind in [Kind::Receivelog, Kind::Inlog] {
        let data = example(kind);
        let records = count_records(kind, &data);
        let source = Source::new("MAILSV01", kind, "x/171130.log");
        let encoder = BulkEncoder::new(EsMode::DataStream, "default", "");
        let build = |buf: &mut Vec<u8>| {
            buf.clear();
            parse_bytes(
                source.clone(),
                ParseOptions::default(),
                black_box(&data),
                &mut |r| encoder.encode(r, buf),
            );
        };
        let mut body = Vec::new();
        build(&mut body);
        let mut g = c.benchmark_group(format!("bulk/{kind}"));
        g.throughput(Throughput::Elements(records));
        g.bench_function("parse+body", |b| {
            let mut buf = Vec::with_capacity(body.len());
            b.iter(|| {
                build(&mut buf);
                buf.len()
            })
        });
        g.bench_function("parse+body+gzip", |b| {
            let mut buf = Vec::with_capacity(body.len());
            b.iter(|| {
                build(&mut buf);
                gzip(&buf).len()
            })
        });
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function("gzip_only", |b| b.iter(|| gzip(black_box(&body)).len()));
        g.finish();
    }
}

/// Issue 15.7: the Loki push body written by hand from the payload (`protobuf_body`) against
/// the same body built from prost structs (`loki::proto`, what the code would otherwise do):
/// both from the same entries, both snappy-compressed as sent, checked byte-identical before
/// timing.
fn loki_protobuf(c: &mut Criterion) {
    use epost_shipper::config::LokiLine;
    use epost_shipper::sink::loki::encode::{LokiEncoder, decode, protobuf_body, streams};
    use epost_shipper::sink::loki::proto;
    use prost::Message;
    for kind in [Kind::Receivelog, Kind::Inlog] {
        let data = example(kind);
        let enc = LokiEncoder::new(
            "epost",
            &std::collections::BTreeMap::new(),
            LokiLine::Message,
            true,
        );
        let mut payload = Vec::new();
        let mut ends = Vec::new();
        parse_bytes(
            Source::new("MAILSV01", kind, "x/171130.log"),
            ParseOptions::default(),
            &data,
            &mut |r| {
                enc.encode(r, &mut payload);
                ends.push(payload.len());
            },
        );
        let mut start = 0;
        let entries: Vec<_> = ends
            .iter()
            .map(|&e| {
                let entry = decode(&payload[start..e]).expect("own layout");
                start = e;
                entry
            })
            .collect();
        let set: Vec<usize> = (0..entries.len()).collect();
        let with_prost = || {
            let body = proto::PushRequest {
                streams: streams(&entries, &set)
                    .into_iter()
                    .map(|(labels, idx)| proto::StreamAdapter {
                        labels: String::from_utf8_lossy(labels).into_owned(),
                        entries: idx
                            .iter()
                            .map(|&i| {
                                let e = &entries[i];
                                proto::EntryAdapter {
                                    timestamp: Some(proto::Timestamp::from_nanos(e.ts)),
                                    line: e.line_str().into_owned(),
                                    structured_metadata: e
                                        .pairs()
                                        .map(|(k, v)| proto::LabelPairAdapter {
                                            name: k.to_string(),
                                            value: v.to_string(),
                                        })
                                        .collect(),
                                }
                            })
                            .collect(),
                        hash: 0,
                    })
                    .collect(),
            }
            .encode_to_vec();
            // the push body is snappy-compressed (block format), as protobuf_body's is
            snap::raw::Encoder::new()
                .compress_vec(&body)
                .expect("in memory")
        };
        assert_eq!(protobuf_body(&entries, &set), with_prost(), "same bytes");
        let mut g = c.benchmark_group(format!("loki_protobuf/{kind}"));
        g.throughput(Throughput::Elements(entries.len() as u64));
        g.bench_function("hand-written", |b| {
            b.iter(|| protobuf_body(black_box(&entries), &set).len())
        });
        g.bench_function("prost", |b| b.iter(|| with_prost().len()));
        g.finish();
    }
}

/// Issue 15.7, OTLP: the request assembled by hand from the encoded records
/// (`otlp::encode::request`) against prost encoding the same `ExportLogsServiceRequest`
/// (decoded once from ours, so equal by construction). The prost side is timed for its
/// `encode_to_vec` alone, without building its structs from the records: a lower bound of what
/// prost would cost, which favours it.
fn otlp_protobuf(c: &mut Criterion) {
    use epost_shipper::sink::otlp::encode::{OtlpEncoder, request};
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message;
    for kind in [Kind::Receivelog, Kind::Inlog] {
        let data = example(kind);
        let mut payload = Vec::new();
        let mut ends = Vec::new();
        parse_bytes(
            Source::new("MAILSV01", kind, "x/171130.log"),
            ParseOptions::default(),
            &data,
            &mut |r| {
                OtlpEncoder::default().encode_at(r, 1, &mut payload);
                ends.push(payload.len());
            },
        );
        let mut slices: Vec<&[u8]> = Vec::with_capacity(ends.len());
        let mut start = 0;
        for &e in &ends {
            slices.push(&payload[start..e]);
            start = e;
        }
        let ours = request(slices.iter().copied());
        let message = ExportLogsServiceRequest::decode(ours.as_slice()).expect("valid OTLP");
        assert_eq!(message.encode_to_vec(), ours, "same bytes");
        let mut g = c.benchmark_group(format!("otlp_protobuf/{kind}"));
        g.throughput(Throughput::Elements(ends.len() as u64));
        g.bench_function("hand-written request", |b| {
            b.iter(|| request(black_box(&slices).iter().copied()).len())
        });
        // the per-record half of ours runs on the tailer: parse alone, then parse + encode +
        // request; their difference is our whole encoding cost
        let source = Source::new("MAILSV01", kind, "x/171130.log");
        g.bench_function("parse only", |b| {
            b.iter(|| {
                let mut n = 0u64;
                parse_bytes(
                    source.clone(),
                    ParseOptions::default(),
                    black_box(&data),
                    &mut |r| n += r.offset,
                );
                n
            })
        });
        g.bench_function("parse + hand-written records + request", |b| {
            let mut buf = Vec::with_capacity(payload.len());
            let mut cuts = Vec::with_capacity(ends.len());
            b.iter(|| {
                buf.clear();
                cuts.clear();
                parse_bytes(
                    source.clone(),
                    ParseOptions::default(),
                    black_box(&data),
                    &mut |r| {
                        OtlpEncoder::default().encode_at(r, 1, &mut buf);
                        cuts.push(buf.len());
                    },
                );
                let mut start = 0;
                request(cuts.iter().map(|&e| {
                    let r = &buf[start..e];
                    start = e;
                    r
                }))
                .len()
            })
        });
        g.bench_function("prost encode_to_vec only", |b| {
            b.iter(|| black_box(&message).encode_to_vec().len())
        });
        g.finish();
    }
}

/// `[privacy]` off and on: parse + JSON per kind that carries personal data, without and
/// with every personal field hidden (addresses hash-local, user hash, IPs truncate and hash,
/// subject dropped, text rewritten).
fn privacy(c: &mut Criterion) {
    use epost_shipper::privacy::{Field, Mode, Policy};
    let policy = Policy::new(
        &[
            (Field::FromAddress, Mode::HashLocal),
            (Field::ToAddress, Mode::HashLocal),
            (Field::UserName, Mode::Hash),
            (Field::ClientIp, Mode::Truncate),
            (Field::DestinationIp, Mode::Hash),
            (Field::SmtpHelo, Mode::Hash),
            (Field::Subject, Mode::Drop),
        ],
        Some(b"a bench key, 32 bytes long......"),
    );
    for kind in [
        Kind::Inlog,
        Kind::Receivelog,
        Kind::Acceptlog,
        Kind::Imap4log,
    ] {
        let data = example(kind);
        let source = Source::new("MAILSV01", kind, "x/171130.log");
        let records = count_records(kind, &data);
        let mut g = c.benchmark_group(format!("privacy/{}", kind.name()));
        g.throughput(Throughput::Elements(records));
        for (name, p) in [("off", None), ("on", Some(&policy))] {
            g.bench_function(name, |b| {
                let mut buf = Vec::with_capacity(1 << 20);
                b.iter(|| {
                    buf.clear();
                    parse_bytes(
                        source.clone(),
                        ParseOptions::default(),
                        black_box(&data),
                        &mut |r| {
                            match p {
                                Some(p) => p.apply(r).write_json(&mut buf),
                                None => r.write_json(&mut buf),
                            }
                            buf.push(b'\n');
                        },
                    );
                    buf.len()
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = lines_and_decode, parse_kinds, bulk_bodies, loki_protobuf, otlp_protobuf, privacy
}
criterion_main!(benches);
