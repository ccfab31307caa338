//! Interleaved A/B timing of each canonical spawn path against its raw
//! counterpart: the two are timed in alternation (ABBA), so that load that
//! comes and goes on a noisy machine hits both alike, and the ratio of each
//! pair is taken before the median. A check on the criterion benches
//! (`cargo bench -p lab --bench spawn`), which time one path after the
//! other.
//!
//! `cargo run --release -p lifeline --features legacy --example spawn_ab -- [PAIRS]`

use std::io;
use std::time::{Duration, Instant};

use lifeline::{floor, Spawn};

/// Time `f` once.
fn time(f: &mut dyn FnMut() -> io::Result<()>) -> io::Result<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

/// The value at quantile `q` of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Time `a` and `b` in `pairs` ABBA-ordered pairs; print the median of each
/// and the median and quartiles of the per-pair ratio a/b.
fn ab(
    name: &str,
    pairs: usize,
    a: &mut dyn FnMut() -> io::Result<()>,
    b: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<()> {
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let (x, y) = if i % 2 == 0 {
            let x = time(a)?;
            (x, time(b)?)
        } else {
            let y = time(b)?;
            (time(a)?, y)
        };
        let (x, y) = (x.as_secs_f64() * 1e6, y.as_secs_f64() * 1e6);
        ta.push(x);
        tb.push(y);
        ratio.push(x / y);
    }
    for v in [&mut ta, &mut tb, &mut ratio] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "{name}: canonical {:.0} us, raw {:.0} us (medians of {pairs}); \
         per-pair ratio median {:.3} (quartiles {:.3}-{:.3})",
        quantile(&ta, 0.5),
        quantile(&tb, 0.5),
        quantile(&ratio, 0.5),
        quantile(&ratio, 0.25),
        quantile(&ratio, 0.75),
    );
    Ok(())
}

fn main() -> io::Result<()> {
    let pairs: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "PAIRS"))?,
        None => 2000,
    };
    ab(
        "create, _exit, reap: clone3 + pidfd + lifeline vs fork + waitpid",
        pairs,
        &mut || lifeline::spawn(|_| 0)?.wait().map(drop),
        &mut || floor::fork_exit_reap().map(drop),
    )?;
    ab(
        "create, exec /bin/true, reap: clone3(VM|VFORK) + pidfd + lifeline vs posix_spawn + waitpid",
        pairs,
        &mut || {
            Spawn::default()
                .exec(c"/bin/true", &[c"true"], &[], 3)?
                .wait()
                .map(drop)
        },
        &mut || floor::posix_spawn_reap("/bin/true").map(drop),
    )
}
