//! Adapter discovery and choice, and the [`GpuContext`] that every launcher works through.
//!
//! No global state: a context owns (or shares, when built from a host's device) one device and
//! queue, and its own pipeline cache. Several contexts can live side by side.

use crate::error::{Error, Result};
use crate::gpu::faults::Faults;
use crate::gpu::future::DeferredErrors;
use crate::gpu::pipeline::PipelineCache;
use crate::options::Options;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The graphics APIs wgrad can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Vulkan,
    Metal,
    Dx12,
    Gl,
    /// The browser's WebGPU (wasm32 only).
    WebGpu,
}

impl BackendKind {
    /// Parses `vulkan|metal|dx12|gl` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "vulkan" | "vk" => Ok(BackendKind::Vulkan),
            "metal" | "mtl" => Ok(BackendKind::Metal),
            "dx12" | "d3d12" => Ok(BackendKind::Dx12),
            "gl" | "gles" | "opengl" => Ok(BackendKind::Gl),
            "webgpu" => Ok(BackendKind::WebGpu),
            other => Err(Error::invalid(
                "backend",
                format!("unknown backend '{other}': expected vulkan, metal, dx12, gl or webgpu"),
            )),
        }
    }
    fn from_wgpu(b: wgpu::Backend) -> Option<Self> {
        match b {
            wgpu::Backend::Vulkan => Some(BackendKind::Vulkan),
            wgpu::Backend::Metal => Some(BackendKind::Metal),
            wgpu::Backend::Dx12 => Some(BackendKind::Dx12),
            wgpu::Backend::Gl => Some(BackendKind::Gl),
            wgpu::Backend::BrowserWebGpu => Some(BackendKind::WebGpu),
            _ => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Vulkan => "vulkan",
            BackendKind::Metal => "metal",
            BackendKind::Dx12 => "dx12",
            BackendKind::Gl => "gl",
            BackendKind::WebGpu => "webgpu",
        })
    }
}

/// What a user sees of an adapter before choosing it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// Position in [`list_adapters`]'s order (stable for one machine and driver set).
    pub index: usize,
    pub name: String,
    pub backend: wgpu::Backend,
    pub device_type: wgpu::DeviceType,
    pub driver: String,
    pub driver_info: String,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {:?}",
            self.name,
            backend_name(self.backend),
            self.device_type
        )?;
        if !self.driver.is_empty() {
            write!(f, ", {} {}", self.driver, self.driver_info)?;
        }
        f.write_str(")")
    }
}

/// Lower-case backend name, as used in `WGRAD_BACKEND` and in reports.
pub fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "vulkan",
        wgpu::Backend::Metal => "metal",
        wgpu::Backend::Dx12 => "dx12",
        wgpu::Backend::Gl => "gl",
        wgpu::Backend::BrowserWebGpu => "webgpu",
        _ => "noop",
    }
}

/// How to choose an adapter. The default takes the best device type present (discrete,
/// integrated, virtual, other, CPU software) on any backend.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Only adapters of this backend.
    pub backend: Option<BackendKind>,
    /// Exactly this adapter, by its [`AdapterSummary::index`].
    pub index: Option<usize>,
}

impl AdapterChoice {
    pub fn backend(b: BackendKind) -> Self {
        AdapterChoice {
            backend: Some(b),
            index: None,
        }
    }
}

/// The native APIs, or in a browser its WebGPU (WebGL2 cannot run compute shaders).
fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = if cfg!(target_arch = "wasm32") {
        wgpu::Backends::BROWSER_WEBGPU
    } else {
        wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12 | wgpu::Backends::GL
    };
    wgpu::Instance::new(desc)
}

async fn enumerate(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters: Vec<wgpu::Adapter> = instance
        .enumerate_adapters(wgpu::Backends::all())
        .await
        .into_iter()
        .filter(|a| BackendKind::from_wgpu(a.get_info().backend).is_some())
        .collect();
    // A stable order: by backend, then name, so an index means the same adapter run to run.
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        (i.backend as u32, i.name, i.device)
    });
    adapters
}

fn summary(index: usize, a: &wgpu::Adapter) -> AdapterSummary {
    let i = a.get_info();
    AdapterSummary {
        index,
        name: i.name,
        backend: i.backend,
        device_type: i.device_type,
        driver: i.driver,
        driver_info: i.driver_info,
    }
}

/// Blocking [`list_adapters_async`] (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterSummary> {
    pollster::block_on(list_adapters_async())
}

/// Every adapter on this machine, on every backend wgrad supports.
pub async fn list_adapters_async() -> Vec<AdapterSummary> {
    let inst = instance();
    enumerate(&inst)
        .await
        .iter()
        .enumerate()
        .map(|(i, a)| summary(i, a))
        .collect()
}

/// Lower is preferred: by device type, and among equals SwiftShader last (a conformance-grade
/// CPU driver, several times slower than lavapipe for our kernels).
fn preference(info: &wgpu::AdapterInfo) -> (u8, bool) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    (kind, info.name.starts_with("SwiftShader"))
}

/// A device and queue with what wgrad needs to know about them, the caller's [`Options`], and
/// the pipeline cache.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    options: Options,
    pub(crate) pipelines: PipelineCache,
    pub(crate) tune: crate::gpu::tune::TuneState,
    pub(crate) deferred: DeferredErrors,
    faults: std::sync::Arc<Faults>,
    transfers: [AtomicU64; 2],
    placeholder: std::sync::OnceLock<crate::gpu::GpuTensor>,
}

/// Bytes that crossed between host memory and this context's device, counted by wgrad (its own
/// uploads, uniform writes and read-backs; a host's own transfers are not seen).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    /// Host → GPU: tensor uploads, fed host tensors, kernel parameters (uniforms).
    pub to_gpu: u64,
    /// GPU → host: read-backs (losses, fetched tensors, states, timestamps).
    pub to_host: u64,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GpuContext({})", self.describe())
    }
}

impl GpuContext {
    /// Blocking [`GpuContext::new_async`] (native only; wgpu answers at once there).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new(options: &Options) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    /// Blocking [`GpuContext::open_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(adapter: &wgpu::Adapter, options: &Options) -> Result<Self> {
        pollster::block_on(Self::open_async(adapter, options))
    }

    /// Blocking [`GpuContext::all_async`] (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn all(options: &Options) -> Vec<Result<Self>> {
        pollster::block_on(Self::all_async(options))
    }

    /// Chooses an adapter as `options.adapter` says and opens a device on it.
    pub async fn new_async(options: &Options) -> Result<Self> {
        let choice = &options.adapter;
        let inst = instance();
        let adapters = enumerate(&inst).await;
        let all: Vec<AdapterSummary> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| summary(i, a))
            .collect();
        let listing = || {
            if all.is_empty() {
                "this machine has none (install a Vulkan driver, e.g. mesa-vulkan-drivers for lavapipe)".to_string()
            } else {
                let names: Vec<String> = all.iter().map(|a| format!("#{} {a}", a.index)).collect();
                format!("present: {}", names.join("; "))
            }
        };
        let chosen = if let Some(ix) = choice.index {
            let a = adapters.get(ix).ok_or_else(|| {
                Error::NoAdapter(format!("no adapter with index {ix}; {}", listing()))
            })?;
            if let Some(b) = choice.backend {
                if BackendKind::from_wgpu(a.get_info().backend) != Some(b) {
                    return Err(Error::NoAdapter(format!(
                        "adapter #{ix} is not a {b} adapter; {}",
                        listing()
                    )));
                }
            }
            a
        } else {
            adapters
                .iter()
                .filter(|a| {
                    choice
                        .backend
                        .is_none_or(|b| a.get_info().backend == wgpu_backend(b))
                })
                .min_by_key(|a| preference(&a.get_info()))
                .ok_or_else(|| {
                    let what = choice
                        .backend
                        .map_or("any backend".to_string(), |b| format!("backend {b}"));
                    Error::NoAdapter(format!("none for {what}; {}", listing()))
                })?
        };
        Self::open_async(chosen, options).await
    }

    /// Opens a device on one particular adapter, with the adapter's own limits and the optional
    /// features wgrad can use (timestamp queries; subgroup operations unless
    /// `options.subgroups` is `Some(false)`).
    pub async fn open_async(adapter: &wgpu::Adapter, options: &Options) -> Result<Self> {
        let info = adapter.get_info();
        let mut wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        if options.subgroups != Some(false) {
            wanted |= wgpu::Features::SUBGROUP;
        }
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("wgrad device"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) =
            adapter
                .request_device(&desc)
                .await
                .map_err(|e| Error::DeviceRequest {
                    adapter: info.name.clone(),
                    message: e.to_string(),
                })?;
        let ctx = Self::from_device(device, queue, info, options.clone());
        // wgpu's default for an uncaptured error is a panic: on devices wgrad creates, faults
        // become errors of the next call instead (a host installs its own, see
        // `report_device_lost`).
        let faults = ctx.faults.clone();
        ctx.device.set_device_lost_callback(move |reason, message| {
            faults.lose(describe_loss(reason, &message))
        });
        let faults = ctx.faults.clone();
        ctx.device
            .on_uncaptured_error(std::sync::Arc::new(move |e| {
                faults.uncaptured(e.to_string())
            }));
        Ok(ctx)
    }

    /// Wraps a device and queue that a host application already owns. wgrad reads the device's
    /// limits and features and works within them; it never changes the device's state, and
    /// installs no handler on it (see README: what a host should install itself).
    /// `options.adapter` is not used.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        options: Options,
    ) -> Self {
        let limits = device.limits();
        let features = device.features();
        GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            options,
            pipelines: PipelineCache::default(),
            tune: Default::default(),
            deferred: Default::default(),
            faults: Default::default(),
            transfers: Default::default(),
            placeholder: Default::default(),
        }
    }

    /// Opens a context on every adapter of the machine (for cross-backend checks), each with
    /// `options` (whose adapter choice is not used).
    pub async fn all_async(options: &Options) -> Vec<Result<Self>> {
        let inst = instance();
        let mut out = Vec::new();
        for a in enumerate(&inst).await {
            out.push(Self::open_async(&a, options).await);
        }
        out
    }

    /// The options this context was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Bytes wgrad has moved between host memory and this device so far.
    pub fn transfers(&self) -> Transfers {
        Transfers {
            to_gpu: self.transfers[0].load(Ordering::Relaxed),
            to_host: self.transfers[1].load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_upload(&self, bytes: u64) {
        self.transfers[0].fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn count_download(&self, bytes: u64) {
        self.transfers[1].fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether the device is a CPU driver (lavapipe, llvmpipe, SwiftShader).
    pub fn is_cpu_driver(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Pops an error scope: its error, if wgpu reports it now; a browser reports later, and
    /// [`GpuContext::check_faults`] returns it then.
    pub(crate) fn pop_scope(&self, op: &str, scope: wgpu::ErrorScopeGuard) -> Option<String> {
        self.deferred.pop(op, scope)
    }

    /// What the device reported since the last call: a lost device, an error no scope caught,
    /// or an error scope that answered late (WebGPU reports validation asynchronously). Every
    /// run and read-back checks this first.
    pub fn check_faults(&self) -> Result<()> {
        // A loss is reported through a callback that runs when the device is polled.
        crate::gpu::future::poll_device(&self.device);
        if let Some(reason) = self.faults.lost() {
            return Err(Error::DeviceLost { reason });
        }
        if let Some(message) = self.faults.take_uncaptured() {
            return Err(Error::gpu("an operation no error scope caught", message));
        }
        self.deferred.check()
    }

    /// `e`, or the device-lost error when the device is gone (a failed map or submission after
    /// a loss is only its symptom).
    pub(crate) fn fault_or(&self, e: Error) -> Error {
        // A loss is reported through a callback that runs when the device is polled.
        crate::gpu::future::poll_device(&self.device);
        match self.faults.lost() {
            Some(reason) => Error::DeviceLost { reason },
            None => e,
        }
    }

    /// For a host that handed over its own device: call this from the device-lost callback you
    /// install (`Device::set_device_lost_callback`), so that wgrad's next call reports
    /// [`Error::DeviceLost`] instead of failing obscurely.
    pub fn report_device_lost(&self, reason: impl Into<String>) {
        self.faults.lose(reason.into());
    }

    /// For a host that handed over its own device: forward an error your uncaptured-error
    /// handler received (`Device::on_uncaptured_error`), so that wgrad's next call reports it.
    pub fn report_uncaptured(&self, message: impl Into<String>) {
        self.faults.uncaptured(message.into());
    }

    /// A buffer from `desc`, or [`Error::OutOfMemory`] when the device has no room for it
    /// (the error scope catches what would otherwise be an uncaptured error).
    pub(crate) fn create_buffer(
        &self,
        op: &str,
        desc: &wgpu::BufferDescriptor,
    ) -> Result<wgpu::Buffer> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(desc);
        match self.pop_scope(op, scope) {
            None => Ok(buffer),
            Some(_) => Err(self.fault_or(Error::OutOfMemory {
                op: op.into(),
                what: desc.label.unwrap_or("a buffer").into(),
                bytes: desc.size,
                max_buffer_size: self.limits.max_buffer_size,
            })),
        }
    }

    /// Blocks until `fut` is done, waiting in `Device::poll` for at most
    /// [`Options::wait_timeout`]. The native wrapper of every `*_async` method.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn block_on<T>(
        &self,
        op: &str,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        crate::gpu::future::block_on(&self.device, op, self.options.wait_timeout, fut).map_err(
            |e| match e {
                Error::Timeout { .. } | Error::Gpu { .. } => self.fault_or(e),
                e => e,
            },
        )
    }

    /// `name (backend)`, for reports.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.info.name, backend_name(self.info.backend))
    }

    pub fn backend(&self) -> wgpu::Backend {
        self.info.backend
    }

    /// A one-element tensor bound where a kernel's optional input (a bias) is absent: WGSL has no
    /// optional bindings. Created once per context and shared.
    pub fn placeholder(&self) -> Result<crate::gpu::GpuTensor> {
        if let Some(t) = self.placeholder.get() {
            return Ok(t.clone());
        }
        let t = self.zeros("absent optional input", [1])?;
        Ok(self.placeholder.get_or_init(|| t).clone())
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether kernels use subgroup operations here: the device has wgpu's `SUBGROUP` feature and
    /// [`Options::subgroups`] asks for them (by default: on GPU-class contexts). Never in the
    /// browser: the WGSL a browser compiles needs an `enable subgroups;` that naga (which
    /// validates native shaders) does not accept yet.
    pub fn uses_subgroups(&self) -> bool {
        let wanted = self
            .options
            .subgroups
            .unwrap_or_else(|| !crate::gpu::kernels::matmul::cpu_class(self));
        !cfg!(target_arch = "wasm32") && wanted && self.has_subgroups()
    }

    /// Whether the device has wgpu's `SUBGROUP` feature (requested unless the options refuse it).
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }
}

fn wgpu_backend(b: BackendKind) -> wgpu::Backend {
    match b {
        BackendKind::Vulkan => wgpu::Backend::Vulkan,
        BackendKind::Metal => wgpu::Backend::Metal,
        BackendKind::Dx12 => wgpu::Backend::Dx12,
        BackendKind::Gl => wgpu::Backend::Gl,
        BackendKind::WebGpu => wgpu::Backend::BrowserWebGpu,
    }
}

/// A short adapter tag for tables, `backend:name` (`vulkan:llvmpipe`, `vulkan:NVIDIA GeForce
/// RTX 4090`): the adapter's name up to any parenthesised driver details, which Mesa's software
/// adapters append (`llvmpipe (LLVM 15.0.6, 256 bits)`).
pub fn tag(ctx: &GpuContext) -> String {
    let name = ctx.info.name.split('(').next().unwrap_or("").trim();
    let name = if name.is_empty() { "?" } else { name };
    format!("{}:{name}", backend_name(ctx.backend()))
}

/// A device loss as a sentence.
fn describe_loss(reason: wgpu::DeviceLostReason, message: &str) -> String {
    let what = match reason {
        wgpu::DeviceLostReason::Destroyed => "the device was destroyed",
        _ => "the driver or the system gave it up",
    };
    match message.trim() {
        "" => what.into(),
        m => format!("{what} ({m})"),
    }
}
