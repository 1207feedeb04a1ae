//! The facts about the processor that every benchmark figure is read with: its model name and
//! the AES path Veil's fixed-key hashing takes on it. Figures move between processors (2 to 2.5
//! times between the machines Veil is measured on), so reports carry these beside the numbers.

use serde::Serialize;

/// The processor a report was measured on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// The processor's model name (`/proc/cpuinfo`'s `model name`, as `lscpu` prints it), or
    /// `"unknown"`.
    pub cpu_model: String,
    /// The AES path Veil's hashing and PRGs take ([`veil_ot::wide_aes::path`]):
    /// `"vaes-avx512"` (four blocks per instruction), `"aes-ni"`, or `"portable"` (the `aes`
    /// crate: ARMv8 crypto extensions or constant-time software). `VEIL_AES` may narrow it.
    pub aes_path: &'static str,
    /// The bit-matrix transposition of OT extension ([`veil_ot::transpose::path`]):
    /// `"avx512"`, `"avx2"` or `"portable"`.
    pub transpose_path: &'static str,
    /// Whether the processor offers VAES (several AES blocks per instruction).
    pub cpu_has_vaes: bool,
}

impl Machine {
    /// Reads the facts of the processor this process runs on.
    pub fn detect() -> Machine {
        Machine {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
            aes_path: aes_path(),
            transpose_path: veil_ot::transpose::path().name(),
            cpu_has_vaes: has_vaes(),
        }
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| {
            let k = k.trim();
            k == "model name" || k == "Model" || k == "Hardware"
        })
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn aes_path() -> &'static str {
    veil_ot::wide_aes::path().name()
}

#[cfg(target_arch = "x86_64")]
fn has_vaes() -> bool {
    std::arch::is_x86_feature_detected!("vaes")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_vaes() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_is_described() {
        let m = Machine::detect();
        assert!(!m.cpu_model.is_empty());
        assert!(["vaes-avx512", "aes-ni", "portable"].contains(&m.aes_path));
        assert!(["avx512", "avx2", "portable"].contains(&m.transpose_path));
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["cpu_model"].is_string() && json["cpu_has_vaes"].is_boolean());
    }
}
