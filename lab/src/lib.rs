//! The lab: a deterministic reproduction and soak lab for Linux
//! process-lifecycle bugs (orphans, hangs, leaked fds in nested spawn trees).
//!
//! A [`scenario`] is instantiated by a seed into a [`plan`], run as real
//! processes under a [`strategy`] by a per-trial [`supervisor`], and judged
//! into a [`verdict`] from kernel-exact sources only (pidfds, `waitid`, cgroup
//! files). `docs/design.md` defines the terms and the rules; `docs/architecture.md`
//! says where each lives.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod bench;
pub mod cgroup;
pub mod cli;
pub mod env;
pub mod error;
pub mod expect;
pub mod forensics;
pub mod fuzz;
pub mod input;
pub mod janitor;
pub mod json;
pub mod lineage;
pub mod node;
pub mod output;
pub mod phase;
pub mod pidns;
pub mod plan;
pub mod procfs;
pub mod program;
pub mod record;
pub mod report;
pub mod run;
pub mod scenario;
pub mod session;
pub mod signal;
pub mod soak;
pub mod stats;
pub mod strategy;
pub mod suite;
pub mod supervisor;
pub mod table;
pub mod text;
pub mod trace;
pub mod trial;
pub mod verdict;
pub mod wrap;
