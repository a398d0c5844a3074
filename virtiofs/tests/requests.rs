//! Requests as a guest sends them: bytes in a descriptor chain, decoded by
//! the FUSE server and answered by [`StoreFs`]. Whatever the bytes, the
//! daemon answers or refuses them; it never panics.

use std::path::PathBuf;
use std::sync::Arc;

use cairn_castore::backends::MemoryStore;
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{CaStore, ChunkerConfig, Name};
use cairn_fs::{CairnFs, FsOptions, MemoryRoots};
use cairn_virtiofs::StoreFs;
use cairn_virtiofs::filesystem::CacheTimeouts;
use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::{Reader, VirtioFsWriter};
use proptest::prelude::*;
use virtio_bindings::virtio_ring::VRING_DESC_F_WRITE;
use virtio_queue::desc::{RawDescriptor, split::Descriptor as SplitDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const PATH: &str = "0c7ysjvrmrcbdajk0bz4aa2qxc1jhq2j-tree";
const REQUEST_AT: u64 = 0x10_0000;
const REPLY_AT: u64 = 0x20_0000;
const REPLY_LEN: u32 = 0x10_0000;

struct Daemon {
    server: Server<Arc<StoreFs>>,
    _runtime: tokio::runtime::Runtime,
}

fn daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("d")).unwrap();
    std::fs::write(tree.join("d/f"), vec![7u8; 200_000]).unwrap();
    std::os::unix::fs::symlink("d/f", tree.join("l")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let memory = Arc::new(MemoryStore::new());
    let store = CaStore::new(memory.clone(), memory, ChunkerConfig::default());
    let nodes = runtime
        .block_on(import_paths(
            &store,
            &[PathBuf::from(&tree)],
            ImportOptions::default(),
        ))
        .unwrap();
    let roots = MemoryRoots::from_entries([(Name::try_from(PATH).unwrap(), nodes[0].clone())]);
    let core = {
        let _enter = runtime.enter();
        CairnFs::new(store, Arc::new(roots), FsOptions::default()).unwrap()
    };
    Daemon {
        server: Server::new(Arc::new(StoreFs::new(core, CacheTimeouts::default()))),
        _runtime: runtime,
    }
}

impl Daemon {
    /// Hands `request` to the server as one readable descriptor followed by
    /// a writable one; returns the reply bytes (or `None` when refused).
    fn send(&self, request: &[u8]) -> Option<Vec<u8>> {
        let mem: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap();
        mem.write_slice(request, GuestAddress(REQUEST_AT)).unwrap();
        let queue = MockSplitQueue::new(&mem, 16);
        let descriptors = [
            RawDescriptor::from(SplitDescriptor::new(REQUEST_AT, request.len() as u32, 0, 0)),
            RawDescriptor::from(SplitDescriptor::new(
                REPLY_AT,
                REPLY_LEN,
                VRING_DESC_F_WRITE as u16,
                0,
            )),
        ];
        let chain = queue.build_desc_chain(&descriptors).unwrap();
        let reader = Reader::from_descriptor_chain(&mem, chain.clone()).unwrap();
        let writer = VirtioFsWriter::new(&mem, chain).unwrap();
        let len = self
            .server
            .handle_message(reader, writer.into(), None, None)
            .ok()?;
        let mut reply = vec![0u8; len];
        mem.read_slice(&mut reply, GuestAddress(REPLY_AT)).unwrap();
        Some(reply)
    }
}

/// A FUSE request: the 40-byte in-header, then `body`.
fn request(opcode: u32, unique: u64, nodeid: u64, body: &[u8]) -> Vec<u8> {
    let len = 40 + body.len() as u32;
    let mut out = Vec::with_capacity(len as usize);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&opcode.to_le_bytes());
    out.extend_from_slice(&unique.to_le_bytes());
    out.extend_from_slice(&nodeid.to_le_bytes());
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(body);
    out
}

const FUSE_LOOKUP: u32 = 1;
const FUSE_INIT: u32 = 26;

fn init(daemon: &Daemon) {
    // major 7, minor 38, max_readahead 128 KiB, flags: none.
    let mut body = Vec::new();
    for v in [7u32, 38, 128 << 10, 0] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend_from_slice(&[0u8; 48]);
    let reply = daemon
        .send(&request(FUSE_INIT, 1, 0, &body))
        .expect("init answered");
    assert_eq!(
        i32::from_le_bytes(reply[4..8].try_into().unwrap()),
        0,
        "init succeeds"
    );
}

#[test]
fn a_lookup_through_the_queue_finds_the_store_path() {
    let daemon = daemon();
    init(&daemon);
    let mut name = PATH.as_bytes().to_vec();
    name.push(0);
    let reply = daemon.send(&request(FUSE_LOOKUP, 2, 1, &name)).unwrap();
    assert_eq!(
        u64::from_le_bytes(reply[8..16].try_into().unwrap()),
        2,
        "unique echoed"
    );
    assert_eq!(i32::from_le_bytes(reply[4..8].try_into().unwrap()), 0);
    let nodeid = u64::from_le_bytes(reply[16..24].try_into().unwrap());
    assert!(nodeid > 1);
    let reply = daemon
        .send(&request(FUSE_LOOKUP, 3, 1, b"absent\0"))
        .unwrap();
    assert_eq!(
        i32::from_le_bytes(reply[4..8].try_into().unwrap()),
        -libc::ENOENT
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let daemon = daemon();
        let _ = daemon.send(&bytes);
    }

    #[test]
    fn arbitrary_requests_after_init_never_panic(
        requests in proptest::collection::vec(
            (0u32..60, 0u64..8, proptest::collection::vec(any::<u8>(), 0..200)), 1..12)
    ) {
        let daemon = daemon();
        init(&daemon);
        for (i, (opcode, nodeid, body)) in requests.iter().enumerate() {
            if let Some(reply) = daemon.send(&request(*opcode, i as u64 + 10, *nodeid, body)) {
                // A reply is a whole FUSE out-header at least, echoing the request.
                if !reply.is_empty() {
                    prop_assert!(reply.len() >= 16);
                    prop_assert_eq!(u64::from_le_bytes(reply[8..16].try_into().unwrap()), i as u64 + 10);
                }
            }
        }
    }
}
