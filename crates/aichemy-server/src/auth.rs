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
//!
//! Nothing tells a user who exists: a name with no hash is checked against a dummy hash of
//! the same kind and cost, so a wrong password takes as long either way, and
//! [`FailedLogins`] slows down repeated failures per user name and per client address,
//! known names or not.

use std::collections::HashMap;
use std::net::IpAddr;
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

/// What a check against a hash costs: its kind and work factor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum HashCost {
    Bcrypt { cost: u32 },
    Pbkdf2 { iterations: u32, length: usize },
}

impl Hash {
    fn cost(&self) -> HashCost {
        match self {
            Hash::Bcrypt(text) => HashCost::Bcrypt {
                cost: text.get(4..6).and_then(|c| c.parse().ok()).unwrap_or(0),
            },
            Hash::Pbkdf2 {
                iterations, hash, ..
            } => HashCost::Pbkdf2 {
                iterations: *iterations,
                length: hash.len(),
            },
        }
    }

    /// A hash of a random password costing what `cost` does, to check passwords of users
    /// that do not exist against: no password matches it.
    fn dummy(cost: HashCost) -> Hash {
        let password = uuid::Uuid::new_v4().simple().to_string();
        match cost {
            HashCost::Bcrypt { cost } => bcrypt::hash_with_result(&password, cost)
                .map(|hash| Hash::Bcrypt(hash.format_for_version(bcrypt::Version::TwoY)))
                .unwrap_or_else(|_| Hash::dummy(HashCost::Bcrypt { cost: BCRYPT_COST })),
            HashCost::Pbkdf2 { iterations, length } => Hash::Pbkdf2 {
                iterations,
                salt: uuid::Uuid::new_v4().as_bytes().to_vec(),
                hash: std::iter::repeat_with(|| *uuid::Uuid::new_v4().as_bytes())
                    .flatten()
                    .take(length)
                    .collect(),
            },
        }
    }
}

/// What most of `hashes` cost (bcrypt at [`BCRYPT_COST`], what `aichemy user` writes, when
/// there are none): the cost of the dummy hash unknown users are checked against.
fn usual_cost<'a>(hashes: impl IntoIterator<Item = &'a Hash>) -> HashCost {
    let mut counts: HashMap<HashCost, usize> = HashMap::new();
    for hash in hashes {
        *counts.entry(hash.cost()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(cost, count)| (*count, std::cmp::Reverse(format!("{cost:?}"))))
        .map_or(HashCost::Bcrypt { cost: BCRYPT_COST }, |(cost, _)| cost)
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
    /// Checked for names the file does not list, costing what its entries mostly cost.
    dummy: Hash,
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
                dummy: Hash::dummy(usual_cost(entries.values())),
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
        aichemy_task::spawn_blocking("verify password", move || {
            passwords.verify(&user, &password)
        })
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
            state.entries.get(user).cloned().ok_or(state.dummy.clone())
        };
        let hash = match hash {
            Ok(hash) => hash,
            Err(dummy) => {
                // As long as a wrong password of a listed user takes.
                dummy.matches(password);
                return false;
            }
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
                let cost = usual_cost(entries.values());
                if cost != state.dummy.cost() {
                    state.dummy = Hash::dummy(cost);
                }
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
    /// Checked for names the metastore does not have: bcrypt at the cost `aichemy user`
    /// writes.
    dummy: Hash,
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
            dummy: Hash::dummy(HashCost::Bcrypt { cost: BCRYPT_COST }),
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
        let (hash, text) = match self.current(user).await {
            Some((_, verified)) if verified == Some(digest) => return true,
            Some((text, _)) => match Hash::parse(&text) {
                Ok(hash) => (hash, Some(text)),
                Err(message) => {
                    tracing::warn!(user = %user, "the metastore holds an unusable hash: {message}");
                    (self.dummy.clone(), None)
                }
            },
            // As long as a wrong password of an existing user takes.
            None => (self.dummy.clone(), None),
        };
        let password = password.to_string();
        let matched =
            aichemy_task::spawn_blocking("match password", move || hash.matches(&password))
                .await
                .unwrap_or(false);
        let Some(text) = text.filter(|_| matched) else {
            return false;
        };
        let mut known = self.known.lock().expect("not poisoned");
        if let Some(entry) = known.get_mut(user) {
            if entry.hash.as_deref() == Some(text.as_str()) {
                entry.verified = Some(digest);
            }
        }
        true
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

/// The first wait once a user name or address has had its free failures.
const FIRST_FAILURE_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts; one that would have to wait longer is refused
/// without a check (a burst of concurrent guesses ends there).
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(30);
/// Failures are forgotten after this long without one.
const FORGET_FAILURES_AFTER: Duration = Duration::from_secs(15 * 60);
/// Most user names and addresses remembered; past it the stale ones are dropped first.
const FAILURE_RECORDS_MAX: usize = 100_000;

/// Slows down guessing: once a user name, or a client address, has had
/// `failed_logins_before_delay` failed password checks, each further attempt of it waits
/// [`FIRST_FAILURE_DELAY`], doubled with every further failure up to [`MAX_FAILURE_DELAY`].
/// Attempts are spaced out even when they come at once, and one that would wait longer
/// than the longest delay is refused unchecked. Every refusal is the same 401, and names
/// that do not exist count like names that do, so the delays tell nothing about who
/// exists. A good password clears its user's failures (not its address's).
#[derive(Debug)]
pub struct FailedLogins {
    /// Failures before delays start; 0 turns them off.
    free: u32,
    records: Mutex<HashMap<LoginKey, FailureRecord>>,
}

/// Whose failures a record counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LoginKey {
    User(String),
    /// An IPv4 address, or the /64 network of an IPv6 one (what one client holds).
    Address(IpAddr),
}

#[derive(Debug)]
struct FailureRecord {
    failures: u32,
    last_failure: Instant,
    /// The earliest time the next attempt is checked.
    next_attempt: Instant,
}

/// When a password check may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// After this wait (zero for no failures).
    After(Duration),
    /// Not at all: the attempt fails unchecked.
    Refused,
}

impl Default for FailedLogins {
    fn default() -> Self {
        Self::new(5)
    }
}

impl FailedLogins {
    /// Delays after `free` failures; none when `free` is 0.
    pub fn new(free: u32) -> Self {
        Self {
            free,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `password` for `user`, whose request came from `address`, waiting first as
    /// their failures require; a refused attempt is a failed check.
    pub async fn check(
        &self,
        users: &Users,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> bool {
        match self.admit(user, address, Instant::now()) {
            LoginAttempt::Refused => return false,
            LoginAttempt::After(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            LoginAttempt::After(_) => {}
        }
        let good = users.verify(user, password).await;
        self.record(user, address, good, Instant::now());
        good
    }

    /// The wait before `n` failures' next attempt.
    fn delay(&self, failures: u32) -> Duration {
        if self.free == 0 || failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(16);
        (FIRST_FAILURE_DELAY * 2u32.pow(doublings)).min(MAX_FAILURE_DELAY)
    }

    fn keys(user: &str, address: Option<IpAddr>) -> Vec<LoginKey> {
        let mut keys = vec![LoginKey::User(user.to_string())];
        if let Some(address) = address {
            let address = match address.to_canonical() {
                IpAddr::V6(v6) => {
                    let network = u128::from(v6) & !((1u128 << 64) - 1);
                    IpAddr::V6(network.into())
                }
                v4 => v4,
            };
            keys.push(LoginKey::Address(address));
        }
        keys
    }

    /// When an attempt arriving `now` may be checked; the attempt takes its slot, so the
    /// next one of the same name or address comes a delay later.
    pub fn admit(&self, user: &str, address: Option<IpAddr>, now: Instant) -> LoginAttempt {
        if self.free == 0 {
            return LoginAttempt::After(Duration::ZERO);
        }
        let keys = Self::keys(user, address);
        let mut records = self.records.lock().expect("not poisoned");
        let fresh = |record: &FailureRecord| {
            now.saturating_duration_since(record.last_failure) < FORGET_FAILURES_AFTER
        };
        let slot = keys
            .iter()
            .filter_map(|key| records.get(key).filter(|r| fresh(r)))
            .map(|record| record.next_attempt)
            .fold(now, Instant::max);
        if slot > now + MAX_FAILURE_DELAY {
            return LoginAttempt::Refused;
        }
        for key in &keys {
            if let Some(record) = records.get_mut(key).filter(|r| fresh(r)) {
                let delay = self.delay(record.failures);
                if !delay.is_zero() {
                    record.next_attempt = slot + delay;
                }
            }
        }
        LoginAttempt::After(slot - now)
    }

    /// Counts the outcome of a check that ran at `now`.
    pub fn record(&self, user: &str, address: Option<IpAddr>, good: bool, now: Instant) {
        if self.free == 0 {
            return;
        }
        let mut records = self.records.lock().expect("not poisoned");
        if good {
            records.remove(&LoginKey::User(user.to_string()));
            return;
        }
        if records.len() >= FAILURE_RECORDS_MAX {
            records.retain(|_, r| {
                now.saturating_duration_since(r.last_failure) < FORGET_FAILURES_AFTER
            });
            if records.len() >= FAILURE_RECORDS_MAX {
                records.clear();
            }
        }
        for key in Self::keys(user, address) {
            let record = records.entry(key).or_insert(FailureRecord {
                failures: 0,
                last_failure: now,
                next_attempt: now,
            });
            if now.saturating_duration_since(record.last_failure) >= FORGET_FAILURES_AFTER {
                record.failures = 0;
                record.next_attempt = now;
            }
            record.failures = record.failures.saturating_add(1);
            record.last_failure = now;
            record.next_attempt = record.next_attempt.max(now + self.delay(record.failures));
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
    fn unknown_users_cost_a_hash_like_known_ones() {
        let bcrypt10 = bcrypt::hash_with_result("x", 10)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let bcrypt8 = bcrypt::hash_with_result("y", 8)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let (_dir, path) = file(&format!("a:{bcrypt10}\nb:{bcrypt10}\nc:{bcrypt8}\n"));
        let passwords = PasswordFile::open(&path).unwrap();
        let dummy = passwords.state.lock().unwrap().dummy.clone();
        assert_eq!(dummy.cost(), HashCost::Bcrypt { cost: 10 });
        assert!(!passwords.verify("nobody", "x"));
        let pbkdf2 = Hash::dummy(HashCost::Pbkdf2 {
            iterations: 1000,
            length: 32,
        });
        assert_eq!(
            pbkdf2.cost(),
            HashCost::Pbkdf2 {
                iterations: 1000,
                length: 32
            }
        );
        assert_eq!(
            usual_cost(std::iter::empty()),
            HashCost::Bcrypt { cost: BCRYPT_COST }
        );
        // An unknown user's check does the work of a known one's (skipping it would be a
        // thousand times faster): timed in turns, so that the machine's load hits both.
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            for (user, runs) in [("a", &mut known), ("nobody", &mut unknown)] {
                let start = Instant::now();
                assert!(!passwords.verify(user, "wrong"));
                runs.push(start.elapsed());
            }
        }
        known.sort();
        unknown.sort();
        let ratio = unknown[3].as_secs_f64() / known[3].as_secs_f64();
        assert!((0.5..2.0).contains(&ratio), "{known:?} vs {unknown:?}");
    }

    #[test]
    fn failures_slow_down_their_user_and_address_alike() {
        let logins = FailedLogins::new(3);
        let start = Instant::now();
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let no_wait = LoginAttempt::After(Duration::ZERO);
        // Three failures are free; the fourth attempt of the name waits a second, whatever
        // the address, and the address waits too, whatever the name.
        for _ in 0..3 {
            assert_eq!(logins.admit("ghost", Some(one), start), no_wait);
            logins.record("ghost", Some(one), false, start);
        }
        assert_eq!(
            logins.admit("ghost", Some(other), start),
            LoginAttempt::After(Duration::from_secs(1))
        );
        assert_eq!(
            logins.admit("alice", Some(one), start),
            LoginAttempt::After(Duration::from_secs(1))
        );
        assert_eq!(
            logins.admit("ghost", Some(one), start),
            LoginAttempt::After(Duration::from_secs(2)),
            "after the two attempts above took their slots"
        );
        assert_eq!(logins.admit("alice", Some(other), start), no_wait);
        // Each failure doubles the wait, up to the longest delay; attempts that come at
        // once queue up, and those past the longest delay are refused unchecked.
        let logins = FailedLogins::new(3);
        for failure in 0..6u64 {
            logins.record("bob", None, false, at(failure));
        }
        assert_eq!(
            logins.admit("bob", None, at(5)),
            LoginAttempt::After(Duration::from_secs(8))
        );
        let mut refused = false;
        for _ in 0..10 {
            refused |= logins.admit("bob", None, at(5)) == LoginAttempt::Refused;
        }
        assert!(refused);
        // A good password clears the name; failures are forgotten after a quiet while.
        logins.record("bob", None, true, at(40));
        assert_eq!(logins.admit("bob", None, at(40)), no_wait);
        for _ in 0..5 {
            logins.record("carol", None, false, start);
        }
        assert_eq!(
            logins.admit("carol", None, start + FORGET_FAILURES_AFTER),
            no_wait
        );
        // IPv6 clients are counted by their /64 network; 0 turns the delays off.
        let logins = FailedLogins::new(1);
        logins.record("d", Some("2001:db8::1".parse().unwrap()), false, start);
        assert_ne!(
            logins.admit("e", Some("2001:db8::2".parse().unwrap()), start),
            no_wait
        );
        let off = FailedLogins::new(0);
        for _ in 0..100 {
            off.record("f", Some(one), false, start);
        }
        assert_eq!(off.admit("f", Some(one), start), no_wait);
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
