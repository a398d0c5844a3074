//! cairn-boot: boot images and VMM launchers with the store over virtio-fs.
