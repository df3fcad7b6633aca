//! Trino's hidden `$path` column: the data file each row of a lakehouse table is stored in.
//! A table has it only where a query names it. A SELECT that names `"$path"` (bare, or
//! qualified by a table's name or alias) reads that table as `t$path` — a scan that adds the
//! column, which `Lakehouse::relation` resolves — and its wildcards leave the column out,
//! so `SELECT *` stays the table's own columns.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias, TableFactor, TableWithJoins,
    Visit, VisitMut, Visitor, VisitorMut, WildcardAdditionalOptions,
};

use crate::error::{Result, TrinoError};
use crate::planner::{REF_SUFFIX, TIMESTAMP_SUFFIX, VERSION_SUFFIX};

/// The hidden column's name.
pub const PATH: &str = "$path";

/// The suffix of a relation read with its [`PATH`] column (`orders$path`,
/// `orders$version=42$path`).
pub const PATH_SUFFIX: &str = "$path";

/// Renames the relations whose `$path` a SELECT of `statement` names, and keeps that
/// column out of the SELECT's wildcards.
pub fn hidden_path_columns(statement: &mut Statement) -> Result<()> {
    let mut ctes = HashSet::new();
    let _ = VisitMut::visit(statement, &mut CteNames(&mut ctes));
    let mut selects = PerSelect {
        ctes: &ctes,
        error: None,
    };
    let _ = VisitMut::visit(statement, &mut selects);
    selects.error.map_or(Ok(()), Err)
}

/// The names the statement's WITH clauses give (a relation by such a name is no table).
struct CteNames<'a>(&'a mut HashSet<String>);

impl VisitorMut for CteNames<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

struct PerSelect<'a> {
    ctes: &'a HashSet<String>,
    error: Option<TrinoError>,
}

impl VisitorMut for PerSelect<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        // ORDER BY belongs to the query; it may name the column of a single SELECT's table.
        let mut order_refs = Vec::new();
        if let (Some(order_by), SetExpr::Select(_)) = (&query.order_by, query.body.as_ref()) {
            let _ = Visit::visit(
                order_by,
                &mut PathReferences {
                    depth: 0,
                    found: &mut order_refs,
                },
            );
        }
        if let Err(e) = self.body(&mut query.body, order_refs) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

impl PerSelect<'_> {
    fn body(&self, body: &mut SetExpr, order_refs: Vec<Reference>) -> Result<()> {
        match body {
            SetExpr::Select(select) => self.select(select, order_refs),
            SetExpr::SetOperation { left, right, .. } => {
                self.body(left, Vec::new())?;
                self.body(right, Vec::new())
            }
            _ => Ok(()),
        }
    }

    fn select(&self, select: &mut Select, mut references: Vec<Reference>) -> Result<()> {
        let _ = Visit::visit(
            &*select,
            &mut PathReferences {
                depth: 0,
                found: &mut references,
            },
        );
        if references.is_empty() {
            return Ok(());
        }
        let bare = references.contains(&Reference::Bare);
        let mut renamed = Vec::new();
        for from in &mut select.from {
            self.rename(from, bare, &references, &mut renamed);
        }
        for item in &mut select.projection {
            match item {
                SelectItem::Wildcard(options) => match renamed.len() {
                    0 => {}
                    1 => exclude_path(options),
                    _ => {
                        return Err(TrinoError::not_supported(
                            "SELECT * over several tables whose $path the query reads is not \
                             supported; name each table's columns (t.*)",
                        ))
                    }
                },
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(name),
                    options,
                ) => {
                    if let Some(last) = last_name(name) {
                        if renamed.contains(&last) {
                            exclude_path(options);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Renames the tables of one FROM item whose `$path` is read: all of them for a bare
    /// reference (an ambiguous one then fails as any ambiguous column does), else those
    /// a qualified reference names. Gathers the names the renamed tables answer to.
    fn rename(
        &self,
        from: &mut TableWithJoins,
        bare: bool,
        references: &[Reference],
        renamed: &mut Vec<String>,
    ) {
        self.rename_factor(&mut from.relation, bare, references, renamed);
        for join in &mut from.joins {
            self.rename_factor(&mut join.relation, bare, references, renamed);
        }
    }

    fn rename_factor(
        &self,
        factor: &mut TableFactor,
        bare: bool,
        references: &[Reference],
        renamed: &mut Vec<String>,
    ) {
        let (name, alias) = match factor {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => (name, alias),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => return self.rename(table_with_joins, bare, references, renamed),
            _ => return,
        };
        let single = name.0.len() == 1;
        let Some(ObjectNamePart::Identifier(last)) = name.0.last_mut() else {
            return;
        };
        if single && self.ctes.contains(&last.value.to_lowercase()) {
            return;
        }
        // A table, or one read at a version; never a metadata table (`t$files`).
        if let Some((_, suffix)) = last.value.split_once('$') {
            let versioned = [VERSION_SUFFIX, TIMESTAMP_SUFFIX, REF_SUFFIX]
                .iter()
                .any(|prefix| suffix.starts_with(&prefix[1..]));
            if !versioned {
                return;
            }
        }
        let answers_to = match alias {
            Some(alias) => alias.name.value.to_lowercase(),
            None => last.value.to_lowercase(),
        };
        if !bare && !references.contains(&Reference::Of(answers_to.clone())) {
            return;
        }
        if alias.is_none() {
            *alias = Some(TableAlias {
                explicit: true,
                name: last.clone(),
                columns: Vec::new(),
            });
        }
        let base = match last.quote_style {
            Some(_) => last.value.clone(),
            None => last.value.to_lowercase(),
        };
        *last = Ident::with_quote('"', format!("{base}{PATH_SUFFIX}"));
        renamed.push(answers_to);
    }
}

/// A reference to `$path`: bare, or qualified by the name a relation answers to.
#[derive(Debug, PartialEq)]
enum Reference {
    Bare,
    Of(String),
}

/// Gathers the references to `$path` of one SELECT, not those of the queries nested in it.
struct PathReferences<'a> {
    depth: usize,
    found: &'a mut Vec<Reference>,
}

impl Visitor for PathReferences<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case(PATH) => {
                self.found.push(Reference::Bare);
            }
            Expr::CompoundIdentifier(parts)
                if parts.len() >= 2 && parts[parts.len() - 1].value.eq_ignore_ascii_case(PATH) =>
            {
                self.found
                    .push(Reference::Of(parts[parts.len() - 2].value.to_lowercase()));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// The last part of a qualified wildcard's name (`t` of `s.t.*`), lower-cased.
fn last_name(name: &ObjectName) -> Option<String> {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(ident)) => Some(ident.value.to_lowercase()),
        _ => None,
    }
}

/// Adds `$path` to what a wildcard leaves out.
fn exclude_path(options: &mut WildcardAdditionalOptions) {
    let path = Ident::with_quote('"', PATH);
    options.opt_exclude = Some(match options.opt_exclude.take() {
        None => ExcludeSelectItem::Single(path),
        Some(ExcludeSelectItem::Single(other)) => ExcludeSelectItem::Multiple(vec![other, path]),
        Some(ExcludeSelectItem::Multiple(mut others)) => {
            others.push(path);
            ExcludeSelectItem::Multiple(others)
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statement = crate::dialect::parse_statements(sql)
            .unwrap()
            .pop()
            .unwrap();
        hidden_path_columns(&mut statement).unwrap();
        statement.to_string()
    }

    #[test]
    fn only_the_selects_that_name_the_column_read_it() {
        assert_eq!(rewritten("SELECT * FROM t"), "SELECT * FROM t");
        assert_eq!(
            rewritten("SELECT *, \"$path\" FROM t WHERE x = 1"),
            "SELECT * EXCLUDE \"$path\", \"$path\" FROM \"t$path\" AS t WHERE x = 1"
        );
        assert_eq!(
            rewritten("SELECT a.*, a.\"$path\" FROM s.t AS a JOIN u ON a.k = u.k"),
            "SELECT a.* EXCLUDE \"$path\", a.\"$path\" FROM s.\"t$path\" AS a JOIN u ON a.k = u.k"
        );
        // The subquery's SELECT reads the column; the outer one does not.
        assert_eq!(
            rewritten("SELECT * FROM u WHERE k IN (SELECT k FROM t ORDER BY \"$path\")"),
            "SELECT * FROM u WHERE k IN (SELECT k FROM \"t$path\" AS t ORDER BY \"$path\")"
        );
        // A common table expression is no table.
        assert_eq!(
            rewritten("WITH c AS (SELECT 1 AS k) SELECT \"$path\" FROM c"),
            "WITH c AS (SELECT 1 AS k) SELECT \"$path\" FROM c"
        );
    }
}
