//! `vifguard`: the command a Xen host runs (see `vifguard --help`).
#![deny(unsafe_code)]

use std::process::ExitCode;

/// In the static musl release build, dlmalloc (the allocator Rust's own
/// standard library uses where there is no libc one): musl's malloc
/// returns freed pages to the kernel at once, so a hotplug made 66
/// mmap/munmap calls; with dlmalloc 11 (filter-user/Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use filter_user::applied::Applier;
use filter_user::config::HostConfig;
use filter_user::datapath::Interface;
use filter_user::datapath::pins::Layout;
use filter_user::lifecycle::{self, LifecycleError};
use filter_user::report::{http, prometheus};
use filter_user::xen::sources::VifId;

use filter_user::cli::{Cli, Command, HotplugAction, SetupAction};

/// Prints one line to stderr in a single write: stderr is unbuffered, so
/// `eprintln!` writes a line in pieces, a syscall each, which concurrent
/// hotplugs logging to the same file can interleave.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

/// Exit code of a usage error.
const USAGE: u8 = 2;

struct Usage(String);

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`vifguard status | head`) instead of
    // panicking on the write.
    filter_user::sys::signal::default_sigpipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Usage(msg)) = e.downcast_ref::<Usage>() {
                say!("vifguard: {msg}");
                return ExitCode::from(USAGE);
            }
            say!("vifguard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::fmt::Debug for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

fn config(cli: &Cli) -> Result<HostConfig> {
    let mut c = HostConfig::load(&cli.config)?;
    if let Some(b) = &cli.bpffs {
        c.bpffs = b.clone();
    }
    Ok(c)
}

fn vif_for(iface: &str, xenbus_path: Option<&str>) -> Result<VifId> {
    match xenbus_path {
        Some(p) => Ok(VifId::from_xenbus_path(p, 0).map_err(|e| usage(format!("{iface}: {e}")))?),
        None => lifecycle::vif_of_ifname(iface).ok_or_else(|| {
            usage(format!(
                "{iface}: not named vif<domid>.<devid>, vif<domid>.<devid>-emu or tap<domid>.<devid>; pass --xenbus-path backend/vif/<domid>/<devid>"
            ))
        }),
    }
}

fn run(cli: Cli) -> Result<()> {
    // Before the configuration is loaded: an invalid one is one of the
    // things it reports.
    if let Command::Check { json } = &cli.command {
        return check(&cli, *json);
    }
    let cfg = config(&cli)?;
    match &cli.command {
        Command::Attach { iface, xenbus_path } => {
            let vif = vif_for(iface, xenbus_path.as_deref())?;
            attach(&cfg, iface, &vif, Interface::Known, Applier::Attach)
        }
        Command::Detach { iface } => detach(&cfg, iface),
        Command::Hotplug { action } => {
            let iface = std::env::var("vif")
                .map_err(|_| usage("hotplug: environment variable `vif` is not set"))?;
            match action {
                HotplugAction::Online | HotplugAction::Add => {
                    let path = std::env::var("XENBUS_PATH").map_err(|_| {
                        usage("hotplug: environment variable `XENBUS_PATH` is not set")
                    })?;
                    let vif = vif_for(&iface, Some(&path))?;
                    // The kernel has just created the interface.
                    attach(&cfg, &iface, &vif, Interface::New, Applier::Hotplug)
                }
                HotplugAction::Offline | HotplugAction::Remove => detach(&cfg, &iface),
            }
        }
        Command::SetupVifRules {
            backend: _,
            iface,
            vm_uuid,
            devid,
            action,
        } => setup_vif_rules(&cfg, iface, vm_uuid, *devid, *action),
        Command::Status { iface, json } => status(&cfg, iface.as_deref(), *json),
        Command::Sync => sync(&cfg),
        Command::Watch => {
            filter_user::watch::Watcher::new(cfg).run(&|line| say!("vifguard watch: {line}"))?;
            Ok(())
        }
        Command::Policy {
            iface,
            xenbus_path,
            json,
        } => {
            let vif = vif_for(iface, xenbus_path.as_deref())?;
            // The error names the vif already.
            let r = lifecycle::resolve(&vif, &cfg).map_err(anyhow::Error::from_boxed)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&r.json())?);
            } else {
                println!("{}", r.describe());
            }
            Ok(())
        }
        Command::Metrics { listen: None } => {
            print!("{}", metrics_text(&cfg)?);
            Ok(())
        }
        Command::Metrics {
            listen: Some(addr), ..
        } => serve_metrics(&cfg, addr),
        Command::Events {
            json,
            count,
            timeout,
        } => events(&cfg, *json, *count, *timeout),
        // Dispatched above, before the configuration is loaded.
        Command::Check { json } => check(&cli, *json),
    }
}

/// `vifguard check`: the lines (or JSON) on stdout, the verdict on stderr;
/// exit 1 when a check failed.
fn check(cli: &Cli, json: bool) -> Result<()> {
    use filter_user::check::{self, Status};
    let report = check::run(&check::Input {
        config: cli.config.clone(),
        bpffs: cli.bpffs.clone(),
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.text());
    }
    let warnings = report.count(Status::Warn);
    match report.status() {
        Status::Fail => Err(anyhow!(
            "check: vifguard cannot work here: {} failed ({})",
            report.count(Status::Fail),
            report.labels(Status::Fail).join(", ")
        )),
        _ => {
            say!("vifguard: check: vifguard can work here ({warnings} warning(s))");
            Ok(())
        }
    }
}

/// Prints drop events as they come, and every 200 ms the changes of the
/// DHCP-learned addresses (`datapath::lease_events`): one line each, JSON
/// with --json.
fn events(cfg: &HostConfig, json: bool, count: Option<u64>, timeout: Option<u64>) -> Result<()> {
    use filter_user::datapath::events::{EventReader, describe};
    use filter_user::datapath::lease_events::{LeaseWatch, learned_entries};
    use filter_user::sys::clock::monotonic_s;
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    let layout = Layout::new(&cfg.bpffs);
    let mut reader = EventReader::open(&layout.maps())?;
    let maps = filter_user::datapath::Maps::open_pinned(&layout.maps())?;
    let mut leases = LeaseWatch::new(&learned_entries(&maps)?, monotonic_s()?);
    // The learned addresses are read every 200 ms whatever the drop
    // events do (a stream of them returns each poll at once).
    let lease_period = Duration::from_millis(200);
    let mut next_lease_read = Instant::now() + lease_period;
    let deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let mut seen = 0u64;
    let mut stdout = std::io::stdout().lock();
    let name_of = |ix: u32| lifecycle::ifname(ix).unwrap_or_else(|| format!("ifindex{ix}"));
    loop {
        if count.is_some_and(|c| seen >= c) || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(());
        }
        let mut lines = Vec::new();
        let wait = next_lease_read.saturating_duration_since(Instant::now());
        for e in reader.poll(wait)? {
            let d = describe(&e);
            let name = name_of(d.ifindex);
            lines.push(if json {
                serde_json::json!({
                    "event": "drop",
                    "interface": name,
                    "ifindex": d.ifindex,
                    "direction": d.direction,
                    "reason": d.reason,
                    "ethertype": format!("{:#06x}", d.ethertype),
                    "src_mac": d.src_mac,
                    "dst_mac": d.dst_mac,
                    "src": d.src,
                    "dst": d.dst,
                    "len": d.len,
                })
                .to_string()
            } else {
                format!(
                    "{name} {} {} ethertype {:#06x} {} -> {} {} -> {} ({} bytes)",
                    d.direction,
                    d.reason,
                    d.ethertype,
                    d.src_mac,
                    d.dst_mac,
                    d.src.as_deref().unwrap_or("-"),
                    d.dst.as_deref().unwrap_or("-"),
                    d.len
                )
            });
        }
        if Instant::now() >= next_lease_read {
            next_lease_read = Instant::now() + lease_period;
            let now = monotonic_s()?;
            for e in leases.update(&learned_entries(&maps)?, now) {
                let name = name_of(e.ifindex);
                // Seconds left for an address in force; 0 for one gone.
                let left = e.expires_s.saturating_sub(now);
                lines.push(if json {
                    serde_json::json!({
                        "event": e.change.name(),
                        "interface": name,
                        "ifindex": e.ifindex,
                        "address": e.addr.to_string(),
                        "expires_in_s": left,
                    })
                    .to_string()
                } else {
                    let lease = if left > 0 {
                        format!("DHCP lease, expires in {left} s")
                    } else {
                        "DHCP lease".to_string()
                    };
                    format!("{name} {} {} ({lease})", e.change.name(), e.addr)
                });
            }
        }
        for line in lines {
            writeln!(stdout, "{line}")?;
            stdout.flush()?;
            seen += 1;
            if count.is_some_and(|c| seen >= c) {
                return Ok(());
            }
        }
    }
}

fn attach(
    cfg: &HostConfig,
    iface: &str,
    vif: &VifId,
    interface: Interface,
    applier: Applier,
) -> Result<()> {
    if lifecycle::ifindex(iface).is_none() {
        return Err(LifecycleError::UnknownInterface(iface.into()).into());
    }
    let mut loaded = lifecycle::ensure_loaded(cfg)?;
    loaded.applier = applier;
    let ix = loaded.attach(iface, vif, cfg, interface)?;
    say!("vifguard: {iface} (ifindex {ix}, {vif}) attached");
    Ok(())
}

fn setup_vif_rules(
    cfg: &HostConfig,
    iface: &str,
    vm_uuid: &str,
    devid: u32,
    action: SetupAction,
) -> Result<()> {
    use filter_user::setup_vif_rules::{Action, Request, run};
    let req = Request {
        iface,
        vm_uuid,
        devid,
        action: match action {
            SetupAction::Filter => Action::Filter,
            SetupAction::Clear => Action::Clear,
        },
    };
    match run(cfg, &req) {
        Ok(done) => {
            say!("vifguard: {done}");
            Ok(())
        }
        Err(e) if e.is_usage() => Err(usage(format!("setup-vif-rules: {e}"))),
        Err(e) => Err(e.into()),
    }
}

fn detach(cfg: &HostConfig, iface: &str) -> Result<()> {
    let layout = Layout::new(&cfg.bpffs);
    if !layout.has_state()? {
        return Ok(());
    }
    let mut loaded = lifecycle::ensure_loaded(cfg)?;
    match lifecycle::ifindex(iface) {
        Some(ix) => {
            loaded.detach(ix)?;
        }
        None => {
            // Gone already: clean every interface that vanished.
            let gone = loaded.clean_vanished()?;
            if !gone.is_empty() {
                say!("vifguard: {iface} is gone; removed the state of vanished ifindexes {gone:?}");
            }
        }
    }
    Ok(())
}

fn sync(cfg: &HostConfig) -> Result<()> {
    let mut loaded = lifecycle::ensure_loaded(cfg)?;
    loaded.applier = Applier::Sync;
    let mut failures = Vec::new();
    for (_, name) in lifecycle::interfaces().context("list interfaces")? {
        let Some(vif) = lifecycle::vif_of_ifname(&name) else {
            continue;
        };
        if let Err(e) = loaded.attach(&name, &vif, cfg, Interface::Known) {
            say!("vifguard: {:#}", anyhow::Error::new(e));
            failures.push(name);
        }
    }
    loaded.clean_vanished()?;
    if failures.is_empty() {
        // Every link now runs this version: older program pins can go.
        for v in loaded.layout.prog_versions()? {
            if v != loaded.version {
                let _ = std::fs::remove_dir_all(loaded.layout.progs(&v));
            }
        }
        Ok(())
    } else {
        Err(anyhow!(
            "sync: {} interface(s) failed: {}",
            failures.len(),
            failures.join(", ")
        ))
    }
}

fn status(cfg: &HostConfig, iface: Option<&str>, json: bool) -> Result<()> {
    let only = match iface {
        Some(name) => Some(
            lifecycle::ifindex(name)
                .ok_or_else(|| LifecycleError::UnknownInterface(name.into()))?,
        ),
        None => None,
    };
    let (layout, maps) = match lifecycle::open_maps(cfg) {
        Ok(x) => x,
        Err(LifecycleError::NotLoaded(_)) if iface.is_none() => {
            if json {
                println!("[]");
            } else {
                println!(
                    "no interfaces (nothing pinned under {})",
                    cfg.bpffs.display()
                );
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let status = lifecycle::status(&layout, &maps, only)?;
    if let (Some(name), true) = (iface, status.entries.is_empty()) {
        return Err(anyhow!("{name}: no policy entry (not attached)"));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&status.json())?);
    } else {
        print!("{}", status.text());
    }
    Ok(())
}

fn metrics_text(cfg: &HostConfig) -> Result<String, LifecycleError> {
    let (_, maps) = lifecycle::open_maps(cfg)?;
    Ok(prometheus::render(&lifecycle::snapshot(&maps)?))
}

/// Serves [`metrics_text`] on `GET /metrics` at `addr`.
fn serve_metrics(cfg: &HostConfig, addr: &str) -> Result<()> {
    use std::net::{SocketAddr, TcpListener};
    // An IP address, not a host name: resolving names would need glibc's
    // NSS modules at run time, which the static release binary lacks.
    let sockaddr: SocketAddr = addr.parse().map_err(|e| {
        usage(format!(
            "metrics --listen {addr:?}: not IP:PORT (e.g. 127.0.0.1:9469 or [::1]:9469): {e}"
        ))
    })?;
    let listener = TcpListener::bind(sockaddr).with_context(|| format!("listen on {addr}"))?;
    say!(
        "vifguard: serving metrics on http://{}/metrics",
        listener.local_addr()?
    );
    http::serve(&listener, || metrics_text(cfg), |m| say!("vifguard: {m}"));
    Ok(())
}
