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
