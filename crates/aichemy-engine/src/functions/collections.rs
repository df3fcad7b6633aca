//! Trino's array and map functions computed value by value (see `row_function.rs`):
//! `map_from_entries`, `multimap_from_entries`, `map_concat`, `array_histogram`,
//! `contains_sequence`, `slice`, `array_first`, `array_last`, `zip` and `shuffle`.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::prelude::SessionContext;

use crate::functions::invalid_argument;
use crate::functions::row_function::{
    int, list_items, list_type, list_value, map_entries, map_type, map_value, Arg, RowFunction,
};

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    let nested: &'static [&'static [Arg]] = &[&[Arg::Nested]];
    let two_nested: &'static [&'static [Arg]] = &[&[Arg::Nested, Arg::Nested]];
    for function in [
        RowFunction::new(
            "map_from_entries",
            nested,
            "map_from_entries(array(row(K,V)))",
            |types| entry_map_type(&types[0], false),
            |args, returned| from_entries(&args[0], returned, false),
        ),
        RowFunction::new(
            "multimap_from_entries",
            nested,
            "multimap_from_entries(array(row(K,V)))",
            |types| entry_map_type(&types[0], true),
            |args, returned| from_entries(&args[0], returned, true),
        ),
        RowFunction::new(
            "map_concat",
            &[
                &[Arg::Nested],
                &[Arg::Nested, Arg::Nested],
                &[Arg::Nested, Arg::Nested, Arg::Nested],
                &[Arg::Nested, Arg::Nested, Arg::Nested, Arg::Nested],
            ],
            "map_concat(map(K,V), …)",
            |types| Ok(types[0].clone()),
            concat_maps,
        ),
        RowFunction::new(
            "array_histogram",
            nested,
            "array_histogram(array(T))",
            |types| Ok(map_type(element(&types[0])?, DataType::Int64)),
            |args, returned| {
                let mut counts: Vec<(ScalarValue, i64)> = Vec::new();
                let mut at: HashMap<ScalarValue, usize> = HashMap::new();
                for item in list_items(&args[0])? {
                    if item.is_null() {
                        continue;
                    }
                    match at.get(&item) {
                        Some(i) => counts[*i].1 += 1,
                        None => {
                            at.insert(item.clone(), counts.len());
                            counts.push((item, 1));
                        }
                    }
                }
                let entries = counts
                    .into_iter()
                    .map(|(k, n)| (k, ScalarValue::Int64(Some(n))))
                    .collect();
                map_value(entries, returned)
            },
        ),
        RowFunction::new(
            "contains_sequence",
            two_nested,
            "contains_sequence(array(T), array(T))",
            |_| Ok(DataType::Boolean),
            |args, _| {
                let (items, sequence) = (list_items(&args[0])?, list_items(&args[1])?);
                let found = sequence.is_empty()
                    || items
                        .windows(sequence.len())
                        .any(|w| w == sequence.as_slice());
                Ok(ScalarValue::Boolean(Some(found)))
            },
        ),
        RowFunction::new(
            "slice",
            &[&[Arg::Nested, Arg::Int, Arg::Int]],
            "slice(array(T), bigint, bigint)",
            |types| Ok(types[0].clone()),
            |args, returned| {
                let items = list_items(&args[0])?;
                let (start, length) = (int(&args[1]), int(&args[2]));
                if start == 0 {
                    return Err(invalid_argument("SQL array indices start at 1"));
                }
                if length < 0 {
                    return Err(invalid_argument(format!(
                        "length must be greater than or equal to 0: {length}"
                    )));
                }
                let len = items.len() as i64;
                let from = if start > 0 { start - 1 } else { len + start };
                if from < 0 || from >= len {
                    return list_value(Vec::new(), returned);
                }
                let to = (from + length).min(len);
                list_value(items[from as usize..to as usize].to_vec(), returned)
            },
        ),
        RowFunction::new(
            "array_first",
            nested,
            "array_first(array(E))",
            |types| element(&types[0]),
            |args, returned| match list_items(&args[0])?.into_iter().next() {
                Some(first) => Ok(first),
                None => ScalarValue::try_from(returned),
            },
        ),
        RowFunction::new(
            "array_last",
            nested,
            "array_last(array(E))",
            |types| element(&types[0]),
            |args, returned| match list_items(&args[0])?.pop() {
                Some(last) => Ok(last),
                None => ScalarValue::try_from(returned),
            },
        ),
        RowFunction::new(
            "zip",
            &[
                &[Arg::Nested, Arg::Nested],
                &[Arg::Nested, Arg::Nested, Arg::Nested],
                &[Arg::Nested, Arg::Nested, Arg::Nested, Arg::Nested],
                &[
                    Arg::Nested,
                    Arg::Nested,
                    Arg::Nested,
                    Arg::Nested,
                    Arg::Nested,
                ],
            ],
            "zip(array(T1), array(T2), …)",
            |types| {
                let fields = types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Ok(Field::new(format!("field{i}"), element(t)?, true)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(list_type(DataType::Struct(fields.into())))
            },
            |args, returned| {
                let lists = args.iter().map(list_items).collect::<Result<Vec<_>>>()?;
                let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
                let DataType::List(row) = returned else {
                    return plan_err!("zip returns an array");
                };
                let DataType::Struct(fields) = row.data_type() else {
                    return plan_err!("zip returns an array of rows");
                };
                let mut rows = Vec::with_capacity(longest);
                for i in 0..longest {
                    let values = lists
                        .iter()
                        .zip(fields.iter())
                        .map(|(list, field)| match list.get(i) {
                            Some(v) => Ok(v.clone()),
                            None => ScalarValue::try_from(field.data_type()),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let columns = values
                        .iter()
                        .map(|v| v.to_array_of_size(1))
                        .collect::<Result<Vec<_>>>()?;
                    let row = datafusion::arrow::array::StructArray::try_new(
                        fields.clone(),
                        columns,
                        None,
                    )?;
                    rows.push(ScalarValue::Struct(std::sync::Arc::new(row)));
                }
                list_value(rows, returned)
            },
        ),
        RowFunction::new(
            "shuffle",
            nested,
            "shuffle(array(T))",
            |types| Ok(types[0].clone()),
            |args, returned| {
                let mut items = list_items(&args[0])?;
                fastrand::shuffle(&mut items);
                list_value(items, returned)
            },
        )
        .volatile(),
    ] {
        ctx.register_udf(function.udf());
    }
}

fn element(data_type: &DataType) -> Result<DataType> {
    match data_type {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Ok(f.data_type().clone())
        }
        DataType::Null => Ok(DataType::Null),
        other => plan_err!(
            "Expected an array, got {}",
            crate::types::trino_type_name(other)
        ),
    }
}

/// The map type of `map_from_entries` (`multi`: of `multimap_from_entries`).
fn entry_map_type(array: &DataType, multi: bool) -> Result<DataType> {
    let DataType::Struct(fields) = element(array)? else {
        return plan_err!("Expected an array of rows (key, value)");
    };
    if fields.len() != 2 {
        return plan_err!("Expected an array of rows (key, value)");
    }
    let value = fields[1].data_type().clone();
    let value = if multi { list_type(value) } else { value };
    Ok(map_type(fields[0].data_type().clone(), value))
}

fn from_entries(array: &ScalarValue, returned: &DataType, multi: bool) -> Result<ScalarValue> {
    let mut entries: Vec<(ScalarValue, Vec<ScalarValue>)> = Vec::new();
    let mut at: HashMap<ScalarValue, usize> = HashMap::new();
    for item in list_items(array)? {
        let ScalarValue::Struct(row) = &item else {
            return Err(invalid_argument("map entry cannot be null"));
        };
        if item.is_null() {
            return Err(invalid_argument("map entry cannot be null"));
        }
        let key = ScalarValue::try_from_array(row.column(0), 0)?;
        let value = ScalarValue::try_from_array(row.column(1), 0)?;
        if key.is_null() {
            return Err(invalid_argument("map key cannot be null"));
        }
        match at.get(&key) {
            Some(i) if multi => entries[*i].1.push(value),
            Some(_) => {
                return Err(invalid_argument(format!(
                    "Duplicate map keys ({key}) are not allowed"
                )))
            }
            None => {
                at.insert(key.clone(), entries.len());
                entries.push((key, vec![value]));
            }
        }
    }
    let value_type = match returned {
        DataType::Map(e, _) => match e.data_type() {
            DataType::Struct(kv) => kv[1].data_type().clone(),
            _ => DataType::Null,
        },
        _ => DataType::Null,
    };
    let entries = entries
        .into_iter()
        .map(|(k, values)| {
            let value = if multi {
                list_value(values, &value_type)?
            } else {
                values.into_iter().next().unwrap_or(ScalarValue::Null)
            };
            Ok((k, value))
        })
        .collect::<Result<Vec<_>>>()?;
    map_value(entries, returned)
}

/// `map_concat`: the union of the maps, a later map's value winning for a shared key.
fn concat_maps(args: &[ScalarValue], returned: &DataType) -> Result<ScalarValue> {
    let mut entries: Vec<(ScalarValue, ScalarValue)> = Vec::new();
    let mut at: HashMap<ScalarValue, usize> = HashMap::new();
    for map in args {
        for (key, value) in map_entries(map)? {
            match at.get(&key) {
                Some(i) => entries[*i].1 = value,
                None => {
                    at.insert(key.clone(), entries.len());
                    entries.push((key, value));
                }
            }
        }
    }
    map_value(entries, returned)
}
