//! Builds the syntax tree from the tokens by recursive descent, one function per precedence level
//! (`OR` < `AND` and adjacency < `NOT`/`-` < parentheses), resolving field names and values on the
//! way, and holding a query to the size limits so that no query can make a search expensive.

use super::ast::{BUILT_IN, Bound, Comparison, EXTRA_PREFIX, Expr, Field, Node, Op, Pattern, Span, USER_PREFIX, Value};
use super::lexer::{self, Piece, RawValue, Spanned, Token};
use super::wildcard::WILDCARD;
use super::{MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS, QueryError};
use crate::event::Level;

/// The tree of `text`, or `None` when it has no term at all (blank).
pub(crate) fn parse(text: &str) -> Result<Option<Expr>, QueryError> {
    if text.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(QueryError::new(format!("the query is longer than {MAX_QUERY_CHARS} characters"), MAX_QUERY_CHARS));
    }
    let chars: Vec<char> = text.chars().collect();
    let (tokens, lex_error) = lexer::tokens(&chars);
    let mut parser = Parser { tokens, lex_error, at: 0, depth: 0, terms: 0 };
    if parser.peek()?.is_none() {
        return Ok(None);
    }
    let expr = parser.or()?;
    match parser.peek()? {
        None => Ok(Some(expr)),
        // `or` consumes everything else it can meet; what stops it at the top is a stray `)`.
        Some(spanned) => Err(QueryError::new("this `)` has no `(`", spanned.span.start)),
    }
}

struct Parser {
    tokens: Vec<Spanned>,
    /// Where lexing stopped, reported when parsing gets there.
    lex_error: Option<QueryError>,
    at: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Result<Option<&Spanned>, QueryError> {
        match (self.tokens.get(self.at), &self.lex_error) {
            (Some(spanned), _) => Ok(Some(spanned)),
            (None, Some(error)) => Err(error.clone()),
            (None, None) => Ok(None),
        }
    }

    fn advance(&mut self) -> Result<Spanned, QueryError> {
        let spanned = self.peek()?.cloned().ok_or_else(|| QueryError::new("a term is expected here", self.end()))?;
        self.at += 1;
        Ok(spanned)
    }

    fn end(&self) -> usize {
        self.tokens.last().map_or(0, |last| last.span.end)
    }

    /// An operator at `op` must be followed by something a term can start with.
    fn expect_operand(&self, name: &str, op: Span) -> Result<(), QueryError> {
        match self.peek()?.map(|spanned| &spanned.token) {
            None | Some(Token::Close | Token::And | Token::Or) => {
                Err(QueryError::new(format!("`{name}` needs a term after it"), op.start))
            }
            Some(_) => Ok(()),
        }
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut children = vec![self.and()?];
        while let Some(Spanned { token: Token::Or, span }) = self.peek()? {
            let span = *span;
            self.at += 1;
            self.expect_operand("OR", span)?;
            children.push(self.and()?);
        }
        Ok(combine(children, Node::Or))
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut children = vec![self.unary()?];
        loop {
            match self.peek()? {
                Some(Spanned { token: Token::And, span }) => {
                    let span = *span;
                    self.at += 1;
                    self.expect_operand("AND", span)?;
                }
                Some(Spanned { token: Token::Open | Token::Not | Token::Text(_) | Token::Field { .. }, .. }) => {}
                None | Some(Spanned { token: Token::Close | Token::Or, .. }) => break,
            }
            children.push(self.unary()?);
        }
        Ok(combine(children, Node::And))
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        let Some(Spanned { token: Token::Not, span }) = self.peek()? else {
            return self.primary();
        };
        let span = *span;
        self.at += 1;
        let name = if span.end - span.start == 1 { "-" } else { "NOT" };
        self.expect_operand(name, span)?;
        self.deeper(span.start)?;
        let child = self.unary()?;
        self.depth -= 1;
        Ok(Expr { span: Span { start: span.start, end: child.span.end }, node: Node::Not(Box::new(child)) })
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let Spanned { token, span } = self.advance()?;
        match token {
            Token::Open => {
                match self.peek()? {
                    Some(Spanned { token: Token::Close, .. }) => {
                        return Err(QueryError::new("these parentheses are empty", span.start));
                    }
                    None => return Err(QueryError::new("this `(` is never closed", span.start)),
                    Some(_) => {}
                }
                self.deeper(span.start)?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.peek()? {
                    Some(Spanned { token: Token::Close, .. }) => {
                        self.at += 1;
                        Ok(inner)
                    }
                    _ => Err(QueryError::new("this `(` is never closed", span.start)),
                }
            }
            Token::Close => Err(QueryError::new("this `)` has no `(`", span.start)),
            Token::And => Err(QueryError::new("`AND` needs a term before it", span.start)),
            Token::Or => Err(QueryError::new("`OR` needs a term before it", span.start)),
            // `unary` takes every `NOT`; kept total rather than unreachable.
            Token::Not => Err(QueryError::new("`NOT` needs a term after it", span.start)),
            Token::Text(text) => {
                self.count_terms(1, span.start)?;
                Ok(Expr { node: Node::Text(Pattern::new(text)), span })
            }
            Token::Field { name, name_at, value } => Ok(Expr { node: self.field_term(&name, name_at, value)?, span }),
        }
    }

    fn deeper(&mut self, at: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::new(format!("the query nests deeper than {MAX_DEPTH} levels"), at));
        }
        Ok(())
    }

    fn count_terms(&mut self, count: usize, at: usize) -> Result<(), QueryError> {
        self.terms += count;
        if self.terms > MAX_TERMS {
            return Err(QueryError::new(format!("the query has more than {MAX_TERMS} terms"), at));
        }
        Ok(())
    }

    fn field_term(
        &mut self,
        name: &str,
        name_at: usize,
        value: Result<RawValue, QueryError>,
    ) -> Result<Node, QueryError> {
        if name.eq_ignore_ascii_case("has") {
            self.count_terms(1, name_at)?;
            return match value? {
                RawValue::One(Piece { text, quoted: false, span }) => Ok(Node::Has(resolve_field(&text, span.start)?)),
                // Right after `has:`: what follows is not a bare field name.
                _ => Err(QueryError::new("`has:` takes one field name, without quotes", name_at + name.len() + 1)),
            };
        }
        let field = resolve_field(name, name_at)?;
        let op = match value? {
            RawValue::One(piece) => {
                self.count_terms(1, name_at)?;
                Op::AnyOf(vec![value_of(&field, piece)])
            }
            RawValue::List(pieces) => {
                self.count_terms(pieces.len(), name_at)?;
                Op::AnyOf(pieces.into_iter().map(|piece| value_of(&field, piece)).collect())
            }
            RawValue::Compare(comparison, piece) => {
                self.count_terms(1, name_at)?;
                Op::Compare(comparison, bound_of(&field, comparison, &piece)?)
            }
        };
        Ok(Node::Term { field, op })
    }
}

/// One child stands alone; two or more are joined under `node`.
fn combine(mut children: Vec<Expr>, node: fn(Vec<Expr>) -> Node) -> Expr {
    match (children.first(), children.last()) {
        (Some(first), Some(last)) if children.len() > 1 => {
            let span = Span { start: first.span.start, end: last.span.end };
            Expr { node: node(children), span }
        }
        _ => children.pop().unwrap_or(Expr { node: node(Vec::new()), span: Span::default() }),
    }
}

/// The field a name stands for: a built-in (any case), or a dot path under `extra.` or `user.`.
fn resolve_field(name: &str, at: usize) -> Result<Field, QueryError> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, field)) = BUILT_IN.iter().find(|(built_in, _)| *built_in == lower) {
        return Ok(field.clone());
    }
    for prefix in [EXTRA_PREFIX, USER_PREFIX] {
        // The prefixes are ASCII, so lower-casing kept their byte length.
        let Some(path) = lower.starts_with(prefix).then(|| name.get(prefix.len()..)).flatten() else {
            continue;
        };
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        if keys.iter().any(String::is_empty) {
            return Err(QueryError::new(format!("`{name}` has an empty key: write {prefix}key or {prefix}a.b"), at));
        }
        return Ok(if prefix == EXTRA_PREFIX { Field::Extra(keys) } else { Field::UserKey(keys) });
    }
    Err(QueryError::new(
        format!(
            "unknown field `{name}`; the fields are {}, user.<key> and extra.<key>",
            BUILT_IN.iter().map(|(built_in, _)| *built_in).collect::<Vec<_>>().join(", ")
        ),
        at,
    ))
}

/// A value of `field:value`; a level is written in its stored form (`WARNING` → `warn`).
fn value_of(field: &Field, piece: Piece) -> Value {
    let level =
        (*field == Field::Level && !piece.text.contains(WILDCARD)).then(|| piece.text.parse::<Level>().ok()).flatten();
    let pattern = match level {
        Some(level) => Pattern::new(level.as_str()),
        None => Pattern::new(piece.text),
    };
    let number = if pattern.has_wildcard() { None } else { number(pattern.as_str()) };
    Value { pattern, number, span: piece.span }
}

fn bound_of(field: &Field, comparison: Comparison, piece: &Piece) -> Result<Bound, QueryError> {
    if *field == Field::Level {
        return piece.text.parse::<Level>().map(Bound::Level).map_err(|_| {
            QueryError::new("`level:` compares with a level: debug, info, warn, error or fatal", piece.span.start)
        });
    }
    number(&piece.text).map(Bound::Number).ok_or_else(|| {
        QueryError::new(format!("a number is expected after `{}`", comparison.as_str()), piece.span.start)
    })
}

/// `12`, `-3`, `2.5`: plain decimal notation only (no `1e3`, `inf` or `0x1f`, which `f64` would
/// take and a store might not).
fn number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(whole) && all_digits(fraction)) {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{error, shape};
    use super::super::{MAX_DEPTH, MAX_QUERY_CHARS, MAX_TERMS, Query};
    use super::*;

    fn at(query: &str) -> (usize, String) {
        let error = error(query);
        (error.position, error.message)
    }

    #[test]
    fn or_binds_loosest_then_and_then_not() {
        assert_eq!(shape("a OR b c"), r#"(or "a" (and "b" "c"))"#);
        assert_eq!(shape("a b OR c"), r#"(or (and "a" "b") "c")"#);
        assert_eq!(shape("a AND b OR c AND d"), r#"(or (and "a" "b") (and "c" "d"))"#);
        assert_eq!(shape("a OR b OR c"), r#"(or "a" "b" "c")"#);
        assert_eq!(shape("NOT a b"), r#"(and (not "a") "b")"#);
        assert_eq!(shape("-a b"), r#"(and (not "a") "b")"#);
        assert_eq!(shape("NOT a OR b"), r#"(or (not "a") "b")"#);
        assert_eq!(shape("a -b NOT c"), r#"(and "a" (not "b") (not "c"))"#);
        assert_eq!(shape("NOT -a"), r#"(not (not "a"))"#);
    }

    #[test]
    fn parentheses_group_and_negate_as_one() {
        assert_eq!(shape("-(a OR b)"), r#"(not (or "a" "b"))"#);
        assert_eq!(shape("NOT (a b)"), r#"(not (and "a" "b"))"#);
        assert_eq!(shape("(a OR b) c"), r#"(and (or "a" "b") "c")"#);
        assert_eq!(shape("((a))"), r#""a""#);
        assert_eq!(shape("(level:error OR level:fatal)"), r#"(or (level = "error") (level = "fatal"))"#);
        assert_eq!(shape("-level:error"), r#"(not (level = "error"))"#);
        assert_eq!(shape(r#"-"card declined""#), r#"(not "card declined")"#);
    }

    #[test]
    fn lower_case_operators_and_a_lone_dash_are_words() {
        assert_eq!(shape("a or b and c not d"), r#"(and "a" "or" "b" "and" "c" "not" "d")"#);
        assert_eq!(shape("Or And Not"), r#"(and "Or" "And" "Not")"#);
        assert_eq!(shape("a - b"), r#"(and "a" "-" "b")"#);
        assert_eq!(shape("foo-bar"), r#""foo-bar""#);
        assert_eq!(shape("(a -)"), r#"(and "a" "-")"#);
    }

    #[test]
    fn phrases_keep_spaces_operators_and_escaped_quotes() {
        assert_eq!(shape(r#""card declined""#), r#""card declined""#);
        assert_eq!(shape(r#""a OR (b) c:d""#), r#""a OR (b) c:d""#);
        assert_eq!(shape(r#""say \"hi\"""#), r#""say \"hi\"""#);
        assert_eq!(shape(r#""back\\slash""#), r#""back\\slash""#);
        // Only `\"` and `\\` are escapes; any other backslash stays as typed.
        assert_eq!(shape(r#""a\nb""#), r#""a\\nb""#);
        assert_eq!(shape(r#""ends with \\""#), r#""ends with \\""#);
        // A quote inside a bare word is a plain character.
        assert_eq!(shape(r#"it"s"#), r#""it\"s""#);
        assert_eq!(shape(r#""a"b"#), r#"(and "a" "b")"#);
        assert_eq!(shape(r#"message:"two words" env:"prod""#), r#"(and (message = "two words") (env = "prod"))"#);
        assert_eq!(shape(r#"url:"a \"q\"""#), r#"(url = "a \"q\"")"#);
    }

    #[test]
    fn field_names_are_case_insensitive_but_keys_under_extra_and_user_are_exact() {
        assert_eq!(shape("LEVEL:error"), r#"(level = "error")"#);
        assert_eq!(shape("Http.Status:502"), r#"(http.status = "502")"#);
        assert_eq!(shape("TYPE:TypeError"), r#"(type = "TypeError")"#);
        assert_eq!(shape("EXTRA.Order.ID:1"), r#"(extra.Order.ID = "1")"#);
        assert_eq!(shape("User.Email:x"), r#"(user.Email = "x")"#);
        assert_eq!(shape("user:x"), r#"(user = "x")"#);
        assert_eq!(shape("Has:STACK"), "(has stack)");
        assert_eq!(shape("has:extra.a.b"), "(has extra.a.b)");
        let Some(Expr { node: Node::Term { field, .. }, .. }) =
            Query::parse("extra.a.b.c:1").expect("parses").root().cloned()
        else {
            panic!("not a term")
        };
        assert_eq!(field, Field::Extra(vec!["a".into(), "b".into(), "c".into()]));
    }

    #[test]
    fn a_value_runs_to_the_next_space_or_parenthesis_and_may_hold_colons() {
        assert_eq!(shape("url:http://x.test:8080/a"), r#"(url = "http://x.test:8080/a")"#);
        assert_eq!(shape("(env:prod)"), r#"(env = "prod")"#);
        assert_eq!(shape("extra.n:-5"), r#"(extra.n = "-5")"#);
        assert_eq!(shape("code:a,b"), r#"(code = "a,b")"#);
        assert_eq!(shape(r#"url:">5""#), r#"(url = ">5")"#);
    }

    #[test]
    fn lists_take_bare_and_quoted_values_with_spaces_around() {
        assert_eq!(shape("level:[error,fatal]"), r#"(level = "error" | "fatal")"#);
        assert_eq!(shape(r#"code:[ a , "b, c" ,d(e)]"#), r#"(code = "a" | "b, c" | "d(e)")"#);
        assert_eq!(shape("env:[prod]x"), r#"(and (env = "prod") "x")"#);
    }

    #[test]
    fn level_values_are_written_in_their_stored_form() {
        assert_eq!(shape("level:WARNING"), r#"(level = "warn")"#);
        assert_eq!(shape("level:[crit,err]"), r#"(level = "fatal" | "error")"#);
        assert_eq!(shape("level:e*"), r#"(level = "e*")"#);
        assert_eq!(shape("level:loud"), r#"(level = "loud")"#);
        assert_eq!(shape("level:>=Warning"), "(level >= warn)");
    }

    #[test]
    fn comparisons_take_a_plain_decimal_number() {
        assert_eq!(shape("http.status:>=500"), "(http.status >= 500)");
        assert_eq!(shape("extra.duration_ms:>2000"), "(extra.duration_ms > 2000)");
        assert_eq!(shape("extra.x:<-1.5"), "(extra.x < -1.5)");
        assert_eq!(shape("extra.x:<=0"), "(extra.x <= 0)");
    }

    #[test]
    fn a_value_that_is_a_number_carries_it() {
        let number = |query: &str| match Query::parse(query).expect("parses").root().map(|root| root.node.clone()) {
            Some(Node::Term { op: Op::AnyOf(values), .. }) => values.first().and_then(|value| value.number),
            other => panic!("not a term: {other:?}"),
        };
        assert_eq!(number("http.status:502"), Some(502.0));
        assert_eq!(number(r#"http.status:"502""#), Some(502.0));
        assert_eq!(number("extra.n:-0.5"), Some(-0.5));
        assert_eq!(number("extra.n:5*"), None);
        assert_eq!(number("extra.n:1e3"), None);
        assert_eq!(number("extra.n:inf"), None);
        assert_eq!(number("extra.n:.5"), None);
        assert_eq!(number("extra.n:5."), None);
        assert_eq!(number("extra.n:0x1f"), None);
    }

    #[test]
    fn every_node_knows_where_it_was_written() {
        let query = Query::parse(r#"level:error  -"x y" OR é"#).expect("parses");
        let root = query.root().expect("a tree");
        assert_eq!(root.span, Span { start: 0, end: 24 });
        let Node::Or(children) = &root.node else { panic!("not an or") };
        assert_eq!(children.first().map(|c| c.span), Some(Span { start: 0, end: 19 }));
        assert_eq!(children.get(1).map(|c| c.span), Some(Span { start: 23, end: 24 }));
        let Some(Node::And(terms)) = children.first().map(|c| &c.node) else { panic!("not an and") };
        assert_eq!(
            terms.iter().map(|t| t.span).collect::<Vec<_>>(),
            [Span { start: 0, end: 11 }, Span { start: 13, end: 19 }]
        );
        let Some(Node::Not(phrase)) = terms.get(1).map(|t| &t.node) else { panic!("not a not") };
        assert_eq!(phrase.span, Span { start: 14, end: 19 });
    }

    #[test]
    fn an_unclosed_quote_is_reported_at_the_quote() {
        assert_eq!(at(r#""unclosed"#).0, 0);
        assert_eq!(at(r#"a "b"#), (2, "this quote is never closed".into()));
        assert_eq!(at(r#"level:"x"#).0, 6);
        assert_eq!(at(r#""ends in an escaped quote\""#).0, 0);
        assert_eq!(at(r#"code:[a, "b]"#).0, 9);
    }

    #[test]
    fn an_unclosed_or_unmatched_parenthesis_is_reported_at_it() {
        assert_eq!(at("(a"), (0, "this `(` is never closed".into()));
        assert_eq!(at("a (b (c)"), (2, "this `(` is never closed".into()));
        assert_eq!(at("a ("), (2, "this `(` is never closed".into()));
        assert_eq!(at("a ( "), (2, "this `(` is never closed".into()));
        assert_eq!(at("a)"), (1, "this `)` has no `(`".into()));
        assert_eq!(at(")"), (0, "this `)` has no `(`".into()));
        assert_eq!(at("(a)) b"), (3, "this `)` has no `(`".into()));
        assert_eq!(at("a ()"), (2, "these parentheses are empty".into()));
    }

    #[test]
    fn an_operator_without_its_term_is_reported_at_the_operator() {
        assert_eq!(at("a OR"), (2, "`OR` needs a term after it".into()));
        assert_eq!(at("(a OR) b"), (3, "`OR` needs a term after it".into()));
        assert_eq!(at("a OR OR b"), (2, "`OR` needs a term after it".into()));
        assert_eq!(at("a OR AND b"), (2, "`OR` needs a term after it".into()));
        assert_eq!(at("OR a"), (0, "`OR` needs a term before it".into()));
        assert_eq!(at("a (OR b)"), (3, "`OR` needs a term before it".into()));
        assert_eq!(at("a AND"), (2, "`AND` needs a term after it".into()));
        assert_eq!(at("AND a"), (0, "`AND` needs a term before it".into()));
        assert_eq!(at("a NOT"), (2, "`NOT` needs a term after it".into()));
        assert_eq!(at("NOT OR a"), (0, "`NOT` needs a term after it".into()));
        assert_eq!(at("a -OR b"), (2, "`-` needs a term after it".into()));
    }

    #[test]
    fn an_unknown_field_is_reported_at_its_name() {
        let (position, message) = at("payment foo:bar");
        assert_eq!(position, 8);
        assert!(message.starts_with("unknown field `foo`; the fields are level, type,"), "{message}");
        assert_eq!(at("a -Level.x:1").0, 3);
        assert_eq!(at("extra:1").0, 0);
        assert_eq!(at("http:1").0, 0);
        assert_eq!(at("TypeError: undefined").0, 0);
        assert_eq!(at("has:nope").0, 4);
        assert_eq!(at(":x"), (0, "a field name is missing before `:`".into()));
        assert_eq!(at("a extra.:1"), (2, "`extra.` has an empty key: write extra.key or extra.a.b".into()));
        assert_eq!(at("extra.a..b:1").0, 0);
        assert_eq!(at("user.a.:1").0, 0);
    }

    #[test]
    fn a_comparison_without_a_number_is_reported_at_the_bound() {
        assert_eq!(at("http.status:>abc"), (13, "a number is expected after `>`".into()));
        assert_eq!(at("http.status:>"), (13, "a number is expected after `>`".into()));
        assert_eq!(at("extra.n:>=1e3"), (10, "a number is expected after `>=`".into()));
        assert_eq!(at("extra.n:<"), (9, "a number is expected after `<`".into()));
        assert_eq!(at("(extra.n:<=)"), (11, "a number is expected after `<=`".into()));
        assert_eq!(at("level:>5").0, 7);
        assert_eq!(at("level:>=loud"), (8, "`level:` compares with a level: debug, info, warn, error or fatal".into()));
    }

    #[test]
    fn an_empty_value_is_reported_where_the_value_should_be() {
        assert_eq!(at("level:"), (6, "a value is missing after `level:`".into()));
        assert_eq!(at("level: error"), (6, "a value is missing after `level:`".into()));
        assert_eq!(at("(level:)"), (7, "a value is missing after `level:`".into()));
        assert_eq!(at(r#"level:"""#), (6, "an empty value".into()));
        assert_eq!(at(r#"a """#), (2, "an empty phrase".into()));
        assert_eq!(at("code:[]"), (6, "an empty value in the list of `code:`".into()));
        assert_eq!(at("code:[a,,b]").0, 8);
        assert_eq!(at("code:[a, ]").0, 9);
        assert_eq!(at("has:"), (4, "a value is missing after `has:`".into()));
    }

    #[test]
    fn a_malformed_list_or_has_is_reported_at_the_mistake() {
        assert_eq!(at("code:[a,b"), (5, "this `[` is never closed".into()));
        assert_eq!(at("code:[a b]"), (8, "expected `,` or `]` in the list".into()));
        assert_eq!(at("has:[stack]"), (4, "`has:` takes one field name, without quotes".into()));
        assert_eq!(at(r#"has:"stack""#).0, 4);
        assert_eq!(at("has:>1").0, 4);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(at(r#"é "x"#).0, 2);
        assert_eq!(at("日本語 nope:1").0, 4);
        assert_eq!(at("ü)").0, 1);
    }

    #[test]
    fn the_first_mistake_in_the_text_is_the_one_reported() {
        assert_eq!(at(r#"foo:1 "unclosed"#).0, 0);
        assert_eq!(at(r#") "x"#).0, 0);
        assert_eq!(at(r#"a OR "x"#), (5, "this quote is never closed".into()));
        // A bad name comes before its bad value.
        assert_eq!(at(r#"foo:"x"#).0, 0);
        assert_eq!(at("foo:[a"), (0, at("foo:1").1));
        assert_eq!(at("foo:"), (0, at("foo:1").1));
        assert_eq!(at(r#"level:"x"#).0, 6);
    }

    #[test]
    fn an_over_long_query_is_refused_at_the_limit() {
        let query = "a ".repeat(MAX_QUERY_CHARS / 2) + "b";
        assert_eq!(at(&query), (MAX_QUERY_CHARS, format!("the query is longer than {MAX_QUERY_CHARS} characters")));
        let longest = "é".repeat(MAX_QUERY_CHARS);
        assert!(Query::parse(&longest).is_ok(), "the limit counts characters");
    }

    #[test]
    fn too_many_terms_are_refused_at_the_first_one_over() {
        let query = "a ".repeat(MAX_TERMS + 1);
        assert_eq!(at(&query), (MAX_TERMS * 2, format!("the query has more than {MAX_TERMS} terms")));
        assert!(Query::parse(&"a ".repeat(MAX_TERMS)).is_ok());
        let list = format!("code:[{}]", vec!["x"; MAX_TERMS + 1].join(","));
        assert_eq!(at(&list).0, 0);
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_at_the_first_level_over() {
        let deep = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(Query::parse(&deep(MAX_DEPTH)).is_ok());
        assert_eq!(at(&deep(MAX_DEPTH + 1)), (MAX_DEPTH, format!("the query nests deeper than {MAX_DEPTH} levels")));
        let negations = "-".repeat(MAX_DEPTH + 1) + "a";
        assert_eq!(at(&negations).0, MAX_DEPTH);
        let mixed = "NOT (".repeat(MAX_DEPTH) + "a" + &")".repeat(MAX_DEPTH);
        assert_eq!(at(&mixed).0, MAX_DEPTH / 2 * 5);
        assert!(Query::parse(&("-".repeat(MAX_QUERY_CHARS - 1) + "a")).is_err());
    }
}
