//! This process's peak resident set, as the kernel keeps it for its own address space.

/// `VmHWM` of `/proc/self/status`, in MiB (0 where it cannot be read). It counts only this
/// process since its `exec`; a parent's `wait4` `ru_maxrss` would not do for a child, since
/// Linux carries the parent's high-water mark over into the child at `exec` (`exec_mmap`).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}
