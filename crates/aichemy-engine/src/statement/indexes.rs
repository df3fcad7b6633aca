//! The index procedures' arguments: `ALTER TABLE t EXECUTE create_vector_index(column =>
//! 'embedding', type => 'IVF_PQ', metric => 'cosine', partitions => 256, …)`,
//! `create_text_index(column => 'body', …)` and `drop_index(name => 'embedding_idx')`, read
//! into the change the table's format makes (Lance's; others refuse it as NOT_SUPPORTED).
//! Arguments are named (any order) or given in the order listed for each procedure.

use aichemy_tables::search::{
    IndexChange, IndexKind, Metric, TextIndex, VectorIndex, VectorIndexType,
};
use datafusion::sql::sqlparser::ast::{Expr, Value};

use crate::error::{ErrorCode, Result, TrinoError};

use super::procedures::{bigint_argument, invalid_argument, text_argument};

/// The arguments each procedure takes, in their positional order.
const VECTOR: &[&str] = &[
    "column",
    "type",
    "metric",
    "partitions",
    "sub_vectors",
    "bits",
    "m",
    "ef_construction",
    "max_iterations",
    "sample_rate",
    "name",
    "replace",
];
const TEXT: &[&str] = &[
    "column",
    "with_position",
    "lower_case",
    "stem",
    "remove_stop_words",
    "ascii_folding",
    "language",
    "name",
    "replace",
];
const DROP: &[&str] = &["name"];

fn procedure_error(message: impl Into<String>) -> TrinoError {
    TrinoError::new(ErrorCode::INVALID_PROCEDURE_ARGUMENT, message)
}

/// The arguments by name, each at most once and each one the procedure takes.
struct Arguments<'a> {
    procedure: &'a str,
    values: Vec<(&'static str, &'a Expr)>,
}

impl<'a> Arguments<'a> {
    fn read(
        procedure: &'a str,
        names: &[&'static str],
        given: &'a [(Option<String>, Expr)],
    ) -> Result<Self> {
        let mut values: Vec<(&'static str, &'a Expr)> = Vec::new();
        for (i, (name, value)) in given.iter().enumerate() {
            let name = match name {
                Some(name) => names
                    .iter()
                    .find(|n| n.eq_ignore_ascii_case(name))
                    .copied()
                    .ok_or_else(|| {
                        procedure_error(format!(
                            "Procedure {procedure} has no argument {name}; it takes {}",
                            names.join(", ")
                        ))
                    })?,
                None => *names.get(i).ok_or_else(|| {
                    procedure_error(format!(
                        "Too many arguments for procedure {procedure}: it takes {}",
                        names.join(", ")
                    ))
                })?,
            };
            if values.iter().any(|(n, _)| *n == name) {
                return Err(procedure_error(format!(
                    "Duplicate procedure argument: {name}"
                )));
            }
            values.push((name, value));
        }
        Ok(Self { procedure, values })
    }

    fn get(&self, name: &str) -> Option<&'a Expr> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| *e)
    }

    fn text(&self, name: &str) -> Result<Option<String>> {
        self.get(name).map(text_argument).transpose()
    }

    fn required_text(&self, name: &str) -> Result<String> {
        self.text(name)?.ok_or_else(|| {
            procedure_error(format!(
                "Required procedure argument '{name}' is missing for {}",
                self.procedure
            ))
        })
    }

    fn count(&self, name: &str) -> Result<Option<usize>> {
        let Some(expr) = self.get(name) else {
            return Ok(None);
        };
        let n = bigint_argument(expr)?;
        match usize::try_from(n) {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(procedure_error(format!(
                "{name} must be a positive integer: {n}"
            ))),
        }
    }

    fn flag(&self, name: &str, default: bool) -> Result<bool> {
        match self.get(name) {
            None => Ok(default),
            Some(Expr::Value(value)) => match &value.value {
                Value::Boolean(b) => Ok(*b),
                _ => Err(invalid_argument(self.get(name).expect("present"))),
            },
            Some(other) => Err(invalid_argument(other)),
        }
    }
}

/// The index change `procedure` asks for with `arguments`.
pub(crate) fn index_change(
    procedure: &str,
    arguments: &[(Option<String>, Expr)],
) -> Result<IndexChange> {
    match procedure {
        "drop_index" => {
            let args = Arguments::read(procedure, DROP, arguments)?;
            Ok(IndexChange::Drop {
                name: args.required_text("name")?,
            })
        }
        "create_text_index" => {
            let args = Arguments::read(procedure, TEXT, arguments)?;
            let defaults = TextIndex::default();
            let spec = TextIndex {
                with_position: args.flag("with_position", defaults.with_position)?,
                lower_case: args.flag("lower_case", defaults.lower_case)?,
                stem: args.flag("stem", defaults.stem)?,
                remove_stop_words: args.flag("remove_stop_words", defaults.remove_stop_words)?,
                ascii_folding: args.flag("ascii_folding", defaults.ascii_folding)?,
                language: args.text("language")?,
            };
            Ok(IndexChange::Create {
                name: args.text("name")?,
                column: args.required_text("column")?,
                kind: IndexKind::Text(spec),
                replace: args.flag("replace", false)?,
            })
        }
        _ => {
            let args = Arguments::read(procedure, VECTOR, arguments)?;
            let index_type = match args.text("type")? {
                None => VectorIndexType::IvfPq,
                Some(name) => VectorIndexType::parse(&name).ok_or_else(|| {
                    procedure_error(format!(
                        "Unknown vector index type '{name}': expected IVF_PQ, IVF_HNSW_SQ, \
                         IVF_HNSW_PQ, IVF_SQ or IVF_FLAT"
                    ))
                })?,
            };
            let metric = match args.text("metric")? {
                None => Metric::L2,
                Some(name) => Metric::parse(&name).ok_or_else(|| {
                    procedure_error(format!(
                        "Unknown metric '{name}': expected l2, cosine or dot"
                    ))
                })?,
            };
            let bits = match args.count("bits")? {
                None => None,
                Some(b) => Some(
                    u8::try_from(b)
                        .ok()
                        .filter(|b| matches!(b, 4 | 8))
                        .ok_or_else(|| procedure_error(format!("bits must be 4 or 8: {b}")))?,
                ),
            };
            let spec = VectorIndex {
                index_type,
                metric,
                partitions: args.count("partitions")?,
                sub_vectors: args.count("sub_vectors")?,
                bits,
                m: args.count("m")?,
                ef_construction: args.count("ef_construction")?,
                max_iterations: args.count("max_iterations")?,
                sample_rate: args.count("sample_rate")?,
            };
            Ok(IndexChange::Create {
                name: args.text("name")?,
                column: args.required_text("column")?,
                kind: IndexKind::Vector(spec),
                replace: args.flag("replace", false)?,
            })
        }
    }
}
