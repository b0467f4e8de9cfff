//! `service install|uninstall|run`: epost-shipper as a Windows service (the SCM glue is in
//! `platform::service`). Elsewhere the subcommand is hidden and says it is Windows-only.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[cfg(not(windows))]
use super::{Failure, LogFormat};

#[derive(Debug, Subcommand)]
#[cfg_attr(not(windows), allow(dead_code))]
pub enum ServiceCommand {
    /// Register the Windows service `epost-shipper` (automatic start, LocalSystem), which runs
    /// `epost-shipper service run --config FILE`; needs an elevated prompt
    Install(InstallArgs),
    /// Stop the Windows service (flushing and checkpointing) and remove it
    Uninstall,
    /// The service itself, as the service control manager starts it (in a console use `run`);
    /// logs to `epost-shipper.log` in the state folder
    Run(super::run::RunArgs),
}

#[derive(Debug, Args)]
#[cfg_attr(not(windows), allow(dead_code))]
pub struct InstallArgs {
    /// The configuration file (TOML); stored as an absolute path in the service's command line
    #[arg(long, short)]
    pub config: PathBuf,
}

#[cfg(not(windows))]
pub fn run(_cmd: ServiceCommand, _log_level: &str, _log_format: LogFormat) -> Result<(), Failure> {
    Err(Failure::usage(anyhow::anyhow!(
        "`service` is only available on Windows; elsewhere run `epost-shipper run --config FILE` under your service manager (see the systemd unit in the README)"
    )))
}

#[cfg(windows)]
pub use windows::run;

#[cfg(windows)]
mod windows {
    use std::ffi::OsString;
    use std::fs::{File, OpenOptions};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use anyhow::{Context, anyhow};
    use epost_shipper::platform::{self, service};

    use super::super::{Failure, LogFormat, init_logging, run as run_cmd};
    use super::{InstallArgs, ServiceCommand};

    /// The service's own log, in the state folder.
    const LOG_FILE: &str = "epost-shipper.log";
    /// At start, a log larger than this is moved to `epost-shipper.log.1` (replacing it).
    const LOG_ROTATE_BYTES: u64 = 16 << 20;

    pub fn run(cmd: ServiceCommand, log_level: &str, log_format: LogFormat) -> Result<(), Failure> {
        match cmd {
            ServiceCommand::Install(a) => {
                init_logging(log_level, log_format)?;
                install(a)
            }
            ServiceCommand::Uninstall => {
                init_logging(log_level, log_format)?;
                uninstall()
            }
            ServiceCommand::Run(a) => run_service(a.config, log_level, log_format),
        }
    }

    fn to_failure(e: service::ServiceError) -> Failure {
        if e.is_usage() {
            Failure::usage(e)
        } else {
            Failure::runtime(e)
        }
    }

    fn install(a: InstallArgs) -> Result<(), Failure> {
        let config_path = std::path::absolute(&a.config)
            .with_context(|| format!("bad config path `{}`", a.config.display()))
            .map_err(Failure::usage)?;
        // Refuse a config the service could not start with; the error names file, line, key.
        let config = run_cmd::load_config(&config_path)?;
        let exe = std::env::current_exe()
            .context("cannot find this program's path")
            .map_err(Failure::runtime)?;
        let args: Vec<OsString> = vec![
            "service".into(),
            "run".into(),
            "--config".into(),
            config_path.clone().into_os_string(),
        ];
        service::install(&exe, args).map_err(to_failure)?;
        let log = config.source.state_dir.join(LOG_FILE);
        println!(
            "installed service `{}` (\"{}\"), automatic start:\n  {} service run --config {}\nstart it now with `sc start {}` (or services.msc); it logs to {}",
            service::NAME,
            service::DISPLAY_NAME,
            exe.display(),
            config_path.display(),
            service::NAME,
            log.display()
        );
        Ok(())
    }

    fn uninstall() -> Result<(), Failure> {
        // The service's own shutdown_timeout is not known here (its config is); the default
        // is 30 s, give it some more.
        match service::uninstall(Duration::from_secs(60)).map_err(to_failure)? {
            service::Uninstalled::Removed => println!("removed service `{}`", service::NAME),
            service::Uninstalled::MarkedForDeletion => println!(
                "service `{}` marked for deletion; it disappears when services.msc (or whatever holds it) is closed",
                service::NAME
            ),
            service::Uninstalled::NotInstalled => {
                println!(
                    "service `{}` is not installed; nothing to do",
                    service::NAME
                )
            }
        }
        Ok(())
    }

    /// What the SCM starts. Logging goes to `<state_dir>\epost-shipper.log` (a service has
    /// no console); when the config cannot be read, to the default state folder
    /// (`%ProgramData%\epost-shipper`).
    fn run_service(
        config_path: PathBuf,
        log_level: &str,
        log_format: LogFormat,
    ) -> Result<(), Failure> {
        let loaded = run_cmd::load_config(&config_path);
        let log_dir = match &loaded {
            Ok(c) => c.source.state_dir.clone(),
            Err(_) => platform::default_state_dir(config_path.parent().unwrap_or(Path::new("."))),
        };
        let log_path = log_dir.join(LOG_FILE);
        let file = open_log(&log_dir, &log_path)
            .with_context(|| format!("cannot open the service log `{}`", log_path.display()))
            .map_err(Failure::runtime)?;
        init_file_logging(file, log_level, log_format)?;
        // loaded before the log existed: its warnings (credentials over http://) go there now
        if let Ok(c) = &loaded {
            for w in &c.warnings {
                tracing::warn!("{w}");
            }
        }
        crate::cli::install_panic_hook();

        let stop_wait = match &loaded {
            Ok(c) => c.pipeline.shutdown_timeout.0 + Duration::from_secs(15),
            Err(_) => Duration::from_secs(15),
        };
        let body: service::Body = Box::new(move |stop: Arc<AtomicBool>| match loaded {
            Err(e) => {
                tracing::error!("cannot start: {:#}", e.error);
                u32::from(e.code)
            }
            Ok(config) => match run_cmd::run_config(&config, stop.clone()) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("stopped with an error: {:#}", e.error);
                    let died = e
                        .error
                        .downcast_ref::<epost_shipper::pipeline::PipelineError>()
                        .is_some_and(|p| {
                            matches!(p, epost_shipper::pipeline::PipelineError::Died { .. })
                        });
                    // A failure exit code makes the SCM run the restart actions (the
                    // non-crash-failure flag is set): right when the pipeline failed by
                    // itself, wrong when an admin's stop merely ran out of shutdown time
                    // (what was not acknowledged is sent again at the next start).
                    if stop.load(std::sync::atomic::Ordering::SeqCst) && !died {
                        0
                    } else {
                        u32::from(e.code)
                    }
                }
            },
        });
        tracing::info!(config = %config_path.display(), log = %log_path.display(), "epost-shipper {} service process starting", env!("CARGO_PKG_VERSION"));
        service::run(body, stop_wait).map_err(|e| {
            tracing::error!("{e}");
            to_failure(e)
        })
    }

    fn open_log(dir: &Path, path: &Path) -> std::io::Result<File> {
        std::fs::create_dir_all(dir)?;
        if std::fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
            let old = path.with_extension("log.1");
            let _ = std::fs::remove_file(&old);
            let _ = std::fs::rename(path, &old);
        }
        OpenOptions::new().create(true).append(true).open(path)
    }

    fn init_file_logging(file: File, level: &str, format: LogFormat) -> Result<(), Failure> {
        use tracing_subscriber::EnvFilter;
        let filter = match std::env::var("RUST_LOG") {
            Ok(v) if !v.is_empty() => EnvFilter::try_new(v),
            _ => EnvFilter::try_new(format!(
                "warn,epost_shipper={level},epost_shipper::cli={level}"
            )),
        }
        .map_err(|e| Failure::usage(anyhow!("bad --log-level / RUST_LOG: {e}")))?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file));
        match format {
            LogFormat::Text => builder.with_target(false).init(),
            LogFormat::Json => builder.json().init(),
        }
        Ok(())
    }
}
