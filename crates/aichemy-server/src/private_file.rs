//! Secrets on disk (password hashes, the TLS key): written readable by their owner only,
//! through a temporary file that is synced and renamed, so a crash leaves the old file or
//! the new one, never a half-written one.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes`, owner-only (0600 on Unix), atomically.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    file.write_all(bytes).and_then(|()| file.sync_all())?;
    std::fs::rename(&temp, path)
}
