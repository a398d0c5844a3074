//! cairn-builders: builds derivations into the store.
