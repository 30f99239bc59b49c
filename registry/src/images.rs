//! Root images (`keel image build` output: IMAGE and IMAGE.json) under `/v1/images/NAME`, with
//! range requests (a broken download resumes). They hold no secrets (keel snapshots the OS
//! before any node configuration, without SSH host keys), so no token is asked for, as for the
//! iPXE boot files. Only regular files directly inside the folder are served, judged after
//! canonicalisation: no dotfile, no sub-folder, and no symlink that leads out of the folder.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use crate::api::Shared;
use crate::error::ApiError;

/// The file `name` names inside `dir`, or None when it must not be served.
pub fn resolve(dir: &FsPath, name: &str) -> Option<PathBuf> {
    let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']);
    if !plain {
        return None;
    }
    let dir = dir.canonicalize().ok()?;
    let real = dir.join(name).canonicalize().ok()?;
    let inside = real.parent() == Some(dir.as_path());
    let dotfile = real.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
    let regular = std::fs::metadata(&real).is_ok_and(|m| m.is_file());
    (inside && !dotfile && regular).then_some(real)
}

pub async fn serve(State(st): State<Shared>, Path(name): Path<String>, req: Request) -> Result<Response, ApiError> {
    let Some(dir) = &st.images_dir else {
        return Err(ApiError::not_found("this registry serves no images: start it with --images DIR"));
    };
    let file = resolve(dir, &name).ok_or_else(|| ApiError::not_found(format!("no image {name:?}")))?;
    match tower_http::services::ServeFile::new(file).oneshot(req).await {
        Ok(r) => Ok(r.map(axum::body::Body::new).into_response()),
        Err(e) => Err(ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("reading the image: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn only_regular_files_inside_the_folder() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("images");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("pve.zfs.zst"), b"image").unwrap();
        std::fs::write(dir.join(".hidden"), b"x").unwrap();
        std::fs::write(top.path().join("secret"), b"key").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink(top.path().join("secret"), dir.join("out")).unwrap();
        std::os::unix::fs::symlink(dir.join("pve.zfs.zst"), dir.join("alias")).unwrap();
        std::os::unix::fs::symlink(dir.join(".hidden"), dir.join("to-dot")).unwrap();
        assert_eq!(resolve(&dir, "pve.zfs.zst"), Some(dir.canonicalize().unwrap().join("pve.zfs.zst")));
        assert!(resolve(&dir, "alias").is_some(), "a link to a file of the folder is that file");
        for bad in [".hidden", "out", "to-dot", "sub", "sub/f", "../secret", "..", ".", "", "missing", "a\0b"] {
            assert_eq!(resolve(&dir, bad), None, "{bad:?}");
        }
    }
}
