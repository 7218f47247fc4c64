//! The user's stack in one place: `vars:` of the SLO spec, substituted as `${name}` into every
//! expression, and the selectors of an expression (what a no-data verdict names).

use std::collections::BTreeMap;

/// The reserved `${window}` placeholder: the disruption window's length, filled in at
/// evaluation time, never by `vars`.
pub const WINDOW_VAR: &str = "window";

/// `text` with every `${name}` replaced by `vars[name]`; `${window}` is left as written. The
/// errors name each unknown or unterminated reference.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            problems.push(format!(
                "`${{` at byte {} has no closing `}}`",
                text.len() - rest.len() + i
            ));
            rest = "";
            break;
        };
        let name = &after[..end];
        match vars.get(name) {
            _ if name == WINDOW_VAR => out.push_str("${window}"),
            Some(v) => out.push_str(v),
            None => {
                let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                problems.push(format!(
                    "`${{{name}}}` is not defined in `vars` (defined: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Every selector of `expr` as PromQL text, in order, each once: what a no-data verdict names
/// when it says which selector found nothing. A vector selector as written (`up{job="x"}`), a
/// range selector with its range (`up{job="x"}[90s]`, see [`is_range`]): a range asks for a
/// sample within it, and a series whose scrape stopped keeps answering a bare selector for
/// Prometheus' 5-minute lookback but not a short range. In an expression with `${window}`
/// every selector is given as a vector selector (the window's length is not known here).
pub fn selectors(expr: &str) -> Vec<String> {
    use promql_parser::parser::Expr;
    fn walk(e: &Expr, ranges: bool, out: &mut Vec<String>) {
        match e {
            Expr::VectorSelector(v) => {
                let s = v.to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Expr::MatrixSelector(m) if ranges => {
                let s = m.to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Expr::MatrixSelector(m) => walk(&Expr::VectorSelector(m.vs.clone()), ranges, out),
            Expr::Aggregate(a) => walk(&a.expr, ranges, out),
            Expr::Unary(u) => walk(&u.expr, ranges, out),
            Expr::Binary(b) => {
                walk(&b.lhs, ranges, out);
                walk(&b.rhs, ranges, out);
            }
            Expr::Paren(p) => walk(&p.expr, ranges, out),
            Expr::Subquery(s) => walk(&s.expr, ranges, out),
            Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, ranges, out)),
            Expr::Extension(_) | Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
    }
    let with_ranges = !expr.contains("${window}");
    let mut out = Vec::new();
    if let Ok(e) =
        crate::spec::parse_promql(&expr.replace("${window}", crate::spec::WINDOW_PLACEHOLDER_CHECK))
    {
        walk(&e, with_ranges, &mut out);
    }
    out
}

/// True for a range selector of [`selectors`] (`x[90s]`): a vector selector never ends in `]`.
pub fn is_range(selector: &str) -> bool {
    selector.ends_with(']')
}

/// What a YAML value is, for errors.
pub(crate) fn kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "nothing",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a mapping",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}
