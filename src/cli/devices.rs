//! `wgrad devices`: every adapter, and what wgrad would get from it.

use wgrad::gpu::{GpuContext, backend_name};

pub fn run(engine: &wgrad::Options) -> wgrad::Result<()> {
    let contexts = GpuContext::all(engine);
    if contexts.is_empty() {
        println!(
            "no GPU adapters found (on Linux without a GPU: apt-get install mesa-vulkan-drivers)"
        );
        return Ok(());
    }
    let chosen = GpuContext::new(engine)
        .map(|c| (c.info.name.clone(), c.info.backend))
        .ok();
    for (i, ctx) in contexts.into_iter().enumerate() {
        let ctx = match ctx {
            Ok(c) => c,
            Err(e) => {
                println!("#{i} could not be opened: {e}");
                continue;
            }
        };
        let info = &ctx.info;
        let mark = if chosen.as_ref() == Some(&(info.name.clone(), info.backend)) {
            "  (default)"
        } else {
            ""
        };
        println!("#{i} {}{mark}", info.name);
        println!(
            "    backend {}, {:?}, driver {} {}",
            backend_name(info.backend),
            info.device_type,
            info.driver,
            info.driver_info
        );
        let l = &ctx.limits;
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, workgroup ≤ {} invocations ({}×{}×{}), {} workgroups per dimension, {} KiB workgroup memory",
            l.max_storage_buffer_binding_size / (1 << 20),
            l.max_buffer_size / (1 << 20),
            l.max_compute_invocations_per_workgroup,
            l.max_compute_workgroup_size_x,
            l.max_compute_workgroup_size_y,
            l.max_compute_workgroup_size_z,
            l.max_compute_workgroups_per_dimension,
            l.max_compute_workgroup_storage_size / 1024,
        );
        println!(
            "    timestamp queries: {}; subgroups: {}",
            if ctx.has_timestamps() { "yes" } else { "no" },
            if ctx.has_subgroups() {
                format!(
                    "{}–{} lanes, {}",
                    info.subgroup_min_size,
                    info.subgroup_max_size,
                    match (ctx.uses_subgroups(), engine.subgroups) {
                        (true, _) => "used",
                        (false, None) => "not used on a CPU driver (--subgroups on uses them)",
                        (false, _) => "not used (--subgroups off)",
                    }
                )
            } else if engine.subgroups == Some(false) {
                "not asked for (--subgroups off)".into()
            } else {
                "no".into()
            }
        );
    }
    Ok(())
}
