//! The search language of `q=` (the contract: "The search language" in the search spec): one
//! parser builds one syntax tree ([`ast`]), and one evaluator ([`Query::matches`]) says what it
//! means for a stored event. A store that compiles the tree (to SQL, to a CloudWatch filter
//! pattern) must select the same events as the evaluator.
//!
//! ```text
//! payment "card declined"          words and phrases: case-insensitive substrings of `message`
//! level:error http.status:>=500    field terms; `*` is a wildcard anywhere
//! -env:staging (a OR b) NOT c      negation, grouping; NOT > AND (or adjacency) > OR
//! ```
//!
//! Queries are held to [`MAX_QUERY_CHARS`], [`MAX_TERMS`] and [`MAX_DEPTH`], and wildcards match
//! in linear time, so no query text can make a search (or the parser) expensive.
//! Also here: [`parse_time_expr`], the relative times (`now-15m`) that `from` and `to` accept.

pub mod ast;
mod eval;
mod lexer;
mod parser;
mod time;
pub mod wildcard;

use std::fmt;
use std::str::FromStr;

pub use self::ast::{Bound, Comparison, Expr, Field, Node, Op, Pattern, Span, Value};
pub use self::eval::{Subject, test_json, test_text, text_in, text_in_each, user_id, walk};
pub use self::time::{EARLIEST, LATEST, TimeError, parse_time_expr, parse_time_expr_in};
use crate::event::{Level, StoredEvent};

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;
/// The most words, phrases, field terms and list values one query may hold.
pub const MAX_TERMS: usize = 100;
/// The deepest nesting of parentheses and negations.
pub const MAX_DEPTH: usize = 32;

/// `text` in the one case every case-insensitive comparison of a search uses, so that a folded
/// substring is a substring of the folded text. That needs a fold character by character:
/// `str::to_lowercase` writes `Σ` as `ς` at a word's end and `σ` elsewhere, so `ΣΥΣ` (folded
/// `συς`) would not be found in `ΣΥΣΤΗΜΑ` (`συστημα`); here all three are `σ`.
pub fn fold_case(text: &str) -> String {
    let lower = text.to_lowercase();
    if lower.contains('ς') { lower.replace('ς', "σ") } else { lower }
}

/// The levels a `level:` test accepts, as the evaluator reads it: the stored (lower-case) level
/// text against each value, or the level order against a level bound (a level has no number).
pub fn levels_accepted(op: &Op) -> Vec<Level> {
    Level::ALL
        .into_iter()
        .filter(|level| match op {
            Op::AnyOf(values) => values.iter().any(|value| wildcard::matches(value.pattern.folded(), level.as_str())),
            Op::Compare(comparison, Bound::Level(bound)) => comparison.holds(level, bound),
            Op::Compare(_, Bound::Number(_)) => false,
        })
        .collect()
}

/// A parsed query: a tree, or none for a blank query (which matches every event).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    root: Option<Expr>,
}

impl Query {
    /// Parses `q`; an error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        parser::parse(text).map(|root| Query { root })
    }

    /// The tree, `None` for a blank query.
    pub fn root(&self) -> Option<&Expr> {
        self.root.as_ref()
    }

    /// The levels every matching event has, from the `level:` tests the whole query needs (not
    /// under `OR` or a negation); `None` when the query allows every level. A store may narrow
    /// its reads with them; the evaluator still decides.
    pub fn required_levels(&self) -> Option<Vec<Level>> {
        fn collect(expr: &Expr) -> Option<Vec<Level>> {
            match &expr.node {
                Node::And(children) => children
                    .iter()
                    .filter_map(collect)
                    .reduce(|a, b| a.into_iter().filter(|level| b.contains(level)).collect()),
                Node::Term { field: Field::Level, op } => Some(levels_accepted(op)),
                _ => None,
            }
        }
        self.root.as_ref().and_then(collect)
    }

    /// The levels that match, when the query tests nothing but levels (`level:error`,
    /// `-level:info`, `level:>=warn OR level:debug`): such a query is a set of levels, which a store
    /// answers from its level counts and its time index instead of reading events. `None` when
    /// any other test is in it (or for a blank query).
    pub fn only_levels(&self) -> Option<Vec<Level>> {
        fn set(expr: &Expr) -> Option<Vec<Level>> {
            match &expr.node {
                Node::Term { field: Field::Level, op } => Some(levels_accepted(op)),
                Node::Not(child) => {
                    set(child).map(|matched| Level::ALL.into_iter().filter(|l| !matched.contains(l)).collect())
                }
                Node::And(children) => children.iter().map(set).reduce(|a, b| {
                    let (a, b) = (a?, b?);
                    Some(a.into_iter().filter(|level| b.contains(level)).collect())
                })?,
                Node::Or(children) => children.iter().map(set).reduce(|a, b| {
                    let (a, b) = (a?, b?);
                    Some(Level::ALL.into_iter().filter(|level| a.contains(level) || b.contains(level)).collect())
                })?,
                Node::Text(_) | Node::Term { .. } | Node::Has(_) => None,
            }
        }
        self.root.as_ref().and_then(set)
    }

    /// The literal texts a matching message may contain, for a page to mark: each free word or
    /// quoted phrase (the pieces between its wildcards), not those under a negation, not field
    /// tests. As written, first seen first, each once.
    pub fn highlights(&self) -> Vec<&str> {
        fn collect<'q>(expr: &'q Expr, out: &mut Vec<&'q str>) {
            match &expr.node {
                Node::And(children) | Node::Or(children) => children.iter().for_each(|child| collect(child, out)),
                Node::Text(pattern) => {
                    for piece in pattern.segments().filter(|piece| !piece.is_empty()) {
                        if !out.contains(&piece) {
                            out.push(piece);
                        }
                    }
                }
                Node::Not(_) | Node::Term { .. } | Node::Has(_) => {}
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            collect(root, &mut out);
        }
        out
    }

    /// Whether `event`, read from the log group `group`, matches.
    pub fn matches(&self, event: &StoredEvent, group: &str) -> bool {
        self.matches_subject(&Subject::new(event, group))
    }

    /// Whether `subject` matches: one subject tested against many queries folds its message once.
    pub fn matches_subject(&self, subject: &Subject<'_>) -> bool {
        self.root.as_ref().is_none_or(|root| subject.matches(root))
    }
}

impl FromStr for Query {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Query::parse(text)
    }
}

/// The query in canonical form: it parses back to the same tree.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            Some(root) => write!(f, "{root}"),
            None => Ok(()),
        }
    }
}

/// A query that does not parse. Serialised, it is the body of the HTTP layer's 400:
/// `{"error": message, "position": N}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{message} (at character {position})")]
pub struct QueryError {
    #[serde(rename = "error")]
    pub message: String,
    /// The 0-based character (not byte) offset at which the query is wrong.
    pub position: usize,
}

impl QueryError {
    pub(crate) fn new(message: impl Into<String>, position: usize) -> Self {
        QueryError { message: message.into(), position }
    }
}

/// Helpers for the tests of this module's files.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The tree fully parenthesised, fields and values as written: `(or a (and b c))`.
    pub fn shape(query: &str) -> String {
        match Query::parse(query) {
            Ok(Query { root: Some(root) }) => shape_of(&root),
            Ok(Query { root: None }) => "(empty)".into(),
            Err(error) => panic!("`{query}` did not parse: {error}"),
        }
    }

    pub fn shape_of(expr: &Expr) -> String {
        let join = |name: &str, children: &[Expr]| {
            format!("({name} {})", children.iter().map(shape_of).collect::<Vec<_>>().join(" "))
        };
        match &expr.node {
            Node::And(children) => join("and", children),
            Node::Or(children) => join("or", children),
            Node::Not(child) => format!("(not {})", shape_of(child)),
            Node::Text(pattern) => format!("{:?}", pattern.as_str()),
            Node::Has(field) => format!("(has {field})"),
            Node::Term { field, op: Op::AnyOf(values) } => {
                let values: Vec<String> = values.iter().map(|value| format!("{:?}", value.pattern.as_str())).collect();
                format!("({field} = {})", values.join(" | "))
            }
            Node::Term { field, op: Op::Compare(comparison, bound) } => {
                let bound = match bound {
                    Bound::Number(number) => number.to_string(),
                    Bound::Level(level) => level.to_string(),
                };
                format!("({field} {} {bound})", comparison.as_str())
            }
        }
    }

    /// The error of a query that must not parse.
    pub fn error(query: &str) -> QueryError {
        match Query::parse(query) {
            Ok(parsed) => panic!("`{query}` parsed as {parsed:?}"),
            Err(error) => error,
        }
    }

    /// The same tree with every span zeroed, to compare trees parsed from different texts.
    pub fn without_spans(expr: &Expr) -> Expr {
        let node = match &expr.node {
            Node::And(children) => Node::And(children.iter().map(without_spans).collect()),
            Node::Or(children) => Node::Or(children.iter().map(without_spans).collect()),
            Node::Not(child) => Node::Not(Box::new(without_spans(child))),
            Node::Term { field, op: Op::AnyOf(values) } => Node::Term {
                field: field.clone(),
                op: Op::AnyOf(values.iter().map(|value| Value { span: Span::default(), ..value.clone() }).collect()),
            },
            other => other.clone(),
        };
        Expr { node, span: Span::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::without_spans;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_highlights_are_the_free_words_and_phrases_not_negated_nor_field_tests() {
        let query =
            Query::parse(r#"Payment "card declined" level:error -timeout NOT retry (pay OR refund*) has:stack pay"#)
                .expect("parses");
        assert_eq!(query.highlights(), ["Payment", "card declined", "pay", "refund"]);
        assert!(Query::default().highlights().is_empty());
    }

    #[test]
    fn case_insensitive_search_handles_non_ascii() {
        let contains_ignoring_case = |haystack: &str, needle: &str| fold_case(haystack).contains(&fold_case(needle));
        assert!(contains_ignoring_case("Zahlung FEHLGESCHLAGEN für Ärger", "ärger"));
        assert!(contains_ignoring_case("결제 실패", "실패"));
        assert!(!contains_ignoring_case("ok", "fail"));
        assert!(contains_ignoring_case("ΣΥΣΤΗΜΑ ΕΚΤΟΣ", "ΣΥΣ"), "a prefix ending in Σ");
        assert!(contains_ignoring_case("ΕΚΤΟΣ", "εκτοσ"), "a final Σ typed as σ");
    }

    #[test]
    fn the_levels_a_query_requires_come_from_its_level_tests_outside_or_and_not() {
        let required = |q: &str| q.parse::<Query>().expect("query").required_levels();
        assert_eq!(required("timeout level:error"), Some(vec![Level::Error]));
        assert_eq!(required("level:>=warn level:[warn,fatal,info]"), Some(vec![Level::Warn, Level::Fatal]));
        assert_eq!(required("level:e*"), Some(vec![Level::Error]));
        assert_eq!(required("level:error level:info"), Some(vec![]), "nothing can match");
        assert_eq!(required("level:error OR timeout"), None);
        assert_eq!(required("-level:error"), None);
        assert_eq!(required("timeout"), None);
    }

    #[test]
    fn a_query_of_level_tests_alone_is_the_set_of_levels_it_matches() {
        let only = |q: &str| q.parse::<Query>().expect("query").only_levels();
        assert_eq!(only("level:error"), Some(vec![Level::Error]));
        assert_eq!(only("-level:info"), Some(vec![Level::Debug, Level::Warn, Level::Error, Level::Fatal]));
        assert_eq!(only("level:>=warn"), Some(vec![Level::Warn, Level::Error, Level::Fatal]));
        assert_eq!(only("level:debug OR level:>=error"), Some(vec![Level::Debug, Level::Error, Level::Fatal]));
        assert_eq!(only("level:>=info -level:[warn,fatal]"), Some(vec![Level::Info, Level::Error]));
        assert_eq!(only("NOT (level:error OR level:fatal)"), Some(vec![Level::Debug, Level::Info, Level::Warn]));
        assert_eq!(only("level:error level:info"), Some(vec![]), "nothing can match");
        assert_eq!(only("level:error timeout"), None);
        assert_eq!(only("level:error OR has:user"), None);
        assert_eq!(only("-timeout"), None);
        assert_eq!(only(""), None);
        // The same answer as the evaluator for every level.
        for q in ["-level:info", "level:>=warn OR level:debug", "-(level:w* OR -level:[debug,warn])"] {
            let query = q.parse::<Query>().expect("query");
            for level in Level::ALL {
                let event = crate::event::StoredEvent::bare(
                    crate::event::new_id(::time::OffsetDateTime::UNIX_EPOCH),
                    ("p", "e"),
                    (::time::OffsetDateTime::UNIX_EPOCH, ::time::OffsetDateTime::UNIX_EPOCH),
                    level,
                    "m".into(),
                );
                assert_eq!(
                    query.only_levels().expect("levels").contains(&level),
                    query.matches(&event, ""),
                    "{q} on {level:?}"
                );
            }
        }
    }

    fn round_trip(query: &str) -> String {
        let parsed = Query::parse(query).expect("parses");
        let printed = parsed.to_string();
        let again = Query::parse(&printed).unwrap_or_else(|e| panic!("`{printed}` (from `{query}`) fails: {e}"));
        assert_eq!(parsed.root().map(without_spans), again.root().map(without_spans), "`{query}` → `{printed}`");
        assert_eq!(again.to_string(), printed);
        printed
    }

    #[test]
    fn printing_a_query_gives_its_canonical_form() {
        assert_eq!(round_trip("payment"), "payment");
        assert_eq!(round_trip("  a   AND b  "), "a b");
        assert_eq!(round_trip("a OR (b c)"), "a OR b c");
        assert_eq!(round_trip("(a OR b) c"), "(a OR b) c");
        assert_eq!(round_trip("a (b c)"), "a (b c)");
        assert_eq!(round_trip("a OR (b OR c)"), "a OR (b OR c)");
        assert_eq!(round_trip("NOT (a OR b)"), "-(a OR b)");
        assert_eq!(round_trip("NOT NOT a"), "--a");
        assert_eq!(
            round_trip(r#""card declined" "say \"hi\"" "back\\slash""#),
            r#""card declined" "say \"hi\"" back\slash"#
        );
        assert_eq!(round_trip(r#""AND" "-x" "a:b" "or""#), r#""AND" "-x" "a:b" or"#);
        assert_eq!(round_trip("- a"), r#""-" a"#);
        assert_eq!(round_trip(r"a\b"), r"a\b");
    }

    #[test]
    fn printing_field_terms_quotes_only_what_needs_it() {
        assert_eq!(round_trip("LEVEL:WARNING"), "level:warn");
        assert_eq!(round_trip("Http.Status:>=500.0"), "http.status:>=500");
        assert_eq!(round_trip("level:>=Warning"), "level:>=warn");
        assert_eq!(round_trip("extra.Order.ID:5"), "extra.Order.ID:5");
        assert_eq!(round_trip(r#"message:"two words""#), r#"message:"two words""#);
        assert_eq!(round_trip(r#"url:">5""#), r#"url:">5""#);
        assert_eq!(round_trip(r#"url:a"b"#), r#"url:"a\"b""#);
        assert_eq!(round_trip("url:http://x.test/a?b=c"), "url:http://x.test/a?b=c");
        assert_eq!(round_trip(r#"code:[ a , "b c", d(e) ]"#), r#"code:[a,"b c",d(e)]"#);
        assert_eq!(round_trip("code:[only]"), "code:only");
        assert_eq!(round_trip("HAS:extra.a.b"), "has:extra.a.b");
        assert_eq!(round_trip("-http.status:<0.25"), "-http.status:<0.25");
    }

    #[test]
    fn a_blank_query_matches_everything_and_prints_as_nothing() {
        for blank in ["", "   ", "\t\n"] {
            let query = Query::parse(blank).expect("blank parses");
            assert_eq!(query.root(), None);
            assert_eq!(query.to_string(), "");
        }
    }

    #[test]
    fn the_error_says_where_in_characters() {
        let error = Query::parse("ünïcödé (").expect_err("unclosed");
        assert_eq!(error.position, 8);
        assert_eq!(error.to_string(), "this `(` is never closed (at character 8)");
        let body = serde_json::to_value(&error).expect("serialises");
        assert_eq!(body, serde_json::json!({"error": "this `(` is never closed", "position": 8}));
    }

    /// Query-like text: the alphabet of the language, so that many cases parse.
    fn query_like() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "a",
            "Bé",
            " ",
            "(",
            ")",
            "\"",
            "\\",
            "*",
            "-",
            ":",
            ",",
            "[",
            "]",
            ">",
            "<=",
            "5",
            ".5",
            " AND ",
            " OR ",
            "NOT ",
            "level:",
            "http.status:",
            "extra.a.b:",
            "user.",
            "has:",
            "warn",
        ]);
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
            if let Err(error) = Query::parse(&text) {
                prop_assert!(error.position <= text.chars().count());
            }
        }

        #[test]
        fn a_parsed_query_prints_as_text_that_parses_to_the_same_tree(text in query_like()) {
            if let Ok(parsed) = Query::parse(&text) {
                let printed = parsed.to_string();
                let again = Query::parse(&printed);
                prop_assert!(again.is_ok(), "`{}` printed as `{}`: {:?}", text, printed, again);
                let again = again.expect("checked");
                prop_assert_eq!(parsed.root().map(without_spans), again.root().map(without_spans));
                prop_assert_eq!(again.to_string(), printed);
            } else if let Err(error) = Query::parse(&text) {
                prop_assert!(error.position <= text.chars().count(), "{}: {:?}", text, error);
            }
        }
    }
}
