//! The program of a wrap found as a shell finds it, before anything is
//! started: not found is exit status 127, found but not runnable (a
//! directory, no execute permission) 126, each with the lab's message.

use std::path::{Path, PathBuf};

use rustix::fs::{access, Access};

/// Exit status of a program that does not exist (as a shell gives it).
pub const NOT_FOUND: i32 = 127;
/// Exit status of a program that exists but cannot be run: a directory, or
/// no execute permission (as a shell gives it).
pub const NOT_RUNNABLE: i32 = 126;

/// Why the program cannot be run: the exit status and the message.
#[derive(Debug, PartialEq, Eq)]
pub struct Unrunnable {
    /// [`NOT_FOUND`] or [`NOT_RUNNABLE`].
    pub status: i32,
    /// `lab wrap: PROGRAM: not found (PATH=...)`, and what to do.
    pub message: String,
}

/// Find `program` as `execvp(3)` would: a name with a `/` as it is, else
/// the first runnable file of that name in the directories of `path`
/// (the `PATH` value; an empty entry is the working directory).
///
/// # Errors
/// [`Unrunnable`]: 127 when nothing of that name exists, 126 when what
/// exists is a directory or not executable by this user.
pub fn find(program: &str, path: &str) -> Result<PathBuf, Unrunnable> {
    if program.is_empty() {
        return Err(Unrunnable {
            status: NOT_FOUND,
            message: "lab wrap: the program is an empty string".into(),
        });
    }
    if program.contains('/') {
        return check(Path::new(program)).map(|()| PathBuf::from(program));
    }
    let mut first_bad = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if std::fs::symlink_metadata(&candidate).is_err() {
            continue;
        }
        match check(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) => {
                first_bad.get_or_insert(e);
            }
        }
    }
    Err(first_bad.unwrap_or_else(|| Unrunnable {
        status: NOT_FOUND,
        message: format!(
            "lab wrap: {program}: not found in PATH ({path}); give its path, or add its \
             directory to PATH"
        ),
    }))
}

/// Whether `p` can be run: it exists, is not a directory, and this user
/// may execute it.
fn check(p: &Path) -> Result<(), Unrunnable> {
    let shown = p.display();
    match std::fs::metadata(p) {
        Err(e) => Err(Unrunnable {
            status: NOT_FOUND,
            message: format!("lab wrap: {shown}: {e}; nothing was run"),
        }),
        Ok(m) if m.is_dir() => Err(Unrunnable {
            status: NOT_RUNNABLE,
            message: format!("lab wrap: {shown}: is a directory, not a program; nothing was run"),
        }),
        Ok(_) => access(p, Access::EXEC_OK).map_err(|e| Unrunnable {
            status: NOT_RUNNABLE,
            message: format!(
                "lab wrap: {shown}: cannot be executed ({}); make it executable (chmod +x) \
                 or run it through its interpreter; nothing was run",
                std::io::Error::from(e)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_as_a_shell_finds_it() {
        assert_eq!(
            find("sh", "/nonexistent:/bin:/usr/bin")
                .unwrap()
                .file_name()
                .unwrap(),
            "sh"
        );
        let e = find("no-such-program-xyz", "/bin").unwrap_err();
        assert_eq!(e.status, NOT_FOUND, "{}", e.message);
        assert!(e.message.contains("not found in PATH"), "{}", e.message);
        assert_eq!(find("/", "").unwrap_err().status, NOT_RUNNABLE);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("script");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        let e = find(f.to_str().unwrap(), "").unwrap_err();
        assert_eq!(e.status, NOT_RUNNABLE, "{}", e.message);
        assert!(e.message.contains("chmod +x"), "{}", e.message);
        assert_eq!(find("", "/bin").unwrap_err().status, NOT_FOUND);
    }
}
