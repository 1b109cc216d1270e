//! The open-file limit (`RLIMIT_NOFILE`): every connection is a file descriptor.

/// The soft open-file limit before and after [`raise_nofile_limit`], and the hard one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit found at start.
    pub before: u64,
    /// Soft limit now.
    pub after: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (many systems start
/// processes at a soft limit of 1,024, far below what a server needs and
/// far below the hard limit it may take). Call it once at start.
///
/// # Errors
/// When the limit cannot be read or set (or on a platform without it).
pub fn raise_nofile_limit() -> std::io::Result<NofileLimit> {
    imp::raise()
}

/// The current soft `RLIMIT_NOFILE` (`None` if unknown or unlimited).
pub fn nofile_limit() -> Option<u64> {
    imp::soft()
}

#[cfg(unix)]
mod imp {
    use super::NofileLimit;

    fn get() -> std::io::Result<libc::rlimit> {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(lim)
    }

    fn set(lim: &libc::rlimit) -> std::io::Result<()> {
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    pub(super) fn raise() -> std::io::Result<NofileLimit> {
        let lim = get()?;
        let (before, hard) = (lim.rlim_cur as u64, lim.rlim_max as u64);
        if lim.rlim_cur >= lim.rlim_max {
            return Ok(NofileLimit { before, after: before, hard });
        }
        let wanted = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        if let Err(e) = set(&wanted) {
            // macOS refuses a soft limit above OPEN_MAX (10,240) even when the hard one is unlimited
            let fallback = libc::rlimit { rlim_cur: lim.rlim_max.min(10_240), rlim_max: lim.rlim_max };
            if fallback.rlim_cur <= lim.rlim_cur || set(&fallback).is_err() {
                return Err(e);
            }
        }
        Ok(NofileLimit { before, after: get()?.rlim_cur as u64, hard })
    }

    #[allow(clippy::unnecessary_cast)]
    pub(super) fn soft() -> Option<u64> {
        let lim = get().ok()?;
        (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur as u64)
    }
}

#[cfg(not(unix))]
mod imp {
    use super::NofileLimit;

    pub(super) fn raise() -> std::io::Result<NofileLimit> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no RLIMIT_NOFILE on this platform"))
    }

    pub(super) fn soft() -> Option<u64> {
        None
    }
}
