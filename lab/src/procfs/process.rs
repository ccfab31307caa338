//! Reading one stuck process from `/proc`: its status, threads, blocking
//! system calls and fd table, into a [`ProcessState`] (the record the
//! forensics names and judges; `who`, `node` and `backtrace` are left for it
//! to fill).
//!
//! # References
//! - [proc_pid_status(5)](https://man7.org/linux/man-pages/man5/proc_pid_status.5.html),
//!   [proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html),
//!   [proc_pid_wchan(5)](https://man7.org/linux/man-pages/man5/proc_pid_wchan.5.html),
//!   [proc_pid_syscall(5)](https://man7.org/linux/man-pages/man5/proc_pid_syscall.5.html),
//!   [proc_pid_fd(5)](https://man7.org/linux/man-pages/man5/proc_pid_fd.5.html),
//!   [proc_pid_fdinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_fdinfo.5.html),
//!   [proc_pid_mem(5)](https://man7.org/linux/man-pages/man5/proc_pid_mem.5.html),
//!   [proc_pid_stack(5)](https://man7.org/linux/man-pages/man5/proc_pid_stack.5.html)

use std::fs;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

use super::status_field;
use super::Waiting;

/// `FUTEX_PRIVATE_FLAG` of `<linux/futex.h>`.
const FUTEX_PRIVATE_FLAG: u64 = 128;
/// `FUTEX_CMD_MASK` without the private and realtime flags.
const FUTEX_CMD_MASK: u64 = !(128 | 256);
/// Most polled fds read from a blocked `poll`.
const MAX_POLLED: u64 = 256;

/// One live process of a stuck trial.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessState {
    /// Its PID.
    pub pid: i32,
    /// Its parent's PID.
    pub ppid: i32,
    /// Who it is: `node 0.1`, `outside the plan, child of node 0`, or
    /// `outside the plan, orphaned` (its parent died; it came to the
    /// supervisor, the trial's subreaper).
    pub who: String,
    /// The node path, when it is a node of the plan.
    pub node: Option<String>,
    /// `comm` (the kernel's 15-byte name).
    pub comm: String,
    /// The command line, arguments joined by spaces.
    pub cmdline: String,
    /// Every thread, main thread first.
    pub threads: Vec<ThreadState>,
    /// The fd table, in fd order.
    pub fds: Vec<FdEntry>,
    /// All-thread backtraces from `gdb -batch` (`--gdb`).
    pub backtrace: Option<String>,
    /// How it waits, from its threads ([`ProcessState::waiting`]): with a
    /// timeout (it wakes by itself), without one, running, exited or
    /// unknown. Filled by [`read_process`].
    #[serde(default)]
    pub wait: Waiting,
}

impl ProcessState {
    /// Whether it is a zombie: it has exited and waits to be reaped (every
    /// thread read in state `Z`), so there is nothing left to attach to.
    pub fn is_zombie(&self) -> bool {
        !self.threads.is_empty() && self.threads.iter().all(|t| t.state == "Z")
    }
}

/// One thread of a stuck process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadState {
    /// Its TID.
    pub tid: i32,
    /// The scheduler state letter of `/proc/PID/task/TID/stat` (`S`, `D`, `R`, ...).
    pub state: String,
    /// The kernel function it sleeps in (`anon_pipe_read`, `futex_do_wait`).
    pub wchan: String,
    /// The system call it is blocked in (`read`, `poll`, `futex`, ...), from
    /// `/proc/PID/task/TID/syscall`.
    pub syscall: Option<String>,
    /// The fds that call waits on: `read(3)` gives one read wait, `poll` one
    /// per polled fd.
    pub waits_on: Vec<FdWait>,
    /// For a futex wait: whether it is a private futex (`FUTEX_PRIVATE_FLAG`).
    pub futex_private: Option<bool>,
    /// The kernel stack (`/proc/PID/task/TID/stack`, root only).
    pub kernel_stack: Vec<String>,
    /// Whether the call it is blocked in ends by itself once a timeout given
    /// in its arguments runs out (the test of [`super::in_timed_wait`]).
    #[serde(default)]
    pub timed_wait: bool,
}

/// An fd a blocked thread waits on, and for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdWait {
    /// The fd.
    pub fd: i32,
    /// Waiting to write (else to read).
    pub write: bool,
}

/// One entry of a process's fd table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdEntry {
    /// The fd number.
    pub fd: i32,
    /// The link target (`pipe:[93211]`, `/dev/null`, `anon_inode:[pidfd]`).
    pub target: String,
    /// The pipe inode, for a pipe.
    pub pipe: Option<u64>,
    /// Access mode: `r`, `w` or `rw`.
    pub mode: String,
    /// Whether the fd is close-on-exec.
    pub cloexec: bool,
}

/// Read process `pid`, or `None` when it is gone; its kernel stacks and its
/// command line only when asked. `who` and `node` are filled in by the
/// caller (the forensics).
pub fn read_process(pid: i32, kernel_stacks: bool, with_cmdline: bool) -> Option<ProcessState> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| status_field(&status, name).unwrap_or_default().to_string();
    let cmdline = if with_cmdline {
        cmdline(pid).unwrap_or_default()
    } else {
        String::new()
    };
    let mut tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|&t| (t != pid, t));
    let mem = fs::File::open(format!("/proc/{pid}/mem")).ok();
    let threads = tids
        .iter()
        .filter_map(|&tid| read_thread(pid, tid, mem.as_ref(), kernel_stacks))
        .collect();
    let mut p = ProcessState {
        pid,
        ppid: field("PPid:").parse().unwrap_or(0),
        comm: field("Name:"),
        cmdline,
        threads,
        fds: read_fds(pid),
        ..ProcessState::default()
    };
    p.wait = p.waiting();
    Some(p)
}

/// The command line of process `pid` (`/proc/PID/cmdline`, its arguments
/// joined by spaces); `None` when it is gone. Empty for a zombie or a
/// kernel thread.
fn cmdline(pid: i32) -> Option<String> {
    fs::read(format!("/proc/{pid}/cmdline")).ok().map(|b| {
        b.split(|&c| c == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn read_thread(
    pid: i32,
    tid: i32,
    mem: Option<&fs::File>,
    kernel_stacks: bool,
) -> Option<ThreadState> {
    let dir = format!("/proc/{pid}/task/{tid}");
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    let state = super::stat_field(&stat, 3).unwrap_or("?").to_string();
    let wchan = fs::read_to_string(format!("{dir}/wchan"))
        .map(|w| w.trim().to_string())
        .unwrap_or_default();
    let mut t = ThreadState {
        tid,
        state,
        wchan: if wchan == "0" { String::new() } else { wchan },
        ..ThreadState::default()
    };
    if let Some(call) = fs::read_to_string(format!("{dir}/syscall"))
        .ok()
        .and_then(|s| parse_syscall(&s))
    {
        t.syscall = Some(syscall_name(call.nr));
        t.timed_wait = call.is_timed_wait();
        t.waits_on = waits_on(&call, mem);
        if call.nr == libc::SYS_futex && is_futex_wait(call.args[1]) {
            t.futex_private = Some(call.args[1] & FUTEX_PRIVATE_FLAG != 0);
        }
    }
    if kernel_stacks {
        t.kernel_stack = fs::read_to_string(format!("{dir}/stack"))
            .map(|s| {
                s.lines()
                    .map(|l| l.split_once(' ').map_or(l, |(_, f)| f).to_string())
                    .collect()
            })
            .unwrap_or_default();
    }
    Some(t)
}

/// A blocked thread's system call: its number and six arguments.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Syscall {
    pub(super) nr: i64,
    pub(super) args: [u64; 6],
}

/// Parse `/proc/PID/task/TID/syscall`: `NR ARG1 .. ARG6 SP PC` (hex
/// arguments). `running` and `-1 SP PC` (blocked outside a system call) give
/// `None`.
pub(super) fn parse_syscall(text: &str) -> Option<Syscall> {
    let mut parts = text.split_whitespace();
    let nr: i64 = parts.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let mut args = [0u64; 6];
    for a in &mut args {
        let hex = parts.next()?;
        *a = u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok()?;
    }
    Some(Syscall { nr, args })
}

/// The name of system call `nr` on the running architecture (the
/// `syscalls` crate's table, generated from the kernel's own tables for
/// x86_64, aarch64 and the other Linux architectures), or `syscall N` for a
/// number it does not know.
fn syscall_name(nr: i64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(syscalls::Sysno::new)
        .map_or_else(|| format!("syscall {nr}"), |s| s.name().to_string())
}

/// The fds a blocked call waits on: the fd of `read`/`write`, or the polled
/// fds of `poll`/`ppoll`, read from the process's memory.
fn waits_on(call: &Syscall, mem: Option<&fs::File>) -> Vec<FdWait> {
    let fd = call.args[0] as i32;
    match call.nr {
        n if n == libc::SYS_read || n == libc::SYS_readv => vec![FdWait { fd, write: false }],
        n if n == libc::SYS_write || n == libc::SYS_writev => vec![FdWait { fd, write: true }],
        n if is_poll(n) => mem.map_or_else(Vec::new, |m| polled(m, call.args[0], call.args[1])),
        _ => Vec::new(),
    }
}

fn is_poll(nr: i64) -> bool {
    #[cfg(target_arch = "x86_64")]
    if nr == libc::SYS_poll {
        return true;
    }
    nr == libc::SYS_ppoll
}

/// The `struct pollfd` array at `addr` (`nfds` entries) of a blocked poll:
/// fds asked for `POLLIN` are read waits, for `POLLOUT` write waits.
fn polled(mem: &fs::File, addr: u64, nfds: u64) -> Vec<FdWait> {
    let n = nfds.min(MAX_POLLED) as usize;
    let mut buf = vec![0u8; n * 8];
    if mem.read_exact_at(&mut buf, addr).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for entry in buf.chunks_exact(8) {
        let fd = i32::from_ne_bytes(entry[0..4].try_into().expect("4 bytes"));
        let events = i16::from_ne_bytes(entry[4..6].try_into().expect("2 bytes"));
        if fd < 0 {
            continue;
        }
        if events & libc::POLLOUT != 0 {
            out.push(FdWait { fd, write: true });
        }
        // A poll with no events still wakes on POLLHUP: that is how a
        // lifeline is watched, so it counts as a read wait.
        if events & libc::POLLIN != 0 || events & (libc::POLLIN | libc::POLLOUT) == 0 {
            out.push(FdWait { fd, write: false });
        }
    }
    out
}

/// Whether a futex call is a wait (`FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, ...).
pub(super) fn is_futex_wait(op: u64) -> bool {
    matches!(op & FUTEX_CMD_MASK, 0 | 9 | 6 | 11 | 13)
}

/// The fd table of `pid`, in fd order: link targets, pipe inodes and the
/// flags of `fdinfo`. Empty when the process is gone; fds that close while
/// the table is read are skipped.
pub fn read_fds(pid: i32) -> Vec<FdEntry> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<FdEntry> = dir
        .flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?.to_string_lossy().into_owned();
            let flags = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix("flags:"))
                        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                })
                .unwrap_or(0);
            Some(FdEntry {
                fd,
                pipe: pipe_inode(&target),
                target,
                mode: match flags & libc::O_ACCMODE as u32 {
                    0 => "r",
                    1 => "w",
                    _ => "rw",
                }
                .to_string(),
                cloexec: flags & libc::O_CLOEXEC as u32 != 0,
            })
        })
        .collect();
    fds.sort_unstable_by_key(|f| f.fd);
    fds
}

/// The inode of a `pipe:[N]` link target.
pub(super) fn pipe_inode(target: &str) -> Option<u64> {
    target
        .strip_prefix("pipe:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_names_come_from_the_running_architecture_s_table() {
        for (nr, name) in [
            (libc::SYS_read, "read"),
            (libc::SYS_ppoll, "ppoll"),
            (libc::SYS_futex, "futex"),
            (libc::SYS_waitid, "waitid"),
            (libc::SYS_epoll_pwait, "epoll_pwait"),
        ] {
            assert_eq!(syscall_name(nr), name);
        }
        assert_eq!(syscall_name(-1), "syscall -1");
        assert_eq!(syscall_name(100_000), "syscall 100000");
    }

    #[test]
    fn syscall_lines_parse() {
        let s = parse_syscall("0 0x3 0x7ffd2a 0x1 0x0 0x0 0x0 0x7ffd10 0x7f12\n").unwrap();
        assert_eq!(s.nr, 0);
        assert_eq!(s.args[0], 3);
        assert_eq!(s.args[1], 0x7ffd2a);
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall("-1 0x7ffd10 0x7f12\n"), None);
        assert!(is_futex_wait(128)); // FUTEX_WAIT_PRIVATE
        assert!(is_futex_wait(9 | 128)); // FUTEX_WAIT_BITSET_PRIVATE
        assert!(!is_futex_wait(1 | 128)); // FUTEX_WAKE_PRIVATE
        assert_eq!(pipe_inode("pipe:[93211]"), Some(93211));
        assert_eq!(pipe_inode("/dev/null"), None);
    }

    #[test]
    fn reads_this_process_fd_table() {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let me = std::process::id() as i32;
        let p = read_process(me, false, true).unwrap();
        let inode = rustix::fs::fstat(&r).unwrap().st_ino;
        let ends: Vec<&FdEntry> = p.fds.iter().filter(|f| f.pipe == Some(inode)).collect();
        assert_eq!(ends.len(), 2, "{:?}", p.fds);
        assert!(ends.iter().all(|f| f.cloexec));
        assert!(ends.iter().any(|f| f.mode == "r") && ends.iter().any(|f| f.mode == "w"));
        assert_eq!(p.threads[0].tid, me);
        drop((r, w));
    }
}
