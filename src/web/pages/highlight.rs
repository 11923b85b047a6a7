//! The query's words marked in the text of a row: the pieces a template wraps in `<mark>`
//! (askama escapes each piece, so marking never builds markup from event text).

use crate::search::fold_case;

/// `text` cut into (piece, is a match) runs, a match being any of `words` compared as the search
/// compares them (case-folded); overlapping and adjacent matches make one run.
pub(super) fn mark(text: &str, words: &[&str]) -> Vec<(String, bool)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    // Each character folded on its own, so that a match found in the folded text maps back to
    // whole characters of the original (folding may change a character's length).
    let mut folded = String::with_capacity(text.len());
    let mut owner = Vec::with_capacity(text.len());
    for (i, (_, c)) in chars.iter().enumerate() {
        let one = fold_case(c.encode_utf8(&mut [0; 4]));
        owner.extend(std::iter::repeat_n(i, one.len()));
        folded.push_str(&one);
    }
    let mut marked = vec![false; chars.len()];
    for needle in words.iter().map(|w| fold_case(w)).filter(|n| !n.is_empty()) {
        let mut from = 0;
        while let Some(at) = folded.get(from..).and_then(|rest| rest.find(&needle)) {
            let start = from + at;
            let end = start + needle.len();
            marked[owner[start]..=owner[end - 1]].iter_mut().for_each(|m| *m = true);
            from = start + folded[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    let mut pieces: Vec<(String, bool)> = Vec::new();
    for (i, (at, _)) in chars.iter().enumerate() {
        let end = chars.get(i + 1).map_or(text.len(), |(next, _)| *next);
        match pieces.last_mut() {
            Some((piece, m)) if *m == marked[i] => piece.push_str(&text[*at..end]),
            _ => pieces.push((text[*at..end].to_string(), marked[i])),
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(pieces: &[(String, bool)]) -> String {
        pieces.iter().map(|(text, m)| if *m { format!("[{text}]") } else { text.clone() }).collect()
    }

    #[test]
    fn words_are_marked_whatever_their_case_and_overlaps_merge() {
        assert_eq!(shown(&mark("Payment failed: PAYMENT card", &["payment"])), "[Payment] failed: [PAYMENT] card");
        assert_eq!(shown(&mark("card declined twice", &["card declined", "declined twice"])), "[card declined twice]");
        assert_eq!(shown(&mark("aaa", &["aa"])), "[aaa]", "overlapping matches");
        assert_eq!(shown(&mark("ΣΥΣΤΗΜΑ <b>σύστημα</b>", &["συσ", "<b>"])), "[ΣΥΣ]ΤΗΜΑ [<b>]σύστημα</b>");
        assert_eq!(shown(&mark("İstanbul ok", &["ok"])), "İstanbul [ok]", "a character that folds longer");
        assert_eq!(mark("nothing here", &[]), [("nothing here".to_string(), false)]);
        assert!(mark("", &["x"]).is_empty());
    }
}
