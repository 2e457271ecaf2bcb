//! The embedded demo world: scenario worlds seeded so that a release tells one story, the
//! whole demo story told in one world, and the persisted embedded world that lets separate
//! processes (`run`, then `approve`, then `promote`) share one world through a state directory.
//!
//! Key design decision: simulation lives here, outside `slipway-pipeline`, so the library that
//! embedders use knows nothing of scenarios, seeded data or simulated worlds. The in-memory
//! backends stay in their own crates as reference implementations of each trait; this crate
//! only *seeds* them ([`scenario`]), strings them into a story ([`story`]) and keeps their state
//! on disk between processes ([`persist`]). The pipeline cannot tell a scenario from a real
//! system: scenarios differ in data, never in pipeline branches.
//!
//! Test hooks of the embedded world only (read by [`persist::PersistedCluster`], never by a real
//! backend), for tests that kill or signal a process at a chosen cluster write:
//! - `SLIPWAY_DEMO_TRACE_WRITES=1` ([`persist::TRACE_WRITES_ENV`]): one line per successful
//!   cluster write on stderr, `slipway-demo: cluster write N: <operation> <object>`, N counting
//!   from 1 in each process.
//! - `SLIPWAY_DEMO_STALL_AFTER_WRITE=N` ([`persist::STALL_AFTER_WRITE_ENV`]): after the N-th
//!   successful cluster write of the process (state saved, file lock released), print
//!   `slipway-demo: stalled after cluster write N: <operation> <object>` on stderr and wait
//!   forever on a pending future, so the process stays alive and its signal handlers still run;
//!   later writes (cleanup after a signal) proceed normally.

pub mod persist;
pub mod scenario;
pub mod story;
