//! The expression tree a path text parses into, with its compiled `like_regex` patterns.

use std::cmp::Ordering;

use super::MAX_NESTING;
use crate::functions::json::value::Json;

/// A path expression; each evaluates to a sequence of items.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
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
pub(super) enum Primary {
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
pub(super) enum Step {
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
pub(super) struct Subscript {
    pub(super) from: Expr,
    pub(super) to: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Method {
    Type,
    Size,
    Double,
    Ceiling,
    Floor,
    Abs,
    KeyValue,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ArithOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum CompareOp {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl CompareOp {
    pub(super) fn symbol(self) -> &'static str {
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
    pub(super) fn holds(self, ordering: Option<Ordering>) -> bool {
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
pub(super) enum Predicate {
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
// like_regex

/// A compiled `like_regex` pattern: the `regex` crate's, which matches in time linear in
/// the text. Flags: `i` (ignore case), `s` (`.` matches line breaks), `m` (`^` and `$`
/// match at line breaks, too), `x` (white space in the pattern ignored).
#[derive(Debug, Clone)]
pub(super) struct Regex(regex::Regex);

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// The largest compiled `like_regex` pattern, in bytes (`a{1000}{1000}` is refused).
const MAX_REGEX_SIZE: usize = 1 << 20;

impl Regex {
    /// Compiles `pattern` with `flags` (some of `i`, `m`, `s`, `x`).
    pub(super) fn compile(pattern: &str, flags: &str) -> Result<Regex, String> {
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

    pub(super) fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex_matches(pattern: &str, flags: &str, text: &str) -> bool {
        match Regex::compile(pattern, flags) {
            Ok(regex) => regex.is_match(text),
            Err(e) => panic!("{pattern}: {e}"),
        }
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
