//! Integration tests over real Trivy reports (tests/data, copied from Trivy's own golden files;
//! see tests/data/SOURCES.md): parsing, counts, binding to the image, malformed and huge input,
//! the `trivy` binary source (a fake script on a made-up PATH) and the attestation source.

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use slipway_core::ImageRef;
use slipway_scanner::{
    Error, MemoryScanner, PackageClass, ReportConfig, ScanReport, Scanner, Severity, Status,
    TrivyCli, TrivyReportFile, VulnAttestation, from_vuln_attestation, parse_report, read_report,
};

const ALPINE_IMAGE_ID: &str =
    "sha256:961769676411f082461f9ef46626dd7a2d1e2b2a38e6a44364bcbecf51e66dd4";
const OTHER_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000001";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> ScanReport {
    read_report(&data(name), &ReportConfig::default()).expect("fixture parses")
}

fn image(digest: &str) -> ImageRef {
    ImageRef::parse(&format!("registry.example/acme/model-server:1.0@{digest}"))
        .expect("valid image")
}

/// `[CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN]` counts.
fn counts(report: &ScanReport) -> [usize; 5] {
    Severity::ALL_DESCENDING.map(|severity| {
        report
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    })
}

#[test]
fn counts_by_severity_match_jq() {
    // Computed once with:
    // jq '[.Results[]?.Vulnerabilities[]?.Severity] | group_by(.) | map({(.[0]): length}) | add' FILE
    for (file, expect) in [
        ("alpine-310.json", [0, 0, 4, 0, 0]),
        ("distroless-python27.json", [0, 0, 2, 2, 0]),
        ("debian-buster-ignore-unfixed.json", [1, 0, 0, 0, 0]),
        ("fluentd-gems.json", [1, 1, 0, 0, 0]),
        ("pip.json", [0, 1, 1, 0, 0]),
        ("cargo.lock.json", [0, 0, 0, 0, 0]),
    ] {
        assert_eq!(counts(&read(file)), expect, "{file}");
    }
}

#[test]
fn statuses_and_classes_match_jq() {
    // jq '[.Results[]?.Vulnerabilities[]?.Status] | group_by(.) | map({(.[0]|tostring): length}) | add'
    let distroless = read("distroless-python27.json");
    let n_status = |status: Status| {
        distroless
            .findings
            .iter()
            .filter(|f| f.status == status)
            .count()
    };
    assert_eq!(
        (n_status(Status::Affected), n_status(Status::Fixed)),
        (2, 2)
    );
    assert!(
        distroless
            .findings
            .iter()
            .filter(|f| f.status == Status::Affected)
            .all(|f| !f.has_fix())
    );

    let fluentd = read("fluentd-gems.json");
    let classes: Vec<(&str, &str, &str)> = fluentd
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.class.as_str(), f.target.as_str()))
        .collect();
    assert_eq!(
        classes,
        [
            (
                "CVE-2019-18224",
                "os-pkgs",
                "testdata/fixtures/images/fluentd-multiple-lockfiles.tar.gz (debian 10.2)"
            ),
            ("CVE-2020-8165", "lang-pkgs", "Ruby"),
        ]
    );
    assert_eq!(
        fluentd.findings[1].fixed_version.as_deref(),
        Some("6.0.3.1, 5.2.4.3")
    );
    assert_eq!(fluentd.findings[0].class, PackageClass::Os);
}

#[test]
fn finding_fields_are_mapped() {
    let report = read("alpine-310.json");
    assert_eq!(
        report.artifact,
        "testdata/fixtures/images/alpine-310.tar.gz"
    );
    assert_eq!(
        report
            .digests
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [ALPINE_IMAGE_ID]
    );
    let finding = &report.findings[0];
    assert_eq!(
        (
            finding.id.as_str(),
            finding.package.as_str(),
            finding.installed_version.as_str()
        ),
        ("CVE-2019-1549", "libcrypto1.1", "1.1.1c-r0")
    );
    assert_eq!(finding.fixed_version.as_deref(), Some("1.1.1d-r0"));
    assert_eq!(finding.severity, Severity::Medium);
    assert_eq!(finding.status, Status::Unknown);
    assert_eq!(finding.max_cvss_v3(), Some(("nvd", 5.3)));
    assert_eq!(finding.cvss.len(), 2);
    assert_eq!(
        finding.layer.as_deref(),
        Some("sha256:9d48c3bd43c520dc2784e868a780e976b207cbf493eaff8c6596eb871cbd9609")
    );
    assert_eq!(
        finding.title.as_deref(),
        Some("openssl: information disclosure in fork()")
    );
    assert_eq!(
        finding.primary_url.as_deref(),
        Some("https://avd.aquasec.com/nvd/cve-2019-1549")
    );
    assert_eq!(
        finding.target,
        "testdata/fixtures/images/alpine-310.tar.gz (alpine 3.10.2)"
    );
    assert_eq!(finding.class, PackageClass::Os);
}

#[test]
fn report_is_bound_to_the_image() {
    let report = read("alpine-310.json");
    report
        .ensure_about(&image(ALPINE_IMAGE_ID))
        .expect("ImageID matches");
    let err = report
        .ensure_about(&image(OTHER_DIGEST))
        .expect_err("other digest")
        .to_string();
    assert_eq!(
        err,
        format!(
            "the vulnerability report is about another image: it scanned `testdata/fixtures/images/alpine-310.tar.gz` (digests: {ALPINE_IMAGE_ID}), but the image being deployed is `registry.example/acme/model-server:1.0@{OTHER_DIGEST}`\n\nhint: scan the digest you deploy (`trivy image --format json IMAGE@DIGEST`) and pass that report"
        )
    );
    let unpinned = ImageRef::parse("registry.example/acme/model-server:1.0").expect("valid");
    assert!(matches!(
        report.ensure_about(&unpinned),
        Err(Error::NotPinned { .. })
    ));
    // A repository scan has no image digest at all: nothing to bind to.
    let err = read("pip.json")
        .ensure_about(&image(OTHER_DIGEST))
        .expect_err("no digests")
        .to_string();
    assert!(err.contains("(digests: none)"), "{err}");
}

#[test]
fn repo_digests_and_artifact_name_bind() {
    let report = parse_report(
        format!(
            r#"{{"SchemaVersion":2,"ArtifactName":"registry.example/app@{OTHER_DIGEST}","Metadata":{{"RepoDigests":["registry.example/app@sha256:{}"]}}}}"#,
            "2".repeat(64)
        )
        .as_bytes(),
        "inline",
    )
    .expect("valid");
    report
        .ensure_about(&image(OTHER_DIGEST))
        .expect("ArtifactName digest");
    report
        .ensure_about(&image(&format!("sha256:{}", "2".repeat(64))))
        .expect("RepoDigests digest");
}

#[test]
fn unsupported_and_malformed_reports_are_refused_with_the_file_named() {
    let legacy = read_report(
        &data("alpine-310-ignore-unfixed.json"),
        &ReportConfig::default(),
    )
    .expect_err("legacy")
    .to_string();
    assert!(legacy.starts_with("unsupported Trivy report `"), "{legacy}");
    assert!(
        legacy.contains("alpine-310-ignore-unfixed.json`: it is in Trivy's legacy format"),
        "{legacy}"
    );
    assert!(legacy.contains("\n\nhint: "), "{legacy}");

    let sarif = read_report(&data("alpine-310.sarif.json"), &ReportConfig::default())
        .expect_err("sarif")
        .to_string();
    assert!(
        sarif.contains("it has no SchemaVersion (is it a Trivy JSON report?)"),
        "{sarif}"
    );

    let full = std::fs::read(data("alpine-310.json")).expect("fixture");
    for (bytes, expect) in [
        (&full[..full.len() / 2], "failed to parse Trivy report `t.json`: it ends early (truncated?): EOF while parsing"),
        (b"not json".as_slice(), "failed to parse Trivy report `t.json`: it is not valid JSON: expected ident"),
        (b"".as_slice(), "failed to parse Trivy report `t.json`: it ends early (truncated?)"),
        (br#"{"SchemaVersion":"2"}"#.as_slice(), "failed to parse Trivy report `t.json`: it is JSON but not a Trivy report: invalid type"),
        (br#"{"SchemaVersion":3}"#.as_slice(), "unsupported Trivy report `t.json`: its SchemaVersion is 3"),
        (
            br#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"p","Severity":"SEVERE"}]}]}"#.as_slice(),
            "failed to parse Trivy report `t.json`: CVE-1 in p has severity `SEVERE`",
        ),
    ] {
        let err = parse_report(bytes, "t.json").expect_err("malformed").to_string();
        assert!(err.starts_with(expect), "{err}");
        assert!(err.ends_with("hint: pass the output of `trivy image --format json` (SchemaVersion 2)")
            || err.contains("\n\nhint: produce it with a current Trivy"), "{err}");
    }

    let missing = read_report(Path::new("no/such/trivy.json"), &ReportConfig::default())
        .expect_err("missing");
    assert_eq!(
        missing.to_string(),
        "failed to read Trivy report `no/such/trivy.json`: No such file or directory (os error 2)\n\nhint: check the path given to `--report`"
    );
}

/// Writes a valid ~`target_bytes` report whose bulk is `Packages[]` (which the parser skips), with
/// one finding at the end.
fn write_big_report(path: &Path, target_bytes: usize) {
    let file = std::fs::File::create(path).expect("create");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    write!(
        out,
        r#"{{"SchemaVersion":2,"ArtifactName":"big","Metadata":{{"ImageID":"{ALPINE_IMAGE_ID}"}},"Results":[{{"Target":"big","Class":"os-pkgs","Packages":["#
    )
    .expect("write");
    let package = r#"{"Name":"libpackage-with-a-long-name","Version":"1.2.3-r4","Licenses":["MIT","Apache-2.0"],"Layer":{"DiffID":"sha256:03901b4a2ea88eeaad62dbe59b072b28b6efa00491962b8741081c5df50c65e0"}},"#;
    for _ in 0..target_bytes / package.len() {
        out.write_all(package.as_bytes()).expect("write");
    }
    write!(
        out,
        r#"{{"Name":"last"}}],"Vulnerabilities":[{{"VulnerabilityID":"CVE-2019-1549","PkgName":"libcrypto1.1","InstalledVersion":"1.1.1c-r0","Severity":"HIGH"}}]}}]}}"#
    )
    .expect("write");
    out.flush().expect("flush");
}

#[test]
fn hundred_megabyte_report_is_refused_by_default_and_streams_when_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big-trivy.json");
    write_big_report(&path, 100 * 1024 * 1024);
    let size = std::fs::metadata(&path).expect("metadata").len();
    assert!(size > 100 * 1024 * 1024);

    let err = read_report(&path, &ReportConfig::default()).expect_err("too large");
    assert_eq!(
        err.to_string(),
        format!(
            "Trivy report `{}` is {size} bytes, above the limit of 67108864 bytes\n\nhint: if the report is genuine, raise the limit with `--max-report-size BYTES`",
            path.display()
        )
    );

    // Raised limit: the report streams through; only the one finding is kept in memory.
    let started = std::time::Instant::now();
    let report = read_report(
        &path,
        &ReportConfig {
            max_bytes: 200 * 1024 * 1024,
        },
    )
    .expect("parses");
    let elapsed = started.elapsed();
    assert_eq!(report.findings.len(), 1);
    eprintln!("parsed {size} bytes in {elapsed:?}");
}

fn fake_trivy(dir: &Path, script_body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("trivy");
    std::fs::write(&path, format!("#!/bin/sh\n{script_body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test]
async fn trivy_binary_on_path_is_run_and_its_report_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args_file = dir.path().join("args");
    fake_trivy(
        dir.path(),
        &format!(
            "echo \"$@\" > '{}'\ncat '{}'",
            args_file.display(),
            data("alpine-310.json").display()
        ),
    );
    let path_var = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).expect("PATH");
    let trivy = TrivyCli::find_on_path(&path_var).expect("found on PATH");
    assert_eq!(trivy.program, dir.path().join("trivy"));

    let report = trivy.scan(&image(ALPINE_IMAGE_ID)).await.expect("scan");
    assert_eq!(report.findings.len(), 4);
    assert_eq!(
        std::fs::read_to_string(&args_file).expect("args").trim(),
        format!("image --format json --quiet registry.example/acme/model-server@{ALPINE_IMAGE_ID}")
    );
    let err = trivy
        .scan(&image(OTHER_DIGEST))
        .await
        .expect_err("wrong image");
    assert!(matches!(err, Error::WrongImage { .. }), "{err}");

    assert!(TrivyCli::find_on_path(std::ffi::OsStr::new("/nonexistent")).is_none());
}

#[tokio::test]
async fn trivy_binary_failure_shows_its_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    fake_trivy(
        dir.path(),
        "echo 'FATAL image scan error: unable to find the specified image' >&2\nexit 1",
    );
    let trivy = TrivyCli::find_on_path(dir.path().as_os_str()).expect("found");
    let err = trivy
        .scan(&image(ALPINE_IMAGE_ID))
        .await
        .expect_err("fails")
        .to_string();
    assert!(
        err.contains("image --format json --quiet registry.example/acme/model-server@sha256:"),
        "{err}"
    );
    assert!(err.contains("it exited with exit status: 1: FATAL image scan error: unable to find the specified image"), "{err}");
}

fn statement(predicate_type: &str, subject_digest: &str, result: &str) -> Vec<u8> {
    format!(
        r#"{{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"{predicate_type}","subject":[{{"name":"registry.example/acme/model-server","digest":{{"sha256":"{subject_digest}"}}}}],"predicate":{{"invocation":{{"parameters":null,"uri":"","event_id":"","builder.id":""}},"scanner":{{"uri":"pkg:github/aquasecurity/trivy@v0.50.0","version":"0.50.0","db":{{"uri":"","version":""}},"result":{result}}},"metadata":{{"scanStartedOn":"2024-01-01T00:00:00Z","scanFinishedOn":"2024-01-01T00:00:10Z"}}}}}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn vuln_attestation_binds_to_its_subject() {
    let result = std::fs::read_to_string(data("fluentd-gems.json")).expect("fixture");
    let subject = "3".repeat(64);
    let bytes = statement(slipway_scanner::VULN_PREDICATE_TYPE, &subject, &result);
    let report = from_vuln_attestation(&bytes).expect("parses");
    assert_eq!(counts(&report), [1, 1, 0, 0, 0]);
    let source = VulnAttestation {
        statement_json: bytes,
    };
    source
        .scan(&image(&format!("sha256:{subject}")))
        .await
        .expect("subject digest binds");
    assert!(source.scan(&image(OTHER_DIGEST)).await.is_err());

    let err = from_vuln_attestation(&statement(
        "https://slsa.dev/provenance/v0.2",
        &subject,
        &result,
    ))
    .expect_err("wrong predicate")
    .to_string();
    assert!(
        err.contains("its predicateType is `https://slsa.dev/provenance/v0.2`"),
        "{err}"
    );
    let err = from_vuln_attestation(b"{\"predicateType\":")
        .expect_err("truncated")
        .to_string();
    assert!(
        err.starts_with("failed to parse Trivy report `vulnerability attestation`: it ends early"),
        "{err}"
    );
}

#[tokio::test]
async fn report_file_and_memory_scanners() {
    let file = TrivyReportFile::new(data("alpine-310.json"));
    assert_eq!(
        file.scan(&image(ALPINE_IMAGE_ID))
            .await
            .expect("scan")
            .findings
            .len(),
        4
    );
    assert!(matches!(
        file.scan(&image(OTHER_DIGEST)).await,
        Err(Error::WrongImage { .. })
    ));

    let memory = MemoryScanner::new();
    let digest = slipway_core::Digest::parse(OTHER_DIGEST).expect("digest");
    memory.record(
        digest,
        vec![slipway_scanner::Finding::new(
            "CVE-1",
            "openssl",
            "1.0",
            None,
            Severity::High,
        )],
    );
    let report = memory.scan(&image(OTHER_DIGEST)).await.expect("recorded");
    assert_eq!(report.findings[0].status, Status::Affected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes: an error or a report, never a panic.
    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_report(&bytes, "fuzz");
        let _ = from_vuln_attestation(&bytes);
    }

    /// A real report cut short or with one byte changed: still never a panic.
    #[test]
    fn parser_never_panics_on_damaged_reports(cut in 0usize..18_002, idx in 0usize..18_002, byte in any::<u8>()) {
        let full = std::fs::read(data("alpine-310.json")).expect("fixture");
        let _ = parse_report(&full[..cut.min(full.len())], "fuzz");
        let mut damaged = full.clone();
        let idx = idx.min(damaged.len() - 1);
        damaged[idx] = byte;
        let _ = parse_report(&damaged, "fuzz");
    }
}
