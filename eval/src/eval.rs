//! The evaluator core: forcing thunks, evaluating IR expressions in
//! environments, function application and the stack-depth guard.

use crate::error::{AddTrace, Error, ErrorKind, Result, err};
use crate::io::EvalIo;
use crate::ir::*;
use crate::pos::Pos;
use crate::symbol::{Sym, intern, sym};
use crate::value::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// How a lint (`--lint-*`) reacts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lint {
    #[default]
    Off,
    Warn,
    Fatal,
}

/// Settings of the `--lint-*` options.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lints {
    pub url: Lint,
    pub short_path: Lint,
    pub abs_path: Lint,
}

impl Lints {
    /// Reads the lint options of the CLI.
    pub fn from_args(a: &crate::cli::EvalArgs) -> Lints {
        let l = |o: &Option<String>| match o.as_deref() {
            Some("warn") => Lint::Warn,
            Some("fatal") => Lint::Fatal,
            _ => Lint::Off,
        };
        Lints {
            url: l(&a.lint_url_literals),
            short_path: l(&a.lint_short_path_literals),
            abs_path: l(&a.lint_absolute_path_literals),
        }
    }
}

/// Evaluation settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub max_call_depth: usize,
    /// Search path entries `(prefix, path)`; an empty prefix matches all.
    pub search_path: Vec<(String, String)>,
    pub home: Option<Vec<u8>>,
    pub timestamps: bool,
    pub show_trace: bool,
    /// Evaluation step limit (0 = unlimited), for fuzzing.
    pub max_steps: u64,
    /// Build values that cannot fail right away instead of as thunks (see
    /// [`Eval::thunk`]). Unobservable except by printing a value without
    /// forcing it, so the CLI turns it off for non-strict output.
    pub eager: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_call_depth: 10000,
            search_path: Vec::new(),
            home: std::env::var_os("HOME").map(|h| h.into_encoded_bytes()),
            timestamps: false,
            show_trace: false,
            max_steps: 0,
            eager: true,
        }
    }
}

/// The evaluator state.
pub struct Eval {
    pub global: Rc<Env>,
    pub global_names: HashMap<Sym, u32>,
    pub builtins: Value,
    pub io: Box<dyn EvalIo>,
    pub opts: Options,
    pub lints: Lints,
    pub(crate) depth: usize,
    stack_base: usize,
    stack_size: usize,
    steps: u64,
    /// `hashDerivationModulo` of the derivations created so far.
    pub(crate) drv_hashes: HashMap<String, Vec<u8>>,
    sym_strs: Vec<Option<Value>>,
    /// The builtin being run: (address of its arguments, count, name).
    cur_prim: Option<(usize, usize, &'static str)>,
    pub(crate) import_cache: HashMap<Vec<u8>, Value>,
    pub(crate) file_cache: HashMap<Vec<u8>, &'static Expr>,
    pub(crate) s: Syms,
}

/// Frequently used symbols.
pub struct Syms {
    pub functor: Sym,
    pub to_string: Sym,
    pub out_path: Sym,
    pub type_: Sym,
    pub file: Sym,
    pub line: Sym,
    pub column: Sym,
    pub name: Sym,
    pub value: Sym,
    pub success: Sym,
    pub drv_path: Sym,
    pub outputs: Sym,
    pub out: Sym,
    pub overrides: Sym,
}

fn stack_addr() -> usize {
    let x = 0u8;
    std::hint::black_box(&x) as *const u8 as usize
}

impl Eval {
    /// Creates an evaluator. `stack_size` is the size of the current
    /// thread's stack (used for the overflow guard).
    pub fn new(io: Box<dyn EvalIo>, opts: Options, stack_size: usize) -> Eval {
        let s = Syms {
            functor: sym("__functor"),
            to_string: sym("__toString"),
            out_path: sym("outPath"),
            type_: sym("type"),
            file: sym("file"),
            line: sym("line"),
            column: sym("column"),
            name: sym("name"),
            value: sym("value"),
            success: sym("success"),
            drv_path: sym("drvPath"),
            outputs: sym("outputs"),
            out: sym("out"),
            overrides: sym("__overrides"),
        };
        let mut ev = Eval {
            global: Rc::new(Env {
                up: None,
                vals: RefCell::new(EnvVals::new()),
            }),
            global_names: HashMap::new(),
            builtins: Value::Null,
            io,
            opts,
            lints: Lints::default(),
            depth: 0,
            stack_base: stack_addr(),
            stack_size,
            steps: 0,
            import_cache: HashMap::new(),
            drv_hashes: HashMap::new(),
            sym_strs: Vec::new(),
            cur_prim: None,
            file_cache: HashMap::new(),
            s,
        };
        crate::builtins::install(&mut ev);
        ev
    }

    // ---------------------------------------------------------------- thunks

    /// A value for `e` in `env` without evaluating it.
    #[inline]
    pub fn thunk(&self, e: &'static Expr, env: &Rc<Env>) -> Value {
        self.thunk_at(e, env, 0)
    }

    /// [`Eval::thunk`], building values right away where that cannot fail
    /// or diverge: literals (attribute sets with static names, lists;
    /// `depth` bounds their nesting) and integer arithmetic on operands
    /// that are already evaluated and does not overflow. This saves a
    /// thunk (and forcing it later) in the common cases. Only printing a
    /// value without forcing it can tell the difference (`--strict` off,
    /// `builtins.trace`), so the CLI turns this off for non-strict output,
    /// and arithmetic inside an eagerly built literal stays lazy (Nix
    /// traces `[ (1 + 1) ]` as `[ «thunk» ]`).
    fn thunk_at(&self, e: &'static Expr, env: &Rc<Env>, depth: u32) -> Value {
        const MAX_EAGER_DEPTH: u32 = 4;
        match e {
            Expr::Const(v) => return v.clone(),
            Expr::Var { level, idx, .. } => match lookup(env, *level, *idx) {
                Some(Value::Thunk(t)) => {
                    return match t.done() {
                        Some(v) => v,
                        None => Value::Thunk(t),
                    };
                }
                Some(v) => return v,
                None => {}
            },
            Expr::Bin(..) | Expr::List(_) | Expr::Attrs(_) | Expr::Lambda(_)
                if !self.opts.eager => {}
            Expr::Lambda(l) => {
                return Value::Lambda(Rc::new(Closure {
                    lam: l,
                    env: env.clone(),
                }));
            }
            Expr::Bin(op, ab, _) if depth == 0 => {
                if let (Some(x), Some(y)) = (peek_int(&ab.0, env), peek_int(&ab.1, env)) {
                    let r = match op {
                        BinOp::Add => x.checked_add(y).map(Value::Int),
                        BinOp::Sub => x.checked_sub(y).map(Value::Int),
                        BinOp::Mul => x.checked_mul(y).map(Value::Int),
                        BinOp::Lt => Some(Value::Bool(x < y)),
                        BinOp::Le => Some(Value::Bool(x <= y)),
                        BinOp::Gt => Some(Value::Bool(x > y)),
                        BinOp::Ge => Some(Value::Bool(x >= y)),
                        BinOp::Eq => Some(Value::Bool(x == y)),
                        BinOp::Neq => Some(Value::Bool(x != y)),
                        _ => None,
                    };
                    if let Some(v) = r {
                        return v;
                    }
                }
            }
            Expr::List(items) if depth < MAX_EAGER_DEPTH => {
                return Value::list_from(items.iter().map(|i| self.thunk_at(i, env, depth + 1)));
            }
            Expr::Attrs(a)
                if depth < MAX_EAGER_DEPTH
                    && !a.rec
                    && a.dynamics.is_empty()
                    && a.inherit_from.is_empty() =>
            {
                let mut entries: Vec<Entry> = a
                    .statics
                    .iter()
                    .map(|d| (d.name, self.thunk_at(&d.value, env, depth + 1), d.pos))
                    .collect();
                entries.sort_by_key(|e| e.0);
                return Value::attrs(Attrs {
                    entries: entries.into(),
                });
            }
            _ => {}
        }
        Value::Thunk(ThunkRef::new(ThunkState::Expr(e, env.clone())))
    }

    /// Like [`Eval::thunk`] but never reads `env` (for recursive frames
    /// that are not filled in yet).
    fn thunk_rec(&self, e: &'static Expr, env: &Rc<Env>) -> Value {
        // Slots of a frame that is not filled in yet read as absent, so
        // `thunk_at` falls back to a thunk for anything that refers to them.
        debug_assert!(env.vals.borrow().is_empty());
        self.thunk_at(e, env, 0)
    }

    /// Forces a value to weak head normal form.
    #[inline]
    pub fn force(&mut self, v: &Value) -> Result<Value> {
        match v {
            Value::Thunk(t) => self.force_thunk(t),
            v => Ok(v.clone()),
        }
    }

    fn force_thunk(&mut self, t: &ThunkRef) -> Result<Value> {
        if let Some(v) = t.done() {
            return Ok(v);
        }
        let state = t.0.replace(ThunkState::Blackhole);
        if let Err(e) = self.check_stack(Pos::NONE) {
            t.0.set(state);
            return Err(e);
        }
        let r = match &state {
            ThunkState::Expr(e, env) => self.eval(e, env),
            ThunkState::AppLambda(c, a) => {
                let f = Value::Lambda(c.clone());
                self.call(f, a.clone(), Pos::NONE)
            }
            ThunkState::App(fa) => {
                let (f, a) = (fa.0.clone(), fa.1.clone());
                self.force(&f).and_then(|f| self.call(f, a, Pos::NONE))
            }
            ThunkState::Blackhole => Err(Error::new(
                ErrorKind::Eval,
                "infinite recursion encountered",
                Pos::NONE,
            )),
            ThunkState::Done(v) => Ok(v.clone()),
            ThunkState::Failed(e) => Err(e.clone()),
        };
        match r {
            Ok(v) => {
                t.0.set(ThunkState::Done(v.clone()));
                Ok(v)
            }
            Err(e) => {
                // Errors are memoised (as in current Nix), except resource
                // limits, which depend on the context the thunk is forced in.
                if e.kind == ErrorKind::Limit {
                    if !matches!(state, ThunkState::Blackhole) {
                        t.0.set(state);
                    }
                } else {
                    t.0.set(ThunkState::Failed(e.clone()));
                }
                Err(e)
            }
        }
    }

    /// Charges `n` units of work against the step limit (fuzzing), for
    /// builtins whose cost is not made of evaluation steps.
    pub fn charge(&mut self, n: u64, pos: Pos) -> Result<()> {
        if self.opts.max_steps != 0 {
            self.steps = self.steps.saturating_add(n);
            if self.steps > self.opts.max_steps {
                return Err(Error::new(
                    ErrorKind::Limit,
                    "evaluation step limit exceeded",
                    pos,
                ));
            }
        }
        Ok(())
    }

    /// Reads and forces a variable slot, without cloning evaluated thunks twice.
    #[inline]
    fn eval_var(&mut self, env: &Rc<Env>, level: u32, idx: u32) -> Result<Value> {
        let mut e = env;
        for _ in 0..level {
            match e.up.as_ref() {
                Some(u) => e = u,
                None => return err("internal error: unbound variable slot", Pos::NONE),
            }
        }
        let t = {
            let vals = e.vals.borrow();
            match vals.get(idx as usize) {
                Some(Value::Thunk(t)) => {
                    if let Some(v) = t.done() {
                        return Ok(v);
                    }
                    t.clone()
                }
                Some(v) => return Ok(v.clone()),
                None => return err("internal error: unbound variable slot", Pos::NONE),
            }
        };
        self.force_thunk(&t)
    }

    #[inline]
    fn check_stack(&mut self, pos: Pos) -> Result<()> {
        let used = self.stack_base.abs_diff(stack_addr());
        if used + (4 << 20) > self.stack_size {
            return Err(Error::new(
                ErrorKind::Limit,
                "stack overflow (possible infinite recursion)",
                pos,
            ));
        }
        if self.opts.max_steps != 0 {
            self.steps += 1;
            if self.steps > self.opts.max_steps {
                return Err(Error::new(
                    ErrorKind::Limit,
                    "evaluation step limit exceeded",
                    pos,
                ));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ evaluation

    /// Evaluates `e` in `env` to weak head normal form.
    pub fn eval(&mut self, e: &'static Expr, env: &Rc<Env>) -> Result<Value> {
        match e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Var { level, idx, .. } => self.eval_var(env, *level, *idx),
            Expr::WithVar {
                name,
                levels,
                pos,
                fallback,
            } => {
                for &l in levels.iter() {
                    let Some(ns) = lookup(env, l, 0) else {
                        continue;
                    };
                    let ns = self.force(&ns)?;
                    let Value::Attrs(a) = ns else {
                        return err(crate::error::type_msg("a set", &ns), *pos);
                    };
                    if let Some(v) = a.get(*name) {
                        let v = v.clone();
                        return self.force(&v);
                    }
                }
                if let Some(i) = fallback {
                    let v = self.global.vals.borrow().get(*i as usize).cloned();
                    if let Some(v) = v {
                        return self.force(&v);
                    }
                }
                err(format!("undefined variable '{name}'"), *pos)
            }
            Expr::Attrs(a) => self.eval_attrs(a, env),
            Expr::List(items) => Ok(Value::list_from(items.iter().map(|i| self.thunk(i, env)))),
            Expr::Lambda(l) => Ok(Value::Lambda(Rc::new(Closure {
                lam: l,
                env: env.clone(),
            }))),
            Expr::Apply(fa, pos) => {
                let f = self.eval(&fa.0, env)?;
                let a = self.thunk(&fa.1, env);
                self.call(f, a, *pos)
            }
            Expr::Let(lb) => {
                let (attrs, body) = &**lb;
                let new = Rc::new(Env {
                    up: Some(env.clone()),
                    vals: RefCell::new(EnvVals::new()),
                });
                let froms = self.inherit_sources(attrs, &new);
                let vals: Vec<Value> = attrs
                    .statics
                    .iter()
                    .map(|d| self.binding(d, env, &new, &froms))
                    .collect();
                *new.vals.borrow_mut() = EnvVals::from_vec(vals);
                self.eval(body, &new)
            }
            Expr::With(nb, _) => {
                let ns = self.thunk(&nb.0, env);
                let new = Rc::new(Env {
                    up: Some(env.clone()),
                    vals: RefCell::new(smallvec::smallvec![ns]),
                });
                self.eval(&nb.1, &new)
            }
            Expr::If(ite, pos) => {
                if self.eval_bool(&ite.0, env, *pos)? {
                    self.eval(&ite.1, env)
                } else {
                    self.eval(&ite.2, env)
                }
            }
            Expr::Assert(cb, pos, text) => {
                if let Expr::Bin(BinOp::Eq, ab, _) = &cb.0 {
                    let a = self.eval(&ab.0, env)?;
                    let b = self.eval(&ab.1, env)?;
                    if self.equal(&a, &b, *pos)? {
                        return self.eval(&cb.1, env);
                    }
                    let mut e = match self.explain_neq(&a, &b)? {
                        Some(msg) => Error::new(ErrorKind::Assert, msg, Pos::NONE),
                        None => Error::new(
                            ErrorKind::Assert,
                            format!("assertion '{text}' failed"),
                            *pos,
                        ),
                    };
                    e.trace.push((
                        format!("while evaluating the condition of the assertion '{text}'"),
                        *pos,
                    ));
                    return Err(e);
                }
                if self.eval_bool(&cb.0, env, *pos)? {
                    self.eval(&cb.1, env)
                } else {
                    Err(Error::new(
                        ErrorKind::Assert,
                        format!("assertion '{text}' failed"),
                        *pos,
                    ))
                }
            }
            Expr::Select(x, path, def, pos) => self.eval_select(x, path, def.as_deref(), *pos, env),
            Expr::HasAttr(x, path) => {
                let mut v = self.eval(x, env)?;
                for k in path.iter() {
                    let Value::Attrs(a) = &v else {
                        return Ok(Value::Bool(false));
                    };
                    let name = self.key_sym(k, env)?;
                    match a.get(name) {
                        Some(x) => {
                            let x = x.clone();
                            v = self.force(&x)?
                        }
                        None => return Ok(Value::Bool(false)),
                    }
                }
                Ok(Value::Bool(true))
            }
            Expr::Not(x, pos) => Ok(Value::Bool(!self.operand_bool(
                x,
                env,
                *pos,
                "in the argument of '!'",
            )?)),
            Expr::And(ab) => Ok(Value::Bool(
                self.operand_bool(&ab.0, env, ab.2, "in the left operand of '&&'")?
                    && self.operand_bool(&ab.1, env, ab.3, "in the right operand of '&&'")?,
            )),
            Expr::Or(ab) => Ok(Value::Bool(
                self.operand_bool(&ab.0, env, ab.2, "in the left operand of '||'")?
                    || self.operand_bool(&ab.1, env, ab.3, "in the right operand of '||'")?,
            )),
            Expr::Impl(ab) => Ok(Value::Bool(
                !self.operand_bool(&ab.0, env, ab.2, "in the left operand of '->'")?
                    || self.operand_bool(&ab.1, env, ab.3, "in the right operand of '->'")?,
            )),
            Expr::Bin(op, ab, pos) => {
                let a = self.eval(&ab.0, env)?;
                if let Value::Int(x) = a {
                    let b = self.eval(&ab.1, env)?;
                    if let Value::Int(y) = b {
                        let r = match op {
                            BinOp::Lt => Value::Bool(x < y),
                            BinOp::Le => Value::Bool(x <= y),
                            BinOp::Gt => Value::Bool(x > y),
                            BinOp::Ge => Value::Bool(x >= y),
                            BinOp::Eq => Value::Bool(x == y),
                            BinOp::Neq => Value::Bool(x != y),
                            BinOp::Add if let Some(r) = x.checked_add(y) => Value::Int(r),
                            BinOp::Sub if let Some(r) = x.checked_sub(y) => Value::Int(r),
                            BinOp::Mul if let Some(r) = x.checked_mul(y) => Value::Int(r),
                            _ => return self.binop_traced(*op, a, b, *pos),
                        };
                        return Ok(r);
                    }
                    return self.binop_traced(*op, a, b, *pos);
                }
                match op {
                    BinOp::Eq | BinOp::Neq => {
                        let b = self.eval(&ab.1, env)?;
                        let r = self.equal(&a, &b, *pos)?;
                        Ok(Value::Bool(if *op == BinOp::Eq { r } else { !r }))
                    }
                    _ => {
                        let b = self.eval(&ab.1, env)?;
                        self.binop_traced(*op, a, b, *pos)
                    }
                }
            }
            Expr::Concat(c) => self.eval_concat(c, env),
            Expr::PathConcat(c) => {
                let mut out = Vec::new();
                for p in &c.parts {
                    let v = self.eval(p, env)?;
                    let mut ctx = Context::new();
                    let s = self.coerce_to_string(&v, &mut ctx, false, false, c.pos)?;
                    if !ctx.is_empty() {
                        return err(
                            "a string that refers to a store path cannot be appended to a path",
                            c.pos,
                        );
                    }
                    out.extend_from_slice(&s);
                }
                Ok(Value::Path(Rc::new(crate::lower::canon_path(&out))))
            }
            Expr::CurPos(pos) => Ok(self.pos_attrs(*pos)),
            Expr::Fail(msg, pos) => err(msg.to_string(), *pos),
        }
    }

    /// An operand of `!`, `&&`, `||` or `->`: errors in it get a frame
    /// naming the operand, at its position.
    fn operand_bool(
        &mut self,
        e: &'static Expr,
        env: &Rc<Env>,
        pos: Pos,
        what: &'static str,
    ) -> Result<bool> {
        self.eval_bool(e, env, pos).trace(|| what.to_string(), pos)
    }

    fn eval_bool(&mut self, e: &'static Expr, env: &Rc<Env>, pos: Pos) -> Result<bool> {
        match self.eval(e, env)? {
            Value::Bool(b) => Ok(b),
            v => err(crate::error::type_msg("a Boolean", &v), pos),
        }
    }

    /// The attribute name a key denotes.
    fn key_sym(&mut self, k: &'static Key, env: &Rc<Env>) -> Result<Sym> {
        match k {
            Key::Static(s) => Ok(*s),
            Key::Dynamic(e) => {
                let v = self.eval(e, env)?;
                match v {
                    Value::Str(s) => Ok(intern(&s.bytes)),
                    v => err(crate::error::type_msg("a string", &v), Pos::NONE),
                }
            }
        }
    }

    fn eval_select(
        &mut self,
        x: &'static Expr,
        path: &'static [Key],
        def: Option<&'static Expr>,
        pos: Pos,
        env: &Rc<Env>,
    ) -> Result<Value> {
        let mut v = self.eval(x, env)?;
        for k in path.iter() {
            let name = self.key_sym(k, env)?;
            let next = match &v {
                Value::Attrs(a) => match a.get(name) {
                    Some(x) => x.clone(),
                    None => {
                        if let Some(d) = def {
                            return self.eval(d, env);
                        }
                        let mut e =
                            Error::new(ErrorKind::Eval, format!("attribute '{name}' missing"), pos);
                        e.suggestion = Sym::with_names(|names| {
                            crate::error::did_you_mean(
                                name.bytes(),
                                a.entries.iter().map(|x| names[x.0.0 as usize]),
                            )
                        });
                        return Err(e);
                    }
                },
                other => {
                    if let Some(d) = def {
                        return self.eval(d, env);
                    }
                    return err(crate::error::type_msg("a set", other), pos)
                        .trace(|| format!("while selecting attribute '{name}'"), pos);
                }
            };
            v = self
                .force(&next)
                .trace(|| format!("while evaluating the attribute '{name}'"), pos)?;
        }
        Ok(v)
    }

    /// Applies `__overrides` of a recursive set: its attributes replace
    /// (or extend) the set's own, also inside the recursive scope.
    fn apply_overrides(
        &mut self,
        env: &Rc<Env>,
        entries: &mut Vec<(Sym, Value, Pos)>,
        idx: usize,
        pos: Pos,
    ) -> Result<()> {
        let ov = entries[idx].1.clone();
        let ov = self.force_attrs(&ov, pos).trace(
            || "while evaluating the `__overrides` attribute".to_string(),
            pos,
        )?;
        for (name, v, p) in ov.entries.iter() {
            match entries.iter().position(|e| e.0 == *name) {
                Some(j) => {
                    entries[j].1 = v.clone();
                    if let Some(slot) = env.vals.borrow_mut().get_mut(j) {
                        *slot = v.clone();
                    }
                }
                None => entries.push((*name, v.clone(), *p)),
            }
        }
        Ok(())
    }

    /// The name of a symbol as a string value (cached, so repeated
    /// attribute names share one string).
    pub fn sym_str(&mut self, s: Sym) -> Value {
        let i = s.0 as usize;
        if i >= self.sym_strs.len() {
            self.sym_strs.resize(i + 1, None);
        }
        self.sym_strs[i]
            .get_or_insert_with(|| Value::str(s.bytes()))
            .clone()
    }

    /// Thunks for the `inherit (expr)` sources of a recursive group.
    fn inherit_sources(&self, a: &'static AttrsExpr, new: &Rc<Env>) -> Vec<Value> {
        a.inherit_from
            .iter()
            .map(|e| self.thunk_rec(e, new))
            .collect()
    }

    /// `src.name`, lazily, sharing the evaluation of `src`.
    fn inherited_from(&mut self, name: Sym, src: &Value) -> Value {
        let sel = Value::PrimOpApp(Rc::new(PrimOpApp {
            op: crate::builtins::get_attr_op(),
            args: vec![self.sym_str(name)],
        }));
        Value::app(sel, src.clone())
    }

    /// The value of one binding of a recursive group (`rec` set or `let`).
    fn binding(
        &mut self,
        d: &'static AttrDef,
        env: &Rc<Env>,
        new: &Rc<Env>,
        froms: &[Value],
    ) -> Value {
        if let Some(k) = d.from {
            return self.inherited_from(d.name, &froms[k as usize]);
        }
        if d.inherited {
            self.thunk(&d.value, env)
        } else {
            self.thunk_rec(&d.value, new)
        }
    }

    fn eval_attrs(&mut self, a: &'static AttrsExpr, env: &Rc<Env>) -> Result<Value> {
        let mut entries: Vec<(Sym, Value, Pos)> =
            Vec::with_capacity(a.statics.len() + a.dynamics.len());
        let dyn_env;
        if a.rec {
            let new = Rc::new(Env {
                up: Some(env.clone()),
                vals: RefCell::new(EnvVals::new()),
            });
            let mut vals = Vec::with_capacity(a.statics.len());
            let froms = self.inherit_sources(a, &new);
            for d in &a.statics {
                let v = self.binding(d, env, &new, &froms);
                vals.push(v.clone());
                entries.push((d.name, v, d.pos));
            }
            *new.vals.borrow_mut() = EnvVals::from_vec(vals);
            if let Some(i) = a.statics.iter().position(|d| d.name == self.s.overrides) {
                self.apply_overrides(&new, &mut entries, i, a.pos)?;
            }
            dyn_env = new;
        } else {
            let froms = if a.inherit_from.is_empty() {
                Vec::new()
            } else {
                a.inherit_from.iter().map(|e| self.thunk(e, env)).collect()
            };
            for d in &a.statics {
                let v = match d.from {
                    Some(k) => self.inherited_from(d.name, &froms[k as usize]),
                    None => self.thunk(&d.value, env),
                };
                entries.push((d.name, v, d.pos));
            }
            dyn_env = env.clone();
        }
        entries.sort_by_key(|e| e.0);
        if a.dynamics.is_empty() {
            return Ok(Value::attrs(Attrs {
                entries: entries.into(),
            }));
        }
        for (k, v, p) in &a.dynamics {
            let kv = self.eval(k, &dyn_env)?;
            let name = match kv {
                Value::Null => continue,
                Value::Str(s) => intern(&s.bytes),
                other => {
                    return err(crate::error::type_msg("a string", &other), *p);
                }
            };
            match entries.binary_search_by(|e| e.0.cmp(&name)) {
                Ok(j) => {
                    let at = entries[j]
                        .2
                        .location()
                        .map(|l| format!(" at {l}"))
                        .unwrap_or_default();
                    return err(
                        format!("dynamic attribute '{name}' already defined{at}"),
                        *p,
                    );
                }
                Err(i) => entries.insert(i, (name, self.thunk(v, &dyn_env), *p)),
            }
        }
        Ok(Value::attrs(Attrs {
            entries: entries.into(),
        }))
    }

    fn eval_concat(&mut self, c: &'static ConcatExpr, env: &Rc<Env>) -> Result<Value> {
        let mut out = Vec::new();
        let mut ctx = Context::new();
        for (i, p) in c.parts.iter().enumerate() {
            let ppos = c.part_pos.get(i).copied().unwrap_or(c.pos);
            self.eval(p, env)
                .and_then(|v| self.coerce_into(&v, &mut ctx, false, true, ppos, &mut out))
                .trace(|| "while evaluating a path segment".to_string(), ppos)?;
        }
        self.charge(out.len() as u64 / 64, c.pos)?;
        Ok(Value::str_ctx(out, ctx))
    }

    /// The `{ file, line, column }` set for a position (null if none).
    pub fn pos_attrs(&self, pos: Pos) -> Value {
        match pos.location() {
            None => Value::Null,
            Some(loc) => Value::attrs(Attrs::from_unsorted(vec![
                (self.s.file, Value::str(loc.file.into_bytes()), Pos::NONE),
                (self.s.line, Value::Int(loc.line as i64), Pos::NONE),
                (self.s.column, Value::Int(loc.column as i64), Pos::NONE),
            ])),
        }
    }

    // ------------------------------------------------------------- calls

    /// A binary operator; those that Nix desugars to builtin calls get the
    /// builtin's frame on errors.
    fn binop_traced(&mut self, op: BinOp, a: Value, b: Value, pos: Pos) -> Result<Value> {
        let name = match op {
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => "lessThan",
            _ => return self.binop(op, a, b, pos),
        };
        self.binop(op, a, b, pos)
            .trace(|| format!("while calling the '{name}' builtin"), pos)
    }

    /// Why two (forced) values that compared unequal differ, in Nix's
    /// words, for the cases that need no nested explanation.
    fn explain_neq(&mut self, a: &Value, b: &Value) -> Result<Option<String>> {
        fn num_desc(v: &Value) -> Option<String> {
            match v {
                Value::Int(i) => Some(format!("an integer with value '{i}'")),
                Value::Float(f) => Some(format!(
                    "a float with value '{}'",
                    crate::print::fmt_float(*f)
                )),
                _ => None,
            }
        }
        Ok(Some(match (a, b) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => format!(
                "{} is not equal to {}",
                num_desc(a).unwrap_or_default(),
                num_desc(b).unwrap_or_default()
            ),
            (Value::Str(_), Value::Str(_)) => format!(
                "string '{}' is not equal to string '{}'",
                crate::error::short(a),
                crate::error::short(b)
            ),
            (Value::Path(x), Value::Path(y)) => format!(
                "path '{}' is not equal to path '{}'",
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y)
            ),
            (Value::List(x), Value::List(y)) if x.len() != y.len() => {
                let pa = crate::print::print_value(self, a, false)?;
                let pb = crate::print::print_value(self, b, false)?;
                format!(
                    "list of size '{}' is not equal to list of size '{}', left hand side is '{}', right hand side is '{}'",
                    x.len(),
                    y.len(),
                    String::from_utf8_lossy(&pa),
                    String::from_utf8_lossy(&pb)
                )
            }
            _ if a.is_function() || b.is_function() => {
                "distinct functions and immediate comparisons of identical functions compare as unequal".to_string()
            }
            (Value::Attrs(_), _) | (Value::List(_), _) => return Ok(None),
            _ if std::mem::discriminant(a) != std::mem::discriminant(b) => format!(
                "{} of value '{}' is not equal to {} of value '{}'",
                a.type_desc(),
                crate::error::short(a),
                b.type_desc(),
                crate::error::short(b)
            ),
            _ => return Ok(None),
        }))
    }

    /// Enters one level of a recursive walk (counted like a call).
    pub fn enter(&mut self, pos: Pos) -> Result<()> {
        self.depth += 1;
        if self.depth > self.opts.max_call_depth {
            self.depth -= 1;
            return Err(Error::new(
                ErrorKind::Limit,
                "stack overflow; max-call-depth exceeded",
                pos,
            ));
        }
        Ok(())
    }

    /// Applies a (forced) function value to an argument.
    pub fn call(&mut self, f: Value, arg: Value, pos: Pos) -> Result<Value> {
        self.check_stack(pos)?;
        self.depth += 1;
        if self.depth > self.opts.max_call_depth {
            self.depth -= 1;
            return Err(Error::new(
                ErrorKind::Limit,
                "stack overflow; max-call-depth exceeded",
                pos,
            ));
        }
        let r = self.call_inner(f, arg, pos);
        self.depth -= 1;
        r
    }

    fn call_inner(&mut self, f: Value, arg: Value, pos: Pos) -> Result<Value> {
        match f {
            Value::Lambda(c) => self.call_lambda(&c, arg, pos),
            Value::PrimOp(op) => {
                if op.arity == 1 {
                    let args = [arg];
                    self.call_prim(op, &args, pos)
                } else {
                    Ok(Value::PrimOpApp(Rc::new(PrimOpApp {
                        op,
                        args: vec![arg],
                    })))
                }
            }
            Value::PrimOpApp(app) => {
                let mut args = app.args.clone();
                args.push(arg);
                if args.len() == app.op.arity {
                    self.call_prim(app.op, &args, pos)
                } else {
                    Ok(Value::PrimOpApp(Rc::new(PrimOpApp { op: app.op, args })))
                }
            }
            Value::Attrs(a) => {
                if let Some(func) = a.get(self.s.functor) {
                    let func = self.force(&func.clone())?;
                    let g = self.call(func, Value::Attrs(a.clone()), pos)?;
                    self.call(g, arg, pos)
                } else {
                    err(
                        format!(
                            "attempt to call something which is not a function but a set: {}",
                            crate::error::short(&Value::Attrs(a.clone()))
                        ),
                        pos,
                    )
                }
            }
            other => err(
                format!(
                    "attempt to call something which is not a function but {}: {}",
                    other.type_desc(),
                    crate::error::short(&other)
                ),
                pos,
            ),
        }
    }

    /// Runs a builtin, remembering its arguments so that errors raised
    /// while forcing one of them name the argument (see [`Eval::arg_frame`]).
    fn call_prim(&mut self, op: &'static PrimOp, args: &[Value], pos: Pos) -> Result<Value> {
        let saved = self
            .cur_prim
            .replace((args.as_ptr() as usize, args.len(), op.name));
        let r = (op.f)(self, args, pos);
        self.cur_prim = saved;
        r.trace(|| format!("while calling the '{}' builtin", op.name), pos)
    }

    /// Adds "while evaluating the N-th argument passed to builtins.X" to an
    /// error raised while forcing `v`, if `v` is an argument of the builtin
    /// being run.
    fn arg_frame(&self, v: &Value, mut e: Box<Error>) -> Box<Error> {
        if let Some((start, n, name)) = self.cur_prim {
            let addr = v as *const Value as usize;
            let size = std::mem::size_of::<Value>();
            if addr >= start && addr < start + n * size {
                let idx = (addr - start) / size;
                let unary = matches!(
                    name,
                    "attrNames"
                        | "attrValues"
                        | "derivationStrict"
                        | "listToAttrs"
                        | "stringLength"
                );
                let nth = if unary {
                    ""
                } else {
                    ["first ", "second ", "third "]
                        .get(idx)
                        .copied()
                        .unwrap_or("")
                };
                let name = match name {
                    "foldl'" => "builtins.foldlStrict".to_string(),
                    "head" | "tail" | "elemAt" | "storePath" => format!("'builtins.{name}'"),
                    n => format!("builtins.{n}"),
                };
                if e.trace.len() < 64 {
                    e.trace.push((
                        format!("while evaluating the {nth}argument passed to {name}"),
                        Pos::NONE,
                    ));
                }
            }
        }
        e
    }

    fn call_lambda(&mut self, c: &Rc<Closure>, arg: Value, pos: Pos) -> Result<Value> {
        let lam = c.lam;
        let env = match &lam.formals {
            None => Rc::new(Env {
                up: Some(c.env.clone()),
                vals: RefCell::new(smallvec::smallvec![arg]),
            }),
            Some(formals) => {
                let argv = self.force(&arg)?;
                let Value::Attrs(attrs) = &argv else {
                    return err(crate::error::type_msg("a set", &argv), pos)
                        .trace(|| "while calling a function".to_string(), lam.pos);
                };
                let env = Rc::new(Env {
                    up: Some(c.env.clone()),
                    vals: RefCell::new(EnvVals::new()),
                });
                let mut vals = Vec::with_capacity(formals.len() + 1);
                let mut used = 0;
                for f in formals {
                    match attrs.get(f.name) {
                        Some(v) => {
                            used += 1;
                            vals.push(v.clone());
                        }
                        None => match &f.default {
                            Some(d) => vals.push(self.thunk_rec(d, &env)),
                            None => {
                                return err(
                                    format!(
                                        "function '{}' called without required argument '{}'",
                                        lam_name(lam),
                                        f.name
                                    ),
                                    lam.pos,
                                )
                                .trace(|| "from call site".to_string(), pos);
                            }
                        },
                    }
                }
                if !lam.ellipsis && used < attrs.len() {
                    for (name, _, _) in attrs.sorted_by_name() {
                        if !formals.iter().any(|f| f.name == *name) {
                            let mut e = Error::new(
                                ErrorKind::Eval,
                                format!(
                                    "function '{}' called with unexpected argument '{}'",
                                    lam_name(lam),
                                    name
                                ),
                                lam.pos,
                            );
                            e.suggestion = crate::error::did_you_mean(
                                name.bytes(),
                                formals.iter().map(|f| f.name.bytes()),
                            );
                            return Err(e).trace(|| "from call site".to_string(), pos);
                        }
                    }
                }
                if lam.arg.is_some() {
                    vals.push(argv.clone());
                }
                *env.vals.borrow_mut() = EnvVals::from_vec(vals);
                env
            }
        };
        self.eval(&lam.body, &env)
            .trace(|| format!("while calling {}", lam_desc(lam)), lam.pos)
            .map_err(|mut e| {
                if pos.is_some() && e.trace.len() < 64 {
                    e.trace.push(("from call site".to_string(), pos));
                }
                e
            })
    }

    /// Calls `f` with several arguments.
    pub fn call_n(&mut self, f: &Value, args: &[Value], _pos: Pos) -> Result<Value> {
        let mut f = self.force(f)?;
        for a in args {
            f = self.call(f, a.clone(), Pos::NONE)?;
        }
        Ok(f)
    }

    // ---------------------------------------------------------- helpers

    /// Forces a value and checks it is a set.
    pub fn force_attrs(&mut self, v: &Value, pos: Pos) -> Result<Attrs> {
        self.force_attrs_inner(v, pos)
            .map_err(|e| self.arg_frame(v, e))
    }

    fn force_attrs_inner(&mut self, v: &Value, pos: Pos) -> Result<Attrs> {
        match self.force(v)? {
            Value::Attrs(a) => Ok(a),
            v => err(crate::error::type_msg("a set", &v), pos),
        }
    }
    /// Forces a value and checks it is a list.
    pub fn force_list(&mut self, v: &Value, pos: Pos) -> Result<List> {
        self.force_list_inner(v, pos)
            .map_err(|e| self.arg_frame(v, e))
    }

    fn force_list_inner(&mut self, v: &Value, pos: Pos) -> Result<List> {
        match self.force(v)? {
            Value::List(l) => Ok(l),
            v => err(crate::error::type_msg("a list", &v), pos),
        }
    }
    /// Forces a value and checks it is an integer.
    pub fn force_int(&mut self, v: &Value, pos: Pos) -> Result<i64> {
        self.force_int_inner(v, pos)
            .map_err(|e| self.arg_frame(v, e))
    }

    fn force_int_inner(&mut self, v: &Value, pos: Pos) -> Result<i64> {
        match self.force(v)? {
            Value::Int(i) => Ok(i),
            v => err(crate::error::type_msg("an integer", &v), pos),
        }
    }
    /// Forces a value and checks it is a Boolean.
    pub fn force_bool(&mut self, v: &Value, pos: Pos) -> Result<bool> {
        self.force_bool_inner(v, pos)
            .map_err(|e| self.arg_frame(v, e))
    }

    fn force_bool_inner(&mut self, v: &Value, pos: Pos) -> Result<bool> {
        match self.force(v)? {
            Value::Bool(b) => Ok(b),
            v => err(crate::error::type_msg("a Boolean", &v), pos),
        }
    }
    /// Forces a value and checks it is a function.
    pub fn force_fn(&mut self, v: &Value, pos: Pos) -> Result<Value> {
        self.force_fn_inner(v, pos)
            .map_err(|e| self.arg_frame(v, e))
    }

    fn force_fn_inner(&mut self, v: &Value, pos: Pos) -> Result<Value> {
        let f = self.force(v)?;
        if f.is_function() || matches!(&f, Value::Attrs(a) if a.get(self.s.functor).is_some()) {
            Ok(f)
        } else {
            err(crate::error::type_msg("a function", &f), pos)
        }
    }
    /// Forces a value and checks it is a string (no coercion).
    pub fn force_str(&mut self, v: &Value, pos: Pos) -> Result<Rc<NixStr>> {
        self.force_str_inner(v, pos)
            .map_err(|e| self.arg_frame(v, e))
    }

    fn force_str_inner(&mut self, v: &Value, pos: Pos) -> Result<Rc<NixStr>> {
        match self.force(v)? {
            Value::Str(s) => Ok(s),
            v => err(crate::error::type_msg("a string", &v), pos),
        }
    }
    /// A string without context (errors if it has one? no: context is ignored).
    pub fn force_str_bytes(&mut self, v: &Value, pos: Pos) -> Result<Vec<u8>> {
        Ok(self.force_str(v, pos)?.bytes.to_vec())
    }

    /// Whether a value is a derivation (`type = "derivation"`).
    pub fn is_derivation(&mut self, a: &Attrs) -> Result<bool> {
        match a.get(self.s.type_) {
            Some(t) => {
                let t = self.force(&t.clone())?;
                Ok(matches!(&t, Value::Str(s) if &*s.bytes == b"derivation"))
            }
            None => Ok(false),
        }
    }

    /// Nix's `coerceToString`. `more` allows null/bools/numbers/lists;
    /// `copy` copies paths to the store (else they stay plain paths).
    pub fn coerce_to_string(
        &mut self,
        v: &Value,
        ctx: &mut Context,
        more: bool,
        copy: bool,
        pos: Pos,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.coerce_into(v, ctx, more, copy, pos, &mut out)?;
        Ok(out)
    }

    /// [`Eval::coerce_to_string`] appending to `out` (no buffer of its own
    /// for each piece of an interpolation or a list).
    pub fn coerce_into(
        &mut self,
        v: &Value,
        ctx: &mut Context,
        more: bool,
        copy: bool,
        pos: Pos,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.check_stack(pos)?;
        let v = self.force(v)?;
        match &v {
            Value::Str(s) => {
                if let Some(c) = &s.ctx {
                    ctx.extend(c.iter().cloned());
                }
                out.extend_from_slice(&s.bytes);
            }
            Value::Path(p) => {
                if copy {
                    let sp = self
                        .io
                        .copy_path_to_store(p)
                        .map_err(|m| Error::new(ErrorKind::Eval, m, pos))?;
                    out.extend_from_slice(&sp);
                    ctx.insert(sp.into_boxed_slice());
                } else {
                    out.extend_from_slice(p);
                }
            }
            Value::Attrs(a) => {
                if let Some((_, f, fpos)) = a.get_entry(self.s.to_string).cloned() {
                    let r = self.call_n(&f, std::slice::from_ref(&v), pos).trace(
                        || "while calling the `__toString` attribute".to_string(),
                        fpos,
                    )?;
                    return self.coerce_into(&r, ctx, more, copy, pos, out).trace(
                        || "while using the result of the `__toString` attribute".to_string(),
                        fpos,
                    );
                }
                if let Some((_, o, opos)) = a.get_entry(self.s.out_path).cloned() {
                    let o = self.force(&o).trace(
                        || "while evaluating the `outPath` attribute".to_string(),
                        opos,
                    )?;
                    return self.coerce_into(&o, ctx, more, copy, pos, out);
                }
                return err(
                    format!(
                        "cannot coerce a set to a string: {}",
                        crate::error::short(&v)
                    ),
                    pos,
                );
            }
            Value::Null if more => {}
            Value::Bool(b) if more => {
                if *b {
                    out.push(b'1');
                }
            }
            Value::Int(i) if more => crate::print::push_int(*i, out),
            Value::Float(f) if more => out.extend_from_slice(format!("{f:.6}").as_bytes()),
            Value::List(l) if more => {
                for (i, x) in l.iter().enumerate() {
                    self.coerce_into(x, ctx, more, copy, pos, out)?;
                    if i + 1 < l.len() {
                        let x = self.force(x)?;
                        if !matches!(&x, Value::List(l2) if l2.is_empty()) {
                            out.push(b' ');
                        }
                    }
                }
            }
            other => {
                return err(
                    format!(
                        "cannot coerce {} to a string: {}",
                        other.type_desc(),
                        crate::error::short(other)
                    ),
                    pos,
                );
            }
        }
        Ok(())
    }

    /// Forces a value deeply (`--strict`, `deepSeq`).
    pub fn deep_force(&mut self, v: &Value, pos: Pos) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        self.deep_force_inner(v, pos, &mut seen)
    }

    fn deep_force_inner(
        &mut self,
        v: &Value,
        pos: Pos,
        seen: &mut std::collections::HashSet<usize>,
    ) -> Result<()> {
        self.enter(pos)?;
        let r = self.deep_force_step(v, pos, seen);
        self.depth -= 1;
        r
    }

    fn deep_force_step(
        &mut self,
        v: &Value,
        pos: Pos,
        seen: &mut std::collections::HashSet<usize>,
    ) -> Result<()> {
        let v = self.force(v)?;
        match &v {
            Value::Attrs(a) => {
                if !seen.insert(a.as_ptr() as usize) {
                    return Ok(());
                }
                for (name, x, p) in a.entries.iter() {
                    self.deep_force_inner(x, *p, seen)
                        .trace(|| format!("while evaluating the attribute '{name}'"), *p)?;
                }
            }
            Value::List(l) => {
                if !seen.insert(l.as_ptr() as usize) {
                    return Ok(());
                }
                for (i, x) in l.iter().enumerate() {
                    self.deep_force_inner(x, pos, seen).trace(
                        || format!("while evaluating list element at index {i}"),
                        Pos::NONE,
                    )?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn lam_desc(l: &LambdaExpr) -> String {
    match l.name {
        Some(n) => format!("'{n}'"),
        None => "anonymous lambda".to_string(),
    }
}

fn lam_name(l: &LambdaExpr) -> String {
    match l.name {
        Some(n) => n.to_string(),
        None => "anonymous lambda".to_string(),
    }
}

/// The integer `e` stands for if that is known without evaluating
/// anything: an integer constant, or a variable holding an evaluated one.
#[inline]
fn peek_int(e: &Expr, env: &Rc<Env>) -> Option<i64> {
    match e {
        Expr::Const(Value::Int(i)) => Some(*i),
        Expr::Var { level, idx, .. } => {
            let mut f = env;
            for _ in 0..*level {
                f = f.up.as_ref()?;
            }
            match f.vals.borrow().get(*idx as usize)? {
                Value::Int(i) => Some(*i),
                Value::Thunk(t) => match t.done()? {
                    Value::Int(i) => Some(i),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// Reads slot `idx` of the frame `level` steps up from `env`.
#[inline]
pub fn lookup(env: &Rc<Env>, level: u32, idx: u32) -> Option<Value> {
    let mut e = env;
    for _ in 0..level {
        e = e.up.as_ref()?;
    }
    e.vals.borrow().get(idx as usize).cloned()
}
