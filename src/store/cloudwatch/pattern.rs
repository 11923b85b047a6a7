//! The CloudWatch filter pattern a read sends with FilterLogEvents: the part of a search (and of
//! its level filter) that AWS's JSON pattern syntax can say without ever dropping an event the
//! evaluator would accept. It only narrows what CloudWatch returns; `Query::matches` still decides
//! every event (and emulators such as moto ignore patterns altogether).
//!
//! AWS compares strings case-sensitively (terms, phrases and JSON string values alike) while the
//! search language folds case, so a string is only sent where the stored value's case is known:
//! `level` (always lower case) and `id` (a ULID, always upper case). Numbers are sent for
//! `http.status` (always a plain JSON integer 0..=65535), normalised to whole-number bounds.
//! Words, phrases and every other field are left to the evaluator:
//! - a word `Payment` must also find `PAYMENT`, which no term pattern does;
//! - `extra.*` numbers may be stored in exponent form (`1e20`) or past 2^53, where AWS's number
//!   reading is not documented well enough to prove it agrees with the evaluator's `f64`.
//!
//! Negations are sent only for what is known exactly for every event: a set of levels (every
//! stored event has one). How AWS treats `!=` or `NOT EXISTS` on a missing parent object is not
//! documented, so `-http.status:>=500` sends nothing.
//!
//! Lambda (foreign) groups get no pattern: their lines are mostly text, the level is guessed from
//! tokens in any case (`[ERROR]`, `WARN`, a JSON `"level":"warning"`) and defaults to info, the id
//! is derived from a hash and the message is cleaned before it is shown, so no AWS pattern over
//! the raw line is provably necessary.

use crate::event::Level;
use crate::search::{Bound, Comparison, Expr, Field, Node, Op, Query, levels_accepted};

/// AWS refuses a longer `filterPattern` (FilterLogEvents: 1024 characters at most).
const MAX_PATTERN_CHARS: usize = 1024;
/// The largest `http.status` a stored event can hold (it is a `u16`).
const MAX_STATUS: f64 = u16::MAX as f64;

/// The pattern for a read of `query` with the level filter `levels` (empty: every level), or
/// `None` when no useful pattern is provably necessary.
pub(super) fn filter_pattern(query: &Query, levels: &[Level], own_group: bool) -> Option<String> {
    if !own_group {
        return None;
    }
    let cond = condition(query, levels);
    let text = render_top(&cond)?;
    if text.len() <= MAX_PATTERN_CHARS {
        return Some(text);
    }
    // Too long for AWS: any one conjunct is still necessary; the level set is short.
    match cond {
        Cond::And(children) => children.iter().find(|c| matches!(c, Cond::Levels(_))).and_then(render_top),
        _ => None,
    }
}

/// What the pattern says, before it is written out.
fn condition(query: &Query, levels: &[Level]) -> Cond {
    let searched = query.root().map_or(Cond::True, |root| translate(root).cond);
    let filtered = if levels.is_empty() { Cond::True } else { Cond::Levels(LevelSet::of(levels)) };
    and(vec![filtered, searched])
}

/// A set of levels, one bit per [`Level::ALL`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LevelSet(u8);

impl LevelSet {
    const ALL: LevelSet = LevelSet((1 << Level::ALL.len()) - 1);

    fn of(levels: &[Level]) -> Self {
        LevelSet::matching(|level| levels.contains(&level))
    }

    fn matching(test: impl Fn(Level) -> bool) -> Self {
        LevelSet(Level::ALL.iter().enumerate().filter(|(_, l)| test(**l)).fold(0, |bits, (i, _)| bits | 1 << i))
    }

    fn levels(self) -> impl Iterator<Item = Level> {
        Level::ALL.into_iter().enumerate().filter(move |(i, _)| self.0 & (1 << i) != 0).map(|(_, l)| l)
    }

    fn complement(self) -> Self {
        LevelSet(!self.0 & LevelSet::ALL.0)
    }
}

/// How a whole-number bound tests `http.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusTest {
    Equal,
    AtLeast,
    AtMost,
}

/// A condition on one of our stored JSON lines. `True` sends nothing; `False` matches no line.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    True,
    False,
    /// `level` is one of these (never empty or full: those are `False` and `True`).
    Levels(LevelSet),
    /// `http.status` is present and passes.
    Status(StatusTest, u16),
    /// `id` is exactly this (upper case, as stored).
    Id(String),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// A node's condition, and whether it holds for exactly the events the node matches (else it
/// only holds for every one of them, and more).
struct Translated {
    cond: Cond,
    exact: bool,
}

fn exact(cond: Cond) -> Translated {
    Translated { cond, exact: true }
}

/// Nothing can be said: every event passes.
fn unknown() -> Translated {
    Translated { cond: Cond::True, exact: false }
}

fn translate(expr: &Expr) -> Translated {
    match &expr.node {
        Node::And(children) => combine(children, and),
        Node::Or(children) => combine(children, or),
        Node::Not(child) => match translate(child) {
            Translated { cond: Cond::True, exact: true } => exact(Cond::False),
            Translated { cond: Cond::False, .. } => exact(Cond::True),
            Translated { cond: Cond::Levels(set), exact: true } => exact(levels(set.complement())),
            _ => unknown(),
        },
        Node::Text(_) => unknown(),
        Node::Has(Field::Level | Field::Id) => exact(Cond::True),
        Node::Has(Field::HttpStatus) => exact(Cond::Status(StatusTest::AtLeast, 0)),
        Node::Has(_) => unknown(),
        Node::Term { field: Field::Level, op } => exact(levels(level_term(op))),
        Node::Term { field: Field::HttpStatus, op } => status_term(op),
        Node::Term { field: Field::Id, op } => id_term(op),
        Node::Term { .. } => unknown(),
    }
}

fn combine(children: &[Expr], join: fn(Vec<Cond>) -> Cond) -> Translated {
    let translated: Vec<Translated> = children.iter().map(translate).collect();
    let exact = translated.iter().all(|t| t.exact);
    let cond = join(translated.into_iter().map(|t| t.cond).collect());
    // Nothing matches `False`, so it is exact whatever its parts were.
    Translated { exact: exact || cond == Cond::False, cond }
}

fn level_term(op: &Op) -> LevelSet {
    LevelSet::of(&levels_accepted(op))
}

fn levels(set: LevelSet) -> Cond {
    match set {
        LevelSet(0) => Cond::False,
        LevelSet::ALL => Cond::True,
        set => Cond::Levels(set),
    }
}

/// `http.status` is a whole number in 0..=65535, so every test becomes a whole-number bound.
fn status_term(op: &Op) -> Translated {
    match op {
        Op::AnyOf(values) => {
            let mut any = Vec::new();
            for value in values {
                match value.number {
                    Some(n) if n.fract() == 0.0 && (0.0..=MAX_STATUS).contains(&n) => {
                        any.push(Cond::Status(StatusTest::Equal, n as u16));
                    }
                    // A number the status can never equal.
                    Some(_) => {}
                    // Text (`50*`) compares with the status's digits: left to the evaluator.
                    None => return unknown(),
                }
            }
            exact(or(any))
        }
        Op::Compare(comparison, Bound::Number(bound)) => {
            let (test, whole) = match comparison {
                Comparison::Greater => (StatusTest::AtLeast, bound.floor() + 1.0),
                Comparison::GreaterOrEqual => (StatusTest::AtLeast, bound.ceil()),
                Comparison::Less => (StatusTest::AtMost, bound.ceil() - 1.0),
                Comparison::LessOrEqual => (StatusTest::AtMost, bound.floor()),
            };
            exact(match test {
                StatusTest::AtLeast if whole > MAX_STATUS => Cond::False,
                StatusTest::AtMost if whole < 0.0 => Cond::False,
                // Clamped into 0..=65535, which changes nothing for a u16.
                _ => Cond::Status(test, whole.clamp(0.0, MAX_STATUS) as u16),
            })
        }
        Op::Compare(_, Bound::Level(_)) => exact(Cond::False),
    }
}

/// An id is stored as its canonical upper-case ULID text; the evaluator compares it folded.
fn id_term(op: &Op) -> Translated {
    match op {
        Op::AnyOf(values) => {
            let mut any = Vec::new();
            for value in values {
                if value.pattern.has_wildcard() {
                    return unknown();
                }
                let folded = value.pattern.folded();
                if let Ok(id) = ulid::Ulid::from_string(folded)
                    && id.to_string().to_lowercase() == folded
                {
                    any.push(Cond::Id(id.to_string()));
                }
            }
            exact(or(any))
        }
        // An id has no number and no level.
        Op::Compare(..) => exact(Cond::False),
    }
}

/// Every part holds: `True` parts dropped, level sets intersected, nested `And`s flattened.
fn and(parts: Vec<Cond>) -> Cond {
    let mut set = LevelSet::ALL;
    let mut rest = Vec::new();
    for part in parts {
        match part {
            Cond::True => {}
            Cond::False => return Cond::False,
            Cond::Levels(s) => set = LevelSet(set.0 & s.0),
            Cond::And(inner) => match and(inner) {
                Cond::And(flat) => rest.extend(flat),
                other => rest.push(other),
            },
            other => rest.push(other),
        }
    }
    let set = levels(set);
    match set {
        Cond::False => return Cond::False,
        Cond::True => {}
        set => rest.insert(0, set),
    }
    match rest.len() {
        0 => Cond::True,
        1 => rest.pop().unwrap_or(Cond::True),
        _ => Cond::And(rest),
    }
}

/// One part holds: `False` parts dropped, level sets joined, nested `Or`s flattened.
fn or(parts: Vec<Cond>) -> Cond {
    let mut set = LevelSet(0);
    let mut rest = Vec::new();
    for part in parts {
        match part {
            Cond::False => {}
            Cond::True => return Cond::True,
            Cond::Levels(s) => set = LevelSet(set.0 | s.0),
            Cond::Or(inner) => match or(inner) {
                Cond::Or(flat) => rest.extend(flat),
                other => rest.push(other),
            },
            other => rest.push(other),
        }
    }
    match levels(set) {
        Cond::True => return Cond::True,
        Cond::False => {}
        set => rest.insert(0, set),
    }
    match rest.len() {
        0 => Cond::False,
        1 => rest.pop().unwrap_or(Cond::False),
        _ => Cond::Or(rest),
    }
}

/// The pattern text; `None` for `True`.
fn render_top(cond: &Cond) -> Option<String> {
    match cond {
        Cond::True => None,
        // Every stored event has a level: this matches none of our lines.
        Cond::False => Some("{ $.level NOT EXISTS }".into()),
        other => Some(format!("{{ {} }}", render(other, false))),
    }
}

/// One condition; `nested` adds the parentheses a compound needs inside another.
fn render(cond: &Cond, nested: bool) -> String {
    let joined = |parts: Vec<String>, op: &str| {
        let text = parts.join(op);
        if nested && parts.len() > 1 { format!("({text})") } else { text }
    };
    match cond {
        Cond::True | Cond::False => String::new(),
        Cond::Levels(set) => joined(set.levels().map(|l| format!("$.level = \"{l}\"")).collect(), " || "),
        Cond::Status(test, n) => {
            let op = match test {
                StatusTest::Equal => "=",
                StatusTest::AtLeast => ">=",
                StatusTest::AtMost => "<=",
            };
            format!("$.http.status {op} {n}")
        }
        Cond::Id(id) => format!("$.id = \"{id}\""),
        Cond::And(parts) => joined(parts.iter().map(|p| render(p, true)).collect(), " && "),
        Cond::Or(parts) => joined(parts.iter().map(|p| render(p, true)).collect(), " || "),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    use super::*;
    use crate::event::StoredEvent;

    const GROUP: &str = "/logboard/demo/production";

    fn pattern(query: &str, levels: &[Level]) -> Option<String> {
        let query = Query::parse(query).unwrap_or_else(|e| panic!("`{query}`: {e}"));
        filter_pattern(&query, levels, true)
    }

    fn own(query: &str) -> Option<String> {
        pattern(query, &[])
    }

    #[test]
    fn a_blank_query_without_levels_sends_no_pattern() {
        assert_eq!(own(""), None);
    }

    #[test]
    fn the_level_filter_names_each_level_in_its_stored_lower_case() {
        assert_eq!(pattern("", &[Level::Error]).as_deref(), Some(r#"{ $.level = "error" }"#));
        assert_eq!(
            pattern("", &[Level::Fatal, Level::Error]).as_deref(),
            Some(r#"{ $.level = "error" || $.level = "fatal" }"#)
        );
        assert_eq!(pattern("", &Level::ALL), None);
    }

    #[test]
    fn level_terms_become_the_set_of_levels_they_accept() {
        assert_eq!(own("level:WARNING").as_deref(), Some(r#"{ $.level = "warn" }"#));
        assert_eq!(
            own("level:>=warn").as_deref(),
            Some(r#"{ $.level = "warn" || $.level = "error" || $.level = "fatal" }"#)
        );
        assert_eq!(own("level:*r*").as_deref(), Some(r#"{ $.level = "warn" || $.level = "error" }"#));
        assert_eq!(own("level:[debug,fatal]").as_deref(), Some(r#"{ $.level = "debug" || $.level = "fatal" }"#));
        assert_eq!(own("level:*"), None);
    }

    #[test]
    fn a_negated_level_term_sends_the_other_levels() {
        assert_eq!(
            own("-level:>=error").as_deref(),
            Some(r#"{ $.level = "debug" || $.level = "info" || $.level = "warn" }"#)
        );
        assert_eq!(
            own("NOT (level:debug OR level:info) -level:fatal").as_deref(),
            Some(r#"{ $.level = "warn" || $.level = "error" }"#)
        );
    }

    #[test]
    fn the_level_filter_and_level_terms_intersect() {
        assert_eq!(pattern("level:>=warn", &[Level::Info, Level::Error]).as_deref(), Some(r#"{ $.level = "error" }"#));
        // Nothing can match: a pattern that matches none of our lines.
        assert_eq!(pattern("level:debug", &[Level::Error]).as_deref(), Some("{ $.level NOT EXISTS }"));
    }

    #[test]
    fn status_comparisons_become_whole_number_bounds() {
        assert_eq!(own("http.status:>=500").as_deref(), Some("{ $.http.status >= 500 }"));
        assert_eq!(own("http.status:>499.5").as_deref(), Some("{ $.http.status >= 500 }"));
        assert_eq!(own("http.status:<500").as_deref(), Some("{ $.http.status <= 499 }"));
        assert_eq!(own("http.status:<=499.9").as_deref(), Some("{ $.http.status <= 499 }"));
        assert_eq!(own("http.status:>-7").as_deref(), Some("{ $.http.status >= 0 }"));
        assert_eq!(own("http.status:<99999999").as_deref(), Some("{ $.http.status <= 65535 }"));
        assert_eq!(own("http.status:>70000").as_deref(), Some("{ $.level NOT EXISTS }"));
        assert_eq!(own("http.status:<0").as_deref(), Some("{ $.level NOT EXISTS }"));
    }

    #[test]
    fn status_values_become_numeric_equalities() {
        assert_eq!(own("http.status:502").as_deref(), Some("{ $.http.status = 502 }"));
        assert_eq!(
            own("http.status:[500,502.0,502.5]").as_deref(),
            Some("{ $.http.status = 500 || $.http.status = 502 }")
        );
        // Text compares with the status's digits, which AWS cannot do on a number.
        assert_eq!(own("http.status:50*"), None);
        assert_eq!(own("has:http.status").as_deref(), Some("{ $.http.status >= 0 }"));
    }

    #[test]
    fn ids_are_sent_in_their_stored_upper_case() {
        assert_eq!(own("id:01jdq4f4n3k4s0y7p4x8c2v9hz").as_deref(), Some(r#"{ $.id = "01JDQ4F4N3K4S0Y7P4X8C2V9HZ" }"#));
        assert_eq!(own("id:01JDQ4*"), None);
        assert_eq!(own("id:not-an-id").as_deref(), Some("{ $.level NOT EXISTS }"));
    }

    #[test]
    fn and_or_and_parentheses_combine_what_can_be_sent() {
        assert_eq!(
            own("level:error http.status:>=500 payment").as_deref(),
            Some(r#"{ $.level = "error" && $.http.status >= 500 }"#)
        );
        assert_eq!(
            own("(level:error http.status:>=500) OR level:fatal").as_deref(),
            Some(r#"{ $.level = "fatal" || ($.level = "error" && $.http.status >= 500) }"#)
        );
        assert_eq!(
            own("level:[warn,error] (http.status:502 OR http.status:<100)").as_deref(),
            Some(r#"{ ($.level = "warn" || $.level = "error") && ($.http.status = 502 || $.http.status <= 99) }"#)
        );
    }

    #[test]
    fn words_phrases_and_case_insensitive_fields_send_nothing() {
        // AWS terms and JSON strings are case-sensitive; the search folds case.
        for query in ["payment", "\"card declined\"", "type:TypeError", "url:*/api/*", "extra.n:>5", "user:alice"] {
            assert_eq!(own(query), None, "{query}");
        }
        // An OR with an unknown side says nothing.
        assert_eq!(own("level:error OR payment"), None);
    }

    #[test]
    fn negations_other_than_of_levels_send_nothing() {
        assert_eq!(own("-http.status:>=500"), None);
        assert_eq!(own("-id:01JDQ4F4N3K4S0Y7P4X8C2V9HZ"), None);
        assert_eq!(own("-payment level:error").as_deref(), Some(r#"{ $.level = "error" }"#));
        assert_eq!(own("-(payment level:error)"), None);
    }

    #[test]
    fn foreign_groups_get_no_pattern() {
        let query = Query::parse("level:error http.status:>=500").expect("parses");
        assert_eq!(filter_pattern(&query, &[Level::Error], false), None);
    }

    #[test]
    fn a_pattern_too_long_for_aws_keeps_only_its_level_set() {
        let ids: Vec<String> = (0..60).map(|i| ulid::Ulid::from_parts(1_795_000_000_000, i).to_string()).collect();
        let query = format!("level:error id:[{}]", ids.join(","));
        assert_eq!(pattern(&query, &[]).as_deref(), Some(r#"{ $.level = "error" }"#));
        let query = format!("id:[{}]", ids.join(","));
        assert_eq!(pattern(&query, &[]), None);
    }

    /// AWS's reading of the conditions this module writes, over one of our JSON lines: a string
    /// equals exactly, a number compares only with a JSON number, a missing property fails.
    fn holds(cond: &Cond, line: &Json) -> bool {
        match cond {
            Cond::True => true,
            Cond::False => false,
            Cond::Levels(set) => {
                line["level"].as_str().and_then(|l| l.parse().ok()).is_some_and(|l: Level| set.levels().any(|s| s == l))
            }
            Cond::Status(test, n) => line["http"]["status"].as_u64().is_some_and(|status| match test {
                StatusTest::Equal => status == u64::from(*n),
                StatusTest::AtLeast => status >= u64::from(*n),
                StatusTest::AtMost => status <= u64::from(*n),
            }),
            Cond::Id(id) => line["id"].as_str() == Some(id.as_str()),
            Cond::And(parts) => parts.iter().all(|p| holds(p, line)),
            Cond::Or(parts) => parts.iter().any(|p| holds(p, line)),
        }
    }

    fn sample_events() -> Vec<StoredEvent> {
        let base = json!({
            "id": "01JDQ4F4N3K4S0Y7P4X8C2V9HZ", "project": "demo", "env": "production",
            "timestamp": "2026-11-24T15:00:00.000Z", "received_at": "2026-11-24T15:00:00.000Z",
        });
        let variants = [
            json!({"level": "debug", "message": "Payment ok"}),
            json!({"level": "info", "message": "payment FAILED", "http": {"status": 200}}),
            json!({"level": "warn", "message": "slow", "http": {"method": "GET"}}),
            json!({"level": "error", "message": "boom", "http": {"status": 500}, "id": "01JDQ4F4N3K4S0Y7P4X8C2V9HA"}),
            json!({"level": "error", "message": "Card declined", "http": {"status": 502}, "type": "HttpError"}),
            json!({"level": "fatal", "message": "crash", "http": {"status": 0}, "extra": {"n": 5}}),
            json!({"level": "fatal", "message": "", "http": {"status": 65535}}),
        ];
        variants
            .iter()
            .map(|v| {
                let mut e = base.clone();
                if let (Some(e), Some(v)) = (e.as_object_mut(), v.as_object()) {
                    e.extend(v.clone());
                }
                serde_json::from_value(e).expect("a stored event")
            })
            .collect()
    }

    /// Query trees over the fields this module translates and some it does not, joined by
    /// AND, OR and negation at any depth.
    fn query_like() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec![
            "level:error",
            "level:>=warn",
            "level:<info",
            "level:e*",
            "level:[debug,fatal]",
            "level:5",
            "http.status:>=500",
            "http.status:<500.5",
            "http.status:>499.9",
            "http.status:502",
            "http.status:[0,200]",
            "http.status:50*",
            "has:http.status",
            "id:01JDQ4F4N3K4S0Y7P4X8C2V9HA",
            "id:01jdq4f4n3k4s0y7p4x8c2v9hz",
            "id:01JD*",
            "payment",
            "type:httperror",
            "has:extra.n",
        ])
        .prop_map(str::to_string);
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| format!("({})", parts.join(" "))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(|parts| format!("({})", parts.join(" OR "))),
                inner.prop_map(|part| format!("-({part})")),
            ]
        })
    }

    fn level_filter() -> impl Strategy<Value = Vec<Level>> {
        prop::sample::subsequence(Level::ALL.to_vec(), 0..=Level::ALL.len())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn the_pattern_never_excludes_an_event_the_evaluator_accepts(text in query_like(), levels in level_filter()) {
            let query = Query::parse(&text).map_err(|e| TestCaseError::fail(format!("`{text}`: {e}")))?;
            let cond = condition(&query, &levels);
            for event in sample_events() {
                let accepted =
                    (levels.is_empty() || levels.contains(&event.level)) && query.matches(&event, GROUP);
                let line: Json = serde_json::from_str(&event.to_json()).expect("our line is JSON");
                prop_assert!(!accepted || holds(&cond, &line), "`{}` {:?} drops {}", text, levels, event.to_json());
            }
        }
    }
}
