//! The `wgrad` command.

fn main() {
    let adapters = wgrad::gpu::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found");
    }
    for a in adapters {
        println!("#{} {a}", a.index);
    }
}
