//! [`serve`]: listening on the vhost-user socket and serving VMMs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vhost::vhost_user::Listener;
use vhost_user_backend::VhostUserDaemon;
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

use crate::filesystem::{CacheTimeouts, StoreFs};
use crate::{VirtioFsBackend, VirtioFsError};

/// How the daemon serves.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Request queues offered (besides the high priority queue).
    pub request_queues: usize,
    /// Descriptors per queue at most.
    pub queue_size: u16,
    /// After a VMM disconnects, wait for the next one instead of returning.
    pub keep_serving: bool,
    /// How long the guest kernel may cache names and attributes.
    pub timeouts: CacheTimeouts,
    /// Whole-file copies of large files opened again (across restarts
    /// too), read straight into the guest's buffers.
    pub whole_files: Option<Arc<cairn_fs::WholeFiles>>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            request_queues: 1,
            queue_size: 1024,
            keep_serving: false,
            timeouts: CacheTimeouts::default(),
            whole_files: None,
        }
    }
}

impl DaemonOptions {
    fn check(&self) -> Result<(), VirtioFsError> {
        if !(1..=64).contains(&self.request_queues) {
            return Err(VirtioFsError::QueueCount(self.request_queues));
        }
        if !self.queue_size.is_power_of_two() || self.queue_size < 2 {
            return Err(VirtioFsError::QueueSize(self.queue_size));
        }
        Ok(())
    }
}

/// A bound vhost-user socket, ready for VMMs to connect (they may connect as
/// soon as this exists, before [`Listening::serve`] is called).
pub struct Listening {
    listener: Listener,
    path: PathBuf,
    options: DaemonOptions,
}

/// Binds the socket at `path` (replacing a stale one).
pub fn listen(path: &Path, options: DaemonOptions) -> Result<Listening, VirtioFsError> {
    options.check()?;
    let listener = Listener::new(path, true).map_err(|source| VirtioFsError::Listen {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Listening {
        listener,
        path: path.to_owned(),
        options,
    })
}

/// Serves the filesystem `make_fs` returns at `path`: see [`Listening::serve`].
pub fn serve(
    path: &Path,
    options: DaemonOptions,
    make_fs: impl FnMut() -> Result<Arc<cairn_fs::CairnFs>, VirtioFsError>,
) -> Result<(), VirtioFsError> {
    listen(path, options)?.serve(make_fs)
}

impl Listening {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves VMMs, one at a time, each with a fresh filesystem from
    /// `make_fs` (a guest's inode references die with its connection).
    /// Returns once a VMM disconnects, unless
    /// [`DaemonOptions::keep_serving`]. Blocks the calling thread.
    pub fn serve(
        mut self,
        mut make_fs: impl FnMut() -> Result<Arc<cairn_fs::CairnFs>, VirtioFsError>,
    ) -> Result<(), VirtioFsError> {
        loop {
            let fs = Arc::new(
                StoreFs::new(make_fs()?, self.options.timeouts)
                    .with_whole_files(self.options.whole_files.clone()),
            );
            let backend = Arc::new(VirtioFsBackend::new(
                fs,
                self.options.request_queues,
                self.options.queue_size,
            ));
            let mut daemon = VhostUserDaemon::new(
                "cairn-virtiofs".to_owned(),
                backend.clone(),
                GuestMemoryAtomic::new(GuestMemoryMmap::new()),
            )
            .map_err(|e| VirtioFsError::Device(e.to_string()))?;
            daemon
                .start(&mut self.listener)
                .map_err(|e| VirtioFsError::Serve(e.to_string()))?;
            tracing::info!(socket = %self.path.display(), "VMM connected");
            let result = daemon.wait();
            for handler in daemon.get_epoll_handlers() {
                handler.send_exit_event();
            }
            match result {
                Ok(()) => {}
                Err(vhost_user_backend::Error::HandleRequest(
                    vhost::vhost_user::Error::Disconnected
                    | vhost::vhost_user::Error::PartialMessage,
                )) => {}
                Err(e) => return Err(VirtioFsError::Serve(e.to_string())),
            }
            let stats = backend.fs().core().stats();
            tracing::info!(
                reads = stats.reads,
                read_bytes = stats.read_bytes,
                chunk_fetches = stats.chunk_fetches,
                "VMM disconnected"
            );
            if !self.options.keep_serving {
                return Ok(());
            }
        }
    }
}
