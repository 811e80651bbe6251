//! Mutations: no input panics, and the mode-level verdicts hold for all.

use super::truncation::{from_guest_cuts, to_guest_cuts};
use super::*;

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    match rng.below(4) {
        // Flip a few bytes, most often in the headers.
        0 | 1 => {
            for _ in 0..=rng.below(4) {
                let headers_only = rng.below(2) == 0;
                let at = rng.below(if headers_only {
                    f.len().min(96)
                } else {
                    f.len()
                });
                if let Some(b) = f.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
        }
        2 => f.truncate(rng.below(f.len() + 1)),
        _ => f.extend((0..rng.below(600)).map(|_| rng.next() as u8)),
    }
    f
}

#[test]
fn mutated_frames_never_panic_and_modes_decide_before_parsing() {
    let policies = [
        locked(),
        isolated(),
        with(isolated(), |p| {
            p.options.router = true;
            p.options.dhcp_server = true;
            p.options.link_local = LinkLocal::Any;
            p.ipv4 = vec![cidr4("0.0.0.0/0")];
            p.ipv6 = vec![cidr6("::/0")];
        }),
        with(locked(), |p| {
            p.ipv4.clear();
            p.ipv6.clear();
            p.options.link_local = LinkLocal::None;
        }),
        with(isolated(), |p| {
            p.pairs = vec![pair()];
            p.vrrp = vec![vrrp()];
            p.dhcp_servers = vec![IpAddr::V4(SERVER_V4), IpAddr::V6(router_ll())];
        }),
    ];
    let unlocked = with(locked(), |p| p.mode = Mode::Unlocked);
    let disabled = with(locked(), |p| p.mode = Mode::Disabled);
    let mut corpus: Vec<Vec<u8>> = from_guest_cuts().into_iter().map(|c| c.frame).collect();
    corpus.extend(to_guest_cuts().into_iter().map(|c| c.frame));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for seed in &corpus {
        let mut frame = seed.clone();
        for round in 0..400 {
            // Mostly mutate the seed, sometimes keep mutating the mutant.
            if round % 4 != 0 {
                frame = seed.clone();
            }
            frame = mutate(&mut rng, &frame);
            for direction in Direction::ALL {
                for p in &policies {
                    let _ = verdict(Some(p), direction, &frame);
                }
                assert_eq!(
                    verdict(None, direction, &frame),
                    NoPolicy,
                    "no policy: expected `no_policy`"
                );
                assert_eq!(
                    verdict(Some(&unlocked), direction, &frame),
                    Pass,
                    "unlocked: expected `pass`"
                );
                assert_eq!(
                    verdict(Some(&disabled), direction, &frame),
                    Disabled,
                    "disabled: expected `disabled`"
                );
            }
        }
    }
}
