//! The bounds every YAML document we read passes before a YAML parser builds anything from it.
//!
//! serde_yaml 0.9 bounds alias *jumps*, not the expanded size, so a 10 KB `a: &a [x × 2000]`,
//! `b: &b [*a × 2000]`, `c: [*b × 100]` expands to 400 million nodes; and libyaml's scanner
//! (like yaml-rust2's) revisits every open flow level on each token (`stale_simple_keys`), so
//! `{a: ` × N costs time quadratic in N before any depth limit refuses it. [`check`] refuses
//! both before the cost is paid, in three steps, each linear in the input:
//!
//! 1. the size ([`Limits::bytes`]);
//! 2. a pre-scan of flow nesting (`[` and `{`), aware of quotes and comments, which refuses deep
//!    flow nesting before any parser sees it ([`Limits::depth`]);
//! 3. one pass over yaml-rust2's parser events, which stops at the first event past the depth
//!    (block nesting too) and computes the expanded size: every node counts one, every scalar
//!    its bytes too, and an alias counts the expanded size of its anchor, remembered when the
//!    anchored node closed ([`Limits::expanded`]).
//!
//! Only then does the caller deserialize (with serde_yaml, whose own errors keep their lines).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

/// Largest document read: 4 MiB. The largest shipped YAML file is a few KiB.
pub const MAX_BYTES: usize = 4 << 20;

/// Deepest nesting of collections: 64 levels. The shipped files nest at most 8 deep, a
/// Kubernetes object about 15; serde_yaml's own recursion limit is 128.
pub const MAX_DEPTH: usize = 64;

/// Largest expanded size: 4 Mi units, one per node plus one per byte of every scalar, counted
/// after every alias is replaced by what it names. A document without aliases is under its own
/// size in bytes by this measure, so only aliases can reach the limit.
pub const MAX_EXPANDED: usize = 4 << 20;

/// The bounds one reader applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest input, in bytes.
    pub bytes: usize,
    /// Deepest nesting of sequences and mappings.
    pub depth: usize,
    /// Largest expanded size (nodes plus scalar bytes, aliases expanded).
    pub expanded: usize,
}

impl Limits {
    /// The bounds of every configuration file and request body: [`MAX_BYTES`], [`MAX_DEPTH`],
    /// [`MAX_EXPANDED`].
    pub const DEFAULT: Limits = Limits {
        bytes: MAX_BYTES,
        depth: MAX_DEPTH,
        expanded: MAX_EXPANDED,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A document refused before it was parsed: where (`origin`, the 1-based line when known) and
/// which bound it crossed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct Refused {
    /// The file or body, as the caller names it.
    pub origin: String,
    /// The 1-based line where the bound was crossed, when known.
    pub line: Option<usize>,
    /// What was crossed, with the limit.
    pub message: String,
}

impl Refused {
    /// `origin:line` (or `origin` alone), the form problem paths take.
    pub fn at(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.origin),
            None => self.origin.clone(),
        }
    }
}

/// Reads a file of at most [`MAX_BYTES`] bytes, without reading more than one byte past the
/// limit (a mistaken `/dev/zero` or a 50 MB file is refused, not read). The error says what
/// went wrong, without the path (callers name the file).
pub fn read(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut text = String::new();
    file.take(MAX_BYTES as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    if text.len() > MAX_BYTES {
        return Err(format!(
            "the file is larger than the limit of {MAX_BYTES} bytes"
        ));
    }
    Ok(text)
}

/// [`check_with`] under [`Limits::DEFAULT`].
pub fn check(text: &str, origin: &str) -> Result<(), Refused> {
    check_with(text, origin, &Limits::DEFAULT)
}

/// Refuses `text` when it is larger, deeper or expands further than `limits` allow; `origin`
/// names it in the error. Syntax errors the event pass meets are left to the deserializer that
/// follows (it reports them with their line and column), unless the document holds an alias.
pub fn check_with(text: &str, origin: &str, limits: &Limits) -> Result<(), Refused> {
    let refuse = |line: Option<usize>, message: String| Refused {
        origin: origin.to_owned(),
        line,
        message,
    };
    if text.len() > limits.bytes {
        return Err(refuse(
            None,
            format!(
                "the document is {} bytes, more than the limit of {} bytes",
                text.len(),
                limits.bytes
            ),
        ));
    }
    if let Some(line) = flow_too_deep(text.as_bytes(), limits.depth) {
        return Err(refuse(
            Some(line),
            format!(
                "flow collections (`[` or `{{`) nest deeper than the limit of {} levels",
                limits.depth
            ),
        ));
    }
    expansion(text, limits).map_err(|(line, message)| refuse(line, message))
}

/// The line where flow nesting first passes `limit`, or `None`. A linear scan that skips
/// comments and quoted scalars; a quote opens a scalar only where a token can start (after
/// whitespace or one of `[{,:`), so the apostrophe of `don't` is text. A misreading here only
/// lets a document through to the event pass, which bounds depth again.
fn flow_too_deep(text: &[u8], limit: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut prev = b'\n';
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        match c {
            b'\n' => line += 1,
            b'#' if prev.is_ascii_whitespace() => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' | b'"' if token_start(prev) => {
                i += 1;
                while i < text.len() {
                    match text[i] {
                        b'\n' => line += 1,
                        b'\\' if c == b'"' => i += 1,
                        q if q == c => {
                            // `''` inside a single-quoted scalar is an escaped quote.
                            if c == b'\'' && text.get(i + 1) == Some(&b'\'') {
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = text.get(i).copied().unwrap_or(b'\n');
        i += 1;
    }
    None
}

/// Whether a quote after `prev` starts a quoted scalar.
fn token_start(prev: u8) -> bool {
    prev.is_ascii_whitespace() || matches!(prev, b'[' | b'{' | b',' | b':' | b'-' | b'?')
}

/// An open collection in the event pass: its anchor (0 for none) and its expanded size so far.
struct Open {
    anchor: usize,
    size: usize,
}

/// Walks yaml-rust2's events once, refusing nesting past `limits.depth` and an expanded size
/// past `limits.expanded`; the error carries the 1-based line.
fn expansion(text: &str, limits: &Limits) -> Result<(), (Option<usize>, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    let mut open: Vec<Open> = Vec::new();
    // The expanded size of all documents so far (top-level nodes close into it).
    let mut total = 0usize;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(x) => x,
            // A syntax error without an alias anywhere: the deserializer reports it in its own
            // words (and nothing can expand). With an alias, libyaml might read on where
            // yaml-rust2 stopped (they differ at the edges, YAML 1.1 against 1.2), past what
            // this pass counted, so the document is refused here.
            Err(_) if !text.contains('*') => return Ok(()),
            Err(e) => {
                return Err((
                    Some(e.marker().line()),
                    format!(
                        "YAML syntax error: {} (column {}); a document with aliases is only \
                         read once its expansion is counted",
                        e.info(),
                        e.marker().col() + 1
                    ),
                ));
            }
        };
        let line = Some(mark.line());
        // A closed node of `size`, anchored as `anchor`, is added to its parent.
        let mut closed: Option<(usize, usize)> = None;
        match event {
            Event::StreamEnd => return Ok(()),
            Event::Scalar(value, _, anchor, _) => closed = Some((anchor, 1 + value.len())),
            Event::Alias(id) => closed = Some((0, sizes.get(&id).copied().unwrap_or(1))),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() >= limits.depth {
                    return Err((
                        line,
                        format!(
                            "collections nest deeper than the limit of {} levels",
                            limits.depth
                        ),
                    ));
                }
                open.push(Open { anchor, size: 1 });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(o) = open.pop() {
                    closed = Some((o.anchor, o.size));
                }
            }
            _ => {}
        }
        if let Some((anchor, size)) = closed {
            if anchor != 0 {
                sizes.insert(anchor, size);
            }
            let into = match open.last_mut() {
                Some(parent) => &mut parent.size,
                None => &mut total,
            };
            *into = into.saturating_add(size);
            if *into > limits.expanded {
                return Err((
                    line,
                    format!(
                        "the document expands to more than the limit of {} nodes and bytes \
                         (aliases repeat what their anchor names)",
                        limits.expanded
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
