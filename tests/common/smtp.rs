//! A real SMTP server on loopback for one test: Python's `aiosmtpd` running
//! `tests/fixtures/smtp_sink.py`, on a port of its own, writing each message it accepts to a
//! temporary directory the test reads. Killed when dropped.
//!
//! The interpreter is `NEURONX_TEST_SMTP_PYTHON` (`scripts/test.sh` installs `aiosmtpd` into a
//! virtualenv and points it there), else `python3`.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 550 to every recipient.
    Refuse,
    /// 451 to the first `n` messages, then accepts.
    FailFirst(u32),
    /// 550 5.1.1 to this recipient only (a hard bounce); accepts the others.
    RefuseRcpt(&'static str),
}

impl SmtpSink {
    pub fn start(mode: Mode) -> SmtpSink {
        let python =
            std::env::var("NEURONX_TEST_SMTP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_sink.py");
        let mut cmd = Command::new(&python);
        cmd.arg(script).arg(dir.path());
        match mode {
            Mode::Accept => {}
            Mode::Refuse => {
                cmd.arg("--refuse");
            }
            Mode::FailFirst(n) => {
                cmd.arg("--fail-first").arg(n.to_string());
            }
            Mode::RefuseRcpt(address) => {
                cmd.arg("--refuse-rcpt").arg(address);
            }
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} for the SMTP test server: {e}"));
        let mut line = String::new();
        // Blocks until the server listens, or ends (its stderr then says why).
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
        else {
            let mut err = String::new();
            let _ = child.kill();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!(
                "the SMTP test server did not start ({python} {script}): {err}\n\
                 It needs Python's aiosmtpd: `python3 -m pip install aiosmtpd`, or run \
                 scripts/test.sh, which installs it into a virtualenv and sets \
                 NEURONX_TEST_SMTP_PYTHON"
            );
        };
        SmtpSink { child, port, dir }
    }

    /// Every message received so far, oldest first, as text (headers and body).
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
