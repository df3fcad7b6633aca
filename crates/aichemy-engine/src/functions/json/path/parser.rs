//! The parser: recursive descent over the tokens, with the nesting depth bounded.

use super::lexer::{describe, Tok, Token, END};
use super::syntax::{ArithOp, Expr, Method, Predicate, Primary, Regex, Step, Subscript};
use super::{JsonPath, MAX_NESTING};
use crate::functions::json::value::Json;

/// What a predicate operand turned out to be: `(` can open a predicate (`(@ > 1) || …`)
/// or a path expression (`(@ + 1) > 2`), told apart by what follows.
enum Parsed {
    Predicate(Predicate),
    Expr(Expr),
}

pub(super) struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Open parentheses, brackets, filters and unary signs.
    depth: usize,
    /// Enclosing filters (where `@` is allowed).
    filters: usize,
    /// Enclosing array subscripts (where `last` is allowed).
    subscripts: usize,
}

impl Parser {
    pub(super) fn new(tokens: Vec<Token>) -> Parser {
        Parser {
            tokens,
            pos: 0,
            depth: 0,
            filters: 0,
            subscripts: 0,
        }
    }

    /// `[lax | strict] expression`.
    pub(super) fn path(mut self) -> Result<JsonPath, String> {
        let strict = self.mode();
        let expr = self.expression(None)?;
        if !self.sees(&Tok::End) {
            return self.unexpected("an operator or the end of the path");
        }
        Ok(JsonPath { strict, expr })
    }

    fn mode(&mut self) -> bool {
        if self.eat_word("strict") {
            return true;
        }
        self.eat_word("lax");
        false
    }

    // Token access.

    fn peek(&self) -> &Tok {
        self.tokens.get(self.pos).map_or(&END, |token| &token.tok)
    }

    fn sees(&self, tok: &Tok) -> bool {
        self.peek() == tok
    }

    fn sees_word(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w == word)
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let found = self.sees(tok);
        if found {
            self.bump();
        }
        found
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.sees_word(word);
        if found {
            self.bump();
        }
        found
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), String> {
        if self.eat(tok) {
            Ok(())
        } else {
            self.unexpected(what)
        }
    }

    /// The position of the current token, from 1.
    fn position(&self) -> usize {
        let at = self.pos.min(self.tokens.len().saturating_sub(1));
        self.tokens.get(at).map_or(1, |token| token.offset + 1)
    }

    fn fail<T>(&self, message: &str) -> Result<T, String> {
        Err(format!("{message} at position {}", self.position()))
    }

    fn unexpected<T>(&self, expected: &str) -> Result<T, String> {
        Err(format!(
            "expected {expected} but found {} at position {}",
            describe(self.peek()),
            self.position()
        ))
    }

    /// Goes one level deeper, refusing to go deeper than `MAX_NESTING`.
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.fail(&format!(
                "the path is nested more than {MAX_NESTING} levels deep"
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // Path expressions. `seed` is an already parsed parenthesized first operand, see
    // `parenthesized_predicate`.

    /// `term (('+' | '-') term)*`.
    fn expression(&mut self, seed: Option<Expr>) -> Result<Expr, String> {
        let first = self.term(seed)?;
        let mut rest = Vec::new();
        while let Some(op) = self.additive_operator() {
            self.bump();
            rest.push((op, self.term(None)?));
        }
        Ok(arithmetic_chain(first, rest))
    }

    fn additive_operator(&self) -> Option<ArithOp> {
        match self.peek() {
            Tok::Plus => Some(ArithOp::Add),
            Tok::Minus => Some(ArithOp::Subtract),
            _ => None,
        }
    }

    /// `unary (('*' | '/' | '%') unary)*`.
    fn term(&mut self, seed: Option<Expr>) -> Result<Expr, String> {
        let first = self.unary(seed)?;
        let mut rest = Vec::new();
        while let Some(op) = self.multiplicative_operator() {
            self.bump();
            rest.push((op, self.unary(None)?));
        }
        Ok(arithmetic_chain(first, rest))
    }

    fn multiplicative_operator(&self) -> Option<ArithOp> {
        match self.peek() {
            Tok::Star => Some(ArithOp::Multiply),
            Tok::Slash => Some(ArithOp::Divide),
            Tok::Percent => Some(ArithOp::Modulo),
            _ => None,
        }
    }

    /// `('+' | '-') unary | accessor`.
    fn unary(&mut self, seed: Option<Expr>) -> Result<Expr, String> {
        if seed.is_some() {
            return self.accessor(seed);
        }
        let negate = match self.peek() {
            Tok::Minus => true,
            Tok::Plus => false,
            _ => return self.accessor(None),
        };
        self.bump();
        self.enter()?;
        let operand = self.unary(None)?;
        self.leave();
        Ok(Expr::Unary {
            negate,
            operand: Box::new(operand),
        })
    }

    /// `primary step*`.
    fn accessor(&mut self, seed: Option<Expr>) -> Result<Expr, String> {
        let primary = match seed {
            Some(expr) => Primary::Paren(Box::new(expr)),
            None => self.primary()?,
        };
        let mut steps = Vec::new();
        while let Some(step) = self.step()? {
            steps.push(step);
        }
        Ok(match primary {
            Primary::Paren(inner) if steps.is_empty() => *inner,
            primary => Expr::Path { primary, steps },
        })
    }

    fn primary(&mut self) -> Result<Primary, String> {
        let primary = match self.peek() {
            Tok::Dollar => Primary::Context,
            Tok::Variable(name) => Primary::Variable(name.clone()),
            Tok::At if self.filters == 0 => {
                return self.fail("'@' is allowed only inside a filter");
            }
            Tok::At => Primary::Current,
            Tok::Number(number) => Primary::Literal(number.clone()),
            Tok::Text(text) => Primary::Literal(Json::String(text.clone())),
            Tok::Word(word) => match word.as_str() {
                "true" => Primary::Literal(Json::Bool(true)),
                "false" => Primary::Literal(Json::Bool(false)),
                "null" => Primary::Literal(Json::Null),
                "NaN" => Primary::Literal(Json::Float(f64::NAN)),
                "last" if self.subscripts == 0 => {
                    return self.fail("'last' is allowed only inside an array subscript");
                }
                "last" => Primary::Last,
                _ => return self.unexpected("a path expression"),
            },
            Tok::LParen => return self.parenthesized_expression(),
            _ => return self.unexpected("a path expression"),
        };
        self.bump();
        Ok(primary)
    }

    fn parenthesized_expression(&mut self) -> Result<Primary, String> {
        self.bump();
        self.enter()?;
        let inner = self.expression(None)?;
        self.expect(&Tok::RParen, "')'")?;
        self.leave();
        Ok(Primary::Paren(Box::new(inner)))
    }

    /// An accessor, a filter or an item method, if one follows.
    fn step(&mut self) -> Result<Option<Step>, String> {
        let step = match self.peek() {
            Tok::Dot => {
                self.bump();
                self.member_step()?
            }
            Tok::DotDot => {
                self.bump();
                Step::Descendant(self.descendant_name()?)
            }
            Tok::LBracket => {
                self.bump();
                self.array_step()?
            }
            Tok::Question => {
                self.bump();
                self.filter_step()?
            }
            _ => return Ok(None),
        };
        Ok(Some(step))
    }

    /// After `.`: `key`, `"key"`, `*` or `method()`.
    fn member_step(&mut self) -> Result<Step, String> {
        let name = match self.peek() {
            Tok::Star => {
                self.bump();
                return Ok(Step::WildcardMember);
            }
            Tok::Text(key) => {
                let key = key.clone();
                self.bump();
                return Ok(Step::Member(key));
            }
            Tok::Word(name) => name.clone(),
            _ => return self.unexpected("a member name, '*' or an item method after '.'"),
        };
        self.bump();
        if self.sees(&Tok::LParen) {
            self.method(&name)
        } else {
            Ok(Step::Member(name))
        }
    }

    /// `name()`, the position at `(`.
    fn method(&mut self, name: &str) -> Result<Step, String> {
        let method = match name {
            "type" => Method::Type,
            "size" => Method::Size,
            "double" => Method::Double,
            "ceiling" => Method::Ceiling,
            "floor" => Method::Floor,
            "abs" => Method::Abs,
            "keyvalue" => Method::KeyValue,
            "datetime" => return self.fail("the datetime() item method is not supported"),
            _ => return self.fail(&format!("unknown item method '{name}()'")),
        };
        self.bump();
        self.expect(&Tok::RParen, "')' (item methods take no arguments)")?;
        Ok(Step::Method(method))
    }

    /// After `..`: `key` or `"key"`.
    fn descendant_name(&mut self) -> Result<String, String> {
        let name = match self.peek() {
            Tok::Word(name) | Tok::Text(name) => name.clone(),
            _ => return self.unexpected("a member name after '..'"),
        };
        self.bump();
        Ok(name)
    }

    /// After `[`: `*]` or `subscript (',' subscript)* ]`.
    fn array_step(&mut self) -> Result<Step, String> {
        if self.eat(&Tok::Star) {
            self.expect(&Tok::RBracket, "']' after '[*'")?;
            return Ok(Step::WildcardArray);
        }
        self.enter()?;
        self.subscripts += 1;
        let mut subscripts = Vec::new();
        loop {
            let from = self.expression(None)?;
            let to = if self.eat_word("to") {
                Some(self.expression(None)?)
            } else {
                None
            };
            subscripts.push(Subscript { from, to });
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        self.expect(&Tok::RBracket, "',', 'to' or ']' in an array accessor")?;
        self.subscripts -= 1;
        self.leave();
        Ok(Step::Subscripts(subscripts))
    }

    /// After `?`: `( predicate )`.
    fn filter_step(&mut self) -> Result<Step, String> {
        self.expect(&Tok::LParen, "'(' after '?'")?;
        self.enter()?;
        self.filters += 1;
        let predicate = self.predicate()?;
        self.filters -= 1;
        self.expect(&Tok::RParen, "')' closing the filter")?;
        self.leave();
        Ok(Step::Filter(Box::new(predicate)))
    }

    // Predicates.

    fn predicate(&mut self) -> Result<Predicate, String> {
        let parsed = self.disjunction()?;
        self.require_predicate(parsed)
    }

    fn require_predicate(&self, parsed: Parsed) -> Result<Predicate, String> {
        match parsed {
            Parsed::Predicate(predicate) => Ok(predicate),
            Parsed::Expr(_) => self.unexpected(
                "a comparison, 'like_regex' or 'starts with' after a path in a predicate",
            ),
        }
    }

    /// `conjunction ('||' conjunction)*`.
    fn disjunction(&mut self) -> Result<Parsed, String> {
        let first = self.conjunction()?;
        if !self.sees(&Tok::Or) {
            return Ok(first);
        }
        let mut operands = vec![self.require_predicate(first)?];
        while self.eat(&Tok::Or) {
            let next = self.conjunction()?;
            operands.push(self.require_predicate(next)?);
        }
        Ok(Parsed::Predicate(Predicate::Or(operands)))
    }

    /// `predicate_primary ('&&' predicate_primary)*`.
    fn conjunction(&mut self) -> Result<Parsed, String> {
        let first = self.predicate_primary()?;
        if !self.sees(&Tok::And) {
            return Ok(first);
        }
        let mut operands = vec![self.require_predicate(first)?];
        while self.eat(&Tok::And) {
            let next = self.predicate_primary()?;
            operands.push(self.require_predicate(next)?);
        }
        Ok(Parsed::Predicate(Predicate::And(operands)))
    }

    /// `'!' delimited | exists(…) | ( … ) [is unknown] | expression [comparison …]`.
    fn predicate_primary(&mut self) -> Result<Parsed, String> {
        match self.peek() {
            Tok::Not => {
                self.bump();
                let operand = self.delimited_predicate()?;
                Ok(Parsed::Predicate(Predicate::Not(Box::new(operand))))
            }
            _ if self.sees_word("exists") => self.exists().map(Parsed::Predicate),
            Tok::LParen => self.parenthesized_predicate(),
            _ => {
                let operand = self.expression(None)?;
                self.after_operand(operand)
            }
        }
    }

    /// After `!`: `exists( … )` or `( predicate )`.
    fn delimited_predicate(&mut self) -> Result<Predicate, String> {
        if self.sees_word("exists") {
            return self.exists();
        }
        if !self.eat(&Tok::LParen) {
            return self.unexpected("'(' or 'exists' after '!'");
        }
        self.enter()?;
        let predicate = self.predicate()?;
        self.expect(&Tok::RParen, "')'")?;
        self.leave();
        Ok(predicate)
    }

    /// `exists ( expression )`, the position at `exists`.
    fn exists(&mut self) -> Result<Predicate, String> {
        self.bump();
        self.expect(&Tok::LParen, "'(' after 'exists'")?;
        self.enter()?;
        let path = self.expression(None)?;
        self.expect(&Tok::RParen, "')'")?;
        self.leave();
        Ok(Predicate::Exists(Box::new(path)))
    }

    /// `( … )`: a predicate, maybe followed by `is unknown`, or the first operand of a
    /// comparison (`(@.a + 1) * 2 > 3`), the position at `(`.
    fn parenthesized_predicate(&mut self) -> Result<Parsed, String> {
        self.bump();
        self.enter()?;
        let inner = self.disjunction()?;
        self.expect(&Tok::RParen, "')'")?;
        self.leave();
        match inner {
            Parsed::Predicate(predicate) => {
                if !self.eat_word("is") {
                    return Ok(Parsed::Predicate(predicate));
                }
                if !self.eat_word("unknown") {
                    return self.unexpected("'unknown' after 'is'");
                }
                Ok(Parsed::Predicate(Predicate::IsUnknown(Box::new(predicate))))
            }
            Parsed::Expr(expr) => {
                let operand = self.expression(Some(expr))?;
                self.after_operand(operand)
            }
        }
    }

    /// A comparison, `like_regex` or `starts with` on `left`, or `left` alone.
    fn after_operand(&mut self, left: Expr) -> Result<Parsed, String> {
        let predicate = match self.peek() {
            Tok::Compare(op) => {
                let op = *op;
                self.bump();
                let right = self.expression(None)?;
                Predicate::Compare(op, Box::new(left), Box::new(right))
            }
            _ if self.sees_word("like_regex") => {
                self.bump();
                self.like_regex(left)?
            }
            _ if self.sees_word("starts") => {
                self.bump();
                self.starts_with(left)?
            }
            _ => return Ok(Parsed::Expr(left)),
        };
        Ok(Parsed::Predicate(predicate))
    }

    /// After `like_regex`: `"pattern" [flag "flags"]`.
    fn like_regex(&mut self, value: Expr) -> Result<Predicate, String> {
        let pattern = self.string_literal("a pattern string after 'like_regex'")?;
        let flags = if self.eat_word("flag") {
            self.string_literal("a string of flags after 'flag'")?
        } else {
            String::new()
        };
        let regex = match Regex::compile(&pattern, &flags) {
            Ok(regex) => regex,
            Err(message) => return self.fail(&format!("invalid like_regex pattern: {message}")),
        };
        Ok(Predicate::LikeRegex(Box::new(value), Box::new(regex)))
    }

    fn string_literal(&mut self, what: &str) -> Result<String, String> {
        let Tok::Text(text) = self.peek() else {
            return self.unexpected(what);
        };
        let text = text.clone();
        self.bump();
        Ok(text)
    }

    /// After `starts`: `with "text"` or `with $name`.
    fn starts_with(&mut self, value: Expr) -> Result<Predicate, String> {
        if !self.eat_word("with") {
            return self.unexpected("'with' after 'starts'");
        }
        let primary = match self.peek() {
            Tok::Text(text) => Primary::Literal(Json::String(text.clone())),
            Tok::Variable(name) => Primary::Variable(name.clone()),
            _ => return self.unexpected("a string or a $variable after 'starts with'"),
        };
        self.bump();
        let prefix = Expr::Path {
            primary,
            steps: Vec::new(),
        };
        Ok(Predicate::StartsWith(Box::new(value), Box::new(prefix)))
    }
}

/// `first` alone, or `first op e op e …` when operators followed.
fn arithmetic_chain(first: Expr, rest: Vec<(ArithOp, Expr)>) -> Expr {
    if rest.is_empty() {
        first
    } else {
        Expr::Arithmetic {
            first: Box::new(first),
            rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::json::path::test_support::check;

    use super::*;

    /// Asserts that `path` is refused with a message containing `part`.
    fn refused(path: &str, part: &str) {
        match JsonPath::parse(path) {
            Ok(parsed) => panic!("{path} parsed as {parsed:?}"),
            Err(message) => assert!(message.contains(part), "{path}: {message}"),
        }
    }

    /// `inner` enclosed in `depth` times `open` … `close`.
    fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn modes() {
        let strict = |path: &str| JsonPath::parse(path).map(|path| path.is_strict());
        assert_eq!(strict("$"), Ok(false));
        assert_eq!(strict("lax $"), Ok(false));
        assert_eq!(strict("strict $"), Ok(true));
        assert_eq!(strict("  strict\t$.a"), Ok(true));
        check("lax $", "[1, 2]", &["[1,2]"]);
        check("$", r#"{"a": 1}"#, &[r#"{"a":1}"#]);
    }

    #[test]
    fn bad_paths_are_refused() {
        for path in [
            "",
            "lax",
            "strict",
            "lax strict $",
            "$.",
            "$[",
            "$[*",
            "$[]",
            "$[1 to]",
            "$[1,]",
            "$..",
            "$..*",
            "$.a.",
            "@",
            "@ > 1",
            "$ > 1",
            "$.a == 1",
            "last",
            "$ $",
            "$a b",
            "1 +",
            "$ = 1",
            "$ & 1",
            "$ | 1",
            "$#",
            "é",
            "$.foo()",
            "$.size(1)",
            "$.datetime()",
            r#"$.datetime("YYYY")"#,
            "$?",
            "$?(",
            "$?(@)",
            "$?(@ > )",
            "$?(@ > 1",
            "$?(!@ > 1)",
            "$?(!(@))",
            "$?((@ > 1) is known)",
            "$?((@ > 1) == 1)",
            "$?(@ starts 1)",
            "$?(@ starts with 1)",
            "$?(@ like_regex 1)",
            r#"$?(@ like_regex "(")"#,
            r#"$?(@ like_regex "a" flag "q")"#,
            r#"$?(@ like_regex "a" flag 1)"#,
            "\"abc",
            "$.\"a",
            r#""\u12""#,
            "$[1.5e999]",
            "(1",
            "1)",
        ] {
            assert!(JsonPath::parse(path).is_err(), "{path:?} parsed");
        }
        refused("$.", "member name");
        refused("$.", "position 3");
        refused("$[", "the end of the path");
        refused("@ > 1", "filter");
        refused("$[last]?(@ == last)", "subscript");
        refused("$.datetime()", "not supported");
        refused("$.foo()", "foo");
        refused(r#"$?(@ like_regex "[a")"#, "like_regex");
    }

    #[test]
    fn keywords_are_not_reserved() {
        let input = r#"{"lax": 1, "strict": 2, "to": 3, "exists": 4, "size": 5, "is": 6}"#;
        for (path, expected) in [
            ("$.lax", "1"),
            ("strict $.strict", "2"),
            ("$.to", "3"),
            ("$.exists", "4"),
            ("$.size", "5"),
            ("$.is", "6"),
        ] {
            check(path, input, &[expected]);
        }
        let bounds = r#"{"to": 1, "size": 2, "array": [0, 1, 2, 3]}"#;
        check("$.array[$.to to $.size]", bounds, &["1", "2"]);
        check("$?(exists(@.is)).is", input, &["6"]);
    }

    #[test]
    fn nesting_is_bounded_and_chains_are_not() {
        check(&nested("(", "$.a", ")", 100), r#"{"a": 7}"#, &["7"]);
        refused(&nested("(", "$.a", ")", MAX_NESTING + 1), "nested");
        refused(&nested("(", "$.a", ")", 100_000), "nested");
        check(&nested("-", "1", "", 100), "null", &["1"]);
        refused(&nested("-", "1", "", 100_000), "nested");
        let filters = |depth| format!("${}", nested("?(exists(@", "", "))", depth));
        check(&filters(50), "{}", &["{}"]);
        refused(&filters(10_000), "nested");
        let predicates = |depth| format!("$?({})", nested("(", "@ == 1", ")", depth));
        check(&predicates(100), "1", &["1"]);
        refused(&predicates(100_000), "nested");
        let negations = |depth| format!("$?({})", nested("!(", "@ == 1", ")", depth));
        check(&negations(100), "1", &["1"]);
        refused(&negations(100_000), "nested");
        check(&nested("$[", "0", "]", 100), "[0]", &["0"]);
        refused(&nested("$[", "0", "]", 100_000), "nested");

        // Chains are loops: no depth to exhaust.
        let members = format!("lax ${}", ".a".repeat(100_000));
        check(&members, r#"{"a": 1}"#, &[]);
        let sum = format!("1{}", " + 1".repeat(100_000));
        check(&sum, "null", &["100001"]);
        let either = format!("$?(@ == 0{})", " || @ == 1".repeat(10_000));
        check(&either, "1", &["1"]);
        let both = format!("$?(@ == 1{})", " && @ == 1".repeat(10_000));
        check(&both, "1", &["1"]);
    }
}
