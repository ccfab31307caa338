//! One writer per soak directory: an advisory `flock` on `DIR/soak.lock`,
//! held for the soak's lifetime (the kernel releases it when the soak's
//! process dies, however it dies). The holder's PID is written into the
//! file, so a second soak or `--resume` of the same directory can say who
//! holds it.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::error::LabError;

/// The lock file's name in a soak's directory.
pub const LOCK_FILE: &str = "soak.lock";

/// The lock on one soak directory; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    _file: File,
}

impl DirLock {
    /// Take the lock on `dir` (which must exist): open `dir/soak.lock`
    /// (`O_CREAT|O_NOFOLLOW`, mode 0644), `flock(LOCK_EX|LOCK_NB)` it, and
    /// write this process's PID into it.
    ///
    /// # Errors
    /// [`LabError::Input`] when another process holds it (naming its PID);
    /// [`LabError::Io`] when the file cannot be opened, locked or written
    /// (`ELOOP`: a symlink was planted there).
    pub fn acquire(dir: &Path) -> Result<DirLock, LabError> {
        let path = dir.join(LOCK_FILE);
        let cannot = |e| LabError::io(format!("cannot lock {}", path.display()), e);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(cannot)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_string(),
                    pid => format!("process {pid}"),
                };
                return Err(LabError::Input(format!(
                    "{} is in use: {holder} holds {} (a soak or --resume runs on it); \
                     wait for it to end, or pick another directory",
                    dir.display(),
                    path.display()
                )));
            }
            Err(e) => return Err(cannot(e.into())),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(cannot)?;
        Ok(DirLock { path, _file: file })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
