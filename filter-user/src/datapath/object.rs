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
    for name in names::SIZED_BY_MAX_INTERFACES {
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

#[cfg(test)]
mod tests {
    use super::OBJECT;

    /// Linux before 6.4 (6.1 is a supported dom0 kernel) rejects, before
    /// verifying anything, a loop whose cycle closes on the fall-through of
    /// an instruction that is not a jump ("back-edge from insn N to N+1"),
    /// although it accepts bounded loops whose back-edge is a jump. LLVM
    /// produces that shape when it puts a loop's latch right before its
    /// head; the 6.12 and 6.18 kernels the other tests run on accept it, so
    /// only this test (and a Xen run on 6.1) would notice. It walks every
    /// function's control flow as 6.1's `check_cfg` does.
    #[test]
    fn no_loop_closes_on_a_plain_fall_through() {
        if OBJECT.is_empty() {
            return; // built without the eBPF toolchain
        }
        let obj = aya_obj::Object::parse(OBJECT).expect("parse the eBPF object");
        let mut checked = 0;
        for f in obj.functions.values() {
            if let Some((from, to)) = plain_fall_through_back_edge(&f.instructions) {
                panic!(
                    "{}: back-edge from insn {from} to {to}: Linux before 6.4 refuses to load this",
                    f.name
                );
            }
            checked += 1;
        }
        assert!(checked >= 5, "the object has its functions ({checked})");
    }

    /// 6.1's `check_cfg`: a depth-first walk from the first instruction;
    /// an edge to an instruction still on the walk's stack is allowed only
    /// if it leaves a jump (conditional or not), not a plain instruction
    /// or a call.
    fn plain_fall_through_back_edge(
        insns: &[aya_obj::generated::bpf_insn],
    ) -> Option<(usize, usize)> {
        const BPF_JMP: u8 = 0x05;
        const BPF_JMP32: u8 = 0x06;
        const BPF_JA: u8 = 0x00;
        const BPF_CALL: u8 = 0x80;
        const BPF_EXIT: u8 = 0x90;
        const BPF_LD_IMM64: u8 = 0x18;
        let n = insns.len();
        // (target, a jump's edge)
        let edges = |t: usize| -> Vec<(usize, bool)> {
            let i = &insns[t];
            let class = i.code & 0x07;
            let next = if i.code == BPF_LD_IMM64 { t + 2 } else { t + 1 };
            if class != BPF_JMP && class != BPF_JMP32 {
                return vec![(next, false)];
            }
            let jump = |off: i16| usize::try_from(t as i64 + i64::from(off) + 1).unwrap_or(n);
            match i.code & 0xf0 {
                BPF_EXIT => vec![],
                BPF_CALL => vec![(next, false)],
                BPF_JA => vec![(jump(i.off), true)],
                _ => vec![(next, true), (jump(i.off), true)],
            }
        };
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            New,
            OnStack,
            Done,
        }
        let mut state = vec![State::New; n];
        let mut cursor = vec![0usize; n];
        let mut stack = vec![0usize];
        state[0] = State::OnStack;
        while let Some(&t) = stack.last() {
            let es = edges(t);
            match es.get(cursor[t]) {
                Some(&(w, jump)) => {
                    cursor[t] += 1;
                    if w >= n {
                        continue;
                    }
                    match state[w] {
                        State::New => {
                            state[w] = State::OnStack;
                            stack.push(w);
                        }
                        State::OnStack if !jump => return Some((t, w)),
                        _ => {}
                    }
                }
                None => {
                    state[t] = State::Done;
                    stack.pop();
                }
            }
        }
        None
    }
}
