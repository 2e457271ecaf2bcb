//! How a run reads on stderr: one line per stage event, `09:00:00  preflight      ✓ message`.
//! Marks carry the meaning in text, not colour, so `NO_COLOR` and CI logs lose nothing.
//!
//! On a terminal (stderr is a TTY and `CI` is unset) a spinner below the lines shows that a
//! release is waiting (for pods, for the next analysis interval) and on what; in CI and in pipes
//! only the plain lines are written.

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use slipway_pipeline::{StageEvent, StageStatus};

/// Set by CI systems; no live drawing then.
pub const CI: &str = "CI";

/// The systems a configuration lists in `backend.simulated`, for [`event_line`].
static SIMULATED: OnceLock<Vec<String>> = OnceLock::new();

/// Tells the story which systems are simulated on purpose (`backend.simulated` next to real
/// ones): from then on every line whose stage rests on one of them says so. Not for `--demo`,
/// where the banner already says that everything is simulated. Call once, before the first line.
pub fn mark_simulated(systems: &[String]) {
    let _ = SIMULATED.set(systems.to_vec());
}

/// The systems a stage's evidence or changes come from: `analysis` reads metrics, the canary
/// changes the cluster, and so on.
fn systems_of(stage: &str) -> &'static [&'static str] {
    match stage {
        "model-gate" => &["models"],
        "resolve-digest" | "sign" | "verify" | "signatures" => &["registry"],
        "scan-gate" => &["scanner"],
        "analysis" => &["metrics"],
        "promote" => &["cluster", "models", "registry"],
        "preflight" | "canary" | "blue-green" | "rolling" | "abort" | "record" | "resume"
        | "cancel" | "rollback" | "watch" | "reload" => &["cluster"],
        _ => &[],
    }
}

/// ` [simulated: metrics]` for a line whose stage rests on a simulated system, else nothing.
fn simulated_tag(stage: &str) -> String {
    let Some(simulated) = SIMULATED.get() else {
        return String::new();
    };
    let hit: Vec<&str> = systems_of(stage)
        .iter()
        .copied()
        .filter(|system| simulated.iter().any(|name| name == system))
        .collect();
    if hit.is_empty() {
        String::new()
    } else {
        format!(" [simulated: {}]", hit.join(", "))
    }
}

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
        "{}  {:<14} {mark} {}{}",
        event.at.strftime("%H:%M:%S"),
        event.stage,
        event.message,
        simulated_tag(event.stage)
    )
}

fn spinner() -> Option<&'static ProgressBar> {
    static SPINNER: OnceLock<Option<ProgressBar>> = OnceLock::new();
    SPINNER
        .get_or_init(|| {
            let live = std::io::stderr().is_terminal() && std::env::var_os(CI).is_none();
            live.then(|| {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
        })
        .as_ref()
}

/// Prints one event on stderr (above the spinner on a terminal).
#[allow(clippy::print_stderr, reason = "the binaries' story goes to stderr")]
pub fn print_event(event: &StageEvent) {
    let line = event_line(event);
    match spinner() {
        Some(bar) => {
            bar.println(line);
            bar.set_message(format!(
                "{}: {}",
                event.stage,
                if event.status == StageStatus::Start {
                    "working"
                } else {
                    "waiting"
                }
            ));
        }
        None => eprintln!("{line}"),
    }
}

/// Clears the spinner; call once the run is over.
pub fn finish() {
    if let Some(bar) = spinner() {
        bar.finish_and_clear();
    }
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
