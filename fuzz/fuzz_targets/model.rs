//! The reference model of the datapath: no panic on any frame, in either
//! direction, with any valid policy (from the testbed generator, seeded by
//! the input's first 8 bytes) or none.
#![no_main]

use filter_common::Direction;
use libfuzzer_sys::fuzz_target;
use testbed::r#gen::Gen;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, frame) = data.split_at(9);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&head[..8]);
    let direction = if head[8] & 1 == 0 {
        Direction::FromGuest
    } else {
        Direction::ToGuest
    };
    if head[8] & 2 != 0 {
        let _ = filter_user::model::verdict(None, direction, frame);
        return;
    }
    let policy = Gen::new(u64::from_le_bytes(seed)).policy();
    let _ = filter_user::model::verdict(Some(&policy), direction, frame);
});
