//! Behaviour that differs from Nix 2.8 on purpose (following current Nix)
//! or that the oracle cannot check: integer overflow errors, deep
//! recursion ending in an error, parse output.

use cairn_eval::cli::{EvalArgs, eval_capture};

fn eval(expr: &str) -> Result<String, String> {
    eval_capture(EvalArgs {
        files: vec![expr.to_string()],
        expr: true,
        strict: true,
        ..Default::default()
    })
    .map(|o| String::from_utf8_lossy(&o).into_owned())
}

fn parse(expr: &str) -> Result<String, String> {
    eval_capture(EvalArgs {
        files: vec![expr.to_string()],
        expr: true,
        parse: true,
        ..Default::default()
    })
    .map(|o| String::from_utf8_lossy(&o).into_owned())
}

#[test]
fn integer_overflow_is_an_error() {
    let e = eval("9223372036854775807 + 1").unwrap_err();
    assert!(e.contains("integer overflow"), "{e}");
    assert!(
        eval("(-9223372036854775807 - 1) / -1")
            .unwrap_err()
            .contains("overflow")
    );
    assert!(eval("1 / 0").unwrap_err().contains("division by zero"));
}

#[test]
fn infinite_recursion_is_reported() {
    let e = eval("let x = x + 1; in x").unwrap_err();
    assert!(e.contains("infinite recursion encountered"), "{e}");
}

#[test]
fn deep_recursion_ends_in_an_error() {
    let e = eval("let f = n: 1 + f (n + 1); in f 0").unwrap_err();
    assert!(e.contains("max-call-depth"), "{e}");
    let e = eval("(x: x x) (x: x x)").unwrap_err();
    assert!(
        e.contains("max-call-depth") || e.contains("stack overflow"),
        "{e}"
    );
}

#[test]
fn errors_carry_positions() {
    let e = eval("let a = 1; in\n  a.b").unwrap_err();
    assert!(e.contains("«string»:2:5"), "{e}");
}

#[test]
fn parse_output_matches_nix_format() {
    assert_eq!(
        parse("{x, y}: x + y * 2").unwrap(),
        "({ x, y }: (x + (__mul y 2)))\n"
    );
    assert_eq!(
        parse("let a = 1; in a.b or 2").unwrap(),
        "(let a = 1; in (a).b or (2))\n"
    );
}

#[test]
fn values_print_like_nix() {
    assert_eq!(
        eval("{ b = [ 1 2.5 \"x\" ]; a = null; }").unwrap(),
        "{ a = null; b = [ 1 2.5 \"x\" ]; }\n"
    );
    assert_eq!(
        eval("[ (x: x) builtins.map (builtins.map (x: x)) ]").unwrap(),
        "[ <LAMBDA> <PRIMOP> <PRIMOP-APP> ]\n"
    );
}
