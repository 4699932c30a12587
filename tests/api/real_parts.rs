//! The real parts billing tests talk to: localstripe (a stateful Stripe emulator that sends
//! signed webhooks) and aiosmtpd (an SMTP server writing a Maildir). Started once per test
//! run from a Python venv (`target/test-venv`, created on first use from PyPI), or taken from
//! `TEST_LOCALSTRIPE_URL` / `TEST_SMTP_PORT` + `TEST_MAILDIR` when CI started them. The same
//! venv (or CI's, `TEST_PYTHON`) has Stripe's Python package, whose types `stripe_shapes` reads.
//! Both stop when the test binary exits (their stdin closes).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct RealParts {
    pub stripe_url: String,
    pub smtp_port: u16,
    pub maildir: PathBuf,
}

static PARTS: OnceLock<RealParts> = OnceLock::new();
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(make_venv).clone()
}

/// Whether the venv has the `stripe`, Pillow and `sepaxml` packages (a venv made before they
/// were added lacks them).
fn has_stripe(root: &Path) -> bool {
    std::fs::read_dir(root.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|python| {
            let site = python.path().join("site-packages");
            site.join("stripe").is_dir()
                && site.join("PIL").is_dir()
                && site.join("sepaxml").is_dir()
        })
}

fn make_venv() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv");
    let python = root.join("bin/python");
    if !root.join("bin/localstripe").exists() || !has_stripe(&root) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&root)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
            && Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "localstripe==1.15.10",
                    "aiosmtpd==1.4.6",
                    "stripe==16.*",
                    "Pillow==11.*",
                    "sepaxml==2.7.*",
                    "lxml==6.*",
                    "python-dateutil==2.*",
                    "pandas==2.*",
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
        assert!(
            ok,
            "could not install localstripe, aiosmtpd, stripe and Pillow into {root:?}"
        );
    }
    root
}

/// A Python with the `stripe` and Pillow packages: CI's venv (`TEST_PYTHON`), or the tests' own.
pub fn python() -> PathBuf {
    match std::env::var_os("TEST_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => venv().join("bin/python"),
    }
}

/// Runs `command` in the background until this process exits.
fn keep(command: &str) {
    let child = Command::new("sh")
        .arg("-c")
        // `cat` returns when our end of stdin closes, i.e. when the test binary exits.
        .arg(format!("{command} & pid=$!; cat >/dev/null; kill $pid"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    CHILDREN.lock().expect("children").push(child);
}

fn wait_for_port(port: u16) {
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn real_parts() -> &'static RealParts {
    PARTS.get_or_init(|| {
        if let (Ok(url), Ok(port), Ok(dir)) = (
            std::env::var("TEST_LOCALSTRIPE_URL"),
            std::env::var("TEST_SMTP_PORT"),
            std::env::var("TEST_MAILDIR"),
        ) {
            return RealParts {
                stripe_url: url,
                smtp_port: port.parse().expect("TEST_SMTP_PORT"),
                maildir: PathBuf::from(dir),
            };
        }
        let venv = venv();
        let (stripe_port, smtp_port) = (free_port(), free_port());
        let maildir =
            std::env::temp_dir().join(format!("kopilka-mail-{}", uuid::Uuid::new_v4().simple()));
        keep(&format!(
            "{}/bin/localstripe --port {stripe_port} --from-scratch",
            venv.display()
        ));
        keep(&format!(
            "{}/bin/python -m aiosmtpd -n -l 127.0.0.1:{smtp_port} -c aiosmtpd.handlers.Mailbox {}",
            venv.display(),
            maildir.display()
        ));
        wait_for_port(stripe_port);
        wait_for_port(smtp_port);
        RealParts {
            stripe_url: format!("http://127.0.0.1:{stripe_port}"),
            smtp_port,
            maildir,
        }
    })
}

/// The emails the SMTP server received for `to`: (subject, whole message).
pub fn mails_to(to: &str) -> Vec<(String, String)> {
    let dir = &real_parts().maildir;
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let header_end = text
                .find("\r\n\r\n")
                .or_else(|| text.find("\n\n"))
                .unwrap_or(text.len());
            let headers = &text[..header_end];
            let to_line = headers
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to));
            if to_line {
                let subject = headers
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .unwrap_or("")
                    .to_owned();
                found.push((subject, text.clone()));
            }
        }
    }
    found.sort();
    found
}
