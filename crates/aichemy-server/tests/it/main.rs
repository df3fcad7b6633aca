//! Integration tests of the server: the SQL behaviour files through the Trino protocol.
//! One test binary for the crate, as for the engine (crates/aichemy-engine/tests/it).

mod slt_protocol;
