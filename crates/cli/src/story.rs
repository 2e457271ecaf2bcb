//! How a run reads on stderr: one line per stage event, `09:00:00  preflight      ✓ message`.
//! Marks carry the meaning in text, not colour, so `NO_COLOR` and CI logs lose nothing.

use slipway_pipeline::{StageEvent, StageStatus};

/// One event as a line.
pub fn event_line(event: &StageEvent) -> String {
    let mark = match event.status {
        StageStatus::Start => "▶",
        StageStatus::Pass => "✓",
        StageStatus::Fail => "✗",
        StageStatus::Skip => "–",
        StageStatus::Info => "·",
    };
    format!(
        "{}  {:<14} {mark} {}",
        event.at.strftime("%H:%M:%S"),
        event.stage,
        event.message
    )
}

/// Prints one event on stderr.
#[allow(clippy::print_stderr, reason = "the binaries' story goes to stderr")]
pub fn print_event(event: &StageEvent) {
    eprintln!("{}", event_line(event));
}

/// Prints why a request was refused (a "no", exit 1), on stderr.
#[allow(clippy::print_stderr, reason = "the binaries' story goes to stderr")]
pub fn print_refusal(message: &str) {
    match message.split_once(" (hint: ") {
        Some((message, hint)) => {
            eprintln!("refused: {message}\n\nhint: {}", hint.trim_end_matches(')'))
        }
        None => eprintln!("refused: {message}"),
    }
}
