//! Model references: which version of a registered model to release.
//!
//! Accepted forms (the first three are MLflow's own `models:/` URI forms, with or without the prefix):
//! - `name@alias`: the version an alias points at (MLflow 2.9+, the current mechanism);
//! - `name/7`: a version number;
//! - `name/Production`: the latest version in a legacy stage;
//! - `name` alone, with the stage given separately (config `model.stage`, as the seed pipelines'
//!   `MODEL_STAGE` variable does): see [`ModelRef::with_stage`].
//!
//! Registered model names may hold almost anything in MLflow, but `/` and `@` would make these
//! forms ambiguous, so they are refused here.

use std::fmt;

/// A legacy MLflow stage (deprecated by MLflow in 2.9, still used by many teams).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Stage {
    /// `None`.
    None,
    /// `Staging`.
    Staging,
    /// `Production`.
    Production,
    /// `Archived`.
    Archived,
}

impl Stage {
    /// Parses a stage name, case-insensitively (MLflow itself accepts `production`).
    pub fn parse(text: &str) -> Option<Stage> {
        match text.to_ascii_lowercase().as_str() {
            "none" => Some(Stage::None),
            "staging" => Some(Stage::Staging),
            "production" => Some(Stage::Production),
            "archived" => Some(Stage::Archived),
            _ => None,
        }
    }

    /// MLflow's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }
}

/// How a [`ModelRef`] picks its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelSelector {
    /// The version an alias points at.
    Alias(String),
    /// An explicit version number.
    Version(u64),
    /// The latest version in a legacy stage.
    Stage(Stage),
}

/// A reference to a registered model and a way to pick one of its versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    /// Registered model name.
    pub name: String,
    /// How to pick the version.
    pub selector: ModelSelector,
}

/// A resolved model version: name and number.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ModelVersion {
    /// Registered model name.
    pub name: String,
    /// Version number (MLflow sends it as a string; it is always a positive integer).
    pub version: u64,
}

impl fmt::Display for ModelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.version)
    }
}

/// Why a model reference did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelRefError {
    /// Name missing or holding forbidden characters.
    #[error(
        "invalid model reference `{input}`: model name `{name}` is not valid\n\nhint: a name is non-empty and has no `/`, `@`, whitespace or control characters"
    )]
    BadName {
        /// The text that was parsed.
        input: String,
        /// The name found.
        name: String,
    },
    /// Alias breaks MLflow's alias rules.
    #[error(
        "invalid model reference `{input}`: alias `{alias}` is not valid\n\nhint: aliases are letters, digits, `_` and `-`, and cannot be `latest` or look like a version (`v3`)"
    )]
    BadAlias {
        /// The text that was parsed.
        input: String,
        /// The alias found.
        alias: String,
    },
    /// After `/` came neither a version number nor a stage.
    #[error(
        "invalid model reference `{input}`: `{found}` is neither a version number nor a stage\n\nhint: write `name/3`, `name/Production` or `name@alias`"
    )]
    BadVersion {
        /// The text that was parsed.
        input: String,
        /// The text after `/`.
        found: String,
    },
    /// A bare name with no stage to go with it.
    #[error(
        "invalid model reference `{input}`: it names no version, alias or stage\n\nhint: write `{input}@production`, `{input}/3`, or set `model.stage`"
    )]
    NoSelector {
        /// The text that was parsed.
        input: String,
    },
}

impl ModelRef {
    /// Parses `name@alias`, `name/version` or `name/Stage`, with or without `models:/`.
    pub fn parse(input: &str) -> Result<ModelRef, ModelRefError> {
        ModelRef::with_stage(input, None)
    }

    /// Parses like [`ModelRef::parse`], and accepts a bare `name` when `stage` is given.
    pub fn with_stage(input: &str, stage: Option<Stage>) -> Result<ModelRef, ModelRefError> {
        let body = input.strip_prefix("models:/").unwrap_or(input);
        let bad_name = |name: &str| ModelRefError::BadName {
            input: input.to_owned(),
            name: name.to_owned(),
        };
        let (name, selector) = if let Some((name, alias)) = body.split_once('@') {
            if !valid_alias(alias) {
                return Err(ModelRefError::BadAlias {
                    input: input.to_owned(),
                    alias: alias.to_owned(),
                });
            }
            (name, ModelSelector::Alias(alias.to_owned()))
        } else if let Some((name, rest)) = body.split_once('/') {
            let selector = match (rest.parse::<u64>(), Stage::parse(rest)) {
                (Ok(version), _) if version > 0 && !rest.starts_with('+') => {
                    ModelSelector::Version(version)
                }
                (_, Some(stage)) => ModelSelector::Stage(stage),
                _ => {
                    return Err(ModelRefError::BadVersion {
                        input: input.to_owned(),
                        found: rest.to_owned(),
                    });
                }
            };
            (name, selector)
        } else {
            match stage {
                Some(stage) => (body, ModelSelector::Stage(stage)),
                None if valid_name(body) => {
                    return Err(ModelRefError::NoSelector {
                        input: input.to_owned(),
                    });
                }
                None => return Err(bad_name(body)),
            }
        };
        if !valid_name(name) {
            return Err(bad_name(name));
        }
        Ok(ModelRef {
            name: name.to_owned(),
            selector,
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name
            .chars()
            .any(|c| c == '/' || c == '@' || c.is_whitespace() || c.is_control())
}

fn valid_alias(alias: &str) -> bool {
    let looks_like_version = alias.len() > 1
        && alias.starts_with(['v', 'V'])
        && alias[1..].bytes().all(|b| b.is_ascii_digit());
    !alias.is_empty()
        && alias.len() <= 255
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !alias.eq_ignore_ascii_case("latest")
        && !looks_like_version
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.selector {
            ModelSelector::Alias(alias) => write!(f, "{}@{alias}", self.name),
            ModelSelector::Version(version) => write!(f, "{}/{version}", self.name),
            ModelSelector::Stage(stage) => write!(f, "{}/{}", self.name, stage.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, stage: Option<Stage>, expect: Result<&str, &str>) {
        match (ModelRef::with_stage(input, stage), expect) {
            (Ok(model), Ok(display)) => {
                assert_eq!(model.to_string(), display);
                assert_eq!(
                    ModelRef::parse(&model.to_string()),
                    Ok(model),
                    "display must re-parse"
                );
            }
            (Err(err), Err(fragment)) => {
                let text = err.to_string();
                assert!(
                    text.contains(fragment),
                    "`{text}` should contain `{fragment}`"
                );
            }
            (got, want) => panic!("parse({input:?}) = {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn model_refs() {
        check(
            "iris-random-forest@production",
            None,
            Ok("iris-random-forest@production"),
        );
        check("models:/iris@champion", None, Ok("iris@champion"));
        check("iris/3", None, Ok("iris/3"));
        check("models:/iris/Production", None, Ok("iris/Production"));
        check("iris/staging", None, Ok("iris/Staging"));
        check("iris", Some(Stage::Production), Ok("iris/Production"));
        check("iris", None, Err("names no version, alias or stage"));
        check("iris/0", None, Err("neither a version number nor a stage"));
        check("iris/prod", None, Err("`prod` is neither"));
        check("iris@latest", None, Err("alias `latest` is not valid"));
        check("iris@v3", None, Err("alias `v3` is not valid"));
        check("iris@", None, Err("alias `` is not valid"));
        check("@prod", None, Err("model name `` is not valid"));
        check("my model@prod", None, Err("model name `my model`"));
        check("a/b/c", None, Err("`b/c` is neither"));
    }
}
