//! A soak's `started.csv`: a line per trial (its cell, strategy, index and
//! seed) written and flushed *before* the trial starts, so the trials in
//! flight at a crash are known. It exists with its header or not at all
//! (made whole and renamed into place); a resume drops a last line cut
//! short by a crash and gives a file without a header its header, as
//! `trials.csv` is repaired. A write error is kept, and stops the soak
//! like a Ctrl-C ([`Journal::error`]).

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use crate::error::LabError;
use crate::record::trust::OwnDir;

/// The journal's name in a soak's directory.
pub const STARTED_CSV: &str = "started.csv";

/// Its header line.
pub const HEADER: &[u8] = b"scenario,sweep_value,strategy,trial,seed\n";

/// `started.csv`, open for appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    /// The first write error.
    error: Option<io::Error>,
}

impl Journal {
    /// Open the journal of `dir`: made with its header when there is none,
    /// repaired when there is one (see the module; what was dropped is
    /// said on stderr). Never through a symlink.
    ///
    /// # Errors
    /// [`LabError::Input`] for a symlink at its name; [`LabError::Io`] when
    /// it cannot be opened, made or repaired.
    pub fn open(dir: &OwnDir) -> Result<Journal, LabError> {
        let path = dir.path().join(STARTED_CSV);
        let cannot = |e: io::Error| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                LabError::Input(format!(
                    "{} is a symlink, not a file of the lab's: remove it, or use a directory \
                     of your own",
                    path.display()
                ))
            } else {
                LabError::io(format!("cannot open {}", path.display()), e)
            }
        };
        let file = match dir.open_file(STARTED_CSV, true) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => dir
                .create_whole(STARTED_CSV, HEADER, false)
                .map_err(cannot)?,
            Ok(file) => match whole_lines_end(&file).map_err(cannot)? {
                // No whole line, the header's included: only the header.
                None => dir
                    .create_whole(STARTED_CSV, HEADER, true)
                    .map_err(cannot)?,
                Some(end) => {
                    let len = file.metadata().map_err(cannot)?.len();
                    if end < len {
                        file.set_len(end).map_err(cannot)?;
                        // A closed stderr must not end the soak.
                        let _ = writeln!(
                            io::stderr(),
                            "soak: {}: dropped its last line, cut short by a crash",
                            path.display()
                        );
                    }
                    file
                }
            },
            Err(e) => return Err(cannot(e)),
        };
        Ok(Journal { file, error: None })
    }

    /// Write and flush `line` (without its line break); a failure is kept
    /// ([`Journal::error`]) and the journal writes no more.
    pub fn started(&mut self, line: &str) {
        if self.error.is_some() {
            return;
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if let Err(e) = self.file.write_all(&bytes).and_then(|()| self.file.flush()) {
            self.error = Some(e);
        }
    }

    /// Whether a write failed.
    pub fn failing(&self) -> bool {
        self.error.is_some()
    }

    /// The first write error, if any (taken).
    pub fn error(&mut self) -> Option<io::Error> {
        self.error.take()
    }
}

/// Where the whole lines of `file` end: just after its last line break;
/// `None` when it has none. Read from the end, a block at a time.
fn whole_lines_end(file: &File) -> io::Result<Option<u64>> {
    let mut end = file.metadata()?.len();
    let mut block = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let part = &mut block[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64 + 1));
        }
        end = start;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::trust::Missing;

    #[test]
    fn the_journal_has_its_header_and_a_torn_line_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OwnDir::open(tmp.path(), Missing::Create).unwrap();
        let path = tmp.path().join(STARTED_CSV);
        let mut j = Journal::open(&dir).unwrap();
        j.started("nested,,canonical,0,7");
        assert!(!j.failing());
        let whole = [HEADER, b"nested,,canonical,0,7\n"].concat();
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        std::fs::write(&path, [&whole[..], b"nested,,cano"].concat()).unwrap();
        let mut j = Journal::open(&dir).unwrap();
        j.started("nested,,canonical,1,8");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().collect::<Vec<_>>().len(), 3, "{text}");
        assert!(text.ends_with("\nnested,,canonical,1,8\n"), "{text}");
        for torn in [&b""[..], b"scenario,sweep"] {
            std::fs::write(&path, torn).unwrap();
            drop(Journal::open(&dir).unwrap());
            assert_eq!(std::fs::read(&path).unwrap(), HEADER);
        }
    }

    #[test]
    fn a_write_error_is_kept_and_nothing_more_is_written() {
        let mut j = Journal {
            file: std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
            error: None,
        };
        j.started("x");
        assert!(j.failing());
        let e = j.error().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
    }
}
