//! The ingest policy: one [`Draft`], whatever format it came in, becomes a [`StoredEvent`] or is
//! refused with a [`Rejection`]. Every door's events pass here: the environment is resolved and
//! checked, the time bounded to what CloudWatch takes, every text cleaned and scrubbed, an error
//! fingerprinted, the event fitted to the size limit and given its id.

use time::{Duration, OffsetDateTime};

use crate::event::{
    Draft, Level, Rejection, RejectionKind, StoredEvent, clean, event_id, fingerprint, fit_to_size, timestamp_format,
    truncate_to_ms,
};
use crate::project::Project;

/// CloudWatch refuses events older than this.
const MAX_AGE: Duration = Duration::days(14);
/// CloudWatch refuses events further in the future than this.
const MAX_AHEAD: Duration = Duration::hours(2);
/// Kept off both ends of the window, so an event accepted now is still in it when shipped.
const SKEW_MARGIN: Duration = Duration::minutes(10);

/// What the policy needs to know about the request an event came in.
pub struct Context<'a> {
    pub project: &'a Project,
    /// The batch's `env`, used when an event names none.
    pub default_env: Option<&'a str>,
    pub received_at: OffsetDateTime,
    pub max_event_bytes: usize,
}

/// Turns one draft into a stored event, or the reason it is refused.
pub fn settle(mut draft: Draft, ctx: &Context<'_>) -> Result<StoredEvent, Rejection> {
    // One cleaning step for every text the event carries, whatever field it ends up in.
    clean(&mut draft, &ctx.project.scrubber);
    let Draft {
        env,
        timestamp,
        level,
        message,
        kind,
        code,
        http,
        url,
        location,
        user,
        stack,
        frames,
        release,
        extra,
        fingerprint: client_fingerprint,
    } = draft;
    if message.trim().is_empty() {
        return Err(Rejection::new(RejectionKind::Message, "message is empty"));
    }
    let env = match env.or_else(|| ctx.default_env.map(str::to_string)) {
        Some(env) => env,
        None => {
            return Err(Rejection::new(
                RejectionKind::Env,
                format!("env is missing; use one of: {}", ctx.project.envs.join(", ")),
            ));
        }
    };
    if !ctx.project.has_env(&env) {
        return Err(Rejection::new(
            RejectionKind::Env,
            format!("unknown env `{env}`; use one of: {}", ctx.project.envs.join(", ")),
        ));
    }
    let http = http.map(|mut http| {
        http.method = http.method.map(|method| method.to_ascii_uppercase());
        http
    });
    let timestamp = timestamp.unwrap_or(ctx.received_at);
    check_time_window(timestamp, ctx.received_at).map_err(|why| Rejection::new(RejectionKind::Timestamp, why))?;
    let timestamp = truncate_to_ms(timestamp);
    let fingerprint = (level >= Level::Error).then(|| {
        fingerprint(
            kind.as_deref(),
            &message,
            (location.as_deref(), stack.as_deref(), &frames),
            client_fingerprint.as_ref(),
        )
    });
    let event = StoredEvent {
        id: event_id(timestamp),
        project: ctx.project.name.clone(),
        env,
        timestamp,
        received_at: truncate_to_ms(ctx.received_at),
        level,
        message,
        kind,
        code,
        http,
        url,
        location,
        user,
        stack,
        release,
        extra: (!extra.is_empty()).then_some(extra),
        fingerprint,
        truncated: None,
    };
    fit_to_size(event, ctx.max_event_bytes)
}

fn check_time_window(timestamp: OffsetDateTime, now: OffsetDateTime) -> Result<(), String> {
    if timestamp < now - MAX_AGE + SKEW_MARGIN {
        return Err(format!(
            "timestamp {} is older than 14 days (epoch milliseconds are expected for numbers)",
            timestamp_format::format(timestamp)
        ));
    }
    if timestamp > now + MAX_AHEAD - SKEW_MARGIN {
        return Err(format!("timestamp {} is more than 2 hours in the future", timestamp_format::format(timestamp)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Http, is_unsafe_char, unix_ms};
    use crate::ingest::normalise;
    use serde_json::{Value, json};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 15:00:00 UTC);

    fn project() -> Project {
        Project::for_tests(&["production", "staging"])
    }

    fn run(raw: Value) -> Result<StoredEvent, String> {
        run_typed(raw).map_err(|rejection| rejection.to_string())
    }

    fn run_typed(raw: Value) -> Result<StoredEvent, Rejection> {
        let project = project();
        let ctx =
            Context { project: &project, default_env: Some("staging"), received_at: NOW, max_event_bytes: 65_536 };
        normalise(raw, &ctx)
    }

    #[test]
    fn a_minimal_event_gets_defaults_and_server_fields() {
        let e = run(json!({"message": "hello"})).expect("valid");
        assert_eq!(e.message, "hello");
        assert_eq!(e.level, Level::Info);
        assert_eq!(e.env, "staging");
        assert_eq!(e.project, "demo");
        assert_eq!(e.timestamp, NOW);
        assert_eq!(e.received_at, NOW);
        assert_eq!(e.fingerprint, None);
        assert_eq!(e.id.timestamp_ms() as i64, unix_ms(NOW), "the id carries the occurrence time");
    }

    #[test]
    fn levels_are_case_insensitive_with_aliases() {
        for (given, want) in [
            ("ERROR", Level::Error),
            ("Warning", Level::Warn),
            ("critical", Level::Fatal),
            ("debug", Level::Debug),
            ("warn", Level::Warn),
        ] {
            assert_eq!(run(json!({"message": "m", "level": given})).expect(given).level, want, "{given}");
        }
        let reason = run(json!({"message": "m", "level": "loud"})).unwrap_err();
        assert!(reason.contains("unknown level `loud`"), "{reason}");
    }

    #[test]
    fn timestamps_are_rfc3339_or_epoch_milliseconds() {
        let e = run(json!({"message": "m", "timestamp": "2026-11-24T23:30:00.250+09:00"})).expect("rfc3339");
        assert_eq!(e.timestamp, datetime!(2026-11-24 14:30:00.250 UTC));
        let e = run(json!({"message": "m", "timestamp": unix_ms(NOW) - 1000})).expect("ms");
        assert_eq!(e.timestamp, NOW - Duration::seconds(1));
        assert!(run(json!({"message": "m", "timestamp": "yesterday"})).unwrap_err().contains("not RFC 3339"));
        assert!(run(json!({"message": "m", "timestamp": 1.5})).unwrap_err().contains("not an integer"));
    }

    #[test]
    fn timestamps_whose_utc_form_overflows_are_rejected_not_panicked_on() {
        for text in ["9999-12-31T23:59:59-23:59", "9999-12-31T20:00:00-05:00", "0000-01-01T00:00:00+01:00"] {
            let reason = run(json!({"message": "m", "timestamp": text})).unwrap_err();
            assert_eq!(reason, format!("timestamp `{text}` is out of range"));
        }
        for ms in [i64::MAX, i64::MIN, -1] {
            assert!(run(json!({"message": "m", "timestamp": ms})).is_err(), "{ms}");
        }
    }

    #[test]
    fn timestamps_outside_the_cloudwatch_window_are_rejected() {
        let ms = |d: Duration| unix_ms(NOW + d);
        assert!(
            run(json!({"message": "m", "timestamp": ms(-Duration::days(15))}))
                .unwrap_err()
                .contains("older than 14 days")
        );
        assert!(run(json!({"message": "m", "timestamp": ms(Duration::hours(3))})).unwrap_err().contains("future"));
        assert!(run(json!({"message": "m", "timestamp": ms(-Duration::days(13))})).is_ok());
        assert!(run(json!({"message": "m", "timestamp": ms(Duration::hours(1))})).is_ok());
        // Epoch seconds instead of milliseconds land in 1970 and say why.
        assert!(run(json!({"message": "m", "timestamp": 1_795_000_000})).unwrap_err().contains("epoch milliseconds"));
    }

    #[test]
    fn each_rejection_names_its_kind_for_the_metric() {
        let kind = |raw: Value| run_typed(raw).map(|_| ()).unwrap_err().kind.label();
        assert_eq!(kind(json!({"level": "info"})), "message");
        assert_eq!(kind(json!({"message": "m", "level": "loud"})), "level");
        assert_eq!(kind(json!({"message": "m", "env": "qa"})), "env");
        assert_eq!(kind(json!({"message": "m", "timestamp": "yesterday"})), "timestamp");
        assert_eq!(kind(json!({"message": "m", "http": {"status": 999}})), "http");
        assert_eq!(kind(json!({"message": "m", "user": 5})), "user");
        assert_eq!(kind(json!({"message": "m", "code": []})), "code");
        assert_eq!(kind(json!({"message": "m", "url": 5})), "invalid");
        assert_eq!(kind(json!(5)), "not_an_object");
    }

    #[test]
    fn the_message_must_be_a_non_empty_string() {
        assert_eq!(run(json!({"level": "info"})).unwrap_err(), "message is missing");
        assert_eq!(run(json!({"message": "  "})).unwrap_err(), "message is empty");
        assert_eq!(run(json!({"message": 5})).unwrap_err(), "message must be a string, not a number");
        assert_eq!(run(json!("text")).unwrap_err(), "an event must be a JSON object, not a string");
    }

    #[test]
    fn the_event_env_wins_and_must_be_known() {
        assert_eq!(run(json!({"message": "m", "env": "production"})).expect("env").env, "production");
        let reason = run(json!({"message": "m", "env": "qa"})).unwrap_err();
        assert_eq!(reason, "unknown env `qa`; use one of: production, staging");
    }

    #[test]
    fn all_seed_fields_are_kept_and_unknown_fields_go_to_extra() {
        let e = run(json!({
            "message": "boom", "level": "error", "type": "vue", "code": 42,
            "http": {"method": "post", "status": 502}, "url": "https://a.example/x",
            "location": "App > Cart > PayButton", "user": {"id": "42"}, "stack": "Error: boom\n  at pay (cart.js:1:2)",
            "release": "1.4.2", "extra": {"cartId": 7}, "browser": "firefox"
        }))
        .expect("valid");
        assert_eq!(e.kind.as_deref(), Some("vue"));
        assert_eq!(e.code.as_deref(), Some("42"));
        assert_eq!(e.http, Some(Http { method: Some("POST".into()), status: Some(502) }));
        assert_eq!(e.user, Some(json!({"id": "42"})));
        assert_eq!(e.extra, Some(json!({"cartId": 7, "browser": "firefox"}).as_object().cloned().unwrap_or_default()));
        assert!(e.fingerprint.is_some(), "errors get a fingerprint");
        let back: StoredEvent = serde_json::from_str(&e.to_json()).expect("round trip");
        assert_eq!(back, e);
    }

    #[test]
    fn wrongly_typed_fields_are_rejected_with_their_name() {
        assert_eq!(run(json!({"message": "m", "url": 1})).unwrap_err(), "url must be a string, not a number");
        assert_eq!(
            run(json!({"message": "m", "http": {"status": 999}})).unwrap_err(),
            "http.status 999 is not an HTTP status code"
        );
        assert_eq!(run(json!({"message": "m", "extra": []})).unwrap_err(), "extra must be an object, not an array");
    }

    #[test]
    fn control_characters_are_stripped_and_pii_scrubbed_in_every_field() {
        let e = run(json!({
            "message": "login failed for kim@example.com\u{0007}\u{001b}[31m\tretry\nnext",
            "stack": "Error: token Bearer abcdefghijklmnop123\n  at x.js:1:1",
            "url": "https://bob:pw@shop.example/pay",
            "user": {"id": "42", "email": "kim@example.com", "password": "p"},
            "extra": {"card": "4111-1111-1111-1111", "api_key": "k", "ok": "fine\u{0000}"}
        }))
        .expect("valid");
        assert_eq!(e.message, "login failed for [Filtered][31m\tretry\nnext");
        assert_eq!(e.stack.as_deref(), Some("Error: token Bearer [Filtered]\n  at x.js:1:1"));
        assert_eq!(e.url.as_deref(), Some("https://[Filtered]@shop.example/pay"));
        assert_eq!(e.user, Some(json!({"id": "42", "email": "[Filtered]", "password": "[Filtered]"})));
        assert_eq!(e.extra, json!({"card": "[Filtered]", "api_key": "[Filtered]", "ok": "fine"}).as_object().cloned());
    }

    #[test]
    fn long_fields_are_cut_to_fit_and_marked() {
        let e =
            run(json!({"message": "m".repeat(70_000), "stack": "s".repeat(50_000), "extra": {"a": 1}})).expect("fits");
        assert!(e.to_json().len() <= 65_536, "{}", e.to_json().len());
        assert_eq!(e.truncated, Some(vec!["message".to_string()]), "the largest field is cut first");
        assert!(e.message.ends_with("… [truncated]") && e.message.starts_with("mmmm"));
        assert!(e.message.len() > 10_000, "cut by the excess only: {}", e.message.len());
        assert_eq!(e.stack.as_deref(), Some("s".repeat(50_000).as_str()), "the smaller field stays whole");
        assert_eq!(e.extra, json!({"a": 1}).as_object().cloned(), "what fits is kept");

        let escaped = run(json!({"message": "\"".repeat(40_000)})).expect("escape-heavy text fits too");
        assert!(escaped.to_json().len() <= 65_536);
        let multibyte = run(json!({"message": "결제".repeat(20_000)})).expect("cut on a char boundary");
        assert!(multibyte.message.ends_with("… [truncated]"));

        let big_extra = run(json!({"message": "ok", "extra": {"blob": "b".repeat(70_000)}})).expect("extra dropped");
        assert_eq!((big_extra.extra, big_extra.truncated), (None, Some(vec!["extra".to_string()])));
        let small = run(json!({"message": "ok"})).expect("small");
        assert_eq!(small.truncated, None);
    }

    #[test]
    fn one_huge_field_is_cut_and_the_small_ones_stay_whole() {
        let message = "payment failed ".repeat(150);
        let e = run(json!({
            "message": message, "url": format!("https://shop.example/?q={}", "u".repeat(100_000)),
            "user": {"id": "42"}, "extra": {"cartId": 7}, "type": "http"
        }))
        .expect("fits");
        assert!(e.to_json().len() <= 65_536, "{}", e.to_json().len());
        assert_eq!(e.truncated, Some(vec!["url".to_string()]));
        assert_eq!(e.message, message, "a 2 KB message is not cut for a 100 KB url");
        assert_eq!((e.user, e.extra), (Some(json!({"id": "42"})), json!({"cartId": 7}).as_object().cloned()));
        assert!(e.url.as_deref().is_some_and(|u| u.len() > 50_000 && u.ends_with("… [truncated]")));
    }

    #[test]
    fn oversized_short_fields_are_cut_instead_of_rejecting_the_event() {
        for field in ["type", "code", "release", "location"] {
            let e = run(json!({"message": "m", field: "x".repeat(80_000)})).expect(field);
            assert_eq!(e.truncated, Some(vec![field.to_string()]), "{field}");
            assert!(e.to_json().len() <= 65_536);
        }
        let e = run(json!({"message": "m", "http": {"method": "g".repeat(80_000), "status": 500}})).expect("method");
        assert_eq!(e.truncated, Some(vec!["http.method".to_string()]));
        let http = e.http.expect("http kept");
        assert_eq!(http.status, Some(500));
        assert!(http.method.is_some_and(|m| m.starts_with("GGG") && m.ends_with("… [truncated]")));
    }

    #[test]
    fn every_text_field_is_cleaned_the_same_way() {
        // Every text the event can carry, each with control and bidi characters and secrets.
        let dirty = "a\u{1b}[31m\u{7}b\u{202e}c\u{200b}d kim@example.com 4111 1111 1111 1111 Bearer abcdefghijkl123";
        let raw = json!({
            "message": dirty, "level": "error", "type": dirty, "code": dirty, "url": dirty, "location": dirty,
            "stack": dirty, "http": {"method": dirty, "status": 500}, "user": dirty,
            "extra": {"note": dirty, "list": [dirty, {"deep": dirty}], dirty: 1}, "unknown_field": dirty,
        });
        let e = run(raw.clone()).expect("valid");
        let stored = serde_json::to_value(&e).expect("json");
        let mut texts = Vec::new();
        collect_texts(&stored, "", &mut texts);
        let cleaned: Vec<_> = texts.iter().filter(|(_, text)| text.to_ascii_lowercase().contains("[31mbcd")).collect();
        // Every place that held the dirty text (keys included) must hold the cleaned text.
        let mut sent = Vec::new();
        collect_texts(&raw, "", &mut sent);
        let dirty_places = sent.iter().filter(|(_, t)| t == dirty).count();
        assert_eq!(cleaned.len(), dirty_places, "{cleaned:#?}");
        for (path, text) in &texts {
            assert!(!text.chars().any(is_unsafe_char), "{path}: {text:?}");
            for secret in ["kim@example.com", "4111 1111", "abcdefghijkl123"] {
                assert!(!text.contains(secret), "{path}: {text:?}");
            }
        }
        for (path, text) in cleaned {
            assert!(text.eq_ignore_ascii_case("a[31mbcd [Filtered] [Filtered] Bearer [Filtered]"), "{path}: {text:?}");
        }
    }

    #[test]
    fn a_release_is_an_identifier_cleaned_of_control_characters_but_not_scrubbed() {
        let e = run(json!({"message": "m", "release": "my-app@2024.05.beta\u{1b}\u{202e}"})).expect("valid");
        assert_eq!(e.release.as_deref(), Some("my-app@2024.05.beta"));
    }

    /// Every string of `value` and every key, with its path.
    fn collect_texts(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::String(s) => out.push((path.to_string(), s.clone())),
            Value::Array(items) => {
                items.iter().enumerate().for_each(|(i, v)| collect_texts(v, &format!("{path}[{i}]"), out))
            }
            Value::Object(map) => {
                for (key, v) in map {
                    out.push((format!("{path}.{{key}}"), key.clone()));
                    collect_texts(v, &format!("{path}.{key}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn deeply_nested_events_are_rejected() {
        let mut nested = json!("leaf");
        for _ in 0..16 {
            nested = json!({ "k": nested });
        }
        assert_eq!(
            run(json!({"message": "m", "extra": nested})).unwrap_err(),
            "the event is nested deeper than 16 levels"
        );
        let mut ok = json!("leaf");
        for _ in 0..14 {
            ok = json!({ "k": ok });
        }
        assert!(run(json!({"message": "m", "extra": ok})).is_ok());
    }

    #[test]
    fn repeats_of_an_error_share_a_fingerprint() {
        let a = run(json!({"message": "timeout after 30 ms", "level": "error", "location": "a.js:1:1"})).expect("a");
        let b = run(json!({"message": "timeout after 45 ms", "level": "error", "location": "a.js:1:1"})).expect("b");
        let c = run(json!({"message": "timeout after 45 ms", "level": "error", "location": "b.js:1:1"})).expect("c");
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
    }
}
