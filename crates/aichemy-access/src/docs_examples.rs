//! The example rules files of Trino's documentation (`security/*.json` beside
//! `file-system-access-control.md`, Apache-2.0), read unchanged and checked against what the
//! text around each says it means.

use std::collections::BTreeSet;

use crate::rules::Rules;
use crate::{FileAccessControl, Identity, Principal, TableName};

fn example(json: &str) -> FileAccessControl {
    FileAccessControl::new(Rules::parse(json, "").expect("Trino's example parses"))
}

fn who(user: &str, groups: &[&str], roles: &[&str]) -> Identity {
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
    Identity {
        user: user.into(),
        groups: set(groups),
        roles: set(roles),
    }
}

/// "allows the `admin` role to impersonate any user, except for `bob`. It also allows any
/// user to impersonate the `test` user. It also allows a user in the form `team_backend` to
/// impersonate the `team_backend_sandbox` user, but not arbitrary users".
#[test]
fn user_impersonation() {
    let rules = example(include_str!("trino_docs/user-impersonation.json"));
    let admin = who("ann", &[], &["admin"]);
    assert!(rules.check_can_impersonate_user(&admin, "alice").is_ok());
    assert_eq!(
        rules
            .check_can_impersonate_user(&admin, "bob")
            .unwrap_err()
            .to_string(),
        "Access Denied: User ann cannot impersonate user bob"
    );
    let carol = who("carol", &[], &[]);
    assert!(rules.check_can_impersonate_user(&carol, "test").is_ok());
    assert!(rules.check_can_impersonate_user(&carol, "alice").is_err());
    let team = who("team_backend", &[], &[]);
    assert!(rules
        .check_can_impersonate_user(&team, "team_backend_sandbox")
        .is_ok());
    assert!(rules
        .check_can_impersonate_user(&team, "team_frontend_sandbox")
        .is_err());
}

/// "allow the role `admin` full query access, allow the user `alice` to execute and kill
/// queries, allow members of the group `contractors` to view queries owned by users `alice`
/// or `dave`, allow any user to execute queries, and deny all other access"; "users always
/// have permission to view or kill their own queries".
#[test]
fn query_access() {
    let rules = example(include_str!("trino_docs/query-access.json"));
    let admin = who("ann", &[], &["admin"]);
    assert!(rules.check_can_execute_query(&admin).is_ok());
    assert!(rules.check_can_view_query_owned_by(&admin, "zed").is_ok());
    assert!(rules.check_can_kill_query_owned_by(&admin, "zed").is_ok());
    let alice = who("alice", &[], &[]);
    assert!(rules.check_can_execute_query(&alice).is_ok());
    assert!(rules.check_can_kill_query_owned_by(&alice, "zed").is_ok());
    assert!(rules.check_can_view_query_owned_by(&alice, "zed").is_err());
    let contractor = who("carl", &["contractors"], &[]);
    assert!(rules
        .check_can_view_query_owned_by(&contractor, "dave")
        .is_ok());
    assert!(rules
        .check_can_view_query_owned_by(&contractor, "alice")
        .is_ok());
    assert!(rules
        .check_can_view_query_owned_by(&contractor, "zed")
        .is_err());
    assert!(rules
        .check_can_kill_query_owned_by(&contractor, "dave")
        .is_err());
    // A rule with `queryOwner` matches only checks about a query's owner: executing falls
    // through to the last rule.
    assert!(rules.check_can_execute_query(&contractor).is_ok());
    let anyone = who("zed", &[], &[]);
    assert!(rules.check_can_execute_query(&anyone).is_ok());
    assert!(rules
        .check_can_view_query_owned_by(&anyone, "alice")
        .is_err());
    assert!(rules.check_can_view_query_owned_by(&anyone, "zed").is_ok());
    assert!(rules.check_can_kill_query_owned_by(&anyone, "zed").is_ok());
}

/// "Role `admin` can set all session property; user `banned_user` can not set any session
/// properties; all users can set the `resource_overcommit` system session property, and the
/// `bucket_execution_enabled` session property in the `hive` catalog."
#[test]
fn session_property_access() {
    let rules = example(include_str!("trino_docs/session-property-access.json"));
    let admin = who("ann", &[], &["admin"]);
    assert!(rules
        .check_can_set_system_session_property(&admin, "query_max_memory")
        .is_ok());
    let banned = who("banned_user", &[], &[]);
    assert!(rules
        .check_can_set_system_session_property(&banned, "resource_overcommit")
        .is_err());
    let anyone = who("zed", &[], &[]);
    assert!(rules
        .check_can_set_system_session_property(&anyone, "resource_overcommit")
        .is_ok());
    assert_eq!(
        rules
            .check_can_set_system_session_property(&anyone, "query_max_memory")
            .unwrap_err()
            .to_string(),
        "Access Denied: Cannot set system session property query_max_memory"
    );
    assert!(rules
        .check_can_set_catalog_session_property(&anyone, "hive", "bucket_execution_enabled")
        .is_ok());
    assert!(rules
        .check_can_set_catalog_session_property(&anyone, "hive", "compression_codec")
        .is_err());
    assert!(rules
        .check_can_set_catalog_session_property(&admin, "hive", "compression_codec")
        .is_ok());
    assert!(rules
        .check_can_set_catalog_session_property(&banned, "hive", "bucket_execution_enabled")
        .is_err());
}

/// Role `admin` reads and writes system information, `alice` reads it, nobody else either.
#[test]
fn system_information_access() {
    let rules = example(include_str!("trino_docs/system-information-access.json"));
    let admin = who("ann", &[], &["admin"]);
    assert!(rules.check_can_read_system_information(&admin).is_ok());
    assert!(rules.check_can_write_system_information(&admin).is_ok());
    let alice = who("alice", &[], &[]);
    assert!(rules.check_can_read_system_information(&alice).is_ok());
    assert!(rules.check_can_write_system_information(&alice).is_err());
    let anyone = who("zed", &[], &[]);
    assert!(rules.check_can_read_system_information(&anyone).is_err());
}

/// "allows the `admin` role, to change owner of any schema, table or view to any user,
/// except to `bob`."
#[test]
fn authorization() {
    let rules = example(include_str!("trino_docs/authorization.json"));
    let admin = who("ann", &[], &["admin"]);
    let table = ["hive", "sales", "orders"];
    let to = |user: &str| Principal::User(user.into());
    assert!(rules
        .check_can_set_authorization(&admin, "table", &table, &to("alice"))
        .is_ok());
    assert!(rules
        .check_can_set_authorization(
            &admin,
            "schema",
            &table[..2],
            &Principal::Role("etl".into())
        )
        .is_ok());
    assert_eq!(
        rules
            .check_can_set_authorization(&admin, "table", &table, &to("bob"))
            .unwrap_err()
            .to_string(),
        "Access Denied: Cannot set authorization for table hive.sales.orders to USER bob"
    );
    // Others own nothing here, so may give nothing away.
    let anyone = who("zed", &[], &[]);
    assert!(rules
        .check_can_set_authorization(&anyone, "table", &table, &to("alice"))
        .is_err());
    assert!(rules
        .check_can_select(&anyone, &TableName::new("hive", "sales", "orders"), &[])
        .is_err());
}
