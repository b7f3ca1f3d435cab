//! Reloading the config of a running tollgate (SPEC section 11): `SIGHUP`, or
//! `tollgate reload --config FILE`, which signals the pid in `[server] pid_file`.
//!
//! The reloader re-reads the file `serve` was started with, validates it exactly as
//! at start, and refuses it — every problem logged, the running config kept — when
//! it is invalid or changes a setting that needs a restart
//! ([`crate::config::reload::restart_only_changes`]). Otherwise the new config
//! replaces the old in one atomic swap ([`App::replace_config`]): requests that
//! started keep the snapshot they took, new requests see the new routes and prices,
//! and no listener or connection is touched. Contracts issued before carry their
//! own terms in their token, so they verify as issued.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::signal::unix::{signal, SignalKind};

use crate::app::App;
use crate::config::{self, reload::restart_only_changes, Config};

/// Why a reload did not take effect.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The new file does not validate: every problem, as `check` prints them.
    Invalid(Vec<String>),
    /// The new file changes settings that only a restart can change.
    NeedsRestart(Vec<&'static str>),
}

/// The background service that waits for `SIGHUP` and reloads.
pub struct Reloader {
    app: Arc<App>,
    /// The config as loaded at start (listen ports as written, 0 unresolved): what a
    /// new file is compared with.
    as_loaded: Config,
}

impl Reloader {
    /// A reloader for `app`, whose config was `as_loaded` before ports were resolved.
    pub fn new(app: Arc<App>, as_loaded: Config) -> Reloader {
        Reloader { app, as_loaded }
    }

    /// Reads the config file again and applies it, or says why not.
    pub async fn reload(&self) -> Result<usize, Refusal> {
        let file = self.as_loaded.file.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&file))
            .await
            .map_err(|e| Refusal::Invalid(vec![format!("reading the config failed: {e}")]))?;
        let mut new = match loaded {
            Ok(c) if c.unsupported().is_empty() => c,
            Ok(c) => return Err(Refusal::Invalid(lines(c.unsupported()))),
            Err(p) => return Err(Refusal::Invalid(lines(p.0))),
        };
        let restart = restart_only_changes(&self.as_loaded, &new);
        if !restart.is_empty() {
            return Err(Refusal::NeedsRestart(restart));
        }
        // The listeners stay where they are (port 0 was resolved once, at start).
        let running = self.app.cfg();
        new.server.listen = running.server.listen;
        if let (Some(n), Some(r)) = (new.admin.as_mut(), running.admin.as_ref()) {
            n.listen = r.listen;
        }
        if let (Some(n), Some(r)) = (new.gateway.as_mut(), running.gateway.as_ref()) {
            n.listen = r.listen;
        }
        if let Some(token) = new.admin.as_ref().and_then(|a| a.token.as_ref()) {
            crate::redact::register_secret(&token.0);
        }
        let routes = new.routes.len();
        self.app.replace_config(new);
        Ok(routes)
    }

    async fn reload_and_log(&self) {
        let file = self.as_loaded.file.display().to_string();
        match self.reload().await {
            Ok(routes) => tracing::info!(file, routes, "config reloaded"),
            Err(Refusal::Invalid(problems)) => {
                for p in &problems {
                    tracing::error!("config reload: {p}");
                }
                tracing::error!(
                    file,
                    problems = problems.len(),
                    "config reload refused: the new config is invalid; keeping the running one"
                );
            }
            Err(Refusal::NeedsRestart(settings)) => tracing::error!(
                file,
                settings = settings.join(", "),
                "config reload refused: these settings only change with a restart; keeping the running config"
            ),
        }
    }
}

fn lines(problems: Vec<config::Problem>) -> Vec<String> {
    problems.into_iter().map(|p| p.to_string()).collect()
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot handle SIGHUP: reloading is off");
                return;
            }
        };
        // Written only now that SIGHUP reloads instead of killing the process.
        let pid_file = self.as_loaded.server.pid_file.clone();
        if let Some(path) = &pid_file {
            if let Err(e) = write_pid(path) {
                tracing::error!(path = %path.display(), error = %e, "cannot write server.pid_file");
            }
        }
        loop {
            tokio::select! {
                got = hup.recv() => match got {
                    Some(()) => self.reload_and_log().await,
                    None => break,
                },
                _ = shutdown.changed() => break,
            }
        }
        if let Some(path) = &pid_file {
            remove_pid(path);
        }
    }
}

fn write_pid(path: &Path) -> std::io::Result<()> {
    // Written whole to a temporary file and renamed, so `reload` never reads half.
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, format!("{}\n", std::process::id()))?;
    std::fs::rename(&tmp, path)
}

/// Removes the pid file if it still names this process.
fn remove_pid(path: &Path) {
    if read_pid(path).ok() == Some(std::process::id() as i32) {
        let _ = std::fs::remove_file(path);
    }
}

/// The pid in a pid file.
pub fn read_pid(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| format!("{}: not a process id: {:?}", path.display(), text.trim()))
}

/// Sends `SIGHUP` to the tollgate whose pid is in `pid_file` (the `reload` command).
/// Refuses a pid that is not a running tollgate (a stale file after a crash whose
/// pid was reused), so reload never signals a stranger.
pub fn signal_reload(pid_file: &Path) -> Result<i32, String> {
    let pid = read_pid(pid_file)?;
    let cmdline = PathBuf::from(format!("/proc/{pid}/cmdline"));
    if Path::new("/proc/self/cmdline").exists() {
        let cmd = std::fs::read(&cmdline).map_err(|_| {
            format!(
                "{}: process {pid} is not running (a stale pid file?)",
                pid_file.display()
            )
        })?;
        let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
        if !String::from_utf8_lossy(argv0).contains("tollgate") {
            return Err(format!(
                "{}: process {pid} is not tollgate (a stale pid file?)",
                pid_file.display()
            ));
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .map_err(|e| format!("cannot signal process {pid}: {e}"))?;
    Ok(pid)
}
