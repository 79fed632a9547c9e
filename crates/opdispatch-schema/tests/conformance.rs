//! Replays the `def_` steps of the conformance kit's schema suite (recorded
//! from PyTorch 2.15) against the parser and printer.
//!
//! For every `def_`, PyTorch either printed the schema in the following `dump`
//! (`schema: ...`) or raised; both must match exactly (first line of the error,
//! after the kit's normalization).  `dump` steps whose name PyTorch rejected are
//! checked against `parse_name` too.

use opdispatch_schema::{parse_name, parse_schema};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

const NS: &str = "cf_1";

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/suites/schema")
}

/// The kit's normalization of one output line (the parts that apply here).
fn normalize(line: &str) -> String {
    let mut s = line.replace(NS, "NS");
    while let Some(p) = s.find("INTERNAL ASSERT FAILED at \"") {
        let rest = &s[p + "INTERNAL ASSERT FAILED at \"".len()..];
        let Some(q) = rest.find('"') else { break };
        let after = &rest[q + 1..];
        let digits = after
            .strip_prefix(':')
            .map(|a| a.bytes().take_while(u8::is_ascii_digit).count());
        match digits {
            Some(n) if n > 0 => {
                let tail = after[1 + n..].to_string();
                s = format!("{}INTERNAL ASSERT FAILED at \"<src>\"{}", &s[..p], tail);
            }
            _ => break,
        }
    }
    s.trim_end().to_string()
}

/// Expected output lines, grouped by 1-based step index.
fn outputs(expected: &[Value]) -> HashMap<usize, Vec<String>> {
    let mut out: HashMap<usize, Vec<String>> = HashMap::new();
    let mut cur = 0usize;
    for line in expected.iter().filter_map(Value::as_str) {
        if line.starts_with('[') {
            if let Some(end) = line.find("] ") {
                if let Ok(i) = line[1..end].parse::<usize>() {
                    cur = i;
                    out.entry(i).or_default();
                    continue;
                }
            }
        }
        out.entry(cur).or_default().push(line.to_string());
    }
    out
}

struct Tally {
    total: usize,
    passed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.total += 1;
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(what());
        }
    }
}

fn run(prefix: &str) -> Option<(Tally, Tally)> {
    let dir = suite_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "note: conformance suite not found at {}; skipping",
            dir.display()
        );
        return None;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    let mut defs = Tally {
        total: 0,
        passed: 0,
        failures: vec![],
    };
    let mut dumps = Tally {
        total: 0,
        passed: 0,
        failures: vec![],
    };
    let mut reparse_failures: Vec<String> = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read suite file");
        let v: Value = serde_json::from_str(&text).expect("suite json");
        for sc in v["scenarios"].as_array().into_iter().flatten() {
            let steps = sc["steps"].as_array().cloned().unwrap_or_default();
            let out = outputs(sc["expected"].as_array().map(Vec::as_slice).unwrap_or(&[]));
            for (i, st) in steps.iter().enumerate() {
                let op = st["op"].as_str().unwrap_or("");
                if op == "def_" {
                    let raw = st["schema"].as_str().unwrap_or("");
                    let schema = raw.replace("{NS}", NS);
                    let got = match parse_schema(&schema) {
                        Ok(s) => {
                            // The printed form must parse back to an equal schema.
                            let printed = s.to_string();
                            let again =
                                opdispatch_schema::parse_schema_with_options(&printed, true);
                            if again.as_ref().ok() != Some(&s) {
                                reparse_failures.push(printed.clone());
                            }
                            format!("schema: {}", normalize(&printed))
                        }
                        Err(e) => format!("error RuntimeError: {}", normalize(e.first_line())),
                    };
                    let want = match out.get(&(i + 1)) {
                        Some(lines) => lines.first().cloned().unwrap_or_default(),
                        None => out
                            .get(&(i + 2))
                            .and_then(|l| l.iter().find(|x| x.starts_with("schema: ")).cloned())
                            .unwrap_or_else(|| "<no schema line>".into()),
                    };
                    defs.record(got == want, || {
                        format!("{raw}\n   want: {want}\n    got: {got}")
                    });
                } else if op == "dump" {
                    let Some(lines) = out.get(&(i + 1)) else {
                        continue;
                    };
                    let Some(first) = lines.first() else { continue };
                    let name = st["name"].as_str().unwrap_or("").replace("{NS}", NS);
                    let got = match parse_name(&name) {
                        Ok(_) => None,
                        Err(e) => {
                            Some(format!("error RuntimeError: {}", normalize(e.first_line())))
                        }
                    };
                    let want = first.starts_with("error ").then(|| first.clone());
                    dumps.record(got == want, || {
                        format!("dump {name}\n   want: {want:?}\n    got: {got:?}")
                    });
                }
            }
        }
    }
    for p in reparse_failures.iter().take(20) {
        eprintln!("REPARSE FAIL {p}");
    }
    assert!(
        reparse_failures.is_empty(),
        "{} printed schemas did not reparse equal",
        reparse_failures.len()
    );
    Some((defs, dumps))
}

fn report(label: &str, t: &Tally) {
    eprintln!("{label}: {}/{} passed", t.passed, t.total);
    for f in t.failures.iter().take(40) {
        eprintln!("FAIL {f}");
    }
}

#[test]
fn roundtrip_suite() {
    let Some((defs, dumps)) = run("roundtrip_") else {
        return;
    };
    report("roundtrip def_", &defs);
    report("roundtrip dump names", &dumps);
    assert!(defs.total > 0);
    assert_eq!(defs.passed, defs.total, "round-trip failures");
    assert_eq!(dumps.passed, dumps.total);
}

#[test]
fn invalid_suite() {
    let Some((defs, dumps)) = run("invalid_") else {
        return;
    };
    report("invalid def_", &defs);
    report("invalid dump names", &dumps);
    assert!(defs.total > 0);
    assert_eq!(defs.passed, defs.total, "invalid-case failures");
    assert_eq!(dumps.passed, dumps.total);
}
