//! `bitwise_and_agg`, `bitwise_or_agg`, `bitwise_xor_agg`: DataFusion's bit aggregates on BIGINT.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, ReversedUDAF, Signature,
};

use super::integer_or_null;
use crate::functions::unexpected_parameters;

/// Trino's `bitwise_and_agg`, `bitwise_or_agg` and `bitwise_xor_agg`: DataFusion's `bit_and`,
/// `bit_or` and `bit_xor` on BIGINT, as Trino widens every integer argument to one (DataFusion
/// would answer in the argument's type).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct BigintBitwise {
    pub(super) name: &'static str,
    pub(super) inner: Arc<AggregateUDF>,
    pub(super) signature: Signature,
}

impl AggregateUDFImpl for BigintBitwise {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value] if integer_or_null(value) => Ok(vec![DataType::Int64]),
            _ => unexpected_parameters(self.name, arg_types, &format!("{}(bigint)", self.name)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(acc_args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}
