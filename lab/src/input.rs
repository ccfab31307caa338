//! Reading the files a user hands the lab: scenario and suite files, fuzz
//! regressions, a soak's `soak.json`, the result CSVs of `lab report`,
//! `lab plot`, `lab merge` and `--resume`.
//!
//! One path for all of them: a file is opened without blocking
//! (`O_NONBLOCK`) and without becoming a controlling terminal
//! (`O_NOCTTY`), its type is taken from the open fd (`fstat`, so it is the
//! file read, not one a path named a moment before), and anything but a
//! regular file (a FIFO, a character or block device, a socket, a
//! directory) is refused at once. A text is read up to its format's limit
//! and one byte more, never further: a FIFO never blocks the lab, and
//! `/dev/zero` costs no memory.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::Instant;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// 1 MiB (1048576 bytes): the limit of the short text files the lab reads
/// (a scenario, a suite, a soak's `soak.json`).
pub const MIB: u64 = 1 << 20;

/// Why a file a user handed the lab is not read. Its `Display` is the
/// message without the file's name (the caller puts the name first).
#[derive(Debug)]
pub enum InputError {
    /// The file cannot be opened: missing, a dangling link, a loop of
    /// links, no permission.
    Open(io::Error),
    /// Not a regular file: what it is instead (`a FIFO (named pipe)`, `a
    /// character device`, `a directory`, ...), as [`type_name`] says.
    NotRegular(&'static str),
    /// More than `limit` bytes.
    TooBig {
        /// Its size as `fstat` gives it, or `None` when that was within
        /// the limit and the file turned out longer when read.
        size: Option<u64>,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Reading failed (`EIO`, say).
    Read(io::Error),
    /// The bytes are not UTF-8 text: the first bad byte, its offset and
    /// its 1-based line and column (in characters).
    NotUtf8 {
        /// The byte.
        byte: u8,
        /// Its offset in the file.
        offset: usize,
        /// Its line, from 1.
        line: usize,
        /// Its column in characters, from 1.
        col: usize,
    },
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Open(e) | InputError::Read(e) => write!(f, "cannot read the file: {e}"),
            InputError::NotRegular(kind) => write!(
                f,
                "is {kind}, not a regular file; the lab reads only regular files"
            ),
            InputError::TooBig { size, limit } => write!(
                f,
                "the file is {}, more than the limit of {limit} bytes",
                size.map_or_else(|| "longer".to_string(), |s| format!("{s} bytes"))
            ),
            InputError::NotUtf8 { byte, offset, .. } => write!(
                f,
                "the file is not UTF-8 text (byte 0x{byte:02x} at offset {offset})"
            ),
        }
    }
}

impl std::error::Error for InputError {}

impl From<InputError> for io::Error {
    /// The kernel's error as it is for [`InputError::Open`] and
    /// [`InputError::Read`]; `InvalidInput` (not a regular file, over the
    /// limit) or `InvalidData` (not UTF-8) with the message otherwise.
    fn from(e: InputError) -> io::Error {
        match e {
            InputError::Open(e) | InputError::Read(e) => e,
            InputError::NotUtf8 { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
            InputError::NotRegular(_) | InputError::TooBig { .. } => {
                io::Error::new(io::ErrorKind::InvalidInput, e)
            }
        }
    }
}

/// What a file of type `t` is, in words: `a directory`, `a FIFO (named
/// pipe)`, `a character device`, `a block device`, `a socket`, `a
/// symbolic link`, `a regular file`, or `a file of an unknown type`.
pub fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        _ => "a file of an unknown type",
    }
}

/// The regular file at `path`, open for reading, and its size in bytes.
/// Links are followed; the file's type is the open fd's, and nothing but a
/// regular file is kept open. The open never blocks (a FIFO with no
/// writer, a device), and a terminal does not become the lab's controlling
/// terminal.
///
/// # Errors
/// [`InputError::Open`] when `path` cannot be opened;
/// [`InputError::NotRegular`] for anything but a regular file (a socket,
/// which cannot be opened, is named too).
///
/// # References
/// open(2) (`O_NONBLOCK` on a FIFO, `O_NOCTTY`, `ENXIO` for a socket),
/// fstat(2), inode(7) (file types), fcntl(2) (`F_SETFL`).
pub fn open_regular(path: impl AsRef<Path>) -> Result<(File, u64), InputError> {
    let path = path.as_ref();
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NXIO) => {
            // A socket (or a device with no driver) cannot be opened: say which.
            return Err(match rustix::fs::stat(path) {
                Ok(st) => InputError::NotRegular(type_name(FileType::from_raw_mode(st.st_mode))),
                Err(_) => InputError::Open(Errno::NXIO.into()),
            });
        }
        Err(e) => return Err(InputError::Open(e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| InputError::Open(e.into()))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        return Err(InputError::NotRegular(type_name(kind)));
    }
    // A regular file ignores O_NONBLOCK; clear it all the same, so the fd
    // is an ordinary one for whoever reads it.
    let status = rustix::fs::fcntl_getfl(&fd).map_err(|e| InputError::Open(e.into()))?;
    rustix::fs::fcntl_setfl(&fd, status - OFlags::NONBLOCK)
        .map_err(|e| InputError::Open(e.into()))?;
    Ok((File::from(fd), u64::try_from(st.st_size).unwrap_or(0)))
}

/// The bytes of the regular file at `path`, at most `limit` of them: a
/// file `fstat` says is longer is refused before a byte is read, and no
/// more than `limit + 1` bytes are ever read (a file that grows, or a
/// `/proc` file whose size says 0).
///
/// # Errors
/// As [`open_regular`]; [`InputError::TooBig`] over `limit`;
/// [`InputError::Read`] when a read fails.
pub fn read_bytes(path: impl AsRef<Path>, limit: u64) -> Result<Vec<u8>, InputError> {
    let (file, size) = open_regular(path)?;
    if size > limit {
        return Err(InputError::TooBig {
            size: Some(size),
            limit,
        });
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(InputError::Read)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooBig { size: None, limit });
    }
    Ok(bytes)
}

/// The UTF-8 text of the regular file at `path`, at most `limit` bytes.
///
/// # Errors
/// As [`read_bytes`]; [`InputError::NotUtf8`] at the first byte that is
/// not UTF-8.
pub fn read_text(path: impl AsRef<Path>, limit: u64) -> Result<String, InputError> {
    String::from_utf8(read_bytes(path, limit)?).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..offset]);
        InputError::NotUtf8 {
            byte: e.as_bytes()[offset],
            offset,
            line: valid.matches('\n').count() + 1,
            col: valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
        }
    })
}

/// What [`drain_pipe`] read: at most its `max` bytes, and whether the
/// pipe reached its end (every writer closed it) before the deadline.
#[derive(Debug, Default)]
pub struct Drained {
    /// The bytes kept (the first `max`, or a little more: whole chunks of
    /// at most 8 KiB).
    pub bytes: Vec<u8>,
    /// Whether the pipe reached its end; `false`: the deadline came first.
    pub ended: bool,
}

/// Read the pipe `file` (a child's output) until its end or until
/// `deadline`, whichever comes first, keeping at most about `max` bytes
/// (bytes past it are read and dropped, so the writer never blocks on a
/// full pipe). It waits in `poll(2)`, so a silent writer costs nothing.
///
/// # Errors
/// The error of `poll` or `read` other than `EINTR`.
///
/// # References
/// - [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html)
/// - [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html)
pub fn drain_pipe(file: &mut File, deadline: Instant, max: usize) -> io::Result<Drained> {
    let mut out = Drained::default();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(out);
        }
        let ts = rustix::time::Timespec {
            tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&*file, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(out),
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        match file.read(&mut chunk) {
            Ok(0) => {
                out.ended = true;
                return Ok(out);
            }
            Ok(n) if out.bytes.len() < max => out.bytes.extend_from_slice(&chunk[..n]),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A FIFO at `dir/name`.
    fn fifo(dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &path,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        path
    }

    #[test]
    fn a_regular_file_is_read_whole_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "version = 1\n").unwrap();
        assert_eq!(read_text(&path, 12).unwrap(), "version = 1\n");
        let (_, size) = open_regular(&path).unwrap();
        assert_eq!(size, 12);
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(read_text(&empty, 0).unwrap(), "");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_naming_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        std::fs::write(&path, "x".repeat(11)).unwrap();
        let e = read_text(&path, 10).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::TooBig {
                    size: Some(11),
                    limit: 10
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "the file is 11 bytes, more than the limit of 10 bytes"
        );
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path(), "f.toml");
        let start = Instant::now();
        // No writer: a blocking open or read would never return.
        let e = read_text(&path, MIB).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(e, InputError::NotRegular("a FIFO (named pipe)")),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "is a FIFO (named pipe), not a regular file; the lab reads only regular files"
        );
    }

    #[test]
    fn a_directory_a_device_and_a_socket_are_refused_by_type() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_text(dir.path(), MIB).unwrap_err();
        assert!(matches!(e, InputError::NotRegular("a directory")), "{e:?}");
        let e = read_bytes("/dev/zero", MIB).unwrap_err();
        assert!(
            matches!(e, InputError::NotRegular("a character device")),
            "{e:?}"
        );
        let sock = dir.path().join("s.toml");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = read_text(&sock, MIB).unwrap_err();
        assert!(matches!(e, InputError::NotRegular("a socket")), "{e:?}");
    }

    #[test]
    fn a_link_to_a_device_is_judged_by_what_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read_text(&link, MIB).unwrap_err();
        assert!(
            matches!(e, InputError::NotRegular("a character device")),
            "{e:?}"
        );
    }

    #[test]
    fn missing_files_dangling_links_and_loops_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let dangling = dir.path().join("dangling.toml");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let e = read_text(&dangling, MIB).unwrap_err();
        assert!(matches!(&e, InputError::Open(io) if io.kind() == io::ErrorKind::NotFound));
        assert!(e.to_string().starts_with("cannot read the file: "), "{e}");
        let looped = dir.path().join("loop.toml");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        let e = read_text(&looped, MIB).unwrap_err();
        assert!(
            matches!(&e, InputError::Open(io) if io.raw_os_error() == Some(libc::ELOOP)),
            "{e:?}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin.toml");
        std::fs::write(&path, b"a = 1\nb = \"\xe9\"\n").unwrap();
        let e = read_text(&path, MIB).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::NotUtf8 {
                    byte: 0xe9,
                    offset: 11,
                    line: 2,
                    col: 6
                }
            ),
            "{e:?}"
        );
        // Bytes are bytes: read_bytes does not look.
        assert_eq!(read_bytes(&path, MIB).unwrap().len(), 14);
    }

    #[test]
    fn the_fd_is_left_blocking_and_close_on_exec() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "x").unwrap();
        let (file, _) = open_regular(&path).unwrap();
        let status = rustix::fs::fcntl_getfl(&file).unwrap();
        assert!(!status.contains(OFlags::NONBLOCK));
        let fd_flags = rustix::io::fcntl_getfd(&file).unwrap();
        assert!(fd_flags.contains(rustix::io::FdFlags::CLOEXEC));
    }
}
