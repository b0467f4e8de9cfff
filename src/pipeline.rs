//! The pipeline wired together: discover → tail → decode → parse → batch → sink → ack →
//! checkpoint. The tailer runs on its own thread (file I/O and parsing); sinks run on a small
//! tokio runtime; the checkpoint is written by a third thread from the ack tracker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use notify::Watcher;
use tokio::sync::mpsc;

use crate::ack::Tracker;
use crate::checkpoint::{Loaded, Store};
use crate::config::Config;
use crate::metrics::{Metrics, SinkStats};
use crate::sink::{self, Sink, SinkError};
use crate::tail::{Counters, Output, Plan, Tailer};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("sink `{name}`: {error}")]
    Sink { name: String, error: SinkError },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the checkpoint in `{dir}`: {error}")]
    Checkpoint { dir: String, error: std::io::Error },
}

/// How a run ended.
#[derive(Debug)]
pub struct Summary {
    pub caught_up: bool,
    /// Sinks still had unacknowledged segments when the shutdown timeout ran out.
    pub timed_out: bool,
    pub records: u64,
}

/// Runs until `stop` is set or a signal arrives (or, with `plan.exit_when_caught_up`, until
/// everything is shipped). `counters` lets a caller watch progress.
pub fn run(
    config: &Config,
    plan: Plan,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> Result<Summary, PipelineError> {
    let store = Store::new(&config.source.state_dir);
    let (snapshot, loaded) = store.load();
    match &loaded {
        Loaded::Fresh => {
            tracing::info!(dir = %config.source.state_dir.display(), "no checkpoint yet: first start")
        }
        Loaded::Current => tracing::info!(files = snapshot.files.len(), "resuming from checkpoint"),
        Loaded::Previous(why) => {
            tracing::warn!(reason = %why, "checkpoint file unusable; resuming from the previous generation (a few records may be sent again)")
        }
        Loaded::Unusable(why) => {
            tracing::error!(reason = %why, "both checkpoint generations unusable; starting as on a first start (start_at and ignore_older_than apply)")
        }
    }
    let mut sinks = Vec::new();
    for s in &config.sinks {
        sinks.push(Sink::new(s, &config.source.state_dir).map_err(|error| {
            PipelineError::Sink {
                name: s.name.clone(),
                error,
            }
        })?);
    }
    let names: Vec<String> = sinks.iter().map(|s| s.name.clone()).collect();
    let tracker = Arc::new(Tracker::new(
        &names,
        config.pipeline.queue_segments,
        &snapshot,
    ));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("epost-sink")
        .enable_all()
        .build()
        .map_err(PipelineError::Runtime)?;

    let mut outputs = Vec::new();
    let mut tasks = Vec::new();
    let mut sink_stats = Vec::new();
    for (idx, sink) in sinks.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        outputs.push(Output {
            encoding: sink.encoding(),
            tx,
        });
        let stats = Arc::new(SinkStats::default());
        sink_stats.push((sink.name.clone(), stats.clone()));
        tasks.push(runtime.spawn(sink::run(sink, idx, rx, tracker.clone(), stats)));
    }
    let metrics = Arc::new(Metrics {
        tail: counters.clone(),
        sinks: sink_stats,
        tracker: tracker.clone(),
        checkpoint_written_ms: AtomicI64::new(0),
        health_window: Duration::from_secs(300),
    });
    if !config.metrics.listen.is_empty() {
        runtime.spawn(crate::metrics::serve(
            config.metrics.listen.clone(),
            metrics.clone(),
        ));
    }

    // Filesystem events wake the tailer at once; it polls anyway (network shares, missed
    // events).
    let (wake_tx, wake_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let _watcher = {
        let tx = wake_tx.clone();
        match notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        }) {
            Ok(mut w) => {
                for d in &config.source.workdirs {
                    if let Err(e) = w.watch(d, notify::RecursiveMode::Recursive) {
                        tracing::warn!(dir = %d.display(), error = %e, "cannot watch folder; polling only");
                    }
                }
                Some(w)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no filesystem events; polling only");
                None
            }
        }
    };

    let reader_stop = Arc::new(AtomicBool::new(false));
    let tailer = Tailer::new(
        config.source.clone(),
        config.pipeline.clone(),
        plan,
        tracker.clone(),
        outputs,
        &snapshot.files,
        reader_stop.clone(),
        wake_rx,
        counters.clone(),
    );
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let reader = std::thread::Builder::new()
        .name("epost-tail".into())
        .spawn(move || {
            let caught_up = tailer.run();
            let _ = done_tx.send(caught_up);
        })
        .expect("spawn tailer thread");

    // The checkpoint writer.
    let cp_stop = Arc::new(AtomicBool::new(false));
    let cp_thread = {
        let tracker = tracker.clone();
        let stop = cp_stop.clone();
        let interval = config.pipeline.checkpoint_interval.0;
        let store = Store::new(&config.source.state_dir);
        let metrics = metrics.clone();
        std::thread::Builder::new()
            .name("epost-checkpoint".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // unparked at shutdown, so that stopping does not wait out the interval
                    std::thread::park_timeout(interval.min(Duration::from_millis(200)));
                    if let Some(s) = tracker.snapshot(false) {
                        match store.save(&s) {
                            Ok(()) => metrics
                                .checkpoint_written_ms
                                .store(crate::ack::now_ms(), Ordering::Relaxed),
                            Err(e) => {
                                tracing::error!(error = %e, "cannot write checkpoint; will retry")
                            }
                        }
                    }
                }
            })
            .expect("spawn checkpoint thread")
    };

    // The retention job (replaces logclean.vbs), when scheduled: it works from the live
    // acknowledgements, so it never touches a file not fully shipped.
    let retention = config
        .retention
        .schedule
        .filter(|_| config.retention.action != crate::config::RetentionAction::None);
    if let Some(every) = retention {
        let (tracker, stop, config) = (tracker.clone(), cp_stop.clone(), config.clone());
        std::thread::Builder::new()
            .name("epost-retention".into())
            .spawn(move || {
                let mut last: Option<Instant> = None;
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    // first run a minute after start, then every `schedule`; elapsed()
                    // saturates, so no Instant arithmetic can overflow here
                    let due = match last {
                        None => started.elapsed() >= Duration::from_secs(60),
                        Some(t) => t.elapsed() >= every.0,
                    };
                    if due {
                        crate::retention::run_once(&config, &tracker.current());
                        last = Some(Instant::now());
                    }
                }
            })
            .expect("spawn retention thread");
    }

    let caught_up = runtime.block_on(async {
        let mut signal = Box::pin(crate::platform::shutdown_signal());
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = &mut signal => {
                    tracing::info!("stop requested: finishing in-flight batches");
                    break false;
                }
                r = &mut done_rx => break r.unwrap_or(false),
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        tracing::info!("stop requested: finishing in-flight batches");
                        break false;
                    }
                }
            }
        }
    });
    reader_stop.store(true, Ordering::Relaxed);
    let _ = reader.join();

    // The tailer is gone and with it the senders: sinks finish what is queued and end.
    let deadline = config.pipeline.shutdown_timeout.0;
    let started = Instant::now();
    let timed_out = runtime.block_on(async {
        let all = futures_join(tasks);
        tokio::time::timeout(deadline, all).await.is_err()
    });
    if timed_out {
        tracing::warn!(after = ?started.elapsed(), unacknowledged = tracker.in_flight(), "shutdown timeout: some batches were not acknowledged; they will be sent again after restart");
    }
    runtime.shutdown_timeout(Duration::from_millis(500));
    cp_stop.store(true, Ordering::Relaxed);
    cp_thread.thread().unpark();
    let _ = cp_thread.join();
    let last = tracker.snapshot(true).expect("forced");
    store
        .save(&last)
        .map_err(|error| PipelineError::Checkpoint {
            dir: config.source.state_dir.display().to_string(),
            error,
        })?;
    Ok(Summary {
        caught_up,
        timed_out,
        records: counters.records.load(Ordering::Relaxed),
    })
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
