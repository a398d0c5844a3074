//! [`VirtioFsBackend`]: the vhost-user-fs device. Queue 0 is the high
//! priority queue (FORGET and interrupts), the rest are request queues; each
//! queue has its own thread, which pops descriptor chains, lets the FUSE
//! server answer them and returns them to the guest.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::transport::{Reader, VirtioFsWriter};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_queue::QueueT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    EventConsumer, EventFlag, EventNotifier, new_event_consumer_and_notifier,
};

use crate::filesystem::StoreFs;

/// Guest memory as the VMM shared it.
type GuestMemory = GuestMemoryAtomic<GuestMemoryMmap>;

/// The vhost-user-fs device serving one [`StoreFs`].
pub struct VirtioFsBackend {
    server: Server<Arc<StoreFs>>,
    fs: Arc<StoreFs>,
    memory: RwLock<Option<GuestMemory>>,
    event_idx: AtomicBool,
    request_queues: usize,
    queue_size: u16,
}

impl VirtioFsBackend {
    /// A device with one high priority queue and `request_queues` request
    /// queues of up to `queue_size` descriptors each.
    pub fn new(fs: Arc<StoreFs>, request_queues: usize, queue_size: u16) -> VirtioFsBackend {
        VirtioFsBackend {
            server: Server::new(fs.clone()),
            fs,
            memory: RwLock::new(None),
            event_idx: AtomicBool::new(false),
            request_queues,
            queue_size,
        }
    }

    /// The filesystem served.
    pub fn fs(&self) -> &Arc<StoreFs> {
        &self.fs
    }

    fn memory(&self) -> Option<GuestMemory> {
        self.memory
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Answers every request waiting in `vring`, then notifies the guest.
    fn process_queue(&self, queue: u16, vring: &VringRwLock) -> io::Result<()> {
        let Some(memory) = self.memory() else {
            return Err(io::Error::other(
                "a queue was kicked before the memory table was set",
            ));
        };
        let guard = memory.memory();
        let queue_error =
            |what: &str, e: virtio_queue::Error| io::Error::other(format!("{what}: {e}"));
        let event_idx = self.event_idx.load(Ordering::Relaxed);
        loop {
            // With EVENT_IDX the guest does not kick while we drain; the
            // queue is checked again after notifications are back on.
            if event_idx {
                vring
                    .disable_notification()
                    .map_err(|e| queue_error("disabling notifications", e))?;
            }
            loop {
                let chain = vring
                    .get_mut()
                    .get_queue_mut()
                    .pop_descriptor_chain(guard.clone());
                let Some(chain) = chain else { break };
                let head = chain.head_index();
                let len = match self.answer(&guard, chain) {
                    Ok(len) => len,
                    Err(e) => {
                        tracing::warn!(queue, error = %e, "malformed virtio-fs request");
                        0
                    }
                };
                vring
                    .add_used(head, u32::try_from(len).unwrap_or(u32::MAX))
                    .map_err(|e| queue_error("returning a descriptor", e))?;
                if !event_idx
                    || vring
                        .needs_notification()
                        .map_err(|e| queue_error("checking notifications", e))?
                {
                    vring.signal_used_queue()?;
                }
            }
            if !event_idx
                || !vring
                    .enable_notification()
                    .map_err(|e| queue_error("enabling notifications", e))?
            {
                return Ok(());
            }
        }
    }

    fn answer(
        &self,
        guard: &vm_memory::GuestMemoryLoadGuard<GuestMemoryMmap>,
        chain: virtio_queue::DescriptorChain<vm_memory::GuestMemoryLoadGuard<GuestMemoryMmap>>,
    ) -> Result<usize, String> {
        let reader =
            Reader::from_descriptor_chain(&**guard, chain.clone()).map_err(|e| e.to_string())?;
        let writer = VirtioFsWriter::new(&**guard, chain).map_err(|e| e.to_string())?;
        self.server
            .handle_message(reader, writer.into(), None, None)
            .map_err(|e| e.to_string())
    }
}

impl VhostUserBackend for VirtioFsBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        self.request_queues + 1
    }

    fn max_queue_size(&self) -> usize {
        usize::from(self.queue_size)
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_INDIRECT_DESC)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK
    }

    fn set_event_idx(&self, enabled: bool) {
        self.event_idx.store(enabled, Ordering::Relaxed);
    }

    fn update_memory(&self, memory: GuestMemory) -> io::Result<()> {
        *self.memory.write().unwrap_or_else(|p| p.into_inner()) = Some(memory);
        Ok(())
    }

    /// One thread per queue.
    fn queues_per_thread(&self) -> Vec<u64> {
        (0..self.num_queues()).map(|q| 1u64 << q).collect()
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        match new_event_consumer_and_notifier(EventFlag::NONBLOCK) {
            Ok(pair) => Some(pair),
            Err(e) => {
                tracing::error!(error = %e, "creating a queue thread's exit event");
                None
            }
        }
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN {
            return Err(io::Error::other(format!(
                "unexpected queue event {evset:?}"
            )));
        }
        let vring = vrings
            .get(usize::from(device_event))
            .ok_or_else(|| io::Error::other(format!("event for unknown queue {device_event}")))?;
        let span = tracing::trace_span!("virtiofs_queue", queue = device_event);
        let _enter = span.enter();
        self.process_queue(device_event, vring)
    }
}
