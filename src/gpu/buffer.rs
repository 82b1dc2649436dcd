//! GPU tensors: a storage buffer (or a 4-byte-aligned range of one) with a shape, and the
//! upload / download paths.

use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::future::callback;
use crate::shape::Shape;
use crate::tensor::Tensor;
use std::sync::Arc;

/// Element type of a GPU tensor: f32 for data, u32 for class labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    U32,
}

/// A tensor living in a GPU storage buffer. Cloning shares the buffer.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    pub buffer: Arc<wgpu::Buffer>,
    /// Byte offset of element 0 in `buffer` (a multiple of the device's storage offset alignment
    /// when the tensor is bound on its own).
    pub offset: u64,
    pub shape: Shape,
    pub dtype: DType,
    pub label: String,
}

impl GpuTensor {
    /// A host application's own buffer (or the range of it from `offset`, a multiple of 4) seen
    /// as a tensor of `shape`: to feed a program from it ([`crate::exec::Feed::Gpu`]) or to copy
    /// results into it ([`GpuContext::copy`]), with no trip through host memory. The buffer must
    /// belong to the device wgrad runs on; feeding from it needs `COPY_SRC` usage, copying into
    /// it `COPY_DST`.
    pub fn from_buffer(
        buffer: wgpu::Buffer,
        offset: u64,
        shape: impl Into<Shape>,
        dtype: DType,
        label: &str,
    ) -> Result<GpuTensor> {
        let shape = shape.into();
        let bytes = shape.numel() as u64 * 4;
        if !offset.is_multiple_of(4)
            || offset
                .checked_add(bytes)
                .is_none_or(|end| end > buffer.size())
        {
            return Err(Error::invalid(
                "GpuTensor::from_buffer",
                format!(
                    "{label}: {shape} needs {bytes} bytes at offset {offset} (a multiple of 4), the buffer has {}",
                    buffer.size()
                ),
            ));
        }
        Ok(GpuTensor {
            buffer: Arc::new(buffer),
            offset,
            shape,
            dtype,
            label: label.into(),
        })
    }

    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
    /// Size of the tensor's data in bytes (every dtype is 4 bytes wide).
    pub fn byte_len(&self) -> u64 {
        self.numel() as u64 * 4
    }
    /// The binding for this tensor's range of its buffer.
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            // A zero-element tensor still binds 4 bytes: WGSL arrays cannot be empty.
            size: wgpu::BufferSize::new(self.byte_len().max(4)),
        })
    }
    /// The same buffer seen under another shape with as many elements.
    pub fn reshaped(&self, shape: impl Into<Shape>) -> Result<GpuTensor> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(Error::invalid(
                "reshape",
                format!(
                    "cannot view {} ({}) as {shape}: element counts differ",
                    self.label, self.shape
                ),
            ));
        }
        Ok(GpuTensor {
            shape,
            ..self.clone()
        })
    }
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl GpuContext {
    /// Checks a buffer size against the device's buffer and binding limits.
    pub fn check_size(&self, op: &str, what: &str, bytes: u64) -> Result<()> {
        let limit = self.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::Limit {
                op: op.into(),
                what: format!("{what} of {bytes} bytes"),
                needed: bytes,
                limit_name: "max_storage_buffer_binding_size",
                limit,
            });
        }
        if bytes > self.limits.max_buffer_size {
            return Err(Error::Limit {
                op: op.into(),
                what: format!("{what} of {bytes} bytes"),
                needed: bytes,
                limit_name: "max_buffer_size",
                limit: self.limits.max_buffer_size,
            });
        }
        Ok(())
    }

    fn storage(&self, label: &str, shape: Shape, dtype: DType) -> Result<GpuTensor> {
        let bytes = (shape.numel() as u64 * 4).max(4);
        self.check_size(label, "tensor", bytes)?;
        let buffer = self.create_buffer(
            label,
            &wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: STORAGE,
                mapped_at_creation: false,
            },
        )?;
        Ok(GpuTensor {
            buffer: Arc::new(buffer),
            offset: 0,
            shape,
            dtype,
            label: label.into(),
        })
    }

    /// A zero-filled f32 tensor (wgpu zero-initialises new buffers).
    pub fn zeros(&self, label: &str, shape: impl Into<Shape>) -> Result<GpuTensor> {
        self.storage(label, shape.into(), DType::F32)
    }

    /// Copies a host tensor to a new GPU tensor.
    pub fn upload(&self, label: &str, t: &Tensor) -> Result<GpuTensor> {
        let g = self.storage(label, t.shape.clone(), DType::F32)?;
        self.write_bytes(&g, bytemuck::cast_slice(&t.data));
        Ok(g)
    }

    /// Copies class labels to a new u32 GPU tensor of shape `[labels.len()]`.
    pub fn upload_labels(&self, label: &str, labels: &[u32]) -> Result<GpuTensor> {
        let g = self.storage(label, Shape::new([labels.len()]), DType::U32)?;
        self.write_bytes(&g, bytemuck::cast_slice(labels));
        Ok(g)
    }

    /// Queues a write of `bytes` at the start of `dst` (it lands before the next submission).
    pub(crate) fn write_bytes(&self, dst: &GpuTensor, bytes: &[u8]) {
        self.queue.write_buffer(&dst.buffer, dst.offset, bytes);
        self.count_upload(bytes.len() as u64);
    }

    /// Overwrites a GPU tensor with host data of the same length.
    pub fn write(&self, dst: &GpuTensor, data: &[f32]) -> Result<()> {
        if data.len() != dst.numel() {
            return Err(Error::invalid(
                "write",
                format!(
                    "{} has {} elements ({}), got {} values",
                    dst.label,
                    dst.numel(),
                    dst.shape,
                    data.len()
                ),
            ));
        }
        self.write_bytes(dst, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Reads a GPU tensor back to the host once all work submitted before the call is done.
    pub async fn download_async(&self, src: &GpuTensor) -> Result<Tensor> {
        let bytes = self
            .read_bytes_async(&src.label, &src.buffer, src.offset, src.byte_len())
            .await?;
        Tensor::new(src.shape.clone(), bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Reads `len` bytes at `offset` of `buffer` through a staging buffer, once all work
    /// submitted before the call is done. Awaits the map; never blocks.
    pub async fn read_bytes_async(
        &self,
        what: &str,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let op = format!("download {what}");
        self.check_faults()?;
        let staging = self.create_buffer(
            &op,
            &wgpu::BufferDescriptor {
                label: Some("wgrad readback staging"),
                size: len,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            },
        )?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buffer, offset, &staging, 0, len);
        self.queue.submit([enc.finish()]);
        if let Some(message) = self.pop_scope(&op, scope) {
            return Err(self.fault_or(Error::gpu(op, message)));
        }
        let (mapped, deliver) = callback(&self.device);
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| deliver.send(r));
        mapped
            .await
            .map_err(|e| self.fault_or(Error::gpu(&op, e)))?;
        self.check_faults()?;
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::gpu(&op, e))?
            .to_vec();
        staging.unmap();
        self.count_download(len);
        Ok(data)
    }

    /// Resolves when the device has finished all work submitted before the call.
    pub async fn wait_async(&self) -> Result<()> {
        let (done, deliver) = callback(&self.device);
        self.queue.on_submitted_work_done(move || deliver.send(()));
        done.await;
        self.check_faults()
    }

    /// Blocking [`GpuContext::download_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn download(&self, src: &GpuTensor) -> Result<Tensor> {
        self.block_on(&format!("download {}", src.label), self.download_async(src))
    }

    /// Blocking [`GpuContext::read_bytes_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_bytes(
        &self,
        what: &str,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        self.block_on(
            &format!("download {what}"),
            self.read_bytes_async(what, buffer, offset, len),
        )
    }

    /// Blocking [`GpuContext::wait_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(&self) -> Result<()> {
        self.block_on("wait", self.wait_async())
    }

    /// Records a copy of `src` into `dst` (same element count and type) into `encoder`, or, with
    /// none, submits it alone. For handing results to a host's own buffers without a trip
    /// through host memory.
    pub fn copy(
        &self,
        src: &GpuTensor,
        dst: &GpuTensor,
        encoder: Option<&mut wgpu::CommandEncoder>,
    ) -> Result<()> {
        if src.numel() != dst.numel() || src.dtype != dst.dtype {
            return Err(Error::invalid(
                "copy",
                format!(
                    "{} is {} {:?}, {} is {} {:?}: they must hold as many elements of one type",
                    src.label, src.shape, src.dtype, dst.label, dst.shape, dst.dtype
                ),
            ));
        }
        let op = format!("copy {} to {}", src.label, dst.label);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        match encoder {
            Some(enc) => enc.copy_buffer_to_buffer(
                &src.buffer,
                src.offset,
                &dst.buffer,
                dst.offset,
                src.byte_len(),
            ),
            None => {
                let mut enc = self
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(&op) });
                enc.copy_buffer_to_buffer(
                    &src.buffer,
                    src.offset,
                    &dst.buffer,
                    dst.offset,
                    src.byte_len(),
                );
                self.queue.submit([enc.finish()]);
            }
        }
        match self.pop_scope(&op, scope) {
            Some(message) => Err(Error::gpu(op, message)),
            None => Ok(()),
        }
    }
}
