//! The service traits of the content-addressed store. Each has its own error
//! type; backends implement them (see [`crate::backends`]).

pub mod blob;
pub mod chunk;
pub mod directory;

/// A backend failure, carried inside each service's error: which store
/// instance failed and why.
#[derive(Debug, thiserror::Error)]
#[error("store {instance:?}: {source}")]
pub struct BackendError {
    pub instance: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl BackendError {
    pub fn new(
        instance: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BackendError {
            instance: instance.into(),
            source: source.into(),
        }
    }
}
