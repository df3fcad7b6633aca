//! `MERGE INTO target [AS t] USING source [AS s] ON condition WHEN …`, as Trino runs it:
//! each target row the condition matches to a source row takes the first `WHEN MATCHED
//! [AND …]` clause that applies (UPDATE SET or DELETE), each source row that matches no
//! target row the first `WHEN NOT MATCHED [AND …]` clause that applies (INSERT); a target
//! row that two source rows would change fails the statement with
//! `MERGE_TARGET_ROW_MULTIPLE_MATCHES`, and nothing is changed.
//!
//! Built on [`Target`]'s two passes (see `change.rs`), a target row named by its file and
//! its position there (`$path`, `$position`):
//!
//! 1. the files holding a row that a clause changes, their count and the most source rows
//!    that change one target row; then the number of rows to insert;
//! 2. the rows of those files afterwards and the inserted ones, as one query: the updated
//!    rows (target joined with source where an UPDATE clause applies), the rows no clause
//!    changes (no source row with an applicable clause), and the inserted rows (source rows
//!    without a target row, where an INSERT clause applies).

use datafusion::sql::sqlparser::ast::{
    Expr, Merge, MergeAction, MergeClauseKind, MergeInsertKind, TableFactor, Value,
};

use aichemy_tables::{RowChange, PATH_COLUMN, POSITION_COLUMN};

use super::change::{name_in_subqueries, parse_with_source, placeholder, quote, Target, SOURCE};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::Session;

/// What a MERGE clause does.
enum Action {
    /// New values by column position (`None` keeps the value).
    Update(Vec<Option<Expr>>),
    Delete,
    /// Values by column position (`None` is NULL).
    Insert(Vec<Option<Expr>>),
}

/// A MERGE's clauses as one expression per kind: `CASE WHEN p1 THEN 1 WHEN p2 THEN 2 …
/// ELSE 0 END`, the number of the clause that applies, written with placeholders into
/// a list of substitutes.
struct Clauses {
    substitutes: Vec<Expr>,
    matched: Vec<Action>,
    not_matched: Vec<Action>,
    matched_case: String,
    not_matched_case: String,
}

impl Clauses {
    fn placeholder_for(&mut self, expr: Expr) -> String {
        self.substitutes.push(expr);
        placeholder(self.substitutes.len() - 1)
    }
}

/// `MERGE INTO …`; answers the number of rows inserted, updated and deleted.
pub(crate) async fn merge(session: &Session, merge: Merge) -> Result<u64> {
    let TableFactor::Table { name, alias, .. } = &merge.table else {
        return Err(TrinoError::not_supported("MERGE INTO takes a table"));
    };
    if merge.output.is_some() {
        return Err(TrinoError::not_supported("MERGE … OUTPUT is not supported"));
    }
    let target = Target::load(session, name, alias.as_ref().map(|a| &a.name)).await?;
    let on = name_in_subqueries(*merge.on.clone());
    let mut clauses = Clauses {
        substitutes: vec![on],
        matched: Vec::new(),
        not_matched: Vec::new(),
        matched_case: String::new(),
        not_matched_case: String::new(),
    };
    let mut matched_whens = Vec::new();
    let mut not_matched_whens = Vec::new();
    for clause in merge.clauses {
        let predicate = clause
            .predicate
            .map(name_in_subqueries)
            .unwrap_or(Expr::Value(Value::Boolean(true).into()));
        let predicate = clauses.placeholder_for(predicate);
        match (clause.clause_kind, clause.action) {
            (MergeClauseKind::Matched, MergeAction::Update(update)) => {
                let values = target.assigned(
                    &update.assignments,
                    "Merge column name is specified more than once",
                )?;
                target.note_written(session, &values);
                clauses.matched.push(Action::Update(values));
                matched_whens.push(predicate);
            }
            (MergeClauseKind::Matched, MergeAction::Delete { .. }) => {
                clauses.matched.push(Action::Delete);
                matched_whens.push(predicate);
            }
            (
                MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget,
                MergeAction::Insert(insert),
            ) => {
                let MergeInsertKind::Values(rows) = insert.kind else {
                    return Err(TrinoError::not_supported("MERGE INSERT ROW"));
                };
                let [row] = rows.rows.as_slice() else {
                    return Err(TrinoError::new(
                        ErrorCode::SYNTAX_ERROR,
                        "MERGE INSERT takes one row of values",
                    ));
                };
                let positions: Vec<usize> = if insert.columns.is_empty() {
                    (0..target.table.columns.len()).collect()
                } else {
                    insert
                        .columns
                        .iter()
                        .map(|c| target.column_index(c))
                        .collect::<Result<_>>()?
                };
                if positions.len() != row.len() {
                    return Err(TrinoError::new(
                        ErrorCode::GENERIC_USER_ERROR,
                        format!(
                            "MERGE table column count ({}) doesn't match INSERT expression count ({})",
                            positions.len(),
                            row.len()
                        ),
                    ));
                }
                let mut values = vec![None; target.table.columns.len()];
                for (position, value) in positions.into_iter().zip(row) {
                    values[position] = Some(value.clone());
                }
                target.note_written(session, &values);
                clauses.not_matched.push(Action::Insert(values));
                not_matched_whens.push(predicate);
            }
            (kind, action) => {
                return Err(TrinoError::not_supported(format!(
                    "MERGE WHEN {kind} THEN {} is not supported",
                    match action {
                        MergeAction::Insert(_) => "INSERT",
                        MergeAction::Update(_) => "UPDATE",
                        MergeAction::Delete { .. } => "DELETE",
                    }
                )))
            }
        }
    }
    clauses.matched_case = case_of(&matched_whens);
    clauses.not_matched_case = case_of(&not_matched_whens);

    let t = quote(&target.alias);
    let path = quote(PATH_COLUMN);
    let position = quote(POSITION_COLUMN);
    let on = placeholder(0);
    let source = Some(&merge.source);

    // Pass 1: the files holding a row a clause changes, and the rows to insert.
    let (files, changed, most) = if clauses.matched.is_empty() {
        (Vec::new(), 0, 0)
    } else {
        let query = parse_with_source(
            &format!(
                "SELECT {path}, count(*), max(\"$matches\") FROM (\
                 SELECT {t}.{path} AS {path}, count(*) AS \"$matches\" \
                 FROM {rows} JOIN {SOURCE} ON {on} WHERE ({case}) > 0 \
                 GROUP BY {t}.{path}, {t}.{position}) AS \"$matched\" GROUP BY {path}",
                rows = target.from(),
                case = clauses.matched_case,
            ),
            clauses.substitutes.clone(),
            source,
        )?;
        target.files_of(session, query).await?
    };
    if most > 1 {
        return Err(TrinoError::new(
            ErrorCode::MERGE_TARGET_ROW_MULTIPLE_MATCHES,
            "One MERGE target table row matched more than one source row",
        ));
    }
    let unmatched = format!(
        "FROM {SOURCE} LEFT JOIN {all} ON {on} WHERE {t}.{path} IS NULL AND ({case}) > 0",
        all = target.relation("$all", &target.alias),
        case = clauses.not_matched_case,
    );
    let inserted = if clauses.not_matched.is_empty() {
        0
    } else {
        let query = parse_with_source(
            &format!("SELECT '', count(*) {unmatched}"),
            clauses.substitutes.clone(),
            source,
        )?;
        target.files_of(session, query).await?.1
    };
    if files.is_empty() && inserted == 0 {
        return Ok(0);
    }

    // Pass 2: the touched files' rows afterwards, and the inserted rows.
    let names: Vec<String> = target
        .table
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect();
    let columns = target.columns();
    let mut parts = Vec::new();
    if !files.is_empty() {
        let updates: Vec<usize> = clauses
            .matched
            .iter()
            .enumerate()
            .filter(|(_, action)| matches!(action, Action::Update(_)))
            .map(|(i, _)| i + 1)
            .collect();
        if !updates.is_empty() {
            let items = values_by_clause(&mut clauses, true, &columns, &names);
            parts.push(format!(
                "SELECT {items} FROM {rows} JOIN {SOURCE} ON {on} WHERE ({case}) IN ({updates})",
                rows = target.from(),
                case = clauses.matched_case,
                updates = updates
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        let kept = quote("$kept");
        parts.push(format!(
            "SELECT {items} FROM {rows} WHERE NOT EXISTS (SELECT 1 FROM {inner} JOIN {SOURCE} \
             ON {on} WHERE {t}.{path} = {kept}.{path} AND {t}.{position} = {kept}.{position} \
             AND ({case}) > 0)",
            items = target
                .columns_of("$kept")
                .iter()
                .zip(&names)
                .map(|(column, name)| format!("{column} AS {name}"))
                .collect::<Vec<_>>()
                .join(", "),
            rows = target.relation("$rows", "$kept"),
            inner = target.from(),
            case = clauses.matched_case,
        ));
    }
    if inserted > 0 {
        let items = values_by_clause(&mut clauses, false, &columns, &names);
        parts.push(format!("SELECT {items} {unmatched}"));
    }
    let query = parse_with_source(&parts.join(" UNION ALL "), clauses.substitutes, source)?;
    target
        .replace(session, query, files, RowChange::Merge)
        .await?;
    Ok(changed + inserted)
}

/// `CASE WHEN (p1) THEN 1 WHEN (p2) THEN 2 … ELSE 0 END` over the clauses' predicates.
fn case_of(whens: &[String]) -> String {
    if whens.is_empty() {
        return "0".to_string();
    }
    let arms: Vec<String> = whens
        .iter()
        .enumerate()
        .map(|(i, predicate)| format!("WHEN ({predicate}) IS TRUE THEN {}", i + 1))
        .collect();
    format!("CASE {} ELSE 0 END", arms.join(" "))
}

/// The select list of updated (`matched`) or inserted rows: each column the value of the
/// clause that applies, else the target's value (for an INSERT,
/// NULL), named as the table's column.
fn values_by_clause(
    clauses: &mut Clauses,
    matched: bool,
    columns: &[String],
    names: &[String],
) -> String {
    let case = if matched {
        clauses.matched_case.clone()
    } else {
        clauses.not_matched_case.clone()
    };
    let actions = std::mem::take(if matched {
        &mut clauses.matched
    } else {
        &mut clauses.not_matched
    });
    let mut items = Vec::with_capacity(columns.len());
    for (index, (column, name)) in columns.iter().zip(names).enumerate() {
        let mut arms = Vec::new();
        for (number, action) in actions.iter().enumerate() {
            let value = match action {
                Action::Update(values) | Action::Insert(values) => values[index].clone(),
                Action::Delete => None,
            };
            if let Some(value) = value {
                let value = clauses.placeholder_for(value);
                arms.push(format!("WHEN {} THEN {value}", number + 1));
            }
        }
        let otherwise = if matched { column.as_str() } else { "NULL" };
        items.push(if arms.is_empty() {
            format!("{otherwise} AS {name}")
        } else {
            format!(
                "CASE {case} {} ELSE {otherwise} END AS {name}",
                arms.join(" ")
            )
        });
    }
    if matched {
        clauses.matched = actions;
    } else {
        clauses.not_matched = actions;
    }
    items.join(", ")
}
