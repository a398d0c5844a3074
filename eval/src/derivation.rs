//! `derivationStrict`: turning derivation attributes into a `.drv` (in
//! ATerm form), its store path and its output paths, computed locally
//! with Nix's algorithms (hashDerivationModulo, makeStorePath). Nothing
//! is written to a store; the derivation hashes are remembered so that
//! dependent derivations in the same evaluation can be computed.

use crate::builtins::to_json_bytes;
use crate::error::{AddTrace, Error, ErrorKind, Result, err};
use crate::eval::Eval;
use crate::pos::Pos;
use crate::store::{hex, make_store_path};
use crate::symbol::{intern, sym};
use crate::value::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// A derivation output: path, hash algorithm and hash (fixed outputs).
#[derive(Clone, Default)]
struct Output {
    path: String,
    algo: String,
    hash: String,
}

#[derive(Default)]
struct Drv {
    outputs: BTreeMap<String, Output>,
    input_drvs: BTreeMap<String, BTreeSet<String>>,
    input_srcs: BTreeSet<String>,
    system: String,
    builder: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn aterm_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn aterm_list<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut f: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        f(out, x);
    }
    out.push(']');
}

impl Drv {
    /// The ATerm text; `inputs` replaces the input-derivation map (for
    /// hashing modulo fixed outputs).
    fn unparse(&self, inputs: &BTreeMap<String, BTreeSet<String>>, mask: bool) -> String {
        let mut o = String::from("Derive(");
        aterm_list(&mut o, &self.outputs, |o, (name, out)| {
            o.push('(');
            aterm_str(o, name);
            o.push(',');
            aterm_str(o, if mask { "" } else { &out.path });
            o.push(',');
            aterm_str(o, &out.algo);
            o.push(',');
            aterm_str(o, &out.hash);
            o.push(')');
        });
        o.push(',');
        aterm_list(&mut o, inputs, |o, (path, outs)| {
            o.push('(');
            aterm_str(o, path);
            o.push(',');
            aterm_list(o, outs, |o, s| aterm_str(o, s));
            o.push(')');
        });
        o.push(',');
        aterm_list(&mut o, &self.input_srcs, |o, s| aterm_str(o, s));
        o.push(',');
        aterm_str(&mut o, &self.system);
        o.push(',');
        aterm_str(&mut o, &self.builder);
        o.push(',');
        aterm_list(&mut o, &self.args, |o, s| aterm_str(o, s));
        o.push(',');
        aterm_list(&mut o, &self.env, |o, (k, v)| {
            o.push('(');
            aterm_str(o, k);
            o.push(',');
            let masked = mask && self.outputs.contains_key(k.as_str());
            aterm_str(o, if masked { "" } else { v });
            o.push(')');
        });
        o.push(')');
        o
    }
}

/// Checks a store path name as Nix does.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if name.len() > 211 {
        return Err("name must be less than 212 characters".into());
    }
    if name.starts_with('.') {
        return Err(format!("name '{name}' must not begin with a period"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c)))
    {
        return Err(format!("name '{name}' contains illegal character '{c}'"));
    }
    Ok(())
}

fn output_path_name(name: &str, output: &str) -> String {
    if output == "out" {
        name.to_string()
    } else {
        format!("{name}-{output}")
    }
}

fn coerce(ev: &mut Eval, v: &Value, ctx: &mut Context, p: Pos) -> Result<String> {
    let s = ev.coerce_to_string(v, ctx, true, true, p)?;
    Ok(String::from_utf8_lossy(&s).into_owned())
}

/// Evaluates a derivation's attributes into `{ drvPath, <output> ... }`.
pub fn derivation_strict(ev: &mut Eval, attrs: &Value, p: Pos) -> Result<Value> {
    let attrs = ev.force_attrs(attrs, p)?;
    let Some(name) = attrs.get(ev.s.name).cloned() else {
        return err("attribute 'name' missing", p).trace(
            || "in the attrset passed as argument to builtins.derivationStrict".to_string(),
            Pos::NONE,
        );
    };
    let name = ev.force_str(&name, p)?.lossy();
    if let Err(m) = check_name(&name) {
        return err(
            format!("invalid derivation name: {m}. Please pass a different 'name'."),
            p,
        );
    }
    let npos = attrs.get_entry(ev.s.name).map(|e| e.2).unwrap_or(p);
    derivation_inner(ev, &attrs, &name, p).trace(
        || match npos.location() {
            Some(loc) => format!("while evaluating derivation '{name}'\n         whose name attribute is located at {loc}"),
            None => format!("while evaluating derivation '{name}'"),
        },
        Pos::NONE,
    )
}

fn get_bool(ev: &mut Eval, a: &Attrs, key: &str, p: Pos) -> Result<bool> {
    match a.get(sym(key)).cloned() {
        Some(v) => ev.force_bool(&v, p),
        None => Ok(false),
    }
}

fn derivation_inner(ev: &mut Eval, attrs: &Attrs, name: &str, p: Pos) -> Result<Value> {
    let structured = get_bool(ev, attrs, "__structuredAttrs", p)?;
    let ignore_nulls = get_bool(ev, attrs, "__ignoreNulls", p)?;
    let mut drv = Drv::default();
    let mut ctx = Context::new();
    let mut outputs: Vec<String> = vec!["out".into()];
    let (mut out_hash, mut out_algo, mut out_mode) = (None, String::new(), String::from("flat"));
    let mut json = Vec::new();
    json.push(b'{');
    let mut first = true;
    for (key, v, apos) in attrs.sorted_by_name() {
        let k = key.text();
        if k == "__ignoreNulls" || (structured && k == "__structuredAttrs") {
            continue;
        }
        let apos0 = *apos;
        if structured
            && matches!(
                k.as_str(),
                "allowedReferences"
                    | "allowedRequisites"
                    | "disallowedReferences"
                    | "disallowedRequisites"
                    | "maxClosureSize"
                    | "maxSize"
            )
        {
            let msg = format!(
                "'structuredAttrs' disables the effect of the derivation attribute '{k}'; use 'outputChecks.<output>.{k}' instead"
            );
            eprintln!(
                "warning:\n         … while evaluating derivation '{name}'\n\n         {}",
                crate::error::render_warning(&msg, apos0)
            );
        }
        let r = (|| -> Result<()> {
            let v = ev.force(v)?;
            if ignore_nulls && matches!(v, Value::Null) {
                return Ok(());
            }
            let apos = *apos;
            if structured {
                if !first {
                    json.push(b',');
                }
                first = false;
                json.extend_from_slice(serde_json::to_string(&k).unwrap_or_default().as_bytes());
                json.push(b':');
                to_json_bytes(ev, &v, &mut ctx, apos, &mut json)?;
            }
            match k.as_str() {
                "args" => {
                    let l = ev.force_list(&v, apos)?;
                    for x in l.iter() {
                        let s = coerce(ev, x, &mut ctx, apos)?;
                        drv.args.push(s);
                    }
                    return Ok(());
                }
                "outputs" => {
                    let l = ev.force_list(&v, apos)?;
                    let mut outs = Vec::new();
                    for x in l.iter() {
                        let s = ev.force_str(x, apos)?.lossy();
                        if s == "drv" || s == "drvPath" || check_name(&s).is_err() {
                            return err(format!("invalid derivation output name '{s}'"), apos);
                        }
                        if outs.contains(&s) {
                            return err(format!("duplicate derivation output '{s}'"), apos);
                        }
                        outs.push(s);
                    }
                    if outs.is_empty() {
                        return err("derivation cannot have an empty set of outputs", apos);
                    }
                    outputs = outs;
                }
                _ => {}
            }
            let s = if structured {
                match &v {
                    Value::Str(_)
                    | Value::Path(_)
                    | Value::Int(_)
                    | Value::Bool(_)
                    | Value::Null => Some(coerce(ev, &v, &mut Context::new(), apos)?),
                    _ => None,
                }
            } else {
                Some(coerce(ev, &v, &mut ctx, apos)?)
            };
            let Some(s) = s else { return Ok(()) };
            match k.as_str() {
                "builder" => drv.builder = s.clone(),
                "system" => drv.system = s.clone(),
                "outputHash" => out_hash = Some(s.clone()),
                "outputHashAlgo" => out_algo = s.clone(),
                "outputHashMode" => out_mode = s.clone(),
                _ => {}
            }
            if !structured {
                drv.env.insert(k, s);
            }
            Ok(())
        })();
        r.trace(
            || {
                format!(
                    "while evaluating attribute '{}' of derivation '{name}'",
                    key.text()
                )
            },
            apos0,
        )?;
    }
    json.push(b'}');
    if structured {
        drv.env
            .insert("__json".into(), String::from_utf8_lossy(&json).into_owned());
    }
    if drv.builder.is_empty() && attrs.get(sym("builder")).is_none() {
        return err("required attribute 'builder' missing", p);
    }
    if attrs.get(sym("system")).is_none() {
        return err("required attribute 'system' missing", p);
    }

    // Inputs from the string context.
    for c in ctx.iter() {
        let c = String::from_utf8_lossy(c).into_owned();
        if let Some(d) = c.strip_prefix('=') {
            drv.input_drvs
                .entry(d.to_string())
                .or_default()
                .insert("out".into());
        } else if let Some(rest) = c.strip_prefix('!') {
            if let Some((out, d)) = rest.split_once('!') {
                drv.input_drvs
                    .entry(d.to_string())
                    .or_default()
                    .insert(out.to_string());
            }
        } else {
            drv.input_srcs.insert(c);
        }
    }

    let store = ev.io.store_dir();
    if let Some(h) = out_hash {
        if outputs.len() != 1 || outputs[0] != "out" {
            return err(
                "multiple outputs are not supported in fixed-output derivations",
                p,
            );
        }
        let algo = if out_algo.is_empty() {
            None
        } else {
            Some(out_algo.as_str())
        };
        let (algo, bytes) =
            crate::builtins::parse_hash(&h, algo).map_err(|m| Error::new(ErrorKind::Eval, m, p))?;
        let recursive = match out_mode.as_str() {
            "recursive" | "nar" => true,
            "flat" => false,
            m => {
                return err(
                    format!("invalid value '{m}' for 'outputHashMode' attribute"),
                    p,
                );
            }
        };
        let path = if recursive && algo == "sha256" {
            make_store_path(&store, "source", &bytes, name)
        } else {
            let pre = if recursive { "r:" } else { "" };
            let inner =
                Sha256::digest(format!("fixed:out:{pre}{algo}:{}:", hex(&bytes)).as_bytes());
            make_store_path(&store, "output:out", &inner, name)
        };
        let pre = if recursive { "r:" } else { "" };
        drv.outputs.insert(
            "out".into(),
            Output {
                path: path.clone(),
                algo: format!("{pre}{algo}"),
                hash: hex(&bytes),
            },
        );
        drv.env.insert("out".into(), path);
    } else {
        for o in &outputs {
            drv.outputs.insert(o.clone(), Output::default());
            drv.env.insert(o.clone(), String::new());
        }
        let h = hash_modulo(ev, &drv, true, p)?;
        for o in &outputs {
            let path = make_store_path(
                &store,
                &format!("output:{o}"),
                &h,
                &output_path_name(name, o),
            );
            if let Some(out) = drv.outputs.get_mut(o) {
                out.path = path.clone();
            }
            drv.env.insert(o.clone(), path);
        }
    }

    let text = drv.unparse(&drv.input_drvs, false);
    let mut refs: Vec<String> = drv.input_srcs.iter().cloned().collect();
    refs.extend(drv.input_drvs.keys().cloned());
    refs.sort();
    let mut ty = String::from("text");
    for r in &refs {
        ty.push(':');
        ty.push_str(r);
    }
    let drv_path = make_store_path(
        &store,
        &ty,
        &Sha256::digest(text.as_bytes()),
        &format!("{name}.drv"),
    );
    let hm = hash_modulo(ev, &drv, false, p)?;
    ev.drv_hashes.insert(drv_path.clone(), hm);

    let mut res = Vec::new();
    let mut dctx = Context::new();
    dctx.insert(format!("={drv_path}").into_bytes().into());
    res.push((
        ev.s.drv_path,
        Value::str_ctx(drv_path.clone().into_bytes(), dctx),
        Pos::NONE,
    ));
    for (o, out) in &drv.outputs {
        let mut c = Context::new();
        c.insert(format!("!{o}!{drv_path}").into_bytes().into());
        res.push((
            intern(o.as_bytes()),
            Value::str_ctx(out.path.clone().into_bytes(), c),
            Pos::NONE,
        ));
    }
    Ok(Value::attrs(Attrs::from_unsorted(res)))
}

/// Nix's `hashDerivationModulo`.
fn hash_modulo(ev: &mut Eval, drv: &Drv, mask: bool, p: Pos) -> Result<Vec<u8>> {
    if let Some(out) = drv.outputs.get("out")
        && drv.outputs.len() == 1
        && !out.hash.is_empty()
    {
        let s = format!("fixed:out:{}:{}:{}", out.algo, out.hash, out.path);
        return Ok(Sha256::digest(s.as_bytes()).to_vec());
    }
    let mut inputs = BTreeMap::new();
    for (path, outs) in &drv.input_drvs {
        let Some(h) = ev.drv_hashes.get(path) else {
            return err(
                format!("derivation '{path}' is not known to this evaluation"),
                p,
            );
        };
        inputs.insert(hex(h), outs.clone());
    }
    Ok(Sha256::digest(drv.unparse(&inputs, mask).as_bytes()).to_vec())
}
