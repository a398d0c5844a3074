//! Shared by the integration tests: a generated tree of store paths,
//! imported into a castore, optionally mounted.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_castore::backends::MemoryStore;
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{BlobService, CaStore, ChunkerConfig, Name, Node};
use cairn_fs::slow::{SlowBlobs, SlowControl};
use cairn_fs::{CairnFs, FsOptions, MemoryRoots, MountHandle, MountOptions};
use rand::{Rng, RngCore, SeedableRng};
use tempfile::TempDir;
use tokio::runtime::Runtime;

pub const HELLO: &str = "0c7ysjvrmrcbdajk0bz4aa2qxc1jhq2j-hello-2.12";
pub const SINGLE: &str = "1d2ysjvrmrcbdajk0bz4aa2qxc1jhq2j-single-file";
pub const LINK: &str = "2f3ysjvrmrcbdajk0bz4aa2qxc1jhq2j-link";

/// Can this process mount FUSE filesystems (root and /dev/fuse)?
pub fn can_mount() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ok = root && Path::new("/dev/fuse").exists();
    if !ok {
        eprintln!("skipping: needs root and /dev/fuse");
    }
    ok
}

pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; len];
    rng.fill_bytes(&mut buf);
    buf
}

fn write(path: &Path, data: &[u8], executable: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, data).expect("write");
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Generates the store paths under `root`; returns their paths.
pub fn generate_tree(root: &Path) -> Vec<PathBuf> {
    let hello = root.join(HELLO);
    write(&hello.join("bin/hello"), &random_bytes(1, 300 << 10), true);
    write(
        &hello.join("lib/libbig.so"),
        &random_bytes(2, 5 << 20),
        false,
    );
    write(
        &hello.join("lib/libmid.so"),
        &random_bytes(3, 1 << 20),
        true,
    );
    write(
        &hello.join("share/doc/README"),
        "hello, world\n".repeat(100).as_bytes(),
        false,
    );
    write(&hello.join("empty"), b"", false);
    write(&hello.join("nested/a/b/c/deep.txt"), b"deep\n", false);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for i in 0..300 {
        let len = rng.random_range(0..5000);
        write(
            &hello.join(format!("many/f{i:03}")),
            &random_bytes(100 + i, len),
            i % 7 == 0,
        );
    }
    std::fs::create_dir_all(hello.join("emptydir")).expect("mkdir");
    std::os::unix::fs::symlink("bin/hello", hello.join("link")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent/target", hello.join("dangling")).expect("symlink");
    let single = root.join(SINGLE);
    write(&single, &random_bytes(4, 200 << 10), false);
    let link = root.join(LINK);
    std::os::unix::fs::symlink(HELLO, &link).expect("symlink");
    vec![hello, single, link]
}

/// A generated tree imported into a memory castore.
pub struct Imported {
    pub src: TempDir,
    pub memory: Arc<MemoryStore>,
    pub store: CaStore,
    pub control: Arc<SlowControl>,
    pub roots: Arc<MemoryRoots>,
    pub nodes: Vec<(Name, Node)>,
}

/// Imports the generated tree; the store's blobs go through a [`SlowBlobs`]
/// (no delay unless set through `control`).
pub fn import(rt: &Runtime) -> Imported {
    let src = tempfile::tempdir().expect("tempdir");
    let paths = generate_tree(src.path());
    let memory = Arc::new(MemoryStore::new());
    let plain = CaStore::new(memory.clone(), memory.clone(), ChunkerConfig::default());
    let nodes = rt
        .block_on(import_paths(&plain, &paths, ImportOptions::default()))
        .expect("import");
    let slow = SlowBlobs::new(memory.clone());
    let control = slow.control();
    let blobs: Arc<dyn BlobService> = Arc::new(slow);
    let store = CaStore::new(blobs, memory.clone(), ChunkerConfig::default());
    let nodes: Vec<(Name, Node)> = paths
        .iter()
        .zip(nodes)
        .map(|(p, n)| {
            let name = p.file_name().expect("name").to_str().expect("utf-8");
            (Name::try_from(name).expect("name"), n)
        })
        .collect();
    let roots = Arc::new(MemoryRoots::from_entries(nodes.clone()));
    Imported {
        src,
        memory,
        store,
        control,
        roots,
        nodes,
    }
}

pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A mounted generated tree. Dropping it unmounts.
pub struct Mounted {
    pub handle: Option<MountHandle>,
    pub fs: Arc<CairnFs>,
    pub imported: Imported,
    pub mountpoint: TempDir,
    pub rt: Runtime,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    pub fn src(&self) -> &Path {
        self.imported.src.path()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.unmount().expect("unmount");
        }
    }
}

pub fn mount_with(options: FsOptions) -> Mounted {
    mount_with_options(options, MountOptions::default())
}

pub fn mount_with_options(options: FsOptions, mount_options: MountOptions) -> Mounted {
    let rt = runtime();
    let imported = import(&rt);
    let fs = {
        let _guard = rt.enter();
        CairnFs::new(imported.store.clone(), imported.roots.clone(), options).expect("fs")
    };
    let mountpoint = tempfile::tempdir().expect("tempdir");
    let handle = cairn_fs::mount(fs.clone(), mountpoint.path(), &mount_options).expect("mount");
    Mounted {
        handle: Some(handle),
        fs,
        imported,
        mountpoint,
        rt,
    }
}
