//! The catalogs a session sees: the lakehouse's registry of catalogs and the metadata
//! tables (`information_schema`, `system`) built from it.

pub(crate) mod lakehouse;
pub(crate) mod metadata;
