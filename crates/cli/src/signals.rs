//! SIGINT and SIGTERM, as a cancelled GitHub job sends them (SIGINT, then SIGTERM 7.5 s later,
//! then SIGKILL 2.5 s after that).
//!
//! The first signal raises the command's [`Interrupt`]: the pipeline stops waiting, removes what
//! it started, records `cancelled` and releases the lock, and the binary exits 128 + the
//! signal's number. That cleanup has [`CLEANUP_BUDGET`]; if it has not finished by then the
//! process exits anyway, so it ends within 7 s of the signal, before the runner's SIGTERM. A
//! second signal exits at once.

use std::time::Duration;

use slipway_pipeline::{Interrupt, Interruption};

/// How long the cleanup after a signal may take before the process exits regardless.
pub const CLEANUP_BUDGET: Duration = Duration::from_millis(6500);

/// Installs the handlers on the current tokio runtime. Call once, early in `main`.
#[allow(
    clippy::print_stderr,
    reason = "the binaries' story goes to stderr; a signal is part of it"
)]
pub fn install(interrupt: Interrupt) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = [
            ("SIGINT", 2, signal(SignalKind::interrupt())),
            ("SIGTERM", 15, signal(SignalKind::terminate())),
        ];
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(&'static str, i32)>();
        for (name, number, stream) in streams {
            let Ok(mut stream) = stream else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send((name, number)).is_err() {
                        break;
                    }
                }
            });
        }
        tokio::spawn(async move {
            let Some((name, number)) = rx.recv().await else {
                return;
            };
            eprintln!(
                "slipway: {name} received: stopping and removing what this command started (a second signal exits at once)"
            );
            interrupt.trigger(Interruption::Signal {
                name: name.to_owned(),
                number,
            });
            let code = 128 + number;
            tokio::select! {
                second = rx.recv() => {
                    if let Some((again, _)) = second {
                        eprintln!("slipway: {again} received again: exiting now");
                    }
                }
                () = tokio::time::sleep(CLEANUP_BUDGET) => {
                    eprintln!(
                        "slipway: cleanup after {name} did not finish within {CLEANUP_BUDGET:?}: exiting (hint: `slipway-deploy abort` removes what is left)"
                    );
                }
            }
            std::process::exit(code);
        });
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt;
    }
}
