//! Matching text against a pattern in which `*` stands for any run of characters, in time linear
//! in the text: a pattern like `*a*a*a*b` must not make a search backtrack exponentially.
//!
//! With `*` as the only wildcard, finding each literal piece at its leftmost place after the
//! previous one is enough (a later place never leaves more room for the rest), so the text is
//! scanned once from left to right, with `str::find` (linear) for each piece.
//! Both sides are compared as given: callers fold case first.

pub const WILDCARD: char = '*';

/// The whole of `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split(WILDCARD);
    let first = pieces.next().unwrap_or_default();
    let Some(last) = pieces.next_back() else {
        return text == pattern;
    };
    // The ends are anchored: strip the first piece from the front and the last from the back,
    // then the middle pieces must appear in order in what is left (which may not overlap them).
    let Some(rest) = text.strip_prefix(first) else {
        return false;
    };
    let Some(middle) = rest.strip_suffix(last) else {
        return false;
    };
    in_order(pieces, middle)
}

/// Some part of `text` matches `pattern` (a substring with wildcards).
pub fn contains(pattern: &str, text: &str) -> bool {
    in_order(pattern.split(WILDCARD), text)
}

/// [`contains`] for many texts at once, kept end to end in `joined` (text `i` ends at byte
/// `ends[i]`, starts where the one before ends). A pattern of one literal piece — most words
/// and phrases — is looked for once through the whole run (SIMD `memmem`), each hit credited
/// to the text it lies in; a hit across two texts is no hit.
pub fn contains_each(pattern: &str, joined: &str, ends: &[usize]) -> Vec<bool> {
    let start = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
    let mut pieces = pattern.split(WILDCARD).filter(|piece| !piece.is_empty());
    let (Some(only), None) = (pieces.next(), pieces.next()) else {
        return (0..ends.len()).map(|i| contains(pattern, joined.get(start(i)..ends[i]).unwrap_or_default())).collect();
    };
    let mut found = vec![false; ends.len()];
    let finder = memchr::memmem::Finder::new(only.as_bytes());
    let mut from = 0;
    while let Some(at) = finder.find(joined.as_bytes().get(from..).unwrap_or_default()) {
        let at = from + at;
        // The text the hit starts in: the first whose end is past the hit's start.
        let i = ends.partition_point(|&end| end <= at);
        match ends.get(i) {
            Some(&end) if at + only.len() <= end => {
                found[i] = true;
                from = end; // the rest of this text adds nothing
            }
            Some(_) => from = at + 1,
            None => break,
        }
    }
    found
}

/// Each piece occurs in `text` after the previous one.
fn in_order<'p>(pieces: impl Iterator<Item = &'p str>, mut text: &str) -> bool {
    for piece in pieces.filter(|piece| !piece.is_empty()) {
        match text.find(piece) {
            Some(at) => text = text.get(at + piece.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_texts_at_once_contain_what_each_alone_contains() {
        let texts =
            ["payment failed", "pay", "ment", "nothing", "", "timeout talking to bank", "paymentpayment", "σύσ"];
        let joined: String = texts.concat();
        let ends: Vec<usize> = texts
            .iter()
            .scan(0, |end, t| {
                *end += t.len();
                Some(*end)
            })
            .collect();
        for pattern in [
            "pay",
            "payment",
            "ment",
            "ypa",
            "paymentpay",
            "g",
            "*",
            "",
            "pay*ment",
            "t*t",
            "σ",
            "nothingtimeout",
            "paynothing",
        ] {
            let each: Vec<bool> = texts.iter().map(|t| contains(pattern, t)).collect();
            assert_eq!(contains_each(pattern, &joined, &ends), each, "{pattern}");
        }
    }

    #[test]
    fn a_pattern_without_wildcards_must_equal_the_whole_text() {
        assert!(matches("abc", "abc"));
        assert!(!matches("abc", "abcd"));
        assert!(!matches("abc", "xabc"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
    }

    #[test]
    fn a_wildcard_matches_any_run_including_none() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("**", "x"));
        assert!(matches("pre*", "pre"));
        assert!(matches("pre*", "prefix"));
        assert!(!matches("pre*", "xprefix"));
        assert!(matches("*fix", "suffix"));
        assert!(!matches("*fix", "fixes"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "a--b--c"));
        assert!(!matches("a*b*c", "a--c--b"));
        assert!(matches("*/api/*", "https://x.test/api/v1"));
    }

    #[test]
    fn the_anchored_ends_may_not_share_characters() {
        // "aba" starts with "ab" and ends with "ba", but only by using the middle `b` twice.
        assert!(!matches("ab*ba", "aba"));
        assert!(matches("ab*ba", "abba"));
        assert!(!matches("a*a", "a"));
        assert!(matches("a*a", "aa"));
    }

    #[test]
    fn a_middle_piece_is_found_after_the_previous_one() {
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*b*a*", "xxaxxbxx"));
        assert!(matches("x*ab*ab*y", "xababy"));
        assert!(!matches("x*ab*ab*y", "xaby"));
    }

    #[test]
    fn contains_finds_the_pattern_anywhere() {
        assert!(contains("card", "your card was declined"));
        assert!(contains("card*declined", "your card was declined"));
        assert!(!contains("declined*card", "your card was declined"));
        assert!(contains("", "x"));
        assert!(contains("*", ""));
        assert!(!contains("x", ""));
    }

    #[test]
    fn multi_byte_characters_match_whole() {
        assert!(matches("grüß*", "grüße gott"));
        assert!(contains("ö*ö", "öxö"));
        assert!(!contains("ö", "o"));
        assert!(matches("日*語", "日本語"));
    }

    #[test]
    fn a_pathological_pattern_against_a_long_text_gives_the_right_answer() {
        let text = "a".repeat(200_000);
        assert!(!matches("*a*a*a*a*a*a*a*a*a*a*b", &text));
        assert!(!contains("a*a*a*a*a*a*a*a*a*a*b", &text));
        let with_b = format!("{text}b");
        assert!(matches("*a*a*a*a*a*a*a*a*a*a*b", &with_b));
        let pattern = "*a".repeat(1000) + "*b";
        assert!(!matches(&pattern, &text));
    }
}
