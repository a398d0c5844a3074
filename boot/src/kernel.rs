//! Finding a kernel: its image (preferring the uncompressed `vmlinux`,
//! which boots seconds faster under software emulation) and its modules
//! directory, in an unpacked kernel package (`dpkg-deb -x`) or next to a
//! given image.

use std::path::{Path, PathBuf};

use crate::BootError;
use crate::modules::ModulesDep;

/// A kernel image and the modules built for it.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The image to boot (`vmlinux-*` or `vmlinuz-*`).
    pub image: PathBuf,
    /// `lib/modules/<version>`.
    pub modules_dir: PathBuf,
    pub version: String,
}

/// The version in an image file name (`vmlinuz-6.1.0-50-amd64` ->
/// `6.1.0-50-amd64`).
fn version_of(file_name: &str) -> Option<&str> {
    file_name
        .strip_prefix("vmlinux-")
        .or_else(|| file_name.strip_prefix("vmlinuz-"))
        .filter(|v| !v.is_empty())
}

impl Kernel {
    /// `path` is a directory (an unpacked package: `boot/` and
    /// `lib/modules/`, or a `boot/` directory itself; the newest version
    /// wins) or an image file whose modules are at
    /// `<dir>/../lib/modules/<version>`.
    pub fn locate(path: &Path) -> Result<Kernel, BootError> {
        let meta = std::fs::metadata(path).map_err(BootError::io(path))?;
        let (boot_dir, image) = if meta.is_dir() {
            let boot_dir = if path.join("boot").is_dir() {
                path.join("boot")
            } else {
                path.to_owned()
            };
            (boot_dir.clone(), Self::newest_image(&boot_dir)?)
        } else {
            let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
            (dir, path.to_owned())
        };
        let file_name = image
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| BootError::NoKernel(image.clone()))?;
        let version = version_of(file_name)
            .ok_or_else(|| BootError::NoKernel(image.clone()))?
            .to_owned();
        let root = boot_dir.parent().unwrap_or(Path::new("/"));
        let modules_dir = root.join("lib/modules").join(&version);
        if !modules_dir.is_dir() {
            return Err(BootError::NoModules {
                dir: modules_dir,
                version,
            });
        }
        Ok(Kernel {
            image,
            modules_dir,
            version,
        })
    }

    /// The newest image in `dir`, `vmlinux-*` preferred over `vmlinuz-*`
    /// of the same version.
    fn newest_image(dir: &Path) -> Result<PathBuf, BootError> {
        let mut best: Option<(String, bool, PathBuf)> = None;
        for entry in std::fs::read_dir(dir).map_err(BootError::io(dir))? {
            let entry = entry.map_err(BootError::io(dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(version) = version_of(name) else {
                continue;
            };
            let uncompressed = name.starts_with("vmlinux-");
            let candidate = (version.to_owned(), uncompressed, entry.path());
            if best
                .as_ref()
                .is_none_or(|b| (&candidate.0, candidate.1) > (&b.0, b.1))
            {
                best = Some(candidate);
            }
        }
        best.map(|(_, _, path)| path)
            .ok_or_else(|| BootError::NoKernel(dir.to_owned()))
    }

    /// The kernel's `modules.dep`.
    pub fn modules_dep(&self) -> Result<ModulesDep, BootError> {
        let path = self.modules_dir.join("modules.dep");
        if !path.exists() {
            return Err(BootError::NoModulesDep(self.modules_dir.clone()));
        }
        let text = std::fs::read_to_string(&path).map_err(BootError::io(&path))?;
        ModulesDep::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(dir: &Path, images: &[&str], version: &str) {
        std::fs::create_dir_all(dir.join("boot")).unwrap();
        std::fs::create_dir_all(dir.join("lib/modules").join(version)).unwrap();
        for image in images {
            std::fs::write(dir.join("boot").join(image), b"x").unwrap();
        }
    }

    #[test]
    fn a_package_directory_prefers_the_uncompressed_image() {
        let tmp = tempfile::tempdir().unwrap();
        package(
            tmp.path(),
            &[
                "vmlinuz-6.1.0-50-amd64",
                "vmlinux-6.1.0-50-amd64",
                "config-6.1.0-50-amd64",
            ],
            "6.1.0-50-amd64",
        );
        let kernel = Kernel::locate(tmp.path()).unwrap();
        assert!(kernel.image.ends_with("boot/vmlinux-6.1.0-50-amd64"));
        assert_eq!(kernel.version, "6.1.0-50-amd64");
        assert!(kernel.modules_dir.ends_with("lib/modules/6.1.0-50-amd64"));
    }

    #[test]
    fn an_image_file_finds_its_modules() {
        let tmp = tempfile::tempdir().unwrap();
        package(tmp.path(), &["vmlinuz-6.1.0-50-amd64"], "6.1.0-50-amd64");
        let image = tmp.path().join("boot/vmlinuz-6.1.0-50-amd64");
        let kernel = Kernel::locate(&image).unwrap();
        assert_eq!(kernel.image, image);
        assert!(matches!(
            kernel.modules_dep(),
            Err(BootError::NoModulesDep(_))
        ));
    }

    #[test]
    fn missing_pieces_are_clear_errors() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            Kernel::locate(tmp.path()),
            Err(BootError::NoKernel(_))
        ));
        std::fs::write(tmp.path().join("vmlinuz-1.0"), b"x").unwrap();
        assert!(matches!(
            Kernel::locate(tmp.path()),
            Err(BootError::NoModules { .. })
        ));
        assert!(Kernel::locate(&tmp.path().join("absent")).is_err());
    }
}
