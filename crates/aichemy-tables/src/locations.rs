//! Where tables may live: [`LocationPolicy`] keeps every location under the warehouse or an
//! allowed prefix, lexically (no `.`/`..` segments, plain or percent-encoded, no encoded
//! separators, no other bucket, no `http(s)://` address) and, for `file://` locations, on
//! disk: a location may not pass through a symbolic link below its root, so that a link
//! placed inside the warehouse cannot carry a table's files outside it or into another
//! table's folder. Formats check a location when a table or schema is created and again
//! right before they write or delete files.

use std::path::{Component, Path, PathBuf};

use url::Url;

/// The warehouse's own files and folders, which no table or schema may take over.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReservedLocation {
    pub(crate) location: String,
    /// What it is, for messages (`the warehouse root`).
    pub(crate) what: String,
    /// Whether nothing may lie inside it either (the metastore file, the TLS folder); the
    /// warehouse root and catalog folders hold schemas and tables.
    pub(crate) exclusive: bool,
}

/// Where tables may live: under the warehouse or an explicitly allowed prefix (see the
/// module comment).
#[derive(Debug, Clone, PartialEq)]
pub struct LocationPolicy {
    roots: Vec<Url>,
    warehouse: Option<String>,
    reserved: Vec<ReservedLocation>,
}

impl LocationPolicy {
    /// Allows locations under each of `roots` (URLs).
    pub fn new<S: AsRef<str>>(roots: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let roots = roots
            .into_iter()
            .map(|root| {
                let root = root.as_ref().trim_end_matches('/');
                Url::parse(root).map_err(|e| format!("invalid location prefix '{root}': {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            roots,
            warehouse: None,
            reserved: Vec::new(),
        })
    }

    /// Reserves the warehouse root, the folder of each catalog in `catalog_folders`
    /// (`<warehouse>/iceberg`), the metastore file and the TLS folder: no table may be
    /// placed at or over them, and DROP never deletes them.
    pub fn with_warehouse(mut self, warehouse: &str, catalog_folders: &[&str]) -> Self {
        let root = warehouse.trim_end_matches('/').to_string();
        let mut reserved = vec![ReservedLocation {
            location: root.clone(),
            what: "the warehouse root".into(),
            exclusive: false,
        }];
        for catalog in catalog_folders {
            reserved.push(ReservedLocation {
                location: format!("{root}/{catalog}"),
                what: format!("the folder of catalog '{catalog}'"),
                exclusive: false,
            });
        }
        for file in [
            "metastore.db",
            "metastore.db-wal",
            "metastore.db-shm",
            "metastore.db-journal",
        ] {
            reserved.push(ReservedLocation {
                location: format!("{root}/{file}"),
                what: "the metastore file".into(),
                exclusive: true,
            });
        }
        reserved.push(ReservedLocation {
            location: format!("{root}/tls"),
            what: "the TLS folder".into(),
            exclusive: true,
        });
        self.warehouse = Some(root);
        self.reserved = reserved;
        self
    }

    /// The warehouse root, when [`LocationPolicy::with_warehouse`] named it.
    pub(crate) fn warehouse(&self) -> Option<&str> {
        self.warehouse.as_deref()
    }

    pub(crate) fn reserved(&self) -> &[ReservedLocation] {
        &self.reserved
    }

    /// The location without a trailing slash, when it is allowed (and, for a local
    /// location, reaches no symbolic link below its root).
    pub fn check(&self, location: &str) -> Result<String, String> {
        let refuse = |why: &str| Err(format!("Invalid location '{location}': {why}"));
        let trimmed = location.trim_end_matches('/');
        let Ok(url) = Url::parse(trimmed) else {
            return refuse("not a URL");
        };
        if matches!(url.scheme(), "http" | "https") {
            return refuse("tables cannot live on http(s) addresses");
        }
        let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
        let after_host = after_scheme.split_once('/').map_or("", |(_, path)| path);
        for segment in after_scheme.split(['/', '\\']) {
            let decoded = percent_decode(segment);
            if decoded == "." || decoded == ".." {
                return refuse("'.' and '..' path segments are not allowed");
            }
            if decoded.contains(['/', '\\', '\0']) {
                return refuse("encoded path separators are not allowed");
            }
        }
        if !after_host.is_empty() && after_host.split('/').any(str::is_empty) {
            return refuse("empty path segments are not allowed");
        }
        let Some(root) = self.roots.iter().find(|root| is_under(&url, root)) else {
            let roots: Vec<&str> = self.roots.iter().map(Url::as_str).collect();
            return refuse(&format!(
                "outside the warehouse and the allowed locations ({})",
                roots.join(", ")
            ));
        };
        if url.scheme() == "file" {
            if let Err(why) = check_on_disk(&url, root) {
                return refuse(&why);
            }
        }
        Ok(trimmed.to_string())
    }

    /// Checks a location as [`LocationPolicy::check`] does and, for a local one, that no
    /// symbolic link lies anywhere in the folder tree below it: right before files are
    /// written into it or deleted from it.
    pub fn check_tree(&self, location: &str) -> Result<(), String> {
        let checked = self.check(location)?;
        let Ok(url) = Url::parse(&checked) else {
            return Ok(());
        };
        if url.scheme() != "file" {
            return Ok(());
        }
        let Ok(path) = url.to_file_path() else {
            return Ok(());
        };
        match find_link(&path) {
            Ok(None) => Ok(()),
            Ok(Some(link)) => Err(format!(
                "Invalid location '{location}': it holds a symbolic link ({})",
                link.display()
            )),
            Err(e) => Err(format!("Cannot check location '{location}': {e}")),
        }
    }
}

/// Whether `url` is `root` or below it (whole path segments).
fn is_under(url: &Url, root: &Url) -> bool {
    root.scheme() == url.scheme()
        && root.host_str() == url.host_str()
        && root.port() == url.port()
        && (url.path() == root.path()
            || url
                .path()
                .strip_prefix(root.path().trim_end_matches('/'))
                .is_some_and(|rest| rest.starts_with('/')))
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resolves the symbolic links of a local path: its longest existing ancestor made
/// canonical, the rest appended. A dangling link on the way cannot be resolved.
fn resolve_local(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        match std::fs::symlink_metadata(&existing) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(name) = existing.file_name() else {
                    return Err(e);
                };
                missing.push(name.to_os_string());
                if !existing.pop() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut resolved = std::fs::canonicalize(&existing)?;
    for name in missing.into_iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}

/// Checks that a local location reaches the same place on disk as its root followed by
/// its own segments: no symbolic link between the root and the location.
fn check_on_disk(url: &Url, root: &Url) -> Result<(), String> {
    let (Ok(path), Ok(root_path)) = (url.to_file_path(), root.to_file_path()) else {
        return Err("not an absolute local path".into());
    };
    let Ok(below) = path.strip_prefix(&root_path) else {
        return Err("outside its root".into());
    };
    if below
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err("'.' and '..' path segments are not allowed".into());
    }
    let resolved_root = resolve_local(&root_path)
        .map_err(|e| format!("its root {} cannot be resolved: {e}", root_path.display()))?;
    let resolved = resolve_local(&path)
        .map_err(|e| format!("it cannot be resolved (a dangling symbolic link?): {e}"))?;
    if resolved != resolved_root.join(below) {
        return Err(format!(
            "it passes through a symbolic link (it resolves to {})",
            resolved.display()
        ));
    }
    Ok(())
}

/// The first symbolic link in the folder tree below `path`, if any (a missing folder has
/// none).
fn find_link(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut folders = vec![path.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                return Ok(Some(entry.path()));
            }
            if kind.is_dir() {
                folders.push(entry.path());
            }
        }
    }
    Ok(None)
}

/// Checks a table's folder with [`LocationPolicy::check_tree`] when a policy guards it:
/// right before a write puts files in it and again before the commit.
pub(crate) fn recheck(guard: Option<&LocationPolicy>, location: &str) -> Result<(), String> {
    guard.map_or(Ok(()), |policy| policy.check_tree(location))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_stay_inside_the_warehouse_and_allowed_prefixes() {
        let policy = LocationPolicy::new(["s3://lake/wh/", "file:///data/shared"]).unwrap();
        assert_eq!(
            policy.check("s3://lake/wh/iceberg/s/t/").unwrap(),
            "s3://lake/wh/iceberg/s/t"
        );
        assert!(policy.check("file:///data/shared/t").is_ok());
        for bad in [
            "s3://lake/wh/../other/t",
            "s3://lake/wh/%2e%2e/other",
            "s3://lake/wh/..%2fother",
            "s3://lake/wh/..%2Fother/t",
            "s3://lake/wh/a%5c..%5c..%5cother",
            "s3://lake/wh/./t",
            "s3://lake/wh//t",
            "s3://lake/whx/t",
            "s3://other-bucket/wh/t",
            "file:///data/sharedx/t",
            "http://169.254.169.254/latest/meta-data",
            "https://lake/wh/t",
            "gs://lake/wh/t",
            "/data/shared/t",
        ] {
            assert!(policy.check(bad).is_err(), "{bad} was allowed");
        }
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("..%2f"), "../");
        assert_eq!(percent_decode("%2E%2e"), "..");
        assert_eq!(percent_decode("a%zz%"), "a%zz%");
        assert_eq!(percent_decode("%41%4"), "A%4");
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_cannot_carry_a_location_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = dir.path().join("wh");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(warehouse.join("delta/s")).unwrap();
        std::fs::create_dir_all(warehouse.join("iceberg/s/t")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, warehouse.join("escape")).unwrap();
        std::os::unix::fs::symlink(warehouse.join("iceberg/s/t"), warehouse.join("inner")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), warehouse.join("dangling")).unwrap();
        let root = format!("file://{}", warehouse.display());
        let policy = LocationPolicy::new([&root]).unwrap();
        assert!(policy.check(&format!("{root}/delta/s/t")).is_ok());
        assert!(policy.check(&format!("{root}/new/folder/t")).is_ok());
        for bad in [
            "escape/t",
            "escape",
            "inner/t",
            "dangling/t",
            "escape/a/b/c",
        ] {
            let location = format!("{root}/{bad}");
            let refused = policy.check(&location).unwrap_err();
            assert!(refused.contains("symbolic link"), "{bad}: {refused}");
        }
        // A link placed inside a table's folder after it was created is found before
        // anything is written there.
        assert!(policy.check_tree(&format!("{root}/iceberg/s/t")).is_ok());
        std::os::unix::fs::symlink(&outside, warehouse.join("iceberg/s/t/data")).unwrap();
        let refused = policy
            .check_tree(&format!("{root}/iceberg/s/t"))
            .unwrap_err();
        assert!(refused.contains("symbolic link"), "{refused}");
        assert!(policy.check_tree(&format!("{root}/missing")).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_warehouse_reached_through_a_link_is_still_the_warehouse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("real/wh")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let root = format!("file://{}/link/wh", dir.path().display());
        let policy = LocationPolicy::new([&root]).unwrap();
        assert!(policy.check(&format!("{root}/delta/s/t")).is_ok());
    }
}
