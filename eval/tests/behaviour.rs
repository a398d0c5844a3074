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

#[test]
fn fetchers_fail_with_a_clear_error() {
    for e in [
        r#"builtins.fetchurl "https://example.org/f""#,
        r#"builtins.fetchTarball { url = "https://example.org/t.tar.gz"; }"#,
        r#"builtins.fetchGit { url = "https://example.org/r.git"; rev = "abc"; }"#,
        r#"builtins.fetchTree { type = "git"; url = "https://example.org/r.git"; }"#,
    ] {
        let msg = eval(e).unwrap_err();
        assert!(msg.contains("cannot fetch 'https://example.org/"), "{msg}");
        assert!(msg.contains("needs a store"), "{msg}");
    }
}

#[test]
fn reading_an_unbuilt_output_names_the_derivation() {
    let msg =
        eval(r#"builtins.readFile (derivation { name = "o"; system = "s"; builder = "/b"; })"#)
            .unwrap_err();
    assert!(msg.contains("it is an output of '/nix/store/"), "{msg}");
    assert!(msg.contains("-o.drv'"), "{msg}");
}

#[test]
fn path_exists_follows_current_nix() {
    let dir = std::env::temp_dir().join(format!("cairn-eval-pathexists-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("f"), b"x").unwrap();
    std::os::unix::fs::symlink("nonexistent", dir.join("broken")).unwrap();
    std::os::unix::fs::symlink("d", dir.join("ldir")).unwrap();
    let d = dir.display();
    let check = |e: String, want: &str| {
        assert_eq!(eval(&e), Ok(format!("{want}\n")), "{e}");
    };
    // A dangling symlink exists (the link itself is there).
    check(format!("builtins.pathExists {d}/broken"), "true");
    // A trailing `/` or `/.` on a string asks for a directory.
    check(format!(r#"builtins.pathExists "{d}/f/""#), "false");
    check(format!(r#"builtins.pathExists "{d}/f/.""#), "false");
    check(format!(r#"builtins.pathExists "{d}/ldir/.""#), "true");
    check(format!(r#"builtins.pathExists "{d}/d/""#), "true");
    // `..` is resolved lexically.
    check(format!(r#"builtins.pathExists "{d}/d/../f""#), "true");
    check(format!("builtins.pathExists {d}/missing"), "false");
    check(format!("builtins.readFileType {d}/ldir"), r#""symlink""#);
    check(
        format!("builtins.attrNames (builtins.readDir {d}/ldir)"),
        "[ ]",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eager_values_do_not_show_in_traces_or_lazy_output() {
    // Arithmetic inside a list stays a thunk, as in Nix.
    let lazy = eval_capture(EvalArgs {
        files: vec!["{ a = [ (1 + 1) ]; b = { c = 2; }; d = 1 + 2; }".to_string()],
        expr: true,
        ..Default::default()
    })
    .map(|o| String::from_utf8_lossy(&o).into_owned());
    assert_eq!(
        lazy.as_deref(),
        Ok("{ a = <CODE>; b = <CODE>; d = <CODE>; }\n")
    );
    // Errors in values that are never used stay hidden.
    assert_eq!(
        eval("let x = [ (1 + \"a\") ]; in builtins.length x").as_deref(),
        Ok("1\n")
    );
    assert_eq!(
        eval("(x: 1) (9223372036854775807 + 1)").as_deref(),
        Ok("1\n")
    );
}

#[test]
fn missing_names_come_with_suggestions() {
    let e = eval("{ foo = 1; bar = 2; }.fob").unwrap_err();
    assert!(e.contains("attribute 'fob' missing"), "{e}");
    assert!(e.contains("Did you mean foo?"), "{e}");
    let e = eval("({ x, z }: x) { x = 1; y = 2; z = 3; }").unwrap_err();
    assert!(e.contains("unexpected argument 'y'"), "{e}");
    assert!(e.contains("Did you mean one of x or z?"), "{e}");
    // Nothing close: no suggestion.
    let e = eval("{ alpha = 1; }.zzzzzz").unwrap_err();
    assert!(!e.contains("Did you mean"), "{e}");
}
