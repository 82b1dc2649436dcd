//! im2col / col2im / col2im_bias at the default autoencoder's shapes (batch 64), on the adapter
//! chosen the usual way (WGRAD_BACKEND=vulkan|gl|..., else the best present). Each shape runs
//! the library's kernel and, side by side in the same run, the kernel it replaced (one invocation
//! per output element, ~6 integer divisions each; embedded below as `OLD_WGSL`), so the machine's
//! noise does not decide the comparison. Throughput: elements = outputs written; bytes = the
//! least traffic (every input read once, every output written once).
//!
//! `WGRAD_IM2COL_SHARES=512,2048,...` adds runs of the new kernel with those workgroup shares
//! (elements per workgroup) besides the adapter's automatic one, for tuning.

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgrad::gpu::kernels::im2col::{GroupShare, col2im_with, im2col_with};
use wgrad::gpu::shaders::ShaderFile;
use wgrad::gpu::{Launch, Workgroups};
use wgrad::shape::{ConvGeometry, conv_transpose2d_geometry, conv2d_geometry};
use wgrad::{ConvParams, GpuContext, GpuTensor, Result, Shape, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Im2col,
    Col2im,
    Col2imBias,
}

impl Kind {
    fn entry(self) -> &'static str {
        match self {
            Kind::Im2col => "im2col",
            Kind::Col2im => "col2im",
            Kind::Col2imBias => "col2im_bias",
        }
    }
}

fn bench(c: &mut Criterion) {
    let Some(ctx) = common::context("im2col") else {
        return;
    };
    let adapter = ctx.describe();
    let s2 = ConvParams::square(2, 1, 1);
    let enc1 = conv2d_geometry("bench", &Shape::new([64, 1, 28, 28]), [3, 3], s2).unwrap();
    let enc2 = conv2d_geometry("bench", &Shape::new([64, 16, 14, 14]), [3, 3], s2).unwrap();
    let op1 = s2.with_output_padding(1);
    let dec1 =
        conv_transpose2d_geometry("bench", &Shape::new([64, 32, 7, 7]), 16, [3, 3], op1).unwrap();
    let dec2 =
        conv_transpose2d_geometry("bench", &Shape::new([64, 16, 14, 14]), 1, [3, 3], op1).unwrap();
    let cases: Vec<(&str, Kind, ConvGeometry)> = vec![
        ("enc conv1 fwd", Kind::Im2col, enc1),
        ("enc conv2 fwd", Kind::Im2col, enc2),
        ("enc conv2 dX", Kind::Col2im, enc2),
        ("dec tconv1 fwd", Kind::Col2imBias, dec1),
        ("dec tconv1 dW", Kind::Im2col, dec1),
        ("dec tconv2 fwd", Kind::Col2imBias, dec2),
    ];
    let mut shares = vec![GroupShare::Auto];
    if let Ok(list) = std::env::var("WGRAD_IM2COL_SHARES") {
        shares.extend(
            list.split(',')
                .filter_map(|s| s.trim().parse().ok())
                .map(GroupShare::Elements),
        );
    }

    let mut group = c.benchmark_group(format!("im2col [{adapter}]"));
    group.sample_size(10);
    for (what, kind, g) in cases {
        let image = ctx
            .upload(
                "image",
                &Tensor::uniform(g.image_shape().dims().to_vec(), -1.0, 1.0, 1),
            )
            .unwrap();
        let cols = ctx
            .upload(
                "cols",
                &Tensor::uniform(g.cols_shape().dims().to_vec(), -1.0, 1.0, 2),
            )
            .unwrap();
        let bias = ctx
            .upload("bias", &Tensor::uniform([g.channels], -1.0, 1.0, 3))
            .unwrap();
        let (outputs, inputs) = match kind {
            Kind::Im2col => (g.cols_shape().numel(), g.image_shape().numel()),
            Kind::Col2im => (g.image_shape().numel(), g.cols_shape().numel()),
            Kind::Col2imBias => (g.image_shape().numel(), g.cols_shape().numel() + g.channels),
        };
        let throughput = Throughput::ElementsAndBytes {
            elements: outputs as u64,
            bytes: 4 * (outputs + inputs) as u64,
        };
        let p = &g.params;
        eprintln!(
            "{} {what}: image {} k{:?} s{:?} p{:?}, cols {}",
            kind.entry(),
            g.image_shape(),
            g.kernel,
            p.stride,
            p.padding,
            g.cols_shape()
        );
        let name = format!("{} {what}", kind.entry());
        let mut launches: Vec<(String, Launch)> = vec![(
            "old".into(),
            old_launch(&ctx, kind, &g, &image, &cols, &bias).unwrap(),
        )];
        for share in &shares {
            let l = match kind {
                Kind::Im2col => im2col_with(&ctx, &g, &image, &cols, *share),
                Kind::Col2im => col2im_with(&ctx, &g, &cols, None, &image, *share),
                Kind::Col2imBias => col2im_with(&ctx, &g, &cols, Some(&bias), &image, *share),
            };
            launches.push((
                match share {
                    GroupShare::Auto => "new".to_string(),
                    GroupShare::Elements(n) => format!("new share {n}"),
                },
                l.unwrap(),
            ));
        }
        for (label, l) in &launches {
            let id = format!("{name} {label}");
            common::launches(&mut group, &ctx, id, throughput.clone(), &[l]);
        }
    }
    group.finish();
}

/// The kernel this crate used before (one invocation per output element, indices recovered with
/// `/` and `%` by runtime values), kept here only to be compared against.
const OLD: ShaderFile = ShaderFile::new("im2col_old.wgsl", OLD_WGSL);

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct OldParams {
    geometry: [u32; 14],
    total: u32,
    _pad: u32,
}

fn old_launch(
    ctx: &GpuContext,
    kind: Kind,
    g: &ConvGeometry,
    image: &GpuTensor,
    cols: &GpuTensor,
    bias: &GpuTensor,
) -> Result<Launch> {
    let p = &g.params;
    let geometry = [
        g.batch,
        g.channels,
        g.height,
        g.width,
        g.kernel[0],
        g.kernel[1],
        p.stride[0],
        p.stride[1],
        p.padding[0],
        p.padding[1],
        p.dilation[0],
        p.dilation[1],
        g.out_h,
        g.out_w,
    ]
    .map(|x| x as u32);
    let (total, tensors) = match kind {
        Kind::Im2col => (g.cols_shape().numel(), vec![image, cols]),
        Kind::Col2im => (g.image_shape().numel(), vec![cols, image]),
        Kind::Col2imBias => (g.image_shape().numel(), vec![cols, image, bias]),
    };
    let params = OldParams {
        geometry,
        total: total as u32,
        _pad: 0,
    };
    ctx.launch(
        OLD,
        kind.entry(),
        &[],
        bytemuck::bytes_of(&params),
        &tensors,
        Workgroups::Linear((total as u64).div_ceil(64)),
    )
}

const OLD_WGSL: &str = r#"
struct Params {
    batch: u32, channels: u32, height: u32, width: u32,
    kh: u32, kw: u32, stride_h: u32, stride_w: u32,
    pad_h: u32, pad_w: u32, dil_h: u32, dil_w: u32,
    out_h: u32, out_w: u32,
    total: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;

const WG: u32 = 64u;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn im2col(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_index(wid, nwg, lid);
    if idx >= p.total {
        return;
    }
    let ox = idx % p.out_w;
    let oy = (idx / p.out_w) % p.out_h;
    let t = idx / (p.out_w * p.out_h);
    let j = t % p.kw;
    let i = (t / p.kw) % p.kh;
    let nc = t / (p.kw * p.kh);
    let iy = i32(oy * p.stride_h + i * p.dil_h) - i32(p.pad_h);
    let ix = i32(ox * p.stride_w + j * p.dil_w) - i32(p.pad_w);
    var v = 0.0;
    if iy >= 0 && iy < i32(p.height) && ix >= 0 && ix < i32(p.width) {
        v = src[(nc * p.height + u32(iy)) * p.width + u32(ix)];
    }
    dst[idx] = v;
}

fn gather(idx: u32) -> f32 {
    let x = idx % p.width;
    let y = (idx / p.width) % p.height;
    let nc = idx / (p.width * p.height);
    let plane = p.out_h * p.out_w;
    var acc = 0.0;
    for (var i = 0u; i < p.kh; i++) {
        let ty = i32(y + p.pad_h) - i32(i * p.dil_h);
        if ty < 0 || u32(ty) % p.stride_h != 0u {
            continue;
        }
        let oy = u32(ty) / p.stride_h;
        if oy >= p.out_h {
            continue;
        }
        for (var j = 0u; j < p.kw; j++) {
            let tx = i32(x + p.pad_w) - i32(j * p.dil_w);
            if tx < 0 || u32(tx) % p.stride_w != 0u {
                continue;
            }
            let ox = u32(tx) / p.stride_w;
            if ox >= p.out_w {
                continue;
            }
            let row = (nc * p.kh + i) * p.kw + j;
            acc += src[row * plane + oy * p.out_w + ox];
        }
    }
    return acc;
}

@compute @workgroup_size(WG)
fn col2im(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_index(wid, nwg, lid);
    if idx >= p.total {
        return;
    }
    dst[idx] = gather(idx);
}

@compute @workgroup_size(WG)
fn col2im_bias(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_index(wid, nwg, lid);
    if idx >= p.total {
        return;
    }
    let c = (idx / (p.width * p.height)) % p.channels;
    dst[idx] = gather(idx) + bias[c];
}
"#;

criterion_group!(benches, bench);
criterion_main!(benches);
