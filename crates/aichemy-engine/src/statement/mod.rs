//! Statements that are not planned by DataFusion, one file per family: catalog
//! definitions, DDL, SHOW/DESCRIBE/USE, prepared statements and session properties.

pub mod catalogs;
pub(crate) mod ddl;
pub mod session_state;
pub(crate) mod show;
