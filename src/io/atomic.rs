//! Atomic file replacement: a reader (or a crash) sees either the old file or the complete new
//! one, never a half-written checkpoint, image or log.

use super::io_error;
use crate::error::Result;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `path` atomically: `write` streams the contents into a temporary file in the same
/// directory (named `.{file name}.{random}.tmp`, so a leftover from a killed process is easy to
/// spot and never matches the real name), which is flushed and fsynced, then renamed over `path`;
/// finally the directory is fsynced so the rename itself survives a power cut.
///
/// If `write` returns an error, or any step fails, the temporary file is removed and whatever was
/// at `path` before is untouched. The same directory is used because a rename is only atomic
/// within one file system.
///
/// The new file gets the permissions a plain `File::create` would give (0666 less the umask).
/// After a successful write, temporary files of earlier writes to `path` that a killed process
/// left behind (same prefix, untouched for [`STALE_TEMP`]) are removed; younger ones may belong
/// to a writer still at work and stay.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io_error(path, "writing", "the path names no file"))?;
    let prefix = format!(".{}.", name.to_string_lossy());

    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let temp = builder
        .tempfile_in(&dir)
        .map_err(|e| io_error(path, "creating a temporary file", e))?;

    // From here on, an early return drops `temp`, which deletes the temporary file.
    {
        let mut out = BufWriter::new(temp.as_file());
        write(&mut out)?;
        out.flush().map_err(|e| io_error(path, "writing", e))?;
    }
    temp.as_file()
        .sync_all()
        .map_err(|e| io_error(path, "syncing", e))?;
    temp.persist(path)
        .map_err(|e| io_error(path, "renaming the temporary file into place", e.error))?;
    sync_dir(&dir);
    remove_stale_temps(&dir, &prefix);
    Ok(())
}

/// How long a temporary file must have been left untouched before a later write to the same
/// path takes it for a killed process's leftover.
pub const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(60);

/// Best effort: removes `dir`'s `{prefix}*.tmp` files not modified for [`STALE_TEMP`].
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(prefix) && name.ends_with(".tmp")) {
            continue;
        }
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMP);
        if stale {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The directory holding `path` ("." for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename in `dir` durable. Best effort: some platforms (Windows) cannot open a
/// directory as a file, and the rename has already happened, so errors are ignored.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn a_later_write_removes_stale_leftovers_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let old = dir.path().join(".model.safetensors.abc123.tmp");
        let young = dir.path().join(".model.safetensors.def456.tmp");
        let other = dir.path().join(".other.safetensors.abc123.tmp");
        for f in [&old, &young, &other] {
            fs::write(f, b"partial").unwrap();
        }
        let long_ago = std::time::SystemTime::now() - 2 * STALE_TEMP;
        for f in [&old, &other] {
            fs::File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        write_atomic(&path, |w| {
            w.write_all(b"new").map_err(|e| io_error(&path, "w", e))
        })
        .unwrap();
        assert!(!old.exists(), "a stale leftover of this file stays");
        assert!(
            young.exists(),
            "a young temporary file (maybe a live writer's) was removed"
        );
        assert!(other.exists(), "another file's leftover was removed");
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        fs::write(&path, b"old contents").unwrap();
        write_atomic(&path, |w| {
            w.write_all(b"new")
                .map_err(|e| io_error(&path, "writing", e))
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(dir.path()), ["a.bin"]);
    }

    #[test]
    fn creates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.txt");
        write_atomic(&path, |w| {
            w.write_all(b"hello")
                .map_err(|e| io_error(&path, "writing", e))
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
    }

    #[test]
    fn failure_midway_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        let old: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        fs::write(&path, &old).unwrap();
        // More than BufWriter's buffer, so some bytes really reach the temporary file.
        let new = vec![7u8; 100_000];
        let err = write_atomic(&path, |w| {
            w.write_all(&new[..new.len() / 2])
                .map_err(|e| io_error(&path, "writing", e))?;
            Err(Error::invalid("test", "simulated failure halfway"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("simulated failure"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), old);
        assert_eq!(entries(dir.path()), ["ckpt.safetensors"]);
    }

    #[test]
    fn missing_directory_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/x.png");
        let err = write_atomic(&path, |_| Ok(())).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("x.png"), "{err}");
    }

    #[test]
    fn bare_file_name_uses_the_current_directory() {
        assert_eq!(parent_dir(Path::new("x.png")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/x.png")), PathBuf::from("a"));
    }
}
