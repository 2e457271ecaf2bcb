//! The deploy-window gate: releases happen inside allow windows and never inside deny windows,
//! unless someone overrides with a reason, which the report records.
//!
//! A window is a cron schedule, a duration and an IANA time zone, as in Argo CD sync windows: it
//! is *active* at time `t` when some fire time `s` of the schedule satisfies `s <= t < s +
//! duration`. Only the latest fire time at or before `t` needs checking, since the duration is
//! the same for every fire. Deny wins over allow; with no allow windows configured every time is
//! allowed.
//!
//! Time semantics, pinned by the tests:
//! - The schedule is read in the window's time zone wall clock (`0 9 * * 1-5` is 09:00 Berlin
//!   time in summer and in winter).
//! - The duration is elapsed time, not wall clock time: a 3h window firing at 01:00 on the night
//!   clocks spring forward closes at 05:00 local time. Argo CD adds a Go `time.Duration` the same
//!   way.
//! - A fire time that falls in a spring-forward gap fires at the first instant after the gap; a
//!   fire time in a repeated (fall-back) hour fires once, at its first occurrence. This is
//!   croner's documented (OCPS) behaviour.
//! - Start is inclusive, end exclusive.
//!
//! The time is an argument: this module never reads the clock. Time zones come from the tz
//! database bundled into the binary (jiff's `tzdb-bundle-always`), not from
//! `/usr/share/zoneinfo`: a gate does no I/O, and the same policy must give the same answer on a
//! laptop, in CI and in a distroless container. The cost is that tz rule updates arrive with jiff
//! updates.
//!
//! Cron crate: `croner` with its `jiff` backend and no default features, so there is no `chrono`
//! in the tree. Rejected: `cron` (chrono only, and wants a seconds field, which standard 5-field
//! schedules and Argo CD lack), `jiff-cron` (a young fork of `cron` with the same 6-field syntax
//! and few users), and a hand-written parser (DST handling is exactly where such code goes
//! wrong). croner is actively maintained, parses standard 5-field cron with Vixie semantics
//! (day-of-month OR day-of-week), and documents its DST rules; its price is two proc-macro build
//! dependencies (`derive_builder`, `strum`).

use std::str::FromStr;
use std::sync::LazyLock;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::{CheckStatus, GateReport};

const GATE: &str = "windows";

/// The bundled tz database, loaded once: pure data compiled into the binary.
static TZDB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// One allow or deny window (`[[policy.windows.allow]]`, `[[policy.windows.deny]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Standard five-field cron schedule (`minute hour day-of-month month day-of-week`) of the
    /// window's start times.
    pub schedule: String,
    /// How long the window stays open after each start: `1h`, `1h30m`, `90m`, `2d` or ISO 8601
    /// (`PT1H30M`).
    pub duration: String,
    /// IANA time zone the schedule is read in.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// The window gate's policy (`[policy.windows]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowPolicy {
    /// Releases may happen only inside one of these; empty = any time.
    pub allow: Vec<Window>,
    /// Releases may never happen inside one of these (unless overridden). Deny wins over allow.
    pub deny: Vec<Window>,
    /// Whether an explicit [`WindowOverride`] may open a closed window.
    pub allow_override: bool,
}

impl Default for WindowPolicy {
    fn default() -> WindowPolicy {
        WindowPolicy {
            allow: Vec::new(),
            deny: Vec::new(),
            allow_override: true,
        }
    }
}

/// Someone's explicit decision to release outside the windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowOverride {
    /// Who overrides (recorded in the report and the audit trail).
    pub by: String,
    /// Why; an override without a reason is refused.
    pub reason: String,
}

/// A window whose text parsed.
#[derive(Debug)]
pub(crate) struct ParsedWindow {
    cron: Cron,
    duration: SignedDuration,
    time_zone: TimeZone,
}

/// What is wrong with one field of a window.
#[derive(Debug, PartialEq)]
pub(crate) struct WindowProblem {
    /// The field: `schedule`, `duration` or `time_zone`.
    pub(crate) field: &'static str,
    /// What is wrong, naming the input.
    pub(crate) problem: String,
    /// How to fix it.
    pub(crate) hint: &'static str,
}

impl ParsedWindow {
    /// Parses every field, reporting every bad one (in field order).
    pub(crate) fn parse(window: &Window) -> Result<ParsedWindow, Vec<WindowProblem>> {
        let time_zone = parse_time_zone(&window.time_zone);
        let duration = parse_duration(&window.duration);
        let cron = parse_schedule(&window.schedule, time_zone.as_ref().ok());
        match (cron, duration, time_zone) {
            (Ok(cron), Ok(duration), Ok(time_zone)) => Ok(ParsedWindow {
                cron,
                duration,
                time_zone,
            }),
            (cron, duration, time_zone) => {
                let problems = [
                    (
                        "schedule",
                        cron.err(),
                        "five fields: minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or JAN-DEC) day-of-week (0-6 or SUN-SAT), e.g. `0 22 * * FRI` for Fridays 22:00",
                    ),
                    (
                        "duration",
                        duration.err(),
                        "write a positive duration such as `1h`, `1h30m`, `90m`, `2d` or `PT1H30M`",
                    ),
                    (
                        "time_zone",
                        time_zone.err(),
                        "use an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`",
                    ),
                ];
                Err(problems
                    .into_iter()
                    .filter_map(|(field, problem, hint)| {
                        problem.map(|problem| WindowProblem {
                            field,
                            problem,
                            hint,
                        })
                    })
                    .collect())
            }
        }
    }

    /// The start of the opening that covers `now`, if the window is active at `now`.
    fn active_since(&self, now: Timestamp) -> Result<Option<Zoned>, String> {
        let here = now.to_zoned(self.time_zone.clone());
        let start = self
            .cron
            .find_previous_occurrence(&here, true)
            .map_err(|err| cron_message(&err))?;
        let end = start
            .timestamp()
            .checked_add(self.duration)
            .map_err(|err| err.to_string())?;
        Ok((now < end).then_some(start))
    }

    /// The next start after `now`.
    fn next_start(&self, now: Timestamp) -> Option<Zoned> {
        let here = now.to_zoned(self.time_zone.clone());
        self.cron.find_next_occurrence(&here, false).ok()
    }

    /// When the opening that started at `start` ends, in the window's zone.
    fn end_of(&self, start: &Zoned) -> String {
        start
            .timestamp()
            .checked_add(self.duration)
            .map(|end| end.to_zoned(self.time_zone.clone()).to_string())
            .unwrap_or_else(|_| "the end of time".to_owned())
    }
}

fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() {
        return Err("time zone is empty".to_owned());
    }
    TZDB.get(name)
        .map_err(|_| format!("`{name}` is not a known IANA time zone"))
}

/// Accepts what `SignedDuration` parses (`1h30m`, `PT90M`) and also days (`2d`), taken as 24
/// hours each like Argo CD's durations, since freezes are naturally counted in days.
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let not_a_duration = || format!("`{text}` is not a duration");
    let duration = match SignedDuration::from_str(text.trim()) {
        Ok(duration) => duration,
        Err(_) => Span::from_str(text.trim())
            .ok()
            .and_then(|span| span.to_duration(SpanRelativeTo::days_are_24_hours()).ok())
            .ok_or_else(not_a_duration)?,
    };
    if !duration.is_positive() {
        return Err(format!("duration `{text}` must be longer than zero"));
    }
    Ok(duration)
}

fn parse_schedule(text: &str, time_zone: Option<&TimeZone>) -> Result<Cron, String> {
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|err| format!("`{text}` is not a cron schedule: {}", cron_message(&err)))?;
    // A schedule such as `0 0 31 2 *` parses but never fires; a window that can never open is
    // a typo, not a policy. Probe from a fixed leap-year instant so the answer does not depend
    // on when the policy is loaded.
    let probe = Timestamp::from_second(1_704_067_200) // 2024-01-01T00:00:00Z
        .map_err(|err| err.to_string())?
        .to_zoned(time_zone.cloned().unwrap_or(TimeZone::UTC));
    cron.find_next_occurrence(&probe, true)
        .map_err(|_| format!("`{text}` never fires"))?;
    Ok(cron)
}

/// croner's messages are `Kind: Sentence.` with capitals and a period; ours are lowercase with no
/// period.
fn cron_message(err: &croner::errors::CronError) -> String {
    let text = err.to_string();
    text.trim_end_matches('.')
        .split(": ")
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(": ")
}

/// How a window is named in reasons: `deny[0] (`0 22 * * FRI` for 60h, Europe/Berlin)`.
fn label(kind: &str, idx: usize, window: &Window) -> String {
    format!(
        "{kind}[{idx}] (`{}` for {}, {})",
        window.schedule, window.duration, window.time_zone
    )
}

/// Judges the time `now` against the windows, applying `window_override` if the windows are
/// closed. Checks: `not in a deny window`, `inside an allow window`, and `override` when an
/// override was given.
pub fn evaluate(
    policy: &WindowPolicy,
    now: Timestamp,
    window_override: Option<&WindowOverride>,
) -> GateReport {
    let mut checks = vec![deny_check(policy, now), allow_check(policy, now)];
    let blocked = checks
        .iter()
        .any(|(_, status, _)| *status == CheckStatus::Fail);

    let mut override_check = None;
    if let Some(over) = window_override {
        let who = over.by.trim();
        let why = over.reason.trim();
        override_check = Some(if !blocked {
            (
                CheckStatus::Skip,
                format!("override by {who} not needed: the deploy window is open"),
            )
        } else if !policy.allow_override {
            (
                CheckStatus::Fail,
                format!(
                    "override by {who} refused: overrides are disabled (`policy.windows.allow_override = false`)"
                ),
            )
        } else if who.is_empty() {
            (
                CheckStatus::Fail,
                "override refused: it does not say who overrides".to_owned(),
            )
        } else if why.is_empty() {
            (
                CheckStatus::Fail,
                format!("override by {who} refused: an override needs a reason"),
            )
        } else {
            for (_, status, reason) in &mut checks {
                if *status == CheckStatus::Fail {
                    *status = CheckStatus::Pass;
                    *reason =
                        format!("overridden by {who}: {why} (without the override: {reason})");
                }
            }
            (CheckStatus::Pass, format!("overridden by {who}: {why}"))
        });
    }

    let mut report = GateReport::default();
    for (name, status, reason) in checks {
        report.push(GATE, name, status, reason);
    }
    if let Some((status, reason)) = override_check {
        report.push(GATE, "override", status, reason);
    }
    report
}

fn deny_check(policy: &WindowPolicy, now: Timestamp) -> (&'static str, CheckStatus, String) {
    const NAME: &str = "not in a deny window";
    if policy.deny.is_empty() {
        return (
            NAME,
            CheckStatus::Skip,
            "no deny windows configured".to_owned(),
        );
    }
    let mut active = Vec::new();
    for (idx, window) in policy.deny.iter().enumerate() {
        let label = label("deny", idx, window);
        match ParsedWindow::parse(window) {
            Err(problems) => active.push(format!("{label} is invalid: {}", joined(&problems))),
            Ok(parsed) => match parsed.active_since(now) {
                // Fail closed: a deny window we cannot evaluate might be active.
                Err(why) => active.push(format!("{label} could not be evaluated: {why}")),
                Ok(None) => {}
                Ok(Some(start)) => active.push(format!(
                    "inside {label} since {start}, until {}",
                    parsed.end_of(&start)
                )),
            },
        }
    }
    if active.is_empty() {
        (
            NAME,
            CheckStatus::Pass,
            format!("no deny window is active at {now}"),
        )
    } else {
        (NAME, CheckStatus::Fail, active.join("; "))
    }
}

fn allow_check(policy: &WindowPolicy, now: Timestamp) -> (&'static str, CheckStatus, String) {
    const NAME: &str = "inside an allow window";
    if policy.allow.is_empty() {
        return (
            NAME,
            CheckStatus::Skip,
            "no allow windows configured: releases are allowed at any time".to_owned(),
        );
    }
    let mut problems = Vec::new();
    let mut next: Option<Zoned> = None;
    for (idx, window) in policy.allow.iter().enumerate() {
        let label = label("allow", idx, window);
        let parsed = match ParsedWindow::parse(window) {
            Ok(parsed) => parsed,
            Err(errs) => {
                problems.push(format!("{label} is invalid: {}", joined(&errs)));
                continue;
            }
        };
        match parsed.active_since(now) {
            Err(why) => problems.push(format!("{label} could not be evaluated: {why}")),
            Ok(Some(start)) => {
                return (
                    NAME,
                    CheckStatus::Pass,
                    format!(
                        "inside {label} since {start}, until {}",
                        parsed.end_of(&start)
                    ),
                );
            }
            Ok(None) => {
                if let Some(start) = parsed.next_start(now)
                    && next
                        .as_ref()
                        .is_none_or(|n| start.timestamp() < n.timestamp())
                {
                    next = Some(start);
                }
            }
        }
    }
    let mut reason = format!("outside every allow window at {now}");
    if let Some(next) = next {
        reason.push_str(&format!("; the next one opens at {next}"));
    }
    for problem in problems {
        reason.push_str(&format!("; {problem}"));
    }
    (NAME, CheckStatus::Fail, reason)
}

fn joined(problems: &[WindowProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.problem))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(schedule: &str, duration: &str, time_zone: &str) -> Window {
        Window {
            schedule: schedule.to_owned(),
            duration: duration.to_owned(),
            time_zone: time_zone.to_owned(),
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse::<Timestamp>().expect("test timestamp")
    }

    /// Is `window` active at `now`?
    #[track_caller]
    fn active(window: &Window, now: &str) -> bool {
        let parsed = ParsedWindow::parse(window).expect("valid window");
        parsed.active_since(at(now)).expect("evaluates").is_some()
    }

    #[test]
    fn activity_edges() {
        let business = window("0 9 * * MON-FRI", "8h", "Europe/Berlin");
        let freeze = window("0 22 * * 5", "2d", "Europe/Berlin");
        let utc = window("*/15 * * * *", "5m", "UTC");
        // 2024-06-03 is a Monday; Berlin is UTC+2 in summer, UTC+1 in winter.
        let cases: &[(&str, &Window, &str, bool)] = &[
            ("exactly at start", &business, "2024-06-03T07:00:00Z", true),
            (
                "one second before start",
                &business,
                "2024-06-03T06:59:59Z",
                false,
            ),
            (
                "one second before end",
                &business,
                "2024-06-03T14:59:59Z",
                true,
            ),
            ("exactly at end", &business, "2024-06-03T15:00:00Z", false),
            (
                "sub-second before start",
                &business,
                "2024-06-03T06:59:59.999Z",
                false,
            ),
            (
                "sub-second after start",
                &business,
                "2024-06-03T07:00:00.001Z",
                true,
            ),
            (
                "sub-second before end",
                &business,
                "2024-06-03T14:59:59.999Z",
                true,
            ),
            (
                "winter start is 08:00Z",
                &business,
                "2024-01-08T08:00:00Z",
                true,
            ),
            (
                "winter 07:30Z is before 09:00 local",
                &business,
                "2024-01-08T07:30:00Z",
                false,
            ),
            ("saturday", &business, "2024-06-08T10:00:00Z", false),
            (
                "freeze spans the weekend",
                &freeze,
                "2024-06-09T12:00:00Z",
                true,
            ),
            (
                "freeze ends sunday 22:00 local",
                &freeze,
                "2024-06-09T20:00:00Z",
                false,
            ),
            (
                "every 15 minutes, inside",
                &utc,
                "2024-06-03T10:34:59Z",
                true,
            ),
            ("every 15 minutes, gap", &utc, "2024-06-03T10:35:00Z", false),
        ];
        for (what, window, now, want) in cases {
            assert_eq!(active(window, now), *want, "case: {what}");
        }
    }

    #[test]
    fn dst_in_berlin() {
        // 2024-03-31: 02:00 CET jumps to 03:00 CEST. 2024-10-27: 03:00 CEST falls back to 02:00 CET.
        let night = window("0 1 * * *", "3h", "Europe/Berlin");
        let in_gap = window("30 2 * * *", "1h", "Europe/Berlin");
        let in_fold = window("30 2 * * *", "20m", "Europe/Berlin");
        let cases: &[(&str, &Window, &str, bool)] = &[
            // 01:00 CET = 00:00Z, open for 3 elapsed hours until 03:00Z = 05:00 CEST.
            (
                "spring: 3h is elapsed time",
                &night,
                "2024-03-31T04:30:00+02:00",
                true,
            ),
            (
                "spring: closes at 05:00 local",
                &night,
                "2024-03-31T05:00:00+02:00",
                false,
            ),
            (
                "normal day: closes at 04:00 local",
                &night,
                "2024-03-30T04:30:00+01:00",
                false,
            ),
            (
                "normal day: open at 03:59 local",
                &night,
                "2024-03-30T03:59:59+01:00",
                true,
            ),
            // 02:30 does not exist on 2024-03-31: the window opens at 03:00 CEST instead.
            (
                "gap: opens after the gap",
                &in_gap,
                "2024-03-31T03:00:00+02:00",
                true,
            ),
            (
                "gap: open for 1h from 03:00",
                &in_gap,
                "2024-03-31T03:59:59+02:00",
                true,
            ),
            (
                "gap: closed at 04:00",
                &in_gap,
                "2024-03-31T04:00:00+02:00",
                false,
            ),
            (
                "gap: not open before the jump",
                &in_gap,
                "2024-03-31T01:59:59+01:00",
                false,
            ),
            // 02:30 happens twice on 2024-10-27: the window opens at the first (CEST) one only.
            (
                "fold: first 02:30 opens",
                &in_fold,
                "2024-10-27T02:40:00+02:00",
                true,
            ),
            (
                "fold: second 02:30 does not reopen",
                &in_fold,
                "2024-10-27T02:40:00+01:00",
                false,
            ),
        ];
        for (what, window, now, want) in cases {
            assert_eq!(active(window, now), *want, "case: {what}");
        }
    }

    #[test]
    fn windows_crossing_midnight() {
        // Opens 22:00 Berlin time for 4 elapsed hours: until 02:00 the next day.
        let night = window("0 22 * * *", "4h", "Europe/Berlin");
        // Fridays 23:00 for 3h: the Saturday morning belongs to Friday's opening.
        let friday_late = window("0 23 * * FRI", "3h", "Europe/Berlin");
        let cases: &[(&str, &Window, &str, bool)] = &[
            (
                "one second before opening",
                &night,
                "2024-06-04T21:59:59+02:00",
                false,
            ),
            ("opens at 22:00", &night, "2024-06-04T22:00:00+02:00", true),
            ("23:30", &night, "2024-06-04T23:30:00+02:00", true),
            ("midnight", &night, "2024-06-05T00:00:00+02:00", true),
            ("01:59 next day", &night, "2024-06-05T01:59:00+02:00", true),
            (
                "last instant before 02:00",
                &night,
                "2024-06-05T01:59:59.999+02:00",
                true,
            ),
            (
                "02:00 next day closes",
                &night,
                "2024-06-05T02:00:00+02:00",
                false,
            ),
            ("midday", &night, "2024-06-05T12:00:00+02:00", false),
            ("winter 23:30", &night, "2024-01-10T23:30:00+01:00", true),
            ("winter 01:59", &night, "2024-01-11T01:59:00+01:00", true),
            (
                "winter 02:00 closes",
                &night,
                "2024-01-11T02:00:00+01:00",
                false,
            ),
            // 2024-03-31 02:00 CET jumps to 03:00 CEST: 22:00 CET (21:00Z) + 4h = 01:00Z, which
            // is 03:00 CEST, so the night is one wall-clock hour longer but 4 hours all the same.
            (
                "spring-forward night: 01:59:59 CET inside",
                &night,
                "2024-03-31T01:59:59+01:00",
                true,
            ),
            (
                "spring-forward night: 03:00 CEST is 4 elapsed hours, closed",
                &night,
                "2024-03-31T03:00:00+02:00",
                false,
            ),
            // 2024-10-27 03:00 CEST falls back to 02:00 CET: 22:00 CEST (20:00Z) + 4h = 00:00Z,
            // the first 02:00 (CEST); the repeated hour after it is outside.
            (
                "fall-back night: 01:59:59 CEST inside",
                &night,
                "2024-10-27T01:59:59+02:00",
                true,
            ),
            (
                "fall-back night: first 02:00 closes",
                &night,
                "2024-10-27T02:00:00+02:00",
                false,
            ),
            (
                "fall-back night: repeated 02:30 CET outside",
                &night,
                "2024-10-27T02:30:00+01:00",
                false,
            ),
            (
                "Friday 23:30",
                &friday_late,
                "2024-06-07T23:30:00+02:00",
                true,
            ),
            (
                "Saturday 01:59, from Friday's opening",
                &friday_late,
                "2024-06-08T01:59:59+02:00",
                true,
            ),
            (
                "Saturday 02:00 closes",
                &friday_late,
                "2024-06-08T02:00:00+02:00",
                false,
            ),
            (
                "Thursday 23:30: the day of week is the start's",
                &friday_late,
                "2024-06-06T23:30:00+02:00",
                false,
            ),
            (
                "Saturday 23:30: no Saturday opening",
                &friday_late,
                "2024-06-08T23:30:00+02:00",
                false,
            ),
        ];
        for (what, window, now, want) in cases {
            assert_eq!(active(window, now), *want, "case: {what}");
        }
    }

    #[test]
    fn deny_window_crossing_midnight_into_the_next_day() {
        let policy = WindowPolicy {
            allow: vec![window("0 22 * * *", "4h", "Europe/Berlin")],
            deny: vec![window("0 23 * * FRI", "3h", "Europe/Berlin")],
            allow_override: true,
        };
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "Saturday 01:30: inside both, deny wins",
                "2024-06-08T01:30:00+02:00",
                &[
                    "fail not in a deny window: inside deny[0] (`0 23 * * FRI` for 3h, Europe/Berlin) since 2024-06-07T23:00:00+02:00[Europe/Berlin], until 2024-06-08T02:00:00+02:00[Europe/Berlin]",
                    "pass inside an allow window: inside allow[0] (`0 22 * * *` for 4h, Europe/Berlin) since 2024-06-07T22:00:00+02:00[Europe/Berlin], until 2024-06-08T02:00:00+02:00[Europe/Berlin]",
                ],
            ),
            (
                "Friday 22:59: allowed, the freeze starts at 23:00",
                "2024-06-07T22:59:59+02:00",
                &[
                    "pass not in a deny window: no deny window is active at 2024-06-07T20:59:59Z",
                    "pass inside an allow window: inside allow[0] (`0 22 * * *` for 4h, Europe/Berlin) since 2024-06-07T22:00:00+02:00[Europe/Berlin], until 2024-06-08T02:00:00+02:00[Europe/Berlin]",
                ],
            ),
            (
                "Saturday 02:00: both closed, the next opening is Saturday 22:00",
                "2024-06-08T02:00:00+02:00",
                &[
                    "pass not in a deny window: no deny window is active at 2024-06-08T00:00:00Z",
                    "fail inside an allow window: outside every allow window at 2024-06-08T00:00:00Z; the next one opens at 2024-06-08T22:00:00+02:00[Europe/Berlin]",
                ],
            ),
            (
                "Thursday night is not frozen",
                "2024-06-07T00:30:00+02:00",
                &[
                    "pass not in a deny window: no deny window is active at 2024-06-06T22:30:00Z",
                    "pass inside an allow window: inside allow[0] (`0 22 * * *` for 4h, Europe/Berlin) since 2024-06-06T22:00:00+02:00[Europe/Berlin], until 2024-06-07T02:00:00+02:00[Europe/Berlin]",
                ],
            ),
        ];
        for (what, now, want) in cases {
            let got = outcome(&evaluate(&policy, at(now), None));
            assert_eq!(got, *want, "case: {what}");
        }
    }

    fn outcome(report: &GateReport) -> Vec<String> {
        report
            .checks
            .iter()
            .map(|c| format!("{} {}: {}", c.status.as_str(), c.name, c.reason))
            .collect()
    }

    #[test]
    fn gate() {
        let weekdays = window("0 8 * * MON-FRI", "10h", "UTC");
        let friday_freeze = window("0 16 * * FRI", "64h", "UTC");
        let both = WindowPolicy {
            allow: vec![weekdays.clone()],
            deny: vec![friday_freeze.clone()],
            allow_override: true,
        };
        let allow_only = WindowPolicy {
            allow: vec![weekdays],
            ..WindowPolicy::default()
        };
        let deny_only = WindowPolicy {
            deny: vec![friday_freeze],
            ..WindowPolicy::default()
        };
        let cases: &[(&str, &WindowPolicy, &str, &[&str])] = &[
            (
                "nothing configured: always allowed",
                &WindowPolicy::default(),
                "2024-06-08T03:00:00Z",
                &[
                    "skip not in a deny window: no deny windows configured",
                    "skip inside an allow window: no allow windows configured: releases are allowed at any time",
                ],
            ),
            (
                "inside allow, outside deny",
                &both,
                "2024-06-04T09:00:00Z",
                &[
                    "pass not in a deny window: no deny window is active at 2024-06-04T09:00:00Z",
                    "pass inside an allow window: inside allow[0] (`0 8 * * MON-FRI` for 10h, UTC) since 2024-06-04T08:00:00+00:00[UTC], until 2024-06-04T18:00:00+00:00[UTC]",
                ],
            ),
            (
                "deny overlapping allow: deny wins",
                &both,
                "2024-06-07T17:00:00Z",
                &[
                    "fail not in a deny window: inside deny[0] (`0 16 * * FRI` for 64h, UTC) since 2024-06-07T16:00:00+00:00[UTC], until 2024-06-10T08:00:00+00:00[UTC]",
                    "pass inside an allow window: inside allow[0] (`0 8 * * MON-FRI` for 10h, UTC) since 2024-06-07T08:00:00+00:00[UTC], until 2024-06-07T18:00:00+00:00[UTC]",
                ],
            ),
            (
                "outside allow names the next opening",
                &allow_only,
                "2024-06-08T10:00:00Z",
                &[
                    "skip not in a deny window: no deny windows configured",
                    "fail inside an allow window: outside every allow window at 2024-06-08T10:00:00Z; the next one opens at 2024-06-10T08:00:00+00:00[UTC]",
                ],
            ),
            (
                "deny ends exactly now",
                &deny_only,
                "2024-06-10T08:00:00Z",
                &[
                    "pass not in a deny window: no deny window is active at 2024-06-10T08:00:00Z",
                    "skip inside an allow window: no allow windows configured: releases are allowed at any time",
                ],
            ),
        ];
        for (what, policy, now, want) in cases {
            let got = outcome(&evaluate(policy, at(now), None));
            assert_eq!(got, *want, "case: {what}");
        }
    }

    #[test]
    fn overrides() {
        let policy = WindowPolicy {
            deny: vec![window("0 16 * * FRI", "64h", "UTC")],
            ..WindowPolicy::default()
        };
        let frozen = at("2024-06-08T10:00:00Z");
        let open = at("2024-06-04T10:00:00Z");
        let over = |by: &str, reason: &str| WindowOverride {
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        let no_overrides = WindowPolicy {
            allow_override: false,
            ..policy.clone()
        };
        let deny_reason = "inside deny[0] (`0 16 * * FRI` for 64h, UTC) since 2024-06-07T16:00:00+00:00[UTC], until 2024-06-10T08:00:00+00:00[UTC]";
        let cases: &[(&str, &WindowPolicy, Timestamp, WindowOverride, &[String])] = &[
            (
                "override with a reason opens the window and is recorded",
                &policy,
                frozen,
                over("alice", "hotfix for INC-42"),
                &[
                    format!("pass not in a deny window: overridden by alice: hotfix for INC-42 (without the override: {deny_reason})"),
                    "skip inside an allow window: no allow windows configured: releases are allowed at any time".to_owned(),
                    "pass override: overridden by alice: hotfix for INC-42".to_owned(),
                ],
            ),
            (
                "override without a reason is refused",
                &policy,
                frozen,
                over("alice", "  "),
                &[
                    format!("fail not in a deny window: {deny_reason}"),
                    "skip inside an allow window: no allow windows configured: releases are allowed at any time".to_owned(),
                    "fail override: override by alice refused: an override needs a reason".to_owned(),
                ],
            ),
            (
                "override without a name is refused",
                &policy,
                frozen,
                over("", "hotfix"),
                &[
                    format!("fail not in a deny window: {deny_reason}"),
                    "skip inside an allow window: no allow windows configured: releases are allowed at any time".to_owned(),
                    "fail override: override refused: it does not say who overrides".to_owned(),
                ],
            ),
            (
                "overrides disabled",
                &no_overrides,
                frozen,
                over("alice", "hotfix"),
                &[
                    format!("fail not in a deny window: {deny_reason}"),
                    "skip inside an allow window: no allow windows configured: releases are allowed at any time".to_owned(),
                    "fail override: override by alice refused: overrides are disabled (`policy.windows.allow_override = false`)".to_owned(),
                ],
            ),
            (
                "unneeded override is noted, not applied",
                &policy,
                open,
                over("alice", "just in case"),
                &[
                    "pass not in a deny window: no deny window is active at 2024-06-04T10:00:00Z".to_owned(),
                    "skip inside an allow window: no allow windows configured: releases are allowed at any time".to_owned(),
                    "skip override: override by alice not needed: the deploy window is open".to_owned(),
                ],
            ),
        ];
        for (what, policy, now, over, want) in cases {
            let got = outcome(&evaluate(policy, *now, Some(over)));
            assert_eq!(got, *want, "case: {what}");
        }
    }

    #[test]
    fn invalid_windows_fail_closed() {
        let policy = WindowPolicy {
            allow: vec![window("0 9 * * *", "1h", "Mars/Olympus")],
            deny: vec![window("61 * * * *", "1h", "UTC")],
            allow_override: true,
        };
        let report = evaluate(&policy, at("2024-06-04T09:30:00Z"), None);
        assert_eq!(
            outcome(&report),
            [
                "fail not in a deny window: deny[0] (`61 * * * *` for 1h, UTC) is invalid: schedule: `61 * * * *` is not a cron schedule: component error: number out of bounds",
                "fail inside an allow window: outside every allow window at 2024-06-04T09:30:00Z; allow[0] (`0 9 * * *` for 1h, Mars/Olympus) is invalid: time_zone: `Mars/Olympus` is not a known IANA time zone",
            ]
        );
    }

    #[test]
    fn parse_problems() {
        let cases: &[(Window, &[(&str, &str)])] = &[
            (window("0 9 * * *", "1h30m", "Europe/Berlin"), &[]),
            (window("0 9 * * *", "PT90M", "utc"), &[]),
            (window("@daily", "2d", "America/New_York"), &[]),
            (
                window("0 9 * * *", "0s", "UTC"),
                &[("duration", "duration `0s` must be longer than zero")],
            ),
            (
                window("0 9 * * *", "-1h", "UTC"),
                &[("duration", "duration `-1h` must be longer than zero")],
            ),
            (
                window("0 9 * * *", "soon", "UTC"),
                &[("duration", "`soon` is not a duration")],
            ),
            (
                window("0 9 * * *", "1mo", "UTC"),
                &[("duration", "`1mo` is not a duration")],
            ),
            (
                window("0 9 * * *", "1h", ""),
                &[("time_zone", "time zone is empty")],
            ),
            (
                window("0 0 9 * * *", "1h", "UTC"),
                &[(
                    "schedule",
                    "`0 0 9 * * *` is not a cron schedule: invalid pattern: pattern must have 5 fields when seconds are disallowed",
                )],
            ),
            (
                window("0 0 31 2 *", "1h", "UTC"),
                &[("schedule", "`0 0 31 2 *` never fires")],
            ),
            (
                window("nope", "never", "Nowhere"),
                &[
                    (
                        "schedule",
                        "`nope` is not a cron schedule: invalid pattern: pattern must have 5 fields when seconds are disallowed",
                    ),
                    ("duration", "`never` is not a duration"),
                    ("time_zone", "`Nowhere` is not a known IANA time zone"),
                ],
            ),
        ];
        for (window, want) in cases {
            let got: Vec<(&str, String)> = match ParsedWindow::parse(window) {
                Ok(_) => Vec::new(),
                Err(problems) => problems.into_iter().map(|p| (p.field, p.problem)).collect(),
            };
            let want: Vec<(&str, String)> =
                want.iter().map(|(f, p)| (*f, (*p).to_owned())).collect();
            assert_eq!(got, want, "window {window:?}");
        }
    }
}
