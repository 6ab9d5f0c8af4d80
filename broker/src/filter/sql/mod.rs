//! RocketMQ SQL92 filter expressions over message properties.
//!
//! The subset RocketMQ brokers evaluate:
//!
//! - identifiers name message properties (`[A-Za-z_$][A-Za-z0-9_$.]*`,
//!   case-sensitive); `TAGS` is the message's tag and `KEYS` its keys
//!   joined by spaces, as RocketMQ exposes them;
//! - literals: integers and decimals (a leading `-` allowed), strings in
//!   single quotes (`''` stands for a quote inside one), `TRUE`, `FALSE`;
//! - `> >= < <= = <>` (also `!=`) between a property and a number; `=` and
//!   `<>` between a property and a string or boolean (either side may be
//!   the literal);
//! - `[NOT] BETWEEN n AND m`, `[NOT] IN ('a', 'b')`, `IS [NOT] NULL`;
//! - `AND`, `OR`, `NOT` and parentheses.
//!
//! Keywords are case-insensitive. Property values are strings: against a
//! number they compare numerically when the value parses as one, against a
//! boolean when it is `true` or `false` (any case). A missing property, or
//! a value that does not parse, makes a comparison unknown rather than an
//! error; unknown follows SQL's three-valued logic (`NOT unknown` is
//! unknown, `unknown OR TRUE` is true) and a message matches only when the
//! whole expression is true.

mod lex;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use tern_model::Message;

use self::lex::{CmpOp, Kw, Number, Parsed, Tok, Token, err, lex};
use crate::error::{BrokerError, Result};

/// Longest expression accepted, in bytes.
const MAX_LEN: usize = 16 * 1024;
/// Deepest nesting of parentheses and `NOT`s accepted.
const MAX_DEPTH: usize = 64;

/// A parsed SQL92 filter expression.
#[derive(Debug, Clone)]
pub struct SqlFilter {
    source: String,
    expr: Arc<Expr>,
}

impl PartialEq for SqlFilter {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl SqlFilter {
    /// Parses `source`, refusing malformed expressions with
    /// [`BrokerError::Invalid`] naming the problem and its column.
    pub fn parse(source: &str) -> Result<Self> {
        let bad =
            |why: String| BrokerError::Invalid(format!("SQL filter expression {source:?}: {why}"));
        if source.len() > MAX_LEN {
            return Err(bad(format!(
                "{} bytes long; the limit is {MAX_LEN}",
                source.len()
            )));
        }
        if source.trim().is_empty() {
            return Err(bad("the expression is empty".into()));
        }
        let tokens = lex(source).map_err(|e| bad(e.to_string()))?;
        let mut p = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let expr = p.or().map_err(|e| bad(e.to_string()))?;
        let t = p.peek();
        if t.tok != Tok::End {
            return Err(bad(format!(
                "unexpected {} at column {}; expected AND, OR or the end",
                t.tok, t.col
            )));
        }
        Ok(Self {
            source: source.trim().to_owned(),
            expr: Arc::new(expr),
        })
    }

    /// Whether `message` passes: the expression is true for it.
    pub fn matches(&self, message: &Message) -> bool {
        self.expr.eval(message) == Some(true)
    }
}

impl fmt::Display for SqlFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Num(Number),
    Str(String),
    Bool(bool),
}

#[derive(Debug)]
enum Expr {
    Const(bool),
    /// True when every part is (flat, so long chains do not nest).
    And(Vec<Expr>),
    /// True when any part is.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        name: String,
        op: CmpOp,
        value: Literal,
    },
    Between {
        name: String,
        low: Number,
        high: Number,
        negated: bool,
    },
    In {
        name: String,
        set: Vec<String>,
        negated: bool,
    },
    IsNull {
        name: String,
        negated: bool,
    },
}

/// The value of property `name` of `m`.
fn property<'m>(m: &'m Message, name: &str) -> Option<Cow<'m, str>> {
    match name {
        "TAGS" => m.tag.as_deref().map(Cow::Borrowed),
        "KEYS" if !m.keys.is_empty() => Some(Cow::Owned(m.keys.join(" "))),
        _ => m.properties.get(name).map(|v| Cow::Borrowed(v.as_str())),
    }
}

impl Expr {
    /// True, false, or unknown (`None`).
    fn eval(&self, m: &Message) -> Option<bool> {
        match self {
            Self::Const(b) => Some(*b),
            Self::And(parts) => kleene(parts, m, false),
            Self::Or(parts) => kleene(parts, m, true),
            Self::Not(e) => e.eval(m).map(|b| !b),
            Self::Cmp { name, op, value } => {
                let v = property(m, name)?;
                match value {
                    Literal::Num(n) => Number::of_value(&v)?.compare(*n).map(|o| op.holds(o)),
                    Literal::Str(s) => Some(op.holds(v.as_ref().cmp(s.as_str()))),
                    Literal::Bool(b) => {
                        let v = if v.eq_ignore_ascii_case("true") {
                            true
                        } else if v.eq_ignore_ascii_case("false") {
                            false
                        } else {
                            return None;
                        };
                        Some(op.holds(v.cmp(b)))
                    }
                }
            }
            Self::Between {
                name,
                low,
                high,
                negated,
            } => {
                let v = Number::of_value(&property(m, name)?)?;
                let inside =
                    v.compare(*low)? != Ordering::Less && v.compare(*high)? != Ordering::Greater;
                Some(inside != *negated)
            }
            Self::In { name, set, negated } => {
                let v = property(m, name)?;
                Some(set.iter().any(|s| *s == v) != *negated)
            }
            Self::IsNull { name, negated } => Some(property(m, name).is_none() != *negated),
        }
    }
}

/// `OR` (`decisive` true) or `AND` (false) of `parts` in three-valued
/// logic: the decisive value if any part has it, unknown if any part is
/// unknown, else the other value.
fn kleene(parts: &[Expr], m: &Message, decisive: bool) -> Option<bool> {
    let mut unknown = false;
    for p in parts {
        match p.eval(m) {
            Some(b) if b == decisive => return Some(decisive),
            Some(_) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(!decisive) }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends the list with `End`, which is never consumed.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek().tok == *tok {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok, context: &str) -> Parsed<()> {
        let t = self.next();
        if t.tok == *tok {
            Ok(())
        } else {
            err(t.col, format!("expected {tok} {context}, found {}", t.tok))
        }
    }

    fn nested<T>(&mut self, col: usize, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        if self.depth >= MAX_DEPTH {
            return err(col, format!("nested deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Parsed<Expr> {
        let mut parts = vec![self.and()?];
        while self.eat(&Tok::Kw(Kw::Or)) {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.swap_remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Parsed<Expr> {
        let mut parts = vec![self.not()?];
        while self.eat(&Tok::Kw(Kw::And)) {
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.swap_remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn not(&mut self) -> Parsed<Expr> {
        let col = self.peek().col;
        if self.eat(&Tok::Kw(Kw::Not)) {
            return self.nested(col, |p| Ok(Expr::Not(Box::new(p.not()?))));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Parsed<Expr> {
        let t = self.next();
        match t.tok {
            Tok::LParen => self.nested(t.col, |p| {
                let e = p.or()?;
                let context = format!("to close the '(' at column {}", t.col);
                p.expect(&Tok::RParen, &context)?;
                Ok(e)
            }),
            Tok::Ident(name) => self.after_name(name, t.col),
            tok => match literal(&tok) {
                Some(lit) => self.after_literal(lit, &tok, t.col),
                None => err(
                    t.col,
                    format!("expected a property name, a literal, NOT or '(', found {tok}"),
                ),
            },
        }
    }

    /// What follows a literal: a comparison with a property (`5 < a`), or
    /// nothing for `TRUE` and `FALSE` standing alone.
    fn after_literal(&mut self, lit: Literal, tok: &Tok, col: usize) -> Parsed<Expr> {
        if let Tok::Op(op) = self.peek().tok {
            let op_col = self.next().col;
            let n = self.next();
            return match n.tok {
                Tok::Ident(name) => comparison(name, op, lit, op_col).map(Expr::flipped),
                other => err(
                    n.col,
                    format!("expected a property name after '{op}', found {other}"),
                ),
            };
        }
        match lit {
            Literal::Bool(b) => Ok(Expr::Const(b)),
            _ => err(col, format!("{tok} must be compared with a property")),
        }
    }

    /// What follows a property name: a comparison, BETWEEN, IN or IS.
    fn after_name(&mut self, name: String, col: usize) -> Parsed<Expr> {
        let t = self.next();
        match t.tok {
            Tok::Op(op) => {
                let v = self.next();
                match literal(&v.tok) {
                    Some(lit) => comparison(name, op, lit, t.col),
                    None => err(
                        v.col,
                        format!(
                            "expected a number, string, TRUE or FALSE after '{op}', found {}",
                            v.tok
                        ),
                    ),
                }
            }
            Tok::Kw(Kw::Is) => {
                let negated = self.eat(&Tok::Kw(Kw::Not));
                self.expect(&Tok::Kw(Kw::Null), "after IS")?;
                Ok(Expr::IsNull { name, negated })
            }
            Tok::Kw(Kw::Not) => {
                let n = self.next();
                match n.tok {
                    Tok::Kw(Kw::Between) => self.between(name, true),
                    Tok::Kw(Kw::In) => self.in_list(name, true),
                    tok => err(
                        n.col,
                        format!("expected BETWEEN or IN after NOT, found {tok}"),
                    ),
                }
            }
            Tok::Kw(Kw::Between) => self.between(name, false),
            Tok::Kw(Kw::In) => self.in_list(name, false),
            tok => err(
                t.col,
                format!(
                    "expected a comparison, BETWEEN, IN or IS after property {name} (column {col}), found {tok}"
                ),
            ),
        }
    }

    fn number(&mut self, context: &str) -> Parsed<Number> {
        let t = self.next();
        match t.tok {
            Tok::Num(n) => Ok(n),
            tok => err(t.col, format!("expected a number {context}, found {tok}")),
        }
    }

    fn between(&mut self, name: String, negated: bool) -> Parsed<Expr> {
        let low = self.number("after BETWEEN")?;
        self.expect(&Tok::Kw(Kw::And), "between the bounds of BETWEEN")?;
        let high = self.number("after BETWEEN ... AND")?;
        Ok(Expr::Between {
            name,
            low,
            high,
            negated,
        })
    }

    fn in_list(&mut self, name: String, negated: bool) -> Parsed<Expr> {
        self.expect(&Tok::LParen, "after IN")?;
        let mut set = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Str(s) => set.push(s),
                tok => {
                    return err(
                        t.col,
                        format!("expected a string in the IN list, found {tok}"),
                    );
                }
            }
            let t = self.next();
            match t.tok {
                Tok::Comma => {}
                Tok::RParen => break,
                tok => {
                    return err(
                        t.col,
                        format!("expected ',' or ')' in the IN list, found {tok}"),
                    );
                }
            }
        }
        Ok(Expr::In { name, set, negated })
    }
}

fn literal(tok: &Tok) -> Option<Literal> {
    match tok {
        Tok::Num(n) => Some(Literal::Num(*n)),
        Tok::Str(s) => Some(Literal::Str(s.clone())),
        Tok::Kw(Kw::True) => Some(Literal::Bool(true)),
        Tok::Kw(Kw::False) => Some(Literal::Bool(false)),
        _ => None,
    }
}

impl Expr {
    /// A comparison written literal first (`5 < a`) as `a > 5`.
    fn flipped(self) -> Self {
        match self {
            Self::Cmp { name, op, value } => Self::Cmp {
                name,
                op: op.flipped(),
                value,
            },
            e => e,
        }
    }
}

/// `name op value`, refusing orderings of strings and booleans.
fn comparison(name: String, op: CmpOp, value: Literal, col: usize) -> Parsed<Expr> {
    if !matches!(value, Literal::Num(_)) && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        return err(
            col,
            format!("'{op}' compares numbers only; strings and booleans take = or <>"),
        );
    }
    Ok(Expr::Cmp { name, op, value })
}

#[cfg(test)]
mod tests;
