//! A Trino rules file (`security.config-file`) as written for Trino's file-based system
//! access control: every section and field Trino reads, nothing else (an unknown key
//! rejects the whole file, as in Trino). Patterns match the whole value, case-sensitively.

use std::collections::BTreeSet;
use std::fmt;

use regex::Regex;
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::{Identity, RulesError};

/// A regular expression that must match a whole value.
#[derive(Clone)]
pub struct Pattern {
    text: String,
    regex: Regex,
}

impl Pattern {
    pub fn new(text: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            text: text.to_string(),
            regex: Regex::new(&format!("^(?:{text})$"))?,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }

    /// The regex's captures of `value` when it matches whole.
    pub(crate) fn captures<'a>(&self, value: &'a str) -> Option<regex::Captures<'a>> {
        self.regex.captures(value)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::new(&text).map_err(|e| de::Error::custom(format!("invalid pattern {text:?}: {e}")))
    }
}

/// Whether an optional pattern matches (an absent one matches everything).
fn matches(pattern: &Option<Pattern>, value: &str) -> bool {
    pattern.as_ref().is_none_or(|p| p.matches(value))
}

/// Whether an optional pattern matches one of `values` (an absent one matches everything;
/// a present one never matches an empty set).
fn matches_any(pattern: &Option<Pattern>, values: &BTreeSet<String>) -> bool {
    pattern
        .as_ref()
        .is_none_or(|p| values.iter().any(|v| p.matches(v)))
}

/// Whether a rule's user, role and group conditions hold for `identity`.
fn who(
    user: &Option<Pattern>,
    role: &Option<Pattern>,
    group: &Option<Pattern>,
    identity: &Identity,
) -> bool {
    matches(user, &identity.user)
        && matches_any(role, &identity.roles)
        && matches_any(group, &identity.groups)
}

/// What a catalog rule grants, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CatalogAccess {
    None,
    ReadOnly,
    All,
    Owner,
}

impl CatalogAccess {
    /// Whether this access covers `required`.
    pub fn implies(self, required: CatalogAccess) -> bool {
        self != CatalogAccess::None && self >= required
    }
}

impl<'de> Deserialize<'de> for CatalogAccess {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Mode(String),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Flag(true) => CatalogAccess::All,
            Raw::Flag(false) => CatalogAccess::None,
            Raw::Mode(mode) => match mode.to_ascii_lowercase().as_str() {
                "all" => CatalogAccess::All,
                "read-only" => CatalogAccess::ReadOnly,
                "none" => CatalogAccess::None,
                "owner" => CatalogAccess::Owner,
                _ => return Err(de::Error::custom(format!("Unknown AccessMode: {mode}"))),
            },
        })
    }
}

/// Reads an upper-case keyword the way Trino's mapper does, ignoring case.
macro_rules! keywords {
    ($name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $(if text.eq_ignore_ascii_case($text) { return Ok($name::$variant); })*
                Err(de::Error::custom(format!(
                    concat!("unknown ", stringify!($name), " {:?}"), text
                )))
            }
        }
    };
}

keywords!(TablePrivilege {
    Select = "SELECT",
    Insert = "INSERT",
    Delete = "DELETE",
    Update = "UPDATE",
    Ownership = "OWNERSHIP",
    GrantSelect = "GRANT_SELECT",
});

keywords!(QueryAccess {
    Execute = "execute",
    View = "view",
    Kill = "kill",
});

keywords!(SystemAccess {
    Read = "read",
    Write = "write",
});

keywords!(RoutinePrivilege {
    Execute = "EXECUTE",
    GrantExecute = "GRANT_EXECUTE",
    Ownership = "OWNERSHIP",
});

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    pub catalog: Option<Pattern>,
    pub allow: CatalogAccess,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    pub catalog: Option<Pattern>,
    pub schema: Option<Pattern>,
    #[serde(default)]
    pub owner: bool,
}

/// The identity an expression's own reads are checked as (`mask_environment`,
/// `filter_environment`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub user: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    pub name: String,
    #[serde(default = "yes")]
    pub allow: bool,
    pub mask: Option<String>,
    pub mask_environment: Option<Environment>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    pub catalog: Option<Pattern>,
    pub schema: Option<Pattern>,
    pub table: Option<Pattern>,
    pub privileges: BTreeSet<TablePrivilege>,
    #[serde(default)]
    pub columns: Vec<ColumnRule>,
    pub filter: Option<String>,
    pub filter_environment: Option<Environment>,
}

impl TableRule {
    pub fn column(&self, name: &str) -> Option<&ColumnRule> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    #[serde(rename = "queryOwner")]
    pub query_owner: Option<Pattern>,
    pub allow: BTreeSet<QueryAccess>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpersonationRule {
    #[serde(alias = "originalUser")]
    pub original_user: Option<Pattern>,
    #[serde(alias = "originalRole")]
    pub original_role: Option<Pattern>,
    #[serde(alias = "newUser")]
    pub new_user: String,
    #[serde(default = "yes")]
    pub allow: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalRule {
    pub principal: Pattern,
    pub user: Option<Pattern>,
    pub principal_to_user: Option<String>,
    #[serde(default)]
    pub allow: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemInformationRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub allow: BTreeSet<SystemAccess>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationRule {
    #[serde(alias = "originalUser")]
    pub original_user: Option<Pattern>,
    #[serde(alias = "originalGroup")]
    pub original_group: Option<Pattern>,
    #[serde(alias = "originalRole")]
    pub original_role: Option<Pattern>,
    #[serde(alias = "newUser")]
    pub new_user: Option<Pattern>,
    #[serde(alias = "newRole")]
    pub new_role: Option<Pattern>,
    #[serde(default = "yes")]
    pub allow: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionPropertyRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    pub property: Option<Pattern>,
    #[serde(default)]
    pub allow: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSessionPropertyRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    pub catalog: Option<Pattern>,
    pub property: Option<Pattern>,
    #[serde(default)]
    pub allow: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    pub catalog: Option<Pattern>,
    pub schema: Option<Pattern>,
    pub function: Option<Pattern>,
    pub privileges: BTreeSet<RoutinePrivilege>,
    #[serde(default, alias = "functionKinds")]
    pub function_kinds: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureRule {
    pub user: Option<Pattern>,
    pub role: Option<Pattern>,
    pub group: Option<Pattern>,
    pub catalog: Option<Pattern>,
    pub schema: Option<Pattern>,
    pub procedure: Option<Pattern>,
    pub privileges: BTreeSet<RoutinePrivilege>,
}

/// A rules file: each section `None` when absent (absent and empty differ in Trino).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub catalogs: Option<Vec<CatalogRule>>,
    pub queries: Option<Vec<QueryRule>>,
    pub impersonation: Option<Vec<ImpersonationRule>>,
    pub principals: Option<Vec<PrincipalRule>>,
    pub system_information: Option<Vec<SystemInformationRule>>,
    pub authorization: Option<Vec<AuthorizationRule>>,
    pub schemas: Option<Vec<SchemaRule>>,
    pub tables: Option<Vec<TableRule>>,
    pub system_session_properties: Option<Vec<SessionPropertyRule>>,
    pub catalog_session_properties: Option<Vec<CatalogSessionPropertyRule>>,
    pub functions: Option<Vec<FunctionRule>>,
    pub procedures: Option<Vec<ProcedureRule>>,
}

impl Rules {
    /// Reads a rules file's text; `pointer` (RFC 6901, `security.json-pointer`) names the
    /// object holding the rules, the whole document when empty.
    pub fn parse(text: &str, pointer: &str) -> Result<Self, RulesError> {
        let document: serde_json::Value =
            serde_json::from_str(text).map_err(|e| RulesError(e.to_string()))?;
        let node = document
            .pointer(pointer)
            .ok_or_else(|| RulesError(format!("JSON pointer {pointer:?} names nothing")))?;
        let rules = Rules::deserialize(node).map_err(|e| RulesError(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    fn validate(&self) -> Result<(), RulesError> {
        for rule in self.tables.iter().flatten() {
            let mut names = BTreeSet::new();
            for column in &rule.columns {
                if !names.insert(column.name.as_str()) {
                    return Err(RulesError(format!(
                        "Multiple entries with same key: {}",
                        column.name
                    )));
                }
            }
        }
        for rule in self.queries.iter().flatten() {
            if rule.query_owner.is_some() && rule.allow.contains(&QueryAccess::Execute) {
                return Err(RulesError(
                    "A valid query rule cannot combine an queryOwner condition with access \
                     mode 'execute'"
                        .into(),
                ));
            }
        }
        for rule in self.authorization.iter().flatten() {
            if rule.new_user.is_none() && rule.new_role.is_none() {
                return Err(RulesError(
                    "At least one of new_user or new_role is required, none were provided".into(),
                ));
            }
        }
        for rule in self.principals.iter().flatten() {
            if rule.user.is_none() && rule.principal_to_user.is_none() {
                return Err(RulesError(
                    "A valid principal rule must provide at least one criterion of user and \
                     user_extraction"
                        .into(),
                ));
            }
        }
        for rule in self.functions.iter().flatten() {
            if !rule.function_kinds.is_empty() {
                return Err(RulesError(
                    "function_kind is no longer supported in security rules".into(),
                ));
            }
        }
        Ok(())
    }
}

impl CatalogRule {
    pub(crate) fn matches(&self, identity: &Identity, catalog: &str) -> bool {
        who(&self.user, &self.role, &self.group, identity) && matches(&self.catalog, catalog)
    }
}

impl SchemaRule {
    pub(crate) fn matches(&self, identity: &Identity, catalog: &str, schema: Option<&str>) -> bool {
        who(&self.user, &self.role, &self.group, identity)
            && matches(&self.catalog, catalog)
            && schema.is_none_or(|s| matches(&self.schema, s))
    }
}

impl TableRule {
    pub(crate) fn matches(
        &self,
        identity: &Identity,
        catalog: &str,
        schema: Option<&str>,
        table: Option<&str>,
    ) -> bool {
        who(&self.user, &self.role, &self.group, identity)
            && matches(&self.catalog, catalog)
            && schema.is_none_or(|s| matches(&self.schema, s))
            && table.is_none_or(|t| matches(&self.table, t))
    }
}

impl QueryRule {
    pub(crate) fn matches(&self, identity: &Identity, owner: Option<&str>) -> bool {
        who(&self.user, &self.role, &self.group, identity)
            && match (&self.query_owner, owner) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(pattern), Some(owner)) => pattern.matches(owner),
            }
    }
}

impl SystemInformationRule {
    pub(crate) fn matches(&self, identity: &Identity) -> bool {
        matches(&self.user, &identity.user) && matches_any(&self.role, &identity.roles)
    }
}

impl SessionPropertyRule {
    pub(crate) fn matches(&self, identity: &Identity, property: &str) -> bool {
        who(&self.user, &self.role, &self.group, identity) && matches(&self.property, property)
    }
}

impl CatalogSessionPropertyRule {
    /// Whether the rule applies to `identity` in `catalog`, whatever the property.
    pub(crate) fn matches_catalog(&self, identity: &Identity, catalog: &str) -> bool {
        who(&self.user, &self.role, &self.group, identity) && matches(&self.catalog, catalog)
    }

    pub(crate) fn matches(&self, identity: &Identity, catalog: &str, property: &str) -> bool {
        who(&self.user, &self.role, &self.group, identity)
            && matches(&self.catalog, catalog)
            && matches(&self.property, property)
    }
}

impl FunctionRule {
    pub(crate) fn matches(
        &self,
        identity: &Identity,
        catalog: &str,
        schema: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        who(&self.user, &self.role, &self.group, identity)
            && matches(&self.catalog, catalog)
            && schema.is_none_or(|s| matches(&self.schema, s))
            && name.is_none_or(|n| matches(&self.function, n))
    }
}

impl ProcedureRule {
    pub(crate) fn matches(
        &self,
        identity: &Identity,
        catalog: &str,
        schema: Option<&str>,
        name: Option<&str>,
    ) -> bool {
        who(&self.user, &self.role, &self.group, identity)
            && matches(&self.catalog, catalog)
            && schema.is_none_or(|s| matches(&self.schema, s))
            && name.is_none_or(|n| matches(&self.procedure, n))
    }
}

impl AuthorizationRule {
    pub(crate) fn matches(&self, identity: &Identity, new: &crate::Principal) -> bool {
        matches(&self.original_user, &identity.user)
            && matches_any(&self.original_group, &identity.groups)
            && matches_any(&self.original_role, &identity.roles)
            && match new {
                crate::Principal::User(user) => {
                    self.new_user.as_ref().is_some_and(|p| p.matches(user))
                }
                crate::Principal::Role(role) => {
                    self.new_role.as_ref().is_some_and(|p| p.matches(role))
                }
            }
    }
}
