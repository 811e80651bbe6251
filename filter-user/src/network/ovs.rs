//! Open vSwitch ports through `ovs-vsctl`, the commands XAPI's own
//! scripts run (xen-api `ocaml/xenopsd/scripts/common.py`,
//! `add_to_bridge`/`remove_from_bridge`): every call with `--timeout=30`,
//! so a hung `ovs-vswitchd` fails the call instead of hanging the hotplug.
//!
//! `ovs-vsctl` is found on `PATH` and finds its database the way it always
//! does (`unix:$OVS_RUNDIR/db.sock`, by default
//! `/var/run/openvswitch/db.sock`).

use std::io;
use std::process::{Command, Output};

const VSCTL: &str = "ovs-vsctl";
const TIMEOUT: &str = "--timeout=30";

#[derive(Debug, thiserror::Error)]
pub enum OvsError {
    #[error("running {VSCTL} failed")]
    Spawn(#[source] io::Error),
    #[error("`{VSCTL} {args}` failed ({status}): {stderr}")]
    Failed {
        args: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

fn vsctl(args: &[&str]) -> Result<Output, OvsError> {
    Command::new(VSCTL)
        .arg(TIMEOUT)
        .args(args)
        .output()
        .map_err(OvsError::Spawn)
}

fn failed(args: &[&str], out: &Output) -> OvsError {
    OvsError::Failed {
        args: std::iter::once(TIMEOUT)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" "),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

fn ok(args: &[&str]) -> Result<String, OvsError> {
    let out = vsctl(args)?;
    if !out.status.success() {
        return Err(failed(args, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether Open vSwitch has a bridge (or fake bridge) named `name`. A host
/// without `ovs-vsctl` has none.
pub fn br_exists(name: &str) -> Result<bool, OvsError> {
    let args = ["br-exists", name];
    let out = match vsctl(&args) {
        Ok(out) => out,
        Err(OvsError::Spawn(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    // br-exists: 0 yes, 2 no, anything else a failure (no database).
    match out.status.code() {
        Some(0) => Ok(true),
        Some(2) => Ok(false),
        _ => Err(failed(&args, &out)),
    }
}

/// Whether `iface` is a port of `bridge`.
pub fn has_port(bridge: &str, iface: &str) -> Result<bool, OvsError> {
    Ok(ok(&["list-ports", bridge])?.lines().any(|l| l == iface))
}

/// One `set interface` argument: `external-ids:"key"="value"`, quoted as
/// XAPI's script quotes them; the JSON string syntax is what ovs-vsctl
/// parses inside the quotes, so any value arrives as it is.
fn external_id(key: &str, value: &str) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    format!("external-ids:{}={}", quote(key), quote(value))
}

/// Makes `iface` a port of `bridge` with `external_ids`, in one
/// transaction that first deletes a port of that name wherever it is.
pub fn add_port(
    bridge: &str,
    iface: &str,
    external_ids: &[(&str, String)],
) -> Result<(), OvsError> {
    let ids: Vec<String> = external_ids
        .iter()
        .map(|(k, v)| external_id(k, v))
        .collect();
    let mut args = vec![
        "--",
        "--if-exists",
        "del-port",
        iface,
        "--",
        "add-port",
        bridge,
        iface,
    ];
    for id in &ids {
        args.extend(["--", "set", "interface", iface, id.as_str()]);
    }
    ok(&args).map(drop)
}

/// Deletes the port named `iface`, if there is one.
pub fn del_port(iface: &str) -> Result<(), OvsError> {
    ok(&["--", "--if-exists", "del-port", iface]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_are_quoted_as_xapi_quotes_them() {
        assert_eq!(
            external_id("xs-vm-uuid", "6b3f0c2e-0000-4000-8000-000000000005"),
            r#"external-ids:"xs-vm-uuid"="6b3f0c2e-0000-4000-8000-000000000005""#
        );
        assert_eq!(
            external_id("attached-mac", r#"a"b\c"#),
            r#"external-ids:"attached-mac"="a\"b\\c""#
        );
    }
}
