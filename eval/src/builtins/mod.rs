//! The builtins: registration of `builtins.*` and the global names, plus
//! the type predicates, arithmetic and control builtins. The remaining
//! groups live in submodules.

mod attrs;
mod context;
mod convert;
pub use convert::{XmlStyle, to_json_bytes, xml_document};
pub use hash::parse_hash;
mod files;
mod hash;
mod lists;
mod strings;

use crate::error::{Error, ErrorKind, Result, err};
use crate::eval::Eval;
use crate::ir::BinOp;
use crate::ops::arith;
use crate::pos::Pos;
use crate::symbol::sym;
use crate::value::*;

macro_rules! prim {
    ($name:expr, $arity:expr, $f:expr) => {
        PrimOp {
            name: $name,
            arity: $arity,
            f: $f,
        }
    };
}

/// Every builtin function.
static PRIMOPS: &[PrimOp] = &[
    prim!("abort", 1, abort),
    prim!("throw", 1, throw),
    prim!("add", 2, |ev, a, p| num2(ev, BinOp::Add, a, p)),
    prim!("sub", 2, |ev, a, p| num2(ev, BinOp::Sub, a, p)),
    prim!("mul", 2, |ev, a, p| num2(ev, BinOp::Mul, a, p)),
    prim!("div", 2, |ev, a, p| num2(ev, BinOp::Div, a, p)),
    prim!("lessThan", 2, |ev, a, p| {
        let (x, y) = (ev.force(&a[0])?, ev.force(&a[1])?);
        Ok(Value::Bool(
            ev.compare(&x, &y, p)? == std::cmp::Ordering::Less,
        ))
    }),
    prim!("bitAnd", 2, |ev, a, p| Ok(Value::Int(
        ev.force_int(&a[0], p)? & ev.force_int(&a[1], p)?
    ))),
    prim!("bitOr", 2, |ev, a, p| Ok(Value::Int(
        ev.force_int(&a[0], p)? | ev.force_int(&a[1], p)?
    ))),
    prim!("bitXor", 2, |ev, a, p| Ok(Value::Int(
        ev.force_int(&a[0], p)? ^ ev.force_int(&a[1], p)?
    ))),
    prim!("ceil", 1, |ev, a, p| round(ev, a, p, f64::ceil)),
    prim!("floor", 1, |ev, a, p| round(ev, a, p, f64::floor)),
    prim!("isAttrs", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::Attrs(_)
    )))),
    prim!("isBool", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::Bool(_)
    )))),
    prim!("isFloat", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::Float(_)
    )))),
    prim!("isFunction", 1, |ev, a, _| Ok(Value::Bool(
        ev.force(&a[0])?.is_function()
    ))),
    prim!("isInt", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::Int(_)
    )))),
    prim!("isList", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::List(_)
    )))),
    prim!("isNull", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::Null
    )))),
    prim!("isPath", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::Path(_)
    )))),
    prim!("isString", 1, |ev, a, _| Ok(Value::Bool(matches!(
        ev.force(&a[0])?,
        Value::Str(_)
    )))),
    prim!("typeOf", 1, |ev, a, _| Ok(Value::str(
        ev.force(&a[0])?.type_name().as_bytes()
    ))),
    prim!("seq", 2, |ev, a, _| {
        ev.force(&a[0])?;
        ev.force(&a[1])
    }),
    prim!("deepSeq", 2, |ev, a, p| {
        ev.deep_force(&a[0], p)?;
        ev.force(&a[1])
    }),
    prim!("trace", 2, trace),
    prim!("warn", 2, warn),
    prim!("break", 1, |ev, a, _| ev.force(&a[0])),
    prim!("addErrorContext", 2, |ev, a, _| ev.force(&a[1])),
    prim!("tryEval", 1, try_eval),
    prim!("functionArgs", 1, attrs::function_args),
    prim!("attrNames", 1, attrs::attr_names),
    prim!("attrValues", 1, attrs::attr_values),
    prim!("catAttrs", 2, attrs::cat_attrs),
    prim!("getAttr", 2, attrs::get_attr),
    prim!("hasAttr", 2, attrs::has_attr),
    prim!("intersectAttrs", 2, attrs::intersect_attrs),
    prim!("listToAttrs", 1, attrs::list_to_attrs),
    prim!("mapAttrs", 2, attrs::map_attrs),
    prim!("removeAttrs", 2, attrs::remove_attrs),
    prim!("zipAttrsWith", 2, attrs::zip_attrs_with),
    prim!("unsafeGetAttrPos", 2, attrs::unsafe_get_attr_pos),
    prim!("groupBy", 2, attrs::group_by),
    prim!("all", 2, lists::all),
    prim!("any", 2, lists::any),
    prim!("concatLists", 1, lists::concat_lists),
    prim!("concatMap", 2, lists::concat_map),
    prim!("elem", 2, lists::elem),
    prim!("elemAt", 2, lists::elem_at),
    prim!("filter", 2, lists::filter),
    prim!("foldl'", 3, lists::foldl),
    prim!("genList", 2, lists::gen_list),
    prim!("head", 1, lists::head),
    prim!("tail", 1, lists::tail),
    prim!("length", 1, lists::length),
    prim!("map", 2, lists::map),
    prim!("partition", 2, lists::partition),
    prim!("sort", 2, lists::sort),
    prim!("genericClosure", 1, lists::generic_closure),
    prim!("toString", 1, strings::to_string),
    prim!("baseNameOf", 1, strings::base_name_of),
    prim!("dirOf", 1, strings::dir_of),
    prim!("stringLength", 1, strings::string_length),
    prim!("substring", 3, strings::substring),
    prim!("concatStringsSep", 2, strings::concat_strings_sep),
    prim!("replaceStrings", 3, strings::replace_strings),
    prim!("match", 2, strings::match_),
    prim!("split", 2, strings::split),
    prim!("splitVersion", 1, strings::split_version),
    prim!("compareVersions", 2, strings::compare_versions),
    prim!("parseDrvName", 1, strings::parse_drv_name),
    prim!("hashString", 2, hash::hash_string),
    prim!("hashFile", 2, hash::hash_file),
    prim!("convertHash", 1, hash::convert_hash),
    prim!("getContext", 1, context::get_context),
    prim!("hasContext", 1, context::has_context),
    prim!("appendContext", 2, context::append_context),
    prim!("unsafeDiscardStringContext", 1, context::discard_context),
    prim!(
        "unsafeDiscardOutputDependency",
        1,
        context::discard_output_dep
    ),
    prim!("addDrvOutputDependencies", 1, context::add_drv_output_deps),
    prim!("fromJSON", 1, convert::from_json),
    prim!("toJSON", 1, convert::to_json),
    prim!("fromTOML", 1, convert::from_toml),
    prim!("toXML", 1, convert::to_xml),
    prim!("flakeRefToString", 1, convert::flake_ref_to_string),
    prim!("parseFlakeRef", 1, convert::parse_flake_ref),
    prim!("import", 1, files::import),
    prim!("scopedImport", 2, files::scoped_import),
    prim!("readFile", 1, files::read_file),
    prim!("readDir", 1, files::read_dir),
    prim!("readFileType", 1, files::read_file_type),
    prim!("pathExists", 1, files::path_exists),
    prim!("toPath", 1, files::to_path),
    prim!("findFile", 2, files::find_file),
    prim!("getEnv", 1, files::get_env),
    prim!("path", 1, files::path),
    prim!("filterSource", 2, files::filter_source),
    prim!("toFile", 2, files::to_file),
    prim!("storePath", 1, files::store_path),
    prim!("placeholder", 1, files::placeholder),
    prim!("derivationStrict", 1, files::derivation_strict),
    prim!("fetchGit", 1, files::fetch_git),
    prim!("fetchMercurial", 1, files::fetch_mercurial),
    prim!("fetchTarball", 1, files::fetch_tarball),
    prim!("fetchTree", 1, files::fetch_tree),
    prim!("fetchurl", 1, files::fetchurl),
];

/// The `getAttr` builtin (used for `inherit (expr) name`).
pub fn get_attr_op() -> &'static PrimOp {
    PRIMOPS
        .iter()
        .find(|p| p.name == "getAttr")
        .unwrap_or(&PRIMOPS[0])
}

/// Names available without the `__` prefix.
const GLOBALS: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "derivation",
    "derivationStrict",
    "dirOf",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
];

/// The `derivation` function, written in Nix as in Nix itself.
/// The `derivation` builtin, written in Nix. Its lines and columns are
/// laid out as in Nix 2.8's own `//builtin/derivation.nix`, so positions
/// that point into it (`--xml` output, traces) read the same.
const DERIVATION_NIX: &str = r#"
/* The `derivation` builtin: calls `derivationStrict` and gives every
   output an attribute set of its own that shares the others. */

drvAttrs @ { outputs ? [ "out" ], ... }:

let

  strict = derivationStrict drvAttrs;

  commonAttrs = drvAttrs // (builtins.listToAttrs outputsList) //
    { all = map (x: x.value) outputsList;
      inherit drvAttrs;
    };

  outputToAttrListElement = outputName:
    { name = outputName;
      value = commonAttrs // {
        outPath = builtins.getAttr outputName strict;
        drvPath = strict.drvPath;
        type = "derivation";
        inherit outputName;
      };
    };

  outputsList = map outputToAttrListElement outputs;

in (builtins.head outputsList).value
"#;

/// Installs the builtins and the global environment frame.
pub fn install(ev: &mut Eval) {
    let mut entries: Vec<(crate::symbol::Sym, Value, Pos)> = Vec::new();
    for op in PRIMOPS {
        entries.push((sym(op.name), Value::PrimOp(op), Pos::NONE));
    }
    let self_ref = ThunkRef::new(ThunkState::Blackhole);
    let store_dir = ev.io.store_dir();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut nix_path = Vec::new();
    for (prefix, path) in &ev.opts.search_path {
        nix_path.push(Value::attrs(Attrs::from_unsorted(vec![
            (sym("path"), Value::str(path.as_bytes()), Pos::NONE),
            (sym("prefix"), Value::str(prefix.as_bytes()), Pos::NONE),
        ])));
    }
    let consts: Vec<(&str, Value)> = vec![
        ("builtins", Value::Thunk(self_ref.clone())),
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("null", Value::Null),
        ("currentSystem", Value::str(&b"x86_64-linux"[..])),
        ("currentTime", Value::Int(now)),
        ("langVersion", Value::Int(6)),
        ("nixVersion", Value::str(&b"2.8.0"[..])),
        ("storeDir", Value::str(store_dir.into_bytes())),
        ("nixPath", Value::list(nix_path)),
    ];
    for (n, v) in consts {
        entries.push((sym(n), v, Pos::NONE));
    }
    // `derivation` is a placeholder until the Nix-level wrapper is built.
    let drv_slot = ThunkRef::new(ThunkState::Blackhole);
    entries.push((sym("derivation"), Value::Thunk(drv_slot.clone()), Pos::NONE));
    let battrs = Attrs::from_unsorted(entries);
    self_ref
        .0
        .set(ThunkState::Done(Value::Attrs(battrs.clone())));

    let mut names = std::collections::HashMap::new();
    let mut vals = Vec::new();
    for (name, v, _) in battrs.entries.iter() {
        let n = name.bytes();
        if matches!(n, b"builtins" | b"true" | b"false" | b"null")
            || GLOBALS.iter().any(|g| g.as_bytes() == n)
        {
            names.insert(*name, vals.len() as u32);
            vals.push(v.clone());
        }
        let mut pre = b"__".to_vec();
        pre.extend_from_slice(n);
        names.insert(crate::symbol::intern(&pre), vals.len() as u32);
        vals.push(v.clone());
    }
    names.insert(sym("__nixPath"), vals.len() as u32);
    vals.push(battrs.get(sym("nixPath")).cloned().unwrap_or(Value::Null));
    *ev.global.vals.borrow_mut() = EnvVals::from_vec(vals);
    ev.global_names = names;
    ev.builtins = Value::Attrs(battrs);

    // Build `derivation` from its Nix definition.
    let drv = crate::parse_and_lower(
        ev,
        DERIVATION_NIX.as_bytes(),
        "//builtin/derivation.nix",
        b"/",
    )
    .and_then(|e| {
        let g = ev.global.clone();
        ev.eval(e, &g)
    })
    .unwrap_or(Value::Null);
    drv_slot.0.set(ThunkState::Done(drv));
}

fn num2(ev: &mut Eval, op: BinOp, a: &[Value], p: Pos) -> Result<Value> {
    let what = match op {
        BinOp::Add => "addition",
        BinOp::Sub => "subtraction",
        BinOp::Mul => "multiplication",
        _ => "division",
    };
    let mut vals = [Value::Null, Value::Null];
    if op == BinOp::Div {
        let d = ev.force(&a[1])?;
        if matches!(d, Value::Int(0)) || matches!(d, Value::Float(f) if f == 0.0) {
            return err("division by zero", p);
        }
    }
    for (i, nth) in ["first", "second"].iter().enumerate() {
        let v = ev.force(&a[i])?;
        if !matches!(v, Value::Int(_) | Value::Float(_)) {
            let expected = if op == BinOp::Div && i == 1 {
                "a float"
            } else {
                "an integer"
            };
            let mut e = Error::new(
                ErrorKind::Eval,
                crate::error::type_msg(expected, &v),
                Pos::NONE,
            );
            let arg = if op == BinOp::Div {
                "operand"
            } else {
                "argument"
            };
            e.trace.push((
                format!("while evaluating the {nth} {arg} of the {what}"),
                Pos::NONE,
            ));
            return Err(e);
        }
        vals[i] = v;
    }
    arith(op, &vals[0], &vals[1], p)
}

fn round(ev: &mut Eval, a: &[Value], p: Pos, f: fn(f64) -> f64) -> Result<Value> {
    match ev.force(&a[0])? {
        Value::Int(i) => Ok(Value::Int(i)),
        Value::Float(x) => {
            let r = f(x);
            if (-9.223372036854776e18..9.223372036854776e18).contains(&r) {
                Ok(Value::Int(r as i64))
            } else {
                err(
                    format!(
                        "float {} cannot be converted to an integer",
                        crate::print::fmt_float(x)
                    ),
                    p,
                )
            }
        }
        v => {
            let mut e = Error::new(ErrorKind::Eval, crate::error::type_msg("a float", &v), p);
            let name = if f(0.5) == 1.0 { "ceil" } else { "floor" };
            e.trace.push((
                format!("while evaluating the first argument passed to builtins.{name}"),
                Pos::NONE,
            ));
            Err(e)
        }
    }
}

fn abort(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&a[0], &mut ctx, false, false, p)?;
    Err(Error::new(
        ErrorKind::Abort,
        format!(
            "evaluation aborted with the following error message: '{}'",
            String::from_utf8_lossy(&s)
        ),
        p,
    ))
}

fn throw(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&a[0], &mut ctx, false, false, p)?;
    Err(Error::new(
        ErrorKind::Throw,
        String::from_utf8_lossy(&s).into_owned(),
        p,
    ))
}

fn trace(ev: &mut Eval, a: &[Value], _p: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let text = match &v {
        Value::Str(s) => s.bytes.to_vec(),
        _ => crate::print::print_value(ev, &v, false)?,
    };
    eprintln!("trace: {}", String::from_utf8_lossy(&text));
    ev.force(&a[1])
}

fn warn(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let s = ev.force_str(&a[0], p)?;
    let msg = s.lossy();
    if msg.starts_with('\n') {
        eprintln!("evaluation warning:{msg}");
    } else {
        eprintln!(
            "evaluation warning: {}",
            msg.replace('\n', "\n                    ")
        );
    }
    ev.force(&a[1])
}

fn try_eval(ev: &mut Eval, a: &[Value], _p: Pos) -> Result<Value> {
    let depth = ev.depth;
    let (ok, v) = match ev.force(&a[0]) {
        Ok(v) => (true, v),
        Err(e) if matches!(e.kind, ErrorKind::Throw | ErrorKind::Assert) => {
            ev.depth = depth;
            (false, Value::Bool(false))
        }
        Err(e) => return Err(e),
    };
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        (ev.s.success, Value::Bool(ok), Pos::NONE),
        (ev.s.value, v, Pos::NONE),
    ])))
}
