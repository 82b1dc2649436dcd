//! Faults a device reports on its own time: a lost device (removed, reset, its driver crashed,
//! or `Device::destroy`), an error that no error scope caught, and — in a browser — scope
//! results that arrive after the call that caused them. wgrad installs the handlers on the
//! devices it creates; a host that hands over its own device forwards them
//! ([`crate::GpuContext::report_device_lost`], [`crate::GpuContext::report_uncaptured`]), since
//! wgpu's default for an uncaptured error is to panic.
//!
//! Every run and read-back checks them first, so a fault becomes an error of the next call
//! ([`crate::Error::DeviceLost`], or [`crate::Error::Gpu`] naming what was uncaptured).

use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Faults {
    lost: Mutex<Option<String>>,
    uncaptured: Mutex<Vec<String>>,
}

impl Faults {
    /// The device is gone, for `reason` (the first reason is kept).
    pub fn lose(&self, reason: String) {
        let mut l = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        l.get_or_insert(reason);
    }

    /// Why the device was lost, if it was.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// An error no scope caught.
    pub fn uncaptured(&self, message: String) {
        self.uncaptured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }

    /// The oldest uncaptured error not yet reported.
    pub fn take_uncaptured(&self) -> Option<String> {
        let mut u = self.uncaptured.lock().unwrap_or_else(|p| p.into_inner());
        (!u.is_empty()).then(|| u.remove(0))
    }
}
