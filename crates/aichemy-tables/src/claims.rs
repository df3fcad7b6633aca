//! Which files belong to which table: every location the metastore records (tables and
//! schemas of every catalog, Iceberg tables and namespaces included) and the warehouse's
//! reserved places, compared by whole path segments of normalized URLs (`file://` and
//! `s3://` alike). A new table may not be placed at, inside or over another table, nor
//! over a schema's folder or a reserved place; DROP deletes only what the dropped table
//! owns.

use aichemy_metastore::{Metastore, RecordedLocation};
use aichemy_storage::object_store::{self, ObjectStoreExt};
use aichemy_storage::StoreRegistry;
use futures::TryStreamExt;

use crate::locations::percent_decode;
use crate::LocationPolicy;

/// A location as compared: scheme and authority, then decoded path segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    origin: String,
    segments: Vec<String>,
}

impl Key {
    fn of(location: &str) -> Option<Self> {
        let url = url::Url::parse(location.trim_end_matches('/')).ok()?;
        let scheme = match url.scheme() {
            "s3a" => "s3",
            other => other,
        };
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        Some(Self {
            origin: format!("{scheme}://{authority}"),
            segments: url
                .path()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(percent_decode)
                .collect(),
        })
    }

    /// Whether `self` is `other` or lies below it.
    fn within(&self, other: &Key) -> bool {
        self.origin == other.origin && self.segments.starts_with(&other.segments)
    }
}

/// Whether `location` is `base` or lies below it (whole segments of normalized URLs).
pub(crate) fn within(location: &str, base: &str) -> bool {
    match (Key::of(location), Key::of(base)) {
        (Some(location), Some(base)) => location.within(&base),
        _ => false,
    }
}

/// What holds a location.
#[derive(Debug, Clone, PartialEq)]
enum Holder {
    Table(String),
    Schema(String),
    /// The warehouse root or a catalog's folder: it holds schemas and tables, but nothing
    /// may be placed at it or over it.
    Folder(String),
    /// The metastore file or the TLS folder: nothing may be placed at, over or in it.
    Private(String),
}

impl Holder {
    fn describe(&self) -> String {
        match self {
            Holder::Table(name) => format!("table {name}"),
            Holder::Schema(name) => format!("schema {name}"),
            Holder::Folder(what) | Holder::Private(what) => what.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct Claim {
    key: Key,
    location: String,
    holder: Holder,
}

/// Whether a new location is for a table or a schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Placing {
    Table,
    Schema,
}

/// What DROP may delete under a dropped table's location.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Owned {
    /// Nothing: the files may belong to something else (the reason).
    Nothing(String),
    /// Everything except what lies under these locations (tables or schemas placed inside).
    AllBut(Vec<String>),
}

/// Every recorded and reserved location of the lakehouse, at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claims {
    claims: Vec<Claim>,
}

/// The table location an Iceberg metadata file implies: the folder above `metadata/`.
fn iceberg_table_location(metadata_location: &str) -> String {
    let folder = metadata_location
        .rsplit_once('/')
        .map_or(metadata_location, |(folder, _)| folder);
    folder
        .strip_suffix("/metadata")
        .unwrap_or(folder)
        .to_string()
}

impl Claims {
    /// The locations recorded in `metastore` and reserved by `policy`. Iceberg namespaces
    /// without a `location` property lie under `<warehouse>/<catalog>/`.
    pub(crate) async fn gather(
        metastore: &Metastore,
        policy: &LocationPolicy,
    ) -> Result<Self, String> {
        let recorded = metastore
            .recorded_locations()
            .await
            .map_err(|e| e.to_string())?;
        let mut claims = Claims::default();
        for reserved in policy.reserved() {
            let holder = if reserved.exclusive {
                Holder::Private(reserved.what.clone())
            } else {
                Holder::Folder(reserved.what.clone())
            };
            claims.add(&reserved.location, holder);
        }
        for record in recorded {
            match record {
                RecordedLocation::Schema {
                    catalog,
                    schema,
                    location,
                } => claims.add(&location, Holder::Schema(format!("{catalog}.{schema}"))),
                RecordedLocation::Table {
                    catalog,
                    schema,
                    name,
                    location,
                    ..
                } => claims.add(
                    &location,
                    Holder::Table(format!("{catalog}.{schema}.{name}")),
                ),
                RecordedLocation::IcebergNamespace {
                    catalog,
                    namespace,
                    location,
                } => {
                    let location = location.or_else(|| {
                        policy
                            .warehouse()
                            .map(|root| format!("{root}/{catalog}/{}", namespace.replace('.', "/")))
                    });
                    if let Some(location) = location {
                        claims.add(&location, Holder::Schema(format!("{catalog}.{namespace}")));
                    }
                }
                RecordedLocation::IcebergTable {
                    catalog,
                    namespace,
                    name,
                    metadata_location,
                } => claims.add(
                    &iceberg_table_location(&metadata_location),
                    Holder::Table(format!("{catalog}.{namespace}.{name}")),
                ),
            }
        }
        Ok(claims)
    }

    fn add(&mut self, location: &str, holder: Holder) {
        if let Some(key) = Key::of(location) {
            self.claims.push(Claim {
                key,
                location: location.trim_end_matches('/').to_string(),
                holder,
            });
        }
    }

    /// Checks that a new table or schema at `location` takes over nothing: a table may not
    /// lie at, inside or over another table, nor at or over a schema's folder or a
    /// reserved place; a schema may not lie at another schema's folder, at or inside a
    /// table, or at or over a reserved place. `itself` (a qualified name) is skipped: a
    /// table that moves.
    pub(crate) fn check(
        &self,
        location: &str,
        placing: Placing,
        itself: Option<&str>,
    ) -> Result<(), String> {
        let Some(new) = Key::of(location) else {
            return Err(format!("Invalid location '{location}': not a URL"));
        };
        for claim in &self.claims {
            let inside = new.within(&claim.key);
            let over = claim.key.within(&new);
            let conflict = match (&claim.holder, placing) {
                (Holder::Table(name), _) if Some(name.as_str()) == itself => false,
                (Holder::Table(_), Placing::Table) => inside || over,
                (Holder::Table(_), Placing::Schema) => inside,
                (Holder::Schema(_), Placing::Table) => over,
                (Holder::Schema(_), Placing::Schema) => inside && over,
                (Holder::Folder(_), _) => over,
                (Holder::Private(_), _) => inside || over,
            };
            if conflict {
                let relation = if inside && over {
                    "is the location of"
                } else if inside {
                    "lies inside the location of"
                } else {
                    "holds the location of"
                };
                return Err(format!(
                    "Location '{location}' {relation} {} ('{}'): locations of tables and \
                     schemas may not overlap",
                    claim.holder.describe(),
                    claim.location
                ));
            }
        }
        Ok(())
    }

    /// What dropping the table at `location` may delete, once the table's own record is
    /// gone: nothing when the location is shared with or inside another table or holds a
    /// reserved place, else everything but the tables and schemas placed inside it.
    #[cfg(test)]
    pub(crate) fn owned(&self, location: &str) -> Owned {
        self.owned_by(location, None)
    }

    /// What the table `itself` (`catalog.schema.name`, still recorded) owns at `location`,
    /// as [`Claims::owned`] judges it.
    pub(crate) fn owned_by(&self, location: &str, itself: Option<&str>) -> Owned {
        let Some(dropped) = Key::of(location) else {
            return Owned::Nothing(format!("'{location}' is not a URL"));
        };
        let mut keep = Vec::new();
        for claim in &self.claims {
            let inside = dropped.within(&claim.key);
            let over = claim.key.within(&dropped);
            match &claim.holder {
                Holder::Table(name) if Some(name.as_str()) == itself => {}
                Holder::Table(_) if inside => {
                    return Owned::Nothing(format!(
                        "its location lies inside or is the location of {}",
                        claim.holder.describe()
                    ))
                }
                Holder::Folder(_) if over => {
                    return Owned::Nothing(format!(
                        "its location holds {}",
                        claim.holder.describe()
                    ))
                }
                Holder::Private(_) if over || inside => {
                    return Owned::Nothing(format!(
                        "its location overlaps {}",
                        claim.holder.describe()
                    ))
                }
                Holder::Table(_) | Holder::Schema(_) if over => keep.push(claim.location.clone()),
                _ => {}
            }
        }
        Owned::AllBut(keep)
    }
}

/// The real folder of a local `location` (`file://`), whose listing follows links: each
/// file found must then be checked with [`really_inside`].
pub(crate) fn local_root(location: &str) -> Option<std::path::PathBuf> {
    url::Url::parse(location)
        .ok()
        .filter(|url| url.scheme() == "file")
        .and_then(|url| url.to_file_path().ok())
        .and_then(|path| std::fs::canonicalize(path).ok())
}

/// Whether the local file at store path `path` is no link and really lies inside `root`.
pub(crate) fn really_inside(root: &std::path::Path, path: &object_store::path::Path) -> bool {
    let relative: &str = path.as_ref();
    let file = std::path::Path::new("/").join(relative);
    let real = std::fs::canonicalize(&file).ok();
    let linked = std::fs::symlink_metadata(&file).map_or(true, |m| m.is_symlink());
    !linked && real.is_some_and(|real| real.starts_with(root))
}

/// Deletes the files a dropped table owns under `location` (see [`Claims::owned`]), after
/// checking the location again: never through a symbolic link, never a file that a link
/// inside the folder leads to. Answers why nothing was deleted, when nothing was.
pub(crate) async fn delete_owned(
    stores: &StoreRegistry,
    policy: &LocationPolicy,
    metastore: &Metastore,
    location: &str,
) -> Result<(), String> {
    delete_owned_files(stores, policy, metastore, location, None, |_| true)
        .await
        .map(|_| ())
}

/// Deletes, as [`delete_owned`] does, the files the table at `location` owns that `doomed`
/// picks (by their object store entry); `itself` names the table when it is still
/// recorded. Answers how many went.
pub(crate) async fn delete_owned_files(
    stores: &StoreRegistry,
    policy: &LocationPolicy,
    metastore: &Metastore,
    location: &str,
    itself: Option<&str>,
    doomed: impl Fn(&object_store::ObjectMeta) -> bool,
) -> Result<usize, String> {
    policy.check(location)?;
    let claims = Claims::gather(metastore, policy).await?;
    let keep = match claims.owned_by(location, itself) {
        Owned::Nothing(why) => return Err(format!("files at '{location}' kept: {why}")),
        Owned::AllBut(keep) => keep,
    };
    let (store, prefix) = stores.resolve(location).map_err(|e| e.to_string())?;
    let keep: Vec<_> = keep
        .iter()
        .filter_map(|location| stores.resolve(location).ok().map(|(_, path)| path))
        .collect();
    let local_root = local_root(location);
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut deleted = 0;
    for meta in listed {
        let path = &meta.location;
        if keep.iter().any(|kept| path.prefix_matches(kept)) || !doomed(&meta) {
            continue;
        }
        if local_root
            .as_ref()
            .is_some_and(|root| !really_inside(root, path))
        {
            continue;
        }
        match store.delete(path).await {
            Ok(()) => deleted += 1,
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(entries: &[(&str, Holder)]) -> Claims {
        let mut claims = Claims::default();
        for (location, holder) in entries {
            claims.add(location, holder.clone());
        }
        claims
    }

    fn lakehouse() -> Claims {
        let mut claims = claims(&[
            ("file:///wh/iceberg/s", Holder::Schema("iceberg.s".into())),
            (
                "file:///wh/iceberg/s/t",
                Holder::Table("iceberg.s.t".into()),
            ),
            ("s3://lake/wh/delta/d/t", Holder::Table("delta.d.t".into())),
            ("file:///wh/delta/d", Holder::Schema("delta.d".into())),
        ]);
        let policy = LocationPolicy::new(["file:///wh"])
            .unwrap()
            .with_warehouse("file:///wh", &["iceberg", "delta"]);
        for reserved in policy.reserved() {
            let holder = if reserved.exclusive {
                Holder::Private(reserved.what.clone())
            } else {
                Holder::Folder(reserved.what.clone())
            };
            claims.add(&reserved.location, holder);
        }
        claims
    }

    #[test]
    fn tables_may_not_overlap_tables_schemas_or_reserved_places() {
        let claims = lakehouse();
        for ok in [
            "file:///wh/iceberg/s/u",
            "file:///wh/iceberg/s/t2",
            "file:///wh/delta/d/x",
            "file:///wh/elsewhere/t",
            "s3://lake/wh/delta/d/t2",
            "s3://lake/wh/delta/e",
        ] {
            assert!(claims.check(ok, Placing::Table, None).is_ok(), "{ok}");
        }
        for bad in [
            "file:///wh",
            "file:///wh/",
            "file:///wh/iceberg",
            "file:///wh/delta",
            "file:///wh/iceberg/s",
            "file:///wh/iceberg/s/t",
            "file:///wh/iceberg/s/t/",
            "file:///wh/iceberg/s/t/data",
            "file:///wh/iceberg/s/t/metadata/x",
            "file:///wh/metastore.db",
            "file:///wh/tls",
            "file:///wh/tls/x",
            "s3://lake/wh/delta/d/t/sub",
            "s3://lake/wh/delta/d",
            "s3a://lake/wh/delta/d/t",
            "file:///wh/iceberg/%73/t",
        ] {
            assert!(claims.check(bad, Placing::Table, None).is_err(), "{bad}");
        }
        // A table that moves is not in its own way.
        assert!(claims
            .check(
                "file:///wh/iceberg/s/t/v2",
                Placing::Table,
                Some("iceberg.s.t")
            )
            .is_ok());
        let message = claims
            .check("file:///wh/iceberg/s/t/x", Placing::Table, None)
            .unwrap_err();
        assert!(message.contains("iceberg.s.t"), "{message}");
    }

    #[test]
    fn schemas_may_not_sit_on_schemas_tables_or_reserved_places() {
        let claims = lakehouse();
        for ok in [
            "file:///wh/delta/e",
            "file:///wh/other",
            "file:///wh/iceberg/s/sub",
        ] {
            assert!(claims.check(ok, Placing::Schema, None).is_ok(), "{ok}");
        }
        for bad in [
            "file:///wh",
            "file:///wh/iceberg",
            "file:///wh/iceberg/s",
            "file:///wh/iceberg/s/t",
            "file:///wh/iceberg/s/t/x",
            "file:///wh/tls",
        ] {
            assert!(claims.check(bad, Placing::Schema, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_dropped_table_owns_only_its_own_files() {
        let claims = lakehouse();
        assert_eq!(
            claims.owned("file:///wh/iceberg/s/u"),
            Owned::AllBut(Vec::new())
        );
        // A table recorded over another one (before overlaps were refused) keeps the
        // other's files.
        assert_eq!(
            claims.owned("file:///wh/iceberg/s"),
            Owned::AllBut(vec![
                "file:///wh/iceberg/s".into(),
                "file:///wh/iceberg/s/t".into()
            ])
        );
        for nothing in [
            "file:///wh",
            "file:///wh/iceberg",
            "file:///wh/iceberg/s/t",
            "file:///wh/iceberg/s/t/data",
            "file:///wh/tls/x",
        ] {
            assert!(
                matches!(claims.owned(nothing), Owned::Nothing(_)),
                "{nothing}"
            );
        }
    }

    #[test]
    fn iceberg_tables_lie_above_their_metadata_folder() {
        assert_eq!(
            iceberg_table_location("s3://b/wh/iceberg/s/t/metadata/00001-x.metadata.json"),
            "s3://b/wh/iceberg/s/t"
        );
        assert_eq!(
            iceberg_table_location("file:///x/odd/v1.metadata.json"),
            "file:///x/odd"
        );
    }
}
