//! The semantics of Trino's file-based access control, case by case: Trino's documented
//! examples and the behaviours its code has where the documentation is silent.

use std::collections::BTreeSet;

use crate::rules::{CatalogAccess, Rules};
use crate::{Denied, Expression, FileAccessControl, Identity, Principal, TableName};

fn policy(json: &str) -> FileAccessControl {
    FileAccessControl::new(Rules::parse(json, "").expect("rules parse"))
}

fn in_groups(user: &str, groups: &[&str]) -> Identity {
    Identity {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        roles: BTreeSet::new(),
    }
}

fn t(name: &str) -> TableName {
    let parts: Vec<&str> = name.split('.').collect();
    TableName::new(parts[0], parts[1], parts[2])
}

fn denied(message: &str) -> Result<(), Denied> {
    Err(Denied(message.into()))
}

/// The worked example of the research notes: admins own everything, `hive` is read-only,
/// `system` closed, a masked and a hidden column, a row filter.
const EXAMPLE: &str = r#"{
  "catalogs": [
    {"group": "admins", "allow": "all"},
    {"catalog": "hive", "allow": "read-only"},
    {"catalog": "system", "allow": "none"}
  ],
  "schemas": [{"group": "admins", "owner": true}],
  "tables": [
    {"group": "admins", "privileges": ["SELECT","INSERT","DELETE","UPDATE","OWNERSHIP","GRANT_SELECT"]},
    {"catalog": "hive", "schema": "hr", "table": "employees", "privileges": ["SELECT"],
     "columns": [{"name": "ssn", "mask": "'XXX'", "mask_environment": {"user": "admin"}},
                 {"name": "salary", "allow": false}],
     "filter": "manager = current_user"},
    {"catalog": "hive", "privileges": ["SELECT"]}
  ],
  "queries": [{"group": "admins", "allow": ["execute","view","kill"]}, {"allow": ["execute"]}],
  "impersonation": [{"original_user": "svc_(.*)", "new_user": "$1"}],
  "system_information": [{"user": "admin", "allow": ["read","write"]}],
  "authorization": [{"original_group": "admins", "new_user": ".*", "new_role": ".*"}]
}"#;

#[test]
fn no_rules_allow_everything_but_catalog_ownership() {
    let p = policy("{}");
    let carol = Identity::user("carol");
    assert!(p.check_can_select(&carol, &t("a.b.c"), &["x"]).is_ok());
    assert!(p.check_can_insert(&carol, &t("a.b.c")).is_ok());
    assert!(p.check_can_create_schema(&carol, "a", "b").is_ok());
    assert!(p.catalog_visible(&carol, "a"));
    assert!(p.check_can_execute_query(&carol).is_ok());
    // Absent sections that Trino denies by default.
    assert!(p.check_can_read_system_information(&carol).is_err());
    assert!(p
        .check_can_set_authorization(&carol, "schema", &["a", "b"], &Principal::User("d".into()))
        .is_err());
    assert!(p.check_can_impersonate_user(&carol, "dave").is_err());
    assert_eq!(
        p.check_can_create_catalog(&carol, "x"),
        denied("Cannot create catalog x")
    );
}

#[test]
fn the_worked_example_behaves_as_trino_documents() {
    let p = policy(EXAMPLE);
    let carol = Identity::user("carol");
    let admin = in_groups("alice", &["admins"]);
    assert_eq!(
        p.check_can_insert(&carol, &t("hive.x.y")),
        denied("Cannot insert into table hive.x.y")
    );
    assert_eq!(
        p.check_can_select(&carol, &t("hive.hr.employees"), &["salary"]),
        denied("Cannot select from table hive.hr.employees")
    );
    assert!(p
        .check_can_select(&carol, &t("hive.hr.employees"), &["name", "ssn"])
        .is_ok());
    assert_eq!(
        p.check_can_select(&carol, &t("system.runtime.nodes"), &[]),
        denied("Cannot access catalog system")
    );
    assert!(!p.catalog_visible(&carol, "system"));
    assert!(p.catalog_visible(&carol, "hive"));
    assert!(!p.catalog_visible(&carol, "iceberg"));
    assert!(p.check_can_insert(&admin, &t("hive.x.y")).is_ok());
    assert!(p.check_can_create_schema(&admin, "iceberg", "s").is_ok());
    assert_eq!(
        p.check_can_create_schema(&carol, "hive", "s"),
        denied("Cannot create schema hive.s")
    );
    assert_eq!(
        p.column_mask(&carol, &t("hive.hr.employees"), "ssn"),
        Some(Expression {
            sql: "'XXX'".into(),
            user: Some("admin".into())
        })
    );
    assert_eq!(
        p.row_filter(&carol, &t("hive.hr.employees")),
        Some(Expression {
            sql: "manager = current_user".into(),
            user: None
        })
    );
    // The admins' rule comes first: no mask, no filter for them.
    assert_eq!(p.row_filter(&admin, &t("hive.hr.employees")), None);
    // The hidden column is not listed for a reader; an owner sees every column.
    assert_eq!(
        p.visible_columns(&carol, &t("hive.hr.employees"), &["name", "salary", "ssn"]),
        vec!["name", "ssn"]
    );
    assert_eq!(
        p.visible_columns(&admin, &t("hive.hr.employees"), &["name", "salary"]),
        vec!["name", "salary"]
    );
    // Queries: everyone executes, only admins view others' queries; one's own always.
    assert!(p.check_can_execute_query(&carol).is_ok());
    assert_eq!(
        p.check_can_view_query_owned_by(&carol, "alice"),
        denied("Cannot view query")
    );
    assert!(p.check_can_view_query_owned_by(&carol, "carol").is_ok());
    assert!(p.check_can_kill_query_owned_by(&admin, "carol").is_ok());
    // Impersonation with a captured group.
    assert!(p
        .check_can_impersonate_user(&Identity::user("svc_bob"), "bob")
        .is_ok());
    assert_eq!(
        p.check_can_impersonate_user(&Identity::user("svc_bob"), "carol"),
        denied("User svc_bob cannot impersonate user carol")
    );
    assert!(p
        .check_can_read_system_information(&Identity::user("admin"))
        .is_ok());
    assert!(p.check_can_write_system_information(&carol).is_err());
    assert!(p
        .check_can_set_authorization(
            &admin,
            "table",
            &["hive", "x", "y"],
            &Principal::Role("r".into())
        )
        .is_ok());
    assert_eq!(
        p.check_can_set_authorization(
            &carol,
            "table",
            &["hive", "x", "y"],
            &Principal::User("bob".into())
        ),
        denied("Cannot set authorization for table hive.x.y to USER bob")
    );
}

#[test]
fn the_first_matching_rule_decides_even_when_it_grants_nothing() {
    let p = policy(
        r#"{"tables": [
            {"user": "bob", "schema": "secret", "privileges": []},
            {"privileges": ["SELECT"]}
        ]}"#,
    );
    let bob = Identity::user("bob");
    assert_eq!(
        p.check_can_select(&bob, &t("c.secret.t"), &[]),
        denied("Cannot select from table c.secret.t")
    );
    assert!(p.check_can_select(&bob, &t("c.open.t"), &[]).is_ok());
    // Listed all the same: without schema rules everyone owns every schema.
    assert!(p.table_visible(&bob, &t("c.secret.t")));
    // No rule for writes: SELECT does not imply INSERT, OWNERSHIP implies nothing.
    assert!(p.check_can_insert(&bob, &t("c.open.t")).is_err());
}

#[test]
fn patterns_match_whole_names_and_case() {
    let p =
        policy(r#"{"tables": [{"user": "alice", "table": "orders", "privileges": ["SELECT"]}]}"#);
    assert!(p
        .check_can_select(&Identity::user("alice"), &t("c.s.orders"), &[])
        .is_ok());
    assert!(p
        .check_can_select(&Identity::user("alice2"), &t("c.s.orders"), &[])
        .is_err());
    assert!(p
        .check_can_select(&Identity::user("Alice"), &t("c.s.orders"), &[])
        .is_err());
    assert!(p
        .check_can_select(&Identity::user("alice"), &t("c.s.orders_2024"), &[])
        .is_err());
}

#[test]
fn an_empty_section_denies_where_an_absent_one_allows() {
    let p = policy(r#"{"tables": []}"#);
    let u = Identity::user("u");
    assert!(p.check_can_select(&u, &t("c.s.t"), &[]).is_err());
    // information_schema is never governed by table rules.
    assert!(p
        .check_can_select(&u, &t("c.information_schema.tables"), &[])
        .is_ok());
    let p = policy(r#"{"catalogs": [{"catalog": "iceberg", "allow": "read-only"}]}"#);
    assert_eq!(p.catalog_access(&u, "iceberg"), CatalogAccess::ReadOnly);
    // The system catalog stays open behind the given rules.
    assert_eq!(p.catalog_access(&u, "system"), CatalogAccess::All);
    assert_eq!(p.catalog_access(&u, "postgres"), CatalogAccess::None);
    assert_eq!(
        p.check_can_select(&u, &t("postgres.public.t"), &[]),
        denied("Cannot access catalog postgres")
    );
}

#[test]
fn groups_and_roles_match_any_of_the_users() {
    let p = policy(
        r#"{"tables": [
            {"group": "sales|finance", "schema": "sales", "privileges": ["SELECT"]},
            {"role": "engineer", "privileges": ["SELECT", "INSERT"]}
        ]}"#,
    );
    let analyst = in_groups("ann", &["hr", "finance"]);
    assert!(p.check_can_select(&analyst, &t("c.sales.t"), &[]).is_ok());
    assert!(p.check_can_select(&analyst, &t("c.hr.t"), &[]).is_err());
    let mut engineer = Identity::user("eve");
    engineer.roles.insert("engineer".into());
    assert!(p.check_can_insert(&engineer, &t("c.hr.t")).is_ok());
    assert!(p
        .check_can_insert(&Identity::user("eve"), &t("c.hr.t"))
        .is_err());
}

#[test]
fn a_definer_view_needs_its_owner_to_grant_select() {
    let p = policy(
        r#"{"tables": [
            {"user": "owner", "table": "base", "privileges": ["SELECT"]},
            {"user": "granter", "table": "base", "privileges": ["GRANT_SELECT"]}
        ]}"#,
    );
    assert_eq!(
        p.check_can_create_view_with_select(&Identity::user("owner"), &t("c.s.base"), &[]),
        denied(
            "View owner does not have sufficient privileges: View owner 'owner' cannot create \
             view that selects from c.s.base"
        )
    );
    assert!(p
        .check_can_create_view_with_select(&Identity::user("granter"), &t("c.s.base"), &[])
        .is_ok());
}

#[test]
fn malformed_files_are_refused_whole() {
    for (json, expected) in [
        (
            r#"{"tables": [{"privileges": ["SELECT"], "colour": "red"}]}"#,
            "unknown field",
        ),
        (r#"{"session_properties": []}"#, "unknown field"),
        (
            r#"{"catalogs": [{"allow": "maybe"}]}"#,
            "Unknown AccessMode",
        ),
        (
            r#"{"catalogs": [{"catalog": "x"}]}"#,
            "missing field `allow`",
        ),
        (
            r#"{"tables": [{"privileges": ["READ"]}]}"#,
            "unknown TablePrivilege",
        ),
        (
            r#"{"tables": [{"table": "(", "privileges": []}]}"#,
            "invalid pattern",
        ),
        (
            r#"{"tables": [{"privileges": [], "columns": [{"name": "a"}, {"name": "a"}]}]}"#,
            "Multiple entries",
        ),
        (
            r#"{"queries": [{"queryOwner": "x", "allow": ["execute"]}]}"#,
            "cannot combine",
        ),
    ] {
        let err = Rules::parse(json, "").unwrap_err();
        assert!(err.0.contains(expected), "{json}: {err}");
    }
    // Legacy booleans and any case are accepted.
    let p = policy(r#"{"catalogs": [{"catalog": "a", "allow": true}, {"allow": "READ-ONLY"}]}"#);
    assert_eq!(
        p.catalog_access(&Identity::user("u"), "a"),
        CatalogAccess::All
    );
    assert_eq!(
        p.catalog_access(&Identity::user("u"), "b"),
        CatalogAccess::ReadOnly
    );
    // A pointer picks the rules out of a larger document.
    let rules = Rules::parse(r#"{"trino": {"rules": {"tables": []}}}"#, "/trino/rules").unwrap();
    assert_eq!(rules.tables.map(|t| t.len()), Some(0));
}

#[test]
fn schemas_are_visible_to_any_rule_that_gives_something_inside() {
    let p = policy(
        r#"{
            "schemas": [{"user": "bob", "schema": "bob_.*", "owner": true}],
            "tables": [{"user": "bob", "schema": "shared", "privileges": ["SELECT"]}]
        }"#,
    );
    let bob = Identity::user("bob");
    assert!(p.schema_visible(&bob, "c", "bob_sandbox"));
    assert!(p.schema_visible(&bob, "c", "shared"));
    assert!(!p.schema_visible(&bob, "c", "private"));
    assert!(p.check_can_drop_schema(&bob, "c", "bob_sandbox").is_ok());
    assert_eq!(
        p.check_can_drop_schema(&bob, "c", "shared"),
        denied("Cannot drop schema c.shared")
    );
    assert_eq!(
        p.check_can_show_tables(&bob, "c", "private"),
        denied("Cannot show tables of schema c.private")
    );
    // Without catalog session property rules everyone may set them, which shows the
    // catalog to everyone (Trino counts any rule that gives something in it).
    assert!(p.catalog_visible(&Identity::user("carol"), "c"));
    assert!(!p.schema_visible(&Identity::user("carol"), "c", "shared"));
}
