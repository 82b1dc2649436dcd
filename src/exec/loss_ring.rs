//! Reading a scalar loss back without stalling every step: a ring of small mappable buffers.
//! Each run copies its loss into the next slot and asks for it to be mapped; the slot is read
//! when the GPU is done with it, which is normally runs later. Only when a slot comes round
//! again still unread does the host wait, so the CPU runs at most `slots` steps ahead.

use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTensor};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

const IDLE: u8 = 0;
const PENDING: u8 = 1;
const MAPPED: u8 = 2;
const FAILED: u8 = 3;

struct Slot {
    buffer: Arc<wgpu::Buffer>,
    state: Arc<AtomicU8>,
    /// The run whose loss this slot holds.
    run: u64,
}

/// A ring of loss read-back buffers, allocated once.
pub(crate) struct LossRing {
    slots: Vec<Slot>,
    next: usize,
    ready: Vec<(u64, f32)>,
}

impl LossRing {
    pub fn new(ctx: &GpuContext, slots: usize) -> Self {
        let slots = (0..slots.max(1))
            .map(|i| Slot {
                buffer: Arc::new(ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("loss read-back {i}")),
                    size: 4,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })),
                state: Arc::new(AtomicU8::new(IDLE)),
                run: 0,
            })
            .collect();
        LossRing {
            slots,
            next: 0,
            ready: Vec::new(),
        }
    }

    /// Reads a mapped slot, unmaps it and records its loss.
    fn harvest(&mut self, i: usize) -> Result<()> {
        let slot = &mut self.slots[i];
        match slot.state.load(Ordering::Acquire) {
            MAPPED => {
                let bytes = slot
                    .buffer
                    .slice(..)
                    .get_mapped_range()
                    .map_err(|e| Error::gpu("loss read-back", e))?
                    .to_vec();
                slot.buffer.unmap();
                slot.state.store(IDLE, Ordering::Release);
                let v = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                self.ready.push((slot.run, v));
                Ok(())
            }
            FAILED => {
                slot.state.store(IDLE, Ordering::Release);
                Err(Error::gpu(
                    "loss read-back",
                    "mapping the loss buffer failed",
                ))
            }
            _ => Ok(()),
        }
    }

    /// Collects every loss the GPU has finished, without waiting.
    pub fn poll(&mut self, ctx: &GpuContext) -> Result<()> {
        ctx.device
            .poll(wgpu::PollType::Poll)
            .map_err(|e| Error::gpu("loss read-back", e))?;
        for i in 0..self.slots.len() {
            self.harvest(i)?;
        }
        Ok(())
    }

    /// The slot the next run copies its loss into, after waiting for it to be free.
    pub fn claim(&mut self, ctx: &GpuContext) -> Result<(usize, Arc<wgpu::Buffer>)> {
        let i = self.next;
        while self.slots[i].state.load(Ordering::Acquire) == PENDING {
            ctx.wait()?;
        }
        self.harvest(i)?;
        Ok((i, self.slots[i].buffer.clone()))
    }

    /// Encodes the copy of `loss` into slot `i` (claimed for `run`).
    pub fn copy(&mut self, enc: &mut wgpu::CommandEncoder, i: usize, loss: &GpuTensor, run: u64) {
        enc.copy_buffer_to_buffer(&loss.buffer, loss.offset, &self.slots[i].buffer, 0, 4);
        self.slots[i].run = run;
    }

    /// Asks for slot `i` to be mapped once the submission that fills it is done.
    pub fn map(&mut self, i: usize) {
        let state = self.slots[i].state.clone();
        state.store(PENDING, Ordering::Release);
        self.slots[i]
            .buffer
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                state.store(if r.is_ok() { MAPPED } else { FAILED }, Ordering::Release);
            });
        self.next = (i + 1) % self.slots.len();
    }

    /// Every loss collected so far, oldest first, emptying the list.
    pub fn take(&mut self) -> Vec<(u64, f32)> {
        let mut v = std::mem::take(&mut self.ready);
        v.sort_by_key(|(run, _)| *run);
        v
    }

    /// Waits for every pending loss.
    pub fn flush(&mut self, ctx: &GpuContext) -> Result<()> {
        if self
            .slots
            .iter()
            .any(|s| s.state.load(Ordering::Acquire) == PENDING)
        {
            ctx.wait()?;
        }
        self.poll(ctx)
    }
}
