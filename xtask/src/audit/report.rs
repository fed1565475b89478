//! Printing the checklist: a table, or JSON with `--json`.

use super::probes::{Check, Verdict};

pub(super) fn print_table(checks: &[Check]) {
    println!("{:<4} | {:<84} | evidence", "", "item");
    println!("{}", "-".repeat(120));
    for check in checks {
        let verdict = match check.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "N/A",
        };
        println!(
            "{verdict:<4} | {:<84} | {}",
            check.item,
            check.evidence.first().map(String::as_str).unwrap_or("")
        );
        for more in check.evidence.iter().skip(1) {
            println!("{:<4} | {:<84} | {more}", "", "");
        }
    }
}

pub(super) fn print_json(checks: &[Check]) {
    let items: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            let verdict = match c.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::NotApplicable => "not_applicable",
            };
            serde_json::json!({"item": c.item, "verdict": verdict, "evidence": c.evidence})
        })
        .collect();
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    println!(
        "{}",
        serde_json::json!({"passed": failed == 0, "checks": items})
    );
}
