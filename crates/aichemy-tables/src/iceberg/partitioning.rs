//! Trino's `partitioning = ARRAY['col', 'day(ts)', 'bucket(id, 16)']` to Iceberg
//! partition specs and back.

use iceberg::spec::{PartitionSpec, Schema, Transform, UnboundPartitionSpec};

use crate::{Result, TableError};

fn invalid(message: String) -> TableError {
    TableError::InvalidProperty {
        property: "partitioning".into(),
        message,
    }
}

/// Parses one partitioning expression into (source column, transform, partition field name).
fn parse_field(text: &str) -> Result<(String, Transform, String)> {
    let text = text.trim();
    let Some(open) = text.find('(') else {
        let column = text.to_ascii_lowercase();
        return Ok((column.clone(), Transform::Identity, column));
    };
    let close = text
        .rfind(')')
        .filter(|close| *close == text.len() - 1)
        .ok_or_else(|| invalid(format!("Unable to parse partitioning value: {text}")))?;
    let function = text[..open].trim().to_ascii_lowercase();
    let args: Vec<&str> = text[open + 1..close].split(',').map(str::trim).collect();
    let column = args[0].to_ascii_lowercase();
    let number = |what: &str| -> Result<u32> {
        args.get(1)
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid(format!("{what} needs a positive number: {text}")))
    };
    let (transform, suffix) = match (function.as_str(), args.len()) {
        ("year", 1) => (Transform::Year, "year".to_string()),
        ("month", 1) => (Transform::Month, "month".to_string()),
        ("day", 1) => (Transform::Day, "day".to_string()),
        ("hour", 1) => (Transform::Hour, "hour".to_string()),
        ("void", 1) => (Transform::Void, "null".to_string()),
        ("bucket", 2) => (Transform::Bucket(number("bucket")?), "bucket".to_string()),
        ("truncate", 2) => (
            Transform::Truncate(number("truncate")?),
            "trunc".to_string(),
        ),
        _ => {
            return Err(invalid(format!(
                "Unable to parse partitioning value: {text}"
            )))
        }
    };
    let name = format!("{column}_{suffix}");
    Ok((column, transform, name))
}

/// Builds the partition spec for a schema from Trino partitioning expressions.
pub(crate) fn partition_spec(schema: &Schema, fields: &[String]) -> Result<UnboundPartitionSpec> {
    let mut builder = UnboundPartitionSpec::builder();
    for text in fields {
        let (column, transform, name) = parse_field(text)?;
        let source = schema
            .field_by_name(&column)
            .ok_or_else(|| invalid(format!("Column '{column}' does not exist: {text}")))?;
        if !source.field_type.is_primitive() {
            return Err(invalid(format!(
                "Cannot partition by non-primitive column '{column}'"
            )));
        }
        builder = builder
            .add_partition_field(source.id, name, transform)
            .map_err(|e| invalid(e.message().to_string()))?;
    }
    Ok(builder.build())
}

/// The partition spec as Trino prints it in `SHOW CREATE TABLE`.
pub(crate) fn describe(schema: &Schema, spec: &PartitionSpec) -> Vec<String> {
    spec.fields()
        .iter()
        .filter_map(|field| {
            let column = schema.name_by_field_id(field.source_id)?.to_string();
            Some(match field.transform {
                Transform::Identity => column,
                Transform::Year => format!("year({column})"),
                Transform::Month => format!("month({column})"),
                Transform::Day => format!("day({column})"),
                Transform::Hour => format!("hour({column})"),
                Transform::Void => format!("void({column})"),
                Transform::Bucket(n) => format!("bucket({column}, {n})"),
                Transform::Truncate(w) => format!("truncate({column}, {w})"),
                Transform::Unknown => format!("unknown({column})"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trino_partitioning() {
        assert_eq!(parse_field("day(ts)").unwrap().1, Transform::Day);
        assert_eq!(
            parse_field("bucket(id, 16)").unwrap().1,
            Transform::Bucket(16)
        );
        assert_eq!(parse_field("dt").unwrap().2, "dt");
        assert!(parse_field("bucket(id)").is_err());
        assert!(parse_field("explode(x)").is_err());
    }
}
