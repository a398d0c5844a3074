//! Fuzzes what a guest can send: FUSE requests in a descriptor chain,
//! decoded by the server and answered by the store filesystem (an empty
//! store: the decoding and the answers to unknown inodes and handles are
//! what is exercised). Input: a FUSE_INIT is sent first, then the input is
//! cut into requests at each 40-byte header's length field.
#![no_main]

use std::sync::{Arc, OnceLock};

use cairn_castore::backends::MemoryStore;
use cairn_castore::{CaStore, ChunkerConfig};
use cairn_fs::{CairnFs, FsOptions, MemoryRoots};
use cairn_virtiofs::StoreFs;
use cairn_virtiofs::filesystem::CacheTimeouts;
use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::{Reader, VirtioFsWriter};
use libfuzzer_sys::fuzz_target;
use virtio_bindings::virtio_ring::VRING_DESC_F_WRITE;
use virtio_queue::desc::{RawDescriptor, split::Descriptor as SplitDescriptor};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

struct Fixture {
    server: Server<Arc<StoreFs>>,
    _runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let memory = Arc::new(MemoryStore::new());
        let store = CaStore::new(memory.clone(), memory, ChunkerConfig::default());
        let core = {
            let _enter = runtime.enter();
            CairnFs::new(store, Arc::new(MemoryRoots::new()), FsOptions::default()).expect("fs")
        };
        Fixture {
            server: Server::new(Arc::new(StoreFs::new(core, CacheTimeouts::default()))),
            _runtime: runtime,
        }
    })
}

fn send(server: &Server<Arc<StoreFs>>, request: &[u8]) {
    let mem: GuestMemoryMmap =
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x40_0000)]).expect("memory");
    let request = &request[..request.len().min(0x10_0000)];
    mem.write_slice(request, GuestAddress(0x10_0000)).expect("write");
    let queue = MockSplitQueue::new(&mem, 16);
    let descriptors = [
        RawDescriptor::from(SplitDescriptor::new(0x10_0000, request.len() as u32, 0, 0)),
        RawDescriptor::from(SplitDescriptor::new(
            0x20_0000,
            0x10_0000,
            VRING_DESC_F_WRITE as u16,
            0,
        )),
    ];
    let chain = queue.build_desc_chain(&descriptors).expect("chain");
    let reader = Reader::from_descriptor_chain(&mem, chain.clone()).expect("reader");
    let writer = VirtioFsWriter::new(&mem, chain).expect("writer");
    let _ = server.handle_message(reader, writer.into(), None, None);
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let mut init = Vec::new();
    for v in [80u32, 26] {
        init.extend_from_slice(&v.to_le_bytes());
    }
    init.extend_from_slice(&[0u8; 24]);
    for v in [7u32, 38, 128 << 10, 0] {
        init.extend_from_slice(&v.to_le_bytes());
    }
    init.extend_from_slice(&[0u8; 48]);
    send(&fixture.server, &init);
    let mut rest = data;
    while !rest.is_empty() {
        let len = rest
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        send(&fixture.server, &rest[..len]);
        rest = &rest[len..];
    }
});
