//! Topic conditions (`'a' in topics && ('b' in topics || !('c' in topics))`), docs/protocols.md,
//! "Topics: conditions".
//!
//! FCM evaluates parenthesised sub-expressions first and then the expression from left to
//! right, with `&&` and `||` on equal footing: `A || B && C` means `(A || B) && C`. The parser
//! builds exactly that tree, so evaluation here matches the service.

use std::fmt;

use crate::ValidationError;
use crate::legacy::limits::is_valid_topic_name;

/// Most topics one condition may name.
pub const MAX_CONDITION_TOPICS: usize = 5;
/// Deepest nesting of `!` and `(` a condition may have. The parser and the tree it builds
/// recurse once per level, so without a bound a body of a million `(` overflows the stack
/// of the thread parsing it and aborts the whole process; five topics need far fewer.
pub const MAX_CONDITION_DEPTH: usize = 32;

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `'name' in topics`.
    Topic(String),
    /// `!x`.
    Not(Box<Condition>),
    /// `x && y`.
    And(Box<Condition>, Box<Condition>),
    /// `x || y`.
    Or(Box<Condition>, Box<Condition>),
}

impl Condition {
    /// Parses and checks a condition: grammar, topic names, at most five topics.
    pub fn parse(text: &str) -> Result<Condition, ValidationError> {
        let mut parser = Parser {
            text,
            tokens: tokenize(text)?,
            pos: 0,
            depth: 0,
            topics: 0,
        };
        let condition = parser.expression()?;
        if let Some(token) = parser.tokens.get(parser.pos) {
            return Err(parser.error_at(token.at, "unexpected text after the end of the condition"));
        }
        Ok(condition)
    }

    /// Every topic the condition names, in order of appearance (repeats included).
    pub fn topics(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_topics(&mut out);
        out
    }

    fn collect_topics<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Condition::Topic(t) => out.push(t),
            Condition::Not(x) => x.collect_topics(out),
            Condition::And(a, b) | Condition::Or(a, b) => {
                a.collect_topics(out);
                b.collect_topics(out);
            }
        }
    }

    /// True when an instance subscribed to the topics `is_subscribed` says yes to matches.
    pub fn matches(&self, is_subscribed: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Condition::Topic(t) => is_subscribed(t),
            Condition::Not(x) => !x.matches(is_subscribed),
            Condition::And(a, b) => a.matches(is_subscribed) && b.matches(is_subscribed),
            Condition::Or(a, b) => a.matches(is_subscribed) || b.matches(is_subscribed),
        }
    }

    fn is_binary(&self) -> bool {
        matches!(self, Condition::And(..) | Condition::Or(..))
    }
}

/// Prints the canonical form; parsing it gives back the same tree.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Topic(t) => write!(f, "'{t}' in topics"),
            Condition::Not(x) if x.is_binary() => write!(f, "!({x})"),
            Condition::Not(x) => write!(f, "!{x}"),
            Condition::And(a, b) | Condition::Or(a, b) => {
                let op = if matches!(self, Condition::And(..)) {
                    "&&"
                } else {
                    "||"
                };
                // Left-to-right evaluation: only a binary right operand needs parentheses.
                if b.is_binary() {
                    write!(f, "{a} {op} ({b})")
                } else {
                    write!(f, "{a} {op} {b}")
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Topic(String),
    In,
    Topics,
    And,
    Or,
    Not,
    Open,
    Close,
}

#[derive(Debug)]
struct Token {
    tok: Tok,
    at: usize,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ValidationError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |at: usize, what: &str| {
        ValidationError::new("condition", format!("{what} at position {at}"))
    };
    while i < bytes.len() {
        let at = i;
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                tokens.push(Token { tok: Tok::Open, at });
                i += 1;
            }
            b')' => {
                tokens.push(Token {
                    tok: Tok::Close,
                    at,
                });
                i += 1;
            }
            b'!' => {
                tokens.push(Token { tok: Tok::Not, at });
                i += 1;
            }
            b'&' | b'|' => {
                if bytes.get(i + 1) != Some(&bytes[i]) {
                    return Err(err(at, "expected && or ||"));
                }
                let tok = if bytes[i] == b'&' { Tok::And } else { Tok::Or };
                tokens.push(Token { tok, at });
                i += 2;
            }
            quote @ (b'\'' | b'"') => {
                let end = text[i + 1..]
                    .find(quote as char)
                    .ok_or_else(|| err(at, "unterminated topic name"))?;
                let name = &text[i + 1..i + 1 + end];
                if !is_valid_topic_name(name) {
                    return Err(err(
                        at,
                        &format!("topic name {name:?} must match [a-zA-Z0-9-_.~%]+"),
                    ));
                }
                tokens.push(Token {
                    tok: Tok::Topic(name.to_string()),
                    at,
                });
                i += end + 2;
            }
            b if b.is_ascii_alphabetic() => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphabetic())
                    .count();
                let word = &text[i..i + len];
                let tok = if word.eq_ignore_ascii_case("in") {
                    Tok::In
                } else if word.eq_ignore_ascii_case("topics") {
                    Tok::Topics
                } else {
                    return Err(err(at, &format!("unexpected word {word:?}")));
                };
                tokens.push(Token { tok, at });
                i += len;
            }
            _ => {
                let c = text[i..].chars().next().unwrap_or('?');
                return Err(err(at, &format!("unexpected character {c:?}")));
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// `!` and `(` levels open at `pos`.
    depth: usize,
    /// Topics read so far: counted as they are read, so a long `&&` chain (a tree as deep as
    /// it is long) is refused before it is built.
    topics: usize,
}

impl Parser<'_> {
    fn error_at(&self, at: usize, what: &str) -> ValidationError {
        ValidationError::new("condition", format!("{what} at position {at}"))
    }

    fn end_error(&self, what: &str) -> ValidationError {
        self.error_at(self.text.len(), what)
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.tok)
    }

    /// expression := unary (('&&' | '||') unary)*, folded left to right.
    fn expression(&mut self) -> Result<Condition, ValidationError> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    left = Condition::And(Box::new(left), Box::new(self.unary()?));
                }
                Some(Tok::Or) => {
                    self.pos += 1;
                    left = Condition::Or(Box::new(left), Box::new(self.unary()?));
                }
                _ => return Ok(left),
            }
        }
    }

    /// unary := '!' unary | '(' expression ')' | topic 'in' 'topics'
    fn unary(&mut self) -> Result<Condition, ValidationError> {
        let Some(token) = self.tokens.get(self.pos) else {
            return Err(self.end_error("expected a topic, ! or ( but the condition ended"));
        };
        let at = token.at;
        if matches!(token.tok, Tok::Not | Tok::Open) {
            if self.depth == MAX_CONDITION_DEPTH {
                return Err(self.error_at(
                    at,
                    &format!("nested more than {MAX_CONDITION_DEPTH} levels deep"),
                ));
            }
            self.depth += 1;
        }
        match token.tok.clone() {
            Tok::Not => {
                self.pos += 1;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Condition::Not(Box::new(inner)))
            }
            Tok::Open => {
                self.pos += 1;
                let inner = self.expression()?;
                match self.tokens.get(self.pos) {
                    Some(Token {
                        tok: Tok::Close, ..
                    }) => {
                        self.pos += 1;
                        self.depth -= 1;
                        Ok(inner)
                    }
                    Some(t) => Err(self.error_at(t.at, "expected )")),
                    None => Err(self.end_error("missing )")),
                }
            }
            Tok::Topic(name) => {
                self.topics += 1;
                if self.topics > MAX_CONDITION_TOPICS {
                    return Err(self.error_at(
                        at,
                        &format!(
                            "names a {}th topic, more than the maximum of {MAX_CONDITION_TOPICS}",
                            self.topics
                        ),
                    ));
                }
                self.pos += 1;
                for expected in [Tok::In, Tok::Topics] {
                    match self.tokens.get(self.pos) {
                        Some(t) if t.tok == expected => self.pos += 1,
                        Some(t) => {
                            return Err(self.error_at(t.at, "expected 'name' in topics"));
                        }
                        None => return Err(self.end_error("expected 'name' in topics")),
                    }
                }
                Ok(Condition::Topic(name))
            }
            _ => Err(self.error_at(at, "expected a topic, ! or (")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn parse(s: &str) -> Condition {
        Condition::parse(s).unwrap()
    }

    #[test]
    fn documented_examples() {
        let c = parse("'TopicA' in topics && ('TopicB' in topics || 'TopicC' in topics)");
        assert_eq!(c.topics(), ["TopicA", "TopicB", "TopicC"]);
        let subs = |set: &[&str]| {
            let set: HashSet<String> = set.iter().map(|s| s.to_string()).collect();
            move |t: &str| set.contains(t)
        };
        assert!(c.matches(&subs(&["TopicA", "TopicC"])));
        assert!(!c.matches(&subs(&["TopicA"])));
        assert!(!c.matches(&subs(&["TopicB", "TopicC"])));
        // Negation also matches instances subscribed to nothing.
        assert!(parse("!('TopicA' in topics)").matches(&subs(&[])));
    }

    #[test]
    fn left_to_right_without_precedence() {
        // 'a' || 'b' && 'c' means ('a' || 'b') && 'c'.
        let c = parse("'a' in topics || 'b' in topics && 'c' in topics");
        assert!(!c.matches(&|t| t == "a"), "a alone does not satisfy && c");
        assert!(c.matches(&|t| t == "a" || t == "c"));
    }

    #[test]
    fn errors_name_the_position() {
        for (bad, needle) in [
            ("", "ended"),
            ("'a' in", "expected 'name' in topics"),
            ("'a' in topics &&", "ended"),
            ("'a' in topics & 'b' in topics", "&& or ||"),
            ("('a' in topics", "missing )"),
            ("'a b' in topics", "topic name"),
            ("'a' in topics 'b' in topics", "after the end"),
            ("'a' in topix", "unexpected word"),
            ("'a", "unterminated"),
        ] {
            let err = Condition::parse(bad).unwrap_err();
            assert_eq!(err.field, "condition");
            assert!(err.problem.contains(needle), "{bad:?}: {err}");
        }
    }

    /// Found by the fuzzing suite (pushgate-fuzzing, tests/bounds.rs): a send body of a
    /// million `(` or `!`, or a million-topic `&&` chain, overflowed the stack of the thread
    /// parsing it and aborted the gateway. Run on a tokio worker's 2 MiB stack.
    #[test]
    fn huge_nesting_and_chains_are_refused_without_exhausting_the_stack() {
        let n = 1_000_000;
        let t = "'a' in topics";
        let inputs = [
            format!("{}{t}{}", "(".repeat(n), ")".repeat(n)),
            format!("{}{t}", "!".repeat(n)),
            vec![t; n].join(" && "),
        ];
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for text in inputs {
                    assert!(Condition::parse(&text).is_err(), "{}", &text[..40]);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn nesting_up_to_the_limit_is_accepted() {
        let d = MAX_CONDITION_DEPTH;
        let at_limit = format!("{}'a' in topics{}", "(".repeat(d), ")".repeat(d));
        assert_eq!(parse(&at_limit), Condition::Topic("a".into()));
        let nots = format!("{}'a' in topics", "!".repeat(d));
        assert!(matches!(parse(&nots), Condition::Not(_)));
        for over in [
            format!("{}'a' in topics{}", "(".repeat(d + 1), ")".repeat(d + 1)),
            format!("{}'a' in topics", "!".repeat(d + 1)),
        ] {
            let err = Condition::parse(&over).unwrap_err();
            assert!(err.problem.contains("nested more than"), "{err}");
        }
    }

    #[test]
    fn at_most_five_topics() {
        let five = (0..5)
            .map(|i| format!("'t{i}' in topics"))
            .collect::<Vec<_>>();
        parse(&five.join(" || "));
        let six = (0..6)
            .map(|i| format!("'t{i}' in topics"))
            .collect::<Vec<_>>();
        let err = Condition::parse(&six.join(" || ")).unwrap_err();
        assert!(
            err.problem.contains('6') && err.problem.contains('5'),
            "{err}"
        );
    }

    #[test]
    fn keywords_case_insensitive_double_quotes_accepted() {
        assert_eq!(parse("\"a\" IN Topics"), Condition::Topic("a".into()));
    }

    fn arb_condition() -> impl Strategy<Value = Condition> {
        let leaf = "[a-e]".prop_map(Condition::Topic);
        leaf.prop_recursive(3, 5, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|x| Condition::Not(Box::new(x))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Condition::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Condition::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    /// A reference evaluator written independently of the parser: it works on the printed
    /// text, reducing innermost parentheses first, then folding left to right.
    fn reference_eval(text: &str, subs: &HashSet<String>) -> bool {
        let mut s = text.to_string();
        // Replace atoms by T/F.
        for t in ["a", "b", "c", "d", "e"] {
            let v = if subs.contains(t) { "T" } else { "F" };
            s = s.replace(&format!("'{t}' in topics"), v);
        }
        s.retain(|c| !c.is_whitespace());
        fn flat(expr: &str) -> bool {
            // expr holds T, F, !, &&, || only: negations bind to the operand after them.
            let mut value: Option<bool> = None;
            let mut pending_op: Option<&str> = None;
            let mut rest = expr;
            while !rest.is_empty() {
                if let Some(r) = rest.strip_prefix("&&") {
                    pending_op = Some("&&");
                    rest = r;
                    continue;
                }
                if let Some(r) = rest.strip_prefix("||") {
                    pending_op = Some("||");
                    rest = r;
                    continue;
                }
                let nots = rest.chars().take_while(|c| *c == '!').count();
                rest = &rest[nots..];
                let mut operand = rest.starts_with('T');
                rest = &rest[1..];
                if nots % 2 == 1 {
                    operand = !operand;
                }
                value = Some(match (value, pending_op) {
                    (None, _) => operand,
                    (Some(v), Some("&&")) => v && operand,
                    (Some(v), _) => v || operand,
                });
            }
            value.unwrap_or(false)
        }
        while let Some(close) = s.find(')') {
            let open = s[..close].rfind('(').unwrap();
            let inner = flat(&s[open + 1..close]);
            s.replace_range(open..=close, if inner { "T" } else { "F" });
        }
        flat(&s)
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(c in arb_condition()) {
            prop_assume!(c.topics().len() <= MAX_CONDITION_TOPICS);
            prop_assert_eq!(Condition::parse(&c.to_string()).unwrap(), c);
        }

        #[test]
        fn evaluation_agrees_with_reference(c in arb_condition(), subs in proptest::collection::hash_set("[a-e]", 0..5)) {
            prop_assume!(c.topics().len() <= MAX_CONDITION_TOPICS);
            let text = c.to_string();
            let parsed = Condition::parse(&text).unwrap();
            prop_assert_eq!(parsed.matches(&|t| subs.contains(t)), reference_eval(&text, &subs));
        }
    }
}
