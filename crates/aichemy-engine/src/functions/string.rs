//! Trino's string functions DataFusion lacks or has in part:
//! - `split(string, delimiter [, limit])`: the parts of a string between its delimiters
//!   (at most `limit`, the last one holding the rest);
//! - `strpos(string, substring [, instance])`: the position (in characters, from 1) of the
//!   `instance`-th occurrence, counted from the end when negative; 0 when there is none;
//! - value by value (`row_function.rs`): `codepoint`, `hamming_distance`, `luhn_check`,
//!   `soundex`, `normalize`, `split_to_map`, `split_to_multimap`, `word_stem`, Teradata's
//!   `char2hexint` and `index` (`strpos`), and
//!   `levenshtein_distance` (DataFusion's `levenshtein`).

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::json::cast::strings;
use crate::functions::row_function::{
    int, list_type, list_value, map_type, map_value, text as row_text, Arg, RowFunction,
};
use crate::functions::{
    arg_arrays, invalid_argument, is_text, scalar_result, unexpected_parameters,
};

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Split {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    ctx.register_udf(
        ScalarUDF::new_from_impl(Strpos {
            signature: Signature::user_defined(Volatility::Immutable),
        })
        .with_aliases(["instr", "position", "index"]),
    );
    ctx.register_udf(
        datafusion::functions::string::levenshtein()
            .as_ref()
            .clone()
            .with_aliases(["levenshtein_distance"]),
    );
    let text: &'static [&'static [Arg]] = &[&[Arg::Text]];
    let number: &'static [&'static [Arg]] = &[&[Arg::Number]];
    let two_texts: &'static [&'static [Arg]] = &[&[Arg::Text, Arg::Text]];
    let split: &'static [&'static [Arg]] = &[&[Arg::Text, Arg::Text, Arg::Text]];
    for function in [
        RowFunction::new(
            "format_number",
            number,
            "format_number(bigint), format_number(double)",
            |_| Ok(DataType::Utf8),
            |args, _| {
                // A double counts by its whole part, as Trino's (long) conversion does.
                let value = match &args[0] {
                    ScalarValue::Float64(Some(v)) => *v as i64,
                    other => int(other),
                };
                Ok(ScalarValue::Utf8(Some(format_number(value))))
            },
        ),
        RowFunction::new(
            "codepoint",
            text,
            "codepoint(varchar(1))",
            |_| Ok(DataType::Int32),
            |args, _| {
                let mut chars = row_text(&args[0]).chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(ScalarValue::Int32(Some(c as i32))),
                    _ => Err(invalid_argument(
                        "codepoint takes a string of one character",
                    )),
                }
            },
        ),
        RowFunction::new(
            "hamming_distance",
            two_texts,
            "hamming_distance(varchar(x), varchar(y))",
            |_| Ok(DataType::Int64),
            |args, _| {
                let (a, b): (Vec<char>, Vec<char>) = (
                    row_text(&args[0]).chars().collect(),
                    row_text(&args[1]).chars().collect(),
                );
                if a.len() != b.len() {
                    return Err(invalid_argument(
                        "The input strings to hamming_distance function must have the same length",
                    ));
                }
                let distance = a.iter().zip(&b).filter(|(x, y)| x != y).count();
                Ok(ScalarValue::Int64(Some(distance as i64)))
            },
        ),
        RowFunction::new(
            "char2hexint",
            text,
            "char2hexint(varchar)",
            |_| Ok(DataType::Utf8),
            |args, _| {
                // Teradata's: the UTF-16 code units of the text in upper-case hex.
                let hex: String = row_text(&args[0])
                    .encode_utf16()
                    .map(|unit| format!("{unit:04X}"))
                    .collect();
                Ok(ScalarValue::Utf8(Some(hex)))
            },
        ),
        RowFunction::new(
            "luhn_check",
            text,
            "luhn_check(varchar)",
            |_| Ok(DataType::Boolean),
            |args, _| luhn(row_text(&args[0])).map(|ok| ScalarValue::Boolean(Some(ok))),
        ),
        RowFunction::new(
            "soundex",
            text,
            "soundex(varchar)",
            |_| Ok(DataType::Utf8),
            |args, _| Ok(ScalarValue::Utf8(Some(soundex(row_text(&args[0]))))),
        ),
        RowFunction::new(
            "normalize",
            &[&[Arg::Text], &[Arg::Text, Arg::Text]],
            "normalize(varchar), normalize(varchar, NFC|NFD|NFKC|NFKD)",
            |_| Ok(DataType::Utf8),
            |args, _| {
                use unicode_normalization::UnicodeNormalization;
                let text = row_text(&args[0]);
                let form = args.get(1).map_or("NFC", row_text).to_ascii_uppercase();
                let normalized: String = match form.as_str() {
                    "NFC" => text.nfc().collect(),
                    "NFD" => text.nfd().collect(),
                    "NFKC" => text.nfkc().collect(),
                    "NFKD" => text.nfkd().collect(),
                    other => {
                        return Err(invalid_argument(format!(
                            "Normalization form must be one of [NFD, NFC, NFKD, NFKC]: {other}"
                        )))
                    }
                };
                Ok(ScalarValue::Utf8(Some(normalized)))
            },
        ),
        RowFunction::new(
            "split_to_map",
            split,
            "split_to_map(varchar, varchar, varchar)",
            |_| Ok(map_type(DataType::Utf8, DataType::Utf8)),
            |args, returned| split_map(args, returned, false),
        ),
        RowFunction::new(
            "split_to_multimap",
            split,
            "split_to_multimap(varchar, varchar, varchar)",
            |_| Ok(map_type(DataType::Utf8, list_type(DataType::Utf8))),
            |args, returned| split_map(args, returned, true),
        ),
        RowFunction::new(
            "word_stem",
            &[&[Arg::Text], &[Arg::Text, Arg::Text]],
            "word_stem(varchar), word_stem(varchar, varchar)",
            |_| Ok(DataType::Utf8),
            |args, _| {
                let language = args.get(1).map_or("en", row_text);
                let stemmer = stemmer(language)?;
                let word = row_text(&args[0]).to_lowercase();
                Ok(ScalarValue::Utf8(Some(stemmer.stem(&word).into_owned())))
            },
        ),
    ] {
        ctx.register_udf(function.udf());
    }
}

/// Trino's Luhn check of a string of digits.
fn luhn(digits: &str) -> Result<bool> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid_argument("Input contains non-digit characters"));
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    Ok(sum.is_multiple_of(10))
}

/// American Soundex: the first letter, then the codes of the consonants that follow (a
/// code repeated across `h` or `w` counts once), padded with zeros to four characters.
fn soundex(text: &str) -> String {
    let code = |c: char| match c.to_ascii_uppercase() {
        'B' | 'F' | 'P' | 'V' => Some('1'),
        'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => Some('2'),
        'D' | 'T' => Some('3'),
        'L' => Some('4'),
        'M' | 'N' => Some('5'),
        'R' => Some('6'),
        _ => None,
    };
    let letters: Vec<char> = text.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    let Some(first) = letters.first() else {
        return String::new();
    };
    let mut out = String::from(first.to_ascii_uppercase());
    let mut last = code(*first);
    for c in &letters[1..] {
        let upper = c.to_ascii_uppercase();
        if upper == 'H' || upper == 'W' {
            continue;
        }
        let current = code(upper);
        if let Some(digit) = current {
            if current != last {
                out.push(digit);
                if out.len() == 4 {
                    break;
                }
            }
        }
        last = current;
    }
    while out.len() < 4 {
        out.push('0');
    }
    out
}

/// `split_to_map` and `split_to_multimap`.
fn split_map(args: &[ScalarValue], returned: &DataType, multi: bool) -> Result<ScalarValue> {
    let (text, entry, key_value) = (row_text(&args[0]), row_text(&args[1]), row_text(&args[2]));
    if entry.is_empty() || key_value.is_empty() {
        return Err(invalid_argument(
            "entryDelimiter and keyValueDelimiter must not be empty",
        ));
    }
    if entry == key_value {
        return Err(invalid_argument(
            "entryDelimiter and keyValueDelimiter must not be the same",
        ));
    }
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    let body = text.strip_suffix(entry).unwrap_or(text);
    if !body.is_empty() {
        for pair in body.split(entry) {
            let Some((key, value)) = pair.split_once(key_value) else {
                return Err(invalid_argument(format!(
                    "Key-value delimiter must appear exactly once in each entry. Bad input: '{pair}'"
                )));
            };
            if value.contains(key_value) {
                return Err(invalid_argument(format!(
                    "Key-value delimiter must appear exactly once in each entry. Bad input: '{pair}'"
                )));
            }
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, values)) if multi => values.push(value.to_string()),
                Some(_) => {
                    return Err(invalid_argument(format!(
                        "Duplicate keys ({key}) are not allowed"
                    )))
                }
                None => entries.push((key.to_string(), vec![value.to_string()])),
            }
        }
    }
    let entries = entries
        .into_iter()
        .map(|(key, values)| {
            let value = if multi {
                let items = values
                    .into_iter()
                    .map(|v| ScalarValue::Utf8(Some(v)))
                    .collect();
                list_value(items, &list_type(DataType::Utf8))?
            } else {
                ScalarValue::Utf8(values.into_iter().next())
            };
            Ok((ScalarValue::Utf8(Some(key)), value))
        })
        .collect::<Result<Vec<_>>>()?;
    map_value(entries, returned)
}

/// The Snowball stemmer for a language code (`en`, `de`, …), as Trino's `word_stem` names
/// them.
fn stemmer(language: &str) -> Result<rust_stemmers::Stemmer> {
    use rust_stemmers::Algorithm;
    let algorithm = match language.to_ascii_lowercase().as_str() {
        "ar" => Algorithm::Arabic,
        "da" => Algorithm::Danish,
        "de" => Algorithm::German,
        "el" => Algorithm::Greek,
        "en" => Algorithm::English,
        "es" => Algorithm::Spanish,
        "fi" => Algorithm::Finnish,
        "fr" => Algorithm::French,
        "hu" => Algorithm::Hungarian,
        "it" => Algorithm::Italian,
        "nl" => Algorithm::Dutch,
        "no" => Algorithm::Norwegian,
        "pt" => Algorithm::Portuguese,
        "ro" => Algorithm::Romanian,
        "ru" => Algorithm::Russian,
        "sv" => Algorithm::Swedish,
        "ta" => Algorithm::Tamil,
        "tr" => Algorithm::Turkish,
        other => {
            return Err(invalid_argument(format!(
                "Unknown stemmer language: {other}"
            )));
        }
    };
    Ok(rust_stemmers::Stemmer::create(algorithm))
}

/// Text arguments, then an optional integer one, coerced to `Utf8`, `Utf8`, `Int64`.
fn two_texts_and_a_number(
    name: &str,
    arg_types: &[DataType],
    expected: &str,
) -> Result<Vec<DataType>> {
    let texts = arg_types.len() >= 2 && arg_types[..2].iter().all(is_text);
    let number = arg_types
        .get(2)
        .is_none_or(|t| t.is_integer() || *t == DataType::Null);
    if !(2..=3).contains(&arg_types.len()) || !texts || !number {
        return unexpected_parameters(name, arg_types, expected);
    }
    let mut types = vec![DataType::Utf8, DataType::Utf8];
    if arg_types.len() == 3 {
        types.push(DataType::Int64);
    }
    Ok(types)
}

/// The integers of an optional argument, `default` where it is absent.
fn numbers(arg: Option<&ArrayRef>, rows: usize, default: i64) -> Result<Int64Array> {
    match arg {
        Some(values) => Ok(cast(values, &DataType::Int64)?
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .unwrap_or_else(|| Int64Array::from(vec![None::<i64>; rows]))),
        None => Ok(Int64Array::from(vec![default; rows])),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Strpos {
    signature: Signature,
}

impl ScalarUDFImpl for Strpos {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "strpos"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        two_texts_and_a_number(
            "strpos",
            arg_types,
            "strpos(varchar(x), varchar(y)), strpos(varchar(x), varchar(y), bigint)",
        )
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = arg_arrays(&args)?;
        let texts = strings(&arrays[0])?;
        let subs = strings(&arrays[1])?;
        let instances = numbers(arrays.get(2), rows, 1)?;
        let mut out = datafusion::arrow::array::Int64Builder::with_capacity(rows);
        for row in 0..rows {
            if texts.is_null(row) || subs.is_null(row) || instances.is_null(row) {
                out.append_null();
                continue;
            }
            let instance = instances.value(row);
            if instance == 0 {
                return Err(invalid_argument(
                    "'instance' must be a positive or negative number.",
                ));
            }
            out.append_value(position(texts.value(row), subs.value(row), instance));
        }
        let result: ArrayRef = Arc::new(out.finish());
        scalar_result(&args.args, result)
    }
}

/// The character position (from 1) of the `instance`-th occurrence of `sub` in `text`
/// (from the end when negative), 0 when there is none.
fn position(text: &str, sub: &str, instance: i64) -> i64 {
    let starts: Vec<usize> = if sub.is_empty() {
        (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .collect()
    } else {
        text.match_indices(sub).map(|(i, _)| i).collect()
    };
    let n = usize::try_from(instance.unsigned_abs()).unwrap_or(usize::MAX);
    let found = if instance > 0 {
        starts.get(n - 1)
    } else {
        starts.len().checked_sub(n).and_then(|i| starts.get(i))
    };
    found.map_or(0, |byte| text[..*byte].chars().count() as i64 + 1)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Split {
    signature: Signature,
}

const EXPECTED: &str = "split(varchar(x), varchar(y)), split(varchar(x), varchar(y), bigint)";

impl ScalarUDFImpl for Split {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "split"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        two_texts_and_a_number("split", arg_types, EXPECTED)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = arg_arrays(&args)?;
        let texts = strings(&arrays[0])?;
        let delimiters = strings(&arrays[1])?;
        let limits = numbers(arrays.get(2), rows, i64::MAX)?;
        let mut out = ListBuilder::new(StringBuilder::new());
        for row in 0..rows {
            if texts.is_null(row) || delimiters.is_null(row) || limits.is_null(row) {
                out.append_null();
                continue;
            }
            let limit = limits.value(row);
            if limit <= 0 {
                return Err(invalid_argument("Limit must be positive"));
            }
            let delimiter = delimiters.value(row);
            if delimiter.is_empty() {
                return Err(invalid_argument(
                    "The delimiter may not be the empty string",
                ));
            }
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            for part in texts.value(row).splitn(limit, delimiter) {
                out.values().append_value(part);
            }
            out.append(true);
        }
        let result: ArrayRef = Arc::new(out.finish());
        scalar_result(&args.args, result)
    }
}

/// Trino's `format_number`: the value in thousands (`K`), millions (`M`), billions (`B`),
/// trillions (`T`) or quadrillions (`Q`), with up to two decimals below 10, one below 100,
/// rounded half up, trailing zeros dropped (`123456` is `123K`, `1234567` is `1.23M`).
fn format_number(value: i64) -> String {
    let mut scaled = value as f64;
    let mut unit = "";
    for next in ["K", "M", "B", "T", "Q"] {
        if scaled.abs() < 1000.0 {
            break;
        }
        scaled /= 1000.0;
        unit = next;
    }
    let decimals = match scaled {
        s if s < 10.0 => 2,
        s if s < 100.0 => 1,
        _ => 0,
    };
    let factor = 10f64.powi(decimals);
    // f64::round rounds half away from zero: Java's HALF_UP.
    let rounded = (scaled * factor).round() / factor;
    let mut text = format!("{rounded:.*}", decimals as usize);
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{unit}")
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn soundex_and_luhn_as_trino() {
        assert_eq!(super::soundex("jim"), "J500");
        assert_eq!(super::soundex("Robert"), "R163");
        assert_eq!(super::soundex("Ashcraft"), "A261");
        assert_eq!(super::soundex("Tymczak"), "T522");
        assert!(super::luhn("79927398713").unwrap());
        assert!(!super::luhn("79927398714").unwrap());
        assert!(super::luhn("12a").is_err());
    }

    #[test]
    fn positions_count_characters_from_either_end() {
        assert_eq!(position("hello", "l", 1), 3);
        assert_eq!(position("hello", "l", 2), 4);
        assert_eq!(position("hello", "l", -1), 4);
        assert_eq!(position("hello", "l", 3), 0);
        assert_eq!(position("héllo", "l", 1), 3);
        assert_eq!(position("hello", "", 1), 1);
        assert_eq!(position("", "x", -1), 0);
    }
}
