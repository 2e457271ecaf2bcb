//! Ignore rules: which findings a team has accepted, until when, and why.
//!
//! [`IgnoreRule`] lives here, not in `gates`, because the scanner crate parses the files that
//! produce it (`.trivyignore`, `.trivyignore.yaml`) and `gates` already depends on this crate for
//! the findings model. The gate only *applies* rules; it never reads files.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::Finding;

/// One accepted vulnerability: an id, optionally scoped to paths or package URLs, optionally
/// expiring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRule {
    /// Vulnerability id (`CVE-…`, `GHSA-…`), compared exactly.
    pub id: String,
    /// The rule stops applying on this day (Trivy's `exp:` / `expired_at`): it applies while
    /// today is before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
    /// Only findings whose package path or target matches one of these globs (`*` matches any
    /// run of characters, `/` included). Empty: any path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Only findings whose package URL equals one of these. Empty: any package.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purls: Vec<String>,
    /// Why the risk is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// Where the rule came from (`.trivyignore:3`, `policy`), for explanations. Not configurable.
    #[serde(skip)]
    pub origin: String,
}

impl IgnoreRule {
    /// A rule ignoring `id` everywhere, forever.
    pub fn new(id: impl Into<String>) -> IgnoreRule {
        IgnoreRule {
            id: id.into(),
            expires: None,
            paths: Vec::new(),
            purls: Vec::new(),
            statement: None,
            origin: String::new(),
        }
    }

    /// True when the rule's id, paths and purls cover the finding (expiry is not considered).
    pub fn matches(&self, finding: &Finding) -> bool {
        if self.id != finding.id {
            return false;
        }
        let path_ok = self.paths.is_empty()
            || self.paths.iter().any(|pattern| {
                finding
                    .package_path
                    .as_deref()
                    .is_some_and(|path| glob_match(pattern, path))
                    || glob_match(pattern, &finding.target)
            });
        let purl_ok = self.purls.is_empty()
            || finding
                .purl
                .as_deref()
                .is_some_and(|purl| self.purls.iter().any(|p| p == purl));
        path_ok && purl_ok
    }

    /// True when the rule has expired on `today`.
    pub fn is_expired(&self, today: Date) -> bool {
        self.expires.is_some_and(|expires| today >= expires)
    }
}

/// Glob match where `*` (and `**`) match any run of characters, including `/`.
///
/// Trivy uses doublestar globs; a full implementation was rejected as a dependency for a feature
/// whose patterns are in practice literal paths or `dir/*` prefixes.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative wildcard matching with backtracking to the last star: O(n·m) worst case.
    let (mut pattern_idx, mut text_idx) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while text_idx < text.len() {
        if pattern_idx < pattern.len() && pattern[pattern_idx] == '*' {
            while pattern_idx < pattern.len() && pattern[pattern_idx] == '*' {
                pattern_idx += 1;
            }
            star = Some((pattern_idx, text_idx));
        } else if pattern_idx < pattern.len()
            && (pattern[pattern_idx] == '?' || pattern[pattern_idx] == text[text_idx])
        {
            pattern_idx += 1;
            text_idx += 1;
        } else if let Some((star_pattern, star_text)) = star {
            pattern_idx = star_pattern;
            text_idx = star_text + 1;
            star = Some((star_pattern, star_text + 1));
        } else {
            return false;
        }
    }
    pattern[pattern_idx..].iter().all(|&c| c == '*')
}

/// Reads an ignore file: `.trivyignore.yaml` / `.yml` as YAML, anything else as `.trivyignore`
/// lines. Each rule's [`IgnoreRule::origin`] names the file and line or entry.
pub fn read_ignore_file(path: &std::path::Path) -> Result<Vec<IgnoreRule>, crate::Error> {
    let input = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::ReadIgnoreFile {
        input: input.clone(),
        detail: source.to_string(),
    })?;
    let is_yaml = path
        .extension()
        .is_some_and(|ext| ext == "yaml" || ext == "yml");
    if is_yaml {
        parse_trivyignore_yaml(&text, &input)
    } else {
        parse_trivyignore(&text, &input)
    }
}

/// Parses `.trivyignore`: one id per line, optionally followed by `exp:YYYY-MM-DD`; `#` starts a
/// comment line. Unknown `key:value` fields are refused rather than skipped, so a typo such as
/// `expires:` cannot turn a temporary exception into a permanent one.
pub fn parse_trivyignore(text: &str, input: &str) -> Result<Vec<IgnoreRule>, crate::Error> {
    let mut rules = Vec::new();
    for (line_idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = format!("{input}:{}", line_idx + 1);
        let mut fields = line.split_whitespace();
        let Some(id) = fields.next() else { continue };
        let mut rule = IgnoreRule {
            origin,
            ..IgnoreRule::new(id)
        };
        for field in fields {
            if field.starts_with('#') {
                break;
            }
            match field.strip_prefix("exp:") {
                Some(date) => rule.expires = Some(parse_date(date, &rule.origin)?),
                None => {
                    return Err(crate::Error::ParseIgnoreFile {
                        input: rule.origin,
                        detail: format!("unexpected field `{field}` after `{id}`"),
                    });
                }
            }
        }
        rules.push(rule);
    }
    Ok(rules)
}

#[derive(Deserialize)]
struct YamlIgnoreFile {
    #[serde(default)]
    vulnerabilities: Vec<YamlVulnerability>,
    // Misconfiguration, secret and license rules are Trivy's business, not the vulnerability
    // gate's: accepted so a shared file parses, and not applied.
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for compatibility, never read")]
    misconfigurations: serde::de::IgnoredAny,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for compatibility, never read")]
    secrets: serde::de::IgnoredAny,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for compatibility, never read")]
    licenses: serde::de::IgnoredAny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlVulnerability {
    id: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    purls: Vec<String>,
    #[serde(default)]
    expired_at: Option<String>,
    #[serde(default)]
    statement: Option<String>,
}

/// Parses `.trivyignore.yaml` (`vulnerabilities:` entries with `id`, `paths`, `purls`,
/// `expired_at`, `statement`). Unknown keys in an entry are refused, for the same reason as in
/// [`parse_trivyignore`].
pub fn parse_trivyignore_yaml(text: &str, input: &str) -> Result<Vec<IgnoreRule>, crate::Error> {
    let file: YamlIgnoreFile =
        serde_yaml_ng::from_str(text).map_err(|err| crate::Error::ParseIgnoreFile {
            input: input.to_owned(),
            detail: err.to_string(),
        })?;
    file.vulnerabilities
        .into_iter()
        .enumerate()
        .map(|(idx, entry)| {
            let origin = format!("{input} (vulnerabilities[{idx}])");
            let expires = entry
                .expired_at
                .as_deref()
                .map(|date| parse_date(date, &origin))
                .transpose()?;
            Ok(IgnoreRule {
                id: entry.id,
                expires,
                paths: entry.paths,
                purls: entry.purls,
                statement: entry.statement.filter(|statement| !statement.is_empty()),
                origin,
            })
        })
        .collect()
}

fn parse_date(text: &str, origin: &str) -> Result<Date, crate::Error> {
    text.parse::<Date>()
        .map_err(|err| crate::Error::ParseIgnoreFile {
            input: origin.to_owned(),
            detail: format!("expiry `{text}` is not a date ({err}); write YYYY-MM-DD"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        for (pattern, text, expect) in [
            ("usr/lib/*", "usr/lib/python3/x.py", true),
            ("usr/lib/*", "usr/bin/x", false),
            ("**/Gemfile.lock", "app/Gemfile.lock", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("a*b*c", "aXbYc", true),
            ("", "", true),
        ] {
            assert_eq!(glob_match(pattern, text), expect, "{pattern} vs {text}");
        }
    }

    #[test]
    fn trivyignore_lines() {
        let rules = parse_trivyignore(
            "# accepted\nCVE-2019-1549\n\n  CVE-2019-1551 exp:2030-01-31  \nGHSA-x exp:2020-01-01 # lapsed\n",
            ".trivyignore",
        )
        .expect("valid");
        let got: Vec<String> = rules
            .iter()
            .map(|r| {
                format!(
                    "{} {:?} {}",
                    r.id,
                    r.expires.map(|d| d.to_string()),
                    r.origin
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "CVE-2019-1549 None .trivyignore:2",
                "CVE-2019-1551 Some(\"2030-01-31\") .trivyignore:4",
                "GHSA-x Some(\"2020-01-01\") .trivyignore:5",
            ]
        );
    }

    #[test]
    fn trivyignore_errors_name_line_and_field() {
        for (text, expect) in [
            (
                "CVE-1 expires:2030-01-01",
                "failed to parse ignore file `.trivyignore:1`: unexpected field `expires:2030-01-01` after `CVE-1`",
            ),
            (
                "\nCVE-1 exp:2030-13-01",
                "failed to parse ignore file `.trivyignore:2`: expiry `2030-13-01` is not a date",
            ),
        ] {
            let err = parse_trivyignore(text, ".trivyignore")
                .expect_err("invalid")
                .to_string();
            assert!(err.starts_with(expect), "{err}");
            assert!(err.contains("\n\nhint: "), "{err}");
        }
    }

    #[test]
    fn trivyignore_yaml() {
        let rules = parse_trivyignore_yaml(
            "vulnerabilities:\n  - id: CVE-1\n    paths: [\"usr/lib/*\"]\n    statement: not reachable\n    expired_at: 2030-01-01\n  - id: CVE-2\n    purls: [\"pkg:gem/activesupport@6.0.2.1\"]\nsecrets:\n  - id: aws-key\n",
            ".trivyignore.yaml",
        )
        .expect("valid");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].expires, Some(jiff::civil::date(2030, 1, 1)));
        assert_eq!(rules[0].paths, ["usr/lib/*"]);
        assert_eq!(rules[0].statement.as_deref(), Some("not reachable"));
        assert_eq!(rules[1].purls, ["pkg:gem/activesupport@6.0.2.1"]);
        assert_eq!(rules[1].origin, ".trivyignore.yaml (vulnerabilities[1])");
        let err = parse_trivyignore_yaml(
            "vulnerabilities:\n  - id: CVE-1\n    expires_at: 2030-01-01\n",
            "x.yaml",
        )
        .expect_err("typo");
        assert!(
            err.to_string().contains("unknown field `expires_at`"),
            "{err}"
        );
    }
}
