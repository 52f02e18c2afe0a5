//! Recording the Mimi encoder's dispatches into one compute pass, and, for
//! benchmarks, a GPU timestamp before each with its label (per-kernel
//! times of one call: [`GpuMimiEncoder::profile_call`](super::GpuMimiEncoder::profile_call)).

/// The most dispatches one profiled call may time (a one-frame call is
/// ~160; wgpu allows 4096 queries per set).
pub(crate) const MAX_PROFILED: u32 = 1024;

pub(crate) struct Recorder<'a, 'p> {
    pass: &'a mut wgpu::ComputePass<'p>,
    timestamps: Option<(&'a wgpu::QuerySet, &'a mut Vec<String>)>,
}

impl<'a, 'p> Recorder<'a, 'p> {
    pub fn new(pass: &'a mut wgpu::ComputePass<'p>) -> Self {
        Self {
            pass,
            timestamps: None,
        }
    }

    /// Writes a timestamp before every dispatch (and one at the end, by
    /// [`finish`](Self::finish)) into `set`, and each dispatch's label into
    /// `labels`.
    pub fn profiled(
        pass: &'a mut wgpu::ComputePass<'p>,
        set: &'a wgpu::QuerySet,
        labels: &'a mut Vec<String>,
    ) -> Self {
        Self {
            pass,
            timestamps: Some((set, labels)),
        }
    }

    pub fn dispatch(
        &mut self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        groups: [u32; 3],
    ) {
        if let Some((set, labels)) = &mut self.timestamps {
            // Past the set's size the call is recorded untimed.
            if (labels.len() as u32) < MAX_PROFILED - 1 {
                self.pass.write_timestamp(set, labels.len() as u32);
                labels.push(label.to_owned());
            }
        }
        self.pass.set_pipeline(pipeline);
        self.pass.set_bind_group(0, bind_group, &[]);
        self.pass
            .dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    /// The closing timestamp of a profiled call.
    pub fn finish(self) {
        if let Some((set, labels)) = self.timestamps {
            self.pass.write_timestamp(set, labels.len() as u32);
        }
    }
}
