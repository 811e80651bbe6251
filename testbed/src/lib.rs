//! What vifguard's tests stand on: frame builders ([`frames`]), network
//! namespaces and raw sockets ([`netns`]), the kernel test harness over
//! BPF_PROG_TEST_RUN ([`kernel`]), a xenstored stand-in speaking the real
//! wire protocol ([`xenstored`]), the random frame and policy generator of
//! the differential test ([`gen`]), keepalived in a guest ([`keepalived`])
//! and the demo host ([`demo`]). The test suites are in `testbed/tests/`,
//! the demo and benchmark programs in `testbed/src/bin/`.

pub mod demo;
pub mod frames;
pub mod r#gen;
pub mod keepalived;
pub mod kernel;
pub mod netns;
pub mod xenstored;
