//! Password authentication. The server's users come from one of two places:
//!
//! - the metastore (`aichemy user add`, `server.password_authentication = true`), which
//!   every server of a lakehouse shares, so a user added through one node signs in on all;
//! - Trino's password file (`server.password_file`), so an existing `password.db` works
//!   as-is: one `user:hash` per line.
//!
//! Hashes are bcrypt (`$2y$`, `$2a$`, `$2b$`, cost at least 8) or PBKDF2-HMAC-SHA256 as
//! `iterations:salt-hex:hash-hex` (at least 1000 iterations), in both places. Empty lines
//! and lines starting with `#` in the file are skipped.
//!
//! Changes take effect without a restart: the file is read again when it changes, a
//! metastore user's hash is looked up again after [`USER_CACHE_TTL`]. Hashes are slow on
//! purpose; a successful check is remembered (as a keyed digest, never the password) until
//! the hash changes, so a client's every request does not pay for it again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aichemy_metastore::Metastore;
use sha2::{Digest, Sha256};

/// Lowest bcrypt cost accepted, as Trino's `BCRYPT_MIN_COST`.
const BCRYPT_MIN_COST: u32 = 8;
/// Lowest PBKDF2 iteration count accepted, as Trino's `PBKDF2_MIN_ITERATIONS`.
const PBKDF2_MIN_ITERATIONS: u32 = 1000;
/// bcrypt cost of hashes `aichemy user add` writes.
pub const BCRYPT_COST: u32 = 10;
/// bcrypt looks at the first 72 bytes only; longer passwords are refused, not cut.
pub const MAX_PASSWORD_BYTES: usize = 72;
/// How long a metastore user's hash (or absence) is trusted before it is looked up again:
/// the longest a password change or removal on another server takes to reach this one.
pub const USER_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most user names a server remembers; past it the memory starts afresh.
const USER_CACHE_MAX: usize = 10_000;

/// Why a password file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    #[error("cannot read password file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write password file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("password file {path}, line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Refused(String),
}

/// A stored password hash.
#[derive(Clone)]
enum Hash {
    Bcrypt(String),
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl Hash {
    fn parse(text: &str) -> Result<Hash, String> {
        if ["$2y$", "$2a$", "$2b$"].iter().any(|p| text.starts_with(p)) {
            let cost: u32 = text
                .get(4..6)
                .and_then(|c| c.parse().ok())
                .filter(|_| text.len() == 60)
                .ok_or("not a bcrypt hash")?;
            if cost < BCRYPT_MIN_COST {
                return Err(format!(
                    "Minimum cost of BCrypt password must be {BCRYPT_MIN_COST}"
                ));
            }
            return Ok(Hash::Bcrypt(text.to_string()));
        }
        let parts: Vec<&str> = text.split(':').collect();
        let [iterations, salt, hash] = parts[..] else {
            return Err("hash is neither bcrypt nor PBKDF2 (iterations:salt:hash)".into());
        };
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| "PBKDF2 iterations must be a number")?;
        if iterations < PBKDF2_MIN_ITERATIONS {
            return Err(format!(
                "Minimum number of PBKDF2 iterations must be {PBKDF2_MIN_ITERATIONS}"
            ));
        }
        let salt = hex::decode(salt).map_err(|_| "PBKDF2 salt must be hexadecimal")?;
        let hash = hex::decode(hash).map_err(|_| "PBKDF2 hash must be hexadecimal")?;
        if hash.is_empty() {
            return Err("PBKDF2 hash is empty".into());
        }
        Ok(Hash::Pbkdf2 {
            iterations,
            salt,
            hash,
        })
    }

    fn matches(&self, password: &str) -> bool {
        match self {
            Hash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => {
                let mut derived = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, *iterations, &mut derived);
                constant_time_eq(&derived, hash)
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The lines of a password file, as users and hashes.
fn parse_entries(path: &Path, text: &str) -> Result<HashMap<String, Hash>, PasswordFileError> {
    Ok(parse_lines(path, text)?
        .into_iter()
        .map(|(user, _, hash)| (user, hash))
        .collect())
}

/// The entries of the password file at `path` as users and hash texts, in file order, each
/// hash checked (for `aichemy user import`).
pub fn read_entries(path: &Path) -> Result<Vec<(String, String)>, PasswordFileError> {
    Ok(parse_lines(path, &read(path)?)?
        .into_iter()
        .map(|(user, text, _)| (user, text))
        .collect())
}

/// The lines of a password file as users, hash texts and hashes; a user listed twice is an
/// error.
fn parse_lines(path: &Path, text: &str) -> Result<Vec<(String, String, Hash)>, PasswordFileError> {
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let invalid = |message: String| PasswordFileError::Invalid {
            path: path.to_path_buf(),
            line: index + 1,
            message,
        };
        let Some((user, hash)) = line.split_once(':') else {
            return Err(invalid("Expected two parts for user and password".into()));
        };
        if user.is_empty() {
            return Err(invalid("user name is empty".into()));
        }
        let parsed = Hash::parse(hash).map_err(invalid)?;
        if !seen.insert(user.to_string()) {
            return Err(invalid(format!("user '{user}' is listed twice")));
        }
        entries.push((user.to_string(), hash.to_string(), parsed));
    }
    Ok(entries)
}

fn read(path: &Path) -> Result<String, PasswordFileError> {
    std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The file's identity as last seen: modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// A password file the server checks credentials against.
pub struct PasswordFile {
    path: PathBuf,
    /// Keys the remembered digests, so they are useless outside this process.
    key: [u8; 16],
    state: Mutex<Loaded>,
}

struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    entries: HashMap<String, Hash>,
    /// Users whose password was checked, with a keyed digest of it.
    verified: HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordFile({})", self.path.display())
    }
}

impl PasswordFile {
    /// Loads `path`; a missing or malformed file is an error at startup.
    pub fn open(path: &Path) -> Result<PasswordFile, PasswordFileError> {
        let entries = parse_entries(path, &read(path)?)?;
        Ok(PasswordFile {
            path: path.to_path_buf(),
            key: process_key(),
            state: Mutex::new(Loaded {
                stamp: stamp(path),
                entries,
                verified: HashMap::new(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`PasswordFile::verify`] on a blocking thread, so that the hash's cost does not
    /// stall the server's other requests.
    pub async fn verify_off_thread(self: &Arc<Self>, user: &str, password: &str) -> bool {
        let (passwords, user, password) = (self.clone(), user.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || passwords.verify(&user, &password))
            .await
            .unwrap_or(false)
    }

    /// Whether `password` is `user`'s. Slow (the hash's cost) unless already verified.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let digest = digest(&self.key, user, password);
        let hash = {
            let mut state = self.state.lock().expect("not poisoned");
            self.reload(&mut state);
            if state.verified.get(user) == Some(&digest) {
                return true;
            }
            state.entries.get(user).cloned()
        };
        let Some(hash) = hash else {
            return false;
        };
        if !hash.matches(password) {
            return false;
        }
        let mut state = self.state.lock().expect("not poisoned");
        state.verified.insert(user.to_string(), digest);
        true
    }

    /// Reads the file again if it changed since last seen.
    fn reload(&self, state: &mut Loaded) {
        let now = stamp(&self.path);
        if now == state.stamp {
            return;
        }
        // A file being rewritten may be caught half-way; keep the old entries until it
        // parses again.
        match read(&self.path).and_then(|text| parse_entries(&self.path, &text)) {
            Ok(entries) => {
                state.entries = entries;
                state.verified.clear();
                state.stamp = now;
            }
            Err(e) => tracing::warn!("password file not reloaded: {e}"),
        }
    }

    /// Whether the file lists `user` (read again if it changed).
    pub fn has(&self, user: &str) -> bool {
        let mut state = self.state.lock().expect("not poisoned");
        self.reload(&mut state);
        state.entries.contains_key(user)
    }
}

/// A keyed digest of a user's password, what a successful check leaves behind.
fn digest(key: &[u8; 16], user: &str, password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(key);
    hasher.update(user.as_bytes());
    hasher.update([0]);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

/// A random key for [`digest`], so remembered digests are useless outside this process.
fn process_key() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// The users of the metastore, looked up as they sign in.
pub struct MetastoreUsers {
    metastore: Metastore,
    key: [u8; 16],
    known: Mutex<HashMap<String, KnownUser>>,
}

/// What a server last read of one user.
struct KnownUser {
    /// The hash, or `None` for no such user.
    hash: Option<String>,
    read_at: Instant,
    /// The digest of the password last checked good against `hash`.
    verified: Option<[u8; 32]>,
}

impl MetastoreUsers {
    pub fn new(metastore: Metastore) -> Self {
        Self {
            metastore,
            key: process_key(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// `user`'s hash and the digest last verified against it, read again from the
    /// metastore when older than [`USER_CACHE_TTL`]. A metastore that cannot be read
    /// signs nobody in.
    async fn current(&self, user: &str) -> Option<(String, Option<[u8; 32]>)> {
        {
            let known = self.known.lock().expect("not poisoned");
            if let Some(entry) = known.get(user) {
                if entry.read_at.elapsed() < USER_CACHE_TTL {
                    return entry.hash.clone().map(|hash| (hash, entry.verified));
                }
            }
        }
        let hash = match self.metastore.user_password_hash(user).await {
            Ok(hash) => hash,
            Err(e) => {
                tracing::warn!("cannot read users from the metastore: {e}");
                return None;
            }
        };
        let mut known = self.known.lock().expect("not poisoned");
        if known.len() >= USER_CACHE_MAX {
            known.clear();
        }
        let entry = known.entry(user.to_string()).or_insert(KnownUser {
            hash: None,
            read_at: Instant::now(),
            verified: None,
        });
        if entry.hash != hash {
            entry.verified = None;
        }
        entry.hash = hash;
        entry.read_at = Instant::now();
        entry.hash.clone().map(|hash| (hash, entry.verified))
    }

    /// Whether `password` is `user`'s; a new check pays the hash's cost on a blocking
    /// thread.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        let digest = digest(&self.key, user, password);
        let Some((text, verified)) = self.current(user).await else {
            return false;
        };
        if verified == Some(digest) {
            return true;
        }
        let hash = match Hash::parse(&text) {
            Ok(hash) => hash,
            Err(message) => {
                tracing::warn!(user = %user, "the metastore holds an unusable hash: {message}");
                return false;
            }
        };
        let password = password.to_string();
        let good = tokio::task::spawn_blocking(move || hash.matches(&password))
            .await
            .unwrap_or(false);
        if good {
            let mut known = self.known.lock().expect("not poisoned");
            if let Some(entry) = known.get_mut(user) {
                if entry.hash.as_deref() == Some(text.as_str()) {
                    entry.verified = Some(digest);
                }
            }
        }
        good
    }

    /// Whether the metastore has `user` (as of at most [`USER_CACHE_TTL`] ago).
    pub async fn has(&self, user: &str) -> bool {
        self.current(user).await.is_some()
    }
}

/// Where a server checks passwords.
#[derive(Clone)]
pub enum Users {
    /// Trino's password file.
    File(Arc<PasswordFile>),
    /// The metastore's users.
    Metastore(Arc<MetastoreUsers>),
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Users::File(file) => file.fmt(f),
            Users::Metastore(_) => f.write_str("MetastoreUsers"),
        }
    }
}

impl Users {
    /// Whether `password` is `user`'s, without stalling the server's other requests.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        match self {
            Users::File(file) => file.verify_off_thread(user, password).await,
            Users::Metastore(users) => users.verify(user, password).await,
        }
    }

    /// Whether `user` still exists (a bearer token of a removed user is refused).
    pub async fn has(&self, user: &str) -> bool {
        match self {
            Users::File(file) => file.has(user),
            Users::Metastore(users) => users.has(user).await,
        }
    }
}

/// A bcrypt hash of `password` for a new entry, in the notation Trino's password file
/// uses. Empty passwords and those bcrypt would cut are refused.
pub fn hash_password(password: &str) -> Result<String, PasswordFileError> {
    if password.is_empty() {
        return Err(PasswordFileError::Refused("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordFileError::Refused(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes, which bcrypt cannot use"
        )));
    }
    Ok(bcrypt::hash_with_result(password, BCRYPT_COST)
        .map_err(|e| PasswordFileError::Refused(format!("cannot hash the password: {e}")))?
        .format_for_version(bcrypt::Version::TwoY))
}

/// Sets `user`'s password in the file at `path` (created with owner-only permissions when
/// missing), keeping every other line as it was. The file is replaced atomically.
pub fn set_password(path: &Path, user: &str, password: &str) -> Result<(), PasswordFileError> {
    check_user_name(user)?;
    let hash = hash_password(password)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(PasswordFileError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse_entries(path, &text)?;
    let entry = format!("{user}:{hash}");
    let mut replaced = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            if entry_user(line) == Some(user) {
                replaced = true;
                entry.clone()
            } else {
                line.to_string()
            }
        })
        .collect();
    if !replaced {
        lines.push(entry);
    }
    write_atomically(path, &lines)
}

/// Removes `user` from the file; false when the user was not in it.
pub fn remove_user(path: &Path, user: &str) -> Result<bool, PasswordFileError> {
    let text = read(path)?;
    parse_entries(path, &text)?;
    let lines: Vec<String> = text
        .lines()
        .filter(|line| entry_user(line) != Some(user))
        .map(str::to_string)
        .collect();
    if lines.len() == text.lines().count() {
        return Ok(false);
    }
    write_atomically(path, &lines)?;
    Ok(true)
}

/// Whether `user` has an entry in the file at `path`.
pub fn has_user(path: &Path, user: &str) -> Result<bool, PasswordFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_entries(path, &text)?.contains_key(user)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(PasswordFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn entry_user(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    line.split_once(':').map(|(user, _)| user)
}

/// Refuses names Trino's password file could not hold: empty, with `:`, spaces or control
/// characters.
pub fn check_user_name(user: &str) -> Result<(), PasswordFileError> {
    if user.is_empty()
        || user.contains(':')
        || user.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(PasswordFileError::Refused(format!(
            "'{user}' is not a valid user name: it must be non-empty, without ':' or spaces"
        )));
    }
    Ok(())
}

fn write_atomically(path: &Path, lines: &[String]) -> Result<(), PasswordFileError> {
    let mut text = lines.join("\n");
    text.push('\n');
    crate::private_file::write(path, text.as_bytes()).map_err(|source| PasswordFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password.db");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn bcrypt_entries_in_every_prefix_verify() {
        let hash = bcrypt::hash_with_result("secret", 8).unwrap();
        let text = format!(
            "# comment\n\nalice:{}\nbob:{}\ncarol:{}\n",
            hash.format_for_version(bcrypt::Version::TwoY),
            hash.format_for_version(bcrypt::Version::TwoA),
            hash.format_for_version(bcrypt::Version::TwoB),
        );
        let (_dir, path) = file(&text);
        let passwords = PasswordFile::open(&path).unwrap();
        for user in ["alice", "bob", "carol"] {
            assert!(passwords.verify(user, "secret"), "{user}");
            assert!(passwords.verify(user, "secret"), "{user}, remembered");
            assert!(!passwords.verify(user, "Secret"), "{user}");
        }
        assert!(!passwords.verify("dave", "secret"));
    }

    #[test]
    fn pbkdf2_entries_verify() {
        // 1000 iterations of PBKDF2-HMAC-SHA256 over "password" with salt "salt".
        let mut hash = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"password", b"salt", 1000, &mut hash);
        let text = format!(
            "alice:1000:{}:{}\n",
            hex::encode(b"salt"),
            hex::encode(hash)
        );
        let (_dir, path) = file(&text);
        let passwords = PasswordFile::open(&path).unwrap();
        assert!(passwords.verify("alice", "password"));
        assert!(!passwords.verify("alice", "passwort"));
    }

    #[test]
    fn weak_or_malformed_entries_are_refused_at_open() {
        let weak = bcrypt::hash_with_result("x", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        for (text, message) in [
            (
                format!("a:{weak}"),
                "Minimum cost of BCrypt password must be 8",
            ),
            (
                "a:999:00:00".to_string(),
                "Minimum number of PBKDF2 iterations",
            ),
            ("a:plain".to_string(), "neither bcrypt nor PBKDF2"),
            ("justauser".to_string(), "Expected two parts"),
        ] {
            let (_dir, path) = file(&text);
            let error = PasswordFile::open(&path).unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
            assert!(error.contains("line 1"), "{error}");
        }
    }

    #[test]
    fn set_and_remove_keep_other_lines_and_reload() {
        let (_dir, path) = file("# users\n");
        set_password(&path, "alice", "one").unwrap();
        set_password(&path, "bob", "two").unwrap();
        let passwords = PasswordFile::open(&path).unwrap();
        assert!(passwords.verify("alice", "one"));
        set_password(&path, "alice", "three").unwrap();
        assert!(!passwords.verify("alice", "one"), "the change is seen");
        assert!(passwords.verify("alice", "three"));
        assert!(remove_user(&path, "alice").unwrap());
        assert!(!remove_user(&path, "alice").unwrap());
        assert!(!passwords.verify("alice", "three"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# users\nbob:$2y$10$"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(set_password(&path, "a:b", "x").is_err());
        assert!(set_password(&path, "a", "").is_err());
        assert!(set_password(&path, "a", &"x".repeat(73)).is_err());
    }
}
