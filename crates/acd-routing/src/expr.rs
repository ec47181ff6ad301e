//! Required-skill expressions: `lang_ru >= 1 AND billing >= 3 OR vip_desk`.
//!
//! Grammar (keywords case-insensitive; AND binds tighter than OR):
//! ```text
//! expr   := and ( OR and )*
//! and    := unary ( AND unary )*
//! unary  := NOT unary | '(' expr ')' | skill ( ('>=' | '>' | '=') level )?
//! ```
//! A bare skill means level >= 1. An empty text is [`SkillExpr::Any`].
//! Serialised as its canonical text, so configuration events stay readable.

use crate::ids::SkillId;
use std::fmt;

/// A parsed expression over an agent's skills (proficiency 1–10).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum SkillExpr {
    /// Every agent qualifies.
    #[default]
    Any,
    /// The agent has `skill` at `min` or above.
    AtLeast {
        skill: SkillId,
        min: u8,
    },
    All(Vec<SkillExpr>),
    AnyOf(Vec<SkillExpr>),
    Not(Box<SkillExpr>),
}

/// Why a text is not an expression, with the byte offset where it went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("skill expression `{text}`: {message} at column {}", .at + 1)]
pub struct ExprError {
    pub text: String,
    pub at: usize,
    pub message: String,
}

impl SkillExpr {
    /// Every listed skill at least at its level (the old map form of a queue's skills).
    pub fn all_of<'a>(skills: impl IntoIterator<Item = (&'a SkillId, u8)>) -> SkillExpr {
        let terms: Vec<SkillExpr> = skills
            .into_iter()
            .map(|(s, min)| SkillExpr::AtLeast {
                skill: s.clone(),
                min,
            })
            .collect();
        match terms.len() {
            0 => SkillExpr::Any,
            1 => terms.into_iter().next().unwrap_or_default(),
            _ => SkillExpr::All(terms),
        }
    }

    /// Whether an agent with `skills` satisfies the expression.
    pub fn eval(&self, skills: &[(SkillId, u8)]) -> bool {
        match self {
            SkillExpr::Any => true,
            SkillExpr::AtLeast { skill, min } => skills
                .iter()
                .any(|(have, level)| have == skill && level >= min),
            SkillExpr::All(xs) => xs.iter().all(|x| x.eval(skills)),
            SkillExpr::AnyOf(xs) => xs.iter().any(|x| x.eval(skills)),
            SkillExpr::Not(x) => !x.eval(skills),
        }
    }

    /// The skills the expression names (for indexing agents by skill).
    pub fn skills(&self) -> Vec<&SkillId> {
        let mut out = Vec::new();
        self.collect_skills(&mut out);
        out.sort();
        out.dedup();
        out
    }

    fn collect_skills<'a>(&'a self, out: &mut Vec<&'a SkillId>) {
        match self {
            SkillExpr::Any => {}
            SkillExpr::AtLeast { skill, .. } => out.push(skill),
            SkillExpr::All(xs) | SkillExpr::AnyOf(xs) => {
                xs.iter().for_each(|x| x.collect_skills(out))
            }
            SkillExpr::Not(x) => x.collect_skills(out),
        }
    }

    /// Parses the text form (see the module docs).
    pub fn parse(text: &str) -> Result<SkillExpr, ExprError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Ok(SkillExpr::Any);
        }
        let mut p = Parser {
            text,
            tokens,
            pos: 0,
            depth: 0,
        };
        let e = p.or()?;
        match p.tokens.get(p.pos) {
            None => Ok(e),
            Some((at, t)) => Err(p.error(*at, format!("unexpected `{t}`"))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Num(u8),
    Ge,
    Gt,
    Eq,
    Open,
    Close,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => f.write_str(w),
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Ge => f.write_str(">="),
            Tok::Gt => f.write_str(">"),
            Tok::Eq => f.write_str("="),
            Tok::Open => f.write_str("("),
            Tok::Close => f.write_str(")"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let err = |at: usize, message: String| ExprError {
        text: text.to_owned(),
        at,
        message,
    };
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => (out.push((start, Tok::Open)), i += 1).1,
            b')' => (out.push((start, Tok::Close)), i += 1).1,
            b'>' if bytes.get(i + 1) == Some(&b'=') => (out.push((start, Tok::Ge)), i += 2).1,
            b'>' => (out.push((start, Tok::Gt)), i += 1).1,
            b'=' => {
                // Accept `==` as well as `=`.
                i += if bytes.get(i + 1) == Some(&b'=') {
                    2
                } else {
                    1
                };
                out.push((start, Tok::Eq));
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n: u8 = text[start..i]
                    .parse()
                    .ok()
                    .filter(|n| *n <= 10)
                    .ok_or_else(|| err(start, "a level is 0 to 10".into()))?;
                out.push((start, Tok::Num(n)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
                {
                    i += 1;
                }
                out.push((start, Tok::Word(text[start..i].to_owned())));
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                return Err(err(start, format!("unexpected character `{ch}`")));
            }
        }
    }
    Ok(out)
}

/// Deepest nesting of NOT and parentheses accepted: the parser, printer and
/// evaluator recurse, and a text from the supervisor API must not be able to
/// exhaust the distributor's stack.
pub const MAX_DEPTH: usize = 32;

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, at: usize, message: String) -> ExprError {
        ExprError {
            text: self.text.to_owned(),
            at,
            message,
        }
    }

    fn end(&self) -> usize {
        self.text.len()
    }

    fn keyword(&mut self, kw: &str) -> bool {
        match self.tokens.get(self.pos) {
            Some((_, Tok::Word(w))) if w.eq_ignore_ascii_case(kw) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn or(&mut self) -> Result<SkillExpr, ExprError> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            SkillExpr::AnyOf(terms)
        })
    }

    fn and(&mut self) -> Result<SkillExpr, ExprError> {
        let mut terms = vec![self.unary()?];
        while self.keyword("and") {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            SkillExpr::All(terms)
        })
    }

    fn unary(&mut self) -> Result<SkillExpr, ExprError> {
        self.depth += 1;
        let e = self.unary_inner();
        self.depth -= 1;
        e
    }

    fn unary_inner(&mut self) -> Result<SkillExpr, ExprError> {
        if self.depth > MAX_DEPTH {
            let at = self.tokens.get(self.pos).map_or(self.end(), |(at, _)| *at);
            return Err(self.error(at, format!("nested deeper than {MAX_DEPTH}")));
        }
        if self.keyword("not") {
            return Ok(SkillExpr::Not(Box::new(self.unary()?)));
        }
        let Some((at, tok)) = self.tokens.get(self.pos).cloned() else {
            return Err(self.error(self.end(), "expected a skill".into()));
        };
        self.pos += 1;
        match tok {
            // `()` is the expression every agent satisfies (what `Any` prints
            // as inside another expression).
            Tok::Open if matches!(self.tokens.get(self.pos), Some((_, Tok::Close))) => {
                self.pos += 1;
                Ok(SkillExpr::Any)
            }
            Tok::Open => {
                let e = self.or()?;
                match self.tokens.get(self.pos) {
                    Some((_, Tok::Close)) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    Some((at, t)) => Err(self.error(*at, format!("expected `)`, found `{t}`"))),
                    None => Err(self.error(self.end(), "missing `)`".into())),
                }
            }
            Tok::Word(w)
                if ["and", "or", "not"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                Err(self.error(at, format!("expected a skill, found `{w}`")))
            }
            Tok::Word(w) => self.comparison(SkillId(w)),
            t => Err(self.error(at, format!("expected a skill, found `{t}`"))),
        }
    }

    fn comparison(&mut self, skill: SkillId) -> Result<SkillExpr, ExprError> {
        let op = match self.tokens.get(self.pos) {
            Some((_, t @ (Tok::Ge | Tok::Gt | Tok::Eq))) => t.clone(),
            _ => return Ok(SkillExpr::AtLeast { skill, min: 1 }),
        };
        self.pos += 1;
        let level = match self.tokens.get(self.pos) {
            Some((_, Tok::Num(n))) => *n,
            Some((at, t)) => return Err(self.error(*at, format!("expected a level, found `{t}`"))),
            None => return Err(self.error(self.end(), "expected a level".into())),
        };
        self.pos += 1;
        Ok(match op {
            Tok::Gt if level >= 10 => SkillExpr::Not(Box::new(SkillExpr::Any)),
            Tok::Gt => SkillExpr::AtLeast {
                skill,
                min: level + 1,
            },
            Tok::Eq if level < 10 => SkillExpr::All(vec![
                SkillExpr::AtLeast {
                    skill: skill.clone(),
                    min: level,
                },
                SkillExpr::Not(Box::new(SkillExpr::AtLeast {
                    skill,
                    min: level + 1,
                })),
            ]),
            _ => SkillExpr::AtLeast { skill, min: level },
        })
    }
}

impl fmt::Display for SkillExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Top level: `Any` is the empty text; nested it is `()`.
        match self {
            SkillExpr::Any => Ok(()),
            other => write_nested(f, other),
        }
    }
}

/// Writes `e` so that parsing it gives `e` again (parentheses only where the
/// text needs them, so the nesting depth does not grow either).
fn write_nested(f: &mut fmt::Formatter<'_>, e: &SkillExpr) -> fmt::Result {
    fn operand(f: &mut fmt::Formatter<'_>, x: &SkillExpr) -> fmt::Result {
        match x {
            SkillExpr::All(_) | SkillExpr::AnyOf(_) => {
                f.write_str("(")?;
                write_nested(f, x)?;
                f.write_str(")")
            }
            _ => write_nested(f, x),
        }
    }
    fn join(f: &mut fmt::Formatter<'_>, xs: &[SkillExpr], sep: &str) -> fmt::Result {
        for (i, x) in xs.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            operand(f, x)?;
        }
        Ok(())
    }
    match e {
        SkillExpr::Any => f.write_str("()"),
        SkillExpr::AtLeast { skill, min } => write!(f, "{skill} >= {min}"),
        SkillExpr::All(xs) => join(f, xs, " AND "),
        SkillExpr::AnyOf(xs) => join(f, xs, " OR "),
        SkillExpr::Not(x) => {
            f.write_str("NOT ")?;
            operand(f, x)
        }
    }
}

impl serde::Serialize for SkillExpr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SkillExpr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SkillExpr::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skills(list: &[(&str, u8)]) -> Vec<(SkillId, u8)> {
        list.iter().map(|(s, l)| (SkillId::from(*s), *l)).collect()
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = SkillExpr::parse("lang_ru >= 1 AND billing >= 3 OR vip_desk").unwrap();
        assert!(e.eval(&skills(&[("lang_ru", 1), ("billing", 3)])));
        assert!(!e.eval(&skills(&[("lang_ru", 1), ("billing", 2)])));
        assert!(e.eval(&skills(&[("vip_desk", 1)])));
        assert!(!e.eval(&skills(&[])));
    }

    #[test]
    fn comparisons_parentheses_and_not() {
        let e = SkillExpr::parse("(a > 4 or b = 2) and not c").unwrap();
        assert!(e.eval(&skills(&[("a", 5)])));
        assert!(!e.eval(&skills(&[("a", 4)])));
        assert!(e.eval(&skills(&[("b", 2)])));
        assert!(!e.eval(&skills(&[("b", 3)])));
        assert!(!e.eval(&skills(&[("a", 9), ("c", 1)])));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "lang_ru >= 1 AND billing >= 3 OR vip_desk",
            "(a > 4 or b = 2) and not c",
            "not (a or b)",
            "not not not a",
            "a > 10 or b",
            "a and () or not ()",
            "",
        ] {
            let e = SkillExpr::parse(text).unwrap();
            let again = SkillExpr::parse(&e.to_string()).unwrap();
            assert_eq!(e, again, "{text} -> {e}");
        }
    }

    #[test]
    fn errors_name_the_column() {
        let e = SkillExpr::parse("a >= 11").unwrap_err();
        assert_eq!(e.at, 5);
        let e = SkillExpr::parse("a AND").unwrap_err();
        assert!(e.message.contains("expected a skill"), "{e}");
        let e = SkillExpr::parse("(a").unwrap_err();
        assert!(e.message.contains("missing `)`"), "{e}");
        let e = SkillExpr::parse("a b").unwrap_err();
        assert!(e.to_string().contains("unexpected `b` at column 3"), "{e}");
        assert!(SkillExpr::parse("a ≥ 1").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = SkillExpr::parse(&deep).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
        let nots = format!("{}a", "NOT ".repeat(100_000));
        assert!(SkillExpr::parse(&nots).is_err());
        let ok = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(SkillExpr::parse(&ok).is_ok());
    }
}
