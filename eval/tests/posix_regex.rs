//! Tests for `cairn_eval::posix_regex`.
//!
//! The expectations in `NIX_CASES` and `NIX_ERRORS` are the results of
//! `builtins.match` and `builtins.split` in Nix 2.8.

use cairn_eval::posix_regex::{Regex, RegexError};
use proptest::prelude::*;
use serde_json::Value;

/// `(pattern, input, builtins.match result, builtins.split result)` as
/// printed by `nix-instantiate --eval --strict --json`.
const NIX_CASES: &[(&str, &str, &str, &str)] = &[
    (
        r#"([^/]*)/(.*)"#,
        r#"foo/bar/baz"#,
        r#"["foo", "bar/baz"]"#,
        r#"["", ["foo", "bar/baz"], ""]"#,
    ),
    (r#"[0-9]+"#, r#"123"#, r#"[]"#, r#"["", [], ""]"#),
    (r#"[0-9]+"#, r#"12a"#, r#"null"#, r#"["", [], "a"]"#),
    (
        r#"(.*)\.tar\.gz"#,
        r#"hello-1.0.tar.gz"#,
        r#"["hello-1.0"]"#,
        r#"["", ["hello-1.0"], ""]"#,
    ),
    (
        r#"([a-z]+)-([0-9.]+)"#,
        r#"hello-2.10"#,
        r#"["hello", "2.10"]"#,
        r#"["", ["hello", "2.10"], ""]"#,
    ),
    (r#"^[a-z]+$"#, r#"abc"#, r#"[]"#, r#"["", [], ""]"#),
    (
        r#"(.*)-([^-]*)"#,
        r#"foo-bar-1.0"#,
        r#"["foo-bar", "1.0"]"#,
        r#"["", ["foo-bar", "1.0"], ""]"#,
    ),
    (
        r#"[[:space:]]*([^[:space:]]+)[[:space:]]*"#,
        r#" x "#,
        r#"["x"]"#,
        r#"["", ["x"], ""]"#,
    ),
    (
        r#"([0-9]+)\.([0-9]+)\.?([0-9]*)"#,
        r#"1.2"#,
        r#"["1", "2", ""]"#,
        r#"["", ["1", "2", ""], ""]"#,
    ),
    (r#".*[.]nix"#, r#"default.nix"#, r#"[]"#, r#"["", [], ""]"#),
    (
        r#"(a|ab)(c|bcd)(d*)"#,
        r#"abcd"#,
        r#"["a", "bcd", ""]"#,
        r#"["", ["a", "bcd", ""], ""]"#,
    ),
    (r#"(a*)*"#, r#""#, r#"[""]"#, r#"["", [""], ""]"#),
    (
        r#"(a*)*"#,
        r#"b"#,
        r#"null"#,
        r#"["", [""], "b", [""], ""]"#,
    ),
    (r#"(a*)+b"#, r#"b"#, r#"[""]"#, r#"["", [""], ""]"#),
    (r#"(a|)*"#, r#"a"#, r#"[""]"#, r#"["", [""], "", [""], ""]"#),
    (r#"(()?)*"#, r#""#, r#"["", ""]"#, r#"["", ["", ""], ""]"#),
    (
        r#"((a)|b)*"#,
        r#"ab"#,
        r#"["b", "a"]"#,
        r#"["", ["b", "a"], "", [null, null], ""]"#,
    ),
    (
        r#"(a|(b))*"#,
        r#"ba"#,
        r#"["a", "b"]"#,
        r#"["", ["a", "b"], "", [null, null], ""]"#,
    ),
    (
        r#"(a*)(a*)"#,
        r#"aa"#,
        r#"["aa", ""]"#,
        r#"["", ["aa", ""], "", ["", ""], ""]"#,
    ),
    (
        r#"(a?)?(a)"#,
        r#"a"#,
        r#"["", "a"]"#,
        r#"["", ["", "a"], ""]"#,
    ),
    (r#"x*"#, r#""#, r#"[]"#, r#"["", [], ""]"#),
    (r#"a{2,3}"#, r#"aaa"#, r#"[]"#, r#"["", [], ""]"#),
    (r#"a{2,3}"#, r#"aaaa"#, r#"null"#, r#"["", [], "a"]"#),
    (r#"(a){0}b"#, r#"b"#, r#"[null]"#, r#"["", [null], ""]"#),
    (r#"(a|b)*c"#, r#"abac"#, r#"["a"]"#, r#"["", ["a"], ""]"#),
    (
        r#"(a*)"#,
        r#"xaax"#,
        r#"null"#,
        r#"["", [""], "x", ["aa"], "", [""], "x", [""], ""]"#,
    ),
    (
        r#"a?(ab)?"#,
        r#"ab"#,
        r#"["ab"]"#,
        r#"["", [null], "", [null], "b", [null], ""]"#,
    ),
    (
        r#","#,
        r#"a,b,,c"#,
        r#"null"#,
        r#"["a", [], "b", [], "", [], "c"]"#,
    ),
    (r#"(,)"#, r#"a,b"#, r#"null"#, r#"["a", [","], "b"]"#),
    (
        r#"[[:space:]]+"#,
        r#" a  b "#,
        r#"null"#,
        r#"["", [], "a", [], "b", [], ""]"#,
    ),
    (
        r#"x*"#,
        r#"abc"#,
        r#"null"#,
        r#"["", [], "a", [], "b", [], "c", [], ""]"#,
    ),
    (r#"^a"#, r#"aaa"#, r#"null"#, r#"["", [], "aa"]"#),
    (r#"a$"#, r#"aaa"#, r#"null"#, r#"["aa", [], ""]"#),
    (
        r#""#,
        r#"ab"#,
        r#"null"#,
        r#"["", [], "a", [], "b", [], ""]"#,
    ),
    (
        r#"(b)|(c)"#,
        r#"abcd"#,
        r#"null"#,
        r#"["a", ["b", null], "", [null, "c"], "d"]"#,
    ),
    (
        r#"(a|ab)(bc|c)*"#,
        r#"abcbc"#,
        r#"["a", "bc"]"#,
        r#"["", ["a", "bc"], ""]"#,
    ),
    (
        r#"(a+|b+)*"#,
        r#"aabba"#,
        r#"["a"]"#,
        r#"["", ["a"], "", [null], ""]"#,
    ),
    (
        r#"([[:alpha:]_][[:alnum:]_]*)=(.*)"#,
        r#"FOO_1=bar=baz"#,
        r#"["FOO_1", "bar=baz"]"#,
        r#"["", ["FOO_1", "bar=baz"], ""]"#,
    ),
    (r#"[]a]+"#, r#"]a]"#, r#"[]"#, r#"["", [], ""]"#),
    (r#"[^]a]+"#, r#"bc]"#, r#"null"#, r#"["", [], "]"]"#),
    (r#"[a-]+"#, r#"a-a"#, r#"[]"#, r#"["", [], ""]"#),
    (
        r#"\$\{([^}]*)}"#,
        r#"${foo}"#,
        r#"["foo"]"#,
        r#"["", ["foo"], ""]"#,
    ),
    (
        r#"(\.|[^.])*"#,
        r#"a.b"#,
        r#"["b"]"#,
        r#"["", ["b"], "", [null], ""]"#,
    ),
    (r#"(x)?y"#, r#"y"#, r#"[null]"#, r#"["", [null], ""]"#),
    (
        r#"((x)?y)*"#,
        r#"yxy"#,
        r#"["xy", "x"]"#,
        r#"["", ["xy", "x"], "", [null, null], ""]"#,
    ),
    (
        r#"(.)(.)?"#,
        r#"a"#,
        r#"["a", null]"#,
        r#"["", ["a", null], ""]"#,
    ),
    (r#"a|b|ab"#, r#"ab"#, r#"[]"#, r#"["", [], ""]"#),
    (
        r#"(a|b|ab)*"#,
        r#"abab"#,
        r#"["b"]"#,
        r#"["", ["b"], "", [null], ""]"#,
    ),
    (
        r#"[[:upper:]][[:lower:]]*"#,
        r#"Hello"#,
        r#"[]"#,
        r#"["", [], ""]"#,
    ),
    (
        r#"[[:digit:][:punct:]]+"#,
        r#"1.2-3"#,
        r#"[]"#,
        r#"["", [], ""]"#,
    ),
    (
        r#"(a{0,2}){2}"#,
        r#"aaa"#,
        r#"["a"]"#,
        r#"["", ["a"], "", [""], ""]"#,
    ),
    (
        r#"(a*){2,}"#,
        r#"aa"#,
        r#"[""]"#,
        r#"["", [""], "", [""], ""]"#,
    ),
    (
        r#"(a*)+"#,
        r#"aa"#,
        r#"[""]"#,
        r#"["", [""], "", [""], ""]"#,
    ),
    (
        r#"(|a)+"#,
        r#"aa"#,
        r#"[""]"#,
        r#"["", [""], "", [""], ""]"#,
    ),
    (
        r#"(a|)+"#,
        r#"aa"#,
        r#"[""]"#,
        r#"["", [""], "", [""], ""]"#,
    ),
    (
        "(\\.|-)",
        "1.2-3.4",
        r#"null"#,
        r#"["1", ["."], "2", ["-"], "3", ["."], "4"]"#,
    ),
    (
        "[.-]",
        "gcc-12.2.0",
        r#"null"#,
        r#"["gcc", [], "12", [], "2", [], "0"]"#,
    ),
    (
        "([^=]+)=(.*)",
        "NIX_CFLAGS=-O2 -g",
        r#"["NIX_CFLAGS", "-O2 -g"]"#,
        r#"["", ["NIX_CFLAGS", "-O2 -g"], ""]"#,
    ),
    (
        "[[:space:]]*(-?[[:digit:]]+)[[:space:]]*",
        " -42 ",
        r#"["-42"]"#,
        r#"["", ["-42"], ""]"#,
    ),
    (
        "[[:alnum:],._+:@%/-]+",
        "foo/bar-1.0_x+y:z@%",
        r#"[]"#,
        r#"["", [], ""]"#,
    ),
    (
        "(.*)/([^/]*)",
        "/nix/store/abc-foo/bin/foo",
        r#"["/nix/store/abc-foo/bin", "foo"]"#,
        r#"["", ["/nix/store/abc-foo/bin", "foo"], ""]"#,
    ),
    (
        "([^/]*)/?",
        "a/b//c",
        r#"null"#,
        r#"["", ["a"], "", ["b"], "", [""], "", ["c"], "", [""], ""]"#,
    ),
    (
        "\n",
        "line1\nline2\n\nline4",
        r#"null"#,
        r#"["line1", [], "line2", [], "", [], "line4"]"#,
    ),
    (
        "(@[a-zA-Z_]+@)",
        "foo @out@ bar @name_1@",
        r#"null"#,
        r#"["foo ", ["@out@"], " bar @name_1@"]"#,
    ),
    (
        "([0-9]+)|([a-z]+)",
        "ab12cd3",
        r#"null"#,
        r#"["", [null, "ab"], "", ["12", null], "", [null, "cd"], "", ["3", null], ""]"#,
    ),
    (
        "v?([0-9]+)(\\.([0-9]+))*",
        "v1.22.333",
        r#"["1", ".333", "333"]"#,
        r#"["", ["1", ".333", "333"], ""]"#,
    ),
    (
        "(([^.]*)\\.)*([^.]*)",
        "a.b.c",
        r#"["b.", "b", "c"]"#,
        r#"["", ["b.", "b", "c"], "", [null, null, ""], ""]"#,
    ),
    (
        "(x|y)*z|(x|y)*",
        "xyxy",
        r#"[null, "y"]"#,
        r#"["", [null, "y"], "", [null, null], ""]"#,
    ),
    (
        "[^[:space:]]+",
        "  a bb  ccc ",
        r#"null"#,
        r#"["  ", [], " ", [], "  ", [], " "]"#,
    ),
    (
        "([a-z]+)(-([0-9]+))?",
        "abc-12 def",
        r#"null"#,
        r#"["", ["abc", "-12", "12"], " ", ["def", null, null], ""]"#,
    ),
    (
        "(a|b)*?",
        "ab",
        r#"["b"]"#,
        r#"["", ["b"], "", [null], ""]"#,
    ),
];

/// Patterns Nix 2.8 rejects as invalid regular expressions.
const NIX_ERRORS: &[&str] = &[
    r"\n",
    r"\-",
    r"\/",
    r"\]",
    r"\}",
    "a{,2}",
    "(",
    ")",
    "[a",
    "*a",
    "^*",
    "$+",
    "a{2,1}",
    "[[:foo:]]",
    "[a-c-e]",
    "[z-a]",
    "\\",
    "a|*b",
    "(*a)",
    "a{2",
    "a{x}",
    "[]",
    "[[.zero.]",
    "[[:alpha:",
    "a{1,2,3}",
    "[[.0.]]",
    "[[.-.]]",
    "+",
    "?",
    "{1}",
    "[[:alpha:]-z]",
    "[a-[:alpha:]]",
    "[[.a.]-[.c.]]",
    "[a-[.c.]]",
    "[a--]",
    "a{ 1}",
    "a{1 }",
    "{",
    "a{}",
    "a{,}",
    "[[=a=]-z]",
    "[[:alpha]]",
    "[[:alpha:]",
    "a\\",
];

/// Edge-case patterns Nix 2.8 accepts, with whether they match "".
const NIX_VALID: &[(&str, bool)] = &[
    ("[a-a]", false),
    ("[]-a]", false),
    ("[^-]", false),
    ("[[]", false),
    ("[a[]", false),
    ("[[.a.]-c]", false),
    ("[--]", false),
    ("[---]", false),
    ("[!--]", false),
    ("[-a-]", false),
    ("[]]", false),
    ("[]-]", false),
    ("[a-z-]", false),
    ("a{0,0}", true),
    ("a{00}", true),
    ("a{01,02}", false),
    ("()*", true),
    ("(|)", true),
    ("(()|)+", true),
    ("a||b", true),
    ("|", true),
    ("^^", true),
    ("$$", true),
    ("^$", true),
    ("a^", false),
    ("$a", false),
    ("x(^a|b)", false),
    ("[[:digit:]-]", false),
    ("[[.space.]]", false),
    ("[[=hyphen=]]", false),
    ("[\\]", false),
    ("\\(", false),
    ("\\{1}", false),
    ("a+*", true),
    ("a?+", true),
    ("a*?", true),
    ("a{2}*", true),
];

fn groups_json(input: &[u8], spans: &[Option<(usize, usize)>]) -> Value {
    Value::Array(
        spans[1..]
            .iter()
            .map(|s| match s {
                Some((a, b)) => Value::String(String::from_utf8_lossy(&input[*a..*b]).into_owned()),
                None => Value::Null,
            })
            .collect(),
    )
}

fn match_json(re: &Regex, input: &[u8]) -> Value {
    match re.full_match(input) {
        Some(spans) => {
            assert_eq!(spans[0], Some((0, input.len())));
            groups_json(input, &spans)
        }
        None => Value::Null,
    }
}

fn split_json(re: &Regex, input: &[u8]) -> Value {
    let mut out = Vec::new();
    let mut prev = 0;
    for spans in re.split_matches(input) {
        let (s, e) = spans[0].expect("whole match participates");
        out.push(Value::String(
            String::from_utf8_lossy(&input[prev..s]).into_owned(),
        ));
        out.push(groups_json(input, &spans));
        prev = e;
    }
    out.push(Value::String(
        String::from_utf8_lossy(&input[prev..]).into_owned(),
    ));
    Value::Array(out)
}

#[test]
fn agrees_with_nix_table() {
    for (pattern, input, want_match, want_split) in NIX_CASES {
        let re = Regex::new(pattern.as_bytes()).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        let want_match: Value = serde_json::from_str(want_match).expect("valid JSON");
        let want_split: Value = serde_json::from_str(want_split).expect("valid JSON");
        assert_eq!(
            match_json(&re, input.as_bytes()),
            want_match,
            "match {pattern:?} {input:?}"
        );
        assert_eq!(
            split_json(&re, input.as_bytes()),
            want_split,
            "split {pattern:?} {input:?}"
        );
    }
}

#[test]
fn rejects_what_nix_rejects() {
    for pattern in NIX_ERRORS {
        assert!(
            Regex::new(pattern.as_bytes()).is_err(),
            "{pattern:?} should be rejected"
        );
    }
}

#[test]
fn accepts_what_nix_accepts() {
    for (pattern, matches_empty) in NIX_VALID {
        let re = Regex::new(pattern.as_bytes()).unwrap_or_else(|e| panic!("{pattern:?}: {e}"));
        assert_eq!(re.full_match(b"").is_some(), *matches_empty, "{pattern:?}");
    }
}

#[test]
fn error_messages() {
    let msg = |p: &str| Regex::new(p.as_bytes()).expect_err("invalid").to_string();
    assert!(msg("(a").contains("mismatched '(' and ')'"));
    assert!(msg("[a").contains("mismatched '[' and ']'"));
    assert!(msg("[[:nope:]]").contains("invalid character class"));
    assert!(msg("[b-a]").contains("invalid character range"));
    assert!(msg(r"\q").contains("invalid escape"));
    assert!(matches!(
        Regex::new(b"a{1001}"),
        Err(RegexError::RepeatTooLarge)
    ));
    assert!(matches!(
        Regex::new(b"((a{1000}){1000}){1000}"),
        Err(RegexError::TooLarge)
    ));
    assert!(matches!(
        Regex::new(&[b'('; 10_000]),
        Err(RegexError::TooDeep)
    ));
}

#[test]
fn group_count_and_search_offsets() {
    let re = Regex::new(b"(a)(b(c))?|(d)").expect("valid");
    assert_eq!(re.group_count(), 4);
    let m = re.search(b"xxabcd", 1).expect("match");
    assert_eq!(
        m,
        vec![Some((2, 5)), Some((2, 3)), Some((3, 5)), Some((4, 5)), None]
    );
    let m = re.search(b"xxabcd", 3).expect("match");
    assert_eq!(m, vec![Some((5, 6)), None, None, None, Some((5, 6))]);
    assert_eq!(re.search(b"xxabcd", 7), None);
    // `^` only matches at the start of the input, `$` at its end.
    let re = Regex::new(b"^a|b$").expect("valid");
    assert_eq!(re.search(b"aab", 1), Some(vec![Some((2, 3))]));
    assert_eq!(re.search(b"aa", 1), None);
}

#[test]
fn bytes_and_classes() {
    // Bytes above 0x7f belong to no class and compare as signed chars.
    let re = Regex::new(b"[^[:alpha:]]+").expect("valid");
    assert!(re.full_match(&[0xc3, 0xa9, b'1']).is_some());
    assert!(Regex::new(&[b'[', 0x01, b'-', 0xff, b']']).is_err());
    let re = Regex::new(&[b'[', 0x80, b'-', 0xff, b']', b'+']).expect("valid");
    assert!(re.full_match(&[0x80, 0xc3, 0xff]).is_some());
    assert!(re.full_match(b"a").is_none());
    // `.` matches newlines; backslash is literal inside brackets.
    assert!(
        Regex::new(b"a.b")
            .expect("valid")
            .full_match(b"a\nb")
            .is_some()
    );
    assert!(
        Regex::new(br"[\.]+")
            .expect("valid")
            .full_match(br"\.")
            .is_some()
    );
    assert!(
        Regex::new(b"[[=a=]][[.hyphen.]][[:W:]]")
            .expect("valid")
            .full_match(b"A-_")
            .is_some()
    );
}

#[test]
fn large_inputs_do_not_blow_up() {
    let big = vec![b'a'; 50_000];
    let re = Regex::new(b"(a*)*b").expect("valid");
    assert_eq!(re.full_match(&big), None);
    assert_eq!(re.search(&big, 0), None);
    let re = Regex::new(b"(.*)").expect("valid");
    assert_eq!(re.full_match(&big).expect("match")[1], Some((0, big.len())));
    let re = Regex::new(b"((a|aa)*)*c").expect("valid");
    assert_eq!(re.search(&big[..20_000], 0), None);
    let mut text = Vec::new();
    for i in 0..20_000 {
        text.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    let re = Regex::new(b"\n").expect("valid");
    assert_eq!(re.split_matches(&text).len(), 20_000);
    let re = Regex::new(b"([0-9]+)\n").expect("valid");
    assert_eq!(re.split_matches(&text).len(), 20_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(
        pattern in proptest::collection::vec(any::<u8>(), 0..24),
        input in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        if let Ok(re) = Regex::new(&pattern) {
            let _ = re.full_match(&input);
            let _ = re.search(&input, 0);
            let _ = re.search(&input, input.len() / 2);
            let _ = re.split_matches(&input);
        }
    }

    #[test]
    fn never_panics_on_regex_like_patterns(
        pattern in "[ab.()|*+?{}0-9,^$\\[\\]:=-]{0,20}",
        input in "[ab]{0,12}",
    ) {
        if let Ok(re) = Regex::new(pattern.as_bytes()) {
            let n = re.group_count();
            for spans in [re.full_match(input.as_bytes()), re.search(input.as_bytes(), 0)]
                .into_iter()
                .flatten()
            {
                prop_assert_eq!(spans.len(), n + 1);
                for (a, b) in spans.into_iter().flatten() {
                    prop_assert!(a <= b && b <= input.len());
                }
            }
            let _ = re.split_matches(input.as_bytes());
        }
    }

    #[test]
    fn full_match_implies_search_at_zero(
        pattern in "[ab.()|*+?^$]{0,12}",
        input in "[ab]{0,10}",
    ) {
        if let Ok(re) = Regex::new(pattern.as_bytes())
            && re.full_match(input.as_bytes()).is_some()
        {
            let found = re.search(input.as_bytes(), 0);
            prop_assert!(matches!(found, Some(ref s) if matches!(s[0], Some((0, _)))));
        }
    }
}

#[test]
fn utf8_input_is_bytes_like_nix() {
    // Nix 2.8: match "[^a]+" "é" => [ ]; match "(.)(.)" "é" => two halves;
    // match "[à-é]+" "éàè" => [ ]; match "[[:alpha:]]+" "é" => null;
    // "[a-é]" is invalid; split "é" "aébéc" => [ "a" [ ] "b" [ ] "c" ].
    let re = |p: &str| Regex::new(p.as_bytes());
    assert!(
        re("[^a]+")
            .expect("valid")
            .full_match("é".as_bytes())
            .is_some()
    );
    assert_eq!(
        re("(.)(.)").expect("valid").full_match("é".as_bytes()),
        Some(vec![Some((0, 2)), Some((0, 1)), Some((1, 2))])
    );
    assert!(
        re("[à-é]+")
            .expect("valid")
            .full_match("éàè".as_bytes())
            .is_some()
    );
    assert!(
        re("[[:alpha:]]+")
            .expect("valid")
            .full_match("é".as_bytes())
            .is_none()
    );
    assert!(re("[a-é]").is_err());
    let split = re("é").expect("valid");
    assert_eq!(
        split_json(&split, "aébéc".as_bytes()),
        serde_json::json!(["a", [], "b", [], "c"])
    );
}

#[test]
fn deep_nesting_is_bounded() {
    let p = format!("{}a{}", "(".repeat(150), ")**".repeat(150));
    let re = Regex::new(p.as_bytes()).expect("within the nesting limit");
    assert!(re.full_match(b"aaaa").is_some());
    let p = format!("{}a{}", "(|".repeat(150), ")".repeat(150));
    assert!(
        Regex::new(p.as_bytes())
            .expect("valid")
            .full_match(b"a")
            .is_some()
    );
    let p = format!("{}a{}", "(".repeat(300), ")".repeat(300));
    assert!(matches!(Regex::new(p.as_bytes()), Err(RegexError::TooDeep)));
}
