//! Seed mixing shared by the seeded generators (obstacle scenarios, synthetic circuits).

/// SplitMix64's finaliser (Steele et al., "Fast Splittable Pseudorandom Number Generators",
/// OOPSLA 2014): a bijective mix of 64 bits, so that nearby seeds give unrelated streams.
pub fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
