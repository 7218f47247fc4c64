//! Constraints between parameters of a configuration space, in a small language:
//!
//! ```text
//! constraint := "IF" expr "THEN" expr | expr
//! expr       := and ("OR" and)*
//! and        := not ("AND" not)*
//! not        := "NOT" not | atom
//! atom       := "(" expr ")"
//!             | "gate:" NAME                       true when the gate is on
//!             | "version" OP VERSION               1.59 means 1.59.0
//!             | "tunable:" NAME OP VALUE           integers: any OP; enums: == and != only
//! OP         := "==" | "!=" | "<" | "<=" | ">" | ">="
//! ```
//!
//! Keywords are upper case. A gate the current version does not have is off. Examples:
//! `IF gate:PlayerAllocationFilter THEN gate:PlayerTracking`,
//! `IF version >= 1.59 THEN NOT gate:WasmAutoscaler`,
//! `IF tunable:allocationBatchWaitTime > 500 THEN NOT gate:ProcessorAllocator`.

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => o == Equal,
            Op::Ne => o != Equal,
            Op::Lt => o == Less,
            Op::Le => o != Greater,
            Op::Gt => o == Greater,
            Op::Ge => o != Less,
        }
    }
}

/// A parsed constraint.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Gate(String),
    Version(Op, semver::Version),
    TunableInt(String, Op, i64),
    TunableStr(String, Op, String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Implies(Box<Expr>, Box<Expr>),
}

/// What a constraint is evaluated against.
pub trait Facts {
    fn gate(&self, name: &str) -> bool;
    fn version(&self) -> &semver::Version;
    fn tunable_int(&self, name: &str) -> Option<i64>;
    fn tunable_str(&self, name: &str) -> Option<&str>;
}

impl Expr {
    pub fn eval(&self, f: &dyn Facts) -> bool {
        match self {
            Expr::Gate(g) => f.gate(g),
            Expr::Version(op, v) => op.holds(f.version().cmp_precedence(v)),
            Expr::TunableInt(t, op, v) => f.tunable_int(t).is_some_and(|x| op.holds(x.cmp(v))),
            Expr::TunableStr(t, op, v) => f
                .tunable_str(t)
                .is_some_and(|x| op.holds(x.cmp(v.as_str()))),
            Expr::Not(e) => !e.eval(f),
            Expr::And(a, b) => a.eval(f) && b.eval(f),
            Expr::Or(a, b) => a.eval(f) || b.eval(f),
            Expr::Implies(a, b) => !a.eval(f) || b.eval(f),
        }
    }

    /// Every integer a constraint compares tunable `name` with. Values strictly between two of
    /// them (or beyond the last) all evaluate alike, which is what lets a space count its
    /// valid states without trying every integer.
    pub fn int_constants(&self, name: &str, out: &mut Vec<i64>) {
        match self {
            Expr::TunableInt(t, _, c) if t == name => out.push(*c),
            Expr::Gate(_) | Expr::Version(..) | Expr::TunableInt(..) | Expr::TunableStr(..) => {}
            Expr::Not(e) => e.int_constants(name, out),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Implies(a, b) => {
                a.int_constants(name, out);
                b.int_constants(name, out);
            }
        }
    }

    /// Every gate and tunable the constraint names.
    pub fn names(&self, gates: &mut Vec<String>, tunables: &mut Vec<(String, bool)>) {
        match self {
            Expr::Gate(g) => gates.push(g.clone()),
            Expr::TunableInt(t, ..) => tunables.push((t.clone(), true)),
            Expr::TunableStr(t, ..) => tunables.push((t.clone(), false)),
            Expr::Version(..) => {}
            Expr::Not(e) => e.names(gates, tunables),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Implies(a, b) => {
                a.names(gates, tunables);
                b.names(gates, tunables);
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Op(Op),
    Open,
    Close,
}

/// A parse error at a 1-based column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub col: usize,
    pub msg: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "col {}: {}", self.col, self.msg)
    }
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((col, Tok::Open));
            i += 1;
        } else if c == ')' {
            out.push((col, Tok::Close));
            i += 1;
        } else if "=!<>".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, len) = match two.as_str() {
                "==" => (Op::Eq, 2),
                "!=" => (Op::Ne, 2),
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                _ if c == '<' => (Op::Lt, 1),
                _ if c == '>' => (Op::Gt, 1),
                _ => {
                    return Err(ParseError {
                        col,
                        msg: format!("`{c}` is not an operator (==, !=, <, <=, >, >=)"),
                    });
                }
            };
            out.push((col, Tok::Op(op)));
            i += len;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"()=!<>".contains(chars[i]) {
                i += 1;
            }
            out.push((col, Tok::Word(chars[start..i].iter().collect())));
            debug_assert!(i > start);
        }
    }
    Ok(out)
}

/// A release version as constraints compare it (SemVer precedence).
pub use semver::Version as SemVer;

/// A release version, `MAJOR.MINOR.PATCH` with an optional SemVer pre-release
/// (`1.61.0-rc.1`, `1.61.0-dev-abc123`) and build metadata; ordered by SemVer precedence
/// (`semver::Version::cmp_precedence`: a pre-release is older than its release, build metadata
/// is ignored).
pub fn parse_semver(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v).ok()
}

/// [`parse_semver`], or `MAJOR.MINOR` meaning `MAJOR.MINOR.0` (`version >= 1.59`).
pub fn parse_semver_loose(v: &str) -> Option<semver::Version> {
    parse_semver(v).or_else(|| {
        let (a, b) = v.split_once('.')?;
        Some(semver::Version::new(a.parse().ok()?, b.parse().ok()?, 0))
    })
}

/// Deepest expression tree a constraint may have, counting parentheses, NOT and each AND/OR
/// of a chain (`a AND b AND c` is three levels). Evaluation, naming and dropping walk the tree
/// recursively, and so does the parser through parentheses; without a bound a deep input
/// overflows the stack and aborts the process instead of exiting 2.
pub const MAX_DEPTH: usize = 100;

/// An expression and its depth.
type Deep = (Expr, usize);

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    /// Open parentheses and NOTs around the current position.
    nesting: usize,
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.toks.get(self.pos) {
            Some((_, Tok::Word(w))) => Some(w),
            _ => None,
        }
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.0)
    }
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            col: self.col(),
            msg: msg.into(),
        })
    }
    fn keyword(&mut self, k: &str) -> bool {
        if self.peek_word() == Some(k) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn constraint(&mut self) -> Result<Expr, ParseError> {
        let (e, _) = if self.keyword("IF") {
            let cond = self.or()?;
            if !self.keyword("THEN") {
                return self.err("expected THEN");
            }
            let then = self.or()?;
            self.join(Expr::Implies, cond, then)?
        } else {
            self.or()?
        };
        if self.pos < self.toks.len() {
            return self.err("unexpected text after the constraint");
        }
        Ok(e)
    }

    /// `make(a, b)` with its depth, or an error past [`MAX_DEPTH`].
    fn join(
        &self,
        make: fn(Box<Expr>, Box<Expr>) -> Expr,
        (a, da): Deep,
        (b, db): Deep,
    ) -> Result<Deep, ParseError> {
        let d = da.max(db) + 1;
        self.check_depth(d)?;
        Ok((make(Box::new(a), Box::new(b)), d))
    }

    fn check_depth(&self, d: usize) -> Result<(), ParseError> {
        if d > MAX_DEPTH {
            return self.err(format!(
                "the constraint nests more than {MAX_DEPTH} levels deep (parentheses, NOT, or a chain of AND/OR): split it into several constraints"
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Deep, ParseError> {
        let mut e = self.and()?;
        while self.keyword("OR") {
            let b = self.and()?;
            e = self.join(Expr::Or, e, b)?;
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Deep, ParseError> {
        let mut e = self.not()?;
        while self.keyword("AND") {
            let b = self.not()?;
            e = self.join(Expr::And, e, b)?;
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Deep, ParseError> {
        if self.keyword("NOT") {
            self.nest()?;
            let (e, d) = self.not()?;
            self.nesting -= 1;
            self.check_depth(d + 1)?;
            return Ok((Expr::Not(Box::new(e)), d + 1));
        }
        self.atom()
    }

    /// Enters a NOT or a parenthesis: the parser recurses there, so its depth is bounded too.
    fn nest(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        self.check_depth(self.nesting)
    }

    fn op(&mut self) -> Result<Op, ParseError> {
        match self.toks.get(self.pos) {
            Some((_, Tok::Op(op))) => {
                let op = *op;
                self.pos += 1;
                Ok(op)
            }
            _ => self.err("expected an operator (==, !=, <, <=, >, >=)"),
        }
    }

    fn value(&mut self) -> Result<String, ParseError> {
        match self.toks.get(self.pos) {
            Some((_, Tok::Word(w))) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.err("expected a value"),
        }
    }

    fn atom(&mut self) -> Result<Deep, ParseError> {
        if let Some((_, Tok::Open)) = self.toks.get(self.pos) {
            self.pos += 1;
            self.nest()?;
            let e = self.or()?;
            self.nesting -= 1;
            return match self.toks.get(self.pos) {
                Some((_, Tok::Close)) => {
                    self.pos += 1;
                    Ok(e)
                }
                _ => self.err("expected `)`"),
            };
        }
        Ok((self.leaf()?, 1))
    }

    /// A gate, version or tunable comparison.
    fn leaf(&mut self) -> Result<Expr, ParseError> {
        match self.toks.get(self.pos).cloned() {
            Some((_, Tok::Open)) => self.err("unexpected `(`"),
            Some((col, Tok::Word(w))) => {
                self.pos += 1;
                if let Some(g) = w.strip_prefix("gate:") {
                    if g.is_empty() {
                        return Err(ParseError {
                            col,
                            msg: "`gate:` needs a gate name".into(),
                        });
                    }
                    return Ok(Expr::Gate(g.to_owned()));
                }
                if w == "version" {
                    let op = self.op()?;
                    let at = self.col();
                    let v = self.value()?;
                    let parsed = parse_semver_loose(&v).ok_or(ParseError {
                        col: at,
                        msg: format!("`{v}` is not a version like 1.59, 1.59.0 or 1.61.0-rc.1"),
                    })?;
                    return Ok(Expr::Version(op, parsed));
                }
                if let Some(t) = w.strip_prefix("tunable:") {
                    let op = self.op()?;
                    let v = self.value()?;
                    return Ok(match v.parse::<i64>() {
                        Ok(n) => Expr::TunableInt(t.to_owned(), op, n),
                        Err(_) => Expr::TunableStr(t.to_owned(), op, v),
                    });
                }
                Err(ParseError {
                    col,
                    msg: format!("`{w}` is not gate:NAME, version or tunable:NAME"),
                })
            }
            Some((_, Tok::Close)) => self.err("unexpected `)`"),
            Some((_, Tok::Op(_))) => self.err("unexpected operator"),
            None => self.err("unexpected end of the constraint"),
        }
    }
}

/// Parses one constraint.
pub fn parse(s: &str) -> Result<Expr, ParseError> {
    let toks = lex(s)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: s.chars().count() + 1,
        nesting: 0,
    };
    p.constraint()
}

/// The 1-based column of the first token of `s` that is exactly `word` (`gate:Foo`), so that
/// errors found after parsing (an unknown name) still point into the text.
pub fn column_of(s: &str, word: &str) -> Option<usize> {
    lex(s).ok()?.into_iter().find_map(|(col, t)| match t {
        Tok::Word(w) if w == word => Some(col),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Facts from plain maps.
    struct MapFacts<'a> {
        version: semver::Version,
        gates: &'a BTreeMap<String, bool>,
        ints: &'a BTreeMap<String, i64>,
        strs: &'a BTreeMap<String, String>,
    }

    impl Facts for MapFacts<'_> {
        fn gate(&self, name: &str) -> bool {
            self.gates.get(name).copied().unwrap_or(false)
        }
        fn version(&self) -> &semver::Version {
            &self.version
        }
        fn tunable_int(&self, name: &str) -> Option<i64> {
            self.ints.get(name).copied()
        }
        fn tunable_str(&self, name: &str) -> Option<&str> {
            self.strs.get(name).map(String::as_str)
        }
    }

    fn facts<'a>(
        gates: &'a BTreeMap<String, bool>,
        ints: &'a BTreeMap<String, i64>,
        strs: &'a BTreeMap<String, String>,
    ) -> MapFacts<'a> {
        MapFacts {
            version: semver::Version::new(1, 59, 0),
            gates,
            ints,
            strs,
        }
    }

    #[test]
    fn evaluates_with_precedence_not_and_or() {
        let gates = BTreeMap::from([("A".to_owned(), true), ("B".to_owned(), false)]);
        let ints = BTreeMap::from([("wait".to_owned(), 600)]);
        let strs = BTreeMap::from([("log".to_owned(), "debug".to_owned())]);
        let f = facts(&gates, &ints, &strs);
        let cases = [
            ("gate:A", true),
            ("gate:B", false),
            ("gate:Missing", false),
            ("NOT gate:B AND gate:A", true),
            ("gate:B OR gate:A AND NOT gate:B", true),
            ("(gate:B OR gate:A) AND gate:B", false),
            ("IF gate:A THEN gate:B", false),
            ("IF gate:B THEN gate:Missing", true),
            ("version >= 1.59", true),
            ("version < 1.59.0", false),
            ("IF version>=1.59 THEN tunable:wait>500", true),
            ("tunable:log == debug", true),
            ("tunable:log != debug", false),
            ("tunable:nope == 1", false),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap().eval(&f), want, "{text}");
        }
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            ("IF gate:A gate:B", 11, "expected THEN"),
            ("version >= x.y", 12, "is not a version"),
            ("gate:A AND", 11, "unexpected end"),
            ("(gate:A", 8, "expected `)`"),
            ("gate:A gate:B", 8, "unexpected text"),
            ("tunable:x =< 3", 11, "not an operator"),
            ("flag:A", 1, "is not gate:NAME"),
            ("gate:", 1, "needs a gate name"),
            ("version >=", 11, "expected a value"),
            ("tunable:x 3", 11, "expected an operator"),
            ("gate:A AND )", 12, "unexpected `)`"),
            ("== 3", 1, "unexpected operator"),
        ];
        for (text, col, msg) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.col, col, "{text}: {e}");
            assert!(e.msg.contains(msg), "{text}: {e}");
        }
    }

    #[test]
    fn names_are_located_and_constants_collected() {
        let text = "IF tunable:w > 500 AND (gate:A OR tunable:w == 7) THEN NOT gate:Foo";
        assert_eq!(column_of(text, "gate:Foo"), Some(60));
        assert_eq!(column_of(text, "gate:Nope"), None);
        let mut c = Vec::new();
        parse(text).unwrap().int_constants("w", &mut c);
        assert_eq!(c, vec![500, 7]);
    }

    #[test]
    fn depth_is_bounded_with_a_clear_error_not_a_stack_overflow() {
        let chain = |n: usize, op: &str| vec!["gate:A"; n].join(&format!(" {op} "));
        // At the limit everything parses and evaluates.
        assert!(parse(&chain(MAX_DEPTH, "AND")).is_ok());
        let at_limit = format!(
            "{}gate:A{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&at_limit).is_ok());
        // Past it (and far past it, as the audit's reproductions), a parse error says why.
        for text in [
            chain(MAX_DEPTH + 1, "AND"),
            chain(300_000, "AND"),
            chain(300_000, "OR"),
            format!("{}gate:A{}", "(".repeat(100_000), ")".repeat(100_000)),
            format!("{}gate:A", "NOT ".repeat(100_000)),
            format!("IF {} THEN gate:B", chain(MAX_DEPTH, "OR")),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(
                e.msg.contains(&format!("more than {MAX_DEPTH} levels")),
                "{e}"
            );
        }
    }
}
