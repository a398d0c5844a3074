//! The `cairn eval` command, modelled on `nix-instantiate --eval`.

use crate::error::{Error, Result};
use crate::eval::{Eval, Options};
use crate::io::RealIo;
use crate::pos::Pos;
use crate::symbol::{intern, sym};
use crate::value::{Attrs, Context, Value};
use std::io::{Read, Write};
use std::process::ExitCode;

/// Arguments of `cairn eval`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EvalArgs {
    /// Files to evaluate (or expressions with -E); `-` reads stdin.
    pub files: Vec<String>,
    /// Treat the arguments as expressions.
    #[arg(short = 'E', long = "expr")]
    pub expr: bool,
    /// Accepted for compatibility with nix-instantiate (always on).
    #[arg(long = "eval")]
    pub eval: bool,
    /// Parse only and print the expression.
    #[arg(long)]
    pub parse: bool,
    /// Evaluate the result deeply.
    #[arg(long)]
    pub strict: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the result as XML.
    #[arg(long)]
    pub xml: bool,
    /// Omit source locations from XML output.
    #[arg(long = "no-location")]
    pub no_location: bool,
    /// Print the evaluation trace on errors.
    #[arg(long = "show-trace")]
    pub show_trace: bool,
    /// Do not print the evaluation trace on errors.
    #[arg(long = "no-show-trace")]
    pub no_show_trace: bool,
    /// Pass NAME=EXPR to the top-level function.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"], action = clap::ArgAction::Append)]
    pub arg: Vec<String>,
    /// Pass NAME="STR" to the top-level function.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STR"], action = clap::ArgAction::Append)]
    pub argstr: Vec<String>,
    /// Add a search path entry (`PATH` or `PREFIX=PATH`).
    #[arg(short = 'I', long = "include")]
    pub include: Vec<String>,
    /// Select an attribute path from the result.
    #[arg(short = 'A', long = "attr")]
    pub attr: Vec<String>,
    /// Maximum function call depth.
    #[arg(long = "max-call-depth")]
    pub max_call_depth: Option<usize>,
    /// Accepted for compatibility.
    #[arg(long)]
    pub impure: bool,
    /// Experimental features to enable (e.g. parse-toml-timestamps).
    #[arg(long = "extra-experimental-features")]
    pub extra_experimental_features: Vec<String>,
    /// Experimental features to enable.
    #[arg(long = "experimental-features")]
    pub experimental_features: Vec<String>,
    /// Lint for URL literals: ignore, warn or fatal.
    #[arg(long = "lint-url-literals")]
    pub lint_url_literals: Option<String>,
    /// Lint for short path literals (`a/b`): ignore, warn or fatal.
    #[arg(long = "lint-short-path-literals")]
    pub lint_short_path_literals: Option<String>,
    /// Lint for absolute path literals: ignore, warn or fatal.
    #[arg(long = "lint-absolute-path-literals")]
    pub lint_absolute_path_literals: Option<String>,
}

/// Runs `cairn eval` on a thread with a large stack.
pub fn run(args: EvalArgs) -> ExitCode {
    const STACK: usize = 1 << 30;
    let h = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || run_inner(args, STACK));
    match h.map(|h| h.join()) {
        Ok(Ok(code)) => ExitCode::from(code),
        _ => {
            eprintln!("error: internal evaluator failure");
            ExitCode::from(1)
        }
    }
}

fn cwd() -> Vec<u8> {
    std::env::current_dir()
        .map(|d| d.into_os_string().into_encoded_bytes())
        .unwrap_or_else(|_| b"/".to_vec())
}

fn absolute(p: &str) -> Vec<u8> {
    if p.starts_with('/') {
        return crate::lower::canon_path(p.as_bytes());
    }
    let mut c = cwd();
    c.push(b'/');
    c.extend_from_slice(p.as_bytes());
    crate::lower::canon_path(&c)
}

fn search_path(args: &EvalArgs) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut entries: Vec<String> = args.include.clone();
    if let Ok(np) = std::env::var("NIX_PATH") {
        entries.extend(np.split(':').filter(|s| !s.is_empty()).map(str::to_string));
    }
    for e in entries {
        let (prefix, path) = match e.split_once('=') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (String::new(), e.clone()),
        };
        let path = if path.contains("://") {
            path
        } else {
            String::from_utf8_lossy(&absolute(&path)).into_owned()
        };
        out.push((prefix, path));
    }
    out
}

/// Evaluates like `cairn eval` but returns the output (or the rendered
/// error) instead of printing it. Runs on its own large-stack thread.
pub fn eval_capture(args: EvalArgs) -> std::result::Result<Vec<u8>, String> {
    const STACK: usize = 256 << 20;
    let h = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let mut ev = make_eval(&args, STACK);
            let mut out = Vec::new();
            match run_eval(&mut ev, &args, &mut out) {
                Ok(()) => Ok(out),
                Err(e) => Err(e.render(args.show_trace)),
            }
        });
    match h.map(|h| h.join()) {
        Ok(Ok(r)) => r,
        _ => Err("internal evaluator failure".to_string()),
    }
}

fn make_eval(args: &EvalArgs, stack: usize) -> Eval {
    let show_trace = args.show_trace && !args.no_show_trace;
    let features: Vec<&str> = args
        .extra_experimental_features
        .iter()
        .chain(args.experimental_features.iter())
        .flat_map(|s| s.split_whitespace())
        .collect();
    let opts = Options {
        max_call_depth: args.max_call_depth.unwrap_or(10000),
        search_path: search_path(args),
        timestamps: features.contains(&"parse-toml-timestamps"),
        show_trace,
        // Without --strict, unevaluated parts print as `<CODE>`.
        eager: args.strict || args.json,
        ..Options::default()
    };
    let mut ev = Eval::new(Box::new(RealIo::default()), opts, stack);
    ev.lints = crate::eval::Lints::from_args(args);
    ev
}

fn run_inner(args: EvalArgs, stack: usize) -> u8 {
    let show_trace = args.show_trace && !args.no_show_trace;
    let mut ev = make_eval(&args, stack);
    let mut so = std::io::stdout().lock();
    match run_eval(&mut ev, &args, &mut so) {
        Ok(()) => 0,
        Err(e) => {
            let _ = so.flush();
            eprintln!("{}", e.render(show_trace));
            1
        }
    }
}

fn load_root(ev: &mut Eval, args: &EvalArgs) -> Result<Vec<(&'static crate::ir::Expr, Vec<u8>)>> {
    let mut out = Vec::new();
    let srcs: Vec<String> = if args.files.is_empty() {
        vec!["-".into()]
    } else {
        args.files.clone()
    };
    for f in srcs {
        if args.expr {
            let e = crate::parse_and_lower(ev, f.as_bytes(), "«string»", &cwd())?;
            out.push((e, cwd()));
        } else if f == "-" {
            let mut buf = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut buf);
            let e = crate::parse_and_lower(ev, &buf, "«stdin»", &cwd())?;
            out.push((e, cwd()));
        } else {
            let p = absolute(&f);
            let e = ev.parse_file(&p, Pos::NONE)?;
            out.push((e, p));
        }
    }
    Ok(out)
}

fn auto_args(ev: &mut Eval, args: &EvalArgs) -> Result<Vec<(crate::symbol::Sym, Value, Pos)>> {
    let mut v = Vec::new();
    for pair in args.arg.chunks(2) {
        if let [name, expr] = pair {
            let e = crate::parse_and_lower(ev, expr.as_bytes(), "«string»", &cwd())?;
            let g = ev.global.clone();
            v.push((intern(name.as_bytes()), ev.thunk(e, &g), Pos::NONE));
        }
    }
    for pair in args.argstr.chunks(2) {
        if let [name, s] = pair {
            v.push((intern(name.as_bytes()), Value::str(s.as_bytes()), Pos::NONE));
        }
    }
    Ok(v)
}

/// Calls a function whose formals can be filled from the auto arguments.
fn auto_call(ev: &mut Eval, v: Value, auto: &Attrs) -> Result<Value> {
    let v = ev.force(&v)?;
    match &v {
        Value::Lambda(c) if c.lam.formals.is_some() => {
            let formals = c
                .lam
                .formals
                .as_ref()
                .map(|f| f.iter().map(|f| f.name).collect::<Vec<_>>());
            let entries = if c.lam.ellipsis {
                auto.entries.clone()
            } else {
                let fs = formals.unwrap_or_default();
                auto.entries
                    .iter()
                    .filter(|e| fs.contains(&e.0))
                    .cloned()
                    .collect()
            };
            ev.call(v.clone(), Value::attrs(Attrs { entries }), Pos::NONE)
        }
        Value::Attrs(a) if a.get(sym("__functor")).is_some() => Ok(v.clone()),
        _ => Ok(v),
    }
}

fn run_eval(ev: &mut Eval, args: &EvalArgs, so: &mut dyn Write) -> Result<()> {
    if args.parse {
        let roots = load_root(ev, args)?;
        for (e, _) in roots {
            let _ = writeln!(so, "{}", crate::parse_print::show(e));
        }
        return Ok(());
    }
    let roots = load_root(ev, args)?;
    let auto = Attrs::from_unsorted(auto_args(ev, args)?);
    for (e, _) in roots {
        let g = ev.global.clone();
        let mut v = ev.eval(e, &g)?;
        v = auto_call(ev, v, &auto)?;
        for path in args.attr.iter().filter(|p| !p.is_empty()) {
            for comp in path.split('.') {
                let a = ev.force_attrs(&v, Pos::NONE)?;
                v = match a.get(intern(comp.as_bytes())) {
                    Some(x) => x.clone(),
                    None => {
                        return Err(Error::new(
                            crate::error::ErrorKind::Eval,
                            format!("attribute '{comp}' in selection path '{path}' not found"),
                            Pos::NONE,
                        ));
                    }
                };
                v = ev.force(&v)?;
            }
            v = auto_call(ev, v, &auto)?;
        }
        let bytes = if args.xml {
            if args.strict {
                ev.deep_force(&v, Pos::NONE)?;
            }
            let mut ctx = Context::new();
            let how = crate::builtins::XmlStyle {
                strict: args.strict,
                location: !args.no_location,
            };
            crate::builtins::xml_document(ev, &v, how, &mut ctx, Pos::NONE)?
        } else if args.json {
            let mut ctx = Context::new();
            let mut out = Vec::new();
            crate::builtins::to_json_bytes(ev, &v, &mut ctx, Pos::NONE, &mut out)?;
            out.push(b'\n');
            out
        } else {
            if args.strict {
                ev.deep_force(&v, Pos::NONE)?;
            }
            let mut out = crate::print::print_result(ev, &v, args.strict)?;
            out.push(b'\n');
            out
        };
        let _ = so.write_all(&bytes);
        let _ = so.flush();
    }
    Ok(())
}
