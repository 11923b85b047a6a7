//! The embedded store's search index, and how a query is turned into the candidates it names.
//!
//! Two SQLite FTS5 tables index *blocks* of 32 consecutive events (by `seq`), not single events:
//! a block's postings are shared by its events, which makes the index ~4× smaller and ~2× cheaper
//! to keep at ingest than one document per event, for the price of reading 32 events per hit.
//! Both hold words of hex digits (FTS5's `ascii` tokenizer), each a 64-bit key, and each block's
//! document lists each key once: the keys are computed by the ingest tasks, in parallel, and
//! de-duplicated per block in Rust, so the single writer thread hands FTS5 a third of the words
//! it would otherwise tokenize and hash.
//! - `grams`: every trigram of the events' lower-cased messages, so a word or phrase — any
//!   substring of three characters or more — finds its blocks. A trigram's key is its three
//!   characters' code points (21 bits each): exact, never a collision. Since the column store,
//!   the trigrams are kept per *span* of 1,024 rows in `span_grams` instead, written with their
//!   part's columns: a span's messages share most trigrams, so that is a fifth of the keys (a
//!   third of ingest CPU was this index), and the columns test a named span's part in about a
//!   millisecond. Spans, not whole parts: in 4,096 messages nearly every trigram of hex digits
//!   occurs, so a pasted UUID would name every part; in 1,024 it names about one in 250.
//!   `grams` holds the blocks of stores written before, and of rows that may never be sealed
//!   (see [`IndexText::with_grams`]); a query asks both.
//! - `tokens`: one key per (field, value) of the fields a query can compare for equality
//!   (`type`, `code`, `user`, `extra.*`, …), a hash of the two, so `user:u-42` finds its blocks.
//!
//! [`Need`] is what a query requires of a matching event in terms of these indexes: a necessary
//! condition, never a sufficient one. The index narrows; the evaluator decides.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::Value as Json;

use crate::event::StoredEvent;
use crate::search::{Expr, Field, Node, Op, Query, Value, fold_case};

/// Events per indexed block: `block = seq >> BLOCK_SHIFT`.
pub(super) const BLOCK_SHIFT: u32 = 5;
pub(super) const BLOCK_EVENTS: i64 = 1 << BLOCK_SHIFT;
/// Rows per span of `span_grams`: `span = seq >> SPAN_SHIFT`, a quarter of a part of columns.
pub(super) const SPAN_SHIFT: u32 = 10;
/// At most this many trigrams of one query segment go to the index: a long phrase is as
/// selective with its first and last few trigrams as with all of them, and cheaper. All of a
/// UUID's 34: a span holds most of them by chance, and only all of them name it alone.
const MAX_GRAMS_PER_SEGMENT: usize = 36;

/// What one event adds to its block's documents: keys, in any order, perhaps repeated (the
/// block's document de-duplicates them all at once).
#[derive(Debug, Default)]
pub(super) struct IndexText {
    pub grams: Vec<u64>,
    pub tokens: Vec<u64>,
}

impl IndexText {
    /// The block's keys of an event as ingest writes them: its field values only. Its message's
    /// trigrams go to the index with its span's ([`span_documents`]), once per span.
    pub(super) fn of(event: &StoredEvent) -> IndexText {
        let mut tokens = Tokens::default();
        for (name, value) in event.text_fields() {
            if let Some(value) = value {
                tokens.text(name, value);
            }
        }
        if let Some(http) = &event.http {
            if let Some(method) = &http.method {
                tokens.text("http.method", method);
            }
            if let Some(status) = http.status {
                tokens.number("http.status", f64::from(status), &status.to_string());
            }
        }
        if let Some(user) = &event.user {
            match user {
                Json::Object(fields) => {
                    if let Some(id) = fields.get("id") {
                        tokens.json("user", id);
                    }
                    tokens.tree("user", fields);
                }
                other => tokens.json("user", other),
            }
        }
        if let Some(extra) = &event.extra {
            tokens.tree("extra", extra);
        }
        IndexText { grams: Vec::new(), tokens: tokens.keys }
    }

    /// [`IndexText::of`] with the message's trigrams, for rows that may never be sealed into a
    /// part with its own trigrams: the rows a restart finds unindexed, and those moved from the
    /// first layout.
    pub(super) fn with_grams(event: &StoredEvent) -> IndexText {
        IndexText { grams: message_trigrams(&event.message), ..IndexText::of(event) }
    }
}

/// The `span_grams` documents of a part's rows, `(seq, folded message)` in any order: per span
/// of 1,024 rows, every trigram of its messages once. Its rows' messages are alike, so that is a
/// fifth of the keys their 32 block documents held.
pub(super) fn span_documents<'a>(rows: impl Iterator<Item = (i64, &'a str)>) -> Vec<(i64, String)> {
    let mut spans: BTreeMap<i64, HashSet<&str, foldhash::fast::RandomState>> = BTreeMap::new();
    for (seq, message) in rows {
        spans.entry(seq >> SPAN_SHIFT).or_default().insert(message);
    }
    (spans.into_iter()).map(|(span, messages)| (span, span_document(messages.into_iter()))).collect()
}

/// The document of one span's (folded) messages.
fn span_document<'a>(folded_messages: impl Iterator<Item = &'a str>) -> String {
    // Folded already: folding again could change a rare character the query folded once.
    let keys: Vec<Vec<u64>> =
        folded_messages.map(|m| if m.is_ascii() { message_trigrams(m) } else { trigrams(m) }).collect();
    document(keys.iter().map(Vec::as_slice))
}

/// The document of a block: every key of its events once, as words.
pub(super) fn document<'a>(keys: impl Iterator<Item = &'a [u64]>) -> String {
    // A block's events share most of their keys (their messages are alike): a hash set drops the
    // repeats first, so only the distinct keys are sorted — twice as fast as sorting them all.
    let mut distinct: HashSet<u64, BuildHasherDefault<KeyHasher>> =
        HashSet::with_capacity_and_hasher(1024, BuildHasherDefault::default());
    distinct.extend(keys.flatten().copied());
    let mut all: Vec<u64> = distinct.into_iter().collect();
    all.sort_unstable();
    let mut text = String::with_capacity(all.len() * 18);
    for key in all {
        if !text.is_empty() {
            text.push(' ');
        }
        push_word(&mut text, key);
    }
    text
}

/// Hashes a key (already a number, but not spread over the bits a table uses) with a few
/// multiplications and shifts (splitmix64's finaliser), not SipHash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0 ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, key: u64) {
        let mixed = (key ^ (key >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        self.0 = mixed ^ (mixed >> 29);
    }
}

/// [`word`] written at the end of `text`, without a String of its own.
fn push_word(text: &mut String, key: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - key.leading_zeros()).div_ceil(4).max(1);
    text.push('k');
    for place in (0..digits).rev() {
        text.push(char::from(HEX[((key >> (4 * place)) & 0xf) as usize]));
    }
}

/// A key as an FTS5 word.
fn word(key: u64) -> String {
    format!("k{key:x}")
}

/// [`trigrams`] of the folded message. ASCII text (most of it) folds byte by byte and has no
/// pairs: its keys come straight from the bytes, without a folded copy or decoded characters.
fn message_trigrams(message: &str) -> Vec<u64> {
    if !message.is_ascii() {
        return trigrams(&fold_case(message));
    }
    let folded = |b: u8| u64::from(b.to_ascii_lowercase());
    message.as_bytes().windows(3).map(|w| (folded(w[0]) << 42) | (folded(w[1]) << 21) | folded(w[2])).collect()
}

/// The key of every trigram of `text` (in order, with repeats), and of every pair of characters
/// of which one is not ASCII: Korean, Chinese and Japanese words are often two characters long.
fn trigrams(text: &str) -> Vec<u64> {
    let chars: Vec<u64> = text.chars().map(|c| u64::from(u32::from(c))).collect();
    let mut keys: Vec<u64> = chars.windows(3).map(|w| (w[0] << 42) | (w[1] << 21) | w[2]).collect();
    keys.extend(chars.windows(2).filter(|w| w[0] > 0x7f || w[1] > 0x7f).map(|w| PAIR | (w[0] << 21) | w[1]));
    keys
}

/// Marks the key of a pair of characters (a trigram's first character is never this large).
const PAIR: u64 = 1 << 63;

/// The keys a query segment needs: its trigrams, or its one pair when it is two characters
/// with one not ASCII.
fn segment_keys(segment: &str) -> Vec<u64> {
    let chars: Vec<char> = segment.chars().collect();
    match chars[..] {
        [a, b] if !a.is_ascii() || !b.is_ascii() => {
            vec![PAIR | (u64::from(u32::from(a)) << 21) | u64::from(u32::from(b))]
        }
        _ => trigrams(segment).into_iter().filter(|k| k & PAIR == 0).collect(),
    }
}

/// The key of a field's value: a hash of the field's name and its lower-cased text (FNV-1a,
/// 64 bits: stable across versions, and a collision only adds a candidate).
fn token(field: &str, folded: &str) -> u64 {
    fnv(field.bytes().chain([0x01]).chain(folded.bytes()))
}

/// [`token_of_text`] of JSON text that serde_json wrote (so UTF-8).
fn json_token(field: &str, json: &[u8]) -> u64 {
    if json.is_ascii() { ascii_token(field, json) } else { token(field, &fold_case(&String::from_utf8_lossy(json))) }
}

/// [`token`] of `text` folded: ASCII text (most of it) is folded byte by byte as it is hashed,
/// without a folded copy.
fn token_of_text(field: &str, text: &str) -> u64 {
    if text.is_ascii() { ascii_token(field, text.as_bytes()) } else { token(field, &fold_case(text)) }
}

/// [`token`] of ASCII `text` folded, hashed in plain loops over the bytes (an iterator chain of
/// the three parts was twice as slow: this runs over every value of every event).
fn ascii_token(field: &str, text: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &byte in field.as_bytes() {
        hash = fnv_step(hash, byte);
    }
    hash = fnv_step(hash, 0x01);
    for &byte in text {
        hash = fnv_step(hash, byte.to_ascii_lowercase());
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv_step(hash: u64, byte: u8) -> u64 {
    (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
}

fn fnv(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(FNV_OFFSET, fnv_step)
}

/// A number as one canonical text, whatever way it was written (`502`, `502.0`, `5.02e2`).
fn canonical(number: f64) -> String {
    format!("t{number}")
}

#[derive(Default)]
struct Tokens {
    keys: Vec<u64>,
    /// The text of a number or of a nested object or array, and a number's canonical text: one
    /// buffer each for all of an event's values, where each was a String of its own (an event
    /// with nested attributes has several).
    text: String,
    canonical: String,
    /// A nested object's or array's JSON text.
    json: Vec<u8>,
}

impl Tokens {
    fn text(&mut self, field: &str, text: &str) {
        self.keys.push(token_of_text(field, text));
    }

    /// A numeric field: found by its number (`field:502`) and by its text.
    fn number(&mut self, field: &str, number: f64, text: &str) {
        self.canonical.clear();
        // [`canonical`]'s text, written into the buffer.
        let _ = write!(self.canonical, "t{number}");
        self.keys.push(token(field, &self.canonical));
        self.text(field, text);
    }

    /// A JSON value as the evaluator sees it: a string's own text, a number's number and text,
    /// anything else its JSON text.
    fn json(&mut self, field: &str, value: &Json) {
        match value {
            Json::String(text) => return self.text(field, text),
            Json::Object(_) | Json::Array(_) => {
                // The same text as `to_string`, serialised straight into the reused buffer.
                self.json.clear();
                let key = match serde_json::to_writer(&mut self.json, value) {
                    Ok(()) if self.json.is_ascii() => ascii_token(field, &self.json),
                    _ => token_of_text(field, &value.to_string()),
                };
                return self.keys.push(key);
            }
            _ => {}
        }
        // The same text as `to_string` (Display), written into the reused buffer.
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        let _ = write!(text, "{value}");
        match value.as_number().and_then(serde_json::Number::as_f64) {
            Some(n) => self.number(field, n, &text),
            None => self.text(field, &text),
        }
        self.text = text;
    }

    /// Every value of an object, at every depth, under `prefix.key.key…`.
    fn tree(&mut self, prefix: &str, fields: &serde_json::Map<String, Json>) {
        let mut path = prefix.to_string();
        self.tree_under(&mut path, fields);
    }

    /// [`Tokens::tree`] with one buffer for every path: `path` is the prefix, and is again on return.
    fn tree_under(&mut self, path: &mut String, fields: &serde_json::Map<String, Json>) {
        let prefix = path.len();
        for (key, value) in fields {
            path.truncate(prefix);
            path.push('.');
            path.push_str(key);
            match value {
                Json::Object(inner) => {
                    let mut json = std::mem::take(&mut self.json);
                    json.clear();
                    self.object(path, inner, &mut json);
                    self.json = json;
                }
                _ => self.json(path, value),
            }
        }
        path.truncate(prefix);
    }

    /// The keys of the object at `path` and of every value in it, at every depth, its JSON text
    /// appended to `json` on the way: each value is serialised once, for its own key and every
    /// enclosing object's, where serialising each object for its key wrote a value once per
    /// object around it.
    fn object(&mut self, path: &mut String, fields: &serde_json::Map<String, Json>, json: &mut Vec<u8>) {
        let (start, prefix) = (json.len(), path.len());
        json.push(b'{');
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            // Writing to a Vec fails only on a map key that is not a string, which a Map has not.
            let _ = serde_json::to_writer(&mut *json, key);
            json.push(b':');
            path.truncate(prefix);
            path.push('.');
            path.push_str(key);
            match value {
                Json::Object(inner) => self.object(path, inner, json),
                Json::Array(_) => {
                    let at = json.len();
                    let _ = serde_json::to_writer(&mut *json, value);
                    self.keys.push(json_token(path, &json[at..]));
                }
                _ => {
                    let _ = serde_json::to_writer(&mut *json, value);
                    self.json(path, value);
                }
            }
        }
        json.push(b'}');
        path.truncate(prefix);
        self.keys.push(json_token(path, &json[start..]));
    }
}

/// A necessary condition of a query on the index, or `None` where the query says nothing the
/// index can check (`-word`, `has:stack`, `http.status:>=500`, a two-letter word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Need {
    /// Every part holds.
    All(Vec<Need>),
    /// At least one part holds.
    Any(Vec<Need>),
    /// The block's messages contain these (folded) pieces; `words` is the FTS5 expression of
    /// their trigrams.
    Grams { words: String, pieces: Vec<String> },
    /// The block has this field token (`word`, FTS5's); an event that has it has `piece` (when
    /// set) in its JSON line.
    Token { word: String, piece: Option<String> },
}

impl Need {
    pub(super) fn of(query: &Query) -> Option<Need> {
        query.root().and_then(need)
    }

    /// Whether any part asks the messages' trigrams.
    pub(super) fn names_grams(&self) -> bool {
        match self {
            Need::All(parts) | Need::Any(parts) => parts.iter().any(Need::names_grams),
            Need::Grams { .. } => true,
            Need::Token { .. } => false,
        }
    }

    /// Whether an event whose folded JSON line is `json` may match: the cheap test a row passes
    /// before it is parsed and evaluated. Text the need names is in the line as written, unless
    /// it holds a character JSON escapes (such pieces are never kept).
    pub(super) fn admits(&self, json: &str) -> bool {
        match self {
            Need::All(parts) => parts.iter().all(|part| part.admits(json)),
            Need::Any(parts) => parts.iter().any(|part| part.admits(json)),
            Need::Grams { pieces, .. } => {
                pieces.iter().all(|piece| memchr::memmem::find(json.as_bytes(), piece.as_bytes()).is_some())
            }
            Need::Token { piece, .. } => {
                piece.as_ref().is_none_or(|piece| memchr::memmem::find(json.as_bytes(), piece.as_bytes()).is_some())
            }
        }
    }
}

/// `text` unless JSON would write one of its characters differently (a quote, a backslash, a
/// control character).
fn verbatim_in_json(text: &str) -> Option<String> {
    (!text.is_empty() && !text.chars().any(|c| c == '"' || c == '\\' || c < ' ')).then(|| text.to_string())
}

fn need(expr: &Expr) -> Option<Need> {
    match &expr.node {
        Node::And(children) => {
            let parts: Vec<Need> = children.iter().filter_map(need).collect();
            (!parts.is_empty())
                .then(|| if parts.len() == 1 { parts.into_iter().next() } else { Some(Need::All(parts)) })?
        }
        Node::Or(children) => any(children.iter().map(need)),
        Node::Not(_) | Node::Has(_) => None,
        Node::Text(pattern) => grams(pattern.folded()),
        Node::Term { field, op: Op::AnyOf(values) } => any(values.iter().map(|value| value_need(field, value))),
        Node::Term { op: Op::Compare(..), .. } => None,
    }
}

/// One of the parts, or `None` as soon as one part needs nothing.
fn any(parts: impl Iterator<Item = Option<Need>>) -> Option<Need> {
    let parts: Vec<Need> = parts.collect::<Option<_>>()?;
    if parts.len() == 1 { parts.into_iter().next() } else { Some(Need::Any(parts)) }
}

/// What `field:value` needs of the index.
fn value_need(field: &Field, value: &Value) -> Option<Need> {
    let name = match field {
        // The whole message equals the value: its pieces are substrings of the message.
        Field::Message => return grams(value.pattern.folded()),
        Field::Type => "type",
        Field::Code => "code",
        Field::Url => "url",
        Field::Location => "location",
        Field::Release => "release",
        Field::Fingerprint => "fingerprint",
        Field::HttpMethod => "http.method",
        Field::HttpStatus => "http.status",
        Field::User => "user",
        Field::UserKey(path) => return value_token(&format!("user.{}", path.join(".")), value),
        Field::Extra(path) => return value_token(&format!("extra.{}", path.join(".")), value),
        Field::Level | Field::Stack | Field::Id | Field::Env | Field::Group => return None,
    };
    value_token(name, value)
}

/// Tokens are whole values: a wildcard value cannot use them. A number may match a numeric
/// field by its number or a text field by its text.
fn value_token(field: &str, value: &Value) -> Option<Need> {
    if value.pattern.has_wildcard() {
        return None;
    }
    let folded = value.pattern.folded();
    match value.number {
        // A number matches numeric values whatever way they are written: no piece of text.
        Some(number) => Some(Need::Any(vec![
            Need::Token { word: word(token(field, &canonical(number))), piece: None },
            Need::Token { word: word(token(field, folded)), piece: None },
        ])),
        None => Some(Need::Token { word: word(token(field, folded)), piece: verbatim_in_json(folded) }),
    }
}

/// The trigrams of every literal piece of a (lower-cased) pattern, ANDed; `None` when no piece
/// is three characters long (or two, not all ASCII).
fn grams(folded: &str) -> Option<Need> {
    let mut words = Vec::new();
    let mut pieces = Vec::new();
    for segment in folded.split(crate::search::wildcard::WILDCARD) {
        pieces.extend(verbatim_in_json(segment));
        let keys = segment_keys(segment);
        // The first and last trigrams and evenly spaced ones between, when there are many.
        let step = keys.len().div_ceil(MAX_GRAMS_PER_SEGMENT).max(1);
        let mut chosen: Vec<u64> = keys.iter().copied().step_by(step).collect();
        if let Some(last) = keys.last() {
            if chosen.last() != Some(last) {
                chosen.push(*last);
            }
        }
        words.extend(chosen.into_iter().map(word));
    }
    words.sort_unstable();
    words.dedup();
    (!words.is_empty()).then(|| Need::Grams { words: words.join(" AND "), pieces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_give_the_keys_of_their_own_text_with_the_buffers_reused() {
        let values = [
            serde_json::json!(502),
            serde_json::json!(-1.5e3),
            serde_json::json!({"Service": {"name": "Checkout", "version": 2}, "list": [1, "A"]}),
            serde_json::json!(12),
            serde_json::json!([true, null, "X"]),
            serde_json::json!(null),
            serde_json::json!(false),
            serde_json::json!(u64::MAX),
            serde_json::json!({"é": "ÉCOLE"}),
        ];
        let mut tokens = Tokens::default();
        let mut want = Vec::new();
        for value in &values {
            tokens.json("extra.v", value);
            let text = value.to_string();
            if let Some(n) = value.as_f64() {
                want.push(token("extra.v", &canonical(n)));
            }
            want.push(token_of_text("extra.v", &text));
        }
        assert_eq!(tokens.keys, want);
    }

    #[test]
    fn a_tree_gives_the_keys_of_every_value_and_object_as_each_serialised_alone() {
        let trees = [
            serde_json::json!({"resource": {"service": {"name": "Web", "version": "1.2"}, "deployment": {"environment": {"name": "prod"}}},
                               "service": "web", "code": {"line": {"number": 42}}, "empty": {}, "list": [1, {"A": "b"}],
                               "nested": {"list": [true, null], "n": -1.5e3, "none": null}}),
            serde_json::json!({"é": {"Ü": "ÉCOLE", "q": "say \"hi\"\n"}, "a": {"b": {"c": {"d": {"e": "deep"}}}}}),
            serde_json::json!({}),
        ];
        for tree in &trees {
            let fields = tree.as_object().expect("an object");
            let mut tokens = Tokens::default();
            tokens.tree("extra", fields);
            // The reference: every value at every depth through `json`, each object serialised alone.
            fn reference(tokens: &mut Tokens, prefix: &str, fields: &serde_json::Map<String, Json>) {
                for (key, value) in fields {
                    let path = format!("{prefix}.{key}");
                    tokens.json(&path, value);
                    if let Json::Object(inner) = value {
                        reference(tokens, &path, inner);
                    }
                }
            }
            let mut want = Tokens::default();
            reference(&mut want, "extra", fields);
            let (mut got, mut want) = (tokens.keys, want.keys);
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{tree}");
        }
    }

    #[test]
    fn the_fast_paths_give_the_same_keys_and_words() {
        for key in [0, 1, 0xf, 0x10, 0xabc, u64::MAX, PAIR | 0x1234, 1 << 42] {
            let mut text = String::new();
            push_word(&mut text, key);
            assert_eq!(text, word(key));
        }
        for message in ["GET /API/Orders 200", "ab", "", "a\tB\nC\"ÉCOLE ΣΑΣ 주문 12345번을", "MiXeD CaSe Ω"] {
            assert_eq!(message_trigrams(message), trigrams(&fold_case(message)), "{message}");
        }
        for (field, text) in [("extra.a", "MiXeD"), ("user", "ÉCOLE ΣΑΣ"), ("code", ""), ("", "{\"A\":[1]}")] {
            assert_eq!(token_of_text(field, text), token(field, &fold_case(text)));
            let chained = fnv(field.bytes().chain([0x01]).chain(fold_case(text).bytes()));
            assert_eq!(token_of_text(field, text), chained, "the FNV-1a of the three parts");
        }
    }
    use serde_json::json;

    fn need_of(query: &str) -> Option<Need> {
        Need::of(&query.parse().expect("query"))
    }

    fn event(fields: serde_json::Value) -> StoredEvent {
        let mut base = json!({
            "id": "01JD0000000000000000000000", "project": "p", "env": "e",
            "timestamp": "2026-11-26T00:00:00.000Z", "received_at": "2026-11-26T00:00:00.000Z",
            "level": "error", "message": ""
        });
        base.as_object_mut().expect("object").extend(fields.as_object().expect("object").clone());
        serde_json::from_value(base).expect("event")
    }

    /// Whether the index would offer `event`'s block to `query`: every word the need names
    /// (all of an AND, any of an OR) is in the block's documents.
    fn offered(event: &StoredEvent, query: &str) -> bool {
        let text = IndexText::with_grams(event);
        let (grams, tokens) = (document(std::iter::once(&text.grams[..])), document(std::iter::once(&text.tokens[..])));
        assert!(IndexText::of(event).grams.is_empty(), "ingest leaves the trigrams to the span");
        fn holds(need: &Need, grams: &str, tokens: &str) -> bool {
            let has = |doc: &str, word: &str| doc.split(' ').any(|w| w == word.trim_matches('"'));
            match need {
                Need::All(parts) => parts.iter().all(|p| holds(p, grams, tokens)),
                Need::Any(parts) => parts.iter().any(|p| holds(p, grams, tokens)),
                Need::Grams { words, .. } => words.split(" AND ").all(|w| has(grams, w)),
                Need::Token { word, .. } => has(tokens, word),
            }
        }
        holds(&need_of(query).expect("a need"), &grams, &tokens)
    }

    #[test]
    fn words_and_phrases_need_their_trigrams_and_short_or_negated_words_need_nothing() {
        let refund = event(json!({"message": "REFUND issued to Kim — 환불 완료"}));
        for query in ["refund", "Refund", "\"und iss\"", "ref*sued", "message:*FUND*", "환불", "\"불 완료\""] {
            assert!(offered(&refund, query), "{query}");
        }
        for query in ["refunds", "\"refund  issued\"", "환불됨", "환자", "xylophone"] {
            assert!(!offered(&refund, query), "{query}");
        }
        assert_eq!(need_of("ok"), None);
        assert_eq!(need_of("-refund"), None);
        assert_eq!(need_of("ok OR refund"), None, "one side needs nothing, so the OR needs nothing");
        assert_eq!(need_of("ok refund"), need_of("refund"), "an AND keeps what its parts need");
        assert_eq!(need_of("re*un"), None, "pieces under three characters");
        assert_eq!(need_of("has:stack"), None);
    }

    #[test]
    fn a_long_phrase_sends_a_bounded_number_of_trigrams_including_both_ends() {
        let long = "abcdefghij".repeat(10);
        let Some(Need::Grams { words: expr, .. }) = need_of(&long) else { panic!("grams") };
        assert!(expr.split(" AND ").count() <= MAX_GRAMS_PER_SEGMENT + 1, "{expr}");
        assert!(offered(&event(json!({"message": long})), &long));
        let changed_end = format!("{}x", &long[..long.len() - 1]);
        assert!(!offered(&event(json!({"message": long})), &changed_end), "the last trigram is always sent");
    }

    #[test]
    fn field_values_need_the_token_the_event_wrote() {
        let event = event(json!({
            "message": "Payment FAILED", "type": "TypeError",
            "http": {"status": 502}, "user": {"id": "U-42", "plan": "pro"},
            "extra": {"a": {"b": 7.0, "c": true}, "list": [1, "x"]}
        }));
        for query in [
            "type:typeerror",
            "http.status:502",
            "user:u-42",
            "user.plan:PRO",
            "extra.a.b:7",
            "extra.a.b:7.0",
            "extra.a.c:true",
            r#"extra.list:"[1,\"x\"]""#,
            r#"extra.a:"{\"b\":7.0,\"c\":true}""#,
            "type:[RangeError, TypeError]",
            "payment user:u-42",
        ] {
            assert!(offered(&event, query), "{query}");
        }
        for query in ["type:rangeerror", "user:u-43", "extra.a.b:8", "extra.b:7", "refund user:u-42"] {
            assert!(!offered(&event, query), "{query}");
        }
        assert_eq!(need_of("extra.a.b:7*"), None, "a wildcard value cannot use a whole-value token");
        assert_eq!(need_of("http.status:>=500"), None);
    }
}
