//! The tokens of SQL92 filter expressions.

use std::cmp::Ordering;
use std::fmt;

/// A problem at a column (1-based, in characters).
#[derive(Debug)]
pub(super) struct SyntaxError {
    col: usize,
    what: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.what, self.col)
    }
}

pub(super) type Parsed<T> = std::result::Result<T, SyntaxError>;

pub(super) fn err<T>(col: usize, what: impl Into<String>) -> Parsed<T> {
    Err(SyntaxError {
        col,
        what: what.into(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub(super) fn compare(self, other: Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    #[allow(clippy::cast_precision_loss)] // compared as decimals anyway
    fn as_f64(self) -> f64 {
        match self {
            Self::Int(n) => n as f64,
            Self::Float(x) => x,
        }
    }

    /// A property value read as a number, if it is one.
    pub(super) fn of_value(v: &str) -> Option<Self> {
        if let Ok(n) = v.parse::<i64>() {
            return Some(Self::Int(n));
        }
        let numeric = v
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
        match v.parse::<f64>() {
            Ok(x) if numeric && x.is_finite() => Some(Self::Float(x)),
            _ => None,
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its sides swapped (`5 < a` is `a > 5`).
    pub(super) fn flipped(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
            op => op,
        }
    }

    pub(super) fn holds(self, ord: Ordering) -> bool {
        match self {
            Self::Eq => ord == Ordering::Equal,
            Self::Ne => ord != Ordering::Equal,
            Self::Lt => ord == Ordering::Less,
            Self::Le => ord != Ordering::Greater,
            Self::Gt => ord == Ordering::Greater,
            Self::Ge => ord != Ordering::Less,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kw {
    And,
    Or,
    Not,
    Between,
    In,
    Is,
    Null,
    True,
    False,
}

impl Kw {
    fn of(word: &str) -> Option<Self> {
        const ALL: [(&str, Kw); 9] = [
            ("AND", Kw::And),
            ("OR", Kw::Or),
            ("NOT", Kw::Not),
            ("BETWEEN", Kw::Between),
            ("IN", Kw::In),
            ("IS", Kw::Is),
            ("NULL", Kw::Null),
            ("TRUE", Kw::True),
            ("FALSE", Kw::False),
        ];
        ALL.iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|&(_, k)| k)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Str(String),
    Num(Number),
    Kw(Kw),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ident(s) => write!(f, "identifier {s}"),
            Self::Str(s) => write!(f, "string '{}'", s.replace('\'', "''")),
            Self::Num(n) => write!(f, "number {n}"),
            Self::Kw(k) => write!(f, "{}", format!("{k:?}").to_uppercase()),
            Self::Op(op) => write!(f, "'{op}'"),
            Self::LParen => f.write_str("'('"),
            Self::RParen => f.write_str("')'"),
            Self::Comma => f.write_str("','"),
            Self::End => f.write_str("the end of the expression"),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub col: usize,
}

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.')
}

pub(super) fn lex(src: &str) -> Parsed<Vec<Token>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let next = chars.get(i + 1).copied();
        let mut push = |tok, len| {
            out.push(Token { tok, col });
            len
        };
        i += match c {
            c if c.is_whitespace() => 1,
            '(' => push(Tok::LParen, 1),
            ')' => push(Tok::RParen, 1),
            ',' => push(Tok::Comma, 1),
            '=' => push(Tok::Op(CmpOp::Eq), 1),
            '<' if next == Some('>') => push(Tok::Op(CmpOp::Ne), 2),
            '<' if next == Some('=') => push(Tok::Op(CmpOp::Le), 2),
            '<' => push(Tok::Op(CmpOp::Lt), 1),
            '>' if next == Some('=') => push(Tok::Op(CmpOp::Ge), 2),
            '>' => push(Tok::Op(CmpOp::Gt), 1),
            '!' if next == Some('=') => push(Tok::Op(CmpOp::Ne), 2),
            '\'' => {
                let (s, len) = string(&chars[i..], col)?;
                push(Tok::Str(s), len)
            }
            c if c.is_ascii_digit()
                || (matches!(c, '-' | '.')
                    && next.is_some_and(|n| n.is_ascii_digit() || n == '.')) =>
            {
                let (n, len) = number(&chars[i..], col)?;
                push(Tok::Num(n), len)
            }
            c if ident_start(c) => {
                let len = chars[i..].iter().take_while(|&&c| ident_char(c)).count();
                let word: String = chars[i..i + len].iter().collect();
                let tok = Kw::of(&word).map_or(Tok::Ident(word), Tok::Kw);
                push(tok, len)
            }
            '+' | '-' | '*' | '/' | '%' => {
                return err(col, format!("arithmetic ('{c}') is not supported"));
            }
            '"' => {
                return err(col, "strings are quoted with ' (single quotes), not \"");
            }
            c => return err(col, format!("unexpected character {c:?}")),
        };
    }
    out.push(Token {
        tok: Tok::End,
        col: chars.len() + 1,
    });
    Ok(out)
}

/// A quoted string at the start of `chars`, and the characters it takes.
fn string(chars: &[char], col: usize) -> Parsed<(String, usize)> {
    let mut s = String::new();
    let mut i = 1;
    loop {
        match chars.get(i) {
            None => return err(col, "unterminated string"),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                s.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((s, i + 1)),
            Some(&c) => {
                s.push(c);
                i += 1;
            }
        }
    }
}

/// A number at the start of `chars`, and the characters it takes.
fn number(chars: &[char], col: usize) -> Parsed<(Number, usize)> {
    let sign = usize::from(chars.first() == Some(&'-'));
    let len = sign
        + chars[sign..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == '.')
            .count();
    let text: String = chars[..len].iter().collect();
    if chars.get(len).is_some_and(|&c| ident_char(c)) {
        return err(col, format!("malformed number {text}{}", chars[len]));
    }
    let n = if text.contains('.') {
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Number::Float(x),
            _ => return err(col, format!("malformed number {text}")),
        }
    } else {
        match text.parse::<i64>() {
            Ok(n) => Number::Int(n),
            Err(_) => return err(col, format!("number {text} is out of range")),
        }
    };
    Ok((n, len))
}
