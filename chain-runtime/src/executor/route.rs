//! Routes: recording the arm a `route!` took and skipping the others' steps.

use super::run::RunCx;
use crate::events::EventKind;
use crate::report::StepStatus;

impl RunCx {
    /// Records that route `index` took arm `arm`; the steps of every other arm
    /// are marked skipped.
    pub fn route(&self, index: usize, arm: usize) {
        let Some(route) = self.shared.chain.routes.get(index) else {
            return;
        };
        let decided = self.now();
        let taken = route.arms.get(arm).map(|a| a.pattern);
        if let Some(record) = self.shared.routes().get_mut(index) {
            record.arm = taken;
            record.decided_at = Some(decided);
        }
        if let Some(arm_pattern) = taken {
            tracing::debug!(parent: &self.shared.span, key = route.key, arm = arm_pattern, "route taken");
            self.shared.emit(|| EventKind::RouteTaken {
                key: route.key,
                arm: arm_pattern,
            });
        }
        let mut skipped = Vec::new();
        {
            let mut records = self.shared.records();
            let others = route
                .arms
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != arm);
            for &step in others.flat_map(|(_, def)| def.steps) {
                if let Some(record) = records.get_mut(step) {
                    record.status = StepStatus::Skipped;
                    if self.shared.observed() {
                        skipped.push((step, record.name));
                    }
                }
            }
        }
        for (index, step) in skipped {
            self.shared.emit(|| EventKind::StepSkipped { step, index });
        }
    }
}
