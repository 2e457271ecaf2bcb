//! Benchmark: verify a trail file of a million entries by streaming it, as
//! `slipway-audit verify --trail` does (`FileAuditStore::read_each` into a `ChainVerifier`),
//! run by `cargo xtask bench audit` next to `sha256sum` on the same file.
//!
//! - `audit_bench generate PATH N`: writes a chained trail of `N` entries of about 450 bytes.
//! - `audit_bench verify PATH`: verifies it and prints `name value` lines for xtask:
//!   `entries`, `bytes`, `problems`, `seconds` and `peak_rss_kib` (this process' `VmHWM`).

#![allow(
    clippy::print_stdout,
    reason = "a benchmark prints its results for xtask"
)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use slipway_audit_log::{ChainVerifier, Entry, Event, FileAuditStore};
use slipway_core::ReleaseId;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, path, count] if command == "generate" => generate(path.into(), count.parse()?),
        [command, path] if command == "verify" => verify(path.into()),
        _ => Err("usage: audit_bench generate PATH N | audit_bench verify PATH".into()),
    }
}

fn generate(path: PathBuf, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let release = ReleaseId::parse("ml/fraud-detector")?;
    let start = jiff::Timestamp::from_second(1_790_000_000)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut last: Option<Entry> = None;
    for idx in 0..count {
        let event = Event::Decision {
            release: release.clone(),
            stage: "analysis".to_owned(),
            verdict: if idx % 7 == 0 { "fail" } else { "pass" }.to_owned(),
            detail: format!(
                "step {idx}: error rate 0.{:04} within 0.0100 over 300 s, p99 latency {} ms within 250 ms, {} requests on the canary against {} on stable",
                idx % 10_000,
                120 + idx % 97,
                1_000 + idx % 5_000,
                9_000 + idx % 50_000
            ),
        };
        let at = start + jiff::SignedDuration::from_secs(i64::try_from(idx)?);
        let entry = Entry::next(last.as_ref(), at, event);
        serde_json::to_writer(&mut out, &entry)?;
        out.write_all(b"\n")?;
        last = Some(entry);
    }
    out.flush()?;
    Ok(())
}

fn verify(path: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = std::fs::metadata(&path)?.len();
    let started = Instant::now();
    let mut verifier = ChainVerifier::new(None);
    let mut entries: u64 = 0;
    let damage = FileAuditStore::new(&path).read_each(|entry| {
        verifier.push(&entry);
        entries += 1;
    })?;
    let problems = verifier.finish().len() + damage.len();
    let seconds = started.elapsed().as_secs_f64();
    println!("entries {entries}");
    println!("bytes {bytes}");
    println!("problems {problems}");
    println!("seconds {seconds:.3}");
    println!("peak_rss_kib {}", peak_rss_kib().unwrap_or(0));
    Ok(())
}

/// `VmHWM` from `/proc/self/status`: the most this process ever held in memory.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
