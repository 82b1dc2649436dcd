//! Shader validation and translation with naga, needing no GPU: every WGSL file is parsed,
//! validated, specialised with its pipeline constants' defaults, and translated to SPIR-V
//! (Vulkan), MSL (Metal), HLSL (DX12) and GLSL ES (GL). This is the evidence that the kernels
//! compile for backends a machine does not have.

use crate::error::{Error, Result};
use crate::gpu::shaders::ShaderFile;
use naga::back::{glsl, hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};

/// The targets naga translates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    SpirV,
    Msl,
    Hlsl,
    Glsl,
}

/// One entry point translated for one target.
#[derive(Clone, Debug)]
pub struct Translation {
    pub entry: String,
    pub target: Target,
    /// Size of the generated code (bytes of text, or of SPIR-V words).
    pub bytes: usize,
}

fn err(file: ShaderFile, entry: &str, what: impl std::fmt::Display) -> Error {
    Error::Shader {
        file: file.name.into(),
        entry: entry.into(),
        message: what.to_string(),
    }
}

/// Parses and validates `file`, returning the module and its validation info.
pub fn validate(file: ShaderFile) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
    let module = naga::front::wgsl::parse_str(file.source).map_err(|e| {
        err(
            file,
            "(module)",
            e.emit_to_string_with_path(file.source, file.name),
        )
    })?;
    // A subgroup variant is validated as wgpu validates it on a device with `SUBGROUP`.
    let mut validator = if file.subgroups {
        let mut v = Validator::new(ValidationFlags::all(), Capabilities::SUBGROUP);
        v.subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
        v
    } else {
        Validator::new(ValidationFlags::all(), Capabilities::default())
    };
    let info = validator.validate(&module).map_err(|e| {
        err(
            file,
            "(module)",
            e.emit_to_string_with_path(file.source, file.name),
        )
    })?;
    Ok((module, info))
}

/// Names of the compute entry points of `file`.
pub fn entry_points(file: ShaderFile) -> Result<Vec<String>> {
    let (module, _) = validate(file)?;
    Ok(module.entry_points.iter().map(|e| e.name.clone()).collect())
}

/// Translates every entry point of `file` to every target.
pub fn translate(file: ShaderFile) -> Result<Vec<Translation>> {
    let (module, info) = validate(file)?;
    let stage = naga::ShaderStage::Compute;
    let mut out = Vec::new();
    for ep in &module.entry_points {
        let name = ep.name.as_str();
        let (module, info) = naga::back::pipeline_constants::process_overrides(
            &module,
            &info,
            Some((stage, name)),
            &Default::default(),
        )
        .map_err(|e| err(file, name, format!("pipeline constants: {e}")))?;

        let spv_opts = spv::Options::default();
        let spv_pipe = spv::PipelineOptions {
            shader_stage: stage,
            entry_point: name.into(),
        };
        let words = spv::write_vec(&module, &info, &spv_opts, Some(&spv_pipe))
            .map_err(|e| err(file, name, format!("SPIR-V: {e}")))?;
        out.push(Translation {
            entry: name.into(),
            target: Target::SpirV,
            bytes: words.len() * 4,
        });

        let msl_pipe = msl::PipelineOptions {
            entry_point: Some((stage, name.into())),
            ..Default::default()
        };
        // Subgroup operations need MSL 2.1 (simd-group functions) and HLSL shader model 6.0
        // (wave intrinsics): what wgpu asks for on such a device.
        let msl_opts = msl::Options {
            lang_version: if file.subgroups { (2, 3) } else { (1, 0) },
            ..Default::default()
        };
        let (msl_src, _) = msl::write_string(&module, &info, &msl_opts, &msl_pipe)
            .map_err(|e| err(file, name, format!("MSL: {e}")))?;
        out.push(Translation {
            entry: name.into(),
            target: Target::Msl,
            bytes: msl_src.len(),
        });

        let hlsl_opts = hlsl::Options {
            shader_model: if file.subgroups {
                hlsl::ShaderModel::V6_0
            } else {
                hlsl::ShaderModel::V5_1
            },
            ..Default::default()
        };
        let hlsl_pipe = hlsl::PipelineOptions {
            entry_point: Some((stage, name.into())),
        };
        let mut hlsl_src = String::new();
        hlsl::Writer::new(&mut hlsl_src, &hlsl_opts, &hlsl_pipe)
            .write(&module, &info, None)
            .map_err(|e| err(file, name, format!("HLSL: {e}")))?;
        out.push(Translation {
            entry: name.into(),
            target: Target::Hlsl,
            bytes: hlsl_src.len(),
        });

        let glsl_opts = glsl::Options {
            version: glsl::Version::new_gles(310),
            ..Default::default()
        };
        let glsl_pipe = glsl::PipelineOptions {
            shader_stage: stage,
            entry_point: name.into(),
            multiview: None,
        };
        let mut glsl_src = String::new();
        glsl::Writer::new(
            &mut glsl_src,
            &module,
            &info,
            &glsl_opts,
            &glsl_pipe,
            Default::default(),
        )
        .and_then(|mut w| w.write().map(|_| ()))
        .map_err(|e| err(file, name, format!("GLSL: {e}")))?;
        out.push(Translation {
            entry: name.into(),
            target: Target::Glsl,
            bytes: glsl_src.len(),
        });
    }
    Ok(out)
}
