//! Helpers for pipeline tests: the `car_data` pieces from the testkit, and augur subprocesses.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use augur_testkit::cars::*;

/// A running augur subprocess (any subcommand), stopped on drop.
pub struct Proc(pub Child, pub String);

impl Proc {
    /// Starts `augur <args>` with stderr to a log file.
    pub fn start(what: &str, args: &[&str]) -> Proc {
        Proc::start_logging(what, args, "info")
    }

    /// As [`Proc::start`], logging at `level` (`AUGUR_LOG`).
    pub fn start_logging(what: &str, args: &[&str], level: &str) -> Proc {
        let log = super::scratch_dir(what).join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(args)
            .env("AUGUR_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Proc(child, log.display().to_string())
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM and wait.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        super::wait_timeout(&mut self.0, Duration::from_secs(30)).expect("exits after SIGTERM")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
