//! The eBPF object vifguard embeds: its version, and loading it into the
//! kernel.

use std::path::Path;

use aya::maps::MapError;
use aya::programs::{ProgramError, SchedClassifier, Xdp};
use aya::{Ebpf, EbpfError, EbpfLoader};
use filter_common::map_names as names;

/// The eBPF object built from filter-ebpf (empty when the build had no
/// eBPF toolchain, see build.rs).
pub static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vifguard.bpf.o"));

/// A short fingerprint of the embedded object (computed by build.rs):
/// names the pinned programs, so an upgrade is visible and old and new
/// programs never share a path.
pub fn object_version() -> String {
    include_str!(concat!(env!("OUT_DIR"), "/object_version")).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "this vifguard was built without its eBPF programs (no bpf-linker or Debian rustc at build time); run `cargo xtask bootstrap` and rebuild"
    )]
    NoObject,
    #[error("loading the eBPF object failed")]
    Load(#[source] Box<EbpfError>),
    #[error("the eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("map {name}: {action} failed")]
    Map {
        name: &'static str,
        action: &'static str,
        #[source]
        source: Box<MapError>,
    },
    #[error("map {name} is not the map this object declares (type, key or value size)")]
    WrongMap {
        name: &'static str,
        #[source]
        source: Box<MapError>,
    },
    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("program {name}: {action} failed")]
    Program {
        name: &'static str,
        action: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error(
        "all {max} interface slots are in use (raise max_interfaces in the host configuration)"
    )]
    SlotsExhausted { max: u32 },
}

pub(crate) fn map_err(
    name: &'static str,
    action: &'static str,
) -> impl FnOnce(MapError) -> DatapathError {
    move |e| DatapathError::Map {
        name,
        action,
        source: Box::new(e),
    }
}

fn prog_err(
    name: &'static str,
    action: &'static str,
) -> impl FnOnce(ProgramError) -> DatapathError {
    move |e| DatapathError::Program {
        name,
        action,
        source: Box::new(e),
    }
}

/// Loads the object into the kernel: maps are created (or, with `pin_dir`,
/// reused from / pinned to `pin_dir/<NAME>`), programs verified and loaded.
pub fn load(max_interfaces: u32, pin_dir: Option<&Path>) -> Result<Ebpf, DatapathError> {
    if OBJECT.is_empty() {
        return Err(DatapathError::NoObject);
    }
    let mut loader = EbpfLoader::new();
    for name in [names::POLICY, names::COUNTERS, names::EVENT_BUDGET] {
        loader.map_max_entries(name, max_interfaces);
    }
    if let Some(dir) = pin_dir {
        for name in names::ALL {
            loader.map_pin_path(name, dir.join(name));
        }
    }
    let mut ebpf = loader
        .load(OBJECT)
        .map_err(|e| DatapathError::Load(Box::new(e)))?;
    for name in [
        filter_common::program_names::TC_FROM_GUEST,
        filter_common::program_names::TC_TO_GUEST,
        filter_common::program_names::TC_EMPTY,
    ] {
        tc_program(&mut ebpf, name)?
            .load()
            .map_err(prog_err(name, "verify and load"))?;
    }
    for name in [
        filter_common::program_names::XDP_FROM_GUEST,
        filter_common::program_names::XDP_EMPTY,
    ] {
        xdp_program(&mut ebpf, name)?
            .load()
            .map_err(prog_err(name, "verify and load"))?;
    }
    Ok(ebpf)
}

pub fn tc_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut SchedClassifier, DatapathError> {
    ebpf.program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(DatapathError::MissingProgram(name))
}

pub fn xdp_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut Xdp, DatapathError> {
    ebpf.program_mut(name)
        .and_then(|p| p.try_into().ok())
        .ok_or(DatapathError::MissingProgram(name))
}
