//! Exit codes and the error kinds that pick them (as uv and ripgrep do):
//! 0 success; 1 the answer is "no" (a gate, the analysis or the audit said no);
//! 2 error: bad input, unreachable system, anything that kept us from deciding;
//! 3 inconclusive: the analysis could not decide and a person must.

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0.
    Success,
    /// 1: a gate or analysis said no.
    No,
    /// 2: an error kept us from deciding.
    Error,
    /// 3: the analysis was inconclusive.
    Inconclusive,
    /// 128 + the signal's number (130 SIGINT, 143 SIGTERM), as a shell reports a command
    /// killed by it: the command was cancelled and cleaned up after itself.
    Signal(u8),
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(match status {
            ExitStatus::Success => 0,
            ExitStatus::No => 1,
            ExitStatus::Error => 2,
            ExitStatus::Inconclusive => 3,
            ExitStatus::Signal(number) => 128u8.saturating_add(number),
        })
    }
}

impl From<slipway_pipeline::RunOutcome> for ExitStatus {
    /// Promoted, planned, paused, aborted on request and nothing-to-do are fine (0); a "no" is 1;
    /// an error or a cancellation without a signal (a lost lock) is 2.
    fn from(outcome: slipway_pipeline::RunOutcome) -> ExitStatus {
        use slipway_pipeline::RunOutcome;
        match outcome {
            RunOutcome::Promoted
            | RunOutcome::RolledBack
            | RunOutcome::WouldProceed
            | RunOutcome::Paused
            | RunOutcome::Unchanged
            | RunOutcome::Aborted => ExitStatus::Success,
            RunOutcome::Rejected => ExitStatus::No,
            RunOutcome::Failed | RunOutcome::Cancelled => ExitStatus::Error,
        }
    }
}

impl From<&slipway_pipeline::RunReport> for ExitStatus {
    /// As the outcome, except that a run cancelled by a signal exits 128 + its number.
    fn from(report: &slipway_pipeline::RunReport) -> ExitStatus {
        match &report.interruption {
            Some(slipway_pipeline::Interruption::Signal { number, .. }) => {
                ExitStatus::Signal(u8::try_from(*number).unwrap_or(15))
            }
            _ => ExitStatus::from(report.outcome),
        }
    }
}

/// An error caused by the user's input (config, flags, files): printed as one line plus hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UserError {
    /// The whole message, including `\n\nhint: …` when there is one.
    pub message: String,
}

/// Prints an error chain once, on stderr, and returns exit status 2.
pub struct Failure;

impl Failure {
    /// Reports `err` as ripgrep does (`{:#}`-style chain on one line, hints after a blank line).
    #[allow(
        clippy::print_stderr,
        reason = "the binaries' single place for printing errors"
    )]
    pub fn report(err: &anyhow::Error) -> ExitCode {
        let mut chain: Vec<String> = err.chain().map(ToString::to_string).collect();
        chain.dedup();
        // Hints travel inside messages after a blank line; keep them for the end.
        let mut hints = Vec::new();
        let parts: Vec<String> = chain
            .into_iter()
            .map(|part| match part.split_once("\n\nhint: ") {
                Some((message, hint)) => {
                    hints.push(hint.to_owned());
                    message.to_owned()
                }
                None => part,
            })
            .collect();
        eprintln!("error: {}", parts.join(": "));
        for hint in hints {
            eprintln!("\nhint: {hint}");
        }
        ExitStatus::Error.into()
    }
}
