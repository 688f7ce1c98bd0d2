//! Hex text for the 16-byte log UUID (in the epoch file, logs and `status`).

/// Lower-case hex digits of `bytes`, two per byte.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 32 hex digits into 16 bytes; `None` for anything else.
pub fn decode_16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_refusals() {
        let u: [u8; 16] = core::array::from_fn(|i| (i as u8) * 17);
        let text = super::encode(&u);
        assert_eq!(text, "00112233445566778899aabbccddeeff");
        assert_eq!(super::decode_16(&text), Some(u));
        assert_eq!(super::decode_16("00112233"), None, "too short");
        assert_eq!(super::decode_16(&"zz".repeat(16)), None, "not hex");
        assert_eq!(super::decode_16(&"é".repeat(16)), None, "not ASCII");
    }
}
