//! The pipeline wired together: discover → tail → decode → parse → batch → sink → ack →
//! checkpoint. The tailer runs on its own thread (file I/O and parsing); sinks run on a small
//! tokio runtime; the checkpoint is written by a third thread from the ack tracker, retention
//! by a fourth.
//!
//! Every thread and task is a supervised [`Component`]: while the pipeline runs, one that ends
//! by itself (a panic, or an early return) stops the whole run, and [`run`] returns
//! [`PipelineError::Died`] naming it, so that the process exits non-zero and a service
//! manager restarts it. Nothing that died is ever reported as "stopped cleanly".

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::Watcher;
use tokio::sync::mpsc;

use crate::ack::Tracker;
use crate::checkpoint::{Loaded, Snapshot, Store, Writer};
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
    #[error("cannot start the {component} thread: {error}")]
    Spawn {
        component: &'static str,
        error: std::io::Error,
    },
    #[error("cannot write the checkpoint in `{dir}`: {error}")]
    Checkpoint { dir: String, error: std::io::Error },
    /// A component ended while the pipeline was running: the run is a failure.
    #[error(
        "the {component} {how}; the pipeline was stopped (what was acknowledged is checkpointed)"
    )]
    Died { component: String, how: Death },
}

/// How a component ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    Panicked,
    /// Returned while it should have kept running.
    Returned,
}

impl std::fmt::Display for Death {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Death::Panicked => "panicked",
            Death::Returned => "stopped unexpectedly",
        })
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Summary {
    pub caught_up: bool,
    /// Sinks still had unacknowledged segments when the shutdown timeout ran out.
    pub timed_out: bool,
    pub records: u64,
}

/// A supervised thread or task.
enum Handle {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

struct Component {
    name: String,
    handle: Handle,
}

impl Component {
    fn is_finished(&self) -> bool {
        match &self.handle {
            Handle::Thread(h) => h.is_finished(),
            Handle::Task(h) => h.is_finished(),
        }
    }

    /// Waits for the end; `Err` if it panicked.
    fn join(self, runtime: &tokio::runtime::Runtime) -> Result<(), Death> {
        match self.handle {
            Handle::Thread(h) => h.join().map_err(|_| Death::Panicked),
            Handle::Task(h) => match runtime.block_on(h) {
                Ok(()) => Ok(()),
                Err(e) if e.is_panic() => Err(Death::Panicked),
                // cancelled by the runtime's shutdown: only after the deadline
                Err(_) => Ok(()),
            },
        }
    }
}

/// The first component to die, remembered for the final error.
#[derive(Default)]
struct Deaths(Option<(String, Death)>);

impl Deaths {
    fn record(&mut self, component: &str, how: Death) {
        tracing::error!(component, %how, "a pipeline component ended while running");
        if self.0.is_none() {
            self.0 = Some((component.to_string(), how));
        }
    }
}

/// Runs until `stop` is set or a signal arrives (or, with `plan.exit_when_caught_up`, until
/// everything is shipped). `counters` lets a caller watch progress.
// Long (about 90 lines) on purpose: the pipeline's whole life read top to bottom, in order
// (start in pipeline order, supervise, stop in pipeline order); each step is a call.
pub fn run(
    config: &Config,
    plan: Plan,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> Result<Summary, PipelineError> {
    let store = Store::new(&config.source.state_dir);
    let snapshot = load_checkpoint(&store, config);
    // One writer for the whole run: the checkpointer thread appends to its journal, the last
    // write at shutdown compacts.
    let writer = Arc::new(Mutex::new(Writer::new(store, &snapshot)));
    let sinks = open_sinks(config)?;
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

    let StartedSinks {
        outputs,
        tasks: sink_tasks,
        stats: sink_stats,
    } = start_sinks(&runtime, sinks, &tracker);
    let metrics = Arc::new(Metrics {
        tail: counters.clone(),
        sinks: sink_stats,
        tracker: tracker.clone(),
        checkpoint_written_ms: AtomicI64::new(0),
        checkpoint_bytes: AtomicU64::new(0),
        health_window: Duration::from_secs(300),
    });
    // Background components: they run until `bg_stop`; any of them ending earlier is a death.
    let bg_stop = Arc::new(AtomicBool::new(false));
    let background = start_background(config, &runtime, &tracker, &writer, &metrics, &bg_stop)?;

    // Filesystem events wake the tailer at once; it polls anyway (network shares, missed
    // events).
    let (wake_tx, wake_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let _watcher = watch(config, wake_tx);
    let reader_stop = Arc::new(AtomicBool::new(false));
    let reader = start_tailer(
        config,
        plan,
        &tracker,
        outputs,
        &snapshot,
        &reader_stop,
        wake_rx,
        &counters,
    )?;

    let ended_early = supervise(&runtime, &stop, &reader, &sink_tasks, &background);
    let mut deaths = Deaths::default();

    // Shutdown, in pipeline order: the reader first (its end closes the sinks' channels),
    // then the sinks finish what is queued, then the background components, then the last
    // checkpoint from whatever was acknowledged.
    reader_stop.store(true, Ordering::Relaxed);
    let caught_up = match reader.join() {
        Ok(c) => c,
        Err(_) => {
            deaths.record("tailer", Death::Panicked);
            false
        }
    };
    let timed_out = drain_sinks(config, &runtime, &tracker, sink_tasks, &mut deaths);
    bg_stop.store(true, Ordering::Relaxed);
    stop_background(&runtime, background, &mut deaths);
    if let Some(name) = ended_early
        && deaths.0.is_none()
    {
        // joined without a panic: it returned while it should have kept running
        deaths.record(&name, Death::Returned);
    }
    runtime.shutdown_timeout(Duration::from_millis(500));
    save_last_checkpoint(config, &writer, &tracker)?;
    if let Some((component, how)) = deaths.0 {
        return Err(PipelineError::Died { component, how });
    }
    Ok(Summary {
        caught_up,
        timed_out,
        records: counters.records.load(Ordering::Relaxed),
    })
}

/// Starts the tailer on its own thread, `epost-tail`: it reads every file and feeds the
/// sinks' channels until `reader_stop` (or, for a backfill, until caught up).
#[allow(clippy::too_many_arguments)] // the tailer's own inputs, handed over one by one
fn start_tailer(
    config: &Config,
    plan: Plan,
    tracker: &Arc<Tracker>,
    outputs: Vec<Output>,
    snapshot: &Snapshot,
    reader_stop: &Arc<AtomicBool>,
    wake_rx: std::sync::mpsc::Receiver<()>,
    counters: &Arc<Counters>,
) -> Result<std::thread::JoinHandle<bool>, PipelineError> {
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
    std::thread::Builder::new()
        .name("epost-tail".into())
        .spawn(move || tailer.run())
        .map_err(|error| PipelineError::Spawn {
            component: "tailer",
            error,
        })
}

/// The components that run beside the stages until the end: the metrics server (a task),
/// the checkpoint writer and retention (threads).
fn start_background(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    tracker: &Arc<Tracker>,
    writer: &Arc<Mutex<Writer>>,
    metrics: &Arc<Metrics>,
    bg_stop: &Arc<AtomicBool>,
) -> Result<Vec<Component>, PipelineError> {
    let mut background = Vec::new();
    if let Some(c) = start_metrics(config, runtime, metrics) {
        background.push(c);
    }
    background.push(start_checkpointer(
        tracker, writer, metrics, config, bg_stop,
    )?);
    if let Some(c) = start_retention(config, tracker, bg_stop)? {
        background.push(c);
    }
    Ok(background)
}

/// The writer, tolerating a poisoned lock: a checkpointer thread that panicked mid-write
/// leaves the writer's state whole (its next write compacts), and the supervisor reports it.
fn lock(writer: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    writer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The last checkpoint, from whatever was acknowledged, once everything has stopped: what
/// moved last, then a compaction, so the base alone is the whole checkpoint after a stop.
fn save_last_checkpoint(
    config: &Config,
    writer: &Mutex<Writer>,
    tracker: &Tracker,
) -> Result<(), PipelineError> {
    let mut w = lock(writer);
    if let Some(d) = tracker.delta() {
        w.absorb(d);
    }
    w.compact().map_err(|error| PipelineError::Checkpoint {
        dir: config.source.state_dir.display().to_string(),
        error,
    })?;
    Ok(())
}

/// What [`start_sinks`] started.
struct StartedSinks {
    outputs: Vec<Output>,
    tasks: Vec<Component>,
    stats: Vec<(String, Arc<SinkStats>)>,
}

/// Spawns one task per sink on the runtime; returns the tailer's outputs (an encoding and a
/// channel per sink, in sink order), the tasks, and each sink's statistics for the metrics.
fn start_sinks(
    runtime: &tokio::runtime::Runtime,
    sinks: Vec<sink::Sink>,
    tracker: &Arc<Tracker>,
) -> StartedSinks {
    let mut outputs = Vec::new();
    let mut sink_tasks = Vec::new();
    let mut sink_stats = Vec::new();
    for (idx, sink) in sinks.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        outputs.push(Output {
            encoding: sink.encoding(),
            tx,
        });
        let stats = Arc::new(SinkStats::default());
        sink_stats.push((sink.name.clone(), stats.clone()));
        sink_tasks.push(Component {
            name: format!("sink `{}`", sink.name),
            handle: Handle::Task(runtime.spawn(sink::run(sink, idx, rx, tracker.clone(), stats))),
        });
    }
    StartedSinks {
        outputs,
        tasks: sink_tasks,
        stats: sink_stats,
    }
}

/// Stops and joins the background components (`bg_stop` is already set): threads are woken
/// from their sleep, the metrics server is aborted (it runs until told otherwise).
fn stop_background(
    runtime: &tokio::runtime::Runtime,
    background: Vec<Component>,
    deaths: &mut Deaths,
) {
    for c in background {
        if let Handle::Thread(h) = &c.handle {
            h.thread().unpark();
        }
        if let Handle::Task(h) = &c.handle {
            h.abort();
        }
        let name = c.name.clone();
        if let Err(how) = c.join(runtime) {
            deaths.record(&name, how);
        }
    }
}

fn load_checkpoint(store: &Store, config: &Config) -> Snapshot {
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
    snapshot
}

fn open_sinks(config: &Config) -> Result<Vec<Sink>, PipelineError> {
    config
        .sinks
        .iter()
        .map(|s| {
            Sink::new(s, &config.source.state_dir).map_err(|error| PipelineError::Sink {
                name: s.name.clone(),
                error,
            })
        })
        .collect()
}

/// Waits until the run should end: a stop request, the tailer's end (a backfill caught up,
/// or a panic), or any other component's end, which is always a death. Returns the name of a
/// component that ended early; whether it panicked is learnt when it is joined.
fn supervise(
    runtime: &tokio::runtime::Runtime,
    stop: &AtomicBool,
    reader: &std::thread::JoinHandle<bool>,
    sinks: &[Component],
    background: &[Component],
) -> Option<String> {
    runtime.block_on(async {
        let mut signal = Box::pin(crate::platform::shutdown_signal());
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut sink_ended: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = &mut signal => {
                    tracing::info!("stop requested: finishing in-flight batches");
                    return None;
                }
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        tracing::info!("stop requested: finishing in-flight batches");
                        return None;
                    }
                    if reader.is_finished() {
                        return None;
                    }
                    if let Some(c) = background.iter().find(|c| c.is_finished()) {
                        return Some(c.name.clone());
                    }
                    // A sink ends by itself once the tailer's end closed its channel, and the
                    // tailer's thread counts as finished a moment after that: give it time.
                    if let Some(c) = sinks.iter().find(|c| c.is_finished()) {
                        let since = *sink_ended.get_or_insert_with(Instant::now);
                        if since.elapsed() >= Duration::from_secs(2) {
                            return Some(c.name.clone());
                        }
                    }
                }
            }
        }
    })
}

/// Lets the sinks deliver what is queued, up to `shutdown_timeout`. Returns whether the
/// timeout ran out.
fn drain_sinks(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    tracker: &Tracker,
    sinks: Vec<Component>,
    deaths: &mut Deaths,
) -> bool {
    let started = Instant::now();
    let deadline = config.pipeline.shutdown_timeout.0;
    let mut timed_out = false;
    for c in sinks {
        let Handle::Task(h) = c.handle else {
            continue;
        };
        let left = deadline.saturating_sub(started.elapsed());
        let abort = h.abort_handle();
        match runtime.block_on(async { tokio::time::timeout(left, h).await }) {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_panic() => deaths.record(&c.name, Death::Panicked),
            Ok(Err(_)) => {}
            Err(_) => {
                timed_out = true;
                abort.abort();
            }
        }
    }
    if timed_out {
        tracing::warn!(after = ?started.elapsed(), unacknowledged = tracker.in_flight(), "shutdown timeout: some batches were not acknowledged; they will be sent again after restart");
    }
    timed_out
}

fn start_metrics(
    config: &Config,
    runtime: &tokio::runtime::Runtime,
    metrics: &Arc<Metrics>,
) -> Option<Component> {
    if config.metrics.listen.is_empty() {
        return None;
    }
    // Bound here, not in the task: a port already in use is a warning (shipping matters more
    // than metrics), while a server that stops later is a death.
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(&config.metrics.listen)) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(listen = %config.metrics.listen, error = %e, "cannot serve metrics");
            return None;
        }
    };
    tracing::info!(listen = %config.metrics.listen, "metrics on /metrics and /health");
    Some(Component {
        name: "metrics server".into(),
        handle: Handle::Task(runtime.spawn(crate::metrics::serve(listener, metrics.clone()))),
    })
}

fn start_checkpointer(
    tracker: &Arc<Tracker>,
    writer: &Arc<Mutex<Writer>>,
    metrics: &Arc<Metrics>,
    config: &Config,
    stop: &Arc<AtomicBool>,
) -> Result<Component, PipelineError> {
    let (tracker, writer, stop, metrics) = (
        tracker.clone(),
        writer.clone(),
        stop.clone(),
        metrics.clone(),
    );
    let interval = config.pipeline.checkpoint_interval.0;
    let h = std::thread::Builder::new()
        .name("epost-checkpoint".into())
        .spawn(move || {
            // when the last write was: at most one per `checkpoint_interval` (elapsed()
            // saturates, so no Instant arithmetic can fail here)
            let mut last: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                // unparked at shutdown, so that stopping does not wait out the interval
                std::thread::park_timeout(interval.min(Duration::from_millis(200)));
                if crate::fault::hit("checkpoint-panic", b"") {
                    panic!("injected fault: checkpoint-panic");
                }
                if last.is_some_and(|t| t.elapsed() < interval) {
                    continue;
                }
                // only when something moved, and only what moved
                if let Some(d) = tracker.delta() {
                    write_checkpoint(&mut lock(&writer), d, &metrics);
                    last = Some(Instant::now());
                }
            }
        })
        .map_err(|error| PipelineError::Spawn {
            component: "checkpoint writer",
            error,
        })?;
    Ok(Component {
        name: "checkpoint writer".into(),
        handle: Handle::Thread(h),
    })
}

/// One periodic write. A failure is retried by the next one (the writer keeps what moved, and
/// compacts next time), with one error per minute in the log.
fn write_checkpoint(w: &mut Writer, d: crate::checkpoint::Delta, metrics: &Metrics) {
    let before = w.written_bytes();
    match w.write(d) {
        Ok(_) => metrics
            .checkpoint_written_ms
            .store(crate::ack::now_ms(), Ordering::Relaxed),
        Err(e) => {
            static LIMIT: crate::warn_limit::Limited =
                crate::warn_limit::Limited::new(Duration::from_secs(60));
            if let Some(held) = LIMIT.check() {
                tracing::error!(error = %e, repeated = held, "cannot write checkpoint; will retry")
            }
        }
    }
    metrics
        .checkpoint_bytes
        .fetch_add(w.written_bytes().saturating_sub(before), Ordering::Relaxed);
}

/// The retention job (replaces logclean.vbs), when scheduled: it works from the live
/// acknowledgements, so it never touches a file not fully shipped.
fn start_retention(
    config: &Config,
    tracker: &Arc<Tracker>,
    stop: &Arc<AtomicBool>,
) -> Result<Option<Component>, PipelineError> {
    let every = match config.retention.schedule {
        Some(e) if config.retention.action != crate::config::RetentionAction::None => e.0,
        _ => return Ok(None),
    };
    let (tracker, stop, config) = (tracker.clone(), stop.clone(), config.clone());
    let h = std::thread::Builder::new()
        .name("epost-retention".into())
        .spawn(move || {
            let started = Instant::now();
            let mut last: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(Duration::from_millis(500));
                // first run a minute after start, then every `schedule`; elapsed()
                // saturates, so no Instant arithmetic can overflow here
                let due = match last {
                    None => started.elapsed() >= Duration::from_secs(60),
                    Some(t) => t.elapsed() >= every,
                };
                if due && !stop.load(Ordering::Relaxed) {
                    crate::retention::run_once(&config, &tracker.current());
                    last = Some(Instant::now());
                }
            }
        })
        .map_err(|error| PipelineError::Spawn {
            component: "retention",
            error,
        })?;
    Ok(Some(Component {
        name: "retention".into(),
        handle: Handle::Thread(h),
    }))
}

fn watch(
    config: &Config,
    wake: std::sync::mpsc::SyncSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
        // full = a wake-up is already pending; that is all the tailer needs
        let _ = wake.try_send(());
    });
    match watcher {
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
}
