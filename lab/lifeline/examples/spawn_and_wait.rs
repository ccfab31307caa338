//! Spawn a child with a lifeline and wait for it: first a program, then a
//! closure run in a copy of this process.
//!
//! `cargo run -p lifeline --example spawn_and_wait`

use std::io;

use lifeline::{Command, ExitStatus};

fn main() -> io::Result<()> {
    // A program. It finds the read end of its lifeline at fd 3 (a pipe);
    // every other fd of ours above 2 is closed to it.
    let child = Command::new("sh")
        .args([
            "-c",
            "test -p /dev/fd/3 && echo \"child $$: my lifeline is fd 3\"",
        ])
        .spawn()?;
    println!("spawned pid {} (held by its pidfd)", child.pidfd().pid());
    let status = child.wait()?;
    println!("child {} ended: {status:?}", child.pidfd().pid());
    assert_eq!(status, ExitStatus::Exited(0));

    // A closure, run in the child (this process has one thread, which a
    // copy requires). Its parent is alive, so its lifeline is quiet.
    let child = Command::from_fn(|fds| if fds.lifeline.parent_gone() { 1 } else { 42 }).spawn()?;
    let status = child.wait()?;
    println!("closure child {} ended: {status:?}", child.pidfd().pid());
    assert_eq!(status, ExitStatus::Exited(42));
    Ok(())
}
