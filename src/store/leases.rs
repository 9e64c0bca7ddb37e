//! Connections reused between store calls without a round trip of their own.
//!
//! sqlx's pool pings every connection it gets back (and, unless told otherwise, every one it
//! hands out): a round trip per store call on top of the statement, which on a small machine is
//! a third of the server's work for a sign-in. The verification path (read the user's devices
//! and counter, then one conditional write) instead leases connections from this small pool,
//! which keeps idle connections in a list and hands them out as they are.
//!
//! That is safe because a sqlx PostgreSQL connection settles itself before every statement: a
//! statement cancelled half-way (its future dropped) or a transaction dropped without a commit
//! leaves messages that the next statement first drains, or a `ROLLBACK` it first sends. What
//! it cannot survive is a broken socket or a protocol error, so only a lease whose statements
//! all succeeded goes back to the list: any other is closed, and the next lease opens a new
//! connection. (A connection that died while idle fails one call with [`StoreError::Backend`],
//! never a "rejected", and is then replaced.)

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::StoreError;

/// At most `max` connections, opened on first need and kept while they work.
pub(crate) struct Leases<C: Connection> {
    options: C::Options,
    idle: Mutex<Vec<C>>,
    permits: Semaphore,
}

impl<C: Connection> fmt::Debug for Leases<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leases")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the store was closed")]
struct Closed;

impl<C: Connection> Leases<C> {
    /// A pool of up to `max` (at least 1) connections made with `options`; none is opened yet.
    pub(crate) fn new(options: C::Options, max: usize) -> Self {
        Self {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max.max(1)),
        }
    }

    /// An idle connection, or a new one; waits while `max` are leased.
    pub(crate) async fn get(&self) -> Result<Lease<'_, C>, StoreError> {
        let permit = self.permits.acquire().await.map_err(|_| StoreError::backend(Closed))?;
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.options.connect().await.map_err(StoreError::backend)?,
        };
        Ok(Lease {
            leases: self,
            conn,
            _permit: permit,
        })
    }

    /// Refuses further leases and closes the idle connections.
    pub(crate) async fn close(&self) {
        self.permits.close();
        let idle: Vec<C> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

/// A leased connection. [`release`](Self::release) puts it back in the idle list; a lease
/// dropped instead (a statement failed and `?` returned, or the caller's future was cancelled)
/// closes it, so a connection that may be broken is never handed out again.
pub(crate) struct Lease<'a, C: Connection> {
    leases: &'a Leases<C>,
    conn: C,
    _permit: SemaphorePermit<'a>,
}

impl<C: Connection> Lease<'_, C> {
    /// The statements on this connection succeeded: keep it for the next lease.
    pub(crate) fn release(self) {
        self.leases
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.conn);
    }
}

impl<C: Connection> Deref for Lease<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C: Connection> DerefMut for Lease<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}
