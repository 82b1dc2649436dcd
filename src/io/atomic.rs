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
    Ok(())
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
