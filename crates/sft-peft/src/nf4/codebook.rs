//! The two lookup tables of bitsandbytes' 4-bit quantization.

/// The NF4 codebook (`bitsandbytes.functional.get_4bit_type("nf4")`, a saved checkpoint's `quant_map`): the value
/// of each 4-bit code, ascending; code 7 is exactly 0. Given as f32 bit patterns, so nothing is lost to decimal
/// rounding.
pub const NF4: [f32; 16] = [
    f32::from_bits(0xbf80_0000),
    f32::from_bits(0xbf32_39b1),
    f32::from_bits(0xbf06_6b30),
    f32::from_bits(0xbeca_32a0),
    f32::from_bits(0xbe91_a24d),
    f32::from_bits(0xbe3d_353f),
    f32::from_bits(0xbdba_7871),
    f32::from_bits(0x0000_0000),
    f32::from_bits(0x3da2_faff),
    f32::from_bits(0x3e24_cae3),
    f32::from_bits(0x3e7c_04dd),
    f32::from_bits(0x3ead_033a),
    f32::from_bits(0x3ee1_a4b8),
    f32::from_bits(0x3f10_07ab),
    f32::from_bits(0x3f39_13b3),
    f32::from_bits(0x3f80_0000),
];

/// Decision boundaries between neighbouring entries of `table`: the f32 midpoints `(t[i] + t[i+1]) / 2`.
pub fn midpoints(table: &[f32]) -> Vec<f32> {
    table.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
}

/// The index of the entry of an ascending table nearest to `x`, given the table's [`midpoints`]: the number of
/// midpoints strictly below `x`, so a value exactly on a boundary takes the lower index (`torch.bucketize`,
/// `right=False`, as bitsandbytes decides).
pub fn nearest(midpoints: &[f32], x: f32) -> u8 {
    midpoints.partition_point(|&m| m < x) as u8
}

/// bitsandbytes' signed dynamic map for 8-bit blockwise quantization (`create_dynamic_map(signed=True,
/// max_exponent_bits=7, total_bits=8)`, a checkpoint's `nested_quant_map`), built with torch's f32 arithmetic:
/// for `i` in 0..7, `linspace(0.1, 1, 2^i + 1)` in f32, the midpoints of neighbours, scaled by ±`f32(10^(i−6))`;
/// plus 0 and 1; sorted. 256 entries, index 0 = −0.99296875, 127 = 0, 255 = 1.
pub fn dynamic_map() -> [f32; 256] {
    let mut values = Vec::with_capacity(256);
    for i in 0..7i32 {
        let steps = (1usize << i) + 1;
        let bounds = linspace_f32(0.1, 1.0, steps);
        let scale = 10f64.powi(i - 6) as f32;
        for w in bounds.windows(2) {
            let mean = (w[0] + w[1]) / 2.0;
            values.push(scale * mean);
            values.push(-scale * mean);
        }
    }
    values.push(0.0);
    values.push(1.0);
    values.sort_by(f32::total_cmp);
    let mut out = [0f32; 256];
    out.copy_from_slice(&values);
    out
}

/// `torch.linspace(start, end, steps, dtype=float32)` on CPU: `step = (end − start) / (steps − 1)` rounded to f32,
/// the first half counted up from `start`, the second half down from `end`, each value computed exactly and
/// rounded once.
fn linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    let step = ((f64::from(end) - f64::from(start)) / (steps - 1) as f64) as f32;
    (0..steps)
        .map(|k| {
            if k < steps / 2 {
                (f64::from(start) + f64::from(step) * k as f64) as f32
            } else {
                (f64::from(end) - f64::from(step) * (steps - 1 - k) as f64) as f32
            }
        })
        .collect()
}
