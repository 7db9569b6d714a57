//! Buffers on transparent huge pages (2 MiB), so a stream through them (decode's through the
//! weights, the bandwidth calibration's through its buffers) is not broken every 4 KiB: the
//! hardware prefetchers stop at page boundaries and each new page costs a TLB walk.
//!
//! A buffer is its own anonymous mapping, aligned to 2 MiB, and Linux is asked
//! (`madvise(MADV_HUGEPAGE)`) to back it with huge pages as it is first touched: the
//! `madvise` setting of `/sys/kernel/mm/transparent_hugepage/enabled`, the usual default, gives
//! them only when asked; `always` needs no asking. (A `Vec` cannot be relied on: the allocator
//! serves even large requests from memory it has touched before, and advice on touched pages
//! only lets a background thread collapse them, later.) The pages still follow the thread's
//! memory policy, so NUMA binding is unchanged. Where the kernel has no transparent huge pages,
//! the advice is refused and the buffer keeps 4 KiB pages: slower, never wrong.

use bytemuck::Pod;
use memmap2::MmapMut;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// Bytes of one transparent huge page on x86-64 and most arm64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// `len` values of `T` in an anonymous mapping backed by huge pages where the kernel gives
/// them; reads and writes as a slice.
pub struct HugeBuffer<T> {
    map: Option<MmapMut>,
    offset: usize,
    len: usize,
    values: PhantomData<T>,
}

impl<T: Pod> HugeBuffer<T> {
    /// `len` zeros (the mapping's fresh pages; none is touched yet).
    ///
    /// # Panics
    /// If the memory cannot be mapped, as a `Vec` aborts when it cannot allocate.
    pub fn zeroed(len: usize) -> Self {
        let bytes = len * std::mem::size_of::<T>();
        if bytes == 0 {
            return HugeBuffer {
                map: None,
                offset: 0,
                len: 0,
                values: PhantomData,
            };
        }
        // one huge page more than needed, so the buffer can start on a huge page boundary
        let map = MmapMut::map_anon(bytes + HUGE_PAGE)
            .unwrap_or_else(|e| panic!("cannot map {bytes} bytes of memory: {e}"));
        let offset = (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE) - map.as_ptr() as usize;
        #[cfg(target_os = "linux")]
        // A refusal (no transparent huge pages) leaves 4 KiB pages, which still work.
        let _ = map.advise_range(memmap2::Advice::HugePage, offset, bytes);
        HugeBuffer {
            map: Some(map),
            offset,
            len,
            values: PhantomData,
        }
    }

    /// `len` copies of `value`: the pages are first touched by the fill, so they come from the
    /// memory policy of the calling thread at the time.
    pub fn filled(len: usize, value: T) -> Self {
        let mut buffer = HugeBuffer::zeroed(len);
        buffer.fill(value);
        buffer
    }
}

impl<T: Pod> Deref for HugeBuffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.map {
            Some(map) => bytemuck::cast_slice(
                &map[self.offset..self.offset + self.len * std::mem::size_of::<T>()],
            ),
            None => &[],
        }
    }
}

impl<T: Pod> DerefMut for HugeBuffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let bytes = self.len * std::mem::size_of::<T>();
        match &mut self.map {
            Some(map) => bytemuck::cast_slice_mut(&mut map[self.offset..self.offset + bytes]),
            None => &mut [],
        }
    }
}

impl<T> std::fmt::Debug for HugeBuffer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeBuffer({} values)", self.len)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// KiB of huge pages backing the mapping that holds `address`, from `/proc/self/smaps`.
    fn huge_kib_at(address: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((start, end)) = range.split_once('-') {
                if let (Ok(start), Ok(end)) = (
                    usize::from_str_radix(start, 16),
                    usize::from_str_radix(end, 16),
                ) {
                    inside = (start..end).contains(&address);
                    continue;
                }
            }
            if inside {
                if let Some(kib) = line.strip_prefix("AnonHugePages:") {
                    return kib
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse()
                        .expect("kB");
                }
            }
        }
        panic!("no mapping holds {address:#x}")
    }

    #[test]
    fn buffers_hold_their_values() {
        let mut b = HugeBuffer::<u16>::zeroed(5);
        assert_eq!(&b[..], &[0; 5]);
        b[3] = 7;
        assert_eq!(&b[..], &[0, 0, 0, 7, 0]);
        assert_eq!(&HugeBuffer::filled(3, 1.5f32)[..], &[1.5; 3]);
        assert!(HugeBuffer::<u64>::zeroed(0).is_empty());
    }

    #[test]
    fn large_buffers_get_huge_pages_when_the_kernel_has_them() {
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !setting.contains("[madvise]") && !setting.contains("[always]") {
            eprintln!("transparent huge pages are off here ({setting:?}): nothing to check");
            return;
        }
        let bytes = 16 << 20;
        let asked = HugeBuffer::filled(bytes, 1u8);
        assert_eq!(asked.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(
            huge_kib_at(asked.as_ptr() as usize) >= 2048,
            "a {bytes}-byte buffer has no huge page"
        );
        if setting.contains("[madvise]") {
            // the control: a vector of the same size, not asked for, keeps 4 KiB pages
            let plain = vec![1u8; bytes];
            assert_eq!(huge_kib_at(plain.as_ptr() as usize), 0);
        }
    }
}
