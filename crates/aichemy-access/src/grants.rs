//! SQL grants: roles, privileges, owners, row filters and column masks kept in the
//! metastore (`access-control.name=sql-standard`), and what they allow one user.
//!
//! The semantics are the SQL standard's as Trino's Hive connector implements them: a user
//! holds the roles granted to her, to a group she is in, or to a role she holds; the
//! session enables all of them except `admin` (`SET ROLE ALL`, the default), one of them
//! and what it holds (`SET ROLE r`) or none (`SET ROLE NONE`); `public` is always enabled.
//! A privilege granted to the user or an enabled role on a table, or on its schema, allows
//! it unless denied to one of them (`DENY`); a table's owner and the owner of its schema
//! hold every privilege on it and may grant them; the enabled `admin` role may do
//! everything. What one user may do is compiled into the rules of a
//! [`FileAccessControl`], so every check asks the same questions of either policy.

use std::collections::{BTreeMap, BTreeSet};

use crate::file::FileAccessControl;
use crate::rules::{
    CatalogAccess, CatalogRule, ColumnRule, Pattern, QueryAccess, QueryRule, Rules, SchemaRule,
    SystemAccess, SystemInformationRule, TablePrivilege, TableRule,
};
use crate::{Identity, Principal};

/// The role that manages roles and grants and may do everything once enabled.
pub const ADMIN_ROLE: &str = "admin";
/// The role every user holds.
pub const PUBLIC_ROLE: &str = "public";

/// Whom a grant names: a user, a role or (an AIchemy extension) a group of the group file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grantee {
    User(String),
    Role(String),
    Group(String),
}

impl Grantee {
    /// The grantee's kind as stored and shown (`USER`, `ROLE`, `GROUP`).
    pub fn kind(&self) -> &'static str {
        match self {
            Grantee::User(_) => "USER",
            Grantee::Role(_) => "ROLE",
            Grantee::Group(_) => "GROUP",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Grantee::User(n) | Grantee::Role(n) | Grantee::Group(n) => n,
        }
    }

    /// From a stored kind and name.
    pub fn from_parts(kind: &str, name: &str) -> Option<Self> {
        let name = name.to_string();
        match kind {
            "USER" => Some(Grantee::User(name)),
            "ROLE" => Some(Grantee::Role(name)),
            "GROUP" => Some(Grantee::Group(name)),
            _ => None,
        }
    }

    pub fn principal(&self) -> Option<Principal> {
        match self {
            Grantee::User(n) => Some(Principal::User(n.clone())),
            Grantee::Role(n) => Some(Principal::Role(n.clone())),
            Grantee::Group(_) => None,
        }
    }
}

impl std::fmt::Display for Grantee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.name())
    }
}

/// A schema (`table` empty) or a table, view or materialized view.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Object {
    pub catalog: String,
    pub schema: String,
    /// Empty for the schema itself.
    pub table: String,
}

impl Object {
    pub fn schema(catalog: &str, schema: &str) -> Self {
        Self {
            catalog: catalog.into(),
            schema: schema.into(),
            table: String::new(),
        }
    }

    pub fn table(catalog: &str, schema: &str, table: &str) -> Self {
        Self {
            catalog: catalog.into(),
            schema: schema.into(),
            table: table.into(),
        }
    }

    pub fn is_schema(&self) -> bool {
        self.table.is_empty()
    }

    /// The schema an object is in (itself for a schema).
    pub fn in_schema(&self) -> Object {
        Object::schema(&self.catalog, &self.schema)
    }
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.is_schema() {
            true => write!(f, "{}.{}", self.catalog, self.schema),
            false => write!(f, "{}.{}.{}", self.catalog, self.schema, self.table),
        }
    }
}

/// The privileges SQL grants: Trino's for tables and schemas.
pub const PRIVILEGES: [TablePrivilege; 4] = [
    TablePrivilege::Select,
    TablePrivilege::Insert,
    TablePrivilege::Delete,
    TablePrivilege::Update,
];

/// `role` granted to `grantee`, with the right to grant it on when `admin_option`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub role: String,
    pub grantee: Grantee,
    pub admin_option: bool,
    pub grantor: String,
}

/// A privilege granted, or denied, on a table or schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeGrant {
    pub object: Object,
    pub privilege: TablePrivilege,
    pub grantee: Grantee,
    pub grant_option: bool,
    pub deny: bool,
    pub grantor: String,
}

/// A row filter (no column) or a column mask for a grantee on a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    pub object: Object,
    /// The masked column; `None` for a row filter.
    pub column: Option<String>,
    pub grantee: Grantee,
    pub expression: String,
}

/// Which of her roles a session enables (`SET ROLE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum RoleSelection {
    /// Every role she holds except `admin` (the default, `SET ROLE ALL`).
    #[default]
    All,
    /// Only `public` (`SET ROLE NONE`).
    None,
    /// One role she holds and the roles it holds (`SET ROLE r`).
    Role(String),
}

impl RoleSelection {
    /// As Trino's `X-Trino-Role` header writes it: `ALL`, `NONE` or `ROLE{name}`.
    pub fn header_value(&self) -> String {
        match self {
            RoleSelection::All => "ALL".into(),
            RoleSelection::None => "NONE".into(),
            RoleSelection::Role(role) => format!("ROLE{{{role}}}"),
        }
    }

    /// Reads an `X-Trino-Role` value.
    pub fn from_header_value(value: &str) -> Option<Self> {
        match value {
            "ALL" => Some(RoleSelection::All),
            "NONE" => Some(RoleSelection::None),
            _ => value
                .strip_prefix("ROLE{")
                .and_then(|r| r.strip_suffix('}'))
                .filter(|r| !r.is_empty())
                .map(|r| RoleSelection::Role(r.to_string())),
        }
    }
}

/// Everything SQL has granted, as read from the metastore at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// The roles created (`admin` and `public` are always there and not listed).
    pub roles: BTreeSet<String>,
    pub role_grants: Vec<RoleGrant>,
    pub privileges: Vec<PrivilegeGrant>,
    /// Who owns each schema and table that has a recorded owner.
    pub owners: BTreeMap<Object, Grantee>,
    pub restrictions: Vec<Restriction>,
}

/// A literal as a whole-value pattern.
fn exactly(text: &str) -> Option<Pattern> {
    Some(Pattern::new(&regex::escape(text)).expect("an escaped literal"))
}

impl Grants {
    /// Whether `role` exists (`admin` and `public` always do).
    pub fn role_exists(&self, role: &str) -> bool {
        role == ADMIN_ROLE || role == PUBLIC_ROLE || self.roles.contains(role)
    }

    /// The roles granted directly to `grantee`.
    fn granted_to<'a>(&'a self, grantee: &'a Grantee) -> impl Iterator<Item = &'a RoleGrant> {
        self.role_grants
            .iter()
            .filter(move |g| g.grantee == *grantee)
    }

    /// `roles` and every role they hold, transitively.
    fn closure(&self, roles: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        let mut held = BTreeSet::new();
        let mut next: Vec<String> = roles.into_iter().collect();
        while let Some(role) = next.pop() {
            if held.insert(role.clone()) {
                let grantee = Grantee::Role(role);
                next.extend(self.granted_to(&grantee).map(|g| g.role.clone()));
            }
        }
        held
    }

    /// Every role `user` holds: granted to her or to her groups, the roles those hold,
    /// `admin` when she is one of `admins`, and `public`.
    pub fn held_roles(
        &self,
        user: &str,
        groups: &BTreeSet<String>,
        admins: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut direct: Vec<String> = self.direct_roles(user, groups).into_iter().collect();
        if admins.contains(user) {
            direct.push(ADMIN_ROLE.into());
        }
        direct.push(PUBLIC_ROLE.into());
        self.closure(direct)
    }

    /// The roles granted to `user` or her groups themselves (what `SHOW ROLE GRANTS` lists).
    pub fn direct_roles(&self, user: &str, groups: &BTreeSet<String>) -> BTreeSet<String> {
        let user = Grantee::User(user.into());
        let mut roles: BTreeSet<String> = self.granted_to(&user).map(|g| g.role.clone()).collect();
        for group in groups {
            let group = Grantee::Group(group.clone());
            roles.extend(self.granted_to(&group).map(|g| g.role.clone()));
        }
        roles
    }

    /// The roles a session enables; `Err` names a role she cannot set.
    pub fn enabled_roles(
        &self,
        user: &str,
        groups: &BTreeSet<String>,
        admins: &BTreeSet<String>,
        selection: &RoleSelection,
    ) -> Result<BTreeSet<String>, String> {
        let held = self.held_roles(user, groups, admins);
        let mut enabled = match selection {
            RoleSelection::All => {
                let mut direct: Vec<String> = self.direct_roles(user, groups).into_iter().collect();
                direct.retain(|r| r != ADMIN_ROLE);
                let mut roles = self.closure(direct);
                roles.remove(ADMIN_ROLE);
                roles
            }
            RoleSelection::None => BTreeSet::new(),
            RoleSelection::Role(role) if held.contains(role) => self.closure([role.clone()]),
            RoleSelection::Role(role) => return Err(role.clone()),
        };
        enabled.insert(PUBLIC_ROLE.into());
        Ok(enabled)
    }

    /// Whether one of `principals` may grant `role` on: `admin` enabled, or a grant of
    /// it to one of them with the admin option.
    pub fn can_administer_role(&self, principals: &BTreeSet<Grantee>, role: &str) -> bool {
        principals.contains(&Grantee::Role(ADMIN_ROLE.into()))
            || self
                .role_grants
                .iter()
                .any(|g| g.role == role && g.admin_option && principals.contains(&g.grantee))
    }

    /// Whether one of `principals` owns `object` (a table's schema owner owns it too).
    pub fn owns(&self, principals: &BTreeSet<Grantee>, object: &Object) -> bool {
        let owned = |o: &Object| self.owners.get(o).is_some_and(|p| principals.contains(p));
        owned(object) || (!object.is_schema() && owned(&object.in_schema()))
    }

    /// The privileges `principals` hold on a table (its schema's grants included, the
    /// denied ones removed), and those they may grant on.
    fn table_privileges(
        &self,
        principals: &BTreeSet<Grantee>,
        object: &Object,
    ) -> (BTreeSet<TablePrivilege>, BTreeSet<TablePrivilege>) {
        let applies = |g: &&PrivilegeGrant| {
            principals.contains(&g.grantee)
                && (g.object == *object || g.object == object.in_schema())
        };
        let mut held = BTreeSet::new();
        let mut grantable = BTreeSet::new();
        let mut denied = BTreeSet::new();
        for grant in self.privileges.iter().filter(applies) {
            match grant.deny {
                true => denied.insert(grant.privilege),
                false if grant.grant_option => {
                    grantable.insert(grant.privilege);
                    held.insert(grant.privilege)
                }
                false => held.insert(grant.privilege),
            };
        }
        held.retain(|p| !denied.contains(p));
        grantable.retain(|p| !denied.contains(p));
        (held, grantable)
    }

    /// Whether `principals` may grant `privilege` on `object`: as its owner, with a grant
    /// option, or with `admin` enabled.
    pub fn can_grant(
        &self,
        principals: &BTreeSet<Grantee>,
        object: &Object,
        privilege: TablePrivilege,
    ) -> bool {
        principals.contains(&Grantee::Role(ADMIN_ROLE.into()))
            || self.owns(principals, object)
            || self
                .table_privileges(principals, object)
                .1
                .contains(&privilege)
    }

    /// The rules that say what a user whose grantees are `principals` may do.
    pub fn compile(&self, principals: &BTreeSet<Grantee>) -> FileAccessControl {
        let admin = principals.contains(&Grantee::Role(ADMIN_ROLE.into()));
        let mut rules = Rules {
            catalogs: Some(vec![CatalogRule {
                user: None,
                role: None,
                group: None,
                catalog: None,
                allow: match admin {
                    true => CatalogAccess::Owner,
                    false => CatalogAccess::All,
                },
            }]),
            schemas: Some(Vec::new()),
            tables: Some(Vec::new()),
            ..Rules::default()
        };
        let everything = || -> BTreeSet<TablePrivilege> {
            PRIVILEGES
                .into_iter()
                .chain([TablePrivilege::Ownership, TablePrivilege::GrantSelect])
                .collect()
        };
        let schemas = rules.schemas.as_mut().expect("set above");
        let tables = rules.tables.as_mut().expect("set above");
        let schema_rule = |object: &Object| SchemaRule {
            user: None,
            role: None,
            group: None,
            catalog: exactly(&object.catalog),
            schema: exactly(&object.schema),
            owner: true,
        };
        let table_rule = |object: &Object, privileges| TableRule {
            user: None,
            role: None,
            group: None,
            catalog: exactly(&object.catalog),
            schema: exactly(&object.schema),
            table: match object.is_schema() {
                true => None,
                false => exactly(&object.table),
            },
            privileges,
            columns: Vec::new(),
            filter: None,
            filter_environment: None,
        };
        // Tables first, each with everything that names it or its schema; then each
        // schema's grants for its other tables.
        let mut named: BTreeSet<Object> = self
            .privileges
            .iter()
            .filter(|g| principals.contains(&g.grantee))
            .map(|g| g.object.clone())
            .chain(self.owners.keys().cloned())
            .chain(self.restrictions.iter().map(|r| r.object.clone()))
            .collect();
        let schemas_named: BTreeSet<Object> = named.iter().map(Object::in_schema).collect();
        named.retain(|o| !o.is_schema());
        for object in &named {
            let (mut privileges, grantable) = self.table_privileges(principals, object);
            if admin || self.owns(principals, object) {
                privileges = everything();
            } else if grantable.contains(&TablePrivilege::Select) {
                privileges.insert(TablePrivilege::GrantSelect);
            }
            let mut rule = table_rule(object, privileges);
            self.restrict(principals, object, &mut rule);
            tables.push(rule);
        }
        for schema in &schemas_named {
            if admin || self.owns(principals, schema) {
                schemas.push(schema_rule(schema));
                tables.push(table_rule(schema, everything()));
                continue;
            }
            let (mut privileges, grantable) = self.table_privileges(principals, schema);
            if grantable.contains(&TablePrivilege::Select) {
                privileges.insert(TablePrivilege::GrantSelect);
            }
            if !privileges.is_empty() {
                tables.push(table_rule(schema, privileges));
            }
        }
        // The system catalog is everyone's to read: its tables show each user her own
        // (queries, audit records) or what she may see.
        tables.push(TableRule {
            catalog: exactly("system"),
            schema: None,
            table: None,
            ..table_rule(&Object::schema("", ""), [TablePrivilege::Select].into())
        });
        if admin {
            schemas.push(SchemaRule {
                user: None,
                role: None,
                group: None,
                catalog: None,
                schema: None,
                owner: true,
            });
            tables.push(TableRule {
                catalog: None,
                schema: None,
                table: None,
                ..table_rule(&Object::schema("", ""), everything())
            });
            rules.system_information = Some(vec![SystemInformationRule {
                user: None,
                role: None,
                allow: [SystemAccess::Read, SystemAccess::Write].into(),
            }]);
        } else {
            // Anyone runs queries and sees and kills her own; only admins others'.
            rules.queries = Some(vec![QueryRule {
                user: None,
                role: None,
                group: None,
                query_owner: None,
                allow: [QueryAccess::Execute].into(),
            }]);
        }
        FileAccessControl::new(rules)
    }

    /// Adds to `rule` the row filters (all of them, each must hold) and column masks (the
    /// user's own before her roles', in the order of their names) that apply.
    fn restrict(&self, principals: &BTreeSet<Grantee>, object: &Object, rule: &mut TableRule) {
        let mut applying: Vec<&Restriction> = self
            .restrictions
            .iter()
            .filter(|r| r.object == *object && principals.contains(&r.grantee))
            .collect();
        applying.sort_by(|a, b| a.grantee.cmp(&b.grantee));
        let filters: Vec<String> = applying
            .iter()
            .filter(|r| r.column.is_none())
            .map(|r| format!("({})", r.expression))
            .collect();
        if !filters.is_empty() {
            rule.filter = Some(filters.join(" AND "));
        }
        for restriction in &applying {
            let Some(column) = &restriction.column else {
                continue;
            };
            if rule.column(column).is_none() {
                rule.columns.push(ColumnRule {
                    name: column.clone(),
                    allow: true,
                    mask: Some(restriction.expression.clone()),
                    mask_environment: None,
                });
            }
        }
    }
}

/// The grantees a user acts as: herself, her groups and her enabled roles.
pub fn principals(identity: &Identity) -> BTreeSet<Grantee> {
    std::iter::once(Grantee::User(identity.user.clone()))
        .chain(identity.groups.iter().cloned().map(Grantee::Group))
        .chain(identity.roles.iter().cloned().map(Grantee::Role))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TableName;

    fn user(name: &str) -> Grantee {
        Grantee::User(name.into())
    }

    fn role(name: &str) -> Grantee {
        Grantee::Role(name.into())
    }

    fn grant(object: Object, privilege: TablePrivilege, grantee: Grantee) -> PrivilegeGrant {
        PrivilegeGrant {
            object,
            privilege,
            grantee,
            grant_option: false,
            deny: false,
            grantor: "root".into(),
        }
    }

    fn holds(role: &str, grantee: Grantee) -> RoleGrant {
        RoleGrant {
            role: role.into(),
            grantee,
            admin_option: false,
            grantor: "root".into(),
        }
    }

    /// Two domains: analysts of each read their gold schema; a regional analyst is a sales
    /// analyst limited to her region; the data engineers own sales_gold.
    fn domains() -> Grants {
        let gold = Object::schema("iceberg", "sales_gold");
        let contacts = Object::table("iceberg", "sales_gold", "contacts");
        Grants {
            roles: ["sales_analyst", "regional", "engineer"]
                .map(String::from)
                .into(),
            role_grants: vec![
                holds("sales_analyst", role("regional")),
                holds("regional", Grantee::Group("emea".into())),
                holds("sales_analyst", user("sam")),
                holds("engineer", user("dan")),
            ],
            privileges: vec![
                grant(gold.clone(), TablePrivilege::Select, role("sales_analyst")),
                grant(contacts.clone(), TablePrivilege::Insert, user("sam")),
                PrivilegeGrant {
                    deny: true,
                    ..grant(contacts.clone(), TablePrivilege::Select, user("sue"))
                },
                grant(contacts.clone(), TablePrivilege::Select, user("sue")),
            ],
            owners: [(gold, role("engineer"))].into(),
            restrictions: vec![
                Restriction {
                    object: contacts.clone(),
                    column: None,
                    grantee: role("regional"),
                    expression: "region = 'EU'".into(),
                },
                Restriction {
                    object: contacts,
                    column: Some("email".into()),
                    grantee: role("sales_analyst"),
                    expression: "'***'".into(),
                },
            ],
        }
    }

    fn identity(
        grants: &Grants,
        user: &str,
        groups: &[&str],
        selection: RoleSelection,
    ) -> Identity {
        let groups: BTreeSet<String> = groups.iter().map(|g| g.to_string()).collect();
        let admins: BTreeSet<String> = ["root".to_string()].into();
        Identity {
            roles: grants
                .enabled_roles(user, &groups, &admins, &selection)
                .expect("a role she holds"),
            user: user.into(),
            groups,
        }
    }

    fn can(grants: &Grants, who: &Identity, table: &str, privilege: TablePrivilege) -> bool {
        let parts: Vec<&str> = table.split('.').collect();
        grants.compile(&principals(who)).table_permission(
            who,
            &TableName::new(parts[0], parts[1], parts[2]),
            privilege,
        )
    }

    #[test]
    fn privileges_of_the_user_her_roles_and_their_schemas_add_up() {
        let grants = domains();
        let sam = identity(&grants, "sam", &[], RoleSelection::All);
        let contacts = "iceberg.sales_gold.contacts";
        // SELECT from her role's schema grant, INSERT from her own table grant.
        assert!(can(&grants, &sam, contacts, TablePrivilege::Select));
        assert!(can(&grants, &sam, contacts, TablePrivilege::Insert));
        assert!(!can(&grants, &sam, contacts, TablePrivilege::Delete));
        assert!(can(
            &grants,
            &sam,
            "iceberg.sales_gold.orders",
            TablePrivilege::Select
        ));
        assert!(!can(
            &grants,
            &sam,
            "iceberg.marketing_gold.leads",
            TablePrivilege::Select
        ));
        // A denial beats a grant.
        let sue = identity(&grants, "sue", &[], RoleSelection::All);
        assert!(!can(&grants, &sue, contacts, TablePrivilege::Select));
        // The owner of the schema (a role) owns its tables.
        let dan = identity(&grants, "dan", &[], RoleSelection::All);
        assert!(can(&grants, &dan, contacts, TablePrivilege::Ownership));
        assert!(grants
            .compile(&principals(&dan))
            .is_schema_owner(&dan, "iceberg", "sales_gold"));
    }

    #[test]
    fn roles_come_from_groups_and_roles_and_admin_must_be_set() {
        let grants = domains();
        let rita = identity(&grants, "rita", &["emea"], RoleSelection::All);
        assert_eq!(
            rita.roles,
            ["public", "regional", "sales_analyst"]
                .map(String::from)
                .into()
        );
        assert!(can(
            &grants,
            &rita,
            "iceberg.sales_gold.contacts",
            TablePrivilege::Select
        ));
        let admins: BTreeSet<String> = ["root".to_string()].into();
        let none = BTreeSet::new();
        // The admin role is held but not enabled by default.
        let root = identity(&grants, "root", &[], RoleSelection::All);
        assert!(!root.roles.contains(ADMIN_ROLE));
        assert!(!can(
            &grants,
            &root,
            "iceberg.sales_gold.contacts",
            TablePrivilege::Select
        ));
        let root = identity(&grants, "root", &[], RoleSelection::Role("admin".into()));
        assert!(can(
            &grants,
            &root,
            "iceberg.any.thing",
            TablePrivilege::Delete
        ));
        assert_eq!(
            grants.enabled_roles("sam", &none, &admins, &RoleSelection::Role("admin".into())),
            Err("admin".to_string())
        );
        let sam = identity(&grants, "sam", &[], RoleSelection::None);
        assert!(!can(
            &grants,
            &sam,
            "iceberg.sales_gold.contacts",
            TablePrivilege::Select
        ));
    }

    #[test]
    fn filters_and_masks_follow_the_roles_they_are_declared_for() {
        let grants = domains();
        let contacts = TableName::new("iceberg", "sales_gold", "contacts");
        let rita = identity(&grants, "rita", &["emea"], RoleSelection::All);
        let rules = grants.compile(&principals(&rita));
        assert_eq!(
            rules.row_filter(&rita, &contacts).unwrap().sql,
            "(region = 'EU')"
        );
        assert_eq!(
            rules.column_mask(&rita, &contacts, "email").unwrap().sql,
            "'***'"
        );
        let sam = identity(&grants, "sam", &[], RoleSelection::All);
        let rules = grants.compile(&principals(&sam));
        assert!(rules.row_filter(&sam, &contacts).is_none());
        assert!(rules.column_mask(&sam, &contacts, "email").is_some());
        let dan = identity(&grants, "dan", &[], RoleSelection::All);
        assert!(grants
            .compile(&principals(&dan))
            .column_mask(&dan, &contacts, "email")
            .is_none());
    }

    #[test]
    fn only_owners_admins_and_grant_options_grant() {
        let mut grants = domains();
        let contacts = Object::table("iceberg", "sales_gold", "contacts");
        let sam = principals(&identity(&grants, "sam", &[], RoleSelection::All));
        let dan = principals(&identity(&grants, "dan", &[], RoleSelection::All));
        assert!(!grants.can_grant(&sam, &contacts, TablePrivilege::Insert));
        assert!(grants.can_grant(&dan, &contacts, TablePrivilege::Delete));
        grants.privileges[1].grant_option = true;
        assert!(grants.can_grant(&sam, &contacts, TablePrivilege::Insert));
        assert!(!grants.can_grant(&sam, &contacts, TablePrivilege::Select));
        assert!(!grants.can_administer_role(&sam, "sales_analyst"));
        grants.role_grants[2].admin_option = true;
        assert!(grants.can_administer_role(&sam, "sales_analyst"));
    }

    #[test]
    fn role_selections_read_as_trino_headers_write_them() {
        for selection in [
            RoleSelection::All,
            RoleSelection::None,
            RoleSelection::Role("analyst".into()),
        ] {
            assert_eq!(
                RoleSelection::from_header_value(&selection.header_value()),
                Some(selection)
            );
        }
        assert_eq!(RoleSelection::from_header_value("ROLE{}"), None);
        assert_eq!(RoleSelection::from_header_value("analyst"), None);
    }
}
