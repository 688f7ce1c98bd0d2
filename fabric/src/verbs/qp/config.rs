//! The parameters a queue pair is created and connected with.

/// Path MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mtu {
    /// 256 bytes.
    Mtu256 = 1,
    /// 512 bytes.
    Mtu512 = 2,
    /// 1024 bytes.
    Mtu1024 = 3,
    /// 2048 bytes.
    Mtu2048 = 4,
    /// 4096 bytes.
    Mtu4096 = 5,
}

impl Mtu {
    /// The MTU for a byte count (256, 512, 1024, 2048, 4096).
    pub fn from_bytes(bytes: u32) -> Option<Mtu> {
        Some(match bytes {
            256 => Mtu::Mtu256,
            512 => Mtu::Mtu512,
            1024 => Mtu::Mtu1024,
            2048 => Mtu::Mtu2048,
            4096 => Mtu::Mtu4096,
            _ => return None,
        })
    }

    /// The MTU for an `ibv_mtu` code (what a port reports); 4096 for a code
    /// past the known ones.
    pub(super) fn from_code(code: u32) -> Mtu {
        match code {
            1 => Mtu::Mtu256,
            2 => Mtu::Mtu512,
            3 => Mtu::Mtu1024,
            4 => Mtu::Mtu2048,
            _ => Mtu::Mtu4096,
        }
    }
}

/// Queue pair parameters (the `qp` section of a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QpConfig {
    /// Upper bound on the path MTU; the port's active MTU caps it.
    pub path_mtu: Mtu,
    /// Local ACK timeout exponent: 4.096 µs × 2^timeout (14 ≈ 67 ms).
    pub timeout: u8,
    /// Transport retries before the QP errors (0..=7).
    pub retry_count: u8,
    /// RNR retries (0..=7, 7 = forever).
    pub rnr_retry: u8,
    /// RNR NAK timer code advertised to the peer.
    pub min_rnr_timer: u8,
    /// Outstanding RDMA READs this side may issue (capped by the device).
    pub max_rd_atomic: u8,
    /// Ships (WRITEs + READ flush) a mirror keeps in flight on this QP
    /// (1 = one at a time; see `qp.ships-in-flight`).
    pub ships_in_flight: u8,
    /// Send queue depth.
    pub max_send_wr: u32,
    /// Receive queue depth.
    pub max_recv_wr: u32,
    /// Largest WRITE sent inline (copied at post time, no DMA of the source).
    pub max_inline: u32,
    /// GID index to route with; `None` picks the default (RoCE v2
    /// IPv4-mapped on Ethernet, LID routing on InfiniBand).
    pub gid_index: Option<u32>,
    /// Traffic class of the GRH (RoCE: DSCP << 2 | ECN).
    pub traffic_class: u8,
    /// Service level.
    pub service_level: u8,
    /// GRH hop limit.
    pub hop_limit: u8,
}

impl Default for QpConfig {
    fn default() -> Self {
        QpConfig {
            path_mtu: Mtu::Mtu4096,
            timeout: 14,
            retry_count: 7,
            rnr_retry: 7,
            min_rnr_timer: 12,
            max_rd_atomic: 16,
            ships_in_flight: 1,
            max_send_wr: 256,
            max_recv_wr: 64,
            max_inline: 256,
            gid_index: None,
            traffic_class: 0,
            service_level: 0,
            hop_limit: 64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_codes_and_byte_counts_agree() {
        for bytes in [256, 512, 1024, 2048, 4096] {
            let mtu = Mtu::from_bytes(bytes).unwrap();
            assert_eq!(Mtu::from_code(mtu as u32), mtu);
        }
        assert_eq!(Mtu::from_bytes(1000), None);
    }
}
