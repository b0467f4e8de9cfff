//! The Windows service: registration with the service control manager (SCM) and the service
//! entry point that the SCM starts. Windows only; `src/cli/service.rs` is the command line
//! around it.
//!
//! The SCM starts `<exe> service run --config <abs path>`; that process calls [`run`], which
//! connects to the SCM and runs the given body on the service thread with a stop flag. A Stop
//! or Shutdown control sets the flag (the pipeline then flushes in-flight batches and writes
//! its checkpoint) and reports `StopPending` with a moving checkpoint until the body returns.

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service name (`sc start epost-shipper`).
pub const NAME: &str = "epost-shipper";
/// What services.msc shows.
pub const DISPLAY_NAME: &str = "epost-shipper (E-Post log shipper)";
const DESCRIPTION: &str = "Ships E-Post Mail Server logs (tail, parse, checkpoint) to Elasticsearch, Loki and OpenTelemetry.";
const SERVICE_TYPE: ServiceType = ServiceType::OWN_PROCESS;

const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
const ERROR_SERVICE_EXISTS: i32 = 1073;
const ERROR_SERVICE_MARKED_FOR_DELETE: i32 = 1072;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(
        "access denied: installing, removing or controlling a service needs an elevated (Run as administrator) prompt"
    )]
    AccessDenied,
    #[error(
        "a service named `{NAME}` already exists; remove it first with `epost-shipper service uninstall`"
    )]
    Exists,
    #[error(
        "the service `{NAME}` is marked for deletion; close services.msc (and any `sc` or Event Viewer window holding it) and try again"
    )]
    MarkedForDelete,
    #[error(
        "`service run` is what the Windows service control manager starts (`sc start {NAME}`); to run in a console use `epost-shipper run --config FILE`"
    )]
    NotUnderScm,
    #[error("{what}: {detail}")]
    Windows { what: &'static str, detail: String },
}

impl ServiceError {
    /// Bad usage (exit code 2) rather than a failure at run time.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ServiceError::Exists | ServiceError::NotUnderScm | ServiceError::AccessDenied
        )
    }
}

fn os_code(e: &windows_service::Error) -> Option<i32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    }
}

fn wrap(what: &'static str) -> impl FnOnce(windows_service::Error) -> ServiceError {
    move |error| match os_code(&error) {
        Some(ERROR_ACCESS_DENIED) => ServiceError::AccessDenied,
        Some(ERROR_SERVICE_EXISTS) => ServiceError::Exists,
        Some(ERROR_SERVICE_MARKED_FOR_DELETE) => ServiceError::MarkedForDelete,
        _ => ServiceError::Windows {
            what,
            detail: detail(&error),
        },
    }
}

/// Registers the service: automatic start, LocalSystem, restarted by the SCM after a crash,
/// running `exe args...`.
pub fn install(exe: &Path, args: Vec<OsString>) -> Result<(), ServiceError> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(wrap("cannot connect to the service control manager"))?;
    let info = ServiceInfo {
        name: OsString::from(NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: SERVICE_TYPE,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.to_path_buf(),
        launch_arguments: args,
        dependencies: vec![],
        account_name: None, // LocalSystem
        account_password: None,
    };
    let service = manager
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_CONFIG,
        )
        .map_err(wrap("cannot create the service"))?;
    if let Err(e) = service.set_description(DESCRIPTION) {
        tracing::warn!(error = %detail(&e), "cannot set the service description");
    }
    // Restart after a crash: 10 s, then 1 min, then every 5 min; the count resets after a day.
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    if let Err(e) = service.update_failure_actions(ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart(10), restart(60), restart(300)]),
    }) {
        tracing::warn!(error = %detail(&e), "cannot set the restart-on-failure actions");
    }
    // Without this flag the SCM runs the actions only when the process dies without reporting
    // SERVICE_STOPPED; a pipeline component that died reports STOPPED with a non-zero exit
    // code, and that must restart the service too.
    if let Err(e) = service.set_failure_actions_on_non_crash_failures(true) {
        tracing::warn!(error = %detail(&e), "cannot set the failure-actions-on-non-crash-failures flag");
    }
    Ok(())
}

/// How [`uninstall`] went.
#[derive(Debug, PartialEq, Eq)]
pub enum Uninstalled {
    Removed,
    /// Deleted, but something (services.msc…) still holds a handle: it goes when that closes.
    MarkedForDeletion,
    NotInstalled,
}

/// Stops the service if it runs (waiting up to `stop_timeout` for the final checkpoint) and
/// removes it.
pub fn uninstall(stop_timeout: Duration) -> Result<Uninstalled, ServiceError> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(wrap("cannot connect to the service control manager"))?;
    let service = match manager.open_service(
        NAME,
        ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
    ) {
        Ok(s) => s,
        Err(e) if os_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
            return Ok(Uninstalled::NotInstalled);
        }
        Err(e) => return Err(wrap("cannot open the service")(e)),
    };
    let status = service
        .query_status()
        .map_err(wrap("cannot query the service"))?;
    if status.current_state != ServiceState::Stopped {
        if status.current_state != ServiceState::StopPending {
            tracing::info!("stopping the service");
            service.stop().map_err(wrap("cannot stop the service"))?;
        }
        let started = Instant::now();
        loop {
            let s = service
                .query_status()
                .map_err(wrap("cannot query the service"))?;
            if s.current_state == ServiceState::Stopped {
                break;
            }
            if started.elapsed() > stop_timeout {
                tracing::warn!(after = ?stop_timeout, "the service has not stopped yet; removing it anyway (it is deleted once it stops)");
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    service
        .delete()
        .map_err(wrap("cannot delete the service"))?;
    drop(service);
    // Deletion completes when the last handle closes.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        match manager.open_service(NAME, ServiceAccess::QUERY_STATUS) {
            Err(e) if os_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
                return Ok(Uninstalled::Removed);
            }
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    Ok(Uninstalled::MarkedForDeletion)
}

/// The work the service does: runs until the flag is set, returns 0 on success or a
/// service-specific exit code (shown by `sc query` as SERVICE_SPECIFIC_EXIT_CODE).
pub type Body = Box<dyn FnOnce(Arc<AtomicBool>) -> u32 + Send>;

struct Pending {
    body: Body,
    stop_wait: Duration,
}

static PENDING: Mutex<Option<Pending>> = Mutex::new(None);

/// Connects to the SCM and runs `body` as the service; returns when the service has stopped.
/// `stop_wait` is how long a stop may take (the shutdown timeout plus margin), reported to
/// the SCM as the wait hint.
pub fn run(body: Body, stop_wait: Duration) -> Result<(), ServiceError> {
    *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending { body, stop_wait });
    define_windows_service!(ffi_service_main, service_main);
    service_dispatcher::start(NAME, ffi_service_main).map_err(|e| {
        if os_code(&e) == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
            ServiceError::NotUnderScm
        } else {
            wrap("cannot connect to the service control manager")(e)
        }
    })
}

/// Reports to the SCM; once `Stopped` is reported nothing else is (the stop heartbeat could
/// otherwise race it).
struct Reporter {
    handle: service_control_handler::ServiceStatusHandle,
    state: Mutex<(ServiceState, u32)>,
}

impl Reporter {
    fn report(&self, state: ServiceState, exit: ServiceExitCode, wait_hint: Duration) {
        let mut cur = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if cur.0 == ServiceState::Stopped {
            return;
        }
        let pending = matches!(
            state,
            ServiceState::StartPending | ServiceState::StopPending
        );
        let checkpoint = if pending && cur.0 == state {
            cur.1 + 1
        } else if pending {
            1
        } else {
            0
        };
        *cur = (state, checkpoint);
        let controls_accepted = match state {
            ServiceState::Running => ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
            _ => ServiceControlAccept::empty(),
        };
        let status = ServiceStatus {
            service_type: SERVICE_TYPE,
            current_state: state,
            controls_accepted,
            exit_code: exit,
            checkpoint,
            wait_hint: if pending { wait_hint } else { Duration::ZERO },
            process_id: None,
        };
        if let Err(e) = self.handle.set_service_status(status) {
            tracing::warn!(?state, error = %detail(&e), "cannot report the service status");
        }
    }
}

// Long on purpose: the Windows service's whole life in the order the SCM requires (register,
// start pending, running, stop pending, stopped).
fn service_main(_args: Vec<OsString>) {
    let Some(Pending { body, stop_wait }) =
        PENDING.lock().unwrap_or_else(|e| e.into_inner()).take()
    else {
        tracing::error!("service started twice in one process");
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let reporter: Arc<Mutex<Option<Arc<Reporter>>>> = Arc::new(Mutex::new(None));
    let handler = {
        let stop = stop.clone();
        let reporter = reporter.clone();
        move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                let first = !stop.swap(true, Ordering::SeqCst);
                if first {
                    tracing::info!(?control, "service stop requested");
                }
                let r = reporter.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(r) = r {
                    r.report(
                        ServiceState::StopPending,
                        ServiceExitCode::NO_ERROR,
                        stop_wait,
                    );
                    if first {
                        // Keep the SCM patient while batches are flushed.
                        std::thread::spawn(move || {
                            loop {
                                std::thread::sleep(Duration::from_secs(1));
                                if r.state.lock().unwrap_or_else(|e| e.into_inner()).0
                                    == ServiceState::Stopped
                                {
                                    break;
                                }
                                r.report(
                                    ServiceState::StopPending,
                                    ServiceExitCode::NO_ERROR,
                                    stop_wait,
                                );
                            }
                        });
                    }
                }
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let handle = match service_control_handler::register(NAME, handler) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %detail(&e), "cannot register the service control handler");
            return;
        }
    };
    let r = Arc::new(Reporter {
        handle,
        state: Mutex::new((ServiceState::StartPending, 0)),
    });
    *reporter.lock().unwrap_or_else(|e| e.into_inner()) = Some(r.clone());
    r.report(
        ServiceState::StartPending,
        ServiceExitCode::NO_ERROR,
        Duration::from_secs(10),
    );
    // The pipeline starts in well under a second; from here on a stop is accepted.
    r.report(
        ServiceState::Running,
        ServiceExitCode::NO_ERROR,
        Duration::ZERO,
    );
    tracing::info!("service running");
    let code = body(stop.clone());
    if !stop.load(Ordering::SeqCst) {
        // The body ended by itself (an error): tell the SCM we are going down.
        r.report(
            ServiceState::StopPending,
            ServiceExitCode::NO_ERROR,
            stop_wait,
        );
    }
    let exit = if code == 0 {
        ServiceExitCode::NO_ERROR
    } else {
        ServiceExitCode::ServiceSpecific(code)
    };
    tracing::info!(exit_code = code, "service stopped");
    r.report(ServiceState::Stopped, exit, Duration::ZERO);
}

/// The error with its OS message (`windows_service::Error` displays "IO error in winapi call"
/// and hides the message in its source).
pub fn detail(e: &windows_service::Error) -> String {
    match e {
        windows_service::Error::Winapi(io) => format!("{e}: {io}"),
        _ => e.to_string(),
    }
}
