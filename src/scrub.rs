//! PII scrubbing, applied to every event before it is stored or leaves for CloudWatch
//! (CloudWatch's own masking can be undone by anyone with `logs:Unmask`; scrubbing cannot).
//!
//! Values under sensitive keys become `[Filtered]`; in free text, card numbers (Luhn-checked),
//! bearer tokens, PEM private keys, `user:pass@` in URLs, `name=value` pairs whose name is
//! sensitive (`?token=…`, `&password=…`) and e-mail addresses are replaced. Object keys are text
//! too: a secret used as a key is replaced like one in a value.

use std::sync::LazyLock;

use regex::{Captures, Regex, RegexBuilder};
use serde_json::{Map, Value};

pub const FILTERED: &str = "[Filtered]";

/// Keys whose values are never stored (security.md).
const SENSITIVE_KEYS: &str = r"password|passwd|secret|token|api[_-]?key|auth|credential|session|cookie|csrf";

#[allow(clippy::expect_used)] // the patterns are constants, checked by the tests
fn pattern(text: &str) -> Regex {
    RegexBuilder::new(text).case_insensitive(true).build().expect("valid built-in pattern")
}

static PEM_PRIVATE_KEY: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)"));
static BEARER: LazyLock<Regex> = LazyLock::new(|| pattern(r"\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*"));
static URL_CREDENTIALS: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"\b([a-z][a-z0-9+.\-]*://)[^\s/?#@:]+:[^\s/?#@]*@"));
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    pattern(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
});
/// `name=value` in a query string, a cookie or free text; the name decides (sensitive keys).
static NAME_VALUE: LazyLock<Regex> =
    LazyLock::new(|| pattern(r#"(?:^|[?&;,\s{(])\s*([A-Za-z0-9_.\-\[\]%]+)=([^&;#\s"'<>]+)"#));
/// 13–19 digits, optionally grouped by single spaces or dashes.
static CARD_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| pattern(r"\b\d(?:[ \-]?\d){12,18}\b"));

/// A card number has at least this many digits.
const MIN_CARD_DIGITS: usize = 13;

/// What a text holds that some rule needs; without it, the rule cannot match.
struct Cues {
    pem: bool,
    bearer: bool,
    scheme: bool,
    at: bool,
    equals: bool,
    digits: usize,
}

impl Cues {
    fn of(text: &str) -> Cues {
        let bytes = text.as_bytes();
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle));
        Cues {
            pem: has(b"-----BEGIN"),
            bearer: has(b"bearer"),
            scheme: has(b"://"),
            at: bytes.contains(&b'@'),
            equals: bytes.contains(&b'='),
            digits: bytes.iter().filter(|b| b.is_ascii_digit()).count(),
        }
    }
}

/// The scrubbing rules of one project.
#[derive(Debug, Clone)]
pub struct Scrubber {
    enabled: bool,
    sensitive_keys: Regex,
}

impl Scrubber {
    /// `extra_key_patterns` are regular expressions added to the built-in sensitive keys.
    pub fn new(enabled: bool, extra_key_patterns: &[String]) -> Result<Scrubber, regex::Error> {
        let mut keys = SENSITIVE_KEYS.to_string();
        for extra in extra_key_patterns {
            keys.push('|');
            keys.push_str(&format!("(?:{extra})"));
        }
        Ok(Scrubber { enabled, sensitive_keys: RegexBuilder::new(&keys).case_insensitive(true).build()? })
    }

    pub fn is_sensitive_key(&self, key: &str) -> bool {
        self.enabled && self.sensitive_keys.is_match(key)
    }

    /// Scrubs free text.
    pub fn text(&self, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        // One pass over the bytes tells which rules can match at all: most texts (and nearly
        // every key) need none, and each skipped rule is a regex scan saved on the ingest path.
        let cues = Cues::of(text);
        let mut text = std::borrow::Cow::Borrowed(text);
        if cues.pem {
            text = PEM_PRIVATE_KEY.replace_all(&text, FILTERED).into_owned().into();
        }
        if cues.bearer {
            let replaced = BEARER.replace_all(&text, |c: &Captures<'_>| format!("{} {FILTERED}", &c[1]));
            text = replaced.into_owned().into();
        }
        if cues.at && cues.scheme {
            let replaced = URL_CREDENTIALS.replace_all(&text, |c: &Captures<'_>| format!("{}{FILTERED}@", &c[1]));
            text = replaced.into_owned().into();
        }
        if cues.equals {
            let replaced = NAME_VALUE.replace_all(&text, |c: &Captures<'_>| {
                let (whole, name, value) = (&c[0], &c[1], &c[2]);
                if value != FILTERED && self.sensitive_keys.is_match(name) {
                    format!("{}{FILTERED}", &whole[..whole.len() - value.len()])
                } else {
                    whole.to_string()
                }
            });
            text = replaced.into_owned().into();
        }
        if cues.at {
            text = EMAIL.replace_all(&text, FILTERED).into_owned().into();
        }
        if cues.digits >= MIN_CARD_DIGITS {
            let replaced = CARD_CANDIDATE.replace_all(&text, |c: &Captures<'_>| {
                if luhn_valid(&c[0]) { FILTERED.to_string() } else { c[0].to_string() }
            });
            text = replaced.into_owned().into();
        }
        text.into_owned()
    }

    /// Scrubs a JSON value in place: sensitive keys at any depth, and every string and key.
    pub fn value(&self, value: &mut Value) {
        if !self.enabled {
            return;
        }
        match value {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => self.object(map),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// Scrubs an object in place, as [`Scrubber::value`] does.
    pub fn object(&self, map: &mut Map<String, Value>) {
        if !self.enabled {
            return;
        }
        for (key, mut v) in std::mem::take(map) {
            if self.is_sensitive_key(&key) {
                v = Value::String(FILTERED.into());
            } else {
                self.value(&mut v);
            }
            insert_unique(map, self.text(&key), v);
        }
    }
}

/// Inserts under `key`, or `key#2`, `key#3`, … when scrubbing made two keys equal: no value is lost.
fn insert_unique(map: &mut Map<String, Value>, key: String, value: Value) {
    if !map.contains_key(&key) {
        map.insert(key, value);
        return;
    }
    let free = (2..).map(|n| format!("{key}#{n}")).find(|k| !map.contains_key(k));
    if let Some(free) = free {
        map.insert(free, value);
    }
}

/// The Luhn checksum that every payment card number satisfies.
fn luhn_valid(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scrubber() -> Scrubber {
        Scrubber::new(true, &[]).expect("scrubber")
    }

    #[test]
    fn card_numbers_are_filtered_only_when_the_luhn_check_passes() {
        let s = scrubber();
        assert_eq!(s.text("paid with 4111 1111 1111 1111 today"), "paid with [Filtered] today");
        assert_eq!(s.text("card 5500-0000-0000-0004"), "card [Filtered]");
        assert_eq!(s.text("amex 378282246310005"), "amex [Filtered]");
        assert_eq!(s.text("order 4111111111111112 shipped"), "order 4111111111111112 shipped", "not Luhn-valid");
        assert_eq!(s.text("epoch 1795000000123"), "epoch 1795000000123");
    }

    #[test]
    fn tokens_keys_credentials_and_emails_in_text_are_filtered() {
        let s = scrubber();
        assert_eq!(
            s.text("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.sig_value-1"),
            "Authorization: Bearer [Filtered]"
        );
        assert_eq!(
            s.text("connecting to postgres://app:hunter2@db.internal:5432/shop"),
            "connecting to postgres://[Filtered]@db.internal:5432/shop"
        );
        assert_eq!(s.text("mail jane.doe+shop@example.co.kr failed"), "mail [Filtered] failed");
        let pem = "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc==\n-----END RSA PRIVATE KEY----- end";
        assert_eq!(s.text(pem), "key: [Filtered] end");
        assert_eq!(s.text("https://shop.example/cart?id=7"), "https://shop.example/cart?id=7", "plain URLs stay");
    }

    #[test]
    fn sensitive_keys_are_filtered_at_any_depth() {
        let s = Scrubber::new(true, &["^ssn$".to_string()]).expect("scrubber");
        let mut value = json!({
            "cartId": 7,
            "password": "hunter2",
            "nested": {"X-Api-Key": "k-123", "sessionId": "abc", "list": [{"csrf_token": "t"}, "call me at a@b.io"]},
            "ssn": "123-45-6789",
            "author": "kept? no: matches auth"
        });
        s.value(&mut value);
        assert_eq!(
            value,
            json!({
                "cartId": 7,
                "password": "[Filtered]",
                "nested": {"X-Api-Key": "[Filtered]", "sessionId": "[Filtered]", "list": [{"csrf_token": "[Filtered]"}, "call me at [Filtered]"]},
                "ssn": "[Filtered]",
                "author": "[Filtered]"
            })
        );
    }

    #[test]
    fn sensitive_names_in_query_strings_and_free_text_lose_their_values() {
        let s = scrubber();
        assert_eq!(
            s.text("GET https://api.example/v1/cart?id=7&token=abc123&access_token=x.y.z#top"),
            "GET https://api.example/v1/cart?id=7&token=[Filtered]&access_token=[Filtered]#top"
        );
        assert_eq!(
            s.text("https://a.example/login?user=kim&password=hunter2&next=/"),
            "https://a.example/login?user=kim&password=[Filtered]&next=/"
        );
        assert_eq!(s.text("retrying with api_key=K-99 and page=2"), "retrying with api_key=[Filtered] and page=2");
        assert_eq!(s.text("Cookie: theme=dark; sessionid=s3cr3t"), "Cookie: theme=dark; sessionid=[Filtered]");
        assert_eq!(s.text("a == b, x=1"), "a == b, x=1", "comparisons and plain pairs stay");
    }

    #[test]
    fn secrets_used_as_object_keys_are_filtered_and_no_value_is_lost() {
        let s = scrubber();
        let mut value = json!({
            "kim@example.com": {"visits": 3},
            "4111 1111 1111 1111": "declined",
            "lee@example.com": 5,
            "plain": "kept"
        });
        s.value(&mut value);
        // Keys are visited in order: the card number, then the two addresses.
        assert_eq!(
            value,
            json!({
                "[Filtered]": "declined",
                "[Filtered]#2": {"visits": 3},
                "[Filtered]#3": 5,
                "plain": "kept"
            })
        );
    }

    #[test]
    fn a_disabled_scrubber_changes_nothing() {
        let s = Scrubber::new(false, &[]).expect("scrubber");
        let mut value = json!({"password": "hunter2", "note": "4111 1111 1111 1111"});
        let before = value.clone();
        s.value(&mut value);
        assert_eq!(value, before);
        assert_eq!(s.text("a@b.io"), "a@b.io");
    }
}
