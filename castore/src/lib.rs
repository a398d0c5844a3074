//! cairn-castore: the content-addressed store — digests, nodes, directories,
//! chunking, and the chunk/blob/directory services with their backends.
