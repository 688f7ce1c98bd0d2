//! Devices and their contexts: listing, opening by name or netdev, port and
//! GID queries.

use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use ibverbs_sys as ffi;

use super::{Result, VerbsError};

/// The link layer of a port: decides LID or GRH routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkLayer {
    /// InfiniBand: routed by LID, no GRH needed inside a subnet.
    InfiniBand,
    /// Ethernet (RoCE, including Soft-RoCE): every packet carries a GRH.
    Ethernet,
}

/// The type of a GID table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GidType {
    /// InfiniBand GID.
    Ib,
    /// RoCE v1 (Ethernet, not routable).
    RoceV1,
    /// RoCE v2 (UDP/IP, routable).
    RoceV2,
    /// Something newer than this code.
    Other(u32),
}

/// One valid entry of a port's GID table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GidEntry {
    /// Index in the table (what `sgid_index` takes).
    pub index: u32,
    /// The GID.
    pub gid: [u8; 16],
    /// Its type.
    pub gid_type: GidType,
}

impl GidEntry {
    /// The IPv4 address if this GID is IPv4-mapped (`::ffff:a.b.c.d`).
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        std::net::Ipv6Addr::from(self.gid).to_ipv4_mapped()
    }
}

/// Names of the RDMA devices on this machine.
///
/// # Errors
/// [`VerbsError::NoRdma`] when the kernel has no RDMA support.
pub fn device_names() -> Result<Vec<String>> {
    let list = DeviceList::get()?;
    Ok(list.iter().map(|(name, _)| name).collect())
}

/// The RDMA device whose port carries netdev `netdev` (e.g. `eth0`), from
/// sysfs (`/sys/class/infiniband/DEV/ports/*/gid_attrs/ndevs/*`).
///
/// # Errors
/// [`VerbsError::DeviceNotFound`] when no device sits on that netdev.
pub fn device_for_netdev(netdev: &str) -> Result<String> {
    let root = std::path::Path::new("/sys/class/infiniband");
    let mut names = Vec::new();
    if let Ok(devs) = std::fs::read_dir(root) {
        for dev in devs.flatten() {
            let name = dev.file_name().to_string_lossy().into_owned();
            let ports = dev.path().join("ports");
            for port in std::fs::read_dir(&ports).into_iter().flatten().flatten() {
                let ndevs = port.path().join("gid_attrs/ndevs");
                for nd in std::fs::read_dir(&ndevs).into_iter().flatten().flatten() {
                    if std::fs::read_to_string(nd.path()).is_ok_and(|s| s.trim() == netdev) {
                        return Ok(name);
                    }
                }
            }
            names.push(name);
        }
    }
    Err(VerbsError::DeviceNotFound {
        wanted: format!("on netdev {netdev}"),
        available: names,
    })
}

/// The netdev that carries IPv4 address `ip` (from `getifaddrs`).
///
/// # Errors
/// [`VerbsError::DeviceNotFound`] when no interface has it.
pub fn netdev_for_ip(ip: std::net::Ipv4Addr) -> Result<String> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: list is a valid out-pointer; freed below with freeifaddrs.
    tg_sys::syscall!(unsafe { libc::getifaddrs(&mut list) })
        .map_err(|e| VerbsError::verb("getifaddrs", "-", e))?;
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        // SAFETY: a non-null ifa_addr points to a sockaddr (getifaddrs(3)).
        let family = (!ifa.ifa_addr.is_null()).then(|| unsafe { (*ifa.ifa_addr).sa_family });
        if family.map(i32::from) == Some(libc::AF_INET) {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
            if std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)) == ip {
                // SAFETY: ifa_name is a NUL-terminated string owned by the list.
                found = Some(
                    unsafe { CStr::from_ptr(ifa.ifa_name) }
                        .to_string_lossy()
                        .into_owned(),
                );
                break;
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: list came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found.ok_or_else(|| VerbsError::DeviceNotFound {
        wanted: format!("with IP {ip}"),
        available: Vec::new(),
    })
}

/// The array from `ibv_get_device_list`, freed on drop.
struct DeviceList {
    list: NonNull<*mut ffi::ibv_device>,
    len: usize,
}

impl DeviceList {
    fn get() -> Result<Self> {
        let mut n: i32 = 0;
        // SAFETY: `n` is a valid out-pointer; the returned array (if non-null)
        // is owned by us until ibv_free_device_list, which Drop calls.
        let raw = unsafe { ffi::ibv_get_device_list(&mut n) };
        let list = tg_sys::non_null(raw).map_err(|e| VerbsError::NoRdma { source: Some(e) })?;
        let list = DeviceList {
            list,
            len: usize::try_from(n).unwrap_or(0),
        };
        if list.len == 0 {
            return Err(VerbsError::NoRdma { source: None });
        }
        Ok(list)
    }

    fn iter(&self) -> impl Iterator<Item = (String, *mut ffi::ibv_device)> + '_ {
        (0..self.len).map(move |i| {
            // SAFETY: i < len, the number of entries libibverbs reported.
            let dev = unsafe { *self.list.as_ptr().add(i) };
            // SAFETY: dev is a valid device of the live list; the name is a
            // NUL-terminated string owned by it, copied out at once.
            let name = unsafe { CStr::from_ptr(ffi::ibv_get_device_name(dev)) };
            (name.to_string_lossy().into_owned(), dev)
        })
    }
}

impl Drop for DeviceList {
    fn drop(&mut self) {
        // SAFETY: the list came from ibv_get_device_list and is freed once.
        // Contexts opened from it stay valid (ibv_get_device_list(3)).
        unsafe { ffi::ibv_free_device_list(self.list.as_ptr()) };
    }
}

pub(crate) struct ContextInner {
    pub(crate) ctx: NonNull<ffi::ibv_context>,
    pub(crate) name: String,
    pub(crate) port: u8,
    pub(crate) port_attr: ffi::ibv_port_attr,
    pub(crate) device_attr: ffi::ibv_device_attr,
}

// SAFETY: libibverbs objects may be used from any thread; the verbs are
// thread-safe (libibverbs(7), "thread safety"). ContextInner is immutable
// after construction.
unsafe impl Send for ContextInner {}
// SAFETY: as above.
unsafe impl Sync for ContextInner {}

impl Drop for ContextInner {
    fn drop(&mut self) {
        // SAFETY: ctx came from ibv_open_device and every object created from
        // it holds an Arc to this inner, so all of them are gone by now.
        unsafe { ffi::ibv_close_device(self.ctx.as_ptr()) };
    }
}

/// An open RDMA device, bound to one port.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<ContextInner>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("device", &self.inner.name)
            .field("port", &self.inner.port)
            .field("link_layer", &self.link_layer())
            .finish()
    }
}

impl Context {
    /// Opens device `name` (e.g. `rxe0`, `mlx5_0`) and checks that `port` is
    /// active.
    ///
    /// # Errors
    /// [`VerbsError::NoRdma`], [`VerbsError::DeviceNotFound`],
    /// [`VerbsError::PortNotActive`], or the failing verb.
    pub fn open(name: &str, port: u8) -> Result<Self> {
        let list = DeviceList::get()?;
        let mut available = Vec::new();
        let mut found = None;
        for (n, dev) in list.iter() {
            if n == name {
                found = Some(dev);
            }
            available.push(n);
        }
        let Some(dev) = found else {
            return Err(VerbsError::DeviceNotFound {
                wanted: name.to_owned(),
                available,
            });
        };
        // SAFETY: dev is a valid device of the live list.
        let raw = unsafe { ffi::ibv_open_device(dev) };
        drop(list);
        let ctx =
            tg_sys::non_null(raw).map_err(|e| VerbsError::verb("ibv_open_device", name, e))?;
        // Own the context at once so every error path below closes it.
        let mut inner = ContextInner {
            ctx,
            name: name.to_owned(),
            port,
            port_attr: ffi::ibv_port_attr::default(),
            device_attr: ffi::ibv_device_attr::default(),
        };
        // SAFETY: ctx is open; device_attr is a valid out-struct.
        let rc = unsafe { ffi::ibv_query_device(ctx.as_ptr(), &mut inner.device_attr) };
        tg_sys::errno_result(rc).map_err(|e| VerbsError::verb("ibv_query_device", name, e))?;
        // SAFETY: ctx is open; libibverbs' exported ibv_query_port fills the
        // full `ibv_port_attr`, whose compat prefix is what the binding names.
        let rc = unsafe {
            ffi::ibv_query_port(
                ctx.as_ptr(),
                port,
                std::ptr::from_mut(&mut inner.port_attr).cast(),
            )
        };
        tg_sys::errno_result(rc).map_err(|e| VerbsError::verb("ibv_query_port", name, e))?;
        let state = inner.port_attr.state;
        if state != ffi::ibv_port_state::IBV_PORT_ACTIVE
            && state != ffi::ibv_port_state::IBV_PORT_ARMED
        {
            return Err(VerbsError::PortNotActive {
                device: name.to_owned(),
                port,
                state,
            });
        }
        Ok(Context {
            inner: Arc::new(inner),
        })
    }

    /// Device name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Port number this context uses.
    pub fn port(&self) -> u8 {
        self.inner.port
    }

    /// The port's link layer.
    pub fn link_layer(&self) -> LinkLayer {
        if u32::from(self.inner.port_attr.link_layer) == ffi::IBV_LINK_LAYER_INFINIBAND {
            LinkLayer::InfiniBand
        } else {
            LinkLayer::Ethernet
        }
    }

    /// The port's LID (0 on Ethernet).
    pub fn lid(&self) -> u16 {
        self.inner.port_attr.lid
    }

    /// The port's active MTU as an `ibv_mtu` code (1 = 256 ... 5 = 4096).
    pub fn active_mtu_code(&self) -> u32 {
        self.inner.port_attr.active_mtu
    }

    /// Largest message one work request may move (`max_msg_sz`).
    pub fn max_msg_size(&self) -> u32 {
        self.inner.port_attr.max_msg_sz
    }

    /// Largest number of outstanding RDMA READs a QP may issue.
    pub fn max_qp_rd_atom(&self) -> u32 {
        u32::try_from(self.inner.device_attr.max_qp_rd_atom).unwrap_or(1)
    }

    /// Largest work-queue depth the device supports.
    pub fn max_qp_wr(&self) -> u32 {
        u32::try_from(self.inner.device_attr.max_qp_wr).unwrap_or(1)
    }

    /// The valid entries of the port's GID table, read now (GIDs follow the
    /// netdev's addresses, so they are never cached).
    ///
    /// # Errors
    /// The failing verb.
    pub fn gid_table(&self) -> Result<Vec<GidEntry>> {
        let len = usize::try_from(self.inner.port_attr.gid_tbl_len).unwrap_or(0);
        let mut raw = vec![ffi::ibv_gid_entry::default(); len];
        // SAFETY: raw has room for `len` entries of the size we pass.
        let n = unsafe {
            ffi::_ibv_query_gid_table(
                self.inner.ctx.as_ptr(),
                raw.as_mut_ptr(),
                raw.len(),
                0,
                std::mem::size_of::<ffi::ibv_gid_entry>(),
            )
        };
        let n = tg_sys::count(n)
            .map_err(|e| VerbsError::verb("ibv_query_gid_table", self.name(), e))?;
        Ok(raw
            .iter()
            .take(n)
            .filter(|e| e.port_num == u32::from(self.inner.port))
            .map(|e| GidEntry {
                index: e.gid_index,
                // SAFETY: every bit pattern of the union is a valid [u8; 16].
                gid: unsafe { e.gid.raw },
                gid_type: match e.gid_type {
                    ffi::IBV_GID_TYPE_IB => GidType::Ib,
                    ffi::IBV_GID_TYPE_ROCE_V1 => GidType::RoceV1,
                    ffi::IBV_GID_TYPE_ROCE_V2 => GidType::RoceV2,
                    t => GidType::Other(t),
                },
            })
            .collect())
    }

    /// The GID index to route with by default: `None` on InfiniBand (LID
    /// routing), the RoCE v2 IPv4-mapped GID on Ethernet.
    ///
    /// # Errors
    /// [`VerbsError::NoGid`] on Ethernet without such a GID.
    pub fn default_gid_index(&self) -> Result<Option<u32>> {
        if self.link_layer() == LinkLayer::InfiniBand {
            return Ok(None);
        }
        self.gid_table()?
            .iter()
            .find(|e| e.gid_type == GidType::RoceV2 && e.ipv4().is_some())
            .map(|e| Some(e.index))
            .ok_or_else(|| VerbsError::NoGid {
                device: self.name().to_owned(),
                port: self.port(),
                wanted: "RoCE v2 IPv4-mapped".to_owned(),
            })
    }

    /// The GID at `index`.
    ///
    /// # Errors
    /// [`VerbsError::NoGid`] if the index is not a valid entry.
    pub fn gid(&self, index: u32) -> Result<[u8; 16]> {
        self.gid_table()?
            .iter()
            .find(|e| e.index == index)
            .map(|e| e.gid)
            .ok_or_else(|| VerbsError::NoGid {
                device: self.name().to_owned(),
                port: self.port(),
                wanted: format!("index {index}"),
            })
    }
}
