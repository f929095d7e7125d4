//! Every file the operator names (the configuration, the web configuration,
//! `password_file`, libpq's password file, certificates and keys) is read
//! here, and only here, so that no such name can wedge or exhaust the
//! exporter:
//!
//! - **Regular files only.** The path is followed through symlinks and
//!   must end at a regular file: a FIFO would block the reader until a
//!   writer appears (forever), `/dev/zero` would never end, a directory or
//!   socket means a mistake. The type is checked by `stat` before opening,
//!   and again on the opened descriptor (opened non-blocking, so a file
//!   swapped for a FIFO in between cannot block the open either).
//! - **A size bound per kind** ([`Kind::max_bytes`]), checked on the size
//!   the file claims and again while reading, so that a file growing under
//!   us is cut off too.
//! - **Permissions before content.** A file that must be private (libpq's
//!   password file) is refused on its mode before a byte is read.
//! - **A deadline.** The read runs on a thread of its own and the caller
//!   waits at most [`READ_DEADLINE`]: a stuck network mount or device costs
//!   the caller a few seconds and an error naming the file, never the
//!   supervisor, the watchdog or shutdown. A read that never returns keeps
//!   its thread (the kernel holds it); at most [`MAX_STUCK_READS`] such
//!   threads are allowed, after which reads are refused at once.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How long a caller waits for one file. Local files take microseconds;
/// this only ever expires on a stuck mount or device.
pub const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Reader threads that may be alive at once; beyond it reads are refused
/// rather than leaving more threads stuck in the kernel.
pub const MAX_STUCK_READS: usize = 16;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// What a file is for, which sets its size bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The TOML configuration or the web configuration (YAML).
    Config,
    /// `password_file`: one password (the configuration then refuses
    /// more than 1024 bytes of it).
    Password,
    /// libpq's password file: `passfile=`, `PGPASSFILE`, `~/.pgpass`.
    PassFile,
    /// PEM certificates, CA bundles and private keys.
    Pem,
}

impl Kind {
    /// The largest file of this kind that is read. Real ones are far
    /// smaller: a configuration is kilobytes, the Mozilla CA bundle about
    /// 220 kB.
    pub const fn max_bytes(self) -> u64 {
        match self {
            Kind::Config => 1 << 20,
            Kind::Password => 64 << 10,
            Kind::PassFile => 1 << 20,
            Kind::Pem => 4 << 20,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Config => "a configuration file",
            Kind::Password => "a password file",
            Kind::PassFile => "a libpq password file",
            Kind::Pem => "a certificate or key file",
        }
    }
}

/// Why a file was not read; the caller adds the key and the path.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// A FIFO, a device, a directory, a socket.
    NotRegular(&'static str),
    TooLarge {
        size: u64,
        kind: Kind,
    },
    /// Group or world may access a file that must be private.
    NotPrivate {
        mode: u32,
    },
    Timeout,
    /// Too many earlier reads are still stuck.
    Busy,
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => write!(f, "not a regular file ({what})"),
            ReadError::TooLarge { size, kind } => write!(
                f,
                "larger than the {} bytes {} may have ({size} bytes)",
                kind.max_bytes(),
                kind.noun()
            ),
            ReadError::NotPrivate { mode } => write!(
                f,
                "has group or world access (mode {:o}); permissions should be u=rw (0600) or less",
                mode & 0o777
            ),
            ReadError::Timeout => write!(
                f,
                "not read within {}s (a stuck mount or device?)",
                READ_DEADLINE.as_secs()
            ),
            ReadError::Busy => write!(
                f,
                "not read: {MAX_STUCK_READS} earlier file reads have not returned (a stuck mount?)"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// A file's content and the mode and owner of what was read.
#[derive(Clone, PartialEq, Eq)]
pub struct Contents {
    pub bytes: Vec<u8>,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

impl fmt::Debug for Contents {
    // Never the bytes: they may be a password or a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Contents({} bytes, mode {:o})",
            self.bytes.len(),
            self.mode
        )
    }
}

impl Contents {
    /// Others (not owner, not group) may read or write it.
    pub fn world_accessible(&self) -> bool {
        self.mode & 0o007 != 0
    }
}

/// Reads `path` as a file of `kind`, under the rules of the module doc.
pub fn read(path: &Path, kind: Kind) -> Result<Contents, ReadError> {
    with_deadline(READ_DEADLINE, path.to_path_buf(), move |p| {
        read_now(p, kind, false)
    })
}

/// As [`read`], and refused (before any byte is read) when group or world
/// have any access, as libpq requires of its password file.
pub fn read_private(path: &Path, kind: Kind) -> Result<Contents, ReadError> {
    with_deadline(READ_DEADLINE, path.to_path_buf(), move |p| {
        read_now(p, kind, true)
    })
}

/// Runs `work(path)` on a thread of its own and waits at most `deadline`.
fn with_deadline(
    deadline: Duration,
    path: PathBuf,
    work: impl FnOnce(&Path) -> Result<Contents, ReadError> + Send + 'static,
) -> Result<Contents, ReadError> {
    /// Counts the reader thread as alive until it returns, even by a panic.
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        }
    }
    if IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= MAX_STUCK_READS {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        return Err(ReadError::Busy);
    }
    let slot = Slot;
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("pgrepl-file-read".into())
        .spawn(move || {
            let _slot = slot;
            let _ = tx.send(work(&path));
        });
    if let Err(e) = spawned {
        // The closure, and the slot with it, was dropped.
        return Err(ReadError::Io(e));
    }
    match rx.recv_timeout(deadline) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ReadError::Timeout),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ReadError::Io(std::io::Error::other(
            "the reader thread failed",
        ))),
    }
}

fn file_type_name(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// Type, private mode and size of what `meta` describes.
fn check(meta: &std::fs::Metadata, kind: Kind, private: bool) -> Result<(), ReadError> {
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular(file_type_name(meta.file_type())));
    }
    if private && meta.mode() & 0o077 != 0 {
        return Err(ReadError::NotPrivate { mode: meta.mode() });
    }
    if meta.len() > kind.max_bytes() {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            kind,
        });
    }
    Ok(())
}

fn read_now(path: &Path, kind: Kind, private: bool) -> Result<Contents, ReadError> {
    // stat follows symlinks: a link to /dev/zero is a character device.
    check(
        &std::fs::metadata(path).map_err(ReadError::Io)?,
        kind,
        private,
    )?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::Io)?;
    // What was opened, not what the path pointed to a moment ago.
    let meta = file.metadata().map_err(ReadError::Io)?;
    check(&meta, kind, private)?;
    let max = kind.max_bytes();
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    let size = bytes.len() as u64;
    if size > max {
        return Err(ReadError::TooLarge { size, kind });
    }
    Ok(Contents {
        bytes,
        mode: meta.mode() & 0o7777,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn regular_files_within_the_bound_are_read() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))?;
        let c = read(&path, Kind::Password)?;
        assert_eq!(c.bytes, b"hello\n");
        assert_eq!(c.mode, 0o640);
        assert!(!c.world_accessible());
        assert!(!format!("{c:?}").contains("hello"));
        // Through a symlink too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link)?;
        assert_eq!(read(&link, Kind::Password)?.bytes, b"hello\n");
        Ok(())
    }

    #[test]
    fn anything_but_a_regular_file_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()?
            .success());
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero)?;
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (zero.as_path(), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let err = read(path, Kind::Pem).expect_err("refused");
            assert_eq!(err.to_string(), format!("not a regular file ({what})"));
        }
        assert!(read(&dir.path().join("missing"), Kind::Pem)
            .expect_err("missing")
            .is_not_found());
        Ok(())
    }

    #[test]
    fn size_bounds_per_kind() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; (Kind::Password.max_bytes() + 1) as usize])?;
        let err = read(&path, Kind::Password).expect_err("too large");
        assert!(
            err.to_string().starts_with("larger than the 65536 bytes"),
            "{err}"
        );
        assert_eq!(read(&path, Kind::Config)?.bytes.len(), 65537);
        Ok(())
    }

    #[test]
    fn a_private_file_is_checked_before_it_is_read() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("pgpass");
        // Too large as well: the mode is what is reported, nothing was read.
        std::fs::write(&path, vec![b'x'; (Kind::PassFile.max_bytes() + 1) as usize])?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640))?;
        let err = read_private(&path, Kind::PassFile).expect_err("not private");
        assert!(matches!(err, ReadError::NotPrivate { mode } if mode & 0o777 == 0o640));
        std::fs::write(&path, "*:*:*:*:x\n")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        assert_eq!(read_private(&path, Kind::PassFile)?.bytes, b"*:*:*:*:x\n");
        Ok(())
    }

    /// A read that never returns costs its caller the deadline, not more.
    #[test]
    fn a_stuck_read_times_out() {
        let started = std::time::Instant::now();
        let result = with_deadline(Duration::from_millis(200), PathBuf::from("/stuck"), |_| {
            std::thread::sleep(Duration::from_secs(2));
            Err(ReadError::Timeout)
        });
        assert!(matches!(result, Err(ReadError::Timeout)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
