//! Tests of the canonical primitive on real processes. The test harness is
//! multithreaded, so children here exec (the no-exec `run` is refused, which
//! is itself tested); the no-exec path is exercised by every trial of the
//! integration tests.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::AsFd;

use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::Signal;

use super::*;
use crate::raw;

fn sh(script: &str) -> (CString, Vec<CString>) {
    let prog = CString::new("/bin/sh").unwrap();
    let args = vec![
        CString::new("sh").unwrap(),
        CString::new("-c").unwrap(),
        CString::new(script).unwrap(),
    ];
    (prog, args)
}

fn spawn_sh(script: &str, stdout: Option<std::os::fd::BorrowedFd<'_>>) -> Child {
    let (prog, args) = sh(script);
    let argv: Vec<&std::ffi::CStr> = args.iter().map(|a| a.as_c_str()).collect();
    let map: Vec<(std::os::fd::BorrowedFd<'_>, i32)> =
        stdout.into_iter().map(|fd| (fd, 1)).collect();
    Spawn::default()
        .exec(&prog, &argv, &map, 3)
        .expect("spawn /bin/sh")
}

#[test]
fn lifeline_eof_is_seen_when_the_parent_end_closes() {
    // The child blocks reading its lifeline (fd 3) and exits 7 at EOF.
    let before = vfork_spawns();
    let child = spawn_sh("cat <&3 >/dev/null; exit 7", None);
    if cfg!(target_arch = "x86_64") {
        assert!(vfork_spawns() > before, "not through the vfork path");
    }
    let (pidfd, lifeline) = child.into_parts();
    assert!(!pidfd.has_exited(), "the child must wait on its lifeline");
    drop(lifeline);
    assert_eq!(pidfd.wait().unwrap(), ExitStatus::Exited(7));
}

#[test]
fn a_child_keeps_only_stdio_and_its_lifeline() {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    // A stray fd without close-on-exec must not reach the child.
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let stray = rustix::io::dup(&devnull).unwrap();
    let child = spawn_sh("ls /proc/self/fd", Some(w.as_fd()));
    drop(w);
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    child.pidfd().wait().unwrap();
    let mut fds: Vec<i32> = out
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    fds.sort();
    // ls itself opens one fd to read the directory.
    assert!(
        fds.starts_with(&[0, 1, 2, 3]) && fds.len() <= 5,
        "child fds: {fds:?}"
    );
    drop(stray);
}

#[test]
fn a_signal_through_a_reaped_pidfd_hits_nobody() {
    let child = spawn_sh("exec cat <&3", None);
    assert!(child.pidfd().send_signal(Signal::KILL).unwrap());
    assert_eq!(
        child.pidfd().wait().unwrap(),
        ExitStatus::Signaled(libc::SIGKILL)
    );
    assert!(child.pidfd().has_exited());
    assert!(
        !child.pidfd().send_signal(Signal::KILL).unwrap(),
        "ESRCH after reap"
    );
}

#[test]
fn exec_failure_is_reported_not_hidden() {
    let prog = CString::new("/nonexistent/lab-test").unwrap();
    let err = Spawn::default()
        .exec(&prog, &[prog.as_c_str()], &[], 3)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn a_copy_of_a_multithreaded_process_is_refused() {
    // Keep a second thread alive for the duration of the call.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv());
    let err = spawn(|_| 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EDEADLK));
    drop(tx);
    let _ = t.join();
}

#[test]
fn the_one_syscall_thread_check_agrees_with_proc() {
    // The harness has threads, and one more is kept alive here: both say so.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || rx.recv());
    assert_eq!(crate::process::single_threaded(), Some(false));
    assert!(thread_count().unwrap() > 1);
    drop(tx);
    let _ = t.join();
    // A fork child has one thread: 0 when the check says so, 1 when it
    // says otherwise, 2 where unshare is filtered (then /proc answers).
    // SAFETY: the child makes only raw syscalls (unshare, _exit), which are
    // async-signal-safe in a copy of a multithreaded process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match crate::process::single_threaded() {
            Some(true) => 0,
            Some(false) => 1,
            None => 2,
        };
        exit_now(code);
    }
    let mut status = 0;
    // SAFETY: waitpid writes one int into `status`, which is valid.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status));
    assert!(matches!(libc::WEXITSTATUS(status), 0 | 2), "{status}");
}

#[test]
fn open_self_names_this_process() {
    let me = Pidfd::open_self().unwrap();
    assert_eq!(me.pid(), std::process::id() as i32);
    assert!(!me.has_exited());
}

#[test]
fn dup_to_free_never_replaces_an_open_fd() {
    let devnull = std::fs::File::open("/dev/null").unwrap();
    // A number that is free: the duplicate lands there, without close-on-exec.
    let high = rustix::io::fcntl_dupfd_cloexec(&devnull, 900).unwrap();
    let target = std::os::fd::AsRawFd::as_raw_fd(&high) + 1;
    let dup = dup_to_free(devnull.as_fd(), target).unwrap();
    assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&dup), target);
    assert!(rustix::io::fcntl_getfd(&dup).unwrap().is_empty());
    // An open number is refused, and left as it was.
    let taken = std::os::fd::AsRawFd::as_raw_fd(&high);
    let err = dup_to_free(devnull.as_fd(), taken).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
    assert!(rustix::io::fcntl_getfd(&high).is_ok());
    assert_eq!(
        dup_to_free(devnull.as_fd(), -1).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
}

/// The env var that makes [`claim_inherited_takes_each_exec_fd_once`] the
/// exec'd side.
const CLAIM_CHILD: &str = "LIFELINE_TEST_CLAIM_CHILD";

#[test]
fn claim_inherited_takes_each_exec_fd_once() {
    if let Some(fd) = std::env::var_os(CLAIM_CHILD) {
        // The exec'd copy of this test binary: the fd named by the variable
        // and the lifeline at 6 came through the exec.
        let fd: i32 = fd.to_str().unwrap().parse().unwrap();
        let owned = claim_inherited(fd).expect("the fd came through the exec");
        assert!(rustix::io::fcntl_getfd(&owned)
            .unwrap()
            .contains(rustix::io::FdFlags::CLOEXEC));
        let again = claim_inherited(fd).unwrap_err();
        assert_eq!(again.raw_os_error(), Some(libc::EBUSY));
        let lifeline = LifelineReader::claim_inherited(6).expect("lifeline at 6");
        assert!(!lifeline.parent_gone());
        let stdio = claim_inherited(1).unwrap_err();
        assert_eq!(stdio.raw_os_error(), Some(libc::EINVAL));
        // Opened by this process, not inherited.
        let own = std::fs::File::open("/dev/null").unwrap();
        let own = claim_inherited(std::os::fd::AsRawFd::as_raw_fd(&own)).unwrap_err();
        assert_eq!(own.raw_os_error(), Some(libc::EBADF));
        return;
    }
    // Above the lifeline's fd 6, whatever other tests of this process have
    // open meanwhile: a kept fd at 6 would collide with the lifeline.
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let devnull = rustix::io::fcntl_dupfd_cloexec(&devnull, 64).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&devnull);
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::claim_inherited_takes_each_exec_fd_once",
            "--test-threads=1",
            "--quiet",
        ])
        .env(CLAIM_CHILD, fd.to_string())
        .keep(devnull.as_fd())
        .lifeline_fd(6)
        .stdout(Stdio::Null)
        .status()
        .unwrap();
    assert_eq!(status, ExitStatus::Exited(0));
}

/// What `cmd` writes to its stdout, and how it ended.
fn stdout_of(cmd: Command<'_>) -> (ExitStatus, String) {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    let child = cmd.stdout(Stdio::from(&w)).spawn().unwrap();
    drop(w);
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    (child.wait().unwrap(), out)
}

#[test]
fn exec_of_bin_true_takes_the_vfork_path() {
    let before = vfork_spawns();
    let child = Spawn::default()
        .exec(c"/bin/true", &[c"true"], &[], 3)
        .unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    if cfg!(target_arch = "x86_64") {
        assert!(vfork_spawns() > before, "not through the vfork path");
    }
}

#[test]
fn exec_errors_come_through_the_error_pipe_and_leave_errno_alone() {
    const SENTINEL: i32 = 4242;
    // SAFETY: errno is this thread's own (thread-local).
    unsafe { *libc::__errno_location() = SENTINEL };
    let before = vfork_spawns();
    let err = Spawn::default()
        .exec(c"/nonexistent/lab-test", &[c"lab-test"], &[], 3)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    // Not executable (for root too: no x bit at all).
    let err = Spawn::default()
        .exec(c"/etc/passwd", &[c"passwd"], &[], 3)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    // The child shared this thread's memory, errno included, and made only
    // errno-free syscalls: the failed execve did not write ENOENT here.
    // SAFETY: errno is this thread's own.
    assert_eq!(unsafe { *libc::__errno_location() }, SENTINEL);
    if cfg!(target_arch = "x86_64") {
        assert!(vfork_spawns() >= before + 2);
    }
}

#[test]
fn the_caller_signal_mask_reaches_the_program_and_is_restored() {
    let mut mask: raw::KernelSigset = 0;
    raw::sigprocmask(libc::SIG_SETMASK, None, Some(&mut mask)).unwrap();
    // SIGUSR1 and SIGWINCH blocked in this test's thread only.
    let extra: raw::KernelSigset = (1 << (libc::SIGUSR1 - 1)) | (1 << (libc::SIGWINCH - 1));
    raw::sigprocmask(libc::SIG_BLOCK, Some(&extra), None).unwrap();
    let (status, out) = stdout_of(Command::new("/bin/cat").arg("/proc/self/status"));
    let mut after: raw::KernelSigset = 0;
    raw::sigprocmask(libc::SIG_SETMASK, Some(&mask), Some(&mut after)).unwrap();
    assert_eq!(status, ExitStatus::Exited(0));
    // The parent's mask is as it was before the spawn (all signals were
    // blocked only around the clone).
    assert_eq!(after, mask | extra);
    // The program started with exactly the caller's mask.
    let blocked = out
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap());
    assert_eq!(blocked, Some(mask | extra), "{out}");
}

#[test]
fn a_vfork_child_keeps_only_stdio_the_kept_fds_and_its_lifeline() {
    // A stray fd without close-on-exec, and a kept one above it.
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let stray = rustix::io::fcntl_dupfd_cloexec(&devnull, 70).unwrap();
    rustix::io::fcntl_setfd(&stray, rustix::io::FdFlags::empty()).unwrap();
    let kept = rustix::io::fcntl_dupfd_cloexec(&devnull, 80).unwrap();
    let before = vfork_spawns();
    let (_, out) = stdout_of(
        Command::new("/bin/ls")
            .arg("/proc/self/fd")
            .keep(kept.as_fd())
            .lifeline_fd(5),
    );
    let mut fds: Vec<i32> = out
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    fds.sort();
    // ls opens one fd of its own to read the directory (3, the lowest free).
    let kept = std::os::fd::AsRawFd::as_raw_fd(&kept);
    assert_eq!(fds, [0, 1, 2, 3, 5, kept], "{out}");
    assert!(vfork_spawns() > before || cfg!(not(target_arch = "x86_64")));
    drop(stray);
}

#[test]
fn env_cwd_and_stdin_reach_a_vfork_child() {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    rustix::io::write(&w, b"from stdin\n").unwrap();
    drop(w);
    let (status, out) = stdout_of(
        Command::new("sh")
            .args(["-c", "read line; echo \"$line|$LIFELINE_V|$(pwd)\""])
            .env("LIFELINE_V", "vfork")
            .current_dir("/usr")
            .stdin(Stdio::from(&r)),
    );
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(out, "from stdin|vfork|/usr\n");
}

#[test]
fn threads_exec_through_the_vfork_path_at_once() {
    // Each spawning thread sleeps in its own clone3 while its child runs on
    // a stack of its own; the other threads go on spawning meanwhile.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..25 {
                    let child = Spawn::default()
                        .exec(c"/bin/true", &[c"true"], &[], 3)
                        .unwrap();
                    assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
