//! MLflow's REST JSON, as the server sends it, and the conversion to our types.
//!
//! Everything MLflow may omit is optional or defaulted: the server drops empty lists and empty
//! strings (a version with no aliases has no `aliases` key), and protobuf's JSON form may send
//! 64-bit integers as strings and NaN or infinities as the strings `"NaN"` and `"Infinity"`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use slipway_core::{ModelVersion, Stage};

use crate::{MetricPoint, RunData, VersionInfo, VersionStatus};

/// `{"error_code": …, "message": …}`, MLflow's error body.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error_code: String,
    #[serde(default)]
    pub(crate) message: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyValue {
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: String,
}

/// A `ModelVersion` message.
#[derive(Debug, Deserialize)]
pub(crate) struct WireModelVersion {
    pub(crate) name: String,
    pub(crate) version: String,
    #[serde(default)]
    pub(crate) current_stage: Option<String>,
    #[serde(default)]
    pub(crate) source: String,
    #[serde(default)]
    pub(crate) run_id: Option<String>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    #[serde(default)]
    pub(crate) tags: Vec<KeyValue>,
}

/// `model-versions/get`, `registered-models/alias` (GET), `transition-stage`, `model-versions/create`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelVersionResponse {
    pub(crate) model_version: WireModelVersion,
}

/// `registered-models/get-latest-versions`, `model-versions/search`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelVersionsResponse {
    #[serde(default)]
    pub(crate) model_versions: Vec<WireModelVersion>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireMetric {
    pub(crate) key: String,
    #[serde(deserialize_with = "float")]
    pub(crate) value: f64,
    #[serde(default, deserialize_with = "int")]
    pub(crate) timestamp: i64,
    #[serde(default, deserialize_with = "int")]
    pub(crate) step: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireRunData {
    #[serde(default)]
    pub(crate) metrics: Vec<WireMetric>,
    #[serde(default)]
    pub(crate) params: Vec<KeyValue>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireRun {
    #[serde(default)]
    pub(crate) data: WireRunData,
}

/// `runs/get`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunResponse {
    pub(crate) run: WireRun,
}

/// `metrics/get-history`, one page.
#[derive(Debug, Deserialize)]
pub(crate) struct MetricHistoryResponse {
    #[serde(default)]
    pub(crate) metrics: Vec<WireMetric>,
    #[serde(default)]
    pub(crate) next_page_token: Option<String>,
}

/// What a response held that our types cannot represent.
#[derive(Debug, PartialEq)]
pub(crate) struct Malformed(pub(crate) String);

impl WireModelVersion {
    pub(crate) fn into_info(self) -> Result<VersionInfo, Malformed> {
        let number = self
            .version
            .parse::<u64>()
            .ok()
            .filter(|number| *number > 0)
            .ok_or_else(|| {
                Malformed(format!(
                    "version `{}` of model `{}` is not a positive integer",
                    self.version, self.name
                ))
            })?;
        let stage = match self.current_stage.as_deref() {
            None | Some("") => Stage::None,
            Some(text) => Stage::parse(text).ok_or_else(|| {
                Malformed(format!(
                    "version {number} of model `{}` has unknown stage `{text}`",
                    self.name
                ))
            })?,
        };
        let status = match self.status.as_deref() {
            // MLflow omits the status only on servers that predate it, where every version is ready.
            None | Some("") | Some("READY") => VersionStatus::Ready,
            Some("PENDING_REGISTRATION") => VersionStatus::PendingRegistration,
            Some("FAILED_REGISTRATION") => VersionStatus::FailedRegistration,
            Some(other) => {
                return Err(Malformed(format!(
                    "version {number} of model `{}` has unknown status `{other}`",
                    self.name
                )));
            }
        };
        Ok(VersionInfo {
            version: ModelVersion {
                name: self.name,
                version: number,
            },
            status,
            source: self.source,
            run_id: self.run_id.filter(|run| !run.is_empty()),
            stage,
            aliases: self.aliases,
            tags: self
                .tags
                .into_iter()
                .map(|tag| (tag.key, tag.value))
                .collect(),
        })
    }
}

impl WireRunData {
    pub(crate) fn into_run_data(self) -> RunData {
        RunData {
            metrics: self
                .metrics
                .into_iter()
                .map(|metric| (metric.key, metric.value))
                .collect::<BTreeMap<_, _>>(),
            params: self
                .params
                .into_iter()
                .map(|param| (param.key, param.value))
                .collect(),
        }
    }
}

impl From<WireMetric> for MetricPoint {
    fn from(metric: WireMetric) -> MetricPoint {
        MetricPoint {
            timestamp_ms: metric.timestamp,
            step: metric.step,
            value: metric.value,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString<T> {
    Number(T),
    Text(String),
}

fn float<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    match NumberOrString::<f64>::deserialize(deserializer)? {
        NumberOrString::Number(value) => Ok(value),
        NumberOrString::Text(text) => match text.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("`{other}` is not a number"))),
        },
    }
}

fn int<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    match NumberOrString::<i64>::deserialize(deserializer)? {
        NumberOrString::Number(value) => Ok(value),
        NumberOrString::Text(text) => text
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an integer"))),
    }
}

#[cfg(test)]
mod tests {
    //! Every fixture here is a real MLflow 3.17.2 response (see tests/data/README.md).

    use super::*;

    fn version(json: &str) -> VersionInfo {
        serde_json::from_str::<ModelVersionResponse>(json)
            .expect("parse")
            .model_version
            .into_info()
            .expect("convert")
    }

    #[test]
    fn model_version_by_alias() {
        let info = version(include_str!("../tests/data/get-alias-production.json"));
        assert_eq!(
            info.version,
            ModelVersion {
                name: "iris-random-forest".into(),
                version: 1
            }
        );
        assert_eq!(info.status, VersionStatus::Ready);
        assert_eq!(info.stage, Stage::Production);
        assert_eq!(info.source, "models:/m-2f6ccae8fb5b46768468bed0c0203bc4");
        assert_eq!(
            info.run_id.as_deref(),
            Some("699d329d22e04262908ffe0eb1573458")
        );
        assert_eq!(info.aliases, ["production"]);
        assert!(info.tags.is_empty());

        let promoted = version(include_str!(
            "../tests/data/get-alias-production-after-promote.json"
        ));
        assert_eq!(promoted.version.version, 2);
        assert_eq!(promoted.aliases, ["candidate", "production"]);
    }

    #[test]
    fn model_version_without_aliases_key() {
        let info = version(include_str!(
            "../tests/data/get-model-version-1-after-archive.json"
        ));
        assert_eq!(info.stage, Stage::Archived);
        assert!(info.aliases.is_empty());
        let transitioned = version(include_str!(
            "../tests/data/post-transition-stage-v2-production.json"
        ));
        assert_eq!(transitioned.stage, Stage::Production);
    }

    #[test]
    fn version_list() {
        let list: ModelVersionsResponse =
            serde_json::from_str(include_str!("../tests/data/search-model-versions.json"))
                .expect("parse");
        let numbers: Vec<(u64, Stage)> = list
            .model_versions
            .into_iter()
            .map(|v| v.into_info().expect("convert"))
            .map(|info| (info.version.version, info.stage))
            .collect();
        assert_eq!(numbers, [(2, Stage::Production), (1, Stage::Archived)]);
        let empty: ModelVersionsResponse = serde_json::from_str("{}").expect("parse");
        assert!(empty.model_versions.is_empty());
    }

    #[test]
    fn run_metrics_and_params() {
        let run: RunResponse =
            serde_json::from_str(include_str!("../tests/data/get-run.json")).expect("parse");
        let data = run.run.data.into_run_data();
        assert_eq!(
            data.metrics,
            BTreeMap::from([("accuracy".to_owned(), 0.93), ("f1".to_owned(), 0.91)])
        );
        assert_eq!(
            data.params.get("n_estimators").map(String::as_str),
            Some("10")
        );
        assert_eq!(data.params.get("max_depth").map(String::as_str), Some("3"));
    }

    #[test]
    fn metric_history() {
        let page: MetricHistoryResponse =
            serde_json::from_str(include_str!("../tests/data/get-metric-history.json"))
                .expect("parse");
        assert_eq!(page.next_page_token, None);
        let points: Vec<MetricPoint> = page.metrics.into_iter().map(MetricPoint::from).collect();
        assert_eq!(
            points,
            [MetricPoint {
                timestamp_ms: 1_795_311_002_679,
                step: 0,
                value: 0.93
            }]
        );

        // Protobuf JSON spellings MLflow may use for non-finite values and 64-bit integers.
        let odd: MetricHistoryResponse = serde_json::from_str(
            r#"{"metrics":[{"key":"loss","value":"NaN","timestamp":"17","step":"2"},{"key":"loss","value":"-Infinity"}]}"#,
        )
        .expect("parse");
        assert!(odd.metrics[0].value.is_nan());
        assert_eq!((odd.metrics[0].timestamp, odd.metrics[0].step), (17, 2));
        assert_eq!(odd.metrics[1].value, f64::NEG_INFINITY);
    }

    #[test]
    fn errors() {
        for (file, code, message) in [
            (
                include_str!("../tests/data/error-get-alias-unknown.json"),
                "INVALID_PARAMETER_VALUE",
                "Registered model alias nope not found.",
            ),
            (
                include_str!("../tests/data/error-get-unknown-model-version.json"),
                "RESOURCE_DOES_NOT_EXIST",
                "Model Version (name=no-such-model, version=1) not found",
            ),
            (
                include_str!("../tests/data/error-transition-bad-stage.json"),
                "INVALID_PARAMETER_VALUE",
                "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, Archived.",
            ),
        ] {
            let body: ErrorBody = serde_json::from_str(file).expect("parse");
            assert_eq!(
                (body.error_code.as_str(), body.message.as_str()),
                (code, message)
            );
        }
        assert!(
            serde_json::from_str::<ErrorBody>(include_str!(
                "../tests/data/error-host-header-rejected.json"
            ))
            .is_err()
        );
    }

    #[test]
    fn malformed_versions_are_reported() {
        let bad = |json: &str| {
            serde_json::from_str::<WireModelVersion>(json)
                .expect("parse")
                .into_info()
                .expect_err("malformed")
                .0
        };
        assert_eq!(
            bad(r#"{"name":"iris","version":"x"}"#),
            "version `x` of model `iris` is not a positive integer"
        );
        assert_eq!(
            bad(r#"{"name":"iris","version":"1","current_stage":"Prod"}"#),
            "version 1 of model `iris` has unknown stage `Prod`"
        );
        assert_eq!(
            bad(r#"{"name":"iris","version":"1","status":"GONE"}"#),
            "version 1 of model `iris` has unknown status `GONE`"
        );
    }
}
