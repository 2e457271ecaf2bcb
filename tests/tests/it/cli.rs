//! The three binaries as users meet them: one set of global flags on every subcommand, a
//! positional RELEASE wherever a command acts on one release, shell completions a shell accepts,
//! and `slipway-rollback`'s and `slipway-audit`'s JSON validated against the schemas
//! `slipway-deploy schema` publishes.

use std::collections::BTreeSet;

use crate::support::{command, output};

const BINARIES: [&str; 3] = ["slipway-deploy", "slipway-rollback", "slipway-audit"];

/// The global flags (`slipway_cli::GlobalArgs`), as `--help` lists them.
const GLOBAL_FLAGS: [&str; 14] = [
    "--config <PATH>",
    "--no-config",
    "--print-config",
    "--kubeconfig <PATH>",
    "--context <NAME>",
    "-n, --namespace <NAMESPACE>",
    "--release <NAMESPACE/NAME>",
    "-o, --output <OUTPUT>",
    "-v, --verbose",
    "-q, --quiet",
    "--log-format <FORMAT>",
    "--no-color",
    "SLIPWAY_CONFIG",
    "NO_COLOR",
];

/// Commands that only print something about the binary itself take no global flags.
const WITHOUT_GLOBAL_FLAGS: [&str; 1] = ["completions"];

/// Commands that act on one release: they take it as the positional RELEASE too.
const RELEASE_COMMANDS: [&str; 15] = [
    "slipway-deploy plan",
    "slipway-deploy run",
    "slipway-deploy approve",
    "slipway-deploy promote",
    "slipway-deploy abort",
    "slipway-deploy status",
    "slipway-deploy history",
    "slipway-deploy analyze",
    "slipway-rollback to",
    "slipway-rollback watch",
    "slipway-audit log",
    "slipway-audit verify",
    "slipway-audit dora",
    "slipway-audit report",
    "slipway-audit drift",
];

fn help(binary: &str, subcommand: Option<&str>) -> String {
    let result = output(command(binary).args(subcommand).arg("--help"));
    assert_eq!(
        result.code, 0,
        "{binary} {subcommand:?} --help: {}",
        result.stderr
    );
    result.stdout
}

/// The subcommands a `--help` lists (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_subcommand_of_every_binary_takes_the_global_flags() {
    let mut missing = Vec::new();
    let mut walked = BTreeSet::new();
    for binary in BINARIES {
        let top = help(binary, None);
        let names = subcommands(&top);
        assert!(!names.is_empty(), "{binary}: no subcommands in\n{top}");
        let mut queue: Vec<Vec<String>> = names.into_iter().map(|name| vec![name]).collect();
        while let Some(path) = queue.pop() {
            let name = path.join(" ");
            let result = output(command(binary).args(&path).arg("--help"));
            assert_eq!(result.code, 0, "{binary} {name} --help: {}", result.stderr);
            let text = result.stdout;
            walked.insert(format!("{binary} {name}"));
            // A group of commands (`trusted-root`): its own commands take the flags.
            let nested = subcommands(&text);
            if !nested.is_empty() {
                for sub in nested {
                    queue.push([path.clone(), vec![sub]].concat());
                }
                continue;
            }
            if WITHOUT_GLOBAL_FLAGS.contains(&name.as_str()) {
                continue;
            }
            for flag in GLOBAL_FLAGS {
                if !text.contains(flag) {
                    missing.push(format!("{binary} {name}: {flag}"));
                }
            }
            if RELEASE_COMMANDS.contains(&format!("{binary} {name}").as_str())
                && !text.contains("[RELEASE]")
            {
                missing.push(format!("{binary} {name}: positional [RELEASE]"));
            }
        }
    }
    for command in RELEASE_COMMANDS
        .into_iter()
        .chain(["slipway-audit trusted-root refresh"])
    {
        assert!(
            walked.contains(command),
            "{command} was not walked: {walked:?}"
        );
    }
    assert!(missing.is_empty(), "missing:\n{}", missing.join("\n"));
}

#[test]
fn completions_are_scripts_the_shells_accept() {
    for binary in BINARIES {
        for shell in ["bash", "zsh", "fish", "powershell"] {
            let script = output(command(binary).args(["completions", shell]));
            assert_eq!(
                script.code, 0,
                "{binary} completions {shell}: {}",
                script.stderr
            );
            assert!(script.stdout.contains(binary), "{binary} {shell}");
        }
        let script = output(command(binary).args(["completions", "bash"]));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("completion.bash");
        std::fs::write(&path, &script.stdout).expect("write");
        let checked = output(std::process::Command::new("bash").arg("-n").arg(&path));
        assert_eq!(checked.code, 0, "{binary}: bash -n: {}", checked.stderr);
        // Subcommands and flags are completed.
        assert!(script.stdout.contains("--kubeconfig"), "{binary}");
    }
    let broken = output(command("slipway-deploy").args(["completions", "tcsh"]));
    assert_eq!(broken.code, 2, "{}", broken.stderr);
}

fn validator(name: &str) -> jsonschema::Validator {
    let printed = output(command("slipway-deploy").args(["schema", name]));
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let schema: serde_json::Value = serde_json::from_str(&printed.stdout).expect("schema");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn audit_validator(name: &str) -> jsonschema::Validator {
    let printed = output(command("slipway-audit").args(["schema", name]));
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let schema: serde_json::Value = serde_json::from_str(&printed.stdout).expect("schema");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

#[track_caller]
fn valid(validator: &jsonschema::Validator, text: &str, what: &str) -> serde_json::Value {
    let document: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|err| panic!("{what}: {err}\n{text}"));
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{text}");
    document
}

#[test]
fn rollback_and_audit_json_validate_against_the_published_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("world").display().to_string();
    let run = output(command("slipway-deploy").current_dir(dir.path()).args([
        "run",
        "--no-config",
        "--demo",
        "happy",
        "--state",
        &state,
    ]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rolled = output(command("slipway-rollback").current_dir(dir.path()).args([
        "--no-config",
        "--demo",
        "--state",
        &state,
        "--reason",
        "rehearsal",
        "--emergency",
        "--output",
        "json",
    ]));
    assert_eq!(rolled.code, 0, "{}\n{}", rolled.stdout, rolled.stderr);
    let report = valid(&validator("report"), &rolled.stdout, "slipway-rollback");
    assert_eq!(report["outcome"], "rolled-back", "{}", rolled.stdout);
    assert_eq!(report["schema_version"], 2);

    let log = output(command("slipway-audit").current_dir(dir.path()).args([
        "log",
        "--no-config",
        "--trail",
        &format!("{state}/audit.jsonl"),
        "--output",
        "json",
    ]));
    assert_eq!(log.code, 0, "{}", log.stderr);
    let document = valid(&audit_validator("log"), &log.stdout, "slipway-audit log");
    assert_eq!(document["schema_version"], 2);
    let entry = validator("audit-entry");
    let entries = document["entries"].as_array().expect("entries");
    assert!(entries.len() > 5, "{}", log.stdout);
    for item in entries {
        valid(&entry, &item.to_string(), "slipway-audit log entry");
    }
    // Every other JSON document of slipway-audit validates against the schema it publishes.
    let trail = format!("{state}/audit.jsonl");
    for (name, args) in [
        ("verify", &["verify", "--no-config", "--trail", &trail][..]),
        ("dora", &["dora", "--no-config", "--trail", &trail]),
        ("report", &["report", "--no-config", "--trail", &trail]),
        (
            "drift",
            &["drift", "--no-config", "--demo", "--state", &state],
        ),
    ] {
        let printed = output(
            command("slipway-audit")
                .current_dir(dir.path())
                .args(args)
                .args(["-o", "json"]),
        );
        let document = valid(&audit_validator(name), &printed.stdout, name);
        assert_eq!(document["schema_version"], 2, "{name}");
    }
}
