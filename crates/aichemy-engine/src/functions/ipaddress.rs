//! Trino's `IPADDRESS` values and `contains`:
//! - an `ipaddress` is its canonical text in a Utf8 field named `ipaddress` (IPv4 dotted,
//!   IPv6 in RFC 5952's shortest form, an IPv4-mapped IPv6 address as its IPv4 form);
//!   [`canonical`] makes it for `CAST(… AS IPADDRESS)` and `IPADDRESS '…'` literals;
//! - `contains(array, element)`, Trino's array membership, and `contains(cidr, address)`,
//!   whether a network (`'10.0.0.0/8'`) holds an address.

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::functions_nested::array_has::array_has_udf;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::json::cast::strings;
use crate::functions::{invalid_argument, is_text, scalar_result, unexpected_parameters};

/// Registers `contains`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Contains {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
}

/// The canonical text of an IP address, or `None` if `text` is none.
pub(crate) fn canonical(text: &str) -> Option<String> {
    let address: IpAddr = text.trim().parse().ok()?;
    Some(match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    })
}

/// An address as 128 bits, IPv4 as its IPv4-mapped IPv6 form.
fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Whether the network `cidr` (`address/prefix`) holds `address`.
fn network_contains(cidr: &str, address: &str) -> Result<bool> {
    let invalid_cidr = || invalid_argument(format!("Invalid CIDR: {cidr}"));
    let (network, prefix) = cidr.trim().split_once('/').ok_or_else(invalid_cidr)?;
    let network: IpAddr = network.parse().map_err(|_| invalid_cidr())?;
    let prefix: u32 = prefix.parse().map_err(|_| invalid_cidr())?;
    let width = if network.is_ipv4() { 32 } else { 128 };
    if prefix > width {
        return Err(invalid_cidr());
    }
    let address: IpAddr = address
        .trim()
        .parse()
        .map_err(|_| invalid_argument(format!("Invalid IP address: {address}")))?;
    // An IPv4 network's prefix counts the last 32 of the 128 bits.
    let prefix = prefix + (128 - width);
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    Ok(bits(network) & mask == bits(address) & mask)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Contains {
    signature: Signature,
}

impl ScalarUDFImpl for Contains {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "contains"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::List(element) | DataType::LargeList(element), _] => {
                Ok(vec![arg_types[0].clone(), element.data_type().clone()])
            }
            [network, address] if is_text(network) && is_text(address) => {
                Ok(vec![DataType::Utf8, DataType::Utf8])
            }
            _ => unexpected_parameters(
                "contains",
                arg_types,
                "contains(array(T), T), contains(varchar, ipaddress)",
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.arg_fields[0].data_type().is_nested() {
            return array_has_udf().invoke_with_args(args);
        }
        let arrays = crate::functions::arg_arrays(&args)?;
        let (networks, addresses) = (strings(&arrays[0])?, strings(&arrays[1])?);
        let mut out = BooleanBuilder::with_capacity(networks.len());
        for row in 0..networks.len() {
            if networks.is_null(row) || addresses.is_null(row) {
                out.append_null();
            } else {
                out.append_value(network_contains(networks.value(row), addresses.value(row))?);
            }
        }
        scalar_result(&args.args, Arc::new(out.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_canonical_and_networks_hold_theirs() {
        assert_eq!(canonical(" 10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(
            canonical("2001:0db8:0:0:0:ff00:0042:8329").as_deref(),
            Some("2001:db8::ff00:42:8329")
        );
        assert_eq!(canonical("::ffff:1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(canonical("1.2.3"), None);
        assert!(network_contains("10.0.0.0/8", "10.255.255.255").unwrap());
        assert!(!network_contains("10.0.0.0/8", "11.255.255.255").unwrap());
        assert!(network_contains("0.0.0.0/0", "8.8.8.8").unwrap());
        assert!(network_contains("2001:db8::/32", "2001:db8:1::1").unwrap());
        assert!(!network_contains(
            "2001:0db8:0:0:0:ff00:0042:8329/128",
            "2001:db8::ff00:42:8328"
        )
        .unwrap());
        assert!(network_contains("10.0.0.0/33", "10.0.0.1").is_err());
    }
}
