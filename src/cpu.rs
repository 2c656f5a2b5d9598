//! The CPU features this binary was compiled to use, checked against the
//! CPU it runs on before anything else runs: a binary built with
//! `target-cpu=native` on a newer machine would otherwise die with "illegal
//! instruction" somewhere in the model's kernels.

/// Features the build assumed that this CPU lacks; empty when it can run.
pub fn missing_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut missing = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! need {
            ($($feature:tt),*) => {$(
                if cfg!(target_feature = $feature) && !std::arch::is_x86_feature_detected!($feature) {
                    missing.push($feature);
                }
            )*};
        }
        need!(
            "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1",
            "bmi2", "lzcnt", "movbe", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"
        );
    }
    missing
}

/// The message for an operator whose CPU cannot run this build.
pub fn explain(missing: &[&str]) -> String {
    format!(
        "this frontdesk binary was built for a CPU with {}, which this CPU lacks. \
         Build it on this machine (`cargo build --release`, which uses the native CPU), \
         or build one binary for a family of servers with \
         RUSTFLAGS=\"-C target-cpu=x86-64-v3\" (AVX2 and FMA, any x86-64 server since about 2015)",
        missing.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_that_built_it_can_run_it() {
        assert_eq!(missing_features(), Vec::<&str>::new());
        assert!(explain(&["avx512f"]).contains("avx512f"));
    }
}
