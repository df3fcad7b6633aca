//! The evaluator: the sequence of items a path expression selects, and whether a filter's
//! predicate is true, false or unknown.

use std::borrow::Cow;

use super::items::{
    arithmetic, descendants, double, into_elements, number_of, owned, path_error, pick_member,
    pick_values, project, rounded, signed, type_error, type_name, unwrap_arrays, Evaluated, Number,
    Seq,
};
use super::syntax::{CompareOp, Expr, Method, Predicate, Primary, Step, Subscript};
use super::PathError;
use crate::functions::json::value::Json;

/// A predicate's value: `None` is unknown.
type Truth = Option<bool>;

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
pub(super) struct Scope<'s, 'a> {
    /// The item the innermost filter examines.
    pub(super) current: Option<&'s Cow<'a, Json>>,
    /// The last index of the array the innermost subscript applies to.
    pub(super) last: Option<i128>,
}

pub(super) struct Evaluator<'a> {
    pub(super) strict: bool,
    pub(super) input: &'a Json,
    pub(super) parameters: &'a [(String, Json)],
    /// The `id` `keyvalue()` gives the members of the next object it meets.
    pub(super) next_object_id: i128,
}

impl<'a> Evaluator<'a> {
    pub(super) fn eval(&mut self, expr: &'a Expr, scope: Scope<'_, 'a>) -> Evaluated<'a> {
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

#[cfg(test)]
mod tests {
    use crate::functions::json::path::test_support::{check, fails, run, run_with, Outcome};

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

    fn ok(items: &[&str]) -> Outcome {
        Ok(items.iter().map(|item| item.to_string()).collect())
    }

    fn per_row(path: &str) -> Vec<Outcome> {
        CUSTOMERS.iter().map(|row| run(path, row)).collect()
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
}
