//! A node script under `tests/browser/` (playwright-core driving Debian's Chromium)
//! that talks to the test in lines: it prints one event a line on stdout, the test
//! answers on its stdin. Started in its own process group and stopped (SIGTERM,
//! then SIGKILL) by that group's id on drop; every wait is bounded.
//!
//! `SCREENSHOT <path>` lines are collected on the way; a `FAIL <reason>` line, an
//! early exit or a timeout panics with the script's output and tollgate's stderr.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{TempDir, Tollgate};

/// `tests/browser/`, where the scripts and their `node_modules` live.
pub fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

pub struct NodeScript {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every stdout line so far.
    pub seen: Vec<String>,
    /// The `SCREENSHOT` paths so far.
    pub screenshots: Vec<PathBuf>,
    stderr_path: PathBuf,
    _dir: TempDir,
}

impl NodeScript {
    /// `node tests/browser/<script> <args…>`.
    pub fn start(script: &str, args: &[String]) -> NodeScript {
        let dir = script_dir();
        assert!(
            dir.join("node_modules/playwright-core/package.json")
                .is_file(),
            "playwright-core is not installed in {}: run scripts/install-test-deps",
            dir.display()
        );
        let tmp = TempDir::new("node");
        let stderr_path = tmp.path().join("node-stderr.log");
        let mut cmd = Command::new("node");
        cmd.arg(dir.join(script))
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn node ({e}): run scripts/install-test-deps"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        NodeScript {
            name: script.to_string(),
            child,
            stdin,
            lines: rx,
            seen: Vec::new(),
            screenshots: Vec::new(),
            stderr_path,
            _dir: tmp,
        }
    }

    /// What the script wrote to stderr (its HTTP log, console, page errors).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Panics with everything that helps: the script's lines and stderr, tollgate's stderr.
    pub fn die(&self, tg: &Tollgate, why: &str) -> ! {
        panic!(
            "{name} failed: {why}\n\
             --- {name} stdout ---\n{}\n\
             --- {name} stderr ---\n{}\n\
             --- tollgate stderr ---\n{}",
            self.seen.join("\n"),
            self.stderr(),
            tg.stderr(),
            name = self.name,
        );
    }

    /// The next event line (screenshots are collected on the way), or a panic on
    /// `FAIL`, end of output or timeout.
    pub fn next(&mut self, tg: &Tollgate, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.die(tg, &format!("no line from the script within {timeout:?}"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.exit_status(Duration::from_secs(10));
                    self.die(tg, &format!("the script ended early ({status:?})"))
                }
            };
            self.seen.push(line.clone());
            if let Some(p) = line.strip_prefix("SCREENSHOT ") {
                eprintln!("browser screenshot: {p}");
                self.screenshots.push(PathBuf::from(p));
                continue;
            }
            if line.starts_with("FAIL") {
                let _ = self.exit_status(Duration::from_secs(10));
                self.die(tg, &line);
            }
            return line;
        }
    }

    /// The next line, which must be `word` or start with `word `; returns the rest.
    pub fn expect(&mut self, tg: &Tollgate, word: &str, timeout: Duration) -> String {
        let line = self.next(tg, timeout);
        if line == word {
            return String::new();
        }
        match line.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
            Some(rest) => rest.to_string(),
            None => self.die(tg, &format!("expected {word}, got {line:?}")),
        }
    }

    /// Writes one line to the script's stdin.
    pub fn say(&mut self, tg: &Tollgate, line: &str) {
        let ok = self
            .stdin
            .as_mut()
            .map(|s| writeln!(s, "{line}").and_then(|()| s.flush()).is_ok())
            .unwrap_or(false);
        if !ok {
            self.die(tg, &format!("could not write {line:?} to the script"));
        }
    }

    /// Closes stdin and waits (bounded) for the script to exit.
    pub fn exit_status(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM first: playwright closes Chromium (its own process group) on it.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        if self.exit_status(Duration::from_secs(10)).is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.wait();
        }
    }
}
