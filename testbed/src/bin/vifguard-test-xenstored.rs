//! `vifguard-test-xenstored [--log] [--domain-socket DOMID=PATH]... SOCKET`
//!
//! An in-memory xenstore daemon for tests (see `testbed::xenstored`):
//! serves the xenstore wire protocol on the unix socket SOCKET as dom0, and
//! on each `--domain-socket` path as that (unprivileged) domain. Point the
//! real tools at it with `XENSTORED_PATH=SOCKET xenstore-write ...`.
//! Prints `ready` on standard output once every socket listens; runs until
//! killed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;

use testbed::xenstored::{Daemon, bind};

const USAGE: &str = "usage: vifguard-test-xenstored [--log] [--domain-socket DOMID=PATH]... SOCKET";

fn main() -> ExitCode {
    let mut log = false;
    let mut socket: Option<PathBuf> = None;
    let mut domains: Vec<(u32, PathBuf)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--log" => log = true,
            "--domain-socket" => {
                let Some(spec) = args.next() else {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                };
                let parsed = spec
                    .split_once('=')
                    .and_then(|(d, p)| Some((d.parse::<u32>().ok()?, PathBuf::from(p))));
                match parsed {
                    Some((d, p)) if d != 0 => domains.push((d, p)),
                    _ => {
                        eprintln!("--domain-socket wants DOMID=PATH with DOMID > 0, got {spec:?}");
                        return ExitCode::from(2);
                    }
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if socket.is_none() && !a.starts_with('-') => socket = Some(PathBuf::from(a)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(socket) = socket else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let daemon = Daemon::new(log);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (domid, path) in std::iter::once((0, socket)).chain(domains) {
        let listener = match bind(&path) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "vifguard-test-xenstored: cannot listen on {}: {e}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        };
        let d = daemon.clone();
        let s = Arc::clone(&stop);
        threads.push(thread::spawn(move || d.serve(listener, domid, s)));
    }
    println!("ready");
    for t in threads {
        let _ = t.join();
    }
    ExitCode::SUCCESS
}
