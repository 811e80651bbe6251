//! Bounds-checked reads from the frame. Every read checks its own bounds
//! right where it happens, in the two forms the verifier needs: the offset
//! against the parse window (a scalar bound), then the end of the read
//! against the end of the packet data.

use core::mem::size_of;

use aya_ebpf::bindings::{__sk_buff, xdp_md};
use filter_common::PARSE_WINDOW;

/// The program context a frame came with. The loops of the parser run in
/// global functions (see `subprogs.rs`), which take the context, not packet
/// pointers.
#[derive(Clone, Copy)]
pub enum Ctx {
    Tc(*mut __sk_buff),
    Xdp(*mut xdp_md),
}

/// The bytes of one frame that the filter may parse: from `start` to
/// `end`, never more than `PARSE_WINDOW` bytes, and within an IP packet
/// never beyond the end its length field gives (`limit`).
#[derive(Clone, Copy)]
pub struct Frame {
    start: usize,
    end: usize,
    /// Offset where the packet ends: a header fits when it ends at or
    /// before it.
    limit: usize,
    pub ctx: Ctx,
}

impl Frame {
    #[inline(always)]
    pub fn new(ctx: Ctx) -> Frame {
        // SAFETY: ctx is the context pointer the kernel passed to the
        // program; data and data_end are plain fields of it.
        let (start, end) = unsafe {
            match ctx {
                Ctx::Tc(skb) => ((*skb).data as usize, (*skb).data_end as usize),
                Ctx::Xdp(md) => ((*md).data as usize, (*md).data_end as usize),
            }
        };
        Frame {
            start,
            end,
            limit: PARSE_WINDOW,
            ctx,
        }
    }

    /// The frame of a packet that ends at offset `end` (an IP length
    /// field): what follows is trailer and reads as missing.
    #[inline(always)]
    pub fn ending_at(&self, end: usize) -> Frame {
        Frame {
            limit: if end < self.limit { end } else { self.limit },
            ..*self
        }
    }

    /// Where the packet ends, as [`Frame::ending_at`] set it.
    #[inline(always)]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Reads at offsets known at compile time: the verifier tracks
    /// `start + constant` exactly, so the plain checks suffice.
    #[inline(always)]
    fn fixed(&self) -> Reader<'_, false> {
        Reader(self)
    }

    /// Reads at offsets computed from the frame (header lengths).
    #[inline(always)]
    pub fn var(&self) -> Reader<'_, true> {
        Reader(self)
    }

    /// Whether the first `n` bytes are all inside the frame (and window).
    #[inline(always)]
    pub fn fits(&self, n: usize) -> bool {
        self.fixed().fits(n)
    }

    #[inline(always)]
    pub fn u8(&self, off: usize) -> Option<u8> {
        self.fixed().u8(off)
    }

    /// A big-endian 16-bit field.
    #[inline(always)]
    pub fn be16(&self, off: usize) -> Option<u16> {
        self.fixed().be16(off)
    }

    #[inline(always)]
    pub fn bytes4(&self, off: usize) -> Option<[u8; 4]> {
        self.fixed().read(off)
    }

    #[inline(always)]
    pub fn bytes6(&self, off: usize) -> Option<[u8; 6]> {
        self.fixed().bytes6(off)
    }

    #[inline(always)]
    pub fn bytes16(&self, off: usize) -> Option<[u8; 16]> {
        self.fixed().bytes16(off)
    }
}

/// Bounds-checked reads. With `VAR`, each read hides its offset and its end
/// pointer from the optimiser (see [`opaque`]), as variable offsets need;
/// that costs a stack round trip, so constant offsets go without.
pub struct Reader<'a, const VAR: bool>(&'a Frame);

impl<const VAR: bool> Reader<'_, VAR> {
    #[inline(always)]
    fn hide(v: usize) -> usize {
        if VAR { opaque(v) } else { v }
    }

    #[inline(always)]
    pub fn fits(&self, n: usize) -> bool {
        let n = Self::hide(n);
        n <= PARSE_WINDOW && n <= self.0.limit && self.0.start + n <= self.0.end
    }

    #[inline(always)]
    fn read<T: Copy>(&self, off: usize) -> Option<T> {
        let off = Self::hide(off);
        if off > PARSE_WINDOW - size_of::<T>() || off + size_of::<T>() > self.0.limit {
            return None;
        }
        let p = self.0.start + off;
        // Hidden too for variable offsets, or LLVM turns `p + 1 > end` into
        // `p >= end`, which gives the verifier no readable range at `p`.
        if Self::hide(p + size_of::<T>()) > self.0.end {
            return None;
        }
        // SAFETY: [p, p + size_of::<T>()) lies inside the packet data, as
        // checked just above; T is a plain byte array or integer.
        Some(unsafe { core::ptr::read_unaligned(p as *const T) })
    }

    #[inline(always)]
    pub fn u8(&self, off: usize) -> Option<u8> {
        self.read::<u8>(off)
    }

    #[inline(always)]
    pub fn be16(&self, off: usize) -> Option<u16> {
        self.read::<[u8; 2]>(off).map(u16::from_be_bytes)
    }

    /// Two big-endian 16-bit fields side by side (UDP's ports), in one
    /// read.
    #[inline(always)]
    pub fn be16_pair(&self, off: usize) -> Option<(u16, u16)> {
        self.read::<[u8; 4]>(off).map(|b| {
            (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
            )
        })
    }

    #[inline(always)]
    pub fn bytes4(&self, off: usize) -> Option<[u8; 4]> {
        self.read::<[u8; 4]>(off)
    }

    #[inline(always)]
    pub fn bytes6(&self, off: usize) -> Option<[u8; 6]> {
        self.read::<[u8; 6]>(off)
    }

    #[inline(always)]
    pub fn bytes16(&self, off: usize) -> Option<[u8; 16]> {
        self.read::<[u8; 16]>(off)
    }
}

/// Hides a value from the optimiser. Without it LLVM computes `start + off`
/// once and reuses that pointer for a later read, but the verifier only
/// lets a read use the very pointer register that was compared with the
/// packet end, and rejects the program.
#[inline(always)]
fn opaque(v: usize) -> usize {
    core::hint::black_box(v)
}

/// Byte-array equality without `memcmp` (there is no libc in eBPF).
#[inline(always)]
pub fn eq6(a: [u8; 6], b: [u8; 6]) -> bool {
    u32::from_ne_bytes([a[0], a[1], a[2], a[3]]) == u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
        && u16::from_ne_bytes([a[4], a[5]]) == u16::from_ne_bytes([b[4], b[5]])
}

#[inline(always)]
pub fn eq16(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let (a, b) = (words(a), words(b));
    a[0] == b[0] && a[1] == b[1]
}

#[inline(always)]
pub fn is_zero16(a: &[u8; 16]) -> bool {
    let a = words(a);
    a[0] | a[1] == 0
}

#[inline(always)]
pub fn words(a: &[u8; 16]) -> [u64; 2] {
    // SAFETY: same size, every bit pattern is a valid u64; read by value.
    unsafe { core::mem::transmute::<[u8; 16], [u64; 2]>(*a) }
}
