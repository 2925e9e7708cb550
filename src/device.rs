//! The one place that decides CPU or CUDA, says why, and makes CUDA reachable.
//!
//! rustc links with `--as-needed`, which drops `libtorch_cuda.so` because no symbol of it is
//! referenced directly; libtorch then never registers its CUDA backend and
//! `Cuda::is_available()` is false even on a GPU machine. [`ensure_cuda_loaded`] dlopens the
//! library with `RTLD_GLOBAL` when an NVIDIA driver is present, before the first CUDA query,
//! so the same binary (and code compiled by the evcxr kernel) gets CUDA without relinking.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tch::Device;

/// Directory of the libtorch shared libraries this crate was built against.
pub const TORCH_LIB_DIR: &str = env!("AUGWISE_TORCH_LIB");
/// Version of the PyPI torch wheel this crate was built against (e.g. `2.11.0+cu130`).
pub const TORCH_VERSION: &str = env!("AUGWISE_TORCH_VERSION");

/// The directory of the libtorch this process actually loaded (read from the loader's own
/// map, so it is true whatever RUNPATH, `LD_LIBRARY_PATH` or the launcher said).
pub fn loaded_libtorch_dir() -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.display().to_string()))
}

/// Why that libtorch: the `augwise` launcher's choice, else the loader's own search.
pub fn libtorch_reason() -> String {
    match std::env::var("AUGWISE_LIBTORCH_CHOSEN") {
        Ok(why) if !why.is_empty() => format!("chosen by the augwise launcher: {why}"),
        _ if std::env::var_os("LD_LIBRARY_PATH").is_some_and(|p| !p.is_empty()) => {
            "dynamic loader: LD_LIBRARY_PATH, then the build's RUNPATH".into()
        }
        _ => "dynamic loader: the build's RUNPATH".into(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`: expected `auto`, `cpu`, `cuda` or `cuda:N`")]
    Unknown(String),
    #[error("CUDA was requested (`{requested}`) but is not available: {why}. Use `--device cpu` or `auto`.")]
    CudaUnavailable { requested: String, why: String },
    #[error("`cuda:{index}` does not exist: this machine has {count} CUDA device(s) (cuda:0..cuda:{last})", last = count.saturating_sub(1))]
    NoSuchCuda { index: usize, count: usize },
    /// The device could not hold what was asked of it.
    #[error("{device} is out of memory: {what} needs {} more. Try a smaller `batch_size`, `split.limit` or model, fewer trajectories together (`trajectory_batch`), or another device", crate::limits::gb(*bytes))]
    OutOfMemory { device: String, what: String, bytes: u64 },
    /// A libtorch op failed while moving or reading data.
    #[error("{what} on {device}: {source}")]
    Torch {
        device: String,
        what: String,
        source: tch::TchError,
    },
}

impl DeviceError {
    /// `e` from an op that needed `bytes` on `device` for `what`: out of memory named as such.
    pub fn from_torch(e: tch::TchError, device: Device, what: &str, bytes: u64) -> Self {
        let text = e.to_string();
        if text.contains("out of memory") || text.contains("DefaultCPUAllocator: can't allocate memory") {
            DeviceError::OutOfMemory {
                device: device_name(device),
                what: what.to_owned(),
                bytes,
            }
        } else {
            DeviceError::Torch {
                device: device_name(device),
                what: what.to_owned(),
                source: e,
            }
        }
    }
}

/// A deep copy of `t` (tch's `copy`, fallible: a device out of memory is an error).
pub fn deep_copy(t: &tch::Tensor) -> Result<tch::Tensor, tch::TchError> {
    let mut c = t.f_zeros_like()?;
    c.f_copy_(t)?;
    Ok(c)
}

/// `t` on `device` (a no-op when already there); out of memory there is an error naming
/// `what` and the bytes it needed.
pub fn move_to(t: &tch::Tensor, device: Device, what: &str) -> Result<tch::Tensor, DeviceError> {
    t.f_to_device(device).map_err(|e| {
        let size = t.f_kind().map_or(8, |k| k.elt_size_in_bytes());
        let bytes = (t.numel() * size) as u64;
        DeviceError::from_torch(e, device, what, bytes)
    })
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum DeviceSpec {
    /// CUDA device 0 when present, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "auto" | "" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ => t
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Unknown(s.to_owned())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = DeviceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A resolved device and the reason it was chosen.
#[derive(Debug, Clone)]
pub struct DeviceChoice {
    pub device: Device,
    pub reason: String,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", device_name(self.device), self.reason)
    }
}

/// `cpu` or `cuda:N`, the way users type it.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Copy a host tensor (random draws, per-image factors) to `device` without waiting for the
/// GPU. libtorch's default host→CUDA copy ends with a stream synchronise, so each of the
/// dozen small uploads of an augmented batch would drain the GPU's queue (issue 13, item 5);
/// a non-blocking copy from pageable memory is staged by the driver before it returns, so the
/// host buffer may be dropped at once. On the CPU it is the tensor itself.
pub fn upload(t: tch::Tensor, device: Device) -> Result<tch::Tensor, tch::TchError> {
    if device == Device::Cpu && t.device() == Device::Cpu {
        return Ok(t);
    }
    let kind = t.f_kind()?;
    t.f_to_device_(device, kind, true, false)
}

thread_local! {
    static HOST_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A tensor's values on the host, counted. Every device→host read of the training loops goes
/// through here (each is a GPU sync): per batch only the loss that NaN detection and progress
/// need, per epoch the accuracy counters — tests/training.rs holds them to that.
pub fn host_read(t: &tch::Tensor) -> Result<Vec<f64>, tch::TchError> {
    HOST_READS.with(|c| c.set(c.get() + 1));
    Vec::<f64>::try_from(
        t.f_to_kind(tch::Kind::Double)?
            .f_to_device(Device::Cpu)?
            .f_flatten(0, -1)?,
    )
}

/// Reads through [`host_read`] on this thread so far.
pub fn host_reads() -> u64 {
    HOST_READS.with(std::cell::Cell::get)
}

/// Process-wide set-up every entry point runs once: the CUDA backend (above) and the host
/// allocator.
///
/// glibc returns freed blocks above 128 KiB to the kernel (mmap threshold, heap trimming), so
/// every activation tensor of every training step is a fresh mmap and page faults on first
/// touch. Python's own start-up happens to raise glibc's dynamic threshold; a Rust binary does
/// not, and measured ~25% slower than PyTorch on a ResNet-20 CPU step (570 vs 740 images/s on
/// 2 cores). Keeping blocks up to 32 MiB in the heap and trimming only above 256 MiB closes
/// the gap (BENCHMARKS.md).
pub fn init_runtime() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator thresholds; valid for any values.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        }
        ensure_cuda_loaded();
    });
}

/// Resolve a spec to a device, loading libtorch's CUDA backend first if a driver is present.
pub fn resolve(spec: DeviceSpec) -> Result<DeviceChoice, DeviceError> {
    init_runtime();
    let load = ensure_cuda_loaded();
    let count = cuda_device_count();
    let choice = match spec {
        DeviceSpec::Cpu => Ok(DeviceChoice {
            device: Device::Cpu,
            reason: "requested".into(),
        }),
        DeviceSpec::Auto if count > 0 => Ok(DeviceChoice {
            device: Device::Cuda(0),
            reason: format!("auto: {count} CUDA device(s) found"),
        }),
        DeviceSpec::Auto => Ok(DeviceChoice {
            device: Device::Cpu,
            reason: format!("auto: no CUDA ({})", load.note),
        }),
        DeviceSpec::Cuda(_) if count == 0 => Err(DeviceError::CudaUnavailable {
            requested: spec.to_string(),
            why: load.note.clone(),
        }),
        DeviceSpec::Cuda(index) if index >= count => Err(DeviceError::NoSuchCuda { index, count }),
        DeviceSpec::Cuda(index) => Ok(DeviceChoice {
            device: Device::Cuda(index),
            reason: "requested".into(),
        }),
    };
    if choice.as_ref().is_ok_and(|c| c.device.is_cuda()) {
        // Fixed 32×32 shapes: cuDNN's autotuner pays for itself within a few batches (the
        // PyTorch peers set it too). GPU convolutions are not bit-reproducible either way.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    choice
}

/// Number of CUDA devices libtorch can use (after [`ensure_cuda_loaded`]).
pub fn cuda_device_count() -> usize {
    ensure_cuda_loaded();
    usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
}

/// Outcome of the attempt to load libtorch's CUDA backend.
#[derive(Debug, Clone)]
pub struct CudaLoad {
    pub driver_present: bool,
    pub loaded: bool,
    pub note: String,
}

/// Load `libtorch_cuda.so` with `RTLD_GLOBAL` once per process, if an NVIDIA driver exists.
pub fn ensure_cuda_loaded() -> &'static CudaLoad {
    static LOAD: OnceLock<CudaLoad> = OnceLock::new();
    LOAD.get_or_init(|| {
        let driver_present =
            std::path::Path::new("/proc/driver/nvidia/version").exists() || dlopen_global("libcuda.so.1").is_ok();
        if !driver_present {
            return CudaLoad {
                driver_present,
                loaded: false,
                note: "no NVIDIA driver on this machine".into(),
            };
        }
        let candidates = [
            format!("{TORCH_LIB_DIR}/libtorch_cuda.so"),
            "libtorch_cuda.so".to_owned(),
        ];
        let mut errors = Vec::new();
        for path in candidates
            .iter()
            .filter(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        {
            match dlopen_global(path) {
                Ok(()) => {
                    return CudaLoad {
                        driver_present,
                        loaded: true,
                        note: format!("loaded {path}"),
                    }
                }
                Err(e) => errors.push(format!("{path}: {e}")),
            }
        }
        CudaLoad {
            driver_present,
            loaded: false,
            note: format!(
                "NVIDIA driver present but libtorch_cuda.so could not be loaded ({}); is the torch \
                 wheel a CUDA build? Re-run scripts/setup.sh",
                if errors.is_empty() {
                    "not found".to_owned()
                } else {
                    errors.join("; ")
                }
            ),
        }
    })
}

fn dlopen_global(path: &str) -> Result<(), String> {
    let c = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: dlopen with a valid NUL-terminated path; the handle is intentionally leaked so
    // the library stays loaded for the life of the process.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or null.
        let err = unsafe { libc::dlerror() };
        let msg = if err.is_null() {
            "dlopen failed".to_owned()
        } else {
            // SAFETY: non-null dlerror result is a valid C string.
            unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy().into_owned()
        };
        return Err(msg);
    }
    Ok(())
}

/// What `device` prints: enough to tell why training runs where it runs.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostics {
    pub torch_version: String,
    /// Where the build linked libtorch.
    pub libtorch_dir: String,
    /// Where the running process loaded it from, and why.
    pub libtorch_loaded: String,
    pub libtorch_reason: String,
    pub nvidia_driver: bool,
    pub cuda_backend_loaded: bool,
    pub cuda_note: String,
    pub cuda_available: bool,
    pub cuda_devices: usize,
    pub cudnn_available: bool,
    pub threads: i32,
    pub interop_threads: i32,
    pub mkldnn: bool,
    pub openmp: bool,
    pub default_device: String,
}

impl Diagnostics {
    pub fn collect() -> Self {
        let load = ensure_cuda_loaded();
        let cuda_devices = cuda_device_count();
        let default_device = resolve(DeviceSpec::Auto)
            .map(|c| c.to_string())
            .unwrap_or_else(|e| e.to_string());
        Self {
            torch_version: TORCH_VERSION.to_owned(),
            libtorch_dir: TORCH_LIB_DIR.to_owned(),
            libtorch_loaded: loaded_libtorch_dir().unwrap_or_else(|| "unknown (no /proc/self/maps)".into()),
            libtorch_reason: libtorch_reason(),
            nvidia_driver: load.driver_present,
            cuda_backend_loaded: load.loaded,
            cuda_note: load.note.clone(),
            cuda_available: tch::Cuda::is_available(),
            cuda_devices,
            cudnn_available: cuda_devices > 0 && tch::Cuda::cudnn_is_available(),
            threads: tch::get_num_threads(),
            interop_threads: tch::get_num_interop_threads(),
            mkldnn: tch::utils::has_mkldnn(),
            openmp: tch::utils::has_openmp(),
            default_device,
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("CPU".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        for s in [DeviceSpec::Auto, DeviceSpec::Cpu, DeviceSpec::Cuda(2)] {
            assert_eq!(s.to_string().parse::<DeviceSpec>().unwrap(), s);
        }
    }

    #[test]
    fn cpu_always_resolves_and_missing_cuda_is_an_error() {
        let c = resolve(DeviceSpec::Cpu).unwrap();
        assert_eq!(c.device, Device::Cpu);
        let n = cuda_device_count();
        match resolve(DeviceSpec::Cuda(n)) {
            Err(DeviceError::CudaUnavailable { .. }) | Err(DeviceError::NoSuchCuda { .. }) => {}
            other => panic!("cuda:{n} should not resolve, got {other:?}"),
        }
    }

    #[test]
    fn diagnostics_name_the_torch_build() {
        let d = Diagnostics::collect();
        assert!(d.torch_version.starts_with("2.11.0"), "{}", d.torch_version);
        // The loader's map names the libtorch in use; in tests that is the build's own.
        let loaded = loaded_libtorch_dir().expect("libtorch_cpu.so is mapped");
        assert_eq!(
            std::fs::canonicalize(&loaded).unwrap(),
            std::fs::canonicalize(TORCH_LIB_DIR).unwrap(),
            "{d}"
        );
        assert!(d.threads >= 1);
        assert!(d.to_string().contains("torch"));
    }
}
