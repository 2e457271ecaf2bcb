//! The example workflows in `examples/github/` against the real binaries: every `slipway-*`
//! command a `run:` script calls must name a subcommand that exists and only flags that
//! subcommand's `--help` lists, and the example `slipway.toml` must load with every key known.
//!
//! Asking the binaries (rather than a list kept here) means a renamed flag breaks this test, not a
//! user's pipeline.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml_ng::Value;

use crate::support::{command, output, workspace_root};

const BINARIES: &[&str] = &["slipway-deploy", "slipway-rollback", "slipway-audit"];

/// One `slipway-*` command found in a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Invocation {
    /// `release.yml: job canary, step "Canary"`.
    place: String,
    binary: String,
    /// The subcommand, when the first word after the binary is not a flag.
    subcommand: Option<String>,
    /// Every `--flag` used, without values.
    flags: Vec<String>,
}

/// Splits a shell script into simple commands: at unquoted line ends (not after `\`), `;`, `&&`,
/// `||` and `|`. Quotes and `${…}` are kept whole, so `${TO:+--to "$TO"}` stays one word.
fn commands(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = script.chars().peekable();
    let (mut single, mut double, mut braces) = (false, false, 0_u32);
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if !single => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                    current.push(' ');
                } else {
                    current.push(ch);
                    if let Some(next) = chars.next() {
                        current.push(next);
                    }
                }
            }
            '\'' if !double => {
                single = !single;
                current.push(ch);
            }
            '"' if !single => {
                double = !double;
                current.push(ch);
            }
            '{' if !single && current.ends_with('$') => {
                braces += 1;
                current.push(ch);
            }
            '}' if !single && braces > 0 => {
                braces -= 1;
                current.push(ch);
            }
            '\n' | ';' | '|' | '&' if !single && !double && braces == 0 => {
                if ch == '&' && chars.peek() != Some(&'&') {
                    // A lone `&` (background, `2>&1`) does not end a command we check.
                    current.push(ch);
                    continue;
                }
                if matches!(ch, '|' | '&') && chars.peek() == Some(&ch) {
                    chars.next();
                }
                out.push(std::mem::take(&mut current));
            }
            _ => current.push(ch),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|command| command.trim().to_owned())
        .filter(|command| !command.is_empty())
        .collect()
}

/// Whitespace-separated words, quotes kept whole (and removed).
fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut single, mut double, mut any) = (false, false, false);
    for ch in command.chars() {
        match ch {
            '\'' if !double => {
                single = !single;
                any = true;
            }
            '"' if !single => {
                double = !double;
                any = true;
            }
            ch if ch.is_whitespace() && !single && !double => {
                if any || !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                any = false;
            }
            _ => current.push(ch),
        }
    }
    if any || !current.is_empty() {
        out.push(current);
    }
    out
}

/// Every `--flag` in `text` that starts a word or follows `+`, `=`, `(` (as in
/// `${EMERGENCY:+--emergency}`), without its `=value`.
fn flags(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut idx = 0;
    while let Some(found) = text[idx..].find("--") {
        let start = idx + found;
        let before = start.checked_sub(1).map(|at| bytes[at]);
        let name: String = text[start + 2..]
            .chars()
            .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
            .collect();
        let boundary = matches!(
            before,
            None | Some(b' ' | b'\t' | b'"' | b'\'' | b'+' | b'=' | b'(')
        );
        if boundary && name.starts_with(|ch: char| ch.is_ascii_lowercase()) {
            out.push(format!("--{name}"));
        }
        idx = start + 2 + name.len();
    }
    out
}

/// Every Slipway invocation in a workflow's `run:` scripts.
fn invocations(file: &str, workflow: &Value) -> Vec<Invocation> {
    let mut out = Vec::new();
    let Some(jobs) = workflow.get("jobs").and_then(Value::as_mapping) else {
        panic!("{file}: no `jobs` mapping");
    };
    for (job_name, job) in jobs {
        let job_name = job_name.as_str().unwrap_or("?");
        let steps = job
            .get("steps")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{file}: job {job_name} has no steps"));
        for (idx, step) in steps.iter().enumerate() {
            let Some(script) = step.get("run").and_then(Value::as_str) else {
                continue;
            };
            let step_name = step
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("#{}", idx + 1), |name| format!("{name:?}"));
            for command in commands(script) {
                let words = words(&command);
                // Skip `VAR=value` prefixes.
                let Some(first) = words
                    .iter()
                    .position(|word| !word.contains('=') || word.starts_with('-'))
                else {
                    continue;
                };
                let binary = &words[first];
                if !BINARIES.contains(&binary.as_str()) {
                    assert!(
                        !binary.starts_with("slipway"),
                        "{file}: job {job_name}, step {step_name}: `{binary}` is not one of the binaries {BINARIES:?}"
                    );
                    continue;
                }
                let subcommand = words
                    .get(first + 1)
                    .filter(|word| !word.starts_with('-') && !word.starts_with('$'))
                    .cloned();
                let rest = command
                    .split_once(binary.as_str())
                    .map_or("", |(_, rest)| rest);
                out.push(Invocation {
                    place: format!("{file}: job {job_name}, step {step_name}"),
                    binary: binary.clone(),
                    subcommand,
                    flags: flags(rest),
                });
            }
        }
    }
    out
}

fn load(file: &str) -> Value {
    let path = workspace_root().join("examples/github").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not valid YAML: {err}", path.display()))
}

/// The long flags a `--help` text lists.
fn help_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .flat_map(|line| {
            // `-r, --release <RELEASE>` or `--emergency`: flags come first on their line.
            line.split([' ', ','])
                .take_while(|word| word.starts_with('-') || word.is_empty())
                .filter(|word| word.starts_with("--"))
                .map(|word| word.split('=').next().unwrap_or(word).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn parsing_finds_commands_flags_and_subcommands() {
    let script = "set -e\nVAR=1 slipway-rollback --config \"$C\" \\\n  ${TO:+--to \"$TO\"} ${E:+--emergency} --reason \"a; b | c\" > out.json 2>&1\necho --not-ours && slipway-deploy run --output=json | tee x";
    assert_eq!(
        commands(script),
        [
            "set -e",
            "VAR=1 slipway-rollback --config \"$C\"    ${TO:+--to \"$TO\"} ${E:+--emergency} --reason \"a; b | c\" > out.json 2>&1",
            "echo --not-ours",
            "slipway-deploy run --output=json",
            "tee x",
        ]
    );
    assert_eq!(
        flags(
            "--config \"$C\" ${TO:+--to \"$TO\"} ${E:+--emergency} --reason \"x--y\" --output=json"
        ),
        ["--config", "--to", "--emergency", "--reason", "--output"]
    );
    assert_eq!(words("a \"b c\" '' d"), ["a", "b c", "", "d"]);
    let help = "Options:\n      --config <PATH>\n  -q, --quiet\n      --reason <REASON>  Why (see --other)\n";
    assert_eq!(
        help_flags(help).into_iter().collect::<Vec<_>>(),
        ["--config", "--quiet", "--reason"]
    );
}

/// Each invocation whose subcommand or flag the binary's `--help` does not list.
fn missing_commands_and_flags(found: &[Invocation]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut helps = std::collections::BTreeMap::new();
    for call in found {
        let key = (call.binary.clone(), call.subcommand.clone());
        let help = helps.entry(key).or_insert_with(|| {
            let mut cmd = command(&call.binary);
            cmd.args(call.subcommand.iter()).arg("--help");
            let result = output(&mut cmd);
            (result.code, result.stdout, result.stderr)
        });
        let shown = match &call.subcommand {
            Some(sub) => format!("{} {sub}", call.binary),
            None => call.binary.clone(),
        };
        if help.0 != 0 {
            problems.push(format!(
                "{}: `{shown}` does not exist (`{shown} --help` exited {}: {})",
                call.place,
                help.0,
                help.2.trim()
            ));
            continue;
        }
        let known = help_flags(&help.1);
        for flag in &call.flags {
            if !known.contains(flag) {
                problems.push(format!(
                    "{}: `{shown}` has no flag `{flag}` (it has: {})",
                    call.place,
                    known.iter().cloned().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    problems
}

#[test]
fn every_slipway_command_and_flag_in_the_release_workflow_exists() {
    // Slipway's own release signs and checks its image with Slipway (`.github/workflows`).
    let path = workspace_root().join(".github/workflows/release.yml");
    let text = std::fs::read_to_string(&path).expect("read the release workflow");
    let workflow: Value = serde_yaml_ng::from_str(&text).expect("the release workflow is YAML");
    let found = invocations("release workflow", &workflow);
    let problems = missing_commands_and_flags(&found);
    assert!(
        problems.is_empty(),
        "the release workflow uses commands the binaries do not have:\n{}",
        problems.join("\n")
    );
    let used: BTreeSet<String> = found
        .iter()
        .map(|call| {
            format!(
                "{} {}",
                call.binary,
                call.subcommand.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "slipway-audit verify-image",
            "slipway-deploy attest",
            "slipway-deploy sign"
        ]
    );
}

#[test]
fn every_slipway_command_and_flag_in_the_example_workflows_exists() {
    let mut found = Vec::new();
    for file in ["release.yml", "rollback.yml"] {
        found.extend(invocations(file, &load(file)));
    }
    let problems = missing_commands_and_flags(&found);
    assert!(
        problems.is_empty(),
        "the example workflows use commands the binaries do not have:\n{}\n\nhint: fix examples/github/*.yml, or the binary if it lost a flag users rely on",
        problems.join("\n")
    );
    // The examples exercise each binary and each step of the story; an edit that drops one
    // should be deliberate.
    let used: BTreeSet<(String, Option<String>)> = found
        .iter()
        .map(|call| (call.binary.clone(), call.subcommand.clone()))
        .collect();
    let expected: BTreeSet<(String, Option<String>)> = [
        ("slipway-deploy", Some("check-scan")),
        ("slipway-deploy", Some("plan")),
        ("slipway-deploy", Some("run")),
        ("slipway-deploy", Some("status")),
        ("slipway-deploy", Some("approve")),
        ("slipway-deploy", Some("promote")),
        ("slipway-deploy", Some("abort")),
        ("slipway-rollback", None),
        ("slipway-audit", Some("verify")),
        ("slipway-audit", Some("log")),
    ]
    .into_iter()
    .map(|(binary, sub)| (binary.to_owned(), sub.map(str::to_owned)))
    .collect();
    assert_eq!(used, expected, "the Slipway commands the examples use");
}

#[test]
fn example_config_loads_with_every_key_known() {
    let root = workspace_root();
    let config = Path::new("examples/github/slipway.toml");
    let result = output(
        command("slipway-deploy")
            .current_dir(&root)
            .args(["plan", "--config"])
            .arg(config)
            .arg("--print-config"),
    );
    assert_eq!(
        result.code,
        0,
        "`slipway-deploy plan --config {} --print-config` failed:\n{}",
        config.display(),
        result.stderr
    );
    // The printed configuration is the file's, not the defaults: a few keys the example changes.
    for line in [
        "name = \"ml-serving/iris-classifier\"",
        "service = \"iris-classifier\"",
        "models = \"mlflow\"",
        "scanner = \"trivy-report\"",
        "report = \"trivy.json\"",
        "history_limit = 20",
        "pause = \"2m\"",
        "store = \"cluster\"",
    ] {
        assert!(
            result.stdout.lines().any(|printed| printed == line),
            "`{line}` missing from --print-config:\n{}",
            result.stdout
        );
    }
    // An unknown key is refused (so the check above means something).
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = dir.path().join("slipway.toml");
    let text = std::fs::read_to_string(root.join(config)).expect("read example config");
    std::fs::write(&typo, text.replace("history_limit", "histroy_limit")).expect("write");
    let refused = output(
        command("slipway-deploy")
            .args(["plan", "--config"])
            .arg(&typo)
            .arg("--print-config"),
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("unknown key `histroy_limit`"),
        "{}",
        refused.stderr
    );
}
