//! Trino's `UNNEST` of arrays of rows and of maps: an array of rows unnests into one column
//! per field of its rows (`UNNEST(ARRAY[ROW('Java', 1995)]) AS t(language, year)`), a map into
//! two, its keys and its values, beside the columns of the other arrays. DataFusion unnests
//! each argument into one column (a row stays a row) and takes no map, so a relation planner
//! plans these `UNNEST`s: the maps as their entries, the arrays unnested together, and a
//! projection of each row's fields. Its plan keeps the shape of DataFusion's (a projection
//! over an unnest of a projection of one row), which `LateralUnnest` turns into an unnest of
//! the left side under `CROSS JOIN UNNEST(t.a)`. Other `UNNEST`s are left to DataFusion.

use std::collections::HashSet;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema, Result, UnnestOptions};
use datafusion::functions_nested::expr_fn::map_entries;
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlanBuilder};
use datafusion::sql::sqlparser::ast::TableFactor;

use crate::functions::row_field;

#[derive(Debug)]
pub(crate) struct TrinoUnnest;

/// One argument of the `UNNEST`: the array to unnest (a map's entries) and, for an array of
/// rows, the names of the rows' fields.
struct Argument {
    array: Expr,
    fields: Option<Vec<String>>,
}

impl RelationPlanner for TrinoUnnest {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> Result<RelationPlanning> {
        let TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_offset_alias: None,
            with_ordinality: false,
        } = &relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let schema = DFSchema::empty();
        let mut arguments = Vec::with_capacity(array_exprs.len());
        for sql in array_exprs {
            let expr = context.sql_to_expr(sql.clone(), &schema)?;
            let (array, element) = match expr.get_type(&schema)? {
                DataType::Map(entries, _) => (map_entries(expr), entries.data_type().clone()),
                DataType::List(element)
                | DataType::LargeList(element)
                | DataType::FixedSizeList(element, _) => (expr, element.data_type().clone()),
                _ => (expr, DataType::Null),
            };
            let fields = match element {
                DataType::Struct(fields) => Some(fields.iter().map(|f| f.name().clone()).collect()),
                _ => None,
            };
            arguments.push(Argument { array, fields });
        }
        if arguments.iter().all(|a| a.fields.is_none()) {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        }
        let names: Vec<String> = (0..arguments.len())
            .map(|i| format!("$unnest{i}"))
            .collect();
        let arrays = arguments
            .iter()
            .zip(&names)
            .map(|(argument, name)| argument.array.clone().alias(name));
        let unnested = LogicalPlanBuilder::empty(true)
            .project(arrays)?
            .unnest_columns_with_options(
                names.iter().map(Column::from_name).collect(),
                UnnestOptions::new().with_preserve_nulls(false),
            )?;
        // The columns: each row's fields, the other arrays' elements; named by the field
        // (the alias list renames them), unique.
        let mut taken = HashSet::new();
        let mut unique = |name: String| {
            let mut candidate = name.clone();
            let mut n = 1;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{name}_{n}");
                n += 1;
            }
            candidate
        };
        let mut columns = Vec::new();
        for (argument, name) in arguments.iter().zip(&names) {
            let column = Expr::Column(Column::from_name(name));
            match &argument.fields {
                Some(fields) => {
                    // By position: DataFusion pushes `get_field` below the unnest, onto
                    // the array it reads no field of.
                    for (at, field) in fields.iter().enumerate() {
                        let value = row_field(column.clone(), at + 1);
                        columns.push(value.alias(unique(field.clone())));
                    }
                }
                None => {
                    let position = columns.len();
                    columns.push(column.alias(unique(format!("_col{position}"))));
                }
            }
        }
        let plan = unnested.project(columns)?.build()?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            plan,
            alias.clone(),
        ))))
    }
}
