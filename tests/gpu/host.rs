//! wgrad embedded in a host application, on every adapter: read-backs driven by the host's own
//! non-blocking polling; images fed from the host's GPU buffer (bit for bit what host tensors
//! give); outputs copied into the host's buffers; a training step recorded into the host's
//! command encoder; a program refusing a session that did not compile it; batches smaller than
//! the compiled one.

use crate::common::{contexts, tag};
use crate::train::images;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use wgrad::exec::{Device, Feed, ProgramSpec, Session};
use wgrad::gpu::DType;
use wgrad::nn::{AutoencoderConfig, Optimizer};
use wgrad::train::Trainer;
use wgrad::{AdamConfig, GpuContext, GpuTensor, Options, Tensor};

const BATCH: usize = 8;

fn trainer(device: Device) -> Trainer {
    Trainer::new(
        device,
        AutoencoderConfig::default(),
        BATCH,
        Optimizer::Adam(AdamConfig::adam()),
        7,
    )
    .unwrap()
}

/// What a host's frame loop does: poll the future, and between polls let the device run its
/// callbacks without ever waiting (`PollType::Poll`). Returns the value and how many times the
/// future was found pending.
fn drive<F: Future>(ctx: &GpuContext, fut: F) -> (F::Output, usize) {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    let mut pending = 0;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return (v, pending);
        }
        pending += 1;
        assert!(
            pending < 1_000_000,
            "[{}] the future never resolved",
            tag(ctx)
        );
        ctx.device.poll(wgpu::PollType::Poll).unwrap();
        std::thread::yield_now();
    }
}

/// A buffer of the host's own, holding `data`, usable as a storage buffer and a copy source.
fn host_buffer(ctx: &GpuContext, data: &[f32]) -> wgpu::Buffer {
    let b = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("host images"),
        size: (data.len() * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&b, 0, bytemuck::cast_slice(data));
    b
}

fn bits(t: &[f32]) -> Vec<u32> {
    t.iter().map(|v| v.to_bits()).collect()
}

fn param_bits(t: &Trainer) -> Vec<u32> {
    let s = t.state().unwrap();
    s.params.iter().flat_map(|(_, v)| bits(&v.data)).collect()
}

#[test]
fn read_backs_resolve_by_polling_without_waiting() {
    for ctx in contexts() {
        let x = Tensor::uniform([1000], -1.0, 1.0, 5);
        let t = ctx.upload("x", &x).unwrap();
        let (got, pending) = drive(ctx, ctx.download_async(&t));
        assert_eq!(got.unwrap().data, x.data);
        println!(
            "[{}] a 4000-byte read-back resolved after {pending} non-blocking polls",
            tag(ctx)
        );

        // A whole trainer driven the same way: the step itself never waits (a loss slot is
        // free), the losses resolve by polling, and they are the blocking path's bits.
        let mut a = trainer(Device::Gpu(ctx.clone()));
        let mut b = trainer(Device::Gpu(ctx.clone()));
        for i in 0..3 {
            let x = images(BATCH, 40 + i);
            assert!(a.ready().unwrap());
            let (r, pending) = drive(ctx, a.step_async(&x));
            r.unwrap();
            assert_eq!(
                pending,
                0,
                "[{}] a step with a free loss slot waited",
                tag(ctx)
            );
            b.step(&x).unwrap();
        }
        let (polled, _) = drive(ctx, a.flush_losses_async());
        let polled = polled.unwrap();
        let blocking = b.flush_losses().unwrap();
        assert_eq!(polled.len(), 3);
        assert_eq!(
            polled
                .iter()
                .map(|l| (l.0, l.1.to_bits()))
                .collect::<Vec<_>>(),
            blocking
                .iter()
                .map(|l| (l.0, l.1.to_bits()))
                .collect::<Vec<_>>(),
            "[{}]",
            tag(ctx)
        );
        let (state, _) = drive(ctx, a.state_async());
        assert_eq!(state.unwrap().step, 3);
    }
}

#[test]
fn a_blocking_wait_gives_up_after_the_timeout() {
    let Some(ctx) = contexts().first() else {
        return;
    };
    let quick = GpuContext::from_device(
        ctx.device.clone(),
        ctx.queue.clone(),
        ctx.info.clone(),
        Options {
            wait_timeout: std::time::Duration::from_millis(50),
            ..Options::default()
        },
    );
    let never = std::future::pending::<wgrad::Result<()>>();
    let e = quick.block_on("waiting for nothing", never).unwrap_err();
    assert!(matches!(e, wgrad::Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("waiting for nothing"), "{e}");
}

/// Images the host already has on the GPU train exactly as the same images uploaded from host
/// memory, and only the loss comes back to the host.
#[test]
fn images_fed_from_a_host_buffer_match_host_tensors_bit_for_bit() {
    for shared in contexts() {
        // A context of this test's own on the shared device: its transfer counters see only
        // this test's traffic, not that of the tests running beside it.
        let ctx = &std::sync::Arc::new(GpuContext::from_device(
            shared.device.clone(),
            shared.queue.clone(),
            shared.info.clone(),
            Options::default(),
        ));
        let mut from_host = trainer(Device::Gpu(ctx.clone()));
        let mut from_gpu = trainer(Device::Gpu(ctx.clone()));
        // A matmul swapped in by tier-up uploads its launch's parameters: done first, so that
        // only the steps' own transfers are counted.
        from_gpu.finish_tier_up().unwrap();
        let batches: Vec<Tensor> = (0..4).map(|i| images(BATCH, 60 + i)).collect();
        let buffers: Vec<GpuTensor> = batches
            .iter()
            .map(|x| {
                GpuTensor::from_buffer(
                    host_buffer(ctx, &x.data),
                    0,
                    x.shape.clone(),
                    DType::F32,
                    "host images",
                )
                .unwrap()
            })
            .collect();
        ctx.wait().unwrap();
        for x in &batches {
            from_host.step(x).unwrap();
        }
        let l_host = from_host.flush_losses().unwrap();
        let before = ctx.transfers();
        for g in &buffers {
            from_gpu.step(g).unwrap();
        }
        let l_gpu = from_gpu.flush_losses().unwrap();
        let moved = ctx.transfers();
        // The images (25,088 bytes a batch) stay on the device: what goes up is the optimizer's
        // step (its uniforms), and what comes back is each step's loss and its divergence check
        // (4 bytes each).
        let (up, down) = (moved.to_gpu - before.to_gpu, moved.to_host - before.to_host);
        println!(
            "[{}] 4 GPU-fed steps: {up} bytes to the GPU, {down} to the host",
            tag(ctx)
        );
        assert!(
            up < 4 * 256,
            "[{}] GPU-fed steps uploaded {up} bytes",
            tag(ctx)
        );
        assert_eq!(down, 4 * 8, "[{}] bytes read back by 4 steps", tag(ctx));
        assert_eq!(
            bits(&l_host.iter().map(|l| l.1).collect::<Vec<_>>()),
            bits(&l_gpu.iter().map(|l| l.1).collect::<Vec<_>>()),
            "[{}] losses",
            tag(ctx)
        );
        assert!(
            param_bits(&from_host) == param_bits(&from_gpu),
            "[{}] parameters differ",
            tag(ctx)
        );

        // Outputs left on the GPU and copied into the host's buffer hold the bits that a
        // read-back gives.
        let x = &batches[0];
        let (loss, recon, code) = from_host.evaluate(x).unwrap();
        let out = from_host.evaluate_gpu(&buffers[0]).unwrap();
        assert_eq!(out.reconstruction.shape, recon.shape);
        let mine = GpuTensor::from_buffer(
            host_buffer(ctx, &vec![0.0; recon.numel()]),
            0,
            recon.shape.clone(),
            DType::F32,
            "host reconstruction",
        )
        .unwrap();
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        ctx.copy(&out.reconstruction, &mine, Some(&mut enc))
            .unwrap();
        ctx.queue.submit([enc.finish()]);
        assert_eq!(bits(&ctx.download(&mine).unwrap().data), bits(&recon.data));
        assert_eq!(
            bits(&ctx.download(&out.code).unwrap().data),
            bits(&code.data)
        );
        assert_eq!(
            ctx.download(&out.loss).unwrap().data[0].to_bits(),
            loss.to_bits()
        );
        let train_loss = ctx.download(&from_host.loss_output().unwrap()).unwrap();
        assert_eq!(
            train_loss.data[0].to_bits(),
            l_host.last().unwrap().1.to_bits(),
            "[{}] the training loss left on the GPU is the last step's",
            tag(ctx)
        );
    }
}

/// A host records wgrad's training step into its own command encoder, next to its own work,
/// and submits it: the same numbers as steps wgrad submits itself.
#[test]
fn steps_recorded_into_a_host_encoder_match_submitted_steps() {
    for ctx in contexts() {
        let mut own = trainer(Device::Gpu(ctx.clone()));
        let mut hosted = trainer(Device::Gpu(ctx.clone()));
        let scratch = host_buffer(ctx, &[0.0; 64]);
        let marks = host_buffer(ctx, &[1.5; 64]);
        for i in 0..4 {
            let x = images(BATCH, 80 + i);
            own.step(&x).unwrap();
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("host frame"),
                });
            // The host's own work before and after wgrad's.
            enc.copy_buffer_to_buffer(&marks, 0, &scratch, 0, 128);
            let rec = hosted.record_step(&x, &mut enc).unwrap();
            let e = hosted.step(&x).unwrap_err().to_string();
            assert!(e.contains("not been reported submitted"), "{e}");
            enc.copy_buffer_to_buffer(&marks, 128, &scratch, 128, 128);
            ctx.queue.submit([enc.finish()]);
            hosted.submitted(rec).unwrap();
        }
        let a = own.flush_losses().unwrap();
        let b = hosted.flush_losses().unwrap();
        assert_eq!(b.len(), 4, "[{}] one loss per recorded step", tag(ctx));
        assert_eq!(
            a.iter().map(|l| (l.0, l.1.to_bits())).collect::<Vec<_>>(),
            b.iter().map(|l| (l.0, l.1.to_bits())).collect::<Vec<_>>(),
            "[{}] losses",
            tag(ctx)
        );
        assert!(
            param_bits(&own) == param_bits(&hosted),
            "[{}] parameters",
            tag(ctx)
        );
        let host_side = GpuTensor::from_buffer(scratch, 0, [64], DType::F32, "scratch").unwrap();
        assert_eq!(ctx.download(&host_side).unwrap().data, vec![1.5; 64]);
    }
}

/// The same trainer takes a full batch and smaller ones (the last batch of an epoch), each as
/// the CPU reference computes it.
#[test]
fn smaller_batches_train_and_match_the_cpu() {
    let mut cpu = trainer(Device::Cpu);
    let sizes = [BATCH, 5, BATCH, 1, 5];
    for (i, &n) in sizes.iter().enumerate() {
        cpu.step(&images(n, 90 + i as u64)).unwrap();
    }
    let want = cpu.flush_losses().unwrap();
    let want_params = cpu.state().unwrap();
    for ctx in contexts() {
        let mut t = trainer(Device::Gpu(ctx.clone()));
        for (i, &n) in sizes.iter().enumerate() {
            t.step(&images(n, 90 + i as u64)).unwrap();
        }
        assert_eq!(t.other_step_sizes(), vec![1, 5], "[{}]", tag(ctx));
        let got = t.flush_losses().unwrap();
        assert_eq!(
            got.iter().map(|l| l.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        crate::common::check(
            ctx,
            "losses of steps of 8, 5, 8, 1 and 5 images",
            &got.iter().map(|l| l.1).collect::<Vec<_>>(),
            &want.iter().map(|l| l.1).collect::<Vec<_>>(),
            wgrad::compare::Tolerance::reduction(784 * BATCH),
        );
        let state = t.state().unwrap();
        for ((name, g), (_, c)) in state.params.iter().zip(&want_params.params) {
            let max = c.data.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
            crate::common::check(
                ctx,
                &format!("{name} after mixed batch sizes"),
                &g.data,
                &c.data,
                wgrad::compare::Tolerance {
                    atol: 1e-4 * max + 1e-9,
                    rtol: 1e-4,
                },
            );
        }
        let e = t.step(&images(BATCH + 1, 1)).unwrap_err().to_string();
        assert!(e.contains("larger than the 8"), "{e}");
    }
}

/// A program compiled by one session is refused by another, and the error names both.
#[test]
fn a_program_refuses_a_session_that_did_not_compile_it() {
    let config = AutoencoderConfig::default();
    let params = wgrad::nn::init_params(&config.params(), 1);
    let wgrad::train::TrainingGraph {
        graph, input, loss, ..
    } = wgrad::train::training_graph(&config, 2, &|_| false).unwrap();
    let spec = ProgramSpec {
        loss: Some(loss),
        ..Default::default()
    };
    let mut devices = vec![Device::Cpu];
    devices.extend(contexts().iter().map(|c| Device::Gpu(c.clone())));
    let x = images(2, 3);
    for a in &devices {
        for b in &devices {
            let sa = Session::new(a.clone(), params.clone(), &|_| false, None).unwrap();
            let mut sb = Session::new(b.clone(), params.clone(), &|_| false, None).unwrap();
            let mut p = sa.compile(graph.clone(), spec.clone()).unwrap();
            let e = sb
                .run(&mut p, &[(input, Feed::Data(&x))])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("session #{}", sa.id()))
                    && e.contains(&format!("session #{}", sb.id()))
                    && e.contains(&a.describe())
                    && e.contains(&b.describe()),
                "{e}"
            );
            assert!(sb.fetch(&p, loss).is_err());
        }
    }
}

/// A classifier's logits left on the GPU are what its predictions are read from.
#[test]
fn classifier_logits_stay_on_the_gpu() {
    use wgrad::classify::Classifier;
    let config = AutoencoderConfig::default();
    let encoder = wgrad::nn::init_params(&config.params(), 3);
    for ctx in contexts() {
        let mut c = Classifier::new(
            Device::Gpu(ctx.clone()),
            &config,
            &encoder,
            6,
            Some(16),
            false,
            BATCH,
            Optimizer::Adam(AdamConfig::adam()),
            1,
        )
        .unwrap();
        let x = images(5, 11);
        c.step(&images(BATCH, 12), &[0, 1, 2, 3, 4, 5, 0, 1])
            .unwrap();
        c.step(&x, &[1, 2, 3, 4, 5]).unwrap();
        let predicted = c.predict(&x).unwrap();
        let logits = c.logits_gpu(&x).unwrap();
        assert_eq!(logits.shape.dims(), [5, 6]);
        let on_host = ctx.download(&logits).unwrap();
        let argmax: Vec<u32> = on_host
            .data
            .chunks(6)
            .map(|r| (0..6).fold(0, |b, i| if r[i] > r[b] { i } else { b }) as u32)
            .collect();
        assert_eq!(argmax, predicted, "[{}]", tag(ctx));
        assert_eq!(c.flush_losses().unwrap().len(), 2);
    }
}

/// What a host may move to, or share with, another thread: trainers, sessions and programs
/// move; a context is shared.
#[test]
fn engines_move_between_threads_and_share_a_device() {
    fn moves<T: Send>() {}
    fn shared<T: Send + Sync>() {}
    moves::<Trainer>();
    moves::<Session>();
    moves::<wgrad::exec::Program>();
    moves::<wgrad::classify::Classifier>();
    shared::<GpuContext>();
    // Two trainers on two threads, on one device at once, each as it computes alone.
    let run = |t: &mut Trainer, seed: u64| {
        for i in 0..4 {
            t.step(&images(BATCH, seed + i)).unwrap();
        }
        let losses: Vec<u32> = t
            .flush_losses()
            .unwrap()
            .iter()
            .map(|l| l.1.to_bits())
            .collect();
        (losses, param_bits(t))
    };
    for ctx in contexts() {
        let alone: Vec<_> = [100, 200]
            .map(|seed| run(&mut trainer(Device::Gpu(ctx.clone())), seed))
            .into();
        let together: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = [100, 200]
                .map(|seed| {
                    let mut t = trainer(Device::Gpu(ctx.clone()));
                    s.spawn(move || run(&mut t, seed))
                })
                .into();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            alone == together,
            "[{}] two threads changed the numbers",
            tag(ctx)
        );
    }
}
