//! Cuts query text into tokens, each with its character position: parentheses, the operators
//! (`AND`, `OR`, `NOT`, a leading `-`), words and phrases, and `name:value` terms with their
//! value already split (quoted, a `[...]` list, or a comparison). What the names and values mean
//! is the parser's business.

use super::QueryError;
use super::ast::{Comparison, Span, is_delimiter};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Open,
    Close,
    And,
    Or,
    /// `NOT`, or `-` directly before a term.
    Not,
    /// A bare word or a quoted phrase.
    Text(String),
    /// `name:value`. A value that does not lex (nothing after the `:`, an unclosed quote) is reported once the
    /// name is known good: `TypeError: x` is wrong first of all at its name. Lexing stops there.
    Field {
        name: String,
        name_at: usize,
        value: Result<RawValue, QueryError>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawValue {
    /// `name:value` or `name:"value"`.
    One(Piece),
    /// `name:[a, "b c"]`: one or more pieces.
    List(Vec<Piece>),
    /// `name:>N`: the text after the operator (possibly empty).
    Compare(Comparison, Piece),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    pub text: String,
    pub quoted: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub token: Token,
    pub span: Span,
}

/// The tokens of `chars`; lexing stops at the first error, which comes after the tokens before it
/// so that the parser reports whichever mistake comes first in the text.
pub(crate) fn tokens(chars: &[char]) -> (Vec<Spanned>, Option<QueryError>) {
    let mut lexer = Lexer { chars, at: 0 };
    let mut tokens = Vec::new();
    loop {
        match lexer.next() {
            Ok(Some(token)) => {
                let value_failed = matches!(token.token, Token::Field { value: Err(_), .. });
                tokens.push(token);
                if value_failed {
                    return (tokens, None);
                }
            }
            Ok(None) => return (tokens, None),
            Err(error) => return (tokens, Some(error)),
        }
    }
}

struct Lexer<'a> {
    chars: &'a [char],
    at: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.at + offset).copied()
    }

    fn next(&mut self) -> Result<Option<Spanned>, QueryError> {
        self.skip_spaces();
        let start = self.at;
        let Some(c) = self.peek() else { return Ok(None) };
        let token = match c {
            '(' => {
                self.at += 1;
                Token::Open
            }
            ')' => {
                self.at += 1;
                Token::Close
            }
            '"' => Token::Text(self.quoted(true)?),
            // `-` negates what follows it directly; alone (`a - b`) it is a word.
            '-' if self.peek_at(1).is_some_and(|next| !next.is_whitespace() && next != ')') => {
                self.at += 1;
                Token::Not
            }
            _ => self.word_or_field()?,
        };
        Ok(Some(Spanned { token, span: Span { start, end: self.at } }))
    }

    /// A bare run up to a delimiter; stopped by a `:`, it is a field name and a value follows.
    fn word_or_field(&mut self) -> Result<Token, QueryError> {
        let start = self.at;
        let word = self.run(|c| is_delimiter(c) || c == ':');
        if self.peek() != Some(':') {
            return Ok(match word.as_str() {
                "AND" => Token::And,
                "OR" => Token::Or,
                "NOT" => Token::Not,
                _ => Token::Text(word),
            });
        }
        if word.is_empty() {
            return Err(QueryError::new("a field name is missing before `:`", start));
        }
        self.at += 1;
        let value = self.value(&word);
        Ok(Token::Field { name: word, name_at: start, value })
    }

    fn value(&mut self, name: &str) -> Result<RawValue, QueryError> {
        let start = self.at;
        match self.peek() {
            None => Err(missing_value(name, start)),
            Some(c) if is_delimiter(c) => Err(missing_value(name, start)),
            Some('"') => {
                let text = self.quoted(false)?;
                Ok(RawValue::One(Piece { text, quoted: true, span: Span { start, end: self.at } }))
            }
            Some('[') => self.list(name),
            Some(c @ ('>' | '<')) => {
                self.at += 1;
                let or_equal = self.peek() == Some('=');
                if or_equal {
                    self.at += 1;
                }
                let comparison = match (c, or_equal) {
                    ('>', false) => Comparison::Greater,
                    ('>', true) => Comparison::GreaterOrEqual,
                    (_, false) => Comparison::Less,
                    (_, true) => Comparison::LessOrEqual,
                };
                let bound_at = self.at;
                let text = self.run(is_delimiter);
                Ok(RawValue::Compare(
                    comparison,
                    Piece { text, quoted: false, span: Span { start: bound_at, end: self.at } },
                ))
            }
            Some(_) => {
                let text = self.run(is_delimiter);
                Ok(RawValue::One(Piece { text, quoted: false, span: Span { start, end: self.at } }))
            }
        }
    }

    /// `[a, "b c", d]`: items are bare (up to `,` or `]`) or quoted, with spaces allowed around.
    fn list(&mut self, name: &str) -> Result<RawValue, QueryError> {
        let open = self.at;
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_spaces();
            let start = self.at;
            let item = match self.peek() {
                None => return Err(QueryError::new("this `[` is never closed", open)),
                Some('"') => {
                    let text = self.quoted(false)?;
                    Piece { text, quoted: true, span: Span { start, end: self.at } }
                }
                Some(_) => {
                    let text = self.run(|c| c.is_whitespace() || c == ',' || c == ']');
                    if text.is_empty() {
                        return Err(QueryError::new(format!("an empty value in the list of `{name}:`"), start));
                    }
                    Piece { text, quoted: false, span: Span { start, end: self.at } }
                }
            };
            items.push(item);
            self.skip_spaces();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(']') => {
                    self.at += 1;
                    return Ok(RawValue::List(items));
                }
                None => return Err(QueryError::new("this `[` is never closed", open)),
                Some(_) => return Err(QueryError::new("expected `,` or `]` in the list", self.at)),
            }
        }
    }

    /// A quoted string starting at the `"` under the cursor; `\"` and `\\` are the escapes (any
    /// other backslash is kept as written). A phrase or value may not be empty.
    fn quoted(&mut self, phrase: bool) -> Result<String, QueryError> {
        let open = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(QueryError::new("this quote is never closed", open)),
                Some('"') => {
                    self.at += 1;
                    break;
                }
                Some('\\') if matches!(self.peek_at(1), Some('"' | '\\')) => {
                    text.extend(self.peek_at(1));
                    self.at += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
        if text.is_empty() {
            let what = if phrase { "an empty phrase" } else { "an empty value" };
            return Err(QueryError::new(what, open));
        }
        Ok(text)
    }

    fn run(&mut self, stop: impl Fn(char) -> bool) -> String {
        let start = self.at;
        while self.peek().is_some_and(|c| !stop(c)) {
            self.at += 1;
        }
        self.chars.get(start..self.at).unwrap_or_default().iter().collect()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }
}

fn missing_value(name: &str, at: usize) -> QueryError {
    QueryError::new(format!("a value is missing after `{name}:`"), at)
}
