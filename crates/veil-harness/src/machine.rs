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
    /// The AES implementation the `aes` crate selects at run time: `"aes-ni"` (x86-64 AES
    /// instructions), `"armv8-crypto"`, or `"software"` (constant-time bitsliced).
    pub aes_path: &'static str,
    /// Whether the processor offers VAES (several AES blocks per instruction), which the AES
    /// path above does not use.
    pub cpu_has_vaes: bool,
}

impl Machine {
    /// Reads the facts of the processor this process runs on.
    pub fn detect() -> Machine {
        Machine {
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".into()),
            aes_path: aes_path(),
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

#[cfg(target_arch = "x86_64")]
fn aes_path() -> &'static str {
    if std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("sse2") {
        "aes-ni"
    } else {
        "software"
    }
}

#[cfg(target_arch = "aarch64")]
fn aes_path() -> &'static str {
    if std::arch::is_aarch64_feature_detected!("aes") {
        "armv8-crypto"
    } else {
        "software"
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn aes_path() -> &'static str {
    "software"
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
        assert!(["aes-ni", "armv8-crypto", "software"].contains(&m.aes_path));
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["cpu_model"].is_string() && json["cpu_has_vaes"].is_boolean());
    }
}
