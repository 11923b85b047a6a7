//! PII scrubbing, applied to every event before it is stored or leaves for CloudWatch
//! (CloudWatch's own masking can be undone by anyone with `logs:Unmask`; scrubbing cannot).
//!
//! Values under sensitive keys become `[Filtered]`; in free text, card numbers (Luhn-checked),
//! bearer tokens, PEM private keys, `user:pass@` in URLs, `name=value` pairs whose name is
//! sensitive (`?token=…`, `&password=…`) and e-mail addresses are replaced. Object keys are text
//! too: a secret used as a key is replaced like one in a value.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

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
/// A card number has at least this many digits…
const MIN_CARD_DIGITS: usize = 13;
/// …and at most this many.
const MAX_CARD_DIGITS: usize = 19;

/// What a text holds that some rule needs; without it, the rule cannot match.
#[derive(Debug, PartialEq, Eq)]
struct Cues {
    pem: bool,
    bearer: bool,
    scheme: bool,
    at: bool,
    equals: bool,
    /// The most digits in one stretch of digits, spaces and dashes: a card number's digits are
    /// in one (joined by single spaces or dashes), so fewer than 13 there means no card, however
    /// many digits the text has (a trace id's hex, a message's several numbers).
    card_digits: usize,
}

/// Texts up to this long are read in one pass ([`Cues::of_short`]): most keys and many values.
const SHORT_TEXT: usize = 64;

impl Cues {
    fn of(text: &str) -> Cues {
        if text.len() <= SHORT_TEXT { Cues::of_short(text.as_bytes()) } else { Cues::of_long(text.as_bytes()) }
    }

    /// The cues in one pass over the bytes: for a short text (a key, an id, a file name), cheaper
    /// than [`Cues::of_long`]'s five vectorised searches, each of which costs something to start.
    fn of_short(bytes: &[u8]) -> Cues {
        let followed_by =
            |at: usize, rest: &[u8]| bytes.get(at..at + rest.len()).is_some_and(|w| w.eq_ignore_ascii_case(rest));
        let mut cues = Cues { pem: false, bearer: false, scheme: false, at: false, equals: false, card_digits: 0 };
        let mut digits = CardDigits::default();
        for (at, &byte) in bytes.iter().enumerate() {
            digits.push(byte);
            match byte {
                b'@' => cues.at = true,
                b'=' => cues.equals = true,
                b':' => cues.scheme |= bytes[at..].starts_with(b"://"),
                b'b' | b'B' => {
                    cues.pem |= at >= 5 && &bytes[at - 5..at] == b"-----" && followed_by(at + 1, b"egin");
                    cues.bearer |= followed_by(at + 1, b"earer");
                }
                _ => {}
            }
        }
        cues.card_digits = digits.most;
        cues
    }

    fn of_long(bytes: &[u8]) -> Cues {
        // Both words start with a `b` or `B`: found by memchr, then compared ignoring case.
        let followed_by =
            |at: usize, rest: &[u8]| bytes.get(at..at + rest.len()).is_some_and(|w| w.eq_ignore_ascii_case(rest));
        let (mut pem, mut bearer) = (false, false);
        for at in memchr::memchr2_iter(b'b', b'B', bytes) {
            pem |= at >= 5 && &bytes[at - 5..at] == b"-----" && followed_by(at + 1, b"egin");
            bearer |= followed_by(at + 1, b"earer");
            if pem && bearer {
                break;
            }
        }
        Cues {
            pem,
            bearer,
            scheme: memchr::memmem::find(bytes, b"://").is_some(),
            at: memchr::memchr(b'@', bytes).is_some(),
            equals: memchr::memchr(b'=', bytes).is_some(),
            card_digits: bytes.iter().fold(CardDigits::default(), CardDigits::then).most,
        }
    }

    /// Whether no rule can match.
    fn none(&self) -> bool {
        !(self.pem || self.bearer || self.at || self.equals || self.card_digits >= MIN_CARD_DIGITS)
    }
}

/// [`Cues::card_digits`], byte by byte.
#[derive(Default)]
struct CardDigits {
    /// The digits of the stretch being read.
    stretch: usize,
    /// The most digits of any stretch so far.
    most: usize,
}

impl CardDigits {
    fn push(&mut self, byte: u8) {
        match byte {
            b'0'..=b'9' => {
                self.stretch += 1;
                self.most = self.most.max(self.stretch);
            }
            b' ' | b'-' => {}
            _ => self.stretch = 0,
        }
    }

    fn then(mut self, &byte: &u8) -> CardDigits {
        self.push(byte);
        self
    }
}

/// The scrubbing rules of one project.
#[derive(Debug, Clone)]
pub struct Scrubber {
    enabled: bool,
    sensitive_keys: Regex,
    /// Which rules these are, for the answers a thread remembers ([`KEYS_SEEN`]); a clone has
    /// the same rules and the same id.
    rules: u64,
}

/// The ids of [`Scrubber::rules`].
static NEXT_RULES: AtomicU64 = AtomicU64::new(0);
/// Keys remembered per thread at most (all rules together); past it they are forgotten at once.
const MAX_KEYS_SEEN: usize = 4_096;
/// Keys longer than this are not remembered: a key worth remembering comes back, and is short.
const MAX_KEY_SEEN_BYTES: usize = 64;

/// Whether each key is sensitive, by the id of the rules that said so.
type SensitiveByRules = HashMap<u64, HashMap<String, bool, foldhash::fast::RandomState>, foldhash::fast::RandomState>;

thread_local! {
    /// How many keys, and whether each is sensitive, as this thread found them: the same few
    /// keys come in every event, and the rules' regex cost more than a lookup (4 % of ingest for
    /// OTLP records, whose attributes are a dozen keys each).
    static KEYS_SEEN: RefCell<(usize, SensitiveByRules)> = RefCell::new((0, HashMap::default()));
}

impl Scrubber {
    /// `extra_key_patterns` are regular expressions added to the built-in sensitive keys.
    pub fn new(enabled: bool, extra_key_patterns: &[String]) -> Result<Scrubber, regex::Error> {
        let mut keys = SENSITIVE_KEYS.to_string();
        for extra in extra_key_patterns {
            keys.push('|');
            keys.push_str(&format!("(?:{extra})"));
        }
        Ok(Scrubber {
            enabled,
            sensitive_keys: RegexBuilder::new(&keys).case_insensitive(true).build()?,
            rules: NEXT_RULES.fetch_add(1, Ordering::Relaxed),
        })
    }

    pub fn is_sensitive_key(&self, key: &str) -> bool {
        if !self.enabled {
            return false;
        }
        if key.len() > MAX_KEY_SEEN_BYTES {
            return self.sensitive_keys.is_match(key);
        }
        KEYS_SEEN.with_borrow_mut(|(count, seen)| {
            if let Some(&sensitive) = seen.get(&self.rules).and_then(|keys| keys.get(key)) {
                return sensitive;
            }
            let sensitive = self.sensitive_keys.is_match(key);
            if *count >= MAX_KEYS_SEEN {
                seen.clear();
                *count = 0;
            }
            seen.entry(self.rules).or_default().insert(key.to_string(), sensitive);
            *count += 1;
            sensitive
        })
    }

    /// Scrubs free text.
    pub fn text(&self, text: &str) -> String {
        let mut text = text.to_string();
        self.scrub(&mut text);
        text
    }

    /// Scrubs free text in place; a text no rule can match (most of them, and nearly every key)
    /// is neither copied nor scanned by a regex.
    pub fn scrub(&self, text: &mut String) {
        if !self.enabled {
            return;
        }
        // One pass over the bytes tells which rules can match at all: each skipped rule is a
        // regex scan saved on the ingest path.
        let cues = Cues::of(text);
        if cues.none() {
            return;
        }
        let mut scrubbed = std::borrow::Cow::Borrowed(text.as_str());
        if cues.pem {
            scrubbed = PEM_PRIVATE_KEY.replace_all(&scrubbed, FILTERED).into_owned().into();
        }
        if cues.bearer {
            let replaced = BEARER.replace_all(&scrubbed, |c: &Captures<'_>| format!("{} {FILTERED}", &c[1]));
            scrubbed = replaced.into_owned().into();
        }
        if cues.at && cues.scheme {
            let replaced = URL_CREDENTIALS.replace_all(&scrubbed, |c: &Captures<'_>| format!("{}{FILTERED}@", &c[1]));
            scrubbed = replaced.into_owned().into();
        }
        if cues.equals {
            let replaced = NAME_VALUE.replace_all(&scrubbed, |c: &Captures<'_>| {
                let (whole, name, value) = (&c[0], &c[1], &c[2]);
                if value != FILTERED && self.sensitive_keys.is_match(name) {
                    format!("{}{FILTERED}", &whole[..whole.len() - value.len()])
                } else {
                    whole.to_string()
                }
            });
            scrubbed = replaced.into_owned().into();
        }
        if cues.at {
            scrubbed = EMAIL.replace_all(&scrubbed, FILTERED).into_owned().into();
        }
        if cues.card_digits >= MIN_CARD_DIGITS
            && let Some(replaced) = filter_cards(&scrubbed)
        {
            scrubbed = replaced.into();
        }
        if let std::borrow::Cow::Owned(scrubbed) = scrubbed {
            *text = scrubbed;
        }
    }

    /// Scrubs a JSON value in place: sensitive keys at any depth, and every string and key.
    pub fn value(&self, value: &mut Value) {
        if !self.enabled {
            return;
        }
        match value {
            Value::String(s) => self.scrub(s),
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
        // Keys no rule can match stay as they are: the values are scrubbed in place, without
        // rebuilding the map.
        if map.keys().all(|key| Cues::of(key).none()) {
            for (key, v) in map.iter_mut() {
                if self.is_sensitive_key(key) {
                    *v = Value::String(FILTERED.into());
                } else {
                    self.value(v);
                }
            }
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

/// `text` with its card numbers replaced, or `None` when it has none.
///
/// Digits grouped by single spaces or dashes (`4111 1111 1111 1111 2`) form a sequence, which
/// starts and ends at word boundaries as `\b` would have it. A card number is a Luhn-valid run of
/// 13–19 digits made of whole groups of a sequence, so a number beside a card (`… 1111 2 items`)
/// is not taken for part of it. Of overlapping Luhn-valid runs, the one written in the longest
/// groups on average is the card: a card is one run or a few groups of four or more, and a
/// number beside it is one more, shorter group. The rest of the sequence stays.
///
/// No backtracking: a run spans at most 19 digits, so each group starts a bounded number of
/// runs, each checked once; only the Luhn-valid ones (one in ten) are ordered.
fn filter_cards(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if !bytes[pos].is_ascii_digit() {
            pos += 1;
            continue;
        }
        groups.clear();
        let mut start = pos;
        loop {
            let end = start + bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
            groups.push((start, end));
            match bytes.get(end..end + 2) {
                Some([b' ' | b'-', next]) if next.is_ascii_digit() => start = end + 1,
                _ => break,
            }
        }
        pos = groups.last().map_or(bytes.len(), |g| g.1);
        let open_start = !text[..groups[0].0].chars().next_back().is_some_and(is_word);
        let open_end = !text[pos..].chars().next().is_some_and(is_word);
        for (from, to) in cards_in(bytes, &groups, open_start, open_end) {
            out.push_str(&text[copied..from]);
            out.push_str(FILTERED);
            copied = to;
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// What `\w` matches, near enough: a digit run next to one of these is part of a word.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The byte ranges of the card numbers among a sequence's `groups` (byte ranges of its digit
/// groups, in order), in order; `open_start`/`open_end`: whether the sequence's first group may
/// start a card and its last end one (not when a letter is glued to it).
fn cards_in(bytes: &[u8], groups: &[(usize, usize)], open_start: bool, open_end: bool) -> Vec<(usize, usize)> {
    // (first group, last group, digits) of every Luhn-valid run of whole groups.
    let mut valid: Vec<(usize, usize, usize)> = Vec::new();
    for first in usize::from(!open_start)..groups.len() {
        let mut digits = 0;
        for last in first..groups.len() {
            digits += groups[last].1 - groups[last].0;
            if digits > MAX_CARD_DIGITS {
                break;
            }
            let closed = last + 1 == groups.len() && !open_end;
            if digits >= MIN_CARD_DIGITS && !closed && luhn_valid(&bytes[groups[first].0..groups[last].1]) {
                valid.push((first, last, digits));
            }
        }
    }
    if valid.is_empty() {
        return Vec::new();
    }
    // Longest groups on average first (digits / groups, compared without division), then the
    // most digits, then the leftmost.
    valid.sort_by(|&(a_first, a_last, a_digits), &(b_first, b_last, b_digits)| {
        let (a_groups, b_groups) = (a_last - a_first + 1, b_last - b_first + 1);
        (b_digits * a_groups).cmp(&(a_digits * b_groups)).then(b_digits.cmp(&a_digits)).then(a_first.cmp(&b_first))
    });
    let mut taken = vec![false; groups.len()];
    let mut cards = Vec::new();
    for (first, last, _) in valid {
        if taken[first..=last].iter().all(|t| !t) {
            taken[first..=last].fill(true);
            cards.push((groups[first].0, groups[last].1));
        }
    }
    cards.sort_unstable();
    cards
}

/// The Luhn checksum that every payment card number satisfies, over the ASCII digits of
/// `candidate` (13–19 of them, not all the same).
fn luhn_valid(candidate: &[u8]) -> bool {
    let (mut count, mut sum, mut first, mut all_same) = (0, 0, None, true);
    for digit in candidate.iter().rev().filter(|b| b.is_ascii_digit()).map(|b| u32::from(b - b'0')) {
        all_same &= *first.get_or_insert(digit) == digit;
        sum += match digit * (1 + count % 2) {
            doubled if doubled > 9 => doubled - 9,
            other => other,
        };
        count += 1;
    }
    (MIN_CARD_DIGITS as u32..=MAX_CARD_DIGITS as u32).contains(&count) && !all_same && sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
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
    fn a_card_number_beside_other_digits_is_filtered_and_the_other_digits_stay() {
        let s = scrubber();
        let table = [
            ("card 4111 1111 1111 1111 2 items", "card [Filtered] 2 items"),
            ("paid with 5500-0000-0000-0004 3 times", "paid with [Filtered] 3 times"),
            ("order 4111111111111111 7 failed", "order [Filtered] 7 failed"),
            ("qty 12 4111 1111 1111 1111", "qty 12 [Filtered]"),
            ("qty 3 4111111111111111 7 failed", "qty 3 [Filtered] 7 failed"),
            ("amex 3782 822463 10005 1 seat", "amex [Filtered] 1 seat"),
            ("two 4111111111111111 5500-0000-0000-0004 ok", "two [Filtered] [Filtered] ok"),
            ("id 12345678901234567890 4111111111111111", "id 12345678901234567890 [Filtered]"),
        ];
        for (text, scrubbed) in table {
            assert_eq!(s.text(text), scrubbed, "{text}");
        }
        // Not card numbers: no run of whole groups passes the Luhn check, or the digits are
        // glued to a word, so they stay as they are.
        for text in [
            "card 4111 1111 1111 1112 2 items",
            "order 4111111111111112 7 failed",
            "call +82 10-1234-5678 or 010 9876 5432 1",
            "tel 1-800-555-0199 2",
            "at 2026-11-24 15:00:00.123 epoch 1795000000123 4",
            "ts 20261124 150000 125",
            "epochs 1795000000123 1795000000124 7",
            "phones 010-1234-5678 010-9876-5432",
            "ref x4111111111111111 and 4111111111111111y",
            "1111111111111111 7",
        ] {
            assert_eq!(s.text(text), text, "{text}");
        }
    }

    #[test]
    fn long_runs_of_digit_groups_take_linear_time() {
        let s = scrubber();
        // 64 KiB (an event's limit) of one-digit groups, of card numbers back to back, and of
        // 13-digit groups that are each a candidate with each neighbour.
        let texts = ["1 ".repeat(32 * 1024), "4111-1111-1111-1111-".repeat(3_300), "4111111111111 2 ".repeat(4_000)];
        for text in texts {
            let started = std::time::Instant::now();
            let scrubbed = s.text(&text);
            assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
            assert!(!has_card(&scrubbed[..scrubbed.len().min(4_000)]));
        }
    }

    /// The digits of a Luhn-valid number: `body` and its check digit.
    fn luhn_complete(body: &[u8]) -> Vec<u8> {
        let sum: u32 = body
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                let d = u32::from(d);
                if i % 2 == 0 {
                    let doubled = d * 2;
                    if doubled > 9 { doubled - 9 } else { doubled }
                } else {
                    d
                }
            })
            .sum();
        let mut all = body.to_vec();
        all.push(((10 - sum % 10) % 10) as u8);
        all
    }

    /// Digits joined in groups of the given sizes by `separator`.
    fn grouped(digits: &[u8], sizes: &[usize], separator: &str) -> String {
        let mut text = String::new();
        let mut at = 0;
        for size in sizes {
            if at > 0 {
                text.push_str(separator);
            }
            text.extend(digits[at..at + size].iter().map(|d| char::from(b'0' + d)));
            at += size;
        }
        text
    }

    /// Whether `text` still has what [`filter_cards`] looks for: a Luhn-valid run of 13–19
    /// digits in groups joined by single spaces or dashes, not glued to a word. Found the slow
    /// way, from every position.
    fn has_card(text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let word = |i: usize| chars.get(i).is_some_and(|c| c.is_alphanumeric() || *c == '_');
        (0..chars.len()).filter(|&s| chars[s].is_ascii_digit() && (s == 0 || !word(s - 1))).any(|s| {
            let mut run = String::new();
            for (i, &c) in chars.iter().enumerate().skip(s) {
                // One space or dash joins two digits.
                let joins = (c == ' ' || c == '-') && chars.get(i + 1).is_some_and(char::is_ascii_digit);
                if !(c.is_ascii_digit() || joins) || run.bytes().filter(u8::is_ascii_digit).count() > MAX_CARD_DIGITS {
                    break;
                }
                run.push(c);
                if c.is_ascii_digit() && !word(i + 1) && luhn_valid(run.as_bytes()) {
                    return true;
                }
            }
            false
        })
    }

    fn digit_groups() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[0-9]{1,3}", 0..3)
    }

    #[test]
    fn the_one_pass_cues_of_a_short_text_are_the_searched_ones() {
        for text in [
            "",
            "b",
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----begin",
            "----BEGIN",
            "Bearer abc",
            "xbearer",
            "bEaReR",
            "bea",
            "https://user:pw@host/?token=1",
            ":/",
            "a:/b//",
            "kim@example.com",
            "4111 1111 1111 1111",
            "code.file.path",
            "trace_id",
            "5b8efff798038103d269b633813fc60c",
            "12345-67890 1234",
            "1234567890123x4",
            "결제 b=1 @ ://",
        ] {
            assert_eq!(Cues::of_short(text.as_bytes()), Cues::of_long(text.as_bytes()), "{text:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        #[test]
        fn the_cues_of_any_short_text_are_the_same_either_way(
            text in "[-bBeEgGiInNaArR:/@=0-9 x]{0,64}"
        ) {
            prop_assert_eq!(Cues::of_short(text.as_bytes()), Cues::of_long(text.as_bytes()));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1_000))]

        /// A card number (one run, or groups of four or more) between shorter numbers is
        /// filtered whole, and the numbers around it stay.
        #[test]
        fn a_card_between_other_numbers_is_filtered_and_they_stay(
            body in prop::collection::vec(0u8..10, 12..19),
            layout in 0usize..4,
            separator in prop::sample::select(vec![" ", "-"]),
            before in digit_groups(),
            after in digit_groups(),
        ) {
            let digits = luhn_complete(&body);
            prop_assume!(digits.iter().any(|d| *d != digits[0]));
            let sizes = match (layout, digits.len()) {
                (1, 16) => vec![4, 4, 4, 4],
                (2, 15) => vec![4, 6, 5],
                (3, 14) => vec![4, 6, 4],
                (_, n) => vec![n],
            };
            let card = grouped(&digits, &sizes, separator);
            let joined = |groups: &[String]| groups.iter().map(|g| format!("{g}{separator}")).collect::<String>();
            let before = joined(&before);
            let after: String = after.iter().map(|g| format!("{separator}{g}")).collect();
            let text = format!("paid {before}{card}{after} ok");
            prop_assert_eq!(scrubber().text(&text), format!("paid {before}[Filtered]{after} ok"));
        }

        /// Whatever the digits, none of what makes a card number is left, and only that goes.
        #[test]
        fn no_card_number_is_left_and_only_card_numbers_go(
            groups in prop::collection::vec(("[0-9]{1,17}", prop::sample::select(vec![" ", "-", "  ", " x "])), 1..8),
            card in prop::option::of((prop::collection::vec(0u8..10, 12..19), 0usize..8)),
        ) {
            let mut parts: Vec<(String, &str)> = groups;
            if let Some((body, at)) = card {
                let digits = luhn_complete(&body);
                parts.insert(at.min(parts.len()), (grouped(&digits, &[digits.len()], ""), " "));
            }
            let text: String = parts.iter().map(|(g, sep)| format!("{g}{sep}")).collect();
            let scrubbed = scrubber().text(&text);
            prop_assert!(!has_card(&scrubbed), "{:?} -> {:?}", text, scrubbed);
            // Between the `[Filtered]`s, the text as it was; what each replaced was a card number.
            let pieces: Vec<&str> = scrubbed.split(FILTERED).collect();
            let mut rest = text.as_str();
            for (i, piece) in pieces.iter().enumerate() {
                prop_assert!(rest.starts_with(piece), "{:?} -> {:?}", text, scrubbed);
                rest = &rest[piece.len()..];
                if let Some(next) = pieces.get(i + 1) {
                    let card = |n: usize| {
                        let run = &rest.as_bytes()[..n];
                        run.iter().all(|b| b.is_ascii_digit() || *b == b' ' || *b == b'-') && luhn_valid(run)
                    };
                    let replaced = (13..rest.len().min(38) + 1)
                        .filter(|&n| rest.is_char_boundary(n) && rest[n..].starts_with(next))
                        .find(|&n| card(n));
                    prop_assert!(replaced.is_some(), "{:?} -> {:?}", text, scrubbed);
                    rest = &rest[replaced.unwrap_or(0)..];
                }
            }
            prop_assert!(rest.is_empty(), "{:?} -> {:?}", text, scrubbed);
        }
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
    fn the_keys_a_thread_remembers_are_answered_per_rules_and_stay_right_past_the_bound() {
        let plain = Scrubber::new(true, &[]).expect("scrubber");
        let with_ssn = Scrubber::new(true, &["^ssn$".to_string()]).expect("scrubber");
        let clone = with_ssn.clone();
        for _ in 0..3 {
            assert!(!plain.is_sensitive_key("ssn"), "not in the built-in keys");
            assert!(with_ssn.is_sensitive_key("ssn"));
            assert!(clone.is_sensitive_key("ssn"), "a clone has the same rules");
            assert!(plain.is_sensitive_key("password") && with_ssn.is_sensitive_key("Password"));
        }
        for i in 0..MAX_KEYS_SEEN + 10 {
            assert!(!plain.is_sensitive_key(&format!("field_{i}")));
        }
        assert!(with_ssn.is_sensitive_key("ssn") && !plain.is_sensitive_key("ssn"));
        let long = format!("{}_token", "x".repeat(MAX_KEY_SEEN_BYTES));
        assert!(plain.is_sensitive_key(&long), "a long key is still checked");
        assert!(!Scrubber::new(false, &[]).expect("scrubber").is_sensitive_key("password"), "scrubbing off");
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
