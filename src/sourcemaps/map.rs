//! One parsed source map and what it says about a minified position: the original source, line,
//! column and the name of the function around it, and the source lines there.

use std::sync::LazyLock;

use regex::Regex;
use sourcemap::{DecodedMap, SourceMap};

/// Why an upload is not a source map (answered with 400).
#[derive(Debug, thiserror::Error)]
#[error("not a source map: {0}")]
pub struct NotASourceMap(pub String);

/// Lines of source shown before and after the error's line.
pub const CONTEXT_LINES: u32 = 3;
/// How far back the enclosing function is looked for in an original source, in bytes.
const ENCLOSING_SCAN_BYTES: usize = 64 * 1024;

/// A source map, parsed, with what its memory is estimated at.
pub struct ParsedMap {
    map: SourceMap,
    /// Approximate heap bytes the parsed map holds (what the cache counts).
    pub bytes: usize,
}

/// Where a minified position came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The path from the map's `sources`, as the map gives it.
    pub source: String,
    /// 1-based.
    pub line: u32,
    pub column: u32,
    /// The original name of the function the position is in, when found.
    pub function: Option<String>,
    /// The lines around it from `sourcesContent`: (1-based number, text).
    pub context: Vec<(u32, String)>,
}

/// The fields of a map checked before it is parsed, so that the answer says what is wrong.
#[derive(serde::Deserialize)]
struct Header {
    version: Option<serde_json::Value>,
    mappings: Option<serde_json::Value>,
    sections: Option<serde_json::Value>,
}

impl ParsedMap {
    /// Parses an uploaded map: JSON with `version` 3 and `mappings` (or an index map's
    /// `sections`).
    pub fn parse(bytes: &[u8]) -> Result<ParsedMap, NotASourceMap> {
        let header: Header =
            serde_json::from_slice(bytes).map_err(|e| NotASourceMap(format!("not a JSON object ({e})")))?;
        if header.version.as_ref().and_then(serde_json::Value::as_u64) != Some(3) {
            return Err(NotASourceMap("`version` must be 3".into()));
        }
        match (&header.mappings, &header.sections) {
            (Some(serde_json::Value::String(_)), _) | (None, Some(serde_json::Value::Array(_))) => {}
            (Some(_), _) => return Err(NotASourceMap("`mappings` must be a string".into())),
            (None, _) => return Err(NotASourceMap("no `mappings`".into())),
        }
        let map = match sourcemap::decode_slice(bytes).map_err(|e| NotASourceMap(e.to_string()))? {
            DecodedMap::Regular(map) => map,
            DecodedMap::Index(index) => index.flatten().map_err(|e| NotASourceMap(e.to_string()))?,
            DecodedMap::Hermes(hermes) => SourceMap::clone(&hermes),
        };
        let bytes = estimate_bytes(&map);
        Ok(ParsedMap { map, bytes })
    }

    /// The map's debug id (`debugId` or `debug_id`), as Sentry's tools write it.
    pub fn debug_id(&self) -> Option<String> {
        self.map.get_debug_id().map(|id| id.to_string())
    }

    /// Where the minified 1-based `line` and `column` came from; `None` when the map has no
    /// mapping there.
    pub fn lookup(&self, line: u32, column: u32, with_context: bool) -> Option<Original> {
        let token = self.map.lookup_token(line.checked_sub(1)?, column.saturating_sub(1))?;
        // A token on another line covers nothing of this one.
        if token.get_dst_line() != line - 1 {
            return None;
        }
        let source = token.get_source()?.to_string();
        let (src_line, src_column) = (token.get_src_line(), token.get_src_col());
        let view = self.map.get_source_view(token.get_src_id());
        let function = view.and_then(|view| enclosing_function(view.source(), src_line, src_column));
        let context = match view.filter(|_| with_context) {
            Some(view) => {
                let first = src_line.saturating_sub(CONTEXT_LINES);
                (first..=src_line + CONTEXT_LINES)
                    .filter_map(|n| view.get_line(n).map(|text| (n + 1, text.trim_end().to_string())))
                    .collect()
            }
            None => Vec::new(),
        };
        Some(Original { source, line: src_line + 1, column: src_column + 1, function, context })
    }
}

/// The heap a parsed map holds, roughly: its tokens, and the text of its sources, contents and
/// names (each kept once).
fn estimate_bytes(map: &SourceMap) -> usize {
    let tokens = map.get_token_count() as usize * std::mem::size_of::<sourcemap::RawToken>();
    let sources: usize = map.sources().map(str::len).sum();
    // A source view keeps its text and the offsets of its lines.
    let contents: usize = map.source_contents().flatten().map(|c| c.len() + c.lines().count() * 16).sum();
    let names: usize = map.names().map(|n| n.len() + 16).sum();
    tokens + sources + contents + names + 1024
}

/// The name of the function whose body holds `(line, column)` (0-based) in `source`: the nearest
/// `{` not closed before the position that opens a function (`function name(…) {`,
/// `name(…) {`, `name = (…) => {`, `name: function (…) {`), skipping blocks of `if`, `for` and
/// the like. A heuristic on the text: braces in strings or comments can mislead it.
pub fn enclosing_function(source: &str, line: u32, column: u32) -> Option<String> {
    let offset = offset_of(source, line, column)?;
    let start = floor_char_boundary(source, offset.saturating_sub(ENCLOSING_SCAN_BYTES));
    let before = &source[start..offset];
    let mut depth = 0usize;
    for (i, byte) in before.bytes().enumerate().rev() {
        match byte {
            b'}' => depth += 1,
            b'{' if depth > 0 => depth -= 1,
            b'{' => {
                if let Some(name) = function_opened_by(&before[..i]) {
                    return Some(name);
                }
            }
            _ => {}
        }
    }
    None
}

/// The function whose body the `{` after `head` opens, if it opens one.
fn function_opened_by(head: &str) -> Option<String> {
    static PATTERNS: LazyLock<[Regex; 4]> = LazyLock::new(|| {
        [
            // function name(…) {   async function* name(…) {
            r"function\s*\*?\s*([A-Za-z_$][\w$]*)\s*\([^()]*\)\s*$",
            // name = function (…) {   name: async function (…) {
            r"([A-Za-z_$][\w$]*)\s*[:=]\s*(?:async\s+)?function\b\s*\*?\s*[\w$]*\s*\([^()]*\)\s*$",
            // name = (…) => {   name = async x => {
            r"([A-Za-z_$][\w$]*)\s*[:=]\s*(?:async\s*)?(?:\([^()]*\)|[A-Za-z_$][\w$]*)\s*=>\s*$",
            // name(…) {   (a method)
            r"([A-Za-z_$][\w$]*)\s*\([^()]*\)\s*$",
        ]
        .map(|pattern| Regex::new(pattern).expect("a valid pattern"))
    });
    const NOT_FUNCTIONS: [&str; 7] = ["if", "for", "while", "switch", "catch", "with", "function"];
    // The head of a function is short; a long window only slows the patterns down.
    let head = &head[floor_char_boundary(head, head.len().saturating_sub(400))..];
    PATTERNS.iter().find_map(|pattern| {
        let name = pattern.captures(head)?.get(1)?.as_str();
        (!NOT_FUNCTIONS.contains(&name)).then(|| name.to_string())
    })
}

/// The byte offset of 0-based `(line, column)` in `source` (columns count UTF-16 units in source
/// maps; counted here as characters, which is the same for nearly all code).
fn offset_of(source: &str, line: u32, column: u32) -> Option<usize> {
    let mut line_start = 0;
    for _ in 0..line {
        line_start += source[line_start..].find('\n')? + 1;
    }
    let text = &source[line_start..];
    let text = &text[..text.find('\n').unwrap_or(text.len())];
    let within = text.char_indices().nth(column as usize).map_or(text.len(), |(i, _)| i);
    Some(line_start + within)
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_enclosing_function_is_found_through_inner_blocks() {
        let source = "import x from 'y';\n\
            export function submitOrder(cart) {\n  if (cart.items.length) {\n    for (const i of cart.items) { check(i); }\n    throw new Error('no');\n  }\n}\n\
            const total = (cart) => {\n  return cart.sum();\n};\n\
            class Checkout {\n  pay(card) {\n    return card.charge();\n  }\n}\n";
        // `throw` on line 4 (0-based), inside `if` inside submitOrder.
        assert_eq!(enclosing_function(source, 4, 4).as_deref(), Some("submitOrder"));
        assert_eq!(enclosing_function(source, 8, 9).as_deref(), Some("total"));
        assert_eq!(enclosing_function(source, 12, 11).as_deref(), Some("pay"));
        assert_eq!(enclosing_function(source, 0, 3), None, "top level");
    }

    #[test]
    fn uploads_that_are_not_source_maps_say_why() {
        let why = |body: &str| ParsedMap::parse(body.as_bytes()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(why("not json").contains("not a JSON object"), "{}", why("not json"));
        assert!(why(r#"{"version": 2, "mappings": ""}"#).contains("`version` must be 3"));
        assert!(why(r#"{"version": 3, "sources": []}"#).contains("no `mappings`"));
        assert!(why(r#"{"version": 3, "mappings": 7}"#).contains("must be a string"));
        assert!(
            why(r#"{"version": 3, "sources": ["a.js"], "names": [], "mappings": "!!!"}"#).contains("not a source map")
        );
    }

    /// `function e(){throw new Error("x")}`, minified from three lines of src/a.js.
    pub(crate) fn small_map() -> Vec<u8> {
        let mut builder = sourcemap::SourceMapBuilder::new(Some("app.js"));
        let source = builder.add_source("src/a.js");
        builder.set_source_contents(source, Some("// a\nfunction explode() {\n  throw new Error('x');\n}\n"));
        builder.add(0, 9, 1, 9, Some("src/a.js"), Some("explode"), false);
        builder.add(0, 13, 2, 2, Some("src/a.js"), None, false);
        builder.add(0, 19, 2, 8, Some("src/a.js"), Some("Error"), false);
        let mut json = Vec::new();
        builder.into_sourcemap().to_writer(&mut json).expect("a map");
        json
    }

    #[test]
    fn a_position_maps_to_its_source_function_and_lines() {
        let parsed = ParsedMap::parse(&small_map()).expect("a map");
        // Chrome's column of `new Error` (1-based).
        let original = parsed.lookup(1, 20, true).expect("mapped");
        assert_eq!((original.source.as_str(), original.line, original.column), ("src/a.js", 3, 9));
        assert_eq!(original.function.as_deref(), Some("explode"), "the enclosing function, not `Error`");
        assert_eq!(original.context.first(), Some(&(1, "// a".to_string())));
        assert!(original.context.contains(&(3, "  throw new Error('x');".to_string())));
        assert_eq!(parsed.lookup(2, 1, false), None, "no line 2 in the minified file");
    }
}
