//! Combinators: stores built from other stores.
//!
//! - [`CacheStore`]: a near store in front of a far one; what is read from
//!   far is written to near, writes go to both.
//! - [`PriorityStore`]: a list of stores asked in order; the first that has
//!   the object answers; writes go to the first.
//! - [`RaceStore`]: a list of stores asked at once; the first to answer
//!   with the object wins; writes go to all.
//! - [`NegativeCache`]: remembers for a short while what a store did not
//!   have, so repeated lookups of missing objects do not reach it.
//!
//! Each is generic over the service it combines: the castore services are
//! implemented here for `dyn BlobService` (chunks and chunk maps) and
//! `dyn DirectoryService` members; cairn-pathinfo implements
//! `PathInfoService` for the same combinators over `dyn PathInfoService`.
//! Every combinator has an instance name, recorded in its tracing spans and
//! in the errors of its members.

pub mod cache;
pub mod negative;
pub mod priority;
pub mod race;

pub use cache::CacheStore;
pub use negative::{MissKind, NegativeCache};
pub use priority::PriorityStore;
pub use race::RaceStore;

use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

/// Asks every member at once and returns the first `Some`; `None` when all
/// answered `None`; otherwise (no `Some`, at least one error) the first error.
pub async fn race_first<T, E, F>(asks: impl IntoIterator<Item = F>) -> Result<Option<T>, E>
where
    F: Future<Output = Result<Option<T>, E>>,
{
    let mut pending: FuturesUnordered<F> = asks.into_iter().collect();
    let mut first_error = None;
    while let Some(answer) = pending.next().await {
        match answer {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Asks members in order and returns the first `Some`; errors of members
/// are passed over while a later member may still have the object; if none
/// has it and one failed, the first error.
pub async fn first_in_order<'a, M: 'a + ?Sized, T, E, F, Fut>(
    members: impl IntoIterator<Item = &'a M>,
    mut ask: F,
) -> Result<Option<T>, E>
where
    F: FnMut(&'a M) -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
    E: std::fmt::Display,
{
    let mut first_error = None;
    for member in members {
        match ask(member).await {
            Ok(Some(found)) => return Ok(Some(found)),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "member failed, trying the next");
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Merges the digest lists of several members (sorted, each once).
pub fn union<T: Ord>(lists: Vec<Vec<T>>) -> Vec<T> {
    let mut all: Vec<T> = lists.into_iter().flatten().collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests;
