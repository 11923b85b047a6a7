//! The real `logboard` binary: a command with a clean environment, and a server on a random port
//! whose address (and generated password) is read from what it prints.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BINARY: &str = env!("CARGO_BIN_EXE_logboard");

/// A `logboard` command with none of the caller's `LOGBOARD*` or `AWS_*` variables, and `env`.
pub fn logboard(args: &[&str], env: &[(&str, &str)]) -> Command {
    with_env(Command::new(BINARY), args, env)
}

/// `logboard` started by a shell under `ulimit -n limit`, as an operator's shell or unit would.
pub fn logboard_with_file_limit(limit: u32, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\"")).arg(BINARY);
    with_env(shell, args, env)
}

fn with_env(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Command {
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LOGBOARD") || key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
}

/// A running `logboard serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// The admin password it generated and printed, if it did.
    pub generated_password: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Sends SIGTERM: a graceful stop.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }
}

/// `logboard serve` with the shipped config on 127.0.0.1 and a free port, its data in
/// `data_dir`, `env` on top; under `ulimit -n` when `open_file_limit` is given.
pub fn start_server(data_dir: &Path, env: &[(&str, &str)], open_file_limit: Option<u32>) -> Server {
    start_server_from(&shipped_config(), data_dir, env, open_file_limit)
}

/// [`start_server`] with `extra` appended to the shipped config (in a file in `data_dir`): for
/// what the environment cannot say, such as alert rules and channels.
pub fn start_server_with_config(data_dir: &Path, extra: &str, env: &[(&str, &str)]) -> Server {
    let shipped = std::fs::read_to_string(shipped_config()).expect("the shipped config");
    let config = data_dir.join("logboard.toml");
    std::fs::write(&config, format!("{shipped}\n{extra}")).expect("write the config");
    start_server_from(&config, data_dir, env, None)
}

fn shipped_config() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")
}

fn start_server_from(config: &Path, data_dir: &Path, env: &[(&str, &str)], open_file_limit: Option<u32>) -> Server {
    let data = data_dir.display().to_string();
    let mut all = vec![("LOGBOARD__STORAGE__DATA_DIR", data.as_str()), ("LOGBOARD__SERVER__LISTEN", "127.0.0.1:0")];
    all.extend_from_slice(env);
    let config = config.display().to_string();
    let args = ["serve", "--config", config.as_str()];
    let mut command = match open_file_limit {
        Some(limit) => logboard_with_file_limit(limit, &args, &all),
        None => logboard(&args, &all),
    };
    let child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start logboard");
    // Owned by the Server from here: killed and reaped whatever happens below.
    let mut server = Server { child, base: String::new(), generated_password: None };
    let stdout = server.child.stdout.take().expect("stdout");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    // Read on a thread of its own, and keep draining, so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    while server.base.is_empty() {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("logboard printed its address");
        if let Some(password) = line.split("with password: ").nth(1) {
            server.generated_password = Some(password.trim().to_string());
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            server.base = rest.split_whitespace().next().expect("url").trim_end_matches('/').to_string();
        }
    }
    server
}
