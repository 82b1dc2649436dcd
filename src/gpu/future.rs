//! Waiting without blocking. wgpu reports everything that finishes later — a buffer mapped for
//! reading, submitted work done, an error scope popped — through callbacks or futures; here
//! each becomes a [`DeviceFuture`] that the `*_async` methods await. Nothing in this module
//! blocks except `block_on`, the native-only wrapper that the blocking methods are made of,
//! and it gives up after [`crate::Options::wait_timeout`].
//!
//! Who drives the device: in a browser, its event loop (callbacks fire on their own). On native
//! wgpu, callbacks fire inside `Device::poll`; polling a [`DeviceFuture`] does a non-blocking
//! `poll` itself, so a host that polls our futures (or calls `Device::poll` from its frame loop)
//! makes progress without ever waiting, and `block_on` waits in `Device::poll` with a timeout.

use crate::error::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// A value that a wgpu callback delivers later. Resolves when the callback has fired.
pub struct DeviceFuture<T> {
    device: wgpu::Device,
    slot: Arc<Mutex<Slot<T>>>,
}

/// The sending half of a [`DeviceFuture`]: call it from the wgpu callback.
pub(crate) struct Deliver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Deliver<T> {
    pub fn send(self, value: T) {
        let waker = {
            let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A future for a callback on `device`, and the handle the callback delivers through.
pub(crate) fn callback<T>(device: &wgpu::Device) -> (DeviceFuture<T>, Deliver<T>) {
    let slot = Arc::new(Mutex::new(Slot {
        value: None,
        waker: None,
    }));
    (
        DeviceFuture {
            device: device.clone(),
            slot: slot.clone(),
        },
        Deliver(slot),
    )
}

impl<T> DeviceFuture<T> {
    fn take(&self, waker: Option<&Waker>) -> Option<T> {
        let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let v = s.value.take();
        if v.is_none()
            && let Some(w) = waker
        {
            s.waker = Some(w.clone());
        }
        v
    }

    /// The value if the callback has fired, without waiting (and, on native, after letting the
    /// device run its due callbacks).
    pub fn try_take(&self) -> Option<T> {
        if let Some(v) = self.take(None) {
            return Some(v);
        }
        poll_device(&self.device);
        self.take(None)
    }
}

/// Lets a native device run the callbacks that are due, without waiting. Nothing to do on the
/// web, where the browser runs them. An error here (a lost device) is left to the callbacks,
/// which report it to whoever waits.
pub(crate) fn poll_device(device: &wgpu::Device) {
    #[cfg(not(target_arch = "wasm32"))]
    let _ = device.poll(wgpu::PollType::Poll);
    #[cfg(target_arch = "wasm32")]
    let _ = device;
}

impl<T> Future for DeviceFuture<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(v) = self.take(Some(cx.waker())) {
            return Poll::Ready(v);
        }
        poll_device(&self.device);
        match self.take(Some(cx.waker())) {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

/// The value of a future that needs no device (the CPU reference's): polled once, on every
/// target; one that is not ready is an error rather than a wait.
pub(crate) fn ready_now<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => Err(Error::invalid(
            "CPU reference",
            "internal: a CPU-reference future was not ready",
        )),
    }
}

/// Runs `fut` to completion on this thread: polls it, and while it is pending waits in
/// `Device::poll` (so callbacks fire) for at most `timeout` in all.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn block_on<T>(
    device: &wgpu::Device,
    op: &str,
    timeout: std::time::Duration,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    use std::time::Instant;
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let deadline = Instant::now() + timeout;
    let mut idle_naps = 0u32;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                op: op.into(),
                seconds: timeout.as_secs_f64(),
            });
        }
        match device.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(left),
        }) {
            Ok(status) => {
                // The queue is idle and the future still waits: on something other than this
                // device's work (another thread's submission is about to land). Nap briefly,
                // growing to 10 ms, instead of spinning.
                if status.is_queue_empty() {
                    idle_naps = (idle_naps + 1).min(10);
                    std::thread::sleep(std::time::Duration::from_millis(idle_naps as u64));
                }
            }
            Err(wgpu::PollError::Timeout) => {
                return Err(Error::Timeout {
                    op: op.into(),
                    seconds: timeout.as_secs_f64(),
                });
            }
            Err(e) => return Err(Error::gpu(op, e)),
        }
    }
}

/// An error scope's result, waiting for nothing: native wgpu knows it at once; a browser
/// answers later, and then the pop is kept and checked by [`DeferredErrors::check`] at the
/// next read-back or step, which reports it naming `op`.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type ScopeFuture = Pin<Box<dyn Future<Output = Option<wgpu::Error>> + Send>>;
#[cfg(target_arch = "wasm32")]
pub(crate) type ScopeFuture = Pin<Box<dyn Future<Output = Option<wgpu::Error>>>>;

/// Error scopes whose result was not known when they were popped (WebGPU only).
#[derive(Default)]
pub(crate) struct DeferredErrors {
    pending: Mutex<Vec<(String, ScopeFuture)>>,
}

impl DeferredErrors {
    /// Pops `scope` and returns its error for `op` now if it is known; otherwise keeps it.
    pub fn pop(&self, op: &str, scope: wgpu::ErrorScopeGuard) -> Option<String> {
        let mut fut: ScopeFuture = Box::pin(scope.pop());
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(e) => e.map(|e| e.to_string()),
            Poll::Pending => {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((op.to_string(), fut));
                None
            }
        }
    }

    /// The first error among the kept scopes that have answered since (dropping those that
    /// answered without one).
    pub fn check(&self) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut first = None;
        pending.retain_mut(|(op, fut)| {
            match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(e) => {
                    if first.is_none()
                        && let Some(e) = e
                    {
                        first = Some(Error::gpu(format!("{op} (reported late)"), e));
                    }
                    false
                }
                Poll::Pending => true,
            }
        });
        first.map_or(Ok(()), Err)
    }
}
