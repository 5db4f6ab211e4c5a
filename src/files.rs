//! Files written whole or not at all.

use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: to a temporary file in the same
/// directory (`.<name>.tmp-<pid>`), flushed to disk (`fsync`), then renamed
/// over `path` and the directory synced, so `path` holds the old file or the
/// whole new one, never a torn write — whatever stops the process. A
/// process stopped mid-write leaves only its temporary file, which the next
/// write by the same process id replaces; nothing reads such files.
///
/// # Errors
/// [`Error::File`] naming `path` if it cannot be written.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path.as_ref(), bytes, |_| {})
}

/// [`write_atomic`], calling `halfway` with `path` once half of the bytes
/// are in the temporary file (a sweep's hook: a process stopped there
/// leaves `path` as it was).
pub(crate) fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    halfway: impl FnOnce(&Path),
) -> Result<()> {
    use std::io::Write;
    let err = |e: std::io::Error| Error::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let name = path.file_name().ok_or_else(|| Error::File {
        path: path.display().to_string(),
        message: "not a file name".into(),
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        let (first, rest) = bytes.split_at(bytes.len() / 2);
        f.write_all(first)?;
        f.flush()?;
        halfway(path);
        f.write_all(rest)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}
