//! Trino's lambda functions (`transform`, `filter`, `reduce`, `any_match`, `all_match`,
//! `none_match`, `zip_with`, `array_sort` with a comparator; on maps `transform_keys`, `transform_values`, `map_filter`,
//! `map_zip_with`) for DataFusion 53, which has no higher-order functions.
//!
//! The dialect layer rewrites `transform(a, x -> body)` into
//! `"$lambda_transform"(a, 'body', captured1, captured2, …)`: the body becomes SQL text
//! over the parameters `__p0`, `__p1` and the captured outer columns `__c0`, `__c1`, …,
//! which arrive as extra arguments. Here the body is planned once per input schema and
//! evaluated vectorised over all elements of the batch at once (reduce: once per element
//! position). When the stack moves to DataFusion 54+, its own lambdas replace this.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, ListArray, UInt32Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast, filter as filter_array, interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::{exec_err, plan_err, DFSchema, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

mod pairs;

/// The lambda functions, by their Trino names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LambdaKind {
    Transform,
    Filter,
    Reduce,
    AnyMatch,
    AllMatch,
    NoneMatch,
    ZipWith,
    TransformKeys,
    TransformValues,
    MapFilter,
    MapZipWith,
    /// `try(x)`: a lambda without parameters, NULL where it fails.
    Try,
    /// `array_sort(a, (x, y) -> …)`: sorted by a comparator.
    ArraySort,
}

impl LambdaKind {
    pub fn from_trino_name(name: &str) -> Option<Self> {
        Some(match name {
            "transform" => Self::Transform,
            "filter" => Self::Filter,
            "reduce" => Self::Reduce,
            "any_match" => Self::AnyMatch,
            "all_match" => Self::AllMatch,
            "none_match" => Self::NoneMatch,
            "zip_with" => Self::ZipWith,
            "transform_keys" => Self::TransformKeys,
            "transform_values" => Self::TransformValues,
            "map_filter" => Self::MapFilter,
            "map_zip_with" => Self::MapZipWith,
            "array_sort" => Self::ArraySort,
            _ => return None,
        })
    }

    /// The name of the internal function the dialect rewrites a call to.
    pub fn udf_name(self) -> &'static str {
        match self {
            Self::Transform => "$lambda_transform",
            Self::Filter => "$lambda_filter",
            Self::Reduce => "$lambda_reduce",
            Self::AnyMatch => "$lambda_any_match",
            Self::AllMatch => "$lambda_all_match",
            Self::NoneMatch => "$lambda_none_match",
            Self::ZipWith => "$lambda_zip_with",
            Self::TransformKeys => "$lambda_transform_keys",
            Self::TransformValues => "$lambda_transform_values",
            Self::MapFilter => "$lambda_map_filter",
            Self::MapZipWith => "$lambda_map_zip_with",
            Self::Try => "$lambda_try",
            Self::ArraySort => "$lambda_array_sort",
        }
    }

    /// How many lambda bodies follow the array (and, for reduce, the initial state).
    pub fn lambda_count(self) -> usize {
        match self {
            Self::Reduce => 2,
            _ => 1,
        }
    }

    /// Leading value arguments before the lambda bodies.
    pub fn value_args(self) -> usize {
        match self {
            Self::Reduce | Self::ZipWith | Self::MapZipWith => 2,
            Self::Try => 0,
            _ => 1,
        }
    }

    const ALL: [LambdaKind; 13] = [
        Self::Transform,
        Self::Filter,
        Self::Reduce,
        Self::AnyMatch,
        Self::AllMatch,
        Self::NoneMatch,
        Self::ZipWith,
        Self::TransformKeys,
        Self::TransformValues,
        Self::MapFilter,
        Self::MapZipWith,
        Self::Try,
        Self::ArraySort,
    ];

    /// Whether the function works on maps (its lambda takes a key and a value).
    fn on_maps(self) -> bool {
        matches!(
            self,
            Self::TransformKeys | Self::TransformValues | Self::MapFilter | Self::MapZipWith
        )
    }
}

/// Registers the lambda functions; `functions` registers everything a lambda body may call.
pub fn register(ctx: &SessionContext, functions: fn(&SessionContext)) {
    for kind in LambdaKind::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(LambdaUdf::new(kind, functions)));
    }
}

type CompiledBodies = HashMap<(String, String), Arc<dyn PhysicalExpr>>;

struct LambdaUdf {
    kind: LambdaKind,
    signature: Signature,
    functions: fn(&SessionContext),
    /// The context lambda bodies are planned in, created on first use.
    planner: OnceLock<SessionContext>,
    compiled: Mutex<CompiledBodies>,
}

impl std::fmt::Debug for LambdaUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaUdf")
            .field("kind", &self.kind)
            .finish()
    }
}

impl PartialEq for LambdaUdf {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}
impl Eq for LambdaUdf {}
impl std::hash::Hash for LambdaUdf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state)
    }
}

/// The names the body refers to: `__p<i>` parameters, `__c<i>` captured columns.
pub fn param_name(i: usize) -> String {
    format!("__p{i}")
}
pub fn capture_name(i: usize) -> String {
    format!("__c{i}")
}

fn element_type(data_type: &DataType) -> Result<DataType> {
    match data_type {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Ok(f.data_type().clone())
        }
        DataType::Null => Ok(DataType::Null),
        other => plan_err!("Expected an array argument, got {other}"),
    }
}

impl LambdaUdf {
    fn new(kind: LambdaKind, functions: fn(&SessionContext)) -> Self {
        Self {
            kind,
            signature: Signature::variadic_any(Volatility::Immutable),
            functions,
            planner: OnceLock::new(),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    fn planner(&self) -> &SessionContext {
        self.planner.get_or_init(|| {
            let ctx = SessionContext::new();
            (self.functions)(&ctx);
            ctx
        })
    }

    /// Plans `body` over a schema of parameters then captures, caching the result.
    fn compile(
        &self,
        body: &str,
        params: &[DataType],
        captures: &[DataType],
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let schema = body_schema(params, captures);
        let key = (body.to_string(), format!("{schema:?}"));
        if let Some(expr) = self.compiled.lock().expect("lambda cache").get(&key) {
            return Ok(expr.clone());
        }
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let ctx = self.planner();
        let logical = ctx.parse_sql_expr(body, &df_schema)?;
        let physical = ctx.create_physical_expr(logical, &df_schema)?;
        self.compiled
            .lock()
            .expect("lambda cache")
            .insert(key, physical.clone());
        Ok(physical)
    }

    fn body_type(
        &self,
        body: &str,
        params: &[DataType],
        captures: &[DataType],
    ) -> Result<DataType> {
        let expr = self.compile(body, params, captures)?;
        expr.data_type(&body_schema(params, captures))
    }

    /// The reduce state type: the combine function's result type, starting from the
    /// initial value's type (Trino coerces the initial state the same way).
    fn reduce_state_type(
        &self,
        combine: &str,
        init: &DataType,
        element: &DataType,
        captures: &[DataType],
    ) -> Result<DataType> {
        let mut state = init.clone();
        for _ in 0..3 {
            let next = self.body_type(combine, &[state.clone(), element.clone()], captures)?;
            if next == state {
                return Ok(state);
            }
            state = next;
        }
        Ok(state)
    }
}

fn body_schema(params: &[DataType], captures: &[DataType]) -> Arc<Schema> {
    let fields: Vec<Field> = params
        .iter()
        .enumerate()
        .map(|(i, t)| Field::new(param_name(i), t.clone(), true))
        .chain(
            captures
                .iter()
                .enumerate()
                .map(|(i, t)| Field::new(capture_name(i), t.clone(), true)),
        )
        .collect();
    Arc::new(Schema::new(fields))
}

fn literal_text(value: Option<&ScalarValue>) -> Result<String> {
    match value {
        Some(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
        ) => Ok(s.clone()),
        _ => plan_err!("Lambda body must be a literal"),
    }
}

fn evaluate(
    expr: &Arc<dyn PhysicalExpr>,
    columns: Vec<ArrayRef>,
    rows: usize,
    params: &[DataType],
    captures: &[DataType],
) -> Result<ArrayRef> {
    let schema = body_schema(params, captures);
    let batch = RecordBatch::try_new_with_options(
        schema,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?;
    expr.evaluate(&batch)?.into_array(rows)
}

impl ScalarUDFImpl for LambdaUdf {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.kind.udf_name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("return_field_from_args is used instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let lambdas = self.kind.value_args()..self.kind.value_args() + self.kind.lambda_count();
        if types.len() < lambdas.end {
            return plan_err!("Wrong number of arguments for {}", self.name());
        }
        let captures = &types[lambdas.end..];
        let body = literal_text(args.scalar_arguments[lambdas.start])?;
        if self.kind == LambdaKind::Try {
            let result = self.body_type(&body, &[], captures)?;
            return Ok(Arc::new(Field::new(self.name(), result, true)));
        }
        if self.kind.on_maps() || matches!(self.kind, LambdaKind::ZipWith | LambdaKind::ArraySort) {
            let params = pair_params(self.kind, &types)?;
            let result = self.body_type(&body, &params, captures)?;
            let return_type = match self.kind {
                LambdaKind::ZipWith => {
                    DataType::List(Arc::new(Field::new("element", result, true)))
                }
                LambdaKind::TransformKeys => map_type_like(&types[0], result, params[1].clone()),
                LambdaKind::MapFilter => types[0].clone(),
                LambdaKind::ArraySort if result.is_integer() || result == DataType::Null => {
                    types[0].clone()
                }
                LambdaKind::ArraySort => {
                    return plan_err!("Lambda comparator must return an integer, not {result}")
                }
                _ => map_type_like(&types[0], params[0].clone(), result),
            };
            return Ok(Arc::new(Field::new(self.name(), return_type, true)));
        }
        let element = element_type(&types[0])?;
        let return_type = match self.kind {
            LambdaKind::Transform => DataType::List(Arc::new(Field::new(
                "element",
                self.body_type(&body, std::slice::from_ref(&element), captures)?,
                true,
            ))),
            LambdaKind::Filter => DataType::List(Arc::new(Field::new("element", element, true))),
            LambdaKind::AnyMatch | LambdaKind::AllMatch | LambdaKind::NoneMatch => {
                DataType::Boolean
            }
            LambdaKind::Reduce => {
                let output = literal_text(args.scalar_arguments[3])?;
                let state = self.reduce_state_type(&body, &types[1], &element, captures)?;
                self.body_type(&output, &[state], captures)?
            }
            _ => return plan_err!("{} is not a lambda over one array", self.name()),
        };
        Ok(Arc::new(Field::new(self.name(), return_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.clone().into_array(rows))
            .collect::<Result<_>>()?;
        let lambdas_end = self.kind.value_args() + self.kind.lambda_count();
        let body = match &args.args[self.kind.value_args()] {
            ColumnarValue::Scalar(s) => literal_text(Some(s))?,
            _ => return exec_err!("Lambda body must be a literal"),
        };
        let capture_arrays = &arrays[lambdas_end..];
        let capture_types: Vec<DataType> = capture_arrays
            .iter()
            .map(|a| a.data_type().clone())
            .collect();

        if self.kind == LambdaKind::Try {
            let expr = self.compile(&body, &[], &capture_types)?;
            return Ok(ColumnarValue::Array(try_rows(
                &expr,
                capture_arrays,
                &capture_types,
                rows,
                args.return_field.data_type(),
            )?));
        }
        let input = &arrays[0];
        if self.kind.on_maps() || matches!(self.kind, LambdaKind::ZipWith | LambdaKind::ArraySort) {
            let expr = self.compile(
                &body,
                &pair_params(
                    self.kind,
                    &arrays
                        .iter()
                        .map(|a| a.data_type().clone())
                        .collect::<Vec<_>>(),
                )?,
                &capture_types,
            )?;
            let result = pairs::evaluate(
                self.kind,
                &expr,
                &arrays,
                capture_arrays,
                &args.return_field,
                rows,
            )?;
            return Ok(ColumnarValue::Array(result));
        }
        if input.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(new_null_array(
                args.return_field.data_type(),
                rows,
            )));
        }
        let element = element_type(input.data_type())?;
        let list_type = DataType::List(Arc::new(Field::new("element", element.clone(), true)));
        let list = cast(input, &list_type)?;
        let list = list.as_list::<i32>();
        let offsets = list.value_offsets();
        let first = offsets[0] as usize;
        let values = list.values().slice(first, offsets[rows] as usize - first);
        // The row each element belongs to, to line captured values up with elements.
        let mut owner = Vec::with_capacity(values.len());
        for row in 0..rows {
            owner.extend(std::iter::repeat_n(
                row as u32,
                list.value_length(row) as usize,
            ));
        }
        let owner = UInt32Array::from(owner);
        let per_element = |arrays: &[ArrayRef]| -> Result<Vec<ArrayRef>> {
            arrays
                .iter()
                .map(|a| Ok(take(a.as_ref(), &owner, None)?))
                .collect()
        };

        let result: ArrayRef = match self.kind {
            LambdaKind::Transform => {
                let expr = self.compile(&body, std::slice::from_ref(&element), &capture_types)?;
                let mut columns = vec![values.clone()];
                columns.extend(per_element(capture_arrays)?);
                let mapped = evaluate(
                    &expr,
                    columns,
                    values.len(),
                    std::slice::from_ref(&element),
                    &capture_types,
                )?;
                let field = match args.return_field.data_type() {
                    DataType::List(f) => f.clone(),
                    _ => Arc::new(Field::new("element", mapped.data_type().clone(), true)),
                };
                let mapped = cast(&mapped, field.data_type())?;
                Arc::new(ListArray::try_new(
                    field,
                    rebased_offsets(offsets),
                    mapped,
                    list.nulls().cloned(),
                )?)
            }
            LambdaKind::Filter
            | LambdaKind::AnyMatch
            | LambdaKind::AllMatch
            | LambdaKind::NoneMatch => {
                let expr = self.compile(&body, std::slice::from_ref(&element), &capture_types)?;
                let mut columns = vec![values.clone()];
                columns.extend(per_element(capture_arrays)?);
                let mask = evaluate(
                    &expr,
                    columns,
                    values.len(),
                    std::slice::from_ref(&element),
                    &capture_types,
                )?;
                let mask = cast(&mask, &DataType::Boolean)?;
                let mask = mask.as_boolean();
                if self.kind == LambdaKind::Filter {
                    filter_rows(list, &values, mask, rows)?
                } else {
                    Arc::new(match_rows(self.kind, list, mask, rows))
                }
            }
            LambdaKind::Reduce => {
                let output_body = match &args.args[3] {
                    ColumnarValue::Scalar(s) => literal_text(Some(s))?,
                    _ => return exec_err!("Lambda body must be a literal"),
                };
                let state_type =
                    self.reduce_state_type(&body, arrays[1].data_type(), &element, &capture_types)?;
                let combine = self.compile(
                    &body,
                    &[state_type.clone(), element.clone()],
                    &capture_types,
                )?;
                let mut state = cast(&arrays[1], &state_type)?;
                let longest = (0..rows)
                    .map(|r| list.value_length(r) as usize)
                    .max()
                    .unwrap_or(0);
                for position in 0..longest {
                    let active: Vec<u32> = (0..rows)
                        .filter(|r| list.is_valid(*r) && list.value_length(*r) as usize > position)
                        .map(|r| r as u32)
                        .collect();
                    let element_index: UInt32Array = active
                        .iter()
                        .map(|r| (offsets[*r as usize] as usize - first + position) as u32)
                        .collect();
                    let active = UInt32Array::from(active);
                    let mut columns = vec![
                        take(state.as_ref(), &active, None)?,
                        take(values.as_ref(), &element_index, None)?,
                    ];
                    for capture in capture_arrays {
                        columns.push(take(capture.as_ref(), &active, None)?);
                    }
                    let next = evaluate(
                        &combine,
                        columns,
                        active.len(),
                        &[state_type.clone(), element.clone()],
                        &capture_types,
                    )?;
                    let next = cast(&next, &state_type)?;
                    let mut picks: Vec<(usize, usize)> = (0..rows).map(|r| (0, r)).collect();
                    for (i, row) in active.values().iter().enumerate() {
                        picks[*row as usize] = (1, i);
                    }
                    state = interleave(&[state.as_ref(), next.as_ref()], &picks)?;
                }
                let output = self.compile(
                    &output_body,
                    std::slice::from_ref(&state_type),
                    &capture_types,
                )?;
                let mut columns = vec![state];
                columns.extend(capture_arrays.iter().cloned());
                let out = evaluate(
                    &output,
                    columns,
                    rows,
                    std::slice::from_ref(&state_type),
                    &capture_types,
                )?;
                // A null array reduces to null.
                let nulls = BooleanArray::from(
                    (0..rows).map(|r| Some(list.is_null(r))).collect::<Vec<_>>(),
                );
                let empty = new_null_array(out.data_type(), rows);
                datafusion::arrow::compute::kernels::zip::zip(&nulls, &empty, &out)?
            }
            _ => return exec_err!("{} is not a lambda over one array", self.name()),
        };
        Ok(ColumnarValue::Array(result))
    }
}

/// `try(x)`: the body over all rows; where that fails, row by row, NULL for the rows that
/// fail.
fn try_rows(
    body: &Arc<dyn PhysicalExpr>,
    captures: &[ArrayRef],
    capture_types: &[DataType],
    rows: usize,
    returned: &DataType,
) -> Result<ArrayRef> {
    if let Ok(all) = evaluate(body, captures.to_vec(), rows, &[], capture_types) {
        return Ok(cast(&all, returned)?);
    }
    let mut values = Vec::with_capacity(rows);
    for row in 0..rows {
        let columns = captures.iter().map(|c| c.slice(row, 1)).collect();
        let value = evaluate(body, columns, 1, &[], capture_types)
            .and_then(|v| Ok(cast(&v, returned)?))
            .and_then(|v| ScalarValue::try_from_array(&v, 0));
        values.push(match value {
            Ok(v) => v,
            Err(_) => ScalarValue::try_from(returned)?,
        });
    }
    crate::functions::json::cast::array_of(values, returned)
}

/// The key and value types of a map type.
fn map_entry_types(data_type: &DataType) -> Result<(DataType, DataType)> {
    match data_type {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                Ok((kv[0].data_type().clone(), kv[1].data_type().clone()))
            }
            other => plan_err!("Expected map entries, got {other}"),
        },
        DataType::Null => Ok((DataType::Null, DataType::Null)),
        other => plan_err!("Expected a map argument, got {other}"),
    }
}

/// A map type laid out as `like` (a map type) with other key and value types.
fn map_type_like(like: &DataType, key: DataType, value: DataType) -> DataType {
    let (entries, key_name, value_name) = match like {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => (
                entries.name().clone(),
                kv[0].name().clone(),
                kv[1].name().clone(),
            ),
            _ => ("entries".into(), "key".into(), "value".into()),
        },
        _ => ("entries".into(), "key".into(), "value".into()),
    };
    DataType::Map(
        Arc::new(Field::new(
            entries,
            DataType::Struct(
                vec![
                    Field::new(key_name, key, false),
                    Field::new(value_name, value, true),
                ]
                .into(),
            ),
            false,
        )),
        false,
    )
}

/// The parameter types of the lambda of `zip_with` (two elements) and of the map
/// functions (key and value; key and both values for `map_zip_with`).
fn pair_params(kind: LambdaKind, types: &[DataType]) -> Result<Vec<DataType>> {
    Ok(match kind {
        LambdaKind::ZipWith => vec![element_type(&types[0])?, element_type(&types[1])?],
        LambdaKind::ArraySort => {
            let element = element_type(&types[0])?;
            vec![element.clone(), element]
        }
        LambdaKind::MapZipWith => {
            let (key, left) = map_entry_types(&types[0])?;
            let (_, right) = map_entry_types(&types[1])?;
            vec![key, left, right]
        }
        _ => {
            let (key, value) = map_entry_types(&types[0])?;
            vec![key, value]
        }
    })
}

fn rebased_offsets(offsets: &[i32]) -> OffsetBuffer<i32> {
    let first = offsets[0];
    OffsetBuffer::new(offsets.iter().map(|o| o - first).collect::<Vec<_>>().into())
}

fn filter_rows(
    list: &ListArray,
    values: &ArrayRef,
    mask: &BooleanArray,
    rows: usize,
) -> Result<ArrayRef> {
    let offsets = list.value_offsets();
    let first = offsets[0] as usize;
    let mut new_offsets = Vec::with_capacity(rows + 1);
    new_offsets.push(0i32);
    let mut kept = 0i32;
    for row in 0..rows {
        let (start, end) = (
            offsets[row] as usize - first,
            offsets[row + 1] as usize - first,
        );
        kept += (start..end)
            .filter(|i| mask.is_valid(*i) && mask.value(*i))
            .count() as i32;
        new_offsets.push(kept);
    }
    let keep = BooleanArray::from(
        (0..mask.len())
            .map(|i| Some(mask.is_valid(i) && mask.value(i)))
            .collect::<Vec<_>>(),
    );
    let filtered = filter_array(values.as_ref(), &keep)?;
    let field = match list.data_type() {
        DataType::List(f) => f.clone(),
        _ => unreachable!("cast to list above"),
    };
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(new_offsets.into()),
        filtered,
        list.nulls().cloned(),
    )?))
}

/// Trino's three-valued any/all/none match: a null predicate result makes the answer null
/// unless another element decides it.
fn match_rows(
    kind: LambdaKind,
    list: &ListArray,
    mask: &BooleanArray,
    rows: usize,
) -> BooleanArray {
    let offsets = list.value_offsets();
    let first = offsets[0] as usize;
    let mut out = BooleanBuilder::with_capacity(rows);
    for row in 0..rows {
        if list.is_null(row) {
            out.append_null();
            continue;
        }
        let range = offsets[row] as usize - first..offsets[row + 1] as usize - first;
        let (mut any_true, mut any_false, mut any_null) = (false, false, false);
        for i in range {
            if mask.is_null(i) {
                any_null = true;
            } else if mask.value(i) {
                any_true = true;
            } else {
                any_false = true;
            }
        }
        let answer = match kind {
            LambdaKind::AnyMatch if any_true => Some(true),
            LambdaKind::AnyMatch => (!any_null).then_some(false),
            LambdaKind::AllMatch if any_false => Some(false),
            LambdaKind::AllMatch => (!any_null).then_some(true),
            LambdaKind::NoneMatch if any_true => Some(false),
            LambdaKind::NoneMatch => (!any_null).then_some(true),
            _ => None,
        };
        out.append_option(answer);
    }
    out.finish()
}
