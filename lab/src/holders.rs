//! Who holds a pipe: the processes and fds whose `/proc/PID/fd` link names
//! `pipe:[INODE]`, with their access mode. Reading `/proc` is the right tool
//! here: the holders are alive and stuck, and the question is what their fd
//! tables hold, not whether they have exited.

use std::fmt;

/// One fd that refers to a pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The process.
    pub pid: i32,
    /// The fd number in it.
    pub fd: i32,
    /// Whether that fd is open for writing (`flags` of `/proc/PID/fdinfo/FD`).
    pub write: bool,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} fd {} ({})",
            self.pid,
            self.fd,
            if self.write { "write" } else { "read" }
        )
    }
}

/// Every fd of the processes `pids` that refers to `pipe:[inode]`.
/// Processes that vanish meanwhile are skipped.
///
/// # References
/// - [proc_pid_fd(5)](https://man7.org/linux/man-pages/man5/proc_pid_fd.5.html),
///   [proc_pid_fdinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_fdinfo.5.html)
pub fn pipe_holders(inode: u64, pids: &[i32]) -> Vec<Holder> {
    let target = format!("pipe:[{inode}]");
    let mut out = Vec::new();
    for &pid in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for entry in dir.flatten() {
            let Ok(link) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if link.as_os_str() != target.as_str() {
                continue;
            }
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let write = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix("flags:"))
                        .and_then(|f| i64::from_str_radix(f.trim(), 8).ok())
                })
                .is_some_and(|flags| flags & 0o3 != 0);
            out.push(Holder { pid, fd, write });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn finds_both_ends_of_a_pipe_in_this_process() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let inode = rustix::fs::fstat(r.as_fd()).unwrap().st_ino;
        let me = std::process::id() as i32;
        let found = pipe_holders(inode, &[me]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|h| h.write));
        assert!(found.iter().any(|h| !h.write));
        drop(w);
        assert_eq!(pipe_holders(inode, &[me]).len(), 1);
    }
}
