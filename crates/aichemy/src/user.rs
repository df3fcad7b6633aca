//! `aichemy user add|passwd|remove|list|import`: manages the users who sign in with a
//! password. They live in the metastore, shared by every server on it; with
//! `--password-file` (or `server.password_file`) in Trino's password file instead.
//! Passwords come from a prompt that does not echo, or from standard input when it is not
//! a terminal — never from the command line, where other users and shell history would
//! see them.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use aichemy_config::Config;
use aichemy_metastore::Metastore;
use aichemy_server::auth;
use clap::{Args, Subcommand};
use tokio::runtime::Runtime;

#[derive(Args)]
pub struct UserArgs {
    /// Keep users in this Trino password file instead of the metastore (default:
    /// server.password_file, when set).
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Adds a user (the password is asked for, or read from standard input).
    Add { name: String },
    /// Changes a user's password.
    Passwd { name: String },
    /// Removes a user.
    Remove { name: String },
    /// Lists the users' names.
    List,
    /// Copies the users of a Trino password file (bcrypt or PBKDF2 hashes, as they are)
    /// into the metastore; all or none.
    Import { file: PathBuf },
}

/// Where the users are kept.
enum Store {
    File(PathBuf),
    Metastore(Metastore),
}

impl Store {
    fn describe(&self) -> String {
        match self {
            Store::File(path) => path.display().to_string(),
            Store::Metastore(metastore) => format!("the metastore at {}", metastore.display_url()),
        }
    }

    fn has(&self, runtime: &Runtime, name: &str) -> Result<bool, String> {
        match self {
            Store::File(path) => auth::has_user(path, name).map_err(|e| e.to_string()),
            Store::Metastore(metastore) => runtime
                .block_on(metastore.user_password_hash(name))
                .map(|hash| hash.is_some())
                .map_err(|e| e.to_string()),
        }
    }

    /// Sets the password of a user known to exist, or of a new one.
    fn set(&self, runtime: &Runtime, name: &str, password: &str, new: bool) -> Result<(), String> {
        match self {
            Store::File(path) => {
                auth::set_password(path, name, password).map_err(|e| e.to_string())
            }
            Store::Metastore(metastore) => {
                auth::check_user_name(name).map_err(|e| e.to_string())?;
                let hash = auth::hash_password(password).map_err(|e| e.to_string())?;
                if new {
                    return runtime
                        .block_on(metastore.add_user(name, &hash))
                        .map_err(|e| e.to_string());
                }
                let found = runtime
                    .block_on(metastore.set_user_password(name, &hash))
                    .map_err(|e| e.to_string())?;
                found
                    .then_some(())
                    .ok_or_else(|| format!("user '{name}' does not exist"))
            }
        }
    }
}

pub fn run(config: &Config, args: UserArgs, runtime: &Runtime) -> ExitCode {
    let store = match args
        .password_file
        .or_else(|| config.server.password_file.clone())
    {
        Some(path) => Store::File(path),
        None => {
            let opened = config
                .metastore_url()
                .map_err(|e| e.to_string())
                .and_then(|url| {
                    runtime
                        .block_on(Metastore::open(&url))
                        .map_err(|e| e.to_string())
                });
            match opened {
                Ok(metastore) => Store::Metastore(metastore),
                Err(message) => {
                    eprintln!("{message}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    match action(&store, &args.action, runtime) {
        Ok(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn action(store: &Store, action: &Action, runtime: &Runtime) -> Result<String, String> {
    match action {
        Action::Add { name } => {
            if store.has(runtime, name)? {
                return Err(format!(
                    "user '{name}' already exists; use `aichemy user passwd {name}`"
                ));
            }
            let password = read_password(name)?;
            store.set(runtime, name, &password, true)?;
            Ok(format!("user '{name}' added to {}", store.describe()))
        }
        Action::Passwd { name } => {
            if !store.has(runtime, name)? {
                return Err(format!("user '{name}' does not exist"));
            }
            let password = read_password(name)?;
            store.set(runtime, name, &password, false)?;
            Ok(format!("password of '{name}' changed"))
        }
        Action::Remove { name } => {
            let removed = match store {
                Store::File(path) => auth::remove_user(path, name).map_err(|e| e.to_string())?,
                Store::Metastore(metastore) => runtime
                    .block_on(metastore.remove_user(name))
                    .map_err(|e| e.to_string())?,
            };
            if removed {
                Ok(format!("user '{name}' removed"))
            } else {
                Err(format!("user '{name}' does not exist"))
            }
        }
        Action::List => {
            let names = match store {
                Store::File(path) => auth::read_entries(path)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect(),
                Store::Metastore(metastore) => runtime
                    .block_on(metastore.list_users())
                    .map_err(|e| e.to_string())?,
            };
            for name in names {
                println!("{name}");
            }
            Ok(String::new())
        }
        Action::Import { file } => {
            let Store::Metastore(metastore) = store else {
                return Err(
                    "import copies a password file into the metastore: run it without \
                     --password-file and server.password_file"
                        .into(),
                );
            };
            let entries = auth::read_entries(file).map_err(|e| e.to_string())?;
            for (name, _) in &entries {
                auth::check_user_name(name).map_err(|e| e.to_string())?;
            }
            runtime
                .block_on(metastore.add_users(&entries))
                .map_err(|e| format!("{e}; nothing was imported"))?;
            Ok(format!(
                "imported {} user{} from {} into {}",
                entries.len(),
                if entries.len() == 1 { "" } else { "s" },
                file.display(),
                store.describe()
            ))
        }
    }
}

fn read_password(name: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let second = rpassword::prompt_password("Repeat it: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if first != second {
            return Err("the passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}
