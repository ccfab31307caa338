//! Which result directories the lab trusts, and how it opens them: a
//! directory is the caller's ([`OwnDir`]) when it and every directory above
//! it are owned by the caller or root and cannot be changed by anyone else
//! (not writable by others, nor by a group with another member than the
//! caller: a user private group of a umask of 002 is fine; an ancestor may
//! be a sticky directory such as `/tmp`), the rule of ssh's `StrictModes`. The lab reads (`lab
//! soak --resume`, `lab merge`, `lab report`, `lab plot`) and writes only
//! in such directories, so no other user can swap what it reads or redirect
//! what it writes.
//!
//! A directory is opened one component at a time with
//! `O_NOFOLLOW|O_DIRECTORY` from the current directory (or `/`): a symlink
//! on the way is followed only when root or the caller made it (the rule
//! of `fs.protected_symlinks`), any other is refused, so a link planted by
//! another user never leads the lab somewhere else. Files are then made
//! relative to the directory's handle: new ones `O_CREAT|O_EXCL|O_NOFOLLOW`
//! ([`OwnDir::create_new`]), whole ones written to a temporary file and
//! renamed into place ([`OwnDir::replace`], [`OwnDir::create_whole`]).
//!
//! # References
//! - openat(2), mkdirat(2), fstatat(2), renameat2(2) (`RENAME_NOREPLACE`).
//! - sshd_config(5), `StrictModes`; proc_sys_fs(5), `protected_symlinks`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat, CWD};

use crate::error::LabError;
use crate::input::type_name;

/// A directory of the caller's own, open (`O_PATH`-free: a real directory
/// handle) for making and reading files relative to it.
#[derive(Debug)]
pub struct OwnDir {
    path: PathBuf,
    fd: OwnedFd,
}

/// What to do when the directory does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Create it (and its missing parents), mode 0755 less the umask.
    Create,
    /// It is an error (bad input: exit 2).
    Refuse,
}

impl OwnDir {
    /// Open the directory `path` (created with its parents when `missing`
    /// says so), following no symlink but the caller's and root's, and
    /// check that it is the caller's (see the module).
    ///
    /// # Errors
    /// [`LabError::Input`] (exit 2) naming what to do, for a symlink of
    /// another user on the way, something not a directory, a directory (or
    /// an ancestor) another user owns or can write, or a missing one with
    /// [`Missing::Refuse`]; [`LabError::Io`] when it cannot be created or
    /// opened.
    pub fn open(path: &Path, missing: Missing) -> Result<OwnDir, LabError> {
        let fd = walk(path, missing)?;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", raw(&fd)))
            .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.into()));
        let st = rustix::fs::fstat(&fd).map_err(|e| cannot_open(path, e.into()))?;
        if let Some(why) = untrusted(&st, false) {
            return Err(refuse(path, path, &why));
        }
        for a in real.ancestors().skip(1) {
            let st = rustix::fs::statat(CWD, a, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| cannot_open(a, e.into()))?;
            if let Some(why) = untrusted(&st, true) {
                return Err(refuse(path, a, &why));
            }
        }
        Ok(OwnDir {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The path it was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its handle.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The subdirectory `name` (one component), created when missing, and
    /// checked as [`OwnDir::open`] checks.
    ///
    /// # Errors
    /// As [`OwnDir::open`].
    pub fn subdir(&self, name: &str) -> Result<OwnDir, LabError> {
        OwnDir::open(&self.path.join(name), Missing::Create)
    }

    /// Check the file `name` the lab will read: `false` when there is none;
    /// `true` when it is a regular file of the caller's or root's that no
    /// one else can write.
    ///
    /// # Errors
    /// [`LabError::Input`] for a symlink, something not a regular file, or
    /// a file of another user or that others can write, naming what to do.
    pub fn check_file(&self, name: &str) -> Result<bool, LabError> {
        let path = self.path.join(name);
        let st = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => {
                return Err(LabError::io(
                    format!("cannot stat {}", path.display()),
                    e.into(),
                ))
            }
        };
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(LabError::Input(format!(
                "{}: is {}, not a regular file; the lab reads only regular files of its own \
                 here: remove it, or use a directory of your own",
                path.display(),
                type_name(kind)
            )));
        }
        match untrusted(&st, false) {
            Some(why) => Err(refuse(&path, &path, &why)),
            None => Ok(true),
        }
    }

    /// Open `name` for writing as a new file: `O_CREAT|O_EXCL|O_NOFOLLOW`,
    /// mode 0644 less the umask.
    ///
    /// # Errors
    /// `AlreadyExists` when anything (a symlink included) is at `name`.
    pub fn create_new(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(&self.fd, name, flags | OFlags::CLOEXEC, FILE_MODE)?;
        Ok(File::from(fd))
    }

    /// Open the existing file `name` (no symlink followed) for reading
    /// and, when `write`, appending.
    ///
    /// # Errors
    /// The kernel's (`ELOOP` for a symlink, `ENOENT` when missing).
    pub fn open_file(&self, name: &str, write: bool) -> io::Result<File> {
        let mut flags = OFlags::NOFOLLOW | OFlags::CLOEXEC;
        flags |= if write {
            OFlags::RDWR | OFlags::APPEND
        } else {
            OFlags::RDONLY
        };
        Ok(File::from(rustix::fs::openat(
            &self.fd,
            name,
            flags,
            Mode::empty(),
        )?))
    }

    /// Write `bytes` to `name` whole: to a new temporary file, renamed over
    /// `name` (a reader sees the old file or the new one; a symlink there
    /// is replaced, never followed).
    ///
    /// # Errors
    /// Errors creating, writing or renaming the file.
    pub fn replace(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.create_whole(name, bytes, true).map(drop)
    }

    /// Make `name` a new file that holds `head` from the moment it exists
    /// (written to a temporary file, renamed into place with
    /// `RENAME_NOREPLACE`, or over the name when `over`), and return it
    /// open for appending: a crash leaves the whole head or no file.
    ///
    /// # Errors
    /// `AlreadyExists` when something is at `name` and not `over`; errors
    /// writing or renaming.
    pub fn create_whole(&self, name: &str, head: &[u8], over: bool) -> io::Result<File> {
        let (tmp, mut file) = self.temp()?;
        let flags = if over {
            RenameFlags::empty()
        } else {
            RenameFlags::NOREPLACE
        };
        let done = file.write_all(head).and_then(|()| {
            rustix::fs::renameat_with(&self.fd, &tmp, &self.fd, name, flags).map_err(Into::into)
        });
        if let Err(e) = done {
            let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
            return Err(e);
        }
        Ok(file)
    }

    /// A new temporary file in the directory (`.lab-PID-N`), open for
    /// writing, and its name.
    fn temp(&self) -> io::Result<(String, File)> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!(".lab-{}-{n}", std::process::id());
            match self.create_new(&name) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                r => return r.map(|f| (name, f)),
            }
        }
    }
}

/// Whether the directory `path` is the caller's ([`OwnDir::open`] without
/// creating it).
///
/// # Errors
/// As [`OwnDir::open`] with [`Missing::Refuse`].
pub fn check_dir(path: &Path) -> Result<(), LabError> {
    OwnDir::open(path, Missing::Refuse).map(drop)
}

/// Whether the file `path` is one the lab may read: in a directory of the
/// caller's ([`check_dir`]), a regular file of the caller's or root's that
/// no one else can write.
///
/// # Errors
/// As [`check_dir`] and [`OwnDir::check_file`]; [`LabError::Input`] when
/// it does not exist.
pub fn check_file(path: &Path) -> Result<(), LabError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        LabError::Input(format!("{}: not a file name the lab reads", path.display()))
    })?;
    if OwnDir::open(parent, Missing::Refuse)?.check_file(name)? {
        Ok(())
    } else {
        Err(LabError::Input(format!("{}: no such file", path.display())))
    }
}

/// Whether `path`, found inside a directory [`check_dir`] trusts, is one
/// the lab may read: a directory or file of the caller's or root's that no
/// one else can write; a symlink when root or the caller made it and what
/// it leads to is such.
///
/// # Errors
/// [`LabError::Input`] naming the path and what to do; [`LabError::Io`]
/// when it cannot be examined.
pub fn check_path(path: &Path) -> Result<(), LabError> {
    let stat = |follow: bool| {
        let flags = if follow {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        };
        rustix::fs::statat(CWD, path, flags)
            .map_err(|e| LabError::io(format!("cannot stat {}", path.display()), e.into()))
    };
    let mut st = stat(false)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        if !trusted_owner(st.st_uid) {
            return Err(LabError::Input(format!(
                "{} is a symlink of uid {}'s: the lab follows no link of another user's; \
                 remove it, or use a directory of your own",
                path.display(),
                st.st_uid
            )));
        }
        st = stat(true)?;
    }
    match untrusted(&st, false) {
        Some(why) => Err(refuse(path, path, &why)),
        None => Ok(()),
    }
}

/// The mode of the files the lab makes (less the umask).
const FILE_MODE: Mode = Mode::from_raw_mode(0o644);

fn raw(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Open `path` one component at a time (see the module), creating what is
/// missing when `missing` says so: only in a directory checked first (the
/// caller's or root's, and not writable by others unless sticky), so
/// nothing is made where another user could reach it.
fn walk(path: &Path, missing: Missing) -> Result<OwnedFd, LabError> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let start = if path.is_absolute() { "/" } else { "." };
    let mut cur = rustix::fs::openat(CWD, start, dir_flags, Mode::empty())
        .map_err(|e| cannot_open(path, e.into()))?;
    let mut walked = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    };
    let check = |fd: &OwnedFd, walked: &Path| {
        let st = rustix::fs::fstat(fd).map_err(|e| cannot_open(walked, e.into()))?;
        match untrusted(&st, true) {
            Some(why) => Err(refuse(path, walked, &why)),
            None => Ok(()),
        }
    };
    check(&cur, Path::new(start))?;
    for c in path.components() {
        let name = match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => std::ffi::OsStr::new(".."),
            Component::Normal(n) => n,
        };
        walked.push(name);
        let next = loop {
            match rustix::fs::openat(&cur, name, dir_flags | OFlags::NOFOLLOW, Mode::empty()) {
                Ok(fd) => break fd,
                Err(rustix::io::Errno::NOENT) if missing == Missing::Create => {
                    match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => continue,
                        Err(e) => {
                            return Err(LabError::io(
                                format!("cannot create {}", walked.display()),
                                e.into(),
                            ))
                        }
                    }
                }
                Err(rustix::io::Errno::NOENT) => {
                    return Err(LabError::Input(format!(
                        "{}: no such directory",
                        path.display()
                    )))
                }
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                    break follow_trusted_link(&cur, name, path, &walked)?
                }
                Err(e) => return Err(cannot_open(&walked, e.into())),
            }
        };
        check(&next, &walked)?;
        cur = next;
    }
    Ok(cur)
}

/// The directory a symlink `name` under `dir` leads to, when root or the
/// caller made the link; any other link, and anything else that is not a
/// directory, is refused.
fn follow_trusted_link(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    path: &Path,
    walked: &Path,
) -> Result<OwnedFd, LabError> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| cannot_open(walked, e.into()))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::Symlink {
        return Err(LabError::Input(format!(
            "{}: {} is {}, not a directory",
            path.display(),
            walked.display(),
            type_name(kind)
        )));
    }
    if !trusted_owner(st.st_uid) {
        return Err(LabError::Input(format!(
            "{}: {} is a symlink of uid {}'s: the lab follows no link of another user's \
             where it expects a directory; remove it, or use a directory of your own",
            path.display(),
            walked.display(),
            st.st_uid
        )));
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| cannot_open(walked, e.into()))
}

/// Whether `uid` is the caller's (effective) or root's.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == rustix::process::geteuid().as_raw()
}

/// Why the directory or file of `st` is not the caller's, if it is not:
/// another owner, or writable by group or others (allowed for a sticky
/// directory when `sticky_ok`, as `/tmp` above a result directory).
fn untrusted(st: &Stat, sticky_ok: bool) -> Option<String> {
    let mode = st.st_mode & 0o7777;
    if !trusted_owner(st.st_uid) {
        return Some(format!("is owned by uid {}", st.st_uid));
    }
    let sticky = mode & 0o1000 != 0 && FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    if sticky_ok && sticky {
        return None;
    }
    if mode & 0o002 != 0 {
        return Some(format!("is writable by group or others (mode {mode:04o})"));
    }
    if mode & 0o020 != 0 && !caller_alone_in(st.st_gid) {
        return Some(format!(
            "is writable by group or others (mode {mode:04o}; group {} has members other than you)",
            st.st_gid
        ));
    }
    None
}

/// Whether group `gid` is the caller's private group (the user private
/// groups of a umask of 002): the caller's effective gid, with no other
/// user in it, neither as a listed member in `/etc/group` nor as a primary
/// group in `/etc/passwd`. `false` when either file cannot be read.
fn caller_alone_in(gid: u32) -> bool {
    if gid != rustix::process::getegid().as_raw() {
        return false;
    }
    let read = |path: &str| crate::input::read_text(path, crate::input::MIB).ok();
    let (Some(group), Some(passwd)) = (read("/etc/group"), read("/etc/passwd")) else {
        return false;
    };
    alone_in(gid, rustix::process::geteuid().as_raw(), &group, &passwd)
}

/// [`caller_alone_in`] over the texts of `/etc/group` and `/etc/passwd`:
/// no user but `uid` has `gid` as primary group, and the group lists no
/// member but `uid`'s name.
fn alone_in(gid: u32, uid: u32, group: &str, passwd: &str) -> bool {
    let users: Vec<(&str, u32, u32)> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                *f.first()?,
                f.get(2)?.parse().ok()?,
                f.get(3)?.parse().ok()?,
            ))
        })
        .collect();
    let name = users.iter().find(|u| u.1 == uid).map(|u| u.0);
    let primary_of_others = users.iter().any(|u| u.2 == gid && u.1 != uid);
    let members_of_others = group.lines().any(|l| {
        let f: Vec<&str> = l.split(':').collect();
        f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(gid)
            && f.get(3).is_some_and(|m| {
                m.split(',')
                    .any(|m| !m.trim().is_empty() && Some(m.trim()) != name)
            })
    });
    !primary_of_others && !members_of_others
}

/// The refusal of `path` because `what` (itself or an ancestor) `why`.
fn refuse(path: &Path, what: &Path, why: &str) -> LabError {
    let whose = if what == path {
        String::new()
    } else {
        format!(": {}", what.display())
    };
    LabError::Input(format!(
        "{}{whose} {why}, so another user could change what the lab reads or writes there; \
         make it yours (chown $(id -u) {w}; chmod go-w {w}), or use a directory of your own",
        path.display(),
        w = what.display()
    ))
}

fn cannot_open(path: &Path, e: io::Error) -> LabError {
    LabError::io(format!("cannot open {}", path.display()), e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_directory_of_ones_own_is_opened_and_files_are_made_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let d = OwnDir::open(&tmp.path().join("a/b"), Missing::Create).unwrap();
        d.create_new("x").unwrap();
        assert_eq!(
            d.create_new("x").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let mut f = d.create_whole("h.csv", b"head\n", false).unwrap();
        f.write_all(b"row\n").unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("a/b/h.csv")).unwrap(),
            b"head\nrow\n"
        );
        assert!(d.create_whole("h.csv", b"x", false).is_err());
        d.replace("h.csv", b"new").unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a/b/h.csv")).unwrap(), b"new");
        assert!(d.check_file("h.csv").unwrap());
        assert!(!d.check_file("none").unwrap());
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
    }

    #[test]
    fn writable_by_others_and_missing_directories_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = OwnDir::open(&open, Missing::Refuse)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("writable by group or others") && e.contains("chmod go-w"),
            "{e}"
        );
        // Below it, even a directory of one's own is not trusted.
        let e = OwnDir::open(&open.join("mine"), Missing::Create).unwrap_err();
        assert!(e.to_string().contains("open is writable"), "{e}");
        assert!(check_dir(&tmp.path().join("none")).is_err());
        let f = tmp.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(check_file(&f).is_err());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_file(&f).unwrap();
    }

    #[test]
    fn a_symlink_of_ones_own_is_followed_and_a_fifo_is_not_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("link")).unwrap();
        let d = OwnDir::open(&tmp.path().join("link"), Missing::Refuse).unwrap();
        d.create_new("x").unwrap();
        assert!(tmp.path().join("real/x").exists());
        rustix::fs::mknodat(
            d.fd(),
            "fifo",
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = d.check_file("fifo").unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
    }

    #[test]
    fn a_group_is_private_when_no_other_user_is_in_it() {
        let passwd = "root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\nbob:x:1001:100::/home/bob:/bin/sh\n";
        let group =
            "root:x:0:\nann:x:1000:\nusers:x:100:bob,ann\nwheel:x:10:ann\nshared:x:1000:ann\n";
        assert!(alone_in(1000, 1000, group, passwd));
        // bob's primary group; a group listing another member.
        assert!(!alone_in(100, 1000, group, passwd));
        let group_with_bob = "ann:x:1000:bob\n";
        assert!(!alone_in(1000, 1000, group_with_bob, passwd));
        // Another user whose primary group is ann's.
        let passwd_sharing = "ann:x:1000:1000::/:/bin/sh\ncarl:x:1002:1000::/:/bin/sh\n";
        assert!(!alone_in(1000, 1000, "ann:x:1000:\n", passwd_sharing));
        assert!(alone_in(10, 1000, "wheel:x:10:ann\n", passwd));
    }
}
