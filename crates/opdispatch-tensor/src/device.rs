//! Devices a tensor can live on.

use crate::error::{Result, TensorError};
use std::fmt;
use std::str::FromStr;

/// Where a tensor's storage lives.
///
/// `Meta` tensors carry shapes and dtypes but no data; every op on them
/// computes only output metadata. `Cuda` storage lives on an NVIDIA GPU, found at run time
/// (see the `opdispatch-cuda` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Meta,
    Cuda(u8),
}

impl Device {
    /// The device type without an index ("cpu", "meta", "cuda").
    pub fn type_name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Meta => "meta",
            Device::Cuda(_) => "cuda",
        }
    }

    /// `Some(i)` for indexed devices.
    pub fn index(self) -> Option<u8> {
        match self {
            Device::Cuda(i) => Some(i),
            _ => None,
        }
    }

    pub fn is_cpu(self) -> bool {
        self == Device::Cpu
    }

    pub fn is_meta(self) -> bool {
        self == Device::Meta
    }

    /// Whether this build can hold data on the device.
    pub(crate) fn check_available(self) -> Result<()> {
        match self {
            // The driver is looked up at run time: without one this is PyTorch's "Found no
            // NVIDIA driver" error.
            Device::Cuda(i) => opdispatch_cuda::driver::check_device(usize::from(i))
                .map_err(|e| TensorError::Device(e.to_string())),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            d => f.write_str(d.type_name()),
        }
    }
}

impl FromStr for Device {
    type Err = TensorError;

    /// Accepts "cpu", "meta", "cuda" (index 0) and "cuda:N".
    fn from_str(s: &str) -> Result<Device> {
        let err = || TensorError::DeviceParse(format!("Invalid device string: '{s}'"));
        let (ty, idx) = match s.split_once(':') {
            Some((t, i)) => {
                // PyTorch rejects signs, leading zeros and whitespace in the index.
                if i.is_empty()
                    || !i.bytes().all(|b| b.is_ascii_digit())
                    || (i.len() > 1 && i.starts_with('0'))
                {
                    return Err(TensorError::DeviceParse(format!(
                        "Invalid device string: '{s}'"
                    )));
                }
                (t, Some(i.parse::<u8>().map_err(|_| err())?))
            }
            None => (s, None),
        };
        match (ty, idx) {
            ("cpu", None | Some(0)) => Ok(Device::Cpu),
            ("meta", None | Some(0)) => Ok(Device::Meta),
            ("cuda", i) => Ok(Device::Cuda(i.unwrap_or(0))),
            ("cpu" | "meta", Some(i)) => Err(TensorError::DeviceParse(format!(
                "{ty} device index must be 0 (got {i})"
            ))),
            _ if opdispatch_schema::DEVICE_TYPES.contains(&ty) => Err(TensorError::DeviceParse(
                format!("opdispatch has no {ty} backend (its devices are cpu, cuda and meta)"),
            )),
            _ => Err(TensorError::DeviceParse(format!(
                "Expected one of {} device type at start of device string: {ty}",
                opdispatch_schema::DEVICE_TYPES.join(", ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse() {
        assert_eq!(Device::Cpu.to_string(), "cpu");
        assert_eq!(Device::Meta.to_string(), "meta");
        assert_eq!(Device::Cuda(0).to_string(), "cuda:0");
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("meta".parse::<Device>().unwrap(), Device::Meta);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:1".parse::<Device>().unwrap(), Device::Cuda(1));
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:01", "cuda:x", "", "cpu:1"] {
            assert!(bad.parse::<Device>().is_err(), "{bad}");
        }
        for d in [Device::Cpu, Device::Meta, Device::Cuda(3)] {
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
    }
}
