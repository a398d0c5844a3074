//! Differential test against `nix-instantiate` (C++ Nix with libstdc++'s
//! `std::regex`), run when the binary is on `PATH`.
//!
//! `CAIRN_REGEX_ORACLE_CASES` overrides the number of random cases,
//! `CAIRN_REGEX_ORACLE_SEED` the seed, `CAIRN_REGEX_ORACLE_DEPTH` the group
//! nesting of generated patterns and `CAIRN_REGEX_ORACLE_LEN` the longest
//! generated input.

use cairn_eval::posix_regex::Regex;
use serde_json::{Value, json};
use std::io::Write;
use std::process::Command;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn gen_atom(r: &mut Rng, depth: u32, out: &mut String) {
    let choices = if depth == 0 { 6 } else { 9 };
    match r.below(choices) {
        0 | 1 => out.push('a'),
        2 => out.push('b'),
        3 => out.push('.'),
        4 => out.push_str(
            [
                "[ab]",
                "[^a]",
                "[a-b]",
                "[[:alpha:]]",
                "[]a]",
                "[a-]",
                "[^]b]",
                "\\.",
            ][r.below(8) as usize],
        ),
        5 => out.push_str(["^", "$", "()"][r.below(3) as usize]),
        _ => {
            out.push('(');
            gen_alt(r, depth - 1, out);
            out.push(')');
        }
    }
}

fn gen_term(r: &mut Rng, depth: u32, out: &mut String) {
    let start = out.len();
    gen_atom(r, depth, out);
    let is_anchor = matches!(&out[start..], "^" | "$");
    if !is_anchor && r.below(2) == 0 {
        let q = [
            "*", "+", "?", "{0,1}", "{1,2}", "{2}", "{0,}", "*", "+", "?",
        ];
        out.push_str(q[r.below(q.len() as u64) as usize]);
    }
}

fn gen_alt(r: &mut Rng, depth: u32, out: &mut String) {
    let branches = 1 + r.below(3) * r.below(2);
    for i in 0..branches {
        if i > 0 {
            out.push('|');
        }
        let terms = r.below(4);
        for _ in 0..terms {
            gen_term(r, depth, out);
        }
    }
}

fn gen_input(r: &mut Rng, max_len: u64) -> String {
    let len = r.below(max_len + 1);
    (0..len)
        .map(|_| ['a', 'b', 'a', 'c', ']', '.'][r.below(6) as usize])
        .collect()
}

fn spans_to_json(input: &str, spans: &[Option<(usize, usize)>]) -> Value {
    Value::Array(
        spans[1..]
            .iter()
            .map(|s| match s {
                Some((a, b)) => Value::String(input[*a..*b].to_string()),
                None => Value::Null,
            })
            .collect(),
    )
}

fn ours(pattern: &str, input: &str) -> Value {
    let re = Regex::new(pattern.as_bytes()).expect("generated pattern compiles");
    let m = match re.full_match(input.as_bytes()) {
        Some(spans) => spans_to_json(input, &spans),
        None => Value::Null,
    };
    let mut split = Vec::new();
    let mut prev = 0;
    for spans in re.split_matches(input.as_bytes()) {
        let (s, e) = spans[0].expect("group 0 participates");
        split.push(Value::String(input[prev..s].to_string()));
        split.push(spans_to_json(input, &spans));
        prev = e;
    }
    split.push(Value::String(input[prev..].to_string()));
    json!({ "m": m, "s": split })
}

fn nix_available() -> bool {
    Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Evaluates the cases with Nix; `None` for cases that libstdc++'s
/// backtracking cannot finish within the time limit.
fn run_nix(cases: &[(String, String)]) -> Vec<Option<Value>> {
    if cases.is_empty() {
        return Vec::new();
    }
    if let Some(v) = run_nix_once(cases) {
        return v.into_iter().map(Some).collect();
    }
    if cases.len() == 1 {
        return vec![None];
    }
    let (a, b) = cases.split_at(cases.len() / 2);
    let mut out = run_nix(a);
    out.extend(run_nix(b));
    out
}

fn run_nix_once(cases: &[(String, String)]) -> Option<Vec<Value>> {
    let dir = std::env::temp_dir().join(format!(
        "cairn-regex-oracle-{}-{}",
        std::process::id(),
        cases.len()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data = dir.join("cases.json");
    let list: Vec<Value> = cases
        .iter()
        .map(|(p, s)| json!({ "p": p, "s": s }))
        .collect();
    std::fs::File::create(&data)
        .and_then(|mut f| f.write_all(Value::Array(list).to_string().as_bytes()))
        .expect("write cases");
    let expr = format!(
        "map (c: {{ m = builtins.match c.p c.s; s = builtins.split c.p c.s; }}) \
         (builtins.fromJSON (builtins.readFile {}))",
        data.display()
    );
    let out = Command::new("timeout")
        .args(["-s", "KILL", "10", "nix-instantiate"])
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .env("NIX_REMOTE", "")
        .output()
        .expect("run nix-instantiate");
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "nix-instantiate failed: {err}");
        return None;
    }
    match serde_json::from_slice(&out.stdout).expect("nix output is JSON") {
        Value::Array(v) => Some(v),
        other => panic!("unexpected nix output {other}"),
    }
}

#[test]
fn random_cases_agree_with_nix() {
    if !nix_available() {
        eprintln!("nix-instantiate not found; skipping oracle test");
        return;
    }
    let n: usize = std::env::var("CAIRN_REGEX_ORACLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("CAIRN_REGEX_ORACLE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_cafe);
    let depth: u32 = std::env::var("CAIRN_REGEX_ORACLE_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let max_len: u64 = std::env::var("CAIRN_REGEX_ORACLE_LEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut r = Rng(seed | 1);
    let mut cases = Vec::new();
    while cases.len() < n {
        let mut p = String::new();
        gen_alt(&mut r, depth, &mut p);
        if Regex::new(p.as_bytes()).is_err() {
            continue;
        }
        for _ in 0..3 {
            cases.push((p.clone(), gen_input(&mut r, max_len)));
        }
    }
    let expected = run_nix(&cases);
    assert_eq!(expected.len(), cases.len());
    let mut failures = Vec::new();
    let mut compared = 0;
    for ((p, s), want) in cases.iter().zip(&expected) {
        let Some(want) = want else { continue };
        compared += 1;
        let got = ours(p, s);
        if &got != want {
            failures.push(format!("pattern {p:?} input {s:?}: nix {want} ours {got}"));
        }
    }
    eprintln!("compared {compared} of {} cases with nix", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
