//! `aichemy user add|passwd|remove NAME`: manages Trino's password file. Passwords come
//! from a prompt that does not echo, or from standard input when it is not a terminal —
//! never from the command line, where other users and shell history would see them.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use aichemy_config::Config;
use aichemy_server::auth;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct UserArgs {
    /// The password file (default: server.password_file).
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
}

pub fn run(config: &Config, args: UserArgs) -> ExitCode {
    let Some(path) = args
        .password_file
        .or_else(|| config.server.password_file.clone())
    else {
        eprintln!(
            "no password file: set server.password_file (AICHEMY_SERVER__PASSWORD_FILE) or \
             pass --password-file"
        );
        return ExitCode::from(2);
    };
    let result = match &args.action {
        Action::Add { name } => match auth::has_user(&path, name) {
            Ok(true) => Err(format!(
                "user '{name}' already exists; use `aichemy user passwd {name}`"
            )),
            Ok(false) => read_password(name)
                .and_then(|p| auth::set_password(&path, name, &p).map_err(|e| e.to_string()))
                .map(|()| format!("user '{name}' added to {}", path.display())),
            Err(e) => Err(e.to_string()),
        },
        Action::Passwd { name } => match auth::has_user(&path, name) {
            Ok(false) => Err(format!("user '{name}' does not exist")),
            Ok(true) => read_password(name)
                .and_then(|p| auth::set_password(&path, name, &p).map_err(|e| e.to_string()))
                .map(|()| format!("password of '{name}' changed")),
            Err(e) => Err(e.to_string()),
        },
        Action::Remove { name } => match auth::remove_user(&path, name) {
            Ok(true) => Ok(format!("user '{name}' removed")),
            Ok(false) => Err(format!("user '{name}' does not exist")),
            Err(e) => Err(e.to_string()),
        },
    };
    match result {
        Ok(message) => {
            eprintln!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
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
