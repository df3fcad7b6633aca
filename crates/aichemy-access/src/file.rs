//! Trino's file-based system access control over a [`Rules`] file: first matching rule
//! decides, no matching rule denies, an absent section takes Trino's default for it.

use std::collections::BTreeSet;

use crate::rules::{
    CatalogAccess, CatalogRule, CatalogSessionPropertyRule, FunctionRule, Pattern, ProcedureRule,
    QueryAccess, RoutinePrivilege, Rules, SchemaRule, SessionPropertyRule, SystemAccess,
    TablePrivilege, TableRule,
};
use crate::{Expression, Identity, Principal, TableName};

/// The schema no table rule governs.
const INFORMATION_SCHEMA: &str = "information_schema";

/// A parsed rules file with Trino's defaults filled in for absent sections.
#[derive(Debug, Clone)]
pub struct FileAccessControl {
    rules: Rules,
    catalogs: Vec<CatalogRule>,
    schemas: Vec<SchemaRule>,
    tables: Vec<TableRule>,
    system_session_properties: Vec<SessionPropertyRule>,
    catalog_session_properties: Vec<CatalogSessionPropertyRule>,
    functions: Vec<FunctionRule>,
    procedures: Vec<ProcedureRule>,
}

fn pattern(text: &str) -> Option<Pattern> {
    Some(Pattern::new(text).expect("a literal pattern"))
}

impl FileAccessControl {
    pub fn new(rules: Rules) -> Self {
        let catalogs = match &rules.catalogs {
            None => vec![CatalogRule {
                user: None,
                role: None,
                group: None,
                catalog: None,
                allow: CatalogAccess::All,
            }],
            // Every user reads the system catalog unless a rule before says otherwise.
            Some(given) => {
                let mut rules = given.clone();
                rules.push(CatalogRule {
                    user: None,
                    role: None,
                    group: None,
                    catalog: pattern("system"),
                    allow: CatalogAccess::All,
                });
                rules
            }
        };
        let schemas = rules.schemas.clone().unwrap_or_else(|| {
            vec![SchemaRule {
                user: None,
                role: None,
                group: None,
                catalog: None,
                schema: None,
                owner: true,
            }]
        });
        let tables = rules.tables.clone().unwrap_or_else(|| {
            vec![TableRule {
                user: None,
                role: None,
                group: None,
                catalog: None,
                schema: None,
                table: None,
                privileges: [
                    TablePrivilege::Select,
                    TablePrivilege::Insert,
                    TablePrivilege::Delete,
                    TablePrivilege::Update,
                    TablePrivilege::Ownership,
                    TablePrivilege::GrantSelect,
                ]
                .into(),
                columns: Vec::new(),
                filter: None,
                filter_environment: None,
            }]
        });
        let system_session_properties =
            rules.system_session_properties.clone().unwrap_or_else(|| {
                vec![SessionPropertyRule {
                    user: None,
                    role: None,
                    group: None,
                    property: None,
                    allow: true,
                }]
            });
        let catalog_session_properties =
            rules.catalog_session_properties.clone().unwrap_or_else(|| {
                vec![CatalogSessionPropertyRule {
                    user: None,
                    role: None,
                    group: None,
                    catalog: None,
                    property: None,
                    allow: true,
                }]
            });
        let builtin: BTreeSet<RoutinePrivilege> =
            [RoutinePrivilege::Execute, RoutinePrivilege::GrantExecute].into();
        let functions = rules.functions.clone().unwrap_or_else(|| {
            vec![FunctionRule {
                user: None,
                role: None,
                group: None,
                catalog: pattern("system"),
                schema: pattern("builtin"),
                function: None,
                privileges: builtin.clone(),
                function_kinds: Vec::new(),
            }]
        });
        let procedures = rules.procedures.clone().unwrap_or_else(|| {
            vec![ProcedureRule {
                user: None,
                role: None,
                group: None,
                catalog: pattern("system"),
                schema: pattern("builtin"),
                procedure: None,
                privileges: builtin,
            }]
        });
        Self {
            rules,
            catalogs,
            schemas,
            tables,
            system_session_properties,
            catalog_session_properties,
            functions,
            procedures,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// What the first catalog rule matching `identity` grants on `catalog`.
    pub fn catalog_access(&self, identity: &Identity, catalog: &str) -> CatalogAccess {
        self.catalogs
            .iter()
            .find(|r| r.matches(identity, catalog))
            .map_or(CatalogAccess::None, |r| r.allow)
    }

    fn catalog_allows(&self, identity: &Identity, catalog: &str, required: CatalogAccess) -> bool {
        self.catalog_access(identity, catalog).implies(required)
    }

    /// Whether `identity` may use `catalog` at all (read-only or more).
    pub fn can_access_catalog(&self, identity: &Identity, catalog: &str) -> bool {
        self.catalog_allows(identity, catalog, CatalogAccess::ReadOnly)
    }

    /// Whether `catalog` is listed for `identity`: it owns the catalog, or reads it and
    /// any rule gives it something inside.
    pub fn catalog_visible(&self, identity: &Identity, catalog: &str) -> bool {
        let access = self.catalog_access(identity, catalog);
        if access == CatalogAccess::Owner {
            return true;
        }
        access.implies(CatalogAccess::ReadOnly)
            && (self
                .schemas
                .iter()
                .any(|r| r.owner && r.matches(identity, catalog, None))
                || self
                    .tables
                    .iter()
                    .any(|r| !r.privileges.is_empty() && r.matches(identity, catalog, None, None))
                || self
                    .catalog_session_properties
                    .iter()
                    .any(|r| r.allow && r.matches_catalog(identity, catalog))
                || self
                    .functions
                    .iter()
                    .any(|r| !r.privileges.is_empty() && r.matches(identity, catalog, None, None))
                || self
                    .procedures
                    .iter()
                    .any(|r| !r.privileges.is_empty() && r.matches(identity, catalog, None, None)))
    }

    /// Whether schema `catalog.schema` is listed for `identity`.
    pub fn schema_visible(&self, identity: &Identity, catalog: &str, schema: &str) -> bool {
        let s = Some(schema);
        self.catalog_allows(identity, catalog, CatalogAccess::ReadOnly)
            && (self
                .schemas
                .iter()
                .any(|r| r.owner && r.matches(identity, catalog, s))
                || self
                    .tables
                    .iter()
                    .any(|r| !r.privileges.is_empty() && r.matches(identity, catalog, s, None))
                || self
                    .functions
                    .iter()
                    .any(|r| !r.privileges.is_empty() && r.matches(identity, catalog, s, None))
                || self
                    .procedures
                    .iter()
                    .any(|r| !r.privileges.is_empty() && r.matches(identity, catalog, s, None)))
    }

    /// Whether `identity` owns schema `catalog.schema` (and may change the catalog).
    pub fn is_schema_owner(&self, identity: &Identity, catalog: &str, schema: &str) -> bool {
        self.catalog_allows(identity, catalog, CatalogAccess::All)
            && self
                .schemas
                .iter()
                .find(|r| r.matches(identity, catalog, Some(schema)))
                .is_some_and(|r| r.owner)
    }

    /// The first table rule matching `identity` and `table`.
    pub fn table_rule(&self, identity: &Identity, table: &TableName) -> Option<&TableRule> {
        self.tables.iter().find(|r| {
            r.matches(
                identity,
                &table.catalog,
                Some(&table.schema),
                Some(&table.table),
            )
        })
    }

    /// Whether `identity` holds `privilege` on `table` (the catalog access it needs
    /// included).
    pub fn table_permission(
        &self,
        identity: &Identity,
        table: &TableName,
        privilege: TablePrivilege,
    ) -> bool {
        let required = match privilege {
            TablePrivilege::Select | TablePrivilege::GrantSelect => CatalogAccess::ReadOnly,
            _ => CatalogAccess::All,
        };
        if !self.catalog_allows(identity, &table.catalog, required) {
            return false;
        }
        if table.schema == INFORMATION_SCHEMA {
            return true;
        }
        self.table_rule(identity, table)
            .is_some_and(|r| r.privileges.contains(&privilege))
    }

    /// Whether `identity` holds any privilege on `table`.
    pub fn any_table_permission(&self, identity: &Identity, table: &TableName) -> bool {
        if !self.catalog_allows(identity, &table.catalog, CatalogAccess::ReadOnly) {
            return false;
        }
        table.schema == INFORMATION_SCHEMA
            || self
                .table_rule(identity, table)
                .is_some_and(|r| !r.privileges.is_empty())
    }

    /// Whether `identity` may read `columns` of `table` (none: the rows only).
    pub fn can_select_columns(
        &self,
        identity: &Identity,
        table: &TableName,
        columns: &[&str],
    ) -> bool {
        if !self.catalog_allows(identity, &table.catalog, CatalogAccess::ReadOnly) {
            return false;
        }
        if table.schema == INFORMATION_SCHEMA {
            return true;
        }
        self.table_rule(identity, table).is_some_and(|rule| {
            (rule.privileges.contains(&TablePrivilege::Select)
                || rule.privileges.contains(&TablePrivilege::GrantSelect))
                && columns
                    .iter()
                    .all(|c| rule.column(c).is_none_or(|column| column.allow))
        })
    }

    /// The columns of `table` listed for `identity`, of `columns` in their order.
    pub fn visible_columns<'a>(
        &self,
        identity: &Identity,
        table: &TableName,
        columns: &[&'a str],
    ) -> Vec<&'a str> {
        if !self.catalog_allows(identity, &table.catalog, CatalogAccess::ReadOnly) {
            return Vec::new();
        }
        if table.schema == INFORMATION_SCHEMA {
            return columns.to_vec();
        }
        let Some(rule) = self.table_rule(identity, table) else {
            return Vec::new();
        };
        if rule.privileges.is_empty() {
            return Vec::new();
        }
        let reads_only = rule
            .privileges
            .iter()
            .all(|p| matches!(p, TablePrivilege::Select | TablePrivilege::GrantSelect));
        columns
            .iter()
            .copied()
            .filter(|c| !reads_only || rule.column(c).is_none_or(|column| column.allow))
            .collect()
    }

    /// Whether `table` is listed for `identity`.
    pub fn table_visible(&self, identity: &Identity, table: &TableName) -> bool {
        self.is_schema_owner(identity, &table.catalog, &table.schema)
            || self.any_table_permission(identity, table)
    }

    /// The row filter the first matching rule puts on `table` for `identity`.
    pub fn row_filter(&self, identity: &Identity, table: &TableName) -> Option<Expression> {
        if table.schema == INFORMATION_SCHEMA {
            return None;
        }
        let rule = self.table_rule(identity, table)?;
        rule.filter.as_ref().map(|filter| Expression {
            sql: filter.clone(),
            user: rule
                .filter_environment
                .as_ref()
                .and_then(|e| e.user.clone()),
        })
    }

    /// The mask the first matching rule puts on `column` of `table` for `identity`.
    pub fn column_mask(
        &self,
        identity: &Identity,
        table: &TableName,
        column: &str,
    ) -> Option<Expression> {
        if table.schema == INFORMATION_SCHEMA {
            return None;
        }
        let constraint = self.table_rule(identity, table)?.column(column)?;
        constraint.mask.as_ref().map(|mask| Expression {
            sql: mask.clone(),
            user: constraint
                .mask_environment
                .as_ref()
                .and_then(|e| e.user.clone()),
        })
    }

    /// Whether `identity` may execute, view or kill a query (`owner`: whose query, none
    /// for executing a new one). A user's own queries are always theirs to view and kill.
    pub fn can_query(&self, identity: &Identity, access: QueryAccess, owner: Option<&str>) -> bool {
        if owner == Some(identity.user.as_str()) {
            return true;
        }
        let Some(rules) = &self.rules.queries else {
            return true;
        };
        rules
            .iter()
            .find(|r| r.matches(identity, owner))
            .is_some_and(|r| r.allow.contains(&access))
    }

    /// Whether `original` may act as `new_user`.
    pub fn can_impersonate(&self, original: &Identity, new_user: &str) -> bool {
        let Some(rules) = &self.rules.impersonation else {
            return self.rules.principals.is_some();
        };
        for rule in rules {
            if !rule
                .original_role
                .as_ref()
                .is_none_or(|p| original.roles.iter().any(|r| p.matches(r)))
            {
                continue;
            }
            let target = match &rule.original_user {
                None => rule.new_user.clone(),
                Some(pattern) => {
                    let Some(captures) = pattern.captures(&original.user) else {
                        continue;
                    };
                    let mut expanded = String::new();
                    captures.expand(&java_replacement(&rule.new_user), &mut expanded);
                    expanded
                }
            };
            let Ok(target) = Pattern::new(&target) else {
                continue;
            };
            if target.matches(new_user) {
                return rule.allow;
            }
        }
        false
    }

    /// Whether `identity` may read or write system information.
    pub fn system_information(&self, identity: &Identity, access: SystemAccess) -> bool {
        self.rules
            .system_information
            .iter()
            .flatten()
            .find(|r| r.matches(identity))
            .is_some_and(|r| r.allow.contains(&access))
    }

    /// Whether `identity` may set system session property `property`.
    pub fn system_session_property(&self, identity: &Identity, property: &str) -> bool {
        self.system_session_properties
            .iter()
            .find(|r| r.matches(identity, property))
            .is_some_and(|r| r.allow)
    }

    /// Whether `identity` may set `property` of `catalog` for its session.
    pub fn catalog_session_property(
        &self,
        identity: &Identity,
        catalog: &str,
        property: &str,
    ) -> bool {
        self.can_access_catalog(identity, catalog)
            && self
                .catalog_session_properties
                .iter()
                .find(|r| r.matches(identity, catalog, property))
                .is_some_and(|r| r.allow)
    }

    /// Whether `identity` may run procedure `catalog.schema.name`.
    pub fn can_execute_procedure(
        &self,
        identity: &Identity,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> bool {
        self.can_access_catalog(identity, catalog)
            && self
                .procedures
                .iter()
                .find(|r| r.matches(identity, catalog, Some(schema), Some(name)))
                .is_some_and(|r| !r.privileges.is_empty())
    }

    /// Whether `identity` holds `privilege` on function `catalog.schema.name`.
    pub fn function_privilege(
        &self,
        identity: &Identity,
        catalog: &str,
        schema: &str,
        name: &str,
        privilege: RoutinePrivilege,
    ) -> bool {
        self.can_access_catalog(identity, catalog)
            && self
                .functions
                .iter()
                .find(|r| r.matches(identity, catalog, Some(schema), Some(name)))
                .is_some_and(|r| match privilege {
                    RoutinePrivilege::Execute => {
                        r.privileges.contains(&RoutinePrivilege::Execute)
                            || r.privileges.contains(&RoutinePrivilege::GrantExecute)
                    }
                    other => r.privileges.contains(&other),
                })
    }

    /// Whether an `authorization` rule lets `identity` hand an object to `new`.
    pub fn can_authorize(&self, identity: &Identity, new: &Principal) -> bool {
        self.rules
            .authorization
            .iter()
            .flatten()
            .find(|r| r.matches(identity, new))
            .is_some_and(|r| r.allow)
    }
}

/// A Java replacement string (`$1`, `${name}`, `\x`) as the regex crate expands one.
fn java_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    if next == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(next);
                    }
                }
            }
            '$' => match chars.peek() {
                Some('{') => out.push('$'),
                Some(d) if d.is_ascii_digit() => {
                    // `$12` reads as group 12 in Java only while such a group exists;
                    // braces keep the regex crate from reading on into letters.
                    let mut digits = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        digits.push(*d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{digits}}}"));
                }
                _ => out.push_str("$$"),
            },
            other => out.push(other),
        }
    }
    out
}
