//! The `device` section: which RDMA device and port, and how to address it.

use std::net::IpAddr;

use serde::Deserialize;

use super::Issues;

/// Which RDMA device and port, and how to address it.
///
/// Exactly one of `name`, `netdev` and `ip` selects the device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DeviceConfig {
    /// The verbs device name, e.g. `mlx5_0` or `rxe0`. No default.
    #[serde(default)]
    pub name: Option<String>,
    /// The network interface the device sits on, e.g. `eth0`. No default.
    #[serde(default)]
    pub netdev: Option<String>,
    /// An IP address of the interface the device sits on. No default.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// The device port. Default 1; bounds 1..=255.
    #[serde(default = "default_port")]
    pub port: u32,
    /// The GID table index. Default: on RoCE, the RoCE v2 entry holding the
    /// port's IPv4-mapped address; on InfiniBand, 0. Bounds 0..=255.
    #[serde(default)]
    pub gid_index: Option<u32>,
    /// Link-layer hint, checked against the port's actual link layer:
    /// `infiniband` (LID routing) or `roce` (every packet carries a GRH).
    /// Default: taken from the port.
    #[serde(default)]
    pub link_layer: Option<LinkLayerHint>,
    /// RoCE only: GRH traffic class (DSCP << 2 | ECN). Default 0; bounds 0..=255.
    #[serde(default)]
    pub traffic_class: Option<u32>,
    /// RoCE only: GRH hop limit. Default 64; bounds 1..=255.
    #[serde(default)]
    pub hop_limit: Option<u32>,
    /// Service level (InfiniBand SL; on RoCE mapped to a priority). Default 0;
    /// bounds 0..=15.
    #[serde(default)]
    pub service_level: u32,
}

fn default_port() -> u32 {
    1
}

/// How packets reach the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkLayerHint {
    /// InfiniBand: routed by LID inside the subnet.
    Infiniband,
    /// RoCE v2 (including Soft-RoCE): routed by GID, every packet has a GRH.
    Roce,
}

/// The `device` section once checked: its numbers narrowed to the widths
/// verbs takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CheckedDevice {
    pub(super) port: u8,
    pub(super) gid_index: Option<u32>,
    pub(super) traffic_class: Option<u8>,
    pub(super) hop_limit: Option<u8>,
    pub(super) service_level: u8,
}

impl DeviceConfig {
    /// Checks every bound; the result is meaningful only when no issue was
    /// pushed.
    pub(super) fn check(&self, v: &mut Issues) -> CheckedDevice {
        let chosen = [
            self.name.is_some(),
            self.netdev.is_some(),
            self.ip.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if chosen != 1 {
            v.push(
                "device",
                format!(
                    "set exactly one of `name`, `netdev` or `ip` to select the device, got {chosen}"
                ),
            );
        }
        for (field, value) in [("device.name", &self.name), ("device.netdev", &self.netdev)] {
            if let Some(s) = value {
                if s.is_empty() || s.len() > 64 || s.contains(['/', '\0']) {
                    v.push(
                        field,
                        format!("must be 1..=64 bytes without '/', got {s:?}"),
                    );
                }
            }
        }
        let port = v.u8_in("device.port", self.port, 1, 255);
        if let Some(g) = self.gid_index {
            v.range("device.gid-index", g.into(), 0, 255);
        }
        let traffic_class = self
            .traffic_class
            .map(|tc| v.u8_in("device.traffic-class", tc, 0, 255));
        let hop_limit = self
            .hop_limit
            .map(|h| v.u8_in("device.hop-limit", h, 1, 255));
        if self.link_layer == Some(LinkLayerHint::Infiniband) {
            for (field, set) in [
                ("device.traffic-class", self.traffic_class.is_some()),
                ("device.hop-limit", self.hop_limit.is_some()),
            ] {
                if set {
                    v.push(
                        field,
                        "applies only to link-layer `roce` (GRH), not `infiniband`",
                    );
                }
            }
        }
        let service_level = v.u8_in("device.service-level", self.service_level, 0, 15);
        CheckedDevice {
            port,
            gid_index: self.gid_index,
            traffic_class,
            hop_limit,
            service_level,
        }
    }
}
