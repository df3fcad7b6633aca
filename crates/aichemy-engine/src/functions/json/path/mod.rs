//! Trino's SQL/JSON path language, the path argument of `json_exists`, `json_query` and
//! `json_value` (`lax $.children[*]?(@ > 10)`): parsed into an expression tree and
//! evaluated over a `Json` value into the sequence of items it selects.
//!
//! The syntax is Trino's grammar (`JsonPath.g4`): an optional mode (`lax`, the default, or
//! `strict`), then a path expression built from `$`, `@`, `$name`, `last`, literals,
//! accessors (`.key`, `."key"`, `.*`, `..key`, `[subscripts]`, `[*]`), filters
//! (`?( predicate )`), item methods (`.type()`, `.size()`, `.double()`, `.ceiling()`,
//! `.floor()`, `.abs()`, `.keyvalue()`) and arithmetic (`+ - * / %`, unary `+ -`).
//! Keywords are case-sensitive and reserved nowhere: `$.last` is the member `last`.
//!
//! The semantics are those of Trino's evaluator (`PathEvaluationVisitor` and
//! `PathPredicateEvaluationVisitor`):
//!
//! * In lax mode, member accessors, filters, arithmetic, predicates and the item methods
//!   but `type()` and `size()` first unwrap the arrays of their input sequence (one level);
//!   array accessors and `size()` take a non-array as a one-element array; structural
//!   errors (a missing member, a subscript out of bounds) give an empty sequence. In strict
//!   mode all of those fail.
//! * Predicates never fail: an error while evaluating one makes it unknown, and a filter
//!   keeps only the items whose predicate is true.
//! * Numbers are `Json::Int` (exact; arithmetic is checked to the range of a `bigint`) or
//!   `Json::Float` (a `double`, as for every non-integer literal).
//!
//! Differences from Trino, by design:
//!
//! * String literals take JSON's backslash escapes (`"a\"b"`, `"\u00e9"`) besides Trino's
//!   doubled quote (`"a""b"`); a backslash before any other character is kept, so
//!   `like_regex "\d+"` reads as written.
//! * `@` outside a filter and `last` outside an array subscript are parse errors (Trino
//!   fails when evaluating them); `datetime()` is a parse error (Trino refuses it too).
//! * `NaN` is a numeric literal, as Trino's documentation lists it.
//! * Non-integer numbers are doubles (Trino keeps `1.5` a `decimal`), and dividing a double
//!   by zero fails as for integers (Trino gives an infinity), so results stay valid JSON.
//! * `like_regex` patterns are the `regex` crate's syntax, which shares XQuery's for the
//!   common forms (classes, groups, alternatives, repetitions) but has no back references.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use super::value::Json;

/// Deepest nesting of parentheses, brackets, filters and unary signs a path (or of groups a
/// `like_regex` pattern) may have. Each level costs several stack frames when parsing and
/// evaluating, so deeper input is refused rather than exhausting the stack (this bound keeps
/// the worst case far below a 2 MiB thread stack, even unoptimized); chains (`$.a.b.c`,
/// `1 + 2 + 3`, `p || q || r`) are loops and do not count.
const MAX_NESTING: usize = 128;

/// A parsed SQL/JSON path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonPath {
    strict: bool,
    expr: Expr,
}

/// Why evaluating a path failed (a "structural error" or a type error in strict mode, or
/// a failed method/arithmetic): the caller maps it to the ON ERROR clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathError(pub(crate) String);

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonPath {
    /// Parses a path text such as `lax $.a[*].b`, `strict $.children[2]?(@ > 10)`.
    /// The error message is human readable (the caller prefixes it).
    pub(crate) fn parse(text: &str) -> Result<JsonPath, String> {
        let tokens = Lexer::new(text).tokens()?;
        Parser::new(tokens).path()
    }

    /// Whether the path is in strict mode.
    pub(crate) fn is_strict(&self) -> bool {
        self.strict
    }

    /// The sequence of items the path selects from `input`; `parameters` are the values of
    /// the `$name` variables (PASSING clause), by name, as written (case-sensitive).
    pub(crate) fn evaluate(
        &self,
        input: &Json,
        parameters: &[(String, Json)],
    ) -> Result<Vec<Json>, PathError> {
        let mut evaluator = Evaluator {
            strict: self.is_strict(),
            input,
            parameters,
            next_object_id: 0,
        };
        let root = Scope {
            current: None,
            last: None,
        };
        let items = evaluator.eval(&self.expr, root)?;
        Ok(items.into_iter().map(Cow::into_owned).collect())
    }
}

// ---------------------------------------------------------------------------------------
// The expression tree.

/// A path expression; each evaluates to a sequence of items.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// A primary followed by accessors, filters and item methods, applied in order.
    Path { primary: Primary, steps: Vec<Step> },
    /// `+operand` or `-operand`, applied to every item.
    Unary { negate: bool, operand: Box<Expr> },
    /// `first op e op e …` of one precedence level, evaluated left to right.
    Arithmetic {
        first: Box<Expr>,
        rest: Vec<(ArithOp, Expr)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Primary {
    /// `$`, the input.
    Context,
    /// `$name`, a PASSING parameter.
    Variable(String),
    /// `@`, the item a filter examines.
    Current,
    /// `last`, the last index of the array being subscripted.
    Last,
    Literal(Json),
    /// `( expression )`.
    Paren(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.key` or `."key"`.
    Member(String),
    /// `.*`.
    WildcardMember,
    /// `..key`.
    Descendant(String),
    /// `[a, b to c]`.
    Subscripts(Vec<Subscript>),
    /// `[*]`.
    WildcardArray,
    /// `?( predicate )`.
    Filter(Box<Predicate>),
    /// `.type()`, `.size()`, …
    Method(Method),
}

/// One subscript of an array accessor: an index, or a range `from to to` (ends included).
#[derive(Debug, Clone, PartialEq)]
struct Subscript {
    from: Expr,
    to: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Type,
    Size,
    Double,
    Ceiling,
    Floor,
    Abs,
    KeyValue,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ArithOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CompareOp {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl CompareOp {
    fn symbol(self) -> &'static str {
        match self {
            CompareOp::Equal => "==",
            CompareOp::NotEqual => "!=",
            CompareOp::Less => "<",
            CompareOp::LessOrEqual => "<=",
            CompareOp::Greater => ">",
            CompareOp::GreaterOrEqual => ">=",
        }
    }

    /// Whether two values ordered so (`None`: unordered, as NaN) satisfy the comparison.
    fn holds(self, ordering: Option<Ordering>) -> bool {
        match self {
            CompareOp::Equal => ordering == Some(Ordering::Equal),
            CompareOp::NotEqual => ordering != Some(Ordering::Equal),
            CompareOp::Less => ordering == Some(Ordering::Less),
            CompareOp::LessOrEqual => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            CompareOp::Greater => ordering == Some(Ordering::Greater),
            CompareOp::GreaterOrEqual => {
                matches!(ordering, Some(Ordering::Greater | Ordering::Equal))
            }
        }
    }
}

/// A filter predicate; each evaluates to true, false or unknown.
#[derive(Debug, Clone, PartialEq)]
enum Predicate {
    /// `p || q || …`.
    Or(Vec<Predicate>),
    /// `p && q && …`.
    And(Vec<Predicate>),
    /// `!( p )` or `!exists( … )`.
    Not(Box<Predicate>),
    /// `( p ) is unknown`.
    IsUnknown(Box<Predicate>),
    /// `exists( path )`.
    Exists(Box<Expr>),
    /// `left op right`.
    Compare(CompareOp, Box<Expr>, Box<Expr>),
    /// `value starts with "text"` or `value starts with $name`.
    StartsWith(Box<Expr>, Box<Expr>),
    /// `value like_regex "pattern" flag "flags"`.
    LikeRegex(Box<Expr>, Box<Regex>),
}

// ---------------------------------------------------------------------------------------
// Tokens.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `$`.
    Dollar,
    /// `$name`.
    Variable(String),
    /// `@`.
    At,
    /// An identifier or a keyword (`lax`, `last`, `to`, `exists`, …).
    Word(String),
    Number(Json),
    /// A string literal, unescaped.
    Text(String),
    Dot,
    DotDot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Star,
    Question,
    Plus,
    Minus,
    Slash,
    Percent,
    Compare(CompareOp),
    Not,
    And,
    Or,
    End,
}

/// The token after the last one.
static END: Tok = Tok::End;

struct Token {
    tok: Tok,
    /// Where the token starts, in characters from the start of the path text.
    offset: usize,
}

/// A human readable name of a token, for error messages.
fn describe(tok: &Tok) -> String {
    let symbol = match tok {
        Tok::Dollar => "$",
        Tok::At => "@",
        Tok::Dot => ".",
        Tok::DotDot => "..",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Star => "*",
        Tok::Question => "?",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Not => "!",
        Tok::And => "&&",
        Tok::Or => "||",
        Tok::Compare(op) => op.symbol(),
        Tok::Variable(name) => return format!("'${name}'"),
        Tok::Word(word) => return format!("'{word}'"),
        Tok::Number(number) => return format!("the number {}", number.to_text()),
        Tok::Text(text) => return format!("the string {}", Json::String(text.clone()).to_text()),
        Tok::End => return "the end of the path".to_string(),
    };
    format!("'{symbol}'")
}

/// The characters `chars[start..end]` as a string.
fn collect_chars(chars: &[char], start: usize, end: usize) -> String {
    chars.get(start..end).unwrap_or_default().iter().collect()
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Splits a path text into tokens.
struct Lexer {
    chars: Vec<char>,
    at: usize,
}

impl Lexer {
    fn new(text: &str) -> Lexer {
        Lexer {
            chars: text.chars().collect(),
            at: 0,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// The text from `start` to the current position.
    fn text(&self, start: usize) -> String {
        collect_chars(&self.chars, start, self.at)
    }

    fn fail<T>(&self, message: &str) -> Result<T, String> {
        Err(format!("{message} at position {}", self.at + 1))
    }

    /// All the tokens, the last one `End`.
    fn tokens(mut self) -> Result<Vec<Token>, String> {
        let mut tokens = Vec::new();
        loop {
            while matches!(self.peek(0), Some(' ' | '\t' | '\n' | '\r')) {
                self.at += 1;
            }
            let offset = self.at;
            let Some(c) = self.peek(0) else {
                tokens.push(Token {
                    tok: Tok::End,
                    offset,
                });
                return Ok(tokens);
            };
            let tok = self.token(c)?;
            tokens.push(Token { tok, offset });
        }
    }

    fn token(&mut self, c: char) -> Result<Tok, String> {
        let next = self.peek(1);
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
            return self.number();
        }
        if is_word_start(c) {
            return Ok(Tok::Word(self.word()));
        }
        if c == '"' {
            return self.string().map(Tok::Text);
        }
        if c == '$' && next.is_some_and(is_word_start) {
            self.at += 1;
            return Ok(Tok::Variable(self.word()));
        }
        let (tok, len) = match (c, next) {
            ('.', Some('.')) => (Tok::DotDot, 2),
            ('=', Some('=')) => (Tok::Compare(CompareOp::Equal), 2),
            ('!', Some('=')) | ('<', Some('>')) => (Tok::Compare(CompareOp::NotEqual), 2),
            ('<', Some('=')) => (Tok::Compare(CompareOp::LessOrEqual), 2),
            ('>', Some('=')) => (Tok::Compare(CompareOp::GreaterOrEqual), 2),
            ('&', Some('&')) => (Tok::And, 2),
            ('|', Some('|')) => (Tok::Or, 2),
            ('<', _) => (Tok::Compare(CompareOp::Less), 1),
            ('>', _) => (Tok::Compare(CompareOp::Greater), 1),
            ('!', _) => (Tok::Not, 1),
            ('.', _) => (Tok::Dot, 1),
            ('$', _) => (Tok::Dollar, 1),
            ('@', _) => (Tok::At, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            ('*', _) => (Tok::Star, 1),
            ('?', _) => (Tok::Question, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('/', _) => (Tok::Slash, 1),
            ('%', _) => (Tok::Percent, 1),
            _ => return self.fail(&format!("unexpected character '{c}'")),
        };
        self.at += len;
        Ok(tok)
    }

    fn word(&mut self) -> String {
        let start = self.at;
        while self.peek(0).is_some_and(is_word_char) {
            self.at += 1;
        }
        self.text(start)
    }

    fn skip_digits(&mut self) {
        while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// `12`, `1.5`, `.5`, `1.`, `1e3`, `2.5E-4`: an integer when it has neither a fraction
    /// nor an exponent (and fits), a double otherwise.
    fn number(&mut self) -> Result<Tok, String> {
        let start = self.at;
        self.skip_digits();
        if self.peek(0) == Some('.') {
            self.at += 1;
            self.skip_digits();
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
            if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.at += 1 + sign;
                self.skip_digits();
            }
        }
        let text = self.text(start);
        if let Ok(value) = text.parse::<i128>() {
            return Ok(Tok::Number(Json::Int(value)));
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Tok::Number(Json::Float(value))),
            _ => {
                self.at = start;
                self.fail(&format!("number {text} out of range"))
            }
        }
    }

    /// A string literal: `""` is a quote (Trino), and JSON's backslash escapes apply.
    fn string(&mut self) -> Result<String, String> {
        let start = self.at;
        self.at += 1; // the opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                self.at = start;
                return self.fail("unterminated string");
            };
            self.at += 1;
            match c {
                '"' if self.peek(0) == Some('"') => {
                    self.at += 1;
                    out.push('"');
                }
                '"' => return Ok(out),
                '\\' => self.escape(&mut out)?,
                c => out.push(c),
            }
        }
    }

    /// The escape after a backslash: JSON's escapes; a backslash before anything else is
    /// kept, so that regular expressions such as `"\d+"` read as written.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let escaped = match self.peek(0) {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let c = self.unicode_escape()?;
                out.push(c);
                return Ok(());
            }
            _ => {
                out.push('\\');
                return Ok(());
            }
        };
        self.at += 1;
        out.push(escaped);
        Ok(())
    }

    /// `\uXXXX` (the position at `u`), with a following `\uXXXX` for a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let Some(high) = self.hex4(1) else {
            return self.fail("invalid \\u escape");
        };
        self.at += 5;
        let pair = (0xD800..0xDC00).contains(&high)
            && self.peek(0) == Some('\\')
            && self.peek(1) == Some('u');
        let low = if pair {
            self.hex4(2).filter(|low| (0xDC00..0xE000).contains(low))
        } else {
            None
        };
        let code = match low {
            Some(low) => {
                self.at += 6;
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            None => high,
        };
        Ok(char::from_u32(code).unwrap_or('\u{FFFD}'))
    }

    /// The four hexadecimal digits `ahead` characters on, if they are.
    fn hex4(&self, ahead: usize) -> Option<u32> {
        let start = self.at + ahead;
        let digits = self.chars.get(start..start + 4)?;
        if !digits.iter().all(char::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(&digits.iter().collect::<String>(), 16).ok()
    }
}

// ---------------------------------------------------------------------------------------
// The parser: recursive descent over the tokens, with the nesting depth bounded.

/// What a predicate operand turned out to be: `(` can open a predicate (`(@ > 1) || …`)
/// or a path expression (`(@ + 1) > 2`), told apart by what follows.
enum Parsed {
    Predicate(Predicate),
    Expr(Expr),
}

struct Parser {
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
    fn new(tokens: Vec<Token>) -> Parser {
        Parser {
            tokens,
            pos: 0,
            depth: 0,
            filters: 0,
            subscripts: 0,
        }
    }

    /// `[lax | strict] expression`.
    fn path(mut self) -> Result<JsonPath, String> {
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

// ---------------------------------------------------------------------------------------
// Evaluation.

/// A sequence of items: borrowed from the input, the parameters or the path's literals
/// where possible, owned where computed.
type Seq<'a> = Vec<Cow<'a, Json>>;

type Evaluated<'a> = Result<Seq<'a>, PathError>;

/// A predicate's value: `None` is unknown.
type Truth = Option<bool>;

/// Picks values out of a JSON value (its members, elements, …), given a key.
type Pick = for<'x> fn(&'x Json, &str) -> Vec<&'x Json>;

fn owned<'a>(json: Json) -> Cow<'a, Json> {
    Cow::Owned(json)
}

fn path_error(message: impl Into<String>) -> PathError {
    PathError(message.into())
}

fn type_error(expected: &str, found: &Json) -> PathError {
    path_error(format!(
        "expected {expected} but found a JSON {}",
        type_name(found)
    ))
}

/// The name `type()` gives a value.
fn type_name(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Int(_) | Json::Float(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Applies `pick` to an item: borrowed items give borrowed values, owned ones clones.
fn project<'a>(item: &Cow<'a, Json>, key: &str, pick: Pick) -> Seq<'a> {
    match *item {
        Cow::Borrowed(json) => pick(json, key).into_iter().map(Cow::Borrowed).collect(),
        Cow::Owned(ref json) => pick(json, key).into_iter().cloned().map(owned).collect(),
    }
}

fn pick_member<'x>(json: &'x Json, key: &str) -> Vec<&'x Json> {
    json.member(key).into_iter().collect()
}

fn pick_values<'x>(json: &'x Json, _key: &str) -> Vec<&'x Json> {
    match json {
        Json::Object(members) => members.iter().map(|(_, value)| value).collect(),
        _ => Vec::new(),
    }
}

/// The values of member `key` in `root` and everything nested in it, in preorder (an
/// object's own member before those of its children), walked without recursion.
fn pick_descendants<'x>(root: &'x Json, key: &str) -> Vec<&'x Json> {
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(json) = pending.pop() {
        match json {
            Json::Object(members) => {
                found.extend(json.member(key));
                pending.extend(members.iter().rev().map(|(_, value)| value));
            }
            Json::Array(elements) => pending.extend(elements.iter().rev()),
            _ => {}
        }
    }
    found
}

/// `..key` over a sequence (the same in both modes: arrays are searched, not unwrapped).
fn descendants<'a>(items: &[Cow<'a, Json>], key: &str) -> Seq<'a> {
    items
        .iter()
        .flat_map(|item| project(item, key, pick_descendants))
        .collect()
}

/// The elements of an array item, or the item back if it is not an array.
fn into_elements(item: Cow<'_, Json>) -> Result<Seq<'_>, Cow<'_, Json>> {
    match item {
        Cow::Borrowed(Json::Array(elements)) => Ok(elements.iter().map(Cow::Borrowed).collect()),
        Cow::Owned(Json::Array(elements)) => Ok(elements.into_iter().map(owned).collect()),
        other => Err(other),
    }
}

/// The sequence with its arrays replaced by their elements (one level).
fn unwrap_arrays(items: Seq<'_>) -> Seq<'_> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match into_elements(item) {
            Ok(elements) => out.extend(elements),
            Err(item) => out.push(item),
        }
    }
    out
}

/// A number taken out of an item for arithmetic.
#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn float(self) -> f64 {
        match self {
            Number::Int(value) => value as f64,
            Number::Float(value) => value,
        }
    }

    fn into_json(self) -> Json {
        match self {
            Number::Int(value) => Json::Int(value),
            Number::Float(value) => Json::Float(value),
        }
    }
}

fn number_of(item: &Json) -> Result<Number, PathError> {
    match item {
        Json::Int(value) => Ok(Number::Int(*value)),
        Json::Float(value) => Ok(Number::Float(*value)),
        _ => Err(type_error("a number", item)),
    }
}

/// An integer result, which must fit a `bigint` as in Trino.
fn checked_int(value: Option<i128>) -> Result<i128, PathError> {
    value
        .filter(|value| i64::try_from(*value).is_ok())
        .ok_or_else(|| path_error("numeric value out of range"))
}

/// `left op right`: integers stay exact (division truncates), otherwise doubles.
fn arithmetic(op: ArithOp, left: Number, right: Number) -> Result<Number, PathError> {
    let (Number::Int(a), Number::Int(b)) = (left, right) else {
        let result = float_arithmetic(op, left.float(), right.float())?;
        return Ok(Number::Float(result));
    };
    if b == 0 && matches!(op, ArithOp::Divide | ArithOp::Modulo) {
        return Err(path_error("division by zero"));
    }
    let result = match op {
        ArithOp::Add => a.checked_add(b),
        ArithOp::Subtract => a.checked_sub(b),
        ArithOp::Multiply => a.checked_mul(b),
        ArithOp::Divide => a.checked_div(b),
        ArithOp::Modulo => a.checked_rem(b),
    };
    checked_int(result).map(Number::Int)
}

/// `a op b` on doubles; dividing by zero or overflowing to an infinity fails (the result
/// must stay writable as JSON).
fn float_arithmetic(op: ArithOp, a: f64, b: f64) -> Result<f64, PathError> {
    if b == 0.0 && matches!(op, ArithOp::Divide | ArithOp::Modulo) {
        return Err(path_error("division by zero"));
    }
    let result = match op {
        ArithOp::Add => a + b,
        ArithOp::Subtract => a - b,
        ArithOp::Multiply => a * b,
        ArithOp::Divide => a / b,
        ArithOp::Modulo => a % b,
    };
    if result.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(path_error("numeric value out of range"));
    }
    Ok(result)
}

/// `+item` or `-item`.
fn signed(item: Cow<'_, Json>, negate: bool) -> Result<Cow<'_, Json>, PathError> {
    let number = number_of(&item)?;
    if !negate {
        return Ok(item);
    }
    let negated = match number {
        Number::Int(value) => Json::Int(checked_int(value.checked_neg())?),
        Number::Float(value) => Json::Float(-value),
    };
    Ok(owned(negated))
}

/// `double()` of an item: numbers and numeric strings.
fn double(item: &Json) -> Result<Json, PathError> {
    match item {
        Json::Int(value) => Ok(Json::Float(*value as f64)),
        Json::Float(value) => Ok(Json::Float(*value)),
        Json::String(text) => match text.trim().parse::<f64>() {
            Ok(value) => Ok(Json::Float(value)),
            Err(_) => Err(path_error(format!(
                "cannot convert {} to a double",
                item.to_text()
            ))),
        },
        _ => Err(type_error("a number or a string", item)),
    }
}

/// `ceiling()`, `floor()` or `abs()` of an item (integers stay integers).
fn rounded(method: Method, item: &Json) -> Result<Json, PathError> {
    Ok(match (number_of(item)?, method) {
        (Number::Int(value), Method::Abs) => Json::Int(checked_int(value.checked_abs())?),
        (Number::Int(value), _) => Json::Int(value),
        (Number::Float(value), Method::Ceiling) => Json::Float(value.ceil()),
        (Number::Float(value), Method::Floor) => Json::Float(value.floor()),
        (Number::Float(value), _) => Json::Float(value.abs()),
    })
}

/// Whether an item is a scalar other than null (what comparisons compare pairwise).
fn is_plain_scalar(json: &Json) -> bool {
    !matches!(json, Json::Null | Json::Array(_) | Json::Object(_))
}

/// Compares two non-null scalars: `None` when they are not comparable (a number with a
/// string, …), which makes the predicate unknown.
fn compare_scalars(op: CompareOp, left: &Json, right: &Json) -> Option<bool> {
    let ordering = match (left, right) {
        (Json::Int(a), Json::Int(b)) => Some(a.cmp(b)),
        (Json::Int(a), Json::Float(b)) => (*a as f64).partial_cmp(b),
        (Json::Float(a), Json::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Json::Float(a), Json::Float(b)) => a.partial_cmp(b),
        (Json::String(a), Json::String(b)) => Some(a.cmp(b)),
        (Json::Bool(a), Json::Bool(b)) => Some(a.cmp(b)),
        _ => return None,
    };
    Some(op.holds(ordering))
}

/// Which kinds of items a compared sequence holds.
#[derive(Default)]
struct Kinds {
    null: bool,
    scalar: bool,
    structured: bool,
}

impl Kinds {
    fn of(items: &[Cow<'_, Json>]) -> Kinds {
        let mut kinds = Kinds::default();
        for item in items {
            match **item {
                Json::Null => kinds.null = true,
                Json::Array(_) | Json::Object(_) => kinds.structured = true,
                _ => kinds.scalar = true,
            }
        }
        kinds
    }
}

/// What `@` and `last` stand for where an expression is evaluated.
#[derive(Clone, Copy)]
struct Scope<'s, 'a> {
    /// The item the innermost filter examines.
    current: Option<&'s Cow<'a, Json>>,
    /// The last index of the array the innermost subscript applies to.
    last: Option<i128>,
}

struct Evaluator<'a> {
    strict: bool,
    input: &'a Json,
    parameters: &'a [(String, Json)],
    /// The `id` `keyvalue()` gives the members of the next object it meets.
    next_object_id: i128,
}

impl<'a> Evaluator<'a> {
    fn eval(&mut self, expr: &'a Expr, scope: Scope<'_, 'a>) -> Evaluated<'a> {
        match expr {
            Expr::Path { primary, steps } => {
                let mut items = self.primary(primary, scope)?;
                for step in steps {
                    items = self.step(step, items, scope)?;
                }
                Ok(items)
            }
            Expr::Unary { negate, operand } => {
                let items = self.eval(operand, scope)?;
                self.lax_unwrap(items)
                    .into_iter()
                    .map(|item| signed(item, *negate))
                    .collect()
            }
            Expr::Arithmetic { first, rest } => {
                let mut result = self.operand(first, scope)?;
                for (op, operand) in rest {
                    let right = self.operand(operand, scope)?;
                    result = arithmetic(*op, result, right)?;
                }
                Ok(vec![owned(result.into_json())])
            }
        }
    }

    /// In lax mode, the sequence with its arrays unwrapped.
    fn lax_unwrap(&self, items: Seq<'a>) -> Seq<'a> {
        if self.strict {
            items
        } else {
            unwrap_arrays(items)
        }
    }

    /// An operand of arithmetic: a single number.
    fn operand(&mut self, expr: &'a Expr, scope: Scope<'_, 'a>) -> Result<Number, PathError> {
        let items = self.eval(expr, scope)?;
        let items = self.lax_unwrap(items);
        let [item] = items.as_slice() else {
            return Err(path_error(format!(
                "an arithmetic operand must be a single number, not {} items",
                items.len()
            )));
        };
        number_of(item)
    }

    fn primary(&mut self, primary: &'a Primary, scope: Scope<'_, 'a>) -> Evaluated<'a> {
        match primary {
            Primary::Context => Ok(vec![Cow::Borrowed(self.input)]),
            Primary::Variable(name) => Ok(vec![Cow::Borrowed(self.parameter(name)?)]),
            Primary::Current => match scope.current {
                Some(item) => Ok(vec![item.clone()]),
                None => Err(path_error("'@' used outside a filter")),
            },
            Primary::Last => match scope.last {
                Some(last) => Ok(vec![owned(Json::Int(last))]),
                None => Err(path_error("'last' used outside an array subscript")),
            },
            Primary::Literal(value) => Ok(vec![Cow::Borrowed(value)]),
            Primary::Paren(inner) => self.eval(inner, scope),
        }
    }

    fn parameter(&self, name: &str) -> Result<&'a Json, PathError> {
        let parameters: &'a [(String, Json)] = self.parameters;
        match parameters.iter().find(|(key, _)| key == name) {
            Some((_, value)) => Ok(value),
            None => Err(path_error(format!("no value passed for parameter ${name}"))),
        }
    }

    fn step(&mut self, step: &'a Step, items: Seq<'a>, scope: Scope<'_, 'a>) -> Evaluated<'a> {
        match step {
            Step::Member(key) => self.members(items, Some(key.as_str())),
            Step::WildcardMember => self.members(items, None),
            Step::Descendant(key) => Ok(descendants(&items, key)),
            Step::Subscripts(subscripts) => self.subscripts(items, subscripts, scope),
            Step::WildcardArray => self.wildcard_array(items),
            Step::Filter(predicate) => Ok(self.filter(items, predicate, scope)),
            Step::Method(method) => self.method(*method, items),
        }
    }

    /// `.key` (with `key`) or `.*` (without).
    fn members(&self, items: Seq<'a>, key: Option<&str>) -> Evaluated<'a> {
        let mut out = Vec::new();
        for item in &self.lax_unwrap(items) {
            if !matches!(**item, Json::Object(_)) {
                if self.strict {
                    return Err(type_error("an object", item));
                }
                continue;
            }
            let Some(key) = key else {
                out.extend(project(item, "", pick_values));
                continue;
            };
            let found = project(item, key, pick_member);
            if found.is_empty() && self.strict {
                return Err(path_error(format!("missing member '{key}' in JSON object")));
            }
            out.extend(found);
        }
        Ok(out)
    }

    /// `[*]`.
    fn wildcard_array(&self, items: Seq<'a>) -> Evaluated<'a> {
        let mut out = Vec::new();
        for item in items {
            match into_elements(item) {
                Ok(elements) => out.extend(elements),
                Err(item) if self.strict => return Err(type_error("an array", &item)),
                Err(item) => out.push(item),
            }
        }
        Ok(out)
    }

    /// `[a, b to c]`: per array, `last` its last index, the elements in subscript order.
    fn subscripts(
        &mut self,
        items: Seq<'a>,
        subscripts: &'a [Subscript],
        scope: Scope<'_, 'a>,
    ) -> Evaluated<'a> {
        let mut out = Vec::new();
        for item in items {
            let elements = match into_elements(item) {
                Ok(elements) => elements,
                Err(item) if self.strict => return Err(type_error("an array", &item)),
                Err(item) => vec![item],
            };
            if elements.is_empty() {
                if self.strict {
                    return Err(path_error("array subscript on an empty array"));
                }
                continue;
            }
            let len = elements.len() as i128;
            let inner = Scope {
                current: scope.current,
                last: Some(len - 1),
            };
            for subscript in subscripts {
                let from = self.index(&subscript.from, inner)?;
                let to = match &subscript.to {
                    Some(to) => self.index(to, inner)?,
                    None => from,
                };
                let in_bounds = |index: i128| (0..len).contains(&index);
                if self.strict && (from > to || !in_bounds(from) || !in_bounds(to)) {
                    return Err(path_error(format!(
                        "invalid array subscript [{from} to {to}] for an array of size {len}"
                    )));
                }
                let (low, high) = (from.max(0), to.min(len - 1));
                if low <= high {
                    let range = low as usize..=high as usize;
                    out.extend(elements.get(range).unwrap_or_default().iter().cloned());
                }
            }
        }
        Ok(out)
    }

    /// The value of a subscript: a single number, rounded to an integer.
    fn index(&mut self, expr: &'a Expr, scope: Scope<'_, 'a>) -> Result<i128, PathError> {
        let items = self.eval(expr, scope)?;
        let [item] = items.as_slice() else {
            return Err(path_error("an array subscript must be a single number"));
        };
        match **item {
            Json::Int(index) => Ok(index),
            Json::Float(index) if index.is_finite() => Ok(index.round() as i128),
            _ => Err(type_error("a number as array subscript", item)),
        }
    }

    /// `?( predicate )`: the items for which the predicate is true.
    fn filter(
        &mut self,
        items: Seq<'a>,
        predicate: &'a Predicate,
        scope: Scope<'_, 'a>,
    ) -> Seq<'a> {
        let mut kept = Vec::new();
        for item in self.lax_unwrap(items) {
            let inner = Scope {
                current: Some(&item),
                last: scope.last,
            };
            if self.predicate(predicate, inner) == Some(true) {
                kept.push(item);
            }
        }
        kept
    }

    fn method(&mut self, method: Method, items: Seq<'a>) -> Evaluated<'a> {
        let items = match method {
            Method::KeyValue => return self.key_value(items),
            // type() and size() take arrays as they are.
            Method::Type | Method::Size => items,
            _ => self.lax_unwrap(items),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let value = match method {
                Method::Type => Json::String(type_name(item).to_string()),
                Method::Size => self.size(item)?,
                Method::Double => double(item)?,
                _ => rounded(method, item)?,
            };
            out.push(owned(value));
        }
        Ok(out)
    }

    /// `size()`: an array's length; in lax mode 1 for anything else.
    fn size(&self, item: &Json) -> Result<Json, PathError> {
        match item {
            Json::Array(elements) => Ok(Json::Int(elements.len() as i128)),
            _ if self.strict => Err(type_error("an array", item)),
            _ => Ok(Json::Int(1)),
        }
    }

    /// `keyvalue()`: `{"name": key, "value": value, "id": n}` per member of every object,
    /// `n` numbering the objects in the order met.
    fn key_value(&mut self, items: Seq<'a>) -> Evaluated<'a> {
        let mut out = Vec::new();
        for item in self.lax_unwrap(items) {
            let Json::Object(members) = &*item else {
                return Err(type_error("an object", &item));
            };
            let id = self.next_object_id;
            self.next_object_id += 1;
            for (name, value) in members {
                out.push(owned(Json::Object(vec![
                    ("name".to_string(), Json::String(name.clone())),
                    ("value".to_string(), value.clone()),
                    ("id".to_string(), Json::Int(id)),
                ])));
            }
        }
        Ok(out)
    }

    fn predicate(&mut self, predicate: &'a Predicate, scope: Scope<'_, 'a>) -> Truth {
        match predicate {
            Predicate::Or(operands) => {
                let mut result = Some(false);
                for operand in operands {
                    match self.predicate(operand, scope) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => result = None,
                    }
                }
                result
            }
            Predicate::And(operands) => {
                let mut result = Some(true);
                for operand in operands {
                    match self.predicate(operand, scope) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => result = None,
                    }
                }
                result
            }
            Predicate::Not(operand) => self.predicate(operand, scope).map(|value| !value),
            Predicate::IsUnknown(operand) => Some(self.predicate(operand, scope).is_none()),
            Predicate::Exists(path) => self.eval(path, scope).ok().map(|items| !items.is_empty()),
            Predicate::Compare(op, left, right) => self.compare(*op, left, right, scope),
            Predicate::StartsWith(value, prefix) => self.starts_with(value, prefix, scope),
            Predicate::LikeRegex(value, regex) => {
                let values = self.eval(value, scope).ok()?;
                self.any_text(values, |text| regex.is_match(text))
            }
        }
    }

    /// Compares every pair of items of the two sides (Trino's rules): true if a pair
    /// satisfies the comparison; unknown if a side fails or a pair is not comparable, where
    /// lax mode stops at whichever of a true pair and an error comes first.
    fn compare(
        &mut self,
        op: CompareOp,
        left: &'a Expr,
        right: &'a Expr,
        scope: Scope<'_, 'a>,
    ) -> Truth {
        let left = self.eval(left, scope).ok()?;
        let right = self.eval(right, scope).ok()?;
        let (left, right) = (self.lax_unwrap(left), self.lax_unwrap(right));
        if left.is_empty() || right.is_empty() {
            return Some(false);
        }
        let (lhs, rhs) = (Kinds::of(&left), Kinds::of(&right));
        // Arrays and objects compare with null only.
        if (lhs.structured && (rhs.structured || rhs.scalar)) || (lhs.scalar && rhs.structured) {
            return None;
        }
        // Null equals null, and differs from everything else.
        let mut found = match op {
            CompareOp::Equal => lhs.null && rhs.null,
            CompareOp::NotEqual => {
                (lhs.null && (rhs.scalar || rhs.structured))
                    || (rhs.null && (lhs.scalar || lhs.structured))
            }
            _ => false,
        };
        if found && !self.strict {
            return Some(true);
        }
        for a in left.iter().filter(|item| is_plain_scalar(item)) {
            for b in right.iter().filter(|item| is_plain_scalar(item)) {
                if compare_scalars(op, a, b)? {
                    if !self.strict {
                        return Some(true);
                    }
                    found = true;
                }
            }
        }
        Some(found)
    }

    /// `value starts with prefix`: the prefix a single string, the values strings.
    fn starts_with(&mut self, value: &'a Expr, prefix: &'a Expr, scope: Scope<'_, 'a>) -> Truth {
        let values = self.eval(value, scope).ok()?;
        let prefixes = self.eval(prefix, scope).ok()?;
        let [only] = prefixes.as_slice() else {
            return None;
        };
        let Json::String(start) = &**only else {
            return None;
        };
        self.any_text(values, |text| text.starts_with(start.as_str()))
    }

    /// Whether a string among `values` passes `test`: unknown if one is not a string (lax
    /// mode stops at the first string that passes).
    fn any_text(&self, values: Seq<'a>, test: impl Fn(&str) -> bool) -> Truth {
        let mut found = false;
        for item in &self.lax_unwrap(values) {
            let Json::String(text) = &**item else {
                return None;
            };
            if test(text.as_str()) {
                if !self.strict {
                    return Some(true);
                }
                found = true;
            }
        }
        Some(found)
    }
}

// ---------------------------------------------------------------------------------------
// like_regex

/// A compiled `like_regex` pattern: the `regex` crate's, which matches in time linear in
/// the text. Flags: `i` (ignore case), `s` (`.` matches line breaks), `m` (`^` and `$`
/// match at line breaks, too), `x` (white space in the pattern ignored).
#[derive(Debug, Clone)]
struct Regex(regex::Regex);

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// The largest compiled `like_regex` pattern, in bytes (`a{1000}{1000}` is refused).
const MAX_REGEX_SIZE: usize = 1 << 20;

impl Regex {
    /// Compiles `pattern` with `flags` (some of `i`, `m`, `s`, `x`).
    fn compile(pattern: &str, flags: &str) -> Result<Regex, String> {
        let mut builder = regex::RegexBuilder::new(pattern);
        builder
            .size_limit(MAX_REGEX_SIZE)
            .nest_limit(MAX_NESTING as u32);
        let mut seen = String::new();
        for flag in flags.chars() {
            if seen.contains(flag) {
                return Err(format!("flag '{flag}' given twice"));
            }
            seen.push(flag);
            match flag {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                _ => return Err(format!("unknown flag '{flag}'")),
            };
        }
        builder.build().map(Regex).map_err(|e| e.to_string())
    }

    fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMERS: [&str; 3] = [
        r#"{"comment" : "nice", "children" : [10, 13, 16]}"#,
        r#"{"comment" : "problematic", "children" : [8, 11]}"#,
        r#"{"comment" : "knows best", "children" : [2]}"#,
    ];

    /// Three objects, as in the documentation of the accessors.
    const REGIONS: &str = r#"[{"customer" : 100, "region" : "AFRICA"}, {"region" : "ASIA"},
        {"customer" : 300, "region" : "AFRICA", "comment" : null}]"#;

    /// Three arrays, as in the documentation of the array accessors.
    const ARRAYS: &str = r#"[[0, 1, 2], ["a", "b", "c", "d"], [null, null]]"#;

    type Outcome = Result<Vec<String>, PathError>;

    /// Evaluates `path` on `input` with `$name` parameters: the items as JSON texts.
    fn run_with(path: &str, input: &str, parameters: &[(&str, &str)]) -> Outcome {
        let parsed = match JsonPath::parse(path) {
            Ok(parsed) => parsed,
            Err(e) => panic!("cannot parse {path}: {e}"),
        };
        let value = Json::parse(input).expect("test input");
        let parameters: Vec<(String, Json)> = parameters.iter().map(parameter).collect();
        let items = parsed.evaluate(&value, &parameters)?;
        Ok(items.iter().map(Json::to_text).collect())
    }

    /// A `PASSING` parameter from its name and its JSON text.
    fn parameter(&(name, value): &(&str, &str)) -> (String, Json) {
        (name.to_string(), Json::parse(value).expect(name))
    }

    fn run(path: &str, input: &str) -> Outcome {
        run_with(path, input, &[])
    }

    /// Asserts that `path` selects `expected` (JSON texts) from `input`.
    fn check(path: &str, input: &str, expected: &[&str]) {
        match run(path, input) {
            Ok(items) => assert_eq!(items, expected, "{path} on {input}"),
            Err(e) => panic!("{path} on {input} failed: {e}"),
        }
    }

    /// Asserts that evaluating `path` on `input` fails with a message containing `part`.
    fn fails(path: &str, input: &str, part: &str) {
        match run(path, input) {
            Ok(items) => panic!("{path} on {input} gave {items:?}"),
            Err(e) => assert!(e.0.contains(part), "{path} on {input}: {e}"),
        }
    }

    /// Asserts that `path` is refused with a message containing `part`.
    fn refused(path: &str, part: &str) {
        match JsonPath::parse(path) {
            Ok(parsed) => panic!("{path} parsed as {parsed:?}"),
            Err(message) => assert!(message.contains(part), "{path}: {message}"),
        }
    }

    fn ok(items: &[&str]) -> Outcome {
        Ok(items.iter().map(|item| item.to_string()).collect())
    }

    fn per_row(path: &str) -> Vec<Outcome> {
        CUSTOMERS.iter().map(|row| run(path, row)).collect()
    }

    fn regex_matches(pattern: &str, flags: &str, text: &str) -> bool {
        match Regex::compile(pattern, flags) {
            Ok(regex) => regex.is_match(text),
            Err(e) => panic!("{pattern}: {e}"),
        }
    }

    /// `inner` enclosed in `depth` times `open` … `close`.
    fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn documented_customer_examples() {
        let exists: Vec<bool> = per_row("lax $.children[*]?(@ > 10)")
            .into_iter()
            .map(|outcome| outcome.is_ok_and(|items| !items.is_empty()))
            .collect();
        assert_eq!(exists, [true, true, false]);

        let third_above_ten = per_row("strict $.children[2]?(@ > 10)");
        assert_eq!(third_above_ten[0], ok(&["16"]));
        assert!(third_above_ten[1].is_err() && third_above_ten[2].is_err());

        let children = [ok(&["[10,13,16]"]), ok(&["[8,11]"]), ok(&["[2]"])];
        assert_eq!(per_row("lax $.children"), children);
        let all = [ok(&["10", "13", "16"]), ok(&["8", "11"]), ok(&["2"])];
        assert_eq!(per_row("lax $.children[*]"), all);
        let last = [ok(&["16"]), ok(&["11"]), ok(&["2"])];
        assert_eq!(per_row("lax $.children[last]"), last);
        let above_twelve = [ok(&["13", "16"]), ok(&[]), ok(&[])];
        assert_eq!(per_row("strict $.children[*]?(@ > 12)"), above_twelve);

        let comments = per_row("strict $.comment");
        assert_eq!(comments[0], ok(&[r#""nice""#]));
        assert_eq!(comments[2], ok(&[r#""knows best""#]));
        assert_eq!(per_row("lax $.comment"), comments);

        let first = [ok(&["10"]), ok(&["8"]), ok(&["2"])];
        assert_eq!(per_row("lax $.children[0]"), first);
        let strict_third = per_row("strict $.children[2]");
        assert_eq!(strict_third[0], ok(&["16"]));
        assert!(strict_third[1].is_err() && strict_third[2].is_err());
        let lax_third = [ok(&["16"]), ok(&[]), ok(&[])];
        assert_eq!(per_row("lax $.children[2]"), lax_third);
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
    fn literals() {
        check("1", "null", &["1"]);
        check("-1", "null", &["-1"]);
        check("1.5", "null", &["1.5"]);
        check("1.2e3", "null", &["1200.0"]);
        check("2E-1", "null", &["0.2"]);
        check(".5", "null", &["0.5"]);
        check("1.", "null", &["1.0"]);
        check("true", "null", &["true"]);
        check("false", "null", &["false"]);
        check("null", "1", &["null"]);
        check("NaN", "null", &["NaN"]);
        check(r#""Some text""#, "null", &[r#""Some text""#]);
        check(r#""a\"b""#, "null", &[r#""a\"b""#]);
        check(r#""a""b""#, "null", &[r#""a\"b""#]);
        check(r#""\u00e9\n""#, "null", &["\"\u{e9}\\n\""]);
        check(r#""\ud83d\ude00""#, "null", &["\"\u{1F600}\""]);
        check(r#""\d""#, "null", &[r#""\\d""#]);
        let big = "9223372036854775807";
        let exact = JsonPath::parse(big).unwrap().evaluate(&Json::Null, &[]);
        assert_eq!(exact, Ok(vec![Json::Int(9_223_372_036_854_775_807)]));
        let beyond = "170141183460469231731687303715884105728";
        let inexact = JsonPath::parse(beyond).unwrap().evaluate(&Json::Null, &[]);
        assert!(matches!(inexact.as_deref(), Ok([Json::Float(_)])));
    }

    #[test]
    fn member_accessors() {
        let input = r#"{"a": {"b": 1}, "key with spaces": 2, "type": 3, "last": 4}"#;
        check("$.a.b", input, &["1"]);
        check(r#"$."key with spaces""#, input, &["2"]);
        check(r#"$."a"."b""#, input, &["1"]);
        check("$.type", input, &["3"]);
        check("$.last", input, &["4"]);
        check("$ . a . b", input, &["1"]);
        // The documented example: the second object lacks the member.
        check("lax $[*].customer", REGIONS, &["100", "300"]);
        fails("strict $[*].customer", REGIONS, "missing member");
        check("lax $[*].comment", REGIONS, &["null"]);
    }

    #[test]
    fn wildcard_and_descendant_member_accessors() {
        let africa = "\"AFRICA\"";
        let values = ["100", africa, "\"ASIA\"", "300", africa, "null"];
        check("lax $[*].*", REGIONS, &values);
        check("lax $.*", "1", &[]);
        fails("strict $.*", "1", "object");
        let input = r#"{
            "id" : 1,
            "notes" : [{"type" : 1, "comment" : "foo"}, {"type" : 2, "comment" : null}],
            "comment" : ["bar", "baz"]
        }"#;
        let comments = [r#"["bar","baz"]"#, r#""foo""#, "null"];
        check("lax $..comment", input, &comments);
        check(r#"strict $.."comment""#, input, &comments);
        check("$..missing", input, &[]);
        check("$..type", input, &["1", "2"]);
    }

    #[test]
    fn array_accessors() {
        check("lax $[*][last]", ARRAYS, &["2", "\"d\"", "null"]);
        check("lax $[*][2 to 3]", ARRAYS, &["2", "\"c\"", "\"d\""]);
        fails("strict $[*][2 to 3]", ARRAYS, "subscript");
        let mut repeated = vec!["1", "0", "0", "\"b\"", "\"a\"", "\"a\""];
        repeated.extend(["null"; 3]);
        check("lax $[*][1, 0, 0]", ARRAYS, &repeated);
        let elements = ["0", "1", "\"a\"", "null"];
        check("lax $[*][*]", r#"[[0, 1], ["a"], [null]]"#, &elements);

        let numbers = "[0, 1, 2, 3, 4, 5, 6]";
        check("$[last - 1]", numbers, &["5"]);
        check("lax $[5 to last]", numbers, &["5", "6"]);
        check("$[1 + 1, 2 * 2]", numbers, &["2", "4"]);
        check("$[1.6]", numbers, &["2"]);
        check("lax $[-5 to 1]", numbers, &["0", "1"]);
        check("$[0 to last]", "[7, 8]", &["7", "8"]);
        // Out of bounds subscripts and improper ranges are structural errors.
        check("lax $[5 to 3]", numbers, &[]);
        fails("strict $[5 to 3]", numbers, "subscript");
        check("lax $[-1]", numbers, &[]);
        fails("strict $[-1]", numbers, "subscript");
        check("lax $[10 to 20]", numbers, &[]);
        check("lax $[0]", "[]", &[]);
        fails("strict $[0]", "[]", "empty");
        fails(r#"$["a"]"#, numbers, "number");
        fails("$[$]", numbers, "number");
        fails("lax $[$[*]]", numbers, "single number");
    }

    #[test]
    fn lax_mode_wraps_and_unwraps() {
        // The documented examples.
        let mixed = r#"[[1, "a", null], {"key1" : 1.0, "key2" : true}, -2e3]"#;
        let object = r#"{"key1":1.0,"key2":true}"#;
        let elements = ["1", "\"a\"", "null", object, "-2000.0"];
        check("lax $[*][*]", mixed, &elements);
        check("lax $[*].size()", mixed, &["3", "1", "1"]);
        fails("lax $[*].floor()", mixed, "number");
        // A member accessor unwraps one level of arrays.
        check("lax $.a", r#"[{"a": 1}, {"a": 2}, 3]"#, &["1", "2"]);
        check("lax $.a", r#"[[{"a": 1}]]"#, &[]);
        fails("strict $.a", r#"[{"a": 1}]"#, "object");
        // An array accessor takes a non-array as a one-element array.
        let five = r#"{"a": 5}"#;
        check("lax $.a[0]", five, &["5"]);
        check("lax $.a[*]", five, &["5"]);
        check("lax $.a[last]", five, &["5"]);
        fails("strict $.a[0]", five, "array");
        fails("strict $.a[*]", five, "array");
        // Structural errors.
        check("lax $.missing", "{}", &[]);
        fails("strict $.missing", "{}", "missing member 'missing'");
        check("lax $.a", "1", &[]);
        fails("strict $.a", "1", "object");
    }

    #[test]
    fn arithmetic_expressions() {
        for (path, expected) in [
            ("1 + 2 * 3", "7"),
            ("(1 + 2) * 3", "9"),
            ("2 - 1 - 1", "0"),
            ("8 / 2 / 2", "2"),
            ("7 / 2", "3"),
            ("-7 / 2", "-3"),
            ("7 % 3", "1"),
            ("-7 % 3", "-1"),
            ("1.5 + 1", "2.5"),
            ("10 / 4.0", "2.5"),
            ("-2 * 3", "-6"),
            ("- - 1", "1"),
            ("+1", "1"),
            ("-(1 + 2)", "-3"),
            ("9223372036854775806 + 1", "9223372036854775807"),
        ] {
            check(path, "null", &[expected]);
        }
        for (path, message) in [
            ("9223372036854775807 + 1", "range"),
            ("-9223372036854775807 - 2", "range"),
            ("1 / 0", "division by zero"),
            ("1 % 0", "division by zero"),
            ("1.5 / 0", "division by zero"),
            ("1e308 * 10", "range"),
            (r#""a" + 1"#, "number"),
            ("null + 1", "number"),
            (r#"-"a""#, "number"),
            (r#"+"a""#, "number"),
        ] {
            fails(path, "null", message);
        }

        let input = r#"{"price": 95, "tax": 5.5, "one": [5], "many": [1, 2]}"#;
        check("$.price + $.tax", input, &["100.5"]);
        check("lax $.one + 1", input, &["6"]);
        fails("strict $.one + 1", input, "number");
        fails("lax $.many + 1", input, "single number");
        fails("lax $.missing + 1", input, "single number");
        check("-$.many", input, &["-1", "-2"]);
        check("lax -$.missing", input, &[]);
        fails("strict -$.many", input, "number");
        // The documented paths.
        check("strict ($.price + $.tax)?(@ > 99.9)", input, &["100.5"]);
        let prices = "[10.5, 11.5, 20]";
        check("lax $[0 to 1].floor()?(@ > 10)", prices, &["11.0"]);
        check("lax $[last].abs().floor()", "[1, -2.5]", &["2.0"]);
    }

    #[test]
    fn item_methods() {
        for (value, name) in [
            ("null", "null"),
            ("true", "boolean"),
            ("1", "number"),
            ("1.5", "number"),
            (r#""a""#, "string"),
            ("[]", "array"),
            ("{}", "object"),
        ] {
            let quoted = format!("\"{name}\"");
            check("strict $.type()", value, &[quoted.as_str()]);
        }
        let values = r#"[null, true, 1, 1.5, "a", [], {}]"#;
        let types = run("lax $[*].type()", values).map(|items| items.len());
        assert_eq!(types, Ok(7));
        check("lax $.type()", values, &["\"array\""]);
        check("(1 + 1).type()", "null", &["\"number\""]);

        check("lax $[*].size()", ARRAYS, &["3", "4", "2"]);
        check("lax $.size()", "1", &["1"]);
        fails("strict $.size()", "1", "array");

        let doubles = ["-1.0", "230000.0", "5.6"];
        check("lax $[*].double()", r#"[-1, 23e4, "5.6"]"#, &doubles);
        check("lax $.double()", r#"[-1, 23e4, " 5.6 "]"#, &doubles);
        fails("$.double()", r#""abc""#, "double");
        fails("$.double()", "true", "number or a string");

        let numbers = "[-1.5, -1, 1.3]";
        check("lax $[*].ceiling()", numbers, &["-1.0", "-1", "2.0"]);
        check("lax $[*].floor()", numbers, &["-2.0", "-1", "1.0"]);
        check("lax $[*].abs()", numbers, &["1.5", "1", "1.3"]);
        check("lax $.abs()", numbers, &["1.5", "1", "1.3"]);
        fails("strict $.abs()", numbers, "number");
        fails("$.floor()", r#""1""#, "number");

        let entries = [
            r#"{"name":"customer","value":100,"id":0}"#,
            r#"{"name":"region","value":"AFRICA","id":0}"#,
            r#"{"name":"region","value":"ASIA","id":1}"#,
            r#"{"name":"customer","value":300,"id":2}"#,
            r#"{"name":"region","value":"AFRICA","id":2}"#,
            r#"{"name":"comment","value":null,"id":2}"#,
        ];
        check("lax $[*].keyvalue()", REGIONS, &entries);
        let pair = r#"[{"a": 1}, {"b": 2}]"#;
        check("lax $.keyvalue().name", pair, &[r#""a""#, r#""b""#]);
        fails("strict $.keyvalue()", REGIONS, "object");
        fails("lax $.keyvalue()", "1", "object");
        // Accessors on computed items.
        let nested = r#"{"a": {"b": [1, 2]}}"#;
        check("$.keyvalue().value.b[last]", nested, &["2"]);
        check("$.keyvalue().value..b", nested, &["[1,2]"]);
    }

    #[test]
    fn filters_and_comparisons() {
        let africa = [
            r#"{"customer":100,"region":"AFRICA"}"#,
            r#"{"customer":300,"region":"AFRICA","comment":null}"#,
        ];
        check(r#"lax $[*]?(@.region != "ASIA")"#, REGIONS, &africa);
        let path = r#"lax $?(@.region != "ASIA").customer"#;
        check(path, REGIONS, &["100", "300"]);
        let asia = [r#"{"region":"ASIA"}"#];
        check("lax $[*]?(!exists(@.customer))", REGIONS, &asia);

        let mixed = r#"[1, 2.5, "a", "b", true, false, null, [3], {"x": 4}]"#;
        check("lax $[*]?(@ == null)", mixed, &["null"]);
        let not_null = [
            "1",
            "2.5",
            "\"a\"",
            "\"b\"",
            "true",
            "false",
            "3",
            r#"{"x":4}"#,
        ];
        // A lax filter unwraps the arrays of its input first, as Trino's evaluator does.
        check("lax $[*]?(@ != null)", mixed, &not_null);
        check("lax $[*]?(@ > 1)", mixed, &["2.5", "3"]);
        check("strict $[*]?(@ > 1)", mixed, &["2.5"]);
        check(r#"lax $[*]?(@ < "b")"#, mixed, &["\"a\""]);
        check("lax $[*]?(@ == true)", mixed, &["true"]);
        check("lax $[*]?(@ > false)", mixed, &["true"]);
        check("lax $[*]?(@ == 2.5)", mixed, &["2.5"]);
        check("lax $[*]?(@ <> 1 && @ >= 1)", mixed, &["2.5", "3"]);
        check("lax $[*]?(@ >= 1 && @ <= 2.5)", mixed, &["1", "2.5"]);
        check(r#"lax $[*]?(@ == 1 || @ == "a")"#, mixed, &["1", "\"a\""]);
        check("lax $[*]?(!(@ == 1))", mixed, &["2.5", "null", "3"]);
        let unknown = ["\"a\"", "\"b\"", "true", "false", r#"{"x":4}"#];
        check("lax $[*]?((@ == 1) is unknown)", mixed, &unknown);
        check("lax $?(@ == 1.0)", "1", &["1"]);
        check("lax $?(@ < 2)", "1.5", &["1.5"]);

        // Sequences compare pairwise.
        let pairs = r#"{"a": [1, 2], "b": [2, 3], "c": [4]}"#;
        check("lax $?(@.a == @.b).c", pairs, &["[4]"]);
        check("lax $?(@.a == @.c).c", pairs, &[]);
        check("lax $?(@.missing == 1)", pairs, &[]);
        // In lax mode the first true pair or error decides; in strict mode any error.
        let one_x = r#"{"v": [1, "x"]}"#;
        check("lax $?(@.v > 0).v", one_x, &[r#"[1,"x"]"#]);
        check("strict $?(@.v[*] > 0)", one_x, &[]);
        check("lax $?(@.v > 0)", r#"{"v": ["x", 1]}"#, &[]);
        check("strict $?(@.v[*] > 0).v", r#"{"v": [1, 2]}"#, &["[1,2]"]);
        // A failing operand makes the comparison unknown, never an error.
        check("strict $?(@.missing == 1)", "{}", &[]);
        check("strict $?((@.missing == 1) is unknown)", "{}", &["{}"]);
        // Nested filters: `@` is the innermost filter's item.
        check("lax $?(@.a[*]?(@ > 1) == 2).a", pairs, &["[1,2]"]);
        check("lax $.a?(@ > 1)", pairs, &["2"]);
    }

    #[test]
    fn exists_starts_with_and_like_regex() {
        let objects = r#"[{"a": 1}, {"b": 2}]"#;
        check("strict $[*]?(exists(@.a))", objects, &[r#"{"a":1}"#]);
        check("lax $[*]?(exists(@.a))", objects, &[r#"{"a":1}"#]);
        let failing = "strict $[*]?((exists(@.a)) is unknown)";
        check(failing, objects, &[r#"{"b":2}"#]);
        check("lax $[*]?((exists(@.a)) is unknown)", objects, &[]);

        let words = r#"["abc", "xab", 1, "ABX"]"#;
        check(r#"lax $[*]?(@ starts with "ab")"#, words, &["\"abc\""]);
        let with_prefix = run_with("lax $[*]?(@ starts with $p)", words, &[("p", r#""x""#)]);
        assert_eq!(with_prefix, ok(&["\"xab\""]));
        let all = run(r#"lax $[*]?(@ starts with "")"#, words);
        assert_eq!(all, ok(&["\"abc\"", "\"xab\"", "\"ABX\""]));
        check(r#"lax $[*]?(@ like_regex "^ab")"#, words, &["\"abc\""]);
        let ignoring_case = r#"lax $[*]?(@ like_regex "^ab" flag "i")"#;
        check(ignoring_case, words, &["\"abc\"", "\"ABX\""]);
        let digits = r#"lax $[*]?(@ like_regex "^\d+$")"#;
        check(digits, r#"["12", "a1"]"#, &["\"12\""]);
        let a_one = r#"{"v": ["a", 1]}"#;
        check(r#"lax $?(@.v like_regex "a").v"#, a_one, &[r#"["a",1]"#]);
        check(r#"strict $?(@.v[*] like_regex "a")"#, a_one, &[]);
        check(r#"strict $?((@ like_regex "a") is unknown)"#, "1", &["1"]);
    }

    #[test]
    fn variables() {
        let with = |path: &str, parameters: &[(&str, &str)]| run_with(path, "null", parameters);
        assert_eq!(with("$x", &[("x", "5")]), ok(&["5"]));
        assert_eq!(with("$x + 1", &[("x", "41")]), ok(&["42"]));
        assert_eq!(with("$x[1][1]", &[("x", "[1, [2, 3]]")]), ok(&["3"]));
        assert_eq!(with("$x", &[("y", "1"), ("x", "2")]), ok(&["2"]));
        match with("$X", &[("x", "1")]) {
            Err(e) => assert!(e.0.contains("no value passed for parameter $X"), "{e}"),
            Ok(items) => panic!("{items:?}"),
        }

        // The documented paths.
        let input = r#"{"a": 1, "b": 2}"#;
        let b = [("cust_id", r#""b""#)];
        let found = run_with("strict $.keyvalue()?(@.name == $cust_id)", input, &b);
        assert_eq!(found, ok(&[r#"{"name":"b","value":2,"id":0}"#]));
        let key_name = [("KeyName", r#""b""#)];
        let path = "lax $.keyvalue()?(@.name == $KeyName).value";
        assert_eq!(run_with(path, input, &key_name), ok(&["2"]));
        let limits = [("O_PRICE", "5"), ("O_TAX", "1")];
        let path = "lax $?(@.a > $O_PRICE || @.b > $O_TAX)";
        assert_eq!(run_with(path, input, &limits), ok(&[r#"{"a":1,"b":2}"#]));
        let tax = [("tax", "0.5")];
        assert_eq!(run_with("strict $.a + $tax", input, &tax), ok(&["1.5"]));
    }

    #[test]
    fn path_errors_display_their_message() {
        let error = run("strict $.a", "{}").unwrap_err();
        assert_eq!(error.to_string(), error.0);
        assert!(error.to_string().contains("missing member 'a'"));
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

    #[test]
    fn regular_expressions() {
        for (pattern, flags, text, expected) in [
            ("abc", "", "xxabcxx", true),
            ("^abc$", "", "xxabcxx", false),
            ("^a.c$", "", "abc", true),
            ("^a.c$", "", "a\nc", false),
            ("^a.c$", "s", "a\nc", true),
            ("^b", "", "a\nb", false),
            ("^b$", "m", "a\nb\nc", true),
            ("a$", "", "a\nb", false),
            ("a$", "m", "a\nb", true),
            ("ABC", "i", "xabcx", true),
            ("ABC", "", "xabcx", false),
            ("[a-c]+", "i", "XBX", true),
            ("^colou?r$", "", "color", true),
            ("^colou?r$", "", "colour", true),
            ("^colou?r$", "", "colouur", false),
            ("^(ab|cd)+e$", "", "abcdabe", true),
            ("^(ab|cd)+e$", "", "e", false),
            ("^a{2,3}$", "", "aaa", true),
            ("^a{2,3}$", "", "aaaa", false),
            ("^a{2,}$", "", "aaaaa", true),
            ("^a{2}$", "", "a", false),
            ("^a{0}b$", "", "b", true),
            ("^\\d{3}-\\d{4}$", "", "555-1234", true),
            ("^\\w+\\s\\w+$", "", "hello world", true),
            ("^\\D\\S\\W$", "", "a b", false),
            ("^\\D\\S\\W$", "", "ab ", true),
            ("[^0-9]", "", "123", false),
            ("[^0-9]", "", "12a3", true),
            ("^[\\d.]+$", "", "1.5", true),
            ("^[a-]+$", "", "a-a", true),
            ("^[-a]+$", "", "-a", true),
            ("^[\\]]$", "", "]", true),
            ("^a b$", "x", "ab", true),
            ("^(?:a|b)*?c$", "", "abbac", true),
            ("^é.$", "", "éa", true),
            ("a\\.b", "", "axb", false),
            ("a\\.b", "", "a.b", true),
            ("^\\x{41}$", "", "A", true),
            ("^\\t$", "", "\t", true),
            ("", "", "anything", true),
            ("a|", "", "b", true),
            ("^(a*)*$", "", "aaa", true),
            ("}", "", "}", true),
        ] {
            assert_eq!(
                regex_matches(pattern, flags, text),
                expected,
                "{pattern} /{flags} on {text:?}"
            );
        }
    }

    #[test]
    fn bad_regular_expressions_are_refused() {
        for (pattern, flags) in [
            ("(", ""),
            ("a)", ""),
            ("[a", ""),
            ("a{3,2}", ""),
            ("[z-a]", ""),
            ("(?=a)", ""),
            ("\\1", ""),
            ("\\", ""),
            ("a", "q"),
            ("a", "ii"),
        ] {
            assert!(
                Regex::compile(pattern, flags).is_err(),
                "{pattern} /{flags} compiled"
            );
        }
        let deep = format!("{}a{}", "(".repeat(1_000), ")".repeat(1_000));
        assert!(Regex::compile(&deep, "").is_err());
        assert!(Regex::compile("((a{1000}){1000}){1000}", "").is_err());
    }

    #[test]
    fn regular_expressions_take_linear_time() {
        let text = "a".repeat(20_000);
        assert!(!regex_matches("(a*)*b", "", &text));
        assert!(regex_matches("^(a|aa)*$", "", &text));
        assert!(!regex_matches("^(a|aa)*b$", "", &text));
    }
}
