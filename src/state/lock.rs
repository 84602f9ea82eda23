//! The lock that keeps two runs off the same stack: an OS file lock on `<suffix>.lock`,
//! released by the kernel when its holder dies, whose file also names the holder.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ensure_dir, io_err};
use crate::error::StateError;

/// Who holds a lock, as written into the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub started: DateTime<Utc>,
    pub command: String,
}

/// An exclusive lock on one stack's state, held until dropped.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock at `<state>.lock` or fails at once naming the holder.
    pub fn acquire(state_path: &Path, command: &str) -> Result<StateLock, StateError> {
        let path = state_path.with_extension("lock");
        if let Some(dir) = path.parent() {
            ensure_dir(dir).map_err(|e| io_err(dir, e))?;
        }
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    return Err(StateError::Locked {
                        path: state_path.display().to_string(),
                        pid: holder.as_ref().map(|h| h.pid).unwrap_or(0),
                        host: holder
                            .as_ref()
                            .map(|h| h.host.clone())
                            .unwrap_or_else(|| "unknown".into()),
                        started: holder
                            .map(|h| h.started.to_rfc3339())
                            .unwrap_or_else(|| "unknown".into()),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err(&path, e)),
            }
            // The previous holder may have removed the file between our open and lock; if the
            // path no longer names the file we locked, start again on the new one.
            if !same_file(&file, &path) {
                continue;
            }
            if let Some(prev) = read_holder(&mut file) {
                tracing::warn!(
                    pid = prev.pid,
                    host = %prev.host,
                    started = %prev.started,
                    "taking over a stale lock: the run that held it is no longer running"
                );
            }
            let me = LockHolder {
                pid: std::process::id(),
                host: gethostname::gethostname().to_string_lossy().into_owned(),
                started: Utc::now(),
                command: command.to_string(),
            };
            file.set_len(0).map_err(|e| io_err(&path, e))?;
            file.seek(SeekFrom::Start(0))
                .map_err(|e| io_err(&path, e))?;
            let body = serde_json::to_vec(&me).expect("holder serializes");
            file.write_all(&body).map_err(|e| io_err(&path, e))?;
            file.sync_all().map_err(|e| io_err(&path, e))?;
            return Ok(StateLock { file, path });
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock; a waiter that opened the old file
        // notices (same_file) and retries on a fresh one.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}
