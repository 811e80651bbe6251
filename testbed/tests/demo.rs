//! The demo host as an end-to-end test: one simulated host, each row of the
//! demo reported as its own named test. Needs root and the vifguard binary
//! (built by `cargo test --workspace` with filter-user's tests).

use testbed::demo::{DemoHost, find_vifguard};

fn main() {
    let vifguard = find_vifguard().expect("the vifguard binary");
    let host = DemoHost::build(&vifguard, &|step| eprintln!("demo: {step}"))
        .expect("set up the demo host");
    let rows = host.rows().expect("run the demo rows");
    let status = host.status().expect("vifguard status");
    drop(host);
    let mut failed = 0;
    for r in &rows {
        let name = r
            .name
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        if r.ok() {
            println!("test demo::{name} ... ok");
        } else {
            failed += 1;
            println!(
                "test demo::{name} ... FAILED (expected {} and {}, observed {} with {:?})",
                if r.expected_reach {
                    "reaches"
                } else {
                    "blocked"
                },
                r.expected_reason.name(),
                if r.observed_reach {
                    "reaches"
                } else {
                    "blocked"
                },
                r.counted.iter().map(|c| c.name()).collect::<Vec<_>>()
            );
        }
    }
    if failed > 0 {
        eprintln!("vifguard status at the end:\n{status}");
    }
    println!("\ndemo: {} passed, {failed} failed", rows.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
