//! Steps a test replaced with a [`Stub`](crate::testing::Stub): the stub's
//! answer stands in for the step's function, under the step's policies.

use std::sync::Arc;

use super::run::RunCx;
use crate::definition::StepDef;
use crate::error::{ChainError, FailureKind};
use crate::testing::Answer;

impl RunCx {
    /// The stub answering step `index` (output `T`: the step's, or a map
    /// element's), if the runtime has one for it; the step's record says
    /// so. A stub made for another type is an internal error (the chain's
    /// generated `stub` module checks the type, so only a stub made by
    /// hand can be wrong).
    #[cold]
    pub(super) fn stub_for<T: 'static>(
        &self,
        index: usize,
    ) -> Result<Option<Arc<Answer<T>>>, ChainError> {
        let chain = self.shared.chain.name;
        let Some(def) = self.shared.chain.steps.get(index) else {
            return Ok(None);
        };
        let Some(stub) = self.shared.runtime.stub(chain, def.key) else {
            return Ok(None);
        };
        let Some(answer) = stub.answer::<T>() else {
            return Err(self.wrong_stub(def, index));
        };
        self.shared.record(index, |record| record.stubbed = true);
        Ok(Some(answer))
    }

    fn wrong_stub(&self, def: &'static StepDef, index: usize) -> ChainError {
        self.step_error(
            def,
            index,
            FailureKind::Internal {
                message: format!(
                    "the stub of step `{}` (key `{}`) answers another type than the step's output; make it with the chain's `stub::{}`",
                    def.name, def.key, def.key
                ),
            },
        )
    }
}
