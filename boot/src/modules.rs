//! Kernel modules: `modules.dep` (as written by depmod), and the order in
//! which a set of modules and everything they depend on must be loaded.

use std::collections::HashMap;

use crate::BootError;

/// The modules virtio-fs needs over PCI (none is built into Debian's
/// kernel): the PCI transport and the filesystem; their dependencies
/// (virtio, virtio_ring, fuse, ...) follow from `modules.dep`.
pub const VIRTIO_FS_PCI: &[&str] = &["virtio_pci", "virtiofs"];

/// The same for `-M microvm` / MMIO transports.
pub const VIRTIO_FS_MMIO: &[&str] = &["virtio_mmio", "virtiofs"];

/// A parsed `modules.dep`: each module's path (relative to the modules
/// directory) and its dependencies.
#[derive(Debug, Default)]
pub struct ModulesDep {
    /// Canonical module name -> (path, dependency paths).
    modules: HashMap<String, (String, Vec<String>)>,
}

/// The name insmod and modprobe know a module by: the file name without
/// `.ko` (and compression suffix), `-` read as `_`.
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    stem.replace('-', "_")
}

impl ModulesDep {
    /// Parses the text of a `modules.dep`.
    pub fn parse(text: &str) -> Result<ModulesDep, BootError> {
        let mut modules = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((path, deps)) = line.split_once(':') else {
                return Err(BootError::ModulesDep {
                    line: i + 1,
                    reason: "no ':' after the module path".to_owned(),
                });
            };
            let path = path.trim();
            if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == "..") {
                return Err(BootError::ModulesDep {
                    line: i + 1,
                    reason: format!("bad module path {path:?}"),
                });
            }
            let deps: Vec<String> = deps.split_whitespace().map(str::to_owned).collect();
            if let Some(bad) = deps
                .iter()
                .find(|d| d.starts_with('/') || d.split('/').any(|c| c == ".."))
            {
                return Err(BootError::ModulesDep {
                    line: i + 1,
                    reason: format!("bad dependency path {bad:?}"),
                });
            }
            modules.insert(module_name(path), (path.to_owned(), deps));
        }
        Ok(ModulesDep { modules })
    }

    /// Paths of `roots` and all their dependencies, each once, every module
    /// after the modules it depends on.
    pub fn load_order(&self, roots: &[&str]) -> Result<Vec<String>, BootError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        let mut marks: HashMap<String, Mark> = HashMap::new();
        let mut order = Vec::new();
        // Iterative depth-first walk: (name, whether its dependencies are queued).
        for root in roots {
            let mut stack = vec![(module_name(root), false)];
            while let Some((name, expanded)) = stack.pop() {
                let (path, deps) = self
                    .modules
                    .get(&name)
                    .ok_or_else(|| BootError::UnknownModule(name.clone()))?;
                if expanded {
                    marks.insert(name, Mark::Done);
                    order.push(path.clone());
                    continue;
                }
                match marks.get(&name) {
                    Some(Mark::Done) => continue,
                    Some(Mark::Visiting) => return Err(BootError::ModuleCycle(name)),
                    None => {}
                }
                marks.insert(name.clone(), Mark::Visiting);
                stack.push((name, true));
                for dep in deps.iter().rev() {
                    let dep = module_name(dep);
                    match marks.get(&dep) {
                        Some(Mark::Done) => {}
                        Some(Mark::Visiting) => return Err(BootError::ModuleCycle(dep)),
                        None => stack.push((dep, false)),
                    }
                }
            }
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko kernel/fs/fuse/fuse.ko
kernel/fs/fuse/fuse.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
";

    #[test]
    fn dependencies_load_first_and_once() {
        let dep = ModulesDep::parse(DEP).unwrap();
        let order = dep.load_order(VIRTIO_FS_PCI).unwrap();
        let names: Vec<String> = order.iter().map(|p| module_name(p)).collect();
        assert_eq!(names.len(), 7, "{names:?}");
        let pos = |n: &str| names.iter().position(|m| m == n).unwrap();
        assert!(pos("virtio_ring") < pos("virtio"));
        assert!(pos("virtio") < pos("virtio_pci"));
        assert!(pos("virtio_pci_modern_dev") < pos("virtio_pci"));
        assert!(pos("fuse") < pos("virtiofs"));
        assert!(pos("virtio") < pos("virtiofs"));
    }

    #[test]
    fn unknown_modules_and_cycles_are_errors() {
        let dep = ModulesDep::parse(DEP).unwrap();
        assert!(matches!(
            dep.load_order(&["nope"]),
            Err(BootError::UnknownModule(_))
        ));
        let cyclic = ModulesDep::parse("a.ko: b.ko\nb.ko: a.ko\n").unwrap();
        assert!(matches!(
            cyclic.load_order(&["a"]),
            Err(BootError::ModuleCycle(_))
        ));
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(ModulesDep::parse("kernel/a.ko kernel/b.ko\n").is_err());
        assert!(ModulesDep::parse("/abs/a.ko:\n").is_err());
        assert!(ModulesDep::parse("a.ko: ../../etc/passwd\n").is_err());
    }

    #[test]
    fn names_ignore_dashes_and_compression() {
        assert_eq!(module_name("kernel/x/virtio-pci.ko.xz"), "virtio_pci");
        assert_eq!(module_name("fuse.ko"), "fuse");
    }

    proptest::proptest! {
        #[test]
        fn parsing_and_resolving_never_panic(text in "[a-c/.:\\n ]{0,200}", root in "[a-c]{1,3}") {
            if let Ok(dep) = ModulesDep::parse(&text) {
                let _ = dep.load_order(&[root.as_str()]);
            }
        }
    }
}
