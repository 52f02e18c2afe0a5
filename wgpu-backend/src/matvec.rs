//! The mat-vec op (`kernels/matvec.wgsl`) in one place, for the step engine
//! and the candle ops alike: its specialisation key and override constants,
//! the lane policy, one pipeline cache, and weight upload.
//!
//! A projection is `y = W · in(x)` with in(x) one of the input modes
//! ([`MatvecInput`]) and the rows written as [`MatvecOutput`] says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::device::{Capabilities, Gpu};
use crate::error::{GpuError, Result};
use crate::kernels::{self, GpuFormat, ShaderFeatures, MATVEC_WORKGROUP};
use crate::pipelines::{bind_group, bind_layout, pipeline, shader, RO, RW};
use crate::repack::PackedMatrix;

/// moshi's RmsNorm epsilon (the `EPS` default of matvec.wgsl).
pub const RMS_NORM_EPS: f32 = 1e-8;

/// The matvec lanes per row unless asked otherwise, except on discrete
/// GPUs ([`DISCRETE_LANES`]). Measured on an H100 (full-size Q4_K step,
/// before the vec4 input tile, bench/README.md): 8 lanes 3.05 ms, 16 lanes
/// 3.12, 32 lanes 4.83 (4× the workgroups, each paying the norm/input
/// prologue, no longer fit in one wave); lavapipe also prefers 8.
pub const DEFAULT_LANES: u32 = 8;
/// The most lanes per row on a discrete GPU whose subgroups allow it.
/// Measured on an H200 in one run (full-size Q4_K step at a full cache,
/// bench/h200/session6): 8 lanes for all 1.58 ms, 16 lanes 1.31, 32 lanes
/// 1.31 — the 2048-row projections get 256 workgroups instead of 64.
pub const DISCRETE_LANES: u32 = 32;

/// matvec.wgsl's bindings: weights, scales, x, alpha (read) and y (read_write).
const BINDINGS: [wgpu::BufferBindingType; 5] = [RO, RO, RO, RO, RW];

/// `INPUT_MODE` of matvec.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatvecInput {
    Plain = 0,
    RmsNorm = 1,
    /// silu(x₁)·x₂ of a 2K-wide input. The engine applies moshi's gate on
    /// linear_in's output instead (`MatvecOutput::Gated`); the candle ops
    /// still offer this mode.
    SiluGate = 2,
    /// Merges attention.wgsl's per-split partial results.
    AttentionMerge = 3,
}

/// Where a projection's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatvecOutput {
    /// y[offset + r] = row r.
    Set(u32),
    /// y[r] += row r (residual).
    Add,
    /// y[p] = silu(row p) · row (p + rows/2) (moshi's gated MLP).
    Gated,
}

/// Which specialisation of matvec.wgsl a projection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatvecKey {
    pub format: GpuFormat,
    pub k: u32,
    pub rows: u32,
    pub input: MatvecInput,
    pub residual: bool,
    pub y_offset: u32,
    /// `AttentionMerge` only (else 1): the attention layout.
    pub head_dim: u32,
    pub splits: u32,
    /// Write silu(row p)·(row p + rows/2) for p < rows/2 (GATED_OUT).
    pub gated_output: bool,
    /// Lanes per row: 8, 16 or 32 (`LANES`).
    pub lanes: u32,
    /// Where each stream of a batch finds its slices (all 0: one stream).
    pub strides: StreamStrides,
    /// matvec_batch.wgsl (four streams per workgroup) instead of
    /// matvec.wgsl (one).
    pub batch: bool,
}

/// Distances between consecutive streams' slices of a batched matvec's
/// buffers (`X_STRIDE4`, `ALPHA_STRIDE4`, `Y_STRIDE`); stream b is
/// workgroup_id.z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StreamStrides {
    /// In vec4s of x.
    pub x4: u32,
    /// In vec4s of alpha (the attention partials' (m, l); norm weights are
    /// shared: 0).
    pub alpha4: u32,
    /// In f32s of y.
    pub y: u32,
}

impl MatvecKey {
    /// The key for `weights` read through `input` and written as `output`;
    /// `attention` = (head dim, splits) for `AttentionMerge`.
    pub fn new(
        weights: &MatvecWeights,
        input: MatvecInput,
        output: MatvecOutput,
        attention: (u32, u32),
        lanes: u32,
    ) -> Self {
        let (residual, y_offset) = match output {
            MatvecOutput::Set(offset) => (false, offset),
            MatvecOutput::Add => (true, 0),
            MatvecOutput::Gated => (false, 0),
        };
        let (head_dim, splits) = if input == MatvecInput::AttentionMerge {
            attention
        } else {
            (1, 1)
        };
        Self {
            format: weights.format,
            k: weights.cols as u32,
            rows: weights.rows as u32,
            input,
            residual,
            y_offset,
            head_dim,
            splits,
            gated_output: output == MatvecOutput::Gated,
            lanes,
            strides: StreamStrides::default(),
            batch: false,
        }
    }

    /// The same projection over a batch of streams laid out by `strides`,
    /// four streams per workgroup when `batch` (matvec_batch.wgsl).
    pub fn with_strides(self, strides: StreamStrides, batch: bool) -> Self {
        // The batched kernel reads plain or RmsNorm inputs only (the engine
        // merges attention on its own for batches).
        debug_assert!(
            !batch || matches!(self.input, MatvecInput::Plain | MatvecInput::RmsNorm),
            "{:?} in the batched matvec",
            self.input
        );
        Self {
            strides,
            batch,
            ..self
        }
    }

    /// Streams one workgroup computes.
    pub fn streams_per_workgroup(&self) -> u32 {
        if self.batch {
            kernels::MATVEC_BATCH_STREAMS as u32
        } else {
            1
        }
    }

    /// Workgroups of one dispatch (per group of streams along z).
    pub fn workgroups(&self) -> u32 {
        let rows_per_invocation = if self.batch {
            kernels::MATVEC_BATCH_ROWS_PER_INVOCATION
        } else {
            1
        };
        let rows_per_workgroup = MATVEC_WORKGROUP / self.lanes * rows_per_invocation;
        if self.gated_output {
            (self.rows / 2).div_ceil(rows_per_workgroup / 2)
        } else {
            self.rows.div_ceil(rows_per_workgroup)
        }
    }

    /// matvec.wgsl's override constants for this key.
    fn constants(&self, eps: f32) -> [(&'static str, f64); 13] {
        [
            ("K", self.k as f64),
            ("ROWS", self.rows as f64),
            ("INPUT_MODE", self.input as u32 as f64),
            ("RESIDUAL", if self.residual { 1.0 } else { 0.0 }),
            ("Y_OFFSET", self.y_offset as f64),
            ("EPS", eps as f64),
            ("HEAD_DIM", self.head_dim as f64),
            ("SPLITS", self.splits as f64),
            ("GATED_OUT", if self.gated_output { 1.0 } else { 0.0 }),
            ("LANES", self.lanes as f64),
            ("X_STRIDE4", self.strides.x4 as f64),
            ("ALPHA_STRIDE4", self.strides.alpha4 as f64),
            ("Y_STRIDE", self.strides.y as f64),
        ]
    }
}

/// How many lanes each projection's rows get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lanes {
    /// The same for every projection.
    Fixed(u32),
    /// Per projection, the fewest lanes (8, 16, 32, at most `max`) that
    /// still give [`LANES_MIN_WORKGROUPS`] workgroups: long projections
    /// keep 8 lanes, short ones spread over more workgroups.
    ByRows { max: u32 },
}

/// The workgroups a projection should have before it takes fewer lanes
/// (about two per compute unit of a large GPU: an H200 has 132). Measured
/// on the H200 (µs per step, 8 → 32 lanes for all): linear_in (11264 rows)
/// 357 → 417, out_proj (2048) 366 → 286, linear_out (2048) 507 → 268,
/// in_proj (6144) 305 → 287.
pub const LANES_MIN_WORKGROUPS: u32 = 256;

impl Lanes {
    /// Lanes per row for a projection of `rows` rows.
    pub fn for_rows(self, rows: usize) -> u32 {
        match self {
            Lanes::Fixed(l) => l,
            Lanes::ByRows { max } => [8, 16, 32]
                .into_iter()
                .filter(|&l| l <= max)
                .find(|&l| (rows as u32).div_ceil(MATVEC_WORKGROUP / l) >= LANES_MIN_WORKGROUPS)
                .unwrap_or(max),
        }
    }
}

/// Lanes per row: `requested` for every projection if the kernel and the
/// adapter's subgroups allow it; unasked, per projection
/// ([`Lanes::ByRows`], up to [`DISCRETE_LANES`]) on a discrete GPU whose
/// subgroups allow it, else [`DEFAULT_LANES`].
pub fn lanes(caps: &Capabilities, requested: Option<u32>) -> Result<Lanes> {
    let subgroup = caps.subgroups.then_some(caps.subgroup_size);
    match requested {
        None if caps.discrete && subgroup.is_none_or(|s| DISCRETE_LANES <= s) => {
            Ok(Lanes::ByRows {
                max: DISCRETE_LANES,
            })
        }
        None => Ok(Lanes::Fixed(DEFAULT_LANES)),
        Some(l) if [8, 16, 32].contains(&l) && subgroup.is_none_or(|s| l <= s) => {
            Ok(Lanes::Fixed(l))
        }
        Some(l) => Err(GpuError::Unsupported(format!(
            "{l} matvec lanes (8, 16 or 32, at most the subgroup size {})",
            caps.subgroup_size
        ))),
    }
}

/// A matrix uploaded in its GPU layout.
pub struct MatvecWeights {
    pub name: String,
    pub format: GpuFormat,
    pub rows: usize,
    pub cols: usize,
    data: wgpu::Buffer,
    /// Q8 and Q4 only.
    scales: Option<wgpu::Buffer>,
}

impl MatvecWeights {
    /// Uploads `m`, dropping its host copy.
    pub fn upload(gpu: &Gpu, m: PackedMatrix) -> Result<Self> {
        let data = gpu.buffer_with(&m.name, &m.data, wgpu::BufferUsages::STORAGE)?;
        let scales = match m.format {
            GpuFormat::F32 | GpuFormat::F16 => None,
            GpuFormat::Q8 | GpuFormat::Q4 => Some(gpu.buffer_with(
                &format!("{}.scales", m.name),
                &m.scales,
                wgpu::BufferUsages::STORAGE,
            )?),
        };
        Ok(Self {
            name: m.name,
            format: m.format,
            rows: m.rows,
            cols: m.cols,
            data,
            scales,
        })
    }

    /// Bytes the kernel reads per application.
    pub fn bytes(&self) -> u64 {
        self.data.size() + self.scales.as_ref().map_or(0, |s| s.size())
    }
}

/// Shader modules (one per weight format) and pipelines (one per key and
/// epsilon) built on one device, with the bind layout they share.
pub struct MatvecPipelines {
    features: ShaderFeatures,
    pub lanes: u32,
    layout: wgpu::BindGroupLayout,
    /// Bound where a mode reads no scales or alpha.
    dummy: wgpu::Buffer,
    /// Per weight format and kernel (single, batch).
    modules: Mutex<HashMap<(GpuFormat, bool), wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(MatvecKey, u32), Arc<wgpu::ComputePipeline>>>,
}

impl MatvecPipelines {
    pub fn new(gpu: &Gpu, lanes: u32) -> Result<Self> {
        Ok(Self {
            features: ShaderFeatures {
                f16: gpu.caps.shader_f16,
                subgroups: gpu.caps.subgroups,
            },
            lanes,
            layout: bind_layout(&gpu.device, "matvec", &BINDINGS),
            dummy: gpu.empty_buffer("matvec unused binding", 16, wgpu::BufferUsages::STORAGE)?,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// The pipeline for `key` (built on first use).
    pub fn get(&self, gpu: &Gpu, key: MatvecKey, eps: f32) -> Arc<wgpu::ComputePipeline> {
        // A poisoned lock only means another thread panicked mid-insert;
        // the maps stay valid.
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|e| e.into_inner());
        pipelines
            .entry((key, eps.to_bits()))
            .or_insert_with(|| {
                let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
                let module = modules.entry((key.format, key.batch)).or_insert_with(|| {
                    let source = if key.batch {
                        kernels::matvec_batch_source(key.format, self.features)
                    } else {
                        kernels::matvec_source(key.format, self.features)
                    };
                    shader(gpu, "matvec", &source)
                });
                Arc::new(pipeline(
                    gpu,
                    &format!("matvec {key:?}"),
                    &self.layout,
                    module,
                    &key.constants(eps),
                ))
            })
            .clone()
    }

    /// Binds `weights`, the input `x` (and `alpha`: norm weights or
    /// attention's partial max/sum) and the output `y`.
    pub fn bind(
        &self,
        gpu: &Gpu,
        weights: &MatvecWeights,
        x: &wgpu::Buffer,
        alpha: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
    ) -> wgpu::BindGroup {
        bind_group(
            &gpu.device,
            &weights.name,
            &self.layout,
            &[
                &weights.data,
                weights.scales.as_ref().unwrap_or(&self.dummy),
                x,
                alpha.unwrap_or(&self.dummy),
                y,
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    #[test]
    fn lanes_by_rows() {
        let l = Lanes::ByRows { max: 32 };
        // stt-1b-en_fr's projections: linear_in (gated, 11264 rows), the
        // text head (8000), in_proj (6144), out_proj and linear_out (2048),
        // the end-of-turn heads (24).
        let got: Vec<u32> = [11264, 8000, 6144, 2048, 24]
            .map(|r| l.for_rows(r))
            .to_vec();
        assert_eq!(got, [8, 16, 16, 32, 32]);
        assert_eq!(Lanes::ByRows { max: 16 }.for_rows(2048), 16);
        assert_eq!(Lanes::Fixed(8).for_rows(2048), 8);
    }
}
