//! Cache-line write-back instructions, chosen once by CPUID.
//!
//! Guarantee: after [`FlushMethod::flush`] returns, stores to the range have
//! left the CPU caches for the memory controller's persistence domain (ADR);
//! the trailing `sfence` orders them before any later store, so a later tail
//! update cannot become durable before the data it covers.

use std::sync::OnceLock;

/// Cache-line size assumed by the flush loop (every x86-64 CPU with pmem).
pub(crate) const CACHE_LINE: usize = 64;

/// The instruction used to write cache lines back to persistent memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushMethod {
    /// `clwb`: writes the line back and may keep it cached (best).
    Clwb,
    /// `clflushopt`: writes back and invalidates; weakly ordered.
    ClflushOpt,
    /// `clflush`: writes back and invalidates; serialising (slowest).
    Clflush,
    /// No cache flush instruction (not x86-64): only `msync` regions work.
    None,
}

impl FlushMethod {
    /// Name as printed by `tg-log stat` and the docs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Clwb => "clwb+sfence",
            Self::ClflushOpt => "clflushopt+sfence",
            Self::Clflush => "clflush+sfence",
            Self::None => "none",
        }
    }

    /// Writes back every cache line overlapping `[ptr, ptr + len)` and fences.
    ///
    /// Works on any readable address range: a flush instruction does not
    /// write, and on a line that is not cached it does nothing.
    pub(crate) fn flush(self, ptr: *const u8, len: usize) {
        if len == 0 {
            return;
        }
        let start = (ptr as usize) & !(CACHE_LINE - 1);
        let end = (ptr as usize).saturating_add(len);
        #[cfg(target_arch = "x86_64")]
        {
            let mut line = start;
            while line < end {
                let p = line as *const u8;
                match self {
                    // SAFETY: clwb/clflushopt only need a mapped address; the
                    // caller passes a range inside a live mapping, and CPUID
                    // reported the instruction (detect()) before it was chosen.
                    Self::Clwb => unsafe {
                        core::arch::asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags));
                    },
                    // SAFETY: as above, CPUID reported clflushopt.
                    Self::ClflushOpt => unsafe {
                        core::arch::asm!("clflushopt [{0}]", in(reg) p, options(nostack, preserves_flags));
                    },
                    // SAFETY: clflush is baseline on x86-64 (CPUID.1:EDX.19 is
                    // checked anyway); `p` is inside a live mapping.
                    Self::Clflush => unsafe { core::arch::x86_64::_mm_clflush(p) },
                    Self::None => {}
                }
                line += CACHE_LINE;
            }
            // SAFETY: sfence has no preconditions (SSE is baseline on x86-64).
            unsafe { core::arch::x86_64::_mm_sfence() };
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (start, end);
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// The flush method of this CPU, detected once (CPUID) and cached.
pub fn flush_method() -> FlushMethod {
    static METHOD: OnceLock<FlushMethod> = OnceLock::new();
    *METHOD.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
// `__cpuid_count` is safe on recent toolchains but `unsafe` on our MSRV.
#[allow(unused_unsafe)]
fn detect() -> FlushMethod {
    use core::arch::x86_64::__cpuid_count;
    // Test hook: force the portable fallback to exercise it on clwb machines.
    if let Ok(v) = std::env::var("TG_FLUSH") {
        match v.as_str() {
            "clflush" => return FlushMethod::Clflush,
            "clflushopt" => return FlushMethod::ClflushOpt,
            _ => {}
        }
    }
    // SAFETY: cpuid is available on every x86-64 CPU.
    let leaf0 = unsafe { __cpuid_count(0, 0) };
    if leaf0.eax >= 7 {
        // SAFETY: leaf 7 exists (max leaf checked above).
        let leaf7 = unsafe { __cpuid_count(7, 0) };
        if leaf7.ebx & (1 << 24) != 0 {
            return FlushMethod::Clwb;
        }
        if leaf7.ebx & (1 << 23) != 0 {
            return FlushMethod::ClflushOpt;
        }
    }
    // SAFETY: leaf 1 exists on every x86-64 CPU.
    let leaf1 = unsafe { __cpuid_count(1, 0) };
    if leaf1.edx & (1 << 19) != 0 {
        FlushMethod::Clflush
    } else {
        FlushMethod::None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> FlushMethod {
    FlushMethod::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_a_method_and_flushes_heap_memory() {
        let m = flush_method();
        let buf = vec![7u8; 300];
        // Unaligned start and length: must touch every overlapping line and
        // not fault.
        m.flush(buf[3..].as_ptr(), 290);
        assert!(!m.name().is_empty());
    }
}
