//! The raw floor: bare creation paths with nothing of the lab around them,
//! for the benchmarks (`cargo bench`) and the throughput floor
//! (`lab bench`). Each creates a child that exits at once and reaps it; none
//! keeps a handle, so nothing here can be misused to signal a stale PID.

use std::ffi::CString;
use std::io;

use super::process::exit_now;

/// `fork()`; the child `_exit(0)`s; `waitpid` reaps it. Returns its status.
///
/// # Errors
/// Errors of fork and waitpid.
///
/// # References
/// - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html),
///   [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
pub fn fork_exit_reap() -> io::Result<i32> {
    let pid = fork_then(|| 0)?;
    reap(pid)
}

/// A tree of `breadth` children per node, `depth` levels below the root,
/// built by plain `fork`: each process forks its children, waits for them
/// and `_exit`s; the caller is the root's parent and reaps the root. Returns
/// the number of processes created (`breadth = 2, depth = 3`: 15).
///
/// # Errors
/// Errors of fork and waitpid in the caller; a child that fails exits 1,
/// which is returned as `InvalidData`.
///
/// # References
/// - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html),
///   [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
pub fn fork_tree(breadth: u32, depth: u32) -> io::Result<u64> {
    let pid = fork_then(|| build(breadth, depth))?;
    match reap(pid)? {
        0 => Ok((0..=depth).map(|d| (breadth as u64).pow(d)).sum()),
        code => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a node of the raw tree failed (exit {code})"),
        )),
    }
}

/// In a node of [`fork_tree`]: fork the children, reap them, and return the
/// exit code. Only fork, waitpid and `_exit` run here: async-signal-safe, so
/// it is sound even in a child of a multithreaded process.
fn build(breadth: u32, depth: u32) -> i32 {
    if depth == 0 {
        return 0;
    }
    let mut kids = [0i32; 64];
    let n = (breadth as usize).min(kids.len());
    for k in kids.iter_mut().take(n) {
        match fork_then(|| build(breadth, depth - 1)) {
            Ok(pid) => *k = pid,
            Err(_) => return 1,
        }
    }
    let mut code = 0;
    for &k in kids.iter().take(n) {
        if reap(k).map_or(true, |c| c != 0) {
            code = 1;
        }
    }
    code
}

/// `posix_spawn` of `program` (a path) with no arguments but its name and
/// the caller's environment; `waitpid` reaps it. Returns its status.
///
/// The environment is copied into a `KEY=VALUE` block in the call, as the
/// canonical [`Spawn::exec`](super::Spawn::exec) and std's `Command` give
/// their children the caller's environment, so that the benchmarks compare
/// like with like (and `environ` itself is never read: another thread may
/// be changing it).
///
/// # Errors
/// Errors of posix_spawn and waitpid.
///
/// # References
/// - [posix_spawn(3)](https://man7.org/linux/man-pages/man3/posix_spawn.3.html)
pub fn posix_spawn_reap(program: &str) -> io::Result<i32> {
    let path = CString::new(program).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let argv = [path.as_ptr(), std::ptr::null()];
    let env = super::execve::current_env();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|kv| kv.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut pid: libc::pid_t = 0;
    // SAFETY: `path` and the strings of `env` are NUL-terminated and alive
    // for the call; `argv` and `envp` are NULL-terminated arrays of them; null file
    // actions and attributes are allowed; `pid` is a valid out-pointer.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            argv.as_ptr() as *const *mut libc::c_char,
            envp.as_ptr() as *const *mut libc::c_char,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    reap(pid)
}

/// `fork()`, run `f` in the child, `_exit` with its value; the child's PID.
fn fork_then(f: impl FnOnce() -> i32) -> io::Result<i32> {
    // SAFETY: fork has no memory preconditions. The child runs only `f`
    // (for the floor: fork, waitpid and `_exit`, async-signal-safe) and
    // ends with `_exit` without returning into the caller's frames.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => exit_now(f()),
        pid => Ok(pid),
    }
}

/// `waitpid(pid)` until it is reaped; its exit code (128 + signal when
/// killed).
fn reap(pid: i32) -> io::Result<i32> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(io::ErrorKind::InvalidInput)?;
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, s))) => {
                return Ok(s
                    .exit_status()
                    .unwrap_or_else(|| 128 + s.terminating_signal().unwrap_or(0)))
            }
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_paths_create_and_reap() {
        assert_eq!(fork_exit_reap().unwrap(), 0);
        assert_eq!(fork_tree(2, 3).unwrap(), 15);
        assert_eq!(fork_tree(3, 0).unwrap(), 1);
        assert_eq!(posix_spawn_reap("/bin/true").unwrap(), 0);
        assert_eq!(posix_spawn_reap("/bin/false").unwrap(), 1);
    }
}
