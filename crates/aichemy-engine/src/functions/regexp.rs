//! Trino's regular expression functions that DataFusion lacks or treats otherwise:
//! `regexp_extract`, `regexp_extract_all`, `regexp_position`, `regexp_split`, and
//! `regexp_replace`, which replaces every match (DataFusion's the first) and writes groups
//! in the replacement as Java does (`$1`, `${name}`, `\$` for a dollar sign).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use regex::Regex;

use crate::functions::{
    invalid_argument as invalid, is_text, scalar_result, unexpected_parameters as unexpected,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Extract,
    ExtractAll,
    Position,
    Split,
    Replace,
    /// `"$regexp_groups"(s, p)`: each match's capturing groups (from group 1), the
    /// argument of `regexp_replace(s, p, x -> …)`'s function.
    Groups,
    /// `"$regexp_splice"(s, p, replacements)`: `s` with its k-th match replaced by the k-th
    /// replacement, the result of `regexp_replace(s, p, x -> …)`.
    Splice,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Extract => "regexp_extract",
            Kind::ExtractAll => "regexp_extract_all",
            Kind::Position => "regexp_position",
            Kind::Split => "regexp_split",
            Kind::Replace => "regexp_replace",
            Kind::Groups => "$regexp_groups",
            Kind::Splice => "$regexp_splice",
        }
    }

    /// How many arguments the function takes: at least, at most.
    fn arity(self) -> (usize, usize) {
        match self {
            Kind::Extract | Kind::ExtractAll | Kind::Replace => (2, 3),
            Kind::Position => (2, 4),
            Kind::Split | Kind::Groups => (2, 2),
            Kind::Splice => (3, 3),
        }
    }
}

/// Registers every function of this module (`regexp_replace` in place of DataFusion's).
pub fn register(ctx: &SessionContext) {
    for kind in [
        Kind::Extract,
        Kind::ExtractAll,
        Kind::Position,
        Kind::Split,
        Kind::Replace,
        Kind::Groups,
        Kind::Splice,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(RegexpFunction::new(kind)));
    }
}

/// Compiled patterns of one call, by their text.
#[derive(Default)]
struct Patterns(HashMap<String, Regex>);

impl Patterns {
    fn get(&mut self, pattern: &str) -> Result<&Regex> {
        if !self.0.contains_key(pattern) {
            let regex = Regex::new(pattern).map_err(|e| invalid(e.to_string()))?;
            self.0.insert(pattern.to_string(), regex);
        }
        Ok(&self.0[pattern])
    }
}

/// A Java replacement (`$1`, `${name}`, `\$`) in the `regex` crate's syntax.
fn replacement(java: &str) -> Result<String> {
    let mut out = String::with_capacity(java.len());
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {
                    return Err(invalid(
                        "Illegal replacement sequence: character to be escaped is missing",
                    ))
                }
            },
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(&format!("${{{name}}}"));
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{digits}}}"));
            }
            '$' => {
                return Err(invalid(
                    "Illegal replacement sequence: illegal group reference",
                ))
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The group a call asks for (the whole match without a group argument); `None` for a
/// NULL group.
fn group(argument: Option<Option<i64>>, regex: &Regex) -> Result<Option<usize>> {
    match argument {
        None => Ok(Some(0)),
        Some(None) => Ok(None),
        Some(Some(group)) => check_group(regex, group).map(Some),
    }
}

/// Group `group` of a match of `regex`, checked against the pattern's groups.
fn check_group(regex: &Regex, group: i64) -> Result<usize> {
    let groups = regex.captures_len() as i64 - 1;
    if group < 0 || group > groups {
        return Err(invalid(format!(
            "Pattern has {groups} groups. Cannot access group {group}"
        )));
    }
    Ok(group as usize)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpFunction {
    kind: Kind,
    signature: Signature,
}

impl RegexpFunction {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

impl ScalarUDFImpl for RegexpFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let (least, most) = self.kind.arity();
        let text = is_text;
        let integer = |t: &DataType| t.is_integer() || *t == DataType::Null;
        let fits = (least..=most).contains(&arg_types.len())
            && arg_types
                .iter()
                .enumerate()
                .all(|(i, t)| match (self.kind, i) {
                    (_, 0 | 1) | (Kind::Replace, 2) => text(t),
                    (Kind::Splice, 2) => matches!(t, DataType::List(_) | DataType::Null),
                    _ => integer(t),
                });
        if !fits {
            let expected = match self.kind {
                Kind::Extract | Kind::ExtractAll => "{0}(varchar, varchar), {0}(varchar, varchar, bigint)",
                Kind::Position => "{0}(varchar, varchar), {0}(varchar, varchar, bigint), {0}(varchar, varchar, bigint, bigint)",
                Kind::Split | Kind::Groups => "{0}(varchar, varchar)",
                Kind::Splice => "{0}(varchar, varchar, array(varchar))",
                Kind::Replace => "{0}(varchar, varchar), {0}(varchar, varchar, varchar)",
            };
            let name = self.kind.name();
            return unexpected(name, arg_types, &expected.replace("{0}", name));
        }
        Ok(match self.kind {
            Kind::Extract | Kind::Replace | Kind::Splice => DataType::Utf8,
            Kind::Position => DataType::Int64,
            Kind::ExtractAll | Kind::Split => text_list(),
            Kind::Groups => DataType::List(Arc::new(Field::new("item", text_list(), true))),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let texts: Vec<ArrayRef> = arrays
            .iter()
            .take(if self.kind == Kind::Replace { 3 } else { 2 })
            .map(|a| cast(a, &DataType::Utf8))
            .collect::<std::result::Result<_, _>>()?;
        let numbers: Vec<Int64Array> = arrays
            .iter()
            .skip(2)
            .filter(|_| !matches!(self.kind, Kind::Replace | Kind::Splice))
            .map(|a| {
                Ok(cast(a, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone())
            })
            .collect::<Result<_>>()?;
        let (subjects, patterns) = (texts[0].as_string::<i32>(), texts[1].as_string::<i32>());
        let rows = subjects.len();
        let mut compiled = Patterns::default();
        let number = |n: usize, row: usize| -> Option<Option<i64>> {
            numbers
                .get(n)
                .map(|a| (!a.is_null(row)).then(|| a.value(row)))
        };
        let result: ArrayRef = match self.kind {
            Kind::Extract | Kind::Replace => {
                let mut out = StringBuilder::new();
                for row in 0..rows {
                    if subjects.is_null(row) || patterns.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    let regex = compiled.get(patterns.value(row))?;
                    let subject = subjects.value(row);
                    if self.kind == Kind::Replace {
                        let with = match texts.get(2).map(|a| a.as_string::<i32>()) {
                            Some(r) if r.is_null(row) => {
                                out.append_null();
                                continue;
                            }
                            Some(r) => replacement(r.value(row))?,
                            None => String::new(),
                        };
                        out.append_value(regex.replace_all(subject, with.as_str()));
                        continue;
                    }
                    let Some(group) = group(number(0, row), regex)? else {
                        out.append_null();
                        continue;
                    };
                    match regex
                        .captures(subject)
                        .and_then(|c| c.get(group).map(|m| m.as_str().to_string()))
                    {
                        Some(found) => out.append_value(found),
                        None => out.append_null(),
                    }
                }
                Arc::new(out.finish())
            }
            Kind::ExtractAll | Kind::Split => {
                let mut out = ListBuilder::new(StringBuilder::new());
                for row in 0..rows {
                    if subjects.is_null(row) || patterns.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    let regex = compiled.get(patterns.value(row))?;
                    let subject = subjects.value(row);
                    if self.kind == Kind::Split {
                        for piece in regex.split(subject) {
                            out.values().append_value(piece);
                        }
                        out.append(true);
                        continue;
                    }
                    let Some(group) = group(number(0, row), regex)? else {
                        out.append_null();
                        continue;
                    };
                    for captures in regex.captures_iter(subject) {
                        match captures.get(group) {
                            Some(m) => out.values().append_value(m.as_str()),
                            None => out.values().append_null(),
                        }
                    }
                    out.append(true);
                }
                Arc::new(out.finish())
            }
            Kind::Groups => {
                let mut out = ListBuilder::new(ListBuilder::new(StringBuilder::new()));
                for row in 0..rows {
                    if subjects.is_null(row) || patterns.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    let regex = compiled.get(patterns.value(row))?;
                    for captures in regex.captures_iter(subjects.value(row)) {
                        let groups = out.values();
                        for group in captures.iter().skip(1) {
                            match group {
                                Some(m) => groups.values().append_value(m.as_str()),
                                None => groups.values().append_null(),
                            }
                        }
                        groups.append(true);
                    }
                    out.append(true);
                }
                Arc::new(out.finish())
            }
            Kind::Splice => {
                let replacements = arrays[2].as_list_opt::<i32>();
                let mut out = StringBuilder::new();
                for row in 0..rows {
                    let replacements = match replacements {
                        Some(list) if !list.is_null(row) => list.value(row),
                        _ => {
                            out.append_null();
                            continue;
                        }
                    };
                    if subjects.is_null(row) || patterns.is_null(row) {
                        out.append_null();
                        continue;
                    }
                    let replacements = cast(&replacements, &DataType::Utf8)?;
                    let replacements = replacements.as_string::<i32>();
                    let regex = compiled.get(patterns.value(row))?;
                    let subject = subjects.value(row);
                    let mut text = String::with_capacity(subject.len());
                    let mut last = 0;
                    let mut null = false;
                    for (k, found) in regex.find_iter(subject).enumerate() {
                        text.push_str(&subject[last..found.start()]);
                        if k >= replacements.len() || replacements.is_null(k) {
                            null = true;
                            break;
                        }
                        text.push_str(replacements.value(k));
                        last = found.end();
                    }
                    if null {
                        out.append_null();
                        continue;
                    }
                    text.push_str(&subject[last..]);
                    out.append_value(text);
                }
                Arc::new(out.finish())
            }
            Kind::Position => {
                let mut out = Vec::with_capacity(rows);
                for row in 0..rows {
                    let (start, occurrence) = (number(0, row), number(1, row));
                    if subjects.is_null(row)
                        || patterns.is_null(row)
                        || matches!(start, Some(None))
                        || matches!(occurrence, Some(None))
                    {
                        out.push(None);
                        continue;
                    }
                    let start = start.flatten().unwrap_or(1);
                    let occurrence = occurrence.flatten().unwrap_or(1);
                    if start < 1 {
                        return Err(invalid("start position cannot be smaller than 1"));
                    }
                    if occurrence < 1 {
                        return Err(invalid("occurrence cannot be smaller than 1"));
                    }
                    let regex = compiled.get(patterns.value(row))?;
                    let subject = subjects.value(row);
                    // From the `start`th character; positions count characters from 1.
                    let from = subject
                        .char_indices()
                        .nth((start - 1) as usize)
                        .map(|(at, _)| at);
                    let found = from.and_then(|from| {
                        regex
                            .find_iter(&subject[from..])
                            .nth((occurrence - 1) as usize)
                            .map(|m| subject[..from + m.start()].chars().count() as i64 + 1)
                    });
                    out.push(Some(found.unwrap_or(-1)));
                }
                Arc::new(Int64Array::from(out))
            }
        };
        scalar_result(&args.args, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_replacements_become_the_regex_crates() {
        assert_eq!(replacement("3c$2 ").unwrap(), "3c${2} ");
        assert_eq!(replacement("${word}!").unwrap(), "${word}!");
        assert_eq!(replacement("\\$1").unwrap(), "$$1");
        assert!(replacement("$x").is_err());
        let regex = Regex::new(r"(\d+)([ab]) ").unwrap();
        let with = replacement("3c$2 ").unwrap();
        assert_eq!(regex.replace_all("1a 2b 14m", with.as_str()), "3ca 3cb 14m");
        assert!(check_group(&regex, 3).is_err());
    }
}
