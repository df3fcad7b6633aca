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
//!
//! The files: `syntax` (the expression tree), `lexer` and `parser` (from a path text to
//! the tree), `evaluate` (the evaluator) and `items` (what it does to items: navigation,
//! arithmetic, the item methods' conversions).

mod evaluate;
mod items;
mod lexer;
mod parser;
mod syntax;

use std::borrow::Cow;
use std::fmt;

use super::value::Json;

use evaluate::{Evaluator, Scope};
use lexer::Lexer;
use parser::Parser;
use syntax::Expr;

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

/// What the tests of this module's files share: running a path over a JSON text.
#[cfg(test)]
mod test_support {
    use super::{JsonPath, PathError};
    use crate::functions::json::value::Json;

    pub(super) type Outcome = Result<Vec<String>, PathError>;

    /// Evaluates `path` on `input` with `$name` parameters: the items as JSON texts.
    pub(super) fn run_with(path: &str, input: &str, parameters: &[(&str, &str)]) -> Outcome {
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

    pub(super) fn run(path: &str, input: &str) -> Outcome {
        run_with(path, input, &[])
    }

    /// Asserts that `path` selects `expected` (JSON texts) from `input`.
    pub(super) fn check(path: &str, input: &str, expected: &[&str]) {
        match run(path, input) {
            Ok(items) => assert_eq!(items, expected, "{path} on {input}"),
            Err(e) => panic!("{path} on {input} failed: {e}"),
        }
    }

    /// Asserts that evaluating `path` on `input` fails with a message containing `part`.
    pub(super) fn fails(path: &str, input: &str, part: &str) {
        match run(path, input) {
            Ok(items) => panic!("{path} on {input} gave {items:?}"),
            Err(e) => assert!(e.0.contains(part), "{path} on {input}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::run;

    #[test]
    fn path_errors_display_their_message() {
        let error = run("strict $.a", "{}").unwrap_err();
        assert_eq!(error.to_string(), error.0);
        assert!(error.to_string().contains("missing member 'a'"));
    }
}
