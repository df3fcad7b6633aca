//! A Trino group file (`group-provider.name=file`): one `group:user1,user2` per line,
//! `#` comments and blank lines skipped, a group on several lines merged.

use std::collections::{BTreeMap, BTreeSet};

use crate::RulesError;

/// Each user's groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFile {
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl GroupFile {
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((group, users)) = line.split_once(':') else {
                return Err(RulesError(format!(
                    "Error in group file line {}: Expected two parts for group and users",
                    number + 1
                )));
            };
            let group = group.trim();
            for user in users.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                groups
                    .entry(user.to_string())
                    .or_default()
                    .insert(group.to_string());
            }
        }
        Ok(Self { groups })
    }

    /// The groups of `user` (none for a user the file does not name).
    pub fn groups_of(&self, user: &str) -> BTreeSet<String> {
        self.groups.get(user).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_get_every_group_that_names_them() {
        let file = GroupFile::parse(
            "# analysts\nsales:alice, bob\n\nmarketing:carol\nsales:dave\nadmins:alice,\n",
        )
        .unwrap();
        assert_eq!(
            file.groups_of("alice"),
            BTreeSet::from(["admins".to_string(), "sales".to_string()])
        );
        assert_eq!(
            file.groups_of("dave"),
            BTreeSet::from(["sales".to_string()])
        );
        assert!(file.groups_of("erin").is_empty());
        let err = GroupFile::parse("sales alice").unwrap_err();
        assert_eq!(
            err.0,
            "Error in group file line 1: Expected two parts for group and users"
        );
    }
}
