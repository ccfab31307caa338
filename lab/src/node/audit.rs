//! The fd audits of the guards: a node reads its own fd table for the shapes
//! that make a reader wait forever, and panics ([`guard_panic`]) naming the
//! fds and the pipe instead of letting the reader block.
//!
//! - *duplicated stdio* (casebook 3): a pipe at fd 0, 1 or 2 that is also open
//!   at another fd >= 3. Whatever inherits the other fd (a helper, a
//!   service) keeps the pipe open after the node exits, and its reader never
//!   sees EOF. Audited before the node exits, and before it waits for a
//!   child's captured stdout to reach EOF.
//! - *self-pipe keeper* (casebook 2): the node holds a write end of a pipe it
//!   waits on for EOF: its own lifeline (audited when it arms the lifeline,
//!   right after its spawn), or a child's capture pipe (audited before it
//!   waits for that pipe's EOF).
//!
//! The fd numbers come from a `poll` of the fd table
//! (`lifeline::each_open_fd`); each open one is then `fstat`ed and its flags
//! read (`lifeline::own_pipe`): the process reads its own table, which
//! nothing else changes under it, in a few syscalls per fd (the audits run
//! in every node of every trial).

use std::os::fd::{AsFd, RawFd};

use smallvec::SmallVec;

use super::guard::guard_panic;
use super::NodeCtx;
use crate::forensics::Signature;

/// One fd of the calling process that refers to a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PipeFd {
    /// The fd number.
    pub fd: RawFd,
    /// The pipe's inode (`pipe:[INODE]`).
    pub inode: u64,
    /// Whether the fd is open for writing (the pipe's write end).
    pub write: bool,
}

/// The pipe fds of a process, kept inline up to 16 (a node has about ten
/// fds of any kind): listing them allocates nothing.
pub(crate) type PipeFds = SmallVec<[PipeFd; 16]>;

/// Every fd of the calling process that refers to a pipe, in fd order; none
/// when the fd table cannot be polled (`ENOMEM`).
///
/// The fds come from [`lifeline::each_open_fd`] (a `poll` of the fd
/// table), not from a listing of `/proc/self/fd`, which makes a dentry and
/// an inode per fd that the reaper frees again (a loop of fork, list, exit
/// here: about 180 µs more per process with 21 fds than without the
/// listing, 3 runs of 3000). The pipes are kept inline ([`PipeFds`]): in a
/// node, a copy of its parent, a heap allocation would make malloc touch
/// (copy-on-write fault) its arena and heap pages. Both run in every node
/// of every trial.
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html),
///   [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html)
pub(crate) fn own_pipe_fds() -> PipeFds {
    let mut out = PipeFds::new();
    let _ = lifeline::each_open_fd(|fd| {
        if let Some((inode, write)) = lifeline::own_pipe(fd) {
            out.push(PipeFd { fd, inode, write });
        }
    });
    out
}

/// The first pipe at fd 0, 1 or 2 of `fds` that is also open at an fd >= 3
/// in the same direction (another write end of a pipe at fd 1, say):
/// `(the stdio fd, the other fd, the pipe's inode)`. The same rule as the
/// `duplicated-stdio` signature of the forensics.
pub(crate) fn duplicated_stdio(fds: &[PipeFd]) -> Option<(RawFd, RawFd, u64)> {
    fds.iter().filter(|s| s.fd <= 2).find_map(|s| {
        fds.iter()
            .find(|o| o.fd >= 3 && o.inode == s.inode && o.write == s.write)
            .map(|o| (s.fd, o.fd, s.inode))
    })
}

/// The first fd of `fds` that holds a write end of the pipe `inode`.
pub(crate) fn write_end(fds: &[PipeFd], inode: u64) -> Option<RawFd> {
    fds.iter()
        .find(|p| p.inode == inode && p.write)
        .map(|p| p.fd)
}

/// The inode of the pipe `fd` refers to; `None` when `fd` is not open or
/// not a pipe.
///
/// # References
/// - [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html), [inode(7)](https://man7.org/linux/man-pages/man7/inode.7.html) (`S_IFIFO`)
pub(crate) fn pipe_inode_of(fd: impl AsFd) -> Option<u64> {
    let st = rustix::fs::fstat(fd).ok()?;
    (rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
        .then_some(st.st_ino)
}

impl NodeCtx<'_> {
    /// The stdio audit of node `idx`: panic (`duplicated-stdio`) when a pipe
    /// at its fd 0, 1 or 2 is also open at another fd >= 3. `when` says what
    /// the node was about to do.
    pub(super) fn audit_stdio(&self, idx: u32, when: &str) {
        if let Some((stdio, other, inode)) = duplicated_stdio(&own_pipe_fds()) {
            let path = &self.plan.nodes[idx as usize].path;
            guard_panic(
                Signature::DuplicatedStdio,
                format!(
                    "duplicated stdio: fd {stdio} and fd {other} -> pipe:[{inode}] in node {path} \
                     (pid {}), {when}; whatever inherits fd {other} keeps the pipe open after the \
                     node exits, and its reader never sees EOF. Duplicate stdio with \
                     F_DUPFD_CLOEXEC, or close fd {other} before spawning",
                    std::process::id()
                ),
            )
        }
    }

    /// The audit before node `idx` waits for the EOF of the captured stdout
    /// of its child `child`, read at `out`: its own stdio (as
    /// [`NodeCtx::audit_stdio`]), and no write end of that pipe in the node
    /// itself (`self-pipe-keeper`: it would wait for its own fd to close).
    pub(super) fn audit_capture(&self, idx: u32, child: Option<u32>, out: impl AsFd) {
        let nodes = &self.plan.nodes;
        let child = child.map_or("outside the plan".to_string(), |c| {
            format!("node {}", nodes[c as usize].path)
        });
        self.audit_stdio(
            idx,
            &format!("before waiting for the EOF of {child}'s stdout"),
        );
        let Some(inode) = pipe_inode_of(out) else {
            return;
        };
        if let Some(fd) = write_end(&own_pipe_fds(), inode) {
            guard_panic(
                Signature::SelfPipeKeeper,
                format!(
                    "node {} holds a write end of the stdout pipe of {child} it waits on: fd {fd} \
                     -> pipe:[{inode}] (write); the read would never reach EOF",
                    nodes[idx as usize].path
                ),
            )
        }
    }

    /// The lifeline audit of node `idx`, right after its spawn when it arms
    /// its lifeline (read end `lifeline`): panic (`self-pipe-keeper`) when the
    /// node holds a write end of its own lifeline, whose EOF would then never
    /// come when its parent dies.
    ///
    /// A lifeline that is not an open pipe (its fd closed, its number reused)
    /// can never report the parent's death either: that panics too, without
    /// a signature.
    pub(super) fn audit_lifeline(&self, idx: u32, lifeline: impl AsFd) {
        use std::os::fd::AsRawFd;
        let read = lifeline.as_fd();
        let path = &self.plan.nodes[idx as usize].path;
        let Some(inode) = pipe_inode_of(read) else {
            panic!(
                "the lifeline of node {path} is not an open pipe: fd {} -> {}; its parent's death \
                 would never be seen",
                read.as_raw_fd(),
                std::fs::read_link(format!("/proc/self/fd/{}", read.as_raw_fd()))
                    .map_or_else(|e| e.to_string(), |t| t.display().to_string())
            )
        };
        if let Some(fd) = write_end(&own_pipe_fds(), inode) {
            guard_panic(
                Signature::SelfPipeKeeper,
                format!(
                    "lifeline write end found in the child: fd {fd} -> pipe:[{inode}] (write) in \
                     node {} (pid {}), whose lifeline's read end is fd {}; its parent's death would \
                     never produce EOF. Create the lifeline close-on-exec and close every other fd \
                     in the child (close_range)",
                    path,
                    std::process::id(),
                    read.as_raw_fd()
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn pipe_fd(fd: RawFd, inode: u64, write: bool) -> PipeFd {
        PipeFd { fd, inode, write }
    }

    #[test]
    fn the_table_shows_both_ends_of_a_real_pipe_and_a_duplicate() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let dup = rustix::io::dup(&w).unwrap();
        let inode = pipe_inode_of(&r).unwrap();
        let mine: Vec<PipeFd> = own_pipe_fds()
            .into_iter()
            .filter(|p| p.inode == inode)
            .collect();
        assert_eq!(mine, {
            let mut v = vec![
                pipe_fd(r.as_raw_fd(), inode, false),
                pipe_fd(w.as_raw_fd(), inode, true),
                pipe_fd(dup.as_raw_fd(), inode, true),
            ];
            v.sort_unstable_by_key(|p| p.fd);
            v
        });
        // Listed in fd order, as the kernel walks the table.
        let fds: Vec<RawFd> = own_pipe_fds().iter().map(|p| p.fd).collect();
        assert!(fds.windows(2).all(|w| w[0] < w[1]), "{fds:?}");
        assert_eq!(
            write_end(&own_pipe_fds(), inode),
            Some(w.as_raw_fd().min(dup.as_raw_fd()))
        );
        drop((w, dup));
        assert_eq!(write_end(&own_pipe_fds(), inode), None);
    }

    #[test]
    fn duplicated_stdio_needs_a_stdio_pipe_open_at_a_higher_fd() {
        let dup = [
            pipe_fd(1, 7, true),
            pipe_fd(3, 9, false),
            pipe_fd(10, 7, true),
        ];
        assert_eq!(duplicated_stdio(&dup), Some((1, 10, 7)));
        // The same pipe at 1 and 2 (`2>&1`) is no duplicate into a service.
        let shared = [
            pipe_fd(1, 7, true),
            pipe_fd(2, 7, true),
            pipe_fd(256, 8, false),
        ];
        assert_eq!(duplicated_stdio(&shared), None);
        // A read end at 0 kept open at 5 is one too.
        let read = [pipe_fd(0, 4, false), pipe_fd(5, 4, false)];
        assert_eq!(duplicated_stdio(&read), Some((0, 5, 4)));
        // The read end of one's own stdout pipe keeps no reader waiting.
        let other_end = [pipe_fd(1, 7, true), pipe_fd(257, 7, false)];
        assert_eq!(duplicated_stdio(&other_end), None);
        assert_eq!(duplicated_stdio(&[]), None);
    }

    #[test]
    fn both_ends_of_a_pipe_share_its_inode_and_nothing_else_has_a_pipe_inode() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        assert!(pipe_inode_of(&r).is_some());
        assert_eq!(pipe_inode_of(&r), pipe_inode_of(&w));
        assert_eq!(
            pipe_inode_of(&r),
            Some(rustix::fs::fstat(&r).unwrap().st_ino)
        );
        let devnull = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(pipe_inode_of(&devnull), None);
        let (a, _b) = crate::phase::channel().unwrap();
        assert_eq!(pipe_inode_of(&a), None);
    }
}
