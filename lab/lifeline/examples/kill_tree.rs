//! Kill a tree: a child spawns two grandchildren, we kill the child through
//! its pidfd, and the grandchildren see EOF on their lifelines and exit on
//! their own. Nothing is left behind: we are the subreaper of the tree, so
//! the orphaned grandchildren come to us, and we reap them.
//!
//! `cargo run -p lifeline --example kill_tree`

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use lifeline::{Command, ExitStatus, Signal};

/// The exit code of a grandchild that saw its parent die.
const SAW_EOF: i32 = 42;

fn main() -> io::Result<()> {
    // Orphans below us are reparented to us, not to PID 1.
    lifeline::become_subreaper()?;
    let (mut ready_r, ready_w) = UnixStream::pair()?;
    // The child writes to `ready_w`, which it keeps (every other fd of ours
    // is closed in it). The closure borrows it: a value owning an fd that is
    // not kept must not be used or dropped in the child.
    let mut ready = &ready_w;

    let child = Command::from_fn(move |_| {
        // In the child. Each grandchild blocks on its lifeline, whose only
        // write end this child holds (in `kids`).
        let mut kids = Vec::new();
        for _ in 0..2 {
            let kid = Command::from_fn(|fds| {
                fds.lifeline.wait_parent_gone(None);
                println!(
                    "grandchild {}: lifeline EOF, my parent is gone; exiting",
                    std::process::id()
                );
                SAW_EOF
            })
            .spawn();
            match kid {
                Ok(kid) => kids.push(kid),
                Err(_) => return 1,
            }
        }
        let pids: Vec<i32> = kids.iter().map(|k| k.pidfd().pid()).collect();
        println!(
            "child {}: spawned grandchildren {pids:?}",
            std::process::id()
        );
        if ready.write_all(b"r").is_err() {
            return 1;
        }
        // Wait to be killed; `kids` (the lifelines) stay open until then.
        lifeline::block_forever()
    })
    .keep(ready_w.as_fd())
    .spawn()?;
    drop(ready_w);

    // Wait until the grandchildren exist.
    let mut byte = [0u8; 1];
    ready_r.read_exact(&mut byte)?;

    println!(
        "killing child {} with SIGKILL via its pidfd",
        child.pidfd().pid()
    );
    child.pidfd().send_signal(Signal::KILL)?;
    let status = child.wait()?;
    println!("child ended: {status:?}");
    assert_eq!(status, ExitStatus::Signaled(Signal::KILL.as_raw()));

    // The child's death closed the lifelines' write ends: the grandchildren,
    // now ours, exit on their own. Reap them through pidfds.
    let orphans = lifeline::adopt_children()?;
    assert_eq!(orphans.len(), 2, "both grandchildren came to the subreaper");
    for pidfd in orphans {
        let status = pidfd.wait()?;
        println!("grandchild {} ended: {status:?}", pidfd.pid());
        assert_eq!(status, ExitStatus::Exited(SAW_EOF));
    }
    assert_eq!(lifeline::reap_any(false)?, lifeline::Reaped::NoChildren);
    println!("no process left behind");
    Ok(())
}
