//! Builtins that touch files or the store, all going through `EvalIo`:
//! `import`, `readFile`, `readDir`, `findFile`, `toFile`, `path`, ...

use crate::error::{AddTrace, Error, ErrorKind, Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::symbol::{intern, sym};
use crate::value::*;
use std::rc::Rc;

fn ioerr(m: String, p: Pos) -> Box<Error> {
    Error::new(ErrorKind::Eval, m, p)
}

/// Coerces a value to an absolute filesystem path.
pub fn real_path(ev: &mut Eval, v: &Value, p: Pos) -> Result<Vec<u8>> {
    let v = ev.force(v)?;
    if let Value::Path(x) = &v {
        return Ok(x.to_vec());
    }
    let realising = || "while realising the context of a path".to_string();
    let mut ctx = Context::new();
    // Coercion errors get the frame; errors raised by the code being
    // evaluated (`throw`, `abort`, assertions) come through as they are.
    let s = ev
        .coerce_to_string(&v, &mut ctx, false, false, p)
        .map_err(|mut e| {
            if e.kind == ErrorKind::Eval && e.trace.len() < 64 {
                e.trace.push((realising(), Pos::NONE));
            }
            e
        })?;
    if !s.starts_with(b"/") {
        return err(
            format!(
                "string '{}' doesn't represent an absolute path",
                String::from_utf8_lossy(&s)
            ),
            p,
        )
        .trace(realising, Pos::NONE);
    }
    // A path into a derivation's output that is not there yet would have
    // to be built first (import from derivation).
    if let Some(drv) = ctx.iter().find_map(|c| {
        let c = c.strip_prefix(b"!")?;
        let at = c.iter().position(|&b| b == b'!')?;
        Some(c[at + 1..].to_vec())
    }) && !ev.io.path_exists(&s)
    {
        return err(
            format!(
                "cannot read '{}': it is an output of '{}', which has not been built, and the evaluator cannot build derivations",
                String::from_utf8_lossy(&s),
                String::from_utf8_lossy(&drv)
            ),
            p,
        );
    }
    Ok(s)
}

pub fn import(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let path = real_path(ev, &a[0], p)?;
    ev.import_path(&path, p)
}

pub fn scoped_import(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let scope = ev.force_attrs(&a[0], p)?;
    let path = real_path(ev, &a[1], p)?;
    ev.scoped_import(scope, &path, p)
}

pub fn read_file(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let path = real_path(ev, &a[0], p)?;
    let data = ev.io.read_file(&path).map_err(|m| ioerr(m, p))?;
    Ok(Value::str(data))
}

pub fn read_dir(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let path = real_path(ev, &a[0], p)?;
    let entries = ev.io.read_dir(&path).map_err(|m| ioerr(m, p))?;
    let mut v = Vec::new();
    for (name, t) in entries {
        v.push((intern(&name), Value::str(t.name().as_bytes()), Pos::NONE));
    }
    Ok(Value::attrs(Attrs::from_unsorted(v)))
}

pub fn read_file_type(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let path = real_path(ev, &a[0], p)?;
    let t = ev.io.file_type(&path).map_err(|m| ioerr(m, p))?;
    Ok(Value::str(t.name().as_bytes()))
}

/// `builtins.pathExists`: whether the (lexically normalised) path exists
/// without following a final symlink, so a dangling symlink exists. A
/// string ending in `/` or `/.` must name a directory, symlinks followed.
pub fn path_exists(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let v = ev.force(&a[0])?;
    let path = real_path(ev, &v, p)?;
    let must_be_dir = matches!(v, Value::Str(_)) && (path.ends_with(b"/") || path.ends_with(b"/."));
    let canon = crate::lower::canon_path(&path);
    let exists = if must_be_dir {
        ev.io.is_directory(&canon)
    } else {
        ev.io.file_type(&canon).is_ok()
    };
    Ok(Value::Bool(exists))
}

pub fn to_path(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&a[0], &mut ctx, false, false, p)?;
    if !s.starts_with(b"/") {
        return err(
            format!(
                "string '{}' doesn't represent an absolute path",
                String::from_utf8_lossy(&s)
            ),
            p,
        );
    }
    Ok(Value::str_ctx(crate::lower::canon_path(&s), ctx))
}

pub fn find_file(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let sp = ev.force_list(&a[0], p)?;
    let name = ev.force_str(&a[1], p)?.bytes.to_vec();
    if name == b"nix/fetchurl.nix" {
        return Ok(Value::Path(Rc::new(Vec::from(
            &b"/__corepkgs__/fetchurl.nix"[..],
        ))));
    }
    for e in sp.iter() {
        let e = ev.force_attrs(e, p)?;
        let prefix = match e.get(sym("prefix")).cloned() {
            Some(v) => ev.force_str(&v, p)?.bytes.to_vec(),
            None => Vec::new(),
        };
        let Some(path) = e.get(sym("path")).cloned() else {
            return err("attribute 'path' missing", p);
        };
        let mut ctx = Context::new();
        let path = ev.coerce_to_string(&path, &mut ctx, false, false, p)?;
        let rest: &[u8] = if prefix.is_empty() {
            &name
        } else if name == prefix {
            b""
        } else if name.starts_with(&prefix) && name.get(prefix.len()) == Some(&b'/') {
            &name[prefix.len() + 1..]
        } else {
            continue;
        };
        let mut cand = path.clone();
        if !rest.is_empty() {
            cand.push(b'/');
            cand.extend_from_slice(rest);
        }
        if !cand.starts_with(b"/") {
            let mut cwd = std::env::current_dir()
                .map(|d| d.into_os_string().into_encoded_bytes())
                .unwrap_or_default();
            cwd.push(b'/');
            cwd.extend_from_slice(&cand);
            cand = cwd;
        }
        let cand = crate::lower::canon_path(&cand);
        if ev.io.path_exists(&cand) {
            return Ok(Value::Path(Rc::new(cand)));
        }
    }
    Err(Error::new(
        ErrorKind::Throw,
        format!(
            "file '{}' was not found in the Nix search path (add it using $NIX_PATH or -I)",
            String::from_utf8_lossy(&name)
        ),
        p,
    ))
}

pub fn get_env(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let n = ev.force_str(&a[0], p)?;
    Ok(Value::str(ev.io.get_env(&n.bytes).unwrap_or_default()))
}

fn store_string(sp: Vec<u8>) -> Value {
    let mut ctx = Context::new();
    ctx.insert(sp.clone().into());
    Value::str_ctx(sp, ctx)
}

/// Adds a path to the store the way `builtins.path` does: optionally
/// filtered, recursive (NAR) or flat, under a given name.
fn add_path(
    ev: &mut Eval,
    path: &[u8],
    name: Option<String>,
    filter: Option<Value>,
    recursive: bool,
    p: Pos,
) -> Result<Value> {
    use sha2::Digest;
    use std::os::unix::ffi::OsStrExt;
    let fs_path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
    if std::fs::symlink_metadata(fs_path).is_err() {
        return err(
            format!("path '{}' does not exist", String::from_utf8_lossy(path)),
            p,
        );
    }
    let name = name.unwrap_or_else(|| {
        String::from_utf8_lossy(path.rsplit(|&c| c == b'/').next().unwrap_or(b"source"))
            .into_owned()
    });
    let store = ev.io.store_dir();
    let sp = if recursive {
        let mut failure: Option<Box<Error>> = None;
        let nar = {
            let mut f = |child: &std::path::Path, ty: &str| -> std::io::Result<bool> {
                let Some(fv) = &filter else { return Ok(true) };
                let args = [
                    Value::str(child.as_os_str().as_bytes()),
                    Value::str(ty.as_bytes()),
                ];
                match ev.call_n(fv, &args, p).and_then(|r| ev.force_bool(&r, p)) {
                    Ok(b) => Ok(b),
                    Err(e) => {
                        failure = Some(e);
                        Err(std::io::Error::other("filter failed"))
                    }
                }
            };
            crate::store::nar_filtered(fs_path, &mut f)
        };
        if let Some(e) = failure {
            return Err(e);
        }
        let nar = nar.map_err(|e| ioerr(e.to_string(), p))?;
        crate::store::make_store_path(&store, "source", &sha2::Sha256::digest(&nar), &name)
    } else {
        let data = ev.io.read_file(path).map_err(|m| ioerr(m, p))?;
        let h = crate::store::hex(&sha2::Sha256::digest(&data));
        let inner = sha2::Sha256::digest(format!("fixed:out:sha256:{h}:").as_bytes());
        crate::store::make_store_path(&store, "output:out", &inner, &name)
    };
    Ok(store_string(sp.into_bytes()))
}

pub fn path(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let args = ev.force_attrs(&a[0], p)?;
    let Some(pv) = args.get(sym("path")).cloned() else {
        return err("attribute 'path' missing", p);
    };
    let path = real_path(ev, &pv, p)?;
    let name = match args.get(sym("name")).cloned() {
        Some(n) => Some(ev.force_str(&n, p)?.lossy()),
        None => None,
    };
    let recursive = match args.get(sym("recursive")).cloned() {
        Some(r) => ev.force_bool(&r, p)?,
        None => true,
    };
    let filter = args.get(sym("filter")).cloned();
    add_path(ev, &path, name, filter, recursive, p)
}

pub fn filter_source(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let path = real_path(ev, &a[1], p)?;
    add_path(ev, &path, None, Some(a[0].clone()), true, p)
}

pub fn to_file(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let name = ev.force_str(&a[0], p)?.lossy();
    let mut ctx = Context::new();
    let s = ev.coerce_to_string(&a[1], &mut ctx, false, false, p)?;
    let refs: Vec<Vec<u8>> = ctx.iter().map(|c| c.to_vec()).collect();
    let sp = ev
        .io
        .add_text_to_store(&name, &s, &refs)
        .map_err(|m| ioerr(m, p))?;
    Ok(store_string(sp))
}

pub fn store_path(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    let path = real_path(ev, &a[0], p)?;
    let store = ev.io.store_dir().into_bytes();
    if !path.starts_with(&store) {
        return err(
            format!(
                "path '{}' is not in the Nix store",
                String::from_utf8_lossy(&path)
            ),
            p,
        );
    }
    Ok(store_string(path))
}

pub fn placeholder(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    use sha2::Digest;
    let o = ev.force_str(&a[0], p)?;
    let mut s = b"nix-output:".to_vec();
    s.extend_from_slice(&o.bytes);
    let h = sha2::Sha256::digest(&s);
    Ok(Value::str(
        format!("/{}", crate::store::nixbase32(&h)).into_bytes(),
    ))
}

pub fn derivation_strict(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    crate::derivation::derivation_strict(ev, &a[0], p)
}

/// Collects a fetcher's argument (a URL, or a set whose values are
/// coerced to strings) and hands it to the store through `EvalIo`.
fn fetch(ev: &mut Eval, fetcher: &'static str, a: &[Value], p: Pos) -> Result<crate::io::Fetched> {
    let arg = ev.force(&a[0])?;
    let mut req = crate::io::FetchRequest {
        fetcher,
        url: None,
        attrs: Vec::new(),
    };
    if let Value::Attrs(set) = &arg {
        for (name, v, _) in set.sorted_by_name() {
            let v = ev.force(v)?;
            let mut ctx = Context::new();
            let s = match &v {
                Value::Bool(b) => b.to_string().into_bytes(),
                Value::Int(i) if *i < 0 => {
                    return err(
                        format!("negative value given for '{fetcher}' argument '{name}': {i}"),
                        p,
                    );
                }
                Value::Int(i) => i.to_string().into_bytes(),
                _ => ev.coerce_to_string(&v, &mut ctx, false, false, p)?,
            };
            req.attrs.push((name.bytes().to_vec(), s));
        }
    } else {
        let mut ctx = Context::new();
        req.url = Some(ev.coerce_to_string(&arg, &mut ctx, false, false, p)?);
    }
    check_fetch_request(&req, p)?;
    ev.io.fetch(&req).map_err(|m| ioerr(m, p))
}

/// The checks Nix makes on a fetcher's argument before fetching anything:
/// the store path name `fetchurl` would use, and `file:` URLs of
/// `fetchTree` being absolute.
fn check_fetch_request(req: &crate::io::FetchRequest, p: Pos) -> Result<()> {
    let url = String::from_utf8_lossy(req.url().unwrap_or_default()).into_owned();
    if req.fetcher == "fetchurl" {
        let given = req
            .attrs
            .iter()
            .find(|(k, _)| k == b"name")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        let name = given.clone().unwrap_or_else(|| {
            let base = url.trim_end_matches('/');
            base.rsplit('/').next().unwrap_or(base).to_string()
        });
        if let Err(why) = crate::derivation::check_name(&name) {
            let advice = if req.url.is_some() {
                "Please pass an attribute set with 'url' and 'name' attributes to 'fetchurl',  so that it can create a valid store path."
            } else if given.is_some() {
                "Please change the value for the 'name' attribute passed to 'fetchurl', so that it can create a valid store path."
            } else {
                "Please add a valid 'name' attribute to the argument for 'fetchurl', so that it can create a valid store path."
            };
            return err(
                format!("invalid store path name when fetching URL '{url}': {why}. {advice}"),
                p,
            );
        }
    }
    if req.fetcher == "fetchTree"
        && let Some(rest) = url.strip_prefix("file:")
        && !rest.starts_with('/')
    {
        return err(
            format!(
                "tarball '{url}' must use an absolute path. The 'file' scheme does not support relative paths."
            ),
            p,
        )
        .trace(|| format!("while fetching the input '{url}'"), Pos::NONE);
    }
    Ok(())
}

fn fetched_path(ev: &mut Eval, fetcher: &'static str, a: &[Value], p: Pos) -> Result<Value> {
    let f = fetch(ev, fetcher, a, p)?;
    Ok(store_string(f.store_path))
}

fn fetched_set(ev: &mut Eval, fetcher: &'static str, a: &[Value], p: Pos) -> Result<Value> {
    let f = fetch(ev, fetcher, a, p)?;
    let mut entries = vec![(ev.s.out_path, store_string(f.store_path), Pos::NONE)];
    for (k, v) in f.attrs {
        entries.push((intern(&k), Value::str(v), Pos::NONE));
    }
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

pub fn fetchurl(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    fetched_path(ev, "fetchurl", a, p)
}

pub fn fetch_tarball(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    fetched_path(ev, "fetchTarball", a, p)
}

pub fn fetch_git(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    fetched_set(ev, "fetchGit", a, p)
}

pub fn fetch_mercurial(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    fetched_set(ev, "fetchMercurial", a, p)
}

pub fn fetch_tree(ev: &mut Eval, a: &[Value], p: Pos) -> Result<Value> {
    fetched_set(ev, "fetchTree", a, p)
}
