//! What a query means: whether one stored event matches a tree. The stores' compiled forms (SQL,
//! CloudWatch filter patterns) must select exactly the events this accepts.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::Value as Json;

use super::ast::{Bound, Expr, Field, Node, Op};
use super::{fold_case, wildcard};
use crate::event::StoredEvent;

/// One event, read from the log group `group`.
pub struct Subject<'a> {
    event: &'a StoredEvent,
    group: &'a str,
    /// The lower-cased message, made once for all the words of a query.
    message: OnceCell<String>,
}

impl<'a> Subject<'a> {
    pub fn new(event: &'a StoredEvent, group: &'a str) -> Self {
        Subject { event, group, message: OnceCell::new() }
    }

    pub(crate) fn matches(&self, expr: &Expr) -> bool {
        match &expr.node {
            Node::And(children) => children.iter().all(|child| self.matches(child)),
            Node::Or(children) => children.iter().any(|child| self.matches(child)),
            Node::Not(child) => !self.matches(child),
            Node::Text(pattern) => {
                let message = self.message.get_or_init(|| fold_case(&self.event.message));
                text_in(pattern, message)
            }
            Node::Has(field) | Node::Term { field, .. } => test(&expr.node, self.field(field)),
        }
    }

    fn field(&self, field: &Field) -> Option<Found<'a>> {
        let event = self.event;
        let text = |value: &'a Option<String>| value.as_deref().map(Found::text);
        match field {
            Field::Level => Some(Found::text(event.level.as_str())),
            Field::Type => text(&event.kind),
            Field::Code => text(&event.code),
            Field::Message => Some(Found::text(&event.message)),
            Field::Stack => text(&event.stack),
            Field::Url => text(&event.url),
            Field::Location => text(&event.location),
            Field::Release => text(&event.release),
            Field::Fingerprint => text(&event.fingerprint),
            Field::Env => Some(Found::text(&event.env)),
            Field::Group => Some(Found::text(self.group)),
            Field::Id => Some(Found::owned(event.id.to_string(), None)),
            Field::HttpMethod => event.http.as_ref().and_then(|http| http.method.as_deref()).map(Found::text),
            Field::HttpStatus => event
                .http
                .as_ref()
                .and_then(|http| http.status)
                .map(|status| Found::owned(status.to_string(), Some(f64::from(status)))),
            Field::User => user_id(event.user.as_ref()?).map(Found::json),
            Field::UserKey(path) => match event.user.as_ref()? {
                Json::Object(user) => walk(user.get(path.first()?)?, path.get(1..)?).map(Found::json),
                _ => None,
            },
            Field::Extra(path) => {
                let extra = event.extra.as_ref()?;
                walk(extra.get(path.first()?)?, path.get(1..)?).map(Found::json)
            }
        }
    }
}

// The tests of one value, for stores that keep fields apart from the event (the embedded store's
// columns): they find a field's value themselves and ask these, so that every store means what
// this evaluator means.

/// Whether a field test (`has:`, `field:…`) passes on a value read from the stored event's
/// JSON; `None` when the field is absent. Any other node: false.
pub fn test_json(node: &Node, value: Option<&Json>) -> bool {
    test(node, value.map(Found::json))
}

/// [`test_json`] on a text value (a text field, the level, the environment, the group).
pub fn test_text(node: &Node, value: Option<&str>) -> bool {
    test(node, value.map(Found::text))
}

/// Whether a word or phrase is in a message already folded with [`fold_case`].
pub fn text_in(pattern: &super::Pattern, folded_message: &str) -> bool {
    wildcard::contains(pattern.folded(), folded_message)
}

/// [`text_in`] for many folded messages kept end to end ([`wildcard::contains_each`]).
pub fn text_in_each(pattern: &super::Pattern, joined: &str, ends: &[usize]) -> Vec<bool> {
    wildcard::contains_each(pattern.folded(), joined, ends)
}

/// `user:`'s value: the `id` of an object user, else the user itself.
pub fn user_id(user: &Json) -> Option<&Json> {
    match user {
        Json::Object(fields) => fields.get("id"),
        other => Some(other),
    }
}

/// Follows object keys from `value`.
pub fn walk<'j>(value: &'j Json, keys: &[String]) -> Option<&'j Json> {
    keys.iter().try_fold(value, |value, key| value.as_object()?.get(key))
}

fn test(node: &Node, found: Option<Found<'_>>) -> bool {
    match node {
        Node::Has(_) => found.is_some_and(|found| !found.empty),
        // An absent field matches no test (and so its negation always matches).
        Node::Term { op, .. } => found.is_some_and(|found| found.passes(op)),
        Node::And(_) | Node::Or(_) | Node::Not(_) | Node::Text(_) => false,
    }
}

/// A field's value as the tests see it.
struct Found<'a> {
    /// Text equality and wildcards compare this (a number's or `true`'s JSON text).
    text: FoundText<'a>,
    /// Set for JSON numbers and `http.status`: equality with a number and comparisons use it.
    number: Option<f64>,
    /// `""`, `null`, `[]`, `{}`: present, but not for `has:`.
    empty: bool,
}

/// A value's text, written out only when a test compares text (`has:` and numeric tests never
/// do: a column of numbers is tested without printing each).
enum FoundText<'a> {
    Text(Cow<'a, str>),
    Json(&'a Json),
}

impl FoundText<'_> {
    fn get(&self) -> Cow<'_, str> {
        match self {
            FoundText::Text(text) => Cow::Borrowed(text),
            FoundText::Json(value) => Cow::Owned(value.to_string()),
        }
    }
}

impl<'a> Found<'a> {
    fn text(text: &'a str) -> Self {
        Found { text: FoundText::Text(Cow::Borrowed(text)), number: None, empty: text.is_empty() }
    }

    fn owned(text: String, number: Option<f64>) -> Self {
        Found { text: FoundText::Text(Cow::Owned(text)), number, empty: false }
    }

    fn json(value: &'a Json) -> Self {
        match value {
            Json::String(text) => Found::text(text),
            Json::Number(number) => Found { text: FoundText::Json(value), number: number.as_f64(), empty: false },
            Json::Null => Found { text: FoundText::Text(Cow::Borrowed("null")), number: None, empty: true },
            Json::Bool(_) | Json::Array(_) | Json::Object(_) => Found {
                text: FoundText::Json(value),
                number: None,
                empty: value.as_array().is_some_and(Vec::is_empty) || value.as_object().is_some_and(|o| o.is_empty()),
            },
        }
    }

    fn passes(&self, op: &Op) -> bool {
        match op {
            Op::AnyOf(values) => {
                let folded = OnceCell::new();
                values.iter().any(|value| match (value.number, self.number) {
                    // Numerically when both sides are numbers, else as case-insensitive text.
                    (Some(wanted), Some(number)) => wanted == number,
                    _ => wildcard::matches(value.pattern.folded(), folded.get_or_init(|| fold_case(&self.text.get()))),
                })
            }
            Op::Compare(comparison, Bound::Number(bound)) => {
                self.number.is_some_and(|number| comparison.holds(&number, bound))
            }
            Op::Compare(comparison, Bound::Level(bound)) => {
                // The parser gives a level bound only to `level:`, whose text is a stored level.
                self.text.get().parse().is_ok_and(|level| comparison.holds(&level, bound))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Query;
    use crate::event::StoredEvent;

    const GROUP: &str = "/logboard/demo/production";

    /// A stored event: the required fields, then `fields` on top.
    fn event(fields: serde_json::Value) -> StoredEvent {
        let mut stored = json!({
            "id": "01JDQ4F4N3K4S0Y7P4X8C2V9HZ",
            "project": "demo",
            "env": "production",
            "timestamp": "2026-11-24T15:00:00.000Z",
            "received_at": "2026-11-24T15:00:00.000Z",
            "level": "info",
            "message": "Payment failed: card declined",
        });
        if let (Some(stored), Some(fields)) = (stored.as_object_mut(), fields.as_object()) {
            stored.extend(fields.clone());
        }
        serde_json::from_value(stored).expect("a stored event")
    }

    fn matches(query: &str, event: &StoredEvent) -> bool {
        Query::parse(query).unwrap_or_else(|e| panic!("`{query}`: {e}")).matches(event, GROUP)
    }

    /// Each query matches `event` or not as given; the failure lists every wrong answer.
    fn check(event: &StoredEvent, cases: &[(&str, bool)]) {
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(query, expected)| matches(query, event) != *expected)
            .map(|(query, expected)| format!("`{query}` should {}match", if *expected { "" } else { "not " }))
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    /// The queries of `queries` that match `event`.
    fn matching<'q>(event: &StoredEvent, queries: &[&'q str]) -> Vec<&'q str> {
        queries.iter().copied().filter(|query| matches(query, event)).collect()
    }

    #[test]
    fn words_and_phrases_are_case_insensitive_substrings_of_the_message() {
        let event = event(json!({}));
        let queries = [
            "payment",
            "PAYMENT",
            "declined",
            "ment fai",
            "\"ment  fai\"",
            "\"CARD declined\"",
            "pay*declined",
            "\"card*declined\"",
            "*",
            "pay* card",
            "refund",
            "\"declined card\"",
            "declined*payment",
            "payment refund",
            "type",
            "\"card * declined\"",
        ];
        // `ment fai` is two words, each somewhere in the message; `card * declined` wants two spaces.
        assert_eq!(
            matching(&event, &queries),
            [
                "payment",
                "PAYMENT",
                "declined",
                "ment fai",
                "\"CARD declined\"",
                "pay*declined",
                "\"card*declined\"",
                "*",
                "pay* card"
            ]
        );
    }

    #[test]
    fn sigma_matches_in_every_form_wherever_the_query_cuts_the_word() {
        let event = event(json!({"message": "ΣΥΣΤΗΜΑ ΕΚΤΟΣ λειτουργίας", "type": "ΣΦΑΛΜΑΣ"}));
        let queries = ["ΣΥΣ", "συς", "εκτοσ", "ΕΚΤΟς", "\"ς λει\"", "type:σφαλμας", "type:*Σ", "type:σφαλμα", "ξ"];
        assert_eq!(
            matching(&event, &queries),
            ["ΣΥΣ", "συς", "εκτοσ", "ΕΚΤΟς", "\"ς λει\"", "type:σφαλμας", "type:*Σ"]
        );
    }

    #[test]
    fn field_terms_are_whole_value_equality_not_substrings() {
        let event = event(json!({"type": "TypeError", "url": "https://shop.test/api/pay?x=1", "stack": "at a\nat b"}));
        let queries = [
            "type:typeerror",
            "type:Type",
            "type:Type*",
            "message:payment",
            "message:\"payment failed: card declined\"",
            "message:*card*",
            "url:https://shop.test/api/pay?x=1",
            "url:*/api/*",
            "url:*/API/PAY*",
            "url:shop.test",
            "stack:\"at a\nat b\"",
            "stack:at*",
        ];
        assert_eq!(
            matching(&event, &queries),
            [
                "type:typeerror",
                "type:Type*",
                "message:\"payment failed: card declined\"",
                "message:*card*",
                "url:https://shop.test/api/pay?x=1",
                "url:*/api/*",
                "url:*/API/PAY*",
                "stack:\"at a\nat b\"",
                "stack:at*",
            ]
        );
    }

    #[test]
    fn every_built_in_field_reads_its_part_of_the_event() {
        let event = event(json!({
            "level": "error", "type": "HttpError", "code": "E_PAY", "stack": "Error\n  at pay (app.js:1:2)",
            "url": "/pay", "location": "app.js:1", "release": "1.2.3", "user": "alice",
            "http": {"method": "POST", "status": 502}, "fingerprint": "f00d", "env": "staging",
        }));
        let id = event.id.to_string().to_lowercase();
        let queries = [
            "level:error".to_string(),
            "type:httperror".into(),
            "code:e_pay".into(),
            "stack:\"*AT PAY*\"".into(),
            "url:/pay".into(),
            "location:APP.JS:1".into(),
            "release:1.2.*".into(),
            "user:ALICE".into(),
            "http.method:post".into(),
            "http.status:502".into(),
            "fingerprint:F00D".into(),
            format!("id:{id}"),
            "env:staging".into(),
            "group:/logboard/*/production".into(),
        ];
        for query in &queries {
            assert!(matches(query, &event), "{query}");
            assert!(!matches(&format!("-{query}"), &event), "-{query}");
        }
        for query in ["level:info", "env:production", "group:other", "id:01JDQ4F4N3K4S0Y7P4X8C2V9HA", "http.method:get"]
        {
            assert!(!matches(query, &event), "{query}");
        }
    }

    #[test]
    fn numbers_compare_numerically_with_numeric_values_and_as_text_with_text() {
        let event = event(json!({
            "code": "500",
            "http": {"status": 502},
            "extra": {"duration_ms": 2500, "ratio": 0.25, "as_text": "2500", "big": 12345678901234567890u64},
        }));
        check(
            &event,
            &[
                ("http.status:502", true),
                ("http.status:502.0", true),
                ("http.status:\"502\"", true),
                ("http.status:50*", true),
                ("http.status:[500,502,503]", true),
                ("http.status:>=500", true),
                ("http.status:>501.5", true),
                ("http.status:<503", true),
                ("http.status:<=502", true),
                ("http.status:>502", false),
                ("http.status:<502", false),
                ("http.status:5002", false),
                ("extra.duration_ms:>2000", true),
                ("extra.duration_ms:2500.00", true),
                ("extra.ratio:0.25", true),
                ("extra.ratio:<1", true),
                ("extra.as_text:2500", true),
                ("extra.as_text:2500.0", false),
                ("extra.as_text:>2000", false),
                ("extra.big:>1000000", true),
                ("code:500", true),
                ("code:>400", false),
            ],
        );
    }

    #[test]
    fn levels_are_ordered_from_debug_to_fatal() {
        let at = |level: &str| event(json!({"level": level}));
        let levels = ["debug", "info", "warn", "error", "fatal"];
        let passing =
            |query: &str| -> Vec<&str> { levels.iter().copied().filter(|level| matches(query, &at(level))).collect() };
        assert_eq!(passing("level:>=warn"), ["warn", "error", "fatal"]);
        assert_eq!(passing("level:>warn"), ["error", "fatal"]);
        assert_eq!(passing("level:<info"), ["debug"]);
        assert_eq!(passing("level:<=info"), ["debug", "info"]);
        assert_eq!(passing("level:>=WARNING"), ["warn", "error", "fatal"]);
        assert_eq!(passing("level:>fatal"), Vec::<&str>::new());
        assert_eq!(passing("level:warning"), ["warn"]);
        assert_eq!(passing("level:[debug,FATAL]"), ["debug", "fatal"]);
        assert_eq!(passing("level:*r*"), ["warn", "error"]);
        assert_eq!(passing("level:e*"), ["error"]);
        assert_eq!(passing("-level:>=error"), ["debug", "info", "warn"]);
    }

    #[test]
    fn an_absent_field_fails_every_test_and_passes_every_negated_one() {
        let bare = event(json!({}));
        for query in [
            "url:x",
            "url:*",
            "type:[a,b]",
            "http.status:>0",
            "http.status:<1000",
            "http.method:*",
            "user:x",
            "user.email:*",
            "extra.a:1",
            "extra.a.b.c:*",
            "code:*",
            "has:url",
            "has:extra.a",
        ] {
            assert!(!matches(query, &bare), "{query}");
            assert!(matches(&format!("-{query}"), &bare), "-{query}");
            assert!(matches(&format!("NOT {query}"), &bare), "NOT {query}");
        }
        let with = event(json!({"url": "x"}));
        assert!(matches("url:x", &with));
        assert!(!matches("-url:x", &with));
        assert!(matches("-url:y", &with));
    }

    #[test]
    fn extra_is_read_by_exact_keys_at_any_depth() {
        let event = event(json!({"extra": {"a": {"b": {"c": "Deep"}}, "Order": {"ID": 7}, "region": "eu-west-1"}}));
        let queries = [
            "extra.a.b.c:deep",
            "extra.a.b.c:D*",
            "extra.a.b.c.d:deep",
            "extra.a.b:deep",
            "extra.A.b.c:deep",
            "EXTRA.a.b.c:deep",
            "extra.Order.ID:7",
            "extra.order.id:7",
            "extra.region:[us-*,eu-*]",
            "has:extra.a.b.c",
            "has:extra.a.b.x",
        ];
        assert_eq!(
            matching(&event, &queries),
            [
                "extra.a.b.c:deep",
                "extra.a.b.c:D*",
                "EXTRA.a.b.c:deep",
                "extra.Order.ID:7",
                "extra.region:[us-*,eu-*]",
                "has:extra.a.b.c"
            ]
        );
    }

    #[test]
    fn extra_values_that_are_not_text_or_numbers_compare_as_json_text() {
        let event = event(
            json!({"extra": {"ok": true, "none": null, "tags": ["a", "b"], "empty": [], "obj": {}, "blank": ""}}),
        );
        let queries = [
            "extra.ok:true",
            "extra.ok:TRUE",
            "extra.ok:false",
            "extra.none:null",
            "extra.tags:*\"b\"*",
            "extra.tags:a",
            "has:extra.ok",
            "has:extra.none",
            "has:extra.tags",
            "has:extra.empty",
            "has:extra.obj",
            "has:extra.blank",
            "extra.blank:*",
        ];
        assert_eq!(
            matching(&event, &queries),
            [
                "extra.ok:true",
                "extra.ok:TRUE",
                "extra.none:null",
                "extra.tags:*\"b\"*",
                "has:extra.ok",
                "has:extra.tags",
                "extra.blank:*"
            ]
        );
    }

    #[test]
    fn user_is_the_id_of_an_object_or_the_string_itself() {
        let object = event(json!({"user": {"id": "u-42", "email": "a@shop.test", "plan": {"tier": "gold"}}}));
        let numeric = event(json!({"user": {"id": 42}}));
        let no_id = event(json!({"user": {"email": "a@shop.test"}}));
        let string = event(json!({"user": "alice"}));
        let queries = [
            "user:U-42",
            "user:42",
            "user:>40",
            "user:alice",
            "user.email:A@SHOP.TEST",
            "user.Email:a@shop.test",
            "user.plan.tier:gold",
            "user.id:42",
            "has:user",
            "has:user.email",
        ];
        assert_eq!(
            matching(&object, &queries),
            ["user:U-42", "user.email:A@SHOP.TEST", "user.plan.tier:gold", "has:user", "has:user.email"]
        );
        assert_eq!(matching(&numeric, &queries), ["user:42", "user:>40", "user.id:42", "has:user"]);
        assert_eq!(matching(&no_id, &queries), ["user.email:A@SHOP.TEST", "has:user.email"]);
        assert_eq!(matching(&string, &queries), ["user:alice", "has:user"]);
        assert!(matches("-user.email:x", &string));
    }

    #[test]
    fn has_wants_a_present_value_that_is_not_empty() {
        let full = event(json!({"stack": "at x", "http": {"status": 200}}));
        let empty = event(json!({"stack": "", "http": {"method": "GET"}}));
        let queries =
            ["has:stack", "has:http.status", "has:http.method", "has:message", "has:level", "has:group", "has:url"];
        assert_eq!(
            matching(&full, &queries),
            ["has:stack", "has:http.status", "has:message", "has:level", "has:group"]
        );
        assert_eq!(matching(&empty, &queries), ["has:http.method", "has:message", "has:level", "has:group"]);
    }

    #[test]
    fn operators_combine_as_their_precedence_says() {
        let only_a = event(json!({"message": "a"}));
        let only_b = event(json!({"message": "b"}));
        let b_and_c = event(json!({"message": "b c"}));
        assert!(matches("a OR b c", &only_a));
        assert!(!matches("a OR b c", &only_b));
        assert!(matches("a OR b c", &b_and_c));
        assert!(!matches("(a OR b) c", &only_a));
        assert!(matches("NOT a b", &only_b));
        assert!(!matches("NOT a b", &only_a));
        assert!(!matches("-(a OR b)", &only_a));
        assert!(!matches("-(a OR b)", &b_and_c));
        assert!(matches("-(a OR b)", &event(json!({"message": "c"}))));
        assert!(matches("a AND -b", &only_a));
        assert!(matches("b and c", &event(json!({"message": "b and c"}))));
        assert!(!matches("b and c", &b_and_c), "lower-case `and` is a word");
    }

    #[test]
    fn a_realistic_query_selects_the_right_events() {
        let query = "level:>=error -env:staging (payment OR refund) http.status:[500,502,503]";
        let hit = event(json!({"level": "error", "message": "Refund failed", "http": {"status": 503}}));
        let staging =
            event(json!({"level": "error", "env": "staging", "message": "Refund failed", "http": {"status": 503}}));
        let warn = event(json!({"level": "warn", "message": "Refund failed", "http": {"status": 503}}));
        let ok = event(json!({"level": "fatal", "message": "Refund failed", "http": {"status": 200}}));
        assert!(matches(query, &hit));
        assert!(!matches(query, &staging));
        assert!(!matches(query, &warn));
        assert!(!matches(query, &ok));
    }

    #[test]
    fn a_pathological_wildcard_over_a_long_message_gets_the_right_answer() {
        let long = event(json!({"message": "a".repeat(100_000)}));
        assert!(!matches("*a*a*a*a*a*a*a*a*a*a*a*a*b", &long));
        assert!(!matches("message:*a*a*a*a*a*a*a*a*a*a*a*a*b", &long));
        assert!(matches("message:*a*a*a*a*a*a*a*a*a*a*a*a", &long));
        let many = vec!["*a*a*a*a*a*a*a*a*b"; 50].join(" OR ");
        assert!(!matches(&many, &long));
    }

    #[test]
    fn a_blank_query_matches_every_event() {
        assert!(Query::parse("  ").expect("blank").matches(&event(json!({})), GROUP));
    }

    #[test]
    fn a_normalised_event_is_searched_as_it_was_stored() {
        use crate::config::Config;
        use crate::ingest::{Context, normalise};
        use crate::project::Projects;
        let config = Config::from_sources(include_str!("../../config.toml"), &[]).expect("config");
        let projects = Projects::from_config(&config).expect("projects");
        let project = projects.get("demo").expect("demo");
        let ctx = Context {
            project,
            default_env: Some("production"),
            received_at: time::OffsetDateTime::now_utc(),
            max_event_bytes: 65_536,
        };
        let raw = json!({
            "message": "Checkout failed", "level": "ERROR", "code": 500, "region": "eu-west-1",
            "extra": {"cart": {"items": {"count": 3}}}, "http": {"method": "post", "status": 500},
        });
        let stored = normalise(raw, &ctx).expect("valid");
        // `code` is stored as text, unknown top-level keys land in `extra`, the level is canonical.
        let queries = [
            "level:error",
            "code:500",
            "code:>400",
            "extra.region:EU-*",
            "extra.cart.items.count:>=3",
            "http.method:POST",
            "has:fingerprint",
            "checkout",
            "region:eu-west-1",
        ];
        let usable: Vec<&str> = queries.iter().copied().filter(|q| Query::parse(q).is_ok()).collect();
        assert_eq!(
            matching(&stored, &usable),
            [
                "level:error",
                "code:500",
                "extra.region:EU-*",
                "extra.cart.items.count:>=3",
                "http.method:POST",
                "has:fingerprint",
                "checkout"
            ]
        );
        assert_eq!(usable.len(), queries.len() - 1, "`region:` is not a field");
    }
}
