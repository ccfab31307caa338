//! How a process of a stuck trial waits: whether a thread sits in a system
//! call that ends by itself when a timeout given in its arguments runs out
//! (a sleep, a timed futex, `poll`, `select` or `epoll_wait` wait), or in one
//! that only another process (or a signal) can end. The quiescence evidence
//! of a trial ([`in_timed_wait`]) and the forensics
//! ([`ThreadState::timed_wait`], [`ProcessState::waiting`]) read the same
//! test ([`Syscall::is_timed_wait`]).
//!
//! # References
//! - [proc_pid_syscall(5)](https://man7.org/linux/man-pages/man5/proc_pid_syscall.5.html),
//!   [proc_pid_stat(5)](https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html)

use std::fs;

use serde::{Deserialize, Serialize};

use super::process::{is_futex_wait, parse_syscall, Syscall};
use super::{ProcessState, ThreadState};

impl ProcessState {
    /// How it waits, from its threads' states and blocking calls (the
    /// exited threads of a live process aside): [`Waiting::Running`] when a
    /// thread is runnable, else [`Waiting::WithTimeout`] when a thread is
    /// asleep in a call with a timeout ([`ThreadState::timed_wait`]), else
    /// [`Waiting::Unknown`] when an asleep thread's call could not be read,
    /// else [`Waiting::WithoutTimeout`] (every thread asleep in a call
    /// without a timeout, or stopped); [`Waiting::Exited`] for a zombie,
    /// [`Waiting::Unknown`] when no thread was read.
    pub fn waiting(&self) -> Waiting {
        if self.is_zombie() {
            return Waiting::Exited;
        }
        let live: Vec<&ThreadState> = self
            .threads
            .iter()
            .filter(|t| !matches!(t.state.as_str(), "Z" | "X"))
            .collect();
        let kinds: Vec<Waiting> = live.iter().map(|t| t.waiting()).collect();
        [Waiting::Running, Waiting::WithTimeout, Waiting::Unknown]
            .into_iter()
            .find(|k| kinds.contains(k))
            .unwrap_or(if live.is_empty() {
                Waiting::Unknown
            } else {
                Waiting::WithoutTimeout
            })
    }

    /// The first thread asleep in a call with a timeout, if any.
    pub fn timed_thread(&self) -> Option<&ThreadState> {
        self.threads
            .iter()
            .find(|t| t.waiting() == Waiting::WithTimeout)
    }
}

/// How a process (or a thread) of a stuck trial waits: whether it can wake
/// by itself. Written in kebab-case in the diagnosis's JSON (`"wait":
/// "with-timeout"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Waiting {
    /// Asleep in calls without a timeout (a pipe `read`, `wait4`, a futex
    /// or `poll` wait without one), or stopped: only another process, or a
    /// signal, can wake it.
    WithoutTimeout,
    /// Asleep in a call with a timeout (`nanosleep`, `clock_nanosleep`, a
    /// timed futex, `poll`, `select` or `epoll_wait` wait): it wakes by
    /// itself when the timeout runs out.
    WithTimeout,
    /// Runnable: on a CPU or waiting for one.
    Running,
    /// Exited, not reaped (a zombie).
    Exited,
    /// Asleep in a call that could not be read
    /// (`/proc/PID/task/TID/syscall` needs ptrace access), or nothing was
    /// read.
    #[default]
    Unknown,
}

impl Waiting {
    /// In words, as the diagnosis prints it after a process: `waits with
    /// a timeout`, `waits without a timeout`, `is running`, `has exited`,
    /// `waits in a call that could not be read`.
    pub fn words(self) -> &'static str {
        match self {
            Waiting::WithoutTimeout => "waits without a timeout",
            Waiting::WithTimeout => "waits with a timeout",
            Waiting::Running => "is running",
            Waiting::Exited => "has exited",
            Waiting::Unknown => "waits in a call that could not be read",
        }
    }
}

impl ThreadState {
    /// How it waits, from its state letter and its call:
    /// runnable (`R`), exited (`Z`, `X`), stopped (`T`, `t`: without a
    /// timeout), else asleep: with or without a timeout, or unknown when
    /// its call could not be read.
    pub fn waiting(&self) -> Waiting {
        match self.state.as_str() {
            "R" => Waiting::Running,
            "Z" | "X" => Waiting::Exited,
            "T" | "t" => Waiting::WithoutTimeout,
            _ if self.timed_wait => Waiting::WithTimeout,
            _ if self.syscall.is_none() => Waiting::Unknown,
            _ => Waiting::WithoutTimeout,
        }
    }
}

/// Whether thread `tid` of `pid` sits in a system call that ends by itself
/// when its timeout runs out: a sleep (`nanosleep`, `clock_nanosleep`), a
/// `poll`/`select`/`epoll_wait` with a timeout, a futex wait (`futex`,
/// `futex_waitv`), `rt_sigtimedwait`, `semtimedop`, `mq_timedreceive`,
/// `mq_timedsend`, `recvmmsg` or `io_getevents` with one. False when the call
/// waits without a timeout, when the thread runs, or when
/// `/proc/PID/task/TID/syscall` cannot be read (it needs ptrace access: the
/// supervisor is the trial's subreaper). A timeout that is not in the
/// call's arguments (a socket's `SO_RCVTIMEO`) is not seen. The forensics
/// reads the same test per thread ([`ThreadState::timed_wait`]).
///
/// # References
/// - [proc_pid_syscall(5)](https://man7.org/linux/man-pages/man5/proc_pid_syscall.5.html),
///   [nanosleep(2)](https://man7.org/linux/man-pages/man2/nanosleep.2.html),
///   [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html),
///   [select(2)](https://man7.org/linux/man-pages/man2/select.2.html),
///   [epoll_wait(2)](https://man7.org/linux/man-pages/man2/epoll_wait.2.html),
///   [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html),
///   Linux `kernel/futex/syscalls.c` (`futex_waitv`)
pub fn in_timed_wait(pid: i32, tid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
        .ok()
        .and_then(|s| parse_syscall(&s))
        .is_some_and(|c| c.is_timed_wait())
}

impl Syscall {
    /// Whether the call ends by itself once a timeout given in its
    /// arguments runs out: an int of milliseconds that is not negative
    /// (`poll`, `epoll_wait`), else a pointer to a timeout that is not
    /// NULL (NULL: wait for ever).
    pub(super) fn is_timed_wait(&self) -> bool {
        let a = &self.args;
        #[cfg(target_arch = "x86_64")]
        {
            match self.nr {
                libc::SYS_poll => return a[2] as i32 >= 0,
                libc::SYS_select => return a[4] != 0,
                libc::SYS_epoll_wait => return a[3] as i32 >= 0,
                _ => {}
            }
        }
        match self.nr {
            libc::SYS_nanosleep | libc::SYS_clock_nanosleep => true,
            libc::SYS_ppoll => a[2] != 0,
            libc::SYS_pselect6 => a[4] != 0,
            libc::SYS_epoll_pwait => a[3] as i32 >= 0,
            libc::SYS_epoll_pwait2 => a[3] != 0,
            libc::SYS_futex => is_futex_wait(a[1]) && a[3] != 0,
            libc::SYS_futex_waitv => a[3] != 0,
            libc::SYS_rt_sigtimedwait => a[2] != 0,
            libc::SYS_semtimedop => a[3] != 0,
            libc::SYS_mq_timedreceive | libc::SYS_mq_timedsend => a[4] != 0,
            libc::SYS_recvmmsg | libc::SYS_io_getevents => a[4] != 0,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::read_process;

    /// A call by its number in the `syscalls` crate's table of the running
    /// architecture (a second source beside `libc`'s constants).
    fn call(nr: syscalls::Sysno, args: [u64; 6]) -> Syscall {
        Syscall {
            nr: i64::from(nr.id()),
            args,
        }
    }

    #[test]
    fn timed_waits_are_told_from_untimed_ones() {
        use syscalls::Sysno;
        const NONE: u64 = 0;
        const TS: u64 = 0x7ff0; // a pointer to a struct timespec
        const FOREVER: u64 = u32::MAX as u64; // -1 as a C int
                                              // Sleeps always end by themselves.
        assert!(call(Sysno::clock_nanosleep, [1, 0, TS, 0, 0, 0]).is_timed_wait());
        assert!(call(Sysno::nanosleep, [TS, 0, 0, 0, 0, 0]).is_timed_wait());
        // futex(uaddr, FUTEX_WAIT_PRIVATE, val, timeout): with a timeout
        // pointer, or NULL; a wake is no wait at all.
        assert!(call(Sysno::futex, [1, 128, 0, TS, 0, 0]).is_timed_wait());
        assert!(!call(Sysno::futex, [1, 128, 0, NONE, 0, 0]).is_timed_wait());
        assert!(call(Sysno::futex, [1, 9 | 128, 0, TS, 0, 0xffff_ffff]).is_timed_wait());
        assert!(!call(Sysno::futex, [1, 1 | 128, 1, TS, 0, 0]).is_timed_wait());
        assert!(call(Sysno::futex_waitv, [1, 1, 0, TS, 1, 0]).is_timed_wait());
        assert!(!call(Sysno::futex_waitv, [1, 1, 0, NONE, 1, 0]).is_timed_wait());
        // ppoll(fds, nfds, tmo_p, sigmask) and epoll_pwait(epfd, events,
        // maxevents, timeout ms, sigmask): -1 (or NULL) waits for ever.
        assert!(call(Sysno::ppoll, [1, 1, TS, 0, 8, 0]).is_timed_wait());
        assert!(!call(Sysno::ppoll, [1, 1, NONE, 0, 8, 0]).is_timed_wait());
        assert!(call(Sysno::epoll_pwait, [3, 1, 8, 100, 0, 8]).is_timed_wait());
        assert!(!call(Sysno::epoll_pwait, [3, 1, 8, FOREVER, 0, 8]).is_timed_wait());
        assert!(call(Sysno::pselect6, [4, 1, 0, 0, TS, 0]).is_timed_wait());
        assert!(!call(Sysno::pselect6, [4, 1, 0, 0, NONE, 0]).is_timed_wait());
        assert!(call(Sysno::rt_sigtimedwait, [1, 0, TS, 8, 0, 0]).is_timed_wait());
        // Calls that have no timeout at all.
        for nr in [Sysno::read, Sysno::write, Sysno::waitid, Sysno::wait4] {
            assert!(!call(nr, [3, 1, 1, 4, 0, 0]).is_timed_wait(), "{nr}");
        }
        #[cfg(target_arch = "x86_64")]
        {
            assert!(call(Sysno::poll, [1, 1, 20, 0, 0, 0]).is_timed_wait());
            assert!(!call(Sysno::poll, [1, 1, FOREVER, 0, 0, 0]).is_timed_wait());
            assert!(call(Sysno::epoll_wait, [3, 1, 8, 100, 0, 0]).is_timed_wait());
            assert!(!call(Sysno::epoll_wait, [3, 1, 8, FOREVER, 0, 0]).is_timed_wait());
            assert!(call(Sysno::select, [4, 1, 0, 0, TS, 0]).is_timed_wait());
            assert!(!call(Sysno::select, [4, 1, 0, 0, NONE, 0]).is_timed_wait());
            assert!(!call(Sysno::pause, [0; 6]).is_timed_wait());
        }
    }

    fn thread(state: &str, syscall: Option<&str>, timed_wait: bool) -> ThreadState {
        ThreadState {
            state: state.into(),
            syscall: syscall.map(str::to_string),
            timed_wait,
            ..ThreadState::default()
        }
    }

    #[test]
    fn a_process_waits_with_a_timeout_when_one_of_its_threads_does() {
        let with = |threads: Vec<ThreadState>| {
            ProcessState {
                threads,
                ..ProcessState::default()
            }
            .waiting()
        };
        let read = thread("S", Some("read"), false);
        let sleep = thread("S", Some("clock_nanosleep"), true);
        let unread = thread("S", None, false);
        assert_eq!(with(vec![read.clone()]), Waiting::WithoutTimeout);
        assert_eq!(
            with(vec![read.clone(), read.clone()]),
            Waiting::WithoutTimeout
        );
        assert_eq!(
            with(vec![read.clone(), sleep.clone()]),
            Waiting::WithTimeout
        );
        assert_eq!(
            with(vec![sleep.clone(), unread.clone()]),
            Waiting::WithTimeout
        );
        assert_eq!(with(vec![read.clone(), unread]), Waiting::Unknown);
        assert_eq!(
            with(vec![sleep, thread("R", None, false)]),
            Waiting::Running
        );
        // A stopped process waits for a SIGCONT: no timeout.
        assert_eq!(
            with(vec![thread("T", None, false)]),
            Waiting::WithoutTimeout
        );
        // A leader that exited before its threads: the threads tell.
        assert_eq!(
            with(vec![thread("Z", None, false), read]),
            Waiting::WithoutTimeout
        );
        assert_eq!(with(vec![thread("Z", None, false)]), Waiting::Exited);
        assert_eq!(with(vec![]), Waiting::Unknown);
        assert_eq!(
            serde_json::to_string(&Waiting::WithTimeout).unwrap(),
            "\"with-timeout\""
        );
    }

    /// Wait until thread `tid` of this process is asleep in a system call
    /// (`/proc` says `S` and names the call): it has entered its wait.
    fn asleep_in_call(tid: i32) {
        let me = std::process::id();
        loop {
            let stat = fs::read_to_string(format!("/proc/{me}/task/{tid}/stat")).unwrap();
            let state = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('S'));
            let call = fs::read_to_string(format!("/proc/{me}/task/{tid}/syscall")).unwrap();
            if state == Some(true) && parse_syscall(&call).is_some() {
                return;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_thread_of_this_process_in_a_timed_poll_is_read_as_one() {
        use rustix::event::{poll, PollFd, PollFlags};
        use std::sync::mpsc;
        let me = std::process::id() as i32;
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (r2, w2) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            // One thread polls with a timeout (an hour), one reads a pipe.
            let tx2 = tx.clone();
            s.spawn(|| {
                let _ = tx.send(rustix::thread::gettid().as_raw_nonzero().get());
                let ts = rustix::time::Timespec {
                    tv_sec: 3600,
                    tv_nsec: 0,
                };
                let _ = poll(&mut [PollFd::new(&r, PollFlags::IN)], Some(&ts));
            });
            s.spawn(move || {
                let _ = tx2.send(-rustix::thread::gettid().as_raw_nonzero().get());
                let _ = rustix::io::read(&r2, &mut [0u8; 1]);
            });
            let (a, b) = (rx.recv().unwrap(), rx.recv().unwrap());
            let (timed, untimed) = if a > 0 { (a, -b) } else { (b, -a) };
            asleep_in_call(timed);
            asleep_in_call(untimed);
            let p = read_process(me, false, false).unwrap();
            let t = |tid: i32| p.threads.iter().find(|t| t.tid == tid).unwrap();
            assert!(t(timed).timed_wait, "{:?}", t(timed));
            assert_eq!(t(timed).waiting(), Waiting::WithTimeout);
            assert!(!t(untimed).timed_wait, "{:?}", t(untimed));
            assert_eq!(t(untimed).waiting(), Waiting::WithoutTimeout);
            assert!(in_timed_wait(me, timed) && !in_timed_wait(me, untimed));
            assert_eq!(p.wait, p.waiting());
            // Wake both.
            rustix::io::write(&w, b"x").unwrap();
            rustix::io::write(&w2, b"x").unwrap();
        });
    }
}
