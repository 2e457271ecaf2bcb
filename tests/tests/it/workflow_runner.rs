//! A small GitHub Actions runner for the example workflows: enough of Actions to run
//! `examples/github/*.yml` as written, each job a separate set of processes.
//!
//! What it does as Actions does: jobs in `needs` order, `if:` with `success()`/`always()`/
//! `failure()`, the `github`, `env`, `secrets`, `vars`, `inputs`, `needs`, `steps` and `runner`
//! contexts, `${{ … }}` in `env:`, `with:` and `outputs:`, each `run:` script run by
//! `bash --noprofile --norc -eo pipefail` in the job's workspace, `$GITHUB_ENV`,
//! `$GITHUB_OUTPUT`, `$GITHUB_PATH`, `$GITHUB_STEP_SUMMARY`, job outputs.
//!
//! `uses:` steps are replaced by their effect: checkout is a copy of the repository files the
//! workflows read, artifacts are copied files, the build and Trivy actions are closures the test
//! gives, logins are no-ops (the test registry is open), and Slipway's own action (`./` or
//! `slipway-dev/slipway@…`) runs for real from `action.yml` (its composite steps, its inputs'
//! defaults). Anything else is a test failure naming the action.
//!
//! Rejected: running `act` or a real runner (neither installs here, and both want Docker).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value, json};
use serde_yaml_ng::Value as Yaml;

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Num(f64),
    Ident(String),
    Op(&'static str),
}

fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut idx = 0;
    while idx < chars.len() {
        let ch = chars[idx];
        if ch.is_whitespace() {
            idx += 1;
        } else if ch == '\'' {
            let mut value = String::new();
            idx += 1;
            while idx < chars.len() {
                if chars[idx] == '\'' {
                    if chars.get(idx + 1) == Some(&'\'') {
                        value.push('\'');
                        idx += 2;
                        continue;
                    }
                    break;
                }
                value.push(chars[idx]);
                idx += 1;
            }
            idx += 1;
            out.push(Token::Str(value));
        } else if ch.is_ascii_digit() {
            let start = idx;
            while idx < chars.len() && (chars[idx].is_ascii_digit() || chars[idx] == '.') {
                idx += 1;
            }
            let text: String = chars[start..idx].iter().collect();
            out.push(Token::Num(text.parse().unwrap_or(0.0)));
        } else if ch.is_alphabetic() || ch == '_' {
            let start = idx;
            while idx < chars.len()
                && (chars[idx].is_alphanumeric() || matches!(chars[idx], '_' | '-' | '.' | '*'))
            {
                idx += 1;
            }
            out.push(Token::Ident(chars[start..idx].iter().collect()));
        } else {
            let two: String = chars[idx..(idx + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                "||" => Some("||"),
                "&&" => Some("&&"),
                "==" => Some("=="),
                "!=" => Some("!="),
                _ => None,
            };
            if let Some(op) = op {
                out.push(Token::Op(op));
                idx += 2;
                continue;
            }
            let op = match ch {
                '!' => "!",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                other => panic!("expression `{text}`: unexpected `{other}`"),
            };
            out.push(Token::Op(op));
            idx += 1;
        }
    }
    out
}

/// What an expression sees: the contexts and the job's status so far.
pub(crate) struct Scope<'a> {
    pub(crate) contexts: &'a Value,
    /// Whether every earlier step (or needed job) succeeded.
    pub(crate) ok: bool,
}

struct Parser<'a, 'b> {
    tokens: Vec<Token>,
    at: usize,
    scope: &'a Scope<'b>,
    text: &'a str,
}

pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A value as `${{ }}` splices it into a string.
pub(crate) fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        other => other.to_string(),
    }
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(&Token::Op(leak(op))) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Value {
        let mut left = self.and();
        while self.eat("||") {
            let right = self.and();
            if !truthy(&left) {
                left = right;
            }
        }
        left
    }

    fn and(&mut self) -> Value {
        let mut left = self.equality();
        while self.eat("&&") {
            let right = self.equality();
            if truthy(&left) {
                left = right;
            }
        }
        left
    }

    fn equality(&mut self) -> Value {
        let left = self.unary();
        for op in ["==", "!="] {
            if self.eat(op) {
                let right = self.unary();
                // Actions compares strings case-insensitively.
                let same = match (&left, &right) {
                    (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                    (a, b) => a == b,
                };
                return Value::Bool(if op == "==" { same } else { !same });
            }
        }
        left
    }

    fn unary(&mut self) -> Value {
        if self.eat("!") {
            return Value::Bool(!truthy(&self.unary()));
        }
        self.primary()
    }

    fn primary(&mut self) -> Value {
        let token = self
            .peek()
            .cloned()
            .unwrap_or_else(|| panic!("expression `{}` ends early", self.text));
        self.at += 1;
        match token {
            Token::Str(text) => Value::String(text),
            Token::Num(number) => json!(number),
            Token::Op("(") => {
                let value = self.or();
                assert!(self.eat(")"), "expression `{}`: missing `)`", self.text);
                value
            }
            Token::Ident(name) if self.peek() == Some(&Token::Op("(")) => {
                self.at += 1;
                let mut args = Vec::new();
                while !self.eat(")") {
                    args.push(self.or());
                    self.eat(",");
                }
                self.call(&name, &args)
            }
            Token::Ident(name) => match name.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                path => path
                    .split('.')
                    .try_fold(self.scope.contexts, |value, key| value.get(key))
                    .cloned()
                    .unwrap_or(Value::Null),
            },
            Token::Op(op) => panic!("expression `{}`: unexpected `{op}`", self.text),
        }
    }

    fn call(&self, name: &str, args: &[Value]) -> Value {
        match name {
            "always" => Value::Bool(true),
            "success" => Value::Bool(self.scope.ok),
            "failure" => Value::Bool(!self.scope.ok),
            "cancelled" => Value::Bool(false),
            "format" => {
                let mut text = args.first().map(to_text).unwrap_or_default();
                for (idx, arg) in args.iter().enumerate().skip(1) {
                    text = text.replace(&format!("{{{}}}", idx - 1), &to_text(arg));
                }
                Value::String(text)
            }
            other => panic!(
                "expression `{}`: function `{other}` is not supported",
                self.text
            ),
        }
    }
}

fn leak(op: &str) -> &'static str {
    match op {
        "||" => "||",
        "&&" => "&&",
        "==" => "==",
        "!=" => "!=",
        "!" => "!",
        "(" => "(",
        ")" => ")",
        "," => ",",
        other => panic!("operator {other}"),
    }
}

/// Evaluates one expression (the text inside `${{ }}`, or an `if:`).
pub(crate) fn evaluate(text: &str, scope: &Scope<'_>) -> Value {
    let text = text.trim();
    let text = text
        .strip_prefix("${{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or(text);
    let mut parser = Parser {
        tokens: tokenize(text),
        at: 0,
        scope,
        text,
    };
    let value = parser.or();
    assert!(
        parser.at == parser.tokens.len(),
        "expression `{text}`: trailing tokens"
    );
    value
}

/// Replaces every `${{ … }}` in `text`.
pub(crate) fn interpolate(text: &str, scope: &Scope<'_>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed `${{{{` in `{text}`"));
        out.push_str(&to_text(&evaluate(&rest[start + 3..start + end], scope)));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

/// The effect of a `uses:` step the test stands in for: given the step's `with:` (evaluated)
/// and the job's workspace, returns the step's outputs.
pub(crate) type Effect<'a> =
    Box<dyn Fn(&BTreeMap<String, String>, &Path) -> BTreeMap<String, String> + 'a>;

/// One workflow run.
pub(crate) struct Run<'a> {
    /// `examples/github/release.yml`, …
    pub(crate) workflow: Yaml,
    /// Repository files copied into each job's workspace (the checkout), relative to `root`.
    pub(crate) checkout: Vec<&'static str>,
    pub(crate) root: PathBuf,
    /// Where jobs, artifacts and the runner's temp dirs go.
    pub(crate) dir: PathBuf,
    pub(crate) github: Value,
    pub(crate) inputs: Value,
    pub(crate) secrets: Value,
    pub(crate) vars: Value,
    /// The runner machine's environment (PATH, HOME, …, and the infrastructure the test stands
    /// in for); a workflow's `env:` overrides it, as on a real runner.
    pub(crate) machine_env: BTreeMap<String, String>,
    /// `uses:` prefix (`docker/build-push-action`) → its effect.
    pub(crate) effects: BTreeMap<&'static str, Effect<'a>>,
}

/// What one job did.
#[derive(Debug, Clone)]
pub(crate) struct JobResult {
    /// `success`, `failure` or `skipped`.
    pub(crate) result: String,
    pub(crate) outputs: BTreeMap<String, String>,
    /// Each step: name, exit code, stdout+stderr tail.
    pub(crate) log: Vec<(String, i32, String)>,
}

impl JobResult {
    /// The combined output of every step, for assertion messages.
    pub(crate) fn transcript(&self) -> String {
        self.log
            .iter()
            .map(|(name, code, text)| format!("--- step {name} (exit {code})\n{text}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn map_of(value: Option<&Yaml>) -> Vec<(String, Yaml)> {
    value
        .and_then(Yaml::as_mapping)
        .map(|mapping| {
            mapping
                .iter()
                .map(|(key, value)| (key.as_str().unwrap_or_default().to_owned(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(text) => text.clone(),
        Yaml::Bool(flag) => flag.to_string(),
        Yaml::Number(number) => number.to_string(),
        Yaml::Null => String::new(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// `KEY=value` and `KEY<<EOF … EOF` lines of `$GITHUB_ENV` / `$GITHUB_OUTPUT`.
pub(crate) fn parse_file_commands(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for next in lines.by_ref() {
                if next == delimiter {
                    break;
                }
                value.push(next);
            }
            out.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_owned(), value.to_owned());
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::copy(from, to)
            .unwrap_or_else(|err| panic!("copy {} → {}: {err}", from.display(), to.display()));
    }
}

/// The jobs in `needs` order (each after everything it needs; file order otherwise).
fn job_order(jobs: &[(String, Yaml)]) -> Vec<String> {
    let needs = |job: &Yaml| -> Vec<String> {
        match job.get("needs") {
            Some(Yaml::String(one)) => vec![one.clone()],
            Some(Yaml::Sequence(many)) => many.iter().map(scalar).collect(),
            _ => Vec::new(),
        }
    };
    let mut done: Vec<String> = Vec::new();
    while done.len() < jobs.len() {
        let before = done.len();
        for (name, job) in jobs {
            if !done.contains(name) && needs(job).iter().all(|need| done.contains(need)) {
                done.push(name.clone());
            }
        }
        assert!(done.len() > before, "a `needs` cycle or an unknown job");
    }
    done
}

impl Run<'_> {
    fn scope_value(&self, env: &BTreeMap<String, String>, extra: &[(&str, Value)]) -> Value {
        let mut contexts = Map::new();
        contexts.insert("github".into(), self.github.clone());
        contexts.insert("inputs".into(), self.inputs.clone());
        contexts.insert("secrets".into(), self.secrets.clone());
        contexts.insert("vars".into(), self.vars.clone());
        contexts.insert("env".into(), json!(env));
        contexts.insert(
            "runner".into(),
            json!({"os": "Linux", "arch": runner_arch(), "temp": "", "tool_cache": ""}),
        );
        for (name, value) in extra {
            contexts.insert((*name).to_owned(), value.clone());
        }
        Value::Object(contexts)
    }

    fn evaluate_env(
        &self,
        block: Option<&Yaml>,
        env: &mut BTreeMap<String, String>,
        extra: &[(&str, Value)],
        ok: bool,
    ) {
        for (name, value) in map_of(block) {
            let contexts = self.scope_value(env, extra);
            let text = interpolate(
                &scalar(&value),
                &Scope {
                    contexts: &contexts,
                    ok,
                },
            );
            env.insert(name, text);
        }
    }

    /// Runs every job in `needs` order; returns each job's result.
    pub(crate) fn run(&self) -> BTreeMap<String, JobResult> {
        let jobs = map_of(self.workflow.get("jobs"));
        let mut results: BTreeMap<String, JobResult> = BTreeMap::new();
        let mut workflow_env = self.machine_env.clone();
        self.evaluate_env(self.workflow.get("env"), &mut workflow_env, &[], true);
        for name in job_order(&jobs) {
            let job = &jobs.iter().find(|(job, _)| *job == name).expect("job").1;
            let needed: Vec<String> = match job.get("needs") {
                Some(Yaml::String(one)) => vec![one.clone()],
                Some(Yaml::Sequence(many)) => many.iter().map(scalar).collect(),
                _ => Vec::new(),
            };
            let needs_value: Value = needed
                .iter()
                .map(|need| {
                    let result = &results[need];
                    (
                        need.clone(),
                        json!({"result": result.result, "outputs": result.outputs}),
                    )
                })
                .collect::<Map<_, _>>()
                .into();
            let needs_ok = needed.iter().all(|need| results[need].result == "success");
            let contexts = self.scope_value(&workflow_env, &[("needs", needs_value.clone())]);
            let condition = job
                .get("if")
                .map(scalar)
                .unwrap_or_else(|| "success()".to_owned());
            let runs = truthy(&evaluate(
                &condition,
                &Scope {
                    contexts: &contexts,
                    ok: needs_ok,
                },
            ));
            // A job whose condition does not call a status function runs only after success.
            let status_function = ["always()", "success()", "failure()", "cancelled()"]
                .iter()
                .any(|function| condition.contains(function));
            let result = if runs && (needs_ok || status_function) {
                self.run_job(&name, job, &workflow_env, &needs_value)
            } else {
                JobResult {
                    result: "skipped".to_owned(),
                    outputs: BTreeMap::new(),
                    log: Vec::new(),
                }
            };
            results.insert(name, result);
        }
        results
    }

    fn run_job(
        &self,
        name: &str,
        job: &Yaml,
        workflow_env: &BTreeMap<String, String>,
        needs: &Value,
    ) -> JobResult {
        let job_dir = self.dir.join("jobs").join(name);
        let workspace = job_dir.join("workspace");
        let temp = job_dir.join("temp");
        std::fs::create_dir_all(&workspace).expect("workspace");
        std::fs::create_dir_all(&temp).expect("temp");
        let path_file = job_dir.join("path");
        let env_file = job_dir.join("env");
        let summary = job_dir.join("summary.md");
        for file in [&path_file, &env_file, &summary] {
            std::fs::write(file, "").expect("file command");
        }
        let mut env = workflow_env.clone();
        env.insert("GITHUB_WORKSPACE".into(), workspace.display().to_string());
        env.insert("RUNNER_TEMP".into(), temp.display().to_string());
        env.insert("GITHUB_ENV".into(), env_file.display().to_string());
        env.insert("GITHUB_PATH".into(), path_file.display().to_string());
        env.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());
        env.insert("GITHUB_JOB".into(), name.to_owned());
        self.evaluate_env(job.get("env"), &mut env, &[("needs", needs.clone())], true);

        let mut steps_value = Map::new();
        let mut ok = true;
        let mut log = Vec::new();
        let steps = job
            .get("steps")
            .and_then(Yaml::as_sequence)
            .cloned()
            .unwrap_or_default();
        for (idx, step) in steps.iter().enumerate() {
            let step_name = step
                .get("name")
                .map(scalar)
                .or_else(|| step.get("uses").map(scalar))
                .unwrap_or_else(|| format!("#{}", idx + 1));
            let extra = [
                ("needs", needs.clone()),
                ("steps", Value::Object(steps_value.clone())),
            ];
            // The job's environment as the step sees it: $GITHUB_ENV written so far included.
            let mut step_env = env.clone();
            step_env.extend(parse_file_commands(
                &std::fs::read_to_string(&env_file).unwrap_or_default(),
            ));
            let contexts = self.scope_value(&step_env, &extra);
            let condition = step
                .get("if")
                .map(scalar)
                .unwrap_or_else(|| "success()".to_owned());
            let status_function = ["always()", "success()", "failure()", "cancelled()"]
                .iter()
                .any(|function| condition.contains(function));
            let runs = truthy(&evaluate(
                &condition,
                &Scope {
                    contexts: &contexts,
                    ok,
                },
            )) && (ok || status_function);
            if !runs {
                continue;
            }
            self.evaluate_env(step.get("env"), &mut step_env, &extra, ok);
            let with: BTreeMap<String, String> = map_of(step.get("with"))
                .into_iter()
                .map(|(key, value)| {
                    (
                        key,
                        interpolate(
                            &scalar(&value),
                            &Scope {
                                contexts: &contexts,
                                ok,
                            },
                        ),
                    )
                })
                .collect();
            let (code, text, outputs) = if let Some(script) = step.get("run").map(scalar) {
                let output_file = job_dir.join(format!("output-{idx}"));
                std::fs::write(&output_file, "").expect("output file");
                step_env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
                let (code, text) = bash(&script, &workspace, &step_env, &path_file);
                let outputs =
                    parse_file_commands(&std::fs::read_to_string(&output_file).unwrap_or_default());
                (code, text, outputs)
            } else {
                let uses = step.get("uses").map(scalar).expect("a step runs or uses");
                self.uses(&uses, &with, &workspace, &job_dir, &step_env, &path_file)
            };
            log.push((step_name, code, text));
            if code != 0 {
                ok = false;
            }
            if let Some(id) = step.get("id").map(scalar) {
                steps_value.insert(
                    id,
                    json!({"outputs": outputs, "outcome": if code == 0 { "success" } else { "failure" }}),
                );
            }
        }
        let contexts = self.scope_value(
            &env,
            &[
                ("needs", needs.clone()),
                ("steps", Value::Object(steps_value)),
            ],
        );
        let outputs = map_of(job.get("outputs"))
            .into_iter()
            .map(|(key, value)| {
                (
                    key,
                    interpolate(
                        &scalar(&value),
                        &Scope {
                            contexts: &contexts,
                            ok,
                        },
                    ),
                )
            })
            .collect();
        JobResult {
            result: if ok { "success" } else { "failure" }.to_owned(),
            outputs,
            log,
        }
    }

    /// A `uses:` step: its effect, or Slipway's own action run for real.
    fn uses(
        &self,
        uses: &str,
        with: &BTreeMap<String, String>,
        workspace: &Path,
        job_dir: &Path,
        env: &BTreeMap<String, String>,
        path_file: &Path,
    ) -> (i32, String, BTreeMap<String, String>) {
        let action = uses.split('@').next().unwrap_or(uses);
        let artifacts = self.dir.join("artifacts");
        match action {
            "actions/checkout" => {
                for path in &self.checkout {
                    copy_tree(&self.root.join(path), &workspace.join(path));
                }
                (0, "checked out".to_owned(), BTreeMap::new())
            }
            "actions/upload-artifact" => {
                let name = with.get("name").expect("artifact name");
                let target = artifacts.join(name);
                let mut copied = Vec::new();
                for path in with.get("path").map(String::as_str).unwrap_or("").lines() {
                    let path = path.trim();
                    if path.is_empty() {
                        continue;
                    }
                    let from = workspace.join(path);
                    if from.exists() {
                        copy_tree(&from, &target.join(path));
                        copied.push(path.to_owned());
                    }
                }
                // As `if-no-files-found: warn` (the default): a warning, not a failure.
                (0, format!("uploaded {copied:?}"), BTreeMap::new())
            }
            "actions/download-artifact" => {
                let name = with.get("name").expect("artifact name");
                let from = artifacts.join(name);
                if !from.is_dir() {
                    return (1, format!("no artifact {name}"), BTreeMap::new());
                }
                copy_tree(&from, workspace);
                (0, format!("downloaded {name}"), BTreeMap::new())
            }
            // The test registry is open on loopback: nothing to log in to.
            "docker/login-action" => (0, "login skipped".to_owned(), BTreeMap::new()),
            "./" | "slipway-dev/slipway" => {
                self.composite_action(with, workspace, job_dir, env, path_file)
            }
            other => {
                let effect = self
                    .effects
                    .iter()
                    .find(|(prefix, _)| other.starts_with(*prefix))
                    .map(|(_, effect)| effect)
                    .unwrap_or_else(|| panic!("no effect given for action `{uses}`"));
                let outputs = effect(with, workspace);
                (0, format!("{uses} stood in for"), outputs)
            }
        }
    }

    fn composite_action(
        &self,
        with: &BTreeMap<String, String>,
        workspace: &Path,
        job_dir: &Path,
        env: &BTreeMap<String, String>,
        path_file: &Path,
    ) -> (i32, String, BTreeMap<String, String>) {
        run_action(&self.root, with, workspace, job_dir, env, path_file)
    }
}

/// Slipway's `action.yml` (in `root`), each composite step run for real with `with:` as its
/// inputs; `$GITHUB_PATH` is `path_file`. Returns the exit code, the output and the outputs.
pub(crate) fn run_action(
    root: &Path,
    with: &BTreeMap<String, String>,
    workspace: &Path,
    job_dir: &Path,
    env: &BTreeMap<String, String>,
    path_file: &Path,
) -> (i32, String, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(root.join("action.yml")).expect("action.yml");
    let action: Yaml = serde_yaml_ng::from_str(&text).expect("action.yml is YAML");
    let mut inputs = Map::new();
    for (name, spec) in map_of(action.get("inputs")) {
        let value = with
            .get(&name)
            .cloned()
            .or_else(|| spec.get("default").map(scalar));
        if value.is_none() && spec.get("required").and_then(Yaml::as_bool) == Some(true) {
            return (1, format!("input `{name}` is required"), BTreeMap::new());
        }
        inputs.insert(name, Value::String(value.unwrap_or_default()));
    }
    for name in with.keys() {
        assert!(
            inputs.contains_key(name),
            "action.yml has no input `{name}`"
        );
    }
    let mut steps_value = Map::new();
    let mut transcript = String::new();
    let steps = action["runs"]["steps"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    for (idx, step) in steps.iter().enumerate() {
        let contexts = json!({
            "env": env,
            "runner": {"os": "Linux", "arch": runner_arch()},
            "inputs": inputs,
            "steps": steps_value,
        });
        let scope = Scope {
            contexts: &contexts,
            ok: true,
        };
        let mut step_env = env.clone();
        for (name, value) in map_of(step.get("env")) {
            step_env.insert(name, interpolate(&scalar(&value), &scope));
        }
        let output_file = job_dir.join(format!("action-output-{idx}"));
        std::fs::write(&output_file, "").expect("output file");
        step_env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
        step_env.insert("GITHUB_PATH".into(), path_file.display().to_string());
        let script = step.get("run").map(scalar).expect("composite steps run");
        let (code, text) = bash(&script, workspace, &step_env, path_file);
        transcript.push_str(&text);
        if code != 0 {
            return (code, transcript, BTreeMap::new());
        }
        if let Some(id) = step.get("id").map(scalar) {
            let outputs =
                parse_file_commands(&std::fs::read_to_string(&output_file).unwrap_or_default());
            steps_value.insert(id, json!({ "outputs": outputs }));
        }
    }
    let contexts = json!({"env": env, "steps": steps_value});
    let scope = Scope {
        contexts: &contexts,
        ok: true,
    };
    let outputs = map_of(action.get("outputs"))
        .into_iter()
        .map(|(name, spec)| {
            let value = spec.get("value").map(scalar).unwrap_or_default();
            (name, interpolate(&value, &scope))
        })
        .collect();
    (0, transcript, outputs)
}

fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "ARM64",
        _ => "X64",
    }
}

/// Runs `script` as an Actions `run:` step: bash, `-eo pipefail`, in `dir`, with exactly `env`
/// plus the `$GITHUB_PATH` entries in front of `PATH`.
fn bash(
    script: &str,
    dir: &Path,
    env: &BTreeMap<String, String>,
    path_file: &Path,
) -> (i32, String) {
    let mut path: Vec<String> = std::fs::read_to_string(path_file)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect();
    path.reverse();
    path.extend(env.get("PATH").cloned());
    let output = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .env("PATH", path.join(":"))
        .output()
        .expect("run bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, contexts: &Value, ok: bool) -> Value {
        evaluate(text, &Scope { contexts, ok })
    }

    #[test]
    fn expressions_evaluate_as_actions_does() {
        let contexts = json!({
            "needs": {"canary": {"outputs": {"verdict": "paused"}}, "approve": {"result": "failure"}},
            "inputs": {"model": "", "emergency": true},
            "github": {"repository_owner": "acme"},
            "vars": {},
        });
        for (text, ok, expected) in [
            (
                "needs.canary.outputs.verdict == 'paused'",
                true,
                json!(true),
            ),
            (
                "needs.canary.outputs.verdict == 'PAUSED'",
                true,
                json!(true),
            ),
            (
                "always() && needs.canary.outputs.verdict == 'paused' && needs.approve.result != 'success'",
                false,
                json!(true),
            ),
            ("success()", false, json!(false)),
            (
                "inputs.model || 'iris@candidate'",
                true,
                json!("iris@candidate"),
            ),
            ("inputs.emergency && 'yes' || ''", true, json!("yes")),
            ("!inputs.emergency && 'yes' || ''", true, json!("")),
            (
                "vars.IMAGE || format('ghcr.io/{0}/iris-server', github.repository_owner)",
                true,
                json!("ghcr.io/acme/iris-server"),
            ),
        ] {
            assert_eq!(eval(text, &contexts, ok), expected, "{text}");
        }
        assert_eq!(
            interpolate(
                "a ${{ github.repository_owner }} b ${{ inputs.model }}c",
                &Scope {
                    contexts: &contexts,
                    ok: true
                }
            ),
            "a acme b c"
        );
    }

    #[test]
    fn file_commands_read_both_forms() {
        let parsed = parse_file_commands("a=1\nreason<<EOF_1\nx\ny\nEOF_1\nb=2=3\n");
        assert_eq!(parsed["a"], "1");
        assert_eq!(parsed["reason"], "x\ny");
        assert_eq!(parsed["b"], "2=3");
    }
}
