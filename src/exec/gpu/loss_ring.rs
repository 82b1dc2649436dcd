//! Reading a scalar loss back without stalling every step: a ring of small mappable buffers.
//! Each run copies its loss into the next slot and asks for it to be mapped; the slot is read
//! when the GPU is done with it, which is normally runs later. Only when a slot comes round
//! again still unread does a run wait (asynchronously) for it, so the host runs at most `slots`
//! steps ahead of the device.
//!
//! A run recorded into a host's command encoder copies its loss into a slot too, but the map
//! can only be asked for once the host has submitted the encoder ([`LossRing::map`] then).
//!
//! A training step's slot also holds the parameters' health flag (shaders/health.wgsl): 8
//! bytes a step, and divergence is known with the loss, at no extra wait.

use crate::error::{Error, Result};
use crate::gpu::future::{DeviceFuture, callback};
use crate::gpu::{GpuContext, GpuTensor};

type MapResult = std::result::Result<(), wgpu::BufferAsyncError>;

enum SlotState {
    /// Free: read, or never used.
    Idle,
    /// The loss copy is recorded in a host's encoder; not mapped yet.
    Recorded,
    /// Mapping requested; resolves when the device has run the copy.
    Pending(DeviceFuture<MapResult>),
}

struct Slot {
    buffer: wgpu::Buffer,
    state: SlotState,
    /// The key (step or run number) of the loss this slot holds.
    key: u64,
    /// Whether the health flag beside it was computed (a training step).
    checked: bool,
}

/// One run's loss as read back: its key, the loss, and for a training step the health flag
/// (0: every parameter finite; see [`crate::cpu::health::decode_first_nonfinite`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reading {
    pub key: u64,
    pub loss: f32,
    pub health: Option<u32>,
}

/// A ring of loss read-back buffers, allocated once.
pub(crate) struct LossRing {
    slots: Vec<Slot>,
    next: usize,
    ready: Vec<Reading>,
}

impl LossRing {
    pub fn new(ctx: &GpuContext, slots: usize) -> Self {
        let slots = (0..slots.max(1))
            .map(|i| Slot {
                buffer: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("loss read-back {i}")),
                    size: 8,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: SlotState::Idle,
                key: 0,
                checked: false,
            })
            .collect();
        LossRing {
            slots,
            next: 0,
            ready: Vec::new(),
        }
    }

    /// Reads slot `i` whose map has finished with `r`, unmaps it and records its loss.
    fn finish(&mut self, ctx: &GpuContext, i: usize, r: MapResult) -> Result<()> {
        let slot = &mut self.slots[i];
        slot.state = SlotState::Idle;
        r.map_err(|e| {
            ctx.fault_or(Error::gpu(
                "loss read-back",
                format!("mapping the loss buffer failed: {e}"),
            ))
        })?;
        let bytes = slot
            .buffer
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::gpu("loss read-back", e))?
            .to_vec();
        slot.buffer.unmap();
        ctx.count_download(8);
        let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        self.ready.push(Reading {
            key: slot.key,
            loss: f32::from_le_bytes(word(0)),
            health: slot.checked.then(|| u32::from_le_bytes(word(4))),
        });
        Ok(())
    }

    /// Reads slot `i` if its map has finished, without waiting.
    fn harvest(&mut self, ctx: &GpuContext, i: usize) -> Result<()> {
        if let SlotState::Pending(f) = &self.slots[i].state
            && let Some(r) = f.try_take()
        {
            self.finish(ctx, i, r)?;
        }
        Ok(())
    }

    /// Collects every loss the GPU has finished, without waiting.
    pub fn poll(&mut self, ctx: &GpuContext) -> Result<()> {
        for i in 0..self.slots.len() {
            self.harvest(ctx, i)?;
        }
        Ok(())
    }

    /// Whether the next slot is free now (a run would not wait for it).
    pub fn ready(&mut self, ctx: &GpuContext) -> Result<bool> {
        self.harvest(ctx, self.next)?;
        Ok(!matches!(
            self.slots[self.next].state,
            SlotState::Pending(_)
        ))
    }

    /// The slot the next run copies its loss into, once it is free.
    pub async fn claim(&mut self, ctx: &GpuContext) -> Result<usize> {
        let i = self.next;
        if let SlotState::Pending(f) = &mut self.slots[i].state {
            let r = f.await;
            self.finish(ctx, i, r)?;
        }
        // A recorded slot whose submission was never reported is reused: its loss is lost.
        self.slots[i].state = SlotState::Idle;
        Ok(i)
    }

    /// The next slot if it is free now; `None` if its loss is still on its way.
    pub fn claim_now(&mut self, ctx: &GpuContext) -> Result<Option<usize>> {
        if !self.ready(ctx)? {
            return Ok(None);
        }
        self.slots[self.next].state = SlotState::Idle;
        Ok(Some(self.next))
    }

    /// Encodes the copy of `loss`, and of the `health` flag where `checked`, into slot `i`
    /// (claimed for the run reported as `key`).
    pub fn copy(
        &mut self,
        enc: &mut wgpu::CommandEncoder,
        i: usize,
        loss: &GpuTensor,
        health: &GpuTensor,
        key: u64,
        checked: bool,
    ) {
        let slot = &mut self.slots[i];
        enc.copy_buffer_to_buffer(&loss.buffer, loss.offset, &slot.buffer, 0, 4);
        if checked {
            enc.copy_buffer_to_buffer(&health.buffer, health.offset, &slot.buffer, 4, 4);
        }
        slot.key = key;
        slot.checked = checked;
        slot.state = SlotState::Recorded;
        self.next = (i + 1) % self.slots.len();
    }

    /// Asks for slot `i` to be mapped; the submission that fills it must have been submitted.
    pub fn map(&mut self, ctx: &GpuContext, i: usize) -> Result<()> {
        let slot = self
            .slots
            .get_mut(i)
            .ok_or_else(|| Error::invalid("loss read-back", format!("no slot {i}")))?;
        if !matches!(slot.state, SlotState::Recorded) {
            return Ok(());
        }
        let (fut, deliver) = callback(&ctx.device);
        slot.buffer
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| deliver.send(r));
        slot.state = SlotState::Pending(fut);
        Ok(())
    }

    /// Every loss collected so far, oldest first, emptying the list.
    pub fn take(&mut self) -> Vec<Reading> {
        let mut v = std::mem::take(&mut self.ready);
        v.sort_by_key(|r| r.key);
        v
    }

    /// Waits for every pending loss.
    pub async fn flush(&mut self, ctx: &GpuContext) -> Result<()> {
        for i in 0..self.slots.len() {
            if let SlotState::Pending(f) = &mut self.slots[i].state {
                let r = f.await;
                self.finish(ctx, i, r)?;
            }
        }
        Ok(())
    }
}
