//! Resident memory of the server process, read from `/proc/<pid>/status`.

use anyhow::{anyhow, Context, Result};

/// VmRSS of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vmrss(&status).ok_or_else(|| anyhow!("no VmRSS line in {path}"))
}

/// The VmRSS value (KiB) of a `/proc/<pid>/status` text.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value),
        Some("mB") => Some(value * 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vmrss_from_status_text() {
        let text = "Name:\tlua5.4\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n";
        assert_eq!(parse_vmrss(text), Some(12345));
        assert_eq!(parse_vmrss("Name: x\n"), None);
        assert_eq!(parse_vmrss("VmRSS: lots kB\n"), None);
    }

    #[test]
    fn reads_our_own_rss() {
        let kib = rss_kib(std::process::id()).unwrap();
        assert!(kib > 0);
        assert!(rss_kib(u32::MAX).is_err());
    }
}
