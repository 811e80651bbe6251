//! The demo host (`cargo xtask demo`): simulated Xen guests in network
//! namespaces, real attacks from inside them, vifguard stopping them. Prints
//! a table (or `--json`), then `vifguard status`; exits 1 if any row is
//! not as expected. Needs root. Everything it creates is removed at the
//! end, also on failure and on Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use testbed::demo::{DemoHost, Row, find_vifguard};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let json = std::env::args().any(|a| a == "--json");
    // Ctrl-C: finish the current step, then clean up through Drop.
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let color = !json && std::io::stdout().is_terminal();
    let vifguard = match find_vifguard() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vifguard-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let host = match DemoHost::build(&vifguard, &|step| eprintln!("  setting up: {step}")) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("vifguard-demo: setting up the demo host failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if INTERRUPTED.load(Ordering::SeqCst) {
        eprintln!("vifguard-demo: interrupted, cleaning up");
        return ExitCode::FAILURE;
    }
    let rows = match host.rows() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vifguard-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = host
        .status()
        .unwrap_or_else(|e| format!("(vifguard status failed: {e})\n"));
    if json {
        println!("{}", to_json(&rows));
    } else {
        print_table(&rows, color);
        println!("\n$ vifguard status\n{status}");
    }
    drop(host);
    if rows.iter().all(Row::ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_table(rows: &[Row], color: bool) {
    let paint = |ok: bool, s: &str| {
        if !color {
            s.to_string()
        } else if ok {
            format!("\x1b[32m{s}\x1b[0m")
        } else {
            format!("\x1b[31m{s}\x1b[0m")
        }
    };
    println!(
        "\n{:<58} {:<10} {:<10} {:<16} result",
        "traffic", "expected", "observed", "counted as"
    );
    for r in rows {
        let word = |reached: bool| if reached { "reaches" } else { "blocked" };
        let counted = if r.counted.contains(&r.expected_reason) {
            r.expected_reason.name().to_string()
        } else {
            r.counted
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        println!(
            "{:<58} {:<10} {:<10} {:<16} {}",
            format!("{}{}", if r.attack { "attack: " } else { "" }, r.name),
            word(r.expected_reach),
            word(r.observed_reach),
            counted,
            paint(r.ok(), if r.ok() { "ok" } else { "WRONG" })
        );
    }
    let bad = rows.iter().filter(|r| !r.ok()).count();
    println!(
        "\n{} rows, {} as expected, {} wrong",
        rows.len(),
        rows.len() - bad,
        bad
    );
}

fn to_json(rows: &[Row]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"traffic\":{:?},\"attack\":{},\"expected\":{:?},\"observed\":{:?},\"expected_reason\":{:?},\"counted\":[{}],\"ok\":{}}}",
                r.name,
                r.attack,
                if r.expected_reach { "reaches" } else { "blocked" },
                if r.observed_reach { "reaches" } else { "blocked" },
                r.expected_reason.name(),
                r.counted
                    .iter()
                    .map(|c| format!("{:?}", c.name()))
                    .collect::<Vec<_>>()
                    .join(","),
                r.ok()
            )
        })
        .collect();
    format!("{{\"rows\":[{}]}}", items.join(","))
}
