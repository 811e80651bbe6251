//! The command line of `vifguard`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  runtime failure (the vif is left fail-closed where its policy could not be used)
  2  usage error (bad arguments, missing hotplug environment)

State lives in bpffs below the configured root (default /sys/fs/bpf/vifguard):
  v2/maps/<NAME>, v2/progs/<version>/<program>, and with attach = \"tcx\"
  v2/links/<ifindex>-tc-ingress|tc-egress. With the default attach = \"tc\" each vif
  has a clsact qdisc and two cls_bpf filters (tc filter show dev vifN.M ingress).
Inspect with e.g.: bpftool map dump pinned /sys/fs/bpf/vifguard/v2/maps/POLICY; bpftool net";

pub const CHECK_AFTER_HELP: &str = "\
Exit codes:
  0  vifguard can work here (every line OK or WARN)
  1  at least one FAIL: vifguard cannot work here until it is fixed
  2  usage error

WARN means it works but needs attention (a vif not filtered yet, a policy
that fails closed, a kernel older than the tested 6.1 and 6.12).";

#[derive(Parser, Debug)]
#[command(
    name = "vifguard",
    version,
    about = "eBPF anti-spoofing filter for Xen vifs",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Host configuration file.
    #[arg(
        long,
        global = true,
        env = "VIFGUARD_CONFIG",
        default_value = crate::config::DEFAULT_PATH
    )]
    pub config: PathBuf,
    /// bpffs directory for pins (overrides `bpffs` of the configuration).
    #[arg(long, global = true, env = "VIFGUARD_BPFFS")]
    pub bpffs: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HotplugAction {
    Online,
    Add,
    Offline,
    Remove,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SetupAction {
    Filter,
    Clear,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Resolve IFACE's policy from xenstore, install it, attach the filter to both hooks.
    ///
    /// Example: vifguard attach vif5.0 --xenbus-path backend/vif/5/0
    #[command(after_help = AFTER_HELP)]
    Attach {
        iface: String,
        /// The vif's backend path (default: derived from a vifN.M, vifN.M-emu or tapN.M name).
        #[arg(long)]
        xenbus_path: Option<String>,
    },
    /// Remove IFACE's filters or links and map entries (an interface that is gone: clean every vanished one).
    ///
    /// Example: vifguard detach vif5.0
    #[command(after_help = AFTER_HELP)]
    Detach { iface: String },
    /// Entry point for Xen's vif hotplug scripts; reads $vif and $XENBUS_PATH.
    ///
    /// Example: vif=vif5.0 XENBUS_PATH=backend/vif/5/0 vifguard hotplug online
    #[command(after_help = AFTER_HELP)]
    Hotplug { action: HotplugAction },
    /// XAPI's setup-vif-rules, as xenopsd and its vif hotplug script call it.
    ///
    /// filter: the policy and both hooks, then IFACE onto its network's
    /// bridge (Linux bridge or Open vSwitch; mode disabled or a policy that
    /// could not be applied keeps it off); clear: off the bridge, then
    /// detach. Example: vifguard setup-vif-rules classic vif5.0 <vm-uuid> 0 filter
    #[command(after_help = AFTER_HELP)]
    SetupVifRules {
        /// xenopsd's backend (classic, xenlight): accepted, not used.
        backend: String,
        /// vif<domid>.<devid> or tap<domid>.<devid>.
        iface: String,
        /// The VM's uuid (checked against /local/domain/<domid>/vm).
        vm_uuid: String,
        /// The device number (checked against IFACE's name).
        devid: u32,
        action: SetupAction,
    },
    /// Show every interface with a policy entry (or only IFACE).
    ///
    /// Example: vifguard status vif5.0 --json
    #[command(after_help = AFTER_HELP)]
    Status {
        iface: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Reconcile: attach every vif*/tap* present, remove state of vanished interfaces.
    ///
    /// Example: vifguard sync
    #[command(after_help = AFTER_HELP)]
    Sync,
    /// Follow live policy changes: re-apply a filtered vif when its xenstore keys change.
    ///
    /// A long-running service (vifguard-watch.service) for hosts where no
    /// toolstack hook fires on a change (xl, OpenStack, keys written by
    /// hand). Reconnects when xenstored restarts. One log line per change.
    ///
    /// Example: vifguard watch
    #[command(after_help = AFTER_HELP)]
    Watch,
    /// Print IFACE's policy as resolved from xenstore and the host policy
    /// file, with the keys it came from.
    ///
    /// Example: vifguard policy vif5.0 --json
    #[command(after_help = AFTER_HELP)]
    Policy {
        iface: String,
        #[arg(long)]
        xenbus_path: Option<String>,
        /// Print JSON: every field as {"value": ..., "from": [origins]}.
        #[arg(long)]
        json: bool,
    },
    /// Stream sampled drop events (rate-limited per interface by the datapath).
    ///
    /// Also the changes of DHCP-learned addresses (option learn_dhcp):
    /// learned, renewed, expired, removed, read from the maps every 200 ms.
    ///
    /// Example: vifguard events --json
    #[command(after_help = AFTER_HELP)]
    Events {
        #[arg(long)]
        json: bool,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Exit after this many seconds.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Preflight: can vifguard work on this host, and what to do if not.
    ///
    /// One line per check, OK, WARN or FAIL, with what to do after `->`:
    /// the configuration file; the kernel release and every kernel feature
    /// the programs and the loader use, probed for real (a map of each
    /// type, the ring buffer among them; the actual programs loaded and
    /// verified, not attached; clsact + cls_bpf and TCX attached to the
    /// loopback device of a private network namespace); the bpffs pin root;
    /// xenstore and which toolstack wrote the vifs' policies; and for each
    /// vif present its bridge (Linux bridge or Open vSwitch), an `ingress`
    /// qdisc that conflicts with attach = "tc", its hooks and whether its
    /// policy can be used. Leaves nothing behind and touches no vif. Needs
    /// root for the kernel probes.
    ///
    /// Example: vifguard check --json
    #[command(after_help = CHECK_AFTER_HELP)]
    Check {
        /// Print JSON on stdout: {"status", "exit_code", "checks": [{"check",
        /// "subject", "status", "message", "fix", "data"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Print the counters in Prometheus text format, or serve them over HTTP.
    ///
    /// Example: vifguard metrics --listen 127.0.0.1:9469 (then GET /metrics)
    #[command(after_help = AFTER_HELP)]
    Metrics {
        /// Serve the text on `GET /metrics` at this IP address and port
        /// (one request at a time, maps re-read per request) instead of
        /// printing it once. Host names are not resolved.
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<String>,
    },
}
