//! PromQL parsed within bounds: promql-parser's tree recurses, so a spec's expressions are
//! limited in length and nesting before they reach it.

/// Longest PromQL expression a spec may hold, in bytes. promql-parser's tree and its `Drop`
/// recurse once per operator of a chain (`a + a + …`), so an unbounded expression overflows the
/// stack and aborts the process instead of exiting 2 (found by fuzzing, `fuzz/regressions/slo_spec/`).
pub const MAX_PROMQL_BYTES: usize = 16 * 1024;
/// Deepest nesting of `(`, `[` and `{` a PromQL expression may have, for the same reason.
pub const MAX_PROMQL_NESTING: usize = 64;

/// Parses PromQL within [`MAX_PROMQL_BYTES`] and [`MAX_PROMQL_NESTING`].
pub fn parse_promql(text: &str) -> Result<promql_parser::parser::Expr, String> {
    if text.len() > MAX_PROMQL_BYTES {
        return Err(format!(
            "the expression is {} bytes, longer than the {MAX_PROMQL_BYTES} allowed",
            text.len()
        ));
    }
    let (mut depth, mut deepest, mut quote) = (0usize, 0usize, None);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_PROMQL_NESTING {
        return Err(format!(
            "the expression nests {deepest} levels deep, more than the {MAX_PROMQL_NESTING} allowed"
        ));
    }
    promql_parser::parser::parse(text)
}
