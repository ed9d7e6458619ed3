//! A real `mora serve` process for tests that kill or signal it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// A running `mora serve` child process.
pub struct Server {
    child: Child,
    pub address: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts the binary on `data_dir` with the shipped models and the extra
    /// `MORA_*` settings `env`, and waits until it serves scores.
    pub async fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mora"));
        command
            .args(["serve", "--listen", &address])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .arg("--models-dir")
            .arg(&models)
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        // Only the settings given here: a test's own variables are no
        // server configuration.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MORA_")) {
            command.env_remove(key);
        }
        command.envs(env.iter().copied());
        let child = command.spawn().expect("the mora binary starts");
        let mut server = Server {
            child,
            address: format!("http://{address}"),
        };
        server.wait_serving().await;
        server
    }

    async fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "server not SERVING in time");
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited with {status}");
            }
            if let Ok(channel) = Channel::from_shared(self.address.clone())
                .unwrap()
                .connect()
                .await
            {
                let status = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if status.is_ok_and(|s| s.into_inner().status == 1) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new connection to the server.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.address.clone())
            .unwrap()
            .connect()
            .await
            .expect("connects")
    }

    /// Kills the process with SIGKILL.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
    }

    /// Waits up to `limit` for the process to exit.
    pub async fn wait_exit(mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        None
    }
}
