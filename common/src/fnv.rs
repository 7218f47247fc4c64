//! FNV-1a, 64 bits: tiny, stable across platforms and releases, and enough to notice that a
//! journal or a baseline was recorded under another input. It is not a defence against
//! tampering.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// FNV-1a 64 of `bytes` as 16 lowercase hex digits, the form journals and baselines store.
pub fn fnv1a64_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copy in `chaos/src/space.rs` (hashes a space file's text), kept here as the reference
    /// the shared function must match.
    fn chaos_copy(text: &str) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The copy in `agent/src/spec.rs` (hashes the specs' canonical JSON).
    fn agent_copy(bytes: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    #[test]
    fn known_answers() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64_hex(b""), "cbf29ce484222325");
    }

    #[test]
    fn matches_both_copies_on_what_they_hash() {
        let space = "versions:\n  - version: 1.59.0\n    gates: { PortRanges: Stable, PlayerTracking: Alpha }\n  - version: 1.60.0\n    gates: { PortRanges: Stable, PlayerTracking: Beta }\nhops: { max_up: 1, max_down: 1, allow_downgrade: true }\ntunables:\n  log_level: { values: [info, debug] }\nconstraints: []\n";
        let specs = r#"{"groups":[{"name":"allocation","interval":"5s","slos":[{"name":"success","expr":"sum(rate(upsoak_producer_allocations_total{result=\"Allocated\"}[5s]))","objective":">= 0.999","baseline":null,"for":"0s"}]}]}"#;
        for text in [space, specs, "", "ü ß — non-ASCII"] {
            assert_eq!(fnv1a64_hex(text.as_bytes()), chaos_copy(text));
            assert_eq!(fnv1a64(text.as_bytes()), agent_copy(text.as_bytes()));
        }
    }
}
