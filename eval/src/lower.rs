//! Lowering of the rnix syntax tree into the evaluator's IR, with static
//! variable resolution, attribute-path merging and the parse-time checks
//! Nix performs (duplicate attributes and formals, undefined variables).

use crate::error::{Error, ErrorKind, Result};
use crate::eval::Lint;
use crate::ir::*;
use crate::pos::Pos;
use crate::source;
use crate::symbol::{Sym, intern, sym};
use crate::value::Value;
use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rowan::ast::AstNode;
use std::collections::HashMap;
use std::rc::Rc;

/// A lexical scope during lowering.
enum Scope {
    Names(HashMap<Sym, u32>),
    With,
}

/// Options for path literals.
#[derive(Clone, Default)]
pub struct LowerOpts {
    /// Directory relative paths are resolved against.
    pub base_dir: Vec<u8>,
    /// `$HOME`, for `~/` paths.
    pub home: Option<Vec<u8>>,
    /// Lower for `scopedImport`: free variables are looked up in the
    /// scope set first, then in the globals.
    pub scoped: bool,
    /// Path and URL literal lints.
    pub lints: crate::eval::Lints,
}

struct Lowerer<'a> {
    globals: &'a HashMap<Sym, u32>,
    file: u32,
    scopes: Vec<Scope>,
    opts: &'a LowerOpts,
    depth: usize,
    /// Position base of the file (see [`Pos::at`]).
    base: u32,
}

/// Maximum nesting depth of an expression. Evaluation recurses along the
/// syntax tree between function calls, so bounding it here keeps the
/// evaluator's stack use bounded.
const MAX_NESTING: usize = 20_000;

/// Canonicalises an absolute path: removes `.`, `..` and repeated slashes.
pub fn canon_path(p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::with_capacity(p.len());
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

/// Parses and lowers `text` (already decoded with [`source::decode`]).
/// `globals` lists the names of the global environment frame in slot order.
pub fn parse(text: &str, file: u32, globals: &HashMap<Sym, u32>, opts: &LowerOpts) -> Result<Expr> {
    let parsed = rnix::Root::parse(text);
    if let Some(e) = parsed.errors().first() {
        return Err(parse_error(e, file, text));
    }
    let root = parsed.tree();
    let scopes = if opts.scoped {
        vec![Scope::With]
    } else {
        vec![Scope::Names(globals.clone())]
    };
    let mut l = Lowerer {
        file,
        scopes,
        opts,
        globals,
        depth: 0,
        base: crate::pos::file_base(file),
    };
    match root.expr() {
        Some(e) => l.expr(e),
        None => Err(Error::new(
            ErrorKind::Parse,
            "syntax error, unexpected end of file",
            Pos::new(file, 0),
        )),
    }
}

fn parse_error(e: &rnix::ParseError, file: u32, text: &str) -> Box<Error> {
    use rnix::ParseError as P;
    // A path literal with a trailing slash lexes as an error token.
    if let P::UnexpectedWanted(_, r, _) | P::Unexpected(r) = e {
        let (s, end) = (usize::from(r.start()), usize::from(r.end()));
        if let Some(tok) = text.get(s..end)
            && tok.ends_with('/')
            && (tok.starts_with('/')
                || tok.starts_with('.')
                || tok.starts_with('~')
                || tok.contains('/'))
            && !tok.contains(char::is_whitespace)
        {
            return Error::new(
                ErrorKind::Parse,
                "path has a trailing slash",
                Pos::new(file, end as u32),
            );
        }
    }
    let (msg, off) = match e {
        P::Unexpected(r) => (
            "syntax error, unexpected token".to_string(),
            u32::from(r.start()),
        ),
        P::UnexpectedExtra(r) => (
            "syntax error, unexpected extra token".to_string(),
            u32::from(r.start()),
        ),
        P::UnexpectedWanted(got, r, wanted) => (
            format!(
                "syntax error, unexpected {}{}",
                kind_name(*got),
                expecting(wanted)
            ),
            u32::from(r.start()),
        ),
        P::UnexpectedDoubleBind(r) => (
            "syntax error, double binding".to_string(),
            u32::from(r.start()),
        ),
        P::UnexpectedEOF | P::UnexpectedEOFWanted(_) => (
            "syntax error, unexpected end of file".to_string(),
            text.len() as u32,
        ),
        P::DuplicatedArgs(r, name) => (
            format!("duplicate formal function argument '{name}'"),
            u32::from(r.start()),
        ),
        P::RecursionLimitExceeded => ("syntax error, expression nested too deeply".to_string(), 0),
        _ => (format!("syntax error, {e}"), 0),
    };
    Error::new(ErrorKind::Parse, msg, Pos::new(file, off))
}

/// The ", expecting ..." part of a syntax error, in Nix's words.
fn expecting(wanted: &[rnix::SyntaxKind]) -> String {
    use rnix::SyntaxKind::*;
    if wanted.is_empty() {
        return String::new();
    }
    if wanted.contains(&TOKEN_IDENT) && wanted.contains(&TOKEN_OR) {
        return ", expecting identifier or 'or' or '${' or '\"'".to_string();
    }
    // rnix reports fewer alternatives than Nix's grammar in these places.
    match wanted {
        [TOKEN_R_BRACE] => return ", expecting '}' or ','".to_string(),
        [TOKEN_ASSIGN] => return ", expecting '.' or '='".to_string(),
        _ => {}
    }
    if wanted.len() > 2
        || wanted
            .iter()
            .any(|k| matches!(k, TOKEN_STRING_END | TOKEN_STRING_CONTENT | TOKEN_CUR_POS))
    {
        return String::new();
    }
    let names: Vec<String> = wanted.iter().map(|k| kind_name(*k)).collect();
    format!(", expecting {}", names.join(" or "))
}

/// How Nix's parser names a token in syntax errors.
fn kind_name(k: rnix::SyntaxKind) -> String {
    use rnix::SyntaxKind::*;
    let fixed = match k {
        TOKEN_ADD => "'+'",
        TOKEN_AND_AND => "'&&'",
        TOKEN_OR_OR => "'||'",
        TOKEN_IMPLICATION => "'->'",
        TOKEN_CONCAT => "'++'",
        TOKEN_UPDATE => "'//'",
        TOKEN_EQUAL => "'=='",
        TOKEN_NOT_EQUAL => "'!='",
        TOKEN_LESS_OR_EQ => "'<='",
        TOKEN_MORE_OR_EQ => "'>='",
        TOKEN_LESS => "'<'",
        TOKEN_MORE => "'>'",
        TOKEN_ASSIGN => "'='",
        TOKEN_COLON => "':'",
        TOKEN_SEMICOLON => "';'",
        TOKEN_COMMA => "','",
        TOKEN_DOT => "'.'",
        TOKEN_ELLIPSIS => "'...'",
        TOKEN_QUESTION => "'?'",
        TOKEN_AT => "'@'",
        TOKEN_MUL => "'*'",
        TOKEN_DIV => "'/'",
        TOKEN_SUB => "'-'",
        TOKEN_INVERT => "'!'",
        TOKEN_L_BRACE => "'{'",
        TOKEN_R_BRACE => "'}'",
        TOKEN_L_BRACK => "'['",
        TOKEN_R_BRACK => "']'",
        TOKEN_L_PAREN => "'('",
        TOKEN_R_PAREN => "')'",
        TOKEN_ASSERT => "'assert'",
        TOKEN_ELSE => "'else'",
        TOKEN_IF => "'if'",
        TOKEN_IN => "'in'",
        TOKEN_INHERIT => "'inherit'",
        TOKEN_LET => "'let'",
        TOKEN_OR => "'or'",
        TOKEN_REC => "'rec'",
        TOKEN_THEN => "'then'",
        TOKEN_WITH => "'with'",
        TOKEN_URI => "URI",
        TOKEN_INTEGER => "integer",
        TOKEN_FLOAT => "floating-point literal",
        TOKEN_IDENT => "identifier",
        TOKEN_ERROR => "invalid token",
        TOKEN_PATH_ABS | TOKEN_PATH_REL => "path",
        TOKEN_PATH_HOME => "'~/…' path",
        TOKEN_PATH_SEARCH => "'<…>' path",
        TOKEN_INTERPOL_START => "'${'",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    let s = format!("{k:?}");
    s.trim_start_matches("TOKEN_")
        .trim_start_matches("NODE_")
        .to_lowercase()
}

/// A binding before lowering (so attribute paths can be merged first).
enum PreVal {
    Ast(ast::Expr),
    Attrs(PreAttrs),
    InheritVar(Sym, Pos),
    InheritFrom(ast::Expr, Sym, Pos),
}

struct PreAttr {
    name: Sym,
    pos: Pos,
    val: PreVal,
}

struct PreAttrs {
    rec: bool,
    statics: Vec<PreAttr>,
    dynamics: Vec<(ast::Attr, PreVal, Pos)>,
    pos: Pos,
}

fn strip_parens(e: ast::Expr) -> ast::Expr {
    let mut e = e;
    loop {
        match e {
            ast::Expr::Paren(ref p) => match p.expr() {
                Some(inner) => e = inner,
                None => return e,
            },
            _ => return e,
        }
    }
}

impl Lowerer<'_> {
    fn pos_of(&self, n: &rnix::SyntaxNode) -> Pos {
        Pos::at(self.base, u32::from(n.text_range().start()))
    }

    /// Where an operand is, for errors in it: its start, inside any
    /// parentheses.
    fn operand_pos(&self, e: &ast::Expr) -> Pos {
        match e {
            ast::Expr::Paren(p) => match p.expr() {
                Some(inner) => self.operand_pos(&inner),
                None => self.pos_of(p.syntax()),
            },
            e => self.pos_of(e.syntax()),
        }
    }

    fn err<T>(&self, msg: impl Into<String>, pos: Pos) -> Result<T> {
        Err(Error::new(ErrorKind::Parse, msg, pos))
    }

    fn missing<T>(&self, n: &rnix::SyntaxNode) -> Result<T> {
        self.err("syntax error, incomplete expression", self.pos_of(n))
    }

    fn resolve(&self, name: Sym, pos: Pos) -> Result<Expr> {
        let mut withs = Vec::new();
        for (level, s) in self.scopes.iter().rev().enumerate() {
            let level = level as u32;
            match s {
                Scope::Names(m) => {
                    if let Some(&idx) = m.get(&name) {
                        return Ok(Expr::Var { level, idx, name });
                    }
                }
                Scope::With => withs.push(level),
            }
        }
        let fallback = if self.opts.scoped {
            self.globals.get(&name).copied()
        } else {
            None
        };
        if withs.is_empty() {
            return self.err(format!("undefined variable '{name}'"), pos);
        }
        Ok(Expr::WithVar {
            name,
            levels: withs.into_boxed_slice(),
            pos,
            fallback,
        })
    }

    fn expr(&mut self, e: ast::Expr) -> Result<Expr> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            self.depth -= 1;
            return self.err(
                "syntax error, expression nested too deeply",
                self.pos_of(e.syntax()),
            );
        }
        let r = self.expr_inner(e);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, e: ast::Expr) -> Result<Expr> {
        let pos = self.pos_of(e.syntax());
        Ok(match e {
            ast::Expr::Paren(p) => match p.expr() {
                Some(x) => self.expr(x)?,
                None => return self.missing(p.syntax()),
            },
            ast::Expr::Root(r) => match r.expr() {
                Some(x) => self.expr(x)?,
                None => return self.missing(r.syntax()),
            },
            ast::Expr::Error(n) => return self.err("syntax error", self.pos_of(n.syntax())),
            ast::Expr::Ident(id) => {
                let name = self.ident_sym(&id)?;
                self.resolve(name, pos)?
            }
            ast::Expr::Literal(lit) => match lit.kind() {
                ast::LiteralKind::Integer(i) => match i.value() {
                    Ok(v) => Expr::Const(Value::Int(v)),
                    Err(_) => {
                        return self.err(format!("invalid integer '{}'", i.syntax().text()), pos);
                    }
                },
                ast::LiteralKind::Float(f) => match f.value() {
                    Ok(v) => Expr::Const(Value::Float(v)),
                    Err(_) => {
                        return self.err(format!("invalid float '{}'", f.syntax().text()), pos);
                    }
                },
                ast::LiteralKind::Uri(u) => {
                    let t = u.syntax().text();
                    let verb = if self.opts.lints.url == Lint::Fatal {
                        "disallowed"
                    } else {
                        "discouraged"
                    };
                    self.lint(
                        self.opts.lints.url,
                        format!("URL literals are {verb}. Consider using a string literal \"{t}\" instead (lint-url-literals)"),
                        pos,
                    )?;
                    Expr::Const(Value::str(source::encode(t)))
                }
            },
            ast::Expr::Str(s) => self.string(&s, pos)?,
            ast::Expr::PathAbs(p) => self.path(p.parts(), PathKind::Abs, pos)?,
            ast::Expr::PathRel(p) => self.path(p.parts(), PathKind::Rel, pos)?,
            ast::Expr::PathHome(p) => self.path(p.parts(), PathKind::Home, pos)?,
            ast::Expr::PathSearch(p) => {
                let text = p
                    .content()
                    .map(|c| c.text().to_string())
                    .unwrap_or_default();
                let inner = text.trim_start_matches('<').trim_end_matches('>');
                let ff = self.resolve(sym("__findFile"), pos)?;
                let np = self.resolve(sym("__nixPath"), pos)?;
                let arg = Expr::Const(Value::str(source::encode(inner)));
                Expr::Apply(Box::new((Expr::Apply(Box::new((ff, np)), pos), arg)), pos)
            }
            ast::Expr::List(l) => {
                let mut items = Vec::new();
                for it in l.items() {
                    self.warn_cursed_or(&it);
                    items.push(self.expr(it)?);
                }
                Expr::List(items.into_boxed_slice())
            }
            ast::Expr::Lambda(l) => Expr::Lambda(Box::new(self.lambda(&l, pos)?)),
            ast::Expr::Apply(a) => {
                let (Some(f), Some(x)) = (a.lambda(), a.argument()) else {
                    return self.missing(a.syntax());
                };
                self.warn_cursed_or(&x);
                let f = self.expr(f)?;
                let x = self.expr(x)?;
                Expr::Apply(Box::new((f, x)), pos)
            }
            ast::Expr::Assert(a) => {
                let (Some(c), Some(b)) = (a.condition(), a.body()) else {
                    return self.missing(a.syntax());
                };
                let c = self.expr(c)?;
                let text: Box<str> = crate::parse_print::show(&c).into();
                let b = self.expr(b)?;
                Expr::Assert(Box::new((c, b)), pos, text)
            }
            ast::Expr::IfElse(i) => {
                let (Some(c), Some(t), Some(e)) = (i.condition(), i.body(), i.else_body()) else {
                    return self.missing(i.syntax());
                };
                Expr::If(Box::new((self.expr(c)?, self.expr(t)?, self.expr(e)?)), pos)
            }
            ast::Expr::Select(s) => {
                let (Some(e), Some(path)) = (s.expr(), s.attrpath()) else {
                    return self.missing(s.syntax());
                };
                let e = self.expr(e)?;
                let keys = self.attrpath(&path)?;
                let def = match s.default_expr() {
                    Some(d) => {
                        self.warn_cursed_or(&d);
                        Some(Box::new(self.expr(d)?))
                    }
                    None => None,
                };
                let pos = self.pos_of(path.syntax());
                Expr::Select(Box::new(e), keys, def, pos)
            }
            ast::Expr::HasAttr(h) => {
                let (Some(e), Some(path)) = (h.expr(), h.attrpath()) else {
                    return self.missing(h.syntax());
                };
                Expr::HasAttr(Box::new(self.expr(e)?), self.attrpath(&path)?)
            }
            ast::Expr::UnaryOp(u) => {
                let Some(x) = u.expr() else {
                    return self.missing(u.syntax());
                };
                let xpos = self.operand_pos(&x);
                let x = self.expr(x)?;
                match u.operator() {
                    Some(ast::UnaryOpKind::Invert) => Expr::Not(Box::new(x), xpos),
                    _ => Expr::Bin(BinOp::Sub, Box::new((Expr::Const(Value::Int(0)), x)), pos),
                }
            }
            ast::Expr::BinOp(b) => {
                let (Some(l), Some(r), Some(op)) = (b.lhs(), b.rhs(), b.operator()) else {
                    return self.missing(b.syntax());
                };
                let opos = b
                    .syntax()
                    .children_with_tokens()
                    .filter_map(|c| c.into_token())
                    .find(|t| ast::BinOpKind::from_kind(t.kind()).is_some())
                    .map(|t| Pos::at(self.base, u32::from(t.text_range().start())))
                    .unwrap_or(pos);
                let rpos = self.pos_of(r.syntax());
                let (lop, rop) = (self.operand_pos(&l), self.operand_pos(&r));
                let l = self.expr(l)?;
                let r = self.expr(r)?;
                let pair = Box::new((l, r));
                use ast::BinOpKind as K;
                match op {
                    K::Concat => Expr::Bin(BinOp::Concat, pair, opos),
                    K::Update => Expr::Bin(BinOp::Update, pair, opos),
                    K::Add => Expr::Bin(BinOp::Add, pair, rpos),
                    K::Sub => Expr::Bin(BinOp::Sub, pair, opos),
                    K::Mul => Expr::Bin(BinOp::Mul, pair, opos),
                    K::Div => Expr::Bin(BinOp::Div, pair, opos),
                    K::Equal => Expr::Bin(BinOp::Eq, pair, opos),
                    K::NotEqual => Expr::Bin(BinOp::Neq, pair, opos),
                    K::Less => Expr::Bin(BinOp::Lt, pair, opos),
                    K::LessOrEq => Expr::Bin(BinOp::Le, pair, opos),
                    K::More => Expr::Bin(BinOp::Gt, pair, opos),
                    K::MoreOrEq => Expr::Bin(BinOp::Ge, pair, opos),
                    K::And => Expr::And(Box::new((pair.0, pair.1, lop, rop))),
                    K::Or => Expr::Or(Box::new((pair.0, pair.1, lop, rop))),
                    K::Implication => Expr::Impl(Box::new((pair.0, pair.1, lop, rop))),
                    K::PipeRight | K::PipeLeft => {
                        return self.err(
                            "experimental Nix feature 'pipe-operators' is disabled; add '--extra-experimental-features pipe-operators' to enable it",
                            opos,
                        );
                    }
                }
            }
            ast::Expr::With(w) => {
                let (Some(ns), Some(body)) = (w.namespace(), w.body()) else {
                    return self.missing(w.syntax());
                };
                let ns = self.expr(ns)?;
                self.scopes.push(Scope::With);
                let body = self.expr(body);
                self.scopes.pop();
                Expr::With(Box::new((ns, body?)), pos)
            }
            ast::Expr::LetIn(l) => {
                let Some(body) = l.body() else {
                    return self.missing(l.syntax());
                };
                let pre = self.pre_attrs(&l, true, pos)?;
                if !pre.dynamics.is_empty() {
                    return self.err("dynamic attributes not allowed in let", pos);
                }
                let (attrs, body) = self.lower_rec(pre, Some(body))?;
                Expr::Let(Box::new((attrs, body.unwrap_or(Expr::Const(Value::Null)))))
            }
            ast::Expr::LegacyLet(l) => {
                let pre = self.pre_attrs(&l, true, pos)?;
                let attrs = self.lower_attrs(pre)?;
                Expr::Select(
                    Box::new(Expr::Attrs(Box::new(attrs))),
                    Box::new([Key::Static(sym("body"))]),
                    None,
                    pos,
                )
            }
            ast::Expr::AttrSet(s) => {
                let rec = s.rec_token().is_some();
                let pre = self.pre_attrs(&s, rec, pos)?;
                Expr::Attrs(Box::new(self.lower_attrs(pre)?))
            }
            ast::Expr::CurPos(_) => Expr::CurPos(pos),
        })
    }

    fn ident_sym(&self, id: &ast::Ident) -> Result<Sym> {
        match id.ident_token() {
            Some(t) => Ok(intern(&source::encode(t.text()))),
            None => Ok(intern(&source::encode(&id.syntax().text().to_string()))),
        }
    }

    fn string(&mut self, s: &ast::Str, pos: Pos) -> Result<Expr> {
        let parts = s.normalized_parts();
        let mut out = Vec::new();
        let mut part_pos = Vec::new();
        for p in parts {
            match p {
                InterpolPart::Literal(l) => {
                    if l.contains('\0') {
                        return self.err(
                            format!(
                                "input string '{}' cannot be represented as Nix string because it contains null bytes",
                                l.replace('\0', "␀")
                            ),
                            Pos::new(self.file, pos.off() + 1),
                        );
                    }
                    if !l.is_empty() {
                        out.push(Expr::Const(Value::str(source::encode(&l))));
                        part_pos.push(pos);
                    }
                }
                InterpolPart::Interpolation(i) => match i.expr() {
                    Some(e) => {
                        part_pos.push(self.pos_of(i.syntax()));
                        out.push(self.expr(e)?)
                    }
                    None => return self.missing(i.syntax()),
                },
            }
        }
        if out.is_empty() {
            return Ok(Expr::Const(Value::str(Vec::new())));
        }
        if out.len() == 1 && matches!(out[0], Expr::Const(Value::Str(_))) {
            return Ok(out.pop().unwrap_or(Expr::Const(Value::Null)));
        }
        Ok(Expr::Concat(Box::new(ConcatExpr {
            parts: out,
            pos,
            part_pos,
        })))
    }

    /// Warns about `f or` (a call with the variable `or`) where Nix will
    /// read `or` differently in future: as a list element, a call
    /// argument or the default of `a.b or ...`.
    fn warn_cursed_or(&self, e: &ast::Expr) {
        let ast::Expr::Apply(a) = e else {
            return;
        };
        let Some(ast::Expr::Ident(i)) = a.argument() else {
            return;
        };
        if i.ident_token().is_none_or(|t| t.text() != "or") {
            return;
        }
        let at = self
            .pos_of(a.syntax())
            .location()
            .map(|l| format!("at {l}: "))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&crate::source::encode(&a.syntax().text().to_string()))
            .into_owned();
        eprintln!(
            "warning: {at}This expression uses `or` as an identifier in a way that will change in a future Nix release.\nWrap this entire expression in parentheses to preserve its current meaning:\n    ({text})\nGive feedback at https://github.com/NixOS/nix/pull/11121"
        );
    }

    fn lint(&self, level: Lint, msg: String, pos: Pos) -> Result<()> {
        match level {
            Lint::Off => Ok(()),
            Lint::Warn => {
                eprintln!("{}", crate::error::render_warning(&msg, pos));
                Ok(())
            }
            Lint::Fatal => self.err(msg, pos),
        }
    }

    fn path(
        &mut self,
        parts: Vec<InterpolPart<ast::PathContent>>,
        kind: PathKind,
        pos: Pos,
    ) -> Result<Expr> {
        if let Some(InterpolPart::Literal(l)) = parts.first() {
            let t = l.text();
            match kind {
                PathKind::Abs => self.lint(
                    self.opts.lints.abs_path,
                    format!("absolute path literals are not portable. Consider replacing path literal '{t}' by a string, relative path, or parameter (lint-absolute-path-literals)"),
                    pos,
                )?,
                PathKind::Home => self.lint(
                    self.opts.lints.abs_path,
                    format!("home path literals are not portable. Consider replacing path literal '{t}' by a string, relative path, or parameter (lint-absolute-path-literals)"),
                    pos,
                )?,
                PathKind::Rel if !t.starts_with("./") && !t.starts_with("../") => self.lint(
                    self.opts.lints.short_path,
                    format!("relative path literal '{t}' should be prefixed with '.' for clarity: './{t}' (lint-short-path-literals)"),
                    pos,
                )?,
                PathKind::Rel => {}
            }
        }
        let mut out = Vec::new();
        let mut first = true;
        let n = parts.len();
        for p in parts {
            match p {
                InterpolPart::Literal(l) => {
                    let text = source::encode(l.text());
                    if first {
                        let mut abs = match kind {
                            PathKind::Abs => text.clone(),
                            PathKind::Rel => {
                                let mut b = self.opts.base_dir.clone();
                                b.push(b'/');
                                b.extend_from_slice(&text);
                                b
                            }
                            PathKind::Home => {
                                let Some(home) = &self.opts.home else {
                                    return Ok(Expr::Fail(
                                        "the contents of '~/' paths cannot be determined: HOME is not set".into(),
                                        pos,
                                    ));
                                };
                                let mut b = home.clone();
                                b.extend_from_slice(&text[1..]);
                                b
                            }
                        };
                        let trailing = abs.ends_with(b"/");
                        abs = canon_path(&abs);
                        if trailing && n > 1 && abs != b"/" {
                            abs.push(b'/');
                        }
                        if n == 1 {
                            return Ok(Expr::Const(Value::Path(Rc::new(abs))));
                        }
                        out.push(Expr::Const(Value::str(abs)));
                    } else {
                        out.push(Expr::Const(Value::str(text)));
                    }
                }
                InterpolPart::Interpolation(i) => match i.expr() {
                    Some(e) => out.push(self.expr(e)?),
                    None => return self.missing(i.syntax()),
                },
            }
            first = false;
        }
        Ok(Expr::PathConcat(Box::new(ConcatExpr {
            parts: out,
            pos,
            part_pos: Vec::new(),
        })))
    }

    fn lambda(&mut self, l: &ast::Lambda, pos: Pos) -> Result<LambdaExpr> {
        let (Some(param), Some(body)) = (l.param(), l.body()) else {
            return self.missing(l.syntax());
        };
        match param {
            ast::Param::IdentParam(ip) => {
                let Some(id) = ip.ident() else {
                    return self.missing(ip.syntax());
                };
                let name = self.ident_sym(&id)?;
                let mut m = HashMap::new();
                m.insert(name, 0);
                self.scopes.push(Scope::Names(m));
                let body = self.expr(body);
                self.scopes.pop();
                Ok(LambdaExpr {
                    name: None,
                    arg: Some(name),
                    formals: None,
                    ellipsis: false,
                    body: body?,
                    pos,
                })
            }
            ast::Param::Pattern(p) => {
                let mut names = Vec::new();
                let mut m = HashMap::new();
                for ent in p.pat_entries() {
                    let Some(id) = ent.ident() else {
                        return self.missing(ent.syntax());
                    };
                    let name = self.ident_sym(&id)?;
                    let epos = self.pos_of(ent.syntax());
                    if m.insert(name, names.len() as u32).is_some() {
                        return self
                            .err(format!("duplicate formal function argument '{name}'"), epos);
                    }
                    names.push((name, ent.default(), epos));
                }
                let arg = match p.pat_bind().and_then(|b| b.ident()) {
                    Some(id) => {
                        let name = self.ident_sym(&id)?;
                        if m.contains_key(&name) {
                            return self.err(
                                format!("duplicate formal function argument '{name}'"),
                                self.pos_of(id.syntax()),
                            );
                        }
                        m.insert(name, names.len() as u32);
                        Some(name)
                    }
                    None => None,
                };
                self.scopes.push(Scope::Names(m));
                let res = (|| {
                    let mut formals = Vec::new();
                    for (name, def, fpos) in names {
                        let default = match def {
                            Some(d) => Some(self.expr(d)?),
                            None => None,
                        };
                        formals.push(Formal {
                            name,
                            default,
                            pos: fpos,
                        });
                    }
                    let body = self.expr(body)?;
                    Ok(LambdaExpr {
                        name: None,
                        arg,
                        formals: Some(formals),
                        ellipsis: p.ellipsis_token().is_some(),
                        body,
                        pos,
                    })
                })();
                self.scopes.pop();
                res
            }
        }
    }

    /// A static attribute name, if `a` is one.
    fn static_attr(&self, a: &ast::Attr) -> Result<Option<Sym>> {
        Ok(match a {
            ast::Attr::Ident(id) => Some(self.ident_sym(id)?),
            ast::Attr::Str(s) => {
                let parts = s.normalized_parts();
                let mut text = String::new();
                for p in parts {
                    match p {
                        InterpolPart::Literal(l) => text.push_str(&l),
                        InterpolPart::Interpolation(_) => return Ok(None),
                    }
                }
                Some(intern(&source::encode(&text)))
            }
            ast::Attr::Dynamic(d) => match d.expr().map(strip_parens) {
                Some(ast::Expr::Str(s)) => {
                    let mut text = String::new();
                    for p in s.normalized_parts() {
                        match p {
                            InterpolPart::Literal(l) => text.push_str(&l),
                            InterpolPart::Interpolation(_) => return Ok(None),
                        }
                    }
                    Some(intern(&source::encode(&text)))
                }
                _ => None,
            },
        })
    }

    fn attrpath(&mut self, p: &ast::Attrpath) -> Result<Box<[Key]>> {
        let mut keys = Vec::new();
        for a in p.attrs() {
            keys.push(self.key(&a)?);
        }
        Ok(keys.into_boxed_slice())
    }

    fn key(&mut self, a: &ast::Attr) -> Result<Key> {
        if let Some(s) = self.static_attr(a)? {
            return Ok(Key::Static(s));
        }
        Ok(Key::Dynamic(match a {
            ast::Attr::Dynamic(d) => match d.expr() {
                Some(e) => self.expr(e)?,
                None => return self.missing(d.syntax()),
            },
            ast::Attr::Str(s) => self.string(s, self.pos_of(s.syntax()))?,
            ast::Attr::Ident(_) => return self.missing(a.syntax()),
        }))
    }

    fn pre_attrs(&mut self, node: &impl HasEntry, rec: bool, pos: Pos) -> Result<PreAttrs> {
        let mut pa = PreAttrs {
            rec,
            statics: Vec::new(),
            dynamics: Vec::new(),
            pos,
        };
        for ent in node.entries() {
            match ent {
                ast::Entry::Inherit(inh) => {
                    let from = inh.from().and_then(|f| f.expr());
                    for a in inh.attrs() {
                        let apos = self.pos_of(a.syntax());
                        let Some(name) = self.static_attr(&a)? else {
                            return self.err("dynamic attributes not allowed in inherit", apos);
                        };
                        if let Some(first) = pa.statics.iter().find(|s| s.name == name) {
                            return self.dup_error(&[], name, first.pos, apos);
                        }
                        let val = match &from {
                            Some(f) => PreVal::InheritFrom(f.clone(), name, apos),
                            None => PreVal::InheritVar(name, apos),
                        };
                        pa.statics.push(PreAttr {
                            name,
                            pos: apos,
                            val,
                        });
                    }
                }
                ast::Entry::AttrpathValue(av) => {
                    let (Some(path), Some(value)) = (av.attrpath(), av.value()) else {
                        return self.missing(av.syntax());
                    };
                    let attrs: Vec<ast::Attr> = path.attrs().collect();
                    self.add_attr(&mut pa, &attrs, value)?;
                }
            }
        }
        Ok(pa)
    }

    fn make_preval(&mut self, value: ast::Expr) -> Result<PreVal> {
        let v = strip_parens(value);
        if let ast::Expr::AttrSet(s) = &v {
            let rec = s.rec_token().is_some();
            let pos = self.pos_of(s.syntax());
            return Ok(PreVal::Attrs(self.pre_attrs(s, rec, pos)?));
        }
        Ok(PreVal::Ast(v))
    }

    fn add_attr(&mut self, pa: &mut PreAttrs, path: &[ast::Attr], value: ast::Expr) -> Result<()> {
        let Some(first) = path.first() else {
            return Ok(());
        };
        let ppos = self.pos_of(first.syntax());
        self.add_attr_at(pa, path, value, ppos, &mut Vec::new())
    }

    /// The "already defined" error for `prefix.name`, defined first at `first`.
    fn dup_error<T>(&self, prefix: &[Sym], name: Sym, first: Pos, at: Pos) -> Result<T> {
        let mut full: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        full.push(name.to_string());
        let loc = first
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        self.err(
            format!("attribute '{}' already defined{loc}", full.join(".")),
            at,
        )
    }

    /// Adds `path = value` to `pa`; `ppos` is where the whole attribute
    /// path starts (the position Nix records), `prefix` the names above.
    fn add_attr_at(
        &mut self,
        pa: &mut PreAttrs,
        path: &[ast::Attr],
        value: ast::Expr,
        ppos: Pos,
        prefix: &mut Vec<Sym>,
    ) -> Result<()> {
        let Some((first, rest)) = path.split_first() else {
            return Ok(());
        };
        let apos = ppos;
        let Some(name) = self.static_attr(first)? else {
            let val = if rest.is_empty() {
                self.make_preval(value)?
            } else {
                let mut inner = PreAttrs {
                    rec: false,
                    statics: Vec::new(),
                    dynamics: Vec::new(),
                    pos: apos,
                };
                self.add_attr_at(&mut inner, rest, value, ppos, prefix)?;
                PreVal::Attrs(inner)
            };
            pa.dynamics.push((first.clone(), val, apos));
            return Ok(());
        };
        let existing = pa.statics.iter().position(|s| s.name == name);
        if rest.is_empty() {
            let val = self.make_preval(value)?;
            match existing {
                None => pa.statics.push(PreAttr {
                    name,
                    pos: apos,
                    val,
                }),
                Some(i) => {
                    let first_pos = pa.statics[i].pos;
                    match (&mut pa.statics[i].val, val) {
                        (PreVal::Attrs(old), PreVal::Attrs(new)) => {
                            for s in new.statics {
                                if let Some(o) = old.statics.iter().find(|o| o.name == s.name) {
                                    let mut pre = prefix.clone();
                                    pre.push(name);
                                    return self.dup_error(&pre, s.name, o.pos, s.pos);
                                }
                                old.statics.push(s);
                            }
                            old.dynamics.extend(new.dynamics);
                        }
                        _ => return self.dup_error(prefix, name, first_pos, apos),
                    }
                }
            }
        } else {
            match existing {
                None => {
                    let mut inner = PreAttrs {
                        rec: false,
                        statics: Vec::new(),
                        dynamics: Vec::new(),
                        pos: apos,
                    };
                    prefix.push(name);
                    let r = self.add_attr_at(&mut inner, rest, value, ppos, prefix);
                    prefix.pop();
                    r?;
                    pa.statics.push(PreAttr {
                        name,
                        pos: apos,
                        val: PreVal::Attrs(inner),
                    });
                }
                Some(i) => {
                    let first_pos = pa.statics[i].pos;
                    let PreVal::Attrs(inner) = &mut pa.statics[i].val else {
                        return self.dup_error(prefix, name, first_pos, apos);
                    };
                    // Borrow dance: take the inner set out while recursing.
                    let mut taken = std::mem::replace(
                        inner,
                        PreAttrs {
                            rec: false,
                            statics: Vec::new(),
                            dynamics: Vec::new(),
                            pos: apos,
                        },
                    );
                    prefix.push(name);
                    let r = self.add_attr_at(&mut taken, rest, value, ppos, prefix);
                    prefix.pop();
                    if let PreVal::Attrs(slot) = &mut pa.statics[i].val {
                        *slot = taken;
                    }
                    r?;
                }
            }
        }
        Ok(())
    }

    fn lower_preval(&mut self, v: PreVal) -> Result<Expr> {
        match v {
            PreVal::Ast(e) => self.expr(e),
            PreVal::Attrs(a) => Ok(Expr::Attrs(Box::new(self.lower_attrs(a)?))),
            PreVal::InheritVar(name, pos) => self.resolve(name, pos),
            PreVal::InheritFrom(e, name, pos) => {
                let e = self.expr(e)?;
                Ok(Expr::Select(
                    Box::new(e),
                    Box::new([Key::Static(name)]),
                    None,
                    pos,
                ))
            }
        }
    }

    /// Lowers one static binding. `resolved` is the already resolved
    /// value of a plain `inherit`; `froms` collects the source expressions
    /// of `inherit (expr)` clauses (one per clause, shared by its names).
    fn lower_static(
        &mut self,
        s: PreAttr,
        resolved: Option<Expr>,
        froms: &mut (Vec<u32>, Vec<Expr>),
    ) -> Result<AttrDef> {
        let inherited = matches!(s.val, PreVal::InheritVar(..));
        let (value, from) = match (resolved, s.val) {
            (Some(e), _) => (e, None),
            (None, PreVal::InheritFrom(e, _, _)) => {
                let key = u32::from(e.syntax().text_range().start());
                let idx = match froms.0.iter().position(|&k| k == key) {
                    Some(i) => i,
                    None => {
                        let lowered = self.expr(e)?;
                        froms.0.push(key);
                        froms.1.push(lowered);
                        froms.1.len() - 1
                    }
                };
                (Expr::Const(Value::Null), Some(idx as u32))
            }
            (None, v) => (self.lower_preval(v)?, None),
        };
        let mut value = value;
        if let Expr::Lambda(l) = &mut value
            && l.name.is_none()
        {
            l.name = Some(s.name);
        }
        Ok(AttrDef {
            name: s.name,
            value,
            pos: s.pos,
            inherited,
            from,
        })
    }

    fn lower_attrs(&mut self, pa: PreAttrs) -> Result<AttrsExpr> {
        if pa.rec {
            return Ok(self.lower_rec(pa, None)?.0);
        }
        let mut statics = Vec::new();
        let mut froms = (Vec::new(), Vec::new());
        for s in pa.statics {
            statics.push(self.lower_static(s, None, &mut froms)?);
        }
        let mut dynamics = Vec::new();
        for (k, v, p) in pa.dynamics {
            let k = match self.key(&k)? {
                Key::Static(s) => Expr::Const(Value::str(s.bytes())),
                Key::Dynamic(e) => e,
            };
            dynamics.push((k, self.lower_preval(v)?, p));
        }
        Ok(AttrsExpr {
            rec: false,
            statics,
            dynamics,
            inherit_from: froms.1,
            pos: pa.pos,
        })
    }

    /// Lowers a recursive binding group (rec set or let), with `body`
    /// lowered in its scope.
    fn lower_rec(
        &mut self,
        pa: PreAttrs,
        body: Option<ast::Expr>,
    ) -> Result<(AttrsExpr, Option<Expr>)> {
        let mut m = HashMap::new();
        for (i, s) in pa.statics.iter().enumerate() {
            m.insert(s.name, i as u32);
        }
        // Plain inherits resolve outside the group.
        let mut inherited = Vec::new();
        for s in &pa.statics {
            if let PreVal::InheritVar(name, pos) = s.val {
                inherited.push(Some(self.resolve(name, pos)?));
            } else {
                inherited.push(None);
            }
        }
        self.scopes.push(Scope::Names(m));
        let res = (|| {
            let mut statics = Vec::new();
            let mut froms = (Vec::new(), Vec::new());
            for (s, inh) in pa.statics.into_iter().zip(inherited) {
                statics.push(self.lower_static(s, inh, &mut froms)?);
            }
            let mut dynamics = Vec::new();
            for (k, v, p) in pa.dynamics {
                let k = match self.key(&k)? {
                    Key::Static(s) => Expr::Const(Value::str(s.bytes())),
                    Key::Dynamic(e) => e,
                };
                dynamics.push((k, self.lower_preval(v)?, p));
            }
            let body = match body {
                Some(b) => Some(self.expr(b)?),
                None => None,
            };
            Ok((
                AttrsExpr {
                    rec: true,
                    statics,
                    dynamics,
                    inherit_from: froms.1,
                    pos: pa.pos,
                },
                body,
            ))
        })();
        self.scopes.pop();
        res
    }
}

#[derive(Clone, Copy)]
enum PathKind {
    Abs,
    Rel,
    Home,
}
