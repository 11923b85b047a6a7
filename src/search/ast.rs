//! The syntax tree of a search query: what the parser builds, what the evaluator gives meaning to,
//! and what a store compiles (to SQL, to a CloudWatch filter pattern). Every node carries the
//! [`Span`] of query text it came from, so a compiler can point at what it cannot translate.
//!
//! [`Display`](fmt::Display) prints a tree as query text that parses back to the same tree.

use std::fmt;

use crate::event::Level;

/// Ends a bare word or value: the lexer splits there, and [`Display`](fmt::Display) quotes a
/// text holding one.
pub(crate) fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')'
}

/// A stretch of the query text, in 0-based character (not byte) offsets; `end` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// One node of the tree and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub node: Node,
    pub span: Span,
}

/// What a node tests. `And` and `Or` hold two or more children; parentheses leave no node of
/// their own (they only shape the tree).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every child matches: `a b`, `a AND b`.
    And(Vec<Expr>),
    /// At least one child matches: `a OR b`.
    Or(Vec<Expr>),
    /// The child does not match: `-a`, `NOT a`, `-(a OR b)`. On an event without the field,
    /// `-field:value` therefore matches.
    Not(Box<Expr>),
    /// A bare word or a quoted phrase: a case-insensitive substring of `message`, `*` matching
    /// any run of characters.
    Text(Pattern),
    /// `field:value`, `field:[a,b]`, `field:>N`: a test of one field. An event without the field
    /// never matches.
    Term { field: Field, op: Op },
    /// `has:field`: the field is present and not empty (not `""`, `null`, `[]` or `{}`).
    Has(Field),
}

/// The fields a query can name. Built-in names are case-insensitive; the keys under `extra.` and
/// `user.` are exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    Level,
    /// `type` (the stored event's `kind`).
    Type,
    Code,
    Message,
    Stack,
    Url,
    Location,
    Release,
    /// The user's `id` when `user` is an object, else the string.
    User,
    /// `user.<key>` (a dot path into a `user` object; absent when `user` is a string).
    UserKey(Vec<String>),
    HttpMethod,
    HttpStatus,
    Fingerprint,
    Id,
    Env,
    /// `extra.<dot.path>`, any depth; each element is one object key, exactly as sent.
    Extra(Vec<String>),
    /// The log group the event was read from.
    Group,
}

/// The built-in fields and the names a query writes them with.
pub(crate) const BUILT_IN: [(&str, Field); 15] = [
    ("level", Field::Level),
    ("type", Field::Type),
    ("code", Field::Code),
    ("message", Field::Message),
    ("stack", Field::Stack),
    ("url", Field::Url),
    ("location", Field::Location),
    ("release", Field::Release),
    ("user", Field::User),
    ("http.method", Field::HttpMethod),
    ("http.status", Field::HttpStatus),
    ("fingerprint", Field::Fingerprint),
    ("id", Field::Id),
    ("env", Field::Env),
    ("group", Field::Group),
];

pub(crate) const EXTRA_PREFIX: &str = "extra.";
pub(crate) const USER_PREFIX: &str = "user.";

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, path) = match self {
            Field::Extra(path) => (EXTRA_PREFIX, path),
            Field::UserKey(path) => (USER_PREFIX, path),
            built_in => {
                let name = BUILT_IN.iter().find(|(_, field)| field == built_in).map_or("?", |(name, _)| name);
                return f.write_str(name);
            }
        };
        write!(f, "{prefix}{}", path.join("."))
    }
}

/// How a [`Node::Term`] tests its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equals one of the values (one for `field:value`, several for `field:[a,b,c]`).
    AnyOf(Vec<Value>),
    /// `>`, `>=`, `<`, `<=`: only a numeric field value (or the level, for `level:`) can match.
    Compare(Comparison, Bound),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
        }
    }

    /// Whether `left <op> right` holds.
    pub fn holds<T: PartialOrd>(self, left: &T, right: &T) -> bool {
        match self {
            Comparison::Greater => left > right,
            Comparison::GreaterOrEqual => left >= right,
            Comparison::Less => left < right,
            Comparison::LessOrEqual => left <= right,
        }
    }
}

/// The right-hand side of a comparison: a level for `level:`, a number for every other field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    Level(Level),
}

/// One value of `field:value` or `field:[...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub pattern: Pattern,
    /// The value as a number when it is one (`502`, `-1.5`, no wildcard): it then equals a numeric
    /// field value numerically (`502` equals `502.0`). It compares as text with a text field value.
    pub number: Option<f64>,
    pub span: Span,
}

/// Text in which every `*` stands for any run of characters (there is no escape for `*`: it
/// matches a literal `*` too). Matching is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    folded: String,
}

impl Pattern {
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let folded = super::fold_case(&text);
        Pattern { text, folded }
    }

    /// As written (after the quote escapes are resolved).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Lower-cased: what matching compares.
    pub fn folded(&self) -> &str {
        &self.folded
    }

    pub fn has_wildcard(&self) -> bool {
        self.text.contains(super::wildcard::WILDCARD)
    }

    /// The literal pieces between the wildcards (`a*b` → `a`, `b`; `*a*` → ``, `a`, ``).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.text.split(super::wildcard::WILDCARD)
    }
}

// Printing: the inverse of the lexer's rules, quoting only where the bare form would lex differently.

const OPERATORS: [&str; 3] = ["AND", "OR", "NOT"];

/// A bare word lexes back as the same word: no delimiter, quote or colon, no leading `-`, not an
/// operator.
fn bare_word_ok(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with('-')
        && !OPERATORS.contains(&text)
        && !text.chars().any(|c| is_delimiter(c) || c == '"' || c == ':')
}

/// A bare value after `field:` runs to the next delimiter and must not start like a list,
/// a comparison or a quote.
fn bare_value_ok(text: &str) -> bool {
    !text.is_empty() && !text.starts_with(['[', '>', '<']) && !text.chars().any(|c| is_delimiter(c) || c == '"')
}

/// An item of `[...]` runs to the next `,` or `]` (parentheses are plain characters there).
fn bare_item_ok(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c == '"' || c == ',' || c == ']')
}

fn write_text(f: &mut fmt::Formatter<'_>, text: &str, bare: bool) -> fmt::Result {
    if bare {
        return f.write_str(text);
    }
    f.write_str("\"")?;
    for c in text.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

fn write_number(f: &mut fmt::Formatter<'_>, number: f64) -> fmt::Result {
    // Rust prints the shortest text that parses back to the same f64, never in exponent form.
    write!(f, "{number}")
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Node::And(children) => write_joined(f, children, " ", |child| matches!(child, Node::And(_) | Node::Or(_))),
            // `a OR b c` already means `a OR (b c)`: only a nested `Or` needs its parentheses.
            Node::Or(children) => write_joined(f, children, " OR ", |child| matches!(child, Node::Or(_))),
            Node::Not(child) => {
                f.write_str("-")?;
                write_child(f, child, matches!(child.node, Node::And(_) | Node::Or(_)))
            }
            Node::Text(pattern) => write_text(f, pattern.as_str(), bare_word_ok(pattern.as_str())),
            Node::Has(field) => write!(f, "has:{field}"),
            Node::Term { field, op } => {
                write!(f, "{field}:")?;
                match op {
                    Op::AnyOf(values) => match values.as_slice() {
                        [one] => write_text(f, one.pattern.as_str(), bare_value_ok(one.pattern.as_str())),
                        many => {
                            f.write_str("[")?;
                            for (i, value) in many.iter().enumerate() {
                                if i > 0 {
                                    f.write_str(",")?;
                                }
                                write_text(f, value.pattern.as_str(), bare_item_ok(value.pattern.as_str()))?;
                            }
                            f.write_str("]")
                        }
                    },
                    Op::Compare(comparison, bound) => {
                        f.write_str(comparison.as_str())?;
                        match bound {
                            Bound::Number(number) => write_number(f, *number),
                            Bound::Level(level) => f.write_str(level.as_str()),
                        }
                    }
                }
            }
        }
    }
}

fn write_joined(
    f: &mut fmt::Formatter<'_>,
    children: &[Expr],
    separator: &str,
    needs_parens: impl Fn(&Node) -> bool,
) -> fmt::Result {
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        write_child(f, child, needs_parens(&child.node))?;
    }
    Ok(())
}

fn write_child(f: &mut fmt::Formatter<'_>, child: &Expr, parens: bool) -> fmt::Result {
    if parens { write!(f, "({child})") } else { write!(f, "{child}") }
}
