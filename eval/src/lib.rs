//! cairn-eval: the Nix language evaluator.
//!
//! Source text is parsed with rnix and lowered once into a compact IR
//! ([`ir`]) with statically resolved variables; [`eval::Eval`] evaluates it
//! lazily. Strings are byte strings (see [`source`] for how non-UTF-8
//! input is handled). Filesystem and store access go through
//! [`io::EvalIo`].

pub mod builtins;
pub mod cli;
pub mod derivation;
pub mod error;
pub mod eval;
pub mod io;
pub mod ir;
pub mod lower;
pub mod ops;
pub mod parse_print;
pub mod pos;
pub mod posix_regex;
pub mod print;
pub mod rc_slice;
pub mod source;
pub mod store;
pub mod symbol;
pub mod value;

use error::Result;
use eval::Eval;
use ir::Expr;
use pos::Pos;
use std::rc::Rc;
use value::{Attrs, Value};

/// Parses and lowers source bytes; the IR lives for the rest of the process.
pub fn parse_and_lower(
    ev: &Eval,
    src: &[u8],
    name: &str,
    base_dir: &[u8],
) -> Result<&'static Expr> {
    parse_scoped(ev, src, name, base_dir, false)
}

fn parse_scoped(
    ev: &Eval,
    src: &[u8],
    name: &str,
    base_dir: &[u8],
    scoped: bool,
) -> Result<&'static Expr> {
    let text = source::decode(src);
    let file = pos::add_file(name.to_string(), Rc::from(text.as_str()));
    let opts = lower::LowerOpts {
        base_dir: base_dir.to_vec(),
        home: ev.opts.home.clone(),
        scoped,
        lints: ev.lints,
    };
    let e = lower::parse(&text, file, &ev.global_names, &opts)?;
    Ok(Box::leak(Box::new(e)))
}

/// The internal path `<nix/fetchurl.nix>` resolves to.
pub const COREPKGS_FETCHURL: &str = "/__corepkgs__/fetchurl.nix";

const FETCHURL_NIX: &str = r#"{ system ? "", url ? null, urls ? null, hash ? "", sha256 ? "", sha1 ? "", sha512 ? "",
  outputHash ? "", outputHashAlgo ? "", executable ? false, unpack ? false,
  name ? baseNameOf (toString (if url != null then url else builtins.head urls)),
  impure ? false, ... }:
throw "fetchurl is not supported by this evaluator"
"#;

fn dir_of(path: &[u8]) -> Vec<u8> {
    match path.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/".to_vec(),
        Some(i) => path[..i].to_vec(),
        None => b".".to_vec(),
    }
}

impl Eval {
    fn resolve_import(&mut self, path: &[u8]) -> Vec<u8> {
        let mut path = path.to_vec();
        if path.starts_with(b"/__corepkgs__/") {
            return path;
        }
        if self.io.file_type(&path).ok() == Some(io::FileType::Directory)
            || (self.io.file_type(&path).ok() == Some(io::FileType::Symlink)
                && std::path::Path::new(std::ffi::OsStr::new(
                    &String::from_utf8_lossy(&path).to_string(),
                ))
                .is_dir())
        {
            path.extend_from_slice(b"/default.nix");
        }
        path
    }

    /// Parses a file (cached).
    pub fn parse_file(&mut self, path: &[u8], pos: Pos) -> Result<&'static Expr> {
        let path = self.resolve_import(path);
        if let Some(e) = self.file_cache.get(&path) {
            return Ok(e);
        }
        let src = if path == COREPKGS_FETCHURL.as_bytes() {
            FETCHURL_NIX.as_bytes().to_vec()
        } else {
            self.io
                .read_file(&path)
                .map_err(|m| error::Error::new(error::ErrorKind::Eval, m, pos))?
        };
        let e = parse_and_lower(self, &src, &String::from_utf8_lossy(&path), &dir_of(&path))?;
        self.file_cache.insert(path, e);
        Ok(e)
    }

    /// `import path`.
    pub fn import_path(&mut self, path: &[u8], pos: Pos) -> Result<Value> {
        let key = self.resolve_import(path);
        if let Some(v) = self.import_cache.get(&key) {
            let v = v.clone();
            return self.force(&v);
        }
        let e = self.parse_file(&key, pos)?;
        let g = self.global.clone();
        let v = self.eval(e, &g)?;
        self.import_cache.insert(key, v.clone());
        Ok(v)
    }

    /// `scopedImport scope path`.
    pub fn scoped_import(&mut self, scope: Attrs, path: &[u8], pos: Pos) -> Result<Value> {
        let path = self.resolve_import(path);
        let src = self
            .io
            .read_file(&path)
            .map_err(|m| error::Error::new(error::ErrorKind::Eval, m, pos))?;
        let e = parse_scoped(
            self,
            &src,
            &String::from_utf8_lossy(&path),
            &dir_of(&path),
            true,
        )?;
        let env = Rc::new(value::Env {
            up: Some(self.global.clone()),
            vals: std::cell::RefCell::new(smallvec::smallvec![Value::Attrs(scope)]),
        });
        self.eval(e, &env)
    }
}

/// Parses and evaluates `src` deeply under tight limits (a step limit, a
/// small call depth, no filesystem writes), for fuzzing. Returns the
/// printed value or the error message.
pub fn fuzz_eval(src: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let src = src.to_vec();
    let h = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let opts = eval::Options {
                max_call_depth: 300,
                max_steps: 200_000,
                home: None,
                ..Default::default()
            };
            let mut ev = Eval::new(Box::new(io::NoIo), opts, 64 << 20);
            let run = |ev: &mut Eval| -> Result<Vec<u8>> {
                let e = parse_and_lower(ev, &src, "«fuzz»", b"/fuzz")?;
                let g = ev.global.clone();
                let v = ev.eval(e, &g)?;
                ev.deep_force(&v, Pos::NONE)?;
                print::print_value(ev, &v, true)
            };
            run(&mut ev).map_err(|e| e.render(false))
        });
    match h.map(|h| h.join()) {
        Ok(Ok(r)) => r,
        _ => Err("evaluator panicked".to_string()),
    }
}
