//! Corruption and refusals: typed errors, never wrong bytes.

use bytes::Bytes;
use cairn_castore::backends::{LocalStore, MemoryStore};
use cairn_castore::import::{ImportOptions, import_paths};
use cairn_castore::{
    BlobReader, BlobService, CaStore, ChunkError, ChunkService, ChunkerConfig, Digest, Directory,
    DirectoryService, DirectoryServiceError, Name, Node,
};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn corrupted_chunk_on_disk_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalStore::open(tmp.path()).unwrap());
    let data = Bytes::from(vec![7u8; 100_000]);
    let digest = Digest::of(&data);
    ChunkService::put(local.as_ref(), digest, data.clone())
        .await
        .unwrap();
    assert_eq!(
        ChunkService::get(local.as_ref(), &digest)
            .await
            .unwrap()
            .unwrap(),
        data
    );
    assert!(local.corrupt_chunk_on_disk(&digest).unwrap());
    // Reopen so nothing cached hides the corruption.
    drop(local);
    let local = LocalStore::open(tmp.path()).unwrap();
    match ChunkService::get(&local, &digest).await {
        Err(ChunkError::Corrupt { digest: d, .. }) => assert_eq!(d, digest),
        Err(ChunkError::Backend(e)) => {
            // Compressed chunks may fail to decompress instead: still an error, never bytes.
            assert!(e.to_string().contains(&digest.to_string()), "{e}");
        }
        Ok(_) => panic!("expected an error, got bytes"),
    }
}

#[tokio::test]
async fn corrupted_incompressible_chunk_fails_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let local = LocalStore::open(tmp.path()).unwrap();
    let data: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let data = Bytes::from(data);
    let digest = Digest::of(&data);
    ChunkService::put(&local, digest, data).await.unwrap();
    local.corrupt_chunk_on_disk(&digest).unwrap();
    assert!(matches!(
        ChunkService::get(&local, &digest).await,
        Err(ChunkError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn memory_backend_verifies_too_and_reader_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), b"some content").unwrap();
    let memory = Arc::new(MemoryStore::new());
    let store = CaStore::new(memory.clone(), memory.clone(), ChunkerConfig::default());
    let nodes = import_paths(&store, &[tmp.path().join("f")], ImportOptions::default())
        .await
        .unwrap();
    let digest = *nodes[0].digest().unwrap();
    memory.corrupt_chunk(&digest, Bytes::from_static(b"other content"));
    assert!(matches!(
        ChunkService::get(memory.as_ref(), &digest).await,
        Err(ChunkError::Corrupt { .. })
    ));
    let mut reader = BlobReader::open(memory.clone() as Arc<dyn BlobService>, digest)
        .await
        .unwrap();
    let mut out = Vec::new();
    assert!(reader.read_to_end(&mut out).await.is_err());
    assert!(out.is_empty());
}

#[tokio::test]
async fn directory_put_refuses_unknown_children_and_wrong_sizes() {
    let store = MemoryStore::new();
    let child = Directory::new();
    let parent =
        Directory::from_entries(vec![(Name::try_from("c").unwrap(), child.node())]).unwrap();
    assert!(matches!(
        DirectoryService::put(&store, &parent).await,
        Err(DirectoryServiceError::MissingChild { .. })
    ));
    DirectoryService::put(&store, &child).await.unwrap();
    DirectoryService::put(&store, &parent).await.unwrap();
    let lying = Directory::from_entries(vec![(
        Name::try_from("c").unwrap(),
        Node::Directory {
            digest: child.digest(),
            size: 5,
        },
    )])
    .unwrap();
    assert!(matches!(
        DirectoryService::put(&store, &lying).await,
        Err(DirectoryServiceError::ChildSize { .. })
    ));
    let closure = store.closure(&parent.digest()).await.unwrap();
    assert_eq!(closure.len(), 2);
    assert_eq!(closure[0].0, parent.digest());
}

#[tokio::test]
async fn local_store_is_shared_by_two_handles() {
    let tmp = tempfile::tempdir().unwrap();
    let a = LocalStore::open(tmp.path()).unwrap();
    let b = LocalStore::open(tmp.path()).unwrap();
    let data = Bytes::from_static(b"shared");
    let digest = Digest::of(&data);
    ChunkService::put(&a, digest, data.clone()).await.unwrap();
    // A chunk's entry reaches the index with the putter's next commit: a
    // flush, a chunk map, a directory, 16 384 entries, a second later, or
    // the store's drop (tests/local_index.rs).
    ChunkService::flush(&a).await.unwrap();
    assert_eq!(ChunkService::get(&b, &digest).await.unwrap().unwrap(), data);
    let d = Directory::new();
    DirectoryService::put(&b, &d).await.unwrap();
    assert!(a.size_of(&d.digest()).await.unwrap().is_some());
}

/// A directory holding one symlink, named `name`.
fn symlink_dir(name: &str) -> Directory {
    Directory::from_entries(vec![(
        Name::try_from(name).unwrap(),
        Node::Symlink {
            target: cairn_castore::SymlinkTarget::new(Bytes::from_static(b"t")).unwrap(),
        },
    )])
    .unwrap()
}

#[tokio::test]
async fn directory_put_all_checks_children_like_put() {
    let tmp = tempfile::tempdir().unwrap();
    let local = LocalStore::open(tmp.path()).unwrap();
    let memory = MemoryStore::new();
    let stores: [&dyn DirectoryService; 2] = [&local, &memory];
    let (a, b) = (symlink_dir("a"), symlink_dir("b"));
    let parent = Directory::from_entries(vec![
        (Name::try_from("a").unwrap(), a.node()),
        (Name::try_from("b").unwrap(), b.node()),
    ])
    .unwrap();
    let lying = Directory::from_entries(vec![(
        Name::try_from("a").unwrap(),
        Node::Directory {
            digest: a.digest(),
            size: 9,
        },
    )])
    .unwrap();
    for store in stores {
        // The parent before its children: refused, nothing stored.
        assert!(matches!(
            store.put_all(std::slice::from_ref(&parent)).await,
            Err(DirectoryServiceError::MissingChild { .. })
        ));
        assert!(store.get(&parent.digest()).await.unwrap().is_none());
        let digests = store.put_all(&[a.clone(), b.clone()]).await.unwrap();
        assert_eq!(digests, vec![a.digest(), b.digest()]);
        assert!(matches!(
            store.put_all(std::slice::from_ref(&lying)).await,
            Err(DirectoryServiceError::ChildSize { .. })
        ));
        store.put_all(std::slice::from_ref(&parent)).await.unwrap();
        let closure = store.closure(&parent.digest()).await.unwrap();
        assert_eq!(closure.len(), 3);
        assert_eq!(closure[0].0, parent.digest());
    }
}

#[tokio::test]
async fn directory_put_tree_takes_children_from_earlier_in_the_slice() {
    let tmp = tempfile::tempdir().unwrap();
    let local = LocalStore::open(tmp.path()).unwrap();
    let memory = MemoryStore::new();
    let stores: [&dyn DirectoryService; 2] = [&local, &memory];
    let leaf = symlink_dir("l");
    let middle =
        Directory::from_entries(vec![(Name::try_from("leaf").unwrap(), leaf.node())]).unwrap();
    let top =
        Directory::from_entries(vec![(Name::try_from("middle").unwrap(), middle.node())]).unwrap();
    let lying_top = Directory::from_entries(vec![(
        Name::try_from("middle").unwrap(),
        Node::Directory {
            digest: middle.digest(),
            size: middle.size() + 1,
        },
    )])
    .unwrap();
    for (i, store) in stores.into_iter().enumerate() {
        // The local store commits a tree in one transaction: a refused one
        // leaves nothing behind. The default may have stored some runs.
        let atomic = i == 0;
        // Parents before children: refused.
        assert!(matches!(
            store
                .put_tree(&[top.clone(), middle.clone(), leaf.clone()])
                .await,
            Err(DirectoryServiceError::MissingChild { .. })
        ));
        if atomic {
            assert!(store.get(&leaf.digest()).await.unwrap().is_none());
        }
        // A wrong size claimed for a child given in the same slice.
        assert!(matches!(
            store
                .put_tree(&[leaf.clone(), middle.clone(), lying_top.clone()])
                .await,
            Err(DirectoryServiceError::ChildSize { .. })
        ));
        if atomic {
            assert!(store.get(&middle.digest()).await.unwrap().is_none());
        }
        assert!(store.get(&lying_top.digest()).await.unwrap().is_none());
        // Bottom-up: all three in one call.
        let digests = store
            .put_tree(&[leaf.clone(), middle.clone(), top.clone()])
            .await
            .unwrap();
        assert_eq!(digests, vec![leaf.digest(), middle.digest(), top.digest()]);
        assert_eq!(store.closure(&top.digest()).await.unwrap().len(), 3);
    }
}
