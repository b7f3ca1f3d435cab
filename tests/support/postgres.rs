//! A throwaway PostgreSQL cluster for tests: Debian's `initdb` in a temporary
//! directory, a free port on 127.0.0.1, `pg_ctl start -w`, and a fresh database per
//! test (`CREATE DATABASE`). Never a system service, never a fixed port.
//!
//! Tests share one cluster per test binary while any of them holds it
//! ([`PgCluster::shared`] hands out an `Arc`); when the last holder drops it, the
//! cluster is stopped (`pg_ctl stop -m immediate`) and its directory removed. Run
//! as root (initdb and postgres refuse root), the cluster's directory is given to
//! the `postgres` user and every server command runs through `runuser -u postgres`;
//! as a normal user the commands run directly. The cluster lives under the
//! temporary directory (`TMPDIR`; `/dev/shm` is a good choice where disk is short),
//! with small WAL segments, and each test's database is dropped after it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

/// The superuser the clusters are initialised with (trust auth on loopback only).
pub const PG_USER: &str = "tollgate";

/// A running throwaway cluster.
pub struct PgCluster {
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// Where Debian installs the server binaries (newest major version first).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort();
    versions
        .pop()
        .expect("PostgreSQL server binaries (run scripts/install-test-deps)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl PgCluster {
    /// The cluster shared by the tests of this binary, started when none runs.
    pub fn shared() -> Arc<PgCluster> {
        static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.upgrade() {
            return c;
        }
        let c = Arc::new(PgCluster::start());
        *slot = Arc::downgrade(&c);
        c
    }

    /// Starts a new cluster of its own.
    pub fn start() -> PgCluster {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "tollgate-pg-{}-{nanos}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "chown of {} to postgres", dir.display());
        }
        let mut cluster = PgCluster {
            dir,
            data,
            port: 0,
            as_postgres,
        };
        let bin = bin_dir();
        cluster.run(
            &bin.join("initdb"),
            &[
                "-D",
                &cluster.data.to_string_lossy(),
                "-U",
                PG_USER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
                "--wal-segsize=1",
            ],
        );
        // A port can be taken between asking and binding: try a few.
        for _ in 0..5 {
            let port = free_port();
            let opts = format!(
                "-p {port} -h 127.0.0.1 -k {} -F -c max_connections=200 \
                 -c min_wal_size=2MB -c max_wal_size=16MB -c shared_buffers=16MB",
                cluster.dir.display()
            );
            let log = cluster.dir.join("postgres.log");
            if cluster.try_run(
                &bin.join("pg_ctl"),
                &[
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    &cluster.data.to_string_lossy(),
                    "-l",
                    &log.to_string_lossy(),
                    "-o",
                    &opts,
                ],
            ) {
                cluster.port = port;
                return cluster;
            }
        }
        let log = std::fs::read_to_string(cluster.dir.join("postgres.log")).unwrap_or_default();
        panic!("pg_ctl start failed:\n{log}");
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args).current_dir(&self.dir);
        cmd
    }

    fn try_run(&self, program: &Path, args: &[&str]) -> bool {
        self.command(program, args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn run(&self, program: &Path, args: &[&str]) {
        let out = self
            .command(program, args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a fresh, empty database and returns its name.
    pub async fn create_database(&self, name: &str) -> String {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let clean: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect::<String>()
            .to_ascii_lowercase();
        let db = format!("t{}_{clean}", SEQ.fetch_add(1, Ordering::Relaxed));
        let (client, conn) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to the test cluster");
        let task = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE \"{db}\""))
            .await
            .expect("CREATE DATABASE");
        drop(client);
        let _ = task.await;
        db
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let pg_ctl = bin_dir().join("pg_ctl");
            let data = self.data.to_string_lossy().into_owned();
            let _ = self
                .command(&pg_ctl, &["stop", "-m", "immediate", "-w", "-D", &data])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh database on the shared cluster, holding the cluster while it lives;
/// dropped (`dropdb --force`) with it.
pub struct PgDatabase {
    /// Its URL.
    pub url: String,
    name: String,
    cluster: Arc<PgCluster>,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let port = self.cluster.port.to_string();
        let _ = Command::new(bin_dir().join("dropdb"))
            .args([
                "--force",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                PG_USER,
                &self.name,
            ])
            .output();
    }
}

impl PgDatabase {
    /// Creates a fresh database named after `name` on the shared cluster.
    pub async fn new(name: &str) -> PgDatabase {
        let cluster = tokio::task::spawn_blocking(PgCluster::shared)
            .await
            .expect("starting the test cluster");
        let name = cluster.create_database(name).await;
        PgDatabase {
            url: cluster.url(&name),
            name,
            cluster,
        }
    }
}
