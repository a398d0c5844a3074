//! cairn-virtiofs: a vhost-user-fs daemon serving the fs core to microVMs.
