//! Trino's `access-control.properties` and `group-provider.properties`, and the policy
//! they configure, read again when their refresh period has passed.
//!
//! As in Trino: without a refresh period the rules are read once, at start; with one, a
//! check after the period reads them again, and a file that no longer parses fails every
//! check until it is fixed (the old rules are not kept).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::file::FileAccessControl;
use crate::groups::GroupFile;
use crate::rules::Rules;
use crate::RulesError;

/// Reads a Java properties file's `key=value` (or `key: value`) lines.
fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|line| {
            let at = line.find(['=', ':'])?;
            Some((
                line[..at].trim().to_string(),
                line[at + 1..].trim().to_string(),
            ))
        })
        .collect()
}

/// A Trino duration (`5s`, `1.5m`), or why it is none.
fn parse_duration(text: &str) -> Result<Duration, RulesError> {
    aichemy_config::parse_duration(text)
        .ok_or_else(|| RulesError(format!("not a duration (a number and a unit): {text:?}")))
}

/// A path a properties file names: as given when it exists from the working folder (as
/// Trino reads it), else beside the properties file.
fn named_path(given: &str, properties_file: &Path) -> PathBuf {
    let path = PathBuf::from(given);
    if path.is_absolute() || path.exists() {
        return path;
    }
    properties_file
        .parent()
        .map_or(path.clone(), |folder| folder.join(&path))
}

/// What an access-control configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessControlConfig {
    /// `access-control.name=sql-standard`: the grants kept in the metastore decide, and
    /// these users hold the `admin` role (`sql-standard.admin-users`); no rules file.
    pub sql_standard: Option<BTreeSet<String>>,
    /// The rules file (`security.config-file`).
    pub rules_file: PathBuf,
    /// How often the rules are read again (`security.refresh-period`); never when `None`.
    pub refresh_period: Option<Duration>,
    /// Where in the JSON document the rules are (`security.json-pointer`).
    pub json_pointer: String,
    /// The group file (`file.group-file` of a group provider), if any.
    pub group_file: Option<PathBuf>,
    /// How often the group file is read again (`file.refresh-period`, 5 s by default).
    pub group_refresh_period: Duration,
}

impl AccessControlConfig {
    /// Reads `access-control.properties` (`access-control.name=file`); a `.json` file is
    /// taken as the rules file itself.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        if path.extension().is_some_and(|e| e == "json") {
            return Ok(Self {
                sql_standard: None,
                rules_file: path.to_path_buf(),
                refresh_period: None,
                json_pointer: String::new(),
                group_file: None,
                group_refresh_period: Duration::from_secs(5),
            });
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| RulesError(format!("cannot read {}: {e}", path.display())))?;
        let values = properties(&text);
        match values.get("access-control.name").map(String::as_str) {
            Some("file") => {}
            Some("sql-standard") => return Self::sql_standard(path, &values),
            Some(other) => {
                return Err(RulesError(format!(
                    "Access control '{other}' is not supported: only 'file' and \
                     'sql-standard' are"
                )))
            }
            None => {
                return Err(RulesError(format!(
                    "{}: access-control.name is not set",
                    path.display()
                )))
            }
        }
        let known = [
            "access-control.name",
            "security.config-file",
            "security.refresh-period",
            "security.json-pointer",
        ];
        if let Some(unknown) = values.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(RulesError(format!(
                "{}: unknown property {unknown}",
                path.display()
            )));
        }
        let rules = values
            .get("security.config-file")
            .ok_or_else(|| RulesError("security.config-file is not set".into()))?;
        if rules.starts_with("http://") || rules.starts_with("https://") {
            return Err(RulesError(format!(
                "security.config-file {rules}: rules over HTTP are not supported; give a file"
            )));
        }
        Ok(Self {
            sql_standard: None,
            rules_file: named_path(rules, path),
            refresh_period: values
                .get("security.refresh-period")
                .map(|d| parse_duration(d))
                .transpose()?,
            json_pointer: values
                .get("security.json-pointer")
                .cloned()
                .unwrap_or_default(),
            group_file: None,
            group_refresh_period: Duration::from_secs(5),
        })
    }

    /// `access-control.name=sql-standard` and the users holding `admin`.
    fn sql_standard(path: &Path, values: &BTreeMap<String, String>) -> Result<Self, RulesError> {
        let known = ["access-control.name", "sql-standard.admin-users"];
        if let Some(unknown) = values.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(RulesError(format!(
                "{}: unknown property {unknown}",
                path.display()
            )));
        }
        let admins = values
            .get("sql-standard.admin-users")
            .map(|users| {
                users
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            sql_standard: Some(admins),
            rules_file: PathBuf::new(),
            refresh_period: None,
            json_pointer: String::new(),
            group_file: None,
            group_refresh_period: Duration::from_secs(5),
        })
    }

    /// Adds the group file a `group-provider.properties` names (`group-provider.name=file`).
    pub fn with_group_provider(mut self, path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RulesError(format!("cannot read {}: {e}", path.display())))?;
        let values = properties(&text);
        if values.get("group-provider.name").map(String::as_str) != Some("file") {
            return Err(RulesError(format!(
                "{}: only group-provider.name=file is supported",
                path.display()
            )));
        }
        let file = values
            .get("file.group-file")
            .ok_or_else(|| RulesError("file.group-file is not set".into()))?;
        self.group_file = Some(named_path(file, path));
        if let Some(period) = values.get("file.refresh-period") {
            self.group_refresh_period = parse_duration(period)?;
        }
        Ok(self)
    }
}

/// A value read from a file, read again once `period` has passed.
#[derive(Debug)]
struct Reloading<T> {
    read: fn(&Path, &str) -> Result<T, RulesError>,
    path: PathBuf,
    pointer: String,
    period: Option<Duration>,
    state: Mutex<(Instant, Result<Arc<T>, RulesError>)>,
}

impl<T> Reloading<T> {
    fn new(
        read: fn(&Path, &str) -> Result<T, RulesError>,
        path: PathBuf,
        pointer: String,
        period: Option<Duration>,
    ) -> Result<Self, RulesError> {
        let first = read(&path, &pointer)?;
        Ok(Self {
            read,
            path,
            pointer,
            period,
            state: Mutex::new((Instant::now(), Ok(Arc::new(first)))),
        })
    }

    fn current(&self) -> Result<Arc<T>, RulesError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(period) = self.period {
            if state.0.elapsed() >= period {
                *state = (
                    Instant::now(),
                    (self.read)(&self.path, &self.pointer).map(Arc::new),
                );
            }
        }
        state.1.clone()
    }
}

fn read_rules(path: &Path, pointer: &str) -> Result<FileAccessControl, RulesError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RulesError(format!("cannot read rules file {}: {e}", path.display())))?;
    let rules = Rules::parse(&text, pointer)
        .map_err(|e| RulesError(format!("Invalid rules file {}: {e}", path.display())))?;
    Ok(FileAccessControl::new(rules))
}

fn read_groups(path: &Path, _: &str) -> Result<GroupFile, RulesError> {
    let text = std::fs::read_to_string(path)
        .map_err(|_| RulesError(format!("Failed to read group file: {}", path.display())))?;
    GroupFile::parse(&text)
}

/// The access policy of a running server: the rules file or SQL grants, and, if
/// configured, the groups.
#[derive(Debug)]
pub struct Policy {
    /// `None` under SQL grants, which the caller reads from its metastore.
    rules: Option<Reloading<FileAccessControl>>,
    /// The users holding `admin` under SQL grants.
    admins: BTreeSet<String>,
    groups: Option<Reloading<GroupFile>>,
    /// The groups identity providers last named for each user (a JWT's groups claim).
    claimed: std::sync::RwLock<std::collections::HashMap<String, BTreeSet<String>>>,
}

impl Policy {
    /// Reads the files `config` names; a file missing or malformed now is an error now.
    pub fn open(config: &AccessControlConfig) -> Result<Self, RulesError> {
        let rules = match config.sql_standard {
            Some(_) => None,
            None => Some(Reloading::new(
                read_rules,
                config.rules_file.clone(),
                config.json_pointer.clone(),
                config.refresh_period,
            )?),
        };
        let groups = config
            .group_file
            .as_ref()
            .map(|file| {
                Reloading::new(
                    read_groups,
                    file.clone(),
                    String::new(),
                    Some(config.group_refresh_period),
                )
            })
            .transpose()?;
        let admins = config.sql_standard.clone().unwrap_or_default();
        Ok(Self {
            rules,
            admins,
            groups,
            claimed: Default::default(),
        })
    }

    /// The rules file's rules as they stand, or why they cannot be used; `None` under SQL
    /// grants.
    pub fn rules(&self) -> Option<Result<Arc<FileAccessControl>, RulesError>> {
        self.rules.as_ref().map(Reloading::current)
    }

    /// Whether SQL grants decide (`access-control.name=sql-standard`).
    pub fn is_sql_standard(&self) -> bool {
        self.rules.is_none()
    }

    /// The users holding `admin` under SQL grants.
    pub fn admin_users(&self) -> &BTreeSet<String> {
        &self.admins
    }

    /// The groups of `user`: those the group file gives her and those her identity
    /// provider last named.
    pub fn groups_of(&self, user: &str) -> Result<std::collections::BTreeSet<String>, RulesError> {
        let mut groups = match &self.groups {
            None => BTreeSet::new(),
            Some(groups) => groups.current()?.groups_of(user),
        };
        let claimed = self.claimed.read().unwrap_or_else(|e| e.into_inner());
        groups.extend(claimed.get(user).into_iter().flatten().cloned());
        Ok(groups)
    }

    /// Records the groups an identity provider names for `user` as she signs in (a JWT's
    /// groups claim); they replace those it named before.
    pub fn claim_groups(&self, user: &str, groups: BTreeSet<String>) {
        let mut claimed = self.claimed.write().unwrap_or_else(|e| e.into_inner());
        if claimed.get(user) != Some(&groups) {
            claimed.insert(user.to_string(), groups);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_trino_writes_them() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn a_properties_file_names_the_rules_beside_it() {
        let dir = std::env::temp_dir().join(format!("aichemy-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rules.json"), r#"{"catalogs": []}"#).unwrap();
        let properties = dir.join("access-control.properties");
        std::fs::write(
            &properties,
            "# Trino's file\naccess-control.name=file\nsecurity.config-file=rules.json\n\
             security.refresh-period=1s\n",
        )
        .unwrap();
        let config = AccessControlConfig::load(&properties).unwrap();
        assert_eq!(config.rules_file, dir.join("rules.json"));
        assert_eq!(config.refresh_period, Some(Duration::from_secs(1)));
        assert!(Policy::open(&config).is_ok());
        std::fs::write(
            &properties,
            "access-control.name=sql-standard\nsql-standard.admin-users=alice, bob\n",
        )
        .unwrap();
        let config = AccessControlConfig::load(&properties).unwrap();
        let policy = Policy::open(&config).unwrap();
        assert!(policy.is_sql_standard());
        assert_eq!(policy.admin_users().len(), 2);
        std::fs::write(&properties, "access-control.name=ranger\n").unwrap();
        assert!(AccessControlConfig::load(&properties)
            .unwrap_err()
            .0
            .contains("'ranger' is not supported"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
