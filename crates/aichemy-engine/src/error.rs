//! One error model for every SQL entry point, in Trino's terms: an error name and code
//! from Trino's `StandardErrorCode`, an error type, Trino's wording, and for syntax errors
//! the line and column.

use std::fmt;

use aichemy_tables::TableError;
use datafusion::error::DataFusionError;

/// Trino's error type: who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    UserError,
    InternalError,
    InsufficientResources,
    External,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::UserError => "USER_ERROR",
            ErrorType::InternalError => "INTERNAL_ERROR",
            ErrorType::InsufficientResources => "INSUFFICIENT_RESOURCES",
            ErrorType::External => "EXTERNAL",
        }
    }
}

macro_rules! error_codes {
    ($($name:ident = $code:literal, $kind:ident;)*) => {
        /// Trino's standard error codes that AIchemy reports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum ErrorCode { $($name,)* }

        impl ErrorCode {
            /// The name clients see (`TABLE_NOT_FOUND`).
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }
            /// Trino's numeric code.
            pub fn code(self) -> i32 {
                match self { $(ErrorCode::$name => $code,)* }
            }
            pub fn error_type(self) -> ErrorType {
                match self { $(ErrorCode::$name => ErrorType::$kind,)* }
            }
        }
    };
}

error_codes! {
    GENERIC_USER_ERROR = 0, UserError;
    SYNTAX_ERROR = 1, UserError;
    ABANDONED_QUERY = 2, UserError;
    USER_CANCELED = 3, UserError;
    PERMISSION_DENIED = 4, UserError;
    NOT_FOUND = 5, UserError;
    FUNCTION_NOT_FOUND = 6, UserError;
    INVALID_FUNCTION_ARGUMENT = 7, UserError;
    DIVISION_BY_ZERO = 8, UserError;
    INVALID_CAST_ARGUMENT = 9, UserError;
    INVALID_VIEW = 11, UserError;
    ALREADY_EXISTS = 12, UserError;
    NOT_SUPPORTED = 13, UserError;
    INVALID_SESSION_PROPERTY = 14, UserError;
    CONSTRAINT_VIOLATION = 16, UserError;
    TRANSACTION_CONFLICT = 17, UserError;
    INVALID_TABLE_PROPERTY = 18, UserError;
    NUMERIC_VALUE_OUT_OF_RANGE = 19, UserError;
    PROCEDURE_NOT_FOUND = 29, UserError;
    INVALID_PROCEDURE_ARGUMENT = 30, UserError;
    INVALID_SCHEMA_PROPERTY = 33, UserError;
    SCHEMA_NOT_EMPTY = 34, UserError;
    EXCEEDED_FUNCTION_MEMORY_LIMIT = 37, UserError;
    ADMINISTRATIVELY_KILLED = 38, UserError;
    TYPE_NOT_FOUND = 43, UserError;
    CATALOG_NOT_FOUND = 44, UserError;
    SCHEMA_NOT_FOUND = 45, UserError;
    TABLE_NOT_FOUND = 46, UserError;
    COLUMN_NOT_FOUND = 47, UserError;
    ROLE_NOT_FOUND = 48, UserError;
    MISMATCHED_COLUMN_ALIASES = 61, UserError;
    SCHEMA_ALREADY_EXISTS = 49, UserError;
    TABLE_ALREADY_EXISTS = 50, UserError;
    COLUMN_ALREADY_EXISTS = 51, UserError;
    ROLE_ALREADY_EXISTS = 52, UserError;
    DUPLICATE_COLUMN_NAME = 54, UserError;
    MISSING_COLUMN_NAME = 55, UserError;
    MISSING_CATALOG_NAME = 56, UserError;
    MISSING_SCHEMA_NAME = 57, UserError;
    TYPE_MISMATCH = 58, UserError;
    INVALID_LITERAL = 59, UserError;
    AMBIGUOUS_NAME = 62, UserError;
    INVALID_ARGUMENTS = 76, UserError;
    INVALID_PRIVILEGE = 78, UserError;
    INVALID_PARAMETER_USAGE = 80, UserError;
    INVALID_ROW_FILTER = 84, UserError;
    INVALID_COLUMN_MASK = 85, UserError;
    STACK_OVERFLOW = 108, UserError;
    MERGE_TARGET_ROW_MULTIPLE_MATCHES = 119, UserError;
    GENERIC_INTERNAL_ERROR = 65536, InternalError;
    SERVER_SHUTTING_DOWN = 65545, InternalError;
    QUERY_QUEUE_FULL = 131074, InsufficientResources;
    EXCEEDED_TIME_LIMIT = 131075, InsufficientResources;
    EXCEEDED_CPU_LIMIT = 131077, InsufficientResources;
    EXCEEDED_LOCAL_MEMORY_LIMIT = 131079, InsufficientResources;
    EXCEEDED_SCAN_LIMIT = 131081, InsufficientResources;
    GENERIC_EXTERNAL = 133000, External;
    // HIVE_METASTORE_ERROR: Trino's hive connector, the metastore could not be reached.
    HIVE_METASTORE_ERROR = 16777216, External;
    // JDBC_ERROR: Trino's JDBC-based connectors (PostgreSQL), an error of the remote database.
    JDBC_ERROR = 67108864, External;
}

/// A line and column (1-based) in the statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorLocation {
    pub line: u64,
    pub column: u64,
}

/// An error as a Trino client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrinoError {
    pub code: ErrorCode,
    pub message: String,
    pub location: Option<ErrorLocation>,
}

impl TrinoError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            location: None,
        }
    }

    pub fn at(mut self, location: Option<ErrorLocation>) -> Self {
        self.location = location;
        self
    }

    /// The message with Trino's `line L:C: ` prefix when the error has a location.
    pub fn full_message(&self) -> String {
        match self.location {
            Some(at) => format!("line {}:{}: {}", at.line, at.column, self.message),
            None => self.message.clone(),
        }
    }

    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NOT_SUPPORTED, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::GENERIC_INTERNAL_ERROR, message)
    }

    /// A panic's payload as the error of the statement that hit it: GENERIC_INTERNAL_ERROR
    /// with the panic's message, never its backtrace or source location.
    pub fn panicked(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        tracing::error!(%message, "a statement panicked");
        Self::internal(format!("Query failed with an internal error: {message}"))
    }

    pub fn table_not_found(name: &str) -> Self {
        Self::new(
            ErrorCode::TABLE_NOT_FOUND,
            format!("Table '{name}' does not exist"),
        )
    }

    pub fn schema_not_found(schema: &str) -> Self {
        Self::new(
            ErrorCode::SCHEMA_NOT_FOUND,
            format!("Schema '{schema}' does not exist"),
        )
    }

    pub fn catalog_not_found(catalog: &str) -> Self {
        Self::new(
            ErrorCode::CATALOG_NOT_FOUND,
            format!("Catalog '{catalog}' not found"),
        )
    }
}

impl fmt::Display for TrinoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.full_message())
    }
}

impl std::error::Error for TrinoError {}

pub type Result<T, E = TrinoError> = std::result::Result<T, E>;

impl From<TableError> for TrinoError {
    fn from(e: TableError) -> Self {
        // A user's error inside a format's work (a cast failing in a row it writes) stays
        // the user's.
        if let TableError::Format { source, .. } = &e {
            let mapped = from_foreign(source.as_ref());
            if mapped.code.error_type() == ErrorType::UserError {
                return mapped;
            }
        }
        let code = match &e {
            TableError::SchemaNotFound { .. } => ErrorCode::SCHEMA_NOT_FOUND,
            TableError::SchemaAlreadyExists { .. } => ErrorCode::SCHEMA_ALREADY_EXISTS,
            TableError::SchemaNotEmpty { .. } => ErrorCode::SCHEMA_NOT_EMPTY,
            TableError::TableNotFound { .. } => ErrorCode::TABLE_NOT_FOUND,
            TableError::TableAlreadyExists { .. } => ErrorCode::TABLE_ALREADY_EXISTS,
            TableError::ColumnAlreadyExists { .. } => ErrorCode::COLUMN_ALREADY_EXISTS,
            TableError::ColumnNotFound { .. } => ErrorCode::COLUMN_NOT_FOUND,
            TableError::UnsupportedType { .. } => ErrorCode::NOT_SUPPORTED,
            TableError::InvalidProperty { .. } => ErrorCode::INVALID_TABLE_PROPERTY,
            TableError::NullInNotNullColumn { .. } => ErrorCode::CONSTRAINT_VIOLATION,
            TableError::Storage { .. } => ErrorCode::GENERIC_EXTERNAL,
            TableError::Remote { .. } => ErrorCode::JDBC_ERROR,
            TableError::MetastoreUnavailable { .. } => ErrorCode::HIVE_METASTORE_ERROR,
            TableError::Conflict { .. } => ErrorCode::TRANSACTION_CONFLICT,
            TableError::InvalidArgument { .. } => ErrorCode::INVALID_ARGUMENTS,
            TableError::NotSupported { .. } => ErrorCode::NOT_SUPPORTED,
            TableError::Format { .. } => ErrorCode::GENERIC_INTERNAL_ERROR,
        };
        let message = match e {
            TableError::InvalidProperty { message, .. } => message,
            other => other.to_string(),
        };
        TrinoError::new(code, message)
    }
}

impl From<aichemy_metastore::MetastoreError> for TrinoError {
    fn from(e: aichemy_metastore::MetastoreError) -> Self {
        match &e {
            aichemy_metastore::MetastoreError::ViewAlreadyExists { .. } => TrinoError::new(
                ErrorCode::TABLE_ALREADY_EXISTS,
                format!("View {}", e.to_string().trim_start_matches("view ")),
            ),
            _ if e.is_unavailable() => metastore_unavailable(&e),
            _ => TrinoError::internal(e.to_string()),
        }
    }
}

/// Trino's error when the metastore cannot be reached (its hive connector's
/// `HIVE_METASTORE_ERROR`).
fn metastore_unavailable(e: &aichemy_metastore::MetastoreError) -> TrinoError {
    TrinoError::new(
        ErrorCode::HIVE_METASTORE_ERROR,
        format!("Metastore is unavailable: {e}"),
    )
}

impl From<DataFusionError> for TrinoError {
    fn from(e: DataFusionError) -> Self {
        from_datafusion(e)
    }
}

/// Maps an error of a library (a table format's) by the causes it wraps: a cast failure
/// deep inside a Delta commit is still the user's INVALID_CAST_ARGUMENT.
fn from_foreign(error: &(dyn std::error::Error + 'static)) -> TrinoError {
    use datafusion::arrow::error::ArrowError;
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(arrow) = current.downcast_ref::<ArrowError>() {
            match arrow {
                ArrowError::CastError(message) | ArrowError::ParseError(message) => {
                    return TrinoError::new(ErrorCode::INVALID_CAST_ARGUMENT, message.clone())
                }
                ArrowError::DivideByZero => {
                    return TrinoError::new(ErrorCode::DIVISION_BY_ZERO, "Division by zero")
                }
                _ => {}
            }
        }
        if let Some(metastore) = current.downcast_ref::<aichemy_metastore::MetastoreError>() {
            if metastore.is_unavailable() {
                return metastore_unavailable(metastore);
            }
        }
        if let Some(df) = current.downcast_ref::<DataFusionError>() {
            let mapped = from_datafusion(df.clone_for_error());
            if mapped.code != ErrorCode::GENERIC_USER_ERROR {
                return mapped;
            }
        }
        cause = current.source();
    }
    TrinoError::new(ErrorCode::GENERIC_EXTERNAL, error.to_string())
}

/// Maps an engine error to Trino's name and wording, keeping user mistakes apart from bugs.
fn from_datafusion(e: DataFusionError) -> TrinoError {
    use datafusion::arrow::error::ArrowError;
    // However deep an operator wrapped it, running out of memory is the memory limit.
    if let DataFusionError::ResourcesExhausted(message) = e.find_root() {
        return exceeded_memory_limit(message);
    }
    match e {
        DataFusionError::Context(_, inner) => from_datafusion(*inner),
        DataFusionError::Diagnostic(diagnostic, inner) => {
            let error = from_datafusion(*inner);
            match diagnostic.span {
                Some(span) if error.location.is_none() && span.start.line > 0 => {
                    error.at(Some(ErrorLocation {
                        line: span.start.line,
                        column: span.start.column,
                    }))
                }
                _ => error,
            }
        }
        DataFusionError::Collection(errors) if !errors.is_empty() => {
            from_datafusion(errors.into_iter().next().expect("not empty"))
        }
        DataFusionError::Shared(inner) => from_datafusion(inner.as_ref().clone_for_error()),
        DataFusionError::External(inner) => match inner.downcast::<TrinoError>() {
            Ok(trino) => *trino,
            Err(inner) => match inner.downcast::<DataFusionError>() {
                Ok(df) => from_datafusion(*df),
                Err(inner) => match inner.downcast::<TableError>() {
                    Ok(table) => TrinoError::from(*table),
                    Err(inner) => from_foreign(inner.as_ref()),
                },
            },
        },
        DataFusionError::ArrowError(arrow, _) => match *arrow {
            ArrowError::DivideByZero => {
                TrinoError::new(ErrorCode::DIVISION_BY_ZERO, "Division by zero")
            }
            ArrowError::CastError(message) | ArrowError::ParseError(message) => {
                TrinoError::new(ErrorCode::INVALID_CAST_ARGUMENT, message)
            }
            ArrowError::ComputeError(message) if message.contains("overflow") => {
                TrinoError::new(ErrorCode::NUMERIC_VALUE_OUT_OF_RANGE, message)
            }
            overflow @ ArrowError::ArithmeticOverflow(_) => {
                TrinoError::new(ErrorCode::NUMERIC_VALUE_OUT_OF_RANGE, overflow.to_string())
            }
            ArrowError::ExternalError(inner) => match inner.downcast::<DataFusionError>() {
                Ok(df) => from_datafusion(*df),
                Err(inner) => TrinoError::new(ErrorCode::GENERIC_EXTERNAL, inner.to_string()),
            },
            other => TrinoError::new(ErrorCode::GENERIC_USER_ERROR, other.to_string()),
        },
        DataFusionError::SchemaError(schema, _) => {
            use datafusion::common::SchemaError;
            match *schema {
                SchemaError::FieldNotFound { field, .. } => TrinoError::new(
                    ErrorCode::COLUMN_NOT_FOUND,
                    format!("Column '{}' cannot be resolved", field.name),
                ),
                SchemaError::AmbiguousReference { field } => TrinoError::new(
                    ErrorCode::AMBIGUOUS_NAME,
                    format!("Column '{}' is ambiguous", field.name),
                ),
                SchemaError::DuplicateQualifiedField { name, .. }
                | SchemaError::DuplicateUnqualifiedField { name } => TrinoError::new(
                    ErrorCode::DUPLICATE_COLUMN_NAME,
                    format!("Column name '{name}' specified more than once"),
                ),
            }
        }
        DataFusionError::Plan(message) => plan_error(message),
        DataFusionError::SQL(parser, _) => {
            TrinoError::new(ErrorCode::SYNTAX_ERROR, parser.to_string())
        }
        DataFusionError::NotImplemented(message) => TrinoError::not_supported(message),
        DataFusionError::Execution(message) => execution_error(message),
        other => TrinoError::internal(other.to_string()),
    }
}

/// Trino's wording, with the consumers DataFusion names after it.
fn exceeded_memory_limit(detail: &str) -> TrinoError {
    TrinoError::new(
        ErrorCode::EXCEEDED_LOCAL_MEMORY_LIMIT,
        format!("Query exceeded per-node memory limit (execution.memory_limit) [{detail}]"),
    )
}

fn plan_error(message: String) -> TrinoError {
    let lower = message.to_ascii_lowercase();
    if lower.starts_with("invalid function") || lower.contains("function not found") {
        let name = message.split('\'').nth(1).unwrap_or("").to_string();
        return TrinoError::new(
            ErrorCode::FUNCTION_NOT_FOUND,
            format!("Function '{name}' not registered"),
        );
    }
    if lower.contains("cannot be cast")
        || lower.contains("cannot coerce")
        || lower.contains("no function matches")
        || lower.contains("failed to coerce")
        || lower.contains("does not support")
    {
        return TrinoError::new(ErrorCode::TYPE_MISMATCH, message);
    }
    TrinoError::new(ErrorCode::GENERIC_USER_ERROR, message)
}

fn execution_error(message: String) -> TrinoError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        TrinoError::new(ErrorCode::DIVISION_BY_ZERO, "Division by zero")
    } else if lower.contains("cast") {
        TrinoError::new(ErrorCode::INVALID_CAST_ARGUMENT, message)
    } else {
        TrinoError::new(ErrorCode::GENERIC_USER_ERROR, message)
    }
}

trait CloneForError {
    fn clone_for_error(&self) -> DataFusionError;
}

impl CloneForError for DataFusionError {
    fn clone_for_error(&self) -> DataFusionError {
        DataFusionError::Execution(self.to_string())
    }
}
